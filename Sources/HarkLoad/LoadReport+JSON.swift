import Foundation

// The JSON of a report (`hark load --json`), for scripts and for `hark load merge`:
//
//   {
//     "counters": {counters},
//     "elapsed_seconds": 72.4,
//     "format": "hark-load-report/1",
//     "generator": {"cpu_seconds": 12.3, "fell_behind": false, "peak_resident_bytes": 123456},
//     "histograms": {
//       "final": {"buckets": [[value, count], …], "count": …, "max": …, "mean": …, "min": …,
//                 "p50": …, "p90": …, "p99": …, "p99_9": …},
//       …one per metric, keyed by its raw value, every latency in microseconds
//     },
//     "parameters": {"audio": […], "connections": 1, "duration_seconds": 60, "max_sessions": …,
//                    "mode": "MULTIPLE", "ramp_up_seconds": 0, "rate": …, "result_type": "FINAL",
//                    "seed": 0, "server": "…", "sessions": …, "shards": ["1/1"], "speed": 1,
//                    "started_at": "…", "version": "…"},
//     "timeline": [{"active": 50, "counters": {counters}, "final_buckets": [[value, count], …],
//                   "handshake_buckets": […], "second": 0}, …]
//   }
//
// where {counters} is {"audio_bytes", "audio_messages", "audio_milliseconds", "bytes_received",
// "bytes_sent", "final_results", "late_frames", "partial_results", "sessions_cancelled",
// "sessions_completed", "sessions_failed", "sessions_skipped", "sessions_started",
// "statuses": {"200": n, …},
// "transport_errors": {"UNAVAILABLE": n, …}}. `sessions`, `rate` and `max_sessions` are left out
// when not set. A reader rebuilds each histogram from its buckets alone: the other figures of a
// histogram are for people and scripts.

extension LoadReport {
  /// The format this version of hark writes and reads.
  public static let jsonFormat = "hark-load-report/1"

  /// The report as JSON: sorted keys, one member per line, the same text for the same report.
  public func jsonText() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = Self.nonFinite
    // Numbers, strings and non-finite numbers as strings: encoding cannot fail.
    let data = try! encoder.encode(ReportDocument(self))
    return JSONLayout.pretty(String(decoding: data, as: UTF8.self)) + "\n"
  }

  /// Reads a report written by `jsonText()`.
  ///
  /// - Throws: A one-line `LoadReportError` when the text is not JSON, not a report of this
  ///   format and version, or not a valid one.
  public init(jsonText: String) throws(LoadReportError) {
    let data = Data(jsonText.utf8)
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = Self.nonFiniteDecoding
    let format: String?
    do {
      format = try decoder.decode(FormatProbe.self, from: data).format
    } catch {
      throw LoadReportError("not a hark load report: \(Self.describe(error))")
    }
    guard let format else {
      throw LoadReportError("not a hark load report: it has no \"format\" member")
    }
    guard format == Self.jsonFormat else {
      if format.hasPrefix("hark-load-report/") {
        throw LoadReportError(
          "hark load report format \"\(format)\" is not supported: this hark reads \(Self.jsonFormat)"
        )
      }
      throw LoadReportError(
        "not a hark load report: format \"\(format)\", expected \"\(Self.jsonFormat)\""
      )
    }
    let document: ReportDocument
    do {
      document = try decoder.decode(ReportDocument.self, from: data)
    } catch {
      throw LoadReportError("invalid hark load report: \(Self.describe(error))")
    }
    self = try document.report()
  }

  /// JSON has no infinities or NaN: should a figure be one (a rate of a run of no time), it is
  /// written as a string rather than failing the report.
  private static let nonFinite = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
    positiveInfinity: "Infinity",
    negativeInfinity: "-Infinity",
    nan: "NaN"
  )
  private static let nonFiniteDecoding = JSONDecoder.NonConformingFloatDecodingStrategy
    .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")

  /// A decoding error on one line, naming where in the document it is.
  private static func describe(_ error: any Error) -> String {
    func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
      let keys = codingPath + (key.map { [$0] } ?? [])
      let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
      return text.isEmpty ? "the document" : String(text.drop { $0 == "." })
    }
    let text: String
    switch error as? DecodingError {
    case .keyNotFound(let key, let context)?:
      text = "\(path(context.codingPath, key)) is missing"
    case .valueNotFound(_, let context)?:
      text = "\(path(context.codingPath)) is null"
    case .typeMismatch(let type, let context)?:
      text = "\(path(context.codingPath)) is not \(Self.kind(of: type))"
    case .dataCorrupted(let context)?:
      text =
        context.codingPath.isEmpty
        ? "not JSON (\(context.debugDescription))"
        : "\(path(context.codingPath)): \(context.debugDescription)"
    default:
      text = "\(error)"
    }
    return text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }

  private static func kind(of type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Bool.Type: "true or false"
    case is Double.Type: "a number"
    case is Int.Type, is UInt64.Type: "a whole number"
    default: "what it should be (\(type))"
    }
  }
}

// MARK: - The documents

/// Only the format, read first so that another format is named, not misparsed.
private struct FormatProbe: Decodable {
  var format: String?
}

private struct ReportDocument: Codable {
  var format: String
  var parameters: ParametersDocument
  var counters: CountersDocument
  var generator: GeneratorDocument
  var elapsedSeconds: Double
  var histograms: [String: HistogramDocument]
  var timeline: [TimelinePointDocument]

  enum CodingKeys: String, CodingKey {
    case format, parameters, counters, generator, histograms, timeline
    case elapsedSeconds = "elapsed_seconds"
  }

  init(_ report: LoadReport) {
    format = LoadReport.jsonFormat
    parameters = ParametersDocument(report.parameters)
    counters = CountersDocument(report.counters)
    generator = GeneratorDocument(report.generator)
    elapsedSeconds = report.elapsedSeconds
    histograms = Dictionary(
      uniqueKeysWithValues: report.histograms.map { ($0.key.rawValue, HistogramDocument($0.value)) }
    )
    timeline = report.timeline.map(TimelinePointDocument.init)
  }

  func report() throws(LoadReportError) -> LoadReport {
    var report = LoadReport()
    report.parameters = parameters.parameters
    report.counters = counters.counters
    report.generator = generator.generator
    report.elapsedSeconds = elapsedSeconds
    for (name, document) in histograms {
      guard let metric = LoadMetric(rawValue: name) else {
        throw LoadReportError("invalid hark load report: histograms.\(name) is not a metric")
      }
      report[metric] = try document.histogram(at: "histograms.\(name)")
    }
    var previous: Int?
    for (index, document) in timeline.enumerated() {
      let point = try document.point(at: "timeline[\(index)]")
      if let previous, point.second <= previous {
        throw LoadReportError(
          "invalid hark load report: timeline[\(index)] is second \(point.second), after \(previous)"
        )
      }
      previous = point.second
      report.timeline.append(point)
    }
    return report
  }
}

private struct ParametersDocument: Codable {
  var server: String
  var sessions: Int?
  var rate: Double?
  var maxSessions: Int?
  var durationSeconds: Double
  var rampUpSeconds: Double
  var connections: Int
  var audio: [String]
  var speed: Double
  var mode: String
  var resultType: String
  var seed: UInt64
  var shards: [String]
  var startedAt: String
  var version: String

  enum CodingKeys: String, CodingKey {
    case server, sessions, rate, connections, audio, speed, mode, seed, shards, version
    case maxSessions = "max_sessions"
    case durationSeconds = "duration_seconds"
    case rampUpSeconds = "ramp_up_seconds"
    case resultType = "result_type"
    case startedAt = "started_at"
  }

  init(_ parameters: LoadParameters) {
    server = parameters.server
    sessions = parameters.sessions
    rate = parameters.rate
    maxSessions = parameters.maxSessions
    durationSeconds = parameters.duration
    rampUpSeconds = parameters.rampUp
    connections = parameters.connections
    audio = parameters.audio
    speed = parameters.speed
    mode = parameters.mode
    resultType = parameters.resultType
    seed = parameters.seed
    shards = parameters.shards
    startedAt = parameters.startedAt
    version = parameters.version
  }

  var parameters: LoadParameters {
    var parameters = LoadParameters()
    parameters.server = server
    parameters.sessions = sessions
    parameters.rate = rate
    parameters.maxSessions = maxSessions
    parameters.duration = durationSeconds
    parameters.rampUp = rampUpSeconds
    parameters.connections = connections
    parameters.audio = audio
    parameters.speed = speed
    parameters.mode = mode
    parameters.resultType = resultType
    parameters.seed = seed
    parameters.shards = shards
    parameters.startedAt = startedAt
    parameters.version = version
    return parameters
  }
}

private struct CountersDocument: Codable {
  var sessionsStarted: Int
  var sessionsCompleted: Int
  var sessionsFailed: Int
  var sessionsCancelled: Int
  /// Absent in reports written before it was kept (read as 0).
  var sessionsSkipped: Int?
  var sessionsRefused: Int?
  var reconnects: Int?
  var sessionsRetried: Int?
  var retries: Int?
  var resumes: Int?
  var messages: [String: Int]?
  var statuses: [String: Int]
  var transportErrors: [String: Int]
  var audioMessages: Int
  var audioBytes: Int
  var audioMilliseconds: Int
  var lateFrames: Int
  var bytesSent: Int
  var bytesReceived: Int
  var partialResults: Int
  var finalResults: Int

  enum CodingKeys: String, CodingKey {
    case statuses
    case sessionsStarted = "sessions_started"
    case sessionsCompleted = "sessions_completed"
    case sessionsFailed = "sessions_failed"
    case sessionsCancelled = "sessions_cancelled"
    case sessionsSkipped = "sessions_skipped"
    case sessionsRefused = "sessions_refused"
    case reconnects
    case sessionsRetried = "sessions_retried"
    case retries
    case resumes
    case messages
    case transportErrors = "transport_errors"
    case audioMessages = "audio_messages"
    case audioBytes = "audio_bytes"
    case audioMilliseconds = "audio_milliseconds"
    case lateFrames = "late_frames"
    case bytesSent = "bytes_sent"
    case bytesReceived = "bytes_received"
    case partialResults = "partial_results"
    case finalResults = "final_results"
  }

  init(_ counters: LoadCounters) {
    sessionsStarted = counters.sessionsStarted
    sessionsCompleted = counters.sessionsCompleted
    sessionsFailed = counters.sessionsFailed
    sessionsCancelled = counters.sessionsCancelled
    sessionsSkipped = counters.sessionsSkipped
    sessionsRefused = counters.sessionsRefused
    reconnects = counters.reconnects
    sessionsRetried = counters.sessionsRetried
    retries = counters.retries
    resumes = counters.resumes
    messages = counters.messages
    statuses = counters.statuses
    transportErrors = counters.transportErrors
    audioMessages = counters.audioMessages
    audioBytes = counters.audioBytes
    audioMilliseconds = counters.audioMilliseconds
    lateFrames = counters.lateFrames
    bytesSent = counters.bytesSent
    bytesReceived = counters.bytesReceived
    partialResults = counters.partialResults
    finalResults = counters.finalResults
  }

  var counters: LoadCounters {
    var counters = LoadCounters()
    counters.sessionsStarted = sessionsStarted
    counters.sessionsCompleted = sessionsCompleted
    counters.sessionsFailed = sessionsFailed
    counters.sessionsCancelled = sessionsCancelled
    counters.sessionsSkipped = sessionsSkipped ?? 0
    counters.sessionsRefused = sessionsRefused ?? 0
    counters.reconnects = reconnects ?? 0
    counters.sessionsRetried = sessionsRetried ?? 0
    counters.retries = retries ?? 0
    counters.resumes = resumes ?? 0
    for (message, count) in messages ?? [:] { counters.count(message: message, count) }
    counters.statuses = statuses
    counters.transportErrors = transportErrors
    counters.audioMessages = audioMessages
    counters.audioBytes = audioBytes
    counters.audioMilliseconds = audioMilliseconds
    counters.lateFrames = lateFrames
    counters.bytesSent = bytesSent
    counters.bytesReceived = bytesReceived
    counters.partialResults = partialResults
    counters.finalResults = finalResults
    return counters
  }
}

private struct GeneratorDocument: Codable {
  var cpuSeconds: Double
  var peakResidentBytes: Int
  var fellBehind: Bool

  enum CodingKeys: String, CodingKey {
    case cpuSeconds = "cpu_seconds"
    case peakResidentBytes = "peak_resident_bytes"
    case fellBehind = "fell_behind"
  }

  init(_ generator: LoadGeneratorFigures) {
    cpuSeconds = generator.cpuSeconds
    peakResidentBytes = generator.peakResidentBytes
    fellBehind = generator.fellBehind
  }

  var generator: LoadGeneratorFigures {
    var generator = LoadGeneratorFigures()
    generator.cpuSeconds = cpuSeconds
    generator.peakResidentBytes = peakResidentBytes
    generator.fellBehind = fellBehind
    return generator
  }
}

/// A histogram: its buckets, and for people its count, extremes, mean and percentiles (µs).
private struct HistogramDocument: Codable {
  var count: UInt64
  var min: UInt64
  var mean: Double
  var p50: UInt64
  var p90: UInt64
  var p99: UInt64
  var p99_9: UInt64
  var max: UInt64
  var buckets: [[UInt64]]

  init(_ histogram: LatencyHistogram) {
    count = histogram.count
    min = histogram.minimum
    // To the nanosecond: the mean is for people, and more digits would only be noise.
    mean = (histogram.mean * 1000).rounded() / 1000
    p50 = histogram.value(atPercentile: 50)
    p90 = histogram.value(atPercentile: 90)
    p99 = histogram.value(atPercentile: 99)
    p99_9 = histogram.value(atPercentile: 99.9)
    max = histogram.maximum
    buckets = histogram.buckets
  }

  func histogram(at path: String) throws(LoadReportError) -> LatencyHistogram {
    let histogram = try LatencyHistogram(buckets: buckets, at: path)
    guard histogram.count == count else {
      throw LoadReportError(
        "invalid hark load report: \(path).count is \(count) but its buckets hold \(histogram.count)"
      )
    }
    return histogram
  }
}

private struct TimelinePointDocument: Codable {
  var second: Int
  var active: Int
  var counters: CountersDocument
  var handshakeBuckets: [[UInt64]]
  var finalBuckets: [[UInt64]]

  enum CodingKeys: String, CodingKey {
    case second, active, counters
    case handshakeBuckets = "handshake_buckets"
    case finalBuckets = "final_buckets"
  }

  init(_ point: LoadTimelinePoint) {
    second = point.second
    active = point.active
    counters = CountersDocument(point.counters)
    handshakeBuckets = point.handshake.buckets
    finalBuckets = point.final.buckets
  }

  func point(at path: String) throws(LoadReportError) -> LoadTimelinePoint {
    var point = LoadTimelinePoint(second: second)
    point.active = active
    point.counters = counters.counters
    point.handshake = try LatencyHistogram(
      buckets: handshakeBuckets,
      at: "\(path).handshake_buckets"
    )
    point.final = try LatencyHistogram(buckets: finalBuckets, at: "\(path).final_buckets")
    return point
  }
}

extension LatencyHistogram {
  fileprivate init(buckets: [[UInt64]], at path: String) throws(LoadReportError) {
    do throws(LoadReportError) {
      try self.init(buckets: buckets)
    } catch {
      throw LoadReportError("invalid hark load report: \(path): \(error.message)")
    }
  }
}

// MARK: - Layout

/// Lays out the compact JSON of `JSONEncoder` for people: one member or element per line, and
/// arrays of numbers or strings (a histogram bucket, a list of files) on one line, which keeps a
/// histogram to one line per bucket where `.prettyPrinted` takes four.
struct JSONLayout {
  private indirect enum Node {
    /// A number, string, true, false or null: the range of its bytes.
    case scalar(Range<Int>)
    case array([Node])
    case object([(key: Range<Int>, value: Node)])

    var isScalar: Bool {
      if case .scalar = self { return true }
      return false
    }
  }

  private let bytes: [UInt8]
  private var index = 0
  private var output: [UInt8] = []

  /// `compact` (JSON without whitespace between tokens) laid out with two-space indentation.
  static func pretty(_ compact: String) -> String {
    var layout = JSONLayout(bytes: Array(compact.utf8))
    let node = layout.parse()
    layout.output.reserveCapacity(layout.bytes.count * 2)
    layout.write(node, indent: 0)
    return String(decoding: layout.output, as: UTF8.self)
  }

  private init(bytes: [UInt8]) {
    self.bytes = bytes
  }

  private mutating func parse() -> Node {
    switch bytes[index] {
    case UInt8(ascii: "{"):
      index += 1
      var members: [(key: Range<Int>, value: Node)] = []
      while bytes[index] != UInt8(ascii: "}") {
        let key = string()
        index += 1  // ":"
        members.append((key, parse()))
        if bytes[index] == UInt8(ascii: ",") { index += 1 }
      }
      index += 1
      return .object(members)
    case UInt8(ascii: "["):
      index += 1
      var elements: [Node] = []
      while bytes[index] != UInt8(ascii: "]") {
        elements.append(parse())
        if bytes[index] == UInt8(ascii: ",") { index += 1 }
      }
      index += 1
      return .array(elements)
    case UInt8(ascii: "\""):
      return .scalar(string())
    default:
      let start = index
      while index < bytes.count,
        ![UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}")]
          .contains(bytes[index])
      {
        index += 1
      }
      return .scalar(start..<index)
    }
  }

  /// The string token at `index`, quotes and escapes included.
  private mutating func string() -> Range<Int> {
    let start = index
    index += 1
    while bytes[index] != UInt8(ascii: "\"") {
      index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
    }
    index += 1
    return start..<index
  }

  private mutating func write(_ node: Node, indent: Int) {
    switch node {
    case .scalar(let token):
      output += bytes[token]
    case .array(let elements) where elements.allSatisfy(\.isScalar):
      output.append(UInt8(ascii: "["))
      for (position, element) in elements.enumerated() {
        if position > 0 { output += ", ".utf8 }
        write(element, indent: indent + 2)
      }
      output.append(UInt8(ascii: "]"))
    case .array(let elements):
      output += "[\n".utf8
      for (position, element) in elements.enumerated() {
        output += repeatElement(UInt8(ascii: " "), count: indent + 2)
        write(element, indent: indent + 2)
        output += (position < elements.count - 1 ? ",\n" : "\n").utf8
      }
      output += repeatElement(UInt8(ascii: " "), count: indent)
      output.append(UInt8(ascii: "]"))
    case .object(let members) where members.isEmpty:
      output += "{}".utf8
    case .object(let members):
      output += "{\n".utf8
      for (position, member) in members.enumerated() {
        output += repeatElement(UInt8(ascii: " "), count: indent + 2)
        output += bytes[member.key]
        output += ": ".utf8
        write(member.value, indent: indent + 2)
        output += (position < members.count - 1 ? ",\n" : "\n").utf8
      }
      output += repeatElement(UInt8(ascii: " "), count: indent)
      output.append(UInt8(ascii: "}"))
    }
  }
}
