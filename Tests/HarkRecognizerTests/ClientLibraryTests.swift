import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// The client library against a scripted server that records what arrives when.
@Suite("Client library")
struct ClientLibraryTests {
  /// What the scripted server saw, in order.
  final class Log: Sendable {
    let entries = NIOLockedValueBox<[String]>([])
    let audioBytes = NIOLockedValueBox(0)
    /// FNV-1a of every audio byte, in the order they arrived.
    let checksum = NIOLockedValueBox(Checksum())
    func add(_ entry: String) { entries.withLockedValue { $0.append(entry) } }
    var all: [String] { entries.withLockedValue { $0 } }
  }

  /// A Recognize server that answers the init with 100 after `delay`, logs every request, and
  /// ends with `status` after `after` audio bytes (or when the client half-closes). With
  /// `readDelay`, it stops reading for that long after the 100 (HTTP/2 flow control then holds
  /// the client back).
  static func scriptedServer(
    log: Log,
    delay: Duration,
    gate: Gate? = nil,
    readDelay: Duration? = nil,
    endAfterAudioBytes: Int? = nil,
    finalStatus: UInt32 = 200
  ) async throws -> (GRPCServer, Int) {
    try await recognizeServer { call in
      for try await request in call.requests {
        switch request.request {
        case .recognitionInitMessage?:
          log.add("init")
          try await Task.sleep(for: delay)
          await gate?.wait()
          log.add("sent 100")
          try await call.send(
            .status(
              code: 100,
              message: "Continue",
              details: "recognition started on audio/l16;rate=8000 stream"
            )
          )
          if let readDelay { try await Task.sleep(for: readDelay) }
        case .controlMessage?:
          log.add("start_timers")
          try await call.send(.status(code: 100, message: "Continue", details: "timers started"))
        case .audio(let bytes)?:
          if bytes.readableBytes == 0 { log.add("empty audio") }
          log.checksum.withLockedValue { $0.add(bytes) }
          let total = log.audioBytes.withLockedValue { count in
            count += bytes.readableBytes
            return count
          }
          if log.all.last != "audio" { log.add("audio") }
          if let endAfterAudioBytes, total >= endAfterAudioBytes {
            log.add("ended early")
            try await call.send(.status(code: finalStatus, message: "Done", details: ""))
            return
          }
        case nil:
          break
        }
      }
      log.add("half-close")
      try await call.send(.status(code: finalStatus, message: "Done", details: ""))
    }
  }

  /// A server on 127.0.0.1 (an ephemeral port) whose Recognize method is `body`.
  static func recognizeServer(
    _ body:
      @escaping @Sendable (
        GRPCAsyncServerCall<RecognitionRequest, RecognitionResponse>
      ) async throws -> Void
  ) async throws -> (GRPCServer, Int) {
    let method = GRPCServer.Method.async(
      "/nuance.asr.v1.Recognizer/Recognize",
      requestType: RecognitionRequest.self,
      responseType: RecognitionResponse.self,
      body
    )
    let server = GRPCServer(configuration: .init(host: "127.0.0.1", port: 0), methods: [method])
    return (server, try await server.start().port!)
  }

  static func frames(count: Int, bytes: Int = 320, emptyEvery: Int? = nil) -> [ByteBuffer] {
    (0..<count).map { index in
      if let emptyEvery, index % emptyEvery == 0 { return ByteBuffer() }
      return ByteBuffer(repeating: UInt8(index & 0xFF), count: bytes)
    }
  }

  @Test("audio is held until 100 Continue, then sent in full; empty frames are skipped")
  func holdsAudioUntilContinue() async throws {
    let log = Log()
    let (server, port) = try await Self.scriptedServer(log: log, delay: .milliseconds(300))
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let frames = Self.frames(count: 50, emptyEvery: 10)
    let outcome = try await client.recognize(makeInit(), audio: frames.async)
    #expect(outcome.code == 200)
    #expect(log.all == ["init", "sent 100", "audio", "half-close"])
    #expect(log.audioBytes.withLockedValue { $0 } == 45 * 320)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("beyond the prebuffer the producer waits; nothing is dropped")
  func prebufferBound() async throws {
    let log = Log()
    let gate = Gate()
    let (server, port) = try await Self.scriptedServer(log: log, delay: .zero, gate: gate)
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    let frames = Self.frames(count: 100).async.map { frame in
      pulled.withLockedValue { $0 += 1 }
      return frame
    }
    let outcome = try await client.recognize(makeInit(), audio: frames, prebufferLimit: 3200) {
      recognition in
      // Before the 100 arrives, at most ten frames (3,200 bytes) plus the one offered are pulled.
      #expect(await eventually(within: 10) { pulled.withLockedValue { $0 } >= 10 })
      try await Task.sleep(for: .milliseconds(50))
      #expect(pulled.withLockedValue { $0 } <= 11)
      gate.open()
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(outcome.code == 200)
    #expect(log.audioBytes.withLockedValue { $0 } == 100 * 320)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("when the server ends the recognition early, the client stops pulling audio")
  func stopsOnEarlyEnd() async throws {
    let log = Log()
    let (server, port) = try await Self.scriptedServer(
      log: log,
      delay: .zero,
      endAfterAudioBytes: 3200,
      finalStatus: 404
    )
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    // Real-time pacing: 10 s of audio, of which the server wants 200 ms.
    let audio = AudioClip(
      format: .linear16(sampleRate: 8000),
      bytes: ByteBuffer(repeating: 0, count: 160_000)
    )
    .frames(pacing: .realTime).map { frame in
      pulled.withLockedValue { $0 += 1 }
      return frame
    }
    let outcome = try await client.recognize(makeInit(), audio: audio)
    #expect(outcome.kind == .noSpeech)
    // Once the outcome is in, no more audio is pulled (a frame in flight at most), however long
    // the server took.
    let atOutcome = pulled.withLockedValue { $0 }
    try await Task.sleep(for: .milliseconds(200))
    #expect(pulled.withLockedValue { $0 } <= atOutcome + 1)
    #expect(atOutcome < 500)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("start_timers_message asked for before the 100 follows it")
  func startTimersHeld() async throws {
    let log = Log()
    let (server, port) = try await Self.scriptedServer(log: log, delay: .milliseconds(200))
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let events = try await client.recognize(makeInit(), audio: Self.frames(count: 5).async) {
      recognition in
      recognition.startTimers()
      var summaries: [String] = []
      for await event in recognition.events { summaries.append(event.summary) }
      return summaries
    }
    #expect(events == ["100", "timers:100", "200"])
    #expect(
      log.all.prefix(3) == ["init", "sent 100", "audio"]
        || log.all.prefix(3) == ["init", "sent 100", "start_timers"]
    )
    #expect(log.all.contains("start_timers"))
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("cancel ends the recognition with .cancelled")
  func cancel() async throws {
    let log = Log()
    let (server, port) = try await Self.scriptedServer(log: log, delay: .zero)
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let audio = AudioClip(
      format: .linear16(sampleRate: 8000),
      bytes: ByteBuffer(repeating: 0, count: 160_000)
    )
    .frames(pacing: .realTime)
    let outcome = try await client.recognize(makeInit(), audio: audio) { recognition in
      for await event in recognition.events {
        if case .started = event { recognition.cancel() }
      }
      return await recognition.outcome
    }
    #expect(outcome.kind == .cancelled)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a server that never answers: the timeout ends the recognition, DEADLINE_EXCEEDED")
  func timeout() async throws {
    let log = Log()
    // The 100 would come after a minute.
    let (server, port) = try await Self.scriptedServer(log: log, delay: .seconds(60))
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let start = ContinuousClock.now
    let outcome = try await client.recognize(
      makeInit(),
      audio: Self.frames(count: 3).async,
      timeout: .milliseconds(300)
    )
    #expect(outcome.kind == .transportFailure)
    #expect(outcome.transportStatus?.code == .deadlineExceeded, "\(outcome)")
    #expect(ContinuousClock.now - start < .seconds(20))  // a bound on hanging, not on speed
    // The server got the call (on a busy machine its handler may run after the deadline).
    #expect(await eventually { log.all.first == "init" })
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("no server: the outcome is a transport failure, not a thrown error")
  func unreachable() async throws {
    let client = RecognizerClient(host: "127.0.0.1", port: 1)
    let outcome = try await client.recognize(makeInit(), audio: Self.frames(count: 3).async)
    #expect(outcome.kind == .transportFailure)
    #expect(outcome.transportStatus?.code == .unavailable)
    await client.close()
  }

  @Test(
    "every status maps to its typed outcome",
    arguments: [
      (UInt32(200), RecognitionOutcome.Kind.success), (204, .noResult), (400, .badRequest),
      (401, .unauthorized),
      (403, .forbidden), (404, .noSpeech), (408, .audioTimeout), (409, .conflict),
      (410, .notRecognizing),
      (413, .tooMuchSpeech), (429, .tooManyRequests), (500, .internalError), (502, .resourceError),
      (503, .serviceUnavailable), (512, .shutdown), (418, .otherStatus),
    ]
  )
  func outcomes(_ code: UInt32, _ kind: RecognitionOutcome.Kind) {
    #expect(RecognitionOutcome(status: RecognitionStatus(code: code, message: "")).kind == kind)
  }
}

extension Array where Element: Sendable {
  /// The array as an `AsyncSequence`.
  var async: AsyncStream<Element> {
    AsyncStream { continuation in
      for element in self { continuation.yield(element) }
      continuation.finish()
    }
  }
}

/// A position-sensitive checksum of a byte stream fed in pieces (FNV-1a's step over 8-byte
/// words, then the tail's bytes): cheap enough for megabytes in a debug build, and any byte lost,
/// repeated or moved changes it.
struct Checksum: Equatable, Sendable {
  private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
  private var pending: [UInt8] = []

  mutating func add(_ buffer: ByteBuffer) {
    buffer.withUnsafeReadableBytes { bytes in
      var index = 0
      if !pending.isEmpty {
        while pending.count < 8 && index < bytes.count {
          pending.append(bytes[index])
          index += 1
        }
        guard pending.count == 8 else { return }
        let word = pending.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        mix(word)
        pending.removeAll(keepingCapacity: true)
      }
      while index + 8 <= bytes.count {
        mix(bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        index += 8
      }
      pending.append(contentsOf: bytes[index...])
    }
  }

  private mutating func mix(_ word: UInt64) {
    value ^= word
    value &*= 0x100_0000_01b3
  }
}

/// Holds the scripted server's 100 Continue until the test opens it, so that what a test checks
/// "before the 100" does not depend on how fast a busy machine runs the test.
final class Gate: Sendable {
  private let stream: AsyncStream<Void>
  private let continuation: AsyncStream<Void>.Continuation

  init() { (stream, continuation) = AsyncStream<Void>.makeStream() }

  func open() { continuation.finish() }

  /// Returns once the gate is open (one waiter).
  func wait() async { for await _ in stream {} }
}
