import JWTKit

#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// The public keys of a JWKS file (`hark serve --jwt-jwks`), and the checks of a JWT bearer
/// token against them and the server's issuer, audience and clock.
///
/// jwt-kit reads the JWKS and makes a verifier per key and algorithm when the file is loaded;
/// a token is then checked without suspending, on the event loop of its call.
///
/// A token is accepted when:
/// - its header names a key of the set (`kid`) and an algorithm (`alg`) that key allows: the
///   key's `alg`, or for a key without one, RS256/384/512 and PS256/384/512 for RSA, ES256,
///   ES384 or ES512 by the curve of an EC key, EdDSA for an OKP key;
/// - its signature verifies;
/// - it has an `exp`, not passed more than the leeway ago, and its `nbf`, if any, is at most the
///   leeway ahead;
/// - its `iss` is the issuer and its `aud` (a string or an array) includes the audience, when
///   the server names them.
///
/// Its `topics` claim, an array of strings, lists the topics it may use; without one it may use
/// every topic, as may `"*"` among them.
public struct JWTKeySet: Sendable {
  /// Verifiers by algorithm name (`RS256`, `ES256`, …), by key id.
  private var verifiers: [String: [String: any JWTAlgorithm]] = [:]

  /// How many keys there are.
  public var count: Int { verifiers.count }

  /// No keys.
  public init() {}

  /// The keys of a JWKS's JSON text; `file` names it in errors.
  public static func load(
    json: String,
    file: String
  ) async throws(CredentialsFileError)
    -> JWTKeySet
  {
    func failure(_ reason: CredentialsFileError.Reason) -> CredentialsFileError {
      CredentialsFileError(file: file, reason: reason)
    }
    let document: Document
    do {
      document = try JSONDecoder().decode(Document.self, from: Data(json.utf8))
    } catch {
      throw failure(.notJWKS(Self.describe(error)))
    }
    var set = JWTKeySet()
    for (offset, entry) in document.keys.enumerated() {
      let index = offset + 1
      // Encryption keys may share a JWKS with signature keys; they are not for tokens.
      if entry.use == "enc" { continue }
      let jwk: JWK
      switch entry.key {
      case .success(let key): jwk = key
      case .failure(let error):
        throw failure(.unusableKey(index: index, kid: entry.kid, reason: Self.describe(error)))
      }
      if jwk.algorithm == .rsaOAEP { continue }
      guard let kid = jwk.keyIdentifier?.string else {
        throw failure(.unusableKey(index: index, kid: nil, reason: "it has no kid"))
      }
      guard set.verifiers[kid] == nil else { throw failure(.duplicateKeyID(kid)) }
      var verifiers: [String: any JWTAlgorithm] = [:]
      for algorithm in Self.algorithms(for: jwk) {
        var key = jwk
        key.algorithm = algorithm
        do {
          let collection = JWTKeyCollection()
          try await collection.add(jwk: key)
          let verifier = try await collection.getKey(for: JWKIdentifier(string: kid))
          verifiers[verifier.name] = verifier
        } catch {
          let why = "not a valid \(jwk.keyType.rawValue) key for \(algorithm.rawValue) "
          throw failure(
            .unusableKey(index: index, kid: kid, reason: why + "(\(Self.describe(error)))")
          )
        }
      }
      guard !verifiers.isEmpty else {
        throw failure(
          .unusableKey(index: index, kid: kid, reason: "no signature algorithm fits it")
        )
      }
      set.verifiers[kid] = verifiers
    }
    guard set.count > 0 else { throw failure(.noKeys) }
    return set
  }

  /// Why a JWT is refused.
  public enum Rejection: Error, Hashable, Sendable {
    /// Not three base64url parts of JSON (or its claims have the wrong types).
    case malformed
    /// The header has a `crit` parameter (RFC 7515 §4.1.11: an extension Hark does not know).
    case criticalHeader
    /// The header has no `kid`.
    case noKeyID
    /// The `kid` is not a key of the set.
    case unknownKey
    /// The `alg` is not one the key allows.
    case algorithmNotAllowed
    /// The signature does not verify.
    case badSignature
    /// No `exp` claim.
    case noExpiry
    /// `exp` passed more than the leeway ago.
    case expired
    /// `nbf` is more than the leeway ahead.
    case notYetValid
    /// `iss` is not the issuer.
    case wrongIssuer
    /// `aud` does not include the audience.
    case wrongAudience
  }

  /// The topics `token` may use, once its signature and claims are checked at `now` with
  /// `leeway`, against `issuer` and `audience` when given.
  public func verify(
    _ token: some StringProtocol,
    issuer: String?,
    audience: String?,
    leeway: Duration,
    now: Date
  ) -> Result<AllowedTopics, Rejection> {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3,
      let headerBytes = Self.base64URLDecoded(parts[0]),
      let payloadBytes = Self.base64URLDecoded(parts[1]),
      let signature = Self.base64URLDecoded(parts[2]),
      let header = try? JSONDecoder().decode(JWTHeader.self, from: headerBytes)
    else { return .failure(.malformed) }
    guard header.fields["crit"] == nil else { return .failure(.criticalHeader) }
    guard let kid = header.kid else { return .failure(.noKeyID) }
    guard let keyVerifiers = verifiers[kid] else { return .failure(.unknownKey) }
    guard let algorithm = header.alg, let verifier = keyVerifiers[algorithm] else {
      return .failure(.algorithmNotAllowed)
    }
    // The signing input is the token up to its last dot.
    let signed = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
    guard (try? verifier.verify(signature, signs: signed)) == true else {
      return .failure(.badSignature)
    }
    guard let claims = try? JSONDecoder().decode(Claims.self, from: payloadBytes) else {
      return .failure(.malformed)
    }
    let seconds = now.timeIntervalSince1970
    let slack =
      Double(leeway.components.seconds) + Double(leeway.components.attoseconds) / 1e18
    guard let expiry = claims.exp else { return .failure(.noExpiry) }
    guard seconds < expiry + slack else { return .failure(.expired) }
    if let notBefore = claims.nbf, seconds + slack < notBefore {
      return .failure(.notYetValid)
    }
    if let issuer, claims.iss != issuer { return .failure(.wrongIssuer) }
    if let audience, !(claims.aud?.values.contains(audience) ?? false) {
      return .failure(.wrongAudience)
    }
    guard let topics = claims.topics, !topics.contains("*") else { return .success(.all) }
    return .success(.only(Set(topics)))
  }

  /// The algorithms a key may verify: its `alg`, else every one its type and curve allow.
  private static func algorithms(for jwk: JWK) -> [JWK.Algorithm] {
    if let algorithm = jwk.algorithm { return [algorithm] }
    switch jwk.keyType {
    case .rsa: return [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512]
    case .ecdsa:
      switch jwk.curve?.rawValue {
      case "P-256": return [.es256]
      case "P-384": return [.es384]
      case "P-521": return [.es512]
      default: return []
      }
    case .octetKeyPair: return [.eddsa]
    default: return []
    }
  }

  /// The claims Hark reads. Times are NumericDates: seconds since 1970, possibly fractional.
  private struct Claims: Decodable {
    var exp: Double?
    var nbf: Double?
    var iss: String?
    var aud: Audience?
    var topics: [String]?
  }

  /// `aud`: one string or an array of them (RFC 7519 §4.1.3).
  private struct Audience: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let single = try? container.decode(String.self) {
        values = [single]
      } else {
        values = try container.decode([String].self)
      }
    }
  }

  /// A JWKS, each key decoded on its own so that an error names the key.
  private struct Document: Decodable {
    var keys: [Entry]

    struct Entry: Decodable {
      var kid: String?
      var use: String?
      var key: Result<JWK, any Error>

      private enum CodingKeys: String, CodingKey {
        case kid, use
      }

      init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kid = try? container.decodeIfPresent(String.self, forKey: .kid)
        use = try? container.decodeIfPresent(String.self, forKey: .use)
        key = Result { try JWK(from: decoder) }
      }
    }
  }

  /// Base64url without padding (RFC 7515 §2), or nil.
  private static func base64URLDecoded(_ text: some StringProtocol) -> Data? {
    guard !text.contains("=") else { return nil }
    var base64 = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
    base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
    return Data(base64Encoded: base64)
  }

  /// One line for a decoding (or key) error.
  private static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
      return "\(path(context.codingPath + [key])) is missing"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
      return "\(path(context.codingPath)) has the wrong type"
    case DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty:
      return "not valid JSON"
    case DecodingError.dataCorrupted(let context):
      return "\(path(context.codingPath)) has an unsupported value"
    default:
      return String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
  }

  /// `keys[0].kty`.
  private static func path(_ codingPath: [any CodingKey]) -> String {
    var text = ""
    for key in codingPath {
      if let index = key.intValue {
        text += "[\(index)]"
      } else {
        text += (text.isEmpty ? "" : ".") + key.stringValue
      }
    }
    return text
  }

}
