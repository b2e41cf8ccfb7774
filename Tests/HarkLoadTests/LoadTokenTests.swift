import Foundation
import HarkClient
import HarkGRPCCore
import HarkLoad
import HarkProto
import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The run's one token provider: every session sends the token current when it starts.
@Suite("hark load with a token provider", .serialized, .timeLimit(.minutes(1)))
struct LoadTokenTests {
  @Test("sessions send the provider's token, and the new one once the token file changes")
  func tokenFileChanges() async throws {
    let directory = NSTemporaryDirectory() + "hark-load-token-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/token"
    try "tok-a\n".write(toFile: path, atomically: true, encoding: .utf8)

    let seen = NIOLockedValueBox<[String]>([])
    var serverConfiguration = RecognizerServer.Configuration(
      host: "127.0.0.1",
      port: 0,
      recognizers: 100
    )
    serverConfiguration.authorize = { metadata, _ in
      let authorization = metadata.first("authorization") ?? ""
      seen.withLockedValue { $0.append(authorization) }
      guard ["Bearer tok-a", "Bearer tok-b"].contains(authorization) else {
        return RecognitionStatus(code: 401, message: "Unauthorized", details: "")
      }
      return nil
    }
    let server = RecognizerServer(configuration: serverConfiguration) { DTMFEngine() }
    let port = try await server.start().port!
    var configuration = LoadGeneratorTests.configuration(
      port: port,
      arrivals: .closed(sessions: 10),
      duration: 3.5
    )
    configuration.tokenProvider = TokenFile(path: path)
    // The token changes once the server has seen the first session (not at a fixed time: on a
    // busy machine the run may take longer than that to start).
    let renewal = Task {
      while seen.withLockedValue({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
      try await Task.sleep(for: .milliseconds(300))
      try "tok-b\n".write(toFile: path, atomically: true, encoding: .utf8)
    }
    let report = try await LoadGenerator(configuration: configuration).run()
    try await renewal.value

    #expect(report.counters.sessionsFailed == 0, "\(report.counters.statuses)")
    let tokens = seen.withLockedValue { $0 }
    #expect(tokens.count == report.counters.sessionsStarted)
    #expect(Set(tokens) == ["Bearer tok-a", "Bearer tok-b"])
    // The first sessions started with tok-a, the last with tok-b.
    #expect(tokens.first == "Bearer tok-a")
    #expect(tokens.last == "Bearer tok-b")
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a provider that has no token: the run does not start, the error says why")
  func noToken() async throws {
    var configuration = LoadGeneratorTests.configuration(
      port: 1,
      arrivals: .closed(sessions: 1),
      duration: 1
    )
    configuration.tokenProvider = TokenFile(path: "/nonexistent/token")
    await #expect(
      throws: TokenError(
        .unreadableFile,
        "cannot read the token file /nonexistent/token: no such file or directory"
      )
    ) {
      _ = try await LoadGenerator(configuration: configuration).run()
    }
  }
}
