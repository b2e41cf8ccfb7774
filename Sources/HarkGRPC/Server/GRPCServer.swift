public import HarkGRPCCore
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import NIOSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A gRPC server over HTTP/2 (h2c with prior knowledge) on nghttp2 and SwiftNIO sockets.
///
/// Methods are served by handlers that run on each connection's event loop
/// (``GRPCServerStreamHandler``), or by async closures (``GRPCServer/Method/async(_:requestType:responseType:_:)``).
///
/// ```swift
/// let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 0), methods: [...])
/// let address = try await server.start()
/// …
/// await server.shutdown(gracePeriod: .seconds(5))
/// ```
public final class GRPCServer: Sendable {
  /// Where and how the server listens.
  public struct Configuration: Sendable {
    /// The address to bind, e.g. `127.0.0.1`, `::1` or `0.0.0.0`.
    public var host: String
    /// The port; 0 picks a free one (see ``GRPCServer/localAddress``).
    public var port: Int
    /// The HTTP/2 settings of each connection.
    public var connection: GRPCConnectionConfiguration
    /// How often a client may ping (gRPC's keepalive enforcement).
    public var pingPolicy: ServerPingPolicy
    /// The listen backlog.
    public var backlog: Int32
    /// Handshake and idle timeouts, and the reset and header-list limits of each connection.
    public var connectionLimits: ServerConnectionPolicy.Limits
    /// Connections open at once; one more is closed as soon as it is accepted. Nil: 90 % of the
    /// process's file-descriptor limit (`RLIMIT_NOFILE`, at least 64 below it), so that the
    /// server never runs out of descriptors and can always accept, log and refuse.
    public var maxConnections: Int?
    /// Connections open at once from one IP address; nil for no limit (the default, since a
    /// proxy such as nginx opens one upstream connection per stream).
    public var maxConnectionsPerPeer: Int?
    /// How long a stream's responses may wait untaken by the client before the stream is reset
    /// (and, if the socket itself takes nothing that long, the connection closed); nil never.
    public var writeStallTimeout: TimeAmount?
    /// Where the server logs: a warning for each connection closed abnormally and each limit a
    /// peer exceeds, at most ``warningsPerSecond`` a second (the rest are counted and summed up).
    public var logger: Logger
    /// The most warnings logged a second, so that an attack cannot flood the log.
    public var warningsPerSecond: Int
    /// TLS: the certificate and key, and the client authorities for mTLS; nil serves HTTP/2 in
    /// plaintext (h2c with prior knowledge). The TLS handshake must end within
    /// ``ServerConnectionPolicy/Limits/handshakeTimeout`` with the HTTP/2 preface.
    public var tls: GRPCServerTLS?

    /// A configuration for `host` and `port`.
    public init(
      host: String,
      port: Int,
      connection: GRPCConnectionConfiguration = GRPCConnectionConfiguration(),
      pingPolicy: ServerPingPolicy = ServerPingPolicy(),
      backlog: Int32 = 4096,
      connectionLimits: ServerConnectionPolicy.Limits = ServerConnectionPolicy.Limits(),
      maxConnections: Int? = nil,
      maxConnectionsPerPeer: Int? = nil,
      writeStallTimeout: TimeAmount? = .seconds(30),
      logger: Logger = Logger(label: "hark.grpc"),
      warningsPerSecond: Int = 10,
      tls: GRPCServerTLS? = nil
    ) {
      self.host = host
      self.port = port
      self.connection = connection
      self.pingPolicy = pingPolicy
      self.backlog = backlog
      self.connectionLimits = connectionLimits
      self.maxConnections = maxConnections
      self.maxConnectionsPerPeer = maxConnectionsPerPeer
      self.writeStallTimeout = writeStallTimeout
      self.logger = logger
      self.warningsPerSecond = warningsPerSecond
      self.tls = tls
    }
  }

  /// A method the server serves: its path and how to make a handler for each call.
  public struct Method: Sendable {
    /// The method's path, e.g. `/nuance.asr.v1.Recognizer/Recognize`.
    public var path: String
    /// Makes the handler of a new call, on the call's event loop.
    public var makeHandler: @Sendable (GRPCServerStream) -> any GRPCServerStreamHandler

    /// A method served by handlers on the event loop.
    public init(
      path: String,
      makeHandler: @escaping @Sendable (GRPCServerStream) -> any GRPCServerStreamHandler
    ) {
      self.path = path
      self.makeHandler = makeHandler
    }
  }

  public let configuration: Configuration
  private let methods: [String: Method]
  private let group: any EventLoopGroup
  private let state = NIOLockedValueBox(State())
  /// Completed when a shutdown has finished.
  private let stopped: EventLoopPromise<Void>

  private struct State {
    var listener: (any Channel)?
    var connections: [ObjectIdentifier: ServerConnection] = [:]
    /// Open connections by peer IP address (only while a per-peer limit is set).
    var connectionsPerPeer: [String: Int] = [:]
    var shuttingDown = false
    var limitCounts = GRPCServerLimitCounts()
    /// The SSL context new connections use (replaced by ``GRPCServer/reloadTLS()``).
    var sslContext: NIOSSLContext?
    /// TLS handshakes in progress.
    var handshakes = 0
    /// TLS handshakes that failed, since the server started.
    var failedHandshakes = 0
  }

  /// The effective connection limit.
  private let maxConnections: Int
  private let warnings: RateLimitedLogger

  /// A server of `methods`, on `group` (by default NIO's shared multi-threaded group).
  public init(
    configuration: Configuration,
    methods: [Method],
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    self.configuration = configuration
    self.methods = Dictionary(methods.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
    self.group = group
    self.stopped = group.next().makePromise()
    self.maxConnections = configuration.maxConnections ?? Self.defaultMaxConnections()
    self.warnings = RateLimitedLogger(
      logger: configuration.logger,
      perSecond: configuration.warningsPerSecond
    )
  }

  deinit {
    // A server that never started (its address in use, its certificate unreadable) never
    // completes this promise otherwise.
    stopped.succeed()
  }

  /// 90 % of the soft file-descriptor limit (at least 64 fewer): descriptors stay for the
  /// listener, the event loops, the engines and whatever else the process opens.
  static func defaultMaxConnections() -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
    let soft = min(Int(clamping: limit.rlim_cur), 1 << 20)  // RLIM_INFINITY is the largest value
    // A process uses a few dozen descriptors of its own (event loops, pipes, model files).
    return max(soft - max(soft / 10, 64), 16)
  }

  /// How often each limit was exceeded since the server started.
  public var limitCounts: GRPCServerLimitCounts {
    state.withLockedValue { $0.limitCounts }
  }

  /// The server's connection handlers and streams alive in the process (freed ones are not
  /// counted): once every client has gone, both are zero, else something holds them.
  public let liveObjects = LiveObjects()

  /// The connection limit in force (``Configuration/maxConnections`` or its default).
  public var connectionLimit: Int { maxConnections }

  /// Starts the server if it is not started, then runs until ``shutdown(gracePeriod:)``
  /// finishes. Cancelling the calling task shuts the server down gracefully.
  public func serve(gracePeriod: TimeAmount = .seconds(5)) async throws {
    if localAddress == nil { try await start() }
    try await withTaskCancellationHandler {
      try await stopped.futureResult.get()
    } onCancel: {
      Task { await self.shutdown(gracePeriod: gracePeriod) }
    }
  }

  /// Binds and starts accepting connections; returns the bound address.
  ///
  /// - Throws: ``GRPCTLSError`` when the TLS files cannot be used; SwiftNIO's error when the
  ///   address cannot be bound.
  @discardableResult
  public func start() async throws -> SocketAddress {
    if let tls = configuration.tls {
      let context = try tls.makeContext()
      state.withLockedValue { $0.sslContext = context }
    }
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: configuration.backlog)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      .childChannelInitializer { [self] channel in
        channel.eventLoop.makeCompletedFuture {
          try self.setUp(channel)
        }
      }
    let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
    state.withLockedValue { $0.listener = channel }
    return channel.localAddress!
  }

  /// Reads the TLS certificate, key and client authorities again: connections accepted from now
  /// on use them, open ones go on with theirs. On an error the files in use stay in use.
  ///
  /// - Throws: ``GRPCTLSError`` naming the file that cannot be used.
  public func reloadTLS() throws(GRPCTLSError) {
    guard let tls = configuration.tls else { return }
    let context = try tls.makeContext()
    state.withLockedValue { $0.sslContext = context }
  }

  /// TLS handshakes that failed (or timed out) since the server started.
  public var failedTLSHandshakes: Int {
    state.withLockedValue { $0.failedHandshakes }
  }

  /// The address the server is bound to, once started.
  public var localAddress: SocketAddress? {
    state.withLockedValue { $0.listener?.localAddress }
  }

  /// The number of open connections.
  public var connectionCount: Int {
    state.withLockedValue { $0.connections.count }
  }

  /// Counts, and logs at most ``Configuration/warningsPerSecond`` a second, a limit a peer
  /// exceeded.
  private func exceeded(_ error: GRPCLimitExceeded, peer: String) {
    state.withLockedValue { $0.limitCounts.record(error.limit) }
    warnings.warning(
      "Connection limit exceeded",
      metadata: ["peer": "\(peer)", "limit": "\(error.limit)", "reason": "\(error.message)"]
    )
  }

  /// Serves a connection on `channel`, one the server did not accept itself: for fuzzers and
  /// tests that drive the transport through an `EmbeddedChannel`, byte by byte, with no socket.
  /// Call it on the channel's event loop.
  @_spi(Testing)
  public func serve(channel: any Channel) throws {
    try setUp(channel)
  }

  private func setUp(_ channel: any Channel) throws {
    let peer = Self.describe(channel.remoteAddress)
    let peerIP = channel.remoteAddress?.ipAddress ?? peer
    let perPeerLimit = configuration.maxConnectionsPerPeer
    let maxHandshakes = configuration.tls?.maxHandshakesInProgress ?? .max
    let admission: GRPCLimitExceeded? = state.withLockedValue { state in
      if state.sslContext != nil, state.handshakes >= maxHandshakes {
        return GRPCLimitExceeded(
          .tlsHandshakes,
          "\(state.handshakes) TLS handshakes in progress, the server's limit"
        )
      }
      if state.connections.count >= maxConnections {
        return GRPCLimitExceeded(
          .connections,
          "\(state.connections.count) connections open, the server's limit"
        )
      }
      if let perPeerLimit, state.connectionsPerPeer[peerIP, default: 0] >= perPeerLimit {
        return GRPCLimitExceeded(
          .connectionsPerPeer,
          "\(perPeerLimit) connections open from \(peerIP), the limit per address"
        )
      }
      return nil
    }
    if let admission {
      // Accepted only to be closed at once: the descriptor goes back, the client sees a reset.
      exceeded(admission, peer: peer)
      channel.close(promise: nil)
      return
    }
    let handler = try GRPCConnectionHandler(
      role: .server,
      configuration: configuration.connection,
      eventLoop: channel.eventLoop,
      serverLimits: ServerConnectionLimits(
        policy: configuration.connectionLimits,
        writeStallTimeout: configuration.writeStallTimeout
      ),
      liveObjects: liveObjects
    )
    handler.onLimitExceeded = { [weak self] error in self?.exceeded(error, peer: peer) }
    if let sslContext = state.withLockedValue({ $0.sslContext }) {
      try addTLS(to: channel, context: sslContext, peer: peer)
    }
    let connection = ServerConnection(channel: channel, handler: handler)
    let methods = self.methods
    let maxReceiveMessageSize = configuration.connection.maxReceiveMessageSize
    handler.acceptStream = { connection, streamID, headers, endStream in
      GRPCServer.accept(
        streamID: streamID,
        headers: headers,
        endStream: endStream,
        connection: connection,
        methods: methods,
        maxReceiveMessageSize: maxReceiveMessageSize
      )
    }
    var pingPolicy = configuration.pingPolicy
    handler.onSendingHeadersOrData = { pingPolicy.sentHeadersOrData() }
    handler.onPing = { [unowned handler] _, isAck in
      guard !isAck else { return }
      let verdict = pingPolicy.receivedPing(
        at: handler.eventLoop.now,
        activeStreams: handler.streams.count
      )
      if verdict == .tooManyPings {
        // gRPC's keepalive enforcement (A8): GOAWAY ENHANCE_YOUR_CALM "too_many_pings", close.
        handler.onLimitExceeded?(
          GRPCLimitExceeded(.flood, "too many pings (gRPC keepalive enforcement)")
        )
        try? handler.session.goAway(
          lastStreamID: handler.session.lastProcessedStreamID,
          errorCode: .enhanceYourCalm,
          debugData: ServerPingPolicy.tooManyPingsDebugData
        )
        handler.close(reason: "client sent too many pings")
      }
    }
    let id = ObjectIdentifier(connection)
    let countsPeer = perPeerLimit != nil
    handler.onClose = { [weak self] in
      self?.state.withLockedValue { state in
        state.connections.removeValue(forKey: id)
        if countsPeer {
          let left = state.connectionsPerPeer[peerIP, default: 1] - 1
          state.connectionsPerPeer[peerIP] = left > 0 ? left : nil
        }
      }
    }
    let shuttingDown = state.withLockedValue { state in
      state.connections[id] = connection
      if countsPeer { state.connectionsPerPeer[peerIP, default: 0] += 1 }
      return state.shuttingDown
    }
    try channel.pipeline.syncOperations.addHandler(handler)
    if shuttingDown { connection.goAway() }
  }

  /// The TLS handlers of a new connection, before the HTTP/2 handler: plaintext is answered
  /// and closed, the handshake counted while in progress and timed.
  private func addTLS(to channel: any Channel, context: NIOSSLContext, peer: String) throws {
    state.withLockedValue { $0.handshakes += 1 }
    let observer = ServerTLSObserver(
      timeout: configuration.connectionLimits.handshakeTimeout,
      onFinished: { [weak self] end in
        guard let self else { return }
        self.state.withLockedValue { state in
          state.handshakes -= 1
          if end != .completed { state.failedHandshakes += 1 }
        }
        if case .failed(let reason) = end {
          self.warnings.warning(
            "TLS handshake failed",
            metadata: ["peer": "\(peer)", "reason": "\(reason)"]
          )
        }
      },
      onLimit: { [weak self] error in self?.exceeded(error, peer: peer) }
    )
    let detector = PlaintextOnTLSPortDetector { [weak self, weak observer] what in
      observer?.reportedElsewhere = true
      self?.exceeded(
        GRPCLimitExceeded(.protocolError, "\(what): \(PlaintextOnTLSPortDetector.message)"),
        peer: peer
      )
    }
    try channel.pipeline.syncOperations.addHandlers(
      detector,
      NIOSSLServerHandler(context: context),
      observer
    )
  }

  /// `127.0.0.1:50312`, `[::1]:50312`: a peer for logs.
  static func describe(_ address: SocketAddress?) -> String {
    guard let address, let ip = address.ipAddress else { return "unknown peer" }
    guard let port = address.port else { return ip }
    return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
  }

  private static func accept(
    streamID: Int32,
    headers: [HTTPHeaderField],
    endStream: Bool,
    connection: GRPCConnectionHandler,
    methods: [String: Method],
    maxReceiveMessageSize: Int
  ) -> (any ConnectionStream)? {
    var machine = GRPCServerStreamStateMachine(maxReceiveMessageSize: maxReceiveMessageSize)
    switch machine.receive(headers: headers, endStream: endStream) {
    case .accept(let request):
      guard let method = methods[request.path] else {
        // H36: a method the server does not know is UNIMPLEMENTED.
        let status = GRPCStatus(.unimplemented, "method \(request.path) is not implemented")
        if case .sendTrailersOnly(let fields, let reset) = machine.finish(status: status) {
          connection.respond(streamID: streamID, fields: fields, reset: reset)
        }
        return nil
      }
      let stream = GRPCServerStream(
        streamID: streamID,
        request: request,
        machine: machine,
        connection: connection
      )
      stream.attach(method.makeHandler(stream), requestEnded: endStream)
      return stream
    case .rejectHTTP(let status, let extra):
      connection.respond(
        streamID: streamID,
        fields: [HTTPHeaderField(":status", String(status))] + extra,
        reset: !endStream
      )
      return nil
    case .rejectTrailersOnly(_, let fields):
      connection.respond(streamID: streamID, fields: fields, reset: !endStream)
      return nil
    case .protocolViolation, .requestEnded, .ignore:
      connection.session.resetStream(streamID, errorCode: .protocolError)
      return nil
    }
  }

  /// Sends GOAWAY on every open connection and keeps accepting new ones: clients finish their
  /// calls in flight and open new connections for new calls (to rebalance them, for one).
  public func drainConnections() {
    for connection in state.withLockedValue({ Array($0.connections.values) }) {
      connection.goAway()
    }
  }

  /// Begins a drain: stops accepting connections (the port is free at once for a replacement to
  /// bind) and sends GOAWAY on each, so that calls in flight go on while new ones are refused
  /// (REFUSED_STREAM, which clients may retry elsewhere). A connection closes once its calls
  /// have ended; ``shutdown(gracePeriod:)`` ends what is left.
  public func beginDrain() async {
    for connection in await stopAccepting() { connection.drain() }
  }

  /// Closes the listener (once) and returns the open connections.
  private func stopAccepting() async -> [ServerConnection] {
    let (listener, connections) = state.withLockedValue { state in
      state.shuttingDown = true
      let listener = state.listener
      state.listener = nil
      return (listener, Array(state.connections.values))
    }
    try? await listener?.close()
    return connections
  }

  /// Stops accepting connections and sends GOAWAY on each: calls in flight may finish within
  /// `gracePeriod`; then every connection closes (its remaining calls are cancelled).
  public func shutdown(gracePeriod: TimeAmount = .seconds(5)) async {
    for connection in await stopAccepting() { connection.goAway() }
    let deadline = NIODeadline.now() + gracePeriod
    while NIODeadline.now() < deadline {
      if state.withLockedValue({ $0.connections.isEmpty }) {
        stopped.succeed()
        return
      }
      try? await Task.sleep(nanoseconds: 10_000_000)
    }
    for connection in state.withLockedValue({ Array($0.connections.values) }) {
      connection.close()
    }
    stopped.succeed()
  }
}

/// A server connection as the server keeps track of it.
final class ServerConnection: Sendable {
  let channel: any Channel
  private let handler: NIOLoopBound<GRPCConnectionHandler>

  init(channel: any Channel, handler: GRPCConnectionHandler) {
    self.channel = channel
    self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
  }

  /// Sends GOAWAY: no new streams; those in flight continue.
  func goAway() {
    channel.eventLoop.execute {
      let handler = self.handler.value
      try? handler.session.goAway(
        lastStreamID: handler.session.lastProcessedStreamID,
        errorCode: .noError
      )
      handler.flush()
      if handler.streams.isEmpty { handler.close(reason: "server shutting down") }
    }
  }

  /// Drains: the shutdown notice; new calls refused, those open go on, then the final GOAWAY
  /// and close.
  func drain() {
    channel.eventLoop.execute { self.handler.value.beginDrain() }
  }

  func close() {
    channel.eventLoop.execute {
      self.handler.value.close(reason: "server shut down")
    }
  }
}
