/// Finds utterances in audio by its energy: where speech starts, where it ends, and what the
/// speech looked like.
///
/// Audio is cut into 10 ms frames. A frame is speech when its energy rises far enough above an
/// estimate of the background noise, and above an absolute floor; both margins shrink as the
/// sensitivity grows (1 takes nearly any sound as speech, 0 only loud speech). An utterance
/// starts after three speech frames in a row — its onset is the first of them — and ends after
/// `endSilence` of frames that are not speech. Every position is a sample count from the start
/// of the stream, so the result does not depend on how fast the audio arrives.
///
/// Shared by every engine: endpointing and the timers that hang on it are the server's, not the
/// recognizer's.
public struct Endpointer: Sendable {
  /// How the endpointer decides.
  public struct Configuration: Sendable, Hashable {
    /// Samples per second of the audio.
    public var sampleRate: Int
    /// Non-speech that ends an utterance, in samples.
    public var endSilenceSamples: Int
    /// 0 … 1: how readily sound counts as speech.
    public var sensitivity: Float

    /// A configuration for `sampleRate` with `endSilenceMilliseconds` of end silence.
    public init(sampleRate: Int, endSilenceMilliseconds: Int, sensitivity: Float) {
      self.sampleRate = sampleRate
      self.endSilenceSamples = sampleRate * endSilenceMilliseconds / 1000
      self.sensitivity = min(max(sensitivity, 0), 1)
    }
  }

  /// What a frame changed.
  public enum Event: Sendable, Hashable {
    /// An utterance started; `onset` is the first sample of its first speech frame.
    case speechStarted(onset: Int)
    /// The utterance ended; `end` is one past its last speech sample.
    case speechEnded(end: Int)
  }

  /// Energy figures of the current (or last) utterance, for `UtteranceInfo.dsp`.
  public struct UtteranceStatistics: Sendable, Hashable {
    /// Energy of the first speech frame, dB relative to full scale.
    public var initialEnergy: Float = 0
    /// Energy of the last speech frame, dBFS.
    public var finalEnergy: Float = 0
    /// Mean energy of the speech frames, dBFS.
    public var meanEnergy: Float = 0
    /// Mean speech energy above the noise estimate, dB.
    public var snrEstimate: Float = 0
    /// The noise estimate when the utterance started, dBFS.
    public var noiseLevel: Float = 0
    /// Samples clipped at full scale during the utterance.
    public var clippedSamples = 0
  }

  public let configuration: Configuration
  /// Samples per frame (10 ms).
  public let frameLength: Int

  /// Samples of the whole frames classified so far: where the frame being filled starts.
  public private(set) var position = 0
  /// Whether an utterance is under way.
  public private(set) var inSpeech = false
  /// The onset of the current or last utterance.
  public private(set) var utteranceOnset = 0
  /// One past the last speech sample of the current or last utterance.
  public private(set) var lastSpeechEnd = 0
  /// Energy figures of the current or last utterance.
  public private(set) var statistics = UtteranceStatistics()

  // Frame assembly.
  private var frameEnergy: Double = 0
  private var frameFill = 0
  private var frameClipped = 0
  // Speech decision.
  private var noiseFloor: Float = -60
  private var speechRun = 0
  private var speechRunStart = 0
  private var silenceRun = 0
  private var energySum: Double = 0
  private var speechFrames = 0
  private var pendingStatistics = UtteranceStatistics()

  /// Every sample fed so far, those of the frame still being filled included: where the next
  /// samples start in the stream. (``position`` counts whole frames only, so it lags this by up
  /// to a frame when messages are not a whole number of 10 ms.)
  public var samplesSeen: Int { position + frameFill }

  /// Consecutive speech frames that start an utterance.
  static let onsetFrames = 3

  /// An endpointer with `configuration`.
  public init(configuration: Configuration) {
    self.configuration = configuration
    self.frameLength = max(configuration.sampleRate / 100, 1)
  }

  /// The energy margin above the noise floor a speech frame needs, dB.
  var marginOverNoise: Float { 4 + (1 - configuration.sensitivity) * 16 }
  /// The absolute energy a speech frame needs, dBFS.
  var absoluteFloor: Float { -62 + (1 - configuration.sensitivity) * 24 }

  /// Feeds samples; `onFrame` is called after each whole frame with the events it caused, so a
  /// caller can check its timers frame by frame.
  public mutating func process(
    _ samples: UnsafeBufferPointer<Int16>,
    onFrame: (inout Endpointer, Event?) -> Void
  ) {
    var index = 0
    while index < samples.count {
      let step = feedFrame(UnsafeBufferPointer(rebasing: samples[index...]))
      index += step.taken
      if step.completed { onFrame(&self, step.event) }
    }
  }

  /// Feeds samples up to the end of the current frame: how many it took, whether they completed
  /// the frame, and that frame's event. For a caller that checks its timers frame by frame
  /// without a closure (and so can keep the endpointer inside a larger value it changes).
  public mutating func feedFrame(
    _ samples: UnsafeBufferPointer<Int16>
  ) -> (taken: Int, completed: Bool, event: Event?) {
    let count = min(frameLength - frameFill, samples.count)
    let (squares, clipped) = Self.squaresAndClipped(
      UnsafeBufferPointer(rebasing: samples[samples.startIndex..<samples.startIndex + count])
    )
    frameEnergy += Double(squares)
    frameClipped += clipped
    frameFill += count
    guard frameFill == frameLength else { return (count, false, nil) }
    return (count, true, finishFrame())
  }

  /// The sum of the squares of `samples` (exact: a frame of full-scale samples needs under
  /// 2^40) and how many are clipped (at `Int16.max` or `Int16.min`), eight samples at a time.
  @inline(__always)
  static func squaresAndClipped(_ samples: UnsafeBufferPointer<Int16>) -> (Int64, Int) {
    guard let base = samples.baseAddress else { return (0, 0) }
    let count = samples.count
    // Each square fits an Int32 (at most 2^30) and a pair of them a UInt32 (at most 2^31); the
    // pairs add up in 64-bit lanes. Clipped samples count in 16-bit lanes, at most one per
    // lane per step: a frame is far shorter than 2^15 steps.
    var sums = SIMD4<UInt64>()
    var clips = SIMD8<Int16>()
    var index = 0
    while index &+ 8 <= count {
      let wide = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD8<Int16>.self)
      let values = SIMD8<Int32>(truncatingIfNeeded: wide)
      let squares = SIMD8<UInt32>(truncatingIfNeeded: values &* values)
      sums &+= SIMD4<UInt64>(truncatingIfNeeded: squares.evenHalf &+ squares.oddHalf)
      // Lane arithmetic rather than `.==`, which compiles to a loop over the lanes: folding a
      // negative sample onto its complement gives 0x7FFF for exactly the two clipped values,
      // and 0x7FFF + 1 is the only sum that wraps negative (its shifted sign is -1).
      let folded = wide ^ (wide &>> 15)
      clips &-= (folded &+ 1) &>> 15
      index &+= 8
    }
    var squares = Int64(bitPattern: sums.wrappedSum())
    var clipped = Int(clips.wrappedSum())
    while index < count {
      let value = Int64(base[index])
      squares &+= value &* value
      if base[index] == .max || base[index] == .min { clipped += 1 }
      index &+= 1
    }
    return (squares, clipped)
  }

  /// Classifies the frame just completed and updates the utterance state.
  private mutating func finishFrame() -> Event? {
    let frameStart = position
    position += frameLength
    let meanSquare = frameEnergy / Double(frameLength)
    let energy = Float(10 * log10(max(meanSquare, 1) / (32768.0 * 32768.0)))
    let clipped = frameClipped
    frameEnergy = 0
    frameFill = 0
    frameClipped = 0

    let isSpeech = energy > noiseFloor + marginOverNoise && energy > absoluteFloor
    if !isSpeech {
      // Track the noise floor: fall fast toward quieter frames, rise slowly toward louder ones.
      noiseFloor += energy < noiseFloor ? (energy - noiseFloor) * 0.5 : (energy - noiseFloor) * 0.02
    }

    if inSpeech {
      if isSpeech {
        silenceRun = 0
        lastSpeechEnd = position
        accumulate(energy: energy, clipped: clipped)
        statistics = pendingStatistics
        return nil
      }
      silenceRun += frameLength
      if silenceRun >= max(configuration.endSilenceSamples, frameLength) {
        inSpeech = false
        speechRun = 0
        return .speechEnded(end: lastSpeechEnd)
      }
      return nil
    }

    guard isSpeech else {
      speechRun = 0
      return nil
    }
    if speechRun == 0 {
      speechRunStart = frameStart
      pendingStatistics = UtteranceStatistics()
      pendingStatistics.initialEnergy = energy
      pendingStatistics.noiseLevel = noiseFloor
      energySum = 0
      speechFrames = 0
    }
    speechRun += 1
    accumulate(energy: energy, clipped: clipped)
    guard speechRun >= Self.onsetFrames else { return nil }
    inSpeech = true
    silenceRun = 0
    utteranceOnset = speechRunStart
    lastSpeechEnd = position
    statistics = pendingStatistics
    return .speechStarted(onset: speechRunStart)
  }

  private mutating func accumulate(energy: Float, clipped: Int) {
    energySum += Double(energy)
    speechFrames += 1
    pendingStatistics.finalEnergy = energy
    pendingStatistics.meanEnergy = Float(energySum / Double(speechFrames))
    pendingStatistics.snrEstimate = pendingStatistics.meanEnergy - pendingStatistics.noiseLevel
    pendingStatistics.clippedSamples += clipped
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
