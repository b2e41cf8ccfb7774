import Foundation

extension LoadReport {
  /// One report of the runs of `reports` (the shards of a distributed run): histograms added
  /// bucket by bucket, so its percentiles are those of all the values (not averages), counters
  /// summed, timelines added second by second — on the wall clock: when every report has its
  /// start time, a shard that started k seconds after the first has its seconds shifted by k.
  ///
  /// The runs must have measured the same thing: the same server, mode, result type, speed and
  /// audio. Their shards are listed together and may not repeat; their sessions, rates and
  /// connections add up; the elapsed time, duration and ramp-up are the longest; the generator
  /// figures add up (CPU), take the largest (peak memory) or any (fell behind).
  ///
  /// - Returns: The report itself when there is one.
  /// - Throws: `LoadReportError` when there is none, when two differ in one of those parameters
  ///   (naming it), or when a shard repeats.
  public static func merged(_ reports: [LoadReport]) throws(LoadReportError) -> LoadReport {
    guard let first = reports.first else { throw LoadReportError("there are no reports to merge") }
    if reports.count == 1 { return first }

    var merged = LoadReport()
    merged.parameters = try LoadParameters.merged(reports.map(\.parameters))
    var timeline: [Int: LoadTimelinePoint] = [:]
    let offsets = Self.startOffsets(reports.map(\.parameters.startedAt))
    for (report, offset) in zip(reports, offsets) {
      merged.counters.add(report.counters)
      for (metric, histogram) in report.histograms {
        merged[metric].add(histogram)
      }
      for point in report.timeline {
        let second = point.second + offset
        timeline[second, default: LoadTimelinePoint(second: second)].add(point)
      }
      merged.generator.cpuSeconds += report.generator.cpuSeconds
      merged.generator.peakResidentBytes = max(
        merged.generator.peakResidentBytes,
        report.generator.peakResidentBytes
      )
      merged.generator.fellBehind = merged.generator.fellBehind || report.generator.fellBehind
      merged.elapsedSeconds = max(merged.elapsedSeconds, Double(offset) + report.elapsedSeconds)
    }
    merged.timeline = timeline.values.sorted { $0.second < $1.second }
    return merged
  }

  /// Each run's start in whole seconds after the earliest, from their ISO 8601 start times; all
  /// zero unless every run has one (a run without it cannot be placed).
  static func startOffsets(_ startedAt: [String]) -> [Int] {
    let parser = ISO8601DateFormatter()
    let starts = startedAt.map { parser.date(from: $0) }
    guard let earliest = starts.compactMap({ $0 }).min(), !starts.contains(nil) else {
      return startedAt.map { _ in 0 }
    }
    return starts.map { Int($0!.timeIntervalSince(earliest).rounded()) }
  }
}

extension LoadParameters {
  /// The parameters of runs merged into one report.
  fileprivate static func merged(_ runs: [LoadParameters]) throws(LoadReportError) -> LoadParameters
  {
    var merged = runs[0]
    for run in runs.dropFirst() {
      try merged.requireSame("server", \.server, as: run)
      try merged.requireSame("mode", \.mode, as: run)
      try merged.requireSame("result type", \.resultType, as: run)
      try merged.requireSame("speed", \.speed, as: run)
      try merged.requireSame("audio", \.audio, as: run)

      for shard in run.shards {
        guard !merged.shards.contains(shard) else {
          throw LoadReportError("cannot merge shard \(shard) twice: two reports include it")
        }
        merged.shards.append(shard)
      }
      merged.sessions = Self.sum(merged.sessions, run.sessions)
      merged.rate = Self.sum(merged.rate, run.rate)
      merged.maxSessions = Self.sum(merged.maxSessions, run.maxSessions)
      merged.connections += run.connections
      merged.duration = max(merged.duration, run.duration)
      merged.rampUp = max(merged.rampUp, run.rampUp)
      if merged.startedAt.isEmpty || (!run.startedAt.isEmpty && run.startedAt < merged.startedAt) {
        // ISO 8601 times of one zone sort as text.
        merged.startedAt = run.startedAt
      }
      if !run.version.isEmpty,
        !merged.version.split(separator: ", ").contains(Substring(run.version))
      {
        merged.version += merged.version.isEmpty ? run.version : ", " + run.version
      }
    }
    merged.shards.sort { Shard($0) < Shard($1) }
    return merged
  }

  private func requireSame<Value: Equatable>(
    _ name: String,
    _ field: KeyPath<LoadParameters, Value>,
    as other: LoadParameters
  ) throws(LoadReportError) {
    guard self[keyPath: field] == other[keyPath: field] else {
      throw LoadReportError(
        "cannot merge runs of different \(name): \(Self.show(self[keyPath: field])) and "
          + Self.show(other[keyPath: field])
      )
    }
  }

  private static func show(_ value: some Equatable) -> String {
    switch value {
    case let text as String: "\"\(text)\""
    case let texts as [String]: "[" + texts.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
    default: "\(value)"
    }
  }

  private static func sum<Value: AdditiveArithmetic>(_ lhs: Value?, _ rhs: Value?) -> Value? {
    guard lhs != nil || rhs != nil else { return nil }
    return (lhs ?? .zero) + (rhs ?? .zero)
  }
}

/// A shard as `--shard` names it, "I/N", ordered by N then I (text that is not one sorts last).
struct Shard: Comparable {
  var index: Int
  var count: Int
  var text: String

  init(_ text: String) {
    self.text = text
    let parts = text.split(separator: "/")
    if parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) {
      (self.index, self.count) = (index, count)
    } else {
      (self.index, self.count) = (Int.max, Int.max)
    }
  }

  static func < (lhs: Shard, rhs: Shard) -> Bool {
    (lhs.count, lhs.index, lhs.text) < (rhs.count, rhs.index, rhs.text)
  }
}
