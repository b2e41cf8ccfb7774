public import HarkGRPCCore
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import NIOSSL

/// Client settings: the HTTP/2 connection, keepalive and the request headers of every call.
public struct GRPCClientConfiguration: Sendable {
  /// The HTTP/2 settings of each connection.
  public var connection: GRPCConnectionConfiguration
  /// How long a connection with calls open may go without a frame from the server before it
  /// sends a keepalive PING (gRFC A8); nil sends none. A server that stops answering (a dead
  /// peer, a silent network) fails the calls within this plus ``keepaliveTimeout``, with
  /// UNAVAILABLE. The default, 60 s, is above what `hark serve` permits (30 s) but below what a
  /// grpc-core server does by default (one ping per 5 minutes without data; it answers faster
  /// pings with GOAWAY `too_many_pings`, after which a ``GRPCChannel`` doubles the interval).
  public var keepaliveInterval: TimeAmount?
  /// How long a PING may go unanswered before the connection is declared dead.
  public var keepaliveTimeout: TimeAmount
  /// The floor of `keepaliveInterval` (gRPC's 10 seconds).
  public var keepaliveMinimumInterval: TimeAmount
  /// The `:authority` of requests; by default `host:port`.
  public var authority: String?
  /// The `user-agent` of requests.
  public var userAgent: String
  /// How long to wait for a TCP connection.
  public var connectTimeout: TimeAmount
  /// TLS settings; nil speaks HTTP/2 in plaintext (h2c with prior knowledge).
  public var tls: GRPCClientTLS?

  /// A configuration.
  public init(
    connection: GRPCConnectionConfiguration = GRPCConnectionConfiguration(),
    keepaliveInterval: TimeAmount? = .seconds(60),
    keepaliveTimeout: TimeAmount = .seconds(20),
    keepaliveMinimumInterval: TimeAmount = ClientKeepalive.minimumInterval,
    authority: String? = nil,
    userAgent: String = "grpc-swift-hark/0.1",
    connectTimeout: TimeAmount = .seconds(10),
    tls: GRPCClientTLS? = nil
  ) {
    self.connection = connection
    self.keepaliveInterval = keepaliveInterval
    self.keepaliveTimeout = keepaliveTimeout
    self.keepaliveMinimumInterval = keepaliveMinimumInterval
    self.authority = authority
    self.userAgent = userAgent
    self.connectTimeout = connectTimeout
    self.tls = tls
  }

  /// The name verified in the server's certificate when connecting to `host`: the TLS
  /// ``GRPCClientTLS/serverName``, else the host of ``authority``, else `host`.
  func serverName(host: String) -> String {
    if let name = tls?.serverName { return name }
    guard let authority else { return host }
    if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
      return String(authority[authority.index(after: authority.startIndex)..<end])
    }
    if let colon = authority.lastIndex(of: ":"), authority.firstIndex(of: ":") == colon {
      return String(authority[..<colon])
    }
    return authority
  }
}

/// One HTTP/2 connection to a gRPC server, carrying many calls.
///
/// Calls start on the connection's event loop with ``makeStream(path:metadata:timeout:handler:)``;
/// ``GRPCChannel`` spreads calls over a pool of these and replaces those that go away.
public final class GRPCClientConnection: Sendable {
  /// The connection's event loop.
  public let eventLoop: any EventLoop
  let channel: any Channel
  private let handler: NIOLoopBound<GRPCConnectionHandler>
  private let configuration: GRPCClientConfiguration
  private let authority: String
  private let state: NIOLockedValueBox<State>

  private struct State {
    var goingAway = false
    var closed = false
    var openStreams = 0
  }

  /// Whether new calls may start here (no GOAWAY received, not closed).
  public var isAvailable: Bool {
    state.withLockedValue { !$0.goingAway && !$0.closed }
  }

  /// The number of calls open on this connection.
  public var openStreamCount: Int { state.withLockedValue { $0.openStreams } }

  /// A future that completes when the connection is closed.
  public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

  private init(
    channel: any Channel,
    handler: GRPCConnectionHandler,
    configuration: GRPCClientConfiguration,
    authority: String
  ) {
    self.channel = channel
    self.eventLoop = channel.eventLoop
    self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    self.configuration = configuration
    self.authority = authority
    self.state = NIOLockedValueBox(State())
  }

  /// Connects to `host:port`.
  ///
  /// - Parameter tlsContext: The SSL context of ``GRPCClientConfiguration/tls``, if made
  ///   already (a channel makes it once for all its connections); nil makes it here.
  public static func connect(
    host: String,
    port: Int,
    configuration: GRPCClientConfiguration = GRPCClientConfiguration(),
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    tlsContext: NIOSSLContext? = nil,
    onTooManyPings: (@Sendable () -> Void)? = nil
  ) async throws -> GRPCClientConnection {
    let authority =
      configuration.authority ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
    let sslContext: NIOSSLContext?
    do {
      sslContext = try tlsContext ?? configuration.tls?.makeContext()
    } catch {
      throw GRPCStatus.lasting(.unavailable, "TLS: \(error)")
    }
    let serverName = configuration.serverName(host: host)
    let parts = ConnectionParts()
    let bootstrap = ClientBootstrap(group: group)
      .connectTimeout(configuration.connectTimeout)
      .channelOption(.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          if let sslContext {
            let (tls, observer) = try ClientTLSObserver.makeHandlers(
              context: sslContext,
              serverName: serverName
            )
            try channel.pipeline.syncOperations.addHandlers(tls, observer)
            parts.observer = observer
          }
          let handler = try GRPCConnectionHandler(
            role: .client,
            configuration: configuration.connection,
            eventLoop: channel.eventLoop
          )
          try channel.pipeline.syncOperations.addHandler(handler)
          parts.handler = handler
        }
      }
    let channel: any Channel
    do {
      channel = try await bootstrap.connect(host: host, port: port).get()
    } catch {
      throw GRPCConnectError(host: host, port: port, underlying: error)
    }
    let ready = channel.eventLoop.makePromise(of: GRPCClientConnection.self)
    channel.eventLoop.execute {
      do {
        // Kept from the initializer: a connection refused at once (a failed TLS handshake) has
        // left the pipeline by now.
        guard let handler = parts.handler else {
          throw GRPCStatus(.unavailable, "the connection to \(host):\(port) has no HTTP/2 handler")
        }
        let connection = GRPCClientConnection(
          channel: channel,
          handler: handler,
          configuration: configuration,
          authority: authority
        )
        connection.setUp(onTooManyPings: onTooManyPings)
        // The connection is ready once the server's SETTINGS arrive: until then its limit on
        // concurrent streams is unknown, and streams past it would be refused.
        let observer = parts.observer
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let tls = sslContext != nil
        // Why the connection closed before it could be used, as precisely as known: a TLS
        // failure or the wrong protocol is not cured by trying again.
        func closedStatus() -> GRPCStatus {
          if let failure = observer?.failure {
            return .lasting(.unavailable, "TLS with \(target) failed: \(failure)")
          }
          if let hint = handler.plaintextHint {
            return .lasting(.unavailable, "\(target): \(hint)")
          }
          return GRPCStatus(
            .unavailable,
            "the connection to \(target) closed before the server's HTTP/2 SETTINGS"
              + (tls ? "" : " (if the server speaks TLS, drop --plaintext)")
          )
        }
        // The server's SETTINGS arrived: usable, unless a GOAWAY came with them (a server
        // refusing the connection, such as a TLS server answering an h2c client).
        func settle() {
          if let refusal = handler.receivedGoAway {
            // A server going away (NO_ERROR) may take the next connection; one that refuses
            // with an error (TLS required, say) will refuse it too.
            let reason = "\(target) refused the connection: \(refusal)"
            ready.fail(
              refusal.hasPrefix("GOAWAY NO_ERROR")
                ? GRPCStatus(.unavailable, reason) : .lasting(.unavailable, reason)
            )
          } else if handler.isConnectionClosed {
            ready.fail(closedStatus())
          } else {
            ready.succeed(connection)
          }
        }
        if handler.receivedSettings {
          settle()
        } else {
          // SETTINGS and GOAWAY may come in one read: decide once the read is done.
          handler.onSettings = { channel.eventLoop.assumeIsolated().execute { settle() } }
          channel.closeFuture.assumeIsolated().whenComplete { _ in
            ready.fail(closedStatus())
          }
          channel.eventLoop.scheduleTask(in: configuration.connectTimeout) {
            ready.fail(
              GRPCStatus(
                .unavailable,
                "no HTTP/2 SETTINGS from \(authority) within \(configuration.connectTimeout)"
              )
            )
          }
        }
      } catch {
        ready.fail(error)
      }
    }
    do {
      return try await ready.futureResult.get()
    } catch {
      try? await channel.close()
      throw error
    }
  }

  private func setUp(onTooManyPings: (@Sendable () -> Void)?) {
    let handler = self.handler.value
    // A GOAWAY may have come before this set-up ran (with the server's SETTINGS).
    if handler.receivedGoAway != nil { state.withLockedValue { $0.goingAway = true } }
    handler.onGoAway = { [weak self] _, errorCode, debug in
      self?.state.withLockedValue { $0.goingAway = true }
      // A8: the server found the keepalive pings too frequent.
      if errorCode == .enhanceYourCalm && debug == ServerPingPolicy.tooManyPingsDebugData {
        onTooManyPings?()
      }
    }
    handler.onClose = { [weak self] in
      self?.state.withLockedValue { $0.closed = true }
    }
    if let interval = configuration.keepaliveInterval {
      let keepalive = ClientKeepaliveBox(
        ClientKeepalive(
          interval: interval,
          timeout: configuration.keepaliveTimeout,
          connectedAt: .now(),
          minimumInterval: configuration.keepaliveMinimumInterval
        )
      )
      handler.onRead = { keepalive.value.readSomething(now: NIODeadline.now()) }
      handler.onPing = { payload, isAck in
        if isAck { keepalive.value.receivedPingAck(payload: payload, now: NIODeadline.now()) }
      }
      scheduleKeepalive(keepalive, at: keepalive.value.nextTick(after: NIODeadline.now()))
    }
  }

  private func scheduleKeepalive(_ keepalive: ClientKeepaliveBox, at deadline: NIODeadline) {
    eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
      guard let self else { return }
      let handler = self.handler.value
      guard !handler.isConnectionClosed else { return }
      switch keepalive.value.tick(now: NIODeadline.now(), openStreams: handler.streams.count) {
      case .none:
        break
      case .sendPing(let payload):
        try? handler.session.ping(payload: payload)
        handler.scheduleFlush()
      case .connectionDead:
        // A8: calls on a connection whose PING went unanswered fail with UNAVAILABLE.
        handler.close(
          reason: "keepalive PING not acknowledged within \(self.configuration.keepaliveTimeout)"
        )
        return
      }
      self.scheduleKeepalive(keepalive, at: keepalive.value.nextTick(after: NIODeadline.now()))
    }
  }

  /// Starts a call on the event loop; the handler receives its events there.
  ///
  /// If the connection cannot take the call (it closed or received GOAWAY), the handler is told
  /// at once with UNAVAILABLE.
  public func makeStream(
    path: String,
    metadata: GRPCMetadata = GRPCMetadata(),
    timeout: TimeAmount? = nil,
    handler streamHandler: any GRPCClientStreamHandler
  ) -> GRPCClientStream {
    eventLoop.preconditionInEventLoop()
    let handler = self.handler.value
    let stream = GRPCClientStream(
      connection: handler,
      owner: self,
      maxReceiveMessageSize: configuration.connection.maxReceiveMessageSize,
      handler: streamHandler
    )
    state.withLockedValue { $0.openStreams += 1 }
    if !isAvailable || handler.isConnectionClosed {
      stream.fail(GRPCStatus(.unavailable, "the connection is closed or going away"))
      return stream
    }
    let headers = GRPCClientStreamStateMachine.requestHeaders(
      path: path,
      authority: authority,
      timeout: timeout.map { GRPCTimeout($0) },
      userAgent: configuration.userAgent,
      metadata: metadata
    )
    stream.start(headers: headers, timeout: timeout)
    return stream
  }

  /// One of this connection's calls ended (its stream tells it once).
  func streamEnded() {
    state.withLockedValue { $0.openStreams -= 1 }
  }

  /// Closes the connection; its open calls end with UNAVAILABLE.
  public func close() async {
    let handler = self.handler
    try? await eventLoop.submit { handler.value.close(reason: "the client closed the connection") }
      .get()
    try? await channel.closeFuture.get()
  }
}

/// The handlers a new connection's initializer made, for the code that runs after it (both on
/// the connection's event loop).
private final class ConnectionParts: @unchecked Sendable {
  var handler: GRPCConnectionHandler?
  var observer: ClientTLSObserver?
}

/// Keepalive state shared by the timer and the connection's callbacks, all on one event loop.
private final class ClientKeepaliveBox {
  var value: ClientKeepalive
  init(_ value: ClientKeepalive) { self.value = value }
}

/// A connection that could not be made: the address, and why in a few words (the socket's
/// error, a name that does not resolve, a timeout), not the event loop's whole error tree.
public struct GRPCConnectError: Error, CustomStringConvertible {
  /// The host connected to.
  public var host: String
  /// The port connected to.
  public var port: Int
  /// The error of the connection attempt, as SwiftNIO reported it.
  public var underlying: any Error

  public var description: String {
    "cannot connect to \(host):\(port): \(Self.reason(underlying))"
  }

  /// What went wrong, in a few words.
  static func reason(_ error: any Error) -> String {
    switch error {
    case let error as NIOConnectionError:
      if let first = error.connectionErrors.first { return reason(first.error) }
      if error.dnsAError != nil || error.dnsAAAAError != nil {
        return "the name does not resolve"
      }
      return "no address to connect to"
    case let error as IOError:
      return String(cString: strerror(error.errnoCode)).lowercased()
    case ChannelError.connectTimeout(let timeout):
      return "no answer within \(timeout.nanoseconds / 1_000_000) ms"
    default:
      return "\(error)"
    }
  }
}
