import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore
import Testing

@Suite("Address families and server lifetime")
struct AddressFamilyTests {
  @Test("serve() runs until the serving task is cancelled, then shuts down gracefully")
  func serveUntilCancelled() async throws {
    let server = GRPCServer(
      configuration: .init(host: "127.0.0.1", port: 0),
      methods: [EchoService.method]
    )
    let serving = Task { try await server.serve(gracePeriod: .milliseconds(200)) }
    try #require(await eventually { server.localAddress != nil })
    let port = try #require(server.localAddress?.port)
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    _ = try await channel.connection()
    #expect(server.connectionCount == 1)
    serving.cancel()
    try await serving.value
    #expect(server.connectionCount == 0)
    await channel.close()
  }

  @Test(
    "the server listens and the client connects over IPv4 and IPv6",
    arguments: ["127.0.0.1", "::1"]
  )
  func family(_ host: String) async throws {
    let server = GRPCServer(
      configuration: .init(host: host, port: 0),
      methods: [EchoService.method]
    )
    let address = try await server.start()
    #expect(address.protocol == (host.contains(":") ? .inet6 : .inet))
    let channel = GRPCChannel(host: host, port: address.port!)
    let texts = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(text: host))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      return texts
    }
    #expect(texts == [host])
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
