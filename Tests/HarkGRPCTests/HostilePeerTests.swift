import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkTestSupport
import HarkTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Attacks on the transport over real sockets, each answered with a typed limit, the right
/// HTTP/2 or gRPC error and a count, while the server keeps serving everyone else.
@Suite("Hostile peers")
struct HostilePeerTests {
  static func startServer(
    connection: GRPCConnectionConfiguration = GRPCConnectionConfiguration(),
    limits: ServerConnectionPolicy.Limits = ServerConnectionPolicy.Limits(),
    maxConnections: Int? = nil,
    maxConnectionsPerPeer: Int? = nil,
    writeStallTimeout: TimeAmount? = .seconds(30),
    methods: [GRPCServer.Method] = [EchoService.method]
  ) async throws -> (GRPCServer, Int) {
    let server = GRPCServer(
      configuration: .init(
        host: "127.0.0.1",
        port: 0,
        connection: connection,
        connectionLimits: limits,
        maxConnections: maxConnections,
        maxConnectionsPerPeer: maxConnectionsPerPeer,
        writeStallTimeout: writeStallTimeout
      ),
      methods: methods
    )
    let port = try await server.start().port!
    return (server, port)
  }

  static let preface = RawFrame.preface + RawFrame.emptySettings

  /// The header block of a request to the Echo service followed by `extra` HPACK bytes.
  static func requestBlock(extra: [UInt8]) -> [UInt8] {
    RawFrame.grpcRequestFields(path: EchoService.chatPath).flatMap { name, value in
      RawFrame.hpackLiteral(name, value)
    } + extra
  }

  /// The fields of the HEADERS frame that ended `streamID`, decoded.
  static func endingFields(of stream: UInt32, in frames: [RawFrame]) -> [(String, String)]? {
    HPACKDecoder().headers(of: frames).last { $0.streamID == stream && $0.endStream }?.fields
  }

  static func value(_ name: String, in fields: [(String, String)]?) -> String? {
    fields?.first { $0.0 == name }?.1
  }

  @Test("an HPACK bomb is refused as it decodes: RESOURCE_EXHAUSTED, then GOAWAY if it goes on")
  func hpackBomb() async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    // A 4,000-byte header enters the HPACK table; 130,000 one-byte references to it (index 62)
    // decode to 520 MB from a 134 KB block.
    let entry = RawFrame.hpackIndexedLiteral("x-bomb", String(repeating: "a", count: 4000))
    let references = [UInt8](repeating: 0x80 | 62, count: 130_000)
    try await peer.send(
      Self.preface
        + RawFrame.headerBlockFrames(
          streamID: 1,
          block: Self.requestBlock(extra: entry + references)
        )
    )
    let first = await peer.waitForFrames { Self.endingFields(of: 1, in: $0) != nil }
    let fields = Self.endingFields(of: 1, in: first)
    #expect(Self.value("grpc-status", in: fields) == "8", "\(String(describing: fields))")
    #expect(
      Self.value("grpc-message", in: fields)?.contains("over the server's limit of 16384") == true,
      "\(String(describing: fields))"
    )
    #expect(!peer.isClosed)
    #expect(server.limitCounts[.headerListSize] == 1)

    // The peer persists: each block is refused, and past four the connection is closed.
    for stream in stride(from: UInt32(3), through: 11, by: 2) {
      try await peer.send(
        RawFrame.headerBlockFrames(streamID: stream, block: Self.requestBlock(extra: references))
      )
    }
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == HTTP2ErrorCode.enhanceYourCalm.rawValue)
    #expect(goAway.debugData.contains("header lists over the limit"), "\(goAway.debugData)")
    #expect(server.limitCounts[.headerListSize] >= 5)
    try await BadPeerTests().expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "a 64 KiB metadata value or 5,000 headers are over the header list limit",
    arguments: ["one large value", "many small headers"]
  )
  func largeHeaderLists(_ kind: String) async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    let extra: [UInt8] =
      kind == "one large value"
      ? RawFrame.hpackLiteral("x-large", String(repeating: "v", count: 60_000))
      : (0..<5000).flatMap { RawFrame.hpackLiteral("x-\($0 % 10)", "v") }
    try await peer.send(
      Self.preface + RawFrame.headerBlockFrames(streamID: 1, block: Self.requestBlock(extra: extra))
    )
    let frames = await peer.waitForFrames { Self.endingFields(of: 1, in: $0) != nil }
    #expect(Self.value("grpc-status", in: Self.endingFields(of: 1, in: frames)) == "8")
    #expect(!peer.isClosed)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("header lists under the limit still pass: 12 KiB of metadata is echoed")
  func headersUnderTheLimit() async throws {
    let (server, port) = try await Self.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    var metadata = GRPCMetadata()
    try metadata.add("x-large", String(repeating: "m", count: 12 << 10))
    let texts = try await channel.withCall(
      path: EchoService.chatPath,
      metadata: metadata,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(text: "fits"))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      return texts
    }
    #expect(texts == ["fits"])
    #expect(server.limitCounts[.headerListSize] == 0)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "a peer that sends nothing is closed after the handshake timeout, one with no stream after the idle timeout"
  )
  func handshakeAndIdleTimeouts() async throws {
    let (server, port) = try await Self.startServer(
      limits: .init(handshakeTimeout: .seconds(3), idleTimeout: .milliseconds(400))
    )
    let silent = try await RawConnection.connect(port: port)
    let magicOnly = try await RawConnection.connect(port: port)
    try await magicOnly.send(RawFrame.preface)
    let prefaceOnly = try await RawConnection.connect(port: port)
    try await prefaceOnly.send(Self.preface)

    #expect(await silent.waitForClose(timeout: .seconds(10)))
    #expect(await magicOnly.waitForClose(timeout: .seconds(10)))
    let handshake = try #require(silent.frames.first { $0.type == RawFrame.goAway })
    #expect(handshake.errorCode == 0)
    #expect(handshake.debugData.contains("no HTTP/2 preface and SETTINGS within 3 s"))

    #expect(await prefaceOnly.waitForClose(timeout: .seconds(10)))
    let idle = try #require(prefaceOnly.frames.first { $0.type == RawFrame.goAway })
    #expect(idle.errorCode == 0)
    #expect(idle.debugData.contains("no stream for 400 ms"), "\(idle.debugData)")
    #expect(server.limitCounts[.handshakeTimeout] == 2)
    #expect(server.limitCounts[.idleTimeout] == 1)
    #expect(await eventually { server.connectionCount == 0 })
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a connection with a call open is not idle, however long the call")
  func openCallIsNotIdle() async throws {
    let (server, port) = try await Self.startServer(
      limits: .init(handshakeTimeout: .seconds(10), idleTimeout: .seconds(1))
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let texts = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(text: "before"))
      try await Task.sleep(for: .milliseconds(2500))
      try await call.send(EchoRequest(text: "after"))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      return texts
    }
    #expect(texts == ["before", "after"])
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("past maxConnections a new connection is closed on accept; a free slot serves again")
  func connectionLimit() async throws {
    let (server, port) = try await Self.startServer(maxConnections: 3)
    var open: [RawConnection] = []
    for _ in 0..<3 {
      let peer = try await RawConnection.connect(port: port)
      try await peer.send(Self.preface)
      open.append(peer)
    }
    #expect(await eventually { server.connectionCount == 3 })
    let refused = try await RawConnection.connect(port: port)
    #expect(await refused.waitForClose(timeout: .seconds(10)))
    #expect(server.limitCounts[.connections] == 1)
    #expect(open.allSatisfy { !$0.isClosed })

    await open.removeLast().close()
    #expect(await eventually { server.connectionCount == 2 })
    try await BadPeerTests().expectServing(port: port)
    for peer in open { await peer.close() }
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("past maxConnectionsPerPeer a connection from the same address is closed on accept")
  func perPeerLimit() async throws {
    let (server, port) = try await Self.startServer(maxConnectionsPerPeer: 2)
    let first = try await RawConnection.connect(port: port)
    try await first.send(Self.preface)
    let second = try await RawConnection.connect(port: port)
    try await second.send(Self.preface)
    #expect(await eventually { server.connectionCount == 2 })
    let third = try await RawConnection.connect(port: port)
    #expect(await third.waitForClose(timeout: .seconds(10)))
    #expect(server.limitCounts[.connectionsPerPeer] == 1)
    await first.close()
    #expect(await eventually { server.connectionCount == 1 })
    try await BadPeerTests().expectServing(port: port)
    await second.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("streams past SETTINGS_MAX_CONCURRENT_STREAMS are refused with REFUSED_STREAM, and counted")
  func concurrentStreams() async throws {
    let (server, port) = try await Self.startServer(
      connection: GRPCConnectionConfiguration(maxConcurrentStreams: 4)
    )
    let peer = try await RawConnection.connect(port: port)
    var bytes = Self.preface
    for stream in stride(from: UInt32(1), through: 11, by: 2) {
      bytes += RawFrame.grpcRequest(streamID: stream, path: EchoService.chatPath)
    }
    try await peer.send(bytes)
    let frames = await peer.waitForFrames { frames in
      frames.filter { $0.type == RawFrame.rstStream }.count >= 2
    }
    let refused = frames.filter {
      $0.type == RawFrame.rstStream && $0.errorCode == HTTP2ErrorCode.refusedStream.rawValue
    }
    #expect(refused.map(\.streamID) == [9, 11])
    #expect(await eventually { server.limitCounts[.concurrentStreams] == 2 })
    #expect(!peer.isClosed)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("warnings about a flood of refused connections are rate-limited, and say what was left out")
  func warningsAreRateLimited() async throws {
    let lines = NIOLockedValueBox<[(String, Logger.Metadata)]>([])
    var logger = Logger(label: "hark.grpc.test") { _ in CapturingLogHandler(lines: lines) }
    logger.logLevel = .warning
    let server = GRPCServer(
      configuration: .init(
        host: "127.0.0.1",
        port: 0,
        maxConnections: 1,
        logger: logger,
        warningsPerSecond: 5
      ),
      methods: [EchoService.method]
    )
    let port = try await server.start().port!
    let kept = try await RawConnection.connect(port: port)
    try await kept.send(Self.preface)
    #expect(await eventually { server.connectionCount == 1 })
    let start = ContinuousClock.now
    for _ in 0..<40 {
      let refused = try await RawConnection.connect(port: port)
      await refused.close()
    }
    #expect(await eventually { server.limitCounts[.connections] == 40 })
    // Five a second: at most five for each second (or part of one) the refusals took.
    let seconds = Int((ContinuousClock.now - start).components.seconds) + 2
    let burst = lines.withLockedValue { $0.count }
    #expect(burst >= 5 && burst <= 5 * seconds, "\(burst) warnings for 40 refusals")
    // A second later, the next warning says how many were left out.
    try await Task.sleep(for: .milliseconds(1100))
    let late = try await RawConnection.connect(port: port)
    await late.close()
    #expect(await eventually { lines.withLockedValue { $0.count } == burst + 1 })
    let last = lines.withLockedValue { $0.last }
    #expect(last?.1["limit"] == "connections")
    #expect(last?.1["peer"].map { "\($0)".hasPrefix("127.0.0.1:") } == true)
    // Every refusal was logged or counted as left out by a later line (the late one, or one
    // of a window the refusals reached when the machine ran them slowly).
    let all = lines.withLockedValue { $0 }
    let leftOut = all.compactMap { $0.1["suppressed_before"].flatMap { Int("\($0)") } }
    #expect(all.count + leftOut.reduce(0, +) == 41, "\(all.count) lines, left out \(leftOut)")
    #expect(!leftOut.isEmpty)
    await kept.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  /// Keeps what is logged.
  struct CapturingLogHandler: LogHandler {
    let lines: NIOLockedValueBox<[(String, Logger.Metadata)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      lines.withLockedValue { $0.append(("\(event.message)", event.metadata ?? [:])) }
    }
  }

  @Test("a rapid-reset burst (600 streams opened and reset) is GOAWAY ENHANCE_YOUR_CALM")
  func rapidReset() async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    var bytes = Self.preface
    for index in 0..<600 {
      let stream = UInt32(2 * index + 1)
      bytes += RawFrame.grpcRequest(streamID: stream, path: EchoService.chatPath)
      bytes += RawFrame.encode(type: RawFrame.rstStream, streamID: stream, payload: [0, 0, 0, 8])
    }
    try await peer.send(bytes)
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == HTTP2ErrorCode.enhanceYourCalm.rawValue)
    #expect(goAway.debugData.contains("stream resets"), "\(goAway.debugData)")
    #expect(server.limitCounts[.resetRate] == 1)
    try await BadPeerTests().expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a client that resets each stream after its status (H29) is not rapid resetting")
  func resetsAfterStatus() async throws {
    // gRPC clients reset a stream whose status came before their own END_STREAM (a refusal, a
    // 409): the stream cost the server nothing more. Counting those closed a load tester's
    // connection once refusals outran the reset rate, and every later call failed.
    let (server, port) = try await Self.startServer(
      limits: ServerConnectionPolicy.Limits(resetBurst: 3, resetsPerSecond: 1)
    )
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(Self.preface)
    var request = EchoRequest()
    request.status = EchoStatus(code: 8, message: "busy")
    for index in 0..<12 {
      let stream = UInt32(2 * index + 1)
      try await peer.send(
        RawFrame.grpcRequest(streamID: stream, path: EchoService.chatPath)
          + RawFrame.dataFrame(streamID: stream, request.framedBytes())
      )
      let frames = await peer.waitForFrames(timeout: .seconds(10)) { frames in
        frames.contains {
          $0.streamID == stream && $0.type == RawFrame.headers && $0.flags & 1 != 0
        }
      }
      #expect(
        frames.contains { $0.streamID == stream && $0.type == RawFrame.headers },
        "no status on stream \(stream)"
      )
      try await peer.send(
        RawFrame.encode(type: RawFrame.rstStream, streamID: stream, payload: [0, 0, 0, 0])
      )
    }
    try await BadPeerTests().expectServing(port: port)
    #expect(!peer.isClosed)
    #expect(!peer.frames.contains { $0.type == RawFrame.goAway })
    #expect(server.limitCounts[.resetRate] == 0, "\(server.limitCounts)")
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a request in the read that closes the connection for a limit is not served")
  func requestAfterClosingVerdict() async throws {
    let (server, port) = try await Self.startServer(
      limits: ServerConnectionPolicy.Limits(resetBurst: 1, resetsPerSecond: 1)
    )
    // A peer that reads nothing opens its windows wide and asks for 32 MiB of responses, which
    // fill every buffer between it and the server: the server's socket takes no more.
    let peer = try await RawConnection.connect(port: port, reading: false)
    var large = EchoRequest()
    large.responseBytes = 1 << 20
    large.responseCount = 32
    let fields = RawFrame.grpcRequestFields(path: EchoService.chatPath)
    try await peer.send(
      RawFrame.preface
        + RawFrame.encode(type: RawFrame.settings, payload: [0x00, 0x04, 0x7F, 0xFF, 0xFF, 0xFF])
        + RawFrame.encode(type: RawFrame.windowUpdate, payload: [0x7F, 0xFF, 0x00, 0x00])
        + RawFrame.encode(
          type: RawFrame.headers,
          flags: 0x4,
          streamID: 1,
          payload: fields.flatMap { RawFrame.hpackIndexedLiteral($0.0, $0.1) }
        )
        + RawFrame.dataFrame(streamID: 1, large.framedBytes())
    )
    #expect(await eventually { server.connectionCount == 1 })
    try await Task.sleep(nanoseconds: 500_000_000)
    // Then, in one read: two streams opened and reset, the second reset over the limit (the
    // GOAWAY that says so cannot be written), and a request on a third stream, which nghttp2
    // parses after the connection has closed. Each request's fields refer to the first's in the
    // HPACK table (entries 62 to 67, newest first), so the read is a few dozen bytes.
    let request = [UInt8]((62...67).reversed().map { 0x80 | UInt8($0) })
    var read: [UInt8] = []
    for stream: UInt32 in [3, 5] {
      read += RawFrame.encode(
        type: RawFrame.headers,
        flags: 0x4,
        streamID: stream,
        payload: request
      )
      read += RawFrame.encode(type: RawFrame.rstStream, streamID: stream, payload: [0, 0, 0, 8])
    }
    read += RawFrame.encode(type: RawFrame.headers, flags: 0x4, streamID: 7, payload: request)
    try await peer.send(read)
    #expect(await eventually { server.connectionCount == 0 })
    #expect(await eventually { server.limitCounts[.resetRate] == 1 }, "\(server.limitCounts)")
    // The connection's streams all ended with it: none was opened on the closed connection, to
    // outlive it with a handler no one will ever cancel.
    #expect(
      await eventually(within: 5) {
        server.liveObjects.connections == 0 && server.liveObjects.streams == 0
      },
      "connections \(server.liveObjects.connections), streams \(server.liveObjects.streams)"
    )
    try await BadPeerTests().expectServing(port: port)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a SETTINGS flood from a peer that reads nothing is ended as a flood")
  func settingsFlood() async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port, reading: false)
    try await peer.send(RawFrame.preface)
    // Each SETTINGS asks for an acknowledgement the server cannot deliver to a peer that reads
    // nothing; nghttp2 counts them and gives up past 1,000.
    let burst = [UInt8]((0..<10_000).flatMap { _ in RawFrame.emptySettings })
    for _ in 0..<50 where !peer.isClosed {
      try? await peer.send(burst)
    }
    #expect(await eventually { server.limitCounts[.flood] >= 1 }, "\(server.limitCounts)")
    #expect(await eventually { server.connectionCount == 0 })
    await peer.close()
    try await BadPeerTests().expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("bytes of a TLS handshake are refused with a GOAWAY that says the server speaks h2c")
  func tlsClientHello() async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    // The start of a TLS 1.2/1.3 ClientHello record.
    try await peer.send(
      [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
        + [UInt8](repeating: 0, count: 40)
    )
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == HTTP2ErrorCode.protocolError.rawValue)
    #expect(goAway.debugData.contains("TLS"), "\(goAway.debugData)")
    #expect(server.limitCounts[.protocolError] == 1)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a frame error after a served call: GOAWAY names the error and the last stream processed")
  func goAwayAfterCall() async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(
      Self.preface + RawFrame.grpcRequest(streamID: 1, path: EchoService.chatPath)
        + RawFrame.dataFrame(streamID: 1, EchoRequest(text: "hi").framedBytes(), endStream: true)
    )
    _ = await peer.waitForFrames { Self.endingFields(of: 1, in: $0) != nil }
    // SETTINGS must be sent on stream 0.
    try await peer.send(RawFrame.encode(type: RawFrame.settings, streamID: 3))
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == HTTP2ErrorCode.protocolError.rawValue)
    let lastStream = goAway.payload[0..<4].reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
    #expect(lastStream == 1)
    #expect(
      !goAway.debugData.isEmpty && !goAway.debugData.contains("preface"),
      "\(goAway.debugData)"
    )
    #expect(await eventually { server.limitCounts[.protocolError] == 1 })
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "content-type and te decide the answer on the wire",
    arguments: [
      ("application/grpc+proto", "trailers", "grpc-status", "0"),
      ("application/grpc+json", "trailers", "grpc-status", "12"),
      ("text/plain", "trailers", ":status", "415"),
      ("application/grpc", nil, "grpc-status", "13"),
    ] as [(String, String?, String, String)]
  )
  func contentTypeOnTheWire(
    _ contentType: String,
    te: String?,
    field: String,
    expected: String
  ) async throws {
    let (server, port) = try await Self.startServer()
    let peer = try await RawConnection.connect(port: port)
    var fields: [(String, String)] = [
      (":method", "POST"), (":scheme", "http"), (":path", EchoService.chatPath),
      (":authority", "localhost"), ("content-type", contentType),
    ]
    if let te { fields.append(("te", te)) }
    try await peer.send(
      Self.preface + RawFrame.headersFrame(streamID: 1, fields: fields)
        + RawFrame.dataFrame(streamID: 1, EchoRequest(text: "hi").framedBytes(), endStream: true)
    )
    let frames = await peer.waitForFrames { Self.endingFields(of: 1, in: $0) != nil }
    let ending = Self.endingFields(of: 1, in: frames)
    let all = HPACKDecoder().headers(of: frames).filter { $0.streamID == 1 }.flatMap(\.fields)
    #expect(
      (field == ":status" ? Self.value(field, in: all) : Self.value(field, in: ending)) == expected,
      "\(all)"
    )
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a client that never reads has its streams reset after the write-stall timeout")
  func writeStall() async throws {
    let ended = NIOLockedValueBox(0)
    let flood = GRPCServer.Method.async(
      "/hark.testing.v1.Flood/Flood",
      requestType: RawMessage.self,
      responseType: RawMessage.self
    ) { call in
      defer { ended.withLockedValue { $0 += 1 } }
      let message = RawMessage(ByteBuffer(repeating: 0x42, count: 1024))
      while true { try await call.send(message) }
    }
    let (server, port) = try await Self.startServer(
      writeStallTimeout: .milliseconds(300),
      methods: [flood, EchoService.method]
    )
    let peer = try await RawConnection.connect(port: port, reading: false)
    var request = Self.preface
    for stream in stride(from: UInt32(1), through: 9, by: 2) {
      request += RawFrame.grpcRequest(streamID: stream, path: "/hark.testing.v1.Flood/Flood")
    }
    try await peer.send(request)
    // Every handler learns its call ended, so none holds what it queued.
    #expect(await eventually { ended.withLockedValue { $0 } == 5 })
    #expect(server.limitCounts[.writeStall] >= 1, "\(server.limitCounts)")
    try await BadPeerTests().expectServing(port: port)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a handler that ignores writability has its stream reset past the queue limit")
  func queueLimit() async throws {
    let refused = NIOLockedValueBox(false)
    let flood = GRPCServer.Method(path: "/hark.testing.v1.Flood/Flood") { stream in
      FloodHandler(stream: stream, refused: refused)
    }
    let (server, port) = try await Self.startServer(
      connection: GRPCConnectionConfiguration(maxQueuedBytesPerStream: 64 << 10),
      methods: [flood]
    )
    let peer = try await RawConnection.connect(port: port, reading: false)
    try await peer.send(
      Self.preface + RawFrame.grpcRequest(streamID: 1, path: "/hark.testing.v1.Flood/Flood")
        + RawFrame.dataFrame(streamID: 1, EchoRequest(text: "go").framedBytes())
    )
    #expect(await eventually { refused.withLockedValue { $0 } })
    #expect(server.limitCounts[.outboundQueue] == 1)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  /// Sends 1 KiB responses in a loop on its first request, ignoring writability, until the
  /// stream refuses one.
  final class FloodHandler: GRPCServerStreamHandler {
    let stream: GRPCServerStream
    let refused: NIOLockedValueBox<Bool>

    init(stream: GRPCServerStream, refused: NIOLockedValueBox<Bool>) {
      self.stream = stream
      self.refused = refused
    }

    func receive(message: ByteBuffer) {
      let response = RawMessage(ByteBuffer(repeating: 0x42, count: 1024))
      for _ in 0..<10_000 where !refused.withLockedValue({ $0 }) {
        if !stream.send(response) { refused.withLockedValue { $0 = true } }
      }
    }

    func receiveEndOfRequests() {}
    func cancelled(_ status: GRPCStatus) {}
  }
}

extension EchoRequest {
  /// The request as a gRPC message: the 5-byte prefix, then the protobuf bytes.
  func framedBytes() -> [UInt8] {
    var buffer = ByteBuffer()
    GRPCMessageFramer.append(serializedBytes(), to: &buffer)
    return Array(buffer.readableBytesView)
  }
}
