public import NIOCore

/// The client's keepalive pings (gRFC A8), as a state machine driven by a timer.
///
/// ```
///          tick, due: .sendPing              tick, timed out: .connectionDead
/// waiting -----------------------> pingInFlight -------------------------------> dead
///    ^                                  |
///    +----------------------------------+
///      readSomething, receivedPingAck
///
/// state         event                                  action, next state
/// ------------  -------------------------------------  --------------------------------
/// waiting       tick, due (*)                          .sendPing(payload), pingInFlight
/// waiting       tick, not due                          .none, waiting
/// waiting       readSomething, receivedPingAck         lastRead = now, waiting
/// pingInFlight  tick, sentAt + timeout <= now          .connectionDead, dead
/// pingInFlight  tick, earlier                          .none, pingInFlight
/// pingInFlight  readSomething, receivedPingAck (any)   lastRead = now, waiting
/// dead          any                                    .none, dead
///
/// (*) lastRead + interval <= now, and a stream is open or permitWithoutCalls.
/// ```
///
/// The interval is measured from the last byte read, never from the last ping sent, so a
/// connection that keeps receiving data sends no pings. Any byte read while a ping is in flight
/// proves the connection alive just as the ACK would (grpc core does the same), so the wait
/// ends there. When a ping goes unanswered for ``timeout`` the connection is dead: the driver
/// closes it and fails its calls with UNAVAILABLE.
///
/// The driver calls ``tick(now:openStreams:)`` at ``nextTick(after:)``. Ticks at other times
/// are harmless, so it may also tick when the first stream opens on an idle connection, which
/// sends a ping at once if one is overdue.
public struct ClientKeepalive: Hashable, Sendable {
  /// What the driver does after a tick.
  public enum KeepaliveAction: Hashable, Sendable {
    /// Nothing.
    case none
    /// Send a PING frame whose 8 bytes of opaque data are `payload` (big endian).
    case sendPing(payload: UInt64)
    /// The ping in flight was not answered within the timeout: close the connection, failing
    /// its calls with UNAVAILABLE.
    case connectionDead
  }

  private enum State: Hashable, Sendable {
    /// No ping is in flight; the next is due at `lastRead + interval`.
    case waiting
    /// The ping with `payload` was sent at `sentAt` and awaits its ACK.
    case pingInFlight(payload: UInt64, sentAt: NIODeadline)
    /// A ping timed out and ``KeepaliveAction/connectionDead`` was returned.
    case dead
  }

  /// The shortest interval allowed: A8 raises shorter ones to 10 seconds.
  public static let minimumInterval = TimeAmount.seconds(10)
  /// A8's default time to wait for a ping's ACK: 20 seconds.
  public static let defaultTimeout = TimeAmount.seconds(20)

  /// How long after the last read a ping is sent (A8's `KEEPALIVE_TIME`).
  public let interval: TimeAmount
  /// How long a ping may go unanswered before the connection is dead (A8's `KEEPALIVE_TIMEOUT`).
  public let timeout: TimeAmount
  /// Whether pings are sent while no stream is open (A8's `KEEPALIVE_WITHOUT_CALLS`).
  public let permitWithoutCalls: Bool

  /// When the last bytes were read, or when the connection was established.
  public private(set) var lastRead: NIODeadline
  private var state = State.waiting
  private var nextPayload: UInt64 = 1

  /// A keepalive for a connection established at `connectedAt`.
  ///
  /// - Parameters:
  ///   - interval: How long after the last read to ping; raised to ``minimumInterval`` if
  ///       shorter.
  ///   - timeout: How long to wait for the ACK.
  ///   - permitWithoutCalls: Whether to ping while no stream is open.
  ///   - connectedAt: When the connection was established, the start of the first interval.
  ///   - minimumInterval: The floor of `interval` (A8's 10 seconds; tests of the transport use
  ///       shorter intervals to see a dead connection quickly).
  public init(
    interval: TimeAmount,
    timeout: TimeAmount = ClientKeepalive.defaultTimeout,
    permitWithoutCalls: Bool = false,
    connectedAt: NIODeadline,
    minimumInterval: TimeAmount = ClientKeepalive.minimumInterval
  ) {
    self.interval = max(interval, minimumInterval)
    self.timeout = timeout
    self.permitWithoutCalls = permitWithoutCalls
    self.lastRead = connectedAt
  }

  /// The payload of the ping in flight, if one is.
  public var pingInFlight: UInt64? {
    guard case .pingInFlight(let payload, _) = state else { return nil }
    return payload
  }

  /// Whether a ping timed out.
  public var isDead: Bool { state == .dead }

  /// Checks, at `now` with `openStreams` streams open, whether to ping or give up.
  public mutating func tick(now: NIODeadline, openStreams: Int) -> KeepaliveAction {
    switch state {
    case .dead:
      // Reported once; the driver is closing the connection.
      return .none
    case .pingInFlight(_, let sentAt):
      guard sentAt + timeout <= now else { return .none }
      state = .dead
      return .connectionDead
    case .waiting:
      guard openStreams > 0 || permitWithoutCalls, lastRead + interval <= now else {
        return .none
      }
      let payload = nextPayload
      nextPayload &+= 1
      state = .pingInFlight(payload: payload, sentAt: now)
      return .sendPing(payload: payload)
    }
  }

  /// Records a PING ACK with `payload` read at `now`.
  ///
  /// Like any read, the ACK proves the connection alive and ends the wait for the ping in
  /// flight. So its payload need not match: a late ACK, or one for a ping sent for another
  /// purpose, does the same as the awaited one.
  public mutating func receivedPingAck(payload: UInt64, now: NIODeadline) {
    readSomething(now: now)
  }

  /// Records that bytes were read at `now`, which proves the connection alive.
  public mutating func readSomething(now: NIODeadline) {
    guard state != .dead else { return }
    lastRead = max(lastRead, now)
    state = .waiting
  }

  /// When the driver should next call ``tick(now:openStreams:)``, given that it is `now`.
  ///
  /// That is when the ping in flight times out, or when the next ping is due. If a ping is
  /// already due but was not sent because no stream was open, the next check is one interval
  /// later (or sooner, if the driver ticks when a stream opens). A dead keepalive never ticks.
  public func nextTick(after now: NIODeadline) -> NIODeadline {
    switch state {
    case .dead:
      return .distantFuture
    case .pingInFlight(_, let sentAt):
      return sentAt + timeout
    case .waiting:
      let due = lastRead + interval
      return due > now ? due : now + interval
    }
  }
}
