/// The percent-encoding of the `grpc-message` trailer.
///
/// A status message is Unicode text, sent as UTF-8 and then percent-encoded: the bytes of space
/// and VCHAR (0x20–0x7E) except `%` go as they are, and every other byte as `%XX`. Decoding never
/// fails, because the specification forbids throwing a message away: an invalid `%` sequence is
/// kept as it is, and bytes that do not form UTF-8 become U+FFFD.
public enum GRPCStatusMessage {
  /// The `grpc-message` header value for `message`, with uppercase hex digits.
  public static func encode(_ message: String) -> String {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(message.utf8.count)
    for byte in message.utf8 {
      if isUnencoded(byte) {
        bytes.append(byte)
      } else {
        bytes.append(UInt8(ascii: "%"))
        bytes.append(hexDigits[Int(byte >> 4)])
        bytes.append(hexDigits[Int(byte & 0x0F)])
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The message that the `grpc-message` header value `value` carries, decoded leniently.
  ///
  /// `%XX` with two hex digits of either case becomes the byte `XX`. A `%` not followed by two
  /// hex digits stays a literal `%`, as do the characters after it. The resulting bytes are read
  /// as UTF-8, with U+FFFD in place of each invalid sequence.
  public static func decode(_ value: String) -> String {
    let input = Array(value.utf8)
    // Most messages have nothing encoded; skip the copy.
    guard input.contains(UInt8(ascii: "%")) else { return value }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(input.count)
    var index = 0
    while index < input.count {
      if input[index] == UInt8(ascii: "%"), index + 2 < input.count,
        let high = hexValue(input[index + 1]), let low = hexValue(input[index + 2])
      {
        bytes.append(high << 4 | low)
        index += 3
      } else {
        bytes.append(input[index])
        index += 1
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private static let hexDigits = Array("0123456789ABCDEF".utf8)

  /// Whether `byte` is sent as it is: space and VCHAR, except `%`.
  private static func isUnencoded(_ byte: UInt8) -> Bool {
    (0x20...0x7E).contains(byte) && byte != UInt8(ascii: "%")
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    default: nil
    }
  }
}
