import Foundation
import HarkAudio
import HarkTestSupport
import Testing

@Suite("Half-band upsampler", .cpuBound)
struct HalfBandUpsamplerTests {
  /// `count` samples of a sine of `frequency` Hz at `sampleRate`, peak `amplitude`.
  static func sine(
    _ frequency: Double,
    count: Int,
    sampleRate: Double,
    amplitude: Double = 10000
  ) -> [Int16] {
    (0..<count).map { index in
      Int16((amplitude * sin(2 * .pi * frequency * Double(index) / sampleRate)).rounded())
    }
  }

  /// The whole output of `input`, flushed.
  static func upsample(_ input: [Int16]) -> [Int16] {
    var upsampler = HalfBandUpsampler()
    var output = upsampler.process(input)
    upsampler.finish(into: &output)
    return output
  }

  /// The power of `frequency` in `samples`, by the Goertzel algorithm, normalized per sample.
  static func power(
    of frequency: Double,
    in samples: ArraySlice<Int16>,
    sampleRate: Double
  )
    -> Double
  {
    let coefficient = 2 * cos(2 * .pi * frequency / sampleRate)
    var previous = 0.0
    var beforePrevious = 0.0
    for sample in samples {
      let current = Double(sample) + coefficient * previous - beforePrevious
      beforePrevious = previous
      previous = current
    }
    let power =
      previous * previous + beforePrevious * beforePrevious - coefficient * previous
      * beforePrevious
    return power / Double(samples.count * samples.count)
  }

  @Test("two outputs per input, and every even output is its input exactly")
  func evenOutputsAreTheInputs() {
    var generator = SplitMix64(seed: 11)
    let input = (0..<2000).map { _ in Int16.random(in: -20000...20000, using: &generator) }
    let output = Self.upsample(input)
    #expect(output.count == 2 * input.count)
    #expect(stride(from: 0, to: output.count, by: 2).map { output[$0] } == input)
  }

  @Test("the output does not depend on how the input is cut into chunks")
  func chunking() {
    var generator = SplitMix64(seed: 5)
    let input = (0..<4000).map { _ in Int16.random(in: -30000...30000, using: &generator) }
    var upsampler = HalfBandUpsampler()
    var output: [Int16] = []
    var start = 0
    while start < input.count {
      let end = min(start + Int.random(in: 0...97, using: &generator), input.count)
      input[start..<end].withUnsafeBufferPointer { upsampler.process($0, into: &output) }
      start = end
    }
    upsampler.finish(into: &output)
    #expect(output == Self.upsample(input))
  }

  @Test("outputs lag the inputs by latency samples until finish")
  func latency() {
    var upsampler = HalfBandUpsampler()
    #expect(upsampler.latency == 16)
    #expect(upsampler.process([Int16](repeating: 100, count: 16)).isEmpty)
    #expect(upsampler.process([100]).count == 2)
    var rest: [Int16] = []
    upsampler.finish(into: &rest)
    #expect(rest.count == 2 * 16)
  }

  @Test("a constant stays the same constant")
  func unityGain() {
    let output = Self.upsample([Int16](repeating: 1000, count: 400))
    #expect(output[64..<(output.count - 64)].allSatisfy { $0 == 1000 })
  }

  @Test(
    "telephone-band sines come out as the same sines at 16 kHz",
    arguments: [300.0, 1000.0, 2500.0, 3400.0]
  )
  func passband(_ frequency: Double) {
    let output = Self.upsample(Self.sine(frequency, count: 1600, sampleRate: 8000))
    let ideal = Self.sine(frequency, count: 3200, sampleRate: 16000)
    // Away from the edges (whose missing neighbours count as silence).
    let middle = 200..<3000
    let error = zip(output[middle], ideal[middle]).map { Double($0) - Double($1) }
    let rms = (error.map { $0 * $0 }.reduce(0, +) / Double(error.count)).squareRoot()
    let signal = 10000 / 2.0.squareRoot()
    // At least 40 dB of signal to error at 3.4 kHz, more below.
    #expect(20 * log10(signal / rms) > (frequency < 3000 ? 60 : 40))
  }

  @Test("the image above 4 kHz is suppressed", arguments: [1000.0, 2000.0, 3000.0])
  func images(_ frequency: Double) {
    let output = Self.upsample(Self.sine(frequency, count: 4000, sampleRate: 8000))
    let middle = output[400..<7600]
    let signal = Self.power(of: frequency, in: middle, sampleRate: 16000)
    let image = Self.power(of: 8000 - frequency, in: middle, sampleRate: 16000)
    #expect(10 * log10(signal / image) > 60)
  }

  @Test("a full-scale step saturates instead of wrapping")
  func saturation() {
    let input = [Int16](repeating: .min, count: 100) + [Int16](repeating: .max, count: 100)
    let output = Self.upsample(input)
    // The filter rings past full scale on both sides of the step: clamped, it keeps its sign.
    #expect(output[0..<199].allSatisfy { $0 < 0 })
    #expect(output[201..<400].allSatisfy { $0 > 0 })
    #expect(output[197..<199].contains(.min) || output[201..<203].contains(.max))
  }
}
