/// A word an engine recognized, with its place in the audio stream.
public struct EngineWord: Sendable, Hashable {
  /// The word.
  public var text: String
  /// Its first sample, counted from the start of the stream.
  public var startSample: Int
  /// One past its last sample.
  public var endSample: Int
  /// Confidence, 0 … 1.
  public var confidence: Float
  /// The grammar rule that matched it, if a grammar did.
  public var grammarRule: String?

  /// A word.
  public init(
    text: String,
    startSample: Int,
    endSample: Int,
    confidence: Float,
    grammarRule: String? = nil
  ) {
    self.text = text
    self.startSample = startSample
    self.endSample = endSample
    self.confidence = confidence
    self.grammarRule = grammarRule
  }
}

/// One hypothesis of an engine.
public struct EngineHypothesis: Sendable, Hashable {
  /// The words, in order.
  public var words: [EngineWord]
  /// The text as the engine would format it; by default the words joined by spaces.
  public var text: String
  /// Confidence of the whole hypothesis, 0 … 1.
  public var confidence: Float
  /// Whether the engine rejected it (heard something, matched nothing acceptably).
  public var rejected: Bool
  /// The grammar that matched, if a grammar did.
  public var grammarID: String?

  /// A hypothesis of `words`.
  public init(
    words: [EngineWord],
    text: String? = nil,
    confidence: Float,
    rejected: Bool = false,
    grammarID: String? = nil
  ) {
    self.words = words
    self.text = text ?? words.map(\.text).joined(separator: " ")
    self.confidence = confidence
    self.rejected = rejected
    self.grammarID = grammarID
  }
}

/// Why an engine refused a recognition or failed in one.
public struct EngineError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What kind of failure, and the status it becomes.
  public enum Kind: Hashable, Sendable {
    /// A parameter or resource the engine cannot take: 400, `field` names it.
    case badRequest(field: String)
    /// A resource (wordset, grammar) failed to load: 502 (or a notification when the client set
    /// `mask_load_failures`).
    case resourceFailed(field: String)
    /// The engine itself failed: 500.
    case internalFailure
  }

  /// What kind of failure.
  public var kind: Kind
  /// A developer-facing explanation.
  public var message: String

  /// An error of `kind`.
  public init(_ kind: Kind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }
}

/// A speech recognizer behind the Recognize protocol, fed with decoded 16-bit PCM.
///
/// The server's session sees every sample of the stream and gives all of it to the engine, in
/// order, with positions counted from the start of the stream; the shared endpointer decides
/// where utterances begin and end and tells the engine with sample positions (which may lie a
/// little in the past: the onset of speech is known only after a few frames of it). An engine
/// instance serves one recognition at a time; a server keeps a pool of them.
public protocol SpeechEngine: AnyObject {
  /// Sets the engine up for a recognition: language, resources, sample rate. Called once per
  /// recognition, before any audio, off the server's event loops (it may take long, e.g. to
  /// compile a grammar): on the engine's worker thread, or on a thread pool.
  ///
  /// - Throws: ``EngineError`` naming the parameter or resource it cannot take.
  func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice]

  /// Takes the next samples of the stream, which start at `position`; returns a new partial
  /// hypothesis of the current utterance if the samples changed it.
  func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis?

  /// An utterance began at `onset` (at or before the latest samples processed).
  func beginUtterance(at onset: Int) throws(EngineError)

  /// The utterance ended at `end`; returns its n-best hypotheses, best first (empty when
  /// nothing acceptable was heard).
  func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis]

  /// Forgets the recognition, ready for the next one.
  func reset()

  /// Whether the engine's calls take long enough (milliseconds of CPU per audio message) that a
  /// server runs them on a worker thread, in order, rather than on the event loop its
  /// connections share. False by default.
  var runsOnWorkerThread: Bool { get }

  /// How many 64-byte lines of this object a server prefetches before giving it a message (at
  /// thousands of sessions the engine's state has left the cache by its next message): its
  /// state's size, roughly. 2 by default.
  var prefetchLines: Int { get }
}

extension SpeechEngine {
  public var runsOnWorkerThread: Bool { false }
  public var prefetchLines: Int { 2 }
}

/// Something an engine wants the client to know without failing the recognition, e.g. a
/// resource that did not load while `mask_load_failures` was set.
public struct EngineNotice: Sendable, Hashable {
  /// A code for the notice.
  public var code: Int32
  /// The message.
  public var message: String

  /// A notice.
  public init(code: Int32, message: String) {
    self.code = code
    self.message = message
  }
}
