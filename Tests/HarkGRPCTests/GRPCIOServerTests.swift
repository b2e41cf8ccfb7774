import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore
import Testing

/// The Echo server a client test runs against.
enum EchoServerKind: String, CaseIterable, CustomTestStringConvertible {
  /// Python grpcio (tools/interop/echo_server.py): a gRPC implementation nobody here wrote.
  case grpcio
  /// Hark's own server.
  case hark

  var testDescription: String { rawValue }
}

/// Hark's client against Python grpcio's server (tools/interop/echo_server.py), and against
/// Hark's server for the same scenarios.
@Suite("Hark client → grpcio and Hark servers", .serialized)
struct GRPCIOServerTests {
  /// Runs `body` with a channel to a fresh Echo server of `kind`.
  func withServer(
    _ kind: EchoServerKind,
    _ body: (GRPCChannel) async throws -> Void
  ) async throws {
    let port: Int
    var stop: () async -> Void
    switch kind {
    case .grpcio:
      let server = try await PythonEchoServer.start()
      port = server.port
      stop = { await server.stop() }
    case .hark:
      let (server, harkPort) = try await EchoService.startServer()
      port = harkPort
      stop = { await server.shutdown(gracePeriod: .milliseconds(100)) }
    }
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    do {
      try await body(channel)
    } catch {
      await channel.close()
      await stop()
      throw error
    }
    await channel.close()
    await stop()
  }

  /// Sends `requests`, half-closes, and collects the responses and the status.
  func chat(
    _ channel: GRPCChannel,
    path: String = EchoService.chatPath,
    metadata: GRPCMetadata = GRPCMetadata(),
    timeout: TimeAmount? = nil,
    _ requests: [EchoRequest]
  ) async throws -> (
    responses: [EchoResponse], status: GRPCStatus, headers: GRPCMetadata, trailers: GRPCMetadata
  ) {
    try await channel.withCall(
      path: path,
      metadata: metadata,
      timeout: timeout,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      for request in requests { try? await call.send(request) }
      await call.finish()
      var responses: [EchoResponse] = []
      do {
        for try await response in call.responses { responses.append(response) }
      } catch is GRPCStatus {
        // The status is read below.
      }
      return (responses, await call.status, await call.initialMetadata, await call.trailingMetadata)
    }
  }

  @Test("1,000 messages each way on one stream", arguments: EchoServerKind.allCases)
  func echoMany(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      let requests = (0..<1000).map { index in
        EchoRequest(
          payload: ByteBuffer(bytes: (0..<320).map { UInt8(truncatingIfNeeded: $0 ^ index) }),
          text: "m\(index)"
        )
      }
      let (responses, status, _, _) = try await chat(channel, requests)
      #expect(status == .ok)
      #expect(responses.count == 1000)
      #expect(responses.map(\.text) == requests.map(\.text))
      #expect(responses.map(\.payload) == requests.map(\.payload))
      #expect(responses.map(\.sequence) == (1...1000).map { UInt32($0) })
    }
  }

  @Test(
    "messages just under the 4 MiB limit pass both ways; one over it is RESOURCE_EXHAUSTED",
    arguments: EchoServerKind.allCases
  )
  func messageSizeLimits(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      let limit = 4 * 1024 * 1024
      let big = EchoRequest(payload: ByteBuffer(repeating: 7, count: limit - 64))
      var bigResponse = EchoRequest()
      bigResponse.responseBytes = UInt32(limit - 64)
      let (responses, status, _, _) = try await chat(channel, [big, bigResponse])
      #expect(status == .ok)
      #expect(responses.map(\.payload.readableBytes) == [limit - 64, limit - 64])

      // A request over the server's limit.
      let tooBig = EchoRequest(payload: ByteBuffer(repeating: 7, count: limit + 1024))
      let (_, serverStatus, _, _) = try await chat(channel, [tooBig])
      #expect(serverStatus.code == .resourceExhausted)

      // A response over the client's limit: Hark's deframer refuses it from its prefix.
      var tooBigResponse = EchoRequest()
      tooBigResponse.responseBytes = UInt32(limit + 1024)
      let (_, clientStatus, _, _) = try await chat(channel, [tooBigResponse])
      #expect(clientStatus.code == .resourceExhausted)
    }
  }

  @Test(
    "metadata both ways: headers, binary values, initial and trailing metadata",
    arguments: EchoServerKind.allCases
  )
  func metadata(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      var metadata = GRPCMetadata()
      try metadata.add("x-echo-alpha", "one")
      try metadata.add("x-echo-beta-bin", binary: [0, 1, 2, 255])
      try metadata.add("authorization", "Bearer token-123")
      let (responses, status, headers, trailers) = try await chat(
        channel,
        metadata: metadata,
        [EchoRequest(text: "hi")]
      )
      #expect(status == .ok)
      #expect(responses.count == 1)
      #expect(headers.first("x-server") == kind.rawValue)
      #expect(trailers.first("echo-alpha") == "one")
      #expect(trailers.values(for: "echo-beta-bin") == [.binary([0, 1, 2, 255])])
    }
  }

  @Test(
    "a deadline that expires ends the call with DEADLINE_EXCEEDED",
    arguments: EchoServerKind.allCases
  )
  func deadline(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      var slow = EchoRequest()
      slow.delayMs = 3000
      let start = NIODeadline.now()
      let (_, status, _, _) = try await chat(channel, timeout: .milliseconds(300), [slow])
      #expect(status.code == .deadlineExceeded)
      #expect(NIODeadline.now() - start < .seconds(20))  // a bound on hanging, not on speed
    }
  }

  @Test("cancel from the client ends the call with CANCELLED", arguments: EchoServerKind.allCases)
  func clientCancel(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      let status = try await channel.withCall(
        path: EchoService.chatPath,
        request: EchoRequest.self,
        response: EchoResponse.self
      ) { call in
        try await call.send(EchoRequest(text: "one"))
        let iterator = call.responses.makeAsyncIterator()
        let first = try await iterator.next()
        #expect(first?.text == "one")
        call.cancel()
        return await call.status
      }
      #expect(status.code == .cancelled)
    }
  }

  @Test("cancel from the server ends the call with CANCELLED", arguments: EchoServerKind.allCases)
  func serverCancel(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      var request = EchoRequest()
      request.cancel = true
      let (_, status, _, _) = try await chat(channel, [request])
      #expect(status.code == .cancelled)
    }
  }

  @Test(
    "a status message with \\t, \\n, ☺ and 😈 survives percent-encoding",
    arguments: EchoServerKind.allCases
  )
  func unicodeStatus(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      var request = EchoRequest()
      request.status = EchoStatus(code: 9, message: "\t\n ☺ 😈 100%")
      let (_, status, _, _) = try await chat(channel, [request])
      #expect(status == GRPCStatus(.failedPrecondition, "\t\n ☺ 😈 100%"))
    }
  }

  @Test("an unknown method is UNIMPLEMENTED", arguments: EchoServerKind.allCases)
  func unimplemented(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      let (_, status, _, _) = try await chat(
        channel,
        path: "/hark.testing.v1.Echo/Missing",
        [EchoRequest()]
      )
      #expect(status.code == .unimplemented)
    }
  }

  @Test("200 concurrent streams on one connection", arguments: EchoServerKind.allCases)
  func concurrentStreams(_ kind: EchoServerKind) async throws {
    try await withServer(kind) { channel in
      try await withThrowingTaskGroup(of: Int.self) { group in
        for index in 0..<200 {
          group.addTask {
            let requests = (0..<5).map { EchoRequest(text: "\(index)-\($0)") }
            let (responses, status, _, _) = try await self.chat(channel, requests)
            #expect(status == .ok)
            #expect(responses.map(\.text) == requests.map(\.text))
            return responses.count
          }
        }
        var total = 0
        for try await count in group { total += count }
        #expect(total == 1000)
      }
      let connection = try await channel.connection()
      #expect(connection.openStreamCount == 0)
    }
  }
}
