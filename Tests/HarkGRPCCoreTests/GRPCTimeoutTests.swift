import HarkGRPCCore
import NIOCore
import Testing

@Suite("grpc-timeout")
struct GRPCTimeoutTests {
  @Test(
    "a valid header value parses to its value and unit",
    arguments: [
      ("1H", 1, GRPCTimeout.Unit.hours),
      ("2M", 2, .minutes),
      ("30S", 30, .seconds),
      ("250m", 250, .milliseconds),
      ("7u", 7, .microseconds),
      ("99999999n", 99_999_999, .nanoseconds),
      ("99999999H", 99_999_999, .hours),
      ("0n", 0, .nanoseconds),
      ("0S", 0, .seconds),
      ("00000001m", 1, .milliseconds),
    ] as [(String, Int64, GRPCTimeout.Unit)]
  )
  func parses(_ header: String, value: Int64, unit: GRPCTimeout.Unit) throws {
    let timeout = try GRPCTimeout(parsing: header)
    #expect(timeout == GRPCTimeout(value: value, unit: unit))
  }

  @Test(
    "an invalid header value is refused with the reason",
    arguments: [
      ("", GRPCTimeoutError.Reason.empty),
      ("S", .missingDigits),
      ("123456789S", .tooManyDigits(count: 9)),
      ("000000001S", .tooManyDigits(count: 9)),
      ("12", .missingUnit),
      ("1x", .unknownUnit("x")),
      ("1s", .unknownUnit("s")),
      ("1h", .unknownUnit("h")),
      ("1S ", .unknownUnit(" ")),
      ("1é", .unknownUnit("é")),
      ("+1S", .invalidCharacter("+")),
      ("-1S", .invalidCharacter("-")),
      (" 1S", .invalidCharacter(" ")),
      ("1 S", .invalidCharacter(" ")),
      ("1.5S", .invalidCharacter(".")),
      ("1e3S", .invalidCharacter("e")),
      ("１S", .invalidCharacter("１")),
      ("٣S", .invalidCharacter("٣")),
      ("1SS", .invalidCharacter("S")),
    ] as [(String, GRPCTimeoutError.Reason)]
  )
  func refuses(_ header: String, reason: GRPCTimeoutError.Reason) {
    #expect(throws: GRPCTimeoutError(value: header, reason: reason)) {
      try GRPCTimeout(parsing: header)
    }
  }

  @Test("the error message quotes the value and names the problem")
  func errorMessage() {
    #expect(
      GRPCTimeoutError(value: "1x", reason: .unknownUnit("x")).message
        == #"invalid grpc-timeout "1x": "x" is not a unit (H, M, S, m, u or n)"#
    )
    #expect(
      GRPCTimeoutError(value: "123456789S", reason: .tooManyDigits(count: 9)).description
        == #"invalid grpc-timeout "123456789S": it has 9 digits, more than 8"#
    )
    #expect(
      GRPCTimeoutError(value: "", reason: .empty).description
        == #"invalid grpc-timeout "": it is empty"#
    )
  }

  @Test(
    "the amount is the value times the unit",
    arguments: [
      ("1H", TimeAmount.hours(1)),
      ("2M", .minutes(2)),
      ("3S", .seconds(3)),
      ("4m", .milliseconds(4)),
      ("5u", .microseconds(5)),
      ("6n", .nanoseconds(6)),
      ("0H", .nanoseconds(0)),
      ("99999999M", .minutes(99_999_999)),
      ("2562047H", .hours(2_562_047)),
    ]
  )
  func amount(_ header: String, expected: TimeAmount) throws {
    #expect(try GRPCTimeout(parsing: header).amount == expected)
  }

  @Test("hours beyond what TimeAmount holds saturate", arguments: ["2562048H", "99999999H"])
  func amountSaturates(_ header: String) throws {
    #expect(try GRPCTimeout(parsing: header).amount == .nanoseconds(.max))
  }

  @Test(
    "an amount takes the finest unit that fits in 8 digits, rounded up",
    arguments: [
      (TimeAmount.nanoseconds(0), "0n"),
      (.nanoseconds(1), "1n"),
      (.nanoseconds(99_999_999), "99999999n"),
      (.nanoseconds(100_000_000), "100000u"),
      (.nanoseconds(100_000_001), "100001u"),
      (.seconds(1), "1000000u"),
      (.seconds(1) + .nanoseconds(1), "1000001u"),
      (.milliseconds(1500), "1500000u"),
      (.seconds(99), "99000000u"),
      (.seconds(100), "100000m"),
      (.seconds(99_999) + .nanoseconds(1), "99999001m"),
      (.seconds(100_000), "100000S"),
      (.hours(1), "3600000m"),
      (.hours(24), "86400000m"),
      (.hours(28), "100800S"),
      (.seconds(100_000_000), "1666667M"),
      (.minutes(100_000_000), "1666667H"),
      (.nanoseconds(.max), "2562048H"),
    ]
  )
  func fromAmount(_ amount: TimeAmount, header: String) {
    #expect(GRPCTimeout(amount).headerValue == header)
  }

  @Test("a negative amount, a deadline already passed, is 0n")
  func negativeAmount() {
    #expect(GRPCTimeout(.nanoseconds(-5)).headerValue == "0n")
    #expect(GRPCTimeout(.nanoseconds(.min)).headerValue == "0n")
  }

  @Test("a deadline is never shortened, and lengthened by less than one unit", arguments: 0..<8)
  func neverShortened(seed: Int) throws {
    var rng = SystemRandomNumberGeneratorSeeded(seed: UInt64(seed) &+ 1000)
    for _ in 0..<500 {
      // Spread the amounts over every unit's range.
      let digits = Int.random(in: 0...18, using: &rng)
      let upper = digits == 18 ? Int64.max : Int64(pow10: digits)
      let amount = TimeAmount.nanoseconds(Int64.random(in: 0...upper, using: &rng))
      let timeout = GRPCTimeout(amount)
      #expect(timeout.amount >= amount)
      #expect(timeout.amount - amount < .nanoseconds(timeout.unit.nanoseconds))
      #expect(try GRPCTimeout(parsing: timeout.headerValue) == timeout)
    }
  }

  @Test("the description is the header value")
  func description() {
    #expect(GRPCTimeout(value: 42, unit: .milliseconds).description == "42m")
    #expect("\(GRPCTimeout(.seconds(1)))" == "1000000u")
  }

  @Test("timeouts compare by value and unit, not by amount")
  func equality() throws {
    #expect(try GRPCTimeout(parsing: "1S") != GRPCTimeout(parsing: "1000m"))
    #expect(try GRPCTimeout(parsing: "1S").amount == GRPCTimeout(parsing: "1000m").amount)
  }

  @Test("units are spelled H M S m u n")
  func units() {
    #expect(GRPCTimeout.Unit.allCases.map(\.rawValue) == ["H", "M", "S", "m", "u", "n"])
    #expect(GRPCTimeout.maxValue == 99_999_999)
  }
}

extension Int64 {
  fileprivate init(pow10 exponent: Int) {
    self = (0..<exponent).reduce(1) { result, _ in result * 10 }
  }
}
