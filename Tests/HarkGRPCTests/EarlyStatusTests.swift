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
