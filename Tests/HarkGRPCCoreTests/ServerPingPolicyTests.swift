import HarkGRPCCore
import NIOCore
import Testing

@Suite("Server ping policy (gRFC A8)")
struct ServerPingPolicyTests {
  /// An event on the connection, at a number of seconds after the start.
  enum Event: Sendable {
    case ping(atSecond: Int64, activeStreams: Int)
    case sentHeadersOrData
  }

  struct Scenario: Sendable, CustomTestStringConvertible {
    var name: String
    var permitKeepaliveTime = TimeAmount.minutes(5)
    var permitWithoutCalls = false
    var maxPingStrikes = 2
    var events: [Event]
    /// The verdict for each ping, in order.
    var verdicts: [ServerPingPolicy.PingVerdict]

    var testDescription: String { name }
  }

  /// Uptime is arbitrary; start near zero to show that no "distant past" is needed.
  static let start = NIODeadline.uptimeNanoseconds(0)

  static func run(_ scenario: Scenario) -> [ServerPingPolicy.PingVerdict] {
    var policy = ServerPingPolicy(
      permitKeepaliveTime: scenario.permitKeepaliveTime,
      permitWithoutCalls: scenario.permitWithoutCalls,
      maxPingStrikes: scenario.maxPingStrikes
    )
    var verdicts: [ServerPingPolicy.PingVerdict] = []
    for event in scenario.events {
      switch event {
      case .ping(let second, let activeStreams):
        verdicts.append(
          policy.receivedPing(at: start + .seconds(second), activeStreams: activeStreams)
        )
      case .sentHeadersOrData:
        policy.sentHeadersOrData()
      }
    }
    return verdicts
  }

  static let scenarios: [Scenario] = [
    Scenario(
      name: "pings exactly 5 minutes apart during a call are all valid",
      events: [0, 300, 600, 900, 1200].map { .ping(atSecond: $0, activeStreams: 1) },
      verdicts: [.accept, .accept, .accept, .accept, .accept]
    ),
    Scenario(
      name: "the third early ping during a call is one too many",
      events: [0, 60, 120, 180].map { .ping(atSecond: $0, activeStreams: 1) },
      verdicts: [.accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "a ping a second early is a strike",
      maxPingStrikes: 0,
      events: [.ping(atSecond: 0, activeStreams: 1), .ping(atSecond: 299, activeStreams: 1)],
      verdicts: [.accept, .tooManyPings]
    ),
    Scenario(
      name: "the interval counts from the last valid ping, not the last ping",
      maxPingStrikes: 1,
      events: [0, 200, 300, 500].map { .ping(atSecond: $0, activeStreams: 1) },
      verdicts: [.accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "valid pings do not forgive strikes",
      events: [0, 60, 300, 360, 600, 660].map { .ping(atSecond: $0, activeStreams: 2) },
      verdicts: [.accept, .accept, .accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "without calls, pings 5 minutes apart are strikes",
      events: [0, 300, 600, 900].map { .ping(atSecond: $0, activeStreams: 0) },
      verdicts: [.accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "without calls, pings 2 hours apart are valid",
      maxPingStrikes: 0,
      events: [0, 7200, 14400].map { .ping(atSecond: $0, activeStreams: 0) },
      verdicts: [.accept, .accept, .accept]
    ),
    Scenario(
      name: "without calls, a ping just under 2 hours is a strike",
      maxPingStrikes: 0,
      events: [.ping(atSecond: 0, activeStreams: 0), .ping(atSecond: 7199, activeStreams: 0)],
      verdicts: [.accept, .tooManyPings]
    ),
    Scenario(
      name: "permitWithoutCalls holds idle pings to the keepalive time",
      permitWithoutCalls: true,
      maxPingStrikes: 0,
      events: [0, 300, 600].map { .ping(atSecond: $0, activeStreams: 0) },
      verdicts: [.accept, .accept, .accept]
    ),
    Scenario(
      name: "the interval depends on the streams active at each ping",
      maxPingStrikes: 0,
      events: [.ping(atSecond: 0, activeStreams: 0), .ping(atSecond: 300, activeStreams: 1)],
      verdicts: [.accept, .accept]
    ),
    Scenario(
      name: "a shorter permitted keepalive time",
      permitKeepaliveTime: .seconds(10),
      maxPingStrikes: 0,
      events: [0, 10, 20, 29].map { .ping(atSecond: $0, activeStreams: 1) },
      verdicts: [.accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "sending HEADERS or DATA makes the next ping valid and forgives strikes",
      events: [
        .ping(atSecond: 0, activeStreams: 1), .ping(atSecond: 1, activeStreams: 1),
        .ping(atSecond: 2, activeStreams: 1), .sentHeadersOrData,
        .ping(atSecond: 3, activeStreams: 1), .ping(atSecond: 4, activeStreams: 1),
        .ping(atSecond: 5, activeStreams: 1), .ping(atSecond: 6, activeStreams: 1),
      ],
      verdicts: [.accept, .accept, .accept, .accept, .accept, .accept, .tooManyPings]
    ),
    Scenario(
      name: "a client pinging after every response is never punished",
      maxPingStrikes: 0,
      events: [
        .ping(atSecond: 0, activeStreams: 1), .sentHeadersOrData,
        .ping(atSecond: 1, activeStreams: 1), .sentHeadersOrData,
        .ping(atSecond: 2, activeStreams: 0), .sentHeadersOrData,
        .ping(atSecond: 3, activeStreams: 0),
      ],
      verdicts: [.accept, .accept, .accept, .accept]
    ),
    Scenario(
      name: "once too many, every further early ping is too many",
      maxPingStrikes: 0,
      events: [0, 1, 2].map { .ping(atSecond: $0, activeStreams: 1) },
      verdicts: [.accept, .tooManyPings, .tooManyPings]
    ),
  ]

  @Test("pings are judged as A8 says", arguments: scenarios)
  func scenario(_ scenario: Scenario) {
    #expect(Self.run(scenario) == scenario.verdicts)
  }

  @Test("the defaults are those of A8")
  func defaults() {
    let policy = ServerPingPolicy()
    #expect(policy.permitKeepaliveTime == .minutes(5))
    #expect(policy.permitWithoutCalls == false)
    #expect(policy.maxPingStrikes == 2)
    #expect(policy.pingStrikes == 0)
    #expect(policy.lastValidPing == nil)
    #expect(ServerPingPolicy.idleInterval == .hours(2))
    #expect(ServerPingPolicy.tooManyPingsDebugData == "too_many_pings")
  }

  @Test("the state records the last valid ping and the strikes")
  func state() {
    var policy = ServerPingPolicy()
    let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
    #expect(policy.receivedPing(at: t0, activeStreams: 1) == .accept)
    #expect(policy.lastValidPing == t0)
    #expect(policy.receivedPing(at: t0 + .seconds(1), activeStreams: 1) == .accept)
    #expect(policy.lastValidPing == t0)
    #expect(policy.pingStrikes == 1)
    policy.sentHeadersOrData()
    #expect(policy.lastValidPing == nil)
    #expect(policy.pingStrikes == 0)
  }

  @Test("a ping at the same instant as the last valid one is a strike")
  func sameInstant() {
    var policy = ServerPingPolicy(maxPingStrikes: 0)
    let t0 = NIODeadline.uptimeNanoseconds(1)
    #expect(policy.receivedPing(at: t0, activeStreams: 1) == .accept)
    #expect(policy.receivedPing(at: t0, activeStreams: 1) == .tooManyPings)
  }

  @Test("a huge permitted interval near the end of time does not trap")
  func saturation() {
    var policy = ServerPingPolicy(permitKeepaliveTime: .nanoseconds(.max), maxPingStrikes: 0)
    #expect(policy.receivedPing(at: .distantFuture - .seconds(1), activeStreams: 1) == .accept)
    let later = NIODeadline.distantFuture - .milliseconds(500)
    #expect(policy.receivedPing(at: later, activeStreams: 1) == .tooManyPings)
  }
}
