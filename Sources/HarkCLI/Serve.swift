import ArgumentParser
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

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: Logger.Level = .info

  func validate() throws {
    if let recognizers, recognizers < 1 {
      throw ValidationError("--recognizers must be at least 1")
    }
    guard idleTimeoutMs >= 1 else { throw ValidationError("--idle-timeout-ms must be at least 1") }
    if let maxSessionsPerSecond, !(maxSessionsPerSecond > 0) {
      throw ValidationError("--max-sessions-per-second must be positive")
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
    let signal = await waitForTerminationSignal()
    logger.info(
      "Shutting down",
      metadata: ["signal": "\(signal)", "recognitions": "\(server.activeRecognitions)"]
    )
    await server.shutdown(gracePeriod: .seconds(5))
    logger.info("Stopped", metadata: ["recognitions.started": "\(server.startedRecognitions)"])
  }
}
