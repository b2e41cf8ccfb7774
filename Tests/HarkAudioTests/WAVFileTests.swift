import HarkAudio
import HarkTesting
import Testing

@Suite("WAV files")
struct WAVFileTests {
  // MARK: Files that SoX writes

  struct SoXCase: CustomTestStringConvertible, Sendable {
    /// SoX's format options for the output file.
    var options: [String]
    var formatTag: UInt16
    var channels: Int
    var sampleRate: Int
    var bitsPerSample: Int
    var format: AudioStreamFormat?

    var testDescription: String { options.joined(separator: " ") }
  }

  static let soxCases: [SoXCase] = [
    SoXCase(
      options: ["-r", "8000", "-c", "1", "-b", "16"],
      formatTag: 1,
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 16,
      format: .linear16(sampleRate: 8000)
    ),
    SoXCase(
      options: ["-r", "16000", "-c", "1", "-b", "16"],
      formatTag: 1,
      channels: 1,
      sampleRate: 16000,
      bitsPerSample: 16,
      format: .linear16(sampleRate: 16000)
    ),
    SoXCase(
      options: ["-r", "8000", "-c", "1", "-e", "mu-law"],
      formatTag: 7,
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 8,
      format: .ulaw
    ),
    SoXCase(
      options: ["-r", "8000", "-c", "1", "-e", "a-law"],
      formatTag: 6,
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 8,
      format: .alaw
    ),
    // 24 bits and 2 channels make SoX write WAVE_FORMAT_EXTENSIBLE.
    SoXCase(
      options: ["-r", "44100", "-c", "2", "-b", "24"],
      formatTag: 1,
      channels: 2,
      sampleRate: 44100,
      bitsPerSample: 24,
      format: nil
    ),
    SoXCase(
      options: ["-r", "8000", "-c", "3", "-b", "16"],
      formatTag: 1,
      channels: 3,
      sampleRate: 8000,
      bitsPerSample: 16,
      format: nil
    ),
    SoXCase(
      options: ["-r", "16000", "-c", "1", "-e", "floating-point", "-b", "32"],
      formatTag: 3,
      channels: 1,
      sampleRate: 16000,
      bitsPerSample: 32,
      format: nil
    ),
    SoXCase(
      options: ["-r", "16000", "-c", "1", "-e", "mu-law"],
      formatTag: 7,
      channels: 1,
      sampleRate: 16000,
      bitsPerSample: 8,
      format: nil
    ),
    SoXCase(
      options: ["-r", "8000", "-c", "1", "-b", "8"],
      formatTag: 1,
      channels: 1,
      sampleRate: 8000,
      bitsPerSample: 8,
      format: nil
    ),
    SoXCase(
      options: ["-r", "22050", "-c", "1", "-b", "16"],
      formatTag: 1,
      channels: 1,
      sampleRate: 22050,
      bitsPerSample: 16,
      format: nil
    ),
  ]

  @Test(
    "a file SoX writes parses to its format, and its data is what SoX reads",
    arguments: soxCases
  )
  func soxFile(_ expected: SoXCase) throws {
    let scratch = try ScratchDirectory()
    try SoX.run(
      ["-n"] + expected.options + [scratch.path("tone.wav"), "synth", "0.1", "sine", "440"]
    )
    try SoX.run([scratch.path("tone.wav"), "-t", "raw", scratch.path("tone.raw")])
    let bytes = try scratch.read("tone.wav")

    let file = try WAVFile(bytes: bytes)
    #expect(file.formatTag == expected.formatTag)
    #expect(file.channels == expected.channels)
    #expect(file.sampleRate == expected.sampleRate)
    #expect(file.bitsPerSample == expected.bitsPerSample)
    #expect(file.format == expected.format)
    #expect(Array(bytes[file.dataRange]) == (try scratch.read("tone.raw")))
    let frames = expected.sampleRate / 10
    #expect(file.dataRange.count == frames * expected.channels * expected.bitsPerSample / 8)
    if let format = expected.format {
      #expect(try file.validate() == format)
    } else {
      #expect(throws: WAVError.self) { try file.validate() }
    }
  }

  @Test(
    "unsupported audio is described in one line",
    arguments: [
      (
        ["-r", "44100", "-c", "2", "-b", "24"],
        "WAV is 44100 Hz stereo 24-bit PCM; Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
          + "or 8000 Hz µ-law or A-law"
      ),
      (
        ["-r", "8000", "-c", "3", "-b", "16"],
        "WAV is 8000 Hz 3-channel 16-bit PCM; Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
          + "or 8000 Hz µ-law or A-law"
      ),
      (
        ["-r", "16000", "-c", "1", "-e", "floating-point", "-b", "32"],
        "WAV is 16000 Hz mono 32-bit floating-point; Hark takes mono 8000 or 16000 Hz 16-bit "
          + "PCM, or 8000 Hz µ-law or A-law"
      ),
      (
        ["-r", "16000", "-c", "1", "-e", "a-law"],
        "WAV is 16000 Hz mono 8-bit A-law; Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
          + "or 8000 Hz µ-law or A-law"
      ),
      (
        ["-r", "8000", "-c", "1", "-e", "ima-adpcm"],
        "WAV is 8000 Hz mono 4-bit IMA ADPCM; Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
          + "or 8000 Hz µ-law or A-law"
      ),
    ]
  )
  func unsupportedMessage(_ options: [String], message: String) throws {
    let scratch = try ScratchDirectory()
    try SoX.run(["-n"] + options + [scratch.path("tone.wav"), "synth", "0.1", "sine", "440"])
    let file = try WAVFile(bytes: try scratch.read("tone.wav"))
    #expect(file.format == nil)
    let error = try #require(throws: WAVError.self) { try file.validate() }
    #expect(error.message == message)
  }

  @Test(
    "a header Hark writes is one SoX reads, and one Hark parses back",
    arguments: [
      AudioStreamFormat.linear16(sampleRate: 8000), .linear16(sampleRate: 16000), .ulaw, .alaw,
    ]
  )
  func writtenHeader(_ format: AudioStreamFormat) throws {
    let data = (0..<800).map { UInt8(truncatingIfNeeded: $0 * 7) }
    let bytes = WAVFile.header(for: format, dataByteCount: data.count) + data
    #expect(bytes.count == 44 + data.count)
    let file = try WAVFile(bytes: bytes)
    #expect(file.format == format)
    #expect(file.dataRange == 44..<(44 + data.count))

    // SoX decodes the file to 16-bit samples; they must be what the data encodes.
    let scratch = try ScratchDirectory()
    try scratch.write(bytes, to: "hark.wav")
    try SoX.run(
      [
        scratch.path("hark.wav"), "-t", "raw", "-e", "signed", "-b", "16", "-L",
        scratch.path("hark.raw"),
      ]
    )
    var expected: [Int16] = []
    var assembler = PCMAssembler(encoding: format.encoding)
    data.withUnsafeBytes { assembler.append($0, into: &expected) }
    #expect(try scratch.readSamples("hark.raw") == expected)
  }

  // MARK: Files built by hand

  /// A chunk: its id, its size (the body's unless given), its body, and a pad byte if odd.
  static func chunk(_ id: String, _ body: [UInt8], size: UInt32? = nil) -> [UInt8] {
    Array(id.utf8) + le32(size ?? UInt32(body.count)) + body + (body.count % 2 == 1 ? [0] : [])
  }

  static func le16(_ value: UInt16) -> [UInt8] {
    [UInt8(value & 0xFF), UInt8(value >> 8)]
  }

  static func le32(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
  }

  /// The body of a 16-byte `fmt ` chunk.
  static func fmt(
    tag: UInt16 = 1,
    channels: UInt16 = 1,
    rate: UInt32 = 8000,
    bits: UInt16 = 16
  )
    -> [UInt8]
  {
    let blockAlign = channels * bits / 8
    return le16(tag) + le16(channels) + le32(rate) + le32(rate * UInt32(blockAlign))
      + le16(blockAlign) + le16(bits)
  }

  /// A WAVEFORMATEXTENSIBLE body whose subformat GUID starts with `subformat` and ends with
  /// `guidTail`.
  static func extensibleFmt(subformat: UInt16, bits: UInt16 = 8, guidTail: [UInt8]) -> [UInt8] {
    fmt(tag: 0xFFFE, bits: bits) + le16(22) + le16(bits) + le32(0x4) + le16(subformat)
      + guidTail
  }

  static let ksGUIDTail: [UInt8] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
  ]

  static func riff(_ chunks: [UInt8], magic: String = "RIFF", size: UInt32? = nil) -> [UInt8] {
    Array(magic.utf8) + le32(size ?? UInt32(4 + chunks.count)) + Array("WAVE".utf8) + chunks
  }

  static let audio: [UInt8] = Array(1...20)

  @Test("unknown chunks are skipped, with the pad byte after an odd size")
  func skipsChunks() throws {
    let bytes = Self.riff(
      Self.chunk("LIST", Array("INFOISFT\u{5}\0\0\0Lavf\0".utf8))
        + Self.chunk("fmt ", Self.fmt())
        + Self.chunk("junk", [1, 2, 3])
        + Self.chunk("fact", Self.le32(10))
        + Self.chunk("data", Self.audio)
        + Self.chunk("id3 ", [9, 9, 9, 9, 9])
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.format == .linear16(sampleRate: 8000))
    #expect(Array(bytes[file.dataRange]) == Self.audio)
  }

  @Test(
    "a data size of 0 or 0xFFFFFFFF, or past the end, means to the end of the file",
    arguments: [0, 0xFFFF_FFFF, 1000] as [UInt32]
  )
  func dataToEnd(size: UInt32) throws {
    let bytes = Self.riff(
      Self.chunk("fmt ", Self.fmt()) + Array("data".utf8) + Self.le32(size) + Self.audio,
      size: 0xFFFF_FFFF
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.dataRange == (bytes.count - 20)..<bytes.count)
    #expect(Array(bytes[file.dataRange]) == Self.audio)
  }

  @Test("an odd-sized data chunk keeps its last byte, and its pad byte is skipped")
  func oddData() throws {
    let bytes = Self.riff(
      Self.chunk("fmt ", Self.fmt(tag: 7, bits: 8)) + Self.chunk("data", [1, 2, 3])
        + Self.chunk("LIST", [])
    )
    let file = try WAVFile(bytes: bytes)
    #expect(Array(bytes[file.dataRange]) == [1, 2, 3])
    #expect(file.format == .ulaw)
  }

  @Test("the fmt chunk may follow a data chunk of known size")
  func fmtAfterData() throws {
    let bytes = Self.riff(
      Self.chunk("data", Self.audio) + Self.chunk("fmt ", Self.fmt(rate: 16000))
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.format == .linear16(sampleRate: 16000))
    #expect(Array(bytes[file.dataRange]) == Self.audio)
  }

  @Test(
    "WAVE_FORMAT_EXTENSIBLE takes its subformat's tag",
    arguments: [(UInt16(7), AudioStreamFormat.ulaw), (6, .alaw)]
  )
  func extensible(_ subformat: UInt16, format: AudioStreamFormat) throws {
    let bytes = Self.riff(
      Self.chunk("fmt ", Self.extensibleFmt(subformat: subformat, guidTail: Self.ksGUIDTail))
        + Self.chunk("data", Self.audio)
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.formatTag == subformat)
    #expect(file.format == format)
  }

  @Test("an extensible format with a subformat GUID not built from a tag stays unknown")
  func extensibleUnknown() throws {
    let bytes = Self.riff(
      Self.chunk(
        "fmt ",
        Self.extensibleFmt(subformat: 7, guidTail: Array(repeating: 0x11, count: 14))
      )
        + Self.chunk("data", Self.audio)
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.formatTag == 0xFFFE)
    #expect(file.format == nil)
    let error = try #require(throws: WAVError.self) { try file.validate() }
    #expect(
      error.message
        == "WAV is 8000 Hz mono 8-bit WAVE_FORMAT_EXTENSIBLE; Hark takes mono 8000 or 16000 Hz "
        + "16-bit PCM, or 8000 Hz µ-law or A-law"
    )
  }

  @Test("an RF64 file is read like a RIFF one, its data running to the end")
  func rf64() throws {
    let bytes = Self.riff(
      Self.chunk("ds64", Array(repeating: 0, count: 28)) + Self.chunk("fmt ", Self.fmt())
        + Array("data".utf8) + Self.le32(0xFFFF_FFFF) + Self.audio,
      magic: "RF64",
      size: 0xFFFF_FFFF
    )
    let file = try WAVFile(bytes: bytes)
    #expect(file.format == .linear16(sampleRate: 8000))
    #expect(Array(bytes[file.dataRange]) == Self.audio)
  }

  @Test(
    "a file that is not WAV, or is cut short, or lacks a chunk, is refused with the reason",
    arguments: [
      ("empty", [], WAVError.Reason.truncatedHeader),
      ("RIFF cut", Array("RIFF\u{24}\0\0\0WAV".utf8), .truncatedHeader),
      ("text", Array("hello world, this is text".utf8), .notRIFFWAVE),
      ("short text", Array("ID3".utf8), .notRIFFWAVE),
      (
        "AVI", riff([]).enumerated().map { $0.offset == 8 ? UInt8(ascii: "A") : $0.element },
        .notRIFFWAVE
      ),
      ("RIFX", Array("RIFX".utf8) + Array(riff(chunk("fmt ", fmt())).dropFirst(4)), .notRIFFWAVE),
      ("no chunks", riff([]), .missingFormatChunk),
      ("fmt only", riff(chunk("fmt ", fmt())), .missingDataChunk),
      ("data only", riff(chunk("data", audio)), .missingFormatChunk),
      (
        "data to the end first", riff(chunk("data", audio, size: 0) + chunk("fmt ", fmt())),
        .missingFormatChunk
      ),
      ("chunk header cut", riff(chunk("fmt ", fmt()) + Array("da".utf8)), .truncatedHeader),
      ("fmt cut", Array(riff(chunk("fmt ", fmt())).dropLast(3)), .truncatedHeader),
      (
        "chunk runs past the end", riff(chunk("fmt ", fmt()) + chunk("LIST", [1, 2], size: 100)),
        .truncatedHeader
      ),
      (
        "short fmt", riff(chunk("fmt ", Array(fmt().prefix(14))) + chunk("data", audio)),
        .shortFormatChunk(size: 14)
      ),
    ] as [(String, [UInt8], WAVError.Reason)]
  )
  func refuses(_ name: String, bytes: [UInt8], reason: WAVError.Reason) {
    #expect(throws: WAVError(reason), "\(name)") { try WAVFile(bytes: bytes) }
  }

  @Test(
    "each error is one line that names the problem",
    arguments: [
      (WAVError.Reason.notRIFFWAVE, "not a WAV file: it does not begin with a RIFF/WAVE header"),
      (.truncatedHeader, "WAV file is truncated: it ends inside its header"),
      (.shortFormatChunk(size: 14), "WAV fmt chunk is 14 bytes, shorter than 16"),
      (.missingFormatChunk, "WAV file has no fmt chunk before its audio"),
      (.missingDataChunk, "WAV file has no data chunk"),
      (
        .unsupportedAudio(formatTag: 0x55, sampleRate: 44100, channels: 2, bitsPerSample: 0),
        "WAV is 44100 Hz stereo 0-bit MP3; Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
          + "or 8000 Hz µ-law or A-law"
      ),
      (
        .unsupportedAudio(formatTag: 0x1234, sampleRate: 8000, channels: 1, bitsPerSample: 4),
        "WAV is 8000 Hz mono 4-bit audio of format 0x1234; Hark takes mono 8000 or 16000 Hz "
          + "16-bit PCM, or 8000 Hz µ-law or A-law"
      ),
    ]
  )
  func messages(_ reason: WAVError.Reason, message: String) {
    #expect(WAVError(reason).message == message)
    #expect("\(WAVError(reason))" == message)
  }
}
