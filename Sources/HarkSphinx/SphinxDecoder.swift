internal import CPocketSphinx
import HarkRecognizer

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// A word of a decoder's hypothesis, as PocketSphinx reports it: dictionary spelling (with `(2)`
/// for an alternate pronunciation, `<sil>` and `[NOISE]` for fillers) and 10 ms frames counted
/// from the start of the utterance.
struct SphinxSegment: Hashable, Sendable {
  /// The word; nil for the null transitions of a grammar.
  var word: String?
  /// Its first frame.
  var startFrame: Int
  /// Its last frame (inclusive).
  var endFrame: Int
  /// Its posterior probability, 0 … 1, where the decoder computed one.
  var posterior: Double?
}

/// One PocketSphinx decoder: the only object that touches a `ps_decoder_t`, and the one place that
/// frees it.
///
/// It loads the acoustic model, the dictionary and the language model once. Dictation uses the
/// language model's search; grammars are compiled into named searches kept until removed. Every C
/// string the decoder returns is copied before the next call, so nothing outlives its buffer.
/// Decoder logging is off (once per process).
final class SphinxDecoder {
  /// The name of the language model's search (`PS_DEFAULT_SEARCH`).
  static let dictationSearch = "_default"
  /// Frames per second of the decoder (10 ms frames).
  static let framesPerSecond = 100
  /// The sample rate the acoustic model wants.
  static let sampleRate = 16000

  /// Decoder logging goes nowhere: `err_set_logfp(NULL)`, once, before the first decoder.
  private static let loggingDisabled: Bool = {
    err_set_logfp(nil)
    return true
  }()

  private let decoder: OpaquePointer
  private let logmath: OpaquePointer
  /// The cepstral mean the model starts from (`-cmninit` of its `feat.params`).
  private let initialCepstralMean: [mfcc_t]
  /// The inverse of `-ascale`, for lattice posteriors.
  private let acousticScale: Float

  /// Loads `model`.
  init(model: SphinxModel) throws(EngineError) {
    _ = Self.loggingDisabled
    let arguments = [
      "-hmm", model.acousticModel,
      "-lm", model.languageModel,
      "-dict", model.dictionary,
      "-samprate", "\(Self.sampleRate)",
      // Voice activity detection would drop frames and with them the words' times: the shared
      // endpointer decides what is speech.
      "-remove_silence", "no",
    ]
    var argv = arguments.map { strdup($0) }
    defer { for pointer in argv { free(pointer) } }
    guard
      let config = argv.withUnsafeMutableBufferPointer({ buffer in
        cmd_ln_parse_r(nil, ps_args(), Int32(buffer.count), buffer.baseAddress, 0)
      })
    else {
      throw EngineError(.internalFailure, "PocketSphinx refused its configuration")
    }
    let decoder = ps_init(config)
    // The decoder holds its own reference to the configuration.
    cmd_ln_free_r(config)
    guard let decoder else {
      throw EngineError(
        .internalFailure,
        "PocketSphinx could not load the model in \(model.directory)"
      )
    }
    self.decoder = decoder
    logmath = ps_get_logmath(decoder)
    let cmn = ps_get_feat(decoder).pointee.cmn_struct!
    initialCepstralMean = Array(
      UnsafeBufferPointer(start: cmn.pointee.cmn_mean, count: Int(cmn.pointee.veclen))
    )
    acousticScale = 1 / Float(cmd_ln_float_r(ps_get_config(decoder), "-ascale"))
  }

  deinit {
    ps_free(decoder)
  }

  // MARK: Dictionary and searches

  /// Whether the dictionary has `word`.
  func knows(_ word: String) -> Bool {
    guard let pronunciation = ps_lookup_word(decoder, word) else { return false }
    free(pronunciation)
    return true
  }

  /// Compiles the JSGF grammar `jsgf` into the search `name`, with a word insertion penalty of
  /// its own (the language model keeps the configured one); false if it does not compile.
  ///
  /// What `ps_set_jsgf_string` does, but freeing the parsed grammar: that function (Debian's
  /// 0.8+5prealpha) keeps every grammar it parses, about 7 KB each, so a server that compiles the
  /// grammars its clients send would grow without bound.
  func addGrammar(named name: String, jsgf: String, wordInsertionPenalty: Double) -> Bool {
    let config = ps_get_config(decoder)
    let configured = cmd_ln_float_r(config, "-wip")
    cmd_ln_set_float_r(config, "-wip", wordInsertionPenalty)
    defer { cmd_ln_set_float_r(config, "-wip", configured) }
    guard let grammar = jsgf_parse_string(jsgf, nil) else { return false }
    defer { jsgf_grammar_free(grammar) }
    guard let rule = jsgf_get_public_rule(grammar),
      let fsg = jsgf_build_fsg(
        grammar,
        rule,
        ps_get_logmath(decoder),
        Float(cmd_ln_float_r(config, "-lw"))
      )
    else { return false }
    // ps_set_fsg keeps its own reference to the FSG.
    defer { fsg_model_free(fsg) }
    return ps_set_fsg(decoder, name, fsg) == 0
  }

  /// Makes `name` the search of the next utterances.
  func useSearch(named name: String) throws(EngineError) {
    guard ps_set_search(decoder, name) == 0 else {
      throw EngineError(.internalFailure, "PocketSphinx has no search named \(name)")
    }
  }

  /// Forgets the search `name` (not the one in use).
  func removeSearch(named name: String) {
    _ = ps_unset_search(decoder, name)
  }

  // MARK: Decoding

  /// Starts the cepstral mean over from the model's: the next recognition depends on no earlier
  /// one.
  func resetCepstralMean() {
    initialCepstralMean.withUnsafeBufferPointer { mean in
      cmn_live_set(ps_get_feat(decoder).pointee.cmn_struct, mean.baseAddress)
    }
  }

  /// Starts an utterance whose frames count from 0.
  func startUtterance() throws(EngineError) {
    guard ps_start_stream(decoder) >= 0, ps_start_utt(decoder) >= 0 else {
      throw EngineError(.internalFailure, "PocketSphinx could not start an utterance")
    }
  }

  /// Decodes the next samples (16 kHz) of the utterance, the cepstral mean estimated as they come.
  func process(_ samples: UnsafeBufferPointer<Int16>) throws(EngineError) {
    guard !samples.isEmpty else { return }
    guard ps_process_raw(decoder, samples.baseAddress, samples.count, 0, 0) >= 0 else {
      throw EngineError(.internalFailure, "PocketSphinx failed to decode audio")
    }
  }

  /// Ends the utterance: the hypothesis, segments and lattice are final.
  func endUtterance() throws(EngineError) {
    guard ps_end_utt(decoder) >= 0 else {
      throw EngineError(.internalFailure, "PocketSphinx failed to end an utterance")
    }
  }

  /// Decodes a whole utterance at once, normalized by its own cepstral mean (batch CMN), which
  /// then becomes the starting mean of the utterances decoded as they come.
  func decodeWholeUtterance(_ samples: UnsafeBufferPointer<Int16>) throws(EngineError) {
    let feat = ps_get_feat(decoder)!
    feat.pointee.cmn = CMN_BATCH
    defer {
      feat.pointee.cmn = CMN_LIVE
      let cmn = feat.pointee.cmn_struct!
      let mean = Array(
        UnsafeBufferPointer(start: cmn.pointee.cmn_mean, count: Int(cmn.pointee.veclen))
      )
      mean.withUnsafeBufferPointer { cmn_live_set(cmn, $0.baseAddress) }
    }
    try startUtterance()
    guard ps_process_raw(decoder, samples.baseAddress, samples.count, 0, 1) >= 0 else {
      _ = ps_end_utt(decoder)
      throw EngineError(.internalFailure, "PocketSphinx failed to decode audio")
    }
    try endUtterance()
  }

  // MARK: Results

  /// The words of the best hypothesis; `withPosteriors` after a dictation utterance (a
  /// grammar's segments have none: see ``latticeLinks(computingPosteriors:)``).
  func segments(withPosteriors: Bool = false) -> [SphinxSegment] {
    var segments: [SphinxSegment] = []
    var iterator = ps_seg_iter(decoder)
    while let segment = iterator {
      segments.append(copy(segment, posteriors: withPosteriors))
      iterator = ps_seg_next(segment)
    }
    return segments
  }

  /// Every link of the utterance's word lattice, with its posterior probability; empty when
  /// there is no lattice.
  ///
  /// A dictation utterance's posteriors are the ones the decoder computed with the language
  /// model for ``segments()`` (call that first); a grammar's are computed here, with
  /// `computingPosteriors`.
  func latticeLinks(computingPosteriors: Bool) -> [SphinxSegment] {
    guard let lattice = ps_get_lattice(decoder) else { return [] }
    if computingPosteriors {
      guard ps_lattice_bestpath(lattice, nil, 1, acousticScale) != nil else { return [] }
      _ = ps_lattice_posterior(lattice, nil, acousticScale)
    }
    var links: [SphinxSegment] = []
    var iterator = ps_lattice_traverse_edges(lattice, nil, nil)
    while let link = iterator {
      var startFrame: Int16 = 0
      let endFrame = ps_latlink_times(link, &startFrame)
      var acousticScore: Int32 = 0
      links.append(
        SphinxSegment(
          word: ps_latlink_word(lattice, link).map { String(cString: $0) },
          startFrame: Int(startFrame),
          endFrame: Int(endFrame),
          posterior: probability(ps_latlink_prob(lattice, link, &acousticScore))
        )
      )
      iterator = ps_lattice_traverse_next(lattice, nil)
    }
    return links
  }

  /// The words of up to `limit` paths through the utterance's lattice, best first; paths may
  /// repeat a text with other fillers or pronunciations.
  func nBest(limit: Int) -> [[SphinxSegment]] {
    var paths: [[SphinxSegment]] = []
    var iterator = ps_nbest(decoder)
    while let nbest = iterator, paths.count < limit {
      var segments: [SphinxSegment] = []
      var segmentIterator = ps_nbest_seg(nbest)
      while let segment = segmentIterator {
        segments.append(copy(segment, posteriors: false))
        segmentIterator = ps_seg_next(segment)
      }
      paths.append(segments)
      iterator = ps_nbest_next(nbest)
    }
    if let nbest = iterator { ps_nbest_free(nbest) }
    return paths
  }

  /// `logValue` (in the decoder's log base) as a probability, 0 … 1.
  func probability(_ logValue: Int32) -> Double {
    min(max(logmath_exp(logmath, logValue), 0), 1)
  }

  private func copy(_ segment: OpaquePointer, posteriors: Bool) -> SphinxSegment {
    var startFrame: Int32 = 0
    var endFrame: Int32 = 0
    ps_seg_frames(segment, &startFrame, &endFrame)
    var posterior: Double?
    if posteriors {
      var acoustic: Int32 = 0
      var language: Int32 = 0
      var backoff: Int32 = 0
      posterior = probability(ps_seg_prob(segment, &acoustic, &language, &backoff))
    }
    return SphinxSegment(
      word: ps_seg_word(segment).map { String(cString: $0) },
      startFrame: Int(startFrame),
      endFrame: Int(endFrame),
      posterior: posterior
    )
  }
}
