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
/// more than a second of audio behind, the session stops acknowledging the client's data, and
/// HTTP/2 flow control slows the client down.
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
  private var lastAudio = NIODeadline.now()
  private var registered = false
  private var audioMessages = 0
  private var reported = false
  private let startedAt = NIODeadline.now()
  /// The worker of an engine that runs off the loop, and its jobs not yet answered.
  private var worker: DispatchQueue?
  private var backlog = 0
  private var holdingConsumption = false
  /// Jobs behind beyond which the client's data is no longer acknowledged (a second of audio in
  /// 20 ms messages), and below which it is again.
  static let backlogLimit = 50

  init(stream: GRPCServerStream, context: RecognizerServer.Context) {
    self.stream = stream
    self.eventLoop = stream.eventLoop
    self.context = context
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

  func cancelled() {
    machine.cancel(into: &actions)
    perform()
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
          enqueue(engine) { engine throws(EngineError) in
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
          duration: .nanoseconds(nanoseconds)
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

  /// Runs `job` on the worker, after the jobs before it; its answer comes back to the loop.
  private func enqueue(
    _ engine: any SpeechEngine,
    _ job: @escaping @Sendable (any SpeechEngine) throws(EngineError) -> EngineAnswer
  ) {
    guard let worker else { return }
    backlog += 1
    if backlog > Self.backlogLimit && !holdingConsumption {
      holdingConsumption = true
      stream.holdConsumption(true)
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
      eventLoop.execute { self.assumeIsolated { $0.engineAnswered(answer) } }
    }
  }

  private func engineAnswered(_ answer: Result<EngineAnswer, EngineError>) {
    backlog -= 1
    if holdingConsumption && backlog <= Self.backlogLimit / 2 {
      holdingConsumption = false
      stream.holdConsumption(false)
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
    session.assumeIsolated { $0.cancelled() }
  }
}
