/// The wire type of a protobuf field record: the low three bits of its tag.
///
/// Types 6 and 7 are undefined and never decode; groups (3 and 4) are deprecated and no message
/// of nuance.asr.v1 uses them, so Hark's decoder rejects them too.
public enum WireType: UInt8, Sendable, Hashable {
  case varint = 0
  case fixed64 = 1
  case lengthDelimited = 2
  case startGroup = 3
  case endGroup = 4
  case fixed32 = 5
}

/// A field record's tag: a field number (1 ... 2^29-1) and a wire type, valid by construction.
public struct FieldTag: Sendable, Hashable {
  /// The field number, 1 ... 536,870,911.
  public let fieldNumber: Int
  /// How the field's payload is encoded.
  public let wireType: WireType

  /// The largest field number a tag can carry (29 bits).
  public static let maxFieldNumber = (1 << 29) - 1

  /// A tag for a field number and wire type; the caller guarantees the number is in range.
  @inlinable
  public init(fieldNumber: Int, wireType: WireType) {
    precondition(fieldNumber >= 1 && fieldNumber <= FieldTag.maxFieldNumber)
    self.fieldNumber = fieldNumber
    self.wireType = wireType
  }

  @inlinable
  init(uncheckedFieldNumber: Int, wireType: WireType) {
    self.fieldNumber = uncheckedFieldNumber
    self.wireType = wireType
  }

  /// The tag's value as written on the wire: `(fieldNumber << 3) | wireType`.
  @inlinable
  public var rawValue: UInt32 {
    UInt32(truncatingIfNeeded: fieldNumber << 3) | UInt32(wireType.rawValue)
  }
}
