public import NIOCore

/// A limit a server holds its peers to, and what a peer did to exceed it.
///
/// Every limit a peer can reach ends in one of these: a typed error, a log line naming the peer
/// and the reason, and a count in the server's ``GRPCServerLimitCounts``, never a trap.
public struct GRPCLimitExceeded: Error, Hashable, Sendable, CustomStringConvertible {
  /// Which limit.
  public enum Limit: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The server's connections (`maxConnections`): a new one is closed at once.
    case connections
    /// Connections from one address (`maxConnectionsPerPeer`): a new one is closed at once.
    case connectionsPerPeer
    /// No HTTP/2 preface and SETTINGS within the handshake timeout: the connection is closed.
    case handshakeTimeout
    /// No stream open for the idle-connection timeout: GOAWAY NO_ERROR, then close.
    case idleTimeout
    /// A header list over SETTINGS_MAX_HEADER_LIST_SIZE (HPACK-decoded): the stream is
    /// refused with RESOURCE_EXHAUSTED; a peer that persists gets GOAWAY ENHANCE_YOUR_CALM.
    case headerListSize
    /// More open streams than SETTINGS_MAX_CONCURRENT_STREAMS: RST_STREAM REFUSED_STREAM.
    case concurrentStreams
    /// RST_STREAM frames faster than the reset rate allows: GOAWAY ENHANCE_YOUR_CALM.
    case resetRate
    /// Frames that make the server queue more than it sends (PING, SETTINGS floods and the
    /// like; libnghttp2's own counters): GOAWAY ENHANCE_YOUR_CALM.
    case flood
    /// Bytes that are not HTTP/2, or frames that break it: GOAWAY PROTOCOL_ERROR (or the code
    /// nghttp2 chose) naming the error.
    case protocolError
    /// A stream whose responses the peer did not read for the write-stall timeout: reset.
    case writeStall
    /// A stream whose queued responses outgrew the per-stream limit: reset.
    case outboundQueue
    /// TLS handshakes in progress (``GRPCServerTLS/maxHandshakesInProgress``): a new
    /// connection is closed at once.
    case tlsHandshakes
    /// A call that sent no first request message within the server's pre-request timeout.
    case firstMessageTimeout

    public var description: String { rawValue }
  }

  /// Which limit was exceeded.
  public var limit: Limit
  /// What happened, for logs: e.g. `header list of 470,112,000 bytes over the limit of 16384`.
  public var message: String

  /// An error for `limit`.
  public init(_ limit: Limit, _ message: String) {
    self.limit = limit
    self.message = message
  }

  public var description: String { "\(limit): \(message)" }
}

/// How often each limit was exceeded since the server started: counters ready to export as
/// metrics.
public struct GRPCServerLimitCounts: Hashable, Sendable {
  /// Counts by limit; limits never exceeded are absent.
  public private(set) var counts: [GRPCLimitExceeded.Limit: Int] = [:]

  public init() {}

  /// How often `limit` was exceeded.
  public subscript(limit: GRPCLimitExceeded.Limit) -> Int { counts[limit, default: 0] }

  /// Counts one more excess of `limit`.
  public mutating func record(_ limit: GRPCLimitExceeded.Limit) {
    counts[limit, default: 0] += 1
  }
}

/// The limits a server holds one connection to, decided from its events and the time.
///
/// ```
///             SETTINGS from the client
///   handshaking ─────────────────────────► established (idle from here while no stream is open)
///     │ handshakeTimeout passes              │ no stream open for idleTimeout ───► close: GOAWAY NO_ERROR
///     ▼                                      │ RST_STREAMs beyond the bucket ────► close: GOAWAY ENHANCE_YOUR_CALM
///   close: GOAWAY NO_ERROR                   │ header lists over the limit,
///   "no HTTP/2 preface …"                    │   more than maxOversizedHeaderLists ► close: GOAWAY ENHANCE_YOUR_CALM
///                                            ▼
///                                          closed (once a verdict said close; later events are ignored)
/// ```
///
/// Time is a parameter: the connection's driver passes `now` with each event, and asks
/// ``tick(now:)`` on a timer, so tests can run the policy on a virtual clock.
public struct ServerConnectionPolicy: Sendable {
  /// The limits.
  public struct Limits: Hashable, Sendable {
    /// The client's preface and first SETTINGS must arrive within this; nil waits forever.
    public var handshakeTimeout: TimeAmount?
    /// A connection without an open stream for this long is closed (GOAWAY NO_ERROR); nil keeps
    /// it open.
    public var idleTimeout: TimeAmount?
    /// RST_STREAM frames a client may send in a burst.
    public var resetBurst: Int
    /// RST_STREAM frames a client may send per second, sustained.
    public var resetsPerSecond: Int
    /// Header lists over the size limit a connection may send (each refuses its stream); one
    /// more closes the connection.
    public var maxOversizedHeaderLists: Int

    /// Limits; the defaults are those of `hark serve`.
    public init(
      handshakeTimeout: TimeAmount? = .seconds(10),
      idleTimeout: TimeAmount? = .seconds(300),
      resetBurst: Int = 500,
      resetsPerSecond: Int = 50,
      maxOversizedHeaderLists: Int = 4
    ) {
      self.handshakeTimeout = handshakeTimeout
      self.idleTimeout = idleTimeout
      self.resetBurst = resetBurst
      self.resetsPerSecond = resetsPerSecond
      self.maxOversizedHeaderLists = maxOversizedHeaderLists
    }
  }

  /// What the connection does about an event.
  public enum Verdict: Hashable, Sendable {
    /// Carry on.
    case proceed
    /// Send GOAWAY with `errorCode` and `error`'s message as debug data, then close.
    case close(GRPCLimitExceeded, errorCode: HTTP2ErrorCode)
  }

  public let limits: Limits
  private var handshakeDeadline: NIODeadline?
  /// Since when no stream has been open; nil while one is.
  private var idleSince: NIODeadline?
  private var openStreams = 0
  private var resetTokens: Double
  private var lastRefill: NIODeadline
  private var oversizedHeaderLists = 0
  private var handshakeComplete = false
  private var closed = false

  /// The policy of a connection accepted at `now`.
  public init(limits: Limits, now: NIODeadline) {
    self.limits = limits
    handshakeDeadline = limits.handshakeTimeout.map { now + $0 }
    // Until the handshake completes, only its own timeout applies.
    idleSince = nil
    resetTokens = Double(limits.resetBurst)
    lastRefill = now
  }

  /// The client's first SETTINGS arrived at `now`: the handshake is complete, and a connection
  /// without streams is idle from here.
  public mutating func receivedSettings(now: NIODeadline) {
    guard !handshakeComplete else { return }
    handshakeComplete = true
    handshakeDeadline = nil
    if openStreams == 0 { idleSince = now }
  }

  /// A stream opened.
  public mutating func streamOpened() {
    openStreams += 1
    idleSince = nil
  }

  /// A stream closed at `now`.
  public mutating func streamClosed(now: NIODeadline) {
    openStreams = max(openStreams - 1, 0)
    if openStreams == 0 && handshakeComplete { idleSince = now }
  }

  /// The client reset a stream at `now`.
  public mutating func receivedReset(now: NIODeadline) -> Verdict {
    guard !closed else { return .proceed }
    let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
    if elapsed > 0 {
      resetTokens = min(
        resetTokens + elapsed * Double(limits.resetsPerSecond),
        Double(limits.resetBurst)
      )
      lastRefill = now
    }
    guard resetTokens >= 1 else {
      return close(
        GRPCLimitExceeded(
          .resetRate,
          "more than \(limits.resetBurst) stream resets at once, or over \(limits.resetsPerSecond) a second"
        ),
        .enhanceYourCalm
      )
    }
    resetTokens -= 1
    return .proceed
  }

  /// A header list of `size` bytes (HPACK-decoded, RFC 9113 §6.5.2) went over `limit`.
  public mutating func receivedOversizedHeaderList(size: Int, limit: Int) -> Verdict {
    guard !closed else { return .proceed }
    oversizedHeaderLists += 1
    guard oversizedHeaderLists > limits.maxOversizedHeaderLists else { return .proceed }
    return close(
      GRPCLimitExceeded(
        .headerListSize,
        "\(oversizedHeaderLists) header lists over the limit of \(limit) bytes (the last \(size))"
      ),
      .enhanceYourCalm
    )
  }

  /// The time is `now`: closes a connection whose handshake or idle time ran out.
  public mutating func tick(now: NIODeadline) -> Verdict {
    guard !closed else { return .proceed }
    if let handshakeDeadline, now >= handshakeDeadline, let timeout = limits.handshakeTimeout {
      return close(
        GRPCLimitExceeded(
          .handshakeTimeout,
          "no HTTP/2 preface and SETTINGS within \(Self.describe(timeout))"
        ),
        .noError
      )
    }
    if let idleSince, let timeout = limits.idleTimeout, now - idleSince >= timeout {
      return close(
        GRPCLimitExceeded(.idleTimeout, "no stream for \(Self.describe(timeout))"),
        .noError
      )
    }
    return .proceed
  }

  /// The earliest time ``tick(now:)`` may close the connection, or nil if none is due.
  public var nextDeadline: NIODeadline? {
    guard !closed else { return nil }
    let idle = idleSince.flatMap { since in limits.idleTimeout.map { since + $0 } }
    switch (handshakeDeadline, idle) {
    case (let handshake?, let idle?): return min(handshake, idle)
    case (let handshake?, nil): return handshake
    case (nil, let idle?): return idle
    case (nil, nil): return nil
    }
  }

  private mutating func close(_ error: GRPCLimitExceeded, _ code: HTTP2ErrorCode) -> Verdict {
    closed = true
    return .close(error, errorCode: code)
  }

  /// `10 s`, `250 ms`: a timeout for messages.
  public static func describe(_ amount: TimeAmount) -> String {
    let milliseconds = amount.nanoseconds / 1_000_000
    return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
  }
}

/// Finds a stream whose queued output the peer has not taken for a while: a client that never
/// reads (or never opens its window) cannot hold a stream, and what it queued, forever.
///
/// The driver calls ``check(pendingBytes:bytesTaken:now:)`` now and then (it need not be
/// regular); the stream has stalled once its queue was non-empty and no byte of it was taken for
/// `timeout`.
public struct WriteStallDetector: Hashable, Sendable {
  /// How long queued output may go untaken.
  public let timeout: TimeAmount
  private var stalledSince: NIODeadline?
  private var bytesTakenAtLastCheck = 0

  public init(timeout: TimeAmount) {
    self.timeout = timeout
  }

  /// Whether the stream has stalled: `pendingBytes` queued (or a status waiting to go), and
  /// `bytesTaken` in all by the transport so far.
  public mutating func check(pendingBytes: Bool, bytesTaken: Int, now: NIODeadline) -> Bool {
    defer { bytesTakenAtLastCheck = bytesTaken }
    guard pendingBytes else {
      stalledSince = nil
      return false
    }
    if bytesTaken != bytesTakenAtLastCheck || stalledSince == nil {
      stalledSince = now
      return false
    }
    return now - stalledSince! >= timeout
  }
}
