import Foundation
import HarkLoad
import Testing

@Suite("load-report-json")
struct LoadReportJSONTests {
  static let report = SyntheticRun(count: 400, seconds: 10).report()
  var report: LoadReport { Self.report }

  @Test("a report read back from its JSON is the same report, and writes the same text")
  func roundTrip() throws {
    let text = report.jsonText()
    let read = try LoadReport(jsonText: text)
    #expect(read == report)
    #expect(read.jsonText() == text)
  }

  @Test("skipped open-loop arrivals are kept in the JSON, read as 0 from older reports")
  func sessionsSkipped() throws {
    var open = report
    open.parameters.sessions = nil
    open.parameters.rate = 20
    open.counters.sessionsSkipped = 7
    let text = open.jsonText()
    #expect(text.contains(#""sessions_skipped": 7"#))
    #expect(try LoadReport(jsonText: text).counters.sessionsSkipped == 7)
    #expect(open.summaryTable().contains("sessions skipped"))
    let older = text.replacingOccurrences(of: #""sessions_skipped": 7,"#, with: "")
    #expect(older != text)
    #expect(try LoadReport(jsonText: older).counters.sessionsSkipped == 0)
  }

  @Test("refusals, reconnects and messages are kept in the JSON, read as none from older reports")
  func refusalsAndMessages() throws {
    var run = report
    run.counters.sessionsRefused = 12
    run.counters.reconnects = 2
    run.counters.count(message: "409 all 4 recognizers are busy", 12)
    run.counters.count(message: "UNAVAILABLE connection error: connection reset by peer", 3)
    let text = run.jsonText()
    #expect(text.contains(#""sessions_refused": 12"#))
    #expect(text.contains(#""reconnects": 2"#))
    let read = try LoadReport(jsonText: text)
    #expect(read == run)
    let summary = run.summaryTable()
    #expect(summary.contains("sessions refused"))
    #expect(summary.contains("409 all 4 recognizers are busy"))
    var older = text
    for key in ["sessions_refused", "reconnects"] {
      older = older.replacingOccurrences(
        of: #""\#(key)": [0-9]+,"#,
        with: "",
        options: .regularExpression
      )
    }
    older = older.replacingOccurrences(
      of: #""messages": \{[^}]*\},"#,
      with: "",
      options: .regularExpression
    )
    #expect(!older.contains("sessions_refused") && !older.contains("\"messages\""))
    let counters = try LoadReport(jsonText: older).counters
    #expect(counters.sessionsRefused == 0 && counters.reconnects == 0 && counters.messages.isEmpty)
  }

  @Test("a peer that words every refusal differently fills at most 32 kinds of message")
  func messageKinds() {
    var counters = LoadCounters()
    for index in 0..<100 { counters.count(message: "409 busy #\(index)") }
    #expect(counters.messages.count == LoadCounters.maxMessageKinds + 1)
    #expect(counters.messages[LoadCounters.otherMessages] == 100 - LoadCounters.maxMessageKinds)
    var merged = LoadCounters()
    merged.add(counters)
    merged.add(counters)
    #expect(merged.messages.values.reduce(0, +) == 200)
    #expect(merged.messages.count == LoadCounters.maxMessageKinds + 1)
  }

  @Test("an empty report round-trips")
  func emptyRoundTrip() throws {
    let empty = LoadReport()
    #expect(try LoadReport(jsonText: empty.jsonText()) == empty)
  }

  @Test("the JSON is versioned, snake_case, and holds percentiles and buckets for every metric")
  func schema() throws {
    let text = report.jsonText()
    let object = try #require(
      try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    )
    #expect(object["format"] as? String == "hark-load-report/1")
    #expect(
      Set(object.keys)
        == [
          "format", "parameters", "counters", "generator", "elapsed_seconds", "histograms",
          "timeline",
        ]
    )
    let counters = try #require(object["counters"] as? [String: Any])
    #expect(counters["sessions_started"] as? Int == 400)
    #expect((counters["statuses"] as? [String: Int])?["200"] == report.counters.statuses["200"])
    #expect(counters["transport_errors"] is [String: Int])
    let parameters = try #require(object["parameters"] as? [String: Any])
    #expect(parameters["shards"] as? [String] == ["1/1"])
    #expect(parameters["result_type"] as? String == "FINAL")
    #expect(parameters["rate"] == nil)

    let histograms = try #require(object["histograms"] as? [String: [String: Any]])
    #expect(Set(histograms.keys) == Set(LoadMetric.allCases.map(\.rawValue)))
    let final = try #require(histograms["final"])
    #expect(
      Set(final.keys) == ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "max", "buckets"]
    )
    #expect(final["p99"] as? UInt64 == report[.final].value(atPercentile: 99))
    #expect(final["count"] as? UInt64 == report[.final].count)
    let buckets = try #require(final["buckets"] as? [[UInt64]])
    #expect(buckets == report[.final].buckets)

    let timeline = try #require(object["timeline"] as? [[String: Any]])
    #expect(timeline.count == 10)
    #expect(
      Set(timeline[0].keys) == [
        "second", "active", "counters", "handshake_buckets", "final_buckets",
      ]
    )
  }

  @Test("a histogram bucket is one line, and keys are sorted")
  func layout() {
    let text = report.jsonText()
    let lines = text.split(separator: "\n")
    #expect(lines.first == "{")
    let bucket = report[.final].buckets[0]
    #expect(lines.contains { $0 == "        [\(bucket[0]), \(bucket[1])]," })
    let topKeys = lines.filter { $0.hasPrefix("  \"") }.map { $0.split(separator: "\"")[1] }
    #expect(topKeys == topKeys.sorted())
  }

  @Test("the seed, a 64-bit number, is kept exactly")
  func seed() throws {
    var large = report
    large.parameters.seed = .max - 1
    #expect(try LoadReport(jsonText: large.jsonText()).parameters.seed == .max - 1)
  }

  @Test("a figure that is not a finite number is written as a string, and read back")
  func nonFinite() throws {
    var odd = LoadReport()
    odd.elapsedSeconds = .infinity
    odd.generator.cpuSeconds = .nan
    let text = odd.jsonText()
    #expect(text.contains("\"elapsed_seconds\": \"Infinity\""))
    let read = try LoadReport(jsonText: text)
    #expect(read.elapsedSeconds == .infinity)
    #expect(read.generator.cpuSeconds.isNaN)
  }

  @Test(
    "text that is not a report of this format is refused with one line saying why",
    arguments: [
      ("not json", "not a hark load report: not JSON"),
      ("[1, 2]", "not a hark load report"),
      ("{}", "not a hark load report: it has no \"format\" member"),
      (#"{"format": "k6-summary/1"}"#, #"format "k6-summary/1", expected "hark-load-report/1""#),
      (#"{"format": "hark-load-report/2"}"#, "\"hark-load-report/2\" is not supported"),
      (#"{"format": "hark-load-report/1"}"#, "invalid hark load report: parameters is missing"),
    ]
  )
  func refused(_ text: String, message: String) {
    #expect {
      try LoadReport(jsonText: text)
    } throws: { error in
      let description = "\(error)"
      return description.contains(message) && !description.contains("\n")
    }
  }

  @Test(
    "a report whose histograms or timeline do not hold together is refused",
    arguments: [
      ("\"count\": 1,", "\"count\": 2,", "histograms.final.count is 2 but its buckets hold 1"),
      (
        "[1000, 1]", "[1000, 0]",
        "histograms.final: a histogram bucket is not a [value, count] pair"
      ),
      ("\"second\": 1", "\"second\": 0", "timeline[1] is second 0, after 0"),
      ("\"end\"", "\"latest\"", "histograms.latest is not a metric"),
      (
        "\"sessions_started\": 2", "\"sessions_started\": \"2\"", "counters.sessions_started is not"
      ),
    ]
  )
  func inconsistent(_ original: String, _ replacement: String, message: String) throws {
    var report = LoadReport()
    report[.final].record(microseconds: 1000)
    report.counters.sessionsStarted = 2
    report.timeline = [LoadTimelinePoint(second: 0), LoadTimelinePoint(second: 1)]
    var text = report.jsonText()
    let range = try #require(text.range(of: original))
    text.replaceSubrange(range, with: replacement)
    #expect {
      try LoadReport(jsonText: text)
    } throws: { error in
      "\(error)".contains(message) && !"\(error)".contains("\n")
    }
  }
}
