import HarkAudio
import Testing

@Suite("PCM assembler")
struct PCMAssemblerTests {
  /// `bytes` fed to a new assembler in pieces of `sizes`, and the samples that came out.
  static func assemble(
    _ bytes: [UInt8],
    encoding: AudioEncoding,
    in sizes: [Int]
  ) -> (samples: [Int16], pendingBytes: [Int]) {
    var assembler = PCMAssembler(encoding: encoding)
    var samples: [Int16] = []
    var pending: [Int] = []
    var start = 0
    for size in sizes {
      bytes[start..<(start + size)].withUnsafeBytes { assembler.append($0, into: &samples) }
      pending.append(assembler.pendingBytes)
      start += size
    }
    return (samples, pending)
  }

  @Test("L16 is little-endian")
  func littleEndian() {
    let (samples, pending) = Self.assemble(
      [0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80, 0xFF, 0x7F, 0x34, 0x12],
      encoding: .linear16,
      in: [10]
    )
    #expect(samples == [1, -1, .min, .max, 0x1234])
    #expect(pending == [0])
  }

  @Test("a sample split across messages comes out whole, with one byte kept in between")
  func splitSample() {
    // 161 bytes then 159 bytes: 20 ms of 8 kHz L16 cut one byte after the middle.
    let samples = (0..<160).map { Int16($0 * 199 - 16000) }
    let bytes = samples.flatMap {
      [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)]
    }
    let (assembled, pending) = Self.assemble(bytes, encoding: .linear16, in: [161, 159])
    #expect(assembled == samples)
    #expect(pending == [1, 0])
  }

  @Test("single bytes and empty messages still make whole samples")
  func byteByByte() {
    let bytes: [UInt8] = [0x10, 0x00, 0x20, 0x00, 0x30, 0x00]
    let (samples, pending) = Self.assemble(
      bytes,
      encoding: .linear16,
      in: [1, 0, 1, 1, 0, 0, 1, 1, 1]
    )
    #expect(samples == [0x10, 0x20, 0x30])
    #expect(pending == [1, 1, 0, 1, 1, 1, 0, 1, 0])
  }

  @Test("random splits give the samples of the whole", arguments: [1, 2, 3, 4, 5, 6, 7, 8])
  func randomSplits(seed: UInt64) {
    var random = SplitMix64(seed: seed)
    let bytes = (0..<4001).map { _ in UInt8.random(in: 0...255, using: &random) }
    var sizes: [Int] = []
    var left = bytes.count
    while left > 0 {
      let size = min(left, Int.random(in: 0...331, using: &random))
      sizes.append(size)
      left -= size
    }
    for encoding in AudioEncoding.allCases {
      let (whole, _) = Self.assemble(bytes, encoding: encoding, in: [bytes.count])
      let (split, pending) = Self.assemble(bytes, encoding: encoding, in: sizes)
      #expect(split == whole, "\(encoding)")
      #expect(pending.last == (encoding == .linear16 ? 1 : 0), "\(encoding)")
    }
    let (whole, _) = Self.assemble(bytes, encoding: .linear16, in: [bytes.count])
    #expect(whole.count == 2000)
  }

  @Test("every G.711 byte is a sample, decoded by its law", arguments: [AudioEncoding.ulaw, .alaw])
  func g711(_ encoding: AudioEncoding) {
    let bytes = (0...255).map { UInt8($0) }
    let (samples, pending) = Self.assemble(bytes, encoding: encoding, in: [3, 0, 100, 153])
    let decode = encoding == .ulaw ? G711.ulawToLinear : G711.alawToLinear
    #expect(samples == bytes.map(decode))
    #expect(pending == [0, 0, 0, 0])
  }

  @Test("samples are appended after those already there")
  func appends() {
    var assembler = PCMAssembler(encoding: .linear16)
    var samples: [Int16] = [42]
    [UInt8]([0x02, 0x00, 0x03]).withUnsafeBytes { assembler.append($0, into: &samples) }
    [UInt8]([0x00]).withUnsafeBytes { assembler.append($0, into: &samples) }
    #expect(samples == [42, 2, 3])
  }
}
