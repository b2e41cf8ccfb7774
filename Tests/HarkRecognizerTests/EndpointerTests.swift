import HarkAudio
import Testing

@testable import HarkRecognizer

/// The energy endpointer: where utterances start and end, in samples.
@Suite("Endpointer")
struct EndpointerTests {
  /// The events of `segments` (with white noise at `noise` dBFS), each at the position of the
  /// frame that caused it: "2640 start 2400", "8000 end 4000".
  static func events(
    _ segments: [DTMFGenerator.Segment],
    sampleRate: Int = 8000,
    noise: Double? = nil,
    sensitivity: Float = 0.5,
    endSilence: Int = 500,
    chunk: Int? = nil
  ) -> (events: [String], endpointer: Endpointer) {
    var generator = DTMFGenerator(sampleRate: sampleRate, noiseLevel: noise, seed: 7)
    let samples = generator.generate(segments)
    var endpointer = Endpointer(
      configuration: .init(
        sampleRate: sampleRate,
        endSilenceMilliseconds: endSilence,
        sensitivity: sensitivity
      )
    )
    var events: [String] = []
    let size = chunk ?? max(samples.count, 1)
    for start in stride(from: 0, to: samples.count, by: size) {
      samples[start..<min(start + size, samples.count)].withUnsafeBufferPointer { buffer in
        endpointer.process(buffer) { endpointer, event in
          switch event {
          case .speechStarted(let onset)?: events.append("\(endpointer.position) start \(onset)")
          case .speechEnded(let end)?: events.append("\(endpointer.position) end \(end)")
          case nil: break
          }
        }
      }
    }
    #expect(endpointer.position == samples.count / endpointer.frameLength * endpointer.frameLength)
    return (events, endpointer)
  }

  /// 300 ms of silence, a 200 ms key press at `level` dBFS a tone, then 600 ms of silence.
  static func press(level: Double = -10) -> [DTMFGenerator.Segment] {
    [
      .silence(milliseconds: 300), .dtmf(.five, milliseconds: 200, level: level),
      .silence(milliseconds: 600),
    ]
  }

  @Test(
    "an utterance starts at its first speech frame, confirmed 3 frames later, and ends after the end silence"
  )
  func utterance() {
    let (events, endpointer) = Self.events(Self.press())
    #expect(events == ["2640 start 2400", "8000 end 4000"])
    #expect(!endpointer.inSpeech)
    #expect(endpointer.utteranceOnset == 2400)
    #expect(endpointer.lastSpeechEnd == 4000)
  }

  @Test("digital silence is never speech")
  func silence() {
    let (events, endpointer) = Self.events([.silence(milliseconds: 3000)], sensitivity: 1)
    #expect(events == [])
    #expect(endpointer.position == 24000)
    #expect(!endpointer.inSpeech)
  }

  struct SensitivityCase: Sendable, CustomTestStringConvertible {
    var name: String
    var segments: [DTMFGenerator.Segment]
    var noise: Double?
    /// The events at sensitivity 0, 0.5 and 1.
    var events: [[String]]
    var testDescription: String { name }
  }

  @Test(
    "sensitivity: 1 takes nearly any sound as speech, 0 only loud sound",
    arguments: [
      SensitivityCase(
        name: "white noise at -50 dBFS",
        segments: [.silence(milliseconds: 2000)],
        noise: -50,
        events: [[], [], ["240 start 0"]]
      ),
      SensitivityCase(
        name: "a key press at -40 dBFS",
        segments: press(level: -40),
        events: [[], ["2640 start 2400", "8000 end 4000"], ["2640 start 2400", "8000 end 4000"]]
      ),
      SensitivityCase(
        name: "a key press at -10 dBFS",
        segments: press(),
        events: Array(repeating: ["2640 start 2400", "8000 end 4000"], count: 3)
      ),
      SensitivityCase(
        name: "a key press at -10 dBFS in white noise at -50 dBFS",
        segments: press(),
        noise: -50,
        events: [
          ["2640 start 2400", "8000 end 4000"], ["2640 start 2400", "8000 end 4000"],
          ["240 start 0"],
        ]
      ),
    ]
  )
  func sensitivity(_ sensitivityCase: SensitivityCase) {
    for (sensitivity, expected) in zip([Float(0), 0.5, 1], sensitivityCase.events) {
      let events = Self.events(
        sensitivityCase.segments,
        noise: sensitivityCase.noise,
        sensitivity: sensitivity
      ).events
      #expect(events == expected, "sensitivity \(sensitivity)")
    }
  }

  @Test("sensitivity is clamped to 0 … 1")
  func sensitivityClamped() {
    #expect(
      Endpointer.Configuration(sampleRate: 8000, endSilenceMilliseconds: 500, sensitivity: 7)
        .sensitivity == 1
    )
    #expect(
      Endpointer.Configuration(sampleRate: 8000, endSilenceMilliseconds: 500, sensitivity: -1)
        .sensitivity == 0
    )
  }

  @Test(
    "utterance_end_silence_ms: that much non-speech ends the utterance (at least one frame)",
    arguments: [(0, 4080), (10, 4080), (100, 4800), (250, 6000), (500, 8000)]
  )
  func endSilence(milliseconds: Int, endEvent: Int) {
    let events = Self.events(Self.press(), endSilence: milliseconds).events
    #expect(events == ["2640 start 2400", "\(endEvent) end 4000"])
  }

  @Test("a pause shorter than the end silence does not end the utterance")
  func pause() {
    let segments: [DTMFGenerator.Segment] = [
      .silence(milliseconds: 300), .dtmf(.five, milliseconds: 200), .silence(milliseconds: 490),
      .dtmf(.five, milliseconds: 200), .silence(milliseconds: 600),
    ]
    #expect(Self.events(segments).events == ["2640 start 2400", "13520 end 9520"])
    // 500 ms of silence is enough.
    var longer = segments
    longer[2] = .silence(milliseconds: 500)
    #expect(
      Self.events(longer).events == [
        "2640 start 2400", "8000 end 4000", "8240 start 8000", "13600 end 9600",
      ]
    )
  }

  @Test("two frames of speech are not an utterance; three are")
  func onset() {
    let two = Self.events([
      .silence(milliseconds: 300), .dtmf(.five, milliseconds: 20), .silence(milliseconds: 600),
    ])
    #expect(two.events == [])
    let three = Self.events([
      .silence(milliseconds: 300), .dtmf(.five, milliseconds: 30), .silence(milliseconds: 600),
    ])
    #expect(three.events == ["2640 start 2400", "6640 end 2640"])
  }

  @Test("the events do not depend on how the audio is cut", arguments: [1, 7, 80, 333, 4000])
  func chunking(chunk: Int) {
    let segments =
      Self.press() + [.dtmf(.one, milliseconds: 700), .silence(milliseconds: 700)]
    #expect(Self.events(segments, chunk: chunk).events == Self.events(segments).events)
  }

  @Test("at 16 kHz a frame is 160 samples and positions double")
  func sixteenKilohertz() {
    let (events, endpointer) = Self.events(Self.press(), sampleRate: 16000)
    #expect(endpointer.frameLength == 160)
    #expect(events == ["5280 start 4800", "16000 end 8000"])
  }

  @Test("statistics of the utterance: energies in dBFS and clipped samples")
  func statistics() {
    let (_, endpointer) = Self.events(Self.press())
    let statistics = endpointer.statistics
    // Two tones at -10 dBFS each carry the power of a full-scale square wave's -10 dB.
    #expect(abs(statistics.meanEnergy - -10) < 0.05)
    #expect(abs(statistics.initialEnergy - -10) < 0.2)
    #expect(abs(statistics.finalEnergy - -10) < 0.2)
    #expect(abs(statistics.noiseLevel - -90.309) < 0.01)
    #expect(abs(statistics.snrEstimate - (statistics.meanEnergy - statistics.noiseLevel)) < 0.001)
    #expect(statistics.clippedSamples == 0)

    // Tones at 0 dBFS each sum past full scale: every sample beyond it is clipped.
    var generator = DTMFGenerator(sampleRate: 8000)
    let loud = generator.generate([.dtmf(.five, milliseconds: 200, level: 0)])
    let clipped = loud.filter { $0 == .max || $0 == .min }.count
    #expect(clipped > 0)
    let (_, loudEndpointer) = Self.events(
      [
        .silence(milliseconds: 300), .dtmf(.five, milliseconds: 200, level: 0),
        .silence(milliseconds: 600),
      ]
    )
    #expect(loudEndpointer.statistics.clippedSamples == clipped)
  }

  @Test(
    "a frame's sum of squares and clipped count are exact, full scale and any length",
    arguments: [0, 1, 7, 8, 9, 80, 160, 167]
  )
  func squaresAndClipped(count: Int) {
    var random = SplitMix64(seed: UInt64(count))
    let extremes: [Int16] = [.max, .min, .min + 1, -1, 0]
    let samples: [Int16] = (0..<count).map { index in
      index % 3 == 0
        ? extremes[index % extremes.count]
        : Int16(truncatingIfNeeded: random.next())
    }
    let expected = samples.reduce(Int64(0)) { $0 + Int64($1) * Int64($1) }
    let clipped = samples.filter { $0 == .max || $0 == .min }.count
    let all = samples.withUnsafeBufferPointer { Endpointer.squaresAndClipped($0) }
    #expect(all.0 == expected)
    #expect(all.1 == clipped)
    // Every sample at Int16.min: the largest square, in every lane.
    let loudest = [Int16](repeating: .min, count: count)
    let loud = loudest.withUnsafeBufferPointer { Endpointer.squaresAndClipped($0) }
    #expect(loud.0 == Int64(count) << 30)
    #expect(loud.1 == count)
  }
}
