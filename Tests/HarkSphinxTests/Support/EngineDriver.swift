import Foundation
import HarkProto
import HarkRecognizer
import HarkSphinx
import HarkTesting

/// What an engine reported over a stream, as the server's session would have seen it.
struct EngineRun {
  /// Partial hypotheses, in order.
  var partials: [EngineHypothesis] = []
  /// The n-best hypotheses of each utterance.
  var finals: [[EngineHypothesis]] = []
  /// The onset and end of each utterance, as the endpointer reported them.
  var utterances: [Range<Int>] = []

  /// The best text of each utterance.
  var texts: [String] { finals.map { $0.first?.text ?? "" } }
}

/// A configuration for `sampleRate` with `resources`, from a validated init message.
func configuration(
  sampleRate: Int,
  resources: [RecognitionResource] = [],
  language: String = "en-US",
  resultType: ResultType = .final,
  maxHypotheses: UInt32 = 1,
  maskLoadFailures: Bool = false
) throws -> RecognitionConfiguration {
  var parameters = RecognitionParameters(
    language: language,
    audioFormat: .pcm(sampleRateHz: UInt32(sampleRate))
  )
  parameters.utteranceDetectionMode = .multiple
  parameters.resultType = resultType
  parameters.maxHypotheses = maxHypotheses
  if maskLoadFailures {
    var flags = RecognitionFlags()
    flags.maskLoadFailures = true
    parameters.recognitionFlags = flags
  }
  return try RecognitionConfiguration(
    validating: RecognitionInitMessage(parameters: parameters, resources: resources)
  )
}

/// Drives `engine` through `samples` as the server's session does: each 20 ms message goes to the
/// engine first, then to the shared endpointer, whose events begin and end utterances.
func run(
  _ engine: SphinxEngine,
  _ samples: [Int16],
  configuration: RecognitionConfiguration,
  frameMilliseconds: Int = 20
) throws(EngineError) -> EngineRun {
  _ = try engine.prepare(configuration)
  defer { engine.reset() }
  var endpointer = Endpointer(
    configuration: .init(
      sampleRate: configuration.sampleRate,
      endSilenceMilliseconds: configuration.utteranceEndSilenceMs,
      sensitivity: configuration.sensitivity
    )
  )
  var result = EngineRun()
  var onset: Int?
  let frame = configuration.sampleRate * frameMilliseconds / 1000
  for start in stride(from: 0, to: samples.count, by: frame) {
    let chunk = Array(samples[start..<min(start + frame, samples.count)])
    if let partial = try chunk.withUnsafeBufferPointer({ buffer throws(EngineError) in
      try engine.process(buffer, at: start)
    }) {
      result.partials.append(partial)
    }
    var events: [Endpointer.Event] = []
    chunk.withUnsafeBufferPointer { buffer in
      endpointer.process(buffer) { _, event in
        if let event { events.append(event) }
      }
    }
    for event in events {
      switch event {
      case .speechStarted(let start):
        onset = start
        try engine.beginUtterance(at: start)
      case .speechEnded(let end):
        result.finals.append(try engine.endUtterance(at: end))
        result.utterances.append((onset ?? 0)..<end)
        onset = nil
      }
    }
  }
  if let onset {
    let end = endpointer.lastSpeechEnd
    result.finals.append(try engine.endUtterance(at: end))
    result.utterances.append(onset..<end)
  }
  return result
}

/// espeak-ng's speech of `text` at `sampleRate` between silences, with a little seeded noise (as
/// a telephone line has: uniform, about -66 dBFS) so that no sample is digital silence.
func speech(
  _ text: String,
  sampleRate: Int,
  voice: String = "en-us",
  wordsPerMinute: Int? = nil,
  beforeMilliseconds: Int = 300,
  afterMilliseconds: Int = 800,
  seed: UInt64 = 1
) throws -> [Int16] {
  let voiced = try synthesizedSpeech(
    text,
    voice: voice,
    wordsPerMinute: wordsPerMinute,
    sampleRate: sampleRate
  )
  let silence = { (milliseconds: Int) in
    [Int16](repeating: 0, count: sampleRate * milliseconds / 1000)
  }
  var samples = silence(beforeMilliseconds) + voiced + silence(afterMilliseconds)
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  for index in samples.indices {
    // xorshift64*: the same noise for the same seed.
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    let noise = Int((state &* 0x2545_F491_4F6C_DD1D) >> 58) - 32
    samples[index] = Int16(clamping: Int(samples[index]) + noise)
  }
  return samples
}

/// Engines the tests share, each lent to one test at a time: a model loads once per engine, and
/// every recognition after the first runs on an engine that has recognized before (as a server's
/// pool reuses them).
final class SharedEngines: @unchecked Sendable {
  private static let shared = SharedEngines()
  private let lock = NSLock()
  private var idle: [SphinxEngine] = []

  /// Runs `body` with an engine of its own for the duration.
  @discardableResult
  static func with<T>(_ body: (SphinxEngine) throws -> T) throws -> T {
    let engine = try shared.lock.withLock { shared.idle.popLast() } ?? SphinxEngine()
    defer { shared.lock.withLock { shared.idle.append(engine) } }
    return try body(engine)
  }
}
