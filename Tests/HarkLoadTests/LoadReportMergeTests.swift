import HarkLoad
import Testing

@Suite("load-report-merge")
struct LoadReportMergeTests {
  let run = SyntheticRun(count: 600, seconds: 10)

  /// What merging shards must equal: the single run's figures, with the shards' parameters.
  private func expectSameMeasurements(_ merged: LoadReport, _ single: LoadReport) {
    for metric in LoadMetric.allCases {
      #expect(merged[metric] == single[metric], "\(metric)")
      for percentile in [50, 90, 99, 99.9, 100] {
        #expect(
          merged[metric].value(atPercentile: percentile)
            == single[metric].value(atPercentile: percentile)
        )
      }
    }
    #expect(merged.counters == single.counters)
    #expect(merged.timeline == single.timeline)
    #expect(merged.generator == single.generator)
    #expect(merged.elapsedSeconds == single.elapsedSeconds)
    #expect(merged.parameters.sessions == single.parameters.sessions)
  }

  @Test("two shards of the same sessions merge to exactly the single run's report")
  func twoShards() throws {
    let single = run.report()
    let first = run.report(shard: "1/2") { $0 % 2 == 0 }
    let second = run.report(shard: "2/2") { $0 % 2 == 1 }
    #expect(first[.final] != single[.final])

    let merged = try LoadReport.merged([first, second])
    expectSameMeasurements(merged, single)
    #expect(merged.parameters.shards == ["1/2", "2/2"])
  }

  @Test("shards merged from their JSON files equal the single run, in any order")
  func shardsThroughJSON() throws {
    let single = run.report()
    let shards = (1...3).map { shard in
      run.report(shard: "\(shard)/3") { $0 % 3 == shard - 1 }.jsonText()
    }
    let read = try shards.map { try LoadReport(jsonText: $0) }
    let merged = try LoadReport.merged(read)
    expectSameMeasurements(merged, single)
    #expect(merged.parameters.shards == ["1/3", "2/3", "3/3"])
    #expect(try LoadReport.merged(read.reversed()) == merged)
    #expect(try LoadReport(jsonText: merged.jsonText()) == merged)
  }

  @Test("a merged report merges again with a further shard")
  func mergeOfMerged() throws {
    let single = run.report()
    let shards = (1...3).map { shard in run.report(shard: "\(shard)/3") { $0 % 3 == shard - 1 } }
    let partial = try LoadReport.merged(Array(shards[0...1]))
    let merged = try LoadReport.merged([partial, shards[2]])
    expectSameMeasurements(merged, single)
    #expect(merged.parameters.shards == ["1/3", "2/3", "3/3"])
  }

  @Test("merging one report returns it unchanged")
  func one() throws {
    let report = run.report(shard: "2/4") { $0 < 100 }
    #expect(try LoadReport.merged([report]) == report)
  }

  @Test("timelines add up second by second, also where only one shard has a second")
  func timelines() throws {
    var early = LoadReport()
    early.parameters.shards = ["1/2"]
    var late = early
    late.parameters.shards = ["2/2"]
    for (second, active) in [(0, 3), (1, 4)] {
      var point = LoadTimelinePoint(second: second)
      point.active = active
      point.handshake.record(microseconds: 1000)
      early.timeline.append(point)
    }
    for (second, active) in [(1, 5), (2, 6)] {
      var point = LoadTimelinePoint(second: second)
      point.active = active
      point.final.record(microseconds: 2000)
      late.timeline.append(point)
    }
    let merged = try LoadReport.merged([early, late])
    #expect(merged.timeline.map(\.second) == [0, 1, 2])
    #expect(merged.timeline.map(\.active) == [3, 9, 6])
    #expect(merged.timeline.map(\.handshake.count) == [1, 1, 0])
    #expect(merged.timeline.map(\.final.count) == [0, 1, 1])
  }

  @Test("parameters: loads and connections add up, the longest duration counts, any fell behind")
  func parameters() throws {
    var first = LoadReport()
    first.parameters.shards = ["1/2"]
    first.parameters.rate = 10
    first.parameters.maxSessions = 100
    first.parameters.connections = 2
    first.parameters.duration = 60
    first.parameters.startedAt = "2025-01-02T03:04:06Z"
    first.parameters.version = "0.1.0"
    first.generator.peakResidentBytes = 5
    first.elapsedSeconds = 70
    var second = first
    second.parameters.shards = ["2/2"]
    second.parameters.duration = 61
    second.parameters.startedAt = "2025-01-02T03:04:05Z"
    second.parameters.version = "0.2.0"
    second.generator.peakResidentBytes = 7
    second.generator.fellBehind = true
    second.elapsedSeconds = 69

    let merged = try LoadReport.merged([second, first])
    #expect(merged.parameters.shards == ["1/2", "2/2"])
    #expect(merged.parameters.rate == 20)
    #expect(merged.parameters.maxSessions == 200)
    #expect(merged.parameters.sessions == nil)
    #expect(merged.parameters.connections == 4)
    #expect(merged.parameters.duration == 61)
    #expect(merged.parameters.startedAt == "2025-01-02T03:04:05Z")
    #expect(merged.parameters.version == "0.2.0, 0.1.0")
    #expect(merged.generator.peakResidentBytes == 7)
    #expect(merged.generator.fellBehind)
    // The first shard started a second after the second one and ran 70 s.
    #expect(merged.elapsedSeconds == 71)
  }

  @Test("timelines are placed by each shard's start time, when every shard has one")
  func timelinesByStartTime() throws {
    func shard(_ shard: String, startedAt: String, seconds: [Int]) -> LoadReport {
      var report = LoadReport()
      report.parameters.shards = [shard]
      report.parameters.startedAt = startedAt
      report.elapsedSeconds = Double(seconds.count)
      for second in seconds {
        var point = LoadTimelinePoint(second: second)
        point.active = 1
        report.timeline.append(point)
      }
      return report
    }
    // The second pod started 3 s after the first.
    let first = shard("1/2", startedAt: "2025-01-02T03:04:05Z", seconds: [0, 1, 2, 3])
    let second = shard("2/2", startedAt: "2025-01-02T03:04:08Z", seconds: [0, 1, 2, 3])
    let merged = try LoadReport.merged([second, first])
    #expect(merged.timeline.map(\.second) == [0, 1, 2, 3, 4, 5, 6])
    #expect(merged.timeline.map(\.active) == [1, 1, 1, 2, 1, 1, 1])
    #expect(merged.elapsedSeconds == 7)
    #expect(merged.parameters.startedAt == "2025-01-02T03:04:05Z")

    // A shard without a start time cannot be placed: every shard counts from its own start.
    let unplaced = shard("2/2", startedAt: "", seconds: [0, 1, 2, 3])
    let together = try LoadReport.merged([first, unplaced])
    #expect(together.timeline.map(\.second) == [0, 1, 2, 3])
    #expect(together.timeline.map(\.active) == [2, 2, 2, 2])
  }

  @Test(
    "runs that measured different things are not merged, and the error names what differs",
    arguments: ["server", "mode", "result type", "speed", "audio"]
  )
  func incompatible(_ field: String) {
    let first = run.report(shard: "1/2") { $0 % 2 == 0 }
    var second = run.report(shard: "2/2") { $0 % 2 == 1 }
    switch field {
    case "server": second.parameters.server = "other:50051"
    case "mode": second.parameters.mode = "SINGLE"
    case "result type": second.parameters.resultType = "PARTIAL"
    case "speed": second.parameters.speed = 2
    default: second.parameters.audio = ["Samples/other.wav"]
    }
    #expect {
      try LoadReport.merged([first, second])
    } throws: { error in
      "\(error)".hasPrefix("cannot merge runs of different \(field): ")
    }
  }

  @Test("a shard is not merged twice")
  func duplicateShard() {
    let first = run.report(shard: "1/2") { $0 % 2 == 0 }
    #expect(throws: LoadReportError("cannot merge shard 1/2 twice: two reports include it")) {
      try LoadReport.merged([first, first])
    }
  }

  @Test("there must be a report to merge")
  func none() {
    #expect(throws: LoadReportError("there are no reports to merge")) {
      try LoadReport.merged([])
    }
  }
}
