import Crypto

/// The topics a token may use.
public enum AllowedTopics: Sendable, Hashable {
  /// Every topic (`*` in a tokens file; a JWT without a `topics` claim).
  case all
  /// These topics only, compared exactly (`GEN` is not `gen`).
  case only(Set<String>)

  /// Whether `topic` is one of them.
  public func allows(_ topic: String) -> Bool {
    switch self {
    case .all: true
    case .only(let topics): topics.contains(topic)
    }
  }
}

/// The API tokens of a tokens file (`hark serve --tokens`), each with the topics it may use.
///
/// The file has one token a line, then whitespace, then its topics: a comma-separated list, or
/// `*` for every topic. A `#` begins a comment, on a line of its own or after the topics; blank
/// lines are ignored:
///
/// ```
/// # Billing's IVR
/// 9f2c6e0b41d7a3f8c5e1b0d2a7f4c9e3  GEN,BANKING
/// # The load tests, every topic
/// load-tests.Zk3vQ8wL  *   # rotated monthly
/// ```
///
/// A token has the characters of an RFC 6750 bearer token (`A-Z a-z 0-9 - . _ ~ + /`, then
/// any `=`), as the `authorization` header carries it. Only the SHA-256 digest of each token is
/// kept, and a presented token is found by its digest: the time a lookup takes depends on
/// digests, which reveal nothing of the tokens, never on how much of a token matched.
public struct StaticTokens: Sendable {
  private var topicsByDigest: [SHA256Digest: AllowedTopics] = [:]

  /// No tokens.
  public init() {}

  /// The tokens of a file's text; `file` names it in errors.
  public init(parsing text: String, file: String) throws(CredentialsFileError) {
    var firstLines: [SHA256Digest: Int] = [:]
    for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false)
      .enumerated()
    {
      let number = index + 1
      func failure(_ reason: CredentialsFileError.Reason) -> CredentialsFileError {
        CredentialsFileError(file: file, line: number, reason: reason)
      }
      let fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
      guard let token = fields.first, !token.hasPrefix("#") else { continue }
      guard Self.isBearerToken(token) else { throw failure(.invalidToken) }
      guard fields.count >= 2, !fields[1].hasPrefix("#") else { throw failure(.missingTopics) }
      if fields.count > 2 && !fields[2].hasPrefix("#") { throw failure(.extraField) }
      guard let topics = Self.topics(fields[1]) else { throw failure(.invalidTopics) }
      let digest = SHA256.hash(data: Array(token.utf8))
      if let first = firstLines[digest] { throw failure(.duplicateToken(firstLine: first)) }
      firstLines[digest] = number
      topicsByDigest[digest] = topics
    }
  }

  /// How many tokens there are.
  public var count: Int { topicsByDigest.count }

  /// The topics `token` may use, or nil if it is none of the tokens.
  public func topics(of token: some StringProtocol) -> AllowedTopics? {
    topicsByDigest[SHA256.hash(data: Array(token.utf8))]
  }

  /// Whether `token` has the syntax of RFC 6750's `b64token`:
  /// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
  public static func isBearerToken(_ token: some StringProtocol) -> Bool {
    let bytes = Array(token.utf8)
    let padding = bytes.reversed().prefix { $0 == UInt8(ascii: "=") }.count
    let body = bytes.dropLast(padding)
    return !body.isEmpty
      && body.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
          UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
          true
        default:
          false
        }
      }
  }

  /// `*`, or a comma-separated list of topics without empty ones or `*`; nil otherwise.
  private static func topics(_ field: Substring) -> AllowedTopics? {
    if field == "*" { return .all }
    let names = field.split(separator: ",", omittingEmptySubsequences: false)
    guard names.allSatisfy({ !$0.isEmpty && !$0.contains("*") }) else { return nil }
    return .only(Set(names.map(String.init)))
  }
}
