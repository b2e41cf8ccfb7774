import Foundation
import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOCore
import NIOPosix
import Testing

/// nginx (Debian's nginx-light, installed by tools/bootstrap) in front of a recognizer with
/// `grpc_pass`: a real HTTP/2 proxy that nobody here wrote, which opens an upstream connection
/// per stream and must pass the requests (te: trailers, content-type) Hark's server insists on.
@Suite("Through nginx", .timeLimit(.minutes(2)))
struct NginxProxyTests {
  @Test("recognitions through nginx's grpc_pass: statuses, partials and finals arrive intact")
  func recognizeThroughNginx() async throws {
    let harness = try await RecognizerHarness.start(recognizers: 8)
    let nginx = try NginxProcess(upstreamPort: harness.port)
    defer { nginx.stop() }
    let client = RecognizerClient(host: "127.0.0.1", port: nginx.port)
    // nginx takes a moment to listen.
    var events: [RecognitionEvent] = []
    for attempt in 0..<50 {
      do {
        events = try await Self.recognize(client, keys: "123")
        if events.last?.summary == "200" { break }
      } catch  where attempt < 49 {
        // Not listening yet.
      }
      try await Task.sleep(for: .milliseconds(100))
    }
    #expect(
      events.map(\.summary) == [
        "100", "sos", "partial:1", "partial:12", "partial:123", "final:123", "200",
      ],
      "\(events.map(\.summary)) \(nginx.errorLog)"
    )
    // Several at once: nginx opens an upstream connection per stream.
    let summaries = try await withThrowingTaskGroup(of: String?.self) { group in
      for keys in ["4", "56", "789", "0#", "*1"] {
        group.addTask { try await Self.recognize(client, keys: keys).map(\.summary).last }
      }
      var all: [String?] = []
      for try await summary in group { all.append(summary) }
      return all
    }
    #expect(summaries == Array(repeating: "200", count: 5), "\(nginx.errorLog)")
    #expect(harness.server.limitCounts.counts.isEmpty, "\(harness.server.limitCounts)")
    await client.close()
    await harness.stop()
  }

  @Test("nginx terminates TLS and forwards the bearer token to a plaintext recognizer")
  func terminateTLS() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let harness = try await RecognizerHarness.start(recognizers: 4) { metadata, _ in
      metadata.first("authorization") == "Bearer secret-1"
        ? nil : RecognitionStatus(code: 401, message: "Unauthorized", details: "bad token")
    }
    let nginx = try NginxProcess(
      upstreamPort: harness.port,
      tls: (certificate.certificatePath, certificate.keyPath)
    )
    defer { nginx.stop() }
    let client = RecognizerClient(
      host: "localhost",
      port: nginx.port,
      configuration: GRPCClientConfiguration(tls: GRPCClientTLS(caFiles: [pki.caPath]))
    )
    var metadata = GRPCMetadata()
    try metadata.add("authorization", "Bearer secret-1")
    var summaries: [String] = []
    for attempt in 0..<50 {
      do {
        summaries = try await Self.recognize(client, keys: "42", metadata: metadata).map(\.summary)
        if summaries.last == "200" { break }
      } catch  where attempt < 49 {
        // Not listening yet.
      }
      try await Task.sleep(for: .milliseconds(100))
    }
    let log = nginx.errorLog
    #expect(summaries.first == "100" && summaries.last == "200", "\(summaries) \(log)")
    #expect(summaries.contains("final:42"))
    // Without the token, the recognizer behind nginx answers 401.
    let refused = try await Self.recognize(client, keys: "1").map(\.summary)
    #expect(refused == ["401"], "\(refused)")
    // nginx's certificate is checked: a client that does not trust its CA is refused.
    let stranger = RecognizerClient(
      host: "localhost",
      port: nginx.port,
      configuration: GRPCClientConfiguration(tls: GRPCClientTLS())
    )
    let outcome: RecognitionOutcome = try await stranger.recognize(
      makeInit(mode: .single, resultType: .final),
      audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1"))).frames()
    )
    #expect(outcome.kind == RecognitionOutcome.Kind.transportFailure)
    #expect("\(outcome)".contains("unknown certificate authority"), "\(outcome)")
    await stranger.close()
    await client.close()
    await harness.stop()
  }

  static func recognize(
    _ client: RecognizerClient,
    keys pressed: String,
    metadata: GRPCMetadata = GRPCMetadata()
  ) async throws
    -> [RecognitionEvent]
  {
    let frames = AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys(pressed)))
      .frames()
    return try await client.recognize(
      makeInit(mode: .single, resultType: .partial),
      audio: frames,
      metadata: metadata
    ) { recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events { events.append(event) }
      return events
    }
  }
}
