public import HarkGRPC
public import HarkGRPCCore
public import HarkProto
public import HarkRecognizer
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// A recognizer: serves `/nuance.asr.v1.Recognizer/Recognize` over Hark's gRPC server, one
/// ``ServerSessionStateMachine`` per RPC, with a pool of engines.
///
/// ```swift
/// let server = RecognizerServer(configuration: .init(host: "127.0.0.1", port: 0, recognizers: 8)) {
///   DTMFEngine()
/// }
/// let address = try await server.start()
/// …
/// await server.shutdown()   // 512 to every recognition in flight, then GOAWAY
/// ```
public final class RecognizerServer: Sendable {
  /// The path of the Recognize method.
  public static let recognizePath = "/nuance.asr.v1.Recognizer/Recognize"

  /// How the recognizer runs.
  public struct Configuration: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port; 0 picks a free one.
    public var port: Int
    /// Engine instances: recognitions at once; one more is 409.
    public var recognizers: Int
    /// No audio message for this long during a recognition is 408. The clock stops while the
    /// server itself withholds the client's flow-control window (its engine is behind, or the
    /// client does not read its responses).
    public var idleTimeout: TimeAmount
    /// No init message for this long after a Recognize stream opens is 408; nil waits forever.
    public var initTimeout: TimeAmount? = .seconds(10)
    /// Audio a recognition may have queued for an engine that runs on a worker thread (sphinx)
    /// before the server stops acknowledging the client's data; it acknowledges again once half
    /// is decoded. At most this plus the stream's flow-control window
    /// (``GRPCConnectionConfiguration/initialStreamWindowSize``) is ever buffered.
    public var maxBufferedAudio: TimeAmount = .seconds(1)
    /// New recognitions per second; more are 429. Nil means no limit.
    public var maxSessionsPerSecond: Double?
    /// Checks each call's bearer token and the topic its init asks for (401, 403); nil lets
    /// every call in, unless ``authorize`` refuses it.
    public var authenticator: BearerAuthenticator?
    /// Decides whether a recognition may start (the `authorization` metadata, the topic), after
    /// ``authenticator``: a status to refuse it with (401, 403), or nil to let it start.
    public var authorize:
      (@Sendable (GRPCMetadata, RecognitionConfiguration) -> RecognitionStatus?)?
    /// The HTTP/2 connections' settings (streams, windows, header list size, queued bytes).
    public var connection: GRPCConnectionConfiguration
    /// Handshake and idle-connection timeouts, stream-reset rate and repeated oversized headers.
    public var connectionLimits = ServerConnectionPolicy.Limits()
    /// Connections open at once; nil for 90 % of the file-descriptor limit.
    public var maxConnections: Int?
    /// Connections open at once from one IP address; nil for no limit.
    public var maxConnectionsPerPeer: Int?
    /// How long responses may wait untaken by the client before its stream is reset (and its
    /// recognizer freed); nil never.
    public var writeStallTimeout: TimeAmount? = .seconds(30)
    /// TLS (certificate, key, client authorities); nil serves h2c.
    public var tls: GRPCServerTLS?
    /// A second address that serves the health service alone, in plaintext (h2c): for probes
    /// that cannot speak TLS, such as Kubernetes' native gRPC probes. Nil for none.
    public var healthListener: (host: String, port: Int)?
    /// How often clients may send keepalive PINGs (gRFC A8): by default one per 30 s while a
    /// call is open, which Hark's clients (60 s) stay within; faster ones are answered with
    /// GOAWAY `too_many_pings`.
    public var pingPolicy = ServerPingPolicy(permitKeepaliveTime: .seconds(30))
    /// Where the transport logs connections closed abnormally and limits exceeded.
    public var logger = Logger(label: "hark.grpc")
    /// Makes every engine of the pool when the server starts (on worker threads), rather than
    /// each when a recognition first needs it: for engines that take long to load, such as a
    /// speech model, so that the first recognitions do not wait for it. (Made when first needed,
    /// an engine that runs on a worker thread is made off the event loop too, as is the first
    /// engine of any kind, so that making one never stalls the loop's other connections.)
    public var prewarmEngines = false
    /// Called once as each Recognize RPC ends, on its event loop (keep it short): for logs and
    /// call records.
    public var onRecognitionEnded: (@Sendable (RecognitionRecord) -> Void)?

    /// A configuration.
    public init(
      host: String,
      port: Int,
      recognizers: Int = 100,
      idleTimeout: TimeAmount = .seconds(10),
      maxSessionsPerSecond: Double? = nil,
      authorize: (@Sendable (GRPCMetadata, RecognitionConfiguration) -> RecognitionStatus?)? = nil,
      connection: GRPCConnectionConfiguration = GRPCConnectionConfiguration()
    ) {
      self.host = host
      self.port = port
      self.recognizers = recognizers
      self.idleTimeout = idleTimeout
      self.maxSessionsPerSecond = maxSessionsPerSecond
      self.authorize = authorize
      self.connection = connection
    }
  }

  /// What every session shares: the engines, admission and the registry of live sessions.
  final class Context: Sendable {
    let engines: EnginePool
    let idleTimeout: TimeAmount
    let initTimeout: TimeAmount?
    let liveSessionObjects = LiveObjects.Counter()
    /// A drain's wait was ended early (``RecognizerServer/endDrain()``).
    let drainEnded = NIOLockedValueBox(false)
    /// The engines are made (``RecognizerServer/startListening()`` listens before): until then
    /// a Recognize is refused with UNAVAILABLE, which clients retry.
    let ready = NIOLockedValueBox(true)
    let maxBufferedAudio: TimeAmount
    private let authenticator: BearerAuthenticator?
    private let authorize:
      (@Sendable (GRPCMetadata, RecognitionConfiguration) -> RecognitionStatus?)?
    private let limiter: NIOLockedValueBox<RateLimiter?>
    private let sessions = NIOLockedValueBox<
      (live: [ObjectIdentifier: RecognizerSession], shuttingDown: Bool)
    >(([:], false))
    private let started = NIOLockedValueBox(0)
    private let totals = NIOLockedValueBox(Statistics())
    private let onRecognitionEnded: (@Sendable (RecognitionRecord) -> Void)?

    init(configuration: Configuration, makeEngine: @escaping @Sendable () -> any SpeechEngine) {
      engines = EnginePool(capacity: configuration.recognizers, makeEngine: makeEngine)
      idleTimeout = configuration.idleTimeout
      initTimeout = configuration.initTimeout
      maxBufferedAudio = configuration.maxBufferedAudio
      authenticator = configuration.authenticator
      authorize = configuration.authorize
      onRecognitionEnded = configuration.onRecognitionEnded
      limiter = NIOLockedValueBox(configuration.maxSessionsPerSecond.map { RateLimiter(rate: $0) })
    }

    /// Why the recognition is refused (401, 403, the ``Configuration/authorize`` hook's status,
    /// 429), or nil.
    func admit(
      _ configuration: RecognitionConfiguration,
      metadata: GRPCMetadata
    ) -> ServerSessionStateMachine.InitRejection? {
      if let failure = authenticator?.refusal(metadata, topic: configuration.topic) {
        return failure.rejection
      }
      if let status = authorize?(metadata, configuration) { return .refused(status) }
      let now = Double(NIODeadline.now().uptimeNanoseconds) / 1e9
      let wait: Double? = limiter.withLockedValue { limiter in
        guard limiter != nil, !limiter!.acquire(now: now) else { return nil }
        return limiter!.secondsUntilNextToken
      }
      guard let wait else { return nil }
      return .rateLimited(retryAfterMilliseconds: Int((wait * 1000).rounded(.up)))
    }

    /// A recognition started (its engine is ready); false when the server is shutting down,
    /// and the session must end with 512 rather than start.
    func sessionStarted(_ session: RecognizerSession) -> Bool {
      let accepted = sessions.withLockedValue { sessions in
        guard !sessions.shuttingDown else { return false }
        sessions.live[ObjectIdentifier(session)] = session
        return true
      }
      if accepted { started.withLockedValue { $0 += 1 } }
      return accepted
    }

    func sessionEnded(_ session: RecognizerSession) {
      _ = sessions.withLockedValue { $0.live.removeValue(forKey: ObjectIdentifier(session)) }
    }

    /// The server shuts down: the recognitions in flight, to end with 512. Those whose engine
    /// is still being made or prepared end with 512 once it is (``sessionStarted(_:)``).
    /// Whether the server began to shut down (or drain).
    var isShuttingDown: Bool {
      sessions.withLockedValue { $0.shuttingDown } || draining.withLockedValue { $0 }
    }
    /// A drain began.
    let draining = NIOLockedValueBox(false)

    func beginShutdown() -> [RecognizerSession] {
      sessions.withLockedValue { sessions in
        sessions.shuttingDown = true
        return Array(sessions.live.values)
      }
    }

    /// A finished RPC's figures (sent once per RPC, when it ends).
    func rpcEnded(_ record: RecognitionRecord) {
      totals.withLockedValue { totals in
        totals.rpcs += 1
        totals.audioMessages += record.audioMessages
        if let code = record.status?.code {
          totals.statuses[code, default: 0] += 1
        } else {
          totals.cancelled += 1
        }
      }
      onRecognitionEnded?(record)
    }

    /// A session stopped acknowledging its client's data (its engine behind, or its responses
    /// unread).
    func recordBackpressure() {
      totals.withLockedValue { $0.backpressureHolds += 1 }
    }

    var statistics: Statistics { totals.withLockedValue { $0 } }

    var liveSessions: [RecognizerSession] { sessions.withLockedValue { Array($0.live.values) } }
    var startedCount: Int { started.withLockedValue { $0 } }
  }

  public let configuration: Configuration
  private let context: Context
  private let server: GRPCServer
  /// The health service alone, on ``Configuration/healthListener``.
  private let healthServer: GRPCServer?

  /// A recognizer whose engines `makeEngine` creates (once per pool slot, when first needed,
  /// on any thread).
  public init(
    configuration: Configuration,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    makeEngine: @escaping @Sendable () -> any SpeechEngine
  ) {
    self.configuration = configuration
    let context = Context(configuration: configuration, makeEngine: makeEngine)
    self.context = context
    let recognize = GRPCServer.Method(path: Self.recognizePath) { stream in
      guard context.ready.withLockedValue({ $0 }) else {
        var status = GRPCStatus(.unavailable, "the recognizer is loading its engines; try again")
        // A model loads in seconds: no use asking again at once (gRFC A6).
        status.retryPushbackMilliseconds = 1000
        return RefusedCall(stream: stream, status: status)
      }
      let session = RecognizerSession(stream: stream, context: context)
      session.started()
      return session
    }
    server = GRPCServer(
      configuration: .init(
        host: configuration.host,
        port: configuration.port,
        connection: configuration.connection,
        pingPolicy: configuration.pingPolicy,
        connectionLimits: configuration.connectionLimits,
        maxConnections: configuration.maxConnections,
        maxConnectionsPerPeer: configuration.maxConnectionsPerPeer,
        writeStallTimeout: configuration.writeStallTimeout,
        logger: configuration.logger,
        tls: configuration.tls
      ),
      methods: [recognize] + health.methods,
      group: group
    )
    if let listener = configuration.healthListener {
      healthServer = GRPCServer(
        configuration: .init(
          host: listener.host,
          port: listener.port,
          logger: configuration.logger
        ),
        methods: health.methods,
        group: group
      )
    } else {
      healthServer = nil
    }
  }

  /// The address of the health-only listener, once started (``Configuration/healthListener``).
  public var healthAddress: SocketAddress? { healthServer?.localAddress }

  /// Binds and starts serving (after making the engines, with ``Configuration/prewarmEngines``);
  /// returns the bound address.
  @discardableResult
  public func start() async throws -> SocketAddress {
    if configuration.prewarmEngines { await context.engines.prewarm() }
    let address = try await server.start()
    try await healthServer?.start()
    return address
  }

  /// Binds at once and makes the engines (``Configuration/prewarmEngines``) meanwhile, so that
  /// orchestrators and clients see the server while a speech model loads: the health service
  /// says NOT_SERVING and a Recognize gets UNAVAILABLE (which clients retry) until
  /// ``waitUntilReady()`` returns. Returns the bound address.
  @discardableResult
  public func startListening() async throws -> SocketAddress {
    guard configuration.prewarmEngines else { return try await start() }
    context.ready.withLockedValue { $0 = false }
    health.setAll(.notServing)
    let address = try await server.start()
    try await healthServer?.start()
    let context = self.context
    let health = self.health
    readiness.withLockedValue { readiness in
      readiness = Task {
        await context.engines.prewarm()
        context.ready.withLockedValue { $0 = true }
        // Unless it began to drain or shut down meanwhile.
        if !context.isShuttingDown { health.setAll(.serving) }
      }
    }
    return address
  }

  /// Returns once the engines are made (at once unless ``startListening()`` made them after it
  /// bound).
  public func waitUntilReady() async {
    await readiness.withLockedValue { $0 }?.value
  }

  private let readiness = NIOLockedValueBox<Task<Void, Never>?>(nil)

  /// The bound address, once started.
  public var localAddress: SocketAddress? { server.localAddress }

  /// Reads the TLS files again (``GRPCServer/reloadTLS()``): new connections use them, open
  /// ones go on. On an error the certificate in use stays.
  public func reloadTLS() throws(GRPCTLSError) { try server.reloadTLS() }

  /// TLS handshakes that failed or timed out since the server started.
  public var failedTLSHandshakes: Int { server.failedTLSHandshakes }

  /// Recognitions in progress.
  public var activeRecognitions: Int { context.liveSessions.count }

  /// Recognitions started since the server started.
  public var startedRecognitions: Int { context.startedCount }

  /// What the recognizer has done since it started: counted when each RPC ends.
  public struct Statistics: Sendable, Hashable {
    /// Recognize RPCs that ended.
    public var rpcs = 0
    /// Their final statuses, by code.
    public var statuses: [UInt32: Int] = [:]
    /// RPCs that ended without a status (cancelled by the client, or the connection lost).
    public var cancelled = 0
    /// Audio messages received by the RPCs that ended.
    public var audioMessages = 0
    /// Times a recognition stopped acknowledging its client's audio because its engine fell
    /// behind or its client did not read the responses (flow control as backpressure).
    public var backpressureHolds = 0
  }

  /// One Recognize RPC, as it ended.
  public struct RecognitionRecord: Sendable, Hashable {
    /// The final status; nil when the RPC ended without one (the client cancelled it, or the
    /// connection was lost).
    public var status: RecognitionStatus?
    /// Audio messages received.
    public var audioMessages: Int
    /// From the RPC's start to its end.
    public var duration: Duration
    /// Why an RPC without a status ended: the client reset it, the connection was lost, the
    /// client left its responses unread.
    public var cancelReason: String?

    public init(
      status: RecognitionStatus?,
      audioMessages: Int,
      duration: Duration,
      cancelReason: String? = nil
    ) {
      self.status = status
      self.audioMessages = audioMessages
      self.duration = duration
      self.cancelReason = cancelReason
    }
  }

  /// What the recognizer has done: the RPCs that ended, their statuses and audio messages.
  public var statistics: Statistics { context.statistics }

  /// Engines idle in the pool.
  public var idleRecognizers: Int { context.engines.idleCount }

  /// HTTP/2 connections open.
  public var connectionCount: Int { server.connectionCount }

  /// How often peers exceeded each of the transport's limits.
  public var limitCounts: GRPCServerLimitCounts { server.limitCounts }

  /// The connection limit in force.
  public var connectionLimit: Int { server.connectionLimit }

  /// The server's connection handlers and streams alive in the process.
  public var liveObjects: LiveObjects { server.liveObjects }

  /// Recognize sessions alive in the process (freed ones are not counted): once every RPC has
  /// ended, zero, else something holds a session.
  public var liveSessions: Int { context.liveSessionObjects.value }

  /// The standard health service (`grpc.health.v1.Health`), served next to Recognize and exempt
  /// from authentication: SERVING for `""` and `nuance.asr.v1.Recognizer` while the server takes
  /// recognitions, NOT_SERVING once it drains or shuts down.
  public let health = HealthService([
    "": .serving, RecognizerServer.serviceName: .serving,
  ])

  /// The name of the Recognize service, for the health service.
  public static let serviceName = "nuance.asr.v1.Recognizer"

  /// Runs until ``shutdown(gracePeriod:)`` finishes (or the calling task is cancelled).
  public func serve() async throws {
    try await server.serve()
  }

  /// What a drain did.
  public struct DrainOutcome: Sendable, Hashable {
    /// Recognitions running when the drain began.
    public var recognitionsAtStart: Int
    /// Recognitions still running when the wait ended, which got 512.
    public var recognitionsCut: Int
    /// Why the wait ended.
    public var ending: Ending

    public init(recognitionsAtStart: Int, recognitionsCut: Int, ending: Ending) {
      self.recognitionsAtStart = recognitionsAtStart
      self.recognitionsCut = recognitionsCut
      self.ending = ending
    }

    public enum Ending: String, Sendable, Hashable, CustomStringConvertible {
      /// Every call ended and every connection closed.
      case drained
      /// The drain timeout passed.
      case timedOut = "timed-out"
      /// ``RecognizerServer/endDrain()`` (a second signal) cut the wait short.
      case ended

      public var description: String { rawValue }
    }
  }

  /// Refuses a call with `status` (from the event loop's next turn, once the stream has its
  /// handler).
  final class RefusedCall: GRPCServerStreamHandler {
    init(stream: GRPCServerStream, status: GRPCStatus) {
      stream.eventLoop.execute { stream.finish(status: status) }
    }
    func receive(message: ByteBuffer) {}
    func receiveEndOfRequests() {}
    func cancelled(_ status: GRPCStatus) {}
  }

  /// Drains the server, as a rolling deploy needs (DESIGN rule 8): stops listening at once (a
  /// replacement can bind the port), sends GOAWAY on every connection (calls opened after it are
  /// refused with REFUSED_STREAM, which clients retry), and lets the recognitions in flight
  /// finish for up to `timeout`, or until ``endDrain()``; then ends those left with 512 (and a
  /// pushback hint) and shuts down as ``shutdown(gracePeriod:)`` does.
  public func drain(
    timeout: TimeAmount,
    gracePeriod: TimeAmount = .seconds(5)
  ) async
    -> DrainOutcome
  {
    let atStart = activeRecognitions
    context.draining.withLockedValue { $0 = true }
    health.setAll(.notServing)
    health.endWatches()
    await server.beginDrain()
    let deadline = NIODeadline.now() + timeout
    var ending = DrainOutcome.Ending.drained
    // Every call's end closes its connection (GOAWAY was sent), so no connection left means
    // nothing left to wait for.
    while server.connectionCount > 0 {
      if context.drainEnded.withLockedValue({ $0 }) {
        ending = .ended
        break
      }
      if NIODeadline.now() >= deadline {
        ending = .timedOut
        break
      }
      try? await Task.sleep(nanoseconds: 20_000_000)
    }
    let cut = activeRecognitions
    await shutdown(gracePeriod: gracePeriod)
    return DrainOutcome(recognitionsAtStart: atStart, recognitionsCut: cut, ending: ending)
  }

  /// Ends a ``drain(timeout:gracePeriod:)``'s wait at once: the recognitions still running get
  /// 512 (a second SIGTERM).
  public func endDrain() {
    context.drainEnded.withLockedValue { $0 = true }
  }

  /// Shuts down: every recognition in flight ends with 512, then each connection gets GOAWAY and
  /// closes once its calls have ended (at most `gracePeriod` later).
  public func shutdown(gracePeriod: TimeAmount = .seconds(5)) async {
    health.setAll(.notServing)
    health.endWatches()
    for session in context.beginShutdown() {
      try? await session.eventLoop.submit { session.shutdown() }.get()
    }
    await server.shutdown(gracePeriod: gracePeriod)
    // Probes saw NOT_SERVING to the end.
    await healthServer?.shutdown(gracePeriod: .milliseconds(100))
  }
}

/// A fixed number of engines: recognitions take one from their accepted init until their RPC
/// ends (409 when none is idle). Engines are made when first needed (or all at once by
/// ``prewarm()``).
package final class EnginePool: Sendable {
  package let capacity: Int
  private let makeEngine: @Sendable () -> any SpeechEngine
  private let state: NIOLockedValueBox<State>

  private struct State {
    var idle: [EngineBox] = []
    var created = 0
    /// Whether an engine made so far runs on a worker thread (nil before the first is made).
    /// Once true, true for good: a factory that stood in a cheap engine once (sphinx's
    /// placeholder for a model that failed to load) must not send the next loads to the loop.
    var runOnWorker: Bool?
  }

  /// An engine handed between sessions: each is used by one session at a time.
  package final class EngineBox: @unchecked Sendable {
    package let engine: any SpeechEngine
    package init(_ engine: any SpeechEngine) { self.engine = engine }
  }

  /// What ``acquire()`` gives a recognition.
  package enum Acquired {
    /// An engine to use.
    case engine(any SpeechEngine)
    /// A slot of the pool, whose engine ``make()`` makes off the event loop: an engine that runs
    /// on a worker thread (speech decoding) is slow to make too (sphinx loads its models, for
    /// hundreds of milliseconds, which would stall every connection of the loop). The first
    /// engine is made off the loop as well, as its kind is not known before.
    case makeOffLoop
  }

  package init(capacity: Int, makeEngine: @escaping @Sendable () -> any SpeechEngine) {
    self.capacity = capacity
    self.makeEngine = makeEngine
    self.state = NIOLockedValueBox(State())
  }

  /// An idle engine, a slot to make one in, or nil if all are busy.
  package func acquire() -> Acquired? {
    enum Take {
      case reuse(EngineBox)
      case create(offLoop: Bool)
      case none
    }
    let take: Take = state.withLockedValue { state in
      if let box = state.idle.popLast() { return .reuse(box) }
      guard state.created < capacity else { return .none }
      state.created += 1
      return .create(offLoop: state.runOnWorker ?? true)
    }
    switch take {
    case .reuse(let box): return .engine(box.engine)
    case .create(offLoop: true): return .makeOffLoop
    case .create(offLoop: false): return .engine(make())
    case .none: return nil
    }
  }

  /// Makes the engine of a slot ``acquire()`` gave (``Acquired/makeOffLoop``), on the calling
  /// thread.
  package func make() -> any SpeechEngine {
    let engine = makeEngine()
    let runsOnWorker = engine.runsOnWorkerThread
    state.withLockedValue { $0.runOnWorker = ($0.runOnWorker ?? false) || runsOnWorker }
    return engine
  }

  /// Makes every engine not made yet, a few at a time on NIO's thread pool.
  func prewarm() async {
    let missing = state.withLockedValue { state in
      let missing = capacity - state.created
      state.created = capacity
      return missing
    }
    guard missing > 0 else { return }
    await withTaskGroup(of: EngineBox?.self) { group in
      for _ in 0..<missing {
        group.addTask {
          try? await NIOThreadPool.singleton.runIfActive { EngineBox(self.make()) }
        }
      }
      for await box in group {
        guard let box else {
          // The thread pool is shut down: the slot is made when first needed after all.
          state.withLockedValue { $0.created -= 1 }
          continue
        }
        state.withLockedValue { $0.idle.append(box) }
      }
    }
  }

  package func release(_ engine: any SpeechEngine) {
    state.withLockedValue { $0.idle.append(EngineBox(engine)) }
  }

  package var idleCount: Int {
    state.withLockedValue { $0.idle.count + (capacity - $0.created) }
  }
}
