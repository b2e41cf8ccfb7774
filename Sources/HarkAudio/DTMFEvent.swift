/// What a ``DTMFDetector`` reports about a key press, in samples from the start of the stream.
public enum DTMFEvent: Hashable, Sendable, CustomStringConvertible {
  /// The tone of `symbol`, which began at sample `startSample`, has lasted long enough to count.
  case began(DTMFSymbol, startSample: Int)
  /// The tone of `symbol` sounded from sample `startSample` up to, not including, `endSample`.
  case ended(DTMFSymbol, startSample: Int, endSample: Int)

  /// The key pressed.
  public var symbol: DTMFSymbol {
    switch self {
    case .began(let symbol, _), .ended(let symbol, _, _): symbol
    }
  }

  /// The first sample of the tone.
  public var startSample: Int {
    switch self {
    case .began(_, let start), .ended(_, let start, _): start
    }
  }

  /// The event, e.g. `5 began at 800` or `5 ended 800..<1600`.
  public var description: String {
    switch self {
    case .began(let symbol, let start): "\(symbol) began at \(start)"
    case .ended(let symbol, let start, let end): "\(symbol) ended \(start)..<\(end)"
    }
  }
}
