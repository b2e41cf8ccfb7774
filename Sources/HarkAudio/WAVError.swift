/// Why the bytes of a file are not WAV audio that Hark takes.
public struct WAVError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong with the file.
  public enum Reason: Hashable, Sendable {
    /// The file does not begin with `RIFF` (or `RF64`), a size and `WAVE`.
    case notRIFFWAVE
    /// The file ends inside the RIFF header, a chunk header or the `fmt ` chunk.
    case truncatedHeader
    /// The `fmt ` chunk is shorter than the 16 bytes of a `WAVEFORMAT`.
    case shortFormatChunk(size: Int)
    /// No `fmt ` chunk precedes the end of the file or a `data` chunk that runs to it.
    case missingFormatChunk
    /// The file has no `data` chunk.
    case missingDataChunk
    /// The audio is not mono L16 at 8000 or 16000 Hz, nor mono µ-law or A-law at 8000 Hz.
    case unsupportedAudio(formatTag: UInt16, sampleRate: Int, channels: Int, bitsPerSample: Int)
  }

  /// What is wrong.
  public var reason: Reason

  /// An error for `reason`.
  public init(_ reason: Reason) {
    self.reason = reason
  }

  /// A sentence naming the problem, for people.
  public var message: String { description }

  /// The message.
  public var description: String {
    switch reason {
    case .notRIFFWAVE:
      "not a WAV file: it does not begin with a RIFF/WAVE header"
    case .truncatedHeader:
      "WAV file is truncated: it ends inside its header"
    case .shortFormatChunk(let size):
      "WAV fmt chunk is \(size) bytes, shorter than 16"
    case .missingFormatChunk:
      "WAV file has no fmt chunk before its audio"
    case .missingDataChunk:
      "WAV file has no data chunk"
    case .unsupportedAudio(let formatTag, let sampleRate, let channels, let bitsPerSample):
      "WAV is \(sampleRate) Hz \(Self.channelsName(channels)) \(bitsPerSample)-bit "
        + "\(Self.formatName(formatTag)); Hark takes mono 8000 or 16000 Hz 16-bit PCM, "
        + "or 8000 Hz µ-law or A-law"
    }
  }

  private static func channelsName(_ channels: Int) -> String {
    switch channels {
    case 1: "mono"
    case 2: "stereo"
    default: "\(channels)-channel"
    }
  }

  /// The common name of a `WAVE_FORMAT_*` tag.
  private static func formatName(_ formatTag: UInt16) -> String {
    switch formatTag {
    case WAVFile.FormatTag.pcm: "PCM"
    case WAVFile.FormatTag.ieeeFloat: "floating-point"
    case WAVFile.FormatTag.alaw: "A-law"
    case WAVFile.FormatTag.ulaw: "µ-law"
    case 0x0002: "MS ADPCM"
    case 0x0011: "IMA ADPCM"
    case 0x0031: "GSM 6.10"
    case 0x0055: "MP3"
    case WAVFile.FormatTag.extensible: "WAVE_FORMAT_EXTENSIBLE"
    default: "audio of format 0x\(hex(formatTag))"
    }
  }

  /// `value` in 4 uppercase hex digits.
  private static func hex(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
  }
}
