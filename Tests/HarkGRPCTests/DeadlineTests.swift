import HarkGRPC
import HarkGRPCCore
import HarkTestSupport
import HarkTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// `grpc-timeout` on the wire: what Hark's client sends and what Hark's server enforces.
@Suite("Deadlines on the wire")
struct DeadlineTests {
  /// A TCP server that records what a client sends and answers nothing.
  final class RecordingServer: Sendable {
    let channel: any Channel
    let received = NIOLockedValueBox<[UInt8]>([])

    final class Recorder: ChannelInboundHandler, Sendable {
      typealias InboundIn = ByteBuffer
      typealias OutboundOut = ByteBuffer
      let received: NIOLockedValueBox<[UInt8]>
      init(received: NIOLockedValueBox<[UInt8]>) { self.received = received }
      func channelActive(context: ChannelHandlerContext) {
        // Just enough HTTP/2 for the client to take the connection: empty SETTINGS.
        context.writeAndFlush(
          wrapOutboundOut(ByteBuffer(bytes: RawFrame.emptySettings)),
          promise: nil
        )
      }
      func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        received.withLockedValue { $0 += bytes.readableBytesView }
      }
    }

    init() async throws {
      let received = self.received
      channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(Recorder(received: received))
          }
        }
        .bind(host: "127.0.0.1", port: 0)
        .get()
    }

    var port: Int { channel.localAddress!.port! }
  }

  @Test("the client sends its deadline as grpc-timeout, after the pseudo-headers, and enforces it")
  func clientSendsTimeout() async throws {
    let server = try await RecordingServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: server.port)
    var metadata = GRPCMetadata()
    try metadata.add("authorization", "Bearer abc")
    _ = try await channel.connection()
    let start = NIODeadline.now()
    let status = try await channel.withCall(
      path: "/pkg.Service/Method",
      metadata: metadata,
      timeout: .milliseconds(250),
      request: RawMessage.self,
      response: RawMessage.self
    ) { call in
      await call.status
    }
    #expect(status.code == .deadlineExceeded)
    // Well before the test's own limit: the deadline ended the call (a bound on hanging, not a
    // measure of speed).
    #expect(NIODeadline.now() - start < .seconds(20))
    // Wait for the RST_STREAM that follows the deadline to reach the server.
    for _ in 0..<200
    where !server.received.withLockedValue({ RawFrame.parse(Array($0.dropFirst(24))) }).contains(
      where: { $0.type == RawFrame.rstStream })
    {
      try await Task.sleep(nanoseconds: 10_000_000)
    }
    let bytes = server.received.withLockedValue { $0 }
    #expect(bytes.starts(with: RawFrame.preface))
    let frames = RawFrame.parse(Array(bytes.dropFirst(RawFrame.preface.count)))
    let request = try #require(HPACKDecoder().headers(of: frames).first)
    #expect(
      request.fields.map(\.0) == [
        ":method", ":scheme", ":path", ":authority", "grpc-timeout", "te", "content-type",
        "user-agent",
        "authorization",
      ]
    )
    #expect(request.fields.first { $0.0 == "grpc-timeout" }?.1 == "250000u")
    #expect(request.fields.first { $0.0 == ":path" }?.1 == "/pkg.Service/Method")
    #expect(request.fields.first { $0.0 == "te" }?.1 == "trailers")
    // The deadline passed: the client reset the stream with CANCEL (H30).
    #expect(
      frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 && $0.errorCode == 0x8 }
    )
    await channel.close()
    try? await server.channel.close()
  }

  @Test("the server enforces grpc-timeout: DEADLINE_EXCEEDED, then RST_STREAM NO_ERROR")
  func serverEnforcesTimeout() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    let headers = RawFrame.headersFrame(
      streamID: 1,
      fields: [
        (":method", "POST"), (":scheme", "http"), (":path", EchoService.chatPath),
        (":authority", "localhost"),
        ("grpc-timeout", "100m"), ("content-type", "application/grpc"), ("te", "trailers"),
      ]
    )
    let start = NIODeadline.now()
    try await peer.send(RawFrame.preface + RawFrame.emptySettings + headers)
    let frames = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    }
    #expect(NIODeadline.now() - start < .seconds(20))  // a bound on hanging, not on speed
    let blocks = HPACKDecoder().headers(of: frames).filter { $0.streamID == 1 }
    let status = try #require(blocks.last)
    #expect(status.endStream)
    #expect(status.fields.contains { $0 == ("grpc-status", "4") })
    // The client had not half-closed: a reset that asks it to stop sending, without an error
    // that could be taken for CANCELLED (H29).
    let reset = try #require(frames.first { $0.type == RawFrame.rstStream && $0.streamID == 1 })
    #expect(reset.errorCode == 0x0)
    // The status came before the reset.
    let statusIndex = try #require(
      frames.lastIndex { $0.type == RawFrame.headers && $0.streamID == 1 }
    )
    let resetIndex = try #require(
      frames.firstIndex { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    )
    #expect(statusIndex < resetIndex)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a malformed grpc-timeout is answered with INTERNAL")
  func malformedTimeout() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    let headers = RawFrame.headersFrame(
      streamID: 1,
      fields: [
        (":method", "POST"), (":scheme", "http"), (":path", EchoService.chatPath),
        (":authority", "localhost"),
        ("grpc-timeout", "soon"), ("content-type", "application/grpc"), ("te", "trailers"),
      ],
      endStream: true
    )
    try await peer.send(RawFrame.preface + RawFrame.emptySettings + headers)
    let frames = await peer.waitForFrames {
      $0.contains { $0.type == RawFrame.headers && $0.streamID == 1 }
    }
    let response = try #require(HPACKDecoder().headers(of: frames).first { $0.streamID == 1 })
    #expect(response.endStream)
    #expect(response.fields.contains { $0 == ("grpc-status", "13") })
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a request whose content-type is not gRPC gets HTTP 415")
  func wrongContentType() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    let headers = RawFrame.headersFrame(
      streamID: 1,
      fields: [
        (":method", "POST"), (":scheme", "http"), (":path", EchoService.chatPath),
        (":authority", "localhost"),
        ("content-type", "application/json"),
      ],
      endStream: true
    )
    try await peer.send(RawFrame.preface + RawFrame.emptySettings + headers)
    let frames = await peer.waitForFrames {
      $0.contains { $0.type == RawFrame.headers && $0.streamID == 1 }
    }
    let response = try #require(HPACKDecoder().headers(of: frames).first { $0.streamID == 1 })
    #expect(response.fields.first?.0 == ":status")
    #expect(response.fields.first?.1 == "415")
    #expect(response.endStream)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
