import HarkAudio
import HarkProto
import HarkRecognizer
import Testing

/// Validating an init message: every 400 names its field by its proto name.
@Suite("Recognition configuration")
struct RecognitionConfigurationTests {
  struct InvalidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var message: RecognitionInitMessage
    var field: String
    var error: String
    var testDescription: String { name }

    init(
      _ name: String,
      field: String,
      error: String,
      configure: (inout RecognitionParameters) -> Void
    ) {
      self.name = name
      self.message = makeInit(configure: configure)
      self.field = field
      self.error = error
    }

    init(_ name: String, message: RecognitionInitMessage, field: String, error: String) {
      self.name = name
      self.message = message
      self.field = field
      self.error = error
    }
  }

  @Test(
    "each invalid init message is a 400 naming its field",
    arguments: [
      InvalidCase(
        "no parameters",
        message: RecognitionInitMessage(),
        field: "parameters",
        error: "the init message has no parameters"
      ),
      InvalidCase("no language", field: "language", error: "language is required, e.g. en-US") {
        $0.language = ""
      },
      InvalidCase("a blank language", field: "language", error: "language is required, e.g. en-US")
      {
        $0.language = " \t "
      },
      InvalidCase(
        "no audio format",
        field: "audio_format",
        error: "audio_format is required (pcm, ulaw or alaw)"
      ) { $0.audioFormat = nil },
      InvalidCase(
        "an audio format with no format",
        field: "audio_format",
        error: "audio_format is required (pcm, ulaw or alaw)"
      ) { $0.audioFormat = AudioFormat(nil) },
      InvalidCase(
        "PCM at 44.1 kHz",
        field: "audio_format.pcm.sample_rate_hz",
        error: "sample rate 44100 Hz is not supported: use 8000 or 16000"
      ) { $0.audioFormat = .pcm(sampleRateHz: 44100) },
      InvalidCase(
        "Opus",
        field: "audio_format.opus",
        error: "Opus audio is not supported: use L16 PCM, µ-law or A-law"
      ) { $0.audioFormat = AudioFormat(.opus(Opus())) },
      InvalidCase(
        "Ogg Opus",
        field: "audio_format.ogg_opus",
        error: "Ogg Opus audio is not supported: use L16 PCM, µ-law or A-law"
      ) { $0.audioFormat = AudioFormat(.oggOpus(OggOpus())) },
      InvalidCase(
        "an unknown mode",
        field: "utterance_detection_mode",
        error: "unknown mode 3"
      ) { $0.utteranceDetectionMode = UtteranceDetectionMode(rawValue: 3) },
      InvalidCase(
        "an unknown result type",
        field: "result_type",
        error: "unknown result type -1"
      ) { $0.resultType = ResultType(rawValue: -1) },
      InvalidCase(
        "a sensitivity above 1",
        field: "speech_detection_sensitivity",
        error: "sensitivity 1.5 is outside 0 … 1"
      ) { $0.speechDetectionSensitivity = 1.5 },
      InvalidCase(
        "a negative sensitivity",
        field: "speech_detection_sensitivity",
        error: "sensitivity -0.1 is outside 0 … 1"
      ) { $0.speechDetectionSensitivity = -0.1 },
      InvalidCase(
        "a sensitivity that is not a number",
        field: "speech_detection_sensitivity",
        error: "sensitivity nan is outside 0 … 1"
      ) { $0.speechDetectionSensitivity = .nan },
      InvalidCase(
        "no_input_timeout_ms over a day",
        field: "no_input_timeout_ms",
        error: "86400001 ms is more than the maximum of 86400000 ms"
      ) { $0.noInputTimeoutMs = 86_400_001 },
      InvalidCase(
        "recognition_timeout_ms over a day",
        field: "recognition_timeout_ms",
        error: "4294967295 ms is more than the maximum of 86400000 ms"
      ) { $0.recognitionTimeoutMs = .max },
      InvalidCase(
        "utterance_end_silence_ms over a day",
        field: "utterance_end_silence_ms",
        error: "86400001 ms is more than the maximum of 86400000 ms"
      ) { $0.utteranceEndSilenceMs = 86_400_001 },
      InvalidCase(
        "max_hypotheses over 100",
        field: "max_hypotheses",
        error: "101 is more than 100"
      ) { $0.maxHypotheses = 101 },
      InvalidCase(
        "the first bad field is the one named",
        field: "language",
        error: "language is required, e.g. en-US"
      ) {
        $0.language = ""
        $0.audioFormat = nil
        $0.maxHypotheses = 1000
      },
    ]
  )
  func invalid(_ invalidCase: InvalidCase) {
    let error = #expect(throws: RecognitionConfiguration.ValidationError.self) {
      try RecognitionConfiguration(validating: invalidCase.message)
    }
    #expect(error?.field == invalidCase.field)
    #expect(error?.message == invalidCase.error)
    #expect(error?.description == "\(invalidCase.field): \(invalidCase.error)")
  }

  @Test("the limits themselves are valid")
  func limits() throws {
    let configuration = try RecognitionConfiguration(
      validating: makeInit {
        $0.noInputTimeoutMs = 86_400_000
        $0.recognitionTimeoutMs = 86_400_000
        $0.utteranceEndSilenceMs = 86_400_000
        $0.maxHypotheses = 100
        $0.speechDetectionSensitivity = 0
      }
    )
    #expect(configuration.noInputTimeoutMs == 86_400_000)
    #expect(configuration.recognitionTimeoutMs == 86_400_000)
    #expect(configuration.utteranceEndSilenceMs == 86_400_000)
    #expect(configuration.maxHypotheses == 100)
    #expect(configuration.sensitivity == 0)
  }

  @Test("defaults: topic GEN, 500 ms end silence, sensitivity 0.5, 10 hypotheses, SINGLE, FINAL")
  func defaults() throws {
    let message = RecognitionInitMessage(
      parameters: RecognitionParameters(language: " en-US ", audioFormat: .pcm(sampleRateHz: 0))
    )
    let configuration = try RecognitionConfiguration(validating: message)
    #expect(configuration.language == "en-US")
    #expect(configuration.topic == "GEN")
    #expect(configuration.audioFormat == .linear16(sampleRate: 8000))
    #expect(configuration.mode == .single)
    #expect(configuration.resultType == .final)
    #expect(configuration.stallTimers == false)
    #expect(configuration.maskLoadFailures == false)
    #expect(configuration.noInputTimeoutMs == 0)
    #expect(configuration.recognitionTimeoutMs == 0)
    #expect(configuration.utteranceEndSilenceMs == 500)
    #expect(configuration.sensitivity == 0.5)
    #expect(configuration.maxHypotheses == 10)
    #expect(configuration.resources.isEmpty)
    #expect(configuration.initMessage == message)
  }

  @Test("values as given")
  func values() throws {
    var message = makeInit(sampleRate: 16000, mode: .multiple, resultType: .immutablePartial) {
      $0.topic = "BANKING"
      var flags = RecognitionFlags()
      flags.stallTimers = true
      flags.maskLoadFailures = true
      $0.recognitionFlags = flags
      $0.noInputTimeoutMs = 3000
      $0.recognitionTimeoutMs = 10_000
      $0.utteranceEndSilenceMs = 800
      $0.speechDetectionSensitivity = 0.25
      $0.maxHypotheses = 3
    }
    message.resources = [RecognitionResource(.builtin("digits"))]
    let configuration = try RecognitionConfiguration(validating: message)
    #expect(configuration.topic == "BANKING")
    #expect(configuration.audioFormat == .linear16(sampleRate: 16000))
    #expect(configuration.mode == .multiple)
    #expect(configuration.resultType == .immutablePartial)
    #expect(configuration.stallTimers)
    #expect(configuration.maskLoadFailures)
    #expect(configuration.noInputTimeoutMs == 3000)
    #expect(configuration.recognitionTimeoutMs == 10_000)
    #expect(configuration.utteranceEndSilenceMs == 800)
    #expect(configuration.sensitivity == 0.25)
    #expect(configuration.maxHypotheses == 3)
    #expect(configuration.resources == [RecognitionResource(.builtin("digits"))])
  }

  @Test(
    "formats and their sample rates",
    arguments: [
      (AudioFormat.pcm(sampleRateHz: 8000), AudioStreamFormat.linear16(sampleRate: 8000)),
      (.pcm(sampleRateHz: 16000), .linear16(sampleRate: 16000)),
      (AudioFormat(.ulaw(ULaw())), .ulaw),
      (AudioFormat(.alaw(ALaw())), .alaw),
    ]
  )
  func formats(format: AudioFormat, expected: AudioStreamFormat) throws {
    let configuration = try RecognitionConfiguration(validating: makeInit(format: format))
    #expect(configuration.audioFormat == expected)
    #expect(configuration.sampleRate == expected.sampleRate)
  }

  @Test("milliseconds and samples convert at the stream's rate")
  func conversions() throws {
    let narrow = try RecognitionConfiguration(validating: makeInit(sampleRate: 8000))
    #expect(narrow.samples(milliseconds: 800) == 6400)
    #expect(narrow.milliseconds(samples: 6400) == 800)
    #expect(narrow.milliseconds(samples: 6407) == 800)
    let wide = try RecognitionConfiguration(validating: makeInit(sampleRate: 16000))
    #expect(wide.samples(milliseconds: 800) == 12800)
    #expect(wide.milliseconds(samples: 12800) == 800)
  }
}
