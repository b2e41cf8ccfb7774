/// When a fetched token is handed out as it is, refreshed ahead of its expiry, or no longer
/// handed out. Pure: the times are passed in.
///
/// ```
///  obtained            refreshAt                 expiresAt
///  |---- fresh --------|---- refreshDue ---------|---- expired ...
///        (cached)         (cached, and one fetch     (callers wait
///                          starts in the background)   for a new one)
/// ```
///
/// `obtained` is when the request that got the token was *sent*, so `expiresAt` errs early by
/// the request's round trip, never late. The margin before expiry is 10 % of the lifetime but
/// at least 30 s — and at most half the lifetime, so a short-lived token is still used for a while.
public struct TokenLifetime: Sendable, Hashable {
  /// Where a token stands at some time.
  public enum Phase: Sendable, Hashable {
    /// Handed out as it is.
    case fresh
    /// Still handed out, but a new one should be fetched now.
    case refreshDue
    /// No longer handed out.
    case expired
  }

  /// When the request for the token was sent.
  public let obtained: ContinuousClock.Instant
  /// When a new token should be fetched; nil for a token without an expiry.
  public let refreshAt: ContinuousClock.Instant?
  /// When the token expires; nil if the endpoint did not say.
  public let expiresAt: ContinuousClock.Instant?

  /// The lifetime of a token obtained at `obtained` that lasts `lifetime` (`expires_in`).
  public init(obtained: ContinuousClock.Instant, lifetime: Duration?) {
    self.obtained = obtained
    guard let lifetime else {
      refreshAt = nil
      expiresAt = nil
      return
    }
    let margin = min(max(.seconds(30), lifetime / 10), lifetime / 2)
    refreshAt = obtained + (lifetime - margin)
    expiresAt = obtained + lifetime
  }

  /// Where the token stands at `now`.
  public func phase(at now: ContinuousClock.Instant) -> Phase {
    if let expiresAt, now >= expiresAt { return .expired }
    if let refreshAt, now >= refreshAt { return .refreshDue }
    return .fresh
  }
}
