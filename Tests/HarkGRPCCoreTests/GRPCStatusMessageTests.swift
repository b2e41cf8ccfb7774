import HarkGRPCCore
import Testing

@Suite("grpc-message percent-encoding")
struct GRPCStatusMessageTests {
  @Test(
    "encoding keeps space and VCHAR except % and writes every other byte as %XX",
    arguments: [
      ("", ""),
      ("Recognizer not found", "Recognizer not found"),
      ("a b%", "a b%25"),
      ("\n", "%0A"),
      ("\t", "%09"),
      ("\0", "%00"),
      ("\u{7F}", "%7F"),
      (" ~", " ~"),
      ("☺", "%E2%98%BA"),
      ("é", "%C3%A9"),
      ("😈", "%F0%9F%98%88"),
      ("\t\n ☺ 😈 100%", "%09%0A %E2%98%BA %F0%9F%98%88 100%25"),
      ("%25", "%2525"),
    ]
  )
  func encode(_ message: String, encoded: String) {
    #expect(GRPCStatusMessage.encode(message) == encoded)
    #expect(GRPCStatusMessage.decode(encoded) == message)
  }

  @Test("every printable ASCII character but % is sent as it is")
  func printableASCII() {
    for byte in UInt8(0x20)...0x7E where byte != UInt8(ascii: "%") {
      let character = String(UnicodeScalar(byte))
      #expect(GRPCStatusMessage.encode(character) == character)
    }
    for byte in UInt8(0x00)..<0x20 {
      let expected = "%" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
      #expect(GRPCStatusMessage.encode(String(UnicodeScalar(byte))) == expected)
    }
  }

  @Test(
    "decoding never fails: invalid % sequences stay as they are",
    arguments: [
      ("%", "%"),
      ("100%", "100%"),
      ("%4", "%4"),
      ("%G1", "%G1"),
      ("%1G", "%1G"),
      ("% 1", "% 1"),
      ("%%41", "%A"),
      ("%4%41", "%4A"),
      ("a%", "a%"),
      ("%-1", "%-1"),
    ]
  )
  func lenientSequences(_ value: String, decoded: String) {
    #expect(GRPCStatusMessage.decode(value) == decoded)
  }

  @Test(
    "decoding accepts lowercase hex and raw characters",
    arguments: [
      ("%e2%98%ba", "☺"),
      ("%E2%98%ba", "☺"),
      ("a b", "a b"),
      ("☺ raw", "☺ raw"),
      ("%0a", "\n"),
    ]
  )
  func lenientCharacters(_ value: String, decoded: String) {
    #expect(GRPCStatusMessage.decode(value) == decoded)
  }

  @Test(
    "decoded bytes that are not UTF-8 are repaired with U+FFFD",
    arguments: [
      ("%FF", "\u{FFFD}"),
      ("a%80b", "a\u{FFFD}b"),
      ("%C3%28", "\u{FFFD}("),
      ("x%E2%98", "x\u{FFFD}"),
      ("%F0%9F%98", "\u{FFFD}"),
      ("%ED%A0%80", "\u{FFFD}\u{FFFD}\u{FFFD}"),
      ("%C0%80", "\u{FFFD}\u{FFFD}"),
    ]
  )
  func repairsUTF8(_ value: String, decoded: String) {
    #expect(GRPCStatusMessage.decode(value) == decoded)
  }

  @Test("any message survives encode then decode, and encodes to printable ASCII")
  func roundTrip() {
    var rng = SystemRandomNumberGeneratorSeeded(seed: 2025)
    let samples: [ClosedRange<UInt32>] = [
      0...0x7F, 0x80...0x7FF, 0x800...0xFFFF, 0x10000...0x10FFFF,
    ]
    for _ in 0..<500 {
      var message = ""
      for _ in 0..<Int.random(in: 0...20, using: &rng) {
        let range = samples.randomElement(using: &rng)!
        if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &rng)) {
          message.unicodeScalars.append(scalar)
        }
      }
      let encoded = GRPCStatusMessage.encode(message)
      #expect(encoded.utf8.allSatisfy { (0x20...0x7E).contains($0) })
      #expect(GRPCStatusMessage.decode(encoded) == message)
    }
  }
}
