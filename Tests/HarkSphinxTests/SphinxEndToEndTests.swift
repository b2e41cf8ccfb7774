import HarkAudio
import HarkClient
import HarkProto
import HarkRecognizer
import HarkServer
import HarkSphinx
import NIOCore
import Testing

/// The sphinx engine behind a real `RecognizerServer` on a loopback port, driven by the client
/// library: the statuses and results a client sees.
@Suite("sphinx end to end", .serialized)
struct SphinxEndToEndTests {
  /// Runs `body` with a client of a sphinx recognizer on a free loopback port.
  static func withRecognizer(
    _ body: (RecognizerClient) async throws -> Void
  ) async throws {
    var configuration = RecognizerServer.Configuration(host: "127.0.0.1", port: 0, recognizers: 2)
    // Loading a model takes long: not on the event loop the other tests share.
    configuration.prewarmEngines = true
    let server = RecognizerServer(
      configuration: configuration,
      makeEngine: {
        // The model's presence is what the engine tests check; here it is a precondition.
        try! SphinxEngine()
      }
    )
    let port = try await server.start().port!
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    do {
      try await body(client)
    } catch {
      await client.close()
      await server.shutdown(gracePeriod: .milliseconds(200))
      throw error
    }
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(200))
  }

  /// Streams `samples` (L16 at `sampleRate`) in 20 ms messages; returns every event.
  static func recognize(
    _ client: RecognizerClient,
    _ samples: [Int16],
    sampleRate: Int,
    resources: [RecognitionResource] = [],
    language: String = "en-US",
    configure: (inout RecognitionParameters) -> Void = { _ in }
  ) async throws -> [RecognitionEvent] {
    var parameters = RecognitionParameters(
      language: language,
      audioFormat: .pcm(sampleRateHz: UInt32(sampleRate))
    )
    parameters.utteranceDetectionMode = .single
    configure(&parameters)
    var bytes = ByteBuffer()
    for sample in samples { bytes.writeInteger(sample, endianness: .little) }
    let frames = AudioClip(format: .linear16(sampleRate: sampleRate), bytes: bytes).frames()
    return try await client.recognize(
      RecognitionInitMessage(parameters: parameters, resources: resources),
      audio: frames
    ) { recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events { events.append(event) }
      return events
    }
  }

  @Test("a wordset at 8 kHz: 100, start of speech, operator, 200")
  func wordset() async throws {
    try await Self.withRecognizer { client in
      let samples = try speech("operator", sampleRate: 8000)
      let events = try await Self.recognize(
        client,
        samples,
        sampleRate: 8000,
        resources: [departments]
      )
      #expect(events.map(\.summary) == ["100", "sos", "final:operator", "200"])
      guard case .finalResult(let result)? = events.first(where: \.isFinal) else { return }
      let hypothesis = try #require(result.hypotheses.first)
      #expect(hypothesis.grammarID == "wordset:DEPARTMENT")
      #expect(hypothesis.rejected == false)
      let duration = UInt32(samples.count * 1000 / 8000)
      #expect(hypothesis.words.map(\.text) == ["operator"])
      #expect(hypothesis.words.allSatisfy { $0.startMs < $0.endMs && $0.endMs <= duration })
      #expect(result.absStartMs <= hypothesis.words[0].startMs + 250)
    }
  }

  @Test("builtin digits at 16 kHz, with partial results")
  func digits() async throws {
    try await Self.withRecognizer { client in
      let events = try await Self.recognize(
        client,
        try speech("one two three", sampleRate: 16000),
        sampleRate: 16000,
        resources: [RecognitionResource(.builtin("digits"))]
      ) { $0.resultType = .partial }
      let summaries = events.map(\.summary)
      #expect(summaries.first == "100")
      #expect(summaries.suffix(2) == ["final:123", "200"])
      #expect(summaries.contains { $0.hasPrefix("partial:") })
    }
  }

  @Test("dictation: a transcript with word times inside the audio")
  func dictation() async throws {
    try await Self.withRecognizer { client in
      let samples = try speech("please connect me to the billing department", sampleRate: 16000)
      let events = try await Self.recognize(client, samples, sampleRate: 16000)
      #expect(events.map(\.summary).last == "200")
      guard case .finalResult(let result)? = events.first(where: \.isFinal) else {
        Issue.record("no final result: \(events.map(\.summary))")
        return
      }
      let hypothesis = try #require(result.hypotheses.first)
      #expect(!hypothesis.formattedText.isEmpty)
      let duration = UInt32(samples.count * 1000 / 16000)
      #expect(!hypothesis.words.isEmpty)
      #expect(hypothesis.words.allSatisfy { $0.startMs < $0.endMs && $0.endMs <= duration })
    }
  }

  @Test(
    "what the engine refuses ends the recognition with the status naming it",
    arguments: [
      ("fr-FR", [RecognitionResource](), 400, "language"),
      (
        "en-US", [RecognitionResource(.inlineGrammar(srgs("<ruleref uri=\"#a\"/>")))], 400,
        "<ruleref>"
      ),
      (
        "en-US", [RecognitionResource(.inlineGrammar("yes | no"))], 502,
        "resources[0].inline_grammar"
      ),
    ]
  )
  func refused(
    _ language: String,
    resources: [RecognitionResource],
    code: Int,
    naming: String
  ) async throws {
    try await Self.withRecognizer { client in
      let events = try await Self.recognize(
        client,
        try speech("yes", sampleRate: 8000),
        sampleRate: 8000,
        resources: resources,
        language: language
      )
      guard case .finished(let outcome)? = events.last else {
        Issue.record("no outcome: \(events.map(\.summary))")
        return
      }
      #expect(outcome.code == UInt32(code))
      #expect(outcome.status?.details.contains(naming) == true)
    }
  }

  @Test("a grammar that does not load, masked: a notification, and dictation instead")
  func maskedLoadFailure() async throws {
    try await Self.withRecognizer { client in
      let events = try await Self.recognize(
        client,
        try speech("yes", sampleRate: 8000),
        sampleRate: 8000,
        resources: [RecognitionResource(.inlineGrammar("#JSGF V1.0; grammar g; public <g> = (;"))]
      ) { parameters in
        var flags = RecognitionFlags()
        flags.maskLoadFailures = true
        parameters.recognitionFlags = flags
      }
      #expect(events.map(\.summary).first == "100")
      #expect(events.map(\.summary).last == "200")
      guard case .finalResult(let result)? = events.first(where: \.isFinal) else {
        Issue.record("no final result: \(events.map(\.summary))")
        return
      }
      #expect(result.notifications.count == 1)
      #expect(
        result.notifications.first?.message?.message.contains("resources[0].inline_grammar")
          == true
      )
    }
  }
}

extension RecognitionEvent {
  /// "100", "sos", "partial:…", "final:…", then the outcome's code.
  var summary: String {
    switch self {
    case .started(let status, _): "\(status.code)"
    case .timersStarted(let status): "timers:\(status.code)"
    case .informational(let status): "info:\(status.code)"
    case .startOfSpeech: "sos"
    case .partialResult(let result): "partial:\(result.hypotheses.first?.formattedText ?? "")"
    case .finalResult(let result):
      "final:\(result.hypotheses.first?.formattedText ?? "")"
        + (result.hypotheses.first?.rejected == true ? "(rejected)" : "")
    case .retrying(let attempt, _, let reason):
      "retry\(attempt):\(reason.code.map(String.init) ?? "\(reason.kind)")"
    case .resumed(let atMs): "resumed@\(atMs)"
    case .finished(let outcome): outcome.code.map(String.init) ?? "\(outcome.kind)"
    }
  }

  var isFinal: Bool {
    if case .finalResult = self { true } else { false }
  }
}
