import HarkClient
import HarkGRPCCore
import Synchronization

/// The metadata each session of a run starts its call with: the configuration's, and the
/// current access token of the run's one token provider.
///
/// Sessions start on event loops, where nothing may wait for a token: they read the metadata
/// here (a lock and a copy). A task of the generator keeps it current by asking the provider
/// once a second; the provider answers from its cache and fetches only ahead of expiry, so a
/// run whose token outlasts it fetches once, however many sessions it starts.
final class SessionMetadata: Sendable {
  private let base: GRPCMetadata
  private let current: Mutex<GRPCMetadata>
  /// How often the provider is asked.
  static let refreshInterval: Duration = .seconds(1)

  init(_ base: GRPCMetadata) {
    self.base = base
    current = Mutex(base)
  }

  /// What a session starting now sends.
  var value: GRPCMetadata { current.withLock { $0 } }

  /// Takes the provider's current token.
  func update(from provider: any TokenProvider) async throws {
    let metadata = try base.authorized(with: try await provider.token())
    current.withLock { $0 = metadata }
  }

  /// Keeps the token current until the task is cancelled. A failure keeps the previous token
  /// (sessions then see what the server says of it) and is tried again at the next interval.
  func keepCurrent(from provider: any TokenProvider) async {
    while !Task.isCancelled {
      do {
        try await Task.sleep(for: Self.refreshInterval)
      } catch {
        return
      }
      try? await update(from: provider)
    }
  }
}
