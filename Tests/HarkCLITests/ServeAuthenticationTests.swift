import Foundation
import HarkAudio
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkTestSupport
import NIOCore
import Testing

/// `hark serve --tokens` and `--jwt-jwks` with `hark recognize --token`: the built binaries,
/// real processes, files on disk and SIGHUP.
@Suite("hark serve with bearer tokens", .timeLimit(.minutes(1)))
struct ServeAuthenticationTests {
  /// A WAV file of the key 7, and `hark recognize` of it against `port` with `extra` options.
  struct Recognizer {
    let path: String
    let port: Int

    init(port: Int, scratch: Scratch) throws {
      self.port = port
      path = try scratch.write(
        "seven.wav",
        wavBytes(keyPresses("7", sampleRate: 8000), format: .linear16(sampleRate: 8000))
      )
    }

    func recognize(_ extra: [String] = []) async throws -> ProcessResult {
      try await hark(
        ["recognize", path, "--plaintext", "--server", "127.0.0.1:\(port)"] + extra
      )
    }
  }

  @Test("--tokens: the right token recognizes; none, a wrong one or another topic exit 7")
  func tokens() async throws {
    let scratch = try Scratch()
    let tokens = try scratch.write(
      "tokens",
      Array("# test tokens\nivr-token GEN   # the IVR\nload-token *\n".utf8)
    )
    let server = try await HarkServeProcess.start(extra: ["--tokens", tokens])
    #expect(server.standardError.contains("auth=tokens"), "\(server.standardError)")
    let recognizer = try Recognizer(port: server.port, scratch: scratch)

    let allowed = try await recognizer.recognize(["--token", "ivr-token"])
    #expect(allowed.status == 0, "\(allowed.standardError)")
    #expect(allowed.standardOutput == "7\n")
    let anyTopic = try await recognizer.recognize(["--token", "load-token", "--topic", "BANKING"])
    #expect(anyTopic.status == 0, "\(anyTopic.standardError)")

    let missing = try await recognizer.recognize()
    #expect(missing.status == 7)
    #expect(
      missing.standardError
        == "hark: 401 Unauthorized — no authorization header; send authorization: Bearer TOKEN\n"
    )
    let wrong = try await recognizer.recognize(["--token", "ivr-tokem"])
    #expect(wrong.status == 7)
    #expect(
      wrong.standardError == "hark: 401 Unauthorized — the token is not one the server accepts\n"
    )
    let topic = try await recognizer.recognize(["--token", "ivr-token", "--topic", "BANKING"])
    #expect(topic.status == 7)
    #expect(
      topic.standardError == "hark: 403 Forbidden — the token may not use the topic BANKING\n"
    )
    await server.stop()
  }

  @Test("--jwt-jwks with --jwt-issuer and --jwt-audience: signed tokens, their claims checked")
  func jwt() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let server = try await HarkServeProcess.start(extra: [
      "--jwt-jwks", issuer.jwksPath, "--jwt-issuer", TestJWTIssuer.issuer, "--jwt-audience",
      TestJWTIssuer.audience,
    ])
    #expect(server.standardError.contains("auth=jwt"), "\(server.standardError)")
    let recognizer = try Recognizer(port: server.port, scratch: try Scratch())

    for token in [try await issuer.sign(.ec), try await issuer.sign(.rsa, topics: ["GEN"])] {
      let allowed = try await recognizer.recognize(["--token", token])
      #expect(allowed.status == 0, "\(allowed.standardError)")
      #expect(allowed.standardOutput == "7\n")
    }
    let refusals = [
      (
        try await issuer.sign(.ec, expiresIn: -120), [],
        "401 Unauthorized — the JWT has expired (exp)"
      ),
      (
        try await issuer.sign(.rsaImpostor), [],
        "401 Unauthorized — the JWT's signature does not verify"
      ),
      (
        try await issuer.sign(.ec, issuer: "https://elsewhere.test"), [],
        "401 Unauthorized — the JWT's issuer (iss) is not the one the server accepts"
      ),
      (
        try await issuer.sign(.ec, topics: ["GEN"]), ["--topic", "BANKING"],
        "403 Forbidden — the token may not use the topic BANKING"
      ),
    ]
    for (token, extra, message) in refusals {
      let refused = try await recognizer.recognize(["--token", token] + extra)
      #expect(refused.status == 7)
      #expect(refused.standardError == "hark: \(message)\n")
    }
    await server.stop()
  }

  @Test("--tokens and --jwt-jwks together accept either")
  func both() async throws {
    let issuer = try await TestJWTIssuer()
    defer { issuer.remove() }
    let tokens = try issuer.write("tokens", "static-token *\n")
    let server = try await HarkServeProcess.start(extra: [
      "--tokens", tokens, "--jwt-jwks", issuer.jwksPath,
    ])
    #expect(server.standardError.contains("auth=tokens+jwt"), "\(server.standardError)")
    let recognizer = try Recognizer(port: server.port, scratch: try Scratch())
    for token in ["static-token", try await issuer.sign(.rsa, issuer: nil, audience: nil)] {
      let allowed = try await recognizer.recognize(["--token", token])
      #expect(allowed.status == 0, "\(allowed.standardError)")
    }
    await server.stop()
  }

  @Test("SIGHUP re-reads the tokens file: an added token works, a removed one gets 401")
  func sighup() async throws {
    let scratch = try Scratch()
    let tokens = try scratch.write("tokens", Array("old-token *\n".utf8))
    let server = try await HarkServeProcess.start(extra: ["--tokens", tokens])
    let recognizer = try Recognizer(port: server.port, scratch: scratch)
    #expect(try await recognizer.recognize(["--token", "old-token"]).status == 0)
    #expect(try await recognizer.recognize(["--token", "new-token"]).status == 7)

    _ = try scratch.write("tokens", Array("new-token GEN\n".utf8))
    try await server.hangUp(until: "Reloaded the tokens")
    let added = try await recognizer.recognize(["--token", "new-token"])
    #expect(added.status == 0, "\(added.standardError)")
    let removed = try await recognizer.recognize(["--token", "old-token"])
    #expect(removed.status == 7)
    #expect(removed.standardError.contains("401 Unauthorized"), "\(removed.standardError)")

    // A broken file is logged and changes nothing.
    _ = try scratch.write("tokens", Array("new-token GEN\nbroken\n".utf8))
    try await server.hangUp(until: "Cannot reload the tokens")
    let line = server.standardError.split(separator: "\n").first {
      $0.contains("Cannot reload the tokens")
    }
    #expect(
      line?.contains("\(tokens):2: the token needs its topics after it") == true,
      "\(server.standardError)"
    )
    #expect(line?.contains("error") == true)
    #expect(try await recognizer.recognize(["--token", "new-token"]).status == 0)
    #expect(server.standardError.contains("tokens=1"), "\(server.standardError)")
    await server.stop()
  }

  @Test(
    "files that cannot be used stop hark serve at start: one line, exit 2",
    arguments: [
      ("tokens", "missing GEN\nbad line here\n", "tokens:2: expected TOKEN TOPICS"),
      ("tokens", "two GEN\ntwo *\n", "tokens:2: the token is already on line 1"),
      ("jwks", "{\"keys\": []}", "jwks: the JWKS has no signature keys"),
      ("jwks", "[1, 2]", "jwks: not a JWKS: "),
    ]
  )
  func badFiles(kind: String, text: String, message: String) async throws {
    let scratch = try Scratch()
    let path = try scratch.write(kind, Array(text.utf8))
    let flag = kind == "tokens" ? "--tokens" : "--jwt-jwks"
    let result = try await hark([
      "serve", "--engine", "dtmf", "--listen", "127.0.0.1:0", flag, path,
    ])
    #expect(result.status == 2, "\(result.standardError)")
    let lines = result.standardError.split(separator: "\n")
    #expect(lines.last?.hasPrefix("hark: \(scratch.directory.path)/\(message)") == true, "\(lines)")
    #expect(!result.standardError.contains("Listening"))
  }

  @Test("an unreadable file, and issuer or audience without a JWKS")
  func usage() async throws {
    let missing = try await hark([
      "serve", "--engine", "dtmf", "--listen", "127.0.0.1:0", "--tokens", "/nonexistent/tokens",
    ])
    #expect(missing.status == 2)
    #expect(
      missing.standardError.hasSuffix(
        "hark: cannot read /nonexistent/tokens: no such file or directory\n"
      ),
      "\(missing.standardError)"
    )
    for flag in ["--jwt-issuer", "--jwt-audience"] {
      let result = try await hark(["serve", "--engine", "dtmf", flag, "x"])
      #expect(result.status == 64)
      #expect(
        result.standardError.contains("--jwt-issuer and --jwt-audience need --jwt-jwks"),
        "\(result.standardError)"
      )
    }
  }

  @Test(
    "a gateway's UNAUTHENTICATED or PERMISSION_DENIED: exit 7 with one line",
    arguments: [
      (
        GRPCStatus(.unauthenticated, "invalid token"),
        "unauthorized: UNAUTHENTICATED: invalid token"
      ),
      (
        GRPCStatus(.permissionDenied, "no such topic"),
        "forbidden: PERMISSION_DENIED: no such topic"
      ),
    ]
  )
  func gateway(status: GRPCStatus, message: String) async throws {
    let method = GRPCServer.Method.async(
      "/nuance.asr.v1.Recognizer/Recognize",
      requestType: RecognitionRequest.self,
      responseType: RecognitionResponse.self
    ) { _ in
      throw status
    }
    let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 0), methods: [method])
    let port = try await server.start().port!
    let result = try await Recognizer(port: port, scratch: try Scratch())
      .recognize(["--token", "whatever"])
    #expect(result.status == 7, "\(result.standardError)")
    #expect(result.standardError == "hark: \(message)\n")
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}

extension HarkServeProcess {
  /// Sends SIGHUP and waits (up to 20 s) for one more log line containing `marker`.
  func hangUp(until marker: String) async throws {
    let before = standardError.components(separatedBy: marker).count - 1
    kill(process.processIdentifier, SIGHUP)
    let deadline = ContinuousClock.now + .seconds(20)
    while standardError.components(separatedBy: marker).count - 1 <= before {
      guard ContinuousClock.now < deadline else {
        throw CLITestError("no \"\(marker)\" after SIGHUP: \(standardError)")
      }
      try await Task.sleep(for: .milliseconds(20))
    }
  }
}
