import NIOConcurrencyHelpers
public import NIOCore
public import NIOSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// TLS for a client's connections: the server's certificate is verified against the system's
/// trust store (and any extra authorities), for the host connected to or the `authority`
/// override, and the server must select HTTP/2 (`h2`) in ALPN.
///
/// ```swift
/// var configuration = GRPCClientConfiguration()
/// configuration.tls = GRPCClientTLS(caFiles: ["ca.pem"])                 // an extra authority
/// configuration.tls = GRPCClientTLS(certificateFile: "me.pem", keyFile: "me.key")   // mTLS
/// ```
public struct GRPCClientTLS: Sendable, Hashable {
  /// How the server's certificate is checked.
  public enum Verification: Sendable, Hashable {
    /// Signed by a trusted authority, valid now, and for the server's name (the default).
    case full
    /// Not checked at all (`--insecure`): the connection is encrypted but the server unknown.
    case none
  }

  /// Whether the system's trust store (Debian's `ca-certificates`) is trusted.
  public var useSystemTrustRoots: Bool
  /// PEM files of further authorities to trust.
  public var caFiles: [String]
  /// A PEM certificate chain to present (mTLS); with ``keyFile``.
  public var certificateFile: String?
  /// The PEM private key of ``certificateFile``.
  public var keyFile: String?
  /// How the server's certificate is checked.
  public var verification: Verification
  /// The name sent in SNI and verified in the server's certificate; nil for the host of
  /// ``GRPCClientConfiguration/authority``, else the host connected to. An IP address is
  /// verified against the certificate's IP addresses and sent in no SNI.
  public var serverName: String?

  /// TLS with the system's trust store and `caFiles`.
  public init(
    useSystemTrustRoots: Bool = true,
    caFiles: [String] = [],
    certificateFile: String? = nil,
    keyFile: String? = nil,
    verification: Verification = .full,
    serverName: String? = nil
  ) {
    self.useSystemTrustRoots = useSystemTrustRoots
    self.caFiles = caFiles
    self.certificateFile = certificateFile
    self.keyFile = keyFile
    self.verification = verification
    self.serverName = serverName
  }

  /// The SSL context these settings make: the files are read now.
  ///
  /// - Throws: ``GRPCTLSError`` naming the file that cannot be read or used.
  public func makeContext() throws(GRPCTLSError) -> NIOSSLContext {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.minimumTLSVersion = .tlsv12
    tls.applicationProtocols = ["h2"]
    switch verification {
    case .full: tls.certificateVerification = .fullVerification
    case .none: tls.certificateVerification = .none
    }
    var extra: [NIOSSLCertificate] = []
    for file in caFiles {
      extra += try GRPCTLSError.loading("the CA bundle", file) {
        try NIOSSLCertificate.fromPEMFile(file)
      }
    }
    if useSystemTrustRoots {
      tls.trustRoots = .default
      tls.additionalTrustRoots = extra.isEmpty ? [] : [.certificates(extra)]
    } else {
      tls.trustRoots = .certificates(extra)
    }
    switch (certificateFile, keyFile) {
    case (let certificateFile?, let keyFile?):
      tls.certificateChain = try GRPCTLSError.loading("the client certificate", certificateFile) {
        try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
      }
      tls.privateKey = .privateKey(
        try GRPCTLSError.loading("the client key", keyFile) {
          try NIOSSLPrivateKey(file: keyFile, format: .pem)
        }
      )
    case (nil, nil):
      break
    default:
      throw GRPCTLSError("a client certificate needs its key, and a key its certificate")
    }
    return try GRPCTLSError.loading("the TLS settings", nil) {
      try NIOSSLContext(configuration: tls)
    }
  }
}

/// TLS for a server: its certificate chain and key, and, when clients must present
/// certificates (mTLS), the authorities that sign them. ALPN offers `h2` only.
///
/// The files are read when the server starts and again on ``GRPCServer/reloadTLS()`` (which
/// `hark serve` calls on SIGHUP): new connections use the new certificate, open ones go on.
public struct GRPCServerTLS: Sendable, Hashable {
  /// The PEM certificate chain, the server's own certificate first.
  public var certificateFile: String
  /// The PEM private key of the certificate.
  public var keyFile: String
  /// A PEM file of the authorities whose client certificates are accepted; when set, every
  /// client must present one.
  public var clientCAFile: String?
  /// TLS handshakes in progress at once; one more connection is closed as it is accepted.
  public var maxHandshakesInProgress: Int

  /// TLS with a certificate and key.
  public init(
    certificateFile: String,
    keyFile: String,
    clientCAFile: String? = nil,
    maxHandshakesInProgress: Int = 1024
  ) {
    self.certificateFile = certificateFile
    self.keyFile = keyFile
    self.clientCAFile = clientCAFile
    self.maxHandshakesInProgress = maxHandshakesInProgress
  }

  /// The SSL context of these settings: the files are read now.
  ///
  /// - Throws: ``GRPCTLSError`` naming the file that cannot be read or used.
  public func makeContext() throws(GRPCTLSError) -> NIOSSLContext {
    let chain = try GRPCTLSError.loading("the certificate", certificateFile) {
      try NIOSSLCertificate.fromPEMFile(certificateFile)
    }
    guard !chain.isEmpty else { throw GRPCTLSError("\(certificateFile) holds no PEM certificate") }
    let key = try GRPCTLSError.loading("the private key", keyFile) {
      try NIOSSLPrivateKey(file: keyFile, format: .pem)
    }
    var tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: chain.map { .certificate($0) },
      privateKey: .privateKey(key)
    )
    tls.minimumTLSVersion = .tlsv12
    tls.applicationProtocols = ["h2"]
    if let clientCAFile {
      let authorities = try GRPCTLSError.loading("the client CA bundle", clientCAFile) {
        try NIOSSLCertificate.fromPEMFile(clientCAFile)
      }
      tls.trustRoots = .certificates(authorities)
      tls.certificateVerification = .noHostnameVerification
      tls.sendCANameList = true
    }
    return try GRPCTLSError.loading("the TLS settings", nil) {
      try NIOSSLContext(configuration: tls)
    }
  }
}

/// A TLS setting that cannot be used: a file that is missing, unreadable or not PEM, a key that
/// is not the certificate's, a certificate without its key.
public struct GRPCTLSError: Error, CustomStringConvertible, Sendable {
  public var description: String

  init(_ description: String) { self.description = description }

  static func loading<T>(
    _ what: String,
    _ file: String?,
    _ body: () throws -> T
  ) throws(GRPCTLSError) -> T {
    if let file, access(file, R_OK) != 0 {
      throw GRPCTLSError(
        "cannot read \(what) \(file): \(String(cString: strerror(errno)).lowercased())"
      )
    }
    do {
      return try body()
    } catch {
      if let file { throw GRPCTLSError("\(what) \(file) is not usable PEM: \(error)") }
      throw GRPCTLSError("\(what) cannot be used: \(error)")
    }
  }
}
