public import HarkAudio
public import HarkProto
public import NIOCore

#if canImport(Glibc)
  internal import Glibc
#endif

/// Audio ready to stream: its format and its samples' bytes (a WAV file's header removed).
public struct AudioClip: Sendable {
  /// The encoding and sample rate.
  public var format: AudioStreamFormat
  /// The encoded samples.
  public var bytes: ByteBuffer

  /// A clip of `bytes` in `format`.
  public init(format: AudioStreamFormat, bytes: ByteBuffer) {
    self.format = format
    self.bytes = bytes
  }

  /// The clip's duration in seconds.
  public var duration: Double { Double(bytes.readableBytes) / Double(format.bytesPerSecond) }

  /// How a file's bytes are to be read.
  public enum FileFormat: String, Sendable, CaseIterable {
    /// A RIFF/WAVE file: format, rate and channels from its header.
    case wav
    /// Raw signed 16-bit little-endian PCM.
    case l16
    /// Raw G.711 µ-law.
    case ulaw
    /// Raw G.711 A-law.
    case alaw

    /// The format a file name suggests (`.wav`, `.ulaw`/`.mulaw`/`.pcmu`, `.alaw`/`.pcma`, else L16).
    public static func guess(path: String) -> FileFormat {
      let lower = path.lowercased()
      if lower.hasSuffix(".wav") { return .wav }
      if lower.hasSuffix(".ulaw") || lower.hasSuffix(".mulaw") || lower.hasSuffix(".pcmu")
        || lower.hasSuffix(".ul")
      {
        return .ulaw
      }
      if lower.hasSuffix(".alaw") || lower.hasSuffix(".pcma") || lower.hasSuffix(".al") {
        return .alaw
      }
      return .l16
    }
  }

  /// Why a file cannot be streamed; `message` is one line naming the problem.
  public struct FileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    public var description: String { message }

    /// An error saying `message`.
    public init(message: String) {
      self.message = message
    }
  }

  /// Reads a file as `format` (raw formats at `sampleRate`, 8000 by default).
  public static func read(
    path: String,
    format: FileFormat,
    sampleRate: Int? = nil
  ) throws(FileError) -> AudioClip {
    let bytes = try readFile(path)
    return try parse(bytes, format: format, sampleRate: sampleRate, name: path)
  }

  /// Interprets `bytes` as `format`.
  public static func parse(
    _ bytes: [UInt8],
    format: FileFormat,
    sampleRate: Int? = nil,
    name: String = "the audio"
  ) throws(FileError) -> AudioClip {
    switch format {
    case .wav:
      let file: WAVFile
      do {
        file = try WAVFile(bytes: bytes)
        try file.validate()
      } catch {
        throw FileError(message: "\(name): \(error)")
      }
      guard let audioFormat = file.format else {
        throw FileError(message: "\(name): unsupported WAV audio")
      }
      if let sampleRate, sampleRate != audioFormat.sampleRate {
        throw FileError(
          message: "\(name): the WAV header says \(audioFormat.sampleRate) Hz, not \(sampleRate) Hz"
        )
      }
      return AudioClip(format: audioFormat, bytes: ByteBuffer(bytes: bytes[file.dataRange]))
    case .l16, .ulaw, .alaw:
      if isWAV(bytes) {
        throw FileError(
          message: "\(name) is a WAV file: read it as wav, not raw \(format.rawValue)"
        )
      }
      let encoding: AudioEncoding = format == .l16 ? .linear16 : format == .ulaw ? .ulaw : .alaw
      let rate = sampleRate ?? 8000
      guard AudioStreamFormat.isSupported(encoding, sampleRate: rate) else {
        throw FileError(
          message:
            "\(name): \(format.rawValue) at \(rate) Hz is not supported (L16 takes 8000 or 16000 Hz, G.711 8000 Hz)"
        )
      }
      let audioFormat = AudioStreamFormat(encoding: encoding, sampleRate: rate)
      if encoding == .linear16 && bytes.count % 2 != 0 {
        throw FileError(
          message: "\(name): \(bytes.count) bytes is not a whole number of 16-bit samples"
        )
      }
      return AudioClip(format: audioFormat, bytes: ByteBuffer(bytes: bytes))
    }
  }

  /// Whether `bytes` begin with a RIFF/WAVE (or RF64) header.
  public static func isWAV(_ bytes: some Collection<UInt8>) -> Bool {
    let head = Array(bytes.prefix(12))
    guard head.count == 12 else { return false }
    return (head.starts(with: "RIFF".utf8) || head.starts(with: "RF64".utf8))
      && head[8..<12].elementsEqual("WAVE".utf8)
  }

  private static func readFile(_ path: String) throws(FileError) -> [UInt8] {
    guard let file = fopen(path, "rb") else {
      throw FileError(message: "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
      if count > 0 { bytes += chunk[0..<count] }
      if count < chunk.count {
        if ferror(file) != 0 {
          throw FileError(message: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        break
      }
    }
    return bytes
  }

  /// The clip as frames of `frameMilliseconds` (20 ms by default, as telephony sends), paced.
  public func frames(
    frameMilliseconds: Int = 20,
    pacing: AudioPacing = .asFastAsPossible
  ) -> AudioFrames {
    AudioFrames(
      bytes: bytes,
      frameBytes: max(format.bytes(forMilliseconds: frameMilliseconds), 1),
      frameMilliseconds: frameMilliseconds,
      pacing: pacing
    )
  }
}

/// How fast frames are handed out.
public enum AudioPacing: Sendable, Hashable {
  /// As fast as they are taken (a file).
  case asFastAsPossible
  /// One frame per frame duration, on a schedule from the first frame (a live call).
  case realTime
}

/// An audio clip cut into frames: an `AsyncSequence` of `ByteBuffer`s to stream.
public struct AudioFrames: AsyncSequence, Sendable {
  public typealias Element = ByteBuffer

  let bytes: ByteBuffer
  let frameBytes: Int
  let frameMilliseconds: Int
  let pacing: AudioPacing

  public struct AsyncIterator: AsyncIteratorProtocol {
    var bytes: ByteBuffer
    let frameBytes: Int
    let frameMilliseconds: Int
    let pacing: AudioPacing
    var start: ContinuousClock.Instant?
    var index = 0

    public mutating func next() async -> ByteBuffer? {
      guard bytes.readableBytes > 0 else { return nil }
      if pacing == .realTime {
        let now = ContinuousClock.now
        let start = self.start ?? now
        self.start = start
        let due = start + .milliseconds(frameMilliseconds * index)
        if due > now { try? await Task.sleep(until: due, clock: .continuous) }
      }
      index += 1
      return bytes.readSlice(length: Swift.min(frameBytes, bytes.readableBytes))
    }
  }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(
      bytes: bytes,
      frameBytes: frameBytes,
      frameMilliseconds: frameMilliseconds,
      pacing: pacing
    )
  }
}

extension AudioStreamFormat {
  /// The `AudioFormat` message of an init for this format.
  public var protoFormat: AudioFormat {
    switch encoding {
    case .linear16: .pcm(sampleRateHz: UInt32(sampleRate))
    case .ulaw: .ulaw
    case .alaw: .alaw
    }
  }
}
