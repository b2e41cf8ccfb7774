import Foundation

/// The repository's root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

/// The venv's Python, where tools/bootstrap installed grpcio.
let venvPython = repositoryRoot.appendingPathComponent(".venv/bin/python")

/// A Python grpcio process of tools/interop, started by a test and stopped by it.
final class PythonProcess: @unchecked Sendable {
  let process = Process()
  let stdin = Pipe()
  let stdout = Pipe()
  let stderr = Pipe()

  init(script: String, arguments: [String]) throws {
    process.executableURL = venvPython
    process.arguments =
      [repositoryRoot.appendingPathComponent("tools/interop/\(script)").path] + arguments
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
  }

  /// Reads stdout up to the first newline.
  func readLine() -> String {
    var bytes: [UInt8] = []
    let handle = stdout.fileHandleForReading
    while true {
      let byte = handle.readData(ofLength: 1)
      if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
      bytes.append(byte.first!)
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Closes stdin (the server's signal to stop) and waits for the process to exit.
  func stop() {
    try? stdin.fileHandleForWriting.close()
    process.waitUntilExit()
  }
}

/// Runs blocking work (waiting for a process, reading its pipes) on a thread of its own, so that
/// it never holds one of the few threads Swift concurrency runs every test on.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread {
      continuation.resume(with: Result { try work() })
    }
  }
}

/// tools/interop/echo_server.py: a grpcio Echo server on a loopback port.
final class PythonEchoServer: Sendable {
  let process: PythonProcess
  let port: Int

  private init(process: PythonProcess, port: Int) {
    self.process = process
    self.port = port
  }

  /// Starts the server (with `tlsArguments`, e.g. `--tls-cert F --tls-key F`) and waits for
  /// its `LISTENING <port>` line.
  static func start(tlsArguments: [String] = []) async throws -> PythonEchoServer {
    try await offloaded {
      let process = try PythonProcess(
        script: "echo_server.py",
        arguments: ["--host", "127.0.0.1", "--port", "0"] + tlsArguments
      )
      let line = process.readLine()
      guard line.hasPrefix("LISTENING "), let port = Int(line.dropFirst("LISTENING ".count)) else {
        let errors = String(
          decoding: process.stderr.fileHandleForReading.availableData,
          as: UTF8.self
        )
        throw PeerError("echo_server.py did not start: '\(line)' \(errors)")
      }
      return PythonEchoServer(process: process, port: port)
    }
  }

  func stop() async {
    let process = self.process
    _ = try? await offloaded { process.stop() }
  }
}

/// The outcome of one scenario of tools/interop/echo_client.py, as its JSON says.
struct PythonScenarioResult: Decodable, Sendable {
  var scenario: String
  var ok: Bool
  var status_code: Int
  var status_name: String
  var status_details: String
  var responses: Int
  var failure: String?
  var initial_metadata: [String: StringOrList]
  var trailing_metadata: [String: StringOrList]
  var elapsed_ms: Int?
  var calls_ok: Int?

  enum StringOrList: Decodable, Sendable, Equatable {
    case string(String)
    case list([String])

    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let string = try? container.decode(String.self) {
        self = .string(string)
      } else {
        self = .list(try container.decode([String].self))
      }
    }
  }
}

/// Runs one scenario of tools/interop/echo_client.py against `port`.
func runPythonEchoClient(
  port: Int,
  scenario: String,
  count: Int? = nil,
  host: String = "127.0.0.1",
  tlsArguments: [String] = []
) async throws -> PythonScenarioResult {
  var arguments = ["--target", "\(host):\(port)", "--scenario", scenario] + tlsArguments
  if let count { arguments += ["--count", String(count)] }
  let (output, errors) = try await offloaded { [arguments] in
    let process = try PythonProcess(script: "echo_client.py", arguments: arguments)
    let output = process.stdout.fileHandleForReading.readDataToEndOfFile()
    let errors = process.stderr.fileHandleForReading.readDataToEndOfFile()
    process.process.waitUntilExit()
    return (output, errors)
  }
  do {
    return try JSONDecoder().decode(PythonScenarioResult.self, from: output)
  } catch {
    throw PeerError(
      "echo_client.py \(scenario) printed no result: \(String(decoding: output, as: UTF8.self)) "
        + String(decoding: errors, as: UTF8.self)
    )
  }
}

struct PeerError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass; returns whether it held.
func eventually(
  within seconds: Double = 30,
  _ condition: () async throws -> Bool
) async rethrows -> Bool {
  let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
  while ContinuousClock.now < deadline {
    if try await condition() { return true }
    try? await Task.sleep(nanoseconds: 10_000_000)
  }
  return try await condition()
}

/// Waits until `value` stops changing (the same over `quiet` seconds), within `seconds`;
/// returns the settled value.
func settled(within seconds: Double = 10, quiet: Double = 0.3, _ value: () -> Int) async -> Int {
  let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
  var last = value()
  while ContinuousClock.now < deadline {
    try? await Task.sleep(nanoseconds: UInt64(quiet * 1e9))
    let now = value()
    if now == last { return now }
    last = now
  }
  return last
}
