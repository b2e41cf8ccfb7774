/// A client's JSGF grammar, parsed by Hark before PocketSphinx sees it, and written out again in
/// a canonical form that PocketSphinx's parser always accepts.
///
/// SphinxBase's JSGF parser (Debian's 0.8+5prealpha) leaks every token it copied when it meets
/// a syntax error (twice the offending token: a client could leak megabytes per request), follows
/// `import` statements to files on the server's disk, and expands nested groups recursively (a
/// few thousand levels overflow a worker thread's stack). So a client's text never reaches it:
/// this parser takes the same language (SphinxBase's `jsgf_parser.y` and its scanner), within
/// limits, and refuses with a reason what the library would fail on or what Hark does not allow:
///
/// - at most ``maxBytes`` of text, ``maxNesting`` levels of `( )` and `[ ]`, ``maxRules`` rules;
/// - no `import` (a grammar must be self-contained), no quoted tokens (the dictionary has no
///   multi-word entries);
/// - every rule a reference names is defined here (or is `<NULL>` or `<VOID>`), and at least one
///   rule is public.
///
/// Comments and tags are dropped (they change nothing a recognizer uses); weights are kept.
struct JSGFGrammar: Sendable, Hashable {
  static let maxBytes = 64 << 10
  static let maxNesting = 32
  static let maxRules = 1000

  /// Why a grammar was refused, with the line it was found on.
  struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
    var message: String
    var line: Int

    var description: String { line > 0 ? "\(message) (line \(line))" : message }
  }

  /// The name the grammar declares (`grammar NAME;`).
  let name: String
  /// The grammar as PocketSphinx is given it.
  let canonicalText: String
  /// Every word (token) the rules use, for a dictionary check.
  let words: Set<String>

  /// Parses `text`.
  init(parsing text: String) throws(ParseError) {
    guard text.utf8.count <= Self.maxBytes else {
      throw ParseError(
        message: "the grammar is \(text.utf8.count) bytes, over the limit of \(Self.maxBytes)",
        line: 0
      )
    }
    var lexer = Lexer(text)
    var parser = Parser(tokens: try lexer.tokens())
    try parser.parseGrammar()
    name = parser.name
    words = parser.words
    var output = "#JSGF \(parser.header.joined(separator: " "));\ngrammar \(parser.name);\n"
    for rule in parser.rules {
      output += "\(rule.isPublic ? "public " : "")<\(rule.name)> = \(rule.body);\n"
    }
    canonicalText = output
  }

  // MARK: Tokens

  enum Token: Hashable, Sendable {
    case header  // #JSGF
    case keyword(String)  // grammar, import, public (at the start of a statement)
    case ruleName(String)  // <name>
    case word(String)
    case weight(Double)
    case tag
    case symbol(Character)  // = ; | * + ( ) [ ]
  }

  struct Lexer {
    let scalars: [Unicode.Scalar]
    var index = 0
    var line = 1
    /// At the start of a statement (SphinxBase's INITIAL state): keywords are keywords there.
    var atStatementStart = true

    init(_ text: String) {
      scalars = Array(text.unicodeScalars)
    }

    static let wordTerminators: Set<Unicode.Scalar> = [
      " ", "\t", "\r", "\n", "=", ";", "|", "*", "+", "<", ">", "(", ")", "[", "]", "{", "}", "/",
    ]

    func peek(_ offset: Int = 0) -> Unicode.Scalar? {
      index + offset < scalars.count ? scalars[index + offset] : nil
    }

    mutating func tokens() throws(ParseError) -> [(Token, Int)] {
      var tokens: [(Token, Int)] = []
      if peek() == "\u{FEFF}" { index += 1 }
      while let scalar = peek() {
        switch scalar {
        case " ", "\t", "\r":
          index += 1
        case "\n":
          index += 1
          line += 1
        case "/" where peek(1) == "/":
          while let next = peek(), next != "\n" { index += 1 }
        case "/" where peek(1) == "*":
          let start = line
          index += 2
          while peek() != nil && !(peek() == "*" && peek(1) == "/") {
            if peek() == "\n" { line += 1 }
            index += 1
          }
          guard peek() != nil else {
            throw ParseError(message: "a comment is not closed", line: start)
          }
          index += 2
        case "/":
          tokens.append((.weight(try weight()), line))
        case "<":
          index += 1
          var name = ""
          while let next = peek(), next != ">" {
            guard next != "<" else {
              throw ParseError(message: "'<' inside a rule name", line: line)
            }
            if next == "\n" { line += 1 }
            name.unicodeScalars.append(next)
            index += 1
          }
          guard peek() == ">", !name.isEmpty else {
            throw ParseError(message: "a rule name is not closed with '>'", line: line)
          }
          index += 1
          tokens.append((.ruleName(name), line))
          atStatementStart = false
        case "{":
          let start = line
          index += 1
          while let next = peek(), next != "}" {
            if next == "\\" { index += 1 }
            if peek() == "\n" { line += 1 }
            index += 1
          }
          guard peek() == "}" else { throw ParseError(message: "a tag is not closed", line: start) }
          index += 1
          tokens.append((.tag, line))
        case "=", ";", "|", "*", "+", "(", ")", "[", "]":
          index += 1
          tokens.append((.symbol(Character(scalar)), line))
          atStatementStart = scalar == ";"
        case "\"":
          throw ParseError(
            message: "quoted tokens are not supported: the dictionary has single words only",
            line: line
          )
        case "}", ">":
          throw ParseError(message: "an unexpected '\(scalar)'", line: line)
        default:
          var word = ""
          while let next = peek(), !Self.wordTerminators.contains(next) {
            word.unicodeScalars.append(next)
            index += 1
          }
          if word == "#JSGF" && tokens.isEmpty {
            tokens.append((.header, line))
            atStatementStart = false
          } else if atStatementStart && ["grammar", "import", "public"].contains(word) {
            tokens.append((.keyword(word), line))
            atStatementStart = false
          } else {
            tokens.append((.word(word), line))
          }
        }
      }
      return tokens
    }

    /// `/0.5/`, `/2/`, `/1e-3/`: a weight between slashes.
    mutating func weight() throws(ParseError) -> Double {
      index += 1
      var text = ""
      while let next = peek(), next != "/" {
        guard ("0"..."9").contains(next) || next == "." || next == "e" || next == "-" else {
          throw ParseError(message: "a weight is not a number between slashes", line: line)
        }
        text.unicodeScalars.append(next)
        index += 1
      }
      guard peek() == "/", let value = Double(text), value.isFinite, value >= 0 else {
        throw ParseError(message: "a weight is not a number between slashes", line: line)
      }
      index += 1
      return value
    }
  }

  // MARK: Grammar

  struct Rule {
    var name: String
    var isPublic: Bool
    var body: String
    var line: Int
  }

  struct Parser {
    let tokens: [(Token, Int)]
    var position = 0
    var header: [String] = []
    var name = ""
    var rules: [Rule] = []
    var references: [(name: String, line: Int)] = []
    var words: Set<String> = []

    init(tokens: [(Token, Int)]) {
      self.tokens = tokens
    }

    var line: Int { position < tokens.count ? tokens[position].1 : (tokens.last?.1 ?? 1) }

    func peek() -> Token? { position < tokens.count ? tokens[position].0 : nil }

    mutating func next() -> Token? {
      defer { position += 1 }
      return peek()
    }

    func error(_ message: String) -> ParseError { ParseError(message: message, line: line) }

    mutating func expect(_ symbol: Character, _ context: String) throws(ParseError) {
      guard next() == .symbol(symbol) else { throw error("expected '\(symbol)' \(context)") }
    }

    static func isSafeName(_ name: String) -> Bool {
      !name.isEmpty
        && name.unicodeScalars.allSatisfy { scalar in
          scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
            || ["_", "-", "."].contains(scalar)
        }
    }

    mutating func parseGrammar() throws(ParseError) {
      guard next() == .header else {
        throw ParseError(message: "a JSGF grammar starts with #JSGF", line: 1)
      }
      while case .word(let word)? = peek() {
        guard header.count < 3, JSGFGrammar.Parser.isSafeName(word) else {
          throw error("the #JSGF line takes a version, a charset and a locale at most")
        }
        header.append(word)
        position += 1
      }
      try expect(";", "after the #JSGF line")
      if header.isEmpty { header = ["V1.0"] }
      guard next() == .keyword("grammar"), case .word(let name)? = next(),
        Self.isSafeName(name)
      else { throw error("expected 'grammar NAME;' after the #JSGF line") }
      self.name = name
      try expect(";", "after the grammar's name")
      while let token = peek() {
        switch token {
        case .keyword("import"):
          throw error("import is not allowed: a client's grammar must be self-contained")
        case .keyword("public"):
          position += 1
          try parseRule(isPublic: true)
        case .ruleName:
          try parseRule(isPublic: false)
        default:
          throw error("expected a rule: [public] <name> = …;")
        }
      }
      guard !rules.isEmpty else { throw error("the grammar has no rules") }
      guard rules.contains(where: \.isPublic) else { throw error("the grammar has no public rule") }
      let defined = Set(rules.map(\.name))
      for reference in references where !defined.contains(reference.name) {
        throw ParseError(
          message: "the rule <\(reference.name)> is not defined",
          line: reference.line
        )
      }
    }

    mutating func parseRule(isPublic: Bool) throws(ParseError) {
      let line = self.line
      guard case .ruleName(let name)? = next() else { throw error("expected a rule name") }
      guard Self.isSafeName(name), name != "NULL", name != "VOID" else {
        throw error("<\(name)> cannot be a rule's name")
      }
      guard !rules.contains(where: { $0.name == name }) else {
        throw error("the rule <\(name)> is defined twice")
      }
      guard rules.count < JSGFGrammar.maxRules else {
        throw error("more than \(JSGFGrammar.maxRules) rules")
      }
      try expect("=", "after the rule name")
      let body = try alternatives(depth: 0)
      try expect(";", "at the end of the rule <\(name)>")
      rules.append(Rule(name: name, isPublic: isPublic, body: body, line: line))
    }

    /// alternate_list: rule_expansion ('|' rule_expansion)*
    mutating func alternatives(depth: Int) throws(ParseError) -> String {
      var parts = [try sequence(depth: depth)]
      while peek() == .symbol("|") {
        position += 1
        parts.append(try sequence(depth: depth))
      }
      return parts.joined(separator: " | ")
    }

    /// rule_expansion: ([WEIGHT] rule_atom TAG*)+
    mutating func sequence(depth: Int) throws(ParseError) -> String {
      var items: [String] = []
      while true {
        var item = ""
        if case .weight(let weight)? = peek() {
          position += 1
          item = "/\(Self.format(weight))/ "
        }
        guard let atom = try atom(depth: depth) else {
          if !item.isEmpty { throw error("a weight must precede an item") }
          break
        }
        item += atom
        while peek() == .tag { position += 1 }
        items.append(item)
      }
      guard !items.isEmpty else { throw error("expected a word, a <rule>, ( … ) or [ … ]") }
      return items.joined(separator: " ")
    }

    /// rule_atom: TOKEN | RULENAME | '(' alternates ')' | '[' alternates ']', each followed by
    /// any number of '*' and '+'; nil when the next token starts no atom.
    mutating func atom(depth: Int) throws(ParseError) -> String? {
      var text: String
      switch peek() {
      case .word(let word)?:
        position += 1
        words.insert(word)
        text = word
      case .ruleName(let name)?:
        position += 1
        if name != "NULL" && name != "VOID" {
          guard Self.isSafeName(name) else {
            throw error("<\(name)> is not a rule name Hark takes")
          }
          references.append((name, line))
        }
        text = "<\(name)>"
      case .symbol(let open)? where open == "(" || open == "[":
        guard depth < JSGFGrammar.maxNesting else {
          throw error("groups nested more than \(JSGFGrammar.maxNesting) deep")
        }
        position += 1
        let inner = try alternatives(depth: depth + 1)
        let close: Character = open == "(" ? ")" : "]"
        try expect(close, "to close '\(open)'")
        text = "\(open)\(inner)\(close)"
      default:
        return nil
      }
      while case .symbol(let repeatMark)? = peek(), repeatMark == "*" || repeatMark == "+" {
        position += 1
        text.append(repeatMark)
      }
      return text
    }

    /// A weight as plain decimals: `0.5`, `2`, `0.001`.
    static func format(_ weight: Double) -> String {
      if weight == weight.rounded() && weight < 1e15 { return String(Int64(weight)) }
      var text = String(weight)
      if text.contains("e") {
        // Scientific notation is outside SphinxBase's weight syntax: write enough decimals.
        text = String(Int64((weight * 1e9).rounded()))
        while text.count < 10 { text = "0" + text }
        text.insert(".", at: text.index(text.endIndex, offsetBy: -9))
        while text.hasSuffix("0") { text.removeLast() }
      }
      return text
    }
  }
}
