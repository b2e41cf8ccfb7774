public import HarkAudio
public import HarkProto

/// The parameters of a recognition, validated from its init message.
public struct RecognitionConfiguration: Sendable {
  /// The language, e.g. `en-US`.
  public var language: String
  /// The topic; `GEN` when the client named none.
  public var topic: String
  /// The audio's encoding and sample rate.
  public var audioFormat: AudioStreamFormat
  /// How utterances end the recognition.
  public var mode: UtteranceDetectionMode
  /// Which results the client wants.
  public var resultType: ResultType
  /// Whether the no-input and recognition timers wait for a `start_timers_message`.
  public var stallTimers: Bool
  /// Whether resources that fail to load become notifications rather than 502.
  public var maskLoadFailures: Bool
  /// Non-speech after the timers start, before any speech, that ends with 404; 0 means none.
  public var noInputTimeoutMs: Int
  /// Speech in one utterance that ends with 413; 0 means none.
  public var recognitionTimeoutMs: Int
  /// Non-speech that ends an utterance.
  public var utteranceEndSilenceMs: Int
  /// How readily sound counts as speech, 0 … 1.
  public var sensitivity: Float
  /// The most hypotheses a result carries.
  public var maxHypotheses: Int
  /// The resources: wordsets, builtins, grammars.
  public var resources: [RecognitionResource]
  /// The init message as the client sent it.
  public var initMessage: RecognitionInitMessage

  /// The silence that ends an utterance when the client asks for none (0).
  public static let defaultUtteranceEndSilenceMs = 500
  /// The sensitivity when the client asks for none.
  public static let defaultSensitivity: Float = 0.5
  /// The number of hypotheses when the client asks for none (0).
  public static let defaultMaxHypotheses = 10
  /// The largest value a timer may take (one day): larger values are bad requests.
  public static let maxTimerMs = 86_400_000
  /// The largest `max_hypotheses`.
  public static let maxHypothesesLimit = 100

  /// Why an init message is a bad request: its status 400 names `field` by its proto name
  /// (relative to `RecognitionParameters`, e.g. `audio_format.pcm.sample_rate_hz`).
  public struct ValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The offending field.
    public var field: String
    /// What is wrong with it.
    public var message: String

    public var description: String { "\(field): \(message)" }
  }

  /// Validates `message`.
  public init(validating message: RecognitionInitMessage) throws(ValidationError) {
    func fail(_ field: String, _ message: String) -> ValidationError {
      ValidationError(field: field, message: message)
    }
    guard let parameters = message.parameters else {
      throw fail("parameters", "the init message has no parameters")
    }
    let language = parameters.language.trimmingSpaces
    guard !language.isEmpty else { throw fail("language", "language is required, e.g. en-US") }

    guard let audioFormat = parameters.audioFormat?.format else {
      throw fail("audio_format", "audio_format is required (pcm, ulaw or alaw)")
    }
    let format: AudioStreamFormat
    switch audioFormat {
    case .pcm(let pcm):
      switch pcm.sampleRateHz {
      case 0, 8000: format = AudioStreamFormat(encoding: .linear16, sampleRate: 8000)
      case 16000: format = AudioStreamFormat(encoding: .linear16, sampleRate: 16000)
      default:
        throw fail(
          "audio_format.pcm.sample_rate_hz",
          "sample rate \(pcm.sampleRateHz) Hz is not supported: use 8000 or 16000"
        )
      }
    case .ulaw: format = AudioStreamFormat(encoding: .ulaw, sampleRate: 8000)
    case .alaw: format = AudioStreamFormat(encoding: .alaw, sampleRate: 8000)
    case .opus:
      throw fail("audio_format.opus", "Opus audio is not supported: use L16 PCM, µ-law or A-law")
    case .oggOpus:
      throw fail(
        "audio_format.ogg_opus",
        "Ogg Opus audio is not supported: use L16 PCM, µ-law or A-law"
      )
    }

    guard
      UtteranceDetectionMode.namedValues.contains(where: {
        $0.0 == parameters.utteranceDetectionMode
      })
    else {
      throw fail(
        "utterance_detection_mode",
        "unknown mode \(parameters.utteranceDetectionMode.rawValue)"
      )
    }
    guard ResultType.namedValues.contains(where: { $0.0 == parameters.resultType }) else {
      throw fail("result_type", "unknown result type \(parameters.resultType.rawValue)")
    }
    let sensitivity = parameters.speechDetectionSensitivity ?? Self.defaultSensitivity
    guard sensitivity >= 0 && sensitivity <= 1 else {
      throw fail("speech_detection_sensitivity", "sensitivity \(sensitivity) is outside 0 … 1")
    }
    for (field, value) in [
      ("no_input_timeout_ms", parameters.noInputTimeoutMs),
      ("recognition_timeout_ms", parameters.recognitionTimeoutMs),
      ("utterance_end_silence_ms", parameters.utteranceEndSilenceMs),
    ] where Int(value) > Self.maxTimerMs {
      throw fail(field, "\(value) ms is more than the maximum of \(Self.maxTimerMs) ms")
    }
    guard parameters.maxHypotheses <= Self.maxHypothesesLimit else {
      throw fail(
        "max_hypotheses",
        "\(parameters.maxHypotheses) is more than \(Self.maxHypothesesLimit)"
      )
    }

    self.language = language
    self.topic = parameters.topic.isEmpty ? "GEN" : parameters.topic
    self.audioFormat = format
    self.mode = parameters.utteranceDetectionMode
    self.resultType = parameters.resultType
    self.stallTimers = parameters.recognitionFlags?.stallTimers ?? false
    self.maskLoadFailures = parameters.recognitionFlags?.maskLoadFailures ?? false
    self.noInputTimeoutMs = Int(parameters.noInputTimeoutMs)
    self.recognitionTimeoutMs = Int(parameters.recognitionTimeoutMs)
    self.utteranceEndSilenceMs =
      parameters.utteranceEndSilenceMs == 0
      ? Self.defaultUtteranceEndSilenceMs : Int(parameters.utteranceEndSilenceMs)
    self.sensitivity = sensitivity
    self.maxHypotheses =
      parameters.maxHypotheses == 0 ? Self.defaultMaxHypotheses : Int(parameters.maxHypotheses)
    self.resources = message.resources
    self.initMessage = message
  }

  /// Samples per second.
  public var sampleRate: Int { audioFormat.sampleRate }

  /// `milliseconds` as a number of samples.
  public func samples(milliseconds: Int) -> Int { milliseconds * sampleRate / 1000 }

  /// A sample position as milliseconds from the start of the stream.
  public func milliseconds(samples: Int) -> UInt32 { UInt32(clamping: samples * 1000 / sampleRate) }
}

extension String {
  var trimmingSpaces: String {
    var scalars = Substring(self)
    while scalars.first?.isWhitespace == true { scalars.removeFirst() }
    while scalars.last?.isWhitespace == true { scalars.removeLast() }
    return String(scalars)
  }
}
