import Foundation
import HarkAudio
import Testing

@Suite("DTMF generator")
struct DTMFGeneratorTests {
  @Test(
    "a tone is the sum of its row and column sines at the level asked",
    arguments: [8000, 16000]
  )
  func toneSamples(sampleRate: Int) {
    var generator = DTMFGenerator(sampleRate: sampleRate)
    let samples = generator.generate([.dtmf(.nine, milliseconds: 50, level: -6)])
    #expect(samples.count == sampleRate / 20)
    let peak = 32767 * pow(10, -6.0 / 20)
    for (index, sample) in samples.enumerated() {
      let t = Double(index) / Double(sampleRate)
      let expected = peak * (sin(2 * .pi * 852 * t) + sin(2 * .pi * 1477 * t))
      #expect(abs(Double(sample) - expected) <= 0.5 + 1e-6, "sample \(index)")
    }
  }

  @Test("twist raises the column tone above the row tone")
  func twist() {
    var generator = DTMFGenerator(sampleRate: 8000)
    let segment = DTMFGenerator.Segment.dtmf(.one, milliseconds: 10, level: -20, twist: 4)
    #expect(
      segment.tones == [
        DTMFGenerator.Tone(frequency: 697, level: -20),
        DTMFGenerator.Tone(frequency: 1209, level: -16),
      ]
    )
    #expect(generator.generate([segment]).count == 80)
  }

  @Test("segments follow one another, and silence is zero without noise")
  func sequence() {
    var generator = DTMFGenerator(sampleRate: 8000)
    let samples = generator.generate(
      DTMFGenerator.segments([.one, .two], toneMilliseconds: 40, gapMilliseconds: 30)
    )
    #expect(samples.count == 2 * (320 + 240))
    #expect(samples[320..<560].allSatisfy { $0 == 0 })
    #expect(samples[880...].allSatisfy { $0 == 0 })
    #expect(samples[1..<320].contains { $0 != 0 })
  }

  @Test("noise has the power asked, and the same seed gives the same noise")
  func noise() {
    var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -20, seed: 7)
    let samples = generator.generate([.silence(milliseconds: 2000)])
    let meanSquare = samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(samples.count)
    let expected = pow(32767 * pow(10, -20.0 / 20), 2) / 2
    #expect(abs(meanSquare / expected - 1) < 0.05)
    #expect(abs(samples.reduce(0.0) { $0 + Double($1) }) / Double(samples.count) < 30)

    var same = DTMFGenerator(sampleRate: 8000, noiseLevel: -20, seed: 7)
    #expect(same.generate([.silence(milliseconds: 2000)]) == samples)
    var other = DTMFGenerator(sampleRate: 8000, noiseLevel: -20, seed: 8)
    #expect(other.generate([.silence(milliseconds: 2000)]) != samples)
  }

  @Test("sums beyond full scale clip")
  func clipping() {
    var generator = DTMFGenerator(sampleRate: 8000)
    let samples = generator.generate([.dtmf(.d, milliseconds: 100, level: 0)])
    #expect(samples.contains(.max))
    #expect(samples.contains(.min))
  }

  @Test("other tones, such as a dial tone, can be generated too")
  func otherTones() {
    var generator = DTMFGenerator(sampleRate: 16000)
    let dialTone = DTMFGenerator.Segment(
      tones: [.init(frequency: 350, level: -13), .init(frequency: 440, level: -13)],
      milliseconds: 100
    )
    let samples = generator.generate([dialTone])
    #expect(samples.count == 1600)
    #expect(samples.map { abs(Int($0)) }.max()! <= Int((2 * 32767 * pow(10, -13.0 / 20)).rounded()))
  }
}
