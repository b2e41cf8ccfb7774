import HarkCLIKit
import Testing

/// The rules that turn the credential flags and the environment into one source of tokens.
@Suite("Credentials: flags, environment, precedence")
struct CredentialOptionsTests {
  static func options(_ flags: [String: String]) -> CredentialOptions {
    var options = CredentialOptions()
    options.token = flags["--token"]
    options.tokenFile = flags["--token-file"]
    options.clientID = flags["--client-id"]
    options.clientSecret = flags["--client-secret"]
    options.clientSecretFile = flags["--client-secret-file"]
    options.tokenURL = flags["--token-url"]
    options.scope = flags["--scope"]
    return options
  }

  static let mix = "https://auth.crt.nuance.com/oauth2/token"

  @Test(
    "what flags and environment resolve to (a flag beats the environment)",
    arguments: [
      ([:], [:], "no credentials"),
      (["--token": "abc"], [:], "a token (--token)"),
      ([:], ["HARK_TOKEN": "abc"], "a token (HARK_TOKEN)"),
      (["--token-file": "/t"], [:], "the token file /t"),
      (
        ["--client-id": "app:ID", "--client-secret": "S"], [:],
        "client app:ID at \(mix), scope asr"
      ),
      (
        [:], ["HARK_CLIENT_ID": "app:ID", "HARK_CLIENT_SECRET": "S"],
        "client app:ID at \(mix), scope asr"
      ),
      // The flag's client ID, the environment's secret.
      (
        ["--client-id": "app:ID"], ["HARK_CLIENT_SECRET": "S"], "client app:ID at \(mix), scope asr"
      ),
      // The environment's client ID, the flag's secret file.
      (
        [
          "--client-secret-file": "/s", "--token-url": "https://127.0.0.1:8443/token",
          "--scope": "asr nlu",
        ],
        ["HARK_CLIENT_ID": "app:ID"],
        "client app:ID at https://127.0.0.1:8443/token, scope asr nlu"
      ),
      // A flag beats the environment, which is then not read.
      (
        ["--token": "abc"], ["HARK_CLIENT_ID": "app:ID", "HARK_CLIENT_SECRET": "S"],
        "a token (--token)"
      ),
      (
        ["--client-id": "app:ID", "--client-secret": "S"], ["HARK_TOKEN": "abc"],
        "client app:ID at \(mix), scope asr"
      ),
      // Empty variables are unset.
      ([:], ["HARK_TOKEN": "", "HARK_CLIENT_ID": ""], "no credentials"),
    ]
  )
  func resolves(flags: [String: String], environment: [String: String], expected: String) throws {
    #expect(try Self.options(flags).resolve(environment: environment).description == expected)
  }

  @Test(
    "conflicts and gaps: one line that names the flags",
    arguments: [
      (
        ["--token": "a", "--client-id": "app:ID"], [:], "--token and --client-id exclude each other"
      ),
      (["--token": "a", "--token-file": "/t"], [:], "--token and --token-file exclude each other"),
      (
        ["--client-id": "app:ID"], [:],
        "a client ID needs its secret: --client-secret-file, --client-secret or HARK_CLIENT_SECRET"
      ),
      ([:], ["HARK_CLIENT_ID": "app:ID"], "a client ID needs its secret"),
      (
        ["--client-id": "i", "--client-secret": "s", "--client-secret-file": "/s"], [:],
        "--client-secret and --client-secret-file exclude each other"
      ),
      (
        ["--client-secret": "s"], [:],
        "--client-secret needs a client ID: --client-id or HARK_CLIENT_ID"
      ),
      ([:], ["HARK_CLIENT_SECRET": "s"], "HARK_CLIENT_SECRET is set, but no client ID"),
      (
        ["--token": "a", "--client-secret": "s"], [:],
        "--client-secret goes with a client ID, not a token"
      ),
      (["--token-url": "https://x/token"], [:], "--token-url goes with a client ID"),
      (["--token": "a", "--scope": "asr"], [:], "--scope goes with a client ID"),
      (
        [:], ["HARK_TOKEN": "a", "HARK_CLIENT_ID": "i", "HARK_CLIENT_SECRET": "s"],
        "HARK_TOKEN and HARK_CLIENT_ID are both set"
      ),
      (["--token": "a b"], [:], "the token of --token holds a space"),
      (["--token": ""], [:], "--token is empty"),
      (
        [
          "--client-id": "i", "--client-secret": "s",
          "--token-url": "http://auth.example.com/token",
        ], [:],
        "--token-url: the token URL http://auth.example.com/token is not https://"
      ),
      (
        [
          "--client-id": "i", "--client-secret": "s",
          "--token-url": "https://u:p@auth.example.com/t",
        ], [:],
        "--token-url: the token URL must not hold credentials"
      ),
    ]
  )
  func problems(flags: [String: String], environment: [String: String], message: String) {
    do {
      let resolved = try Self.options(flags).resolve(environment: environment)
      Issue.record("resolved to \(resolved)")
    } catch {
      #expect(error.message.hasPrefix(message), "\(error.message)")
      #expect(!error.message.contains("\n"))
    }
  }

  @Test("descriptions show no token or secret")
  func redacted() throws {
    let token = try Self.options(["--token": "tok-SECRET"]).resolve(environment: [:])
    #expect(!"\(token)".contains("SECRET"))
    let secret = CredentialOptions.Secret.value("hunter2", origin: "--client-secret")
    #expect("\(secret)" == "<redacted> (--client-secret)")
  }
}
