/// How the samples of an audio stream are encoded, as ASRaaS names them in `AudioStreamFormat`.
public enum AudioEncoding: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
  /// Signed 16-bit linear PCM, little-endian (`audio/l16`).
  case linear16
  /// ITU-T G.711 µ-law: one byte a sample (`audio/pcmu`).
  case ulaw
  /// ITU-T G.711 A-law: one byte a sample (`audio/pcma`).
  case alaw

  /// The number of bytes that encode one sample.
  public var bytesPerSample: Int {
    switch self {
    case .linear16: 2
    case .ulaw, .alaw: 1
    }
  }

  /// The sample rates Hark takes in this encoding, in hertz.
  ///
  /// G.711 is a narrowband telephony codec, defined at 8000 Hz only.
  public var supportedSampleRates: [Int] {
    switch self {
    case .linear16: [8000, 16000]
    case .ulaw, .alaw: [8000]
    }
  }

  /// The subtype of the media type, e.g. `l16`.
  var mediaSubtype: String {
    switch self {
    case .linear16: "l16"
    case .ulaw: "pcmu"
    case .alaw: "pcma"
    }
  }

  /// The name for people, e.g. `µ-law`.
  public var description: String {
    switch self {
    case .linear16: "16-bit PCM"
    case .ulaw: "µ-law"
    case .alaw: "A-law"
    }
  }
}
