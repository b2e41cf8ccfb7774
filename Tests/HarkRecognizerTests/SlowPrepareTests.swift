import Dispatch
import Foundation
import HarkClient
import HarkGRPC
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// An engine slow to prepare (a grammar to compile) over real sockets: the server prepares it
/// off the event loop, queues what the client sends meanwhile and replays it in order, and gives
/// the engine back to the pool whatever ends the call while it prepares.
@Suite("An engine slow to prepare")
struct SlowPrepareTests {
  /// A DTMF engine whose `prepare` takes 300 ms, or waits until the test opens its gate (once
  /// opened, for good); inline or on a worker thread.
  final class SlowPrepareEngine: SpeechEngine, @unchecked Sendable {
    let onWorker: Bool
    let gated: Bool
    let dtmf = DTMFEngine()
    let gate = DispatchSemaphore(value: 0)
    let preparing = NIOLockedValueBox(false)
    let prepared = NIOLockedValueBox(0)
    let resets = NIOLockedValueBox(0)
    var runsOnWorkerThread: Bool { onWorker }

    init(onWorker: Bool, gated: Bool = false) {
      self.onWorker = onWorker
      self.gated = gated
    }

    func open() { gate.signal() }

    func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice] {
      preparing.withLockedValue { $0 = true }
      if gated {
        // Once opened, the gate stays open (for the engine's next recognitions).
        gate.wait()
        gate.signal()
      } else {
        Thread.sleep(forTimeInterval: 0.3)
      }
      preparing.withLockedValue { $0 = false }
      prepared.withLockedValue { $0 += 1 }
      return try dtmf.prepare(configuration)
    }

    func process(
      _ samples: UnsafeBufferPointer<Int16>,
      at position: Int
    ) throws(EngineError) -> EngineHypothesis? {
      try dtmf.process(samples, at: position)
    }

    func beginUtterance(at onset: Int) throws(EngineError) { try dtmf.beginUtterance(at: onset) }

    func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
      try dtmf.endUtterance(at: end)
    }

    func reset() {
      resets.withLockedValue { $0 += 1 }
      dtmf.reset()
    }
  }

  /// A raw connection that opens a Recognize stream and sends its init, and nothing more.
  static func connectAndSendInit(port: Int) async throws -> RawConnection {
    let peer = try await RawConnection.connect(port: port)
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: RecognizerServer.recognizePath)
        + RawFrame.dataFrame(
          streamID: 1,
          RecognizerHardeningTests.framed(.initMessage(makeInit()))
        )
    )
    return peer
  }

  static func start(_ engine: SlowPrepareEngine) async throws -> RecognizerHarness {
    try await RecognizerHarness.start(recognizers: 1, makeEngine: { engine })
  }

  @Test(
    "init, audio and half-close sent at once: recognized in full once the engine is ready",
    arguments: [false, true]
  )
  func everythingBeforeTheEngineIsReady(onWorker: Bool) async throws {
    let engine = SlowPrepareEngine(onWorker: onWorker)
    let harness = try await Self.start(engine)
    let audio = dtmfAudio(keys("12"))
    let responses = try await harness.rawCall(
      [.initMessage(makeInit(mode: .multiple))] + audioRequests(audio)
    )
    #expect(responses.map(\.summary) == ["100", "sos", "final:12", "200"])
    #expect(engine.prepared.withLockedValue { $0 } == 1)
    #expect(await eventually { harness.server.idleRecognizers == 1 })
    await harness.stop()
  }

  @Test(
    "more audio than the server queues while the engine prepares: the client is paused, then heard",
    arguments: [false, true]
  )
  func queueFullWhilePreparing(onWorker: Bool) async throws {
    let engine = SlowPrepareEngine(onWorker: onWorker, gated: true)
    let harness = try await Self.start(engine)
    let server = harness.server
    // 3 s of key presses (48 kB): more than the server queues (32 kB) before it pauses the client.
    let audio = dtmfAudio(keys("1234567890"))
    let call = Task {
      try await harness.rawCall([.initMessage(makeInit(mode: .multiple))] + audioRequests(audio))
    }
    #expect(await eventually { server.statistics.backpressureHolds >= 1 })
    engine.open()
    let responses = try await call.value
    #expect(responses.map(\.summary) == ["100", "sos", "final:1234567890", "200"])
    #expect(await eventually { server.idleRecognizers == 1 })
    await harness.stop()
  }

  @Test(
    "an end of requests while the engine prepares: 204 once it is ready, not lost",
    arguments: [false, true]
  )
  func endOfRequestsWhilePreparing(onWorker: Bool) async throws {
    let engine = SlowPrepareEngine(onWorker: onWorker)
    let harness = try await Self.start(engine)
    let responses = try await harness.rawCall([.initMessage(makeInit())])
    #expect(responses.map(\.summary) == ["100", "204"])
    await harness.stop()
  }

  @Test(
    "a connection lost while the engine prepares: the engine goes back when it is prepared",
    arguments: [false, true]
  )
  func connectionLostWhilePreparing(onWorker: Bool) async throws {
    let engine = SlowPrepareEngine(onWorker: onWorker, gated: true)
    let harness = try await Self.start(engine)
    let server = harness.server
    let peer = try await SlowPrepareTests.connectAndSendInit(port: harness.port)
    #expect(await eventually { engine.preparing.withLockedValue { $0 } })
    await peer.close()
    // The session is gone at once; the engine is still out while it prepares…
    #expect(await eventually { server.liveSessions == 0 && server.liveObjects.streams == 0 })
    #expect(server.idleRecognizers == 0)
    #expect(engine.resets.withLockedValue { $0 } == 0)
    // …and back, reset, once its preparation returns.
    engine.open()
    #expect(await eventually { server.idleRecognizers == 1 })
    #expect(engine.resets.withLockedValue { $0 } == 1)
    #expect(server.statistics.cancelled == 1)
    let events = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("42")))
    #expect(events.map(\.summary) == ["100", "sos", "final:42", "200"])
    await harness.stop()
  }

  @Test("a preparation longer than the idle timeout: the idle clock starts with the 100")
  func idleClockStartsWithTheContinue() async throws {
    let engine = SlowPrepareEngine(onWorker: false, gated: true)
    let harness = try await RecognizerHarness.start(
      recognizers: 1,
      idleTimeout: .milliseconds(500),
      makeEngine: { engine }
    )
    // The client library sends no audio before the 100 Continue.
    let recognition = Task {
      try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("7")))
    }
    #expect(await eventually { engine.preparing.withLockedValue { $0 } })
    try await Task.sleep(for: .seconds(1))
    engine.open()
    let events = try await recognition.value
    #expect(events.map(\.summary) == ["100", "sos", "final:7", "200"])
    await harness.stop()
  }

  @Test("a shutdown while the engine prepares: 512 once it is ready, and the engine goes back")
  func shutdownWhilePreparing() async throws {
    let engine = SlowPrepareEngine(onWorker: false, gated: true)
    let harness = try await Self.start(engine)
    let server = harness.server
    let port = harness.port
    let call = Task { try await harness.rawCall([.initMessage(makeInit())], pause: .seconds(60)) }
    #expect(await eventually { engine.preparing.withLockedValue { $0 } })
    let shutdown = Task { await server.shutdown(gracePeriod: .seconds(2)) }
    // The listener closes only after the shutdown has marked the server as shutting down.
    let closed = await eventually {
      guard let peer = try? await RawConnection.connect(port: port) else { return true }
      await peer.close()
      return false
    }
    #expect(closed)
    engine.open()
    let responses = try await call.value
    #expect(responses.map(\.summary) == ["512"])
    await shutdown.value
    #expect(server.idleRecognizers == 1)
    #expect(engine.resets.withLockedValue { $0 } == 1)
    await harness.client.close()
  }
}

/// An engine slow to make (sphinx loads its models) over real sockets: the server makes it off
/// the event loop, so the loop's other recognitions go on meanwhile, and an engine made for a
/// call that ended goes to the pool.
@Suite("An engine slow to make")
struct SlowMakeTests {
  /// Makes DTMF engines; the first waits until the test opens the gate.
  final class GatedFactory: Sendable {
    let made = NIOLockedValueBox(0)
    let gate = DispatchSemaphore(value: 0)

    func make() -> any SpeechEngine {
      let count = made.withLockedValue {
        $0 += 1
        return $0
      }
      if count == 1 { gate.wait() }
      return DTMFEngine()
    }
  }

  /// A server on one event loop, so that every connection shares it.
  static func start(
    _ factory: GatedFactory,
    recognizers: Int
  ) async throws -> (RecognizerHarness, MultiThreadedEventLoopGroup) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let harness = try await RecognizerHarness.start(
      recognizers: recognizers,
      group: group,
      makeEngine: { factory.make() }
    )
    return (harness, group)
  }

  @Test("another recognition on the loop is heard while an engine is made")
  func loopGoesOnWhileMaking() async throws {
    let factory = GatedFactory()
    let (harness, group) = try await Self.start(factory, recognizers: 2)
    let first = Task {
      try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("1")))
    }
    #expect(await eventually { factory.made.withLockedValue { $0 } == 1 })
    // Made on the loop, the first engine would hold it (and this call) until the gate opens.
    let second = Task {
      try await harness.recognize(makeInit(mode: .single), audio: dtmfAudio(keys("42")))
    }
    let secondDone = NIOLockedValueBox(false)
    let watcher = Task {
      _ = try? await second.value
      secondDone.withLockedValue { $0 = true }
    }
    #expect(await eventually(within: 10) { secondDone.withLockedValue { $0 } })
    factory.gate.signal()
    await watcher.value
    #expect(try await second.value.map(\.summary) == ["100", "sos", "final:42", "200"])
    #expect(try await first.value.map(\.summary) == ["100", "sos", "final:1", "200"])
    #expect(await eventually { harness.server.idleRecognizers == 2 })
    await harness.stop()
    try await group.shutdownGracefully()
  }

  @Test("a connection lost while its engine is made: the engine goes to the pool once made")
  func connectionLostWhileMaking() async throws {
    let factory = GatedFactory()
    let (harness, group) = try await Self.start(factory, recognizers: 1)
    let server = harness.server
    let peer = try await SlowPrepareTests.connectAndSendInit(port: harness.port)
    #expect(await eventually { factory.made.withLockedValue { $0 } == 1 })
    await peer.close()
    #expect(await eventually { server.liveSessions == 0 && server.liveObjects.streams == 0 })
    #expect(server.idleRecognizers == 0)
    factory.gate.signal()
    #expect(await eventually { server.idleRecognizers == 1 })
    #expect(factory.made.withLockedValue { $0 } == 1)
    // The engine made for the lost call serves the next one.
    let events = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("7")))
    #expect(events.map(\.summary) == ["100", "sos", "final:7", "200"])
    #expect(factory.made.withLockedValue { $0 } == 1)
    await harness.stop()
    try await group.shutdownGracefully()
  }
}

/// Where `EnginePool` has a recognition's new engine made.
@Suite("The engine pool")
struct EnginePoolTests {
  /// A DTMF engine that runs on a worker thread, or not (never prepared here).
  static func engine(onWorker: Bool) -> any SpeechEngine {
    SlowPrepareTests.SlowPrepareEngine(onWorker: onWorker)
  }

  static func kind(_ acquired: EnginePool.Acquired?) -> String {
    switch acquired {
    case nil: "busy"
    case .engine?: "engine"
    case .makeOffLoop?: "make off the loop"
    }
  }

  @Test("engines that do not run on a worker: the first is made off the loop, the others at once")
  func cheapEngines() {
    let pool = EnginePool(capacity: 3) { Self.engine(onWorker: false) }
    #expect(Self.kind(pool.acquire()) == "make off the loop")
    let first = pool.make()
    #expect(Self.kind(pool.acquire()) == "engine")
    #expect(Self.kind(pool.acquire()) == "engine")
    #expect(Self.kind(pool.acquire()) == "busy")
    pool.release(first)
    #expect(Self.kind(pool.acquire()) == "engine")
  }

  @Test("once an engine ran on a worker, every new one is made off the loop, whatever comes next")
  func workerEnginesStayOffTheLoop() {
    // Sphinx's factory gives a cheap placeholder when a model fails to load once; the next
    // load must still not run on the loop.
    let kinds = NIOLockedValueBox([true, false, false])
    let pool = EnginePool(capacity: 3) {
      Self.engine(onWorker: kinds.withLockedValue { $0.removeFirst() })
    }
    for _ in 0..<3 {
      #expect(Self.kind(pool.acquire()) == "make off the loop")
      _ = pool.make()
    }
    #expect(Self.kind(pool.acquire()) == "busy")
  }
}
