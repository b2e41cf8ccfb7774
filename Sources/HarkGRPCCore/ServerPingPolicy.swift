public import NIOCore

/// How a server decides that a client pings too often (gRFC A8, server enforcement).
///
/// A ping is valid when it comes at least ``permitKeepaliveTime`` after the last valid one; on a
/// connection with no active streams (unless ``permitWithoutCalls``) it must come at least
/// ``idleInterval`` (2 hours) after it. The first ping after the server sent HEADERS or DATA is
/// always valid. Each invalid ping is a strike, and once the strikes exceed ``maxPingStrikes``
/// the client misbehaves: the server sends GOAWAY with ``HTTP2ErrorCode/enhanceYourCalm`` and
/// debug data ``tooManyPingsDebugData``, then closes the connection.
///
/// ```
/// receivedPing(at: t, activeStreams: n)
///   lastValidPing == nil, or lastValidPing + interval(n) <= t  -> lastValidPing = t; .accept
///   otherwise                                                 -> pingStrikes += 1;
///                                       pingStrikes > maxPingStrikes ? .tooManyPings : .accept
/// sentHeadersOrData()                                         -> lastValidPing = nil;
///                                                                pingStrikes = 0
/// ```
public struct ServerPingPolicy: Hashable, Sendable {
  /// What the server does about a ping it received.
  public enum PingVerdict: Hashable, Sendable {
    /// Answer the ping with an ACK as usual.
    case accept
    /// The client pinged too often: send GOAWAY with ENHANCE_YOUR_CALM and the debug data
    /// `too_many_pings`, then close the connection.
    case tooManyPings
  }

  /// The interval required between pings on a connection without active streams, when
  /// ``permitWithoutCalls`` is false.
  public static let idleInterval = TimeAmount.hours(2)
  /// The GOAWAY debug data that tells a client it pinged too often.
  public static let tooManyPingsDebugData = "too_many_pings"

  /// The shortest interval between valid pings while calls are active (A8's
  /// `PERMIT_KEEPALIVE_TIME`).
  public var permitKeepaliveTime: TimeAmount
  /// Whether pings without active streams are held to ``permitKeepaliveTime`` rather than to
  /// ``idleInterval`` (A8's `PERMIT_KEEPALIVE_WITHOUT_CALLS`).
  public var permitWithoutCalls: Bool
  /// The number of invalid pings tolerated; one more is too many.
  public var maxPingStrikes: Int

  /// The invalid pings received since the server last sent HEADERS or DATA.
  public private(set) var pingStrikes = 0
  /// When the last valid ping arrived, or nil if none did since the server last sent HEADERS or
  /// DATA.
  ///
  /// Nil rather than a distant past, because `NIODeadline` counts from an unspecified start
  /// (the system's uptime), so "now minus two hours" may not be representable.
  public private(set) var lastValidPing: NIODeadline?

  /// A policy with A8's defaults: 5 minutes between pings, none without calls, 2 strikes.
  public init(
    permitKeepaliveTime: TimeAmount = .minutes(5),
    permitWithoutCalls: Bool = false,
    maxPingStrikes: Int = 2
  ) {
    self.permitKeepaliveTime = permitKeepaliveTime
    self.permitWithoutCalls = permitWithoutCalls
    self.maxPingStrikes = maxPingStrikes
  }

  /// Judges a PING (without the ACK flag) that arrived at `now` while `activeStreams` streams
  /// were open.
  public mutating func receivedPing(at now: NIODeadline, activeStreams: Int) -> PingVerdict {
    let interval =
      activeStreams == 0 && !permitWithoutCalls ? Self.idleInterval : permitKeepaliveTime
    // NIODeadline's `+` saturates, so a huge interval cannot trap.
    if let lastValidPing, lastValidPing + interval > now {
      pingStrikes += 1
      return pingStrikes > maxPingStrikes ? .tooManyPings : .accept
    }
    lastValidPing = now
    return .accept
  }

  /// Records that the server sent a HEADERS or DATA frame, which makes the next ping valid and
  /// forgives all strikes.
  public mutating func sentHeadersOrData() {
    lastValidPing = nil
    pingStrikes = 0
  }
}
