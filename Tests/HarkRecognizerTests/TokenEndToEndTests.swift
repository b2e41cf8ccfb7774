import HarkAudio
import HarkClient
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import Testing

/// A recognizer that accepts only the token tools/oauth_server.py issued, and a client that gets
/// it by the client-credentials grant: the whole path of a Nuance Mix call, on loopback.
@Suite(
  "Tokens end to end: token endpoint → client → recognizer",
  .serialized,
  .timeLimit(.minutes(1))
)
struct TokenEndToEndTests {
  static let clientID = "appID:NMDPTRIAL_hark_test_20250101"
  static let secret = "s3cr:et"

  /// A recognizer whose `authorize` accepts `Bearer tok-1` only, and records what it saw.
  static func harness(seen: NIOLockedValueBox<[String]>) async throws -> RecognizerHarness {
    try await RecognizerHarness.start(authorize: { metadata, _ in
      let authorization = metadata.first("authorization") ?? ""
      seen.withLockedValue { $0.append(authorization) }
      guard authorization == "Bearer tok-1" else {
        return RecognitionStatus(
          code: 401,
          message: "Unauthorized",
          details: "a valid bearer token is required"
        )
      }
      return nil
    })
  }

  @Test("the OAuth2 provider's token reaches the recognizer: 200, one token request for two calls")
  func authorized() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let tokens = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    let seen = NIOLockedValueBox<[String]>([])
    let harness = try await Self.harness(seen: seen)
    let provider = try OAuth2ClientCredentials(
      tokenURL: tokens.tokenURL,
      clientID: Self.clientID,
      clientSecret: Self.secret,
      caFiles: [pki.caPath]
    )
    let client = RecognizerClient(host: "127.0.0.1", port: harness.port, tokenProvider: provider)
    for _ in 0..<2 {
      let frames = AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("42")))
        .frames(frameMilliseconds: 20)
      // A stale authorization of the caller's is replaced by the provider's.
      var metadata = GRPCMetadata()
      try metadata.add("authorization", "Bearer stale")
      try metadata.add("x-call", "7")
      let outcome = try await client.recognize(
        makeInit(mode: .single),
        audio: frames,
        metadata: metadata
      )
      #expect(outcome.kind == .success, "\(outcome)")
    }
    #expect(seen.withLockedValue { $0 } == ["Bearer tok-1", "Bearer tok-1"])
    #expect(try await tokens.stats().token_requests == 1)
    await client.close()
    await provider.close()
    await harness.stop()
    await tokens.stop()
  }

  @Test(
    "refused credentials: no call at all, unauthorized (UNAUTHENTICATED) naming invalid_client"
  )
  func refused() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let tokens = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    let seen = NIOLockedValueBox<[String]>([])
    let harness = try await Self.harness(seen: seen)
    let provider = try OAuth2ClientCredentials(
      tokenURL: tokens.tokenURL,
      clientID: Self.clientID,
      clientSecret: "wrong-secret",
      caFiles: [pki.caPath]
    )
    let client = RecognizerClient(host: "127.0.0.1", port: harness.port, tokenProvider: provider)
    let frames = AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("42")))
      .frames(frameMilliseconds: 20)
    var events: [RecognitionEvent] = []
    let outcome = try await client.recognize(
      makeInit(),
      audio: frames,
      onEvent: { events.append($0) }
    )
    #expect(outcome.kind == .unauthorized)
    #expect(outcome.transportStatus?.code == .unauthenticated)
    let message = outcome.transportStatus?.message ?? ""
    #expect(message.contains("invalid_client") && message.contains(tokens.tokenURL), "\(message)")
    #expect(!message.contains("wrong-secret"))
    #expect(events.map(\.summary) == ["unauthorized"])
    #expect(seen.withLockedValue { $0 }.isEmpty)
    #expect(harness.server.statistics.rpcs == 0)
    await client.close()
    await provider.close()
    await harness.stop()
    await tokens.stop()
  }

  @Test("a fixed token and a token file are sent as they are")
  func fixedAndFile() async throws {
    let seen = NIOLockedValueBox<[String]>([])
    let harness = try await Self.harness(seen: seen)
    let pki = try TestPKI()
    defer { pki.remove() }
    let path = try pki.write("\n tok-1 \r\n", to: "token")
    for provider in [FixedToken("tok-1"), TokenFile(path: path)] as [any TokenProvider] {
      let client = RecognizerClient(host: "127.0.0.1", port: harness.port, tokenProvider: provider)
      let frames = AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("1")))
        .frames(frameMilliseconds: 20)
      let outcome = try await client.recognize(makeInit(mode: .single), audio: frames)
      #expect(outcome.kind == .success, "\(outcome)")
      await client.close()
    }
    #expect(seen.withLockedValue { $0 } == ["Bearer tok-1", "Bearer tok-1"])
    await harness.stop()
  }
}
