public import HarkGRPCCore
public import HarkProto
import HarkRecognizer
import NIOConcurrencyHelpers

#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// Decides who may recognize: reads `authorization: Bearer <token>` from a call's metadata and
/// checks the token against a tokens file (``StaticTokens``), a JWKS (``JWTKeySet``), or both
/// (a token either accepts is accepted), then the init's topic against the token's topics.
///
/// Every refusal is in-band: 401 `Unauthorized` when the header is missing or malformed or the
/// token is not accepted, 403 `Forbidden` when the token may not use the topic. The details say
/// which case it is, never the token.
///
/// ``reload()`` reads the files again (`hark serve` does on SIGHUP); calls that start after it
/// see the new tokens and keys.
public final class BearerAuthenticator: Sendable {
  /// Where the tokens and keys are, and how JWTs are checked.
  public struct Configuration: Sendable, Hashable {
    /// A tokens file (see ``StaticTokens`` for its format).
    public var tokensFile: String?
    /// A JWKS file: the public keys that sign accepted JWTs.
    public var jwksFile: String?
    /// The `iss` a JWT must have; nil accepts any.
    public var issuer: String?
    /// A value a JWT's `aud` must include; nil accepts any.
    public var audience: String?
    /// How far `exp` and `nbf` may be off the server's clock.
    public var leeway: Duration = .seconds(30)

    /// A configuration: at least one of `tokensFile` and `jwksFile`; `issuer` and `audience`
    /// only with `jwksFile`.
    public init(
      tokensFile: String? = nil,
      jwksFile: String? = nil,
      issuer: String? = nil,
      audience: String? = nil
    ) {
      self.tokensFile = tokensFile
      self.jwksFile = jwksFile
      self.issuer = issuer
      self.audience = audience
    }

    /// What is checked, for logs: `tokens`, `jwt` or `tokens+jwt`.
    public var mode: String {
      [tokensFile.map { _ in "tokens" }, jwksFile.map { _ in "jwt" }].compactMap { $0 }
        .joined(separator: "+")
    }
  }

  /// What the files held when last read.
  public struct Credentials: Sendable {
    /// The tokens of the tokens file.
    public var tokens: StaticTokens?
    /// The keys of the JWKS file.
    public var keys: JWTKeySet?
  }

  /// The configuration.
  public let configuration: Configuration
  private let state: NIOLockedValueBox<Credentials>

  /// Reads the files of `configuration`.
  public init(configuration: Configuration) async throws(CredentialsFileError) {
    precondition(
      configuration.tokensFile != nil || configuration.jwksFile != nil,
      "a BearerAuthenticator needs a tokens file or a JWKS file"
    )
    precondition(
      configuration.jwksFile != nil
        || (configuration.issuer == nil && configuration.audience == nil),
      "an issuer or audience needs a JWKS file"
    )
    self.configuration = configuration
    self.state = NIOLockedValueBox(try await Self.read(configuration))
  }

  /// Reads the files again; on an error the tokens and keys in use stay.
  @discardableResult
  public func reload() async throws(CredentialsFileError) -> Credentials {
    let credentials = try await Self.read(configuration)
    state.withLockedValue { $0 = credentials }
    return credentials
  }

  /// The tokens and keys in use.
  public var credentials: Credentials { state.withLockedValue { $0 } }

  /// A status refusing a call with `metadata` that asks for `topic` (401, 403), or nil to let
  /// it start; JWT times are checked against `now`.
  public func authorize(
    _ metadata: GRPCMetadata,
    topic: String,
    now: Date = Date()
  ) -> RecognitionStatus? {
    refusal(metadata, topic: topic, now: now).map { failure in
      ServerSessionStateMachine.status(for: failure.rejection)
    }
  }

  /// Why a call with `metadata` that asks for `topic` is refused, or nil to let it start; JWT
  /// times are checked against `now`.
  func refusal(
    _ metadata: GRPCMetadata,
    topic: String,
    now: Date = Date()
  ) -> AuthenticationFailure? {
    let credentials = self.credentials
    let token: Substring
    switch Self.bearerToken(in: metadata) {
    case .success(let found): token = found
    case .failure(let failure): return failure
    }
    let topics: AllowedTopics
    switch check(token, credentials: credentials, now: now) {
    case .success(let allowed): topics = allowed
    case .failure(let failure): return failure
    }
    guard topics.allows(topic) else { return .topic(topic) }
    return nil
  }

  /// The topics `token` may use, by the tokens first, then as a JWT.
  private func check(
    _ token: Substring,
    credentials: Credentials,
    now: Date
  ) -> Result<AllowedTopics, AuthenticationFailure> {
    if let topics = credentials.tokens?.topics(of: token) { return .success(topics) }
    guard let keys = credentials.keys,
      credentials.tokens == nil || token.utf8.lazy.filter({ $0 == UInt8(ascii: ".") }).count == 2
    else { return .failure(.unknownToken) }
    return keys.verify(
      token,
      issuer: configuration.issuer,
      audience: configuration.audience,
      leeway: configuration.leeway,
      now: now
    ).mapError { .jwt($0) }
  }

  /// The token of the call's `authorization: Bearer <token>` header.
  static func bearerToken(in metadata: GRPCMetadata) -> Result<Substring, AuthenticationFailure> {
    let values = metadata.values(for: "authorization")
    guard let value = values.first else { return .failure(.missingHeader) }
    guard values.count == 1 else { return .failure(.repeatedHeader) }
    guard case .string(let text) = value else { return .failure(.malformedHeader) }
    // RFC 7235: the scheme is case-insensitive, then one or more spaces.
    guard let space = text.firstIndex(of: " "), text[..<space].lowercased() == "bearer" else {
      return .failure(.malformedHeader)
    }
    let token = text[space...].drop { $0 == " " }
    guard StaticTokens.isBearerToken(token) else { return .failure(.malformedHeader) }
    return .success(token)
  }

  private static func read(
    _ configuration: Configuration
  ) async throws(CredentialsFileError) -> Credentials {
    var credentials = Credentials()
    if let file = configuration.tokensFile {
      credentials.tokens = try StaticTokens(parsing: readFile(file), file: file)
    }
    if let file = configuration.jwksFile {
      credentials.keys = try await JWTKeySet.load(json: readFile(file), file: file)
    }
    return credentials
  }

  private static func readFile(_ path: String) throws(CredentialsFileError) -> String {
    guard let file = fopen(path, "rb") else {
      throw CredentialsFileError(
        file: path,
        reason: .unreadable(String(cString: strerror(errno)).lowercased())
      )
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
      bytes += chunk[0..<count]
      if count < chunk.count { break }
    }
    if ferror(file) != 0 {
      throw CredentialsFileError(
        file: path,
        reason: .unreadable(String(cString: strerror(errno)).lowercased())
      )
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// Why a call is refused, and the rejection (401, 403) that says so.
enum AuthenticationFailure: Error, Hashable, Sendable {
  case missingHeader
  case repeatedHeader
  case malformedHeader
  case unknownToken
  case jwt(JWTKeySet.Rejection)
  case topic(String)

  /// The recognition's rejection: 403 for a topic the token may not use, else 401.
  var rejection: ServerSessionStateMachine.InitRejection {
    switch self {
    case .topic(let topic): .forbidden(topic: topic)
    default: .unauthenticated(reason: details)
    }
  }

  /// Which case it is, without the token.
  private var details: String {
    switch self {
    case .missingHeader: "no authorization header; send authorization: Bearer TOKEN"
    case .repeatedHeader: "more than one authorization header"
    case .malformedHeader: "the authorization header is not Bearer followed by a token"
    case .unknownToken: "the token is not one the server accepts"
    case .jwt(.malformed): "the token is not a well-formed JWT"
    case .jwt(.criticalHeader): "the JWT has critical header parameters the server does not know"
    case .jwt(.noKeyID): "the JWT's header names no key (kid)"
    case .jwt(.unknownKey): "the JWT's key (kid) is not in the server's JWKS"
    case .jwt(.algorithmNotAllowed): "the JWT's algorithm (alg) is not one its key allows"
    case .jwt(.badSignature): "the JWT's signature does not verify"
    case .jwt(.noExpiry): "the JWT has no expiry (exp)"
    case .jwt(.expired): "the JWT has expired (exp)"
    case .jwt(.notYetValid): "the JWT is not valid yet (nbf)"
    case .jwt(.wrongIssuer): "the JWT's issuer (iss) is not the one the server accepts"
    case .jwt(.wrongAudience): "the JWT's audience (aud) does not include the server's"
    case .topic(let topic): "the token may not use the topic \(topic)"
    }
  }
}

/// Why a tokens file or a JWKS file cannot be used: one line naming the file (and the line).
public struct CredentialsFileError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong.
  public enum Reason: Hashable, Sendable {
    /// The file cannot be read (the system's reason).
    case unreadable(String)
    /// A token has characters a bearer token cannot have.
    case invalidToken
    /// A token has no topics after it.
    case missingTopics
    /// Something other than a comment follows a token's topics.
    case extraField
    /// The topics are neither `*` nor a list of names separated by single commas.
    case invalidTopics
    /// The token is on an earlier line already.
    case duplicateToken(firstLine: Int)
    /// The file is not a JWKS (a JSON object with a `keys` array); why.
    case notJWKS(String)
    /// The JWKS has no key for signatures.
    case noKeys
    /// A key of the JWKS (its position from 1, its `kid`) cannot be used; why.
    case unusableKey(index: Int, kid: String?, reason: String)
    /// Two keys of the JWKS have the same `kid`.
    case duplicateKeyID(String)
  }

  /// The file.
  public var file: String
  /// The line (from 1), for errors of a tokens file.
  public var line: Int?
  /// What is wrong.
  public var reason: Reason

  /// An error of `file` (at `line`).
  public init(file: String, line: Int? = nil, reason: Reason) {
    self.file = file
    self.line = line
    self.reason = reason
  }

  /// The message.
  public var description: String {
    let place = line.map { "\(file):\($0)" } ?? file
    switch reason {
    case .unreadable(let why):
      return "cannot read \(file): \(why)"
    case .invalidToken:
      return "\(place): the token has characters a bearer token cannot have "
        + "(A-Z a-z 0-9 - . _ ~ + / and a trailing =)"
    case .missingTopics:
      return "\(place): the token needs its topics after it (TOPIC,TOPIC or *)"
    case .extraField:
      return "\(place): expected TOKEN TOPICS, then at most a # comment"
    case .invalidTopics:
      return "\(place): topics are * or names separated by commas (GEN,BANKING)"
    case .duplicateToken(let firstLine):
      return "\(place): the token is already on line \(firstLine)"
    case .notJWKS(let why):
      return "\(place): not a JWKS: \(why)"
    case .noKeys:
      return "\(place): the JWKS has no signature keys"
    case .unusableKey(let index, let kid, let why):
      let name = kid.map { "key \(index) (kid \($0))" } ?? "key \(index)"
      return "\(place): \(name) cannot be used: \(why)"
    case .duplicateKeyID(let kid):
      return "\(place): two keys have the kid \(kid)"
    }
  }
}
