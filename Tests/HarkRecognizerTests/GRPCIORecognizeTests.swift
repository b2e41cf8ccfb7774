import Foundation
import HarkRecognizer
import HarkServer
import NIOCore
import Testing

/// Python grpcio's Recognize client (tools/interop/recognize_client.py, stubs generated from
/// proto/) against Hark's recognizer with the DTMF engine.
@Suite("grpcio client → Hark recognizer")
struct GRPCIORecognizeTests {
  struct Result: Decodable {
    var scenario: String
    var ok: Bool
    var failure: String?
    var summary: [String]
    var grpc_status: String
  }

  static let scenarios: [(String, [String])] = [
    ("single", ["100", "sos", "final:123", "200"]),
    ("multiple", ["100", "sos", "final:12", "sos", "final:34", "200"]),
    ("no-result", ["100", "204"]),
    ("no-speech", ["100", "404"]),
    ("too-much-speech", ["100", "sos", "final:5", "413"]),
    ("not-recognizing", ["410"]),
    ("bad-request", ["400"]),
  ]

  @Test("each scenario gives its exact sequence", arguments: scenarios)
  func scenario(_ name: String, _ expected: [String]) async throws {
    let server = RecognizerServer(configuration: .init(host: "127.0.0.1", port: 0, recognizers: 4))
    { DTMFEngine() }
    let port = try await server.start().port!
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent()
    let (output, errors) = try await Self.run(
      root.appendingPathComponent(".venv/bin/python").path,
      [
        root.appendingPathComponent("tools/interop/recognize_client.py").path, "--target",
        "127.0.0.1:\(port)", "--scenario", name,
      ]
    )
    let result = try JSONDecoder().decode(Result.self, from: output)
    #expect(
      result.ok,
      "\(name): \(result.failure ?? "") \(String(decoding: errors, as: UTF8.self))"
    )
    #expect(result.summary == expected)
    #expect(result.grpc_status == "OK")
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  /// Runs a process on a thread of its own and returns its stdout and stderr.
  static func run(_ executable: String, _ arguments: [String]) async throws -> (Data, Data) {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        do {
          let process = Process()
          process.executableURL = URL(fileURLWithPath: executable)
          process.arguments = arguments
          let stdout = Pipe()
          let stderr = Pipe()
          process.standardOutput = stdout
          process.standardError = stderr
          try process.run()
          let output = stdout.fileHandleForReading.readDataToEndOfFile()
          let errors = stderr.fileHandleForReading.readDataToEndOfFile()
          process.waitUntilExit()
          continuation.resume(returning: (output, errors))
        } catch {
          continuation.resume(throwing: error)
        }
      }
    }
  }
}
