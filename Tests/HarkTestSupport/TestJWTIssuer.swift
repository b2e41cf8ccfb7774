public import Foundation
import JWTKit
import _CryptoExtras

/// A JWT issuer made for a test: an ES256 key (`kid` `ec-1`, no `alg` in the JWKS) and an RSA
/// 2048 key (`kid` `rsa-1`, `alg` RS256), their public keys as a JWKS file in a temporary
/// directory (removed by ``remove()``), and tokens they sign. Keys are made anew each time.
///
/// ```swift
/// let issuer = try await TestJWTIssuer()
/// let token = try await issuer.sign(topics: ["GEN"])   // ES256, exp in 5 minutes
/// // issuer.jwksPath
/// ```
public final class TestJWTIssuer: Sendable {
  /// Which key signs a token.
  public enum Signer: Sendable, CaseIterable {
    /// The EC key of the JWKS (ES256).
    case ec
    /// The RSA key of the JWKS (RS256).
    case rsa
    /// Another EC key that claims the `kid` of ``ec``: a bad signature.
    case ecImpostor
    /// Another RSA key that claims the `kid` of ``rsa``: a bad signature.
    case rsaImpostor
    /// An EC key whose `kid` (`ec-unknown`) is not in the JWKS.
    case unknownKey
  }

  /// The issuer tokens name by default.
  public static let issuer = "https://issuer.hark.test"
  /// The audience tokens name by default.
  public static let audience = "hark-test"

  /// The directory holding the JWKS file.
  public let directory: String
  /// The JWKS file: the public keys of ``Signer/ec`` and ``Signer/rsa``.
  public let jwksPath: String
  /// Its text.
  public let jwksJSON: String
  private let keys: JWTKeyCollection
  private let impostors: JWTKeyCollection

  /// New keys, and their JWKS written to a file.
  public init() async throws {
    let ec = ES256PrivateKey()
    let rsa = try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
    keys = JWTKeyCollection()
    await keys.add(ecdsa: ec, kid: "ec-1")
    await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa-1")
    await keys.add(ecdsa: ES256PrivateKey(), kid: "ec-unknown")
    impostors = JWTKeyCollection()
    await impostors.add(ecdsa: ES256PrivateKey(), kid: "ec-1")
    await impostors.add(
      rsa: try Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048)),
      digestAlgorithm: .sha256,
      kid: "rsa-1"
    )
    guard let point = ec.publicKey.parameters else { throw TestJWTError("no EC parameters") }
    let primitives = try rsa.publicKey.getKeyPrimitives()
    jwksJSON = """
      {"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "x": "\(point.x)", "y": "\(point.y)"},
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
         "n": "\(Self.base64URL(primitives.modulus))", "e": "\(Self.base64URL(primitives.publicExponent))"}
      ]}
      """
    directory = NSTemporaryDirectory() + "hark-jwt-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    jwksPath = directory + "/jwks.json"
    try Data(jwksJSON.utf8).write(to: URL(fileURLWithPath: jwksPath))
  }

  /// A token signed by `signer`. Times are seconds from now; nil leaves a claim out.
  public func sign(
    _ signer: Signer = .ec,
    issuer: String? = TestJWTIssuer.issuer,
    audience: [String]? = [TestJWTIssuer.audience],
    expiresIn: Int? = 300,
    notBeforeIn: Int? = nil,
    topics: [String]? = nil,
    subject: String? = "caller-1"
  ) async throws -> String {
    let now = Int(Date().timeIntervalSince1970)
    let claims = Claims(
      iss: issuer,
      sub: subject,
      aud: audience,
      exp: expiresIn.map { now + $0 },
      nbf: notBeforeIn.map { now + $0 },
      topics: topics
    )
    switch signer {
    case .ec: return try await keys.sign(claims, kid: "ec-1")
    case .rsa: return try await keys.sign(claims, kid: "rsa-1")
    case .unknownKey: return try await keys.sign(claims, kid: "ec-unknown")
    case .ecImpostor: return try await impostors.sign(claims, kid: "ec-1")
    case .rsaImpostor: return try await impostors.sign(claims, kid: "rsa-1")
    }
  }

  /// A token of `header` and `payload` (JSON texts, as they are) signed by the EC key.
  public func signRaw(
    header: String = #"{"alg":"ES256","kid":"ec-1","typ":"JWT"}"#,
    payload: String
  ) async throws -> String {
    let input = "\(Self.base64URL(Data(header.utf8))).\(Self.base64URL(Data(payload.utf8)))"
    let signature = try await keys.getKey(for: "ec-1").sign(Array(input.utf8))
    return input + "." + Self.base64URL(Data(signature))
  }

  /// A token of three parts: the base64url of `header` and `payload`, then `signature` as is.
  public static func compose(header: String, payload: String, signature: String = "") -> String {
    "\(base64URL(Data(header.utf8))).\(base64URL(Data(payload.utf8))).\(signature)"
  }

  /// Writes `text` to a file of the directory; returns its path.
  @discardableResult
  public func write(_ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// Removes the directory.
  public func remove() {
    try? FileManager.default.removeItem(atPath: directory)
  }

  /// Base64url without padding.
  public static func base64URL(_ data: Data) -> String {
    String(
      data.base64EncodedString().compactMap { character -> Character? in
        switch character {
        case "+": "-"
        case "/": "_"
        case "=": nil
        default: character
        }
      }
    )
  }

  private struct Claims: JWTPayload {
    var iss: String?
    var sub: String?
    var aud: [String]?
    var exp: Int?
    var nbf: Int?
    var topics: [String]?

    // The server under test checks the claims; the issuer signs whatever it is given.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
  }
}

struct TestJWTError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
