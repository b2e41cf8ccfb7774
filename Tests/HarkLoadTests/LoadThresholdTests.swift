import HarkLoad
import Testing

@Suite("load-threshold")
struct LoadThresholdTests {
  @Test(
    "an item parses to its limit and prints back in the form --fail-on takes",
    arguments: [
      (
        "p99-final=200ms", LoadThreshold.percentile(99, .final, limitMicroseconds: 200_000),
        "p99-final=200ms"
      ),
      (
        "p99.9-handshake=1500us", .percentile(99.9, .handshake, limitMicroseconds: 1500),
        "p99.9-handshake=1500us"
      ),
      ("p99.99-end=250µs", .percentile(99.99, .end, limitMicroseconds: 250), "p99.99-end=250us"),
      (
        "P50-Start-Of-Speech=2s", .percentile(50, .startOfSpeech, limitMicroseconds: 2_000_000),
        "p50-start_of_speech=2s"
      ),
      (
        "p100-first_partial=1.5s", .percentile(100, .firstPartial, limitMicroseconds: 1_500_000),
        "p100-first_partial=1500ms"
      ),
      (
        " p90-session=0.5ms ", .percentile(90, .session, limitMicroseconds: 500),
        "p90-session=500us"
      ),
      (
        "max-frame_lateness=20ms", .maximum(.frameLateness, limitMicroseconds: 20_000),
        "max-frame_lateness=20ms"
      ),
      (
        "max-frame-lateness=0us", .maximum(.frameLateness, limitMicroseconds: 0),
        "max-frame_lateness=0us"
      ),
      ("failed=0", .failedSessions(allowed: 0), "failed=0"),
      ("errors=5", .transportErrors(allowed: 5), "errors=5"),
    ] as [(String, LoadThreshold, String)]
  )
  func parses(_ item: String, threshold: LoadThreshold, canonical: String) throws {
    let parsed = try LoadThreshold(parsing: item)
    #expect(parsed == threshold)
    #expect(parsed.description == canonical)
    #expect(try LoadThreshold(parsing: canonical) == threshold)
  }

  @Test(
    "an item that is not one is refused with one line naming it and why",
    arguments: [
      ("p99-final", #"--fail-on "p99-final": expected NAME=LIMIT"#),
      ("p99-final=", "expected NAME=LIMIT"),
      ("=200ms", "expected NAME=LIMIT"),
      ("latency=200ms", #"unknown limit "latency": use pNN-METRIC, max-METRIC, failed or errors"#),
      ("p99-finals=200ms", #"unknown metric "finals": the metrics are handshake, start_of_speech"#),
      ("max-speed=200ms", #"unknown metric "speed""#),
      ("p99-final=200", #"the limit "200" needs a unit: us, ms or s"#),
      ("p99-final=2min", "needs a unit"),
      ("p99-final=fastms", #""fast" is not a duration in ms"#),
      ("p99-final=-5ms", #""-5" is not a duration in ms"#),
      ("p999-final=200ms", "percentile 999 is not above 0 and at most 100: write p99.9, not p999"),
      ("p0-final=200ms", "percentile 0 is not above 0"),
      ("px-final=200ms", #""x" is not a percentile"#),
      ("failed=-1", #""-1" is not a count of sessions"#),
      ("errors=some", #""some" is not a count of sessions"#),
    ]
  )
  func refused(_ item: String, message: String) {
    #expect {
      try LoadThreshold(parsing: item)
    } throws: { error in
      "\(error)".contains(message) && !"\(error)".contains("\n")
    }
  }

  @Test("--fail-on values may repeat and each hold items separated by commas")
  func list() throws {
    let thresholds = try LoadThreshold.parse(["p99-final=200ms, max-handshake=1s,", "failed=0"])
    #expect(
      thresholds == [
        .percentile(99, .final, limitMicroseconds: 200_000),
        .maximum(.handshake, limitMicroseconds: 1_000_000),
        .failedSessions(allowed: 0),
      ]
    )
    #expect(try LoadThreshold.parse([]).isEmpty)
    #expect(try LoadThreshold.parse([" , "]).isEmpty)
    #expect(throws: LoadThresholdError.self) {
      try LoadThreshold.parse(["p99-final=200ms,p99-final"])
    }
  }

  /// Finals of 1 to 100 ms, 2 failed sessions of which 1 for a transport error, no handshakes.
  static let report: LoadReport = {
    var report = LoadReport()
    for milliseconds in 1...100 {
      report[.final].record(microseconds: UInt64(milliseconds) * 1000)
    }
    report.counters.sessionsFailed = 2
    report.counters.statuses = ["200": 99, "500": 1]
    report.counters.transportErrors = ["UNAVAILABLE": 1]
    return report
  }()

  @Test(
    "a limit holds or says in a sentence what the report exceeds",
    arguments: [
      ("p99-final=99ms", nil),
      ("p99-final=98ms", "final p99 is 99.0 ms, above the 98.0 ms allowed (p99-final=98ms)"),
      ("p50-final=50ms", nil),
      ("p50-final=40ms", "final p50 is 50.0 ms, above the 40.0 ms allowed (p50-final=40ms)"),
      ("max-final=100ms", nil),
      ("max-final=50ms", "final max is 100 ms, above the 50.0 ms allowed (max-final=50ms)"),
      ("p99-handshake=1us", nil),
      ("failed=2", nil),
      ("failed=1", "2 sessions failed, more than the 1 allowed (failed=1)"),
      ("errors=1", nil),
      (
        "errors=0",
        "1 session failed for transport errors (UNAVAILABLE 1), more than the 0 allowed (errors=0)"
      ),
    ] as [(String, String?)]
  )
  func evaluate(_ item: String, violation: String?) throws {
    let threshold = try LoadThreshold(parsing: item)
    #expect(threshold.evaluate(Self.report) == (violation.map { [$0] } ?? []))
  }

  @Test(
    "the exit status: transport errors unless errors= allows them, then exceeded limits",
    arguments: [
      (0, [], 0),
      (0, ["p99-final=200ms"], 0),
      (0, ["p99-final=98ms"], 1),
      (0, ["p99-final=98ms", "failed=1"], 1),
      (1, [], 2),
      (1, ["errors=1"], 0),
      (1, ["errors=1", "p99-final=98ms"], 1),
      (2, ["errors=1", "p99-final=98ms"], 2),
      (2, ["errors=5", "errors=1"], 2),
    ] as [(Int, [String], Int32)]
  )
  func exitStatus(transportErrors: Int, items: [String], status: Int32) throws {
    var report = Self.report
    report.counters.transportErrors = transportErrors == 0 ? [:] : ["UNAVAILABLE": transportErrors]
    let thresholds = try LoadThreshold.parse(items)
    #expect(report.exitStatus(thresholds: thresholds) == status)
  }
}
