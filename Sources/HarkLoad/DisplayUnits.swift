import Foundation
import Histogram

/// Numbers in the units people read: latencies in µs, ms or s and sizes in B, kB, MB or GB, each
/// chosen per value and shown to three significant digits.
enum DisplayUnits {
  /// A latency: `850 µs`, `1.23 ms`, `45.6 ms`, `2.50 s`.
  static func duration(microseconds: UInt64) -> String {
    if microseconds < 1000 { return "\(microseconds) µs" }
    if microseconds < 1_000_000 { return significant(Double(microseconds) / 1e3) + " ms" }
    return significant(Double(microseconds) / 1e6) + " s"
  }

  /// A latency for a table cell: `-` when the histogram is empty.
  static func duration(_ microseconds: UInt64, ifAny count: UInt64) -> String {
    count == 0 ? "-" : duration(microseconds: microseconds)
  }

  /// A size: `512 B`, `12.3 kB`, `4.50 MB` (powers of 1000).
  static func bytes(_ bytes: Int) -> String {
    let units = ["kB", "MB", "GB", "TB"]
    if bytes < 1000 { return "\(bytes) B" }
    var value = Double(bytes) / 1000
    for unit in units.dropLast() {
      if value.rounded() < 1000 { return significant(value) + " " + unit }
      value /= 1000
    }
    return significant(value) + " " + units.last!
  }

  /// Seconds of wall-clock or CPU time: `72.4 s`.
  static func seconds(_ seconds: Double) -> String {
    significant(seconds) + " s"
  }

  /// A rate or ratio with one decimal: `1234.5`.
  static func decimal(_ value: Double) -> String {
    String(format: "%.1f", value.isFinite ? value : 0)
  }

  /// `value` to three significant digits (more for values of 1000 and above, which keep their
  /// integer digits).
  static func significant(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    let magnitude = abs(value)
    // Round first so that 9.996 shows as 10.0, not 10.00.
    if (magnitude * 100).rounded() < 1000 { return String(format: "%.2f", value) }
    if (magnitude * 10).rounded() < 1000 { return String(format: "%.1f", value) }
    return String(format: "%.0f", value)
  }

  /// A percentile: `50`, `99.9`, `99.99`.
  static func percentile(_ percentile: Double) -> String {
    var text = String(format: "%.5f", percentile)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
  }
}

extension LatencyHistogram {
  /// The lowest recorded value (the lowest of its bucket), in microseconds; 0 when empty.
  public var minimum: UInt64 { count == 0 ? 0 : histogram.minNonZero }

  /// The highest recorded value (the highest of its bucket), in microseconds; 0 when empty.
  public var maximum: UInt64 { count == 0 ? 0 : histogram.max }

  /// The mean, in microseconds; 0 when empty.
  public var mean: Double { histogram.mean }
}
