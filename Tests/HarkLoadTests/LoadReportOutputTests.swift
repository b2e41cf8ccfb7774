import Foundation
import HarkLoad
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

@Suite("load-report-output")
struct LoadReportOutputTests {
  static let report = SyntheticRun(count: 600, seconds: 20).report()
  var report: LoadReport { Self.report }

  // MARK: - Summary

  @Test("the summary has a row per metric, every status and transport error, and the costs")
  func summary() {
    let table = report.summaryTable()
    let lines = table.split(separator: "\n").map(String.init)
    #expect(lines[0].hasPrefix("hark load · localhost:50051 · 600 sessions (closed loop) · 30.0 s"))
    #expect(lines.contains { $0.hasPrefix("latency") && $0.hasSuffix("p99.9      max") })
    for metric in LoadMetric.allCases {
      let row = lines.first { $0.hasPrefix(metric.title) }
      #expect(row?.contains(" \(report[metric].count) ") == true, "\(metric)")
    }
    for code in report.counters.statuses.keys {
      #expect(lines.contains { $0.hasPrefix("status \(code) ") }, "\(code)")
    }
    for name in report.counters.transportErrors.keys {
      #expect(lines.contains { $0.hasPrefix("  \(name) ") }, "\(name)")
    }
    for name in [
      "sessions started", "sessions completed", "sessions failed", "sessions cancelled",
      "transport errors", "audio sent", "audio messages/s", "bytes sent", "bytes received",
      "generator CPU", "CPU per audio message", "peak RSS",
    ] {
      #expect(lines.contains { $0.hasPrefix(name + " ") }, "\(name)")
    }
    #expect(!table.contains("WARNING"))
  }

  @Test("the summary's latencies are in µs, ms or s as the value asks, and - for no values")
  func summaryUnits() {
    var report = LoadReport()
    report[.handshake].record(microseconds: 850)
    report[.final].record(microseconds: 1230)
    report[.session].record(microseconds: 2_500_000)
    let lines = report.summaryTable().split(separator: "\n").map(String.init)
    func row(_ metric: LoadMetric) -> [Substring] {
      lines.first { $0.hasPrefix(metric.title) }!.dropFirst(metric.title.count)
        .split(separator: "  ", omittingEmptySubsequences: true)
        .map { $0.drop { $0 == " " } }
    }
    #expect(row(.handshake) == ["1", "850 µs", "850 µs", "850 µs", "850 µs", "850 µs"])
    #expect(row(.final) == ["1", "1.23 ms", "1.23 ms", "1.23 ms", "1.23 ms", "1.23 ms"])
    #expect(row(.session).last == "2.50 s")
    #expect(row(.end) == ["0", "-", "-", "-", "-", "-"])
  }

  @Test("a generator that fell behind is a warning, and missing shards a note")
  func warnings() throws {
    var behind = report
    behind.generator.fellBehind = true
    behind.parameters.shards = ["1/4", "3/4"]
    let table = behind.summaryTable()
    #expect(table.contains("\nWARNING: the load generator fell behind its schedule"))
    #expect(table.contains("\nNOTE: 2 of 4 shards; missing 2/4, 4/4\n"))
  }

  // MARK: - Live line

  @Test("the live line: active, completed, failed, the last second's rate, p99s so far")
  func liveLine() {
    var totals = LoadCounters()
    totals.sessionsCompleted = 1234
    totals.sessionsFailed = 2
    var lastSecond = LoadTimelinePoint(second: 11)
    lastSecond.counters.sessionsCompleted = 12
    var handshake = LatencyHistogram()
    handshake.record(microseconds: 1230)
    var final = LatencyHistogram()
    final.record(microseconds: 234_000)
    let line = LoadLiveLine.render(
      elapsed: 12.4,
      active: 50,
      totals: totals,
      lastSecond: lastSecond,
      handshakeSoFar: handshake,
      finalSoFar: final
    )
    #expect(
      line
        == "[   12 s] active 50 · completed 1234 · failed 2 · 12.0 sessions/s · "
        + "handshake p99 1.23 ms · final p99 234 ms"
    )
    let first = LoadLiveLine.render(
      elapsed: 0,
      active: 0,
      totals: LoadCounters(),
      lastSecond: nil,
      handshakeSoFar: LatencyHistogram(),
      finalSoFar: LatencyHistogram()
    )
    #expect(
      first == "[    0 s] active 0 · completed 0 · failed 0 · 0.0 sessions/s · "
        + "handshake p99 - · final p99 -"
    )
  }

  // MARK: - HTML

  /// The elements of a page, read by an XML parser (which fails on markup that is not
  /// well-formed).
  private final class PageReader: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var ids: [String] = []
    var attributes: Set<String> = []
    var text = ""

    func parser(
      _ parser: XMLParser,
      didStartElement elementName: String,
      namespaceURI: String?,
      qualifiedName: String?,
      attributes: [String: String]
    ) {
      elements.append(elementName)
      if let id = attributes["id"] { ids.append(id) }
      self.attributes.formUnion(attributes.keys)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
      text += string
    }
  }

  private func read(_ html: String) throws -> PageReader {
    let parser = XMLParser(data: Data(html.utf8))
    let reader = PageReader()
    parser.delegate = reader
    let parsed = parser.parse()
    #expect(parsed, "\(parser.parserError.map { "\($0)" } ?? "")")
    return reader
  }

  @Test("the page is well-formed XML with a chart per metric and over time, and no script")
  func html() throws {
    let html = report.html()
    #expect(html.hasPrefix("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\""))
    let page = try read(html)
    #expect(page.elements.first == "html")
    #expect(page.elements.filter { $0 == "svg" }.count == LoadMetric.allCases.count + 3)
    #expect(
      Set(page.ids)
        == Set(
          LoadMetric.allCases.map { "latency-\($0.rawValue)" } + [
            "statuses", "active", "p99-over-time",
          ]
        )
    )
    #expect(!page.elements.contains("script"))
    #expect(page.attributes.isDisjoint(with: ["src", "href", "onload", "onclick", "style"]))
    #expect(!html.contains("<script"))
    #expect(!html.contains("url("))
    for metric in LoadMetric.allCases {
      #expect(page.text.contains(metric.title), "\(metric)")
    }
    #expect(page.elements.filter { $0 == "polyline" }.count >= LoadMetric.allCases.count + 3)
    for code in report.counters.statuses.keys {
      #expect(page.text.contains("status \(code)"))
    }
  }

  @Test("every text of the page is escaped")
  func htmlEscapes() throws {
    var report = report
    report.parameters.server = "<script>alert('x')</script> & \"co\""
    report.parameters.audio = ["]]><b>", "a\u{1}b"]
    report.counters.transportErrors["<i>"] = 1
    report.timeline[3].counters.transportErrors["<i>"] = 1
    let html = report.html()
    let page = try read(html)
    #expect(!page.elements.contains("script"))
    #expect(!page.elements.contains("b"))
    #expect(!page.elements.contains("i"))
    #expect(page.text.contains("<script>alert('x')</script> & \"co\""))
    #expect(page.text.contains("]]><b>"))
  }

  @Test("the page of a report with no values is well-formed too")
  func emptyHTML() throws {
    let page = try read(LoadReport().html())
    #expect(page.elements.filter { $0 == "svg" }.count == LoadMetric.allCases.count + 3)
    #expect(page.text.contains("no values"))
  }
}
