import Foundation
import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Keepalive against a real `hark serve` that stops answering (SIGSTOP): the call fails within
/// the keepalive interval plus its timeout, rather than hanging for as long as TCP keeps trying.
@Suite("Keepalive against a stopped server", .timeLimit(.minutes(1)))
struct KeepaliveTests {
  static func initMessage() -> RecognitionInitMessage {
    var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
    parameters.utteranceDetectionMode = .multiple
    return RecognitionInitMessage(parameters: parameters)
  }

  @Test("the library: UNAVAILABLE once a PING goes unanswered, and not before")
  func library() async throws {
    // The server permits the test's fast pings (hark serve's default is one per 30 s).
    let server = try await HarkServeProcess.start(extra: ["--permit-keepalive-time", "100ms"])
    defer { server.signal(SIGCONT) }
    let configuration = GRPCClientConfiguration(
      keepaliveInterval: .milliseconds(300),
      keepaliveTimeout: .milliseconds(300),
      keepaliveMinimumInterval: .milliseconds(100)
    )
    let client = RecognizerClient(
      host: "127.0.0.1",
      port: server.port,
      configuration: configuration
    )
    let (audio, writer) = RecognitionAudio.makeStream()
    let started = NIOLockedValueBox(false)
    let call = Task {
      try await client.recognize(Self.initMessage(), audio: audio, retryPolicy: .none) {
        recognition in
        for await event in recognition.events {
          if case .started = event { started.withLockedValue { $0 = true } }
        }
        return await recognition.outcome
      }
    }
    _ = writer.yield(ByteBuffer(repeating: 0, count: 320))
    #expect(await waitUntil { started.withLockedValue { $0 } })
    // A live but quiet server answers the pings: the call stays up past several intervals.
    try await Task.sleep(for: .milliseconds(1200))
    #expect(!call.isCancelled)
    server.signal(SIGSTOP)
    let outcome = try await call.value
    #expect(outcome.transportStatus?.code == .unavailable, "\(outcome)")
    #expect(outcome.transportStatus?.message.contains("keepalive") == true, "\(outcome)")
    server.signal(SIGCONT)
    await client.close()
    await server.stop()
  }

  @Test("hark recognize: exit 9 within --keepalive plus --keepalive-timeout")
  func command() async throws {
    let server = try await HarkServeProcess.start()
    defer { server.signal(SIGCONT) }
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", "ulaw",
      "--verbose", "--keepalive", "10s", "--keepalive-timeout", "1s",
    ])
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    process.write(encoded(generator.generate([.silence(milliseconds: 200)]), format: .ulaw))
    try await process.waitForStandardError(containing: "← status 100")
    server.signal(SIGSTOP)
    let status = try await process.wait()
    #expect(status == 9, "\(process.standardError)")
    #expect(process.standardError.contains("keepalive PING not acknowledged"))
    process.closeInput()
    server.signal(SIGCONT)
    await server.stop()
  }

  @Test("--keepalive below gRPC's 10 s floor is refused in one line")
  func floor() async throws {
    let result = try await hark([
      "recognize", "x.wav", "--plaintext", "--server", "127.0.0.1:1", "--keepalive", "5s",
    ])
    #expect(result.status == 64)
    #expect(result.standardError.contains("--keepalive must be 0 (none) or at least 10s"))
  }

  @Test(
    "--retries and --max-stream-duration out of range are refused in one line",
    arguments: [
      (["--retries", "101"], "--retries must be from 0 to 100, not 101"),
      (["--retries=-1"], "--retries must be from 0 to 100, not -1"),
      (["--max-stream-duration", "500ms"], "--max-stream-duration must be at least 1s, not 500ms"),
    ]
  )
  func retryAndResumeFlags(_ flags: [String], _ message: String) async throws {
    let result = try await hark(
      ["recognize", "x.wav", "--plaintext", "--server", "127.0.0.1:1"] + flags
    )
    #expect(result.status == 64)
    #expect(result.standardError.contains(message), "\(result.standardError)")
  }

  func waitUntil(_ condition: @escaping @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(20)
    while !condition() {
      if ContinuousClock.now > deadline { return false }
      try? await Task.sleep(for: .milliseconds(20))
    }
    return true
  }
}

@Suite("hark health", .timeLimit(.minutes(1)))
struct HealthCommandTests {
  @Test("exit 0 SERVING, 1 for a service the server does not know, 9 without a server")
  func exitCodes() async throws {
    let server = try await HarkServeProcess.start()
    let serving = try await hark(["health", "127.0.0.1:\(server.port)", "--plaintext"])
    #expect(serving.status == 0, "\(serving.standardError)")
    #expect(serving.standardOutput == "SERVING\n")
    let recognizer = try await hark([
      "health", "127.0.0.1:\(server.port)", "--plaintext", "--service", "nuance.asr.v1.Recognizer",
    ])
    #expect(recognizer.status == 0)
    let unknown = try await hark([
      "health", "127.0.0.1:\(server.port)", "--plaintext", "--service", "nope",
    ])
    #expect(unknown.status == 1)
    #expect(unknown.standardOutput == "SERVICE_UNKNOWN\n")
    await server.stop()
    let gone = try await hark(["health", "127.0.0.1:\(server.port)", "--plaintext"])
    #expect(gone.status == 9)
    #expect(gone.standardError.contains("connection refused"), "\(gone.standardError)")
  }
}
