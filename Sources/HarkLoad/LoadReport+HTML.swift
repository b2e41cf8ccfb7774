import Foundation
import Histogram

extension LoadReport {
  /// The report as one self-contained page (`hark load --html`): the latency percentile curve of
  /// each metric, statuses, active sessions and p99 latencies second by second, and the counters,
  /// generator figures and parameters as tables.
  ///
  /// The charts are inline SVG; the page has no script and loads nothing, and it is well-formed
  /// XML (XHTML), every value escaped.
  public func html() -> String {
    var body = ""
    body += "<h1>hark load report</h1>\n"
    body += "<p class=\"run\">\(HTMLText.escape(runLine))</p>\n"
    if let note = missingShardsNote {
      body += "<p class=\"note\">\(HTMLText.escape(note))</p>\n"
    }
    if generator.fellBehind {
      body += "<p class=\"warning\">\(HTMLText.escape(Self.fellBehindWarning))</p>\n"
    }

    body += "<h2>Latency</h2>\n"
    body += Self.table(
      header: ["metric", "count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"],
      rows: LoadMetric.allCases.map { metric in
        let histogram = self[metric]
        let cell = { (microseconds: UInt64) in
          DisplayUnits.duration(microseconds, ifAny: histogram.count)
        }
        return [
          metric.title, "\(histogram.count)", cell(histogram.minimum),
          cell(histogram.value(atPercentile: 50)), cell(histogram.value(atPercentile: 90)),
          cell(histogram.value(atPercentile: 99)), cell(histogram.value(atPercentile: 99.9)),
          cell(histogram.value(atPercentile: 99.99)), cell(histogram.maximum),
          cell(UInt64(histogram.mean.rounded())),
        ]
      },
      numeric: true
    )
    for metric in LoadMetric.allCases {
      body += Self.figure(
        percentileChart(metric).svg(id: "latency-\(metric.rawValue)"),
        caption: metric.title
      )
    }

    body += "<h2>Over time</h2>\n"
    body += Self.figure(
      statusChart.svg(id: "statuses"),
      caption: "final statuses and transport errors per second (100 Continue left out)"
    )
    body += Self.figure(activeChart.svg(id: "active"), caption: "active sessions")
    body += Self.figure(
      latencyOverTimeChart.svg(id: "p99-over-time"),
      caption: "p99 of the handshakes and finals of each second"
    )

    body += "<h2>Counters</h2>\n"
    body += Self.table(header: nil, rows: counterFigures.map { [$0.0, $0.1] })
    body += "<h2>Generator</h2>\n"
    body += Self.table(header: nil, rows: generatorFigures.map { [$0.0, $0.1] })
    body += "<h2>Parameters</h2>\n"
    body += Self.table(header: nil, rows: parameterFigures.map { [$0.0, $0.1] })

    let title =
      "hark load report: " + (parameters.server.isEmpty ? "(no server)" : parameters.server)
    return """
      <!DOCTYPE html>
      <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
      <head>
      <meta charset="utf-8"/>
      <meta name="generator" content="hark \(HTMLText.escape(parameters.version))"/>
      <title>\(HTMLText.escape(title))</title>
      <style>
      \(Self.style)
      </style>
      </head>
      <body>
      \(body)</body>
      </html>

      """
  }

  private static let style = """
    body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; }
    h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
    table { border-collapse: collapse; margin: 1em 0; }
    th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }
    table.numeric td + td, table.numeric th + th { text-align: right; }
    figure { margin: 1.5em 0; } figcaption { color: #555; }
    .warning { background: #fff0e0; border-left: 4px solid #D55E00; padding: 0.5em 1em; }
    .note { color: #555; }
    svg { font-size: 11px; } svg .plot { fill: none; stroke: #999; }
    svg .grid { stroke: #eee; } svg .axis { fill: #555; } svg .empty { fill: #999; }
    """

  /// The parameters, as the page's last table.
  private var parameterFigures: [(String, String)] {
    [
      ("server", parameters.server),
      ("load", loadShape),
      ("duration", DisplayUnits.seconds(parameters.duration)),
      ("ramp-up", DisplayUnits.seconds(parameters.rampUp)),
      ("connections", "\(parameters.connections)"),
      ("audio", parameters.audio.joined(separator: ", ")),
      ("speed", "\(parameters.speed)"),
      ("mode", parameters.mode),
      ("result type", parameters.resultType),
      ("seed", "\(parameters.seed)"),
      ("shards", parameters.shards.joined(separator: ", ")),
      ("started at", parameters.startedAt),
      ("hark version", parameters.version),
      ("elapsed", DisplayUnits.seconds(elapsedSeconds)),
    ]
  }

  // MARK: - Charts

  /// The metric's latency by percentile, on the usual HdrHistogram scale: each tenfold step
  /// towards 100% (90%, 99%, 99.9%, …) as wide as the last.
  private func percentileChart(_ metric: LoadMetric) -> SVGLineChart {
    let histogram = self[metric]
    let levels = [0, 90, 99, 99.9, 99.99, 99.999]
    let lastX = Double(levels.count - 1)
    func x(_ percentile: Double) -> Double {
      percentile >= 100 ? lastX : min(log10(100 / (100 - percentile)), lastX)
    }
    var points: [(x: Double, y: Double)] = []
    for step in histogram.histogram.percentiles(ticksPerHalfDistance: 5) {
      let position = x(step.percentileLevelIteratedTo)
      points.append((position, Double(step.value)))
      if position >= lastX { break }
    }
    let yTicks = SVGLineChart.ticks(upTo: Double(points.map(\.y).max() ?? 0))
    return SVGLineChart(
      title: "\(metric.title): latency by percentile",
      x: .init(
        label: "percentile",
        range: 0...lastX,
        ticks: levels.map { (x($0), DisplayUnits.percentile($0) + "%") }
      ),
      y: .init(label: "latency", range: 0...(yTicks.last ?? 1), ticks: Self.durationTicks(yTicks)),
      series: [SVGLineChart.Series(name: metric.rawValue, color: "#0072B2", points: points)]
    )
  }

  /// Final statuses by code and transport errors by name, per second.
  private var statusChart: SVGLineChart {
    let codes = Set(timeline.flatMap(\.counters.statuses.keys)).subtracting(["100"])
      .sorted(by: Self.statusOrder)
    let errors = Set(timeline.flatMap(\.counters.transportErrors.keys)).sorted()
    var colors = SVGLineChart.palette.filter { $0 != "#009E73" }.makeIterator()
    var series: [SVGLineChart.Series] = []
    for code in codes {
      let color = code == "200" ? "#009E73" : (colors.next() ?? "#999999")
      series.append(.init(name: code, color: color, points: perSecond { $0.statuses[code] ?? 0 }))
    }
    for name in errors {
      series.append(
        .init(
          name: name,
          color: colors.next() ?? "#999999",
          points: perSecond { $0.transportErrors[name] ?? 0 }
        )
      )
    }
    let top = series.flatMap(\.points).map(\.y).max() ?? 0
    return timeChart(title: "statuses per second", yLabel: "per second", yTop: top, series: series)
  }

  /// Sessions streaming at the end of each second.
  private var activeChart: SVGLineChart {
    let points = timeline.map { (x: Double($0.second), y: Double($0.active)) }
    return timeChart(
      title: "active sessions",
      yLabel: "sessions",
      yTop: points.map(\.y).max() ?? 0,
      series: [.init(name: "active", color: "#0072B2", points: points)]
    )
  }

  /// The p99 of each second's handshakes and finals.
  private var latencyOverTimeChart: SVGLineChart {
    func p99(_ histogram: KeyPath<LoadTimelinePoint, LatencyHistogram>) -> [(x: Double, y: Double)]
    {
      timeline.filter { $0[keyPath: histogram].count > 0 }.map {
        (Double($0.second), Double($0[keyPath: histogram].value(atPercentile: 99)))
      }
    }
    let series: [SVGLineChart.Series] = [
      .init(name: "handshake p99", color: "#0072B2", points: p99(\.handshake)),
      .init(name: "final p99", color: "#D55E00", points: p99(\.final)),
    ]
    let yTicks = SVGLineChart.ticks(upTo: series.flatMap(\.points).map(\.y).max() ?? 0)
    var chart = timeChart(
      title: "p99 latency per second",
      yLabel: "latency",
      yTop: 0,
      series: series
    )
    chart.y = .init(
      label: "latency",
      range: 0...(yTicks.last ?? 1),
      ticks: Self.durationTicks(yTicks)
    )
    return chart
  }

  /// A chart of values over the run's seconds, from 0 to `yTop` rounded up.
  private func timeChart(
    title: String,
    yLabel: String,
    yTop: Double,
    series: [SVGLineChart.Series]
  ) -> SVGLineChart {
    let lastSecond = Double(timeline.last?.second ?? 0)
    let xTicks = SVGLineChart.ticks(upTo: max(lastSecond, 1), count: 8)
    let yTicks = SVGLineChart.ticks(upTo: yTop, count: 4)
    return SVGLineChart(
      title: title,
      x: .init(
        label: "seconds since the start",
        range: 0...(xTicks.last ?? 1),
        ticks: xTicks.map { ($0, SVGLineChart.number($0)) }
      ),
      y: .init(
        label: yLabel,
        range: 0...(yTicks.last ?? 1),
        ticks: yTicks.map { ($0, SVGLineChart.number($0)) }
      ),
      series: series
    )
  }

  /// A count of each second of the run, 0 for a second missing from the timeline.
  private func perSecond(_ count: (LoadCounters) -> Int) -> [(x: Double, y: Double)] {
    guard let last = timeline.last?.second else { return [] }
    let bySecond = Dictionary(
      timeline.map { ($0.second, $0) },
      uniquingKeysWith: { first, _ in first }
    )
    return (min(0, timeline[0].second)...last).map { second in
      (Double(second), Double(bySecond[second].map { count($0.counters) } ?? 0))
    }
  }

  private static func durationTicks(_ ticks: [Double]) -> [(value: Double, label: String)] {
    ticks.map { tick in
      guard tick > 0 else { return (tick, "0") }
      // Round numbers read better without their zero decimals: "80 ms", not "80.0 ms".
      let parts = DisplayUnits.duration(microseconds: UInt64(tick)).split(separator: " ")
      var number = String(parts[0])
      if number.contains(".") {
        while number.hasSuffix("0") { number.removeLast() }
        if number.hasSuffix(".") { number.removeLast() }
      }
      return (tick, number + " " + parts[1])
    }
  }

  // MARK: - Markup

  private static func figure(_ svg: String, caption: String) -> String {
    "<figure>\n\(svg)\n<figcaption>\(HTMLText.escape(caption))</figcaption>\n</figure>\n"
  }

  private static func table(header: [String]?, rows: [[String]], numeric: Bool = false) -> String {
    var table = numeric ? "<table class=\"numeric\">\n" : "<table>\n"
    if let header {
      table += "<tr>" + header.map { "<th>\(HTMLText.escape($0))</th>" }.joined() + "</tr>\n"
    }
    for row in rows {
      table += "<tr>" + row.map { "<td>\(HTMLText.escape($0))</td>" }.joined() + "</tr>\n"
    }
    return table + "</table>\n"
  }
}
