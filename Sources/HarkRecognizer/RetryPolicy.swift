public import HarkGRPCCore
import HarkProto

/// When a recognition refused before its 100 Continue is tried again.
///
/// Only refusals that trying again can cure are retried, and only before the 100 (DESIGN rule
/// 11): a status of 409, 429, 503 or 512, or an UNAVAILABLE call that got no response (the
/// connection was refused or lost, the stream refused or reset, GOAWAY). No audio has left the
/// client then: what the application produced meanwhile is held, and goes whole to the attempt
/// that is accepted. After the 100, nothing is retried.
///
/// Each retry waits the server's pushback when it sent one (`grpc-retry-pushback-ms`, gRFC A6; a
/// negative one means "do not retry"), else an exponential backoff with full jitter: a random
/// wait of up to `initialBackoff × multiplier^(n − 1)` before retry n, capped at `maxBackoff`.
/// No retry starts once `budget` has passed since the first attempt.
public struct RetryPolicy: Sendable, Hashable {
  /// Attempts in all, the first included: 1 retries nothing.
  public var maxAttempts: Int
  /// The bound of the first retry's random wait.
  public var initialBackoff: Duration
  /// The bound no wait exceeds (a server's pushback included).
  public var maxBackoff: Duration
  /// How the bound grows from one retry to the next.
  public var multiplier: Double
  /// No retry starts later than this after the first attempt started.
  public var budget: Duration

  /// A policy of `maxAttempts` attempts in all.
  public init(
    maxAttempts: Int,
    initialBackoff: Duration = .milliseconds(100),
    maxBackoff: Duration = .seconds(5),
    multiplier: Double = 2,
    budget: Duration = .seconds(30)
  ) {
    precondition(maxAttempts >= 1, "a recognition makes at least one attempt")
    self.maxAttempts = maxAttempts
    self.initialBackoff = initialBackoff
    self.maxBackoff = maxBackoff
    self.multiplier = max(multiplier, 1)
    self.budget = budget
  }

  /// No retry.
  public static let none = RetryPolicy(maxAttempts: 1)

  /// `retries` retries after the first attempt, with the default backoff and budget.
  public static func retries(_ retries: Int) -> RetryPolicy {
    RetryPolicy(maxAttempts: max(retries, 0) + 1)
  }

  /// Two retries (`hark recognize`'s default).
  public static let `default` = RetryPolicy.retries(2)

  /// Whether an ended attempt can be retried: a refusal status, or a call that failed below the
  /// protocol with UNAVAILABLE before any response.
  public static func isRetryable(_ outcome: RecognitionOutcome, receivedResponse: Bool) -> Bool {
    if let status = outcome.status {
      return [409, 429, 503, 512].contains(status.code)
    }
    if let transport = outcome.transportStatus {
      return transport.code == .unavailable && !receivedResponse
    }
    return false
  }

  /// The wait before retry `retry` (1 for the first), drawn from `unit` (a uniform value in
  /// 0 ..< 1), or the server's `pushback` in milliseconds; nil when the pushback says not to
  /// retry.
  public func delay(
    beforeRetry retry: Int,
    pushbackMilliseconds pushback: Int?,
    unit: Double
  )
    -> Duration?
  {
    if let pushback {
      guard pushback >= 0 else { return nil }
      return min(.milliseconds(pushback), maxBackoff)
    }
    let growth = Double.pow(multiplier, Double(max(retry - 1, 0)))
    let bound = min(Self.seconds(initialBackoff) * growth, Self.seconds(maxBackoff))
    return .nanoseconds(Int64((bound * min(max(unit, 0), 1) * 1e9).rounded()))
  }

  static func seconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) + Double(attoseconds) / 1e18
  }
}

extension Double {
  fileprivate static func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
      result *= base
      remaining -= 1
    }
    return result
  }
}
