import HarkGRPCCore
import NIOCore
import Testing

@Suite("gRPC message framing")
struct GRPCMessageFramingTests {
  static func frame(_ messages: [[UInt8]]) -> ByteBuffer {
    var buffer = ByteBuffer()
    for message in messages { GRPCMessageFramer.append(ByteBuffer(bytes: message), to: &buffer) }
    return buffer
  }

  static func drain(_ deframer: inout GRPCMessageDeframer) throws -> [[UInt8]] {
    var messages: [[UInt8]] = []
    while let message = try deframer.next() { messages.append(Array(message.readableBytesView)) }
    return messages
  }

  @Test("a frame is a zero flag, a big-endian length, then the message")
  func framerBytes() {
    let framed = Self.frame([[0x1A, 0x01, 0xAA]])
    #expect(Array(framed.readableBytesView) == [0x00, 0x00, 0x00, 0x00, 0x03, 0x1A, 0x01, 0xAA])
    let empty = Self.frame([[]])
    #expect(Array(empty.readableBytesView) == [0, 0, 0, 0, 0])
  }

  @Test("the writer variant encodes in place")
  func framerInPlace() {
    var buffer = ByteBuffer()
    GRPCMessageFramer.append(length: 2, to: &buffer) { $0.writeBytes([0x08, 0x64]) }
    #expect(Array(buffer.readableBytesView) == [0, 0, 0, 0, 2, 0x08, 0x64])
  }

  @Test("many messages in one chunk, and an empty message")
  func manyInOneChunk() throws {
    let messages: [[UInt8]] = [[1], [], [2, 3], Array(repeating: 9, count: 1000)]
    var deframer = GRPCMessageDeframer()
    deframer.append(Self.frame(messages))
    #expect(try Self.drain(&deframer) == messages)
    try deframer.finish()
  }

  @Test("one message across many one-byte chunks")
  func oneAcrossManyChunks() throws {
    let message = (0..<300).map { UInt8($0 & 0xFF) }
    let framed = Self.frame([message])
    var deframer = GRPCMessageDeframer()
    var received: [[UInt8]] = []
    for byte in framed.readableBytesView {
      deframer.append(ByteBuffer(bytes: [byte]))
      received += try Self.drain(&deframer)
    }
    #expect(received == [message])
    try deframer.finish()
  }

  @Test("random splits of random messages give back the same messages", arguments: 0..<20)
  func randomSplits(seed: Int) throws {
    var rng = SystemRandomNumberGeneratorSeeded(seed: UInt64(seed) &+ 77)
    let messages = (0..<Int.random(in: 1...30, using: &rng)).map { _ in
      (0..<Int.random(in: 0...700, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    var framed = Self.frame(messages)
    var deframer = GRPCMessageDeframer()
    var received: [[UInt8]] = []
    while framed.readableBytes > 0 {
      let chunk = framed.readSlice(
        length: min(framed.readableBytes, Int.random(in: 1...900, using: &rng))
      )!
      deframer.append(chunk)
      received += try Self.drain(&deframer)
    }
    #expect(received == messages)
    #expect(deframer.bufferedBytes == 0)
    try deframer.finish()
  }

  @Test("a message within one chunk is a slice of it, not a copy")
  func zeroCopy() throws {
    let chunk = Self.frame([[1, 2, 3, 4]])
    var deframer = GRPCMessageDeframer()
    deframer.append(chunk)
    let message = try #require(try deframer.next())
    let shares = message.withUnsafeReadableBytes { m in
      chunk.withUnsafeReadableBytes { c in m.baseAddress == c.baseAddress! + 5 }
    }
    #expect(shares)
  }

  @Test("the size limit is enforced from the prefix, before the body arrives")
  func sizeLimit() throws {
    var deframer = GRPCMessageDeframer(maxMessageSize: 100)
    deframer.append(ByteBuffer(bytes: [0, 0, 0, 0, 101]))  // prefix only: 101 bytes announced
    #expect(throws: GRPCFramingError(.messageTooLarge(length: 101, limit: 100))) {
      try deframer.next()
    }
    let error = GRPCFramingError(.messageTooLarge(length: 101, limit: 100))
    #expect(error.status.code == .resourceExhausted)

    var exact = GRPCMessageDeframer(maxMessageSize: 100)
    exact.append(Self.frame([Array(repeating: 1, count: 100)]))
    #expect(try Self.drain(&exact).count == 1)
  }

  @Test("the default limit is 4 MiB")
  func defaultLimit() throws {
    #expect(GRPCMessageDeframer.defaultMaxMessageSize == 4_194_304)
    var deframer = GRPCMessageDeframer()
    deframer.append(ByteBuffer(bytes: [0, 0, 0x40, 0, 1]))
    #expect(throws: GRPCFramingError.self) { try deframer.next() }
  }

  @Test("a compressed flag without a negotiated grpc-encoding is INTERNAL")
  func compressedWithoutEncoding() throws {
    var deframer = GRPCMessageDeframer()
    deframer.append(ByteBuffer(bytes: [1, 0, 0, 0, 1, 0xAA]))
    #expect(throws: GRPCFramingError(.compressedWithoutEncoding)) { try deframer.next() }
    #expect(GRPCFramingError(.compressedWithoutEncoding).status.code == .internalError)

    var negotiated = GRPCMessageDeframer(compressionNegotiated: true)
    negotiated.append(ByteBuffer(bytes: [1, 0, 0, 0, 1, 0xAA]))
    #expect(try negotiated.next() == ByteBuffer(bytes: [0xAA]))
    #expect(negotiated.lastMessageWasCompressed)
  }

  @Test("a flag other than 0 or 1 is INTERNAL")
  func invalidFlag() {
    var deframer = GRPCMessageDeframer()
    deframer.append(ByteBuffer(bytes: [2, 0, 0, 0, 0]))
    #expect(throws: GRPCFramingError(.invalidCompressedFlag(2))) { try deframer.next() }
  }

  @Test("a stream that ends inside a message is INTERNAL")
  func truncatedAtEnd() throws {
    var deframer = GRPCMessageDeframer()
    deframer.append(ByteBuffer(bytes: [0, 0, 0, 0, 4, 1, 2]))
    #expect(try deframer.next() == nil)
    #expect(throws: GRPCFramingError(.truncatedMessage(bufferedBytes: 7))) { try deframer.finish() }
    #expect(GRPCFramingError(.truncatedMessage(bufferedBytes: 7)).status.code == .internalError)

    var partialPrefix = GRPCMessageDeframer()
    partialPrefix.append(ByteBuffer(bytes: [0, 0]))
    #expect(try partialPrefix.next() == nil)
    #expect(throws: GRPCFramingError.self) { try partialPrefix.finish() }
  }

  @Test("status codes carry the specification's names and numbers")
  func statusCodes() {
    #expect(GRPCStatus.Code.resourceExhausted.rawValue == 8)
    #expect(GRPCStatus.Code.internalError.description == "INTERNAL")
    #expect(GRPCStatus.Code(rawValue: 16) == .unauthenticated)
    #expect(GRPCStatus.Code(rawValue: 17) == nil)
    #expect(GRPCStatus(.unavailable, "gone").description == "UNAVAILABLE: gone")
  }
}

/// SplitMix64, so a failing split can be replayed from its seed.
struct SystemRandomNumberGeneratorSeeded: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
