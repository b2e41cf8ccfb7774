import Testing

@testable import HarkSphinx

/// The JSGF a client sends is parsed by Hark, which refuses what PocketSphinx's parser would
/// leak on, follow to the disk or recurse too deep over, and writes the rest out canonically.
@Suite("JSGF grammars from clients")
struct JSGFGrammarTests {
  @Test(
    "the JSGF language, written out canonically",
    arguments: [
      (
        "#JSGF V1.0 UTF-8 en;\ngrammar g;\npublic <a> = yes | no;",
        "#JSGF V1.0 UTF-8 en;\ngrammar g;\npublic <a> = yes | no;\n"
      ),
      (
        "\u{FEFF}#JSGF V1.0; /* a\ncomment */ grammar g; public <a> = [please] (one | two)+ <b>*; <b> = three {tag} <NULL>;",
        "#JSGF V1.0;\ngrammar g;\npublic <a> = [please] (one | two)+ <b>*;\n<b> = three <NULL>;\n"
      ),
      (
        "#JSGF; grammar g; public <a> = /0.25/ yes | /10/ no | /1e-3/ maybe;",
        "#JSGF V1.0;\ngrammar g;\npublic <a> = /0.25/ yes | /10/ no | /0.001/ maybe;\n"
      ),
      // `public` and `grammar` are words inside a rule.
      (
        "#JSGF V1.0; grammar g; public <a> = public grammar;",
        "#JSGF V1.0;\ngrammar g;\npublic <a> = public grammar;\n"
      ),
    ]
  )
  func canonical(_ text: String, _ expected: String) throws {
    let grammar = try JSGFGrammar(parsing: text)
    #expect(grammar.canonicalText == expected)
    #expect(grammar.name == "g")
    // The canonical text is a fixed point.
    #expect(try JSGFGrammar(parsing: grammar.canonicalText).canonicalText == expected)
  }

  @Test(
    "what is refused, and why",
    arguments: [
      ("grammar g; public <a> = yes;", "starts with #JSGF"),
      ("#JSGF V1.0; public <a> = yes;", "grammar NAME"),
      ("#JSGF V1.0; grammar g; public <a> = (yes | ;", "expected"),
      ("#JSGF V1.0; grammar g; public <a> = yes", "at the end of the rule <a>"),
      ("#JSGF V1.0; grammar g; import <other.rule>; public <a> = yes;", "import is not allowed"),
      ("#JSGF V1.0; grammar g; public <a> = \"new york\";", "quoted tokens"),
      ("#JSGF V1.0; grammar g; public <a> = <b>;", "<b> is not defined"),
      ("#JSGF V1.0; grammar g; <a> = yes;", "no public rule"),
      ("#JSGF V1.0; grammar g; public <a> = yes; <a> = no;", "defined twice"),
      ("#JSGF V1.0; grammar g; /* never closed", "comment is not closed"),
      ("#JSGF V1.0; grammar g; public <a> = {never closed;", "tag is not closed"),
      ("#JSGF V1.0; grammar g; public <a> = /x/ yes;", "weight"),
      ("#JSGF V1.0; grammar g; public <a b = yes;", "not closed with '>'"),
      ("#JSGF V1.0; grammar g; public <a<b> = yes;", "'<' inside a rule name"),
      ("#JSGF V1.0; grammar g; public <NULL> = yes;", "cannot be a rule's name"),
      ("#JSGF V1.0; grammar g;", "no rules"),
    ]
  )
  func refused(_ text: String, _ reason: String) {
    #expect {
      try JSGFGrammar(parsing: text)
    } throws: { error in
      "\(error)".contains(reason)
    }
  }

  @Test("limits: nesting, size and rule count")
  func limits() {
    let deep =
      "#JSGF V1.0; grammar g; public <a> = " + String(repeating: "(", count: 33) + "yes"
      + String(repeating: ")", count: 33) + ";"
    #expect(throws: JSGFGrammar.ParseError.self) { try JSGFGrammar(parsing: deep) }
    let nested32 =
      "#JSGF V1.0; grammar g; public <a> = " + String(repeating: "[", count: 32) + "yes"
      + String(repeating: "]", count: 32) + ";"
    #expect((try? JSGFGrammar(parsing: nested32)) != nil)
    // A 100,000-byte token: what made PocketSphinx leak 200 KB a request.
    let large = "#JSGF garbage " + String(repeating: "x", count: 100_000)
    #expect {
      try JSGFGrammar(parsing: large)
    } throws: { error in
      "\(error)".contains("over the limit of 65536")
    }
    let many =
      "#JSGF V1.0; grammar g; public <r0> = yes;"
      + (1...1000).map { " <r\($0)> = no;" }.joined()
    #expect {
      try JSGFGrammar(parsing: many)
    } throws: { error in
      "\(error)".contains("more than 1000 rules")
    }
  }
}
