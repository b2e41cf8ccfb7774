import Foundation
import HarkTestSupport
import Testing

/// `hark recognize` and `hark load` with credentials: tools/oauth_server.py as the token
/// endpoint and `hark serve` over TLS, both trusting one test CA (`--cacert`).
@Suite("hark recognize and hark load with OAuth2 credentials", .serialized, .timeLimit(.minutes(3)))
struct CredentialCLITests {
  static let clientID = "appID:NMDPTRIAL_hark_test_20250101"
  static let secret = "Zq8-hark-test-SECRET"

  /// The token endpoint, a TLS `hark serve` with `extra` options, and the CA both chain to.
  static func start(
    extra: [String] = []
  ) async throws -> (TestPKI, OAuthTokenServer, HarkServeProcess) {
    let pki = try TestPKI()
    let tokens = try await OAuthTokenServer.start(
      pki: pki,
      clientID: clientID,
      clientSecret: secret
    )
    let certificate = try pki.issueLocalServer("recognizer")
    // The recognizer accepts only tokens the endpoint issues (and the test's fixed one): a call
    // that arrived without one would be 401.
    let tokensFile = try pki.write(
      (1...9).map { "tok-\($0)  *\n" }.joined() + "tok-from-the-environment  *\n",
      to: "tokens"
    )
    let server = try await HarkServeProcess.start(
      extra: [
        "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath, "--tokens",
        tokensFile,
      ] + extra
    )
    return (pki, tokens, server)
  }

  static func load(
    port: Int,
    pki: TestPKI,
    credentials: [String]
  ) -> [String] {
    [
      "load", "--server", "127.0.0.1:\(port)", "--cacert", pki.caPath, "--sessions", "500",
      "--duration", "2", "--quiet",
    ] + credentials
  }

  @Test("hark load: 500 sessions, one token request (flags, then the environment)")
  func load500() async throws {
    let (pki, tokens, server) = try await Self.start(extra: ["--recognizers", "600"])
    defer { pki.remove() }

    let flags = try await hark(
      Self.load(
        port: server.port,
        pki: pki,
        credentials: [
          "--client-id", Self.clientID, "--client-secret", Self.secret, "--token-url",
          tokens.tokenURL,
        ]
      )
    )
    // Exit 0: no transport errors. (On a busy machine some sessions may time out: that is the
    // server's verdict, not the tokens'.)
    #expect(flags.status == 0, "\(flags.standardError)\n\(flags.standardOutput)")
    #expect(flags.standardOutput.contains("sessions started       500"), "\(flags.standardOutput)")
    #expect(!flags.standardOutput.contains("status 401"), "\(flags.standardOutput)")
    #expect(try await tokens.stats().token_requests == 1)

    let environment = try await hark(
      Self.load(port: server.port, pki: pki, credentials: ["--token-url", tokens.tokenURL]),
      environment: ["HARK_CLIENT_ID": Self.clientID, "HARK_CLIENT_SECRET": Self.secret]
    )
    #expect(
      environment.status == 0,
      "\(environment.standardError)\n\(environment.standardOutput)"
    )
    #expect(!environment.standardOutput.contains("status 401"), "\(environment.standardOutput)")
    #expect(try await tokens.stats().token_requests == 2)
    for result in [flags, environment] {
      #expect(!(result.standardOutput + result.standardError).contains(Self.secret))
    }
    await server.stop()
    await tokens.stop()
  }

  @Test("hark recognize: a wrong secret is exit 7 and one line naming invalid_client and the URL")
  func wrongSecret() async throws {
    let (pki, tokens, server) = try await Self.start()
    defer { pki.remove() }
    let scratch = try Scratch()
    let audio = try scratch.write("keys.wav", RecognizeCommandTests.keys)
    let wrong = "Wr0ng-hark-test-SECRET"
    for verbose in [false, true] {
      let result = try await hark(
        [
          "recognize", audio, "--server", "127.0.0.1:\(server.port)", "--cacert", pki.caPath,
          "--client-id", Self.clientID, "--client-secret", wrong, "--token-url", tokens.tokenURL,
        ] + (verbose ? ["--verbose"] : [])
      )
      #expect(result.status == 7, "\(result.standardError)")
      #expect(result.standardOutput == "")
      let expected =
        "hark: unauthorized: UNAUTHENTICATED: the token endpoint \(tokens.tokenURL) refused client \(Self.clientID) (wrong client ID or secret): invalid_client: Client authentication failed\n"
      if verbose {
        #expect(result.standardError.hasSuffix(expected), "\(result.standardError)")
      } else {
        #expect(result.standardError == expected)
      }
      #expect(!(result.standardOutput + result.standardError).contains(wrong))
    }
    // One request each: a refusal is not retried.
    #expect(try await tokens.stats().token_requests == 2)
    await server.stop()
    await tokens.stop()
  }

  @Test("hark recognize --verbose shows the authorization header redacted, never the token")
  func verbose() async throws {
    let (pki, tokens, server) = try await Self.start()
    defer { pki.remove() }
    let scratch = try Scratch()
    let audio = try scratch.write("keys.wav", RecognizeCommandTests.keys)
    let oauth = try await hark(
      [
        "recognize", audio, "--server", "127.0.0.1:\(server.port)", "--cacert", pki.caPath,
        "--token-url", tokens.tokenURL, "--verbose",
      ],
      environment: ["HARK_CLIENT_ID": Self.clientID, "HARK_CLIENT_SECRET": Self.secret]
    )
    #expect(oauth.status == 0, "\(oauth.standardError)")
    #expect(oauth.standardOutput == "15\n")
    #expect(
      oauth.standardError.contains(
        "→ call /nuance.asr.v1.Recognizer/Recognize [authorization: Bearer <redacted>]"
      ),
      "\(oauth.standardError)"
    )
    #expect(!oauth.standardError.contains("tok-1") && !oauth.standardError.contains(Self.secret))

    let fixed = try await hark(
      [
        "recognize", audio, "--server", "127.0.0.1:\(server.port)", "--cacert", pki.caPath,
        "--verbose",
      ],
      environment: ["HARK_TOKEN": "tok-from-the-environment"]
    )
    #expect(fixed.status == 0, "\(fixed.standardError)")
    #expect(fixed.standardError.contains("[authorization: Bearer <redacted>]"))
    #expect(!fixed.standardError.contains("tok-from-the-environment"))
    await server.stop()
    await tokens.stop()
  }

  @Test(
    "conflicting or incomplete credentials: a one-line usage error",
    arguments: [
      (
        ["--token", "a", "--client-id", "i", "--client-secret", "s"],
        "--token and --client-id exclude each other"
      ),
      (["--client-id", "i"], "a client ID needs its secret"),
      (["--client-secret", "s"], "--client-secret needs a client ID"),
      (["--token", "a", "--scope", "asr"], "--scope goes with a client ID"),
    ]
  )
  func usage(credentials: [String], message: String) async throws {
    for command in [["recognize", "x.wav"], ["load", "--sessions", "1"]] {
      let result = try await hark(
        command + ["--plaintext", "--server", "127.0.0.1:1"] + credentials
      )
      #expect(result.status == 64, "\(result.standardError)")
      #expect(result.standardError.contains("Error: \(message)"), "\(result.standardError)")
    }
  }

  @Test("an unreadable --client-secret-file is exit 2, one line naming it")
  func unreadableSecretFile() async throws {
    let result = try await hark([
      "recognize", "x.wav", "--plaintext", "--server", "127.0.0.1:1", "--client-id", "i",
      "--client-secret-file", "/nonexistent/secret",
    ])
    #expect(result.status == 2, "\(result.standardError)")
    #expect(
      result.standardError
        == "hark: cannot read the client secret file /nonexistent/secret: No such file or directory\n"
    )
  }
}
