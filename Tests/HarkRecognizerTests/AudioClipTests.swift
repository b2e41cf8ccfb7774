import HarkAudio
import HarkClient
import NIOCore
import Testing

@Suite("Audio sources: files to 20 ms frames")
struct AudioClipTests {
  @Test(
    "the format a file name suggests",
    arguments: [
      ("call.wav", AudioClip.FileFormat.wav), ("CALL.WAV", .wav), ("a.ulaw", .ulaw),
      ("a.mulaw", .ulaw), ("a.pcmu", .ulaw), ("a.ul", .ulaw), ("a.alaw", .alaw), ("a.pcma", .alaw),
      ("a.al", .alaw), ("a.raw", .l16), ("a.pcm", .l16), ("noextension", .l16),
    ]
  )
  func guess(path: String, expected: AudioClip.FileFormat) {
    #expect(AudioClip.FileFormat.guess(path: path) == expected)
  }

  @Test(
    "a WAV header gives the format; its data chunk is the audio",
    arguments: [
      AudioStreamFormat.linear16(sampleRate: 8000), .linear16(sampleRate: 16000), .ulaw, .alaw,
    ]
  )
  func wav(format: AudioStreamFormat) throws {
    let data: [UInt8] = Array(0..<200).map { UInt8($0) }
    let clip = try AudioClip.parse(
      WAVFile.header(for: format, dataByteCount: data.count) + data,
      format: .wav
    )
    #expect(clip.format == format)
    #expect(clip.bytes == ByteBuffer(bytes: data))
  }

  @Test("raw audio takes the format and rate it is told; L16 defaults to 8000 Hz")
  func raw() throws {
    let bytes: [UInt8] = [1, 2, 3, 4]
    #expect(try AudioClip.parse(bytes, format: .l16).format == .linear16(sampleRate: 8000))
    #expect(
      try AudioClip.parse(bytes, format: .l16, sampleRate: 16000).format
        == .linear16(sampleRate: 16000)
    )
    #expect(try AudioClip.parse(bytes, format: .ulaw).format == .ulaw)
    #expect(try AudioClip.parse(bytes, format: .alaw).format == .alaw)
    #expect(try AudioClip.parse(bytes, format: .ulaw).bytes == ByteBuffer(bytes: bytes))
  }

  @Test(
    "what cannot be streamed is refused with a message naming the problem",
    arguments: [
      ("a WAV read as raw", "is a WAV file"),
      ("a WAV whose rate contradicts --rate", "not 16000 Hz"),
      ("G.711 at 16 kHz", "not supported"),
      ("L16 at 44.1 kHz", "not supported"),
      ("an odd number of L16 bytes", "not a whole number of 16-bit samples"),
      ("not a WAV", "RIFF"),
      ("stereo WAV", "stereo"),
    ]
  )
  func refused(name: String, mention: String) throws {
    let wav = WAVFile.header(for: .linear16(sampleRate: 8000), dataByteCount: 4) + [0, 0, 0, 0]
    var stereo = wav
    stereo[22] = 2  // channels
    let attempt: () throws(AudioClip.FileError) -> AudioClip
    switch name {
    case "a WAV read as raw":
      attempt = { () throws(AudioClip.FileError) in try AudioClip.parse(wav, format: .l16) }
    case "a WAV whose rate contradicts --rate":
      attempt = { () throws(AudioClip.FileError) in
        try AudioClip.parse(wav, format: .wav, sampleRate: 16000)
      }
    case "G.711 at 16 kHz":
      attempt = { () throws(AudioClip.FileError) in
        try AudioClip.parse([0], format: .ulaw, sampleRate: 16000)
      }
    case "L16 at 44.1 kHz":
      attempt = { () throws(AudioClip.FileError) in
        try AudioClip.parse([0, 0], format: .l16, sampleRate: 44100)
      }
    case "an odd number of L16 bytes":
      attempt = { () throws(AudioClip.FileError) in try AudioClip.parse([0, 0, 0], format: .l16) }
    case "not a WAV":
      attempt = { () throws(AudioClip.FileError) in
        try AudioClip.parse(Array("hello, world".utf8), format: .wav)
      }
    default:
      attempt = { () throws(AudioClip.FileError) in try AudioClip.parse(stereo, format: .wav) }
    }
    let error = #expect(throws: AudioClip.FileError.self) { try attempt() }
    #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
    #expect(error?.message.contains("\n") == false)
  }

  @Test("a file that cannot be read: the path and the reason")
  func unreadable() {
    let error = #expect(throws: AudioClip.FileError.self) {
      try AudioClip.read(path: "/nonexistent/call.wav", format: .wav)
    }
    #expect(error?.message == "cannot read /nonexistent/call.wav: No such file or directory")
  }

  @Test(
    "frames are 20 ms of the format; the last one holds what is left",
    arguments: [
      (AudioStreamFormat.linear16(sampleRate: 8000), 320), (.linear16(sampleRate: 16000), 640),
      (.ulaw, 160), (.alaw, 160),
    ]
  )
  func frames(format: AudioStreamFormat, frameBytes: Int) async {
    let clip = AudioClip(
      format: format,
      bytes: ByteBuffer(bytes: (0..<(frameBytes * 3 + 10)).map { UInt8(truncatingIfNeeded: $0) })
    )
    var sizes: [Int] = []
    var joined = ByteBuffer()
    for await frame in clip.frames() {
      sizes.append(frame.readableBytes)
      var frame = frame
      joined.writeBuffer(&frame)
    }
    #expect(sizes == [frameBytes, frameBytes, frameBytes, 10])
    #expect(joined == clip.bytes)
    #expect(clip.duration == Double(frameBytes * 3 + 10) / Double(format.bytesPerSecond))
  }

  @Test("real-time pacing hands out one frame per frame duration")
  func realTime() async {
    let clip = AudioClip(format: .ulaw, bytes: ByteBuffer(repeating: 0xFF, count: 160 * 4))
    let start = ContinuousClock.now
    var count = 0
    for await _ in clip.frames(pacing: .realTime) { count += 1 }
    // Four frames: the last is due 60 ms after the first. (A lower bound only: never a timing
    // assertion that a slow machine could break.)
    #expect(count == 4)
    #expect(ContinuousClock.now - start >= .milliseconds(60))
  }
}
