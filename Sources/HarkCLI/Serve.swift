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

  @Option(help: "The recognizer engine: dtmf (in-band DTMF keys).")
  var engine: EngineName = .dtmf

  @Option(help: "Recognitions at once (engine instances); one more is answered with 409.")
  var recognizers: Int = 100

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

  enum EngineName: String, ExpressibleByArgument, CaseIterable {
    case dtmf
  }

  func validate() throws {
    guard recognizers >= 1 else { throw ValidationError("--recognizers must be at least 1") }
    guard idleTimeoutMs >= 1 else { throw ValidationError("--idle-timeout-ms must be at least 1") }
    if let maxSessionsPerSecond, !(maxSessionsPerSecond > 0) {
      throw ValidationError("--max-sessions-per-second must be positive")
    }
  }

  func run() async throws {
    bootstrapLogging(level: logLevel)
    let logger = Logger(label: "hark.serve")
    let server = RecognizerServer(
      configuration: .init(
        host: listen.host,
        port: listen.port,
        recognizers: recognizers,
        idleTimeout: .milliseconds(Int64(idleTimeoutMs)),
        maxSessionsPerSecond: maxSessionsPerSecond
      ),
      makeEngine: { DTMFEngine() }
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
