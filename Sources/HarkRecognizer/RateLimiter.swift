/// A token bucket: how many new recognitions a server starts per second (429 beyond).
///
/// Time is a parameter (seconds on any monotonic clock), so tests drive it directly.
public struct RateLimiter: Sendable {
  /// Tokens added per second.
  public let rate: Double
  /// The most tokens the bucket holds: the burst allowed after a quiet spell.
  public let burst: Double
  private var tokens: Double
  private var last: Double?

  /// A limiter of `rate` per second with a burst of `burst` (by default one second's worth).
  public init(rate: Double, burst: Double? = nil) {
    precondition(rate > 0, "a rate limit must be positive")
    self.rate = rate
    self.burst = max(burst ?? rate, 1)
    self.tokens = self.burst
  }

  /// Takes a token at time `now` (seconds); false when none is left.
  public mutating func acquire(now: Double) -> Bool {
    if let last { tokens = min(burst, tokens + (now - last) * rate) }
    last = now
    guard tokens >= 1 else { return false }
    tokens -= 1
    return true
  }

  /// Seconds from the last ``acquire(now:)`` until a token is there to take (0 if one is).
  public var secondsUntilNextToken: Double {
    tokens >= 1 ? 0 : (1 - tokens) / rate
  }
}
