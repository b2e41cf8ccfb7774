import HarkGRPCCore
import NIOCore
import Testing

@Suite("Client keepalive (gRFC A8)")
struct ClientKeepaliveTests {
  enum TargetState: CaseIterable {
    /// Connected at second 0, nothing since.
    case waiting
    /// Ping 1 sent at second 60, unanswered.
    case pingInFlight
    /// Ping 1 timed out at second 80.
    case dead
  }

  static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

  /// The deadline `seconds` after the connection was established.
  static func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

  /// A keepalive that pings 60 s after the last read and waits 20 s for the ACK.
  static func make(
    _ target: TargetState = .waiting,
    permitWithoutCalls: Bool = false
  ) -> ClientKeepalive {
    var keepalive = ClientKeepalive(
      interval: .seconds(60),
      timeout: .seconds(20),
      permitWithoutCalls: permitWithoutCalls,
      connectedAt: at(0)
    )
    switch target {
    case .waiting:
      break
    case .pingInFlight:
      #expect(keepalive.tick(now: at(60), openStreams: 1) == .sendPing(payload: 1))
    case .dead:
      #expect(keepalive.tick(now: at(60), openStreams: 1) == .sendPing(payload: 1))
      #expect(keepalive.tick(now: at(80), openStreams: 1) == .connectionDead)
    }
    return keepalive
  }

  // MARK: - Configuration

  @Test(
    "intervals under 10 seconds are raised to 10 seconds",
    arguments: [
      (TimeAmount.seconds(1), TimeAmount.seconds(10)),
      (.nanoseconds(0), .seconds(10)),
      (.seconds(10), .seconds(10)),
      (.seconds(11), .seconds(11)),
      (.hours(2), .hours(2)),
    ]
  )
  func minimumInterval(_ interval: TimeAmount, effective: TimeAmount) {
    let keepalive = ClientKeepalive(interval: interval, connectedAt: Self.at(0))
    #expect(keepalive.interval == effective)
  }

  @Test("the defaults are those of A8")
  func defaults() {
    let keepalive = ClientKeepalive(interval: .minutes(1), connectedAt: Self.at(0))
    #expect(keepalive.timeout == .seconds(20))
    #expect(keepalive.permitWithoutCalls == false)
    #expect(keepalive.lastRead == Self.at(0))
    #expect(keepalive.pingInFlight == nil)
    #expect(keepalive.isDead == false)
    #expect(ClientKeepalive.minimumInterval == .seconds(10))
  }

  // MARK: - Waiting

  @Test("waiting: no ping before the interval has passed since the last read")
  func waitingBeforeDue() {
    var keepalive = Self.make()
    #expect(keepalive.tick(now: Self.at(0), openStreams: 1) == .none)
    #expect(keepalive.tick(now: Self.at(59), openStreams: 1) == .none)
    let justBefore = Self.at(60) - .nanoseconds(1)
    #expect(keepalive.tick(now: justBefore, openStreams: 1) == .none)
    #expect(keepalive.nextTick(after: Self.at(0)) == Self.at(60))
    #expect(keepalive.nextTick(after: justBefore) == Self.at(60))
  }

  @Test("waiting: a tick once the interval has passed sends a ping", arguments: [60, 61, 500])
  func waitingDue(second: Int64) {
    var keepalive = Self.make()
    #expect(keepalive.tick(now: Self.at(second), openStreams: 1) == .sendPing(payload: 1))
    #expect(keepalive.pingInFlight == 1)
    #expect(keepalive.nextTick(after: Self.at(second)) == Self.at(second + 20))
  }

  @Test("waiting: no ping without open streams unless permitted")
  func waitingWithoutStreams() {
    var keepalive = Self.make()
    #expect(keepalive.tick(now: Self.at(60), openStreams: 0) == .none)
    #expect(keepalive.pingInFlight == nil)
    // The ping is overdue but not allowed; look again an interval later.
    #expect(keepalive.nextTick(after: Self.at(60)) == Self.at(120))

    var permitted = Self.make(permitWithoutCalls: true)
    #expect(permitted.tick(now: Self.at(60), openStreams: 0) == .sendPing(payload: 1))
  }

  @Test("waiting: an overdue ping goes out at the first tick after a stream opens")
  func waitingStreamOpens() {
    var keepalive = Self.make()
    #expect(keepalive.tick(now: Self.at(200), openStreams: 0) == .none)
    #expect(keepalive.tick(now: Self.at(201), openStreams: 1) == .sendPing(payload: 1))
  }

  @Test("waiting: a read restarts the interval")
  func waitingRead() {
    var keepalive = Self.make()
    keepalive.readSomething(now: Self.at(30))
    #expect(keepalive.lastRead == Self.at(30))
    #expect(keepalive.tick(now: Self.at(60), openStreams: 1) == .none)
    #expect(keepalive.nextTick(after: Self.at(60)) == Self.at(90))
    #expect(keepalive.tick(now: Self.at(90), openStreams: 1) == .sendPing(payload: 1))
  }

  @Test("waiting: a read stamped earlier than the last one does not move it back")
  func waitingReadOutOfOrder() {
    var keepalive = Self.make()
    keepalive.readSomething(now: Self.at(30))
    keepalive.readSomething(now: Self.at(10))
    #expect(keepalive.lastRead == Self.at(30))
  }

  @Test("waiting: a connection that keeps receiving data never pings")
  func waitingBusy() {
    var keepalive = Self.make()
    for second in stride(from: Int64(0), through: 3600, by: 30) {
      keepalive.readSomething(now: Self.at(second))
      #expect(keepalive.tick(now: Self.at(second + 29), openStreams: 1) == .none)
    }
  }

  // MARK: - Ping in flight

  @Test("in flight: no action before the timeout")
  func inFlightBeforeTimeout() {
    var keepalive = Self.make(.pingInFlight)
    #expect(keepalive.tick(now: Self.at(60), openStreams: 1) == .none)
    #expect(keepalive.tick(now: Self.at(80) - .nanoseconds(1), openStreams: 1) == .none)
    #expect(keepalive.pingInFlight == 1)
    #expect(keepalive.nextTick(after: Self.at(70)) == Self.at(80))
  }

  @Test("in flight: the connection is dead once the timeout has passed", arguments: [0, 1])
  func inFlightTimeout(openStreams: Int) {
    var keepalive = Self.make(.pingInFlight)
    #expect(keepalive.tick(now: Self.at(80), openStreams: openStreams) == .connectionDead)
    #expect(keepalive.isDead)
    #expect(keepalive.pingInFlight == nil)
  }

  @Test("in flight: the ACK ends the wait, and the next interval counts from it")
  func inFlightAck() {
    var keepalive = Self.make(.pingInFlight)
    keepalive.receivedPingAck(payload: 1, now: Self.at(75))
    #expect(keepalive.pingInFlight == nil)
    #expect(keepalive.lastRead == Self.at(75))
    #expect(keepalive.tick(now: Self.at(80), openStreams: 1) == .none)
    // From the ACK (75 + 60), not from the ping (60 + 60).
    #expect(keepalive.tick(now: Self.at(120), openStreams: 1) == .none)
    #expect(keepalive.nextTick(after: Self.at(120)) == Self.at(135))
    #expect(keepalive.tick(now: Self.at(135), openStreams: 1) == .sendPing(payload: 2))
  }

  @Test("in flight: any read proves the connection alive, and the late ACK is harmless")
  func inFlightRead() {
    var keepalive = Self.make(.pingInFlight)
    keepalive.readSomething(now: Self.at(70))
    #expect(keepalive.pingInFlight == nil)
    #expect(keepalive.tick(now: Self.at(80), openStreams: 1) == .none)
    #expect(keepalive.nextTick(after: Self.at(80)) == Self.at(130))
    keepalive.receivedPingAck(payload: 1, now: Self.at(90))
    #expect(keepalive.tick(now: Self.at(130), openStreams: 1) == .none)
    #expect(keepalive.tick(now: Self.at(150), openStreams: 1) == .sendPing(payload: 2))
  }

  @Test("in flight: an ACK for another ping counts as a read")
  func inFlightOtherAck() {
    var keepalive = Self.make(.pingInFlight)
    keepalive.receivedPingAck(payload: 0xDEAD_BEEF, now: Self.at(65))
    #expect(keepalive.pingInFlight == nil)
    #expect(keepalive.lastRead == Self.at(65))
    #expect(keepalive.tick(now: Self.at(80), openStreams: 1) == .none)
  }

  // MARK: - Dead

  @Test("dead: nothing more happens, whatever arrives")
  func dead() {
    var keepalive = Self.make(.dead)
    #expect(keepalive.tick(now: Self.at(81), openStreams: 1) == .none)
    #expect(keepalive.tick(now: Self.at(1000), openStreams: 1) == .none)
    keepalive.receivedPingAck(payload: 1, now: Self.at(82))
    keepalive.readSomething(now: Self.at(83))
    #expect(keepalive.isDead)
    #expect(keepalive.lastRead == Self.at(0))
    #expect(keepalive.nextTick(after: Self.at(83)) == .distantFuture)
    #expect(keepalive.tick(now: Self.at(2000), openStreams: 1) == .none)
  }

  // MARK: - Whole runs

  @Test("each ping has its own payload")
  func uniquePayloads() {
    var keepalive = Self.make()
    var payloads: [UInt64] = []
    var now = Self.at(0)
    for _ in 0..<5 {
      now = keepalive.nextTick(after: now)
      guard case .sendPing(let payload) = keepalive.tick(now: now, openStreams: 1) else {
        Issue.record("expected a ping at \(now)")
        return
      }
      payloads.append(payload)
      now = now + .seconds(1)
      keepalive.receivedPingAck(payload: payload, now: now)
    }
    #expect(payloads == [1, 2, 3, 4, 5])
    #expect(now == Self.at(5 * 61))
  }

  @Test("a driver that only follows nextTick detects a silent peer in interval + timeout")
  func silentPeer() {
    var keepalive = Self.make()
    var now = Self.at(0)
    var actions: [ClientKeepalive.KeepaliveAction] = []
    while !keepalive.isDead {
      now = keepalive.nextTick(after: now)
      actions.append(keepalive.tick(now: now, openStreams: 1))
    }
    #expect(actions == [.sendPing(payload: 1), .connectionDead])
    #expect(now == Self.at(80))
  }

  @Test("every state answers a tick", arguments: TargetState.allCases)
  func tickInEveryState(_ target: TargetState) {
    var keepalive = Self.make(target)
    let expected: ClientKeepalive.KeepaliveAction =
      switch target {
      case .waiting: .sendPing(payload: 1)
      case .pingInFlight: .connectionDead
      case .dead: .none
      }
    #expect(keepalive.tick(now: Self.at(100), openStreams: 1) == expected)
  }
}
