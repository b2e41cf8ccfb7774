import ArgumentParser
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import Logging
import NIOCore

#if canImport(Glibc)
  import Glibc
#endif

/// `hark serve`: a recognizer on a port.
struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a recognizer that serves the Recognize RPC.",
    discussion: """
      Serves /nuance.asr.v1.Recognizer/Recognize over HTTP/2: over TLS with --tls-cert and \
      --tls-key (ALPN h2; mTLS with --tls-client-ca), else in plaintext (h2c). SIGHUP re-reads \
      the certificate and key without dropping connections.

      SIGTERM or SIGINT drains the server for a rolling deploy: it stops listening at once (a \
      replacement can bind the port), sends GOAWAY on every connection (calls opened after it \
      are refused with REFUSED_STREAM, which clients retry elsewhere), lets the recognitions \
      in flight finish for up to --drain-timeout, then ends those left with status 512 (with a \
      retry pushback) and exits. A second signal skips the wait.

      With --tokens or --jwt-jwks, every call needs authorization: Bearer TOKEN: a token of \
      the tokens file, or a JWT signed by a key of the JWKS (either, with both). A call without \
      an accepted token gets status 401, one whose token may not use the init's topic 403. \
      SIGHUP re-reads both files; on an error the ones in use stay.

      Every limit a client can reach (connections, streams, header size, resets, timeouts, \
      queued responses, buffered audio) has a default that protects the server from hostile \
      or broken clients; each time one is exceeded the server logs a warning naming the peer \
      (at most 10 a second) and counts it in the Statistics line. Durations take a unit \
      (500ms, 10s, 2m); a bare number is seconds; 0 turns a timeout off.
      """
  )

  @Option(help: "The address to listen on, HOST:PORT.")
  var listen: HostPort = HostPort(argument: "127.0.0.1:50051")!

  @Option(
    help: ArgumentHelp(
      "Serve TLS with this PEM certificate chain (re-read on SIGHUP); with --tls-key.",
      valueName: "file"
    )
  )
  var tlsCert: String?

  @Option(
    help: ArgumentHelp("The PEM private key of --tls-cert (re-read on SIGHUP).", valueName: "file")
  )
  var tlsKey: String?

  @Option(
    help: ArgumentHelp(
      "Require client certificates signed by the authorities of this PEM file (mTLS).",
      valueName: "file"
    )
  )
  var tlsClientCa: String?

  @Option(
    help: ArgumentHelp(
      "TLS handshakes in progress at once; one more connection is closed on accept.",
      valueName: "count"
    )
  )
  var maxTlsHandshakes: Int = 1024

  @Option(
    help: ArgumentHelp(
      "Require a bearer token of this file: lines of TOKEN TOPIC,TOPIC or TOKEN * (re-read on SIGHUP).",
      discussion: "# begins a comment; blank lines are ignored.",
      valueName: "file"
    )
  )
  var tokens: String?

  @Option(
    name: .customLong("jwt-jwks"),
    help: ArgumentHelp(
      "Accept JWT bearer tokens signed by a key of this JWKS file (re-read on SIGHUP).",
      discussion: "The JWT needs a kid and an exp; its topics claim (an array) limits its topics.",
      valueName: "file"
    )
  )
  var jwtJWKS: String?

  @Option(
    name: .customLong("jwt-issuer"),
    help: ArgumentHelp("The iss a JWT must have; with --jwt-jwks.", valueName: "iss")
  )
  var jwtIssuer: String?

  @Option(
    name: .customLong("jwt-audience"),
    help: ArgumentHelp("A value a JWT's aud must include; with --jwt-jwks.", valueName: "aud")
  )
  var jwtAudience: String?

  @Option(help: "The recognizer engine: sphinx (US English speech) or dtmf (in-band DTMF keys).")
  var engine: EngineName = .standard

  @Option(
    name: .customLong("sphinx-model"),
    help: ArgumentHelp(
      "The sphinx engine's PocketSphinx model directory.",
      discussion: "Default: /usr/share/pocketsphinx/model/en-us (Debian's pocketsphinx-en-us).",
      valueName: "directory"
    )
  )
  var sphinxModel: String?

  @Option(
    help: ArgumentHelp(
      "Recognitions at once (engine instances); one more is answered with 409.",
      discussion: "Default: 4 per core for sphinx, 100 for dtmf."
    )
  )
  var recognizers: Int?

  @Option(
    name: .customLong("idle-timeout-ms"),
    help: "No audio message for this long during a recognition is 408."
  )
  var idleTimeoutMs: Int = 10_000

  @Option(
    name: .customLong("init-timeout-ms"),
    help: "No init message for this long after a Recognize stream opens is 408; 0 for none."
  )
  var initTimeoutMs: Int = 10_000

  @Option(
    name: .customLong("max-buffered-audio-ms"),
    help: ArgumentHelp(
      "Audio a recognition may queue for a decoding engine before flow control stops its client.",
      discussion: "At most this plus the stream window (1 MiB) is buffered per recognition."
    )
  )
  var maxBufferedAudioMs: Int = 1000

  @Option(
    help: ArgumentHelp(
      "Also serve the health service alone here, in plaintext (for probes that cannot speak "
        + "TLS, such as Kubernetes' gRPC probes), HOST:PORT.",
      valueName: "address"
    )
  )
  var healthListen: HostPort?

  @Option(
    help: ArgumentHelp(
      "The shortest time between a client's keepalive PINGs while a call is open; faster ones "
        + "are answered with GOAWAY too_many_pings (gRFC A8).",
      valueName: "duration"
    )
  )
  var permitKeepaliveTime: DurationArgument = .seconds(30)

  @Option(
    help: ArgumentHelp(
      "After SIGTERM, how long recognitions in flight may go on before they get 512; 0 ends "
        + "them at once.",
      valueName: "duration"
    )
  )
  var drainTimeout: DurationArgument = .seconds(30)

  @Option(
    help: ArgumentHelp(
      "A client's HTTP/2 preface and SETTINGS must arrive within this; 0 for no limit.",
      valueName: "duration"
    )
  )
  var handshakeTimeout: DurationArgument = .seconds(10)

  @Option(
    help: ArgumentHelp(
      "A connection with no stream open for this long is closed (GOAWAY NO_ERROR); 0 never.",
      valueName: "duration"
    )
  )
  var connectionIdleTimeout: DurationArgument = .minutes(5)

  @Option(
    help: ArgumentHelp(
      "A stream whose responses the client leaves unread this long is reset, its recognizer "
        + "freed; a connection that reads nothing this long is closed. 0 never.",
      valueName: "duration"
    )
  )
  var writeStallTimeout: DurationArgument = .seconds(30)

  @Option(
    help: ArgumentHelp(
      "Connections open at once; one more is closed on accept.",
      discussion: "Default: 90 % of the file-descriptor limit (raised to its hard limit first)."
    )
  )
  var maxConnections: Int?

  @Option(
    help: ArgumentHelp(
      "Connections open at once from one IP address. Default: no limit.",
      discussion: "Leave it off behind a proxy such as nginx, which opens a connection per stream."
    )
  )
  var maxConnectionsPerPeer: Int?

  @Option(help: EventLoopThreads.help)
  var threads: Int?

  @Option(help: "Streams one connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS).")
  var maxConcurrentStreams: Int = 10_000

  @Option(
    help: ArgumentHelp(
      "The largest request header list, in bytes, as decoded (SETTINGS_MAX_HEADER_LIST_SIZE).",
      discussion: "A larger one is refused with RESOURCE_EXHAUSTED; a client that keeps sending "
        + "them gets GOAWAY ENHANCE_YOUR_CALM.",
      valueName: "bytes"
    )
  )
  var maxHeaderListSize: Int = 16 << 10

  @Option(
    help: ArgumentHelp(
      "RST_STREAM frames a client may send per second, sustained (bursts of 10 times as many); "
        + "more is GOAWAY ENHANCE_YOUR_CALM.",
      valueName: "count"
    )
  )
  var maxResetsPerSecond: Int = 50

  @Option(
    help: ArgumentHelp(
      "Response bytes a stream may have queued for its client; past it the stream is reset.",
      valueName: "bytes"
    )
  )
  var maxQueuedBytesPerStream: Int = 1 << 20

  @Option(
    name: .customLong("max-sessions-per-second"),
    help: "New recognitions per second; more are 429. No limit by default."
  )
  var maxSessionsPerSecond: Double?

  @Option(
    help: """
      Log level: trace, debug, info, notice, warning, error, critical. Each recognition's end \
      is logged at debug (at warning when its status is 5xx).
      """
  )
  var logLevel: Logger.Level = .info

  @Option(
    help: """
      Seconds between statistics lines in the log (recognitions active and ended, statuses); \
      0 for none.
      """
  )
  var statisticsInterval: Double = 60

  func validate() throws {
    try EventLoopThreads.validate(threads)
    if (tlsCert == nil) != (tlsKey == nil) {
      throw ValidationError("--tls-cert and --tls-key go together")
    }
    if tlsClientCa != nil && tlsCert == nil {
      throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key")
    }
    if jwtJWKS == nil && (jwtIssuer != nil || jwtAudience != nil) {
      throw ValidationError("--jwt-issuer and --jwt-audience need --jwt-jwks")
    }
    guard maxTlsHandshakes >= 1 else {
      throw ValidationError("--max-tls-handshakes must be at least 1")
    }
    if let recognizers, recognizers < 1 {
      throw ValidationError("--recognizers must be at least 1")
    }
    guard idleTimeoutMs >= 1 else { throw ValidationError("--idle-timeout-ms must be at least 1") }
    guard initTimeoutMs >= 0 else {
      throw ValidationError("--init-timeout-ms must not be negative")
    }
    guard maxBufferedAudioMs >= 20 else {
      throw ValidationError("--max-buffered-audio-ms must be at least 20")
    }
    for (flag, value) in [
      ("--max-connections", maxConnections), ("--max-connections-per-peer", maxConnectionsPerPeer),
      ("--max-concurrent-streams", maxConcurrentStreams),
      ("--max-resets-per-second", maxResetsPerSecond),
    ] {
      if let value, value < 1 { throw ValidationError("\(flag) must be at least 1") }
    }
    guard maxHeaderListSize >= 1024 else {
      throw ValidationError("--max-header-list-size must be at least 1024 bytes")
    }
    guard maxQueuedBytesPerStream >= 64 << 10 else {
      throw ValidationError("--max-queued-bytes-per-stream must be at least 65536 bytes")
    }
    if let maxSessionsPerSecond, !(maxSessionsPerSecond > 0) {
      throw ValidationError("--max-sessions-per-second must be positive")
    }
    guard statisticsInterval >= 0, statisticsInterval.isFinite else {
      throw ValidationError("--statistics-interval must be 0 or more seconds")
    }
  }

  func run() async throws {
    bootstrapLogging(level: logLevel)
    // Caught before the server listens: a client (or a supervisor) may signal it at once.
    let signals = await TerminationSignals()
    let hangups = await signalStream([(SIGHUP, "SIGHUP")])
    let logger = Logger(label: "hark.serve")
    // A missing model fails here, not at the first recognition.
    try engine.check(sphinxModel: sphinxModel)
    let recognizers = self.recognizers ?? engine.defaultRecognizers
    raiseFileDescriptorLimit()
    var configuration = RecognizerServer.Configuration(
      host: listen.host,
      port: listen.port,
      recognizers: recognizers,
      idleTimeout: .milliseconds(Int64(idleTimeoutMs)),
      maxSessionsPerSecond: maxSessionsPerSecond,
      connection: GRPCConnectionConfiguration(
        maxConcurrentStreams: maxConcurrentStreams,
        maxHeaderListSize: maxHeaderListSize,
        maxQueuedBytesPerStream: maxQueuedBytesPerStream
      )
    )
    configuration.initTimeout = initTimeoutMs > 0 ? .milliseconds(Int64(initTimeoutMs)) : nil
    configuration.maxBufferedAudio = .milliseconds(Int64(maxBufferedAudioMs))
    configuration.connectionLimits = ServerConnectionPolicy.Limits(
      handshakeTimeout: Self.timeout(handshakeTimeout),
      idleTimeout: Self.timeout(connectionIdleTimeout),
      resetBurst: 10 * maxResetsPerSecond,
      resetsPerSecond: maxResetsPerSecond
    )
    configuration.writeStallTimeout = Self.timeout(writeStallTimeout)
    configuration.healthListener = healthListen.map { ($0.host, $0.port) }
    configuration.pingPolicy = ServerPingPolicy(
      permitKeepaliveTime: .nanoseconds(permitKeepaliveTime.nanoseconds)
    )
    configuration.maxConnections = maxConnections
    configuration.maxConnectionsPerPeer = maxConnectionsPerPeer
    configuration.logger = Logger(label: "hark.grpc")
    if let tlsCert, let tlsKey {
      configuration.tls = GRPCServerTLS(
        certificateFile: tlsCert,
        keyFile: tlsKey,
        clientCAFile: tlsClientCa,
        maxHandshakesInProgress: maxTlsHandshakes
      )
    } else if !Self.isLoopback(listen.host) {
      logger.warning(
        "Serving without TLS on a non-loopback address: calls and their tokens travel in plaintext; give --tls-cert and --tls-key",
        metadata: ["address": "\(listen)"]
      )
    }
    if tokens != nil || jwtJWKS != nil {
      do {
        configuration.authenticator = try await BearerAuthenticator(
          configuration: .init(
            tokensFile: tokens,
            jwksFile: jwtJWKS,
            issuer: jwtIssuer,
            audience: jwtAudience
          )
        )
      } catch {
        printError("hark: \(error)")
        throw ExitCode(2)
      }
    }
    // Speech models take a while to load: every engine is made before the server listens.
    configuration.prewarmEngines = engine == .sphinx
    configuration.onRecognitionEnded = { record in
      let failed = (record.status?.code ?? 0) >= 500
      logger.log(
        level: failed ? .warning : .debug,
        "Recognition ended",
        metadata: Self.metadata(of: record)
      )
    }
    let group = EventLoopThreads.makeGroup(threads)
    let server = RecognizerServer(
      configuration: configuration,
      group: group,
      makeEngine: engine.factory(sphinxModel: sphinxModel)
    )
    let address: SocketAddress
    do {
      // Listening at once, so that probes and clients see the server while sphinx models load
      // (health NOT_SERVING, Recognize UNAVAILABLE, until the Ready line).
      address = try await server.startListening()
    } catch let error as GRPCTLSError {
      printError("hark: \(error)")
      throw ExitCode(2)
    }
    let servesTLS = configuration.tls != nil
    let authenticator = configuration.authenticator
    let reloads = Task {
      for await _ in hangups {
        if let authenticator {
          do {
            let credentials = try await authenticator.reload()
            logger.info("Reloaded the tokens", metadata: Self.metadata(of: credentials))
          } catch {
            logger.error(
              "Cannot reload the tokens; the ones in use stay",
              metadata: ["reason": "\(error)"]
            )
          }
        }
        do {
          try server.reloadTLS()
          if servesTLS { logger.info("Reloaded the TLS certificate and key") }
        } catch {
          logger.error(
            "Cannot reload the TLS certificate; the one in use stays",
            metadata: ["reason": "\(error)"]
          )
        }
      }
    }
    defer { reloads.cancel() }
    logger.info(
      "Listening",
      metadata: [
        "address": "\(listen.host):\(address.port ?? listen.port)", "engine": "\(engine.rawValue)",
        "recognizers": "\(recognizers)", "max_connections": "\(server.connectionLimit)",
        "tls":
          "\(configuration.tls == nil ? "off" : configuration.tls?.clientCAFile == nil ? "on" : "mtls")",
        "auth": "\(authenticator?.configuration.mode ?? "off")",
        "health_listen":
          "\(healthListen.map { "\($0.host):\(server.healthAddress?.port ?? $0.port)" } ?? "off")",
      ]
    )
    let loadStarted = ContinuousClock.now
    if configuration.prewarmEngines {
      logger.info("Loading engines", metadata: ["engines": "\(recognizers)"])
    }
    let readiness = Task {
      await server.waitUntilReady()
      let seconds =
        Double((ContinuousClock.now - loadStarted).components.attoseconds) / 1e18
        + Double((ContinuousClock.now - loadStarted).components.seconds)
      logger.info(
        "Ready",
        metadata: ["engines": "\(recognizers)", "seconds": "\((seconds * 100).rounded() / 100)"]
      )
    }
    defer { readiness.cancel() }
    let statistics = Task {
      guard statisticsInterval > 0 else { return }
      var last = server.statistics
      var lastLimits = server.limitCounts
      var lastConnections = -1
      while !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(Int(statisticsInterval * 1000)))
        let now = server.statistics
        let limits = server.limitCounts
        let active = server.activeRecognitions
        let connections = server.connectionCount
        // Quiet while the server is idle.
        guard now != last || limits != lastLimits || active > 0 || connections != lastConnections
        else { continue }
        var metadata = Self.metadata(of: now, since: last, active: active)
        metadata["recognizers_idle"] = "\(server.idleRecognizers)"
        metadata["recognizers_busy"] = "\(recognizers - server.idleRecognizers)"
        metadata["connections"] = "\(connections)"
        metadata["limits_exceeded"] = "\(Self.describe(limits, since: lastLimits))"
        logger.info("Statistics", metadata: metadata)
        last = now
        lastLimits = limits
        lastConnections = connections
      }
    }
    defer { statistics.cancel() }
    let signal = await signals.first()
    logger.info(
      "Draining",
      metadata: [
        "signal": "\(signal)", "recognitions": "\(server.activeRecognitions)",
        "connections": "\(server.connectionCount)", "drain_timeout": "\(drainTimeout)",
      ]
    )
    // A second signal ends the wait: the recognitions left get 512 at once.
    let second = Task {
      let again = await signals.first()
      guard !Task.isCancelled, again != "none" else { return }
      logger.info("Second signal: ending the drain", metadata: ["signal": "\(again)"])
      server.endDrain()
    }
    let drain = await server.drain(timeout: .nanoseconds(drainTimeout.nanoseconds))
    second.cancel()
    logger.info(
      "Drained",
      metadata: [
        "ending": "\(drain.ending)",
        "recognitions_at_start": "\(drain.recognitionsAtStart)",
        "recognitions_cut": "\(drain.recognitionsCut)",
      ]
    )
    logger.info("Stopped", metadata: ["recognitions.started": "\(server.startedRecognitions)"])
  }

  /// A recognition's end, for the log.
  static func metadata(of record: RecognizerServer.RecognitionRecord) -> Logger.Metadata {
    var metadata: Logger.Metadata = [
      "audio_messages": "\(record.audioMessages)",
      "duration_ms": "\(milliseconds(record.duration))",
    ]
    if let status = record.status {
      metadata["status"] = "\(status.code)"
      metadata["message"] = "\(status.message)"
      if !status.details.isEmpty { metadata["details"] = "\(status.details)" }
    } else {
      metadata["status"] = "none"
      metadata["reason"] = "\(record.cancelReason ?? "cancelled or connection lost")"
    }
    return metadata
  }

  /// What an authenticator read from its files, for the log.
  static func metadata(of credentials: BearerAuthenticator.Credentials) -> Logger.Metadata {
    var metadata: Logger.Metadata = [:]
    if let tokens = credentials.tokens { metadata["tokens"] = "\(tokens.count)" }
    if let keys = credentials.keys { metadata["jwks_keys"] = "\(keys.count)" }
    return metadata
  }

  /// Whether `host` is a loopback address (or name), where plaintext stays on the machine.
  static func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host.hasPrefix("127.")
  }

  /// A timeout of `duration`, or none for 0.
  static func timeout(_ duration: DurationArgument) -> TimeAmount? {
    duration.isZero ? nil : .nanoseconds(duration.nanoseconds)
  }

  /// `headerListSize:2,writeStall:1`: the limits exceeded in an interval, or `none`.
  static func describe(_ now: GRPCServerLimitCounts, since last: GRPCServerLimitCounts) -> String {
    let parts = GRPCLimitExceeded.Limit.allCases.compactMap { limit -> String? in
      let count = now[limit] - last[limit]
      return count > 0 ? "\(limit):\(count)" : nil
    }
    return parts.isEmpty ? "none" : parts.joined(separator: ",")
  }

  /// Raises the soft file-descriptor limit to the hard one: every connection takes one.
  func raiseFileDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max
    else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
  }

  static func milliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
  }

  /// The recognitions that ended in an interval, by status, and those active.
  static func metadata(
    of now: RecognizerServer.Statistics,
    since last: RecognizerServer.Statistics,
    active: Int
  ) -> Logger.Metadata {
    let statuses = now.statuses.keys.sorted().compactMap { code -> String? in
      let count = now.statuses[code, default: 0] - last.statuses[code, default: 0]
      return count > 0 ? "\(code): \(count)" : nil
    }
    return [
      "active": "\(active)",
      "ended": "\(now.rpcs - last.rpcs)",
      "statuses": "\(statuses.joined(separator: ", "))",
      "cancelled": "\(now.cancelled - last.cancelled)",
      "audio_messages": "\(now.audioMessages - last.audioMessages)",
      "backpressure_holds": "\(now.backpressureHolds - last.backpressureHolds)",
    ]
  }
}
