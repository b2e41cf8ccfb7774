import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore
import Testing

/// Hark client ↔ Hark server over real loopback sockets.
@Suite("Hark client and server")
struct EchoTests {
  @Test("one bidirectional stream carries 1,000 messages each way")
  func manyMessages() async throws {
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let received = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      async let responses: [EchoResponse] = {
        var all: [EchoResponse] = []
        for try await response in call.responses { all.append(response) }
        return all
      }()
      for index in 0..<1000 {
        let payload = ByteBuffer(bytes: (0..<320).map { UInt8(truncatingIfNeeded: $0 &+ index) })
        try await call.send(EchoRequest(payload: payload, text: "m\(index)"))
      }
      await call.finish()
      let all = try await responses
      #expect(await call.status == .ok)
      return all
    }
    #expect(received.count == 1000)
    for (index, response) in received.enumerated() {
      #expect(response.sequence == UInt32(index + 1))
      #expect(response.text == "m\(index)")
      #expect(
        response.payload
          == ByteBuffer(bytes: (0..<320).map { UInt8(truncatingIfNeeded: $0 &+ index) })
      )
    }
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }
}
