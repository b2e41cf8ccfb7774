import HarkRecognizer

/// The wire format of the OAuth2 client-credentials grant: what a client sends (RFC 6749 §2.3.1,
/// §4.4.2) and how it reads the answer (§5.1, §5.2). Pure: no I/O.
enum ClientCredentialsGrant {
  /// The `authorization` header: HTTP basic authentication with the client ID and secret, each
  /// form-urlencoded first (§2.3.1), so a Mix client ID `appID:NMDP…` goes as `appID%3ANMDP…`.
  static func authorization(clientID: String, secret: String) -> String {
    let credentials = formURLEncoded(clientID) + ":" + formURLEncoded(secret)
    return "Basic " + base64(Array(credentials.utf8))
  }

  /// The request body, `application/x-www-form-urlencoded`.
  static func body(scope: String) -> String {
    "grant_type=client_credentials&scope=" + formURLEncoded(scope)
  }

  /// `text` encoded as the application/x-www-form-urlencoded serializer does: ASCII letters,
  /// digits and `*-._` as they are, space as `+`, every other UTF-8 byte as `%XX`.
  static func formURLEncoded(_ text: String) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "*"), UInt8(ascii: "-"),
        UInt8(ascii: "."), UInt8(ascii: "_"):
        bytes.append(byte)
      case UInt8(ascii: " "):
        bytes.append(UInt8(ascii: "+"))
      default:
        bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Standard base64 with padding (RFC 4648 §4).
  static func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index < bytes.count {
      let count = min(3, bytes.count - index)
      var group = UInt32(bytes[index]) << 16
      if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
      if count > 2 { group |= UInt32(bytes[index + 2]) }
      for position in 0..<4 {
        if position <= count {
          output.append(alphabet[Int((group >> UInt32(18 - 6 * position)) & 0x3F)])
        } else {
          output.append(UInt8(ascii: "="))
        }
      }
      index += 3
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// What an answer of the token endpoint means.
  enum Answer: Sendable, Hashable {
    /// A token, valid for `lifetime` if the endpoint said.
    case token(String, lifetime: Duration?)
    /// An OAuth2 error (§5.2): `error` and its description, if any.
    case refused(error: String, description: String)
    /// A failure worth trying again (5xx, 429): what to tell if it persists.
    case transient(String)
    /// Not a token response: why.
    case invalid(String)
  }

  /// Reads an answer of HTTP status `status` (its reason phrase `reason`) and body `body`.
  static func read(status: Int, reason: String, body: String) -> Answer {
    if status >= 500 || status == 429 { return .transient("answered \(status) \(reason)") }
    let members: [(String, JSONValue)]
    do {
      guard case .object(let object) = try JSONValue.parse(body) else {
        return .invalid("answered \(status) \(reason) with JSON that is not an object")
      }
      members = object
    } catch {
      return .invalid("answered \(status) \(reason), not JSON")
    }
    func string(_ name: String) -> String? {
      guard case .string(let value)? = members.first(where: { $0.0 == name })?.1 else {
        return nil
      }
      return value
    }
    guard status == 200 else {
      guard let error = string("error") else {
        return .invalid("answered \(status) \(reason)")
      }
      return .refused(
        error: oneLine(error, limit: 64),
        description: oneLine(string("error_description") ?? "", limit: 200)
      )
    }
    guard let token = string("access_token"), !token.isEmpty else {
      return .invalid("answered 200 without an access_token")
    }
    guard AccessToken.isValidValue(token) else {
      return .invalid("answered an access_token that cannot be sent in a header")
    }
    if let type = string("token_type"), type.lowercased() != "bearer" {
      return .invalid("answered a token of type \(oneLine(type, limit: 32)), not bearer")
    }
    var lifetime: Duration?
    switch members.first(where: { $0.0 == "expires_in" })?.1 {
    case .number(let seconds)? where seconds > 0 && seconds < 1e9:
      lifetime = .milliseconds(Int64(seconds * 1000))
    case .string(let text)?:
      // Some endpoints send the number as a string.
      if let seconds = Int(text), seconds > 0 { lifetime = .seconds(seconds) }
    default:
      break
    }
    return .token(token, lifetime: lifetime)
  }

  /// `text` made safe for a one-line message: control characters as spaces, at most `limit`
  /// characters.
  static func oneLine(_ text: String, limit: Int) -> String {
    var line = String(
      String.UnicodeScalarView(
        text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }
      )
    )
    if line.count > limit { line = String(line.prefix(limit)) + "…" }
    return line
  }
}
