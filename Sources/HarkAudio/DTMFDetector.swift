#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Finds DTMF key presses in 16-bit audio at 8000 or 16000 Hz, as it streams.
///
/// Feed samples in chunks of any size to ``process(_:)`` and call ``finish()`` at the end of the
/// stream. Each key press is reported once: ``DTMFEvent/began(_:startSample:)`` as soon as its
/// tone has lasted ``minimumToneMilliseconds``, and ``DTMFEvent/ended(_:startSample:endSample:)``
/// when it stops. Sample offsets count from the start of the stream.
///
/// The detector runs the Goertzel algorithm for the 8 DTMF frequencies over blocks of
/// ``blockMilliseconds`` (80 samples at 8 kHz, 160 at 16 kHz): a block's frequency resolution is
/// 100 Hz, enough to tell the closest DTMF frequencies (697 and 770 Hz) apart by 9.6 dB, and
/// short enough to time tones and the gaps between them. A block counts as a *hit* of a key when
/// all of these hold, which is what keeps speech, music and noise from counting:
///
/// - the strongest row and strongest column tone each have at least -36 dBFS (the sine level
///   that would give the measured power over a whole block);
/// - the *twist*, column level minus row level, is within -8 … +4 dB;
/// - the two tones carry at least 70% of the block's energy, so a signal with energy elsewhere
///   (speech, music, noise, other tones) fails;
/// - every other row is at least 3 dB below the strongest row, and every other column at least
///   3 dB below the strongest column, so a tone between two DTMF frequencies fails.
///
/// A tone spans a run of hit blocks of one key. Its start and end are placed within the blocks
/// at its edges from the power it has there: a sine that covers a fraction of a block has that
/// fraction of its full amplitude, so edges are found to about a millisecond, not a block. A
/// dropout of up to 2 blocks (20 ms) inside a tone is bridged; 3 blocks without a hit, or a
/// hit of another key, end it, so a gap of 30 ms or more separates two presses of one key. A
/// tone counts when it has lasted 35 ms: every tone of 40 ms (the shortest that ITU-T Q.24
/// requires detecting) is reported, and no tone of 30 ms is.
///
/// ```
///              hit of k
///      idle ───────────────▶ tone k, unreported ──── lasted 35 ms ───▶ tone k, reported
///       ▲                      │                                           │
///       │                      │ 3 blocks without a hit, a hit of        │ 3 blocks without
///       │                      │ another key, or finish():               │ a hit, a hit of
///       │                      │ began + ended if it lasted 35 ms,       │ another key, or
///       │                      │ else nothing                            │ finish(): ended
///       └──────────────────────┴───────────────────────────────────────────┘
/// ```
///
/// A hit of another key ends the current tone and starts a tone of that key in the same block.
public struct DTMFDetector: Sendable {
  /// The length of a Goertzel block, in milliseconds.
  public static let blockMilliseconds = 10
  /// The shortest tone that counts as a key press, in milliseconds.
  public static let minimumToneMilliseconds = 35
  /// The lowest level of each tone, in dBFS.
  public static let minimumLevel: Double = -36
  /// The most that the column tone may be louder than the row tone, in dB (forward twist).
  public static let maximumForwardTwist: Double = 4
  /// The most that the row tone may be louder than the column tone, in dB (reverse twist).
  public static let maximumReverseTwist: Double = 8

  /// The least share of a block's energy that the two tones of a hit carry.
  private static let minimumToneEnergyShare: Float = 0.8
  /// The least ratio of the strongest row's power to every other row's, and the same for
  /// columns: 3 dB.
  private static let minimumRelativePeak: Float = 2
  /// The least power of a block inside a tone, relative to the tone's highest: 2 dB below.
  private static let minimumSteadyPowerShare: Float = 0.5
  /// The most consecutive blocks without a hit that a tone bridges.
  private static let maximumDropoutBlocks = 2

  /// Samples a second, in hertz: 8000 or 16000.
  public let sampleRate: Int
  /// Samples in a block.
  private let blockSize: Int
  /// The Goertzel coefficients 2 cos(2πf/fs): the 4 rows, then the 4 columns.
  private let coefficients: SIMD8<Float>
  /// The power |X|² that a tone at ``minimumLevel`` has over a block.
  private let minimumPower: Float
  private let forwardTwist: Float
  private let reverseTwist: Float
  private let minimumToneSamples: Int

  /// The Goertzel state of the current block: s[n-1] and s[n-2] for each frequency.
  private var s1 = SIMD8<Float>()
  private var s2 = SIMD8<Float>()
  /// The sum of the squares of the current block's samples.
  private var energy: Float = 0
  /// Samples in the current block so far.
  private var blockFill = 0
  /// The offset of the current block's first sample in the stream.
  private var blockStart = 0
  /// The powers of the block before the current one.
  private var previousPowers = SIMD8<Float>()
  /// The tone sounding, if any.
  private var tone: Tone?

  /// A detector for a stream at `sampleRate` hertz, 8000 or 16000.
  public init(sampleRate: Int) {
    precondition(sampleRate == 8000 || sampleRate == 16000, "DTMF at \(sampleRate) Hz")
    self.sampleRate = sampleRate
    blockSize = sampleRate * Self.blockMilliseconds / 1000
    let frequencies = DTMFSymbol.rowFrequencies + DTMFSymbol.columnFrequencies
    coefficients = SIMD8(
      frequencies.map { Float(2 * cos(2 * Double.pi * $0 / Double(sampleRate))) }
    )
    // A sine of peak A has |X| = A·N/2 at its own frequency over N samples.
    let minimumPeak = Double(Int16.max) * pow(10, Self.minimumLevel / 20)
    minimumPower = Float(minimumPeak * Double(blockSize) / 2 * minimumPeak * Double(blockSize) / 2)
    forwardTwist = Float(pow(10, Self.maximumForwardTwist / 10))
    reverseTwist = Float(pow(10, Self.maximumReverseTwist / 10))
    minimumToneSamples = sampleRate * Self.minimumToneMilliseconds / 1000
  }

  /// Analyses `samples`, which follow those given before, and returns what they completed.
  public mutating func process(_ samples: UnsafeBufferPointer<Int16>) -> [DTMFEvent] {
    var events: [DTMFEvent] = []
    var index = 0
    while index < samples.count {
      let count = min(blockSize - blockFill, samples.count - index)
      accumulate(UnsafeBufferPointer(rebasing: samples[index..<(index + count)]))
      index += count
      if blockFill == blockSize { endBlock(into: &events) }
    }
    return events
  }

  /// Ends the stream: reports the end of a tone still sounding, and makes the detector new.
  public mutating func finish() -> [DTMFEvent] {
    var events: [DTMFEvent] = []
    if var tone {
      // The partial last block tells how far into it the tone went.
      if tone.trailPowers == nil { tone.trailPowers = powers() }
      endTone(tone, streamEnd: blockStart + blockFill, into: &events)
    }
    self = DTMFDetector(sampleRate: sampleRate)
    return events
  }

  private mutating func accumulate(_ samples: UnsafeBufferPointer<Int16>) {
    // Locals keep the state in registers for the inner loop.
    var s1 = self.s1
    var s2 = self.s2
    var energy = self.energy
    let coefficients = self.coefficients
    for sample in samples {
      let x = Float(sample)
      let s0 = coefficients * s1 - s2 + x
      s2 = s1
      s1 = s0
      energy += x * x
    }
    self.s1 = s1
    self.s2 = s2
    self.energy = energy
    blockFill += samples.count
  }

  /// |X|² at each frequency for the samples of the current block.
  private func powers() -> SIMD8<Float> {
    s1 * s1 + s2 * s2 - coefficients * s1 * s2
  }

  private mutating func endBlock(into events: inout [DTMFEvent]) {
    let powers = powers()
    if let key = hit(powers) {
      if var tone, tone.row == key.row, tone.column == key.column {
        tone.extend(blockStart: blockStart, powers: powers)
        self.tone = tone
      } else {
        if let tone { endTone(tone, streamEnd: blockStart + blockSize, into: &events) }
        tone = Tone(
          row: key.row,
          column: key.column,
          blockStart: blockStart,
          leadPowers: previousPowers,
          powers: powers
        )
      }
    } else if var tone {
      tone.misses += 1
      if tone.misses == 1 { tone.trailPowers = powers }
      // Dropouts are bridged only in a tone that counted: until then, its hits must not break.
      if tone.reportedStart == nil || tone.misses > Self.maximumDropoutBlocks {
        endTone(tone, streamEnd: blockStart + blockSize, into: &events)
      } else {
        self.tone = tone
      }
    }
    if var tone, tone.reportedStart == nil, tone.misses == 0 {
      let start = tone.start(blockSize: blockSize)
      if tone.end(blockSize: blockSize) - start >= minimumToneSamples,
        tone.isSteady(minimumShare: Self.minimumSteadyPowerShare)
      {
        tone.reportedStart = start
        events.append(.began(tone.symbol, startSample: start))
        self.tone = tone
      }
    }
    previousPowers = powers
    s1 = SIMD8()
    s2 = SIMD8()
    energy = 0
    blockFill = 0
    blockStart += blockSize
  }

  /// The row and column of the key whose tones `powers` hold, if the block is a hit.
  private func hit(_ powers: SIMD8<Float>) -> (row: Int, column: Int)? {
    var row = 0
    for index in 1..<4 where powers[index] > powers[row] { row = index }
    var column = 4
    for index in 5..<8 where powers[index] > powers[column] { column = index }
    let rowPower = powers[row]
    let columnPower = powers[column]
    guard rowPower >= minimumPower, columnPower >= minimumPower,
      columnPower <= rowPower * forwardTwist, rowPower <= columnPower * reverseTwist,
      // 2|X|²/N is the energy over the block of a sine with that |X|.
      2 * (rowPower + columnPower) / Float(blockSize) >= Self.minimumToneEnergyShare * energy
    else { return nil }
    for index in 0..<8 where index != row && index != column {
      let peak = index < 4 ? rowPower : columnPower
      guard powers[index] * Self.minimumRelativePeak <= peak else { return nil }
    }
    return (row, column - 4)
  }

  /// Reports the end of `tone`, and its beginning if not reported yet and it lasted long enough.
  private mutating func endTone(
    _ tone: Tone,
    streamEnd: Int,
    into events: inout [DTMFEvent]
  ) {
    self.tone = nil
    let start = tone.reportedStart ?? tone.start(blockSize: blockSize)
    let end = min(tone.end(blockSize: blockSize), streamEnd)
    if tone.reportedStart == nil {
      guard end - start >= minimumToneSamples,
        tone.isSteady(minimumShare: Self.minimumSteadyPowerShare)
      else { return }
      events.append(.began(tone.symbol, startSample: start))
    }
    events.append(.ended(tone.symbol, startSample: start, endSample: end))
  }
}

extension DTMFDetector {
  /// A run of hit blocks of one key, and the powers at its edges that place its start and end.
  private struct Tone: Sendable {
    /// The row lane, `0..<4`.
    let row: Int
    /// The column, `0..<4`; its lane is `4 + column`.
    let column: Int
    /// The offset of the first hit block.
    let firstBlockStart: Int
    /// The powers of the block before the first hit.
    let leadPowers: SIMD8<Float>
    /// The powers of the first hit block.
    let firstPowers: SIMD8<Float>
    /// The offset of the last hit block.
    var lastBlockStart: Int
    /// The powers of the last hit block.
    var lastPowers: SIMD8<Float>
    /// The powers of the block after the last hit, once there is one.
    var trailPowers: SIMD8<Float>?
    /// The largest power of a hit block, at the row and at the column: the power of the tone
    /// over a whole block.
    var fullPowers: (row: Float, column: Float)
    /// The least power, at the row and at the column, of the hit blocks before the tone counted
    /// that have a hit block on both sides: the tone covers them whole.
    var innerMinimumPowers: (row: Float, column: Float) = (.infinity, .infinity)
    /// Blocks without a hit since the last hit.
    var misses = 0
    /// The start reported with `began`, once reported.
    var reportedStart: Int?

    init(row: Int, column: Int, blockStart: Int, leadPowers: SIMD8<Float>, powers: SIMD8<Float>) {
      self.row = row
      self.column = column
      firstBlockStart = blockStart
      self.leadPowers = leadPowers
      firstPowers = powers
      lastBlockStart = blockStart
      lastPowers = powers
      fullPowers = (powers[row], powers[4 + column])
    }

    var symbol: DTMFSymbol { DTMFSymbol(row: row, column: column) }

    mutating func extend(blockStart: Int, powers: SIMD8<Float>) {
      if reportedStart == nil, lastBlockStart != firstBlockStart {
        innerMinimumPowers = (
          min(innerMinimumPowers.row, lastPowers[row]),
          min(innerMinimumPowers.column, lastPowers[4 + column])
        )
      }
      lastBlockStart = blockStart
      lastPowers = powers
      trailPowers = nil
      misses = 0
      fullPowers = (max(fullPowers.row, powers[row]), max(fullPowers.column, powers[4 + column]))
    }

    /// Whether the tone kept its level through its inner blocks.
    ///
    /// A key's tones are steady, while speech that passes for them for a few blocks swells and
    /// fades: its level moves by several dB from one 10 ms block to the next.
    func isSteady(minimumShare: Float) -> Bool {
      innerMinimumPowers.row >= minimumShare * fullPowers.row
        && innerMinimumPowers.column >= minimumShare * fullPowers.column
    }

    /// The share of a block that the tone covers, from the block's powers.
    ///
    /// A sine over a fraction f of a block has f times its full amplitude there, so f is the
    /// square root of the power ratio. The lesser of the row's and the column's share is the
    /// tone's: a neighbouring key that shares a row or a column leaves the other one clear.
    func coverage(_ powers: SIMD8<Float>) -> Float {
      let rowShare = (powers[row] / fullPowers.row).squareRoot()
      let columnShare = (powers[4 + column] / fullPowers.column).squareRoot()
      return min(1, rowShare, columnShare)
    }

    /// The first sample: the tone covers the end of the block before its first hit, or the
    /// end of the first hit block.
    func start(blockSize: Int) -> Int {
      let covered = coverage(leadPowers) + coverage(firstPowers)
      return firstBlockStart + blockSize - Int((covered * Float(blockSize)).rounded())
    }

    /// The sample after the last: the tone covers the start of its last hit block, or the
    /// whole of it and the start of the next.
    func end(blockSize: Int) -> Int {
      let covered = coverage(lastPowers) + (trailPowers.map(coverage) ?? 0)
      return lastBlockStart + Int((covered * Float(blockSize)).rounded())
    }
  }
}
