import HarkGRPC
import HarkGRPCCore
import NIOCore

/// The Echo service of proto/hark/testing/v1/echo.proto, served by Hark (the Python grpcio
/// server in tools/interop implements the same semantics).
enum EchoService {
  static let chatPath = "/hark.testing.v1.Echo/Chat"

  static var method: GRPCServer.Method {
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

  /// Starts a Hark server of the Echo service on a loopback port.
  static func startServer(
    configuration: GRPCConnectionConfiguration = GRPCConnectionConfiguration(),
    pingPolicy: ServerPingPolicy = ServerPingPolicy()
  ) async throws -> (GRPCServer, Int) {
    let server = GRPCServer(
      configuration: .init(
        host: "127.0.0.1",
        port: 0,
        connection: configuration,
        pingPolicy: pingPolicy
      ),
      methods: [method]
    )
    let address = try await server.start()
    return (server, address.port!)
  }
}
