import HarkGRPCCore
import Testing

@Suite("Finding the DATA frames of a read ahead of nghttp2, for the prefetch")
struct HTTP2FrameScannerTests {
  /// One frame: a 9-byte header (length, type, flags, stream id) and `payload` bytes.
  static func frame(type: UInt8, streamID: Int32, payload: Int, flags: UInt8 = 0) -> [UInt8] {
    let id = UInt32(bitPattern: streamID)
    return [
      UInt8(payload >> 16 & 0xFF), UInt8(payload >> 8 & 0xFF), UInt8(payload & 0xFF), type, flags,
      UInt8(id >> 24 & 0xFF), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF),
    ] + [UInt8](repeating: 0xA5, count: payload)
  }

  /// What a server reads from a client: the preface, SETTINGS, HEADERS, DATA on several streams
  /// (one of them empty), a WINDOW_UPDATE and a PING in between.
  static let connection: [UInt8] =
    Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    + frame(type: 4, streamID: 0, payload: 12)
    + frame(type: 1, streamID: 1, payload: 40, flags: 4)
    + frame(type: 0, streamID: 1, payload: 325)
    + frame(type: 0, streamID: 3, payload: 0)
    + frame(type: 8, streamID: 0, payload: 4)
    + frame(type: 0, streamID: 5, payload: 16_384)
    + frame(type: 6, streamID: 0, payload: 8)
    + frame(type: 0, streamID: 0x7FFF_FFFF, payload: 7)
  static let dataStreams: [Int32] = [1, 3, 5, 0x7FFF_FFFF]

  static func scan(
    _ bytes: [UInt8],
    splitAt cuts: [Int],
    scanner: HTTP2FrameScanner = .server,
    limit: Int = .max
  ) -> [Int32] {
    var scanner = scanner
    var found: [Int32] = []
    var start = 0
    for end in cuts + [bytes.count] where end >= start {
      bytes[start..<end].withUnsafeBytes { raw in
        var perRead = 0
        scanner.scan(raw, limit: limit) {
          found.append($0)
          perRead += 1
        }
        #expect(perRead <= limit)
      }
      start = end
    }
    return found
  }

  @Test("every DATA frame's stream, once, in order, read whole")
  func whole() {
    #expect(Self.scan(Self.connection, splitAt: []) == Self.dataStreams)
  }

  @Test("the same however the bytes are split into reads, headers and preface included")
  func split() {
    let bytes = Self.connection
    // Every single cut, and every pair of cuts close together (a header split three ways).
    for cut in 0...bytes.count {
      #expect(Self.scan(bytes, splitAt: [cut]) == Self.dataStreams, "cut at \(cut)")
    }
    for first in stride(from: 0, through: 120, by: 1) {
      for gap in 1...10 {
        #expect(
          Self.scan(bytes, splitAt: [first, first + gap]) == Self.dataStreams,
          "cuts at \(first) and \(first + gap)"
        )
      }
    }
    // One byte a read.
    #expect(Self.scan(bytes, splitAt: Array(0..<bytes.count)) == Self.dataStreams)
  }

  @Test("a client's bytes have no preface; the reserved bit of the stream id is ignored")
  func client() {
    var bytes =
      Self.frame(type: 4, streamID: 0, payload: 6)
      + Self.frame(
        type: 0,
        streamID: 9,
        payload: 3
      )
    bytes[9 + 6 + 5] |= 0x80
    #expect(Self.scan(bytes, splitAt: [], scanner: .client) == [9])
  }

  @Test("at most `limit` a read, and the boundaries stay right beyond it")
  func limit() {
    let frames = (0..<10).flatMap { Self.frame(type: 0, streamID: Int32(2 * $0 + 1), payload: 5) }
    let bytes = frames + frames
    #expect(
      Self.scan(bytes, splitAt: [frames.count], scanner: .client, limit: 3)
        == [1, 3, 5, 1, 3, 5]
    )
  }

  @Test("bytes that are not HTTP/2 neither trap nor stop the scan")
  func garbage() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<200 {
      let bytes = (0..<Int.random(in: 0..<4096, using: &generator)).map { _ in
        UInt8.random(in: 0...255, using: &generator)
      }
      let cuts = (0..<5).map { _ in Int.random(in: 0...bytes.count, using: &generator) }.sorted()
      _ = Self.scan(bytes, splitAt: cuts)
    }
  }
}
