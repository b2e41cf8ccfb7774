import HarkAudio
import Testing

@Suite("DTMF symbols")
struct DTMFSymbolTests {
  @Test(
    "each key sounds its row and column frequency",
    arguments: [
      ("1", 697.0, 1209.0), ("2", 697, 1336), ("3", 697, 1477), ("A", 697, 1633),
      ("4", 770, 1209), ("5", 770, 1336), ("6", 770, 1477), ("B", 770, 1633),
      ("7", 852, 1209), ("8", 852, 1336), ("9", 852, 1477), ("C", 852, 1633),
      ("*", 941, 1209), ("0", 941, 1336), ("#", 941, 1477), ("D", 941, 1633),
    ] as [(Character, Double, Double)]
  )
  func frequencies(_ character: Character, row: Double, column: Double) throws {
    let symbol = try #require(DTMFSymbol(character))
    #expect(symbol.rowFrequency == row)
    #expect(symbol.columnFrequency == column)
    #expect(DTMFSymbol(row: symbol.row, column: symbol.column) == symbol)
    #expect(symbol.description == String(character))
  }

  @Test("the keypad is laid out row by row")
  func keypad() {
    #expect(DTMFSymbol.allCases.map(\.rawValue) == Array("123A456B789C*0#D"))
    #expect(DTMFSymbol.allCases.map(\.row) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    #expect(DTMFSymbol.allCases.map(\.column) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
  }

  @Test("letters are read in either case; other characters name no key")
  func parsing() {
    #expect(DTMFSymbol("a") == .a)
    #expect(DTMFSymbol("d") == .d)
    #expect(DTMFSymbol("e") == nil)
    #expect(DTMFSymbol("ß") == nil)
    #expect(DTMFSymbol(" ") == nil)
    #expect(DTMFSymbol.symbols("12#*ab") == [.one, .two, .pound, .star, .a, .b])
    #expect(DTMFSymbol.symbols("") == [])
    #expect(DTMFSymbol.symbols("1 2") == nil)
  }
}
