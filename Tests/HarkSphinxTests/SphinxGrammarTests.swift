import HarkProto
import HarkRecognizer
import Testing

@testable import HarkSphinx

/// Resources to grammars, and hypotheses back to text: pure, with a dictionary of a few words.
@Suite("sphinx grammars", .serialized)
struct SphinxGrammarTests {
  static let dictionary: Set<String> = [
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "yes",
    "yeah", "yep", "no", "nope", "new", "york", "boston", "operator", "st.", "louis",
  ]

  static func make(
    _ resources: [RecognitionResource],
    masked: Bool = false
  ) throws(EngineError) -> (grammar: SphinxGrammar, notices: [EngineNotice]) {
    try SphinxGrammar.make(resources: resources, maskLoadFailures: masked) {
      dictionary.contains($0)
    }
  }

  @Test("no resources: dictation")
  func dictation() throws {
    let (grammar, notices) = try Self.make([])
    #expect(grammar.isDictation && grammar.jsgf == nil && notices.isEmpty)
    #expect(grammar.read(["hello", "there"]).text == "hello there")
  }

  @Test("builtins and a wordset combine into one JSGF grammar, each resource a rule")
  func combined() throws {
    let wordset = #"""
      {"CITY": [{"literal": "New York", "spoken": ["new york"]}, {"literal": "NYC",
       "spoken": ["new york"]}, {"literal": "St. Louis!"}, {"literal": "Zzyzx"}]}
      """#
    let (grammar, notices) = try Self.make([
      RecognitionResource(.builtin("digits")),
      RecognitionResource(.builtin("YesNo")),
      RecognitionResource(.inlineWordset(wordset)),
    ])
    #expect(
      grammar.jsgf == """
        #JSGF V1.0;
        grammar hark;
        public <hark> = <r0> | <r1> | <r2> | <NULL>;
        <r0> = (eight | five | four | nine | oh | one | seven | six | three | two | zero)+;
        <r1> = yes | yeah | yep | no | nope;
        <r2> = new york | st. louis;

        """
    )
    #expect(notices.map(\.code) == [502])
    #expect(notices.first?.message.contains("'zzyzx'") == true)

    let digits = grammar.read(["one", "oh", "nine"])
    #expect(digits.text == "109" && digits.words == ["1", "0", "9"])
    #expect(digits.grammarID == "builtin:digits" && digits.rule == "digits")
    let yes = grammar.read(["yeah"])
    #expect(yes.text == "yes" && yes.words == ["yes"] && yes.grammarID == "builtin:yesno")
    // A phrase reads as the literal of its first entry.
    let city = grammar.read(["new", "york"])
    #expect(city.text == "New York" && city.words == ["new", "york"])
    #expect(city.grammarID == "wordset:CITY" && city.rule == "CITY")
    #expect(grammar.read(["st.", "louis"]).text == "St. Louis!")
  }

  @Test("a client's JSGF is used in its canonical form, and only alone")
  func inlineJSGF() throws {
    let jsgf =
      "#JSGF V1.0; // cities\ngrammar city;\npublic <city> = boston {b} |\n /2/ new york;\n"
    let (grammar, _) = try Self.make([RecognitionResource(.inlineGrammar(jsgf))])
    #expect(grammar.jsgf == "#JSGF V1.0;\ngrammar city;\npublic <city> = boston | /2/ new york;\n")
    let read = grammar.read(["new", "york"])
    #expect(read.text == "new york" && read.grammarID == "grammar:city" && read.rule == nil)

    #expect {
      try Self.make([
        RecognitionResource(.builtin("digits")), RecognitionResource(.inlineGrammar(jsgf)),
      ])
    } throws: { error in
      (error as? EngineError)?.kind == .badRequest(field: "resources[1].inline_grammar")
    }
  }

  @Test("SRGS one-of items are phrases; a word the dictionary lacks fails the grammar")
  func srgsPhrases() throws {
    let grammar = try Self.make([
      RecognitionResource(
        .inlineGrammar(srgs("<one-of><item>Boston</item><item>New  York</item></one-of>"))
      )
    ]).grammar
    #expect(grammar.jsgf?.contains("<r0> = boston | new york;") == true)
    #expect(grammar.read(["new", "york"]).text == "New York")
    #expect(grammar.read(["boston"]).grammarID == "grammar:desk")

    let unknown = RecognitionResource(
      .inlineGrammar(srgs("<one-of><item>Zzyzx</item></one-of>"))
    )
    #expect {
      try Self.make([unknown])
    } throws: { error in
      (error as? EngineError)?.kind == .resourceFailed(field: "resources[0].inline_grammar")
    }
    // Masked, the grammar is left out with a notice, and dictation remains.
    let masked = try Self.make([unknown], masked: true)
    #expect(masked.grammar.isDictation && masked.notices.map(\.code) == [502])
  }

  @Test(
    "SRGS XML: what parses, and as what",
    arguments: [
      (
        "<one-of><item>yes<tag>out=true</tag></item><!-- no --><item>no &amp; no</item></one-of>",
        ["yes", "no & no"]
      ),
      ("<![CDATA[new york]]>", ["new york"]),
      (
        "\n  <example>yes</example>\n  <one-of>\n <item weight=\"0.5\">yes</item> </one-of>",
        ["yes"]
      ),
    ]
  )
  func srgsParses(_ body: String, phrases: [String]) throws {
    let grammar = try SRGSGrammar(xml: srgs(body))
    #expect(grammar.root == "desk")
    #expect(grammar.phrases == phrases)
  }

  @Test(
    "SRGS XML beyond one plain one-of is unsupported, and says what",
    arguments: [
      ("<one-of><item><ruleref uri=\"#a\"/></item></one-of>", "<ruleref> in <item>"),
      ("<one-of><item><one-of><item>a</item></one-of></item></one-of>", "<one-of> in <item>"),
      ("<item>a</item>", "<item> in <rule>"),
      ("<one-of><item repeat=\"0-1\">a</item></one-of>", "<item repeat=…>"),
      ("<one-of><token>a</token></one-of>", "<token> in <one-of>"),
      ("<one-of><item>a</item></one-of><one-of><item>b</item></one-of>", "more than one"),
      ("<one-of></one-of>", "an empty <one-of>"),
    ]
  )
  func srgsUnsupported(_ body: String, construct: String) {
    #expect {
      try SRGSGrammar(xml: srgs(body))
    } throws: { error in
      guard case .unsupported(let what) = error as? SRGSGrammar.Failure else { return false }
      return what.contains(construct)
    }
  }

  @Test(
    "text that is not an SRGS grammar does not load",
    arguments: [
      "<grammar root=\"a\"><rule id=\"a\">yes</grammar>",
      "<grammar root=\"a\"><rule id=\"b\">yes</rule></grammar>",
      "<vxml><form/></vxml>",
      "<grammar><rule id=\"a\">&bogus;</rule></grammar>",
      "<grammar root=\"a\"><rule id=\"a\">yes</rule></grammar> trailing",
    ]
  )
  func srgsMalformed(_ xml: String) {
    #expect {
      try SRGSGrammar(xml: xml)
    } throws: { error in
      if case .malformed = error as? SRGSGrammar.Failure { true } else { false }
    }
  }

  @Test("DTMF grammars are not voice grammars")
  func dtmfMode() {
    #expect(throws: SRGSGrammar.Failure.unsupported("mode=\"dtmf\" (only voice grammars)")) {
      try SRGSGrammar(xml: "<grammar mode=\"dtmf\" root=\"a\"><rule id=\"a\">1</rule></grammar>")
    }
  }
}
