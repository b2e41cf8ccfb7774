import Dispatch
import Foundation
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// An engine on a worker thread that falls behind: the server stops acknowledging the client's
/// data, HTTP/2 flow control holds the client library's audio producer, and once the engine
/// catches up every sample is recognized: nothing buffered without bound, nothing lost.
@Suite("A slow engine on a worker thread")
struct WorkerEngineTests {
  /// A worker-thread engine whose `process` waits until the test opens its gate, and whose final
  /// result is the number of samples it processed.
  final class GatedEngine: SpeechEngine, @unchecked Sendable {
    let opened = NIOLockedValueBox(false)
    let gate = DispatchSemaphore(value: 0)
    let processed = NIOLockedValueBox(0)
    var runsOnWorkerThread: Bool { true }

    func open() {
      opened.withLockedValue { $0 = true }
      gate.signal()
    }

    func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice] {
      []
    }

    func process(
      _ samples: UnsafeBufferPointer<Int16>,
      at position: Int
    ) throws(EngineError) -> EngineHypothesis? {
      // Blocks the session's worker thread (a Dispatch queue's, not a cooperative one).
      if !opened.withLockedValue({ $0 }) {
        gate.wait()
        gate.signal()
      }
      processed.withLockedValue { $0 += samples.count }
      return nil
    }

    func beginUtterance(at onset: Int) throws(EngineError) {}

    func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
      let count = processed.withLockedValue { $0 }
      return [EngineHypothesis(words: [], text: "\(count) samples", confidence: 1)]
    }

    func reset() {}
  }

  /// `total` 20 ms frames of 8 kHz L16 — a second of silence, then a 1 kHz tone — counting how
  /// many the client library has pulled.
  struct CountedFrames: AsyncSequence, Sendable {
    let total: Int
    let pulled: NIOLockedValueBox<Int>

    struct AsyncIterator: AsyncIteratorProtocol {
      let total: Int
      let pulled: NIOLockedValueBox<Int>
      var index = 0

      mutating func next() async -> ByteBuffer? {
        guard index < total else { return nil }
        var frame = ByteBuffer()
        for sample in 0..<160 {
          let value =
            index < 50 ? 0 : Int16(6000 * sin(2 * Double.pi * 1000 * Double(sample) / 8000))
          frame.writeInteger(value, endianness: .little)
        }
        index += 1
        pulled.withLockedValue { $0 += 1 }
        return frame
      }
    }

    func makeAsyncIterator() -> AsyncIterator {
      AsyncIterator(total: total, pulled: pulled)
    }
  }

  /// A server of one `engine`, with `idleTimeout`, and (unless nil) a small stream window so
  /// that a held client stalls soon.
  static func startServer(
    _ engine: GatedEngine,
    idleTimeout: TimeAmount,
    streamWindow: Int? = 32 << 10
  ) async throws -> (RecognizerServer, Int) {
    var configuration = RecognizerServer.Configuration(host: "127.0.0.1", port: 0, recognizers: 1)
    if let streamWindow {
      configuration.connection = GRPCConnectionConfiguration(initialStreamWindowSize: streamWindow)
    }
    configuration.idleTimeout = idleTimeout
    let server = RecognizerServer(configuration: configuration) { engine }
    return (server, try await server.start().port!)
  }

  @Test("the client is held while the engine is behind, and every sample is recognized after")
  func backpressure() async throws {
    let engine = GatedEngine()
    let (server, port) = try await Self.startServer(engine, idleTimeout: .seconds(30))
    let client = RecognizerClient(host: "127.0.0.1", port: port)

    // 40 s of audio, sent as fast as the client library may.
    let total = 2_000
    let pulled = NIOLockedValueBox(0)
    let started = NIOLockedValueBox(false)
    let frames = CountedFrames(total: total, pulled: pulled)
    // A prebuffer of 100 frames: the client holds no more than that before the 100 Continue.
    async let ended = client.recognize(
      makeInit(mode: .disabled),
      audio: frames,
      prebufferLimit: 32_000
    ) { recognition -> (RecognitionOutcome, [String]) in
      var finals: [String] = []
      for await event in recognition.events {
        if case .started = event { started.withLockedValue { $0 = true } }
        if case .finalResult(let result) = event {
          finals.append(result.hypotheses.first?.formattedText ?? "")
        }
      }
      return (await recognition.outcome, finals)
    }

    // With the engine stopped, the producer must stall: what it pulled is bounded by the
    // server's backlog limit (50 jobs), the stream window (32 KiB, ≈ 100 frames), the client's
    // send queue (64 KiB, ≈ 200 frames) and its inbox (32,000 bytes, 100 frames), not by the 2,000
    // frames on offer (it stops at 350–450 here).
    // Waits for the 100 Continue (before it the client holds up to 100 frames here), then
    // until the count is past the backlog limit and has not moved for half a second (a minute at
    // most: on a busy machine the producer can pause for longer before it gets that far).
    let deadline = ContinuousClock.now + .seconds(60)
    while !started.withLockedValue({ $0 }) && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(20))
    }
    var stalledAt = -1
    var unchangedReadings = 0
    while (unchangedReadings < 25 || stalledAt <= 50) && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(20))
      let now = pulled.withLockedValue { $0 }
      unchangedReadings = now == stalledAt ? unchangedReadings + 1 : 0
      stalledAt = now
    }
    let whileStalled = pulled.withLockedValue { $0 }
    #expect(unchangedReadings >= 25, "the producer kept going while the engine was stopped")
    // More than the backlog limit went out (so the session had to hold the client back)…
    #expect(whileStalled > 50, "\(whileStalled) frames pulled with the engine stopped")
    // …but far fewer than were on offer.
    #expect(whileStalled < 1_000, "\(whileStalled) frames pulled with the engine stopped")
    #expect(engine.processed.withLockedValue { $0 } == 0)

    engine.open()
    let (outcome, finals) = try await ended
    #expect(outcome.status?.code == 200, "\(outcome)")
    #expect(pulled.withLockedValue { $0 } == total)
    #expect(engine.processed.withLockedValue { $0 } == total * 160)
    #expect(finals == ["\(total * 160) samples"])
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(200))
  }

  @Test("the idle clock stops while the server holds the client back: no 408 for its own delay")
  func idleClockPausesWhileHeld() async throws {
    let engine = GatedEngine()
    // Far shorter than the engine's stop: a clock that ran while the server held the client's
    // window would end the recognition with 408.
    let (server, port) = try await Self.startServer(engine, idleTimeout: .seconds(1))
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let total = 1_000
    let pulled = NIOLockedValueBox(0)
    async let outcome = client.recognize(
      makeInit(mode: .disabled),
      audio: CountedFrames(total: total, pulled: pulled)
    )
    // The producer stalls (the session holds its window), and stays stalled for three idle
    // timeouts while the engine is stopped.
    #expect(await eventually { server.statistics.backpressureHolds >= 1 })
    try await Task.sleep(for: .seconds(3))
    engine.open()
    let ended = try await outcome
    #expect(ended.status?.code == 200, "\(ended)")
    #expect(engine.processed.withLockedValue { $0 } == total * 160)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(200))
  }

  @Test("a client that stops sending still gets 408 once the server has caught up")
  func idleClientStillTimesOut() async throws {
    let engine = GatedEngine()
    engine.open()
    let (server, port) = try await Self.startServer(
      engine,
      idleTimeout: .milliseconds(300),
      streamWindow: nil
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let codes = try await channel.withCall(
      path: RecognizerServer.recognizePath,
      request: RecognitionRequest.self,
      response: RecognitionResponse.self
    ) { call in
      try await call.send(.initMessage(makeInit(mode: .disabled)))
      try await call.send(.audio(ByteBuffer(repeating: 0, count: 320)))
      var codes: [UInt32] = []
      for try await response in call.responses {
        if case .status(let status)? = response.response { codes.append(status.code) }
      }
      return codes
    }
    #expect(codes == [100, 408])
    await channel.close()
    await server.shutdown(gracePeriod: .milliseconds(200))
  }
}
