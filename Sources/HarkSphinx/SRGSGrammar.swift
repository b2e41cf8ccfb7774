/// An SRGS XML grammar in the one form the sphinx engine takes: a root rule that is a single
/// `<one-of>` of plain-text `<item>`s (or plain text alone).
///
/// ```xml
/// <grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" root="department">
///   <rule id="department"><one-of><item>billing</item><item>sales</item></one-of></rule>
/// </grammar>
/// ```
///
/// `<tag>`s (semantic interpretation), `<meta>`, `<metadata>` and `<example>` are ignored; rules
/// other than the root are not looked at. Anything else — `<ruleref>`, nested `<one-of>`, repeats,
/// `<token>`, DTMF mode — is ``Failure/unsupported(_:)``.
struct SRGSGrammar: Hashable, Sendable {
  /// Why a text is not a grammar the engine takes.
  enum Failure: Error, Hashable, Sendable {
    /// Not well-formed XML, or not an SRGS grammar: the grammar does not load.
    case malformed(String)
    /// An SRGS construct the engine does not take; the string names it.
    case unsupported(String)
  }

  /// The id of the root rule.
  var root: String
  /// The phrases the root rule allows, whitespace collapsed, in order.
  var phrases: [String]

  /// Parses `xml`.
  init(xml: String) throws(Failure) {
    let document: XMLElement
    do {
      document = try XMLElement.parseDocument(xml)
    } catch {
      throw .malformed(error.message)
    }
    guard document.localName == "grammar" else {
      throw .malformed("the root element is <\(document.name)>, not an SRGS <grammar>")
    }
    if let mode = document.attributes["mode"], mode != "voice" {
      throw .unsupported("mode=\"\(mode)\" (only voice grammars)")
    }
    var rules: [XMLElement] = []
    for child in document.elements {
      switch child.localName {
      case "rule": rules.append(child)
      case "meta", "metadata", "tag", "example": continue
      default: throw .unsupported("<\(child.name)> in <grammar>")
      }
    }
    guard let first = rules.first else { throw .malformed("the grammar has no <rule>") }
    let rootID = document.attributes["root"] ?? first.attributes["id"] ?? ""
    guard let rule = rules.first(where: { $0.attributes["id"] == rootID }) else {
      throw .malformed("the grammar has no rule \"\(rootID)\" for its root")
    }
    root = rootID

    let content = rule.children.filter { node in
      switch node {
      case .text(let text): !text.allSatisfy(\.isWhitespace)
      case .element(let element): !["tag", "example"].contains(element.localName)
      }
    }
    if content.allSatisfy({ if case .text = $0 { true } else { false } }) {
      // The rule is one phrase.
      phrases = [Self.phrase(of: rule.children)].filter { !$0.isEmpty }
      guard !phrases.isEmpty else { throw .unsupported("an empty <rule>") }
      return
    }
    guard content.count == 1, case .element(let oneOf) = content[0], oneOf.localName == "one-of"
    else {
      for node in content {
        if case .element(let element) = node, element.localName != "one-of" {
          throw .unsupported("<\(element.name)> in <rule>")
        }
      }
      throw .unsupported("a <rule> that is more than one <one-of>")
    }
    var phrases: [String] = []
    for node in oneOf.children {
      switch node {
      case .text(let text) where text.allSatisfy(\.isWhitespace):
        continue
      case .text:
        throw .unsupported("text outside an <item> of <one-of>")
      case .element(let element) where element.localName == "tag":
        continue
      case .element(let element) where element.localName != "item":
        throw .unsupported("<\(element.name)> in <one-of>")
      case .element(let item):
        for attribute in ["repeat", "repeat-prob"] where item.attributes[attribute] != nil {
          throw .unsupported("<item \(attribute)=…>")
        }
        for child in item.elements where child.localName != "tag" {
          throw .unsupported("<\(child.name)> in <item>")
        }
        let phrase = Self.phrase(of: item.children)
        guard !phrase.isEmpty else { throw .unsupported("an empty <item>") }
        phrases.append(phrase)
      }
    }
    guard !phrases.isEmpty else { throw .unsupported("an empty <one-of>") }
    self.phrases = phrases
  }

  /// The text of `nodes` (tags left out), whitespace collapsed.
  private static func phrase(of nodes: [XMLElement.Node]) -> String {
    var text = ""
    for node in nodes {
      if case .text(let part) = node { text += " " + part }
    }
    return text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }
}

/// An element of a small XML document: enough XML for SRGS grammars (elements, attributes, text,
/// comments, CDATA, processing instructions, the five named entities and character references;
/// no DTDs beyond skipping a DOCTYPE without an internal subset).
struct XMLElement: Hashable, Sendable {
  /// What an element holds.
  enum Node: Hashable, Sendable {
    case element(XMLElement)
    case text(String)
  }

  /// Why a text is not a well-formed document.
  struct ParseError: Error, Hashable, Sendable {
    var message: String
  }

  /// The name as written, with any namespace prefix.
  var name: String
  /// The attributes, by name as written.
  var attributes: [String: String]
  /// The content, in order; adjacent text comes as one node.
  var children: [Node]

  /// The name without its namespace prefix.
  var localName: Substring {
    name.split(separator: ":", maxSplits: 1).last ?? Substring(name)
  }

  /// The child elements, in order.
  var elements: [XMLElement] {
    children.compactMap { node in
      if case .element(let element) = node { element } else { nil }
    }
  }

  /// Parses a document: its root element.
  static func parseDocument(_ text: String) throws(ParseError) -> XMLElement {
    var parser = Parser(bytes: Array(text.utf8))
    try parser.skipMisc()
    guard parser.peek(UInt8(ascii: "<")) else { throw parser.error("expected the root element") }
    let root = try parser.element(depth: 0)
    try parser.skipMisc()
    guard parser.index == parser.bytes.count else {
      throw parser.error("unexpected content after the root element")
    }
    return root
  }

  private struct Parser {
    let bytes: [UInt8]
    var index = 0

    func error(_ message: String) -> ParseError {
      ParseError(message: "\(message) at offset \(index)")
    }

    func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }

    func starts(with prefix: String) -> Bool {
      let prefix = Array(prefix.utf8)
      return bytes.count - index >= prefix.count
        && bytes[index..<index + prefix.count].elementsEqual(prefix)
    }

    mutating func skipWhitespace() {
      while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// Skips past the next `terminator`.
    mutating func skip(past terminator: String) throws(ParseError) {
      let terminator = Array(terminator.utf8)
      while bytes.count - index >= terminator.count {
        if bytes[index..<index + terminator.count].elementsEqual(terminator) {
          index += terminator.count
          return
        }
        index += 1
      }
      throw error("unterminated markup")
    }

    /// Whitespace, comments, processing instructions (the XML declaration) and a DOCTYPE.
    mutating func skipMisc() throws(ParseError) {
      while true {
        skipWhitespace()
        if starts(with: "<?") {
          try skip(past: "?>")
        } else if starts(with: "<!--") {
          try skip(past: "-->")
        } else if starts(with: "<!DOCTYPE") {
          try skip(past: ">")
        } else {
          return
        }
      }
    }

    mutating func name() throws(ParseError) -> String {
      let start = index
      while index < bytes.count {
        let byte = bytes[index]
        let isNameByte =
          (byte >= 0x80) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
          || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
          || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
          || [UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: ".")]
            .contains(byte)
        guard isNameByte else { break }
        index += 1
      }
      guard index > start else { throw error("expected a name") }
      return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func element(depth: Int) throws(ParseError) -> XMLElement {
      guard depth < 64 else { throw error("elements nested too deep") }
      index += 1  // <
      let name = try name()
      var attributes: [String: String] = [:]
      while true {
        skipWhitespace()
        guard index < bytes.count else { throw error("unterminated start tag <\(name)>") }
        if starts(with: "/>") {
          index += 2
          return XMLElement(name: name, attributes: attributes, children: [])
        }
        if peek(UInt8(ascii: ">")) {
          index += 1
          break
        }
        let attribute = try self.name()
        skipWhitespace()
        guard peek(UInt8(ascii: "=")) else { throw error("expected = after \(attribute)") }
        index += 1
        skipWhitespace()
        guard index < bytes.count, bytes[index] == 0x22 || bytes[index] == 0x27 else {
          throw error("expected a quoted value for \(attribute)")
        }
        let quote = bytes[index]
        index += 1
        let start = index
        while index < bytes.count, bytes[index] != quote {
          guard bytes[index] != UInt8(ascii: "<") else { throw error("< in an attribute value") }
          index += 1
        }
        guard index < bytes.count else { throw error("unterminated attribute value") }
        let value = try Self.unescape(bytes[start..<index], at: start)
        index += 1
        guard attributes.updateValue(value, forKey: attribute) == nil else {
          throw error("attribute \(attribute) repeated")
        }
      }
      var children: [Node] = []
      var text = ""
      func flush() {
        if !text.isEmpty { children.append(.text(text)) }
        text = ""
      }
      while true {
        guard index < bytes.count else { throw error("<\(name)> is not closed") }
        if starts(with: "</") {
          index += 2
          let closing = try self.name()
          skipWhitespace()
          guard closing == name, peek(UInt8(ascii: ">")) else {
            throw error("</\(closing)> does not close <\(name)>")
          }
          index += 1
          flush()
          return XMLElement(name: name, attributes: attributes, children: children)
        } else if starts(with: "<!--") {
          try skip(past: "-->")
        } else if starts(with: "<![CDATA[") {
          index += 9
          let start = index
          try skip(past: "]]>")
          text += String(decoding: bytes[start..<index - 3], as: UTF8.self)
        } else if starts(with: "<?") {
          try skip(past: "?>")
        } else if peek(UInt8(ascii: "<")) {
          flush()
          children.append(.element(try element(depth: depth + 1)))
        } else {
          let start = index
          while index < bytes.count, bytes[index] != UInt8(ascii: "<") { index += 1 }
          text += try Self.unescape(bytes[start..<index], at: start)
        }
      }
    }

    /// `raw` with its entity and character references replaced.
    static func unescape(_ raw: ArraySlice<UInt8>, at offset: Int) throws(ParseError) -> String {
      guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
      var result = ""
      var index = raw.startIndex
      while index < raw.endIndex {
        guard raw[index] == UInt8(ascii: "&") else {
          let start = index
          while index < raw.endIndex, raw[index] != UInt8(ascii: "&") { index += 1 }
          result += String(decoding: raw[start..<index], as: UTF8.self)
          continue
        }
        guard let end = raw[index...].firstIndex(of: UInt8(ascii: ";")) else {
          throw ParseError(message: "unterminated entity at offset \(index)")
        }
        let entity = String(decoding: raw[(index + 1)..<end], as: UTF8.self)
        switch entity {
        case "lt": result += "<"
        case "gt": result += ">"
        case "amp": result += "&"
        case "quot": result += "\""
        case "apos": result += "'"
        default:
          let code: UInt32? =
            entity.hasPrefix("#x")
            ? UInt32(entity.dropFirst(2), radix: 16)
            : entity.hasPrefix("#") ? UInt32(entity.dropFirst(), radix: 10) : nil
          guard let code, let scalar = Unicode.Scalar(code) else {
            throw ParseError(message: "unknown entity &\(entity); at offset \(index)")
          }
          result.unicodeScalars.append(scalar)
        }
        index = end + 1
      }
      return result
    }
  }
}
