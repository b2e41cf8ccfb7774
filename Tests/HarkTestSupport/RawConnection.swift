import CNGHTTP2
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One HTTP/2 frame as it appeared on the wire.
struct RawFrame: Equatable {
  var type: UInt8
  var flags: UInt8
  var streamID: UInt32
  var payload: [UInt8]

  static let data: UInt8 = 0
  static let headers: UInt8 = 1
  static let rstStream: UInt8 = 3
  static let settings: UInt8 = 4
  static let ping: UInt8 = 6
  static let goAway: UInt8 = 7

  /// GOAWAY's error code.
  var errorCode: UInt32? {
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
  var debugData: String {
    type == Self.goAway && payload.count > 8 ? String(decoding: payload[8...], as: UTF8.self) : ""
  }

  /// The bytes of a frame.
  static func encode(
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

  static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
  static let emptySettings = encode(type: settings)

  /// A HEADERS frame (END_HEADERS) with every field as an HPACK literal without indexing.
  static func headersFrame(
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

  /// The request headers of a gRPC call to `path`.
  static func grpcRequest(streamID: UInt32, path: String, endStream: Bool = false) -> [UInt8] {
    headersFrame(
      streamID: streamID,
      fields: [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
        ("content-type", "application/grpc"), ("te", "trailers"),
      ],
      endStream: endStream
    )
  }

  static func dataFrame(streamID: UInt32, _ bytes: [UInt8], endStream: Bool = false) -> [UInt8] {
    encode(type: data, flags: endStream ? 0x1 : 0, streamID: streamID, payload: bytes)
  }

  /// Parses as many whole frames as `bytes` holds.
  static func parse(_ bytes: [UInt8]) -> [RawFrame] {
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
final class RawConnection: Sendable {
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
  static func connect(port: Int, reading: Bool = true) async throws -> RawConnection {
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

  func send(_ bytes: [UInt8]) async throws {
    try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
  }

  /// The frames received so far.
  var frames: [RawFrame] { RawFrame.parse(received.withLockedValue { $0 }) }

  /// Whether the peer closed the connection.
  var isClosed: Bool { !channel.isActive }

  /// Waits until `condition` holds of the frames received, or the peer closes, or `timeout`.
  @discardableResult
  func waitForFrames(
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
  func waitForClose(timeout: TimeAmount = .seconds(30)) async -> Bool {
    let deadline = NIODeadline.now() + timeout
    while NIODeadline.now() < deadline {
      if isClosed { return true }
      try? await Task.sleep(nanoseconds: 10_000_000)
    }
    return isClosed
  }

  func close() async {
    try? await channel.close()
  }
}

/// Decodes HPACK header blocks with libnghttp2's inflater, keeping the dynamic table across
/// the blocks of one connection.
final class HPACKDecoder {
  private var inflater: OpaquePointer?

  init() {
    nghttp2_hd_inflate_new(&inflater)
  }

  deinit {
    nghttp2_hd_inflate_del(inflater)
  }

  /// The header fields of one complete block.
  func decode(_ block: [UInt8]) -> [(String, String)] {
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
  func headers(
    of frames: [RawFrame]
  ) -> [(streamID: UInt32, endStream: Bool, fields: [(String, String)])] {
    frames.filter { $0.type == RawFrame.headers }.map { frame in
      (frame.streamID, frame.flags & 0x1 != 0, decode(frame.payload))
    }
  }
}
