internal import CHarkPrefetch
internal import Dispatch
internal import HarkAudio
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore
import NIOPosix

/// One Recognize RPC on the server: carries out its ``ServerSessionStateMachine``.
///
/// The session lives on its connection's event loop and is the stream's handler: the transport
/// calls it there directly, as do its timers and its engine's answers, so an audio message costs
/// no task, no hop, no executor check and no allocation beyond its decoded samples. (Not an actor
/// on the loop's executor: entering one with `assumeIsolated` costs an executor check and
/// retains on every message, some 6 % of the server's CPU at 5,000 sessions.)
///
/// Its engine runs through an ``EngineRunner``: inline, or on a worker thread for an engine that
/// ``SpeechEngine/runsOnWorkerThread``; either way each answer comes back through one callback
/// and goes straight to the machine. The engine is prepared off the loop; until it is ready the
/// machine queues what the client sends. The session stops acknowledging the client's data (and
/// HTTP/2 flow control slows the client down) while the machine's queue is full, while a worker
/// is more than ``RecognizerServer/Configuration/maxBufferedAudio`` behind, and while the client
/// does not read its responses (the stream's queue is full).
///
/// Timers: the init must arrive within ``RecognizerServer/Configuration/initTimeout`` (else 408);
/// during the recognition, an audio message within the idle timeout of the last (else 408). The
/// idle clock stops while the session itself withholds the client's flow-control window, so only
/// a client that really stops sending gets 408.
final class RecognizerSession: GRPCServerStreamHandler, @unchecked Sendable {
  // Sendable only to be handed to its own loop (at shutdown); every use is on the loop.
  let eventLoop: any EventLoop

  private let stream: GRPCServerStream
  private let context: RecognizerServer.Context
  private var machine = ServerSessionStateMachine()
  private var actions: [ServerSessionStateMachine.Action] = []
  /// Whether `perform()` is carrying out `actions` (an engine answering inline adds to them).
  private var performing = false
  private var runner: EngineRunner? {
    didSet { runnerAddresses = runner?.addresses }
  }
  /// The addresses of `runner` and its engine, for `prefetchDependents`.
  private var runnerAddresses: EngineRunner.Addresses?
  private var assembler: PCMAssembler?
  /// Its event loop's buffer for the samples of the message being handled.
  private let scratch: SampleScratch
  private var idleTimer: Scheduled<Void>?
  private var initTimer: Scheduled<Void>?
  private var lastAudio = NIODeadline.now()
  private var registered = false
  private var audioMessages = 0
  private var reported = false
  private let startedAt = NIODeadline.now()
  /// Why the client's data is not acknowledged: the machine's queue is full, the engine is
  /// behind, or the client does not read its responses.
  private var requestsPaused = false
  private var engineBehind = false
  private var responsesBlocked = false
  private var holdingConsumption = false
  /// Why the RPC ended without a status, if it did (for the log).
  private var cancelReason: String?

  init(stream: GRPCServerStream, context: RecognizerServer.Context) {
    self.stream = stream
    self.eventLoop = stream.eventLoop
    self.context = context
    // The session is made on its loop's thread: the buffer is that loop's.
    assert(stream.eventLoop.inEventLoop)
    self.scratch = SampleScratch.current
    context.liveSessionObjects.add(1)
  }

  deinit {
    context.liveSessionObjects.add(-1)
  }

  /// The stream opened: the init must come within the pre-init timeout.
  func started() {
    guard let timeout = context.initTimeout else { return }
    initTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
      initTimedOut()
    }
  }

  private func initTimedOut() {
    initTimer = nil
    guard let timeout = context.initTimeout else { return }
    machine.initTimeout(milliseconds: Int(timeout.nanoseconds / 1_000_000), into: &actions)
    perform()
  }

  // MARK: Events from the transport

  func receive(message: ByteBuffer) {
    assert(eventLoop.inEventLoop)
    let request: RecognitionRequest
    do {
      request = try RecognitionRequest(serializedBytes: message)
    } catch {
      // A message that is not a RecognitionRequest: the gRPC layer's INTERNAL (H36).
      stream.finish(
        status: GRPCStatus(.internalError, "cannot decode a RecognitionRequest: \(error)")
      )
      machine.cancel(into: &actions)
      perform()
      return
    }
    if case .audio(let bytes)? = request.request, machine.isRecognizing {
      receiveAudio(bytes)
      // Most audio messages decide nothing more.
      if actions.isEmpty { return }
    } else {
      machine.receive(request, into: &actions)
    }
    perform()
  }

  /// An audio message to recognize: one that just arrived, or one the machine queued while the
  /// engine was acquired.
  private func receiveAudio(_ bytes: ByteBuffer) {
    audioMessages += 1
    lastAudio = stream.arrivalTime
    scratch.samples.removeAll(keepingCapacity: true)
    bytes.withUnsafeReadableBytes { raw in assembler?.append(raw, into: &scratch.samples) }
    guard !performing else {
      // Replayed while actions are carried out: its own go after those still to do.
      scratch.samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
      return
    }
    // The common message: the machine's first two actions come back as a step, carried out
    // here, and only what else it decided (rarely anything) goes through the list.
    scratch.samples.withUnsafeBufferPointer { samples in
      let step = machine.audioStep(samples, into: &actions)
      if step.restartsIdleTimer { startIdleTimerIfNeeded() }
      if let position = step.enginePosition {
        // An inline engine's answer is appended to the actions, after the endpointing's.
        performing = true
        runner?.audio(samples, at: position)
        performing = false
      }
    }
  }

  /// The samples of the audio message being handled (by `receiveAudio`, then the engine calls
  /// of the `perform()` that follows it at once), in one buffer per thread: the thousands of
  /// sessions of an event loop take turns on memory that stays in cache, rather than each
  /// keeping a buffer of its own that a message has to fetch. Each session looks its thread's
  /// up once, when it is made.
  final class SampleScratch: @unchecked Sendable {  // each is used by its own thread only
    var samples: [Int16] = []

    init() {
      samples.reserveCapacity(4096)
    }

    private static let perThread = ThreadSpecificVariable<SampleScratch>()

    static var current: SampleScratch {
      if let scratch = perThread.currentValue { return scratch }
      let scratch = SampleScratch()
      perThread.currentValue = scratch
      return scratch
    }
  }

  /// The session's fields, most of them its state machine.
  static var prefetchLines: Int { (MemoryLayout<ServerSessionStateMachine>.size + 200) / 64 }

  /// The runner and its engine (the DTMF detector's state).
  static var prefetchDependents: (@convention(c) (UnsafeRawPointer) -> Void)? {
    { address in
      Unmanaged<RecognizerSession>.fromOpaque(address)._withUnsafeGuaranteedRef { session in
        guard let runner = session.runnerAddresses else { return }
        hark_prefetch_lines(runner.runner, 2)
        hark_prefetch_lines(runner.engine, runner.engineLines)
      }
    }
  }

  func receiveEndOfRequests() {
    machine.endOfRequests(into: &actions)
    perform()
  }

  func cancelled(_ status: GRPCStatus) {
    cancelReason = status.message
    machine.cancel(into: &actions)
    perform()
  }

  /// The stream's response queue filled (or drained): while the client does not read, its audio
  /// is not acknowledged either.
  func writabilityChanged(isWritable: Bool) {
    responsesBlocked = !isWritable
    updateConsumptionHold()
  }

  private func updateConsumptionHold() {
    let hold = (requestsPaused || engineBehind || responsesBlocked) && !machine.isFinished
    guard hold != holdingConsumption else { return }
    holdingConsumption = hold
    stream.holdConsumption(hold)
    if hold {
      context.recordBackpressure()
    } else {
      // The window opens again: the client may send, and the idle clock starts over.
      lastAudio = .now()
    }
  }

  func shutdown() {
    machine.shutdown(into: &actions)
    perform()
  }

  /// The trailer that tells a refused client when to try again in HTTP's terms, next to the
  /// status's `grpc-retry-pushback-ms` (gRFC A6): `retry-after` in whole seconds, rounded up
  /// (RFC 9110 §10.2.3).
  static func retryAfter(_ milliseconds: Int) -> GRPCMetadata {
    var trailers = GRPCMetadata()
    // Digits only: a valid header value.
    try? trailers.add("retry-after", "\((milliseconds + 999) / 1000)")
    return trailers
  }

  // MARK: Carrying out actions

  /// Carries out the machine's actions in order, including those that events reported on the
  /// way add (an inline engine's answers, a replayed message's).
  private func perform() {
    guard !performing else { return }
    performing = true
    var index = 0
    while index < actions.count {
      let action = actions[index]
      index += 1
      switch action {
      case .acquireEngine:
        acquireEngine()
      case .send(let response):
        stream.send(response)
      case .finishCall(let pushback):
        var status = GRPCStatus.ok
        status.retryPushbackMilliseconds = pushback
        stream.finish(status: status, metadata: pushback.map(Self.retryAfter) ?? GRPCMetadata())
      case .engineAudio(let position):
        scratch.samples.withUnsafeBufferPointer { samples in
          runner?.audio(samples, at: position)
        }
      case .engineBeginUtterance(let onset):
        runner?.beginUtterance(at: onset)
      case .engineEndUtterance(let end):
        runner?.endUtterance(at: end)
      case .replayAudio(let bytes):
        receiveAudio(bytes)
      case .pauseRequests:
        requestsPaused = true
        updateConsumptionHold()
      case .resumeRequests:
        requestsPaused = false
        updateConsumptionHold()
      case .releaseEngine:
        runner?.release()
        runner = nil
      case .restartIdleTimer:
        startIdleTimerIfNeeded()
      case .stopIdleTimer:
        idleTimer?.cancel()
        idleTimer = nil
      }
    }
    // Its storage goes too: the next message then finds the list empty without reading a
    // buffer of its own that has left the cache (the thousands of sessions of a loop take
    // turns), and the few messages that decide more than their step allocate one.
    actions.removeAll()
    performing = false
    if initTimer != nil && (machine.configuration != nil || machine.isFinished) {
      initTimer?.cancel()
      initTimer = nil
    }
    if machine.isFinished && holdingConsumption {
      // Nothing more is read: whatever the client still sends is acknowledged and dropped.
      updateConsumptionHold()
    }
    if machine.isFinished && registered {
      registered = false
      context.sessionEnded(self)
    }
    if machine.isFinished && !reported {
      reported = true
      let nanoseconds = (NIODeadline.now() - startedAt).nanoseconds
      context.rpcEnded(
        RecognizerServer.RecognitionRecord(
          status: machine.finalStatus,
          audioMessages: audioMessages,
          duration: .nanoseconds(nanoseconds),
          cancelReason: machine.finalStatus == nil ? cancelReason : nil
        )
      )
    }
  }

  // MARK: The engine

  /// Admits the recognition, takes an engine (made off the loop when making one is slow) and
  /// has it prepared off the loop (answered in `engineAnswered`).
  private func acquireEngine() {
    guard let configuration = machine.configuration else { return }
    if let rejection = context.admit(configuration, metadata: stream.request.metadata) {
      machine.rejectInit(rejection, into: &actions)
      return
    }
    switch context.engines.acquire() {
    case nil:
      machine.rejectInit(.enginesBusy(capacity: context.engines.capacity), into: &actions)
    case .engine(let engine)?:
      run(engine, configuration)
    case .makeOffLoop?:
      // Dispatch's global queue, as for a preparation: NIO's small thread pool would fill up.
      // The session is not kept alive for it: a call that is gone leaves the engine to the pool.
      let pool = context.engines
      let target = WeakSession(self)
      let eventLoop = self.eventLoop
      DispatchQueue.global().async {
        let made = EnginePool.EngineBox(pool.make())
        eventLoop.execute {
          if let session = target.session {
            session.engineMade(made.engine)
          } else {
            pool.release(made.engine)
          }
        }
      }
    }
  }

  /// The engine made for this recognition (off the loop): prepared, or back to the pool if the
  /// recognition ended meanwhile.
  private func engineMade(_ engine: any SpeechEngine) {
    guard !machine.isFinished, let configuration = machine.configuration else {
      context.engines.release(engine)
      return
    }
    run(engine, configuration)
  }

  /// Prepares `engine` for the recognition (answered in `engineAnswered`).
  private func run(_ engine: any SpeechEngine, _ configuration: RecognitionConfiguration) {
    let runner = EngineRunner(
      engine: engine,
      pool: context.engines,
      eventLoop: eventLoop,
      maxBufferedSamples: Int(context.maxBufferedAudio.nanoseconds / 1_000_000)
        * configuration.sampleRate / 1000,
      answered: { [self] answer in engineAnswered(answer) },
      behindChanged: { [self] behind in
        engineBehind = behind
        updateConsumptionHold()
      }
    )
    self.runner = runner
    runner.prepare(configuration)
  }

  /// The engine answered: at once (inline, while `perform()` carries out the job), or later
  /// from its worker or the thread pool.
  private func engineAnswered(_ answer: EngineRunner.Answer) {
    switch answer {
    case .prepared(.success(let notices)):
      guard let configuration = machine.configuration else { break }
      assembler = PCMAssembler(encoding: configuration.audioFormat.encoding)
      // The idle clock starts with the 100, however long the preparation took.
      lastAudio = .now()
      if context.sessionStarted(self) {
        registered = true
        machine.engineReady(notices: notices, into: &actions)
      } else {
        // The server began shutting down while the engine was prepared.
        machine.shutdown(into: &actions)
      }
    case .prepared(.failure(let error)):
      machine.rejectInit(.prepareFailed(error), into: &actions)
    case .partial(let hypothesis, let position):
      machine.enginePartial(hypothesis, position: position, into: &actions)
    case .final(let hypotheses, let end):
      machine.engineFinal(hypotheses, end: end, into: &actions)
    case .failed(let error):
      machine.engineFailed(error, into: &actions)
    }
    perform()
  }

  // MARK: The idle timer

  /// One timer per session, checked against the time of the last audio message: receiving audio
  /// only records a time, it schedules nothing.
  private func startIdleTimerIfNeeded() {
    guard idleTimer == nil else { return }
    scheduleIdleCheck(at: lastAudio + context.idleTimeout)
  }

  private func scheduleIdleCheck(at deadline: NIODeadline) {
    idleTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
      idleCheck()
    }
  }

  private func idleCheck() {
    idleTimer = nil
    guard machine.isRecognizing else { return }
    if holdingConsumption {
      // The server withholds the client's window: its silence is the server's doing. The clock
      // starts over when the window opens.
      scheduleIdleCheck(at: .now() + context.idleTimeout)
      return
    }
    let due = lastAudio + context.idleTimeout
    if due > .now() {
      scheduleIdleCheck(at: due)
      return
    }
    machine.idleTimeout(
      milliseconds: Int(context.idleTimeout.nanoseconds / 1_000_000),
      into: &actions
    )
    perform()
  }
}

/// A session, not kept alive: set once, read on the session's loop.
private final class WeakSession: @unchecked Sendable {
  weak var session: RecognizerSession?

  init(_ session: RecognizerSession) {
    self.session = session
  }
}
