import HarkRecognizer
import Testing

/// The token bucket of new recognitions, on virtual time.
@Suite("Rate limiter")
struct RateLimiterTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var rate: Double
    var burst: Double?
    /// Each attempt's time, in seconds, and whether it gets a token.
    var attempts: [(time: Double, granted: Bool)]
    var testDescription: String { name }
  }

  @Test(
    "tokens come at the rate, up to the burst",
    arguments: [
      Case(
        name: "2 a second: a burst of 2, then one every 0.5 s",
        rate: 2,
        attempts: [
          (0, true), (0, true), (0, false), (0.25, false), (0.5, true), (0.5, false),
          (0.75, false), (1, true),
        ]
      ),
      Case(
        name: "a quiet spell refills the bucket only up to the burst",
        rate: 2,
        attempts: [(0, true), (0, true), (100, true), (100, true), (100, false)]
      ),
      Case(
        name: "a burst of 5 at 1 a second",
        rate: 1,
        burst: 5,
        attempts: [
          (0, true), (0, true), (0, true), (0, true), (0, true), (0, false), (0.5, false),
          (1, true), (1, false), (10, true), (10, true), (10, true), (10, true), (10, true),
          (10, false),
        ]
      ),
      Case(
        name: "below 1 a second the burst is still 1",
        rate: 0.01,
        attempts: [(0, true), (0, false), (50, false), (100.5, true), (100.5, false)]
      ),
      Case(
        name: "refused attempts cost nothing",
        rate: 1,
        attempts: [(0, true), (0.2, false), (0.4, false), (0.6, false), (1, true)]
      ),
    ]
  )
  func acquire(_ rateCase: Case) {
    var limiter = RateLimiter(rate: rateCase.rate, burst: rateCase.burst)
    #expect(limiter.burst == (rateCase.burst ?? max(rateCase.rate, 1)))
    for (index, attempt) in rateCase.attempts.enumerated() {
      #expect(
        limiter.acquire(now: attempt.time) == attempt.granted,
        "attempt \(index) at \(attempt.time) s"
      )
    }
  }

  @Test("a rate must be positive")
  func positiveRate() async {
    #if DEBUG
      await #expect(processExitsWith: .failure) { _ = RateLimiter(rate: 0) }
    #endif
  }
}
