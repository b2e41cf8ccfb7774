import HarkProto
import HarkTestSupport
import NIOCore
import Testing

/// Every class of malformed input decodes to a typed error that names the message and field;
/// none traps and none allocates beyond the input.
@Suite("Malformed input", .cpuBound)
struct MalformedInputTests {
  func decodeError<M: ProtoMessage>(
    _ type: M.Type,
    _ bytes: [UInt8],
    options: ProtoDecodingOptions = ProtoDecodingOptions()
  ) -> ProtoDecodingError? {
    do throws(ProtoDecodingError) {
      _ = try M(serializedBytes: bytes, options: options)
      return nil
    } catch {
      return error
    }
  }

  func decodeRequest(_ bytes: [UInt8]) -> ProtoDecodingError? {
    decodeError(RecognitionRequest.self, bytes)
  }

  func decodeResponse(_ bytes: [UInt8]) -> ProtoDecodingError? {
    decodeError(RecognitionResponse.self, bytes)
  }

  @Test("truncated input: a varint, a fixed32, a length-delimited payload, a tag")
  func truncated() throws {
    let status = try #require(decodeResponse([0x0A, 0x01, 0x08]))  // status { code <missing> }
    #expect(status.code == .truncated)
    #expect(status.messageName == "nuance.asr.v1.Status")
    #expect(status.fieldName == "code")
    #expect(status.fieldPath == "status.code")

    let audio = try #require(decodeRequest([0x1A, 0x05, 0x01, 0x02]))  // 5 bytes announced, 2 sent
    #expect(audio.code == .truncated)
    #expect(audio.messageName == "nuance.asr.v1.RecognitionRequest")
    #expect(audio.fieldName == "audio")

    // parameters { speech_detection_sensitivity <2 of 4 bytes> }
    let float = try #require(decodeRequest([0x0A, 0x05, 0x0A, 0x03, 0x55, 0x00, 0x00]))
    #expect(float.code == .truncated)
    #expect(float.messageName == "nuance.asr.v1.RecognitionParameters")
    #expect(float.fieldPath == "recognition_init_message.parameters.speech_detection_sensitivity")

    let tag = try #require(decodeRequest([0x80]))
    #expect(tag.code == .truncated)
  }

  @Test("a varint longer than ten bytes")
  func longVarint() throws {
    let error = try #require(
      decodeResponse([0x0A, 0x0C, 0x08] + Array(repeating: 0x80, count: 10) + [0x01])
    )
    #expect(error.code == .malformedVarint)
    #expect(error.messageName == "nuance.asr.v1.Status")
    #expect(error.fieldName == "code")
  }

  @Test("a tag longer than five bytes, or beyond 32 bits")
  func longTag() throws {
    #expect(decodeRequest([0x88, 0x80, 0x80, 0x80, 0x80, 0x00])?.code == .malformedVarint)
    #expect(decodeRequest([0x88, 0x80, 0x80, 0x80, 0x7F])?.code == .invalidFieldNumber)
  }

  @Test("a length past the end of the input")
  func lengthPastEnd() throws {
    let error = try #require(decodeResponse([0x1A, 0x10, 0x22, 0x00]))
    #expect(error.code == .truncated)
    #expect(error.fieldName == "result")
    // The length of a nested field may not run past its parent's end, even if the input goes on.
    let nested = try #require(
      decodeResponse([0x0A, 0x02, 0x12, 0x05, 0x61, 0x61, 0x61, 0x61, 0x61])
    )
    #expect(nested.code == .truncated)
    #expect(nested.messageName == "nuance.asr.v1.Status")
    #expect(nested.fieldName == "message")
  }

  @Test("a length over 2^31-1 is rejected before anything is allocated")
  func hugeLength() throws {
    let error = try #require(decodeRequest([0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]))
    #expect(error.code == .invalidLength)
    #expect(error.fieldName == "audio")
    let almost = try #require(decodeRequest([0x1A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]))
    #expect(almost.code == .truncated)
  }

  @Test("field number 0")
  func fieldZero() throws {
    let error = try #require(decodeRequest([0x00, 0x01]))
    #expect(error.code == .invalidFieldNumber)
    #expect(error.messageName == "nuance.asr.v1.RecognitionRequest")
    let nested = try #require(decodeResponse([0x0A, 0x02, 0x02, 0x00]))
    #expect(nested.code == .invalidFieldNumber)
    #expect(nested.messageName == "nuance.asr.v1.Status")
  }

  @Test("wire types 6 and 7", arguments: [UInt8(0x0E), 0x0F])
  func undefinedWireTypes(tag: UInt8) throws {
    let error = try #require(decodeRequest([tag, 0x00]))
    #expect(error.code == .invalidWireType)
    #expect(error.fieldName == "recognition_init_message")
  }

  @Test("group wire types 3 and 4", arguments: [UInt8(0x0B), 0x0C, 0xFB])
  func groups(tag: UInt8) throws {
    let error = try #require(decodeRequest([tag, 0x01, 0x00]))
    #expect(error.code == .groupNotSupported)
  }

  @Test("invalid UTF-8 in a string field names the field")
  func invalidUTF8() throws {
    for bad: [UInt8] in [
      [0xFF], [0xC3], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0x80], [0xF4, 0x90, 0x80, 0x80],
    ] {
      // result { hypotheses { words { text <bad> } } }
      let word: [UInt8] = [0x0A, UInt8(bad.count)] + bad
      let hypothesis: [UInt8] = [0x32, UInt8(word.count)] + word
      let result: [UInt8] = [0x2A, UInt8(hypothesis.count)] + hypothesis
      let error = try #require(decodeResponse([0x1A, UInt8(result.count)] + result))
      #expect(error.code == .invalidUTF8)
      #expect(error.messageName == "nuance.asr.v1.Word")
      #expect(error.fieldName == "text")
      #expect(error.fieldPath == "result.hypotheses.words.text")
      #expect(error.description.contains("nuance.asr.v1.Word.text"))
    }
  }

  @Test("a truncated field read in the expected order names the field")
  func truncatedExpectedField() throws {
    // result { hypotheses { words { text "a" confidence <two of four bytes> } } }: Word reads
    // text and confidence without a dispatch (ProtoReader.expect(tag:)).
    let word: [UInt8] = [0x0A, 0x01, 0x61, 0x15, 0x00, 0x00]
    let hypothesis: [UInt8] = [0x32, UInt8(word.count)] + word
    let result: [UInt8] = [0x2A, UInt8(hypothesis.count)] + hypothesis
    let error = try #require(decodeResponse([0x1A, UInt8(result.count)] + result))
    #expect(error.code == .truncated)
    #expect(error.fieldPath == "result.hypotheses.words.confidence")
    // The same for an audio request's payload.
    let audio = try #require(decodeRequest([0x1A, 0x05, 0x01]))
    #expect(audio.code == .truncated)
    #expect(audio.fieldPath == "audio")
  }

  @Test("invalid UTF-8 in a map key or value names the map")
  func invalidUTF8InMap() throws {
    let error = try #require(decodeResponse([0x22, 0x05, 0x0A, 0x01, 0x61, 0x12, 0xFF]))
    #expect(error.code == .truncated)
    let bad = try #require(decodeResponse([0x22, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0xFF]))
    #expect(bad.code == .invalidUTF8)
    #expect(bad.messageName == "nuance.asr.v1.RecognitionResponse")
    #expect(bad.fieldName == "cookies")
    #expect(bad.fieldPath == "cookies.value")
  }

  @Test("nesting beyond the depth budget")
  func depthBudget() throws {
    // result { hypotheses { words { } } } is three submessages deep.
    let bytes: [UInt8] = [0x1A, 0x04, 0x2A, 0x02, 0x32, 0x00]
    #expect(decodeError(RecognitionResponse.self, bytes, options: .init(maxDepth: 3)) == nil)
    let error = try #require(
      decodeError(RecognitionResponse.self, bytes, options: .init(maxDepth: 2))
    )
    #expect(error.code == .depthLimitExceeded)
    #expect(error.messageName == "nuance.asr.v1.Hypothesis")
    #expect(error.fieldName == "words")
  }

  @Test("random garbage never traps, and any error names a message")
  func randomGarbage() {
    var rng = SplitMix64(seed: 0xBAD_C0DE)
    for _ in 0..<20_000 {
      let length = Int.random(in: 0...64, using: &rng)
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
      if let error = decodeRequest(bytes) { #expect(!error.messageName.isEmpty) }
      if let error = decodeResponse(bytes) { #expect(!error.messageName.isEmpty) }
    }
  }

  @Test("mutations of valid messages never trap")
  func mutatedMessages() {
    var generator = MessageGenerator(seed: 0x5EED)
    var rng = SplitMix64(seed: 0xF00D)
    for _ in 0..<3_000 {
      var bytes = generator.recognitionResponse().serializedByteArray()
      guard !bytes.isEmpty else { continue }
      for _ in 0..<Int.random(in: 1...4, using: &rng) {
        let index = Int.random(in: 0..<bytes.count, using: &rng)
        bytes[index] = UInt8.random(in: 0...255, using: &rng)
      }
      if Bool.random(using: &rng) { bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng)) }
      _ = decodeResponse(bytes)
      _ = decodeRequest(bytes)
    }
  }
}

@Suite("UTF-8 validation", .cpuBound)
struct UTF8ValidationTests {
  /// Whether a `string` field holding `bytes` decodes.
  static func decodes(_ bytes: [UInt8]) -> Bool {
    let field: [UInt8] = [0x0A] + Array(varint: bytes.count) + bytes
    return (try? Word(serializedBytes: field)) != nil
  }

  @Test("string fields accept exactly what the standard library's strict validator accepts")
  func agreesWithStandardLibrary() {
    var rng = SplitMix64(seed: 8)
    var cases: [[UInt8]] = (0...255).map { [UInt8($0)] }
    for a in 0xC0...0xFF { for b in 0...255 { cases.append([UInt8(a), UInt8(b)]) } }
    for _ in 0..<100_000 {
      let length = Int.random(in: 3...12, using: &rng)
      cases.append(
        (0..<length).map { _ in
          UInt8.random(in: 0...3, using: &rng) == 0
            ? UInt8.random(in: 0...0x7F, using: &rng) : UInt8.random(in: 0x80...0xFF, using: &rng)
        }
      )
    }
    for bytes in cases {
      #expect(Self.decodes(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
    }
  }

  @Test("accepts the edges of each range and rejects what lies past them")
  func edges() {
    #expect(Self.decodes(Array("plain ASCII that is longer than eight bytes".utf8)))
    #expect(Self.decodes([0xEF, 0xBF, 0xBF]))  // U+FFFF
    #expect(Self.decodes([0xF4, 0x8F, 0xBF, 0xBF]))  // U+10FFFF
    #expect(!Self.decodes([0xF4, 0x90, 0x80, 0x80]))  // past U+10FFFF
    #expect(!Self.decodes([0xED, 0xA0, 0x80]))  // a surrogate
    #expect(!Self.decodes([0xE0, 0x80, 0x80]))  // overlong
    // A sequence cut short after a run of ASCII.
    #expect(!Self.decodes([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0xC3]))
  }
}

extension Array where Element == UInt8 {
  /// `value` as a protobuf varint.
  init(varint value: Int) {
    var value = UInt64(value)
    self = []
    while value >= 0x80 {
      append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    append(UInt8(value))
  }
}
