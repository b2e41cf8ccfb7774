/// The header of a RIFF/WAVE file: its audio format and where its samples are.
///
/// The parser reads the `fmt ` chunk and finds the `data` chunk, skipping other chunks (`LIST`,
/// `fact`, …) and the pad byte after each chunk of odd size. It is lenient where writers are
/// sloppy: the RIFF size is ignored, and a `data` size of 0 or 0xFFFFFFFF, which streaming writers
/// leave when they cannot seek back, means the samples run to the end of the file, as does a
/// `data` chunk that claims more bytes than the file holds. `RF64` files are read the same way.
///
/// Parsing succeeds for any well-formed WAV; ``format`` tells whether Hark takes its audio, and
/// ``validate()`` throws an error that says why not.
public struct WAVFile: Hashable, Sendable {
  /// The `WAVE_FORMAT_*` tags that the parser knows.
  public enum FormatTag {
    /// Integer PCM.
    public static let pcm: UInt16 = 0x0001
    /// IEEE floating-point samples.
    public static let ieeeFloat: UInt16 = 0x0003
    /// G.711 A-law.
    public static let alaw: UInt16 = 0x0006
    /// G.711 µ-law.
    public static let ulaw: UInt16 = 0x0007
    /// `WAVE_FORMAT_EXTENSIBLE`: the real format is in a subformat GUID.
    public static let extensible: UInt16 = 0xFFFE
  }

  /// The `WAVE_FORMAT_*` tag of the samples; for `WAVE_FORMAT_EXTENSIBLE`, that of its subformat.
  ///
  /// An extensible format whose subformat is not a `KSDATAFORMAT_SUBTYPE_*` GUID built from a
  /// tag keeps ``FormatTag/extensible``.
  public let formatTag: UInt16
  /// The number of interleaved channels.
  public let channels: Int
  /// Samples a second per channel, in hertz.
  public let sampleRate: Int
  /// The size of one sample of one channel, in bits.
  public let bitsPerSample: Int
  /// Where the samples are in the file's bytes.
  public let dataRange: Range<Int>

  /// Parses the header of the WAV file whose bytes are `bytes`.
  ///
  /// - Throws: ``WAVError`` when the bytes are not a WAV file, or one without a `fmt ` or `data`
  ///   chunk. An unsupported audio format is not an error here: see ``validate()``.
  public init(bytes: [UInt8]) throws(WAVError) {
    guard bytes.count >= 12 else {
      // The start of a RIFF header is a file cut short; anything else is not WAV at all.
      let magic = bytes.prefix(4)
      let isCut = "RIFF".utf8.starts(with: magic) || "RF64".utf8.starts(with: magic)
      throw WAVError(isCut ? .truncatedHeader : .notRIFFWAVE)
    }
    guard Self.matches(bytes, at: 0, "RIFF") || Self.matches(bytes, at: 0, "RF64"),
      Self.matches(bytes, at: 8, "WAVE")
    else { throw WAVError(.notRIFFWAVE) }

    var format: (tag: UInt16, channels: Int, sampleRate: Int, bitsPerSample: Int)?
    var data: Range<Int>?
    var offset = 12
    var isCut = false
    // Stop at the data chunk once the format is known: what follows the samples (LIST, id3)
    // does not matter, and a data chunk that runs to the end leaves nothing to read.
    while format == nil || data == nil {
      guard offset + 8 <= bytes.count else {
        isCut = offset != bytes.count
        break
      }
      let size = Int(Self.uint32(bytes, at: offset + 4))
      let body = offset + 8
      // Chunks are padded to an even size.
      let next = body + size + size % 2
      if Self.matches(bytes, at: offset, "fmt ") {
        guard size >= 16 else { throw WAVError(.shortFormatChunk(size: size)) }
        guard body + size <= bytes.count else { throw WAVError(.truncatedHeader) }
        format = (
          Self.formatTag(bytes, fmtBody: body, size: size),
          Int(Self.uint16(bytes, at: body + 2)),
          Int(Self.uint32(bytes, at: body + 4)),
          Int(Self.uint16(bytes, at: body + 14))
        )
      } else if Self.matches(bytes, at: offset, "data") {
        let runsToEnd = size == 0 || size == 0xFFFF_FFFF || body + size > bytes.count
        data = body..<(runsToEnd ? bytes.count : body + size)
        if runsToEnd { break }
      }
      offset = next
    }
    guard let format else { throw WAVError(isCut ? .truncatedHeader : .missingFormatChunk) }
    guard let data else { throw WAVError(isCut ? .truncatedHeader : .missingDataChunk) }
    self.formatTag = format.tag
    self.channels = format.channels
    self.sampleRate = format.sampleRate
    self.bitsPerSample = format.bitsPerSample
    self.dataRange = data
  }

  /// The format of the samples, when Hark takes it: mono 16-bit PCM at 8000 or 16000 Hz, or mono
  /// 8-bit µ-law or A-law at 8000 Hz; nil otherwise.
  public var format: AudioStreamFormat? {
    guard channels == 1 else { return nil }
    let encoding: AudioEncoding
    switch (formatTag, bitsPerSample) {
    case (FormatTag.pcm, 16): encoding = .linear16
    case (FormatTag.ulaw, 8): encoding = .ulaw
    case (FormatTag.alaw, 8): encoding = .alaw
    default: return nil
    }
    guard AudioStreamFormat.isSupported(encoding, sampleRate: sampleRate) else { return nil }
    return AudioStreamFormat(encoding: encoding, sampleRate: sampleRate)
  }

  /// The format of the samples.
  ///
  /// - Throws: ``WAVError/Reason/unsupportedAudio(formatTag:sampleRate:channels:bitsPerSample:)``
  ///   describing the audio, when ``format`` is nil.
  @discardableResult
  public func validate() throws(WAVError) -> AudioStreamFormat {
    guard let format else {
      throw WAVError(
        .unsupportedAudio(
          formatTag: formatTag,
          sampleRate: sampleRate,
          channels: channels,
          bitsPerSample: bitsPerSample
        )
      )
    }
    return format
  }

  /// The 44 bytes of a canonical header for `dataByteCount` bytes of audio in `format`.
  public static func header(for format: AudioStreamFormat, dataByteCount: Int) -> [UInt8] {
    let tag =
      switch format.encoding {
      case .linear16: FormatTag.pcm
      case .ulaw: FormatTag.ulaw
      case .alaw: FormatTag.alaw
      }
    var header: [UInt8] = []
    header.reserveCapacity(44)
    func append(_ text: String) { header.append(contentsOf: text.utf8) }
    func append<T: FixedWidthInteger>(_ value: T) {
      withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) }
    }
    append("RIFF")
    append(UInt32(truncatingIfNeeded: 36 + dataByteCount))
    append("WAVE")
    append("fmt ")
    append(UInt32(16))
    append(tag)
    append(UInt16(1))
    append(UInt32(format.sampleRate))
    append(UInt32(format.bytesPerSecond))
    append(UInt16(format.bytesPerSample))
    append(UInt16(8 * format.bytesPerSample))
    append("data")
    append(UInt32(truncatingIfNeeded: dataByteCount))
    return header
  }

  /// The tag of a `fmt ` chunk, or of its subformat for `WAVE_FORMAT_EXTENSIBLE`.
  private static func formatTag(_ bytes: [UInt8], fmtBody body: Int, size: Int) -> UInt16 {
    let tag = uint16(bytes, at: body)
    // WAVEFORMATEXTENSIBLE: cbSize, valid bits, channel mask, then the 16-byte subformat GUID.
    guard tag == FormatTag.extensible, size >= 40,
      bytes[(body + 26)..<(body + 40)].elementsEqual(ksDataFormatGUIDTail)
    else { return tag }
    return uint16(bytes, at: body + 24)
  }

  /// The last 14 bytes of every `KSDATAFORMAT_SUBTYPE_*` GUID of a `WAVE_FORMAT_*` tag, whose
  /// first 2 bytes are the tag: `0000xxxx-0000-0010-8000-00aa00389b71` as stored.
  private static let ksDataFormatGUIDTail: [UInt8] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
  ]

  /// Whether `bytes` holds the 4 ASCII characters `id` at `offset`, which is 4 bytes from the end
  /// or more.
  private static func matches(_ bytes: [UInt8], at offset: Int, _ id: String) -> Bool {
    bytes[offset..<(offset + 4)].elementsEqual(id.utf8)
  }

  private static func uint16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | (UInt16(bytes[offset + 1]) << 8)
  }

  private static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | (UInt32(bytes[offset + $1]) << (8 * $1)) }
  }
}
