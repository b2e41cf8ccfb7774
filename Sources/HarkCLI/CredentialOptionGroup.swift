import ArgumentParser
import HarkCLIKit
import HarkClient

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The credentials `hark recognize` and `hark load` send: a token, a token file, or an OAuth2
/// client ID and secret; from flags or the environment (`HARK_TOKEN`, `HARK_CLIENT_ID`,
/// `HARK_CLIENT_SECRET`, which keep secrets out of `ps`). ``CredentialOptions`` has the rules.
struct CredentialOptionGroup: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "An access token, sent as authorization: Bearer TOKEN (or $HARK_TOKEN).",
      valueName: "token"
    )
  )
  var token: String?

  @Option(
    help: ArgumentHelp(
      "A file holding the access token, re-read when it changes.",
      valueName: "file"
    )
  )
  var tokenFile: String?

  @Option(
    help: ArgumentHelp(
      "An OAuth2 client ID, e.g. appID:NMDPTRIAL_… (or $HARK_CLIENT_ID): tokens come from --token-url.",
      valueName: "id"
    )
  )
  var clientId: String?

  @Option(
    help: ArgumentHelp(
      "The client ID's secret (or $HARK_CLIENT_SECRET, which ps does not show).",
      valueName: "secret"
    )
  )
  var clientSecret: String?

  @Option(help: ArgumentHelp("A file holding the client ID's secret.", valueName: "file"))
  var clientSecretFile: String?

  @Option(
    help: ArgumentHelp(
      "The OAuth2 token endpoint (default: \(CredentialOptions.defaultTokenURL)); it is trusted by the system's CAs and --cacert.",
      valueName: "url"
    )
  )
  var tokenUrl: String?

  @Option(
    help: ArgumentHelp(
      "The scope of the tokens asked for (default: \(CredentialOptions.defaultScope)).",
      valueName: "scope"
    )
  )
  var scope: String?

  func validate() throws {
    do {
      _ = try options.resolve(environment: Self.environment())
    } catch {
      throw ValidationError(error.message)
    }
  }

  private var options: CredentialOptions {
    var options = CredentialOptions()
    options.token = token
    options.tokenFile = tokenFile
    options.clientID = clientId
    options.clientSecret = clientSecret
    options.clientSecretFile = clientSecretFile
    options.tokenURL = tokenUrl
    options.scope = scope
    return options
  }

  /// The token provider these options and the environment name, or nil for none; `caFile`
  /// (`--cacert`) is trusted by the OAuth2 provider on top of the system's authorities. A file
  /// that cannot be read ends the command with exit status 2 and a one-line error. Close the
  /// provider when done.
  func tokenProvider(caFile: String?) throws -> (any TokenProvider)? {
    do {
      switch try options.resolve(environment: Self.environment()) {
      case .none:
        return nil
      case .token(let value, _):
        return FixedToken(value)
      case .tokenFile(let path):
        let file = TokenFile(path: path)
        // Read once now, so that an unreadable file fails before any call.
        _ = try file.current()
        return file
      case .clientCredentials(let clientID, let secret, let tokenURL, let scope):
        let secretValue: String
        switch secret {
        case .value(let value, _):
          secretValue = value
        case .file(let path):
          secretValue = TokenFile.token(
            fromText: try readTextFile(path, what: "client secret file")
          )
          guard !secretValue.isEmpty else {
            throw RecognizeOptions.Problem("the client secret file \(path) is empty")
          }
        }
        return try OAuth2ClientCredentials(
          tokenURL: tokenURL,
          clientID: clientID,
          clientSecret: secretValue,
          scope: scope,
          caFiles: caFile.map { [$0] } ?? []
        )
      }
    } catch {
      printError("hark: \(error)")
      throw ExitCode(2)
    }
  }

  /// The process's environment.
  static func environment() -> [String: String] {
    var environment: [String: String] = [:]
    for name in [
      CredentialOptions.tokenVariable, CredentialOptions.clientIDVariable,
      CredentialOptions.clientSecretVariable,
    ] {
      if let value = getenv(name) { environment[name] = String(cString: value) }
    }
    return environment
  }
}
