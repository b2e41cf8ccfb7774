import Foundation
import HarkGRPCCore
import HarkTestSupport
import Testing

@testable import HarkClient

/// The client-credentials grant as bytes and rules, without a network.
@Suite("OAuth2 client credentials: the wire format")
struct ClientCredentialsGrantTests {
  @Test(
    "id and secret are form-urlencoded before basic authentication (RFC 6749 §2.3.1)",
    arguments: [
      (
        "appID:NMDPTRIAL_someone_example_com_20240101",
        "appID%3ANMDPTRIAL_someone_example_com_20240101"
      ),
      ("a b+c", "a+b%2Bc"),
      ("*-._~", "*-._%7E"),
      ("%/=&?", "%25%2F%3D%26%3F"),
      ("é", "%C3%A9"),
    ]
  )
  func formURLEncoding(text: String, encoded: String) {
    #expect(ClientCredentialsGrant.formURLEncoded(text) == encoded)
  }

  @Test("the authorization header and the body")
  func request() {
    // base64("appID%3ANMDP:s3cr%3At") = YXBwSUQlM0FOTURQOnMzY3IlM0F0
    #expect(
      ClientCredentialsGrant.authorization(clientID: "appID:NMDP", secret: "s3cr:t")
        == "Basic YXBwSUQlM0FOTURQOnMzY3IlM0F0"
    )
    #expect(
      ClientCredentialsGrant.body(scope: "asr nlu") == "grant_type=client_credentials&scope=asr+nlu"
    )
  }

  @Test(
    "base64 (RFC 4648 §10)",
    arguments: [
      ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
      ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]
  )
  func base64(text: String, encoded: String) {
    #expect(ClientCredentialsGrant.base64(Array(text.utf8)) == encoded)
  }

  @Test(
    "what an answer means",
    arguments: [
      (
        200, #"{"access_token":"eyJ.a-b_c","expires_in":900,"token_type":"bearer"}"#,
        ClientCredentialsGrant.Answer.token("eyJ.a-b_c", lifetime: .seconds(900))
      ),
      (
        200, #"{"access_token":"t","expires_in":"60","token_type":"Bearer"}"#,
        .token("t", lifetime: .seconds(60))
      ),
      (200, #"{"access_token":"t"}"#, .token("t", lifetime: nil)),
      (
        401, #"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        .refused(error: "invalid_client", description: "Client authentication failed")
      ),
      (400, #"{"error":"invalid_scope"}"#, .refused(error: "invalid_scope", description: "")),
      (
        400, "{\"error\":\"invalid_request\",\"error_description\":\"two\\nlines\"}",
        .refused(error: "invalid_request", description: "two lines")
      ),
      (500, "oops", .transient("answered 500 Internal Server Error")),
      (429, "", .transient("answered 429 Too Many Requests")),
      (200, #"{"token_type":"bearer"}"#, .invalid("answered 200 without an access_token")),
      (
        200, #"{"access_token":"a b"}"#,
        .invalid("answered an access_token that cannot be sent in a header")
      ),
      (
        200, #"{"access_token":"t","token_type":"mac"}"#,
        .invalid("answered a token of type mac, not bearer")
      ),
      (200, "<html>", .invalid("answered 200 OK, not JSON")),
      (404, "<html>", .invalid("answered 404 Not Found, not JSON")),
    ]
  )
  func answers(status: Int, body: String, answer: ClientCredentialsGrant.Answer) {
    let reason =
      switch status {
      case 200: "OK"
      case 404: "Not Found"
      case 429: "Too Many Requests"
      case 500: "Internal Server Error"
      default: "Bad Request"
      }
    #expect(ClientCredentialsGrant.read(status: status, reason: reason, body: body) == answer)
  }

  @Test(
    "a token is fresh, then due for refresh (10 %, at least 30 s, at most half), then expired",
    arguments: [
      // lifetime, seconds after it was obtained, phase
      (900, 0, TokenLifetime.Phase.fresh), (900, 809, .fresh), (900, 810, .refreshDue),
      (900, 899, .refreshDue), (900, 900, .expired),
      (120, 89, .fresh), (120, 90, .refreshDue), (120, 120, .expired),
      (4, 1, .fresh), (4, 2, .refreshDue), (4, 4, .expired),
    ]
  )
  func lifetime(seconds: Int, after: Int, phase: TokenLifetime.Phase) {
    let obtained = ContinuousClock.now
    let lifetime = TokenLifetime(obtained: obtained, lifetime: .seconds(seconds))
    #expect(lifetime.phase(at: obtained + .seconds(after)) == phase)
  }

  @Test("a token without expires_in is never refreshed")
  func noExpiry() {
    let lifetime = TokenLifetime(obtained: .now, lifetime: nil)
    #expect(lifetime.phase(at: .now + .seconds(86_400)) == .fresh)
  }

  @Test("a token's description, debug description and dump show no token")
  func redaction() {
    let token = AccessToken("tok-SECRET", expiresAt: .now + .seconds(840.5))
    #expect("\(token)" == "AccessToken(<redacted>, expires in 840 s)")
    #expect(String(reflecting: token) == "AccessToken(<redacted>, expires in 840 s)")
    var dumped = ""
    dump(token, to: &dumped)
    #expect(!dumped.contains("SECRET"), "\(dumped)")
    #expect("\(AccessToken("x"))" == "AccessToken(<redacted>)")
    #expect(token.authorization == "Bearer tok-SECRET")
  }

  @Test("the token URL must be https (http only to loopback) and hold no credentials")
  func tokenURLs() {
    for url in [
      "https://auth.crt.nuance.com/oauth2/token", "http://127.0.0.1:8080/token",
      "http://localhost/token", "http://[::1]:80/token",
    ] {
      #expect(throws: Never.self, "\(url)") { try OAuth2ClientCredentials.check(tokenURL: url) }
    }
    for url in [
      "http://auth.example.com/token", "ftp://x/y", "https://id:pw@auth.example.com/t",
      "https:///t",
    ] {
      #expect(throws: TokenError.self, "\(url)") {
        try OAuth2ClientCredentials.check(tokenURL: url)
      }
    }
  }
}

/// The token file provider on real files.
@Suite("Token files")
struct TokenFileTests {
  @Test("a file's token: without the spaces and line breaks around it, CRLF included")
  func trimming() {
    for text in ["abc.def", "abc.def\n", "abc.def\r\n", "  abc.def \r\n\r\n", "\nabc.def\r"] {
      #expect(TokenFile.token(fromText: text) == "abc.def", "\(text.debugDescription)")
    }
    #expect(TokenFile.token(fromText: " \r\n") == "")
  }

  @Test("re-read when it changes: rewritten in place, replaced by a rename; errors name the file")
  func rereading() async throws {
    let directory = NSTemporaryDirectory() + "hark-token-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/token"
    let provider = TokenFile(path: path)

    await #expect(throws: TokenError.self) { try await provider.token() }
    do {
      _ = try provider.current()
    } catch {
      #expect(error.code == .unreadableFile)
      #expect(error.message == "cannot read the token file \(path): no such file or directory")
      #expect(error.status.code == .unauthenticated)
    }

    try "tok-1\n".write(toFile: path, atomically: false, encoding: .utf8)
    #expect(try await provider.token().value == "tok-1")
    // The same size, rewritten in place: the modification time tells.
    try "tok-2\n".write(toFile: path, atomically: false, encoding: .utf8)
    #expect(try await provider.token().value == "tok-2")
    // Replaced by a rename (a new inode), as a renewing sidecar does.
    try "tok-3\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(try await provider.token().value == "tok-3")
    #expect(try await provider.token().value == "tok-3")

    try "\n".write(toFile: path, atomically: true, encoding: .utf8)
    #expect(throws: TokenError(.unreadableFile, "cannot read the token file \(path): it is empty"))
    {
      try provider.current()
    }
  }
}

/// `OAuth2ClientCredentials` against tools/oauth_server.py over HTTPS, with a test CA.
@Suite("OAuth2 client credentials against a token endpoint", .serialized, .timeLimit(.minutes(2)))
struct OAuth2ClientCredentialsTests {
  static let clientID = "appID:NMDPTRIAL_hark_test_20250101"
  static let secret = "s3cr:et+%/é"

  static func provider(
    _ server: OAuthTokenServer,
    pki: TestPKI,
    secret: String = secret,
    scope: String = "asr",
    retry: OAuth2ClientCredentials.RetryPolicy = .init()
  ) throws -> OAuth2ClientCredentials {
    try OAuth2ClientCredentials(
      tokenURL: server.tokenURL,
      clientID: clientID,
      clientSecret: secret,
      scope: scope,
      caFiles: [pki.caPath],
      retry: retry
    )
  }

  @Test("200 concurrent calls at start: one request, one token for all; then the cache")
  func singleFlight() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret,
      delayMilliseconds: 300
    )
    let provider = try Self.provider(server, pki: pki)
    let tokens = try await withThrowingTaskGroup(of: AccessToken.self) { group in
      for _ in 0..<200 { group.addTask { try await provider.token() } }
      return try await group.reduce(into: [AccessToken]()) { $0.append($1) }
    }
    #expect(tokens.count == 200)
    #expect(Set(tokens.map(\.value)) == ["tok-1"])
    #expect(try await provider.token().value == "tok-1")
    #expect(try await server.stats().token_requests == 1)
    #expect(await provider.requestCount == 1)
    let expiresAt = try #require(tokens[0].expiresAt)
    #expect(expiresAt - .now > .seconds(890) && expiresAt - .now <= .seconds(900))
    await provider.close()
    await server.stop()
  }

  @Test("a 3 s token: the next is fetched before it expires, and no call gets an expired one")
  func refreshAhead() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret,
      expiresIn: 3
    )
    let provider = try Self.provider(server, pki: pki)
    // Each call's token and the wall-clock time it returned.
    var calls: [(token: String, at: Double)] = []
    let end = Date().timeIntervalSince1970 + 7.5
    while Date().timeIntervalSince1970 < end {
      let token = try await provider.token()
      let now = Date().timeIntervalSince1970
      #expect(!token.isExpired())
      calls.append((token.value, now))
      try await Task.sleep(for: .milliseconds(50))
    }
    let issued = try await server.stats().issued
    // Refreshed at half the lifetime: about one new token every 1.5 s.
    #expect((4...6).contains(issued.count), "\(issued.map(\.token))")
    let issuedAt = Dictionary(uniqueKeysWithValues: issued.map { ($0.token, $0.issued_at) })
    for call in calls {
      let at = try #require(issuedAt[call.token])
      #expect(call.at < at + 3, "\(call.token) handed out \(call.at - at) s after it was issued")
    }
    // Each token was issued while the one before was still valid.
    for (previous, next) in zip(issued, issued.dropFirst()) {
      #expect(next.issued_at < previous.issued_at + 3)
    }
    // Every token but perhaps the last (still being fetched when the calls stopped) was used.
    #expect(Set(calls.map(\.token)).count >= issued.count - 1)
    await provider.close()
    await server.stop()
  }

  @Test("500s are retried with backoff until a token comes")
  func backoff() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret,
      failFirst: 2
    )
    let provider = try Self.provider(server, pki: pki)
    let start = ContinuousClock.now
    #expect(try await provider.token().value == "tok-1")
    // Waits of at least 125 and 250 ms (half of each step, plus a random part).
    #expect(ContinuousClock.now - start >= .milliseconds(375))
    let stats = try await server.stats()
    #expect(stats.token_requests == 3)
    #expect(stats.failed == 2)
    await provider.close()
    await server.stop()
  }

  @Test("retries are bounded: the last failure, in one line, naming the URL")
  func boundedRetries() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret,
      failFirst: 100
    )
    let provider = try Self.provider(
      server,
      pki: pki,
      retry: .init(maxAttempts: 3, initialBackoff: .milliseconds(20))
    )
    do {
      _ = try await provider.token()
      Issue.record("a token despite the 500s")
    } catch let error as TokenError {
      #expect(error.code == .unavailable)
      #expect(
        error.message
          == "the token endpoint \(server.tokenURL) answered 500 Internal Server Error (3 attempts)"
      )
      #expect(error.status.code == .unavailable)
    }
    #expect(try await server.stats().token_requests == 3)
    await provider.close()
    await server.stop()
  }

  @Test(
    "a refusal is not retried; its one-line error names the URL and the OAuth2 error",
    arguments: [
      (
        "Wr0ng-s3cret", "asr", "invalid_client",
        "refused client appID:NMDPTRIAL_hark_test_20250101 (wrong client ID or secret): invalid_client: Client authentication failed"
      ),
      (
        "s3cr:et+%/é", "nlu", "invalid_scope",
        "refused scope 'nlu': invalid_scope: The requested scope is invalid"
      ),
    ]
  )
  func refusals(secret: String, scope: String, error expected: String, message: String) async throws
  {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    let provider = try Self.provider(server, pki: pki, secret: secret, scope: scope)
    do {
      _ = try await provider.token()
      Issue.record("a token despite \(expected)")
    } catch let error as TokenError {
      #expect(error.code == .refused)
      #expect(error.details == expected)
      #expect(error.message == "the token endpoint \(server.tokenURL) \(message)")
      #expect(error.status.code == .unauthenticated)
      #expect(!error.message.contains(Self.secret) && !error.message.contains("Wr0ng"))
    }
    #expect(try await server.stats().token_requests == 1)
    await provider.close()
    await server.stop()
  }

  @Test("an endpoint nobody listens on: tried again, then UNAVAILABLE naming the URL")
  func unreachable() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    await server.stop()
    let provider = try Self.provider(
      server,
      pki: pki,
      retry: .init(maxAttempts: 3, initialBackoff: .milliseconds(20))
    )
    let start = ContinuousClock.now
    do {
      _ = try await provider.token()
      Issue.record("a token from nowhere")
    } catch let error as TokenError {
      #expect(error.code == .unavailable)
      #expect(error.status.code == .unavailable)
      #expect(
        error.message.hasPrefix("cannot get a token from \(server.tokenURL): "),
        "\(error.message)"
      )
      #expect(error.message.hasSuffix(" (3 attempts)"), "\(error.message)")
      #expect(!error.message.contains("\n"))
    }
    #expect(await provider.requestCount == 3)
    #expect(ContinuousClock.now - start < .seconds(5))
    await provider.close()
  }

  @Test("the endpoint's certificate must chain to a trusted CA: without --cacert's CA, a TLS error")
  func trust() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let server = try await OAuthTokenServer.start(
      pki: pki,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    let untrusting = try OAuth2ClientCredentials(
      tokenURL: server.tokenURL,
      clientID: Self.clientID,
      clientSecret: Self.secret
    )
    do {
      _ = try await untrusting.token()
      Issue.record("a token from an untrusted endpoint")
    } catch let error as TokenError {
      #expect(error.code == .unavailable)
      #expect(
        error.message
          == "cannot get a token from \(server.tokenURL): TLS: the endpoint's certificate is not trusted (CERTIFICATE_VERIFY_FAILED)"
      )
    }
    // Not retried: the certificate will not change.
    #expect(await untrusting.requestCount == 1)
    #expect(try await server.stats().token_requests == 0)
    await untrusting.close()

    let trusting = try Self.provider(server, pki: pki)
    #expect(try await trusting.token().value == "tok-1")
    await trusting.close()

    #expect(throws: TokenError.self) {
      try OAuth2ClientCredentials(
        tokenURL: server.tokenURL,
        clientID: Self.clientID,
        clientSecret: Self.secret,
        caFiles: ["/nonexistent/ca.pem"]
      )
    }
    await server.stop()
  }
}
