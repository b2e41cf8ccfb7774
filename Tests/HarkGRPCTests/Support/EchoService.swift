import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore

extension EchoService {
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
