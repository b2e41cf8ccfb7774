import Foundation

/// tools/oauth_server.py: an OAuth2 token endpoint (client-credentials grant) over HTTPS on a
/// loopback port, with a certificate of a ``TestPKI``. It issues `tok-1`, `tok-2`, … and counts
/// what it served (``stats()``).
public final class OAuthTokenServer: @unchecked Sendable {
  /// What the server served.
  public struct Stats: Decodable, Sendable {
    /// A token it issued.
    public struct Issued: Decodable, Sendable {
      public var token: String
      /// Unix time, seconds.
      public var issued_at: Double
      public var expires_in: Int
    }

    /// POST requests to the token path, answered or not.
    public var token_requests: Int
    public var issued: [Issued]
    /// Requests answered 500 (--fail-first).
    public var failed: Int
    /// Requests answered 400 or 401.
    public var refused: Int
  }

  /// The port it listens on.
  public let port: Int
  private let process: Process
  private let input: Pipe
  private let output: Pipe
  private let lock = NSLock()

  /// The token endpoint's URL.
  public var tokenURL: String { "https://127.0.0.1:\(port)/oauth2/token" }

  private init(process: Process, input: Pipe, output: Pipe, port: Int) {
    self.process = process
    self.input = input
    self.output = output
    self.port = port
  }

  /// Starts a server that grants `scope` to `clientID` and `clientSecret` for `expiresIn`
  /// seconds, answers 500 to the first `failFirst` requests and waits `delayMilliseconds`
  /// before each answer; waits until it listens.
  public static func start(
    pki: TestPKI,
    clientID: String,
    clientSecret: String,
    scope: String = "asr",
    expiresIn: Int = 900,
    failFirst: Int = 0,
    delayMilliseconds: Int = 0
  ) async throws -> OAuthTokenServer {
    let certificate = try pki.issueLocalServer()
    let arguments = [
      repositoryDirectory.appendingPathComponent("tools/oauth_server.py").path,
      "--cert", certificate.certificatePath, "--key", certificate.keyPath,
      "--client-id", clientID, "--client-secret", clientSecret, "--scope", scope,
      "--expires-in", String(expiresIn), "--fail-first", String(failFirst),
      "--delay-ms", String(delayMilliseconds),
    ]
    return try await offThread {
      let process = Process()
      process.executableURL = repositoryDirectory.appendingPathComponent(".venv/bin/python")
      process.arguments = arguments
      let input = Pipe()
      let output = Pipe()
      process.standardInput = input
      process.standardOutput = output
      process.standardError = FileHandle.nullDevice
      try process.run()
      let line = readLine(output)
      guard line.hasPrefix("LISTENING "), let port = Int(line.dropFirst("LISTENING ".count)) else {
        process.terminate()
        process.waitUntilExit()
        throw TestPKIError(message: "oauth_server.py did not start: '\(line)'")
      }
      return OAuthTokenServer(process: process, input: input, output: output, port: port)
    }
  }

  /// What it served so far.
  public func stats() async throws -> Stats {
    try await offThread { [self] in
      let line = lock.withLock {
        input.fileHandleForWriting.write(Data("stats\n".utf8))
        return Self.readLine(output)
      }
      return try JSONDecoder().decode(Stats.self, from: Data(line.utf8))
    }
  }

  /// Closes its stdin (its signal to stop) and waits for it to exit.
  public func stop() async {
    _ = try? await offThread { [self] in
      try? input.fileHandleForWriting.close()
      process.waitUntilExit()
    }
  }

  private static func readLine(_ pipe: Pipe) -> String {
    var bytes: [UInt8] = []
    let handle = pipe.fileHandleForReading
    while true {
      let byte = handle.readData(ofLength: 1)
      if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
      bytes.append(byte.first!)
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// The repository's root, found from this file's path.
let repositoryDirectory = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs blocking work (a process, its pipes) on a thread of its own, off Swift concurrency's few
/// threads.
func offThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
  }
}
