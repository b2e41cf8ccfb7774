public import NIOCore

/// Why a `grpc-timeout` header value could not be parsed.
public struct GRPCTimeoutError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong with the value.
  public enum Reason: Hashable, Sendable {
    /// The value is empty.
    case empty
    /// The value has no digits before its unit, as in `S`.
    case missingDigits
    /// The value has more than the 8 digits the specification allows.
    case tooManyDigits(count: Int)
    /// The value ends in a digit, so it has no unit.
    case missingUnit
    /// The value ends in a character that is none of `H M S m u n`.
    case unknownUnit(Character)
    /// The value holds a character that is not an ASCII digit before its unit (a sign, a space).
    case invalidCharacter(Character)
  }

  /// The header value as received.
  public var value: String
  /// What is wrong with it.
  public var reason: Reason

  /// An error for `value`, wrong because of `reason`.
  public init(value: String, reason: Reason) {
    self.value = value
    self.reason = reason
  }

  /// A sentence naming the problem, for logs and status messages.
  public var message: String { description }

  /// The message.
  public var description: String {
    let problem =
      switch reason {
      case .empty: "it is empty"
      case .missingDigits: "it has no digits"
      case .tooManyDigits(let count): "it has \(count) digits, more than 8"
      case .missingUnit: "it has no unit"
      case .unknownUnit(let unit): "\"\(unit)\" is not a unit (H, M, S, m, u or n)"
      case .invalidCharacter(let character): "\"\(character)\" is not a digit"
      }
    return "invalid grpc-timeout \"\(value)\": \(problem)"
  }
}

/// The deadline of a call as the `grpc-timeout` header carries it: at most 8 digits and a unit.
///
/// The header is `TimeoutValue TimeoutUnit`, where the value is an ASCII integer of at most 8
/// digits and the unit one of `H` (hours), `M` (minutes), `S` (seconds), `m` (milliseconds), `u`
/// (microseconds) or `n` (nanoseconds). Two timeouts are equal when their value and unit are, so
/// `1S` and `1000m` differ although their ``amount`` is the same.
public struct GRPCTimeout: Hashable, Sendable, CustomStringConvertible {
  /// The unit of a timeout, spelled as on the wire.
  public enum Unit: Character, Hashable, Sendable, CaseIterable {
    /// `H`.
    case hours = "H"
    /// `M`.
    case minutes = "M"
    /// `S`.
    case seconds = "S"
    /// `m`.
    case milliseconds = "m"
    /// `u`.
    case microseconds = "u"
    /// `n`.
    case nanoseconds = "n"

    /// The length of one unit in nanoseconds.
    public var nanoseconds: Int64 {
      switch self {
      case .hours: 3_600_000_000_000
      case .minutes: 60_000_000_000
      case .seconds: 1_000_000_000
      case .milliseconds: 1_000_000
      case .microseconds: 1_000
      case .nanoseconds: 1
      }
    }
  }

  /// The largest value: 8 digits.
  public static let maxValue: Int64 = 99_999_999

  /// The number of units, in `0 ... maxValue`.
  public let value: Int64
  /// The unit of ``value``.
  public let unit: Unit

  /// A timeout of `value` units.
  ///
  /// - Precondition: `value` is in `0 ... GRPCTimeout.maxValue`.
  public init(value: Int64, unit: Unit) {
    precondition((0...Self.maxValue).contains(value), "grpc-timeout value \(value) is out of range")
    self.value = value
    self.unit = unit
  }

  /// Parses a `grpc-timeout` header value, such as `1S` or `250m`.
  ///
  /// The grammar is strict: no sign, no whitespace, 1 to 8 digits and one unit. A value of zero is
  /// accepted, as gRPC implementations do, although the specification asks for a positive integer.
  ///
  /// - Throws: ``GRPCTimeoutError`` naming the problem.
  public init(parsing value: String) throws(GRPCTimeoutError) {
    let utf8 = value.utf8
    guard let last = utf8.last else { throw GRPCTimeoutError(value: value, reason: .empty) }
    guard let unit = Unit(rawValue: Character(Unicode.Scalar(last))) else {
      if Self.isDigit(last) { throw GRPCTimeoutError(value: value, reason: .missingUnit) }
      throw GRPCTimeoutError(value: value, reason: .unknownUnit(value.last!))
    }
    let digits = utf8.dropLast()
    // Check each character before the count, so "+1S" reports the sign and not a count.
    if let bad = digits.firstIndex(where: { !Self.isDigit($0) }) {
      // Every byte before `bad` is an ASCII digit, so `bad` starts a scalar.
      let character = Character(value.unicodeScalars[bad])
      throw GRPCTimeoutError(value: value, reason: .invalidCharacter(character))
    }
    guard !digits.isEmpty else { throw GRPCTimeoutError(value: value, reason: .missingDigits) }
    guard digits.count <= 8 else {
      throw GRPCTimeoutError(value: value, reason: .tooManyDigits(count: digits.count))
    }
    let number = digits.reduce(Int64(0)) { $0 * 10 + Int64($1 - UInt8(ascii: "0")) }
    self.init(value: number, unit: unit)
  }

  /// The timeout that is `amount` or, if that cannot be written exactly, the next longer one.
  ///
  /// Picks the finest unit whose value fits in 8 digits and rounds up to a whole number of it, so
  /// a deadline sent to the peer is never earlier than the caller's. Negative amounts, deadlines
  /// that have already passed, become `0n`.
  public init(_ amount: TimeAmount) {
    let nanoseconds = max(amount.nanoseconds, 0)
    // Finest first; hours always fit, as Int64.max nanoseconds is about 2.6 million hours.
    for unit in [Unit.nanoseconds, .microseconds, .milliseconds, .seconds, .minutes, .hours] {
      let (quotient, remainder) = nanoseconds.quotientAndRemainder(dividingBy: unit.nanoseconds)
      let rounded = quotient + (remainder > 0 ? 1 : 0)
      if rounded <= Self.maxValue {
        self.init(value: rounded, unit: unit)
        return
      }
    }
    preconditionFailure("\(nanoseconds) ns does not fit in 8 digits of hours")
  }

  /// The length of the timeout.
  ///
  /// Hours beyond about 2.56 million (292 years) exceed what `TimeAmount` holds; they saturate
  /// to the largest `TimeAmount`, which is as good as infinite for a deadline.
  public var amount: TimeAmount {
    let (product, overflow) = value.multipliedReportingOverflow(by: unit.nanoseconds)
    return .nanoseconds(overflow ? .max : product)
  }

  /// The header value, e.g. `1S`.
  public var headerValue: String { "\(value)\(unit.rawValue)" }

  /// The header value, e.g. `1S`.
  public var description: String { headerValue }

  private static func isDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
  }
}
