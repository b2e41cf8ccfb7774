public import HarkGRPCCore

/// Where a client's access tokens come from: a fixed token, a file, an OAuth2 token endpoint.
///
/// ``RecognizerClient`` asks its provider before every recognition and sends the answer as
/// `authorization: Bearer <token>`, so a provider is asked often and concurrently: it should
/// answer from a cache, and fetch only when its token runs out.
public protocol TokenProvider: Sendable {
  /// The token to send now: one that has not expired.
  func token() async throws -> AccessToken

  /// Releases what the provider holds (an HTTP client); later calls of ``token()`` may fail.
  func close() async
}

extension TokenProvider {
  /// Nothing to release.
  public func close() async {}
}

/// An OAuth2 bearer token, and when it expires.
///
/// Its description never shows the token: `AccessToken(<redacted>, expires in 840 s)`.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible,
  CustomDebugStringConvertible,
  CustomReflectable
{
  /// The token, as sent after `Bearer `.
  public var value: String
  /// When it stops being valid; nil if unknown (a fixed token, a file).
  public var expiresAt: ContinuousClock.Instant?

  /// A token `value`, valid until `expiresAt` if known.
  public init(_ value: String, expiresAt: ContinuousClock.Instant? = nil) {
    self.value = value
    self.expiresAt = expiresAt
  }

  /// The value of the `authorization` header that carries it.
  public var authorization: String { "Bearer \(value)" }

  /// Whether the token expired at `now`.
  public func isExpired(at now: ContinuousClock.Instant = .now) -> Bool {
    expiresAt.map { now >= $0 } ?? false
  }

  public var description: String {
    guard let expiresAt else { return "AccessToken(<redacted>)" }
    let seconds = (expiresAt - .now).components.seconds
    return seconds > 0
      ? "AccessToken(<redacted>, expires in \(seconds) s)"
      : "AccessToken(<redacted>, expired)"
  }

  public var debugDescription: String { description }

  /// `dump` and the debugger see the redacted form too.
  public var customMirror: Mirror {
    Mirror(self, children: ["value": "<redacted>", "expiresAt": expiresAt as Any])
  }

  /// Whether `value` can be a token, sent in a header as it is: printable ASCII without spaces
  /// (RFC 6750 allows less, but what servers issue varies, and only this much matters here).
  public static func isValidValue(_ value: String) -> Bool {
    !value.isEmpty && value.utf8.allSatisfy { (0x21...0x7E).contains($0) }
  }
}

/// Why no token could be had, in one line that names the source and never a token or secret.
public struct TokenError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    private let name: String
    private init(_ name: String) { self.name = name }

    /// The token endpoint refused the request (an OAuth2 error: `invalid_client`, …).
    public static let refused = Code("refused")
    /// The token endpoint could not be reached, or kept failing (network, TLS, 5xx).
    public static let unavailable = Code("unavailable")
    /// The token endpoint answered something that is not a token response.
    public static let invalidResponse = Code("invalid response")
    /// A token file cannot be read, or holds no token.
    public static let unreadableFile = Code("unreadable file")
    /// The provider's settings cannot work (the URL, a CA file).
    public static let badConfiguration = Code("bad configuration")
    /// The provider was closed.
    public static let closed = Code("closed")

    public var description: String { name }
  }

  /// What went wrong.
  public var code: Code
  /// One line: what failed and where (the token URL or file).
  public var message: String
  /// The OAuth2 `error` value (`invalid_client`, `invalid_scope`, …) or the HTTP status, if any.
  public var details: String
  /// Whether trying again may help (network failures, 5xx, 429).
  var isTransient: Bool

  /// An error of `code`.
  public init(_ code: Code, _ message: String, details: String = "") {
    self.init(code, message, details: details, isTransient: false)
  }

  init(_ code: Code, _ message: String, details: String = "", isTransient: Bool) {
    self.code = code
    self.message = message
    self.details = details
    self.isTransient = isTransient
  }

  public var description: String { message }

  /// The gRPC status of a recognition that could not start for this: UNAUTHENTICATED when the
  /// credentials were refused or no token could be read, UNAVAILABLE when the endpoint could
  /// not be reached or answered nonsense.
  public var status: GRPCStatus {
    switch code {
    case .refused, .unreadableFile: GRPCStatus(.unauthenticated, message)
    default: GRPCStatus(.unavailable, message)
    }
  }

  /// The status of a recognition whose provider threw `error`.
  static func status(of error: any Error) -> GRPCStatus {
    switch error {
    case let error as TokenError: error.status
    case is CancellationError: GRPCStatus(.cancelled, "cancelled while waiting for a token")
    default: GRPCStatus(.unavailable, "no access token: \(error)")
    }
  }
}

/// The same token every time, e.g. `--token` or one an application fetched itself.
public struct FixedToken: TokenProvider {
  private let accessToken: AccessToken

  /// Always `value`.
  public init(_ value: String) {
    accessToken = AccessToken(value)
  }

  public func token() async throws -> AccessToken { accessToken }
}

extension GRPCMetadata {
  /// The metadata with `token` as its `authorization` (`Bearer <token>`), in place of any
  /// `authorization` it had.
  public func authorized(with token: AccessToken) throws(GRPCMetadataError) -> GRPCMetadata {
    var authorized = GRPCMetadata()
    for entry in self where entry.name != "authorization" {
      switch entry.value {
      case .string(let value): try authorized.add(entry.name, value)
      case .binary(let bytes): try authorized.add(entry.name, binary: bytes)
      }
    }
    try authorized.add("authorization", token.authorization)
    return authorized
  }
}
