/// The encoding and sample rate of an audio stream: one of the four that Hark takes.
///
/// These are L16 at 8000 or 16000 Hz, and G.711 µ-law or A-law at 8000 Hz. The
/// ``mediaType`` is how the server's `100 Continue` status names the stream, as in
/// `recognition started on audio/l16;rate=8000 stream`.
public struct AudioStreamFormat: Hashable, Sendable, CustomStringConvertible {
  /// How samples are encoded.
  public let encoding: AudioEncoding
  /// Samples a second, in hertz.
  public let sampleRate: Int

  /// A format of `encoding` at `sampleRate`.
  ///
  /// - Precondition: `sampleRate` is one of `encoding.supportedSampleRates`; check input from
  ///   outside with ``isSupported(_:sampleRate:)`` first.
  public init(encoding: AudioEncoding, sampleRate: Int) {
    precondition(
      Self.isSupported(encoding, sampleRate: sampleRate),
      "\(encoding) at \(sampleRate) Hz is not a supported audio format"
    )
    self.encoding = encoding
    self.sampleRate = sampleRate
  }

  /// Whether Hark takes `encoding` at `sampleRate`.
  public static func isSupported(_ encoding: AudioEncoding, sampleRate: Int) -> Bool {
    encoding.supportedSampleRates.contains(sampleRate)
  }

  /// L16 at `sampleRate`, 8000 or 16000 Hz.
  public static func linear16(sampleRate: Int) -> AudioStreamFormat {
    AudioStreamFormat(encoding: .linear16, sampleRate: sampleRate)
  }

  /// µ-law at 8000 Hz.
  public static let ulaw = AudioStreamFormat(encoding: .ulaw, sampleRate: 8000)

  /// A-law at 8000 Hz.
  public static let alaw = AudioStreamFormat(encoding: .alaw, sampleRate: 8000)

  /// The number of bytes that encode one sample.
  public var bytesPerSample: Int { encoding.bytesPerSample }

  /// The number of bytes that encode one second.
  public var bytesPerSecond: Int { sampleRate * bytesPerSample }

  /// The number of bytes that encode `milliseconds` of audio, e.g. 320 for 20 ms of 8 kHz L16.
  ///
  /// Exact for every whole number of milliseconds, as both rates are multiples of 1000 Hz.
  public func bytes(forMilliseconds milliseconds: Int) -> Int {
    milliseconds * (bytesPerSecond / 1000)
  }

  /// The duration that `bytes` bytes of audio last, in milliseconds.
  ///
  /// A trailing byte that is not a whole L16 sample counts for its share of one.
  public func milliseconds(forBytes bytes: Int) -> Double {
    Double(bytes) * 1000 / Double(bytesPerSecond)
  }

  /// The media type that names the stream, e.g. `audio/l16;rate=8000` or `audio/pcmu;rate=8000`.
  public var mediaType: String { "audio/\(encoding.mediaSubtype);rate=\(sampleRate)" }

  /// The media type.
  public var description: String { mediaType }
}
