import Histogram

/// A limit that `--fail-on` sets on a run, for CI: the run fails when the report exceeds it.
///
/// Written `NAME=LIMIT`:
///
/// | item | holds when |
/// | --- | --- |
/// | `p99-final=200ms`, `p99.9-handshake=20ms`, `p50-session=2s` | the metric's percentile is at most the limit |
/// | `max-frame_lateness=50ms` | the metric's largest value is at most the limit |
/// | `failed=10` | at most 10 sessions failed (a status ≥ 300 or a transport error) |
/// | `errors=5` | at most 5 sessions failed for a transport error (without it: none may) |
///
/// Metrics are `handshake`, `start_of_speech`, `first_partial`, `final`, `end`, `session` and
/// `frame_lateness` (`-` may stand for `_`); limits take `us` (or `µs`), `ms` or `s`. Percentiles
/// are compared as the histograms hold them, to three significant digits: a value in the same
/// histogram bucket as the limit holds.
public enum LoadThreshold: Sendable, Hashable, CustomStringConvertible {
  /// The metric's value at the percentile (above 0, at most 100) is at most the limit, in µs.
  case percentile(Double, LoadMetric, limitMicroseconds: UInt64)
  /// The metric's largest value is at most the limit, in µs.
  case maximum(LoadMetric, limitMicroseconds: UInt64)
  /// At most this many sessions failed (`sessionsFailed`).
  case failedSessions(allowed: Int)
  /// At most this many sessions failed for a transport error.
  case transportErrors(allowed: Int)

  /// Parses one `NAME=LIMIT` item.
  ///
  /// - Throws: `LoadThresholdError`, one line naming the item and what is wrong with it.
  public init(parsing item: String) throws(LoadThresholdError) {
    let text = item.trimmingSpaces
    func failure(_ reason: String) -> LoadThresholdError {
      LoadThresholdError("--fail-on \"\(text)\": \(reason)")
    }
    let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
      throw failure("expected NAME=LIMIT, such as p99-final=200ms, max-handshake=1s or failed=0")
    }
    let name = parts[0].lowercased()
    let limit = String(parts[1])

    switch name {
    case "failed":
      self = .failedSessions(allowed: try Self.count(limit, or: failure))
    case "errors":
      self = .transportErrors(allowed: try Self.count(limit, or: failure))
    case _ where name.hasPrefix("max-"):
      let metric = try Self.metric(name.dropFirst(4), or: failure)
      self = .maximum(metric, limitMicroseconds: try Self.microseconds(limit, or: failure))
    case _ where name.hasPrefix("p") && name.contains("-"):
      let dash = name.firstIndex(of: "-")!
      let number = name[name.index(after: name.startIndex)..<dash]
      guard let percentile = Double(number), percentile.isFinite else {
        throw failure("\"\(number)\" is not a percentile: write p50, p99 or p99.9")
      }
      guard percentile > 0, percentile <= 100 else {
        throw failure("percentile \(number) is not above 0 and at most 100: write p99.9, not p999")
      }
      let metric = try Self.metric(name[name.index(after: dash)...], or: failure)
      self = .percentile(
        percentile,
        metric,
        limitMicroseconds: try Self.microseconds(limit, or: failure)
      )
    default:
      throw failure(
        "unknown limit \"\(name)\": use pNN-METRIC, max-METRIC, failed or errors"
      )
    }
  }

  /// The item as `--fail-on` takes it: `p99-final=200ms`.
  public var description: String {
    switch self {
    case .percentile(let percentile, let metric, let limit):
      "p\(DisplayUnits.percentile(percentile))-\(metric.rawValue)=\(Self.text(microseconds: limit))"
    case .maximum(let metric, let limit):
      "max-\(metric.rawValue)=\(Self.text(microseconds: limit))"
    case .failedSessions(let allowed):
      "failed=\(allowed)"
    case .transportErrors(let allowed):
      "errors=\(allowed)"
    }
  }

  /// Parses the values of `--fail-on`, which may repeat and each hold items separated by commas
  /// (empty items are skipped).
  ///
  /// - Throws: `LoadThresholdError` for the first item that is not one.
  public static func parse(_ arguments: [String]) throws(LoadThresholdError) -> [LoadThreshold] {
    var thresholds: [LoadThreshold] = []
    for argument in arguments {
      for item in argument.split(separator: ",") where !item.trimmingSpaces.isEmpty {
        thresholds.append(try LoadThreshold(parsing: String(item)))
      }
    }
    return thresholds
  }

  /// What `report` exceeds of this limit, as a sentence; empty when it holds.
  public func evaluate(_ report: LoadReport) -> [String] {
    violation(in: report).map { [$0] } ?? []
  }

  private func violation(in report: LoadReport) -> String? {
    switch self {
    case .percentile(let percentile, let metric, let limit):
      let histogram = report[metric]
      let value = histogram.value(atPercentile: percentile)
      guard Self.exceeds(value, limit, in: histogram) else { return nil }
      return "\(metric.spokenName) p\(DisplayUnits.percentile(percentile)) is "
        + "\(DisplayUnits.duration(microseconds: value)), above the "
        + "\(DisplayUnits.duration(microseconds: limit)) allowed (\(self))"
    case .maximum(let metric, let limit):
      let histogram = report[metric]
      let value = histogram.maximum
      guard Self.exceeds(value, limit, in: histogram) else { return nil }
      return "\(metric.spokenName) max is \(DisplayUnits.duration(microseconds: value)), above the "
        + "\(DisplayUnits.duration(microseconds: limit)) allowed (\(self))"
    case .failedSessions(let allowed):
      let failed = report.counters.sessionsFailed
      guard failed > allowed else { return nil }
      return "\(Self.sessions(failed)) failed, more than the \(allowed) allowed (\(self))"
    case .transportErrors(let allowed):
      let errors = report.counters.transportErrors
      let total = report.counters.transportErrorCount
      guard total > allowed else { return nil }
      let names = errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
      return
        "\(Self.sessions(total)) failed for transport errors (\(names.joined(separator: ", "))), "
        + "more than the \(allowed) allowed (\(self))"
    }
  }

  /// Whether `value` is above `limit` and not in the same bucket of `histogram` (which holds
  /// three significant digits, so the limit itself may read as a little more).
  private static func exceeds(
    _ value: UInt64,
    _ limit: UInt64,
    in histogram: LatencyHistogram
  ) -> Bool {
    value > limit && !histogram.histogram.valuesAreEquivalent(value, limit)
  }

  /// "1 session", "2 sessions".
  private static func sessions(_ count: Int) -> String {
    count == 1 ? "1 session" : "\(count) sessions"
  }

  private static func count(
    _ text: String,
    or failure: (String) -> LoadThresholdError
  ) throws(LoadThresholdError) -> Int {
    guard let count = Int(text), count >= 0 else {
      throw failure("\"\(text)\" is not a count of sessions (0 or more)")
    }
    return count
  }

  private static func metric(
    _ name: Substring,
    or failure: (String) -> LoadThresholdError
  ) throws(LoadThresholdError) -> LoadMetric {
    guard let metric = LoadMetric(rawValue: name.replacingDashes) else {
      let names = LoadMetric.allCases.map(\.rawValue).joined(separator: ", ")
      throw failure("unknown metric \"\(name)\": the metrics are \(names)")
    }
    return metric
  }

  private static func microseconds(
    _ text: String,
    or failure: (String) -> LoadThresholdError
  ) throws(LoadThresholdError) -> UInt64 {
    let units: [(suffix: String, microseconds: Double)] = [
      ("us", 1), ("µs", 1), ("μs", 1), ("ms", 1000), ("s", 1_000_000),
    ]
    guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else {
      throw failure("the limit \"\(text)\" needs a unit: us, ms or s, as in 200ms")
    }
    let number = text.dropLast(unit.suffix.count)
    guard let value = Double(number), value.isFinite, value >= 0, value * unit.microseconds < 1e15
    else {
      throw failure("\"\(number)\" is not a duration in \(unit.suffix)")
    }
    return UInt64((value * unit.microseconds).rounded())
  }

  /// `limit` in the largest unit that keeps it whole: `2s`, `200ms`, `1500us`.
  private static func text(microseconds: UInt64) -> String {
    if microseconds > 0, microseconds % 1_000_000 == 0 { return "\(microseconds / 1_000_000)s" }
    if microseconds > 0, microseconds % 1000 == 0 { return "\(microseconds / 1000)ms" }
    return "\(microseconds)us"
  }
}

/// Why a `--fail-on` item cannot be read.
public struct LoadThresholdError: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
  public init(_ message: String) { self.message = message }
}

extension LoadReport {
  /// A run passed: no session failed for a transport error, every `--fail-on` limit held.
  public static let exitPassed: Int32 = 0
  /// A `--fail-on` limit (other than `errors=`) was exceeded.
  public static let exitThresholdExceeded: Int32 = 1
  /// Sessions failed for transport errors: any, or more than an `errors=` limit allows. It comes
  /// before `exitThresholdExceeded` when both apply, since the latencies of a run whose
  /// transport failed say little.
  public static let exitTransportErrors: Int32 = 2

  /// How `hark load` (and `hark load merge`) exits for CI: `exitTransportErrors` (2) when
  /// sessions failed for transport errors beyond what an `errors=` limit allows (none without
  /// one), else `exitThresholdExceeded` (1) when a limit was exceeded, else `exitPassed` (0).
  public func exitStatus(thresholds: [LoadThreshold]) -> Int32 {
    let transportErrors = counters.transportErrorCount
    let allowed = thresholds.compactMap { threshold -> Int? in
      if case .transportErrors(let allowed) = threshold { return allowed }
      return nil
    }
    // With several `errors=` limits, the strictest one counts.
    if transportErrors > (allowed.min() ?? 0) { return Self.exitTransportErrors }
    if thresholds.contains(where: { !$0.evaluate(self).isEmpty }) {
      return Self.exitThresholdExceeded
    }
    return Self.exitPassed
  }
}

extension LoadMetric {
  /// The metric's name in a sentence: "start of speech".
  var spokenName: String {
    String(rawValue.map { $0 == "_" ? " " : $0 })
  }
}

extension StringProtocol {
  fileprivate var trimmingSpaces: String {
    String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
  }

  fileprivate var replacingDashes: String {
    String(map { $0 == "-" ? "_" : $0 })
  }
}
