import Foundation

/// A line chart as inline SVG (well-formed XML, no script, no external resource): axes with
/// ticks and labels, a legend, and a polyline per series.
struct SVGLineChart {
  /// A line of the chart.
  struct Series {
    var name: String
    var color: String
    var points: [(x: Double, y: Double)]
  }

  /// An axis: its label, the values it spans and the labelled ticks.
  struct Axis {
    var label: String
    var range: ClosedRange<Double>
    var ticks: [(value: Double, label: String)]
  }

  /// Read by screen readers and shown as a tooltip.
  var title: String
  var x: Axis
  var y: Axis
  var series: [Series]
  /// Shown in the plot instead of the lines when no series has a point.
  var emptyText = "no values"

  static let width = 720.0
  static let height = 300.0
  private static let left = 80.0
  private static let right = 36.0
  private static let bottom = 48.0

  /// Colors that stay apart for most forms of color blindness (the Okabe–Ito palette).
  static let palette = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
  ]

  /// The chart as an `<svg>` element with `id`.
  func svg(id: String) -> String {
    // The legend goes above the plot, in as many rows as it takes.
    var legend: [(x: Double, y: Double)] = []
    var legendX = Self.left
    var legendY = 12.0
    for line in series {
      let width = 28 + 7 * Double(line.name.count)
      if legendX > Self.left, legendX + width > Self.width - Self.right {
        (legendX, legendY) = (Self.left, legendY + 18)
      }
      legend.append((legendX, legendY))
      legendX += width
    }
    let top = legendY + 24
    let plotWidth = Self.width - Self.left - Self.right
    let plotHeight = Self.height - top - Self.bottom
    func px(_ value: Double) -> Double {
      Self.left + plotWidth * fraction(value, of: x.range)
    }
    func py(_ value: Double) -> Double {
      top + plotHeight * (1 - fraction(value, of: y.range))
    }

    var svg = """
      <svg xmlns="http://www.w3.org/2000/svg" id="\(HTMLText.escape(id))" \
      width="\(Self.number(Self.width))" height="\(Self.number(Self.height))" \
      viewBox="0 0 \(Self.number(Self.width)) \(Self.number(Self.height))" role="img">
      <title>\(HTMLText.escape(title))</title>
      <rect x="\(Self.number(Self.left))" y="\(Self.number(top))" \
      width="\(Self.number(plotWidth))" height="\(Self.number(plotHeight))" class="plot"/>

      """

    for tick in x.ticks {
      let position = Self.number(px(tick.value))
      svg += """
        <line x1="\(position)" y1="\(Self.number(top))" x2="\(position)" \
        y2="\(Self.number(top + plotHeight))" class="grid"/>
        <text x="\(position)" y="\(Self.number(top + plotHeight + 16))" \
        text-anchor="middle">\(HTMLText.escape(tick.label))</text>

        """
    }
    for tick in y.ticks {
      let position = Self.number(py(tick.value))
      svg += """
        <line x1="\(Self.number(Self.left))" y1="\(position)" \
        x2="\(Self.number(Self.left + plotWidth))" y2="\(position)" class="grid"/>
        <text x="\(Self.number(Self.left - 6))" y="\(position)" text-anchor="end" \
        dominant-baseline="middle">\(HTMLText.escape(tick.label))</text>

        """
    }
    svg += """
      <text x="\(Self.number(Self.left + plotWidth / 2))" y="\(Self.number(Self.height - 8))" \
      text-anchor="middle" class="axis">\(HTMLText.escape(x.label))</text>
      <text x="14" y="\(Self.number(top + plotHeight / 2))" text-anchor="middle" class="axis" \
      transform="rotate(-90 14 \(Self.number(top + plotHeight / 2)))">\(HTMLText.escape(y.label))</text>

      """

    if series.allSatisfy({ $0.points.isEmpty }) {
      svg += """
        <text x="\(Self.number(Self.left + plotWidth / 2))" \
        y="\(Self.number(top + plotHeight / 2))" text-anchor="middle" \
        class="empty">\(HTMLText.escape(emptyText))</text>

        """
    }

    for (line, position) in zip(series, legend) {
      let points = line.points.map { "\(Self.number(px($0.x))),\(Self.number(py($0.y)))" }
      if points.count == 1 {
        // A single point makes no line: draw it as a dot.
        let point = line.points[0]
        svg += """
          <circle cx="\(Self.number(px(point.x)))" cy="\(Self.number(py(point.y)))" r="2.5" \
          fill="\(line.color)"/>

          """
      } else if !points.isEmpty {
        svg += """
          <polyline fill="none" stroke="\(line.color)" stroke-width="1.5" \
          points="\(points.joined(separator: " "))"/>

          """
      }
      svg += """
        <rect x="\(Self.number(position.x))" y="\(Self.number(position.y))" width="12" height="12" \
        fill="\(line.color)"/>
        <text x="\(Self.number(position.x + 16))" y="\(Self.number(position.y + 6))" \
        dominant-baseline="middle">\(HTMLText.escape(line.name))</text>

        """
    }
    return svg + "</svg>"
  }

  private func fraction(_ value: Double, of range: ClosedRange<Double>) -> Double {
    let span = range.upperBound - range.lowerBound
    guard span > 0 else { return 0 }
    return min(max((value - range.lowerBound) / span, 0), 1)
  }

  /// A coordinate with at most one decimal.
  static func number(_ value: Double) -> String {
    let text = String(format: "%.1f", value)
    return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
  }

  /// Ticks from 0 to a round number at or above `maximum`, a step of 1, 2 or 5 times a power of
  /// ten apart, about `count` of them.
  static func ticks(upTo maximum: Double, count: Int = 5) -> [Double] {
    guard maximum > 0, maximum.isFinite else { return [0, 1] }
    let rough = maximum / Double(count)
    let power = pow(10, floor(log10(rough)))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? 10 * power
    let top = ceil(maximum / step - 1e-9) * step
    return stride(from: 0, through: top + step / 2, by: step).map { $0 }
  }
}

/// Text for HTML and SVG: escaped, so that no value can become markup.
enum HTMLText {
  /// `text` with `&`, `<`, `>`, `"` and `'` as character references, and characters XML does
  /// not allow (control characters) dropped.
  static func escape(_ text: String) -> String {
    var escaped = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "&": escaped += "&amp;"
      case "<": escaped += "&lt;"
      case ">": escaped += "&gt;"
      case "\"": escaped += "&quot;"
      case "'": escaped += "&#39;"
      case "\t", "\n", "\r": escaped.unicodeScalars.append(scalar)
      case _ where scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value): break
      default: escaped.unicodeScalars.append(scalar)
      }
    }
    return escaped
  }
}
