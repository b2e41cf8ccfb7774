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
/// The session is an actor whose executor is its connection's event loop, and the transport
/// delivers every message on that loop: it enters the actor with `assumeIsolated`, so an audio
/// message costs no task, no hop and no allocation beyond its decoded samples.
///
/// An engine that ``SpeechEngine/runsOnWorkerThread`` (speech decoding: milliseconds a message)
/// is driven on a serial queue of its own instead, so it never stalls the loop's other
/// connections; its answers come back to the loop as events of the state machine. When it falls
/// more than ``RecognizerServer/Configuration/maxBufferedAudio`` behind, the session stops
/// acknowledging the client's data, and HTTP/2 flow control slows the client down. It does the
/// same while the client does not read its responses (the stream's queue is full).
///
/// Timers: the init must arrive within ``RecognizerServer/Configuration/initTimeout`` (else 408);
/// during the recognition, an audio message within the idle timeout of the last (else 408). The
/// idle clock stops while the session itself withholds the client's flow-control window, so only
/// a client that really stops sending gets 408.
actor RecognizerSession {
  nonisolated let eventLoop: any EventLoop
  nonisolated var unownedExecutor: UnownedSerialExecutor {
    eventLoop.executor.asUnownedSerialExecutor()
  }

  private let stream: GRPCServerStream
  private let context: RecognizerServer.Context
  private var machine = ServerSessionStateMachine()
  private var actions: [ServerSessionStateMachine.Action] = []
  private var engine: (any SpeechEngine)?
  private var assembler: PCMAssembler?
  private var pendingPartial: EngineHypothesis?
  private var idleTimer: Scheduled<Void>?
  private var initTimer: Scheduled<Void>?
  private var lastAudio = NIODeadline.now()
  private var registered = false
  private var audioMessages = 0
  private var reported = false
  private let startedAt = NIODeadline.now()
  /// The worker of an engine that runs off the loop, and the samples of its jobs not yet done.
  private var worker: DispatchQueue?
  private var bufferedSamples = 0
  /// Samples queued for the worker beyond which the client's data is no longer acknowledged;
  /// it is again once half of them are done.
  private var bufferLimit = Int.max
  /// Why the client's data is not acknowledged: the engine is behind, or the client does not
  /// read its responses.
  private var engineBehind = false
  private var responsesBlocked = false
  private var holdingConsumption = false
  /// Why the RPC ended without a status, if it did (for the log).
  private var cancelReason: String?

  init(stream: GRPCServerStream, context: RecognizerServer.Context) {
    self.stream = stream
    self.eventLoop = stream.eventLoop
    self.context = context
    context.liveSessionObjects.add(1)
  }

  deinit {
    context.liveSessionObjects.add(-1)
  }

  /// The stream opened: the init must come within the pre-init timeout.
  func started() {
    guard let timeout = context.initTimeout else { return }
    initTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
      self.assumeIsolated { session in session.initTimedOut() }
    }
  }

  private func initTimedOut() {
    initTimer = nil
    guard let timeout = context.initTimeout else { return }
    machine.initTimeout(milliseconds: Int(timeout.nanoseconds / 1_000_000), into: &actions)
    perform()
  }

  // MARK: Events from the transport

  func receive(_ message: ByteBuffer) {
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
      audioMessages += 1
      receiveAudio(bytes)
    } else {
      machine.receive(request, into: &actions)
    }
    perform()
  }

  private func receiveAudio(_ bytes: ByteBuffer) {
    lastAudio = .now()
    let scratch = SampleScratch.current
    scratch.samples.removeAll(keepingCapacity: true)
    bytes.withUnsafeReadableBytes { raw in assembler?.append(raw, into: &scratch.samples) }
    scratch.samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
  }

  /// The samples of the audio message being handled (by `receiveAudio`, then the engine calls
  /// of the `perform()` that follows it at once), in one buffer per thread: the thousands of
  /// sessions of an event loop take turns on memory that stays in cache, rather than each
  /// keeping a buffer of its own that a message has to fetch.
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

  func endOfRequests() {
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
    let hold = (engineBehind || responsesBlocked) && !machine.isFinished
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

  // MARK: Carrying out actions

  private func perform() {
    var index = 0
    while index < actions.count {
      let action = actions[index]
      index += 1
      switch action {
      case .acquireEngine:
        acquireEngine()
      case .send(let response):
        stream.send(response)
      case .finishCall:
        stream.finish()
      case .engineAudio(let position):
        guard let engine else { break }
        if worker != nil {
          // The samples buffer is reused for the next message: the job takes a copy.
          let samples = Array(SampleScratch.current.samples)
          enqueue(engine, samples: samples.count) { engine throws(EngineError) in
            var result: Result<EngineHypothesis?, EngineError> = .success(nil)
            samples.withUnsafeBufferPointer { samples in
              do throws(EngineError) {
                result = .success(try engine.process(samples, at: position))
              } catch {
                result = .failure(error)
              }
            }
            return .partial(try result.get())
          }
          break
        }
        let result = SampleScratch.current.samples.withUnsafeBufferPointer {
          samples -> Result<EngineHypothesis?, EngineError> in
          do throws(EngineError) {
            return .success(try engine.process(samples, at: position))
          } catch {
            return .failure(error)
          }
        }
        switch result {
        case .success(let partial?): pendingPartial = partial
        case .success(nil): break
        case .failure(let error): machine.engineFailed(error, into: &actions)
        }
      case .engineBeginUtterance(let onset):
        guard let engine else { break }
        if worker != nil {
          enqueue(engine) { engine throws(EngineError) in
            try engine.beginUtterance(at: onset)
            return .partial(nil)
          }
          break
        }
        do {
          try engine.beginUtterance(at: onset)
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .engineEndUtterance(let end):
        guard let engine else { break }
        if worker != nil {
          enqueue(engine) { engine throws(EngineError) in
            .final(try engine.endUtterance(at: end), end: end)
          }
          break
        }
        do {
          let hypotheses = try engine.endUtterance(at: end)
          pendingPartial = nil
          machine.engineFinal(hypotheses, end: end, into: &actions)
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .releaseEngine:
        releaseEngine()
      case .restartIdleTimer:
        startIdleTimerIfNeeded()
      case .stopIdleTimer:
        idleTimer?.cancel()
        idleTimer = nil
      }
      if index == actions.count, let partial = pendingPartial {
        // After the message's other actions, so that its StartOfSpeech goes first.
        pendingPartial = nil
        machine.enginePartial(partial, into: &actions)
      }
    }
    actions.removeAll(keepingCapacity: true)
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

  // MARK: An engine on a worker thread

  /// What an engine job answered.
  enum EngineAnswer: Sendable {
    case partial(EngineHypothesis?)
    case final([EngineHypothesis], end: Int)
  }

  /// An engine handed to its worker: while the session runs its engine off the loop, only the
  /// worker's serial queue calls it.
  struct WorkerEngine: @unchecked Sendable {
    let engine: any SpeechEngine
  }

  /// Runs `job` (on `samples` samples of audio, or none) on the worker, after the jobs before
  /// it; its answer comes back to the loop.
  private func enqueue(
    _ engine: any SpeechEngine,
    samples: Int = 0,
    _ job: @escaping @Sendable (any SpeechEngine) throws(EngineError) -> EngineAnswer
  ) {
    guard let worker else { return }
    bufferedSamples += samples
    if bufferedSamples > bufferLimit && !engineBehind {
      engineBehind = true
      updateConsumptionHold()
    }
    let handed = WorkerEngine(engine: engine)
    let eventLoop = self.eventLoop
    worker.async { [self] in
      let answer: Result<EngineAnswer, EngineError>
      do throws(EngineError) {
        answer = .success(try job(handed.engine))
      } catch {
        answer = .failure(error)
      }
      eventLoop.execute { self.assumeIsolated { $0.engineAnswered(answer, samples: samples) } }
    }
  }

  private func engineAnswered(_ answer: Result<EngineAnswer, EngineError>, samples: Int) {
    bufferedSamples -= samples
    if engineBehind && bufferedSamples <= bufferLimit / 2 {
      engineBehind = false
      updateConsumptionHold()
    }
    switch answer {
    case .success(.partial(let partial?)): machine.enginePartial(partial, into: &actions)
    case .success(.partial(nil)): break
    case .success(.final(let hypotheses, let end)):
      machine.engineFinal(hypotheses, end: end, into: &actions)
    case .failure(let error): machine.engineFailed(error, into: &actions)
    }
    perform()
  }

  private func acquireEngine() {
    guard let configuration = machine.configuration else { return }
    if let rejection = context.admit(configuration, metadata: stream.request.metadata) {
      machine.rejectInit(rejection, into: &actions)
      return
    }
    guard let engine = context.engines.acquire() else {
      machine.rejectInit(
        RecognitionStatus(
          code: 409,
          message: "Conflict",
          details: "all \(context.engines.capacity) recognizers are busy"
        ),
        into: &actions
      )
      return
    }
    do {
      let notices = try engine.prepare(configuration)
      self.engine = engine
      if engine.runsOnWorkerThread {
        worker = DispatchQueue(label: "hark.engine")
        bufferLimit = max(
          Int(context.maxBufferedAudio.nanoseconds / 1_000_000) * configuration.sampleRate / 1000,
          1
        )
      }
      assembler = PCMAssembler(encoding: configuration.audioFormat.encoding)
      registered = true
      context.sessionStarted(self)
      machine.engineReady(notices: notices, into: &actions)
    } catch {
      engine.reset()
      context.engines.release(engine)
      let status: RecognitionStatus
      switch error.kind {
      case .badRequest(let field):
        status = RecognitionStatus(
          code: 400,
          message: "Bad request",
          details: "\(field): \(error.message)"
        )
      case .resourceFailed(let field):
        status = RecognitionStatus(
          code: 502,
          message: "Resource error",
          details: "\(field): \(error.message)"
        )
      case .internalFailure:
        status = RecognitionStatus(
          code: 500,
          message: "Internal server error",
          details: error.message
        )
      }
      machine.rejectInit(status, into: &actions)
    }
  }

  private func releaseEngine() {
    guard let engine else { return }
    self.engine = nil
    guard let worker else {
      engine.reset()
      context.engines.release(engine)
      return
    }
    // After the jobs still queued: the engine goes back to the pool only once it is idle.
    let handed = WorkerEngine(engine: engine)
    let engines = context.engines
    worker.async {
      handed.engine.reset()
      engines.release(handed.engine)
    }
    self.worker = nil
  }

  /// One timer per session, checked against the time of the last audio message: receiving audio
  /// only records a time, it schedules nothing.
  private func startIdleTimerIfNeeded() {
    guard idleTimer == nil else { return }
    scheduleIdleCheck(at: lastAudio + context.idleTimeout)
  }

  private func scheduleIdleCheck(at deadline: NIODeadline) {
    idleTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
      self.assumeIsolated { session in session.idleCheck() }
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

/// The transport's handler for one RPC: enters the session actor on the event loop.
final class RecognizerStreamHandler: GRPCServerStreamHandler {
  let session: RecognizerSession

  init(session: RecognizerSession) {
    self.session = session
  }

  func receive(message: ByteBuffer) {
    session.assumeIsolated { $0.receive(message) }
  }

  func receiveEndOfRequests() {
    session.assumeIsolated { $0.endOfRequests() }
  }

  func cancelled(_ status: GRPCStatus) {
    session.assumeIsolated { $0.cancelled(status) }
  }

  func writabilityChanged(isWritable: Bool) {
    session.assumeIsolated { $0.writabilityChanged(isWritable: isWritable) }
  }
}
