import Foundation
import HarkTestSupport
import HarkTesting
import Testing

@testable import HarkAudio

@Suite("DTMF detector", .cpuBound)
struct DTMFDetectorTests {
  /// A key press as the detector reported it: its key and its samples.
  struct Press: Equatable, CustomStringConvertible {
    var symbol: DTMFSymbol
    var samples: Range<Int>

    var description: String { "\(symbol) \(samples)" }
  }

  /// The events of `samples`, fed in chunks of `chunkSize` (random sizes when nil), then finished.
  static func events(
    _ samples: [Int16],
    sampleRate: Int,
    chunkSize: Int? = 160,
    seed: UInt64 = 1
  ) -> [DTMFEvent] {
    var detector = DTMFDetector(sampleRate: sampleRate)
    var random = SplitMix64(seed: seed)
    var events: [DTMFEvent] = []
    var start = 0
    while start < samples.count {
      let size = min(chunkSize ?? Int.random(in: 1...400, using: &random), samples.count - start)
      events += samples[start..<(start + size)].withUnsafeBufferPointer { detector.process($0) }
      start += size
    }
    return events + detector.finish()
  }

  /// The presses of `events`, checking that each `ended` follows its own `began`.
  static func presses(
    _ events: [DTMFEvent],
    sourceLocation: SourceLocation = #_sourceLocation
  ) -> [Press] {
    var presses: [Press] = []
    var began: (DTMFSymbol, Int)?
    for event in events {
      switch event {
      case .began(let symbol, let start):
        #expect(
          began == nil,
          "\(event) before the last press ended",
          sourceLocation: sourceLocation
        )
        began = (symbol, start)
      case .ended(let symbol, let start, let end):
        #expect(
          began.map { $0 == (symbol, start) } == true,
          "\(event) without its began",
          sourceLocation: sourceLocation
        )
        began = nil
        presses.append(Press(symbol: symbol, samples: start..<end))
      }
    }
    #expect(began == nil, "a press never ended", sourceLocation: sourceLocation)
    return presses
  }

  /// Expects `presses` to be `expected`, each edge within `tolerance` milliseconds.
  static func expectPresses(
    _ presses: [Press],
    _ expected: [Press],
    sampleRate: Int,
    toleranceMilliseconds: Int = 5,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let tolerance = toleranceMilliseconds * sampleRate / 1000
    let matches =
      presses.count == expected.count
      && zip(presses, expected).allSatisfy { press, truth in
        press.symbol == truth.symbol
          && abs(press.samples.lowerBound - truth.samples.lowerBound) <= tolerance
          && abs(press.samples.upperBound - truth.samples.upperBound) <= tolerance
      }
    #expect(matches, "found \(presses), expected \(expected)", sourceLocation: sourceLocation)
  }

  /// `segments` generated, and the presses they hold: each tone segment with a DTMF key's
  /// frequencies.
  static func generate(
    _ segments: [DTMFGenerator.Segment],
    sampleRate: Int,
    noiseLevel: Double? = nil,
    seed: UInt64 = 0
  ) -> (samples: [Int16], presses: [Press]) {
    var generator = DTMFGenerator(sampleRate: sampleRate, noiseLevel: noiseLevel, seed: seed)
    var samples: [Int16] = []
    var presses: [Press] = []
    for segment in segments {
      let start = samples.count
      generator.generate([segment], into: &samples)
      let frequencies = segment.tones.map(\.frequency)
      if let symbol = DTMFSymbol.allCases.first(where: {
        frequencies == [$0.rowFrequency, $0.columnFrequency]
      }) {
        presses.append(Press(symbol: symbol, samples: start..<samples.count))
      }
    }
    return (samples, presses)
  }

  static let symbolsAtBothRates = DTMFSymbol.allCases.flatMap { symbol in
    [(symbol, 8000), (symbol, 16000)]
  }

  // MARK: Detection

  @Test(
    "every key is detected at both rates, with its start and end",
    arguments: symbolsAtBothRates
  )
  func everySymbol(_ symbol: DTMFSymbol, sampleRate: Int) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 73), .dtmf(symbol, milliseconds: 100), .silence(milliseconds: 60)],
      sampleRate: sampleRate
    )
    let presses = Self.presses(Self.events(samples, sampleRate: sampleRate, chunkSize: nil))
    Self.expectPresses(presses, truth, sampleRate: sampleRate)
  }

  @Test(
    "tones of 40 ms or more count, tones of 33 ms or less do not",
    arguments: [
      (20, false), (25, false), (30, false), (33, false), (40, true), (45, true), (60, true),
    ]
  )
  func minimumDuration(milliseconds: Int, counts: Bool) {
    for sampleRate in [8000, 16000] {
      for symbol in DTMFSymbol.allCases {
        // Start the tone at a different point of a block for each key.
        let lead = 50 * sampleRate / 1000 + symbol.row * 23 + symbol.column * 5
        var (samples, truth) = Self.generate(
          [.dtmf(symbol, milliseconds: milliseconds), .silence(milliseconds: 60)],
          sampleRate: sampleRate
        )
        samples.insert(contentsOf: repeatElement(0, count: lead), at: 0)
        truth = truth.map {
          Press(
            symbol: $0.symbol,
            samples: ($0.samples.lowerBound + lead)..<($0.samples.upperBound + lead)
          )
        }
        let presses = Self.presses(Self.events(samples, sampleRate: sampleRate))
        Self.expectPresses(presses, counts ? truth : [], sampleRate: sampleRate)
      }
    }
  }

  @Test("a press begins once its tone has lasted 35 ms, and ends within 40 ms of the tone")
  func latency() throws {
    let sampleRate = 8000
    let (samples, _) = Self.generate(
      [.silence(milliseconds: 100), .dtmf(.five, milliseconds: 200), .silence(milliseconds: 100)],
      sampleRate: sampleRate
    )
    var detector = DTMFDetector(sampleRate: sampleRate)
    var reported: [(event: DTMFEvent, at: Int)] = []
    for start in stride(from: 0, to: samples.count, by: 8) {
      let events = samples[start..<(start + 8)].withUnsafeBufferPointer { detector.process($0) }
      reported += events.map { ($0, start + 8) }
    }
    try #require(reported.count == 2)
    // The tone runs from sample 800 to 2400.
    #expect((800 + 280)...(800 + 400) ~= reported[0].at, "began after \(reported[0].at)")
    #expect(2400...(2400 + 320) ~= reported[1].at, "ended after \(reported[1].at)")
    #expect(detector.finish().isEmpty)
  }

  @Test("chunk sizes do not change what is found", arguments: [1, 7, 80, 160, 333, 4000])
  func chunking(chunkSize: Int) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 21)]
        + DTMFGenerator.segments(
          DTMFSymbol.symbols("147*")!,
          toneMilliseconds: 60,
          gapMilliseconds: 50
        ),
      sampleRate: 8000,
      noiseLevel: -40
    )
    let reference = Self.events(samples, sampleRate: 8000, chunkSize: 160)
    Self.expectPresses(Self.presses(reference), truth, sampleRate: 8000)
    #expect(Self.events(samples, sampleRate: 8000, chunkSize: chunkSize) == reference)
  }

  @Test(
    "a dialled sequence with 40 ms tones and 40 ms gaps is found key by key",
    arguments: [8000, 16000]
  )
  func sequence(sampleRate: Int) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 13)]
        + DTMFGenerator.segments(
          DTMFSymbol.symbols("1234567890*#ABCD")!,
          toneMilliseconds: 40,
          gapMilliseconds: 40
        ),
      sampleRate: sampleRate
    )
    let presses = Self.presses(Self.events(samples, sampleRate: sampleRate, chunkSize: nil))
    Self.expectPresses(presses, truth, sampleRate: sampleRate)
  }

  @Test("a gap of 30 ms or more separates two presses of one key", arguments: [30, 40, 100])
  func repeatedKey(gapMilliseconds: Int) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 37)]
        + DTMFGenerator.segments(
          [.five, .five, .five],
          toneMilliseconds: 50,
          gapMilliseconds: gapMilliseconds
        ),
      sampleRate: 8000
    )
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: 8000)),
      truth,
      sampleRate: 8000
    )
  }

  @Test("a dropout of 10 ms inside a press is bridged", arguments: [0, 3, 5, 8])
  func dropout(offsetMilliseconds: Int) {
    let (samples, _) = Self.generate(
      [
        .silence(milliseconds: 50 + offsetMilliseconds), .dtmf(.seven, milliseconds: 80),
        .silence(milliseconds: 10),
        .dtmf(.seven, milliseconds: 80), .silence(milliseconds: 50),
      ],
      sampleRate: 8000
    )
    let start = (50 + offsetMilliseconds) * 8
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: 8000)),
      [Press(symbol: .seven, samples: start..<(start + 170 * 8))],
      sampleRate: 8000
    )
  }

  @Test("keys that follow each other without a gap are two presses")
  func backToBack() {
    let (samples, truth) = Self.generate(
      [
        .silence(milliseconds: 30), .dtmf(.one, milliseconds: 60), .dtmf(.two, milliseconds: 60),
        .dtmf(.five, milliseconds: 60), .silence(milliseconds: 50),
      ],
      sampleRate: 8000
    )
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: 8000)),
      truth,
      sampleRate: 8000
    )
  }

  @Test(
    "tones in white noise 20 dB below each tone are found",
    arguments: symbolsAtBothRates
  )
  func noisyTones(_ symbol: DTMFSymbol, sampleRate: Int) {
    let (samples, truth) = Self.generate(
      [
        .silence(milliseconds: 200), .dtmf(symbol, milliseconds: 40), .silence(milliseconds: 100),
        .dtmf(symbol, milliseconds: 100), .silence(milliseconds: 200),
      ],
      sampleRate: sampleRate,
      noiseLevel: -30,
      seed: UInt64(sampleRate + symbol.row * 4 + symbol.column)
    )
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: sampleRate)),
      truth,
      sampleRate: sampleRate
    )
  }

  @Test("tones in white noise 10 dB below each tone are found", arguments: [8000, 16000])
  func veryNoisyTones(sampleRate: Int) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 100)]
        + DTMFGenerator.segments(DTMFSymbol.allCases, toneMilliseconds: 60, gapMilliseconds: 60),
      sampleRate: sampleRate,
      noiseLevel: -20,
      seed: 3
    )
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: sampleRate)),
      truth,
      sampleRate: sampleRate
    )
  }

  @Test("tones sent through µ-law or A-law are found", arguments: [AudioEncoding.ulaw, .alaw])
  func companded(_ encoding: AudioEncoding) {
    let (samples, truth) = Self.generate(
      [.silence(milliseconds: 50)]
        + DTMFGenerator.segments(
          DTMFSymbol.allCases,
          toneMilliseconds: 50,
          gapMilliseconds: 50,
          level: -25
        ),
      sampleRate: 8000
    )
    var bytes: [UInt8] = []
    samples.withUnsafeBufferPointer { G711.encode($0, encoding: encoding, into: &bytes) }
    var decoded: [Int16] = []
    bytes.withUnsafeBytes { G711.decode($0, encoding: encoding, into: &decoded) }
    Self.expectPresses(
      Self.presses(Self.events(decoded, sampleRate: 8000)),
      truth,
      sampleRate: 8000
    )
  }

  @Test("a tone still sounding when the stream ends is reported by finish()")
  func toneAtEnd() {
    let (samples, _) = Self.generate(
      [.silence(milliseconds: 100), .dtmf(.pound, milliseconds: 123)],
      sampleRate: 16000
    )
    var detector = DTMFDetector(sampleRate: 16000)
    let events = samples.withUnsafeBufferPointer { detector.process($0) }
    #expect(events.count == 1)
    let ended = detector.finish()
    Self.expectPresses(
      Self.presses(events + ended),
      [Press(symbol: .pound, samples: 1600..<samples.count)],
      sampleRate: 16000,
      toleranceMilliseconds: 2
    )

    // The detector is new again: offsets restart from zero.
    let again = samples.withUnsafeBufferPointer { detector.process($0) } + detector.finish()
    #expect(again == events + ended)
  }

  @Test("a tone too short when the stream ends is not reported")
  func shortToneAtEnd() {
    let (samples, _) = Self.generate(
      [.silence(milliseconds: 100), .dtmf(.pound, milliseconds: 25)],
      sampleRate: 8000
    )
    #expect(Self.events(samples, sampleRate: 8000).isEmpty)
  }

  // MARK: Limits

  @Test(
    "twist up to +4 dB (column louder) and down to -8 dB (row louder) is accepted",
    arguments: [
      (-9.0, false), (-7, true), (-4, true), (0, true), (3, true), (5, false), (8, false),
    ]
  )
  func twist(_ twist: Double, counts: Bool) {
    for symbol in DTMFSymbol.allCases {
      let (samples, truth) = Self.generate(
        [
          .silence(milliseconds: 30), .dtmf(symbol, milliseconds: 80, level: -12, twist: twist),
          .silence(milliseconds: 50),
        ],
        sampleRate: 8000
      )
      let presses = Self.presses(Self.events(samples, sampleRate: 8000))
      #expect(presses.count == (counts ? 1 : 0), "\(symbol) with twist \(twist)")
      if counts { Self.expectPresses(presses, truth, sampleRate: 8000) }
    }
  }

  @Test(
    "each tone must reach -36 dBFS",
    arguments: [(-10.0, true), (-30, true), (-34, true), (-38, false), (-45, false)]
  )
  func level(_ level: Double, counts: Bool) {
    for symbol in DTMFSymbol.allCases {
      let (samples, _) = Self.generate(
        [
          .silence(milliseconds: 30), .dtmf(symbol, milliseconds: 80, level: level),
          .silence(milliseconds: 50),
        ],
        sampleRate: 16000
      )
      #expect(
        Self.presses(Self.events(samples, sampleRate: 16000)).count == (counts ? 1 : 0),
        "\(symbol) at \(level) dBFS"
      )
    }
  }

  @Test(
    "frequencies off by 1.5% are accepted and off by 3.5% rejected",
    arguments: [(-0.035, false), (-0.015, true), (0.015, true), (0.035, false)]
  )
  func frequencyTolerance(_ deviation: Double, counts: Bool) {
    for sampleRate in [8000, 16000] {
      for symbol in DTMFSymbol.allCases {
        let tone = DTMFGenerator.Segment(
          tones: [
            .init(frequency: symbol.rowFrequency * (1 + deviation), level: -10),
            .init(frequency: symbol.columnFrequency * (1 + deviation), level: -10),
          ],
          milliseconds: 80
        )
        let (samples, _) = Self.generate(
          [.silence(milliseconds: 30), tone, .silence(milliseconds: 50)],
          sampleRate: sampleRate
        )
        let presses = Self.presses(Self.events(samples, sampleRate: sampleRate))
        #expect(
          presses.map(\.symbol) == (counts ? [symbol] : []),
          "\(symbol) off by \(deviation) at \(sampleRate) Hz"
        )
      }
    }
  }

  // MARK: What is not DTMF

  @Test("white noise alone is never a press", arguments: [-6.0, -20, -35])
  func noiseAlone(_ level: Double) {
    for sampleRate in [8000, 16000] {
      let (samples, _) = Self.generate(
        [.silence(milliseconds: 10_000)],
        sampleRate: sampleRate,
        noiseLevel: level,
        seed: 11
      )
      #expect(Self.events(samples, sampleRate: sampleRate).isEmpty)
    }
  }

  @Test(
    "call progress tones, chords and single tones are never a press",
    arguments: [
      ("dial tone", [350.0, 440]),
      ("ringback", [440, 480]),
      ("busy", [480, 620]),
      ("A major chord", [440, 554.37, 659.26]),
      ("1 kHz test tone", [1000]),
      ("2600 Hz", [2600]),
      ("a row tone alone", [770]),
      ("a column tone alone", [1336]),
      ("two row tones", [697, 852]),
      ("two column tones", [1209, 1477]),
      ("5 with a third tone", [770, 1336, 1000]),
      ("5 at 5% above", [808.5, 1402.8]),
      ("5 at 5% below", [731.5, 1269.2]),
    ] as [(String, [Double])]
  )
  func otherTones(_ name: String, frequencies: [Double]) {
    for sampleRate in [8000, 16000] {
      let segment = DTMFGenerator.Segment(
        tones: frequencies.map { .init(frequency: $0, level: -12) },
        milliseconds: 1000
      )
      let (samples, _) = Self.generate([segment], sampleRate: sampleRate)
      #expect(Self.events(samples, sampleRate: sampleRate).isEmpty, "\(name) at \(sampleRate) Hz")
    }
  }

  @Test("a chirp sweeping the telephone band is never a press", arguments: [0.5, 2, 8])
  func chirp(seconds: Double) {
    for sampleRate in [8000, 16000] {
      // A linear sweep from 300 to 3400 Hz.
      let count = Int(seconds * Double(sampleRate))
      let rate = (3400.0 - 300) / seconds
      let samples = (0..<count).map { index -> Int16 in
        let t = Double(index) / Double(sampleRate)
        return Int16(10000 * sin(2 * .pi * (300 * t + rate * t * t / 2)))
      }
      #expect(
        Self.events(samples, sampleRate: sampleRate).isEmpty,
        "\(seconds) s at \(sampleRate) Hz"
      )
    }
  }

  @Test(
    "synthesized speech is never a press",
    arguments: [
      ("en", 50), ("en-us", 50), ("en+f3", 50), ("en+m3", 30), ("en-us+f2", 80), ("en+klatt", 50),
    ]
  )
  func speech(voice: String, pitch: Int) throws {
    let text =
      "Hello world. Please enter your account number, followed by the pound key. "
      + "One two three four five six seven eight nine zero. Aaah, eeeh, oooh, mmm."
    for sampleRate in [8000, 16000] {
      let samples = try synthesizedSpeech(text, voice: voice, pitch: pitch, sampleRate: sampleRate)
      try #require(samples.count > sampleRate * 3)
      #expect(Self.events(samples, sampleRate: sampleRate).isEmpty, "\(voice) at \(sampleRate) Hz")
    }
  }

  @Test("a press in the middle of speech is found")
  func pressAfterSpeech() throws {
    let speech = try synthesizedSpeech(
      "Please enter your account number.",
      voice: "en-us",
      sampleRate: 8000
    )
    let (tones, truth) = Self.generate(
      DTMFGenerator.segments(DTMFSymbol.symbols("42")!, toneMilliseconds: 70, gapMilliseconds: 70),
      sampleRate: 8000
    )
    let samples = speech + tones + speech
    let shifted = truth.map {
      Press(
        symbol: $0.symbol,
        samples: ($0.samples.lowerBound + speech.count)..<($0.samples.upperBound + speech.count)
      )
    }
    Self.expectPresses(
      Self.presses(Self.events(samples, sampleRate: 8000)),
      shifted,
      sampleRate: 8000
    )
  }

  @Test(
    "the AVX recurrences, one block or two at once, are the SSE ones bit for bit",
    .enabled(if: DTMFDetector.avxAvailable, "this CPU has no AVX"),
    arguments: [8000, 16000]
  )
  func avxMatchesSSE(sampleRate: Int) {
    var random = SplitMix64(seed: UInt64(sampleRate))
    var generator = DTMFGenerator(sampleRate: sampleRate, noiseLevel: -20, seed: 3)
    // Tones in noise, then full-scale random samples (the largest values the sums meet).
    var samples = generator.generate([
      .dtmf(.seven, milliseconds: 90), .silence(milliseconds: 30), .dtmf(.pound, milliseconds: 60),
    ])
    samples += (0..<4000).map { _ in Int16(truncatingIfNeeded: random.next()) }
    var avx = DTMFDetector(sampleRate: sampleRate, usesAVX: true)
    var sse = DTMFDetector(sampleRate: sampleRate, usesAVX: false)
    var start = 0
    while start < samples.count {
      // Chunks of odd and even sizes, some ending inside a block, some of two blocks or more
      // (which the AVX detector runs side by side).
      let size = min(Int.random(in: 1...400, using: &random), samples.count - start)
      let (fromAVX, fromSSE) = samples[start..<(start + size)].withUnsafeBufferPointer {
        (avx.process($0), sse.process($0))
      }
      #expect(fromAVX == fromSSE)
      let (a, b) = (avx.goertzelState, sse.goertzelState)
      #expect(a.s1 == b.s1 && a.s2 == b.s2 && a.energy.bitPattern == b.energy.bitPattern)
      start += size
    }
    #expect(avx.finish() == sse.finish())
  }
}
