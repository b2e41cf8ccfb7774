import HarkAudio
import HarkProto

/// Recognizes in-band DTMF: each key press of an utterance becomes a word, and the transcript
/// is the keys in order ("123#").
///
/// Exact, cheap and deterministic: the engine for tests, for IVR digit capture, and for load
/// tests where the protocol, not the recognizer, is measured. It takes any language, the
/// builtins `digits` and `dtmf`, and inline wordsets (checked for form, not used); other
/// resources are bad requests.
public final class DTMFEngine: SpeechEngine {
  private var detector = DTMFDetector(sampleRate: 8000)
  /// Key presses of the stream that ended (or began and still sound), in order.
  private var presses: [(symbol: DTMFSymbol, start: Int, end: Int?)] = []
  private var utteranceOnset: Int?
  private var reported = 0

  public init() {}

  /// The object's header, the detector and the fields after it.
  public var prefetchLines: Int { (MemoryLayout<DTMFDetector>.size + 32 + 63) / 64 + 1 }

  public func prepare(
    _ configuration: RecognitionConfiguration
  ) throws(EngineError) -> [EngineNotice] {
    for (index, resource) in configuration.resources.enumerated() {
      switch resource.resource {
      case .builtin(let name)?:
        guard ["digits", "dtmf"].contains(name.lowercased()) else {
          throw EngineError(
            .badRequest(field: "resources[\(index)].builtin"),
            "unknown builtin '\(name)': the dtmf engine knows digits and dtmf"
          )
        }
      case .inlineWordset(let json)?:
        guard Wordset.isWellFormed(json) else {
          throw EngineError(
            .badRequest(field: "resources[\(index)].inline_wordset"),
            "the inline wordset is not valid wordset JSON"
          )
        }
      case .inlineGrammar?, .externalReference?, .wakeupWord?:
        throw EngineError(
          .badRequest(field: "resources[\(index)]"),
          "the dtmf engine takes only builtins (digits, dtmf) and inline wordsets"
        )
      case nil:
        throw EngineError(.badRequest(field: "resources[\(index)]"), "the resource is empty")
      }
    }
    detector = DTMFDetector(sampleRate: configuration.sampleRate)
    return []
  }

  public func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis? {
    let events = detector.process(samples)
    guard !events.isEmpty else { return nil }
    for event in events {
      switch event {
      case .began(let symbol, let start):
        presses.append((symbol, start, nil))
      case .ended(let symbol, let start, let end):
        if let index = presses.lastIndex(where: { $0.start == start && $0.symbol == symbol }) {
          presses[index].end = end
        } else {
          presses.append((symbol, start, end))
        }
      }
    }
    // A partial each time a key is recognized in the utterance.
    let current = pressesInUtterance(until: nil)
    guard current.count > reported else { return nil }
    reported = current.count
    return hypothesis(current, partialEnd: position + samples.count)
  }

  public func beginUtterance(at onset: Int) throws(EngineError) {
    utteranceOnset = onset
    reported = 0
  }

  public func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
    defer {
      utteranceOnset = nil
      reported = 0
    }
    let keys = pressesInUtterance(until: end)
    guard !keys.isEmpty else { return [] }
    return [hypothesis(keys, partialEnd: end)]
  }

  public func reset() {
    detector = DTMFDetector(sampleRate: detector.sampleRate)
    presses.removeAll()
    utteranceOnset = nil
    reported = 0
  }

  private func pressesInUtterance(until end: Int?) -> [(symbol: DTMFSymbol, start: Int, end: Int?)]
  {
    guard let onset = utteranceOnset else { return [] }
    // A tone starts a few milliseconds before the endpointer's onset can confirm it.
    let earliest = onset - detector.sampleRate / 20
    return presses.filter { $0.start >= earliest && (end == nil || $0.start < end!) }
  }

  private func hypothesis(
    _ keys: [(symbol: DTMFSymbol, start: Int, end: Int?)],
    partialEnd: Int
  ) -> EngineHypothesis {
    let words = keys.map { key in
      EngineWord(
        text: String(key.symbol.rawValue),
        startSample: key.start,
        endSample: key.end ?? partialEnd,
        confidence: 1
      )
    }
    return EngineHypothesis(words: words, text: words.map(\.text).joined(), confidence: 1)
  }
}

/// The shape of an inline wordset: a JSON object whose values are arrays of entries with a
/// `literal` (and optional `spoken` strings).
public enum Wordset {
  /// Whether `json` is a wordset: `{"NAME": [{"literal": "…", "spoken": ["…"]}, …], …}`.
  public static func isWellFormed(_ json: String) -> Bool {
    (try? parse(json)) != nil
  }

  /// The literals of each set, in order.
  public static func parse(
    _ json: String
  ) throws(JSONValue.ParseError) -> [(name: String, entries: [(literal: String, spoken: [String])])]
  {
    guard case .object(let sets) = try JSONValue.parse(json), !sets.isEmpty else {
      throw JSONValue.ParseError(message: "a wordset is a JSON object of named arrays")
    }
    var result: [(name: String, entries: [(literal: String, spoken: [String])])] = []
    for (name, value) in sets {
      guard case .array(let entries) = value else {
        throw JSONValue.ParseError(message: "\(name) is not an array")
      }
      var parsed: [(literal: String, spoken: [String])] = []
      for entry in entries {
        guard case .object(let fields) = entry,
          let literalValue = fields.first(where: { $0.0 == "literal" })?.1,
          case .string(let literal) = literalValue
        else { throw JSONValue.ParseError(message: "an entry of \(name) has no literal") }
        var spoken: [String] = []
        if let spokenValue = fields.first(where: { $0.0 == "spoken" })?.1 {
          guard case .array(let items) = spokenValue else {
            throw JSONValue.ParseError(message: "spoken of \(literal) is not an array")
          }
          for item in items {
            guard case .string(let text) = item else {
              throw JSONValue.ParseError(message: "spoken of \(literal) holds a non-string")
            }
            spoken.append(text)
          }
        }
        parsed.append((literal, spoken))
      }
      result.append((name, parsed))
    }
    return result
  }
}
