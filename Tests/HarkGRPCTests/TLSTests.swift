import Foundation
import HarkGRPC
import HarkGRPCCore
import HarkTestSupport
import HarkTesting
import NIOCore
import NIOPosix
import NIOSSL
import Testing

/// TLS under the HTTP/2 handler: Hark client ↔ Hark server over TLS and mTLS, every class of
/// handshake failure in one sentence, the server's handshake limits, and certificate reload.
@Suite("TLS")
struct TLSTests {
  /// A Hark Echo server over TLS on a loopback port.
  static func startServer(
    _ tls: GRPCServerTLS,
    limits: ServerConnectionPolicy.Limits = ServerConnectionPolicy.Limits()
  ) async throws -> (GRPCServer, Int) {
    let server = GRPCServer(
      configuration: .init(host: "127.0.0.1", port: 0, connectionLimits: limits, tls: tls),
      methods: [EchoService.method]
    )
    let address = try await server.start()
    return (server, address.port!)
  }

  /// One Echo message over `channel`: its text back, or the call's failure thrown.
  static func echo(_ channel: GRPCChannel, _ text: String = "over TLS") async throws -> String {
    try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      try await call.send(EchoRequest(payload: ByteBuffer(), text: text))
      await call.finish()
      var texts: [String] = []
      for try await response in call.responses { texts.append(response.text) }
      let status = await call.status
      guard status == .ok else { throw status }
      return texts.joined()
    }
  }

  /// The message of the failure a call over `channel` ends with ("" if it succeeds).
  static func failure(_ channel: GRPCChannel) async -> String {
    do {
      _ = try await echo(channel)
      return ""
    } catch let status as GRPCStatus {
      return status.message
    } catch {
      return "\(error)"
    }
  }

  static func client(
    _ port: Int,
    host: String = "127.0.0.1",
    _ tls: GRPCClientTLS?,
    authority: String? = nil
  ) -> GRPCChannel {
    GRPCChannel(
      host: host,
      port: port,
      configuration: GRPCClientConfiguration(authority: authority, tls: tls)
    )
  }

  @Test("TLS round trip: an IP host (no SNI, the IP SAN verified) and a name (SNI)")
  func roundTrip() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(certificateFile: certificate.certificatePath, keyFile: certificate.keyPath)
    )
    for host in ["127.0.0.1", "localhost"] {
      let channel = Self.client(port, host: host, GRPCClientTLS(caFiles: [pki.caPath]))
      #expect(try await Self.echo(channel) == "over TLS")
      await channel.close()
    }
    #expect(server.failedTLSHandshakes == 0)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("mTLS: a client certificate from the client CA passes; none, or another CA's, fails")
  func mutualTLS() async throws {
    let pki = try TestPKI()
    let strangers = try TestPKI(name: "Somebody Else's CA")
    defer {
      pki.remove()
      strangers.remove()
    }
    let certificate = try pki.issueLocalServer()
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(
        certificateFile: certificate.certificatePath,
        keyFile: certificate.keyPath,
        clientCAFile: pki.caPath
      )
    )
    let me = try pki.issue("client")
    let withCertificate = Self.client(
      port,
      GRPCClientTLS(caFiles: [pki.caPath], certificateFile: me.certificatePath, keyFile: me.keyPath)
    )
    #expect(try await Self.echo(withCertificate) == "over TLS")
    await withCertificate.close()

    let without = Self.client(port, GRPCClientTLS(caFiles: [pki.caPath]))
    let noCertificate = await Self.failure(without)
    #expect(noCertificate.contains("requires a client certificate"), "\(noCertificate)")
    await without.close()

    let stranger = try strangers.issue("stranger")
    let foreign = Self.client(
      port,
      GRPCClientTLS(
        caFiles: [pki.caPath],
        certificateFile: stranger.certificatePath,
        keyFile: stranger.keyPath
      )
    )
    let refused = await Self.failure(foreign)
    #expect(refused.contains("refused the client certificate"), "\(refused)")
    await foreign.close()
    #expect(await eventually(within: 5) { server.failedTLSHandshakes == 2 })
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("each handshake failure is one sentence naming its cause")
  func failures() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let good = try pki.issueLocalServer()
    let expired = try pki.issueLocalServer(
      "expired",
      notBefore: Date() - 3 * 86_400,
      notAfter: Date() - 86_400
    )
    let elsewhere = try pki.issue("elsewhere", dnsNames: ["asr.example.com"])
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(certificateFile: good.certificatePath, keyFile: good.keyPath)
    )
    let (expiredServer, expiredPort) = try await Self.startServer(
      GRPCServerTLS(certificateFile: expired.certificatePath, keyFile: expired.keyPath)
    )
    let (elsewhereServer, elsewherePort) = try await Self.startServer(
      GRPCServerTLS(certificateFile: elsewhere.certificatePath, keyFile: elsewhere.keyPath)
    )
    let (plaintextServer, plaintextPort) = try await EchoService.startServer()

    let cases: [(String, GRPCChannel, String)] = [
      ("unknown CA", Self.client(port, GRPCClientTLS()), "unknown certificate authority"),
      (
        "expired", Self.client(expiredPort, GRPCClientTLS(caFiles: [pki.caPath])),
        "expired on"
      ),
      (
        "hostname mismatch",
        Self.client(elsewherePort, host: "localhost", GRPCClientTLS(caFiles: [pki.caPath])),
        "hostname mismatch: the server's certificate is not valid for localhost"
      ),
      (
        "TLS client, plaintext server",
        Self.client(plaintextPort, GRPCClientTLS(caFiles: [pki.caPath])),
        "the server does not speak TLS"
      ),
      (
        "plaintext client, TLS server", Self.client(port, nil),
        "this server requires TLS"
      ),
    ]
    for (name, channel, expected) in cases {
      let message = await Self.failure(channel)
      #expect(message.contains(expected), "\(name): \(message)")
      #expect(!message.contains("\n"), "\(name): one line")
      await channel.close()
    }
    // --insecure: the unknown authority and the expired certificate are accepted.
    for insecurePort in [port, expiredPort] {
      let channel = Self.client(insecurePort, GRPCClientTLS(verification: .none))
      #expect(try await Self.echo(channel) == "over TLS")
      await channel.close()
    }
    for server in [server, expiredServer, elsewhereServer, plaintextServer] {
      await server.shutdown(gracePeriod: .milliseconds(100))
    }
  }

  @Test("a TLS server that does not select h2 in ALPN is refused, saying so")
  func noHTTP2InALPN() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    for protocols in [["http/1.1"], []] {
      var tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map {
          .certificate($0)
        },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))
      )
      tls.applicationProtocols = protocols
      let context = try NIOSSLContext(configuration: tls)
      let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .childChannelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
          }
        }
        .bind(host: "127.0.0.1", port: 0).get()
      let channel = Self.client(listener.localAddress!.port!, GRPCClientTLS(caFiles: [pki.caPath]))
      let message = await Self.failure(channel)
      #expect(message.contains("h2"), "\(protocols): \(message)")
      #expect(message.contains("ALPN"), "\(protocols): \(message)")
      await channel.close()
      try await listener.close()
    }
  }

  @Test("a peer that never finishes the TLS handshake is closed after the handshake timeout")
  func handshakeTimeout() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(certificateFile: certificate.certificatePath, keyFile: certificate.keyPath),
      limits: ServerConnectionPolicy.Limits(handshakeTimeout: .milliseconds(300))
    )
    // A ClientHello's first bytes (if the connection is still open: a slow machine may take
    // longer than the timeout to get here), then silence.
    let silent = try await RawConnection.connect(port: port)
    try? await silent.send([0x16, 0x03, 0x01])
    #expect(await silent.waitForClose(timeout: .seconds(5)))
    #expect(server.limitCounts[.handshakeTimeout] == 1)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("handshakes in progress are capped: one more connection is closed on accept")
  func handshakeCap() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(
        certificateFile: certificate.certificatePath,
        keyFile: certificate.keyPath,
        maxHandshakesInProgress: 2
      )
    )
    var stalled: [RawConnection] = []
    for _ in 0..<2 {
      let connection = try await RawConnection.connect(port: port)
      try await connection.send([0x16, 0x03, 0x01])
      stalled.append(connection)
    }
    #expect(await eventually(within: 5) { server.connectionCount == 2 })
    let third = try await RawConnection.connect(port: port)
    #expect(await third.waitForClose(timeout: .seconds(5)))
    #expect(server.limitCounts[.tlsHandshakes] == 1)
    // Once the stalled handshakes end (their clients go away), a real client gets in.
    for connection in stalled { await connection.close() }
    #expect(await eventually(within: 5) { server.connectionCount == 0 })
    let channel = Self.client(port, GRPCClientTLS(caFiles: [pki.caPath]))
    #expect(try await Self.echo(channel) == "over TLS")
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "reloadTLS: new connections get the new certificate, open ones go on; bad files keep the old"
  )
  func reload() async throws {
    let first = try TestPKI(name: "First CA")
    let second = try TestPKI(name: "Second CA")
    defer {
      first.remove()
      second.remove()
    }
    let old = try first.issueLocalServer()
    let directory = first.directory
    let certificatePath = directory + "/live.pem"
    let keyPath = directory + "/live.key"
    try old.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    try old.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
    let (server, port) = try await Self.startServer(
      GRPCServerTLS(certificateFile: certificatePath, keyFile: keyPath)
    )
    // A call held open on a connection made with the first certificate.
    let before = Self.client(port, GRPCClientTLS(caFiles: [first.caPath]))
    let held = try await before.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call -> String in
      try await call.send(EchoRequest(payload: ByteBuffer(), text: "before"))
      let responses = call.responses.makeAsyncIterator()
      let firstText = try await responses.next()?.text ?? ""

      let renewed = try second.issueLocalServer()
      try renewed.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
      try renewed.keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
      try server.reloadTLS()

      let after = Self.client(port, GRPCClientTLS(caFiles: [second.caPath]))
      #expect(try await Self.echo(after, "after") == "after")
      await after.close()
      let stale = Self.client(port, GRPCClientTLS(caFiles: [first.caPath]))
      let staleFailure = await Self.failure(stale)
      #expect(staleFailure.contains("unknown certificate authority"), "\(staleFailure)")
      await stale.close()

      // The connection opened before the reload still carries its call.
      try await call.send(EchoRequest(payload: ByteBuffer(), text: "still"))
      await call.finish()
      var rest = firstText
      while let response = try await responses.next() { rest += response.text }
      #expect(await call.status == .ok)
      return rest
    }
    #expect(held == "beforestill")
    await before.close()

    // A key that is not PEM: the reload fails, naming the file, and the certificate in use stays.
    try "not a key".write(toFile: keyPath, atomically: true, encoding: .utf8)
    #expect {
      try server.reloadTLS()
    } throws: { error in
      "\(error)".contains(keyPath)
    }
    let still = Self.client(port, GRPCClientTLS(caFiles: [second.caPath]))
    #expect(try await Self.echo(still) == "over TLS")
    await still.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("TLS files that cannot be used are one-line errors naming the file")
  func badFiles() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let garbage = try pki.write("-----BEGIN CERTIFICATE-----\nnope\n", to: "garbage.pem")
    let cases: [(GRPCServerTLS, String)] = [
      (
        GRPCServerTLS(certificateFile: "/nonexistent.pem", keyFile: certificate.keyPath),
        "/nonexistent.pem"
      ),
      (GRPCServerTLS(certificateFile: garbage, keyFile: certificate.keyPath), garbage),
      (
        GRPCServerTLS(certificateFile: certificate.certificatePath, keyFile: "/nonexistent.key"),
        "/nonexistent.key"
      ),
      (
        GRPCServerTLS(
          certificateFile: certificate.certificatePath,
          keyFile: certificate.keyPath,
          clientCAFile: "/nonexistent-ca.pem"
        ), "/nonexistent-ca.pem"
      ),
    ]
    for (tls, file) in cases {
      #expect {
        _ = try tls.makeContext()
      } throws: { error in
        "\(error)".contains(file) && !"\(error)".contains("\n")
      }
    }
    #expect {
      _ = try GRPCClientTLS(caFiles: ["/nonexistent-ca.pem"]).makeContext()
    } throws: { error in
      "\(error)".contains("/nonexistent-ca.pem")
    }
    #expect {
      _ = try GRPCClientTLS(certificateFile: certificate.certificatePath).makeContext()
    } throws: { error in
      "\(error)".contains("key")
    }
  }
}

/// TLS against grpcio, a gRPC implementation nobody here wrote: its `ssl_channel_credentials`
/// client against Hark's server, and Hark's client against its `ssl_server_credentials` server.
@Suite("TLS with grpcio", .serialized)
struct GRPCIOTLSTests {
  @Test("grpcio client → Hark server over TLS and mTLS")
  func grpcioClient() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let client = try pki.issue("grpcio-client")
    for mutual in [false, true] {
      let (server, port) = try await TLSTests.startServer(
        GRPCServerTLS(
          certificateFile: certificate.certificatePath,
          keyFile: certificate.keyPath,
          clientCAFile: mutual ? pki.caPath : nil
        )
      )
      var arguments = ["--cacert", pki.caPath]
      if mutual { arguments += ["--cert", client.certificatePath, "--key", client.keyPath] }
      for host in ["127.0.0.1", "localhost"] {
        let result = try await runPythonEchoClient(
          port: port,
          scenario: "echo-many",
          count: 100,
          host: host,
          tlsArguments: arguments
        )
        #expect(result.ok, "mTLS \(mutual), \(host): \(result.failure ?? "")")
        #expect(result.responses == 100)
      }
      if mutual {
        // Without its certificate, grpcio cannot call.
        let refused = try await runPythonEchoClient(
          port: port,
          scenario: "echo-many",
          count: 1,
          tlsArguments: ["--cacert", pki.caPath]
        )
        #expect(!refused.ok)
        #expect(refused.status_name == "UNAVAILABLE")
      }
      await server.shutdown(gracePeriod: .milliseconds(100))
    }
  }

  @Test("Hark client → grpcio server over TLS and mTLS")
  func grpcioServer() async throws {
    let pki = try TestPKI()
    defer { pki.remove() }
    let certificate = try pki.issueLocalServer()
    let me = try pki.issue("hark-client")
    for mutual in [false, true] {
      var arguments = ["--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
      if mutual { arguments += ["--tls-client-ca", pki.caPath] }
      let server = try await PythonEchoServer.start(tlsArguments: arguments)
      let channel = TLSTests.client(
        server.port,
        GRPCClientTLS(
          caFiles: [pki.caPath],
          certificateFile: mutual ? me.certificatePath : nil,
          keyFile: mutual ? me.keyPath : nil
        )
      )
      #expect(try await TLSTests.echo(channel, "to grpcio") == "to grpcio")
      await channel.close()
      let unknown = TLSTests.client(server.port, GRPCClientTLS())
      #expect(await TLSTests.failure(unknown).contains("unknown certificate authority"))
      await unknown.close()
      await server.stop()
    }
  }
}
