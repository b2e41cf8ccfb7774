import AsyncHTTPClient
import HarkRecognizer
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Tokens from an OAuth2 token endpoint by the client-credentials grant (RFC 6749 §4.4), as
/// Nuance Mix issues them: cached, refreshed ahead of their expiry, fetched once for everyone.
///
/// - Cached: a token is handed out until its ``TokenLifetime`` says to refresh it (10 % of its
///   lifetime before it expires, at least 30 s); then the first caller starts one fetch in the
///   background and everyone still gets the valid token. A token is never handed out past its
///   expiry: callers then wait for the new one.
/// - Single flight: while a fetch is running, callers that need a token wait for that fetch;
///   thousands of concurrent ``token()`` calls at start cause one request.
/// - Retried: network failures, 5xx and 429 are tried again with exponential backoff (jittered),
///   within ``RetryPolicy/maxAttempts`` and ``RetryPolicy/maxTotalTime``. A refusal (400, 401:
///   `invalid_client`, `invalid_scope`, …) is not, and becomes a one-line ``TokenError`` naming
///   the token URL and the OAuth2 error.
/// - Bounded: each request has ``RetryPolicy/requestTimeout``, and an answer larger than 64 KiB
///   is refused.
///
/// The secret is kept only to authenticate; no description, log line or error holds it. Call
/// ``close()`` when done: it shuts down the HTTP client.
///
/// ```swift
/// let tokens = try OAuth2ClientCredentials(clientID: "appID:NMDPTRIAL_…", clientSecret: secret)
/// let client = RecognizerClient(host: "asr.api.nuance.com", port: 443, configuration: tls,
///                               tokenProvider: tokens)
/// …
/// await tokens.close()
/// ```
public actor OAuth2ClientCredentials: TokenProvider, CustomStringConvertible, CustomReflectable {
  /// Nuance Mix's token endpoint.
  public static let mixTokenURL = "https://auth.crt.nuance.com/oauth2/token"
  /// The most bytes of an answer that are read.
  public static let maxResponseBytes = 64 * 1024

  /// How failed fetches are tried again.
  public struct RetryPolicy: Sendable, Hashable {
    /// Requests per fetch, the first included.
    public var maxAttempts: Int
    /// The wait before the second attempt; it doubles after each, up to ``maxBackoff``.
    public var initialBackoff: Duration
    /// The longest wait between attempts.
    public var maxBackoff: Duration
    /// The longest one request may take, connection and TLS handshake included.
    public var requestTimeout: Duration
    /// The longest a fetch may take, all attempts and waits included.
    public var maxTotalTime: Duration

    /// A policy; the defaults try 5 times within 30 s.
    public init(
      maxAttempts: Int = 5,
      initialBackoff: Duration = .milliseconds(250),
      maxBackoff: Duration = .seconds(4),
      requestTimeout: Duration = .seconds(10),
      maxTotalTime: Duration = .seconds(30)
    ) {
      self.maxAttempts = max(maxAttempts, 1)
      self.initialBackoff = initialBackoff
      self.maxBackoff = maxBackoff
      self.requestTimeout = requestTimeout
      self.maxTotalTime = maxTotalTime
    }

    /// The wait after failed attempt `attempt` (1-based): half the exponential step, plus a
    /// random part up to the other half, so that many clients do not retry in step.
    func backoff(after attempt: Int) -> Duration {
      var step = initialBackoff
      for _ in 1..<attempt where step < maxBackoff { step *= 2 }
      step = min(step, maxBackoff)
      return step / 2 + step / 2 * Double.random(in: 0...1)
    }
  }

  /// The token endpoint.
  public nonisolated let tokenURL: String
  /// The client ID (not secret; it appears in errors).
  public nonisolated let clientID: String
  /// The scope asked for, e.g. `asr`.
  public nonisolated let scope: String
  private nonisolated let retry: RetryPolicy
  private nonisolated let authorization: String
  private nonisolated let secret: String
  private nonisolated let tlsConfiguration: TLSConfiguration
  private nonisolated let logger: Logger

  private var client: HTTPClient?
  private var cached: (token: AccessToken, lifetime: TokenLifetime)?
  private var fetch: Task<AccessToken, any Error>?
  /// After a background refresh failed, none starts again before this (callers whose token
  /// expired still fetch).
  private var quietUntil: ContinuousClock.Instant?
  private var closed = false
  /// Requests sent so far.
  public private(set) var requestCount = 0

  /// A provider for `clientID` and `clientSecret` at `tokenURL`, asking for `scope`.
  ///
  /// - Parameters:
  ///   - caFiles: PEM files of certificate authorities trusted on top of the system's.
  ///   - logger: Debug lines about fetches and retries (never a token or secret).
  /// - Throws: ``TokenError`` when the URL is not `https://` (`http://` only to a loopback
  ///   address) or holds credentials, or a CA file cannot be read.
  public init(
    tokenURL: String = OAuth2ClientCredentials.mixTokenURL,
    clientID: String,
    clientSecret: String,
    scope: String = "asr",
    caFiles: [String] = [],
    retry: RetryPolicy = RetryPolicy(),
    logger: Logger = Logger(label: "hark.oauth2")
  ) throws(TokenError) {
    try Self.check(tokenURL: tokenURL)
    self.tokenURL = tokenURL
    self.clientID = clientID
    self.scope = scope
    self.retry = retry
    self.secret = clientSecret
    self.authorization = ClientCredentialsGrant.authorization(
      clientID: clientID,
      secret: clientSecret
    )
    self.logger = logger
    var tls = TLSConfiguration.makeClientConfiguration()
    var roots: [NIOSSLCertificate] = []
    for file in caFiles {
      do {
        roots += try NIOSSLCertificate.fromPEMFile(file)
      } catch {
        throw TokenError(.badConfiguration, "cannot read the CA file \(file): \(error)")
      }
    }
    if !roots.isEmpty { tls.additionalTrustRoots = [.certificates(roots)] }
    self.tlsConfiguration = tls
  }

  public nonisolated var description: String {
    "OAuth2ClientCredentials(\(tokenURL), client \(clientID), scope \(scope))"
  }

  /// `dump` and the debugger see no secret.
  public nonisolated var customMirror: Mirror {
    Mirror(self, children: ["tokenURL": tokenURL, "clientID": clientID, "scope": scope])
  }

  public func token() async throws -> AccessToken {
    guard !closed else { throw TokenError(.closed, "the token provider for \(tokenURL) is closed") }
    let now = ContinuousClock.now
    if let cached {
      switch cached.lifetime.phase(at: now) {
      case .fresh:
        return cached.token
      case .refreshDue:
        if fetch == nil, quietUntil.map({ now >= $0 }) ?? true {
          logger.debug("refreshing the token ahead of its expiry", metadata: ["url": "\(tokenURL)"])
          _ = startFetch()
        }
        return cached.token
      case .expired:
        break
      }
    }
    return try await startFetch().value
  }

  /// The running fetch, or a new one.
  private func startFetch() -> Task<AccessToken, any Error> {
    if let fetch { return fetch }
    let task = Task<AccessToken, any Error> {
      defer { self.fetch = nil }
      do {
        let (token, lifetime) = try await self.fetchWithRetries()
        self.cached = (token, lifetime)
        self.quietUntil = nil
        return token
      } catch {
        // A refresh that failed is tried again only after a pause, not by every caller.
        self.quietUntil = .now + retry.maxBackoff
        throw error
      }
    }
    fetch = task
    return task
  }

  private func fetchWithRetries() async throws -> (AccessToken, TokenLifetime) {
    let start = ContinuousClock.now
    var attempt = 0
    while true {
      attempt += 1
      let sent = ContinuousClock.now
      let remaining = retry.maxTotalTime - (sent - start)
      let error: TokenError
      do {
        let (value, lifetime) = try await fetchOnce(timeout: min(retry.requestTimeout, remaining))
        let token = AccessToken(value, expiresAt: lifetime.map { sent + $0 })
        logger.debug(
          "fetched a token",
          metadata: ["url": "\(tokenURL)", "token": "\(token)", "attempt": "\(attempt)"]
        )
        return (token, TokenLifetime(obtained: sent, lifetime: lifetime))
      } catch let failure {
        error = failure
      }
      let delay = retry.backoff(after: attempt)
      guard error.isTransient, attempt < retry.maxAttempts,
        ContinuousClock.now + delay < start + retry.maxTotalTime, !closed
      else {
        guard attempt > 1 else { throw error }
        throw TokenError(
          error.code,
          error.message + " (\(attempt) attempts)",
          details: error.details
        )
      }
      logger.debug(
        "token request failed; trying again",
        metadata: ["error": "\(error)", "attempt": "\(attempt)", "backoff": "\(delay)"]
      )
      try await Task.sleep(for: delay)
    }
  }

  /// One request; a transient ``TokenError`` if trying again may help.
  private func fetchOnce(timeout: Duration) async throws(TokenError) -> (String, Duration?) {
    let client = httpClient()
    var request = HTTPClientRequest(url: tokenURL)
    request.method = .POST
    request.headers.add(name: "authorization", value: authorization)
    request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
    request.headers.add(name: "accept", value: "application/json")
    request.body = .bytes(ByteBuffer(string: ClientCredentialsGrant.body(scope: scope)))
    requestCount += 1
    let status: HTTPResponseStatus
    let body: ByteBuffer
    do {
      let response = try await client.execute(request, timeout: TimeAmount(timeout))
      status = response.status
      body = try await response.body.collect(upTo: Self.maxResponseBytes)
    } catch is NIOTooManyBytesError {
      throw TokenError(
        .invalidResponse,
        "the token endpoint \(tokenURL) answered more than \(Self.maxResponseBytes / 1024) KiB"
      )
    } catch {
      let (reason, transient) = Self.describe(error, timeout: timeout)
      throw TokenError(
        .unavailable,
        "cannot get a token from \(tokenURL): \(reason)",
        isTransient: transient
      )
    }
    let answer = ClientCredentialsGrant.read(
      status: Int(status.code),
      reason: status.reasonPhrase,
      body: String(buffer: body)
    )
    switch answer {
    case .token(let value, let lifetime):
      return (value, lifetime)
    case .transient(let reason):
      throw TokenError(
        .unavailable,
        "the token endpoint \(tokenURL) \(reason)",
        details: "\(status.code)",
        isTransient: true
      )
    case .invalid(let reason):
      throw TokenError(.invalidResponse, "the token endpoint \(tokenURL) \(reason)")
    case .refused(let error, let description):
      let what =
        switch error {
        case "invalid_client": "refused client \(clientID) (wrong client ID or secret)"
        case "invalid_scope": "refused scope '\(scope)'"
        case "unauthorized_client": "does not let client \(clientID) use client credentials"
        default: "refused the request"
        }
      let explanation = description.isEmpty ? error : "\(error): \(description)"
      throw TokenError(
        .refused,
        scrubbed("the token endpoint \(tokenURL) \(what): \(explanation)"),
        details: error
      )
    }
  }

  /// The HTTP client, made at the first request.
  private func httpClient() -> HTTPClient {
    if let client { return client }
    var configuration = HTTPClient.Configuration(
      tlsConfiguration: tlsConfiguration,
      // The secret goes to the token URL and nowhere else.
      redirectConfiguration: .disallow,
      timeout: .init(
        connect: TimeAmount(retry.requestTimeout),
        read: TimeAmount(retry.requestTimeout)
      )
    )
    // The retry policy here decides what is tried again (not a certificate that is not trusted),
    // so a connection that cannot be made fails the request at once.
    configuration.connectionPool.retryConnectionEstablishment = false
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    self.client = client
    return client
  }

  /// Cancels a fetch in flight and shuts the HTTP client down.
  public func close() async {
    closed = true
    fetch?.cancel()
    if let client {
      self.client = nil
      try? await client.shutdown()
    }
  }

  /// A message with the secret, should the endpoint have echoed it, taken out.
  private nonisolated func scrubbed(_ message: String) -> String {
    guard secret.count >= 4 else { return message }
    return message.replacing(secret, with: "<redacted>")
  }

  /// A short reason for a failed request, and whether trying again may help.
  static func describe(_ error: any Error, timeout: Duration) -> (String, Bool) {
    switch error {
    case let error as HTTPClientError:
      switch error {
      case .connectTimeout: return ("connection timed out", true)
      case .deadlineExceeded, .readTimeout:
        return ("no answer within \(timeout.components.seconds) s", true)
      case .remoteConnectionClosed: return ("the connection closed before an answer", true)
      case .tlsHandshakeTimeout: return ("TLS handshake timed out", true)
      default: return ("\(error)", false)
      }
    case let error as NIOSSLError:
      let text = "\(error)"
      if text.contains("CERTIFICATE_VERIFY_FAILED") {
        return ("TLS: the endpoint's certificate is not trusted (CERTIFICATE_VERIFY_FAILED)", false)
      }
      return ("TLS: \(ClientCredentialsGrant.oneLine(text, limit: 200))", false)
    case let error as IOError:
      return (String(cString: strerror(error.errnoCode)).lowercased(), true)
    case let error as NIOConnectionError:
      guard let first = error.connectionErrors.first?.error else {
        return ("cannot resolve \(error.host)", true)
      }
      return describe(first, timeout: timeout)
    case is CancellationError:
      return ("cancelled", false)
    default:
      return (ClientCredentialsGrant.oneLine("\(error)", limit: 200), true)
    }
  }

  /// Checks that `tokenURL` is HTTPS (or HTTP to a loopback address) and holds no credentials.
  public static func check(tokenURL: String) throws(TokenError) {
    let lowered = tokenURL.lowercased()
    let rest: Substring
    let secure: Bool
    if lowered.hasPrefix("https://") {
      (rest, secure) = (lowered.dropFirst(8), true)
    } else if lowered.hasPrefix("http://") {
      (rest, secure) = (lowered.dropFirst(7), false)
    } else {
      throw TokenError(.badConfiguration, "the token URL \(tokenURL) is not https://")
    }
    let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    guard !authority.contains("@") else {
      throw TokenError(
        .badConfiguration,
        "the token URL must not hold credentials: give them as the client ID and secret"
      )
    }
    let host =
      authority.hasPrefix("[")
      ? String(authority.dropFirst().prefix { $0 != "]" })
      : String(authority.prefix { $0 != ":" })
    guard !host.isEmpty else {
      throw TokenError(.badConfiguration, "the token URL \(tokenURL) has no host")
    }
    if !secure && !(host == "localhost" || host == "::1" || host.hasPrefix("127.")) {
      throw TokenError(
        .badConfiguration,
        "the token URL \(tokenURL) is not https:// (the secret would travel in plaintext)"
      )
    }
  }
}
