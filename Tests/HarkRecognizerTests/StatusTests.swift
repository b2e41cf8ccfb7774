import HarkAudio
import HarkClient
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Every row of DESIGN.md's status table, over real loopback sockets, with the exact sequence
/// of responses.
@Suite("Status table")
struct StatusTests {
  // MARK: Modes × result types

  struct ModeCase: CustomTestStringConvertible, Sendable {
    var mode: UtteranceDetectionMode
    var resultType: ResultType
    var expected: [String]
    var testDescription: String { "\(mode) × \(resultType)" }
  }

  /// "12", a pause longer than the end silence, then "34".
  static let twoUtterances: [DTMFGenerator.Segment] =
    keys("12", after: 1000) + keys("34", before: 0, after: 800)

  static let modeCases: [ModeCase] = [
    ModeCase(mode: .single, resultType: .final, expected: ["100", "sos", "final:12", "200"]),
    ModeCase(
      mode: .single,
      resultType: .partial,
      expected: ["100", "sos", "partial:1", "partial:12", "final:12", "200"]
    ),
    ModeCase(
      mode: .single,
      resultType: .immutablePartial,
      expected: ["100", "sos", "partial:1", "partial:12", "final:12", "200"]
    ),
    ModeCase(
      mode: .multiple,
      resultType: .final,
      expected: ["100", "sos", "final:12", "sos", "final:34", "200"]
    ),
    ModeCase(
      mode: .multiple,
      resultType: .partial,
      expected: [
        "100", "sos", "partial:1", "partial:12", "final:12", "sos", "partial:3", "partial:34",
        "final:34", "200",
      ]
    ),
    ModeCase(
      mode: .multiple,
      resultType: .immutablePartial,
      expected: [
        "100", "sos", "partial:1", "partial:12", "final:12", "sos", "partial:3", "partial:34",
        "final:34", "200",
      ]
    ),
    ModeCase(mode: .disabled, resultType: .final, expected: ["100", "sos", "final:1234", "200"]),
    ModeCase(
      mode: .disabled,
      resultType: .partial,
      expected: [
        "100", "sos", "partial:1", "partial:12", "partial:123", "partial:1234", "final:1234", "200",
      ]
    ),
    ModeCase(
      mode: .disabled,
      resultType: .immutablePartial,
      expected: [
        "100", "sos", "partial:1", "partial:12", "partial:123", "partial:1234", "final:1234", "200",
      ]
    ),
  ]

  @Test("each mode × result type gives its exact sequence", arguments: modeCases)
  func modes(_ modeCase: ModeCase) async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(
      makeInit(mode: modeCase.mode, resultType: modeCase.resultType),
      audio: dtmfAudio(Self.twoUtterances)
    )
    #expect(events.map(\.summary) == modeCase.expected)
    await harness.stop()
  }

  @Test("the final result carries times, words and utterance information")
  func resultFields() async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(
      makeInit(mode: .single),
      audio: dtmfAudio(keys("12", before: 500))
    )
    guard case .startOfSpeech(let sos) = events[1], case .finalResult(let result) = events[2] else {
      Issue.record("unexpected events \(events.map(\.summary))")
      return
    }
    // Speech starts at 500 ms, within a 10 ms frame.
    #expect((490...510).contains(sos.firstAudioToStartOfSpeechMs))
    #expect((490...510).contains(result.absStartMs))
    // "1" 500–600 ms, gap, "2" 700–800 ms.
    #expect((790...820).contains(result.absEndMs))
    let words = result.hypotheses[0].words
    #expect(words.map(\.text) == ["1", "2"])
    #expect(abs(Int(words[0].startMs) - 500) <= 10 && abs(Int(words[0].endMs) - 600) <= 10)
    #expect(abs(Int(words[1].startMs) - 700) <= 10 && abs(Int(words[1].endMs) - 800) <= 10)
    #expect((90...110).contains(words[0].silenceAfterWordMs))
    #expect(result.hypotheses[0].confidence == 1)
    #expect(result.utteranceInfo?.durationMs == result.absEndMs - result.absStartMs)
    #expect(result.utteranceInfo?.dsp?.numChannels == 1)
    #expect((result.utteranceInfo?.dsp?.snrEstimateDb ?? 0) > 20)
    #expect(result.dataPack?.language == "en-US")
    await harness.stop()
  }

  // MARK: 200 and 204

  @Test("an utterance with no key presses gets a rejected hypothesis, and 200")
  func rejected() async throws {
    let harness = try await RecognizerHarness.start()
    // A loud single tone: speech to the endpointer, no DTMF key.
    let tone = DTMFGenerator.Segment(tones: [.init(frequency: 440, level: -10)], milliseconds: 400)
    let events = try await harness.recognize(
      makeInit(mode: .single),
      audio: dtmfAudio([.silence(milliseconds: 300), tone, .silence(milliseconds: 800)])
    )
    #expect(events.map(\.summary) == ["100", "sos", "final:(rejected)", "200"])
    await harness.stop()
  }

  @Test("204: audio without an utterance, and a stream closed before any audio")
  func noResult() async throws {
    let harness = try await RecognizerHarness.start()
    let silent = try await harness.recognize(
      makeInit(),
      audio: dtmfAudio([.silence(milliseconds: 1000)])
    )
    #expect(silent.map(\.summary) == ["100", "204"])
    let empty = try await harness.recognize(makeInit(), audio: ByteBuffer())
    #expect(empty.map(\.summary) == ["100", "204"])
    await harness.stop()
  }

  // MARK: 400

  static let badInits: [(String, RecognitionInitMessage)] = [
    ("language", makeInit { $0.language = "" }),
    ("parameters", RecognitionInitMessage(parameters: nil)),
    ("audio_format", makeInit { $0.audioFormat = nil }),
    ("audio_format.pcm.sample_rate_hz", makeInit(sampleRate: 44_100)),
    ("audio_format.opus", makeInit(format: AudioFormat(.opus(Opus())))),
    ("audio_format.ogg_opus", makeInit(format: AudioFormat(.oggOpus(OggOpus())))),
    ("speech_detection_sensitivity", makeInit { $0.speechDetectionSensitivity = 1.5 }),
    ("speech_detection_sensitivity", makeInit { $0.speechDetectionSensitivity = .nan }),
    (
      "utterance_detection_mode",
      makeInit { $0.utteranceDetectionMode = UtteranceDetectionMode(rawValue: 9) }
    ),
    ("utterance_end_silence_ms", makeInit { $0.utteranceEndSilenceMs = 100_000_000 }),
    ("max_hypotheses", makeInit { $0.maxHypotheses = 1000 }),
    (
      "resources[0].builtin",
      {
        var message = makeInit()
        message.resources = [RecognitionResource(.builtin("zipcode"))]
        return message
      }()
    ),
    (
      "resources[0].inline_wordset",
      {
        var message = makeInit()
        message.resources = [RecognitionResource(.inlineWordset("{not json"))]
        return message
      }()
    ),
  ]

  @Test("400 names the offending field", arguments: badInits)
  func badInit(_ field: String, _ message: RecognitionInitMessage) async throws {
    let harness = try await RecognizerHarness.start()
    let responses = try await harness.rawCall([.initMessage(message)])
    #expect(responses.map(\.summary) == ["400"])
    #expect(responses.first?.status?.details.hasPrefix(field + ":") == true, "\(responses)")
    await harness.stop()
  }

  @Test("400 for audio before the init, a second init, and a stream that ends without an init")
  func outOfOrder() async throws {
    let harness = try await RecognizerHarness.start()
    let audioFirst = try await harness.rawCall([
      .audio(ByteBuffer(repeating: 0, count: 320)), .initMessage(makeInit()),
    ])
    #expect(audioFirst.map(\.summary) == ["400"])
    #expect(audioFirst.first?.status?.details.contains("recognition_init_message") == true)

    let secondInit = try await harness.rawCall([.initMessage(makeInit()), .initMessage(makeInit())])
    #expect(secondInit.map(\.summary) == ["100", "400"])
    #expect(secondInit.last?.status?.details.contains("recognition_init_message") == true)

    let nothing = try await harness.rawCall([])
    #expect(nothing.map(\.summary) == ["400"])
    await harness.stop()
  }

  // MARK: 401, 403

  @Test("401 without a valid token, 403 for a topic the token may not use")
  func authorization() async throws {
    let harness = try await RecognizerHarness.start { metadata, configuration in
      guard metadata.first("authorization") == "Bearer good" else {
        return RecognitionStatus(
          code: 401,
          message: "Unauthorized",
          details: "a valid bearer token is required"
        )
      }
      if configuration.topic == "SECRET" {
        return RecognitionStatus(
          code: 403,
          message: "Forbidden",
          details: "topic SECRET is not allowed"
        )
      }
      return nil
    }
    let noToken = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("1")))
    #expect(noToken.map(\.summary) == ["401"])
    var good = GRPCMetadata()
    try good.add("authorization", "Bearer good")
    let forbidden = try await harness.recognize(
      makeInit { $0.topic = "SECRET" },
      audio: dtmfAudio(keys("1")),
      metadata: good
    )
    #expect(forbidden.map(\.summary) == ["403"])
    let allowed = try await harness.recognize(
      makeInit(mode: .single),
      audio: dtmfAudio(keys("1")),
      metadata: good
    )
    #expect(allowed.map(\.summary) == ["100", "sos", "final:1", "200"])
    await harness.stop()
  }

  // MARK: Timers

  @Test("404: no speech within no_input_timeout_ms")
  func noSpeech() async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(
      makeInit { $0.noInputTimeoutMs = 500 },
      audio: dtmfAudio([.silence(milliseconds: 2000)])
    )
    #expect(events.map(\.summary) == ["100", "404"])
    await harness.stop()
  }

  @Test("no_input_timeout_ms no longer applies after the first utterance")
  func noInputAfterSpeech() async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(
      makeInit { $0.noInputTimeoutMs = 500 },
      audio: dtmfAudio(keys("7", before: 200, after: 3000))
    )
    #expect(events.map(\.summary) == ["100", "sos", "final:7", "200"])
    await harness.stop()
  }

  @Test("408: no audio message for the idle timeout")
  func audioTimeout() async throws {
    let harness = try await RecognizerHarness.start(idleTimeout: .milliseconds(300))
    let start = ContinuousClock.now
    let responses = try await harness.rawCall(
      [.initMessage(makeInit())] + audioRequests(dtmfAudio([.silence(milliseconds: 100)])),
      halfClose: false
    )
    #expect(responses.map(\.summary) == ["100", "408"])
    // The idle timer ended the call, not the test's limit (a bound on hanging, not on speed).
    #expect(ContinuousClock.now - start < .seconds(20))
    await harness.stop()
  }

  @Test("413: speech longer than recognition_timeout_ms, after a final result of what was heard")
  func tooMuchSpeech() async throws {
    let harness = try await RecognizerHarness.start()
    let events = try await harness.recognize(
      makeInit { $0.recognitionTimeoutMs = 300 },
      audio: dtmfAudio([
        .silence(milliseconds: 300), .dtmf(.five, milliseconds: 1500), .silence(milliseconds: 800),
      ])
    )
    #expect(events.map(\.summary) == ["100", "sos", "final:5", "413"])
    await harness.stop()
  }

  @Test("stall_timers holds the timers until start_timers_message, which is answered with 100")
  func stalledTimers() async throws {
    let harness = try await RecognizerHarness.start()
    let silence = audioRequests(dtmfAudio([.silence(milliseconds: 1000)]))
    let responses = try await harness.rawCall(
      [
        .initMessage(
          makeInit {
            $0.noInputTimeoutMs = 300; $0.recognitionFlags = .stalled
          }
        )
      ] + silence
        + [.startTimers] + silence
    )
    #expect(responses.map(\.summary) == ["100", "100", "404"])
    // Without the stall, the same silence is a 404 within the first second.
    let unstalled = try await harness.rawCall(
      [.initMessage(makeInit { $0.noInputTimeoutMs = 300 })] + silence
    )
    #expect(unstalled.map(\.summary) == ["100", "404"])
    // A second start_timers_message, while the timers run, is ignored.
    let twice = try await harness.rawCall(
      [
        .initMessage(
          makeInit {
            $0.noInputTimeoutMs = 300; $0.recognitionFlags = .stalled
          }
        ), .startTimers, .startTimers,
      ]
        + silence
    )
    #expect(twice.map(\.summary) == ["100", "100", "404"])
    await harness.stop()
  }

  @Test("the client library sends start_timers_message when asked")
  func clientStartsTimers() async throws {
    let harness = try await RecognizerHarness.start()
    let frames = AudioClip(
      format: .linear16(sampleRate: 8000),
      bytes: dtmfAudio([.silence(milliseconds: 2000)])
    )
    .frames(pacing: .realTime)
    let summary = try await harness.client.recognize(
      makeInit {
        $0.noInputTimeoutMs = 300; $0.recognitionFlags = .stalled
      },
      audio: frames
    ) { recognition in
      var events: [String] = []
      for await event in recognition.events {
        events.append(event.summary)
        if case .started = event { recognition.startTimers() }
      }
      return events
    }
    #expect(summary == ["100", "timers:100", "404"])
    await harness.stop()
  }

  // MARK: 409, 410, 429

  @Test("409 while every recognizer is busy; the engine returns when its RPC ends")
  func conflict() async throws {
    let harness = try await RecognizerHarness.start(recognizers: 1)
    let released = NIOLockedValueBox(false)
    let busy = Task {
      // Holds the only recognizer until the refused call below has been answered.
      try await harness.rawCall(
        [.initMessage(makeInit())],
        holdUntil: { released.withLockedValue { $0 } }
      )
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    let refused = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("1")))
    #expect(refused.map(\.summary) == ["409"])
    released.withLockedValue { $0 = true }
    #expect(try await busy.value.map(\.summary) == ["100", "204"])
    let later = try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("1")))
    #expect(later.map(\.summary) == ["100", "sos", "final:1", "200"])
    await harness.stop()
  }

  @Test("410: start_timers_message before any init")
  func notRecognizing() async throws {
    let harness = try await RecognizerHarness.start()
    let responses = try await harness.rawCall([.startTimers, .initMessage(makeInit())])
    #expect(responses.map(\.summary) == ["410"])
    await harness.stop()
  }

  @Test("429: more new recognitions per second than the server allows")
  func tooManyRequests() async throws {
    // One recognition per 100 s: the second is refused however slowly the first runs.
    let harness = try await RecognizerHarness.start(maxSessionsPerSecond: 0.01)
    let first = try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("1")))
    let second = try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("1")))
    #expect(first.map(\.summary) == ["100", "sos", "final:1", "200"])
    #expect(second.map(\.summary) == ["429"])
    await harness.stop()
  }

  @Test("409 and 429 tell the client when to try again, in their trailers (gRFC A6)")
  func pushbackTrailers() async throws {
    let harness = try await RecognizerHarness.start(recognizers: 1, maxSessionsPerSecond: 0.5)
    let port = harness.port
    let first = try await RawRecognizeCall.call(port: port, [.initMessage(makeInit())])
    #expect(first.responses.statusCodes == [100, 204])
    #expect(!first.trailers.contains { $0.0 == "grpc-retry-pushback-ms" })
    // The limit allows one recognition every 2 s: the next is refused, to be tried again once
    // the limit allows one (at most 2 s later).
    let limited = try await RawRecognizeCall.call(port: port, [.initMessage(makeInit())])
    #expect(limited.responses.statusCodes == [429])
    let pushback = limited.trailers.first { $0.0 == "grpc-retry-pushback-ms" }.flatMap {
      Int($0.1)
    }
    #expect(pushback.map { $0 > 0 && $0 <= 2000 } == true, "\(limited.trailers)")
    let retryAfter = limited.trailers.first { $0.0 == "retry-after" }.flatMap { Int($0.1) }
    #expect(retryAfter.map { $0 >= 1 && $0 <= 2 } == true, "\(limited.trailers)")
    await harness.stop()

    // 409: every recognizer busy.
    let busy = try await RecognizerHarness.start(recognizers: 1)
    let released = NIOLockedValueBox(false)
    let holder = Task {
      try await busy.rawCall(
        [.initMessage(makeInit())],
        holdUntil: { released.withLockedValue { $0 } }
      )
    }
    #expect(await eventually { busy.server.activeRecognitions == 1 })
    let refused = try await RawRecognizeCall.call(port: busy.port, [.initMessage(makeInit())])
    #expect(refused.responses.statusCodes == [409])
    #expect(
      refused.trailers.contains { $0 == ("grpc-retry-pushback-ms", "1000") }
        && refused.trailers.contains { $0 == ("retry-after", "1") },
      "\(refused.trailers)"
    )
    released.withLockedValue { $0 = true }
    _ = try await holder.value
    await busy.stop()
  }

  // MARK: 500, 502, 512

  @Test("500 when the engine fails")
  func engineFailure() async throws {
    let harness = try await RecognizerHarness.start(makeEngine: { TestEngine(failOnAudio: true) })
    let events = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("1")))
    #expect(events.map(\.summary) == ["100", "500"])
    await harness.stop()
  }

  @Test("502 when a resource fails to load; a notification instead with mask_load_failures")
  func resourceFailure() async throws {
    let harness = try await RecognizerHarness.start(makeEngine: { TestEngine(failOnAudio: false) })
    var failing = makeInit(mode: .single)
    failing.resources = [RecognitionResource(.inlineGrammar("<broken"))]
    let events = try await harness.recognize(failing, audio: dtmfAudio(keys("1")))
    #expect(events.map(\.summary) == ["502"])

    var masked = failing
    masked.parameters?.recognitionFlags = RecognitionFlags.masking
    let maskedEvents = try await harness.recognize(masked, audio: dtmfAudio(keys("1")))
    #expect(maskedEvents.map(\.summary) == ["100", "sos", "final:1", "200"])
    if case .finalResult(let result) = maskedEvents[2] {
      #expect(result.notifications.first?.message?.message.contains("grammar") == true)
    }
    await harness.stop()
  }

  @Test("512: a shutdown ends every recognition in flight")
  func shutdown() async throws {
    let harness = try await RecognizerHarness.start()
    let inFlight = Task {
      // Until the shutdown ends it.
      try await harness.rawCall([.initMessage(makeInit())], pause: .seconds(60))
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    await harness.server.shutdown(gracePeriod: .seconds(1))
    let responses = try await inFlight.value
    #expect(responses.map(\.summary) == ["100", "512"])
    await harness.client.close()
  }

  // MARK: Audio formats

  @Test(
    "L16 at 16 kHz, µ-law and A-law, in frames of any size",
    arguments: ["l16-16k", "ulaw", "alaw", "odd-frames"]
  )
  func formats(_ name: String) async throws {
    let harness = try await RecognizerHarness.start()
    let segments = keys("42", after: 800)
    let message: RecognitionInitMessage
    let audio: ByteBuffer
    var frameBytes = 320
    switch name {
    case "l16-16k":
      message = makeInit(sampleRate: 16000, mode: .single)
      audio = dtmfAudio(segments, sampleRate: 16000)
      frameBytes = 640
    case "ulaw", "alaw":
      message = makeInit(format: name == "ulaw" ? .ulaw : .alaw, mode: .single)
      var generator = DTMFGenerator(sampleRate: 8000, seed: 3)
      let samples = generator.generate(segments)
      audio = ByteBuffer(
        bytes: samples.map { name == "ulaw" ? G711.linearToULaw($0) : G711.linearToALaw($0) }
      )
      frameBytes = 160
    default:
      message = makeInit(mode: .single)
      audio = dtmfAudio(segments)
      frameBytes = 161  // odd: samples split across messages
    }
    let responses = try await harness.rawCall(
      [.initMessage(message)] + audioRequests(audio, frameBytes: frameBytes)
    )
    #expect(responses.map(\.summary) == ["100", "sos", "final:42", "200"])
    let expectedDetails = [
      "l16-16k": "audio/l16;rate=16000", "ulaw": "audio/pcmu;rate=8000",
      "alaw": "audio/pcma;rate=8000",
      "odd-frames": "audio/l16;rate=8000",
    ][name]!
    #expect(responses.first?.status?.details == "recognition started on \(expectedDetails) stream")
    await harness.stop()
  }
}

/// An engine for the 500 and 502 rows: fails on audio, or fails to load any grammar.
final class TestEngine: SpeechEngine {
  let failOnAudio: Bool
  let dtmf = DTMFEngine()

  init(failOnAudio: Bool) {
    self.failOnAudio = failOnAudio
  }

  func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice] {
    for (index, resource) in configuration.resources.enumerated() {
      if case .inlineGrammar? = resource.resource {
        if configuration.maskLoadFailures {
          return [
            EngineNotice(
              code: 502,
              message: "the inline grammar of resources[\(index)] did not load"
            )
          ]
        }
        throw EngineError(
          .resourceFailed(field: "resources[\(index)].inline_grammar"),
          "the grammar did not compile"
        )
      }
    }
    var plain = configuration
    plain.resources = []
    return try dtmf.prepare(plain)
  }

  func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis? {
    if failOnAudio { throw EngineError(.internalFailure, "the test engine fails on audio") }
    return try dtmf.process(samples, at: position)
  }

  func beginUtterance(at onset: Int) throws(EngineError) { try dtmf.beginUtterance(at: onset) }
  func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
    try dtmf.endUtterance(at: end)
  }
  func reset() { dtmf.reset() }
}

extension RecognitionFlags {
  static var stalled: RecognitionFlags {
    var flags = RecognitionFlags()
    flags.stallTimers = true
    return flags
  }

  static var masking: RecognitionFlags {
    var flags = RecognitionFlags()
    flags.maskLoadFailures = true
    return flags
  }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(
  within seconds: Double = 30,
  _ condition: () async throws -> Bool
) async rethrows -> Bool {
  let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
  while ContinuousClock.now < deadline {
    if try await condition() { return true }
    try? await Task.sleep(nanoseconds: 10_000_000)
  }
  return try await condition()
}
