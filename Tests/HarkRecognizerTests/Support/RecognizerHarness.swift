import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A DTMF recognizer on a loopback port, and a client of it.
struct RecognizerHarness {
  let server: RecognizerServer
  let client: RecognizerClient
  let port: Int

  static func start(
    recognizers: Int = 8,
    idleTimeout: TimeAmount = .seconds(10),
    maxSessionsPerSecond: Double? = nil,
    authorize: (@Sendable (GRPCMetadata, RecognitionConfiguration) -> RecognitionStatus?)? = nil,
    configure: (inout RecognizerServer.Configuration) -> Void = { _ in },
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    makeEngine: @escaping @Sendable () -> any SpeechEngine = { DTMFEngine() }
  ) async throws -> RecognizerHarness {
    var configuration = RecognizerServer.Configuration(
      host: "127.0.0.1",
      port: 0,
      recognizers: recognizers,
      idleTimeout: idleTimeout,
      maxSessionsPerSecond: maxSessionsPerSecond,
      authorize: authorize
    )
    configure(&configuration)
    let server = RecognizerServer(
      configuration: configuration,
      group: group,
      makeEngine: makeEngine
    )
    let port = try await server.start().port!
    return RecognizerHarness(
      server: server,
      client: RecognizerClient(host: "127.0.0.1", port: port),
      port: port
    )
  }

  func stop() async {
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(200))
  }

  /// Runs a recognition and returns every event (the last is `.finished`).
  func recognize(
    _ initMessage: RecognitionInitMessage,
    audio: ByteBuffer,
    format: AudioStreamFormat = .linear16(sampleRate: 8000),
    metadata: GRPCMetadata = GRPCMetadata(),
    frameMilliseconds: Int = 20,
    retryPolicy: RetryPolicy = .none
  ) async throws -> [RecognitionEvent] {
    let frames = AudioClip(format: format, bytes: audio).frames(
      frameMilliseconds: frameMilliseconds
    )
    return try await client.recognize(
      initMessage,
      audio: frames,
      metadata: metadata,
      retryPolicy: retryPolicy
    ) {
      recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events { events.append(event) }
      return events
    }
  }
}

/// An init message for L16 at `sampleRate` (or another format), with `configure` applied.
func makeInit(
  sampleRate: UInt32 = 8000,
  format: AudioFormat? = nil,
  mode: UtteranceDetectionMode = .multiple,
  resultType: ResultType = .final,
  configure: (inout RecognitionParameters) -> Void = { _ in }
) -> RecognitionInitMessage {
  var parameters = RecognitionParameters(
    language: "en-US",
    audioFormat: format ?? .pcm(sampleRateHz: sampleRate)
  )
  parameters.utteranceDetectionMode = mode
  parameters.resultType = resultType
  configure(&parameters)
  return RecognitionInitMessage(parameters: parameters)
}

/// L16 audio of `segments` at `sampleRate`, little-endian.
func dtmfAudio(
  _ segments: [DTMFGenerator.Segment],
  sampleRate: Int = 8000,
  noise: Double? = nil
) -> ByteBuffer {
  var generator = DTMFGenerator(sampleRate: sampleRate, noiseLevel: noise, seed: 7)
  let samples = generator.generate(segments)
  var buffer = ByteBuffer()
  buffer.reserveCapacity(samples.count * 2)
  for sample in samples { buffer.writeInteger(sample, endianness: .little) }
  return buffer
}

/// Key presses then silence: `keys` as 100 ms tones with 100 ms gaps.
func keys(_ keys: String, before: Int = 300, after: Int = 800) -> [DTMFGenerator.Segment] {
  [.silence(milliseconds: before)] + DTMFGenerator.segments(DTMFSymbol.symbols(keys)!) + [
    .silence(milliseconds: after)
  ]
}

extension RecognitionEvent {
  /// A short name for matching sequences: "100", "sos", "partial:12", "final:123", "200".
  var summary: String {
    switch self {
    case .started(let status, _): "\(status.code)"
    case .timersStarted(let status): "timers:\(status.code)"
    case .informational(let status): "info:\(status.code)"
    case .startOfSpeech: "sos"
    case .partialResult(let result): "partial:\(result.hypotheses.first?.formattedText ?? "")"
    case .finalResult(let result):
      "final:\(result.hypotheses.first?.formattedText ?? "")\(result.hypotheses.first?.rejected == true ? "(rejected)" : "")"
    case .retrying(let attempt, _, let reason):
      "retry\(attempt):\(reason.code.map(String.init) ?? "\(reason.kind)")"
    case .resumed(let atMs): "resumed@\(atMs)"
    case .finished(let outcome): outcome.code.map(String.init) ?? "\(outcome.kind)"
    }
  }
}

extension RecognizerHarness {
  /// Sends `requests` as they are (no client rules), waits `pause` — or, with `holdUntil`, until
  /// it returns true (a minute at most) — before half-closing (or never half-closes when
  /// `halfClose` is false), and returns every response.
  func rawCall(
    _ requests: [RecognitionRequest],
    pause: Duration = .zero,
    holdUntil release: (@Sendable () -> Bool)? = nil,
    halfClose: Bool = true,
    metadata: GRPCMetadata = GRPCMetadata()
  ) async throws -> [RecognitionResponse] {
    try await client.channel.withCall(
      path: RecognizerServer.recognizePath,
      metadata: metadata,
      request: RecognitionRequest.self,
      response: RecognitionResponse.self
    ) { call in
      let collected = NIOLockedValueBox<(responses: [RecognitionResponse], done: Bool)>(([], false))
      let reader = Task {
        do {
          for try await response in call.responses {
            collected.withLockedValue { $0.responses.append(response) }
          }
        } catch {}
        collected.withLockedValue { $0.done = true }
      }
      for request in requests { try? await call.send(request) }
      // Wait out the pause (or until released), unless the call ends first.
      let deadline = ContinuousClock.now + (release == nil ? pause : .seconds(60))
      while ContinuousClock.now < deadline, !collected.withLockedValue({ $0.done }),
        !(release?() ?? false)
      {
        try await Task.sleep(for: .milliseconds(10))
      }
      if halfClose { await call.finish() }
      await reader.value
      return collected.withLockedValue { $0.responses }
    }
  }
}

/// Audio requests of 20 ms each for `audio`.
func audioRequests(_ audio: ByteBuffer, frameBytes: Int = 320) -> [RecognitionRequest] {
  audioFrames(audio, frameBytes: frameBytes).map { .audio($0) }
}

/// `audio` in frames of `frameBytes` (20 ms of 8 kHz L16), the last one shorter if need be.
func audioFrames(_ audio: ByteBuffer, frameBytes: Int = 320) -> [ByteBuffer] {
  var audio = audio
  var frames: [ByteBuffer] = []
  while audio.readableBytes > 0 {
    frames.append(audio.readSlice(length: min(frameBytes, audio.readableBytes))!)
  }
  return frames
}

/// `audio` as the library's own sequence, fed a 20 ms frame every `period` (5 ms: four times
/// real time) by a task, which the caller cancels once the recognition ended.
func pacedAudio(
  _ audio: ByteBuffer,
  every period: Duration = .milliseconds(5)
)
  -> (RecognitionAudio, Task<Void, Never>)
{
  let (stream, writer) = RecognitionAudio.makeStream()
  let producer = Task {
    for frame in audioFrames(audio) where !Task.isCancelled {
      _ = writer.yield(frame)
      try? await Task.sleep(for: period)
    }
    writer.finish()
  }
  return (stream, producer)
}

extension RecognitionResponse {
  /// "100", "sos", "partial:…", "final:…" as for events.
  var summary: String {
    switch response {
    case .status(let status)?: "\(status.code)"
    case .startOfSpeech?: "sos"
    case .result(let result)?:
      "\(result.resultType == .final ? "final" : "partial"):\(result.hypotheses.first?.formattedText ?? "")"
    case nil: "empty"
    }
  }

  var status: RecognitionStatus? {
    if case .status(let status)? = response { return status }
    return nil
  }
}
