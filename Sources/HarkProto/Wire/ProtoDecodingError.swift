/// Why bytes did not decode as a protobuf message, and where.
///
/// Every malformed input decodes to one of these; the decoder never traps on what a peer sends.
public struct ProtoDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The class of malformation.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private enum Value: Hashable, Sendable {
      case truncated, malformedVarint, invalidLength, invalidFieldNumber, invalidWireType
      case groupNotSupported, invalidUTF8, depthLimitExceeded
    }
    private let value: Value
    private init(_ value: Value) { self.value = value }

    /// The input ended inside a record.
    public static let truncated = Code(.truncated)
    /// A varint ran past ten bytes, or a tag or length past five.
    public static let malformedVarint = Code(.malformedVarint)
    /// A length prefix beyond 2^31-1.
    public static let invalidLength = Code(.invalidLength)
    /// Field number 0, or a tag beyond 32 bits.
    public static let invalidFieldNumber = Code(.invalidFieldNumber)
    /// Wire type 6 or 7.
    public static let invalidWireType = Code(.invalidWireType)
    /// A start- or end-group record (wire types 3 and 4).
    public static let groupNotSupported = Code(.groupNotSupported)
    /// A `string` field that is not valid UTF-8.
    public static let invalidUTF8 = Code(.invalidUTF8)
    /// Submessages nested deeper than the decoder's budget.
    public static let depthLimitExceeded = Code(.depthLimitExceeded)

    public var description: String {
      switch value {
      case .truncated: "truncated input"
      case .malformedVarint: "malformed varint"
      case .invalidLength: "length out of range"
      case .invalidFieldNumber: "invalid field number"
      case .invalidWireType: "invalid wire type"
      case .groupNotSupported: "groups are not supported"
      case .invalidUTF8: "invalid UTF-8 in string field"
      case .depthLimitExceeded: "message nesting too deep"
      }
    }
  }

  /// The class of malformation.
  public var code: Code
  /// The fully qualified name of the message being decoded, e.g. `nuance.asr.v1.Word`.
  public var messageName: String
  /// The field being decoded: its proto name, or `#N` for a field the schema does not know.
  public var fieldName: String
  /// The path of fields from the top-level message, e.g. `result.hypotheses.words.text`.
  public var fieldPath: String
  /// The byte offset in the input where the problem was found.
  public var offset: Int

  @usableFromInline
  package init(code: Code, offset: Int) {
    self.code = code
    self.messageName = ""
    self.fieldName = ""
    self.fieldPath = ""
    self.offset = offset
  }

  public var description: String {
    let location = messageName.isEmpty ? "" : " in \(messageName).\(fieldName)"
    let path = fieldPath.isEmpty || fieldPath == fieldName ? "" : " (\(fieldPath))"
    return "\(code)\(location)\(path) at byte \(offset)"
  }
}
