import Crypto
public import Foundation
import SwiftASN1
import X509

/// Certificates made for a test: a certificate authority and the certificates it signs, written
/// as PEM files in a temporary directory (removed by ``remove()``). Keys are P-256 and made anew
/// each time: nothing here is committed, so no private key that looks real lives in the repository.
///
/// ```swift
/// let pki = try TestPKI()
/// let server = try pki.issue("server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
/// // server.certificatePath, server.keyPath, pki.caPath
/// ```
public final class TestPKI: Sendable {
  /// A certificate and its key, as PEM files.
  public struct Issued: Sendable {
    /// The PEM certificate (the leaf only).
    public var certificatePath: String
    /// The PEM private key (PKCS#8).
    public var keyPath: String
    /// The certificate, PEM.
    public var certificatePEM: String
    /// The private key, PEM.
    public var keyPEM: String
  }

  /// The directory holding the files.
  public let directory: String
  /// The authority's certificate, PEM.
  public let caPath: String
  /// The authority's certificate text.
  public let caPEM: String
  private let caName: DistinguishedName
  private let caKey: P256.Signing.PrivateKey

  /// A new authority named `name`.
  public init(name: String = "Hark Test CA") throws {
    directory = NSTemporaryDirectory() + "hark-pki-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    caKey = P256.Signing.PrivateKey()
    caName = try DistinguishedName { CommonName(name) }
    let now = Date()
    let certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: Certificate.PublicKey(caKey.publicKey),
      notValidBefore: now - 3600,
      notValidAfter: now + 86_400,
      issuer: caName,
      subject: caName,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
      },
      issuerPrivateKey: Certificate.PrivateKey(caKey)
    )
    caPEM = try certificate.serializeAsPEM().pemString
    caPath = directory + "/ca.pem"
    try caPEM.write(toFile: caPath, atomically: true, encoding: .utf8)
  }

  /// A certificate for `dnsNames` and `ipAddresses` (IPv4 or IPv6 text), valid from
  /// `notBefore` to `notAfter`, for a server and a client (both extended key usages).
  public func issue(
    _ name: String,
    dnsNames: [String] = [],
    ipAddresses: [String] = [],
    notBefore: Date = Date() - 3600,
    notAfter: Date = Date() + 86_400
  ) throws -> Issued {
    let key = P256.Signing.PrivateKey()
    var names: [GeneralName] = dnsNames.map { .dnsName($0) }
    for address in ipAddresses {
      names.append(
        .ipAddress(ASN1OctetString(contentBytes: ArraySlice(try Self.bytes(of: address))))
      )
    }
    let subject = try DistinguishedName { CommonName(name) }
    let certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: Certificate.PublicKey(key.publicKey),
      notValidBefore: notBefore,
      notValidAfter: notAfter,
      issuer: caName,
      subject: subject,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.notCertificateAuthority)
        Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
        try ExtendedKeyUsage([.serverAuth, .clientAuth])
        if !names.isEmpty { SubjectAlternativeNames(names) }
      },
      issuerPrivateKey: Certificate.PrivateKey(caKey)
    )
    let certificatePEM = try certificate.serializeAsPEM().pemString
    let keyPEM = key.pemRepresentation
    let certificatePath = directory + "/\(name).pem"
    let keyPath = directory + "/\(name).key"
    try certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    try keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
    return Issued(
      certificatePath: certificatePath,
      keyPath: keyPath,
      certificatePEM: certificatePEM,
      keyPEM: keyPEM
    )
  }

  /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
  public func issueLocalServer(
    _ name: String = "server",
    notBefore: Date = Date() - 3600,
    notAfter: Date = Date() + 86_400
  ) throws -> Issued {
    try issue(
      name,
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      notBefore: notBefore,
      notAfter: notAfter
    )
  }

  /// Writes `text` to a file of the directory; returns its path.
  @discardableResult
  public func write(_ text: String, to name: String) throws -> String {
    let path = directory + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// Removes the directory.
  public func remove() {
    try? FileManager.default.removeItem(atPath: directory)
  }

  private static func bytes(of address: String) throws -> [UInt8] {
    var v4 = in_addr()
    if inet_pton(AF_INET, address, &v4) == 1 {
      return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, address, &v6) == 1 {
      return withUnsafeBytes(of: &v6) { Array($0) }
    }
    throw TestPKIError(message: "not an IP address: \(address)")
  }
}

/// A test certificate that could not be made.
public struct TestPKIError: Error, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}
