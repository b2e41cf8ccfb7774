import HarkProto
import NIOCore
import Testing

/// Exact bytes next to values: the messages of the protocol as the specification lays them out.
@Suite("Wire format")
struct WireFormatTests {
  @Test("a 320-byte audio request: tag 1A, length 80 02, then the samples")
  func audioRequest() throws {
    let samples = ByteBuffer(bytes: (0..<320).map { UInt8($0 & 0xFF) })
    let bytes = RecognitionRequest.audio(samples).serializedByteArray()
    #expect(bytes.count == 323)
    #expect(Array(bytes.prefix(3)) == [0x1A, 0xC0, 0x02])
    #expect(Array(bytes.dropFirst(3)) == (0..<320).map { UInt8($0 & 0xFF) })
    #expect(try RecognitionRequest(serializedBytes: bytes) == .audio(samples))
  }

  @Test("a 640-byte audio request, as reference §8 W2 gives it")
  func audioRequest640() throws {
    let samples = ByteBuffer(repeating: 0x55, count: 640)
    let bytes = RecognitionRequest.audio(samples).serializedByteArray()
    #expect(Array(bytes.prefix(3)) == [0x1A, 0x80, 0x05])
    #expect(bytes.count == 643)
  }

  @Test("the minimal init of reference §8 W1: en-US, PCM 16 kHz")
  func minimalInit() throws {
    let request = RecognitionRequest.initMessage(
      RecognitionInitMessage(
        parameters: RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 16000))
      )
    )
    let expected: [UInt8] = [
      0x0A, 0x10,  // recognition_init_message, 16 bytes
      0x0A, 0x0E,  // parameters, 14 bytes
      0x0A, 0x05, 0x65, 0x6E, 0x2D, 0x55, 0x53,  // language "en-US"
      0x1A, 0x05, 0x0A, 0x03, 0x08, 0x80, 0x7D,  // audio_format { pcm { sample_rate_hz 16000 } }
    ]
    #expect(request.serializedByteArray() == expected)
    #expect(try RecognitionRequest(serializedBytes: expected) == request)
  }

  @Test("the 100 Continue status response")
  func continueStatus() throws {
    let details = "recognition started on audio/l16;rate=8000 stream"
    let response = RecognitionResponse.status(code: 100, message: "Continue", details: details)
    let expected: [UInt8] =
      [0x0A, 0x3F]  // status, 63 bytes
      + [0x08, 0x64]  // code 100
      + [0x12, 0x08] + Array("Continue".utf8)  // message
      + [0x1A, 0x31] + Array(details.utf8)  // details, 49 bytes
    #expect(response.serializedByteArray() == expected)
    #expect(try RecognitionResponse(serializedBytes: expected) == response)
  }

  @Test("start timers, and alaw/ulaw, select empty messages")
  func emptySubmessages() throws {
    #expect(RecognitionRequest.startTimers.serializedByteArray() == [0x12, 0x02, 0x0A, 0x00])
    #expect(AudioFormat.ulaw.serializedByteArray() == [0x1A, 0x00])
    #expect(AudioFormat.alaw.serializedByteArray() == [0x12, 0x00])
    #expect(
      RecognitionResponse(.startOfSpeech(StartOfSpeech())).serializedByteArray() == [0x12, 0x00]
    )
  }

  @Test("a final result with one hypothesis, reference §8 W4")
  func finalResult() throws {
    var hypothesis = Hypothesis()
    hypothesis.formattedText = "hi"
    var result = RecognitionResult()
    result.hypotheses = [hypothesis]
    let response = RecognitionResponse(.result(result))
    #expect(response.serializedByteArray() == [0x1A, 0x06, 0x2A, 0x04, 0x22, 0x02, 0x68, 0x69])
  }

  @Test("cookies are field 4 and map entries are written in key order")
  func cookiesInKeyOrder() {
    let response = RecognitionResponse(nil, cookies: ["b": "2", "a": "1"])
    #expect(
      response.serializedByteArray() == [
        0x22, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0x31,
        0x22, 0x06, 0x0A, 0x01, 0x62, 0x12, 0x01, 0x32,
      ]
    )
  }

  @Test("maps of two and three entries are written in key order whatever the hash order")
  func smallMapsInKeyOrder() {
    let keys = ["a", "b", "zz", "z", "", "x", "user", "company", "é", "e", "0", "A"]
    for first in keys {
      for second in keys where second != first {
        for third in [nil, "m"] as [String?] where third != first && third != second {
          var cookies = [first: "1", second: "2"]
          if let third { cookies[third] = "3" }
          let expected = cookies.keys.sorted().flatMap { key in
            RecognitionResponse(nil, cookies: [key: cookies[key]!]).serializedByteArray()
          }
          #expect(
            RecognitionResponse(nil, cookies: cookies).serializedByteArray() == expected,
            "\(cookies)"
          )
        }
      }
    }
  }

  @Test("RecognitionResource interleaves its two oneofs in field-number order")
  func resourceFieldOrder() {
    let resource = RecognitionResource(
      .wakeupWord(WakeupWord(words: ["hey"])),
      weight: .weightValue(1),
      reuse: .highReuse
    )
    #expect(
      resource.serializedByteArray() == [
        0x35, 0x00, 0x00, 0x80, 0x3F,  // weight_value 1.0
        0x38, 0x05,  // reuse HIGH_REUSE
        0x42, 0x05, 0x0A, 0x03, 0x68, 0x65, 0x79,  // wakeup_word { words "hey" }
      ]
    )
  }

  // MARK: Primitives

  static let varintCases: [(UInt64, [UInt8])] = [
    (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (150, [0x96, 0x01]),
    (16_384, [0x80, 0x80, 0x01]), (UInt64(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
  ]

  @Test("varints take one to ten bytes", arguments: varintCases)
  func varints(value: UInt64, bytes: [UInt8]) {
    #expect(Varint.encodedSize(of: value) == bytes.count)
    // Through a real field: a uint32 keeps the low 32 bits of any varint.
    let decoded = try? RecognitionStatus(serializedBytes: [0x08] + bytes)
    #expect(decoded?.code == UInt32(truncatingIfNeeded: value))
  }

  @Test("a negative int32 is sign-extended to ten bytes")
  func negativeInt32() throws {
    var notification = Notification()
    notification.code = -2
    let bytes = notification.serializedByteArray()
    #expect(bytes == [0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    #expect(try Notification(serializedBytes: bytes).code == -2)
  }

  @Test("ZigZag maps signed to unsigned as the specification's table does")
  func zigZag() {
    #expect(Varint.zigZagEncoded(Int32(0)) == 0)
    #expect(Varint.zigZagEncoded(Int32(-1)) == 1)
    #expect(Varint.zigZagEncoded(Int32(1)) == 2)
    #expect(Varint.zigZagEncoded(Int32(-2)) == 3)
    #expect(Varint.zigZagEncoded(Int32.max) == 0xFFFF_FFFE)
    #expect(Varint.zigZagEncoded(Int32.min) == 0xFFFF_FFFF)
    for value: Int32 in [0, 1, -1, 1234, -98765, .max, .min] {
      #expect(Varint.zigZagDecoded(Varint.zigZagEncoded(value)) == value)
    }
    for value: Int64 in [0, 1, -1, .max, .min] {
      #expect(Varint.zigZagDecoded(Varint.zigZagEncoded(value)) == value)
    }
  }

  @Test("floats are four little-endian bytes")
  func floats() throws {
    var word = Word()
    word.confidence = 0.5
    #expect(word.serializedByteArray() == [0x15, 0x00, 0x00, 0x00, 0x3F])
  }

  // MARK: proto3 decoding rules

  @Test("the last value of a repeated singular field wins")
  func lastValueWins() throws {
    let bytes: [UInt8] = [0x08, 0x01, 0x12, 0x01, 0x61, 0x08, 0x02, 0x12, 0x01, 0x62]
    let status = try RecognitionStatus(serializedBytes: bytes)
    #expect(status == RecognitionStatus(code: 2, message: "b"))
  }

  @Test("for a oneof, the last member on the wire wins")
  func lastOneofMemberWins() throws {
    let bytes: [UInt8] = [0x1A, 0x01, 0xAA, 0x12, 0x02, 0x0A, 0x00]
    #expect(try RecognitionRequest(serializedBytes: bytes) == .startTimers)
    let back: [UInt8] = [0x12, 0x02, 0x0A, 0x00, 0x1A, 0x01, 0xAA]
    #expect(try RecognitionRequest(serializedBytes: back) == .audio(ByteBuffer(bytes: [0xAA])))
  }

  @Test("a submessage that appears twice is merged")
  func submessagesMerge() throws {
    // parameters { language "en-US" } then parameters { topic "GEN" }
    let bytes: [UInt8] =
      [0x0A, 0x07, 0x0A, 0x05] + Array("en-US".utf8) + [0x0A, 0x05, 0x12, 0x03] + Array("GEN".utf8)
    let message = try RecognitionInitMessage(serializedBytes: bytes)
    #expect(message.parameters?.language == "en-US")
    #expect(message.parameters?.topic == "GEN")
  }

  @Test("a oneof submessage that appears twice is merged")
  func oneofSubmessagesMerge() throws {
    // result { abs_start_ms 5 } then result { abs_end_ms 9 }
    let bytes: [UInt8] = [0x1A, 0x02, 0x10, 0x05, 0x1A, 0x02, 0x18, 0x09]
    guard case .result(let result)? = try RecognitionResponse(serializedBytes: bytes).response
    else {
      Issue.record("expected a result")
      return
    }
    #expect(result.absStartMs == 5 && result.absEndMs == 9)
  }

  @Test("repeated fields append, map entries with a duplicate key keep the last")
  func repeatedAndMaps() throws {
    let entry = { (key: String, value: String) -> [UInt8] in
      [0x1A, UInt8(4 + key.utf8.count + value.utf8.count), 0x0A, UInt8(key.utf8.count)]
        + Array(key.utf8)
        + [0x12, UInt8(value.utf8.count)] + Array(value.utf8)
    }
    let bytes = entry("k", "1") + entry("j", "2") + entry("k", "3")
    #expect(try RecognitionInitMessage(serializedBytes: bytes).clientData == ["k": "3", "j": "2"])
    // A map entry without a value maps its key to "".
    #expect(
      try RecognitionInitMessage(serializedBytes: [0x1A, 0x03, 0x0A, 0x01, 0x6B]).clientData == [
        "k": ""
      ]
    )
  }

  @Test("map entries after another field merge into the entries before it")
  func mapEntriesAroundAnotherField() throws {
    let entry = { (key: String, value: String) -> [UInt8] in
      [0x1A, UInt8(4 + key.utf8.count + value.utf8.count), 0x0A, UInt8(key.utf8.count)]
        + Array(key.utf8)
        + [0x12, UInt8(value.utf8.count)] + Array(value.utf8)
    }
    let userID: [UInt8] = [0x22, 0x01, 0x75]
    let bytes = entry("k", "1") + entry("j", "2") + userID + entry("k", "3") + entry("i", "4")
    let message = try RecognitionInitMessage(serializedBytes: bytes)
    #expect(message.clientData == ["k": "3", "j": "2", "i": "4"])
    #expect(message.userID == "u")
  }

  @Test(
    "strings on either side of a String's inline capacity decode to the same value",
    arguments: [
      "", "a", "abc", "abcd", "abcdefg", "abcdefgh", "abcdefghijklmno", "abcdefghijklmnop",
      "abcdefghijklmnopqrstuvwxyz0123456789", "é", "naïve café", "über-naïve café", "日本語のテキスト",
    ]
  )
  func stringsAroundTheInlineCapacity(text: String) throws {
    let word = Word(text: text, startMs: 0, endMs: 0)
    let decoded = try Word(serializedBytes: word.serializedByteArray())
    #expect(decoded.text == text)
    #expect(Array(decoded.text.utf8) == Array(text.utf8))
  }

  @Test("minimally formatted text equal to, or differing from, the formatted text")
  func minimallyFormattedText() throws {
    let formatted = "I would like to book a flight from Boston tomorrow"
    for minimal in [
      formatted, "", "i", String(formatted.dropLast()) + "x", formatted + " please",
    ] {
      var hypothesis = Hypothesis()
      hypothesis.formattedText = formatted
      hypothesis.minimallyFormattedText = minimal
      let decoded = try Hypothesis(serializedBytes: hypothesis.serializedByteArray())
      #expect(decoded == hypothesis)
    }
    // Field 5 before field 4: nothing to share, still both decoded.
    let bytes: [UInt8] = [0x2A, 0x02, 0x61, 0x62, 0x22, 0x02, 0x61, 0x62]
    let decoded = try Hypothesis(serializedBytes: bytes)
    #expect(decoded.formattedText == "ab" && decoded.minimallyFormattedText == "ab")
  }

  @Test("unknown fields of every wire type are skipped")
  func unknownFieldsSkipped() throws {
    let bytes: [UInt8] = [
      0xF8, 0x01, 0x96, 0x01,  // field 31, varint
      0xF9, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,  // field 31, fixed64
      0xFA, 0x01, 0x02, 0xAB, 0xCD,  // field 31, length-delimited
      0xFD, 0x01, 1, 2, 3, 4,  // field 31, fixed32
      0x08, 0x64,  // code 100
    ]
    #expect(try RecognitionStatus(serializedBytes: bytes).code == 100)
  }

  @Test("a known field with the wrong wire type is skipped as unknown, as upb does")
  func wrongWireTypeSkipped() throws {
    // code (a varint field) sent as length-delimited, then as a real varint.
    let bytes: [UInt8] = [0x0A, 0x01, 0x00, 0x08, 0x07]
    #expect(try RecognitionStatus(serializedBytes: bytes).code == 7)
  }

  @Test("bytes fields share the input buffer instead of copying")
  func bytesAreSlices() throws {
    let input = RecognitionRequest.audio(ByteBuffer(repeating: 7, count: 320)).serializedBytes()
    guard case .audio(let samples)? = try RecognitionRequest(serializedBytes: input).request else {
      Issue.record("expected audio")
      return
    }
    let sharesStorage = samples.withUnsafeReadableBytes { audio in
      input.withUnsafeReadableBytes { whole in audio.baseAddress == whole.baseAddress! + 3 }
    }
    #expect(sharesStorage)
  }

  @Test("enum values the schema does not name survive a round trip")
  func unknownEnumValues() throws {
    var parameters = RecognitionParameters()
    parameters.resultType = ResultType(rawValue: 42)
    let decoded = try RecognitionParameters(serializedBytes: parameters.serializedByteArray())
    #expect(decoded.resultType.rawValue == 42)
    #expect(decoded.resultType.description == "42")
    #expect(ResultType.immutablePartial.description == "IMMUTABLE_PARTIAL")
  }

  @Test("encoding is deterministic: equal values give equal bytes")
  func deterministic() {
    var a = RecognitionInitMessage()
    var b = RecognitionInitMessage()
    for index in 0..<50 { a.clientData["k\(index)"] = "v" }
    for index in (0..<50).reversed() { b.clientData["k\(index)"] = "v" }
    #expect(a == b)
    #expect(a.serializedByteArray() == b.serializedByteArray())
  }

  @Test("encode(into:) appends to what the buffer holds")
  func encodeAppends() {
    var buffer = ByteBuffer(bytes: [0xEE])
    RecognitionRequest.startTimers.encode(into: &buffer)
    #expect(Array(buffer.readableBytesView) == [0xEE, 0x12, 0x02, 0x0A, 0x00])
  }
}

@Suite("Existential use")
struct ExistentialTests {
  static func encodeOpened<M: ProtoMessage>(_ message: M) -> [UInt8] {
    var buffer = ByteBuffer()
    message.encode(into: &buffer)
    return Array(buffer.readableBytesView) + [UInt8(truncatingIfNeeded: message.encodedSize)]
  }

  @Test("messages encode and decode through `any ProtoMessage`")
  func throughExistential() throws {
    let messages: [any ProtoMessage] = [
      RecognitionRequest.audio(ByteBuffer(repeating: 1, count: 320)),
      RecognitionRequest.startTimers,
      RecognitionResponse.status(code: 100, message: "Continue"),
    ]
    for message in messages {
      let bytes = Self.encodeOpened(message)
      #expect(bytes.count == message.encodedSize + 1)
    }
  }
}

@Suite("Encoding into raw memory")
struct RawEncodingTests {
  @Test("encode(into:) raw memory writes the same bytes and returns their count")
  func rawEncode() {
    var generator = MessageGenerator(seed: 99)
    for _ in 0..<500 {
      let message = generator.recognitionResponse()
      var storage = [UInt8](repeating: 0xEE, count: message.encodedSize + 3)
      let written = storage.withUnsafeMutableBytes { message.encode(into: $0) }
      #expect(written == message.encodedSize)
      #expect(Array(storage.prefix(written)) == message.serializedByteArray())
      #expect(storage.suffix(3) == [0xEE, 0xEE, 0xEE])
    }
  }
}
