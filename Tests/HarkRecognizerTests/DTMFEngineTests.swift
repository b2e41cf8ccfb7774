import HarkAudio
import HarkProto
import HarkRecognizer
import Testing

/// The DTMF engine on generated audio: each key press of an utterance is a word.
@Suite("DTMF engine")
struct DTMFEngineTests {
  /// An engine prepared for L16 at `sampleRate` with `resources`.
  static func engine(
    sampleRate: Int = 8000,
    resources: [RecognitionResource] = []
  ) throws -> DTMFEngine {
    let engine = DTMFEngine()
    var message = makeInit(sampleRate: UInt32(sampleRate))
    message.resources = resources
    #expect(try engine.prepare(RecognitionConfiguration(validating: message)) == [])
    return engine
  }

  /// Runs `samples` through `engine` in messages of 20 ms; returns the partials it reported.
  static func process(
    _ samples: [Int16],
    engine: DTMFEngine,
    sampleRate: Int = 8000
  ) throws -> [EngineHypothesis] {
    let size = sampleRate / 50
    var partials: [EngineHypothesis] = []
    for start in stride(from: 0, to: samples.count, by: size) {
      let message = Array(samples[start..<min(start + size, samples.count)])
      if let partial = try message.withUnsafeBufferPointer({ try engine.process($0, at: start) }) {
        partials.append(partial)
      }
    }
    return partials
  }

  @Test("keys become words whose times are the tones', to 2 ms", arguments: [8000, 16000])
  func digits(sampleRate: Int) throws {
    let engine = try Self.engine(sampleRate: sampleRate)
    var generator = DTMFGenerator(sampleRate: sampleRate)
    let samples = generator.generate(keys("1#9"))
    let perMillisecond = sampleRate / 1000
    try engine.beginUtterance(at: 300 * perMillisecond)
    let partials = try Self.process(samples, engine: engine, sampleRate: sampleRate)
    // A partial each time a key is recognized; its open word ends with the audio so far.
    #expect(partials.map(\.text) == ["1", "1#", "1#9"])
    let finals = try engine.endUtterance(at: 900 * perMillisecond)
    #expect(finals.count == 1)
    let final = try #require(finals.first)
    #expect(final.text == "1#9")
    #expect(final.confidence == 1)
    #expect(!final.rejected)
    #expect(final.words.map(\.text) == ["1", "#", "9"])
    #expect(final.words.allSatisfy { $0.confidence == 1 })
    // The tones sound 300-400, 500-600 and 700-800 ms.
    for (word, start) in zip(final.words, [300, 500, 700]) {
      #expect(abs(word.startSample - start * perMillisecond) <= 2 * perMillisecond, "\(word)")
      #expect(abs(word.endSample - (start + 100) * perMillisecond) <= 2 * perMillisecond, "\(word)")
    }
    for (partial, count) in zip(partials, 1...) {
      #expect(partial.words.map(\.text) == Array(final.words.prefix(count).map(\.text)))
    }
  }

  @Test("noise, silence and a single tone give no words", arguments: [-40.0, -20.0, -6.0])
  func noise(level: Double) throws {
    let engine = try Self.engine()
    var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: level, seed: 3)
    let samples = generator.generate([
      .silence(milliseconds: 1000),
      DTMFGenerator.Segment(
        tones: [DTMFGenerator.Tone(frequency: 1000, level: -10)],
        milliseconds: 500
      ),
    ])
    try engine.beginUtterance(at: 0)
    #expect(try Self.process(samples, engine: engine).isEmpty)
    #expect(try engine.endUtterance(at: samples.count).isEmpty)
  }

  @Test("only the keys of the utterance count: a key before its onset is another utterance's")
  func keysOfTheUtterance() throws {
    let engine = try Self.engine()
    var generator = DTMFGenerator(sampleRate: 8000)
    // "1" at 300-400 ms, then "2" at 1100-1200 ms.
    let samples = generator.generate(keys("1", after: 600) + keys("2", before: 0))
    _ = try Self.process(samples, engine: engine)
    try engine.beginUtterance(at: 8800)
    let finals = try engine.endUtterance(at: 9600)
    #expect(finals.map(\.text) == ["2"])
    // A key that started after the utterance ended is not in it either.
    try engine.beginUtterance(at: 2400)
    #expect(try engine.endUtterance(at: 3200).map(\.text) == ["1"])
  }

  @Test("reset forgets every key")
  func reset() throws {
    let engine = try Self.engine()
    var generator = DTMFGenerator(sampleRate: 8000)
    _ = try Self.process(generator.generate(keys("12")), engine: engine)
    engine.reset()
    try engine.beginUtterance(at: 0)
    #expect(try engine.endUtterance(at: 8000).isEmpty)
  }

  struct ResourceCase: Sendable, CustomTestStringConvertible {
    var name: String
    var resources: [RecognitionResource]
    /// The field of the 400, or nil when the engine takes the resources.
    var field: String?
    var testDescription: String { name }
  }

  @Test(
    "resources: builtins digits and dtmf, well-formed inline wordsets; anything else is 400",
    arguments: [
      ResourceCase(
        name: "digits, DTMF",
        resources: [.init(.builtin("digits")), .init(.builtin("DTMF"))]
      ),
      ResourceCase(
        name: "a wordset",
        resources: [.init(.inlineWordset(#"{"names":[{"literal":"Ann","spoken":["ann"]}]}"#))]
      ),
      ResourceCase(
        name: "an unknown builtin",
        resources: [.init(.builtin("digits")), .init(.builtin("date"))],
        field: "resources[1].builtin"
      ),
      ResourceCase(
        name: "a malformed wordset",
        resources: [.init(.inlineWordset(#"{"names":[{"spoken":["ann"]}]}"#))],
        field: "resources[0].inline_wordset"
      ),
      ResourceCase(
        name: "a grammar",
        resources: [.init(.inlineGrammar("#JSGF V1.0;"))],
        field: "resources[0]"
      ),
      ResourceCase(
        name: "an empty resource",
        resources: [RecognitionResource()],
        field: "resources[0]"
      ),
    ]
  )
  func resources(_ resourceCase: ResourceCase) throws {
    var message = makeInit()
    message.resources = resourceCase.resources
    let configuration = try RecognitionConfiguration(validating: message)
    let engine = DTMFEngine()
    if let field = resourceCase.field {
      let error = #expect(throws: EngineError.self) { try engine.prepare(configuration) }
      #expect(error?.kind == .badRequest(field: field))
    } else {
      #expect(try engine.prepare(configuration) == [])
    }
  }
}
