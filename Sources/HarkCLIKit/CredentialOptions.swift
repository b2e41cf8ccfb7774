import HarkClient

/// Where `hark recognize` and `hark load` get an access token: the credential options and the
/// environment, resolved by these rules (each conflict is a one-line problem):
///
/// 1. `--token`, `--token-file` and `--client-id` exclude each other.
/// 2. Without any of them, the environment: `HARK_TOKEN`, or `HARK_CLIENT_ID` (not both).
///    A flag always beats the environment, which is then not read.
/// 3. A client ID needs a secret: `--client-secret` or `--client-secret-file` (not both), else
///    `HARK_CLIENT_SECRET`. A secret flag needs a client ID.
/// 4. `--token-url` and `--scope` go with a client ID; their defaults are Nuance Mix's
///    endpoint and `asr`.
///
/// Empty environment variables count as unset.
public struct CredentialOptions: Sendable, Hashable {
  /// The environment variable of a token.
  public static let tokenVariable = "HARK_TOKEN"
  /// The environment variable of a client ID.
  public static let clientIDVariable = "HARK_CLIENT_ID"
  /// The environment variable of a client secret.
  public static let clientSecretVariable = "HARK_CLIENT_SECRET"
  /// The default `--token-url`.
  public static let defaultTokenURL = OAuth2ClientCredentials.mixTokenURL
  /// The default `--scope`.
  public static let defaultScope = "asr"

  public var token: String?
  public var tokenFile: String?
  public var clientID: String?
  public var clientSecret: String?
  public var clientSecretFile: String?
  public var tokenURL: String?
  public var scope: String?

  public init() {}

  /// Where a client secret is. Its description shows no secret.
  public enum Secret: Sendable, Hashable, CustomStringConvertible {
    /// Given as a flag or in the environment (named by `origin`).
    case value(String, origin: String)
    /// In a file, read when the provider is made.
    case file(String)

    public var description: String {
      switch self {
      case .value(_, let origin): "<redacted> (\(origin))"
      case .file(let path): "the file \(path)"
      }
    }
  }

  /// What the options and environment resolved to. Its description shows no token or secret.
  public enum Resolved: Sendable, Hashable, CustomStringConvertible {
    /// No credentials: no `authorization` is sent.
    case none
    /// A token, from `origin` (`--token` or `HARK_TOKEN`).
    case token(String, origin: String)
    /// A token file, re-read when it changes.
    case tokenFile(String)
    /// An OAuth2 client-credentials grant.
    case clientCredentials(clientID: String, secret: Secret, tokenURL: String, scope: String)

    public var description: String {
      switch self {
      case .none: "no credentials"
      case .token(_, let origin): "a token (\(origin))"
      case .tokenFile(let path): "the token file \(path)"
      case .clientCredentials(let clientID, _, let tokenURL, let scope):
        "client \(clientID) at \(tokenURL), scope \(scope)"
      }
    }
  }

  /// The credentials these options and `environment` name.
  public func resolve(
    environment: [String: String]
  ) throws(RecognizeOptions.Problem) -> Resolved {
    func variable(_ name: String) -> String? {
      guard let value = environment[name], !value.isEmpty else { return nil }
      return value
    }
    for (flag, value) in [
      ("--token", token), ("--token-file", tokenFile), ("--client-id", clientID),
      ("--client-secret", clientSecret), ("--client-secret-file", clientSecretFile),
      ("--token-url", tokenURL), ("--scope", scope),
    ] where value?.isEmpty == true {
      throw RecognizeOptions.Problem("\(flag) is empty")
    }
    let chosen = [("--token", token), ("--token-file", tokenFile), ("--client-id", clientID)]
      .filter { $0.1 != nil }.map(\.0)
    if chosen.count > 1 {
      throw RecognizeOptions.Problem("\(chosen.joined(separator: " and ")) exclude each other")
    }
    if clientSecret != nil && clientSecretFile != nil {
      throw RecognizeOptions.Problem("--client-secret and --client-secret-file exclude each other")
    }
    let secretFlag = clientSecret != nil ? "--client-secret" : "--client-secret-file"

    let resolved: Resolved
    if let token {
      resolved = .token(token, origin: "--token")
    } else if let tokenFile {
      resolved = .tokenFile(tokenFile)
    } else if let clientID {
      resolved = try clientCredentials(
        clientID,
        secretVariable: variable(Self.clientSecretVariable)
      )
    } else {
      let environmentToken = variable(Self.tokenVariable)
      let environmentID = variable(Self.clientIDVariable)
      switch (environmentToken, environmentID) {
      case (_?, _?):
        throw RecognizeOptions.Problem(
          "\(Self.tokenVariable) and \(Self.clientIDVariable) are both set: unset one, or choose with --token or --client-id"
        )
      case (let token?, nil):
        resolved = .token(token, origin: Self.tokenVariable)
      case (nil, let clientID?):
        resolved = try clientCredentials(
          clientID,
          secretVariable: variable(Self.clientSecretVariable)
        )
      case (nil, nil):
        if clientSecret != nil || clientSecretFile != nil {
          throw RecognizeOptions.Problem(
            "\(secretFlag) needs a client ID: --client-id or \(Self.clientIDVariable)"
          )
        }
        if variable(Self.clientSecretVariable) != nil {
          throw RecognizeOptions.Problem(
            "\(Self.clientSecretVariable) is set, but no client ID: --client-id or \(Self.clientIDVariable)"
          )
        }
        resolved = .none
      }
    }

    switch resolved {
    case .clientCredentials:
      break
    case .token, .tokenFile, .none:
      if clientSecret != nil || clientSecretFile != nil {
        throw RecognizeOptions.Problem("\(secretFlag) goes with a client ID, not a token")
      }
      for (flag, value) in [("--token-url", tokenURL), ("--scope", scope)] where value != nil {
        throw RecognizeOptions.Problem(
          "\(flag) goes with a client ID (--client-id or \(Self.clientIDVariable))"
        )
      }
    }
    if case .token(let value, let origin) = resolved, !AccessToken.isValidValue(value) {
      throw RecognizeOptions.Problem(
        "the token of \(origin) holds a space or a byte outside printable ASCII"
      )
    }
    return resolved
  }

  private func clientCredentials(
    _ clientID: String,
    secretVariable: String?
  ) throws(RecognizeOptions.Problem) -> Resolved {
    let secret: Secret
    if let clientSecret {
      secret = .value(clientSecret, origin: "--client-secret")
    } else if let clientSecretFile {
      secret = .file(clientSecretFile)
    } else if let secretVariable {
      secret = .value(secretVariable, origin: Self.clientSecretVariable)
    } else {
      throw RecognizeOptions.Problem(
        "a client ID needs its secret: --client-secret-file, --client-secret or \(Self.clientSecretVariable)"
      )
    }
    let tokenURL = self.tokenURL ?? Self.defaultTokenURL
    do {
      try OAuth2ClientCredentials.check(tokenURL: tokenURL)
    } catch {
      throw RecognizeOptions.Problem("--token-url: \(error.message)")
    }
    return .clientCredentials(
      clientID: clientID,
      secret: secret,
      tokenURL: tokenURL,
      scope: scope ?? Self.defaultScope
    )
  }
}
