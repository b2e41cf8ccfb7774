import HarkAudio
import HarkClient
import HarkProto
import HarkRecognizer
import HarkServer
import HarkSphinx
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Audio messages of any size against the sphinx engine over a real socket: a client may cut
/// its audio anywhere (1,024 and 4,096 bytes are what Python clients send), and no cut may crash
/// the server or lose its recognitions.
@Suite("sphinx: audio messages of every size", .serialized, .cpuBound, .timeLimit(.minutes(5)))
struct SphinxMessageSizeTests {
  @Test("every size from 1 to 330 bytes and larger ones to 4,096, in L16 8/16 kHz, µ-law and A-law")
  func everySize() async throws {
    var configuration = RecognizerServer.Configuration(host: "127.0.0.1", port: 0, recognizers: 4)
    configuration.prewarmEngines = true
    // Thousands of tiny messages a call keep an event loop busy: one of the test's own.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    let server = RecognizerServer(configuration: configuration, group: group) {
      try! SphinxEngine()
    }
    let port = try await server.start().port!
    // An utterance live in the decoder (a grammar with partial results) while the odd-sized
    // messages arrive: where the old positions went wrong.
    // 200 ms from just before the speech starts: enough for the endpointer to start an
    // utterance and the decoder to take many messages inside it, and cheap to decode 1,380 times.
    let speech8k = Self.onset(of: try speech("one", sampleRate: 8000), sampleRate: 8000)
    let speech16k = Self.onset(of: try speech("one", sampleRate: 16000), sampleRate: 16000)
    let formats: [(String, AudioFormat, ByteBuffer)] = [
      ("L16 8 kHz", .pcm(sampleRateHz: 8000), Self.linear16(speech8k)),
      ("L16 16 kHz", .pcm(sampleRateHz: 16000), Self.linear16(speech16k)),
      ("µ-law", .ulaw, Self.g711(speech8k, .ulaw)),
      ("A-law", .alaw, Self.g711(speech8k, .alaw)),
    ]
    let failures = NIOLockedValueBox<[String]>([])
    let cases = formats.flatMap { format in FixedSizeMessages.sizesUnderTest.map { (format, $0) } }
    try await forEach(cases, concurrently: 4) { item in
      let ((name, audioFormat, audio), size) = item
      var parameters = RecognitionParameters(language: "en-US", audioFormat: audioFormat)
      parameters.utteranceDetectionMode = .multiple
      parameters.resultType = .partial
      let requests =
        [
          RecognitionRequest.initMessage(
            RecognitionInitMessage(
              parameters: parameters,
              resources: [RecognitionResource(.builtin("digits"))]
            )
          )
        ] + Self.split(audio, size: size).map(RecognitionRequest.audio)
      var codes: [UInt32] = []
      // An engine goes back to the pool once its worker is idle, a moment after its call
      // ended: a 409 in between is tried again.
      for _ in 0..<50 {
        codes = try await RawRecognizeCall.run(port: port, requests).statusCodes
        guard codes == [409] else { break }
        try await Task.sleep(for: .milliseconds(20))
      }
      if codes != [100, 200] && codes != [100, 204] {
        failures.withLockedValue { $0.append("\(name), \(size) bytes: statuses \(codes)") }
      }
    }
    #expect(failures.withLockedValue { $0 }.isEmpty, "\(failures.withLockedValue { $0 })")
    #expect(await eventually { server.idleRecognizers == 4 })
    await server.shutdown(gracePeriod: .milliseconds(200))
  }

  /// The 200 ms of `samples` from 20 ms before their first loud sample.
  static func onset(of samples: [Int16], sampleRate: Int) -> [Int16] {
    let first = samples.firstIndex { abs(Int($0)) > 1000 } ?? 0
    let start = max(first - sampleRate / 50, 0)
    return Array(samples[start..<min(start + sampleRate / 5, samples.count)])
  }

  /// `audio` in messages of `size` bytes (the last may be shorter).
  static func split(_ audio: ByteBuffer, size: Int) -> [ByteBuffer] {
    var rest = audio
    var messages: [ByteBuffer] = []
    while rest.readableBytes > 0 {
      messages.append(rest.readSlice(length: min(size, rest.readableBytes))!)
    }
    return messages
  }

  static func linear16(_ samples: [Int16]) -> ByteBuffer {
    var buffer = ByteBuffer()
    for sample in samples { buffer.writeInteger(sample, endianness: .little) }
    return buffer
  }

  static func g711(_ samples: [Int16], _ encoding: AudioEncoding) -> ByteBuffer {
    var bytes: [UInt8] = []
    samples.withUnsafeBufferPointer { G711.encode($0, encoding: encoding, into: &bytes) }
    return ByteBuffer(bytes: bytes)
  }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass.
func eventually(within seconds: Double = 30, _ condition: () async -> Bool) async -> Bool {
  let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
  while ContinuousClock.now < deadline {
    if await condition() { return true }
    try? await Task.sleep(nanoseconds: 10_000_000)
  }
  return await condition()
}
