import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkTestSupport
import HarkTesting
import NIOCore
import Testing

/// A server that answers before the client has finished sending (a recognizer's 404 or 413
/// while audio still flows) ends its response with trailers and then, as the gRPC spec over
/// HTTP/2 asks, RST_STREAM NO_ERROR, so the client stops sending at once.
@Suite("Early status on the wire")
struct EarlyStatusTests {
  /// A request message of the Echo service, framed.
  func framed(_ request: EchoRequest) -> [UInt8] {
    let bytes = request.serializedByteArray()
    let length = UInt32(bytes.count)
    return [
      0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
      UInt8(length & 0xFF),
    ] + bytes
  }

  @Test("trailers before the client half-closed are followed by RST_STREAM NO_ERROR")
  func resetAfterEarlyTrailers() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    var request = EchoRequest()
    request.status = EchoStatus(code: 5, message: "not found")
    // The request stays open: no END_STREAM.
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: EchoService.chatPath)
        + RawFrame.dataFrame(streamID: 1, framed(request))
    )
    let frames = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    }
    let blocks = HPACKDecoder().headers(of: frames)
    let trailers = try #require(blocks.last { $0.streamID == 1 })
    #expect(trailers.endStream)
    #expect(trailers.fields.contains { $0 == ("grpc-status", "5") }, "\(trailers.fields)")
    let trailersIndex = try #require(
      frames.lastIndex { $0.type == RawFrame.headers && $0.streamID == 1 }
    )
    let resetIndex = try #require(
      frames.firstIndex { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    )
    #expect(trailersIndex < resetIndex, "the reset comes after the status")
    #expect(frames[resetIndex].errorCode == 0x0)  // NO_ERROR
    #expect(!peer.isClosed)
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a Hark client sends no reset of a stream the server reset after its early status")
  func clientLeavesResetStreamAlone() async throws {
    // Each such reset is one more frame for the server's reset limits: a load tester refused
    // (409) faster than the limit allowed lost its connection to them.
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    var request = EchoRequest()
    request.status = EchoStatus(code: 8, message: "busy")
    for _ in 0..<50 {
      let status = try await channel.withCall(
        path: EchoService.chatPath,
        request: EchoRequest.self,
        response: EchoResponse.self
      ) { call -> GRPCStatus? in
        // The request stream stays open: the status comes first.
        try await call.send(request)
        do {
          for try await _ in call.responses {}
          return nil
        } catch let status as GRPCStatus {
          return status
        }
      }
      #expect(status?.code == .resourceExhausted)
    }
    // A last call that goes through: the connection is still fine.
    let echoed = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(text: "still here"))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      return texts
    }
    #expect(echoed == ["still here"])
    #expect(server.liveObjects.resetsReceived == 0)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "a status the client's half-close overtakes, in the same read, needs no reset",
    arguments: ["a message the handler cannot decode", "an unknown method"]
  )
  func noResetAfterHalfCloseInTheSameRead(_ kind: String) async throws {
    let server = GRPCServer(
      configuration: .init(host: "127.0.0.1", port: 0),
      methods: [EchoService.loopMethod]
    )
    let port = try await server.start().port!
    let peer = try await RawConnection.connect(port: port)
    // The status is decided before the END_STREAM that follows in the same read is parsed, and
    // written after it: by then the stream is closed, and no frame but PRIORITY may be sent on
    // a closed stream (RFC 9113 §5.1).
    let path = kind == "an unknown method" ? "/hark.testing.v1.Echo/Nope" : EchoService.chatPath
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: path)
        + RawFrame.dataFrame(streamID: 1, [0, 0, 0, 0, 2, 0xFF, 0xFF], endStream: true)
    )
    let frames = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.headers && $0.streamID == 1 && $0.flags & 0x1 != 0 }
    }
    let status = try #require(HPACKDecoder().headers(of: frames).last { $0.streamID == 1 })
    #expect(status.fields.contains { $0.0 == "grpc-status" }, "\(status.fields)")
    // Give a stray reset the time to arrive.
    try await Task.sleep(nanoseconds: 100_000_000)
    #expect(!peer.frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 })
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a status after the client half-closed needs no reset")
  func noResetAfterHalfClose() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: EchoService.chatPath)
        + RawFrame.dataFrame(streamID: 1, framed(EchoRequest(text: "hello")), endStream: true)
    )
    let frames = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.headers && $0.streamID == 1 && $0.flags & 0x1 != 0 }
    }
    let trailers = try #require(HPACKDecoder().headers(of: frames).last { $0.streamID == 1 })
    #expect(trailers.fields.contains { $0 == ("grpc-status", "0") }, "\(trailers.fields)")
    // Give a stray reset the time to arrive.
    try await Task.sleep(nanoseconds: 100_000_000)
    #expect(!peer.frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 })
    await peer.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
