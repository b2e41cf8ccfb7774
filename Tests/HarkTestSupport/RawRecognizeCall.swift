import HarkGRPCCore
public import HarkProto
import NIOCore

/// One Recognize call made of raw HTTP/2 frames: the whole request body (every message, however
/// small) leaves in a few DATA frames, so a test of the server's handling of many tiny messages
/// costs the client almost nothing.
public enum RawRecognizeCall {
  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  /// Sends `requests` on a new connection to 127.0.0.1:`port`, half-closes, and returns every
  /// response once the call ended.
  public static func run(
    port: Int,
    _ requests: [RecognitionRequest],
    path: String = "/nuance.asr.v1.Recognizer/Recognize"
  ) async throws -> [RecognitionResponse] {
    try await call(port: port, requests, path: path).responses
  }

  /// Like ``run(port:_:path:)``, and also returns the call's trailing header fields.
  public static func call(
    port: Int,
    _ requests: [RecognitionRequest],
    path: String = "/nuance.asr.v1.Recognizer/Recognize"
  ) async throws -> (responses: [RecognitionResponse], trailers: [(String, String)]) {
    var body = ByteBuffer()
    for request in requests { GRPCMessageFramer.append(request.serializedBytes(), to: &body) }
    // The stream's window is the server's (1 MiB by default), acknowledged below.
    guard body.readableBytes <= 1 << 20 else {
      throw Failure(description: "a request body of \(body.readableBytes) bytes is over the window")
    }
    let peer = try await RawConnection.connect(port: port)
    defer { Task { await peer.close() } }
    try await peer.send(RawFrame.preface + RawFrame.emptySettings)
    _ = await peer.waitForFrames { frames in
      frames.contains { $0.type == RawFrame.settings && $0.flags & 1 == 0 }
    }
    var bytes = RawFrame.encode(type: RawFrame.settings, flags: 1)
    bytes += RawFrame.grpcRequest(streamID: 1, path: path)
    let payload = Array(body.readableBytesView)
    var start = 0
    repeat {
      let end = min(start + 16384, payload.count)
      bytes += RawFrame.dataFrame(
        streamID: 1,
        Array(payload[start..<end]),
        endStream: end == payload.count
      )
      start = end
    } while start < payload.count
    try await peer.send(bytes)
    func ended(_ frames: [RawFrame]) -> Bool {
      frames.contains { frame in
        frame.streamID == 1
          && (frame.type == RawFrame.rstStream
            || (frame.type == RawFrame.headers && frame.flags & 1 != 0))
      }
    }
    let started = NIODeadline.now()
    let frames = await peer.waitForFrames(timeout: .seconds(60), until: ended)
    guard ended(frames) else {
      // Say what happened instead, for the test's failure message.
      let waited = (NIODeadline.now() - started).nanoseconds / 1_000_000
      let onStream = frames.filter { $0.streamID == 1 }.map { "type \($0.type)" }
      let goAway = frames.first { $0.type == RawFrame.goAway }.map {
        "; GOAWAY \($0.errorCode ?? 0) \($0.debugData)"
      }
      throw Failure(
        description: "stream 1 did not end after \(waited) ms "
          + "(\(peer.isClosed ? "connection closed" : "connection open")\(goAway ?? ""); "
          + "frames on stream 1: \(onStream))"
      )
    }
    var deframer = GRPCMessageDeframer()
    for frame in frames where frame.type == RawFrame.data && frame.streamID == 1 {
      deframer.append(ByteBuffer(bytes: frame.payload))
    }
    var responses: [RecognitionResponse] = []
    while let message = try deframer.next() {
      responses.append(try RecognitionResponse(serializedBytes: message))
    }
    let trailers = HPACKDecoder().headers(of: frames).last { $0.streamID == 1 && $0.endStream }
    return (responses, trailers?.fields ?? [])
  }
}

extension [RecognitionResponse] {
  /// The status codes among the responses, in order.
  public var statusCodes: [UInt32] {
    compactMap { response in
      if case .status(let status)? = response.response { return status.code }
      return nil
    }
  }

  /// The texts of the final results, in order.
  public var finalTexts: [String] {
    compactMap { response in
      guard case .result(let result)? = response.response, result.resultType == .final else {
        return nil
      }
      return result.hypotheses.first?.formattedText ?? ""
    }
  }
}
