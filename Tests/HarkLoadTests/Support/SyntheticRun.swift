import HarkAudio
import HarkLoad

/// Sessions with made-up measurements, the same on every run, and the report a load run that
/// made them would write: for testing reports without running load.
struct SyntheticRun {
  /// One session's measurements, in microseconds, and how it ended.
  struct Session {
    var second: Int
    var handshake: UInt64
    var startOfSpeech: UInt64
    var firstPartial: UInt64
    var final: UInt64
    var end: UInt64
    var duration: UInt64
    var frameLateness: [UInt64]
    /// The final status, or nil when the session failed for `transportError`.
    var status: String?
    var transportError: String?
  }

  var sessions: [Session]

  /// `count` sessions over `seconds` seconds: mostly 200s, some 404s and 500s, a few transport
  /// errors, latencies with long tails.
  init(count: Int, seconds: Int, seed: UInt64 = 7) {
    var random = SplitMix64(seed: seed)
    func latency(_ range: ClosedRange<UInt64>, tail: UInt64) -> UInt64 {
      let value = UInt64.random(in: range, using: &random)
      return UInt64.random(in: 0..<100, using: &random) == 0 ? value * tail : value
    }
    sessions = (0..<count).map { index in
      let roll = UInt64.random(in: 0..<100, using: &random)
      let status: String? =
        switch roll {
        case 0..<3: nil
        case 3..<8: "404"
        case 8..<10: "500"
        default: "200"
        }
      return Session(
        second: index * seconds / count,
        handshake: latency(300...9_000, tail: 20),
        startOfSpeech: latency(5_000...90_000, tail: 5),
        firstPartial: latency(50_000...300_000, tail: 4),
        final: latency(20_000...250_000, tail: 8),
        end: latency(1_000...40_000, tail: 10),
        duration: latency(2_000_000...9_000_000, tail: 2),
        frameLateness: (0..<5).map { _ in latency(1...3_000, tail: 30) },
        status: status,
        transportError: status == nil ? (roll == 0 ? "UNAVAILABLE" : "DEADLINE_EXCEEDED") : nil
      )
    }
  }

  /// The report of the sessions whose index `include` accepts, as shard `shard`.
  func report(shard: String = "1/1", include: (Int) -> Bool = { _ in true }) -> LoadReport {
    var report = LoadReport()
    report.parameters.server = "localhost:50051"
    report.parameters.sessions = 0
    report.parameters.duration = 30
    report.parameters.audio = ["Samples/digits-8k.wav"]
    report.parameters.seed = 42
    report.parameters.shards = [shard]
    report.parameters.startedAt = "2025-01-02T03:04:05Z"
    report.parameters.version = "0.1.0"
    var timeline: [Int: LoadTimelinePoint] = [:]
    for (index, session) in sessions.enumerated() where include(index) {
      report.parameters.sessions! += 1
      var counters = LoadCounters()
      counters.sessionsStarted = 1
      counters.statuses["100"] = 1
      counters.audioMessages = 50
      counters.audioBytes = 50 * 325
      counters.audioMilliseconds = 1000
      counters.bytesSent = 50 * 330 + 90
      counters.bytesReceived = 400
      counters.lateFrames = session.frameLateness.filter { $0 > 20_000 }.count
      if let status = session.status {
        counters.sessionsCompleted = 1
        counters.statuses[status, default: 0] += 1
        counters.sessionsFailed = status == "200" ? 0 : 1
        counters.partialResults = status == "200" ? 3 : 0
        counters.finalResults = status == "200" ? 1 : 0
      } else {
        counters.sessionsFailed = 1
        counters.transportErrors[session.transportError!] = 1
      }
      report.counters.add(counters)

      report[.handshake].record(microseconds: session.handshake)
      report[.startOfSpeech].record(microseconds: session.startOfSpeech)
      report[.firstPartial].record(microseconds: session.firstPartial)
      report[.end].record(microseconds: session.end)
      report[.session].record(microseconds: session.duration)
      for lateness in session.frameLateness {
        report[.frameLateness].record(microseconds: lateness)
      }
      var point = timeline[session.second] ?? LoadTimelinePoint(second: session.second)
      point.active += 1
      point.counters.add(counters)
      point.handshake.record(microseconds: session.handshake)
      if session.status == "200" {
        report[.final].record(microseconds: session.final)
        point.final.record(microseconds: session.final)
      }
      timeline[session.second] = point
    }
    report.timeline = timeline.values.sorted { $0.second < $1.second }
    report.generator.cpuSeconds = Double(report.counters.sessionsStarted) / 64
    report.generator.peakResidentBytes = 40_000_000
    report.elapsedSeconds = 31.5
    return report
  }
}
