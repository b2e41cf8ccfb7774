import HarkProto
import HarkRecognizer

/// What the decoder listens for in one recognition — dictation with the language model, or a
/// JSGF grammar made from the recognition's resources — and how to read what it hears back as
/// text.
///
/// Resources map to grammars:
/// - builtin `digits`: any sequence of the digits "zero"/"oh" … "nine", read as numerals: the
///   words `1`, `2`, `3` and the text `123`, as the dtmf engine reads key presses;
/// - builtin `yesno`: "yes" (also "yeah", "yep") or "no" ("nope"), read as `yes` or `no`;
/// - an inline wordset: each set's literals (and their `spoken` forms) are the phrases, read as
///   the literal; entries with a word the dictionary lacks are left out, with a notice;
/// - an inline grammar: JSGF as it is (then it must be the only resource), or SRGS XML in its
///   simple one-of form (see ``SRGSGrammar``), whose items are phrases like a wordset's.
///
/// Several builtins, wordsets and SRGS grammars combine into one grammar that allows any of them.
/// No resource at all means dictation. Weights and reuse are ignored.
struct SphinxGrammar: Hashable, Sendable {
  /// How to read a recognized word sequence back as text.
  enum Reading: Hashable, Sendable {
    /// Digit words as numerals, joined without spaces.
    case digits(grammarID: String)
    /// A phrase (its words joined by single spaces) as its text.
    case phrases(grammarID: String, rule: String, texts: [String: String])
    /// The words as they are, joined by spaces.
    case words(grammarID: String)
  }

  /// The grammar's JSGF text; nil for dictation.
  let jsgf: String?
  /// How to read hypotheses, tried in order.
  let readings: [Reading]

  /// Dictation with the language model.
  static let dictation = SphinxGrammar(jsgf: nil, readings: [])

  /// Whether this is dictation.
  var isDictation: Bool { jsgf == nil }

  init(jsgf: String?, readings: [Reading]) {
    self.jsgf = jsgf
    self.readings = readings
  }

  /// The grammar for `resources`, with notices for what was left out.
  ///
  /// `knows` tells whether the dictionary has a word (lowercase). A resource that does not load
  /// is a ``EngineError/Kind/resourceFailed(field:)``, or a notice (and left out) when
  /// `maskLoadFailures` is set.
  ///
  /// - Throws: ``EngineError``: a bad request naming the resource the engine cannot take, or a
  ///   resource that failed to load.
  static func make(
    resources: [RecognitionResource],
    maskLoadFailures: Bool,
    knows: (String) -> Bool
  ) throws(EngineError) -> (grammar: SphinxGrammar, notices: [EngineNotice]) {
    var builder = Builder(maskLoadFailures: maskLoadFailures)
    for (index, resource) in resources.enumerated() {
      try builder.add(resource, index: index, of: resources.count, knows: knows)
    }
    return (builder.grammar(), builder.notices)
  }

  /// Reads a hypothesis: its words (dictionary spellings, fillers removed) as the text and word
  /// texts to report, with the grammar and rule that matched.
  func read(
    _ words: [String]
  ) -> (text: String, words: [String], grammarID: String?, rule: String?) {
    for reading in readings {
      switch reading {
      case .digits(let grammarID):
        let digits = words.compactMap { Self.digitWords[$0] }
        if !digits.isEmpty && digits.count == words.count {
          return (digits.joined(), digits, grammarID, "digits")
        }
      case .phrases(let grammarID, let rule, let texts):
        if let text = texts[words.joined(separator: " ")] {
          return (text, words.count == 1 ? [text] : words, grammarID, rule)
        }
      case .words(let grammarID):
        return (words.joined(separator: " "), words, grammarID, nil)
      }
    }
    return (words.joined(separator: " "), words, nil, nil)
  }

  /// The digit words of the `digits` builtin and the numeral each stands for.
  static let digitWords: [String: String] = [
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
  ]

  /// The phrases of the `yesno` builtin and the text each stands for.
  static let yesNoPhrases: [(String, String)] = [
    ("yes", "yes"), ("yeah", "yes"), ("yep", "yes"), ("no", "no"), ("nope", "no"),
  ]

  /// Builds a grammar resource by resource.
  private struct Builder {
    let maskLoadFailures: Bool
    var notices: [EngineNotice] = []
    /// JSGF rule bodies, each a rule of its own.
    var rules: [(body: String, reading: Reading)] = []
    /// A client's JSGF grammar, which is used alone.
    var inlineJSGF: (text: String, grammarID: String)?

    mutating func add(
      _ resource: RecognitionResource,
      index: Int,
      of count: Int,
      knows: (String) -> Bool
    ) throws(EngineError) {
      let field = "resources[\(index)]"
      switch resource.resource {
      case .builtin(let name)?:
        switch name.lowercased() {
        case "digits":
          let digits = SphinxGrammar.digitWords.keys.sorted().joined(separator: " | ")
          rules.append(("(\(digits))+", .digits(grammarID: "builtin:digits")))
        case "yesno":
          addPhrases(
            SphinxGrammar.yesNoPhrases.map { ($0.0.split(separator: " ").map(String.init), $0.1) },
            grammarID: "builtin:yesno",
            rule: "yesno"
          )
        default:
          throw EngineError(
            .badRequest(field: "\(field).builtin"),
            "unknown builtin '\(name)': the sphinx engine knows digits and yesno"
          )
        }
      case .inlineWordset(let json)?:
        let sets: [(name: String, entries: [(literal: String, spoken: [String])])]
        do {
          sets = try Wordset.parse(json)
        } catch {
          throw EngineError(
            .badRequest(field: "\(field).inline_wordset"),
            "the inline wordset is not valid wordset JSON: \(error.message)"
          )
        }
        var loaded = false
        var unknown: [String] = []
        for set in sets {
          var phrases: [([String], String)] = []
          for entry in set.entries {
            for form in [entry.literal] + entry.spoken {
              let words = Self.words(of: form, knows: knows)
              let missing = words.filter { !Self.isSafeToken($0) || !knows($0) }
              if words.isEmpty || !missing.isEmpty {
                unknown.append(contentsOf: missing)
                continue
              }
              phrases.append((words, entry.literal))
            }
          }
          guard !phrases.isEmpty else { continue }
          loaded = true
          addPhrases(phrases, grammarID: "wordset:\(set.name)", rule: set.name)
        }
        let words = Array(Set(unknown)).sorted().prefix(10).map { "'\($0)'" }
        guard loaded else {
          try failed(
            "\(field).inline_wordset",
            "none of the wordset's phrases can be recognized: the dictionary lacks "
              + words.joined(separator: ", ")
          )
          return
        }
        if !unknown.isEmpty {
          notices.append(
            EngineNotice(
              code: 502,
              message: "\(field).inline_wordset: phrases left out, the dictionary lacks "
                + words.joined(separator: ", ")
            )
          )
        }
      case .inlineGrammar(let text)?:
        try addGrammar(text, field: "\(field).inline_grammar", alone: count == 1, knows: knows)
      case .externalReference?:
        throw EngineError(
          .badRequest(field: "\(field).external_reference"),
          "the sphinx engine loads no external resources: send grammars and wordsets inline"
        )
      case .wakeupWord?:
        throw EngineError(
          .badRequest(field: "\(field).wakeup_word"),
          "the sphinx engine does not support wakeup words"
        )
      case nil:
        throw EngineError(.badRequest(field: field), "the resource is empty")
      }
    }

    mutating func addGrammar(
      _ text: String,
      field: String,
      alone: Bool,
      knows: (String) -> Bool
    ) throws(EngineError) {
      let trimmed = text.drop(while: \.isWhitespace)
      if trimmed.hasPrefix("#JSGF") {
        guard alone else {
          throw EngineError(
            .badRequest(field: field),
            "a JSGF grammar must be the only resource of a recognition on the sphinx engine"
          )
        }
        guard text.utf8.count <= JSGFGrammar.maxBytes else {
          throw EngineError(
            .badRequest(field: field),
            "the grammar is \(text.utf8.count) bytes, over the sphinx engine's limit of \(JSGFGrammar.maxBytes)"
          )
        }
        // Parsed here, never by PocketSphinx: its parser leaks on errors and reads imports from
        // the server's disk. What it gets is the canonical text of a grammar known to be sound.
        let grammar: JSGFGrammar
        do {
          grammar = try JSGFGrammar(parsing: text)
        } catch {
          try failed(field, "the JSGF grammar does not load: \(error)")
          return
        }
        let unknown = grammar.words.filter { !Self.isSafeToken($0) || !knows($0) }
        guard unknown.isEmpty else {
          let words = unknown.sorted().prefix(10).map { "'\($0)'" }
          try failed(
            field,
            "the JSGF grammar does not compile: the dictionary lacks "
              + words.joined(separator: ", ")
          )
          return
        }
        inlineJSGF = (grammar.canonicalText, "grammar:\(grammar.name)")
      } else if trimmed.hasPrefix("#ABNF") {
        throw EngineError(
          .badRequest(field: field),
          "SRGS ABNF grammars are not supported: use JSGF or SRGS XML"
        )
      } else if trimmed.hasPrefix("<") {
        let grammar: SRGSGrammar
        do {
          grammar = try SRGSGrammar(xml: text)
        } catch {
          switch error {
          case .malformed(let reason):
            try failed(field, "the SRGS grammar does not load: \(reason)")
            return
          case .unsupported(let construct):
            throw EngineError(
              .badRequest(field: field),
              "unsupported SRGS: \(construct); the sphinx engine takes SRGS XML only as one"
                + " <one-of> of plain-text <item>s"
            )
          }
        }
        var phrases: [([String], String)] = []
        var unknown: [String] = []
        for phrase in grammar.phrases {
          let words = Self.words(of: phrase, knows: knows)
          let missing = words.filter { !Self.isSafeToken($0) || !knows($0) }
          unknown.append(contentsOf: missing)
          if !words.isEmpty && missing.isEmpty { phrases.append((words, phrase)) }
        }
        guard unknown.isEmpty else {
          let words = Array(Set(unknown)).sorted().prefix(10).map { "'\($0)'" }
          try failed(
            field,
            "the SRGS grammar does not compile: the dictionary lacks "
              + words.joined(separator: ", ")
          )
          return
        }
        addPhrases(phrases, grammarID: "grammar:\(grammar.root)", rule: grammar.root)
      } else {
        try failed(field, "the inline grammar is neither JSGF (#JSGF V1.0;) nor SRGS XML")
      }
    }

    /// A resource that did not load: a 502, or a notice when failures are masked.
    mutating func failed(_ field: String, _ message: String) throws(EngineError) {
      guard maskLoadFailures else {
        throw EngineError(.resourceFailed(field: field), message)
      }
      notices.append(EngineNotice(code: 502, message: "\(field) did not load: \(message)"))
    }

    mutating func addPhrases(_ phrases: [([String], String)], grammarID: String, rule: String) {
      var texts: [String: String] = [:]
      var alternatives: [String] = []
      for (words, text) in phrases {
        let key = words.joined(separator: " ")
        // The first entry of a phrase wins.
        guard texts[key] == nil else { continue }
        texts[key] = text
        alternatives.append(key)
      }
      rules.append(
        (
          alternatives.joined(separator: " | "),
          .phrases(grammarID: grammarID, rule: rule, texts: texts)
        )
      )
    }

    func grammar() -> SphinxGrammar {
      if let inlineJSGF {
        return SphinxGrammar(
          jsgf: inlineJSGF.text,
          readings: [.words(grammarID: inlineJSGF.grammarID)]
        )
      }
      guard !rules.isEmpty else { return .dictation }
      // <NULL>: silence and noise alone are a path too, so that audio the rules fit badly (a
      // tone, a cough, other words) can end in no hypothesis rather than the least bad phrase.
      var jsgf = "#JSGF V1.0;\ngrammar hark;\npublic <hark> = "
      jsgf += rules.indices.map { "<r\($0)>" }.joined(separator: " | ") + " | <NULL>;\n"
      for (index, rule) in rules.enumerated() {
        jsgf += "<r\(index)> = \(rule.body);\n"
      }
      return SphinxGrammar(jsgf: jsgf, readings: rules.map(\.reading))
    }

    /// The dictionary words of a literal: lowercase, split at white space, punctuation around
    /// each word dropped (a final period only when the dictionary lacks the word with it, as in
    /// `st.`).
    static func words(of phrase: String, knows: (String) -> Bool) -> [String] {
      phrase.lowercased().split(whereSeparator: \.isWhitespace).compactMap { token in
        var word = token.trimmingCharacters(in: ",!?;:\"()[]{}")
        if word.hasSuffix(".") && !knows(word) {
          word = Substring(word).trimmingCharacters(in: ".")
        }
        return word.isEmpty ? nil : word
      }
    }

    /// Whether `word` can stand unquoted in JSGF: letters, digits, apostrophes, hyphens,
    /// periods and underscores.
    static func isSafeToken(_ word: String) -> Bool {
      word.unicodeScalars.allSatisfy { scalar in
        scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
          || ["'", "-", ".", "_"].contains(scalar)
      }
    }

  }
}

extension Substring {
  /// The substring without the characters of `set` at either end.
  fileprivate func trimmingCharacters(in set: String) -> String {
    var result = self
    while let first = result.first, set.contains(first) { result.removeFirst() }
    while let last = result.last, set.contains(last) { result.removeLast() }
    return String(result)
  }
}
