import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOCore
import Testing

/// A recognizer that requires bearer tokens, over real loopback sockets: 200, 401 and 403 as
/// the client library sees them.
@Suite("Authentication end to end")
struct AuthenticationTests {
  struct Call: Sendable, CustomTestStringConvertible {
    var name: String
    var token: String?
    var topic: String
    var expected: [String]
    var details: String?
    var testDescription: String { name }
  }

  @Test("tokens and JWTs: each token gets 200, 401 or 403, and its details never hold the token")
  func endToEnd() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(
        tokensFile: issuer.write("tokens", "ivr-token GEN\nload-token *\n"),
        jwksFile: issuer.jwksPath,
        issuer: TestJWTIssuer.issuer,
        audience: TestJWTIssuer.audience
      )
    )
    let harness = try await RecognizerHarness.start(configure: { $0.authenticator = authenticator })
    let success = ["100", "sos", "final:1", "200"]
    let calls = [
      Call(name: "a static token, its topic", token: "ivr-token", topic: "GEN", expected: success),
      Call(name: "a static token for *", token: "load-token", topic: "BANKING", expected: success),
      Call(name: "no topic is GEN", token: "ivr-token", topic: "", expected: success),
      Call(
        name: "no token",
        token: nil,
        topic: "GEN",
        expected: ["401"],
        details: "no authorization header; send authorization: Bearer TOKEN"
      ),
      Call(
        name: "an unknown token",
        token: "ivr-tokem",
        topic: "GEN",
        expected: ["401"],
        details: "the token is not one the server accepts"
      ),
      Call(
        name: "a static token, another topic",
        token: "ivr-token",
        topic: "BANKING",
        expected: ["403"],
        details: "the token may not use the topic BANKING"
      ),
      Call(
        name: "an ES256 JWT",
        token: try await issuer.sign(.ec, topics: ["GEN"]),
        topic: "GEN",
        expected: success
      ),
      Call(name: "an RS256 JWT", token: try await issuer.sign(.rsa), topic: "X", expected: success),
      Call(
        name: "an expired JWT",
        token: try await issuer.sign(.rsa, expiresIn: -300),
        topic: "GEN",
        expected: ["401"],
        details: "the JWT has expired (exp)"
      ),
      Call(
        name: "a forged JWT",
        token: try await issuer.sign(.ecImpostor),
        topic: "GEN",
        expected: ["401"],
        details: "the JWT's signature does not verify"
      ),
      Call(
        name: "a JWT for another audience",
        token: try await issuer.sign(.ec, audience: ["elsewhere"]),
        topic: "GEN",
        expected: ["401"],
        details: "the JWT's audience (aud) does not include the server's"
      ),
      Call(
        name: "a JWT without the topic",
        token: try await issuer.sign(.ec, topics: ["GEN"]),
        topic: "BANKING",
        expected: ["403"],
        details: "the token may not use the topic BANKING"
      ),
    ]
    for call in calls {
      var metadata = GRPCMetadata()
      if let token = call.token { try metadata.add("authorization", "Bearer \(token)") }
      let events = try await harness.recognize(
        makeInit(mode: .single) { $0.topic = call.topic },
        audio: dtmfAudio(keys("1")),
        metadata: metadata
      )
      #expect(events.map(\.summary) == call.expected, "\(call.name)")
      guard case .finished(let outcome)? = events.last else {
        Issue.record("\(call.name): no outcome")
        continue
      }
      if let details = call.details {
        #expect(outcome.status?.details == details, "\(call.name)")
        #expect(outcome.kind == (call.expected == ["401"] ? .unauthorized : .forbidden))
        #expect(
          outcome.status?.message == (call.expected == ["401"] ? "Unauthorized" : "Forbidden")
        )
      }
      if let token = call.token {
        #expect(outcome.status?.details.contains(token) == false, "\(call.name)")
      }
    }
    // Refused calls took no recognizer and are counted by their status.
    #expect(harness.server.idleRecognizers == 8)
    #expect(harness.server.statistics.statuses[401] == 5)
    #expect(harness.server.statistics.statuses[403] == 2)
    await harness.stop()
  }

  @Test("the authorize hook still runs, after the authenticator")
  func hookAfterAuthenticator() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(tokensFile: issuer.write("tokens", "good *\n"))
    )
    let harness = try await RecognizerHarness.start(
      authorize: { _, configuration in
        configuration.topic == "SECRET"
          ? RecognitionStatus(code: 403, message: "Forbidden", details: "not today") : nil
      },
      configure: { $0.authenticator = authenticator }
    )
    var good = GRPCMetadata()
    try good.add("authorization", "Bearer good")
    let secret = try await harness.recognize(
      makeInit(mode: .single) { $0.topic = "SECRET" },
      audio: dtmfAudio(keys("1")),
      metadata: good
    )
    #expect(secret.map(\.summary) == ["403"])
    let anonymous = try await harness.recognize(
      makeInit(mode: .single) { $0.topic = "SECRET" },
      audio: dtmfAudio(keys("1"))
    )
    #expect(anonymous.map(\.summary) == ["401"])
    await harness.stop()
  }
}
