import Foundation
import HarkAudio
import HarkTestSupport
import Testing

/// TLS through the commands, as grpcurl spells it: `hark serve --tls-cert/--tls-key
/// [--tls-client-ca]`, TLS by default in `hark recognize` and `hark load`, `--plaintext`,
/// `--cacert`, `--cert`/`--key`, `--insecure`, `--authority`; every failure one line.
@Suite("hark over TLS", .timeLimit(.minutes(2)))
struct TLSCommandTests {
  /// Key presses "42" as a WAV file in `scratch`.
  static func audio(_ scratch: Scratch) throws -> String {
    try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("42", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
  }

  @Test("hark recognize over TLS and mTLS; each TLS failure is one line and exit 9")
  func recognize() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let expired = try pki.issueLocalServer(
      "expired",
      notBefore: Date() - 3 * 86_400,
      notAfter: Date() - 86_400
    )
    let client = try pki.issue("client")
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    let server = try await HarkServeProcess.start(
      extra: ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
    )
    let mutual = try await HarkServeProcess.start(
      extra: [
        "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath,
        "--tls-client-ca", pki.caPath,
      ]
    )
    let stale = try await HarkServeProcess.start(
      extra: ["--tls-cert", expired.certificatePath, "--tls-key", expired.keyPath]
    )
    let plaintext = try await HarkServeProcess.start()
    #expect(server.standardError.contains("tls=on"))
    #expect(mutual.standardError.contains("tls=mtls"))

    for host in ["127.0.0.1", "localhost"] {
      let result = try await hark(
        ["recognize", path, "--server", "\(host):\(server.port)", "--cacert", pki.caPath]
      )
      #expect(result.status == 0, "\(host): \(result.standardError)")
      #expect(result.standardOutput == "42\n")
    }
    let withCertificate = try await hark([
      "recognize", path, "--server", "localhost:\(mutual.port)", "--cacert", pki.caPath,
      "--cert", client.certificatePath, "--key", client.keyPath,
    ])
    #expect(withCertificate.status == 0, "\(withCertificate.standardError)")
    #expect(withCertificate.standardOutput == "42\n")

    let insecure = try await hark([
      "recognize", path, "--server", "127.0.0.1:\(server.port)", "--insecure",
    ])
    #expect(insecure.status == 0, "\(insecure.standardError)")
    #expect(insecure.standardError.contains("warning: --insecure"))

    let failures: [([String], String)] = [
      (["--server", "127.0.0.1:\(server.port)"], "unknown certificate authority"),
      (["--server", "127.0.0.1:\(stale.port)", "--cacert", pki.caPath], "expired on"),
      (
        ["--server", "localhost:\(mutual.port)", "--cacert", pki.caPath],
        "requires a client certificate (--cert and --key)"
      ),
      (["--server", "127.0.0.1:\(plaintext.port)"], "use --plaintext"),
      (["--server", "127.0.0.1:\(server.port)", "--plaintext"], "drop --plaintext"),
    ]
    for (arguments, expected) in failures {
      let result = try await hark(["recognize", path] + arguments)
      #expect(result.status == 9, "\(arguments): \(result.standardError)")
      #expect(result.standardError.contains(expected), "\(arguments): \(result.standardError)")
      #expect(
        result.standardError.split(separator: "\n").count == 1,
        "one line: \(result.standardError)"
      )
    }
    for process in [server, mutual, stale, plaintext] { await process.stop() }
  }

  @Test("a hostname mismatch names the name verified, and --authority changes it")
  func hostnameMismatch() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    // A certificate for a name only (no IP address), so the name alone decides.
    let certificate = try pki.issue("named", dnsNames: ["asr.example.com"])
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    let server = try await HarkServeProcess.start(
      extra: ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
    )
    let mismatch = try await hark(
      ["recognize", path, "--server", "localhost:\(server.port)", "--cacert", pki.caPath]
    )
    #expect(mismatch.status == 9)
    #expect(
      mismatch.standardError.contains(
        "hostname mismatch: the server's certificate is not valid for localhost"
      ),
      "\(mismatch.standardError)"
    )
    let overridden = try await hark([
      "recognize", path, "--server", "localhost:\(server.port)", "--cacert", pki.caPath,
      "--authority", "asr.example.com",
    ])
    #expect(overridden.status == 0, "\(overridden.standardError)")
    #expect(overridden.standardOutput == "42\n")
    await server.stop()
  }

  @Test("hark load over TLS; a TLS failure is one line naming the cause, exit 2")
  func load() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let server = try await HarkServeProcess.start(
      extra: ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
    )
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    let report = scratch.directory.appendingPathComponent("report.json").path
    let ok = try await hark([
      "load", "--server", "localhost:\(server.port)", "--cacert", pki.caPath, "--sessions", "20",
      "--duration", "1", "--audio", path, "--quiet", "--json", report,
    ])
    #expect(ok.status == 0, "\(ok.standardError)")
    let json = try String(contentsOfFile: report, encoding: .utf8)
    #expect(json.contains("\"200\""), "\(json.prefix(400))")
    let refused = try await hark([
      "load", "--server", "127.0.0.1:\(server.port)", "--sessions", "1", "--duration", "1",
      "--audio", path, "--quiet",
    ])
    #expect(refused.status == 2, "\(refused.standardError)")
    #expect(
      refused.standardError.contains("unknown certificate authority"),
      "\(refused.standardError)"
    )
    #expect(refused.standardError.split(separator: "\n").count == 1, "\(refused.standardError)")
    await server.stop()
  }

  @Test("hark serve re-reads its certificate on SIGHUP without dropping the call in flight")
  func sighup() async throws {
    let first = try TestPKI(name: "First CA")
    let second = try TestPKI(name: "Second CA")
    defer {
      first.remove()
      second.remove()
    }
    let certificatePath = first.directory + "/live.pem"
    let keyPath = first.directory + "/live.key"
    let old = try first.issueLocalServer()
    try old.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    try old.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
    let server = try await HarkServeProcess.start(
      extra: ["--tls-cert", certificatePath, "--tls-key", keyPath]
    )
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    // A recognition in flight over the first certificate: its audio comes on standard input,
    // half before the reload, half after.
    let wav = wavBytes(keyPresses("42", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    let inFlight = try HarkProcess([
      "recognize", "-", "--server", "localhost:\(server.port)", "--cacert", first.caPath,
      "--verbose",
    ])
    inFlight.write(Array(wav[..<4044]))
    try await inFlight.waitForStandardError(containing: "← status 100")
    let renewed = try second.issueLocalServer()
    try renewed.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    try renewed.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
    try await server.hangUp(until: "Reloaded the TLS certificate")
    let after = try await hark(
      ["recognize", path, "--server", "localhost:\(server.port)", "--cacert", second.caPath]
    )
    #expect(after.status == 0, "\(after.standardError)")
    inFlight.write(Array(wav[4044...]))
    inFlight.closeInput()
    #expect(try await inFlight.wait() == 0, "\(inFlight.standardError)")
    #expect(inFlight.standardOutput == "42\n")

    // A broken key on the next SIGHUP: logged, and the certificate in use stays.
    try "garbage".write(toFile: keyPath, atomically: true, encoding: .utf8)
    try await server.hangUp(until: "Cannot reload the TLS certificate")
    let still = try await hark(
      ["recognize", path, "--server", "localhost:\(server.port)", "--cacert", second.caPath]
    )
    #expect(still.status == 0, "\(still.standardError)")
    #expect(await server.stop() == 0)
  }

  @Test("TLS flags that do not fit: one-line errors, exit 64 (2 for unusable files at start)")
  func badFlags() async throws {
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    let cases: [([String], Int32, String)] = [
      (
        [
          "recognize", path, "--server", "127.0.0.1:1", "--plaintext", "--cert", path, "--key",
          path,
        ],
        64, "--cert is a TLS option"
      ),
      (["recognize", path, "--server", "127.0.0.1:1", "--cert", path], 64, "--cert and --key"),
      (
        ["recognize", path, "--server", "127.0.0.1:1", "--cacert", "/nonexistent.pem"], 64,
        "/nonexistent.pem"
      ),
      (["recognize", path, "--insecure"], 64, "go with --server"),
      (["serve", "--tls-cert", path], 64, "--tls-cert and --tls-key"),
      (["serve", "--tls-client-ca", path], 64, "--tls-client-ca"),
      (
        ["serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem", "--tls-key", path],
        2, "/nonexistent.pem"
      ),
      (["serve", "--listen", "127.0.0.1:0", "--tls-cert", path, "--tls-key", path], 2, path),
    ]
    for (arguments, status, mention) in cases {
      let result = try await hark(arguments)
      #expect(result.status == status, "\(arguments): \(result.standardError)")
      #expect(result.standardError.contains(mention), "\(arguments): \(result.standardError)")
    }
  }

  @Test("through nginx terminating TLS: hark recognize's token reaches hark serve --tokens")
  func throughNginx() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let scratch = try Scratch()
    let path = try Self.audio(scratch)
    let tokens = try scratch.write("tokens", Array("proxied-token GEN\n".utf8))
    let server = try await HarkServeProcess.start(extra: ["--tokens", tokens])
    let nginx = try NginxProcess(
      upstreamPort: server.port,
      tls: (certificate.certificatePath, certificate.keyPath)
    )
    defer { nginx.stop() }
    let through = [
      "recognize", path, "--server", "localhost:\(nginx.port)", "--cacert", pki.caPath,
    ]
    var result = try await hark(through + ["--token", "proxied-token"])
    for _ in 0..<50 where result.status == 9 {
      // nginx takes a moment to listen.
      try await Task.sleep(for: .milliseconds(100))
      result = try await hark(through + ["--token", "proxied-token"])
    }
    #expect(result.status == 0, "\(result.standardError) \(nginx.errorLog)")
    #expect(result.standardOutput == "42\n")
    let refused = try await hark(through + ["--token", "another-token"])
    #expect(refused.status == 7, "\(refused.standardError)")
    #expect(refused.standardError.contains("401"), "\(refused.standardError)")
    await server.stop()
  }

  @Test("hark serve without TLS on a non-loopback address warns that calls travel in plaintext")
  func plaintextWarning() async throws {
    let process = try HarkProcess(["serve", "--engine", "dtmf", "--listen", "0.0.0.0:0"])
    try await process.waitForStandardError(containing: "without TLS")
    process.process.terminate()
    process.process.waitUntilExit()
  }
}
