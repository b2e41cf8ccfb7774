/// One of the 16 keys of a DTMF keypad, sent as the sum of a row tone and a column tone.
///
/// ```
///            1209 Hz  1336 Hz  1477 Hz  1633 Hz
///   697 Hz      1        2        3        A
///   770 Hz      4        5        6        B
///   852 Hz      7        8        9        C
///   941 Hz      *        0        #        D
/// ```
public enum DTMFSymbol: Character, Hashable, Sendable, CaseIterable, CustomStringConvertible {
  /// `1`.
  case one = "1"
  /// `2`.
  case two = "2"
  /// `3`.
  case three = "3"
  /// `A`.
  case a = "A"
  /// `4`.
  case four = "4"
  /// `5`.
  case five = "5"
  /// `6`.
  case six = "6"
  /// `B`.
  case b = "B"
  /// `7`.
  case seven = "7"
  /// `8`.
  case eight = "8"
  /// `9`.
  case nine = "9"
  /// `C`.
  case c = "C"
  /// `*`.
  case star = "*"
  /// `0`.
  case zero = "0"
  /// `#`.
  case pound = "#"
  /// `D`.
  case d = "D"

  /// The frequencies of the 4 rows, low group, in hertz.
  public static let rowFrequencies: [Double] = [697, 770, 852, 941]
  /// The frequencies of the 4 columns, high group, in hertz.
  public static let columnFrequencies: [Double] = [1209, 1336, 1477, 1633]

  /// The symbol at `row` and `column` of the keypad, each in `0..<4`.
  public init(row: Int, column: Int) {
    precondition((0..<4).contains(row) && (0..<4).contains(column), "no key at \(row), \(column)")
    self = Self.keypad[row * 4 + column]
  }

  /// The symbol that `character` names: a digit, `*`, `#`, or a letter `A` to `D` of either case.
  public init?(_ character: Character) {
    if let symbol = Self(rawValue: character) {
      self = symbol
      return
    }
    switch character {
    case "a": self = .a
    case "b": self = .b
    case "c": self = .c
    case "d": self = .d
    default: return nil
    }
  }

  /// The symbols of `text`, in order, or nil if a character of it names none.
  public static func symbols(_ text: String) -> [DTMFSymbol]? {
    var symbols: [DTMFSymbol] = []
    for character in text {
      guard let symbol = DTMFSymbol(character) else { return nil }
      symbols.append(symbol)
    }
    return symbols
  }

  /// The keypad row, `0..<4`.
  public var row: Int {
    switch self {
    case .one, .two, .three, .a: 0
    case .four, .five, .six, .b: 1
    case .seven, .eight, .nine, .c: 2
    case .star, .zero, .pound, .d: 3
    }
  }

  /// The keypad column, `0..<4`.
  public var column: Int {
    switch self {
    case .one, .four, .seven, .star: 0
    case .two, .five, .eight, .zero: 1
    case .three, .six, .nine, .pound: 2
    case .a, .b, .c, .d: 3
    }
  }

  /// The frequency of the row tone, in hertz.
  public var rowFrequency: Double { Self.rowFrequencies[row] }
  /// The frequency of the column tone, in hertz.
  public var columnFrequency: Double { Self.columnFrequencies[column] }

  /// The character, e.g. `#`.
  public var description: String { String(rawValue) }

  /// The symbols in keypad order, row by row; `allCases` builds a new array each time.
  private static let keypad = allCases
}
