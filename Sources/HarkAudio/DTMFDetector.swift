internal import CHarkAudioKernels

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
/// when it stops, with the same start. Sample offsets count from the start of the stream.
///
/// The detector runs the Goertzel algorithm for the 8 DTMF frequencies over blocks of
/// ``blockMilliseconds`` (80 samples at 8 kHz, 160 at 16 kHz). A block's resolution, 100 Hz, is
/// the compromise DTMF asks for: fine enough to tell the closest frequencies (697 and 770 Hz)
/// apart, by 9.6 dB, yet wide enough to accept a key whose frequencies are 1.5% off, and short
/// enough for a 40 ms tone to fill 3 blocks whatever its alignment. A block is a *hit* of a key
/// when all of these hold, which is what keeps noise, music and most speech out:
///
/// - the strongest row tone and the strongest column tone each reach ``minimumLevel``, -36 dBFS
///   (the level of a sine with the measured power over a whole block);
/// - the *twist*, column level minus row level, is within -8 … +4 dB;
/// - the two tones carry at least 80% of the block's energy: signals with energy elsewhere
///   (speech, music, noise, other tones) fail, and so do keys more than about 2.5% off;
/// - every other row is at least 3 dB below the strongest row, and every other column at least
///   3 dB below the strongest column, so a tone between two DTMF frequencies fails.
///
/// A tone is a run of hit blocks of one key. Its start and end are placed inside the blocks at
/// its edges from the power it has there: a sine that covers a fraction of a block has that
/// fraction of its full amplitude, so edges are found to about 2 ms, not to a block. A tone
/// counts when it has lasted 35 ms with at least 3 hit blocks in a row, and its inner blocks
/// (between two hits) are within 3 dB of its loudest: a key's tones are steady, while speech
/// that passes for them for a few blocks swells and fades. So every tone of 40 ms (the
/// shortest that ITU-T Q.24 requires detecting) counts, and no tone of 33 ms does.
///
/// Once a tone counts, a dropout of up to 2 blocks (20 ms) inside it is bridged; 3 blocks
/// without a hit, or a hit of another key, end it. So a gap of 30 ms or more always separates
/// two presses of one key.
///
/// ```
///              hit of k
///      idle ───────────────▶ tone k, unreported ── 35 ms, steady ──▶ tone k, reported
///       ▲                      │                                         │
///       │                      │ a block without a hit, a hit of       │ 3 blocks without
///       │                      │ another key, or finish():             │ a hit, a hit of
///       │                      │ began + ended if it counts by then,   │ another key, or
///       │                      │ else nothing                          │ finish(): ended
///       └──────────────────────┴─────────────────────────────────────────┘
/// ```
///
/// A hit of another key ends the current tone and starts a tone of that key in the same block.
/// The cost is that of the Goertzel filters: 8 multiply-adds a sample, done as 8-lane SIMD
/// operations two samples at a time, and a few comparisons every block.
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
  ///
  /// A key in white noise 10 dB below each tone gives about 0.95; 1.5% off frequency, about
  /// 0.89 (less in blocks where the two tones' side lobes beat against each other). Synthesized
  /// speech reached 0.78 in blocks that passed the other checks, with rare vowels above 0.9.
  private static let minimumToneEnergyShare: Float = 0.8
  /// The least ratio of the strongest row's power to every other row's, and the same for
  /// columns: 3 dB. A row 1.5% off still leads its neighbour by 6 dB.
  private static let minimumRelativePeak: Float = 2
  /// The least power of an inner block of a tone, relative to its loudest block: 3 dB below.
  ///
  /// The side lobes of the other tone make a steady tone's power vary by about ±1 dB from
  /// block to block.
  private static let minimumSteadyPowerShare: Float = 0.5
  /// The most consecutive blocks without a hit that a tone that counts bridges.
  private static let maximumDropoutBlocks = 2

  /// Samples a second, in hertz: 8000 or 16000.
  public let sampleRate: Int
  /// Samples in a block.
  private let blockSize: Int
  /// The Goertzel coefficients 2 cos(2πf/fs): the 4 rows, then the 4 columns.
  private let coefficients: SIMD8<Float>
  /// c² − 1 for each coefficient c, for two steps of the recurrence at once.
  private let twoStepCoefficients: SIMD8<Float>
  /// The power |X|² that a tone at ``minimumLevel`` has over a block.
  private let minimumPower: Float
  private let forwardTwist: Float
  private let reverseTwist: Float
  private let minimumToneSamples: Int
  /// Whether the recurrences run in AVX registers (`hark_goertzel_avx`).
  private let usesAVX: Bool

  /// The Goertzel state of the current block: s[n-1] and s[n-2] for each frequency.
  private var s1 = SIMD8<Float>()
  private var s2 = SIMD8<Float>()
  /// The sum of the squares of the current block's samples.
  private var energy: Float = 0
  /// Samples in the current block so far.
  private var blockFill = 0
  /// The offset of the current block's first sample in the stream.
  private var blockStart = 0
  /// The powers of the last blocks before the current one, the nearest first.
  private var recentPowers = RecentPowers()
  /// The tone sounding, if any.
  private var tone: Tone?

  /// A detector for a stream at `sampleRate` hertz, 8000 or 16000.
  public init(sampleRate: Int) {
    self.init(sampleRate: sampleRate, usesAVX: Self.avxAvailable)
  }

  /// A detector that runs its recurrences in AVX registers or not (tests compare the two).
  init(sampleRate: Int, usesAVX: Bool) {
    precondition(sampleRate == 8000 || sampleRate == 16000, "DTMF at \(sampleRate) Hz")
    self.sampleRate = sampleRate
    self.usesAVX = usesAVX && Self.avxAvailable
    blockSize = sampleRate * Self.blockMilliseconds / 1000
    let frequencies = DTMFSymbol.rowFrequencies + DTMFSymbol.columnFrequencies
    coefficients = SIMD8(
      frequencies.map { Float(2 * cos(2 * Double.pi * $0 / Double(sampleRate))) }
    )
    twoStepCoefficients = SIMD8(
      frequencies.map {
        let c = 2 * cos(2 * Double.pi * $0 / Double(sampleRate))
        return Float(c * c - 1)
      }
    )
    // A sine of peak A has |X| = A·N/2 at its own frequency over N samples.
    let minimumPeak = DTMFGenerator.peak(level: Self.minimumLevel)
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
      if usesAVX, blockFill == 0, samples.count - index >= 2 * blockSize,
        let base = samples.baseAddress
      {
        // Two whole blocks (a 20 ms message of 10 ms blocks): their recurrences run side by side.
        twoBlocksAVX(base + index, into: &events)
        index += 2 * blockSize
        continue
      }
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
    if tone != nil {
      // The partial last block tells how far into it the tone went.
      tone!.trailPowers.append(powers())
      endTone(streamEnd: blockStart + blockFill, into: &events)
    }
    self = DTMFDetector(sampleRate: sampleRate, usesAVX: usesAVX)
    return events
  }

  private mutating func accumulate(_ samples: UnsafeBufferPointer<Int16>) {
    if usesAVX, let base = samples.baseAddress {
      accumulateAVX(base, count: samples.count)
      return
    }
    // Locals keep the state in registers for the inner loop.
    var s1 = self.s1
    var s2 = self.s2
    var energy = self.energy
    let c = coefficients
    let c2 = twoStepCoefficients
    // The recurrence s[n] = c·s[n-1] − s[n-2] + x[n] is bound by the latency of its chain of
    // multiply-adds, not by arithmetic. Two steps at once, from the same s[n-1] and s[n-2]:
    //   s[n]   = c·s[n-1] − s[n-2] + x[n]
    //   s[n+1] = (c² − 1)·s[n-1] − c·s[n-2] + c·x[n] + x[n+1]
    // halve that chain; the terms of the samples are off it.
    var index = samples.startIndex
    let pairsEnd = samples.startIndex + (samples.count & ~1)
    while index < pairsEnd {
      let x0 = Float(samples[index])
      let x1 = Float(samples[index + 1])
      let next = c * s1 + (SIMD8(repeating: x0) - s2)
      let afterNext = c2 * s1 + ((c * x0 + x1) - c * s2)
      s2 = next
      s1 = afterNext
      energy += x0 * x0 + x1 * x1
      index += 2
    }
    if index < samples.endIndex {
      let x = Float(samples[index])
      let s0 = c * s1 + (SIMD8(repeating: x) - s2)
      s2 = s1
      s1 = s0
      energy += x * x
    }
    self.s1 = s1
    self.s2 = s2
    self.energy = energy
    blockFill += samples.count
  }

  /// Whether `hark_goertzel_avx` runs on this machine: the same recurrences in one AVX register
  /// rather than two SSE halves, bit for bit.
  static let avxAvailable = hark_goertzel_avx_available()

  /// The Goertzel state of the block so far, for tests.
  var goertzelState: (s1: SIMD8<Float>, s2: SIMD8<Float>, energy: Float) { (s1, s2, energy) }

  private mutating func accumulateAVX(_ samples: UnsafePointer<Int16>, count: Int) {
    withUnsafePointer(to: coefficients) { c in
      withUnsafePointer(to: twoStepCoefficients) { c2 in
        withUnsafeMutablePointer(to: &s1) { s1 in
          withUnsafeMutablePointer(to: &s2) { s2 in
            hark_goertzel_avx(
              samples,
              count,
              UnsafeRawPointer(c).assumingMemoryBound(to: Float.self),
              UnsafeRawPointer(c2).assumingMemoryBound(to: Float.self),
              UnsafeMutableRawPointer(s1).assumingMemoryBound(to: Float.self),
              UnsafeMutableRawPointer(s2).assumingMemoryBound(to: Float.self),
              &energy
            )
          }
        }
      }
    }
    blockFill += count
  }

  /// Two whole blocks from `samples` (the detector at a block's start), each ended in turn with
  /// the state `hark_goertzel_avx` would have left.
  private mutating func twoBlocksAVX(
    _ samples: UnsafePointer<Int16>,
    into events: inout [DTMFEvent]
  ) {
    // s1, s2 and the energy of each block, as 17 floats.
    var states = (SIMD16<Float>(), SIMD16<Float>(), SIMD4<Float>())
    withUnsafeMutableBytes(of: &states) { raw in
      let floats = raw.baseAddress!.assumingMemoryBound(to: Float.self)
      withUnsafePointer(to: coefficients) { c in
        withUnsafePointer(to: twoStepCoefficients) { c2 in
          hark_goertzel_avx_two_blocks(
            samples,
            samples + blockSize,
            blockSize,
            UnsafeRawPointer(c).assumingMemoryBound(to: Float.self),
            UnsafeRawPointer(c2).assumingMemoryBound(to: Float.self),
            floats
          )
        }
      }
      for block in 0..<2 {
        let state = UnsafeRawPointer(floats + 17 * block)
        s1 = state.loadUnaligned(as: SIMD8<Float>.self)
        s2 = state.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        energy = state.load(fromByteOffset: 64, as: Float.self)
        blockFill = blockSize
        endBlock(into: &events)
      }
    }
  }

  /// |X|² at each frequency for the samples of the current block.
  ///
  /// This and ``hit(_:)`` are `mutating` though they change nothing: called from a mutating
  /// method, a non-mutating method of this large struct gets a copy of all of it (460 bytes,
  /// twice a block).
  private mutating func powers() -> SIMD8<Float> {
    s1 * s1 + s2 * s2 - coefficients * s1 * s2
  }

  private mutating func endBlock(into events: inout [DTMFEvent]) {
    let powers = powers()
    // The tone is changed in place, so that its arrays are not copied.
    if let key = hit(powers) {
      if tone?.row == key.row, tone?.column == key.column {
        tone!.extend(blockStart: blockStart, powers: powers)
      } else {
        if tone != nil {
          // The new key's block may hold the end of the old one's tone.
          tone!.trailPowers.append(powers)
          endTone(streamEnd: blockStart + blockSize, into: &events)
        }
        tone = Tone(
          row: key.row,
          column: key.column,
          blockStart: blockStart,
          leadPowers: recentPowers.newestFirst,
          powers: powers
        )
      }
    } else if tone != nil {
      tone!.trailPowers.append(powers)
      // Dropouts are bridged only in a tone that counted: until then, its hits must not break.
      if tone!.reportedStart == nil || tone!.trailPowers.count > Self.maximumDropoutBlocks {
        endTone(streamEnd: blockStart + blockSize, into: &events)
      }
    }
    if let candidate = tone, candidate.reportedStart == nil, candidate.trailPowers.isEmpty {
      let start = candidate.start(blockSize: blockSize)
      if candidate.end(blockSize: blockSize) - start >= minimumToneSamples,
        candidate.isSteady(minimumShare: Self.minimumSteadyPowerShare)
      {
        tone!.reportedStart = start
        events.append(.began(candidate.symbol, startSample: start))
      }
    }
    recentPowers.push(powers)
    s1 = SIMD8()
    s2 = SIMD8()
    energy = 0
    blockFill = 0
    blockStart += blockSize
  }

  /// The row and column of the key whose tones `powers` hold, if the block is a hit.
  private mutating func hit(_ powers: SIMD8<Float>) -> (row: Int, column: Int)? {
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

  /// Ends the tone: reports its end, and its beginning if not reported yet and it lasted long
  /// enough and steadily.
  private mutating func endTone(streamEnd: Int, into events: inout [DTMFEvent]) {
    guard let tone else { return }
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
  /// A run of hit blocks of one key, and the powers around its edges that place its start and end.
  private struct Tone: Sendable {
    /// The row lane, `0..<4`.
    let row: Int
    /// The column, `0..<4`; its lane is `4 + column`.
    let column: Int
    /// The offset of the first hit block.
    let firstBlockStart: Int
    /// The powers of the blocks before the first hit, the nearest first.
    let leadPowers: [SIMD8<Float>]
    /// The powers of the first hit block.
    let firstPowers: SIMD8<Float>
    /// The offset of the last hit block.
    var lastBlockStart: Int
    /// The powers of the last hit block.
    var lastPowers: SIMD8<Float>
    /// Whether the last hit block follows another hit block.
    var lastFollowsHit = false
    /// The powers of the blocks after the last hit (without a hit, or the hit of another key),
    /// the nearest first.
    var trailPowers: [SIMD8<Float>] = []
    /// The highest power of a hit block, at the row and at the column.
    var peakPowers: (row: Float, column: Float)
    /// The sum of the powers of the inner blocks: hit blocks between two hit blocks,
    /// which the tone covers whole.
    var innerPowerSums: (row: Float, column: Float) = (0, 0)
    /// The number of inner blocks.
    var innerCount = 0
    /// The least power of an inner block before the tone counted.
    var innerMinimumPowers: (row: Float, column: Float) = (.infinity, .infinity)
    /// The start reported with `began`, once reported.
    var reportedStart: Int?

    init(
      row: Int,
      column: Int,
      blockStart: Int,
      leadPowers: [SIMD8<Float>],
      powers: SIMD8<Float>
    ) {
      self.row = row
      self.column = column
      firstBlockStart = blockStart
      self.leadPowers = leadPowers
      firstPowers = powers
      lastBlockStart = blockStart
      lastPowers = powers
      peakPowers = (powers[row], powers[4 + column])
    }

    var symbol: DTMFSymbol { DTMFSymbol(row: row, column: column) }

    mutating func extend(blockStart: Int, powers: SIMD8<Float>) {
      if lastFollowsHit, trailPowers.isEmpty {
        let (rowPower, columnPower) = (lastPowers[row], lastPowers[4 + column])
        innerPowerSums = (innerPowerSums.row + rowPower, innerPowerSums.column + columnPower)
        innerCount += 1
        if reportedStart == nil {
          innerMinimumPowers = (
            min(innerMinimumPowers.row, rowPower), min(innerMinimumPowers.column, columnPower)
          )
        }
      }
      lastFollowsHit = trailPowers.isEmpty
      trailPowers.removeAll()
      lastBlockStart = blockStart
      lastPowers = powers
      peakPowers = (max(peakPowers.row, powers[row]), max(peakPowers.column, powers[4 + column]))
    }

    /// Whether the tone kept its level through its inner blocks before it counted.
    ///
    /// A key's tones are steady, while speech that passes for them for a few blocks swells and
    /// fades: its level moves by several dB from one 10 ms block to the next.
    func isSteady(minimumShare: Float) -> Bool {
      innerCount > 0 && innerMinimumPowers.row >= minimumShare * peakPowers.row
        && innerMinimumPowers.column >= minimumShare * peakPowers.column
    }

    /// The share of a block that the tone covers, from the block's powers.
    ///
    /// A sine over a fraction f of a block has f times its full amplitude there, so f is the
    /// square root of the ratio of the block's power to the power over a whole block: the mean
    /// of the inner blocks, or the peak while there are none. The lesser of the row's and the
    /// column's share is the tone's: a neighbouring key that shares a row or a column leaves
    /// the other one clear.
    func coverage(_ powers: SIMD8<Float>) -> Float {
      let full: (row: Float, column: Float) =
        innerCount > 0
        ? (innerPowerSums.row / Float(innerCount), innerPowerSums.column / Float(innerCount))
        : peakPowers
      let rowShare = (powers[row] / full.row).squareRoot()
      let columnShare = (powers[4 + column] / full.column).squareRoot()
      return min(1, rowShare, columnShare)
    }

    /// The number of blocks, in fractions, that the tone covers from the edge block `edge`
    /// outwards through `outside`.
    ///
    /// A tone is one stretch of samples: it reaches into the next block out only when it
    /// covers most of this one. Blocks that it covers whole but that failed a check, as a
    /// weak tone's may, still count.
    func coveredBlocks(from edge: SIMD8<Float>, outwards outside: [SIMD8<Float>]) -> Float {
      var share = coverage(edge)
      var covered = share
      for powers in outside {
        guard share >= 0.5 else { break }
        share = coverage(powers)
        covered += share
      }
      return covered
    }

    /// The first sample.
    func start(blockSize: Int) -> Int {
      let covered = coveredBlocks(from: firstPowers, outwards: leadPowers)
      return max(0, firstBlockStart + blockSize - Int((covered * Float(blockSize)).rounded()))
    }

    /// The sample after the last.
    func end(blockSize: Int) -> Int {
      let covered = coveredBlocks(from: lastPowers, outwards: trailPowers)
      return lastBlockStart + Int((covered * Float(blockSize)).rounded())
    }
  }
}

/// The powers of the last blocks (at most `maximumDropoutBlocks + 1`), newest first, without an
/// array to shift every block.
private struct RecentPowers {
  private var newest = SIMD8<Float>()
  private var middle = SIMD8<Float>()
  private var oldest = SIMD8<Float>()
  private var count = 0

  mutating func push(_ powers: SIMD8<Float>) {
    oldest = middle
    middle = newest
    newest = powers
    count = min(count + 1, 3)
  }

  var newestFirst: [SIMD8<Float>] { Array([newest, middle, oldest].prefix(count)) }
}
