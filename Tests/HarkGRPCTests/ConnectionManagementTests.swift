import HarkGRPC
import HarkGRPCCore
import HarkTestSupport
import HarkTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Keepalive, GOAWAY, shutdown, stream limits, pools and flow control, over real sockets.
@Suite("Connection management")
struct ConnectionManagementTests {
  /// A TCP server whose every connection gets a `Behaviour` handler, not HTTP/2.
  final class RawServer: Sendable {
    let channel: any Channel

    /// What each connection does.
    enum Behaviour: Sendable {
      /// Sends an empty SETTINGS frame, then answers nothing, not even PING.
      case silent
      /// Closes the connection at once.
      case closing
    }

    final class Handler: ChannelInboundHandler, Sendable {
      typealias InboundIn = ByteBuffer
      typealias OutboundOut = ByteBuffer
      let behaviour: Behaviour
      init(_ behaviour: Behaviour) { self.behaviour = behaviour }
      func channelActive(context: ChannelHandlerContext) {
        switch behaviour {
        case .silent:
          context.writeAndFlush(
            wrapOutboundOut(ByteBuffer(bytes: RawFrame.emptySettings)),
            promise: nil
          )
        case .closing:
          context.close(promise: nil)
        }
      }
      func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    init(_ behaviour: Behaviour) async throws {
      channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(Handler(behaviour))
          }
        }
        .bind(host: "127.0.0.1", port: 0)
        .get()
    }
    var port: Int { channel.localAddress!.port! }
    func close() async { try? await channel.close() }
  }

  @Test("a connection that failed before HTTP/2 began is tried again by the next call")
  func failedConnectionIsNotKept() async throws {
    let closing = try await RawServer(.closing)
    let port = closing.port
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    await #expect(throws: GRPCStatus.self) { try await channel.connection() }
    // The port now has a real server: the next call connects again, rather than being given
    // the first attempt's failure.
    await closing.close()
    let server = GRPCServer(
      configuration: .init(host: "127.0.0.1", port: port),
      methods: [EchoService.method]
    )
    _ = try await server.start()
    #expect(try await echo(channel) == .ok)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("keepalive: a PING left unanswered fails the connection's calls with UNAVAILABLE")
  func keepaliveDeclaresDead() async throws {
    let silent = try await RawServer(.silent)
    let configuration = GRPCClientConfiguration(
      keepaliveInterval: .milliseconds(100),
      keepaliveTimeout: .milliseconds(200),
      keepaliveMinimumInterval: .milliseconds(10)
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: silent.port, configuration: configuration)
    let start = NIODeadline.now()
    // The dead connection shows as the call's status, or — when a loaded machine is slow enough
    // that it is declared dead before the request goes out — as the error the call throws.
    let status: GRPCStatus
    do {
      status = try await channel.withCall(
        path: EchoService.chatPath,
        request: EchoRequest.self,
        response: EchoResponse.self
      ) { call in
        try await call.send(EchoRequest(text: "anyone there?"))
        return await call.status
      }
    } catch let error as GRPCStatus {
      status = error
    }
    #expect(status.code == .unavailable)
    #expect(status.message.contains("keepalive"))
    // The keepalive ended the call, not the test's limit (a bound on hanging, not on speed).
    #expect(NIODeadline.now() - start < .seconds(20))
    await channel.close()
    await silent.close()
  }

  @Test("keepalive: a server that answers PINGs keeps the connection")
  func keepaliveAnswered() async throws {
    // The server lets this client ping every 50 ms while calls are open.
    let (server, port) = try await EchoService.startServer(
      pingPolicy: ServerPingPolicy(permitKeepaliveTime: .milliseconds(10))
    )
    let configuration = GRPCClientConfiguration(
      keepaliveInterval: .milliseconds(50),
      // Generous, so a loaded machine's slow ACK is not a dead connection; the call outlasts it.
      keepaliveTimeout: .seconds(2),
      keepaliveMinimumInterval: .milliseconds(10)
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: port, configuration: configuration)
    let status = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      var slow = EchoRequest(text: "slow")
      slow.delayMs = 2500
      try await call.send(slow)
      await call.finish()
      for try await _ in call.responses {}
      return await call.status
    }
    #expect(status == .ok)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a client that pings too often gets GOAWAY ENHANCE_YOUR_CALM too_many_pings")
  func tooManyPings() async throws {
    let (server, port) = try await EchoService.startServer()
    let peer = try await RawConnection.connect(port: port)
    var bytes = RawFrame.preface + RawFrame.emptySettings
    for index in 0..<5 {
      bytes += RawFrame.encode(type: RawFrame.ping, payload: [0, 0, 0, 0, 0, 0, 0, UInt8(index)])
    }
    try await peer.send(bytes)
    #expect(await peer.waitForClose())
    let goAway = try #require(peer.frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == 0xB)
    #expect(goAway.debugData == "too_many_pings")
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a channel whose pings a server found too frequent doubles its keepalive interval")
  func tooManyPingsDoublesTheInterval() async throws {
    // The server allows one ping a second; the client pings after 100 ms without a frame.
    let (server, port) = try await EchoService.startServer(
      pingPolicy: ServerPingPolicy(permitKeepaliveTime: .seconds(1))
    )
    let channel = GRPCChannel(
      host: "127.0.0.1",
      port: port,
      configuration: GRPCClientConfiguration(
        keepaliveInterval: .milliseconds(100),
        keepaliveTimeout: .milliseconds(100),
        keepaliveMinimumInterval: .milliseconds(10)
      )
    )
    #expect(channel.currentKeepaliveInterval == .milliseconds(100))
    // A call that stays open and silent: the client pings until the server has had enough.
    let status = try await echo(channel, delayMs: 3000)
    #expect(status.code == .unavailable, "\(status)")
    #expect(channel.currentKeepaliveInterval == .milliseconds(200))
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  /// Runs one echo call and returns the connection it used.
  func echo(_ channel: GRPCChannel, delayMs: UInt32 = 0) async throws -> GRPCStatus {
    try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      var request = EchoRequest(text: "x")
      request.delayMs = delayMs
      try? await call.send(request)
      await call.finish()
      do {
        for try await _ in call.responses {}
      } catch {}
      return await call.status
    }
  }

  @Test("after GOAWAY the client opens new calls on a new connection")
  func goAwayMovesToNewConnection() async throws {
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    #expect(try await echo(channel) == .ok)
    let first = try await channel.connection()
    server.drainConnections()
    // The in-flight call of a draining connection finishes; later calls go elsewhere.
    #expect(await eventually { !first.isAvailable })
    #expect(try await echo(channel) == .ok)
    let second = try await channel.connection()
    #expect(second !== first)
    #expect(second.isAvailable)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  /// A server whose method "/test/Slow" answers after `delay`; `started` counts calls that began.
  func startSlowServer(delay: TimeAmount) async throws -> (GRPCServer, Int, NIOLockedValueBox<Int>)
  {
    let started = NIOLockedValueBox(0)
    let slow = GRPCServer.Method.async(
      "/test/Slow",
      requestType: RawMessage.self,
      responseType: RawMessage.self
    ) { call in
      started.withLockedValue { $0 += 1 }
      try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
      try await call.send(RawMessage(ByteBuffer(bytes: [1])))
    }
    let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 0), methods: [slow])
    return (server, try await server.start().port!, started)
  }

  func slowCall(_ channel: GRPCChannel) async throws -> GRPCStatus {
    try await channel.withCall(
      path: "/test/Slow",
      request: RawMessage.self,
      response: RawMessage.self
    ) { call in
      await call.finish()
      do {
        for try await _ in call.responses {}
      } catch {}
      return await call.status
    }
  }

  @Test("graceful shutdown: calls in flight finish within the grace period; new ones are refused")
  func gracefulShutdown() async throws {
    let (server, port, started) = try await startSlowServer(delay: .milliseconds(300))
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    async let inFlight = slowCall(channel)
    #expect(await eventually { started.withLockedValue { $0 } == 1 })
    await server.shutdown(gracePeriod: .seconds(5))
    #expect(try await inFlight == .ok)
    #expect(server.connectionCount == 0)
    let after = try? await slowCall(channel)
    #expect(after == nil || after?.code == .unavailable)
    await channel.close()
  }

  @Test("a connection lost mid-call fails the call with UNAVAILABLE at once")
  func connectionLost() async throws {
    let (server, port, started) = try await startSlowServer(delay: .seconds(30))
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    async let inFlight = slowCall(channel)
    #expect(await eventually { started.withLockedValue { $0 } == 1 })
    let start = NIODeadline.now()
    await server.shutdown(gracePeriod: .zero)
    let status = try await inFlight
    #expect(status.code == .unavailable)
    #expect(NIODeadline.now() - start < .seconds(20))  // a bound on hanging, not on speed
    await channel.close()
  }

  @Test("the server's SETTINGS_MAX_CONCURRENT_STREAMS holds; the client queues the rest")
  func maxConcurrentStreams() async throws {
    let active = NIOLockedValueBox((now: 0, peak: 0))
    let hold = GRPCServer.Method.async(
      "/test/Hold",
      requestType: RawMessage.self,
      responseType: RawMessage.self
    ) { call in
      active.withLockedValue {
        $0.now += 1; $0.peak = max($0.peak, $0.now)
      }
      try await Task.sleep(nanoseconds: 50_000_000)
      active.withLockedValue { $0.now -= 1 }
      for try await message in call.requests { try await call.send(message) }
    }
    let server = GRPCServer(
      configuration: .init(
        host: "127.0.0.1",
        port: 0,
        connection: GRPCConnectionConfiguration(maxConcurrentStreams: 4)
      ),
      methods: [hold]
    )
    let port = try await server.start().port!
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    try await withThrowingTaskGroup(of: GRPCStatus.self) { group in
      for index in 0..<20 {
        group.addTask {
          try await channel.withCall(
            path: "/test/Hold",
            request: RawMessage.self,
            response: RawMessage.self
          ) { call in
            try await call.send(RawMessage(ByteBuffer(bytes: [UInt8(index)])))
            await call.finish()
            for try await _ in call.responses {}
            return await call.status
          }
        }
      }
      for try await status in group { #expect(status == .ok) }
    }
    #expect(active.withLockedValue { $0.peak } <= 4)
    #expect(active.withLockedValue { $0.peak } >= 2)
    #expect(server.connectionCount == 1)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a pool of connections spreads calls over all of them")
  func pool() async throws {
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port, connections: 3)
    for _ in 0..<9 { #expect(try await echo(channel) == .ok) }
    #expect(server.connectionCount == 3)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a writer faster than its reader is held back by flow control, then completes")
  func backpressure() async throws {
    let gate = NIOLockedValueBox(false)
    let received = NIOLockedValueBox(0)
    let slowReader = GRPCServer.Method.async(
      "/test/SlowReader",
      requestType: RawMessage.self,
      responseType: RawMessage.self
    ) { call in
      while !gate.withLockedValue({ $0 }) { try await Task.sleep(nanoseconds: 10_000_000) }
      for try await _ in call.requests { received.withLockedValue { $0 += 1 } }
    }
    let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 0), methods: [slowReader])
    let port = try await server.start().port!
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let sent = NIOLockedValueBox(0)
    let status = try await channel.withCall(
      path: "/test/SlowReader",
      request: RawMessage.self,
      response: RawMessage.self
    ) { call in
      let writer = Task {
        for _ in 0..<200 {
          try await call.send(RawMessage(ByteBuffer(repeating: 1, count: 32 * 1024)))
          sent.withLockedValue { $0 += 1 }
        }
        await call.finish()
      }
      // 200 × 32 KiB = 6.4 MiB cannot all be in flight: the server's stream window (1 MiB), its
      // 16-message buffer and the client's 64 KiB queue stop the writer.
      let held = await settled { sent.withLockedValue { $0 } }
      #expect(held < 200, "the writer was never held back")
      gate.withLockedValue { $0 = true }
      try await writer.value
      for try await _ in call.responses {}
      return await call.status
    }
    #expect(status == .ok)
    #expect(sent.withLockedValue { $0 } == 200)
    #expect(received.withLockedValue { $0 } == 200)
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
