import HarkAudio
import HarkTesting
import Testing

@Suite("G.711")
struct G711Tests {
  /// Every 16-bit sample, from -32768 to 32767.
  static let everySample = (Int(Int16.min)...Int(Int16.max)).map { Int16($0) }

  /// SoX's name of each law's encoding.
  static let soxEncodings: [(AudioEncoding, String)] = [(.ulaw, "mu-law"), (.alaw, "a-law")]

  @Test("every 16-bit sample encodes to the byte that SoX writes", arguments: soxEncodings)
  func encodeMatchesSoX(_ encoding: AudioEncoding, soxName: String) throws {
    let scratch = try ScratchDirectory()
    try scratch.write(samples: Self.everySample, to: "ramp.raw")
    try SoX.run(
      [
        "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-L", "-c", "1",
        scratch.path("ramp.raw"),
      ]
        + ["-t", "raw", "-e", soxName, "-b", "8", scratch.path("law.raw")]
    )
    let expected = try scratch.read("law.raw")
    try #require(expected.count == Self.everySample.count)

    let encode = encoding == .ulaw ? G711.linearToULaw : G711.linearToALaw
    let mismatches = zip(Self.everySample, expected).filter { encode($0) != $1 }
    #expect(
      mismatches.isEmpty,
      "\(mismatches.count) mismatches; the first (sample, SoX's byte): \(mismatches.prefix(5))"
    )

    var bulk: [UInt8] = [0xEE]
    Self.everySample.withUnsafeBufferPointer { G711.encode($0, encoding: encoding, into: &bulk) }
    #expect(bulk.first == 0xEE && bulk.dropFirst().elementsEqual(expected), "bulk encoding")
  }

  @Test("every byte decodes to the sample that SoX reads", arguments: soxEncodings)
  func decodeMatchesSoX(_ encoding: AudioEncoding, soxName: String) throws {
    let scratch = try ScratchDirectory()
    let everyByte = (0...255).map { UInt8($0) }
    try scratch.write(everyByte, to: "law.raw")
    try SoX.run(
      ["-t", "raw", "-r", "8000", "-e", soxName, "-b", "8", "-c", "1", scratch.path("law.raw")]
        + ["-t", "raw", "-e", "signed", "-b", "16", "-L", scratch.path("linear.raw")]
    )
    let expected = try scratch.readSamples("linear.raw")
    try #require(expected.count == 256)

    let decode = encoding == .ulaw ? G711.ulawToLinear : G711.alawToLinear
    #expect(everyByte.map(decode) == expected)

    var bulk: [Int16] = [-1]
    everyByte.withUnsafeBytes { G711.decode($0, encoding: encoding, into: &bulk) }
    #expect(bulk == [-1] + expected)
  }

  @Test(
    "known codes decode to the ends and the middle of the range",
    arguments: [
      (AudioEncoding.ulaw, UInt8(0xFF), Int16(0)),
      (.ulaw, 0x7F, 0),
      (.ulaw, 0x80, 32124),
      (.ulaw, 0x00, -32124),
      (.ulaw, 0xFE, 8),
      (.alaw, 0xD5, 8),
      (.alaw, 0x55, -8),
      (.alaw, 0xAA, 32256),
      (.alaw, 0x2A, -32256),
    ]
  )
  func knownCodes(_ encoding: AudioEncoding, byte: UInt8, sample: Int16) {
    let decode = encoding == .ulaw ? G711.ulawToLinear : G711.alawToLinear
    #expect(decode(byte) == sample)
  }

  @Test("the sign bit mirrors a code", arguments: [AudioEncoding.ulaw, .alaw])
  func symmetry(_ encoding: AudioEncoding) {
    let decode = encoding == .ulaw ? G711.ulawToLinear : G711.alawToLinear
    for code in UInt8.min...UInt8.max {
      #expect(decode(code ^ 0x80) == -decode(code), "code \(code)")
    }
  }

  @Test("a decoded byte encodes back to itself, but µ-law's negative zero")
  func codesRoundTrip() {
    for code in UInt8.min...UInt8.max {
      let expected: UInt8 = code == 0x7F ? 0xFF : code
      #expect(G711.linearToULaw(G711.ulawToLinear(code)) == expected, "µ-law \(code)")
      #expect(G711.linearToALaw(G711.alawToLinear(code)) == code, "A-law \(code)")
    }
  }

  /// The error of decode(encode(x)) is at most half a quantization step, plus half the unit of
  /// the law's resolution that the sample is first rounded to (2 for µ-law's 14 bits, 4 for
  /// A-law's 13); beyond the largest code, samples clip to it.
  @Test(
    "decoding an encoded sample is off by at most half a step",
    arguments: [AudioEncoding.ulaw, .alaw]
  )
  func quantizationError(_ encoding: AudioEncoding) {
    let (encode, decode) =
      encoding == .ulaw
      ? (G711.linearToULaw, G711.ulawToLinear) : (G711.linearToALaw, G711.alawToLinear)
    let largest = Int(decode(encoding == .ulaw ? 0x80 : 0xAA))
    var previous = Int.min
    for sample in Self.everySample {
      let code = encode(sample)
      let decoded = Int(decode(code))
      let x = Int(sample)
      if abs(x) > largest {
        #expect(abs(decoded) == largest, "\(sample) clips")
        continue
      }
      let bound = Self.step(of: code, encoding) / 2 + (encoding == .ulaw ? 2 : 4)
      #expect(abs(decoded - x) <= bound, "\(sample) → \(code) → \(decoded)")
      // Quantization keeps the order of samples.
      #expect(decoded >= previous, "\(sample) decodes below the sample before it")
      previous = decoded
    }
  }

  /// The width of the quantization interval of `code`, in 16-bit units.
  static func step(of code: UInt8, _ encoding: AudioEncoding) -> Int {
    switch encoding {
    case .ulaw: 8 << (Int(~code >> 4) & 0x07)
    case .alaw: 16 << max(0, (Int((code ^ 0x55) >> 4) & 0x07) - 1)
    case .linear16: 1
    }
  }

  @Test("bulk decoding appends one sample a byte")
  func bulkDecodeAppends() {
    var samples: [Int16] = [7]
    let bytes: [UInt8] = [0xFF, 0x80, 0x00]
    bytes.withUnsafeBytes { G711.decode($0, encoding: .ulaw, into: &samples) }
    bytes.withUnsafeBytes { G711.decode($0, encoding: .alaw, into: &samples) }
    #expect(samples == [7, 0, 32124, -32124, 848, 5504, -5504])
    [UInt8]().withUnsafeBytes { G711.decode($0, encoding: .alaw, into: &samples) }
    #expect(samples.count == 7)
  }
}
