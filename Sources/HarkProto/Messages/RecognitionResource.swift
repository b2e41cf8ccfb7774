// resource.proto: DLMs, wordsets, builtins, grammars and wakeup words.

/// `nuance.asr.v1.RecognitionResource`: a resource that tunes recognition.
public struct RecognitionResource: ProtoMessage {
  /// The `resource_union` oneof.
  public enum Resource: Sendable, Hashable {
    /// Field 1: an external file; mandatory for DLMs and speaker profiles.
    case externalReference(ResourceReference)
    /// Field 2: an inline wordset (JSON).
    case inlineWordset(String)
    /// Field 3: the name of a builtin of the data pack.
    case builtin(String)
    /// Field 4: an inline grammar.
    case inlineGrammar(String)
    /// Field 8: wakeup words.
    case wakeupWord(WakeupWord)
  }

  /// The `weight_union` oneof.
  public enum Weight: Sendable, Hashable {
    /// Field 5: a keyword weight.
    case weightEnum(ResourceWeight)
    /// Field 6: a weight from 0 to 1.
    case weightValue(Float)
  }

  /// Which member of `resource_union` is set, if any.
  public var resource: Resource?
  /// Which member of `weight_union` is set, if any.
  public var weight: Weight?
  /// Field 7: whether the resource is used for one turn or many.
  public var reuse: ResourceReuse = .undefinedReuse

  public init() {}

  /// A resource of `resource` with an optional weight.
  public init(_ resource: Resource?, weight: Weight? = nil, reuse: ResourceReuse = .undefinedReuse)
  {
    self.resource = resource
    self.weight = weight
    self.reuse = reuse
  }
}

extension RecognitionResource {
  public static let protoName = "nuance.asr.v1.RecognitionResource"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "external_reference"
    case 2: "inline_wordset"
    case 3: "builtin"
    case 4: "inline_grammar"
    case 5: "weight_enum"
    case 6: "weight_value"
    case 7: "reuse"
    case 8: "wakeup_word"
    default: nil
    }
  }

  public var encodedSize: Int {
    var size: Int
    switch resource {
    case nil: size = 0
    case .externalReference(let message)?: size = ProtoSize.present(1, message)
    case .inlineWordset(let string)?: size = ProtoSize.present(2, string)
    case .builtin(let string)?: size = ProtoSize.present(3, string)
    case .inlineGrammar(let string)?: size = ProtoSize.present(4, string)
    case .wakeupWord(let message)?: size = ProtoSize.present(8, message)
    }
    switch weight {
    case nil: break
    case .weightEnum(let value)?: size += ProtoSize.present(5, value)
    case .weightValue(let value)?: size += ProtoSize.present(6, value)
    }
    return size + ProtoSize.field(7, reuse)
  }

  public func encode(to writer: inout ProtoWriter) {
    // Field-number order interleaves the two oneofs: 1 ... 4, then 5 and 6, 7, then 8.
    switch resource {
    case .externalReference(let message)?: writer.writePresent(message, field: 1)
    case .inlineWordset(let string)?: writer.writePresent(string, field: 2)
    case .builtin(let string)?: writer.writePresent(string, field: 3)
    case .inlineGrammar(let string)?: writer.writePresent(string, field: 4)
    case nil, .wakeupWord?: break
    }
    switch weight {
    case nil: break
    case .weightEnum(let value)?: writer.writePresent(value, field: 5)
    case .weightValue(let value)?: writer.writePresent(value, field: 6)
    }
    writer.write(reuse, field: 7)
    if case .wakeupWord(let message)? = resource { writer.writePresent(message, field: 8) }
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        var message = ResourceReference()
        if case .externalReference(let existing)? = resource {
          message = existing
          resource = nil
        }
        try reader.readMessage(into: &message)
        resource = .externalReference(message)
      case (2, .lengthDelimited): resource = .inlineWordset(try reader.readString())
      case (3, .lengthDelimited): resource = .builtin(try reader.readString())
      case (4, .lengthDelimited): resource = .inlineGrammar(try reader.readString())
      case (5, .varint): weight = .weightEnum(try reader.readEnum())
      case (6, .fixed32): weight = .weightValue(try reader.readFloat())
      case (7, .varint): reuse = try reader.readEnum()
      case (8, .lengthDelimited):
        var message = WakeupWord()
        if case .wakeupWord(let existing)? = resource {
          message = existing
          resource = nil
        }
        try reader.readMessage(into: &message)
        resource = .wakeupWord(message)
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.ResourceReference`: a resource in an external location.
public struct ResourceReference: ProtoMessage {
  /// Field 1: the resource's type.
  public var type: ResourceType = .undefinedResourceType
  /// Field 2: its location, as a URN.
  public var uri: String = ""
  /// Field 3: errors loading it do not end the recognition.
  public var maskLoadFailures = false
  /// Field 7: time to wait when downloading it, in ms; 0 means the server default.
  public var requestTimeoutMs: UInt32 = 0
  /// Field 8: headers to send with the download.
  public var headers: [String: String] = [:]

  public init() {}

  public static let protoName = "nuance.asr.v1.ResourceReference"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "type"
    case 2: "uri"
    case 3: "mask_load_failures"
    case 7: "request_timeout_ms"
    case 8: "headers"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, type) + ProtoSize.field(2, uri) + ProtoSize.field(3, maskLoadFailures)
      + ProtoSize.field(7, requestTimeoutMs) + ProtoSize.field(8, headers)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(type, field: 1)
    writer.write(uri, field: 2)
    writer.write(maskLoadFailures, field: 3)
    writer.write(requestTimeoutMs, field: 7)
    writer.write(headers, field: 8)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): type = try reader.readEnum()
      case (2, .lengthDelimited): uri = try reader.readString()
      case (3, .varint): maskLoadFailures = try reader.readBool()
      case (7, .varint): requestTimeoutMs = try reader.readUInt32()
      case (8, .lengthDelimited):
        try reader.readStringToStringEntry(into: &headers)
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.WakeupWord`: wakeup words.
public struct WakeupWord: ProtoMessage {
  /// Field 1: the wakeup words, each distinct.
  public var words: [String] = []

  public init() {}

  /// Wakeup words `words`.
  public init(words: [String]) {
    self.words = words
  }

  public static let protoName = "nuance.asr.v1.WakeupWord"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "words" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, words) }
  public func encode(to writer: inout ProtoWriter) { writer.write(words, field: 1) }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): words.append(try reader.readString())
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.EnumResourceType`: the type of an external resource.
public struct ResourceType: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let undefinedResourceType = Self(rawValue: 0)
  public static let wordset = Self(rawValue: 1)
  public static let compiledWordset = Self(rawValue: 2)
  public static let domainLM = Self(rawValue: 3)
  public static let speakerProfile = Self(rawValue: 4)
  public static let grammar = Self(rawValue: 5)
  public static let settings = Self(rawValue: 6)

  public static let namedValues: [(Self, String)] = [
    (.undefinedResourceType, "UNDEFINED_RESOURCE_TYPE"), (.wordset, "WORDSET"),
    (.compiledWordset, "COMPILED_WORDSET"), (.domainLM, "DOMAIN_LM"),
    (.speakerProfile, "SPEAKER_PROFILE"), (.grammar, "GRAMMAR"), (.settings, "SETTINGS"),
  ]
}

/// `nuance.asr.v1.EnumResourceReuse`: whether a resource serves one turn or many.
public struct ResourceReuse: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let undefinedReuse = Self(rawValue: 0)
  public static let lowReuse = Self(rawValue: 1)
  public static let highReuse = Self(rawValue: 5)

  public static let namedValues: [(Self, String)] = [
    (.undefinedReuse, "UNDEFINED_REUSE"), (.lowReuse, "LOW_REUSE"), (.highReuse, "HIGH_REUSE"),
  ]
}

/// `nuance.asr.v1.EnumWeight`: a keyword weight of a resource.
public struct ResourceWeight: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let defaultWeight = Self(rawValue: 0)
  public static let lowest = Self(rawValue: 1)
  public static let low = Self(rawValue: 2)
  public static let medium = Self(rawValue: 3)
  public static let high = Self(rawValue: 4)
  public static let highest = Self(rawValue: 5)

  public static let namedValues: [(Self, String)] = [
    (.defaultWeight, "DEFAULT_WEIGHT"), (.lowest, "LOWEST"), (.low, "LOW"), (.medium, "MEDIUM"),
    (.high, "HIGH"), (.highest, "HIGHEST"),
  ]
}
