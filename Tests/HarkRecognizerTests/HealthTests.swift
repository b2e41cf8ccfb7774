import Foundation
import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The standard health service (grpc.health.v1) of the recognizer, asked by Hark's own client
/// and by grpcio-health-checking, the client load balancers and probes use.
@Suite("Health service", .timeLimit(.minutes(1)))
struct HealthTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// What tools/interop/health_client.py prints.
  struct PythonResult: Decodable, Sendable {
    var check: String?
    var watch: [String]?
    var watch_end: String?
  }

  /// Runs tools/interop/health_client.py.
  static func python(_ arguments: [String]) async throws -> PythonResult {
    let (output, errors) = try await GRPCIORecognizeTests.run(
      root.appendingPathComponent(".venv/bin/python").path,
      [root.appendingPathComponent("tools/interop/health_client.py").path] + arguments
    )
    guard let result = try? JSONDecoder().decode(PythonResult.self, from: output) else {
      throw GRPCStatus(.internalError, "no JSON: \(String(decoding: errors, as: UTF8.self))")
    }
    return result
  }

  static func check(_ channel: GRPCChannel, _ service: String) async throws -> String {
    do {
      return try await channel.withCall(
        path: HealthService.checkPath,
        request: HealthCheckRequest.self,
        response: HealthCheckResponse.self
      ) { call in
        try await call.send(HealthCheckRequest(service: service))
        await call.finish()
        var status = "none"
        for try await response in call.responses {
          status = "\(response.status.map { "\($0)" } ?? "?")"
        }
        return status
      }
    } catch let status as GRPCStatus {
      return "\(status.code)"
    }
  }

  @Test("Check: SERVING for the server and Recognize, NOT_FOUND for another; no token needed")
  func check() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(tokensFile: issuer.write("tokens", "ivr-token *\n"))
    )
    let harness = try await RecognizerHarness.start(configure: { $0.authenticator = authenticator })
    let channel = GRPCChannel(host: "127.0.0.1", port: harness.port)
    #expect(try await Self.check(channel, "") == "SERVING")
    #expect(try await Self.check(channel, "nuance.asr.v1.Recognizer") == "SERVING")
    #expect(try await Self.check(channel, "nope") == "NOT_FOUND")
    // A Recognize without a token is refused meanwhile: health alone is exempt.
    let refused = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("1")))
    #expect(refused.map(\.summary) == ["401"])

    let grpcio = try await Self.python(["--target", "127.0.0.1:\(harness.port)"])
    #expect(grpcio.check == "SERVING", "\(grpcio)")
    let unknown = try await Self.python([
      "--target", "127.0.0.1:\(harness.port)", "--service", "nope",
    ])
    #expect(unknown.check == "NOT_FOUND", "\(unknown)")
    await channel.close()
    await harness.stop()
  }

  @Test("Watch: SERVING, then NOT_SERVING when the server drains, and the watch ends with it")
  func watch() async throws {
    let harness = try await RecognizerHarness.start()
    let port = harness.port
    let watcher = Task {
      try await Self.python(["--target", "127.0.0.1:\(port)", "--watch", "3"])
    }
    // The watch is open (its first status sent) before the drain.
    #expect(await eventually { harness.server.connectionCount >= 1 })
    try await Task.sleep(for: .milliseconds(500))
    let drained = await harness.server.drain(timeout: .seconds(20))
    let result = try await watcher.value
    #expect(result.watch == ["SERVING", "NOT_SERVING"], "\(result)")
    #expect(result.watch_end == "ended", "\(result)")
    // The watch did not hold the drain open.
    #expect(drained.ending == .drained)
    #expect(harness.server.health.status(of: "") == .notServing)
    await harness.client.close()
  }
}

extension HealthTests {
  @Test(
    "listening while the engines load: NOT_SERVING and UNAVAILABLE (with a pushback), then SERVING"
  )
  func loading() async throws {
    let gate = NIOLockedValueBox(false)
    var configuration = RecognizerServer.Configuration(host: "127.0.0.1", port: 0, recognizers: 2)
    configuration.prewarmEngines = true
    let server = RecognizerServer(configuration: configuration) {
      // A model that takes until the test lets it load.
      while !gate.withLockedValue({ $0 }) { usleep(10_000) }
      return DTMFEngine()
    }
    let port = try await server.startListening().port!
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    #expect(try await Self.check(channel, "") == "NOT_SERVING")
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let refused = try await client.recognize(
      makeInit(),
      audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1")))
        .frames(frameMilliseconds: 20),
      retryPolicy: .none
    )
    #expect(refused.transportStatus?.code == .unavailable, "\(refused)")
    #expect(refused.transportStatus?.retryPushbackMilliseconds == 1000)
    gate.withLockedValue { $0 = true }
    await server.waitUntilReady()
    #expect(try await Self.check(channel, "nuance.asr.v1.Recognizer") == "SERVING")
    let served = try await client.recognize(
      makeInit(mode: .single),
      audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1")))
        .frames(frameMilliseconds: 20)
    )
    #expect(served.code == 200)
    await client.close()
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}

extension HealthTests {
  @Test(
    "a health-only plaintext listener: health answers there, Recognize does not; NOT_SERVING while draining"
  )
  func healthListener() async throws {
    let harness = try await RecognizerHarness.start(configure: { configuration in
      configuration.healthListener = ("127.0.0.1", 0)
    })
    let healthPort = try #require(harness.server.healthAddress?.port)
    #expect(healthPort != harness.port)
    let probe = GRPCChannel(host: "127.0.0.1", port: healthPort)
    #expect(try await Self.check(probe, "") == "SERVING")
    let grpcio = try await Self.python(["--target", "127.0.0.1:\(healthPort)"])
    #expect(grpcio.check == "SERVING")
    // Only health is served there.
    let other = RecognizerClient(host: "127.0.0.1", port: healthPort)
    let refused = try await other.recognize(
      makeInit(),
      audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1")))
        .frames(frameMilliseconds: 20),
      retryPolicy: .none
    )
    #expect(refused.transportStatus?.code == .unimplemented, "\(refused)")
    // A call in flight keeps the drain going; the probe sees NOT_SERVING meanwhile.
    let held = Task {
      try await harness.rawCall([.initMessage(makeInit())], holdUntil: { false }, halfClose: false)
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    let drain = Task { await harness.server.drain(timeout: .seconds(2)) }
    #expect(await eventually { harness.server.health.status(of: "") == .notServing })
    #expect(try await Self.check(probe, "") == "NOT_SERVING")
    _ = await drain.value
    _ = try await held.value
    await other.close()
    await probe.close()
    await harness.client.close()
  }
}
