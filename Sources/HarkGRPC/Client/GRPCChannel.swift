import HarkGRPCCore
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import NIOSSL

/// Calls to one gRPC server, spread over a pool of HTTP/2 connections.
///
/// Connections open when first needed. One that received GOAWAY or closed takes no new calls and
/// is replaced by a fresh connection; its calls in flight finish (or fail with UNAVAILABLE).
///
/// ```swift
/// let channel = GRPCChannel(host: "127.0.0.1", port: 50051, connections: 4)
/// try await channel.withCall(path: "/pkg.Service/Method", request: Req.self, response: Res.self) { call in
///   try await call.send(request)
///   await call.finish()
///   for try await response in call.responses { … }
/// }
/// await channel.close()
/// ```
public final class GRPCChannel: Sendable {
  /// The server's host.
  public let host: String
  /// The server's port.
  public let port: Int
  /// The client settings of every connection.
  public let configuration: GRPCClientConfiguration
  /// The event loops the connections run on.
  public let group: any EventLoopGroup
  private let state: NIOLockedValueBox<State>

  /// Whether ``close()`` was called.
  public var isClosed: Bool { state.withLockedValue { $0.closed } }
  /// The SSL context of every connection (made once: it reads the trust store and files).
  private let sslContext: Result<NIOSSLContext, GRPCTLSError>?

  private enum Slot {
    case idle
    case connecting(Task<GRPCClientConnection, any Error>)
    case ready(GRPCClientConnection)
  }

  private struct State {
    var slots: [Slot]
    var next = 0
    var closed = false
    /// Connections made for ``connection(on:)`` outside the pool's slots, closed with it.
    var extras: [GRPCClientConnection] = []
    /// The keepalive interval of new connections: the configuration's, doubled each time a
    /// server answered the pings with GOAWAY `too_many_pings` (as grpc-core clients do).
    var keepaliveInterval: TimeAmount?
  }

  /// The longest keepalive interval the doubling reaches.
  static let maxKeepaliveInterval = TimeAmount.hours(2)

  /// A new connection on `group` with the channel's SSL context and the `keepalive` interval;
  /// a failure is a `GRPCStatus` UNAVAILABLE that says why in a few words.
  private func makeConnection(
    on group: any EventLoopGroup,
    keepalive: TimeAmount?
  ) async throws(GRPCStatus) -> GRPCClientConnection {
    var configuration = self.configuration
    configuration.keepaliveInterval = keepalive
    let tlsContext: NIOSSLContext?
    switch sslContext {
    case .success(let context): tlsContext = context
    case .failure(let error): throw GRPCStatus.lasting(.unavailable, "TLS: \(error)")
    case nil: tlsContext = nil
    }
    do {
      return try await GRPCClientConnection.connect(
        host: host,
        port: port,
        configuration: configuration,
        group: group,
        tlsContext: tlsContext,
        onTooManyPings: tooManyPings
      )
    } catch let status as GRPCStatus {
      throw status
    } catch {
      let reason =
        (error as? GRPCConnectError)?.description ?? "cannot connect to \(host):\(port): \(error)"
      throw GRPCStatus(.unavailable, reason)
    }
  }

  /// Called by a connection whose server answered its pings with GOAWAY `too_many_pings`.
  private var tooManyPings: @Sendable () -> Void {
    { [state] in
      state.withLockedValue { state in
        state.keepaliveInterval = state.keepaliveInterval.map {
          min($0 * 2, GRPCChannel.maxKeepaliveInterval)
        }
      }
    }
  }

  /// The keepalive interval the channel's next connection will use.
  public var currentKeepaliveInterval: TimeAmount? {
    state.withLockedValue { $0.keepaliveInterval }
  }

  /// A channel to `host:port` over `connections` HTTP/2 connections.
  public init(
    host: String,
    port: Int,
    connections: Int = 1,
    configuration: GRPCClientConfiguration = GRPCClientConfiguration(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    precondition(connections >= 1, "a channel needs at least one connection")
    self.host = host
    self.port = port
    self.configuration = configuration
    self.group = group
    self.state = NIOLockedValueBox(
      State(
        slots: Array(repeating: .idle, count: connections),
        keepaliveInterval: configuration.keepaliveInterval
      )
    )
    self.sslContext = configuration.tls.map { tls in
      Result { () throws(GRPCTLSError) in try tls.makeContext() }
    }
  }

  /// A connection that can take a call now, connecting one if needed (round-robin over the pool).
  ///
  /// - Throws: `GRPCStatus` UNAVAILABLE if no connection can be made.
  public func connection() async throws -> GRPCClientConnection {
    for _ in 0..<3 {
      enum Next {
        case use(GRPCClientConnection)
        case wait(Task<GRPCClientConnection, any Error>, Int)
      }
      let next: Next = try state.withLockedValue { state in
        guard !state.closed else { throw GRPCStatus(.unavailable, "the channel is closed") }
        let index = state.next % state.slots.count
        state.next &+= 1
        switch state.slots[index] {
        case .ready(let connection) where connection.isAvailable:
          return .use(connection)
        case .connecting(let task):
          return .wait(task, index)
        case .idle, .ready:
          let (group, keepalive) = (self.group, state.keepaliveInterval)
          let task = Task { try await self.makeConnection(on: group, keepalive: keepalive) }
          state.slots[index] = .connecting(task)
          return .wait(task, index)
        }
      }
      switch next {
      case .use(let connection):
        return connection
      case .wait(let task, let index):
        do {
          let connection = try await task.value
          let closed = state.withLockedValue { state in
            if case .connecting = state.slots[index] { state.slots[index] = .ready(connection) }
            return state.closed
          }
          if closed {
            await connection.close()
            throw GRPCStatus(.unavailable, "the channel is closed")
          }
          if connection.isAvailable { return connection }
        } catch {
          // The next call tries again, rather than being handed this attempt's failure.
          state.withLockedValue { state in
            if case .connecting = state.slots[index] { state.slots[index] = .idle }
          }
          throw error
        }
      }
    }
    throw GRPCStatus(.unavailable, "no connection to \(host):\(port) takes new calls")
  }

  /// A connection on `eventLoop` that can take a call now: one of the pool's if it has one
  /// there, else a new one made on that loop, which takes the place of a pool slot whose
  /// connection went away (or is kept apart and closed with the channel). For a call whose
  /// state lives on that loop, such as a retry of one.
  ///
  /// - Throws: `GRPCStatus` UNAVAILABLE if no connection can be made.
  public func connection(on eventLoop: any EventLoop) async throws -> GRPCClientConnection {
    let found: GRPCClientConnection? = try state.withLockedValue { state in
      guard !state.closed else { throw GRPCStatus(.unavailable, "the channel is closed") }
      for slot in state.slots {
        if case .ready(let connection) = slot, connection.isAvailable,
          connection.eventLoop === eventLoop
        {
          return connection
        }
      }
      state.extras.removeAll { !$0.isAvailable && $0.openStreamCount == 0 }
      return state.extras.first { $0.isAvailable && $0.eventLoop === eventLoop }
    }
    if let found { return found }
    let connection = try await makeConnection(
      on: eventLoop,
      keepalive: state.withLockedValue { $0.keepaliveInterval }
    )
    let closed = state.withLockedValue { state -> Bool in
      guard !state.closed else { return true }
      // In the place of a slot whose connection takes no more calls, else apart.
      if let index = state.slots.firstIndex(where: { slot in
        if case .ready(let old) = slot { return !old.isAvailable }
        if case .idle = slot { return true }
        return false
      }) {
        state.slots[index] = .ready(connection)
      } else {
        state.extras.append(connection)
      }
      return false
    }
    if closed {
      await connection.close()
      throw GRPCStatus(.unavailable, "the channel is closed")
    }
    return connection
  }

  /// Closes every connection; calls in flight end with UNAVAILABLE.
  public func close() async {
    let (slots, extras) = state.withLockedValue { state in
      state.closed = true
      defer {
        state.slots = state.slots.map { _ in .idle }
        state.extras = []
      }
      return (state.slots, state.extras)
    }
    for connection in extras { await connection.close() }
    for slot in slots {
      switch slot {
      case .ready(let connection): await connection.close()
      case .connecting(let task):
        if let connection = try? await task.value { await connection.close() }
      case .idle: break
      }
    }
  }
}
