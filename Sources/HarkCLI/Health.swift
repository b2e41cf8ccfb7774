import ArgumentParser
import HarkGRPC
import HarkGRPCCore
import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// `hark health HOST:PORT`: asks a server's standard health service (grpc.health.v1), for a
/// container's HEALTHCHECK or a script, as grpc_health_probe does.
struct Health: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Ask a server's gRPC health service whether it is serving.",
    discussion: """
      Calls /grpc.health.v1.Health/Check and prints the status. Exit codes: 0 SERVING; 1 \
      NOT_SERVING, or a service the server does not know; 9 no answer (the server cannot be \
      reached, does not serve health, or takes longer than --timeout); 64 bad usage.

      EXAMPLES:
        hark health 127.0.0.1:50051 --plaintext
        hark health asr.example.com:443 --service nuance.asr.v1.Recognizer
      """
  )

  @Argument(help: "The server, HOST:PORT, over TLS (--plaintext for h2c).")
  var server: HostPort

  @OptionGroup(title: "Connection")
  var connection: ConnectionOptionGroup

  @Option(help: "The service to ask about; empty for the server as a whole.")
  var service = ""

  @Option(help: ArgumentHelp("How long to wait for the answer.", valueName: "duration"))
  var timeout: DurationArgument = .seconds(5)

  func validate() throws {
    if timeout.isZero { throw ValidationError("--timeout must be more than 0") }
  }

  func run() async throws {
    var configuration = connection.clientConfiguration()
    configuration.connectTimeout = .nanoseconds(timeout.nanoseconds)
    // One call: no keepalive needed.
    configuration.keepaliveInterval = nil
    let channel = GRPCChannel(host: server.host, port: server.port, configuration: configuration)
    defer { Task { await channel.close() } }
    let request = HealthCheckRequest(service: service)
    let answer: Result<HealthCheckResponse?, GRPCStatus>
    do {
      answer = .success(
        try await channel.withCall(
          path: HealthService.checkPath,
          timeout: .nanoseconds(timeout.nanoseconds),
          request: HealthCheckRequest.self,
          response: HealthCheckResponse.self
        ) { call in
          try await call.send(request)
          await call.finish()
          var last: HealthCheckResponse?
          for try await response in call.responses { last = response }
          return last
        }
      )
    } catch let status as GRPCStatus {
      answer = .failure(status)
    }
    await channel.close()
    switch answer {
    case .success(let response?):
      let status = response.status.map { "\($0)" } ?? "status \(response.rawStatus)"
      print(status)
      throw ExitCode(response.status == .serving ? 0 : 1)
    case .success(nil):
      printError("hark: the server answered the health check without a status")
      throw ExitCode(9)
    case .failure(let status) where status.code == .notFound:
      print("SERVICE_UNKNOWN")
      printError("hark: \(status.message)")
      throw ExitCode(1)
    case .failure(let status):
      printError("hark: \(status)")
      throw ExitCode(9)
    }
  }
}
