internal import CNGHTTP2
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix

/// One HTTP/2 frame as it appeared on the wire.
public struct RawFrame: Equatable {
  public var type: UInt8
  public var flags: UInt8
  public var streamID: UInt32
  public var payload: [UInt8]

  public static let data: UInt8 = 0
  public static let headers: UInt8 = 1
  public static let rstStream: UInt8 = 3
  public static let settings: UInt8 = 4
  public static let ping: UInt8 = 6
  public static let goAway: UInt8 = 7

  /// GOAWAY's error code.
  public var errorCode: UInt32? {
    switch type {
    case Self.goAway where payload.count >= 8:
      return payload[4..<8].reduce(0) { $0 << 8 | UInt32($1) }
    case Self.rstStream where payload.count >= 4:
      return payload[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
    default:
      return nil
    }
  }

  /// GOAWAY's debug data.
  public var debugData: String {
    type == Self.goAway && payload.count > 8 ? String(decoding: payload[8...], as: UTF8.self) : ""
  }

  /// The bytes of a frame.
  public static func encode(
    type: UInt8,
    flags: UInt8 = 0,
    streamID: UInt32 = 0,
    payload: [UInt8] = []
  ) -> [UInt8] {
    let length = payload.count
    return [
      UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
    ]
      + [
        UInt8(streamID >> 24 & 0x7F), UInt8(streamID >> 16 & 0xFF), UInt8(streamID >> 8 & 0xFF),
        UInt8(streamID & 0xFF),
      ]
      + payload
  }

  public static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  public static let emptySettings = encode(type: settings)

  /// A HEADERS frame (END_HEADERS) with every field as an HPACK literal without indexing.
  public static func headersFrame(
    streamID: UInt32,
    fields: [(String, String)],
    endStream: Bool = false
  ) -> [UInt8] {
    var block: [UInt8] = []
    for (name, value) in fields {
      block.append(0x00)
      block += hpackString(name)
      block += hpackString(value)
    }
    return encode(
      type: headers,
      flags: 0x4 | (endStream ? 0x1 : 0),
      streamID: streamID,
      payload: block
    )
  }

  private static func hpackString(_ string: String) -> [UInt8] {
    let bytes = Array(string.utf8)
    precondition(bytes.count < 127, "test header values are short")
    return [UInt8(bytes.count)] + bytes
  }

  /// An HPACK integer with an `prefixBits`-bit prefix, the prefix's other bits set to `flags`
  /// (RFC 7541 §5.1).
  public static func hpackInteger(_ value: Int, prefixBits: Int, flags: UInt8 = 0) -> [UInt8] {
    let limit = (1 << prefixBits) - 1
    guard value >= limit else { return [flags | UInt8(value)] }
    var bytes = [flags | UInt8(limit)]
    var rest = value - limit
    while rest >= 128 {
      bytes.append(UInt8(rest & 0x7F) | 0x80)
      rest >>= 7
    }
    bytes.append(UInt8(rest))
    return bytes
  }

  /// An HPACK string literal of any length, not Huffman-coded.
  public static func hpackLiteral(_ string: String) -> [UInt8] {
    let bytes = Array(string.utf8)
    return hpackInteger(bytes.count, prefixBits: 7) + bytes
  }

  /// A header field as an HPACK literal with incremental indexing: it enters the peer's
  /// dynamic table (at index 62, the newest entry).
  public static func hpackIndexedLiteral(_ name: String, _ value: String) -> [UInt8] {
    [0x40] + hpackLiteral(name) + hpackLiteral(value)
  }

  /// A header field as an HPACK literal that is never indexed, any length.
  public static func hpackLiteral(_ name: String, _ value: String) -> [UInt8] {
    [0x00] + hpackLiteral(name) + hpackLiteral(value)
  }

  /// A header block split into a HEADERS frame and as many CONTINUATION frames as frames of
  /// `maxFrameSize` bytes need.
  public static func headerBlockFrames(
    streamID: UInt32,
    block: [UInt8],
    endStream: Bool = false,
    maxFrameSize: Int = 16384
  ) -> [UInt8] {
    var frames: [UInt8] = []
    var offset = 0
    var first = true
    repeat {
      let end = min(offset + maxFrameSize, block.count)
      let last = end == block.count
      frames += encode(
        type: first ? headers : continuation,
        flags: (last ? 0x4 : 0) | (first && endStream ? 0x1 : 0),
        streamID: streamID,
        payload: Array(block[offset..<end])
      )
      first = false
      offset = end
    } while offset < block.count
    return frames
  }

  public static let continuation: UInt8 = 9
  public static let windowUpdate: UInt8 = 8

  /// The request header fields of a gRPC call to `path`.
  public static func grpcRequestFields(path: String) -> [(String, String)] {
    [
      (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
      ("content-type", "application/grpc"), ("te", "trailers"),
    ]
  }

  /// The request headers of a gRPC call to `path`.
  public static func grpcRequest(streamID: UInt32, path: String, endStream: Bool = false) -> [UInt8]
  {
    headersFrame(
      streamID: streamID,
      fields: [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers"),
      ],
      endStream: endStream
    )
  }

  public static func dataFrame(
    streamID: UInt32,
    _ bytes: [UInt8],
    endStream: Bool = false
  ) -> [UInt8] {
    encode(type: data, flags: endStream ? 0x1 : 0, streamID: streamID, payload: bytes)
  }

  /// Parses as many whole frames as `bytes` holds.
  public static func parse(_ bytes: [UInt8]) -> [RawFrame] {
    var frames: [RawFrame] = []
    var offset = 0
    while bytes.count - offset >= 9 {
      let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
      guard bytes.count - offset - 9 >= length else { break }
      let streamID = bytes[offset + 5..<offset + 9].reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
      frames.append(
        RawFrame(
          type: bytes[offset + 3],
          flags: bytes[offset + 4],
          streamID: streamID,
          payload: Array(bytes[offset + 9..<offset + 9 + length])
        )
      )
      offset += 9 + length
    }
    return frames
  }
}

/// A TCP connection that sends exactly the bytes a test gives it: a misbehaving peer.
public final class RawConnection: Sendable {
  private let channel: any Channel
  private let received: NIOLockedValueBox<[UInt8]>

  private final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<[UInt8]>
    init(received: NIOLockedValueBox<[UInt8]>) { self.received = received }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
      let bytes = unwrapInboundIn(data)
      received.withLockedValue { $0 += bytes.readableBytesView }
    }
  }

  private init(channel: any Channel, received: NIOLockedValueBox<[UInt8]>) {
    self.channel = channel
    self.received = received
  }

  /// Connects to 127.0.0.1:`port`; with `reading` false the socket is never read, so the peer's
  /// writes back up.
  public static func connect(port: Int, reading: Bool = true) async throws -> RawConnection {
    let received = NIOLockedValueBox<[UInt8]>([])
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .channelOption(.autoRead, value: reading)
      .channelOption(.socketOption(.so_rcvbuf), value: 4096)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(Collector(received: received))
        }
      }
      .connect(host: "127.0.0.1", port: port)
      .get()
    return RawConnection(channel: channel, received: received)
  }

  public func send(_ bytes: [UInt8]) async throws {
    try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
  }

  /// The frames received so far.
  public var frames: [RawFrame] { RawFrame.parse(received.withLockedValue { $0 }) }

  /// Whether the peer closed the connection.
  public var isClosed: Bool { !channel.isActive }

  /// Waits until `condition` holds of the frames received, or the peer closes, or `timeout`.
  @discardableResult
  public func waitForFrames(
    timeout: TimeAmount = .seconds(30),
    until condition: ([RawFrame]) -> Bool
  ) async -> [RawFrame] {
    let deadline = NIODeadline.now() + timeout
    while NIODeadline.now() < deadline {
      let frames = self.frames
      if condition(frames) || isClosed { return self.frames }
      try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return frames
  }

  /// Waits until the peer closes the connection (or `timeout`).
  public func waitForClose(timeout: TimeAmount = .seconds(30)) async -> Bool {
    let deadline = NIODeadline.now() + timeout
    while NIODeadline.now() < deadline {
      if isClosed { return true }
      try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return isClosed
  }

  public func close() async {
    try? await channel.close()
  }
}

/// Decodes HPACK header blocks with libnghttp2's inflater, keeping the dynamic table across
/// the blocks of one connection.
public final class HPACKDecoder {
  private var inflater: OpaquePointer?

  public init() {
    nghttp2_hd_inflate_new(&inflater)
  }

  deinit {
    nghttp2_hd_inflate_del(inflater)
  }

  /// The header fields of one complete block.
  public func decode(_ block: [UInt8]) -> [(String, String)] {
    var fields: [(String, String)] = []
    block.withUnsafeBufferPointer { buffer in
      var input = buffer.baseAddress!
      var remaining = buffer.count
      while true {
        var field = nghttp2_nv()
        var flags: Int32 = 0
        let consumed = nghttp2_hd_inflate_hd2(inflater, &field, &flags, input, remaining, 1)
        guard consumed >= 0 else { return }
        input += consumed
        remaining -= consumed
        if flags & Int32(NGHTTP2_HD_INFLATE_EMIT.rawValue) != 0 {
          fields.append(
            (
              String(
                decoding: UnsafeBufferPointer(start: field.name, count: field.namelen),
                as: UTF8.self
              ),
              String(
                decoding: UnsafeBufferPointer(start: field.value, count: field.valuelen),
                as: UTF8.self
              )
            )
          )
        }
        if flags & Int32(NGHTTP2_HD_INFLATE_FINAL.rawValue) != 0 {
          nghttp2_hd_inflate_end_headers(inflater)
          return
        }
        if consumed == 0 && remaining == 0 { return }
      }
    }
    return fields
  }

  /// The fields of every HEADERS frame among `frames`, decoded in order.
  public func headers(
    of frames: [RawFrame]
  ) -> [(streamID: UInt32, endStream: Bool, fields: [(String, String)])] {
    frames.filter { $0.type == RawFrame.headers }.map { frame in
      (frame.streamID, frame.flags & 0x1 != 0, decode(frame.payload))
    }
  }
}
