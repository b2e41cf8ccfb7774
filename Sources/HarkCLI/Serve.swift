import ArgumentParser
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
      Serves /nuance.asr.v1.Recognizer/Recognize over HTTP/2 without TLS (h2c). SIGTERM or \
      SIGINT ends every recognition in flight with status 512, sends GOAWAY and exits.
      """
  )

  @Option(help: "The address to listen on, HOST:PORT.")
  var listen: HostPort = HostPort(argument: "127.0.0.1:50051")!

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
    if let recognizers, recognizers < 1 {
      throw ValidationError("--recognizers must be at least 1")
    }
    guard idleTimeoutMs >= 1 else { throw ValidationError("--idle-timeout-ms must be at least 1") }
    if let maxSessionsPerSecond, !(maxSessionsPerSecond > 0) {
      throw ValidationError("--max-sessions-per-second must be positive")
    }
    guard statisticsInterval >= 0, statisticsInterval.isFinite else {
      throw ValidationError("--statistics-interval must be 0 or more seconds")
    }
  }

  func run() async throws {
    bootstrapLogging(level: logLevel)
    let logger = Logger(label: "hark.serve")
    // A missing model fails here, not at the first recognition.
    try engine.check(sphinxModel: sphinxModel)
    let recognizers = self.recognizers ?? engine.defaultRecognizers
    var configuration = RecognizerServer.Configuration(
      host: listen.host,
      port: listen.port,
      recognizers: recognizers,
      idleTimeout: .milliseconds(Int64(idleTimeoutMs)),
      maxSessionsPerSecond: maxSessionsPerSecond
    )
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
    let server = RecognizerServer(
      configuration: configuration,
      makeEngine: engine.factory(sphinxModel: sphinxModel)
    )
    let address = try await server.start()
    logger.info(
      "Listening",
      metadata: [
        "address": "\(listen.host):\(address.port ?? listen.port)", "engine": "\(engine.rawValue)",
        "recognizers": "\(recognizers)",
      ]
    )
    let statistics = Task {
      guard statisticsInterval > 0 else { return }
      var last = server.statistics
      while !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(Int(statisticsInterval * 1000)))
        let now = server.statistics
        let active = server.activeRecognitions
        // Quiet while the server is idle.
        guard now != last || active > 0 else { continue }
        logger.info("Statistics", metadata: Self.metadata(of: now, since: last, active: active))
        last = now
      }
    }
    defer { statistics.cancel() }
    let signal = await waitForTerminationSignal()
    logger.info(
      "Shutting down",
      metadata: ["signal": "\(signal)", "recognitions": "\(server.activeRecognitions)"]
    )
    await server.shutdown(gracePeriod: .seconds(5))
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
      metadata["status"] = "none (cancelled or connection lost)"
    }
    return metadata
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
    ]
  }
}
