import HarkAudio
import HarkProto
import HarkRecognizer
import HarkSphinx
import HarkTestSupport
import Testing

/// The departments of the tests' wordset.
let departments = RecognitionResource(
  .inlineWordset(
    #"{"DEPARTMENT": [{"literal": "operator"}, {"literal": "billing"}, {"literal": "sales"}]}"#
  )
)

/// The engine driven directly, as the server's session drives it, on speech that espeak-ng
/// synthesizes at test time (en-US voice, default speed, a little seeded noise). Each test loads an
/// engine of its own, so tests also run decoders side by side.
@Suite("sphinx engine", .serialized, .cpuBound)
struct SphinxEngineTests {
  static let rates = [8000, 16000]

  @Test("a wordset's literals are the phrases: operator, billing or sales", arguments: rates)
  func wordset(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let samples = try speech("operator", sampleRate: sampleRate)
      let run = try run(
        engine,
        samples,
        configuration: configuration(sampleRate: sampleRate, resources: [departments])
      )
      #expect(run.texts == ["operator"])
      let best = try #require(run.finals.first?.first)
      #expect(!best.rejected)
      #expect(best.grammarID == "wordset:DEPARTMENT")
      #expect(best.words.map(\.grammarRule) == ["DEPARTMENT"])
      #expect(best.confidence > 0.5 && best.confidence <= 1)
    }
  }

  @Test("builtin yesno hears yes", arguments: rates)
  func yesNo(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let run = try run(
        engine,
        try speech("yes", sampleRate: sampleRate),
        configuration: configuration(
          sampleRate: sampleRate,
          resources: [RecognitionResource(.builtin("yesno"))]
        )
      )
      #expect(run.texts == ["yes"])
      #expect(run.finals.first?.first?.grammarID == "builtin:yesno")
    }
  }

  @Test("builtin digits reads spoken digits as numerals, one word each", arguments: rates)
  func digits(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let samples = try speech("one two three", sampleRate: sampleRate)
      let run = try run(
        engine,
        samples,
        configuration: configuration(
          sampleRate: sampleRate,
          resources: [RecognitionResource(.builtin("digits"))]
        )
      )
      #expect(run.texts == ["123"])
      let words = try #require(run.finals.first?.first?.words)
      #expect(words.map(\.text) == ["1", "2", "3"])
      #expect(words.allSatisfy { $0.grammarRule == "digits" })
      // In order, one after the other, inside the audio.
      for (word, next) in zip(words, words.dropFirst()) {
        #expect(word.endSample <= next.startSample)
      }
      #expect(words.allSatisfy { 0 <= $0.startSample && $0.startSample < $0.endSample })
      #expect(words.allSatisfy { $0.endSample <= samples.count })
    }
  }

  @Test(
    "dictation: a hypothesis with words timed inside the audio, in the stream's samples",
    arguments: rates
  )
  func dictation(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let samples = try speech(
        "please connect me to the billing department",
        sampleRate: sampleRate
      )
      let run = try run(engine, samples, configuration: configuration(sampleRate: sampleRate))
      #expect(run.finals.count == 1)
      let best = try #require(run.finals.first?.first)
      #expect(!best.text.isEmpty)
      #expect(!best.words.isEmpty)
      #expect(best.grammarID == nil)
      let utterance = try #require(run.utterances.first)
      for word in best.words {
        #expect(0 <= word.startSample && word.startSample < word.endSample)
        #expect(word.endSample <= samples.count)
        // Words lie in the utterance, give or take the engine's 250 ms of lead-in.
        #expect(word.startSample >= utterance.lowerBound - sampleRate / 4)
        #expect((0...1).contains(word.confidence))
      }
      for (word, next) in zip(best.words, best.words.dropFirst()) {
        #expect(word.endSample <= next.startSample)
      }
    }
  }

  @Test("8 and 16 kHz give the same words at the same times (within a frame)")
  func sameTimesAtBothRates() throws {
    try SharedEngines.with { engine throws in
      var times: [[(start: Double, end: Double)]] = []
      for sampleRate in Self.rates {
        let run = try run(
          engine,
          try speech("one two three", sampleRate: sampleRate),
          configuration: configuration(
            sampleRate: sampleRate,
            resources: [RecognitionResource(.builtin("digits"))]
          )
        )
        #expect(run.texts == ["123"])
        let words = try #require(run.finals.first?.first?.words)
        times.append(
          words.map {
            (Double($0.startSample) / Double(sampleRate), Double($0.endSample) / Double(sampleRate))
          }
        )
      }
      try #require(times.count == 2 && times[0].count == times[1].count)
      // The middle word's boundaries lie between words, where the two decodings agree closely.
      #expect(abs(times[0][1].start - times[1][1].start) <= 0.1)
      #expect(abs(times[0][1].end - times[1][1].end) <= 0.1)
    }
  }

  @Test("an utterance per phrase: yes, then no, in one stream")
  func twoUtterances() throws {
    try SharedEngines.with { engine throws in
      let samples =
        try speech("yes", sampleRate: 8000, afterMilliseconds: 900)
        + speech("no", sampleRate: 8000, seed: 2)
      let run = try run(
        engine,
        samples,
        configuration: configuration(
          sampleRate: 8000,
          resources: [RecognitionResource(.builtin("yesno"))]
        )
      )
      #expect(run.texts == ["yes", "no"])
      let second = try #require(run.finals.last?.first?.words.first)
      #expect(second.startSample >= run.utterances[1].lowerBound - 8000 / 4)
    }
  }

  @Test("partial results as the text changes, then the final result", arguments: rates)
  func partials(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let run = try run(
        engine,
        try speech("one two three", sampleRate: sampleRate),
        configuration: configuration(
          sampleRate: sampleRate,
          resources: [RecognitionResource(.builtin("digits"))],
          resultType: .partial
        )
      )
      #expect(!run.partials.isEmpty)
      for (partial, next) in zip(run.partials, run.partials.dropFirst()) {
        #expect(partial.text != next.text)
      }
      #expect(run.partials.allSatisfy { !$0.text.isEmpty && $0.confidence == 0 && !$0.rejected })
      #expect(run.texts == ["123"])
    }
  }

  @Test("n-best: up to max_hypotheses of different texts, the best first")
  func nBest() throws {
    try SharedEngines.with { engine throws in
      let run = try run(
        engine,
        try speech("one two three", sampleRate: 16000),
        configuration: configuration(
          sampleRate: 16000,
          resources: [RecognitionResource(.builtin("digits"))],
          maxHypotheses: 3
        )
      )
      let hypotheses = try #require(run.finals.first)
      #expect(hypotheses.first?.text == "123")
      #expect((2...3).contains(hypotheses.count))
      #expect(Set(hypotheses.map(\.text)).count == hypotheses.count)
      #expect(hypotheses.allSatisfy { (0...1).contains($0.confidence) })
    }
  }

  @Test("the same audio gives the same result, whatever the engine recognized before")
  func deterministic() throws {
    try SharedEngines.with { engine throws in
      let samples = try speech("operator", sampleRate: 8000)
      let first = try run(engine, samples, configuration: configuration(sampleRate: 8000))
      _ = try run(
        engine,
        try speech("the quick brown fox jumps over the lazy dog", sampleRate: 8000),
        configuration: configuration(sampleRate: 8000)
      )
      let again = try run(engine, samples, configuration: configuration(sampleRate: 8000))
      #expect(first.finals == again.finals)
      #expect(first.utterances == again.utterances)
    }
  }

  @Test("dictation hears no words in a tone between silences")
  func tone() throws {
    try SharedEngines.with { engine throws in
      var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -66, seed: 3)
      let samples = generator.generate([
        .silence(milliseconds: 500),
        DTMFGenerator.Segment(tones: [.init(frequency: 440, level: -20)], milliseconds: 500),
        .silence(milliseconds: 1000),
      ])
      let run = try run(engine, samples, configuration: configuration(sampleRate: 8000))
      // The endpointer takes the tone for an utterance; the engine finds nothing acceptable in it.
      #expect(run.finals.count == 1)
      #expect(run.finals.allSatisfy { hypotheses in hypotheses.allSatisfy(\.rejected) })
    }
  }

  // MARK: What the engine refuses

  @Test("a language other than en-US is 400 naming language")
  func otherLanguage() throws {
    try SharedEngines.with { engine throws in
      #expect {
        try engine.prepare(configuration(sampleRate: 8000, language: "fr-FR"))
      } throws: { error in
        let error = error as? EngineError
        return error?.kind == .badRequest(field: "language") && error!.message.contains("fr-FR")
      }
      #expect(try engine.prepare(configuration(sampleRate: 8000, language: "EN-us")).isEmpty)
    }
  }

  @Test(
    "resources the engine refuses: 400 naming the field",
    arguments: [
      (RecognitionResource(.builtin("zipcode")), "resources[0].builtin", "zipcode"),
      (RecognitionResource(.inlineWordset("{not json")), "resources[0].inline_wordset", "JSON"),
      (
        RecognitionResource(.inlineGrammar(srgs("<ruleref uri=\"#digit\"/>"))),
        "resources[0].inline_grammar", "<ruleref>"
      ),
      (
        RecognitionResource(
          .inlineGrammar(srgs("<one-of><item repeat=\"1-3\">one</item></one-of>"))
        ),
        "resources[0].inline_grammar", "repeat"
      ),
      (
        RecognitionResource(.inlineGrammar("#ABNF 1.0;\nroot $a;\n$a = yes | no;")),
        "resources[0].inline_grammar", "ABNF"
      ),
      (
        RecognitionResource(.externalReference(ResourceReference())),
        "resources[0].external_reference", "external"
      ),
    ]
  )
  func refused(_ resource: RecognitionResource, field: String, named: String) throws {
    try SharedEngines.with { engine throws in
      #expect {
        try engine.prepare(configuration(sampleRate: 8000, resources: [resource]))
      } throws: { error in
        let error = error as? EngineError
        return error?.kind == .badRequest(field: field) && error!.message.contains(named)
      }
    }
  }

  @Test(
    "a grammar that does not load is 502 naming the resource, or a notice when masked",
    arguments: [
      "#JSGF V1.0; grammar broken; public <a> = (yes | ;",
      "#JSGF V1.0; grammar unknown; public <a> = zzyzxqq;",
      "yes or no",
      "<grammar root=\"a\"><rule id=\"a\">yes</grammar>",
    ]
  )
  func grammarFails(_ text: String) throws {
    try SharedEngines.with { engine throws in
      let resources = [RecognitionResource(.inlineGrammar(text))]
      #expect {
        try engine.prepare(configuration(sampleRate: 8000, resources: resources))
      } throws: { error in
        (error as? EngineError)?.kind == .resourceFailed(field: "resources[0].inline_grammar")
      }
      let notices = try engine.prepare(
        configuration(sampleRate: 8000, resources: resources, maskLoadFailures: true)
      )
      #expect(notices.count == 1)
      #expect(notices.first?.code == 502)
      #expect(notices.first?.message.contains("resources[0].inline_grammar") == true)
    }
  }

  @Test("inline grammars: JSGF as it is, SRGS in the one-of form", arguments: [8000, 16000])
  func inlineGrammars(_ sampleRate: Int) throws {
    try SharedEngines.with { engine throws in
      let samples = try speech("operator", sampleRate: sampleRate)
      let grammars = [
        "#JSGF V1.0;\ngrammar desk;\npublic <desk> = operator | billing | sales;\n",
        srgs(
          """
          <one-of>
            <item>Operator<tag>out="0"</tag></item>
            <item>billing</item>
            <item weight="2">sales</item>
          </one-of>
          """
        ),
      ]
      var results: [EngineHypothesis?] = []
      for grammar in grammars {
        let run = try run(
          engine,
          samples,
          configuration: configuration(
            sampleRate: sampleRate,
            resources: [RecognitionResource(.inlineGrammar(grammar))]
          )
        )
        results.append(run.finals.first?.first)
      }
      #expect(results.map(\.?.text) == ["operator", "Operator"])
      #expect(results.map(\.?.grammarID) == ["grammar:desk", "grammar:desk"])
    }
  }

  @Test("a wordset's entries the dictionary lacks are left out with a notice; none left is 502")
  func wordsetUnknownWords() throws {
    try SharedEngines.with { engine throws in
      let partly = RecognitionResource(
        .inlineWordset(
          #"{"NAMES": [{"literal": "Zzyzx Qqrt"}, {"literal": "Sales", "spoken": ["sales"]}]}"#
        )
      )
      let notices = try engine.prepare(configuration(sampleRate: 8000, resources: [partly]))
      #expect(notices.map(\.code) == [502])
      #expect(notices.first?.message.contains("'zzyzx'") == true)

      let unknown = RecognitionResource(.inlineWordset(#"{"NAMES": [{"literal": "Zzyzx"}]}"#))
      #expect {
        try engine.prepare(configuration(sampleRate: 8000, resources: [unknown]))
      } throws: { error in
        (error as? EngineError)?.kind == .resourceFailed(field: "resources[0].inline_wordset")
      }
    }
  }

  @Test("a model directory without a model is a clear error")
  func missingModel() {
    #expect {
      try SphinxEngine(modelDirectory: "/nonexistent/model")
    } throws: { error in
      let error = error as? EngineError
      return error?.kind == .internalFailure
        && error!.message.contains("/nonexistent/model/en-us/mdef")
    }
  }
}

/// An SRGS XML grammar whose root rule `desk` is `body`.
func srgs(_ body: String) -> String {
  """
  <?xml version="1.0" encoding="UTF-8"?>
  <grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" xml:lang="en-US" root="desk">
    <rule id="desk" scope="public">\(body)</rule>
  </grammar>
  """
}
