import HarkAudio
import Testing

@Suite("audio formats")
struct AudioFormatTests {
  @Test(
    "the media type names the stream as the 100 Continue status does",
    arguments: [
      (AudioStreamFormat.linear16(sampleRate: 8000), "audio/l16;rate=8000"),
      (.linear16(sampleRate: 16000), "audio/l16;rate=16000"),
      (.ulaw, "audio/pcmu;rate=8000"),
      (.alaw, "audio/pcma;rate=8000"),
    ]
  )
  func mediaType(_ format: AudioStreamFormat, expected: String) {
    #expect(format.mediaType == expected)
    #expect("\(format)" == expected)
  }

  @Test(
    "sizes follow from the encoding and the rate",
    arguments: [
      (AudioStreamFormat.linear16(sampleRate: 8000), 2, 16000, 320),
      (.linear16(sampleRate: 16000), 2, 32000, 640),
      (.ulaw, 1, 8000, 160),
      (.alaw, 1, 8000, 160),
    ]
  )
  func sizes(_ format: AudioStreamFormat, bytesPerSample: Int, bytesPerSecond: Int, frameBytes: Int)
  {
    #expect(format.bytesPerSample == bytesPerSample)
    #expect(format.bytesPerSecond == bytesPerSecond)
    #expect(format.bytes(forMilliseconds: 20) == frameBytes)
    #expect(format.bytes(forMilliseconds: 0) == 0)
    #expect(format.bytes(forMilliseconds: 1000) == bytesPerSecond)
    #expect(format.milliseconds(forBytes: frameBytes) == 20)
    #expect(format.milliseconds(forBytes: bytesPerSecond * 3) == 3000)
  }

  @Test("a split L16 sample counts for its share of the duration")
  func partialSample() {
    #expect(AudioStreamFormat.linear16(sampleRate: 8000).milliseconds(forBytes: 161) == 10.0625)
  }

  @Test(
    "L16 takes 8000 and 16000 Hz; G.711 takes 8000 Hz only",
    arguments: [
      (AudioEncoding.linear16, 8000, true),
      (.linear16, 16000, true),
      (.linear16, 44100, false),
      (.linear16, 0, false),
      (.ulaw, 8000, true),
      (.ulaw, 16000, false),
      (.alaw, 8000, true),
      (.alaw, 16000, false),
    ]
  )
  func supported(_ encoding: AudioEncoding, sampleRate: Int, expected: Bool) {
    #expect(AudioStreamFormat.isSupported(encoding, sampleRate: sampleRate) == expected)
    #expect(encoding.supportedSampleRates.contains(sampleRate) == expected)
  }

  @Test("an encoding knows its sample size and its name")
  func encodings() {
    #expect(AudioEncoding.allCases.map(\.bytesPerSample) == [2, 1, 1])
    #expect(AudioEncoding.allCases.map(\.description) == ["16-bit PCM", "µ-law", "A-law"])
    #expect(AudioStreamFormat.ulaw == AudioStreamFormat(encoding: .ulaw, sampleRate: 8000))
  }
}
