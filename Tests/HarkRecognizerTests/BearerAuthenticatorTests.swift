import Foundation
import HarkGRPCCore
import HarkProto
import HarkServer
import HarkTestSupport
import Testing

/// The tokens file of `hark serve --tokens`: what it accepts, and the one line each mistake gets.
@Suite("Tokens file")
struct StaticTokensTests {
  @Test("comments, blank lines, lists, * and trailing comments")
  func goodFile() throws {
    let text = """
      # Billing's IVR
      ivr-0123456789abcdef  GEN,BANKING

      \t# The load tests, every topic
      load.Zk3vQ8wL/+_~==\t*   # rotated monthly
      short GEN\r
      """
    let tokens = try StaticTokens(parsing: text, file: "tokens.txt")
    #expect(tokens.count == 3)
    #expect(tokens.topics(of: "ivr-0123456789abcdef") == .only(["GEN", "BANKING"]))
    #expect(tokens.topics(of: "load.Zk3vQ8wL/+_~==") == .all)
    #expect(tokens.topics(of: "short") == .only(["GEN"]))
    #expect(tokens.topics(of: "ivr-0123456789abcde") == nil)
    #expect(tokens.topics(of: "IVR-0123456789ABCDEF") == nil)
    #expect(try StaticTokens(parsing: "", file: "empty").count == 0)
    #expect(try StaticTokens(parsing: "# nothing yet\n\n", file: "empty").count == 0)
  }

  @Test(
    "every mistake: one line naming the file and the line",
    arguments: [
      ("tok", "tokens.txt:1: the token needs its topics after it (TOPIC,TOPIC or *)"),
      ("tok   # a comment", "tokens.txt:1: the token needs its topics after it (TOPIC,TOPIC or *)"),
      ("# c\ntok GEN extra", "tokens.txt:2: expected TOKEN TOPICS, then at most a # comment"),
      (
        "to*k GEN",
        "tokens.txt:1: the token has characters a bearer token cannot have "
          + "(A-Z a-z 0-9 - . _ ~ + / and a trailing =)"
      ),
      (
        "a=b GEN",
        "tokens.txt:1: the token has characters a bearer token cannot have "
          + "(A-Z a-z 0-9 - . _ ~ + / and a trailing =)"
      ),
      (
        "\n\ntøken GEN",
        "tokens.txt:3: the token has characters a bearer token cannot have "
          + "(A-Z a-z 0-9 - . _ ~ + / and a trailing =)"
      ),
      ("tok GEN,,BANKING", "tokens.txt:1: topics are * or names separated by commas (GEN,BANKING)"),
      ("tok ,GEN", "tokens.txt:1: topics are * or names separated by commas (GEN,BANKING)"),
      ("tok GEN,*", "tokens.txt:1: topics are * or names separated by commas (GEN,BANKING)"),
      ("a GEN\n\nb *\na BANKING", "tokens.txt:4: the token is already on line 1"),
    ]
  )
  func mistakes(text: String, message: String) {
    let error = #expect(throws: CredentialsFileError.self) {
      try StaticTokens(parsing: text, file: "tokens.txt")
    }
    #expect(error?.description == message)
  }

  @Test(
    "bearer token syntax (RFC 6750 b64token)",
    arguments: [
      ("abc", true), ("A-Z.a_z~0+9/", true), ("abc==", true), ("eyJ.eyJ.sig", true),
      ("", false), ("=", false), ("a=b", false), ("a b", false), ("a,b", false), ("a\"b", false),
      ("ä", false),
    ]
  )
  func syntax(token: String, valid: Bool) {
    #expect(StaticTokens.isBearerToken(token) == valid)
  }
}

/// `BearerAuthenticator`: every outcome of a call's `authorization` header and topic.
@Suite("Bearer authenticator")
struct BearerAuthenticatorTests {
  static let tokensText = """
    gen-only GEN
    every-topic *
    banking GEN,BANKING
    """

  func metadata(_ values: String...) throws -> GRPCMetadata {
    var metadata = GRPCMetadata()
    for value in values { try metadata.add("authorization", value) }
    return metadata
  }

  static func unauthorized(_ details: String) -> RecognitionStatus {
    RecognitionStatus(code: 401, message: "Unauthorized", details: details)
  }

  static func forbidden(_ topic: String) -> RecognitionStatus {
    RecognitionStatus(
      code: 403,
      message: "Forbidden",
      details: "the token may not use the topic \(topic)"
    )
  }

  @Test("static tokens: allowed, 401 for each reason, 403 for a topic")
  func staticTokens() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(tokensFile: issuer.write("tokens", Self.tokensText))
    )
    #expect(authenticator.configuration.mode == "tokens")
    let cases: [(GRPCMetadata, String, RecognitionStatus?)] = [
      (try metadata("Bearer gen-only"), "GEN", nil),
      (try metadata("bearer gen-only"), "GEN", nil),
      (try metadata("BEARER   every-topic"), "ANYTHING", nil),
      (try metadata("Bearer banking"), "BANKING", nil),
      (try metadata("Bearer gen-only"), "BANKING", Self.forbidden("BANKING")),
      (try metadata("Bearer banking"), "gen", Self.forbidden("gen")),
      (
        GRPCMetadata(), "GEN",
        Self.unauthorized("no authorization header; send authorization: Bearer TOKEN")
      ),
      (
        try metadata("Bearer gen-only", "Bearer banking"), "GEN",
        Self.unauthorized("more than one authorization header")
      ),
      (
        try metadata("Basic Z2VuLW9ubHk="), "GEN",
        Self.unauthorized("the authorization header is not Bearer followed by a token")
      ),
      (
        try metadata("Bearer"), "GEN",
        Self.unauthorized("the authorization header is not Bearer followed by a token")
      ),
      (
        try metadata("Bearer gen-only extra"), "GEN",
        Self.unauthorized("the authorization header is not Bearer followed by a token")
      ),
      (
        try metadata("gen-only"), "GEN",
        Self.unauthorized("the authorization header is not Bearer followed by a token")
      ),
      (
        try metadata("Bearer gen-onl"), "GEN",
        Self.unauthorized("the token is not one the server accepts")
      ),
      (
        try metadata("Bearer a.b.c"), "GEN",
        Self.unauthorized("the token is not one the server accepts")
      ),
    ]
    for (metadata, topic, expected) in cases {
      let status = authenticator.authorize(metadata, topic: topic)
      #expect(status == expected, "\(metadata) \(topic)")
      for token in ["gen-only", "banking", "every-topic", "gen-onl"] {
        #expect(status?.details.contains(token) != true)
      }
    }
  }

  @Test("JWTs: ES256 and RS256 accepted; 401 for each reason; topics claim or 403")
  func jwts() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(
        jwksFile: issuer.jwksPath,
        issuer: TestJWTIssuer.issuer,
        audience: TestJWTIssuer.audience
      )
    )
    #expect(authenticator.configuration.mode == "jwt")
    #expect(authenticator.credentials.keys?.count == 2)
    let cases: [(String, String, RecognitionStatus?)] = [
      (try await issuer.sign(.ec), "GEN", nil),
      (try await issuer.sign(.rsa), "GEN", nil),
      (try await issuer.sign(.ec, topics: ["GEN", "BANKING"]), "BANKING", nil),
      (try await issuer.sign(.rsa, topics: ["*"]), "ANYTHING", nil),
      (try await issuer.sign(.ec, topics: ["GEN"]), "BANKING", Self.forbidden("BANKING")),
      (try await issuer.sign(.rsa, topics: []), "GEN", Self.forbidden("GEN")),
      (try await issuer.sign(.ec, audience: ["other", TestJWTIssuer.audience]), "GEN", nil),
      // Within the 30-second leeway.
      (try await issuer.sign(.ec, expiresIn: -10), "GEN", nil),
      (try await issuer.sign(.ec, notBeforeIn: 10), "GEN", nil),
      (
        try await issuer.sign(.ec, expiresIn: -60), "GEN",
        Self.unauthorized("the JWT has expired (exp)")
      ),
      (
        try await issuer.sign(.rsa, notBeforeIn: 60), "GEN",
        Self.unauthorized("the JWT is not valid yet (nbf)")
      ),
      (
        try await issuer.sign(.ec, expiresIn: nil), "GEN",
        Self.unauthorized("the JWT has no expiry (exp)")
      ),
      (
        try await issuer.sign(.ec, issuer: "https://elsewhere.test"), "GEN",
        Self.unauthorized("the JWT's issuer (iss) is not the one the server accepts")
      ),
      (
        try await issuer.sign(.ec, issuer: nil), "GEN",
        Self.unauthorized("the JWT's issuer (iss) is not the one the server accepts")
      ),
      (
        try await issuer.sign(.rsa, audience: ["someone-else"]), "GEN",
        Self.unauthorized("the JWT's audience (aud) does not include the server's")
      ),
      (
        try await issuer.sign(.ec, audience: nil), "GEN",
        Self.unauthorized("the JWT's audience (aud) does not include the server's")
      ),
      (
        try await issuer.sign(.ecImpostor), "GEN",
        Self.unauthorized("the JWT's signature does not verify")
      ),
      (
        try await issuer.sign(.rsaImpostor), "GEN",
        Self.unauthorized("the JWT's signature does not verify")
      ),
      (
        try await issuer.sign(.unknownKey), "GEN",
        Self.unauthorized("the JWT's key (kid) is not in the server's JWKS")
      ),
      (
        TestJWTIssuer.compose(header: #"{"alg":"none","kid":"ec-1"}"#, payload: "{}"), "GEN",
        Self.unauthorized("the JWT's algorithm (alg) is not one its key allows")
      ),
      (
        try await issuer.signRaw(header: #"{"alg":"HS256","kid":"rsa-1"}"#, payload: "{}"), "GEN",
        Self.unauthorized("the JWT's algorithm (alg) is not one its key allows")
      ),
      (
        try await issuer.signRaw(header: #"{"alg":"ES256"}"#, payload: "{}"), "GEN",
        Self.unauthorized("the JWT's header names no key (kid)")
      ),
      (
        try await issuer.signRaw(
          header: #"{"alg":"ES256","kid":"ec-1","crit":["exp"],"exp":1}"#,
          payload: "{}"
        ), "GEN",
        Self.unauthorized("the JWT has critical header parameters the server does not know")
      ),
      (
        try await issuer.signRaw(payload: #"{"exp":9999999999,"topics":"GEN"}"#), "GEN",
        Self.unauthorized("the token is not a well-formed JWT")
      ),
      ("not-a-jwt", "GEN", Self.unauthorized("the token is not a well-formed JWT")),
      ("a.b.c", "GEN", Self.unauthorized("the token is not a well-formed JWT")),
    ]
    for (token, topic, expected) in cases {
      let status = authenticator.authorize(try metadata("Bearer \(token)"), topic: topic)
      #expect(status == expected, "\(token) \(topic)")
      #expect(status?.details.contains(token) != true)
    }
  }

  @Test("the signed claims need not carry iss or aud when the server names neither")
  func noIssuerOrAudience() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(jwksFile: issuer.jwksPath)
    )
    let token = try await issuer.sign(.rsa, issuer: nil, audience: nil)
    #expect(authenticator.authorize(try metadata("Bearer \(token)"), topic: "GEN") == nil)
    // A fractional exp is a NumericDate too; the leeway can be changed.
    let fractional = try await issuer.signRaw(
      payload: #"{"exp":\#(Date().timeIntervalSince1970 + 5)}"#
    )
    #expect(authenticator.authorize(try metadata("Bearer \(fractional)"), topic: "GEN") == nil)
  }

  @Test("the leeway is a configuration value")
  func leeway() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    var configuration = BearerAuthenticator.Configuration(jwksFile: issuer.jwksPath)
    configuration.leeway = .zero
    let strict = try await BearerAuthenticator(configuration: configuration)
    let justExpired = try await issuer.sign(.ec, expiresIn: -2)
    #expect(
      strict.authorize(try metadata("Bearer \(justExpired)"), topic: "GEN")
        == Self.unauthorized("the JWT has expired (exp)")
    )
    // The time is a parameter.
    let later = try await issuer.sign(.ec, expiresIn: 3600)
    #expect(strict.authorize(try metadata("Bearer \(later)"), topic: "GEN") == nil)
    #expect(
      strict.authorize(
        try metadata("Bearer \(later)"),
        topic: "GEN",
        now: Date().addingTimeInterval(7200)
      ) == Self.unauthorized("the JWT has expired (exp)")
    )
  }

  @Test("tokens and JWTs together: a token either accepts is accepted")
  func both() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let authenticator = try await BearerAuthenticator(
      configuration: .init(
        tokensFile: issuer.write("tokens", Self.tokensText),
        jwksFile: issuer.jwksPath,
        audience: TestJWTIssuer.audience
      )
    )
    #expect(authenticator.configuration.mode == "tokens+jwt")
    let jwt = try await issuer.sign(.rsa, topics: ["GEN"])
    #expect(authenticator.authorize(try metadata("Bearer banking"), topic: "BANKING") == nil)
    #expect(authenticator.authorize(try metadata("Bearer \(jwt)"), topic: "GEN") == nil)
    #expect(
      authenticator.authorize(try metadata("Bearer \(jwt)"), topic: "BANKING")
        == Self.forbidden("BANKING")
    )
    #expect(
      authenticator.authorize(try metadata("Bearer nobody"), topic: "GEN")
        == Self.unauthorized("the token is not one the server accepts")
    )
    let forged = try await issuer.sign(.ecImpostor)
    #expect(
      authenticator.authorize(try metadata("Bearer \(forged)"), topic: "GEN")
        == Self.unauthorized("the JWT's signature does not verify")
    )
  }

  @Test("reload: new tokens take effect; a bad file keeps the old ones and says why")
  func reload() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let path = try issuer.write("tokens", "old-token GEN\n")
    let authenticator = try await BearerAuthenticator(configuration: .init(tokensFile: path))
    #expect(authenticator.authorize(try metadata("Bearer old-token"), topic: "GEN") == nil)

    try issuer.write("tokens", "new-token GEN\n")
    let credentials = try await authenticator.reload()
    #expect(credentials.tokens?.count == 1)
    #expect(authenticator.authorize(try metadata("Bearer new-token"), topic: "GEN") == nil)
    #expect(
      authenticator.authorize(try metadata("Bearer old-token"), topic: "GEN")
        == Self.unauthorized("the token is not one the server accepts")
    )

    try issuer.write("tokens", "new-token GEN\nnewer-token\n")
    let error = await #expect(throws: CredentialsFileError.self) {
      try await authenticator.reload()
    }
    #expect(
      error?.description == "\(path):2: the token needs its topics after it (TOPIC,TOPIC or *)"
    )
    #expect(authenticator.authorize(try metadata("Bearer new-token"), topic: "GEN") == nil)

    try FileManager.default.removeItem(atPath: path)
    let missing = await #expect(throws: CredentialsFileError.self) {
      try await authenticator.reload()
    }
    #expect(missing?.description == "cannot read \(path): no such file or directory")
    #expect(authenticator.authorize(try metadata("Bearer new-token"), topic: "GEN") == nil)
  }

  @Test(
    "JWKS files that cannot be used: one line naming the file",
    arguments: [
      ("not json", "not a JWKS: not valid JSON"),
      ("{}", "not a JWKS: keys is missing"),
      (#"{"keys": {}}"#, "not a JWKS: keys has the wrong type"),
      (#"{"keys": []}"#, "the JWKS has no signature keys"),
      (
        #"{"keys": [{"kty": "RSA", "use": "enc", "kid": "e", "n": "AQAB", "e": "AQAB"}]}"#,
        "the JWKS has no signature keys"
      ),
      (
        #"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#,
        "key 1 cannot be used: it has no kid"
      ),
      (
        #"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#,
        "key 1 (kid s) cannot be used: keys[0].kty has an unsupported value"
      ),
    ]
  )
  func badJWKS(json: String, message: String) async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let path = try issuer.write("jwks.json", json)
    let error = await #expect(throws: CredentialsFileError.self) {
      try await BearerAuthenticator(configuration: .init(jwksFile: path))
    }
    #expect(error?.description == "\(path): \(message)")
  }

  @Test("a JWKS with a bad key or a repeated kid is refused, naming the key")
  func badKeys() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let badPoint = try issuer.write(
      "bad-point.json",
      #"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "p", "x": "AAAA", "y": "AAAA"}]}"#
    )
    let error = await #expect(throws: CredentialsFileError.self) {
      try await BearerAuthenticator(configuration: .init(jwksFile: badPoint))
    }
    #expect(
      (error?.description ?? "").hasPrefix(
        "\(badPoint): key 1 (kid p) cannot be used: not a valid EC key for ES256 ("
      )
        && !(error?.description ?? "").contains("\n")
    )
    let keys =
      try #require(
        try JSONSerialization.jsonObject(with: Data(issuer.jwksJSON.utf8)) as? [String: Any]
      )["keys"] as? [[String: Any]]
    var twice = try #require(keys?.first)
    twice["kid"] = "same"
    let repeated = try issuer.write(
      "repeated.json",
      String(
        decoding: try JSONSerialization.data(withJSONObject: ["keys": [twice, twice]]),
        as: UTF8.self
      )
    )
    let repeatedKid = await #expect(throws: CredentialsFileError.self) {
      try await BearerAuthenticator(configuration: .init(jwksFile: repeated))
    }
    #expect(repeatedKid?.description == "\(repeated): two keys have the kid same")
  }
}
