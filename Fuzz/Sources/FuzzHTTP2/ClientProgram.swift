import FuzzSupport
import HarkProto
import HarkTesting
import NIOCore

/// What a client does to the server's connection, step by step.
enum ClientStep {
  /// Bytes the client writes; they reach the server at the next `.deliver` or `.advance`, or at
  /// the end, in one read.
  case write([UInt8], String)
  /// Everything written so far reaches the server, in reads of `chunkSize` bytes.
  case deliver(chunkSize: Int)
  /// Time passes on the connection's event loop (timers fire).
  case advance(TimeAmount)
  /// The client stops (or starts again) taking the server's bytes: the socket is unwritable.
  case writable(Bool)
  /// The server drains its connections (GOAWAY NO_ERROR, closing once no stream is open).
  case drain
}

/// A fuzzer input read as the steps of an HTTP/2 client: the connection preface, then frame
/// operations (well-formed gRPC requests and messages, each control frame, floods, raw bytes)
/// on a small set of stream ids, with chunking and time between them.
///
/// Every choice comes from ``FuzzInput``, whose reads past the end are zero: the first entry of
/// each table is the ordinary case, so a short input is an ordinary call.
struct ClientProgram {
  private(set) var steps: [ClientStep] = []
  /// The largest SETTINGS_MAX_FRAME_SIZE the client announced (what the server may send).
  private(set) var largestFrameSizeAnnounced = 16_384

  private var encoder = HeaderBlockEncoder()
  /// The stream the client opened last (0 before the first), and the next it may open.
  private var newestStream: UInt32 = 0
  private var nextStream: UInt32 = 1

  static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

  /// The paths a request may name: both Echo methods the server serves, two it does not
  /// (Recognize among them: see HTTP2Fuzzer), and a few that are not gRPC methods at all.
  static let paths = [
    EchoService.chatPath, HTTP2Fuzzer.loopChatPath, "/nuance.asr.v1.Recognizer/Recognize",
    "/hark.testing.v1.Echo/Nope", "/", "", "hark.testing.v1.Echo/Chat",
  ]

  init(decoding input: inout FuzzInput) {
    let opening = input.byte()
    switch opening % 16 {
    case 15:
      let wrong: [[UInt8]] = [
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01],
        Array("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".utf8), [],
      ]
      write(input.pick(wrong), "a wrong preface")
    default:
      write(Self.preface, "preface")
    }
    if (opening >> 4) % 4 != 3 { write(Self.frame(type: 4), "SETTINGS") }

    while !input.isAtEnd {
      step(&input)
    }
  }

  private mutating func write(_ bytes: [UInt8], _ description: String) {
    steps.append(.write(bytes, description))
  }

  // MARK: Operations

  private mutating func step(_ input: inout FuzzInput) {
    switch input.byte() % 21 {
    case 0: request(&input)
    case 1: messages(&input)
    case 2: steps.append(.deliver(chunkSize: Int(input.byte() % 64) + 1))
    case 3:
      let amounts: [TimeAmount] = [
        .milliseconds(1), .milliseconds(10), .milliseconds(60), .milliseconds(250),
        .milliseconds(500), .seconds(2), .seconds(10),
      ]
      steps.append(.advance(input.pick(amounts)))
    case 4: settings(&input)
    case 5:
      let flags = input.byte()
      let payload = [UInt8](repeating: input.byte(), count: flags & 2 == 0 ? 8 : 7)
      write(Self.frame(type: 6, flags: flags & 1, payload: payload), "PING flags \(flags & 1)")
    case 6:
      let stream = self.stream(&input, [.zero, .newest, .older, .new])
      let increment = input.pick(
        [0, 1, 1000, 65_535, 1 << 20, 0x7FFF_FFFF, 0x8000_0001] as [UInt32]
      )
      write(
        Self.frame(type: 8, streamID: stream, payload: Self.bigEndian(increment)),
        "WINDOW_UPDATE stream \(stream) +\(increment)"
      )
    case 7:
      let stream = self.stream(&input, [.newest, .older, .zero, .new, .even])
      let code = input.pick([8, 0, 1, 2, 7, 13, 0xFFFF] as [UInt32])
      write(
        Self.frame(type: 3, streamID: stream, payload: Self.bigEndian(code)),
        "RST_STREAM stream \(stream) code \(code)"
      )
    case 8:
      let stream = self.stream(&input, [.newest, .new, .older, .zero])
      let dependency = input.pick([0, stream, 1, 3, newestStream])
      let exclusive: UInt32 = input.byte() & 1 == 0 ? 0 : 0x8000_0000
      let payload = Self.bigEndian(dependency | exclusive) + [input.byte()]
      write(
        Self.frame(type: 2, streamID: stream, payload: payload),
        "PRIORITY stream \(stream) on \(dependency)"
      )
    case 9:
      let last = input.pick([0, newestStream, 0x7FFF_FFFF])
      let code = input.pick([0, 1, 2, 11] as [UInt32])
      let debug = Array(input.string(limit: 16).utf8)
      write(
        Self.frame(type: 7, payload: Self.bigEndian(last) + Self.bigEndian(code) + debug),
        "GOAWAY last \(last) code \(code)"
      )
    case 10:
      let stream = self.stream(&input, [.newest, .new, .zero])
      let flags = input.byte() & 4
      var block: [UInt8] = []
      encoder.encode("x-late", "1", as: .incrementalIndexing, into: &block)
      write(
        Self.frame(type: 9, flags: flags, streamID: stream, payload: block),
        "CONTINUATION stream \(stream) flags \(flags)"
      )
    case 11:
      let type = input.byte() % 12
      let flags = input.byte()
      let stream = self.stream(&input, [.newest, .zero, .new, .older])
      let payload = input.bytes(Int(input.byte() % 32))
      write(
        Self.frame(type: type, flags: flags, streamID: stream, payload: payload),
        "frame type \(type) flags \(flags) stream \(stream) length \(payload.count)"
      )
    case 12:
      let bytes = input.bytes(Int(input.byte() % 32))
      write(bytes, "\(bytes.count) raw bytes")
    case 13: rapidReset(&input)
    case 14: steps.append(.writable(input.byte() & 1 == 1))
    case 15:
      let stream = self.stream(&input, [.newest, .older, .new, .zero])
      let flags = input.byte() & 0x9
      let payload = input.bytes(Int(input.byte() % 64))
      write(
        Self.frame(type: 0, flags: flags, streamID: stream, payload: payload),
        "DATA stream \(stream) flags \(flags), \(payload.count) raw bytes"
      )
    case 16:
      let stream = self.stream(&input, [.newest, .zero])
      var block: [UInt8] = []
      encoder.encode(":path", "/", as: .indexed, into: &block)
      write(
        Self.frame(type: 5, flags: 4, streamID: stream, payload: Self.bigEndian(2) + block),
        "PUSH_PROMISE stream \(stream)"
      )
    case 17:
      let type = input.pick([0x0A, 0x0B, 0x0C, 0x10, 0xFA] as [UInt8])
      let stream = self.stream(&input, [.zero, .newest, .new])
      let payload = input.bytes(Int(input.byte() % 16))
      write(
        Self.frame(type: type, flags: input.byte(), streamID: stream, payload: payload),
        "unknown frame type \(type) stream \(stream)"
      )
    case 18: trailers(&input)
    case 19: flood(&input)
    default: steps.append(.drain)
    }
  }

  /// A gRPC request's HEADERS (and CONTINUATION) frames, with fields and their HPACK
  /// representations chosen by the input.
  private mutating func request(_ input: inout FuzzInput) {
    let stream = self.stream(&input, [.new, .new, .new, .new, .newest, .older, .zero, .even, .max])
    let flags = input.byte()
    var block: [UInt8] = []
    switch input.byte() % 8 {
    case 5: encoder.sizeUpdate(0, into: &block)
    case 6: encoder.sizeUpdate(256, into: &block)
    case 7: encoder.sizeUpdate(8192, into: &block)  // over SETTINGS_HEADER_TABLE_SIZE
    default: break
    }
    let path = input.pick(Self.paths)
    let contentType = input.pick([
      "application/grpc", "application/grpc+proto", "application/grpc+json", "text/plain", nil,
    ])
    let te = input.pick(["trailers", nil, "gzip"])
    let method = input.pick(["POST", "GET", nil])
    var fields: [(String, String)] = []
    if let method { fields.append((":method", method)) }
    fields += [(":scheme", "http"), (":path", path), (":authority", "localhost")]
    if let contentType { fields.append(("content-type", contentType)) }
    if let te { fields.append(("te", te)) }
    for _ in 0..<input.byte() % 4 {
      fields.append(extraField(&input))
    }
    if flags & 0x20 != 0, let regular = fields.indices.last {
      // A regular field before the pseudo-header fields: a malformed request.
      fields.insert(fields.remove(at: regular), at: 0)
    }
    for (name, value) in fields {
      encodeField(name, value, &input, into: &block)
    }
    if stream > newestStream && stream & 1 == 1 && stream < 0x7FFF_FFFF {
      newestStream = stream
      nextStream = stream + 2
    }
    writeHeaderBlock(block, stream: stream, flags: flags, &input, "request \(path)")
  }

  private mutating func extraField(_ input: inout FuzzInput) -> (String, String) {
    switch input.byte() % 7 {
    case 0: ("grpc-timeout", input.pick(["100m", "1S", "5n", "99999999H", "bogus", "0m"]))
    case 1: ("x-echo-a", input.string(limit: 12))
    case 2: ("x-echo-b-bin", input.pick(["AAEC", "AAEC==", "not base64!"]))
    case 3: ("grpc-encoding", input.pick(["identity", "gzip", "snappy"]))
    case 4: ("connection", "close")
    case 5: ("X-Upper", "1")
    default: (input.string(limit: 10), input.string(limit: 40))
    }
  }

  private mutating func encodeField(
    _ name: String,
    _ value: String,
    _ input: inout FuzzInput,
    into block: inout [UInt8]
  ) {
    let choice = input.byte()
    let representation: HeaderBlockEncoder.Representation =
      switch choice % 8 {
      case 0, 1: .incrementalIndexing
      case 2: .withoutIndexing
      case 3: .neverIndexed
      case 4, 5: .indexed
      case 6: .staticName
      default: .badHuffman
      }
    let garbage = representation == .badHuffman ? input.bytes(Int(input.byte() % 8)) : []
    encoder.encode(name, value, as: representation, garbage: garbage, into: &block)
  }

  /// A header block as HEADERS and CONTINUATION frames. `flags`: END_STREAM (bit 0), PADDED
  /// (bit 1), PRIORITY (bit 2); bits 3 and 4 both set leave the block unended.
  private mutating func writeHeaderBlock(
    _ block: [UInt8],
    stream: UInt32,
    flags: UInt8,
    _ input: inout FuzzInput,
    _ description: String
  ) {
    let split = input.byte()
    // Up to 3 frames; rarely 9 to 12, more CONTINUATION frames than the server allows.
    let pieces = split < 0xF0 ? Int(split % 3) + 1 : 9 + Int(split % 4)
    let unended = flags & 0x18 == 0x18
    var prefix: [UInt8] = []
    var padding: [UInt8] = []
    var headersFlags: UInt8 = flags & 1
    if flags & 2 != 0 {
      headersFlags |= 0x8
      let length = input.byte() % 16
      prefix.append(length)
      padding = [UInt8](repeating: 0, count: Int(length))
    }
    if flags & 4 != 0 {
      headersFlags |= 0x20
      prefix += Self.bigEndian(input.pick([0, 1, stream, newestStream])) + [input.byte()]
    }
    var bytes: [UInt8] = []
    var offset = 0
    for piece in 0..<pieces {
      let end = piece == pieces - 1 ? block.count : min(block.count, offset + block.count / pieces)
      let last = piece == pieces - 1
      let endHeaders: UInt8 = last && !unended ? 0x4 : 0
      let fragment = Array(block[offset..<end])
      if piece == 0 {
        bytes += Self.frame(
          type: 1,
          flags: headersFlags | endHeaders,
          streamID: stream,
          payload: prefix + fragment + padding
        )
      } else {
        bytes += Self.frame(type: 9, flags: endHeaders, streamID: stream, payload: fragment)
      }
      offset = end
    }
    write(bytes, "HEADERS stream \(stream) flags \(headersFlags) in \(pieces): \(description)")
  }

  /// HEADERS after the request's: trailers (or a second header block) on an open stream.
  private mutating func trailers(_ input: inout FuzzInput) {
    let stream = self.stream(&input, [.newest, .older, .new])
    let flags = input.byte() | 1
    var block: [UInt8] = []
    for _ in 0...input.byte() % 2 {
      let field = input.pick([
        ("x-echo-t", "v"), ("grpc-status", "0"), (":path", "/late"), ("te", "trailers"),
      ])
      encodeField(field.0, field.1, &input, into: &block)
    }
    writeHeaderBlock(block, stream: stream, flags: flags & 0xF9, &input, "trailers")
  }

  /// DATA frames carrying gRPC messages: Echo requests whose fields ask the server for
  /// responses, delays, statuses or a cancel.
  private mutating func messages(_ input: inout FuzzInput) {
    let stream = self.stream(&input, [.newest, .newest, .newest, .older, .new, .zero, .even])
    let flags = input.byte()
    var body: [UInt8] = []
    var summary: [String] = []
    for _ in 0...input.byte() % 3 {
      let compressed: UInt8 = input.byte() % 8 == 7 ? 1 : 0
      var request = EchoRequest()
      let payloadLength = input.pick([0, 1, 16, 200, 5000])
      request.payload = ByteBuffer(repeating: input.byte(), count: payloadLength)
      request.text = input.pick(["", "hold", "release", "headers", "flood", "wait"])
      request.responseBytes = input.pick([0, 0, 100, 5000, 70_000])
      request.responseCount = input.pick([0, 1, 3, 40])
      request.delayMs = input.pick([0, 0, 50, 300, 3000])
      if let code = input.pick([nil, nil, nil, 0, 3, 8, 13, 99] as [Int32?]) {
        request.status = EchoStatus(code: code, message: "fuzz")
      }
      request.cancel = input.byte() % 8 == 7
      let message = request.serializedByteArray()
      var length = UInt32(message.count)
      if flags & 4 != 0 { length &+= UInt32(input.byte()) &- 128 }
      body += [compressed] + Self.bigEndian(length) + message
      summary.append(
        "\(message.count) bytes (text \"\(request.text)\", \(request.responseCount)×\(request.responseBytes) B, delay \(request.delayMs), status \(request.status.map { "\($0.code)" } ?? "-"), cancel \(request.cancel))"
      )
    }
    let pieces = Int(input.byte() % 3) + 1
    var bytes: [UInt8] = []
    var offset = 0
    for piece in 0..<pieces {
      let last = piece == pieces - 1
      let end = last ? body.count : min(body.count, offset + body.count / pieces)
      var payload = Array(body[offset..<end])
      var frameFlags: UInt8 = last ? flags & 1 : 0
      if flags & 2 != 0 {
        frameFlags |= 0x8
        let padding = input.byte() % 8
        payload = [padding] + payload + [UInt8](repeating: 0, count: Int(padding))
      }
      bytes += Self.frame(type: 0, flags: frameFlags, streamID: stream, payload: payload)
      offset = end
    }
    write(
      bytes,
      "DATA stream \(stream) flags \(flags & 7) in \(pieces): \(summary.joined(separator: "; "))"
    )
  }

  private mutating func settings(_ input: inout FuzzInput) {
    let flags = input.byte()
    let count = flags == 0xFF ? 40 : Int((flags >> 1) % 5)
    var payload: [UInt8] = []
    var described: [String] = []
    for _ in 0..<count {
      let id = input.pick([1, 2, 3, 4, 5, 6, 8, 9, 0, 0xFF] as [UInt16])
      let value = input.pick(
        [
          0, 1, 100, 4096, 16_384, 65_535, 65_536, 16_777_215, 16_777_216, 0x7FFF_FFFF,
          0x8000_0000, 0xFFFF_FFFF,
        ] as [UInt32]
      )
      if id == 5, (16_384...16_777_215).contains(value) {
        largestFrameSizeAnnounced = max(largestFrameSizeAnnounced, Int(value))
      }
      payload += [UInt8(id >> 8), UInt8(id & 0xFF)] + Self.bigEndian(value)
      described.append("\(id)=\(value)")
    }
    write(
      Self.frame(type: 4, flags: flags & 1, payload: payload),
      "SETTINGS flags \(flags & 1) [\(described.joined(separator: ", "))]"
    )
  }

  /// Streams opened and reset at once, again and again (CVE-2023-44487).
  private mutating func rapidReset(_ input: inout FuzzInput) {
    let count = input.pick([2, 10, 30, 120])
    var bytes: [UInt8] = []
    for _ in 0..<count {
      let stream = nextStream
      guard stream < 0x7FFF_FFFF else { break }
      newestStream = stream
      nextStream += 2
      var block: [UInt8] = []
      for (name, value) in [
        (":method", "POST"), (":scheme", "http"), (":path", EchoService.chatPath),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers"),
      ] {
        encoder.encode(name, value, as: .indexed, into: &block)
      }
      bytes += Self.frame(type: 1, flags: 4, streamID: stream, payload: block)
      bytes += Self.frame(type: 3, streamID: stream, payload: Self.bigEndian(8))
    }
    write(bytes, "\(count) streams opened and reset")
  }

  /// Many small frames at once: what libnghttp2's and the connection's flood limits are for.
  private mutating func flood(_ input: inout FuzzInput) {
    let stream = newestStream == 0 ? 1 : newestStream
    let (frame, count, name): ([UInt8], Int, String) =
      switch input.byte() % 5 {
      case 0: (Self.frame(type: 6, payload: [UInt8](repeating: 0, count: 8)), 1001, "PING")
      case 1: (Self.frame(type: 4), 1001, "SETTINGS")
      case 2: (Self.frame(type: 0, streamID: stream), 200, "empty DATA")
      case 3: (Self.frame(type: 8, payload: Self.bigEndian(1)), 300, "WINDOW_UPDATE")
      default: (Self.frame(type: 2, streamID: stream, payload: [0, 0, 0, 0, 16]), 300, "PRIORITY")
      }
    write(Array([[UInt8]](repeating: frame, count: count).joined()), "\(count) × \(name)")
  }

  // MARK: Stream ids

  /// Which stream id an operation names.
  enum StreamChoice {
    /// The stream opened last (1 before any).
    case newest
    /// The stream opened before it.
    case older
    /// The next stream the client may open.
    case new
    case zero
    /// A stream id a client may not open.
    case even
    case max
  }

  private mutating func stream(_ input: inout FuzzInput, _ choices: [StreamChoice]) -> UInt32 {
    switch input.pick(choices) {
    case .newest: return newestStream == 0 ? 1 : newestStream
    case .older: return newestStream > 2 ? newestStream - 2 : 1
    case .new: return nextStream
    case .zero: return 0
    case .even: return newestStream + 1
    case .max: return 0x7FFF_FFFF
    }
  }

  // MARK: Bytes

  static func frame(
    type: UInt8,
    flags: UInt8 = 0,
    streamID: UInt32 = 0,
    payload: [UInt8] = []
  ) -> [UInt8] {
    let length = payload.count
    return [
      UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
    ]
      + bigEndian(streamID) + payload
  }

  static func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
  }
}
