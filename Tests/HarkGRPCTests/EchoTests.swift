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

  @Test(
    "40 calls on one connection through a 700-byte stream window: every message once, in order"
  )
  func manyCallsThroughASmallWindow() async throws {
    // The window splits messages across DATA frames and holds streams between flushes, so the
    // connection's shared outbound scratch is taken in parts and left behind by held streams.
    var configuration = GRPCConnectionConfiguration()
    configuration.initialStreamWindowSize = 700
    let (server, port) = try await EchoService.startServer(configuration: configuration)
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    func payload(_ call: Int, _ index: Int) -> ByteBuffer {
      let size = (call * 131 + index * 37) % 900 + 1
      return ByteBuffer(
        bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index &* 7 &+ call) }
      )
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for call in 0..<40 {
        group.addTask {
          let received = try await channel.withCall(
            path: EchoService.chatPath,
            request: EchoRequest.self,
            response: EchoResponse.self
          ) { call_ in
            async let responses: [EchoResponse] = {
              var all: [EchoResponse] = []
              for try await response in call_.responses { all.append(response) }
              return all
            }()
            for index in 0..<60 {
              try await call_.send(
                EchoRequest(payload: payload(call, index), text: "\(call).\(index)")
              )
            }
            await call_.finish()
            let all = try await responses
            #expect(await call_.status == .ok)
            return all
          }
          #expect(received.count == 60)
          for (index, response) in received.enumerated() {
            #expect(response.text == "\(call).\(index)")
            #expect(response.payload == payload(call, index))
          }
        }
      }
      try await group.waitForAll()
    }
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }
}
