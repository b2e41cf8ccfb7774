/// Sizes and transforms of protobuf varints.
public enum Varint {
  /// The number of bytes `value` takes as a varint (1 ... 10).
  @inlinable
  public static func encodedSize(of value: UInt64) -> Int {
    // Each byte carries 7 bits; a zero still takes one byte.
    let significantBits = 64 - (value | 1).leadingZeroBitCount
    return (significantBits + 6) / 7
  }

  /// The number of bytes `value` takes as a varint.
  @inlinable
  public static func encodedSize(of value: UInt32) -> Int {
    encodedSize(of: UInt64(value))
  }

  /// The number of bytes an `int32` (or enum) takes: negative values are sign-extended to ten bytes.
  @inlinable
  public static func encodedSize(of value: Int32) -> Int {
    encodedSize(of: UInt64(bitPattern: Int64(value)))
  }

  /// The ZigZag transform of `sint32`: small magnitudes become small unsigned numbers.
  @inlinable
  public static func zigZagEncoded(_ value: Int32) -> UInt32 {
    UInt32(bitPattern: (value &<< 1) ^ (value >> 31))
  }

  /// The inverse of ``zigZagEncoded(_:)-(Int32)``.
  @inlinable
  public static func zigZagDecoded(_ value: UInt32) -> Int32 {
    Int32(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
  }

  /// The ZigZag transform of `sint64`.
  @inlinable
  public static func zigZagEncoded(_ value: Int64) -> UInt64 {
    UInt64(bitPattern: (value &<< 1) ^ (value >> 63))
  }

  /// The inverse of ``zigZagEncoded(_:)-(Int64)``.
  @inlinable
  public static func zigZagDecoded(_ value: UInt64) -> Int64 {
    Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
  }
}
