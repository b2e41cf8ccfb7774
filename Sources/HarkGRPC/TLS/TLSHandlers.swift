import HarkGRPCCore
import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// MARK: Client

/// The client side of a TLS connection, between `NIOSSLClientHandler` and the HTTP/2 handler:
/// requires `h2` in ALPN and turns every handshake failure into one sentence naming its cause.
final class ClientTLSObserver: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = NIOAny

  /// The name verified in the server's certificate.
  let serverName: String
  /// Why the server's certificate was refused, as the verification callback saw it.
  let verification: VerificationDiagnosis
  /// Why the connection cannot be used; nil while nothing went wrong.
  private(set) var failure: String?

  init(serverName: String, verification: VerificationDiagnosis) {
    self.serverName = serverName
    self.verification = verification
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    context.fireChannelRead(data)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted(let negotiated) = event, negotiated != "h2" {
      failure =
        negotiated.map { "the server selected \($0) in ALPN, not HTTP/2 (h2)" }
        ?? "the server did not select HTTP/2 (h2) in ALPN: it does not speak gRPC over TLS"
      context.close(promise: nil)
      return
    }
    context.fireUserInboundEventTriggered(event)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if failure == nil {
      failure = Self.describe(error, serverName: serverName, verification: verification.reason)
    }
    context.fireErrorCaught(error)
  }

  /// A TLS error in words: its cause, and what to do about it.
  static func describe(_ error: any Error, serverName: String, verification: String?) -> String {
    if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
      return
        "hostname mismatch: the server's certificate is not valid for \(serverName) (--authority sets the name to verify)"
    }
    if let error = error as? NIOSSLError, case .uncleanShutdown = error {
      return "the server closed the connection during the TLS handshake"
    }
    let text = String(describing: error)
    func has(_ words: String...) -> Bool { words.contains { text.contains($0) } }
    if has("CERTIFICATE_VERIFY_FAILED") {
      return verification
        ?? "the server's certificate could not be verified (--cacert trusts its authority)"
    }
    if has("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNEXPECTED_RECORD") {
      return
        "the server does not speak TLS: it answered in plaintext (for an h2c server, use --plaintext)"
    }
    if has("CERTIFICATE_REQUIRED") {
      return "the server requires a client certificate (--cert and --key)"
    }
    if has("NO_APPLICATION_PROTOCOL") {
      return "the server does not offer HTTP/2 (h2) in ALPN: it does not speak gRPC over TLS"
    }
    if has("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE_UNKNOWN") {
      return
        "the server refused the client certificate (it does not trust its authority, or it expired)"
    }
    if has("ALERT_CERTIFICATE_EXPIRED") {
      return "the server refused the client certificate: it expired"
    }
    if has("ALERT_HANDSHAKE_FAILURE") {
      return
        "the server refused the TLS handshake (no common cipher or version, or it requires a client certificate)"
    }
    return "TLS handshake failed: \(text)"
  }
}

/// Why BoringSSL refused the server's certificate: expired, not yet valid, or signed by an
/// authority not trusted. BoringSSL stays the judge; this only listens to its verdict for each
/// certificate of the chain, to say which certificate failed and how.
final class VerificationDiagnosis {
  private(set) var reason: String?

  /// Called by BoringSSL for each certificate of the chain with its verdict; returns it as is.
  func observe(
    _ verdict: NIOSSLVerificationResult,
    _ certificate: NIOSSLCertificate
  )
    -> NIOSSLVerificationResult
  {
    guard verdict == .failed, reason == nil else { return verdict }
    let now = time(nil)
    let subject = Self.name(of: certificate)
    if certificate.notValidAfter < now {
      reason =
        "the server's certificate \(subject) expired on \(Self.date(certificate.notValidAfter))"
    } else if certificate.notValidBefore > now {
      reason =
        "the server's certificate \(subject) is not valid before \(Self.date(certificate.notValidBefore))"
    } else {
      reason =
        "unknown certificate authority: the server's certificate \(subject) is not signed by an authority this client trusts (--cacert adds one)"
    }
    return verdict
  }

  private static func name(of certificate: NIOSSLCertificate) -> String {
    let names = certificate._subjectAlternativeNames().compactMap { name -> String? in
      guard name.nameType == .dnsName else { return nil }
      return String(decoding: name.contents, as: UTF8.self)
    }
    return names.first.map { "(\($0))" } ?? ""
  }

  static func date(_ time: time_t) -> String {
    var value = time
    var parts = tm()
    gmtime_r(&value, &parts)
    var buffer = [CChar](repeating: 0, count: 32)
    let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
    return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

/// The verification callback API is deprecated in favour of one that replaces BoringSSL's
/// verification; Hark keeps BoringSSL's and only observes it, through this conformance.
private protocol ObservingClientHandler {
  init(
    context: NIOSSLContext,
    serverHostname: String?,
    verificationCallback: NIOSSLVerificationCallback?
  ) throws
}

extension NIOSSLClientHandler: ObservingClientHandler {}

extension ClientTLSObserver {
  /// The TLS handler and this observer for a connection to `host`, verifying `serverName`.
  static func makeHandlers(
    context: NIOSSLContext,
    serverName: String
  ) throws -> (NIOSSLClientHandler, ClientTLSObserver) {
    let diagnosis = VerificationDiagnosis()
    // An IP address goes in no SNI; without a name, NIOSSL verifies the certificate's IP
    // addresses against the address connected to.
    let handler = try (NIOSSLClientHandler.self as any ObservingClientHandler.Type).init(
      context: context,
      serverHostname: isIPAddress(serverName) ? nil : serverName,
      verificationCallback: { diagnosis.observe($0, $1) }
    )
    return (
      handler as! NIOSSLClientHandler,
      ClientTLSObserver(serverName: serverName, verification: diagnosis)
    )
  }
}

/// Whether `text` is an IPv4 or IPv6 address.
func isIPAddress(_ text: String) -> Bool {
  (try? SocketAddress(ipAddress: text, port: 0)) != nil
}

// MARK: Server

/// The first handler of a TLS server connection: a peer whose first byte is not a TLS handshake
/// record is told, in its own protocol, that this port speaks TLS (an h2c client gets HTTP/2
/// SETTINGS and a GOAWAY whose debug data says so; an HTTP/1 client a 400), then closed.
final class PlaintextOnTLSPortDetector: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  static let message =
    "this server requires TLS; connect with TLS, not plaintext h2c (hark: drop --plaintext)"
  private let onPlaintext: (String) -> Void
  private var decided = false

  init(onPlaintext: @escaping (String) -> Void) {
    self.onPlaintext = onPlaintext
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !decided else { return }
    let bytes = unwrapInboundIn(data)
    guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
    decided = true
    if first == 0x16 {
      // A TLS handshake record: step aside.
      context.fireChannelRead(data)
      context.pipeline.syncOperations.removeHandler(self, promise: nil)
      return
    }
    let start = bytes.getString(at: bytes.readerIndex, length: min(bytes.readableBytes, 4)) ?? ""
    var reply = context.channel.allocator.buffer(capacity: 128)
    if start == "PRI " {
      // An h2c client: the server preface (empty SETTINGS), then GOAWAY PROTOCOL_ERROR.
      reply.writeBytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])
      let debug = Array(Self.message.utf8)
      reply.writeBytes([0, UInt8((8 + debug.count) >> 8), UInt8((8 + debug.count) & 0xFF)])
      reply.writeBytes([0x07, 0, 0, 0, 0, 0])
      reply.writeInteger(UInt32(0))
      reply.writeInteger(HTTP2ErrorCode.protocolError.rawValue)
      reply.writeBytes(debug)
      onPlaintext("plaintext HTTP/2 (h2c) on the TLS port")
    } else if ["GET ", "POST", "PUT ", "HEAD", "OPTI"].contains(start) {
      let body = "this server requires TLS (HTTPS)\n"
      reply.writeString(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)"
      )
      onPlaintext("an HTTP/1.x request on the TLS port")
    } else {
      onPlaintext("not a TLS handshake")
    }
    let channel = context.channel
    context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in
      channel.close(promise: nil)
    }
  }
}

/// How a server's TLS handshake ended.
enum TLSHandshakeEnd: Equatable {
  case completed
  /// It failed, for this reason.
  case failed(String)
  /// It failed, and the failure was reported already (a timeout, plaintext on the port).
  case reported
}

/// The server side of a TLS connection, after `NIOSSLServerHandler`: counts the handshake as in
/// progress until it ends, closes it if it takes longer than `timeout`, requires `h2` in ALPN,
/// and reports why a handshake failed.
final class ServerTLSObserver: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = NIOAny

  private let timeout: TimeAmount?
  private var onFinished: ((TLSHandshakeEnd) -> Void)?
  /// Set when the failure was reported elsewhere (plaintext on the TLS port).
  var reportedElsewhere = false
  private let onLimit: (GRPCLimitExceeded) -> Void
  private var timer: Scheduled<Void>?

  /// - Parameters:
  ///   - onFinished: Called once, when the handshake ends: with nil when it succeeded, else why
  ///     it failed.
  ///   - onLimit: Called when the handshake times out.
  init(
    timeout: TimeAmount?,
    onFinished: @escaping (TLSHandshakeEnd) -> Void,
    onLimit: @escaping (GRPCLimitExceeded) -> Void
  ) {
    self.timeout = timeout
    self.onFinished = onFinished
    self.onLimit = onLimit
  }

  func handlerAdded(context: ChannelHandlerContext) {
    guard let timeout else { return }
    timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
      guard let self, self.onFinished != nil else { return }
      self.onLimit(
        GRPCLimitExceeded(
          .handshakeTimeout,
          "no TLS handshake within \(ServerConnectionPolicy.describe(timeout))"
        )
      )
      self.reportedElsewhere = true
      self.finish("timed out")
      context.close(promise: nil)
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    finish("the connection closed during the TLS handshake")
  }

  private func finish(_ failure: String?) {
    timer?.cancel()
    timer = nil
    let onFinished = self.onFinished
    self.onFinished = nil
    onFinished?(failure == nil ? .completed : reportedElsewhere ? .reported : .failed(failure!))
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    context.fireChannelRead(data)
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case TLSUserEvent.handshakeCompleted(let negotiated) = event {
      guard negotiated == "h2" else {
        finish(
          negotiated.map { "the client negotiated \($0) in ALPN, not h2" }
            ?? "the client did not offer h2 in ALPN"
        )
        context.close(promise: nil)
        return
      }
      finish(nil)
    }
    context.fireUserInboundEventTriggered(event)
  }

  func channelInactive(context: ChannelHandlerContext) {
    finish("the client closed the connection during the TLS handshake")
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if onFinished != nil { finish(Self.describe(error)) }
    context.fireErrorCaught(error)
  }

  /// A server-side handshake failure in words.
  static func describe(_ error: any Error) -> String {
    let text = String(describing: error)
    func has(_ words: String...) -> Bool { words.contains { text.contains($0) } }
    if has("PEER_DID_NOT_RETURN_A_CERTIFICATE", "CERTIFICATE_REQUIRED") {
      return "the client presented no certificate"
    }
    if has("CERTIFICATE_VERIFY_FAILED") {
      return "the client's certificate is not signed by a trusted authority, or expired"
    }
    if has("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "ALERT_CERTIFICATE_UNKNOWN") {
      return "the client does not trust the server's certificate"
    }
    if has("ALERT_CERTIFICATE_EXPIRED") {
      return "the client says the server's certificate expired"
    }
    if has("NO_SHARED_CIPHER", "UNSUPPORTED_PROTOCOL") {
      return "no TLS version or cipher in common with the client"
    }
    if let error = error as? NIOSSLError, case .uncleanShutdown = error {
      return "the client closed the connection during the TLS handshake"
    }
    return "TLS handshake failed: \(text)"
  }
}
