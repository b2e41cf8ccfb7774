import HarkGRPC
import HarkGRPCCore
import HarkTestSupport
import HarkTesting
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Peers that break the protocol: each gets the right GOAWAY or status, and the server keeps
/// serving everyone else.
@Suite("Bad peers")
struct BadPeerTests {
  /// Checks that a well-behaved client still gets served.
  func expectServing(port: Int) async throws {
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let text = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(text: "still serving"))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      return texts
    }
    #expect(text == ["still serving"])
    await channel.close()
  }

  @Test("garbage instead of the connection preface: GOAWAY PROTOCOL_ERROR, then close")
  func garbage() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(Array(repeating: 0x5A, count: 100))
    #expect(await peer.waitForClose())
    let goAway = peer.frames.first { $0.type == RawFrame.goAway }
    #expect(goAway?.errorCode == 0x1, "frames: \(peer.frames.map(\.type))")
    try await expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("an HTTP/1.1 request: GOAWAY PROTOCOL_ERROR, then close")
  func http11() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
    #expect(await peer.waitForClose())
    #expect(peer.frames.contains { $0.type == RawFrame.goAway && $0.errorCode == 0x1 })
    try await expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a valid preface, then garbage frames: a GOAWAY naming the error, then close")
  func garbageFrames() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    // A SETTINGS frame on stream 1 (SETTINGS must be on stream 0), then an unknown mess.
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.encode(type: RawFrame.settings, streamID: 1)
        + Array(repeating: 0xFF, count: 64)
    )
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == 0x1)  // PROTOCOL_ERROR
    try await expectServing(port: port)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a gRPC message cut short before END_STREAM: INTERNAL")
  func truncatedMessage() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    // The prefix announces 100 bytes; 10 follow, then END_STREAM.
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: EchoService.chatPath)
        + RawFrame.dataFrame(
          streamID: 1,
          [0, 0, 0, 0, 100] + Array(repeating: 1, count: 10),
          endStream: true
        )
    )
    let frames = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.headers && $0.streamID == 1 && $0.flags & 0x1 != 0 }
    }
    let blocks = HPACKDecoder().headers(of: frames)
    let trailers = try #require(blocks.last { $0.streamID == 1 })
    #expect(trailers.endStream)
    #expect(trailers.fields.contains { $0 == ("grpc-status", "13") }, "\(trailers.fields)")
    #expect(!peer.isClosed)
    try await expectServing(port: port)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a client that opens streams and never reads slows the server instead of filling it")
  func neverReads() async throws {
    let produced = NIOLockedValueBox(0)
    let flood = GRPCServer.Method.async(
      "/hark.testing.v1.Flood/Flood",
      requestType: RawMessage.self,
      responseType: RawMessage.self
    ) { call in
      let message = RawMessage(ByteBuffer(repeating: 0x42, count: 1024))
      while true {
        try await call.send(message)
        produced.withLockedValue { $0 += 1 }
      }
    }
    let server = GRPCServer(
      configuration: .init(host: "127.0.0.1", port: 0),
      methods: [flood, EchoService.method]
    )
    let port = try await server.start().port!
    let peer = try await RawConnection.connect(port: port, reading: false)
    var request = RawFrame.preface + RawFrame.emptySettings
    for stream in stride(from: UInt32(1), through: 9, by: 2) {
      request += RawFrame.grpcRequest(streamID: stream, path: "/hark.testing.v1.Flood/Flood")
    }
    try await peer.send(request)
    // Five streams, each stopped by the peer's 64 KiB window plus Hark's 64 KiB queue: about 130
    // messages of 1 KiB each, and no more once the window is shut.
    #expect(await eventually { produced.withLockedValue { $0 } > 0 })
    let total = await settled { produced.withLockedValue { $0 } }
    #expect(total < 5 * 200, "produced \(total) responses for a peer that reads nothing")
    try await expectServing(port: port)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

}
