extension LoadReport {
  /// The summary `hark load` prints on stdout at the end: the run, a row of percentiles per
  /// metric, the counters, and what the generator cost (with a warning when it fell behind).
  ///
  /// Lines are separated by line ends, with none after the last (for `print`).
  public func summaryTable() -> String {
    var lines = [runLine]
    if let note = missingShardsNote { lines.append(note) }
    lines.append("")

    var latency = TextTable(
      header: ["latency", "count", "p50", "p90", "p99", "p99.9", "max"],
      alignments: [.left] + Array(repeating: .right, count: 6)
    )
    for metric in LoadMetric.allCases {
      let histogram = self[metric]
      let cell = { (microseconds: UInt64) in
        DisplayUnits.duration(microseconds, ifAny: histogram.count)
      }
      latency.rows.append([
        metric.title, "\(histogram.count)",
        cell(histogram.value(atPercentile: 50)), cell(histogram.value(atPercentile: 90)),
        cell(histogram.value(atPercentile: 99)), cell(histogram.value(atPercentile: 99.9)),
        cell(histogram.maximum),
      ])
    }
    lines += latency.lines
    lines.append("")

    var figures = TextTable(header: nil, alignments: [.left, .left])
    for (name, value) in counterFigures + generatorFigures {
      figures.rows.append([name, value])
    }
    lines += figures.lines

    if generator.fellBehind {
      lines.append("")
      lines.append(Self.fellBehindWarning)
    }
    return lines.joined(separator: "\n")
  }

  static let fellBehindWarning =
    "WARNING: the load generator fell behind its schedule (frame lateness p99 above 20 ms): "
    + "the latencies include its own delay; run fewer sessions per process or more shards."

  /// One line of what was run: server, load, duration, shards, elapsed time.
  var runLine: String {
    var parts = ["hark load", parameters.server.isEmpty ? "(no server)" : parameters.server]
    parts.append(loadShape)
    var duration = DisplayUnits.seconds(parameters.duration)
    if parameters.rampUp > 0 {
      duration += " after " + DisplayUnits.seconds(parameters.rampUp) + " ramp-up"
    }
    parts.append(duration)
    if parameters.shards != ["1/1"] {
      parts.append("shards " + parameters.shards.joined(separator: ", "))
    }
    parts.append(DisplayUnits.seconds(elapsedSeconds) + " elapsed")
    return parts.joined(separator: " · ")
  }

  /// How sessions were started: "50 sessions (closed loop)" or "20.0/s, at most 100 (open loop)".
  var loadShape: String {
    if let rate = parameters.rate {
      let most = parameters.maxSessions.map { ", at most \($0)" } ?? ""
      return "\(DisplayUnits.decimal(rate)) sessions/s\(most) (open loop)"
    }
    return "\(parameters.sessions ?? 0) sessions (closed loop)"
  }

  /// A note when the merged shards of a run are not all of its shards.
  var missingShardsNote: String? {
    let shards = parameters.shards.map(Shard.init)
    guard let count = shards.first?.count, count != .max, shards.allSatisfy({ $0.count == count })
    else { return nil }
    let missing = (1...count).filter { index in !shards.contains { $0.index == index } }
    guard !missing.isEmpty else { return nil }
    let names = missing.map { "\($0)/\(count)" }.joined(separator: ", ")
    return "NOTE: \(count - missing.count) of \(count) shards; missing \(names)"
  }

  var counterFigures: [(String, String)] {
    var figures = [
      ("sessions started", "\(counters.sessionsStarted)"),
      ("sessions completed", "\(counters.sessionsCompleted)"),
      ("sessions failed", "\(counters.sessionsFailed)"),
      ("sessions refused", "\(counters.sessionsRefused)"),
      ("sessions cancelled", "\(counters.sessionsCancelled)"),
    ]
    if counters.sessionsRetried > 0 {
      figures.append(
        ("sessions retried", "\(counters.sessionsRetried) (\(counters.retries) retries)")
      )
    }
    if counters.resumes > 0 {
      figures.append(("streams resumed", "\(counters.resumes)"))
    }
    if counters.reconnects > 0 {
      figures.append(("reconnects", "\(counters.reconnects)"))
    }
    if parameters.rate != nil {
      // Open loop: arrivals that found --max-sessions sessions running.
      figures.append(("sessions skipped", "\(counters.sessionsSkipped)"))
    }
    for (code, count) in counters.statuses.sorted(by: { Self.statusOrder($0.key, $1.key) }) {
      figures.append(("status \(code)", "\(count)"))
    }
    figures.append(("transport errors", "\(counters.transportErrorCount)"))
    for (name, count) in counters.transportErrors.sorted(by: { $0.key < $1.key }) {
      figures.append(("  \(name)", "\(count)"))
    }
    if !counters.messages.isEmpty {
      // The most frequent first: what the failed and refused sessions were told.
      figures.append(("messages", ""))
      let shown = counters.messages.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
      for (message, count) in shown.prefix(10) {
        figures.append(("  \(count) ×", message))
      }
      if shown.count > 10 {
        figures.append(("  …", "\(shown.count - 10) more kinds in the JSON report"))
      }
    }
    let audioSeconds = Double(counters.audioMilliseconds) / 1000
    figures += [
      (
        "audio sent",
        "\(DisplayUnits.seconds(audioSeconds)) in \(counters.audioMessages) messages "
          + "(\(DisplayUnits.bytes(counters.audioBytes))), \(counters.lateFrames) late"
      ),
      ("audio messages/s", DisplayUnits.decimal(perSecond(counters.audioMessages))),
      ("sessions completed/s", DisplayUnits.decimal(perSecond(counters.sessionsCompleted))),
      ("bytes sent", DisplayUnits.bytes(counters.bytesSent)),
      ("bytes received", DisplayUnits.bytes(counters.bytesReceived)),
      ("results", "\(counters.partialResults) partial, \(counters.finalResults) final"),
    ]
    return figures
  }

  var generatorFigures: [(String, String)] {
    [
      ("generator CPU", DisplayUnits.seconds(generator.cpuSeconds)),
      ("CPU per audio message", cpuPerAudioMessage),
      ("peak RSS", DisplayUnits.bytes(generator.peakResidentBytes)),
    ]
  }

  /// The generator's CPU time per audio message sent, or "-" when none was sent.
  var cpuPerAudioMessage: String {
    guard counters.audioMessages > 0 else { return "-" }
    let microseconds = generator.cpuSeconds * 1e6 / Double(counters.audioMessages)
    return DisplayUnits.significant(microseconds) + " µs"
  }

  /// `count` per second of the run (0 for a run of no time).
  func perSecond(_ count: Int) -> Double {
    elapsedSeconds > 0 ? Double(count) / elapsedSeconds : 0
  }

  /// Status codes in numeric order ("100" before "200" before "1000"), other text after.
  static func statusOrder(_ lhs: String, _ rhs: String) -> Bool {
    switch (Int(lhs), Int(rhs)) {
    case (let left?, let right?): left < right
    case (.some, nil): true
    case (nil, .some): false
    case (nil, nil): lhs < rhs
    }
  }
}

/// The line `hark load` writes on stderr every second.
public enum LoadLiveLine {
  /// `[  12 s] active 50 · completed 1234 · failed 0 · 12.0 sessions/s · handshake p99 1.23 ms
  /// · final p99 234 ms`, without a line end.
  ///
  /// - Parameters:
  ///   - elapsed: Seconds since the run started.
  ///   - active: Sessions streaming now.
  ///   - totals: The counters so far.
  ///   - lastSecond: The last whole second, whose completed sessions give the rate (nil before
  ///     the first second ends).
  ///   - handshakeSoFar: Every handshake latency so far.
  ///   - finalSoFar: Every final latency so far.
  public static func render(
    elapsed: Double,
    active: Int,
    totals: LoadCounters,
    lastSecond: LoadTimelinePoint?,
    handshakeSoFar: LatencyHistogram,
    finalSoFar: LatencyHistogram
  ) -> String {
    let seconds = String(Int(max(elapsed, 0)))
    let rate = Double(lastSecond?.counters.sessionsCompleted ?? 0)
    let p99 = { (histogram: LatencyHistogram) in
      DisplayUnits.duration(histogram.value(atPercentile: 99), ifAny: histogram.count)
    }
    var parts: [String] = [
      "[" + String(repeating: " ", count: max(0, 5 - seconds.count)) + seconds
        + " s] active \(active)",
      "completed \(totals.sessionsCompleted)",
      "failed \(totals.sessionsFailed)",
    ]
    if totals.sessionsRefused > 0 { parts.append("refused \(totals.sessionsRefused)") }
    let rest: [String] = [
      "\(DisplayUnits.decimal(rate)) sessions/s",
      "handshake p99 \(p99(handshakeSoFar))",
      "final p99 \(p99(finalSoFar))",
    ]
    return (parts + rest).joined(separator: " · ")
  }
}

/// Rows of text in aligned columns, two spaces apart.
struct TextTable {
  enum Alignment { case left, right }

  var header: [String]?
  var alignments: [Alignment]
  var rows: [[String]] = []

  var lines: [String] {
    let all = (header.map { [$0] } ?? []) + rows
    let widths = alignments.indices.map { column in
      all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0
    }
    return all.map { row in
      var line = ""
      for (column, cell) in row.enumerated() {
        let padding = String(repeating: " ", count: widths[column] - cell.count)
        if column > 0 { line += "  " }
        line += alignments[column] == .left ? cell + padding : padding + cell
      }
      while line.hasSuffix(" ") { line.removeLast() }
      return line
    }
  }
}
