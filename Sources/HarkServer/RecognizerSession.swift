internal import HarkAudio
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore

/// One Recognize RPC on the server: carries out its ``ServerSessionStateMachine``.
///
/// The session is an actor whose executor is its connection's event loop, and the transport
/// delivers every message on that loop: it enters the actor with `assumeIsolated`, so an audio
/// message costs no task, no hop and no allocation beyond its decoded samples.
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
  private var samples: [Int16] = []
  private var pendingPartial: EngineHypothesis?
  private var idleTimer: Scheduled<Void>?
  private var lastAudio = NIODeadline.now()
  private var registered = false

  init(stream: GRPCServerStream, context: RecognizerServer.Context) {
    self.stream = stream
    self.eventLoop = stream.eventLoop
    self.context = context
    samples.reserveCapacity(640)
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
      receiveAudio(bytes)
    } else {
      machine.receive(request, into: &actions)
    }
    perform()
  }

  private func receiveAudio(_ bytes: ByteBuffer) {
    lastAudio = .now()
    samples.removeAll(keepingCapacity: true)
    bytes.withUnsafeReadableBytes { raw in assembler?.append(raw, into: &samples) }
    samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
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
        let result = samples.withUnsafeBufferPointer {
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
        do {
          try engine?.beginUtterance(at: onset)
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .engineEndUtterance(let end):
        guard let engine else { break }
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
    engine.reset()
    context.engines.release(engine)
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
