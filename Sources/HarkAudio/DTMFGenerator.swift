#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Synthesizes 16-bit audio of DTMF tones, silences and other tones, with optional white noise.
///
/// Levels are in dBFS, where 0 dBFS is the power of a full-scale sine: a tone at -10 dBFS has a
/// peak of 10362, and noise at -30 dBFS has the power of a sine at -30 dBFS. The output is the
/// same for the same segments, noise level and seed, so tests, sample files and load tests can
/// rely on it. Every segment starts its tones at phase zero; sums beyond full scale clip.
public struct DTMFGenerator: Sendable {
  /// A sine wave: its frequency and level.
  public struct Tone: Hashable, Sendable {
    /// Cycles a second, in hertz.
    public var frequency: Double
    /// The level, in dBFS: 0 is a sine whose peak is full scale.
    public var level: Double

    /// A sine of `frequency` hertz at `level` dBFS.
    public init(frequency: Double, level: Double) {
      self.frequency = frequency
      self.level = level
    }
  }

  /// A stretch of audio: tones sounding together for a duration, or silence.
  public struct Segment: Hashable, Sendable {
    /// The tones, summed; none for silence.
    public var tones: [Tone]
    /// How long the segment lasts, in milliseconds.
    public var milliseconds: Int

    /// A segment of `tones` sounding together for `milliseconds`.
    public init(tones: [Tone], milliseconds: Int) {
      precondition(milliseconds >= 0, "a segment cannot last \(milliseconds) ms")
      self.tones = tones
      self.milliseconds = milliseconds
    }

    /// The key `symbol` for `milliseconds`, each tone at `level` dBFS, and the column tone
    /// `twist` dB above the row tone (below, when negative).
    public static func dtmf(
      _ symbol: DTMFSymbol,
      milliseconds: Int,
      level: Double = -10,
      twist: Double = 0
    ) -> Segment {
      Segment(
        tones: [
          Tone(frequency: symbol.rowFrequency, level: level),
          Tone(frequency: symbol.columnFrequency, level: level + twist),
        ],
        milliseconds: milliseconds
      )
    }

    /// Silence for `milliseconds`; noise, if the generator adds it, still sounds.
    public static func silence(milliseconds: Int) -> Segment {
      Segment(tones: [], milliseconds: milliseconds)
    }
  }

  /// Samples a second, in hertz.
  public let sampleRate: Int
  /// The level of the white Gaussian noise added to everything, in dBFS; nil for none.
  public var noiseLevel: Double?
  private var random: SplitMix64
  /// The second normal deviate of the last Box–Muller pair, not used yet.
  private var spareDeviate: Double?

  /// A generator at `sampleRate` hertz that adds noise at `noiseLevel` dBFS (nil: none), drawn
  /// from a generator seeded with `seed`.
  public init(sampleRate: Int, noiseLevel: Double? = nil, seed: UInt64 = 0) {
    precondition(sampleRate > 0, "sample rate \(sampleRate) is not positive")
    self.sampleRate = sampleRate
    self.noiseLevel = noiseLevel
    self.random = SplitMix64(seed: seed)
  }

  /// The segments of `symbols` pressed in turn: each tone for `toneMilliseconds`, with
  /// `gapMilliseconds` of silence after each, at `level` dBFS per tone.
  public static func segments(
    _ symbols: [DTMFSymbol],
    toneMilliseconds: Int = 100,
    gapMilliseconds: Int = 100,
    level: Double = -10
  ) -> [Segment] {
    symbols.flatMap { symbol in
      [
        .dtmf(symbol, milliseconds: toneMilliseconds, level: level),
        .silence(milliseconds: gapMilliseconds),
      ]
    }
  }

  /// The audio of `segments`, one after another.
  public mutating func generate(_ segments: [Segment]) -> [Int16] {
    var samples: [Int16] = []
    generate(segments, into: &samples)
    return samples
  }

  /// Appends the audio of `segments`, one after another, to `samples`.
  public mutating func generate(_ segments: [Segment], into samples: inout [Int16]) {
    let noiseDeviation = noiseLevel.map { Self.peak(level: $0) / 2.0.squareRoot() }
    for segment in segments {
      let count = segment.milliseconds * sampleRate / 1000
      let tones = segment.tones.map { tone in
        (
          step: 2 * Double.pi * tone.frequency / Double(sampleRate),
          peak: Self.peak(level: tone.level)
        )
      }
      for index in 0..<count {
        var value = 0.0
        for tone in tones { value += tone.peak * sin(tone.step * Double(index)) }
        if let noiseDeviation { value += noiseDeviation * nextNormalDeviate() }
        samples.append(Int16(clamping: Int(value.rounded())))
      }
    }
  }

  /// The peak of a sine at `level` dBFS.
  static func peak(level: Double) -> Double {
    Double(Int16.max) * pow(10, level / 20)
  }

  /// A draw from the standard normal distribution, by the Box–Muller transform.
  private mutating func nextNormalDeviate() -> Double {
    if let spare = spareDeviate {
      spareDeviate = nil
      return spare
    }
    // 1 - u is in (0, 1], so its logarithm is finite.
    let radius = (-2 * log(1 - random.nextUnitInterval())).squareRoot()
    let angle = 2 * Double.pi * random.nextUnitInterval()
    spareDeviate = radius * sin(angle)
    return radius * cos(angle)
  }
}
