/// ITU-T G.711 µ-law and A-law: the companding of telephony, between bytes and 16-bit samples.
///
/// Decoding goes through two 256-entry tables built once from the G.711 formulas, so it is one
/// load a byte. A decoded sample is the 14-bit (µ-law) or 13-bit (A-law) G.711 value scaled to 16
/// bits, at the middle of its quantization interval: µ-law spans ±32124 and A-law ±32256.
///
/// Encoding first rounds the sample to the law's resolution (14 bits for µ-law, 13 for A-law),
/// then finds the segment and the 4 mantissa bits as the reference implementation of Sun
/// Microsystems does. SoX encodes the same way, and Hark's bytes are its bytes for every sample.
public enum G711 {
  /// The sample that the µ-law byte `byte` encodes.
  @inlinable
  public static func ulawToLinear(_ byte: UInt8) -> Int16 {
    ulawDecodeTable[Int(byte)]
  }

  /// The sample that the A-law byte `byte` encodes.
  @inlinable
  public static func alawToLinear(_ byte: UInt8) -> Int16 {
    alawDecodeTable[Int(byte)]
  }

  /// The µ-law byte closest to `sample`, within the resolution of its segment.
  public static func linearToULaw(_ sample: Int16) -> UInt8 {
    // G.711 µ-law works on 14-bit values, rounded to the nearest (8191 at most), and on their
    // magnitudes offset by a bias of 33 so that every segment boundary is a power of two.
    var magnitude = min((Int(sample) + 2) >> 2, 8191)
    let mask: UInt8
    if magnitude < 0 {
      magnitude = -magnitude
      mask = 0x7F
    } else {
      mask = 0xFF
    }
    magnitude = min(magnitude, ulawClip) + ulawBias
    // Segment 0 holds the biased magnitudes of up to 6 bits and segment s > 0 those of 6 + s
    // bits; the mantissa is the 4 bits below the leading one.
    let segment = max(0, bitWidth(magnitude) - 6)
    guard segment < 8 else { return 0x7F ^ mask }
    let mantissa = (magnitude >> (segment + 1)) & 0x0F
    return UInt8((segment << 4) | mantissa) ^ mask
  }

  /// The A-law byte closest to `sample`, within the resolution of its segment.
  public static func linearToALaw(_ sample: Int16) -> UInt8 {
    // G.711 A-law works on 13-bit values, rounded to the nearest (4095 at most); negative
    // values are one's complement, so -1 encodes like 0 does, with the sign bit clear.
    var magnitude = min((Int(sample) + 4) >> 3, 4095)
    let mask: UInt8
    if magnitude >= 0 {
      mask = 0xD5
    } else {
      magnitude = -magnitude - 1
      mask = 0x55
    }
    // Segment 0 holds the magnitudes of up to 5 bits and segment s > 0 those of 5 + s bits.
    // Segments 0 and 1 share one step size; from segment 2 on, each doubles it.
    let segment = max(0, bitWidth(magnitude) - 5)
    let mantissa = segment < 2 ? (magnitude >> 1) & 0x0F : (magnitude >> segment) & 0x0F
    return UInt8((segment << 4) | mantissa) ^ mask
  }

  /// Appends the samples that the G.711 bytes `bytes` encode to `samples`, one a byte.
  ///
  /// - Precondition: `encoding` is ``AudioEncoding/ulaw`` or ``AudioEncoding/alaw``.
  public static func decode(
    _ bytes: UnsafeRawBufferPointer,
    encoding: AudioEncoding,
    into samples: inout [Int16]
  ) {
    let table =
      switch encoding {
      case .ulaw: ulawDecodeTable
      case .alaw: alawDecodeTable
      case .linear16: preconditionFailure("G711.decode is for µ-law and A-law, not L16")
      }
    table.withUnsafeBufferPointer { table in
      samples.append(contentsOf: bytes.lazy.map { table[Int($0)] })
    }
  }

  /// Appends the G.711 bytes that encode `samples` to `bytes`, one a sample.
  ///
  /// - Precondition: `encoding` is ``AudioEncoding/ulaw`` or ``AudioEncoding/alaw``.
  public static func encode(
    _ samples: UnsafeBufferPointer<Int16>,
    encoding: AudioEncoding,
    into bytes: inout [UInt8]
  ) {
    switch encoding {
    case .ulaw: bytes.append(contentsOf: samples.lazy.map(linearToULaw))
    case .alaw: bytes.append(contentsOf: samples.lazy.map(linearToALaw))
    case .linear16: preconditionFailure("G711.encode is for µ-law and A-law, not L16")
    }
  }

  /// The samples of the 256 µ-law bytes.
  @usableFromInline
  static let ulawDecodeTable: [Int16] = (0...255).map { ulawDecoded(UInt8($0)) }

  /// The samples of the 256 A-law bytes.
  @usableFromInline
  static let alawDecodeTable: [Int16] = (0...255).map { alawDecoded(UInt8($0)) }

  /// The largest 14-bit magnitude that µ-law encodes; larger ones clip to it.
  private static let ulawClip = 8159
  /// The µ-law bias, in 14-bit units.
  private static let ulawBias = 33

  /// G.711 µ-law decoding: the byte is sent inverted; its segment doubles the step size.
  private static func ulawDecoded(_ byte: UInt8) -> Int16 {
    let code = ~byte
    let segment = Int(code >> 4) & 0x07
    let mantissa = Int(code) & 0x0F
    // In 16-bit units the bias is 0x84 = 33 << 2, and each step is 8 << segment.
    let magnitude = (((mantissa << 3) + 0x84) << segment) - 0x84
    return Int16(code & 0x80 != 0 ? -magnitude : magnitude)
  }

  /// G.711 A-law decoding: even bits are sent inverted; the sign bit set means positive.
  private static func alawDecoded(_ byte: UInt8) -> Int16 {
    let code = byte ^ 0x55
    let segment = Int(code >> 4) & 0x07
    let mantissa = Int(code) & 0x0F
    // The middle of the interval: half a step (8 in 16-bit units) above the mantissa's value;
    // from segment 1 on, the leading one (0x100) is implied.
    var magnitude = (mantissa << 4) + 8
    if segment > 0 { magnitude = (magnitude + 0x100) << (segment - 1) }
    return Int16(code & 0x80 != 0 ? magnitude : -magnitude)
  }

  /// The number of bits up to and including the leading one of `value`, which is not negative.
  private static func bitWidth(_ value: Int) -> Int {
    Int.bitWidth - value.leadingZeroBitCount
  }
}
