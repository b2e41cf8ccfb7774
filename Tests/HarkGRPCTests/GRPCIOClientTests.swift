import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore
import Testing

/// Python grpcio's client (tools/interop/echo_client.py) against Hark's server.
@Suite("grpcio client → Hark server", .serialized)
struct GRPCIOClientTests {
  static let scenarios = [
    "echo-many", "near-limit", "over-limit", "metadata", "deadline", "client-cancel",
    "server-cancel",
    "status-unicode", "unimplemented", "concurrent",
  ]

  @Test("each interop scenario holds", arguments: scenarios)
  func scenario(_ name: String) async throws {
    let (server, port) = try await EchoService.startServer()
    defer { Task { await server.shutdown(gracePeriod: .milliseconds(100)) } }
    let result = try await runPythonEchoClient(port: port, scenario: name)
    #expect(
      result.ok,
      "\(name): \(result.failure ?? "") — status \(result.status_name) '\(result.status_details)'"
    )
    switch name {
    case "over-limit": #expect(result.status_name == "RESOURCE_EXHAUSTED")
    case "deadline": #expect(result.status_name == "DEADLINE_EXCEEDED")
    case "server-cancel": #expect(result.status_name == "CANCELLED")
    case "status-unicode":
      #expect(result.status_code == 9)
      #expect(result.status_details == "\t\n ☺ 😈 100%")
    case "unimplemented": #expect(result.status_name == "UNIMPLEMENTED")
    case "metadata": #expect(result.trailing_metadata["echo-alpha"] == .string("one"))
    case "concurrent": #expect(result.calls_ok == 200)
    case "echo-many": #expect(result.responses == 1000)
    default: break
    }
  }
}
