public import Histogram

/// The latencies `hark load` measures, each an HdrHistogram of microseconds.
public enum LoadMetric: String, CaseIterable, Codable, Sendable, Comparable {
  /// Init sent → 100 Continue.
  case handshake
  /// The audio at the speech onset sent → the StartOfSpeech response.
  case startOfSpeech = "start_of_speech"
  /// The audio at the speech onset sent → the utterance's first partial result.
  case firstPartial = "first_partial"
  /// The end of the utterance's audio sent (its speech end plus the end silence the server
  /// waits for) → its final result.
  case final
  /// Half-close → the final status.
  case end
  /// Init sent → the final status.
  case session
  /// How late each audio frame was sent against its schedule (the load generator's own delay).
  case frameLateness = "frame_lateness"

  /// How the metric is named in tables and pages.
  public var title: String {
    switch self {
    case .handshake: "handshake (init → 100)"
    case .startOfSpeech: "start of speech (onset audio → event)"
    case .firstPartial: "first partial (onset audio → partial)"
    case .final: "final latency (utterance end → final)"
    case .end: "end latency (half-close → status)"
    case .session: "session duration"
    case .frameLateness: "frame lateness (generator)"
    }
  }

  public static func < (lhs: LoadMetric, rhs: LoadMetric) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// A latency histogram in microseconds: exact percentiles to three significant digits, from
/// 1 µs to an hour, mergeable across runs without loss.
public struct LatencyHistogram: Sendable, Equatable {
  /// The histogram.
  public private(set) var histogram: Histogram<UInt64>

  /// The most a value may be: an hour, in microseconds (larger values are recorded as this).
  public static let highestValue: UInt64 = 3_600_000_000

  public init() {
    histogram = Histogram(
      highestTrackableValue: Self.highestValue,
      numberOfSignificantValueDigits: .three
    )
  }

  /// Records one value, in microseconds.
  public mutating func record(microseconds: UInt64) {
    _ = histogram.record(min(max(microseconds, 1), Self.highestValue))
  }

  /// Records one value, in nanoseconds (rounded to microseconds).
  public mutating func record(nanoseconds: UInt64) {
    record(microseconds: (nanoseconds + 500) / 1000)
  }

  /// Adds every value of `other`.
  public mutating func add(_ other: LatencyHistogram) {
    histogram.add(other.histogram)
  }

  public var count: UInt64 { histogram.totalCount }

  /// The value at `percentile` (0…100), in microseconds; 0 when empty.
  ///
  /// It is the highest value of the percentile's bucket, which depends on the buckets alone, so
  /// a histogram rebuilt from its `buckets` (a report read back, a merge) reports the same.
  public func value(atPercentile percentile: Double) -> UInt64 {
    count == 0 ? 0 : histogram.highestEquivalentForValue(histogram.valueAtPercentile(percentile))
  }

  /// The histogram as (value, count) pairs of its non-empty buckets, lowest first: recording
  /// each pair again rebuilds the same histogram, so runs merge exactly.
  public var buckets: [[UInt64]] {
    histogram.recordedValues().map { [$0.value, UInt64($0.count)] }
  }

  /// The histogram of `buckets`.
  public init(buckets: [[UInt64]]) throws(LoadReportError) {
    self.init()
    for pair in buckets {
      guard pair.count == 2, pair[1] > 0 else {
        throw LoadReportError("a histogram bucket is not a [value, count] pair: \(pair)")
      }
      _ = histogram.record(min(max(pair[0], 1), Self.highestValue), count: pair[1])
    }
  }

  /// Whether both hold the same counts in the same buckets (HdrHistogram's equality compares
  /// the counts and the extremes' buckets, not the exact extremes, so a histogram equals its
  /// rebuild from `buckets`).
  public static func == (lhs: LatencyHistogram, rhs: LatencyHistogram) -> Bool {
    lhs.histogram == rhs.histogram
  }
}

/// Why a report cannot be read or merged.
public struct LoadReportError: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
  public init(_ message: String) { self.message = message }
}

/// What a run counted.
public struct LoadCounters: Codable, Sendable, Hashable {
  /// Sessions whose init was sent.
  public var sessionsStarted = 0
  /// Sessions that ended with a status the server sent (any code).
  public var sessionsCompleted = 0
  /// Sessions that ended with a status ≥ 300 or a transport error, refusals apart.
  public var sessionsFailed = 0
  /// Sessions the server refused for its capacity or rate (409, 429): replaced after the
  /// refused backoff rather than failed.
  public var sessionsRefused = 0
  /// Connections opened again after one closed or went away during the run.
  public var reconnects = 0
  /// Sessions refused before their 100 and tried again (`--retries`), each counted once.
  public var sessionsRetried = 0
  /// Retries in all (a session may retry more than once).
  public var retries = 0
  /// Streams resumed after a failure mid-call (`--resume`).
  public var resumes = 0
  /// What the failed and refused sessions were told, `CODE message` (`409 all recognizers are
  /// busy`, `UNAVAILABLE the connection closed`), with how many: at most
  /// ``maxMessageKinds`` kinds, the rest counted under ``otherMessages``.
  public var messages: [String: Int] = [:]
  /// Sessions the run cancelled at its end, still streaming (not failures).
  public var sessionsCancelled = 0
  /// Open loop: arrivals not started because `--max-sessions` sessions were running.
  public var sessionsSkipped = 0
  /// Final statuses by code ("200", "404", …), and the 100s (handshakes and timer starts).
  public var statuses: [String: Int] = [:]
  /// Sessions that failed below the protocol, by gRPC status name ("UNAVAILABLE", …).
  public var transportErrors: [String: Int] = [:]
  /// Sessions that failed below the protocol, whatever the status.
  public var transportErrorCount: Int { transportErrors.values.reduce(0, +) }
  /// Audio messages sent.
  public var audioMessages = 0
  /// Audio sent, in bytes.
  public var audioBytes = 0
  /// Audio sent, in milliseconds of audio.
  public var audioMilliseconds = 0
  /// Frames sent more than 20 ms after their schedule.
  public var lateFrames = 0
  /// Request bytes (gRPC messages with their 5-byte prefix) sent.
  public var bytesSent = 0
  /// Response bytes (gRPC messages with their prefix) received.
  public var bytesReceived = 0
  /// Results received (partial and final).
  public var partialResults = 0
  public var finalResults = 0

  /// The most kinds of message kept: a server that words each refusal differently cannot
  /// grow a report without bound.
  public static let maxMessageKinds = 32
  /// The key under which messages past ``maxMessageKinds`` kinds are counted.
  public static let otherMessages = "(other messages)"

  public init() {}

  /// Counts `count` sessions told `message`.
  public mutating func count(message: String, _ count: Int = 1) {
    let kinds = messages.count - (messages[Self.otherMessages] == nil ? 0 : 1)
    if messages[message] != nil || message == Self.otherMessages || kinds < Self.maxMessageKinds {
      messages[message, default: 0] += count
    } else {
      messages[Self.otherMessages, default: 0] += count
    }
  }

  /// Adds `other`'s counts to these.
  public mutating func add(_ other: LoadCounters) {
    sessionsStarted += other.sessionsStarted
    sessionsCompleted += other.sessionsCompleted
    sessionsFailed += other.sessionsFailed
    sessionsRefused += other.sessionsRefused
    reconnects += other.reconnects
    sessionsRetried += other.sessionsRetried
    retries += other.retries
    resumes += other.resumes
    for (message, count) in other.messages { self.count(message: message, count) }
    sessionsCancelled += other.sessionsCancelled
    sessionsSkipped += other.sessionsSkipped
    statuses.merge(other.statuses, uniquingKeysWith: +)
    transportErrors.merge(other.transportErrors, uniquingKeysWith: +)
    audioMessages += other.audioMessages
    audioBytes += other.audioBytes
    audioMilliseconds += other.audioMilliseconds
    lateFrames += other.lateFrames
    bytesSent += other.bytesSent
    bytesReceived += other.bytesReceived
    partialResults += other.partialResults
    finalResults += other.finalResults
  }
}

/// One second of a run, for the live line and the page's curves.
public struct LoadTimelinePoint: Sendable, Equatable {
  /// Seconds since the run started (this point covers [second, second + 1)).
  public var second: Int
  /// Sessions streaming at the end of the second.
  public var active = 0
  /// What happened during the second.
  public var counters = LoadCounters()
  /// The handshakes and finals of the second.
  public var handshake = LatencyHistogram()
  public var final = LatencyHistogram()

  public init(second: Int) {
    self.second = second
  }

  /// Adds `other` (the same second of another shard).
  public mutating func add(_ other: LoadTimelinePoint) {
    active += other.active
    counters.add(other.counters)
    handshake.add(other.handshake)
    final.add(other.final)
  }
}

/// How a run was asked for: the options of `hark load` that shape the load.
public struct LoadParameters: Codable, Sendable, Hashable {
  public var server = ""
  /// Closed loop: sessions kept open.
  public var sessions: Int?
  /// Open loop: new sessions per second, and the most at once.
  public var rate: Double?
  public var maxSessions: Int?
  /// Seconds of load after the ramp-up.
  public var duration: Double = 0
  public var rampUp: Double = 0
  public var connections = 1
  public var audio: [String] = []
  /// Audio speed: 1 is real time.
  public var speed: Double = 1
  public var mode = "MULTIPLE"
  public var resultType = "FINAL"
  public var seed: UInt64 = 0
  /// This run's shard, "I/N" (1/1 for a whole run; a merged report lists its shards).
  public var shards: [String] = ["1/1"]
  /// When the run started, ISO 8601.
  public var startedAt = ""
  /// The version of hark that ran it.
  public var version = ""

  public init() {}
}

/// What the load generator itself cost, and whether it kept up.
public struct LoadGeneratorFigures: Codable, Sendable, Hashable {
  /// CPU seconds of the load process (user + system).
  public var cpuSeconds: Double = 0
  /// Peak resident memory of the load process, bytes (the largest of the shards when merged).
  public var peakResidentBytes = 0
  /// Whether the generator fell behind its schedule: frame lateness p99 above 20 ms. Latencies
  /// measured while it did include its own delay.
  public var fellBehind = false

  public init() {}
}

/// Everything a run measured: the parameters, the counters, a histogram per metric, the
/// timeline, and what the generator cost.
public struct LoadReport: Sendable, Equatable {
  public var parameters = LoadParameters()
  public var counters = LoadCounters()
  public var histograms: [LoadMetric: LatencyHistogram] = Dictionary(
    uniqueKeysWithValues: LoadMetric.allCases.map { ($0, LatencyHistogram()) }
  )
  public var timeline: [LoadTimelinePoint] = []
  public var generator = LoadGeneratorFigures()
  /// Wall-clock seconds the run took (ramp-up, load and drain).
  public var elapsedSeconds: Double = 0

  public init() {}

  public subscript(metric: LoadMetric) -> LatencyHistogram {
    get { histograms[metric] ?? LatencyHistogram() }
    set { histograms[metric] = newValue }
  }
}
