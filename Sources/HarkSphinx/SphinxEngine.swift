import HarkAudio
import HarkProto
public import HarkRecognizer

/// Recognizes US English with CMU PocketSphinx: dictation with the model's language model, or
/// the grammar the recognition's resources make (see ``SphinxGrammar``).
///
/// One decoder per engine, loaded once: the acoustic model, the dictionary and the language model
/// stay for the engine's life, and the grammars it compiles are kept (the last
/// ``grammarCacheSize``, by content), so a recognition costs no loading.
///
/// Audio at 8 kHz is upsampled to the model's 16 kHz (``HalfBandUpsampler``); every position the
/// engine reports is in the stream's own samples. The engine keeps the last seconds of audio, so
/// an utterance is decoded from a little before the onset the endpointer reports (whose first
/// frames it may have missed) until the utterance ends.
///
/// - Dictation decodes as the audio comes; its words carry the decoder's posterior probabilities
///   as confidences.
/// - A grammar is decoded as the audio comes only for partial results; its final result comes
///   from a second pass over the whole utterance, normalized by the utterance's own cepstral mean
///   (cheap for a grammar, and much more accurate on the first words of a stream). A word's
///   confidence is the posterior of the lattice links that match it. Generated grammars also
///   allow silence and noise alone, so audio that fits no phrase can yield no hypothesis.
/// - A hypothesis whose mean word confidence is below ``dictationRejection`` or
///   ``grammarRejection`` is marked rejected. There is no acoustic garbage model: out-of-grammar
///   speech often still matches the nearest phrase.
/// - Partial results are the decoder's partial hypotheses, reported when their text changes
///   (checked every 100 ms of audio); they carry no confidence (0).
/// - The final result has up to `max_hypotheses` hypotheses of different texts, from the
///   lattice's n-best paths.
///
/// Each recognition starts from the model's cepstral mean, and the audio gets the same faint
/// dither (against digital silence), so results do not depend on what the engine recognized
/// before.
public final class SphinxEngine: SpeechEngine {
  /// Decoding costs milliseconds of CPU per audio message: a server runs it off its event loops.
  public var runsOnWorkerThread: Bool { true }

  /// The languages the engine takes, compared case-insensitively.
  public static let languages: Set<String> = ["en-us", "en_us", "eng-usa"]
  /// Compiled grammars kept, the least recently used dropped first.
  public static let grammarCacheSize = 16

  /// Decoder samples (16 kHz) decoded before the onset the endpointer reports: 250 ms.
  static let preroll = 4000
  /// Decoder samples kept between utterances: 2 s, for onsets reported late.
  static let history = 32000
  /// The longest utterance kept whole for a grammar's second pass: 60 s. A longer one ends with
  /// the result of its first pass.
  static let longestWholeUtterance = 960_000
  /// Decoder samples between checks of the partial hypothesis: 100 ms.
  static let partialInterval = 1600
  /// The word insertion penalty of grammars (the language model keeps its own).
  static let grammarWordInsertionPenalty = 0.01
  /// A dictation hypothesis whose mean word posterior is lower is rejected.
  static let dictationRejection = 0.15
  /// A grammar hypothesis whose mean word posterior is lower is rejected.
  static let grammarRejection = 0.2

  /// The dither generator's first state.
  static let ditherSeed: UInt64 = 0x9E37_79B9_7F4A_7C15

  private let decoder: SphinxDecoder
  /// Compiled grammars by JSGF text, least recently used first.
  private var searches: [(jsgf: String, name: String)] = []
  private var searchesCompiled = 0

  // The recognition.
  private var grammar = SphinxGrammar.dictation
  private var sampleRate = 8000
  private var wantsPartials = false
  private var maxHypotheses = 1
  private var upsampler: HalfBandUpsampler?
  /// Stream samples received.
  private var streamEnd = 0
  /// Audio at 16 kHz: decoder samples `audioStart ..< audioStart + audio.count`.
  private var audio: [Int16] = []
  private var audioStart = 0
  /// The state of the dither's generator, the same at the start of every recognition.
  private var ditherState = SphinxEngine.ditherSeed
  /// Where the last utterance's decoding stopped, in decoder samples.
  private var lastUtteranceEnd = 0
  private var utterance: Utterance?

  /// The utterance being decoded.
  private struct Utterance {
    /// Its first decoder sample.
    var start: Int
    /// Whether the decoder decodes it as it comes (else only a second pass, at the end).
    var live: Bool
    /// Decoder samples given to the decoder so far.
    var fed: Int
    /// Whether its audio is kept for a second pass.
    var keepsAudio: Bool
    var lastPartialCheck: Int
    var lastPartialText: String?
  }

  /// An engine with the model in `modelDirectory` (by default Debian's `pocketsphinx-en-us`).
  ///
  /// - Throws: ``EngineError`` (an internal failure) when the model is missing or does not load.
  public convenience init(modelDirectory: String? = nil) throws(EngineError) {
    try self.init(model: SphinxModel(directory: modelDirectory ?? SphinxModel.defaultDirectory))
  }

  /// An engine with `model`, loaded now.
  ///
  /// - Throws: ``EngineError`` (an internal failure) when the model does not load.
  public init(model: SphinxModel) throws(EngineError) {
    decoder = try SphinxDecoder(model: model)
  }

  /// Decoder samples per stream sample.
  private var factor: Int { SphinxDecoder.sampleRate / sampleRate }

  private var audioEnd: Int { audioStart + audio.count }

  // MARK: SpeechEngine

  public func prepare(
    _ configuration: RecognitionConfiguration
  ) throws(EngineError) -> [EngineNotice] {
    reset()
    guard Self.languages.contains(configuration.language.lowercased()) else {
      throw EngineError(
        .badRequest(field: "language"),
        "the sphinx engine recognizes en-US only, not \(configuration.language)"
      )
    }
    guard [8000, 16000].contains(configuration.sampleRate) else {
      throw EngineError(
        .badRequest(field: "audio_format.pcm.sample_rate_hz"),
        "the sphinx engine takes 8000 or 16000 Hz, not \(configuration.sampleRate)"
      )
    }
    var (grammar, notices) = try SphinxGrammar.make(
      resources: configuration.resources,
      maskLoadFailures: configuration.maskLoadFailures,
      knows: decoder.knows
    )
    if let jsgf = grammar.jsgf {
      if let name = compiledSearch(for: jsgf) {
        try decoder.useSearch(named: name)
      } else {
        let index = configuration.resources.firstIndex { resource in
          if case .inlineGrammar? = resource.resource { true } else { false }
        }
        let field = index.map { "resources[\($0)].inline_grammar" } ?? "resources"
        let message =
          "the grammar does not compile: a JSGF syntax error, or a word the dictionary lacks"
        guard configuration.maskLoadFailures else {
          throw EngineError(.resourceFailed(field: field), message)
        }
        notices.append(EngineNotice(code: 502, message: "\(field) did not load: \(message)"))
        grammar = .dictation
      }
    }
    if grammar.isDictation { try decoder.useSearch(named: SphinxDecoder.dictationSearch) }
    self.grammar = grammar
    sampleRate = configuration.sampleRate
    upsampler = sampleRate == SphinxDecoder.sampleRate ? nil : HalfBandUpsampler()
    wantsPartials = [.partial, .immutablePartial].contains(configuration.resultType)
    maxHypotheses = max(configuration.maxHypotheses, 1)
    return notices
  }

  public func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis? {
    if position != streamEnd {
      // Not where the last samples ended (a caller's bug): start the audio over from here, and
      // an utterance in progress with it, so that no index points outside the audio kept.
      audio.removeAll(keepingCapacity: true)
      audioStart = position * factor
      upsampler?.reset()
      lastUtteranceEnd = min(lastUtteranceEnd, audioStart)
      if var utterance {
        utterance.start = audioStart
        utterance.fed = audioStart
        utterance.lastPartialCheck = audioStart
        self.utterance = utterance
      }
    }
    streamEnd = position + samples.count
    let appended = audio.count
    if upsampler != nil {
      upsampler!.process(samples, into: &audio)
    } else {
      audio.append(contentsOf: samples)
    }
    dither(from: appended)
    guard var utterance else {
      trimAudio(keepingFrom: audioEnd - Self.history)
      return nil
    }
    defer { self.utterance = utterance }
    if utterance.keepsAudio && audioEnd - utterance.start > Self.longestWholeUtterance {
      // Too long to keep whole: the first pass gives the result.
      utterance.keepsAudio = false
      if !utterance.live {
        try decoder.startUtterance()
        utterance.live = true
      }
    }
    if utterance.live {
      try feed(&utterance)
      if !utterance.keepsAudio { trimAudio(keepingFrom: utterance.fed - Self.history) }
    }
    guard wantsPartials, utterance.live,
      utterance.fed - utterance.lastPartialCheck >= Self.partialInterval
    else { return nil }
    utterance.lastPartialCheck = utterance.fed
    guard let partial = hypothesis(from: decoder.segments(), origin: utterance.start, final: false),
      partial.text != utterance.lastPartialText
    else { return nil }
    utterance.lastPartialText = partial.text
    return partial
  }

  public func beginUtterance(at onset: Int) throws(EngineError) {
    if utterance != nil {
      // An utterance that never ended: drop it.
      try? decoder.endUtterance()
      utterance = nil
    }
    let start = min(max(onset * factor - Self.preroll, audioStart, lastUtteranceEnd), audioEnd)
    var utterance = Utterance(
      start: start,
      live: grammar.isDictation || wantsPartials,
      fed: start,
      keepsAudio: !grammar.isDictation,
      lastPartialCheck: start
    )
    if utterance.live {
      try decoder.startUtterance()
      try feed(&utterance)
    }
    self.utterance = utterance
  }

  public func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
    guard let utterance else { return [] }
    self.utterance = nil
    lastUtteranceEnd = audioEnd
    if utterance.live { try decoder.endUtterance() }
    if utterance.keepsAudio {
      let range = min(max(utterance.start - audioStart, 0), audio.count)..<audio.count
      try audio[range].withUnsafeBufferPointer { samples throws(EngineError) in
        try decoder.decodeWholeUtterance(samples)
      }
    }
    trimAudio(keepingFrom: audioEnd - Self.history)
    return finalHypotheses(origin: utterance.start)
  }

  public func reset() {
    if utterance != nil {
      try? decoder.endUtterance()
      utterance = nil
    }
    decoder.resetCepstralMean()
    audio.removeAll(keepingCapacity: true)
    audioStart = 0
    streamEnd = 0
    lastUtteranceEnd = 0
    ditherState = Self.ditherSeed
    upsampler?.reset()
  }

  // MARK: Decoding

  /// Gives the decoder the audio it has not had yet.
  private func feed(_ utterance: inout Utterance) throws(EngineError) {
    guard audioEnd > utterance.fed else { return }
    let range = max(utterance.fed - audioStart, 0)..<audio.count
    try audio[range].withUnsafeBufferPointer { samples throws(EngineError) in
      try decoder.process(samples)
    }
    utterance.fed = audioEnd
  }

  /// Adds a least significant bit or two of noise to the audio from index `start` on.
  ///
  /// Digital silence (runs of zeros, as files and some gateways have) has no spectrum to speak
  /// of, and throws the decoder's noise and cepstral mean estimates far off; a whisper of noise,
  /// far below any line's own (about -87 dBFS), keeps them sane. The noise is the same for every
  /// recognition, so results stay reproducible.
  private func dither(from start: Int) {
    for index in start..<audio.count {
      // xorshift64: five values from -2 to 2, evenly.
      ditherState ^= ditherState << 13
      ditherState ^= ditherState >> 7
      ditherState ^= ditherState << 17
      let noise = Int(ditherState % 5) - 2
      audio[index] = Int16(clamping: Int(audio[index]) + noise)
    }
  }

  /// Drops audio before decoder sample `start` (in chunks, so that dropping is cheap).
  private func trimAudio(keepingFrom start: Int) {
    let count = start - audioStart
    guard count >= Self.history else { return }
    audio.removeFirst(count)
    audioStart = start
  }

  /// The compiled search of `jsgf`, compiled now if it is not among the last ones; nil if it does
  /// not compile.
  private func compiledSearch(for jsgf: String) -> String? {
    if let index = searches.firstIndex(where: { $0.jsgf == jsgf }) {
      let search = searches.remove(at: index)
      searches.append(search)
      return search.name
    }
    if searches.count >= Self.grammarCacheSize {
      // Never remove the search in use.
      try? decoder.useSearch(named: SphinxDecoder.dictationSearch)
      decoder.removeSearch(named: searches.removeFirst().name)
    }
    searchesCompiled += 1
    let name = "grammar\(searchesCompiled)"
    guard
      decoder.addGrammar(
        named: name,
        jsgf: jsgf,
        wordInsertionPenalty: Self.grammarWordInsertionPenalty
      )
    else { return nil }
    searches.append((jsgf, name))
    return name
  }

  // MARK: Results

  /// The final hypotheses of the utterance that was decoded from decoder sample `origin`.
  private func finalHypotheses(origin: Int) -> [EngineHypothesis] {
    let best = decoder.segments(withPosteriors: grammar.isDictation)
    // A word without a posterior of its own takes that of the lattice links that match it.
    var links: [String: [SphinxSegment]]?
    func withPosteriors(_ segments: [SphinxSegment]) -> [SphinxSegment] {
      segments.map { segment in
        guard segment.posterior == nil, let word = Self.baseWord(segment.word) else {
          return segment
        }
        if links == nil {
          links = Dictionary(
            grouping: decoder.latticeLinks(computingPosteriors: !grammar.isDictation),
            by: { Self.baseWord($0.word) ?? "" }
          )
        }
        let length = segment.endFrame - segment.startFrame + 1
        var segment = segment
        segment.posterior =
          links![word, default: []].filter { link in
            let overlap =
              min(link.endFrame, segment.endFrame) - max(link.startFrame, segment.startFrame) + 1
            return 2 * overlap >= length
          }.compactMap(\.posterior).max() ?? 0
        return segment
      }
    }
    guard let first = hypothesis(from: withPosteriors(best), origin: origin, final: true) else {
      return []
    }
    var hypotheses = [first]
    guard maxHypotheses > 1 else { return hypotheses }
    for path in decoder.nBest(limit: 4 * maxHypotheses) where hypotheses.count < maxHypotheses {
      guard let alternative = hypothesis(from: withPosteriors(path), origin: origin, final: true),
        !hypotheses.contains(where: { $0.text == alternative.text })
      else { continue }
      hypotheses.append(alternative)
    }
    return hypotheses
  }

  private var rejectionThreshold: Double {
    grammar.isDictation ? Self.dictationRejection : Self.grammarRejection
  }

  /// A hypothesis of `segments` (fillers left out), decoded from decoder sample `origin`; nil when
  /// it has no words. A partial one has no confidences.
  private func hypothesis(
    from segments: [SphinxSegment],
    origin: Int,
    final: Bool
  ) -> EngineHypothesis? {
    let spoken = segments.compactMap { segment -> (word: String, segment: SphinxSegment)? in
      guard let word = Self.baseWord(segment.word), !Self.isFiller(word) else { return nil }
      return (word, segment)
    }
    guard !spoken.isEmpty else { return nil }
    let reading = grammar.read(spoken.map(\.word))
    let samplesPerFrame = sampleRate / SphinxDecoder.framesPerSecond
    let start = origin / factor
    let end = audioEnd / factor
    var words: [EngineWord] = []
    for (index, item) in spoken.enumerated() {
      let confidence = final ? Float(item.segment.posterior ?? 0) : 0
      words.append(
        EngineWord(
          text: reading.words.count == spoken.count ? reading.words[index] : item.word,
          startSample: min(start + item.segment.startFrame * samplesPerFrame, end),
          endSample: min(start + (item.segment.endFrame + 1) * samplesPerFrame, end),
          confidence: confidence,
          grammarRule: reading.rule
        )
      )
    }
    let confidence = final ? words.map(\.confidence).reduce(0, +) / Float(words.count) : 0
    return EngineHypothesis(
      words: words,
      text: reading.text,
      confidence: confidence,
      rejected: final && Double(confidence) < rejectionThreshold,
      grammarID: reading.grammarID
    )
  }

  /// A dictionary word without its pronunciation variant: `the(2)` → `the`.
  static func baseWord(_ word: String?) -> String? {
    guard let word else { return nil }
    guard word.hasSuffix(")"), let open = word.lastIndex(of: "("), open != word.startIndex else {
      return word
    }
    return String(word[..<open])
  }

  /// Whether `word` is silence, noise or a grammar's null transition: `<s>`, `</s>`, `<sil>`,
  /// `[NOISE]`, `++GARBAGE++`, `(NULL)`.
  static func isFiller(_ word: String) -> Bool {
    word.hasPrefix("<") || word.hasPrefix("[") || word.hasPrefix("++") || word.hasPrefix("(")
  }
}

extension SphinxEngine {
  /// Makes engines for a server's pool, whose maker cannot fail: each call loads an engine with
  /// the model in `modelDirectory` (by default Debian's); one that does not load answers each
  /// recognition with an internal failure (500) that says why.
  ///
  /// Check the model first with ``SphinxModel/init(directory:)`` to fail before serving.
  public static func factory(modelDirectory: String? = nil) -> @Sendable () -> any SpeechEngine {
    { () -> any SpeechEngine in
      do throws(EngineError) {
        return try SphinxEngine(modelDirectory: modelDirectory)
      } catch {
        return UnavailableEngine(error: error)
      }
    }
  }
}

/// An engine that could not be made: every recognition fails with the reason.
final class UnavailableEngine: SpeechEngine {
  let error: EngineError

  init(error: EngineError) {
    self.error = error
  }

  /// As the sphinx engine it stands in for: the pool then goes on making the next engines
  /// (each a new attempt at loading the model) off the event loop.
  var runsOnWorkerThread: Bool { true }

  func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice] {
    throw error
  }

  func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis? {
    throw error
  }

  func beginUtterance(at onset: Int) throws(EngineError) { throw error }

  func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] { throw error }

  func reset() {}
}
