import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Logs warnings at most `perSecond` a second; those over the rate are counted, and the next
/// warning logged says how many were left out. An attacker who makes the server refuse
/// thousands of connections a second cannot fill its disk or drown the lines that matter.
final class RateLimitedLogger: Sendable {
  private let logger: Logger
  private let perSecond: Int
  private let state = NIOLockedValueBox(State())

  private struct State {
    var windowStart = NIODeadline.distantPast
    var loggedInWindow = 0
    var suppressed = 0
  }

  init(logger: Logger, perSecond: Int) {
    self.logger = logger
    self.perSecond = max(perSecond, 1)
  }

  func warning(_ message: Logger.Message, metadata: Logger.Metadata) {
    let now = NIODeadline.now()
    let suppressed: Int? = state.withLockedValue { state in
      if now - state.windowStart >= .seconds(1) {
        state.windowStart = now
        state.loggedInWindow = 0
      }
      guard state.loggedInWindow < perSecond else {
        state.suppressed += 1
        return nil
      }
      state.loggedInWindow += 1
      defer { state.suppressed = 0 }
      return state.suppressed
    }
    guard let suppressed else { return }
    var metadata = metadata
    if suppressed > 0 { metadata["suppressed_before"] = "\(suppressed)" }
    logger.warning(message, metadata: metadata)
  }
}
