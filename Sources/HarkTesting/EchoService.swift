public import HarkGRPC
import HarkGRPCCore
import NIOCore

/// The Echo service of proto/hark/testing/v1/echo.proto, served by Hark. The Python grpcio
/// server of tools/interop implements the same semantics.
public enum EchoService {
  /// The path of the bidirectional Chat method.
  public static let chatPath = "/hark.testing.v1.Echo/Chat"

  /// Chat with every behaviour of the proto's comments, in the async API: delays, statuses,
  /// server cancellation, response sizes and counts, metadata echoed as trailers.
  public static var method: GRPCServer.Method {
    .async(chatPath, requestType: EchoRequest.self, responseType: EchoResponse.self) { call in
      var initialMetadata = GRPCMetadata()
      try initialMetadata.add("x-server", "hark")
      await call.sendHeaders(metadata: initialMetadata)
      var sequence: UInt32 = 0
      for try await request in call.requests {
        if request.delayMs > 0 {
          try await Task.sleep(nanoseconds: UInt64(request.delayMs) * 1_000_000)
        }
        if let status = request.status {
          throw GRPCStatus(GRPCStatus.Code(rawValue: Int(status.code)) ?? .unknown, status.message)
        }
        if request.cancel {
          call.cancel()
          return
        }
        for _ in 0..<max(1, request.responseCount) {
          sequence += 1
          let payload =
            request.responseBytes > 0
            ? ByteBuffer(repeating: 0xAB, count: Int(request.responseBytes)) : request.payload
          try await call.send(
            EchoResponse(payload: payload, text: request.text, sequence: sequence)
          )
        }
      }
      var trailers = GRPCMetadata()
      for entry in call.metadata where entry.name.hasPrefix("x-echo-") {
        let name = "echo-" + entry.name.dropFirst("x-echo-".count)
        switch entry.value {
        case .string(let value): try trailers.add(name, value)
        case .binary(let bytes): try trailers.add(name, binary: bytes)
        }
      }
      call.setTrailingMetadata(trailers)
    }
  }

  /// Chat's plain echo (payload, text, sequence) on the event loop, with no task per call and no
  /// hop per message: what a server built for throughput does.
  public static var loopMethod: GRPCServer.Method {
    GRPCServer.Method(path: chatPath) { stream in LoopEcho(stream: stream) }
  }

  final class LoopEcho: GRPCServerStreamHandler {
    let stream: GRPCServerStream
    var sequence: UInt32 = 0

    init(stream: GRPCServerStream) {
      self.stream = stream
    }

    func receive(message: ByteBuffer) {
      guard let request = try? EchoRequest(decoding: message) else {
        stream.finish(status: GRPCStatus(.internalError, "cannot decode a request"))
        return
      }
      sequence += 1
      stream.send(EchoResponse(payload: request.payload, text: request.text, sequence: sequence))
    }

    func receiveEndOfRequests() {
      stream.finish()
    }

    func cancelled(_ status: GRPCStatus) {}
  }
}
