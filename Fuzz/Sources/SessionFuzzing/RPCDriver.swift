import FuzzSupport
import HarkAudio
import HarkProto
import HarkRecognizer
import NIOCore

/// One Recognize RPC carried out as `RecognizerSession` and its `EngineRunner` carry it out (see
/// their `perform()` and `run(_:samples:)`), synchronously and without a transport, checking what
/// it sends as it goes.
///
/// An engine runs inline (each answer reported to the machine the moment the engine returns it)
/// or on a "worker": its calls queue up, in order, and are answered when the program runs them,
/// interleaved with the client's requests as a worker thread's answers would be. Either way its
/// preparation is queued too (the server prepares off the event loop), so requests arrive while
/// the machine acquires. The engine goes back to the pool after the calls queued before the
/// release.
final class RPCDriver {
  /// The statuses DESIGN.md's table lists.
  static let documentedCodes: Set<UInt32> = [
    100, 200, 204, 400, 401, 403, 404, 408, 409, 410, 413, 429, 500, 502, 512,
  ]

  /// An engine call waiting on the worker (or, for a preparation, the thread pool).
  enum Job {
    case prepare(RecognitionConfiguration)
    case audio([Int16], position: Int)
    case begin(onset: Int)
    case end(Int)
    case release
  }

  let name: String
  let onWorker: Bool
  private let pool: EnginePool
  private let trace: Bool
  /// Whether an IMMUTABLE_PARTIAL final must extend the last partial (DESIGN rule 5): off by
  /// default, as the sphinx engine's finals often contradict its partials today (dictation and
  /// grammars alike: partials are the first pass's raw hypotheses).
  private let checksImmutableFinals: Bool

  private var machine = ServerSessionStateMachine()
  private var actions: [ServerSessionStateMachine.Action] = []
  private var engine: CheckedEngine?
  private var assembler: PCMAssembler?
  private var samples: [Int16] = []
  private var jobs: [(engine: CheckedEngine, job: Job)] = []
  /// Whether the engine's preparation is queued and has not returned.
  private var preparing = false
  /// Rejections the server's policy gives the next inits instead of admitting them.
  var refusals: [ServerSessionStateMachine.InitRejection] = []
  var stream = AudioStream()

  // What happened, checked as it happens and at the end.
  private(set) var halfClosed = false
  private(set) var cancelled = false
  private(set) var idleTimerRunning = false
  private var configuration: RecognitionConfiguration?
  private var responses = 0
  private var terminal: RecognitionStatus?
  private var finishCalls = 0
  private var timersContinues = 0
  private var startsOfSpeech = 0
  private var finals = 0
  private var results = 0
  private var lastPartialText: String?
  private var acquired = 0
  private var released = 0

  init(name: String, onWorker: Bool, pool: EnginePool, trace: Bool, checksImmutableFinals: Bool) {
    self.name = name
    self.onWorker = onWorker
    self.pool = pool
    self.trace = trace
    self.checksImmutableFinals = checksImmutableFinals
  }

  var isFinished: Bool { machine.isFinished }

  /// How the client's audio is encoded: the accepted format, else L16 at 8 kHz.
  var audioFormat: AudioStreamFormat {
    machine.configuration?.audioFormat ?? configuration?.audioFormat ?? .linear16(sampleRate: 8000)
  }

  // MARK: Events

  /// The transport delivered a request message (`RecognizerSession.receive`).
  func receive(_ message: ByteBuffer) {
    let request: RecognitionRequest
    do {
      request = try RecognitionRequest(serializedBytes: message)
    } catch {
      // The server ends the call with gRPC INTERNAL and no recognition status: a cancel.
      log("undecodable request: INTERNAL")
      if !machine.isFinished { cancelled = true }
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
    samples.removeAll(keepingCapacity: true)
    bytes.withUnsafeReadableBytes { raw in assembler?.append(raw, into: &samples) }
    samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
  }

  func endOfRequests() {
    halfClosed = true
    machine.endOfRequests(into: &actions)
    perform()
  }

  func cancel() {
    if !machine.isFinished { cancelled = true }
    machine.cancel(into: &actions)
    perform()
  }

  func shutdown() {
    machine.shutdown(into: &actions)
    perform()
  }

  /// The idle timer fired: it does only while it runs and the recognition runs
  /// (`RecognizerSession.idleCheck`).
  func idleTimeout() {
    guard idleTimerRunning else { return }
    idleTimerRunning = false
    guard machine.isRecognizing else { return }
    machine.idleTimeout(milliseconds: 10_000, into: &actions)
    perform()
  }

  /// The worker answers up to `count` queued engine calls, oldest first.
  func runJobs(_ count: Int) {
    var count = count
    while count > 0, !jobs.isEmpty {
      count -= 1
      let (engine, job) = jobs.removeFirst()
      if case .release = job {
        engine.reset()
        pool.release(engine)
        released += 1
        log("engine released (worker)")
        continue
      }
      if case .prepare = job { preparing = false }
      let answer = Self.run(job, on: engine, samples: [])
      // Released while it prepared: nobody waits for its answer.
      guard self.engine === engine else { continue }
      if let answer { answered(answer) }
      perform()
    }
  }

  /// What an engine call answered (`EngineRunner.Answer`).
  enum Answer {
    case prepared(Result<[EngineNotice], EngineError>)
    case partial(EngineHypothesis, position: Int)
    case final([EngineHypothesis], end: Int)
    case failed(EngineError)
  }

  /// One engine call, on `samples` (or the job's own); its answer, if it has one.
  static func run(_ job: Job, on engine: CheckedEngine, samples: [Int16]) -> Answer? {
    do throws(EngineError) {
      switch job {
      case .prepare(let configuration):
        return .prepared(.success(try engine.prepare(configuration)))
      case .audio(let queued, let position):
        let samples = queued.isEmpty ? samples : queued
        let partial = try samples.withUnsafeBufferPointer { samples throws(EngineError) in
          try engine.process(samples, at: position)
        }
        return partial.map { .partial($0, position: position) }
      case .begin(let onset):
        try engine.beginUtterance(at: onset)
        return nil
      case .end(let end):
        return .final(try engine.endUtterance(at: end), end: end)
      case .release:
        return nil
      }
    } catch {
      if case .prepare = job { return .prepared(.failure(error)) }
      return .failed(error)
    }
  }

  /// The engine answered: into the machine (`RecognizerSession.engineAnswered`).
  private func answered(_ answer: Answer) {
    switch answer {
    case .prepared(.success(let notices)):
      guard let configuration = machine.configuration else { return }
      self.configuration = configuration
      assembler = PCMAssembler(encoding: configuration.audioFormat.encoding)
      machine.engineReady(notices: notices, into: &actions)
    case .prepared(.failure(let error)):
      machine.rejectInit(.prepareFailed(error), into: &actions)
    case .partial(let hypothesis, let position):
      machine.enginePartial(hypothesis, position: position, into: &actions)
    case .final(let hypotheses, let end):
      machine.engineFinal(hypotheses, end: end, into: &actions)
    case .failed(let error):
      machine.engineFailed(error, into: &actions)
    }
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
        sent(response)
      case .finishCall:
        check(terminal != nil, "\(name): the call finished without a terminal status")
        check(finishCalls == 0, "\(name): the call finished twice")
        finishCalls += 1
      case .engineAudio(let position):
        run(.audio([], position: position), "engineAudio")
      case .engineBeginUtterance(let onset):
        run(.begin(onset: onset), "engineBeginUtterance")
      case .engineEndUtterance(let end):
        run(.end(end), "engineEndUtterance")
      case .replayAudio(let bytes):
        receiveAudio(bytes)
      case .pauseRequests, .resumeRequests:
        break
      case .releaseEngine:
        releaseEngine()
      case .restartIdleTimer:
        idleTimerRunning = true
      case .stopIdleTimer:
        idleTimerRunning = false
      }
    }
    actions.removeAll(keepingCapacity: true)
    if machine.isFinished { checkFinished() }
  }

  /// Runs `job` inline, or queues it for the worker with a copy of the message's samples.
  private func run(_ job: Job, _ action: String) {
    guard let engine = engineForCall(action) else { return }
    check(!preparing, "\(name): \(action) before the engine was prepared")
    if onWorker {
      if case .audio(_, let position) = job {
        jobs.append((engine, .audio(samples, position: position)))
      } else {
        jobs.append((engine, job))
      }
      return
    }
    if let answer = Self.run(job, on: engine, samples: samples) { answered(answer) }
  }

  private func engineForCall(_ action: String) -> CheckedEngine? {
    check(engine != nil, "\(name): \(action) while the RPC holds no engine")
    return engine
  }

  private func acquireEngine() {
    guard let configuration = machine.configuration else {
      fatalError("\(name): acquireEngine without an accepted configuration")
    }
    if !refusals.isEmpty {
      machine.rejectInit(refusals.removeFirst(), into: &actions)
      return
    }
    guard let engine = pool.acquire() else {
      machine.rejectInit(.enginesBusy(capacity: 1), into: &actions)
      return
    }
    acquired += 1
    log("engine acquired")
    self.engine = engine
    // Off the event loop: answered when the program runs the jobs.
    preparing = true
    jobs.append((engine, .prepare(configuration)))
  }

  private func releaseEngine() {
    // Nothing to release after a refusal that came before an engine was taken.
    guard let engine else { return }
    self.engine = nil
    if onWorker || preparing {
      // After the calls still queued (or the preparation): the engine goes back to the pool
      // once it is idle.
      jobs.append((engine, .release))
      return
    }
    engine.reset()
    pool.release(engine)
    released += 1
    log("engine released")
  }

  // MARK: Checks

  /// A response went out: it must be one the protocol allows here.
  private func sent(_ response: RecognitionResponse) {
    log("→ \(Self.describe(response))")
    check(finishCalls == 0, "\(name): a response after the call finished: \(response)")
    check(terminal == nil, "\(name): a response after the terminal status: \(response)")
    check(!cancelled, "\(name): a response after the client cancelled: \(response)")
    defer { responses += 1 }
    guard case .status(let status)? = response.response else {
      check(responses > 0, "\(name): the first response is not a status: \(response)")
      check(configuration != nil, "\(name): \(response) before the 100 Continue")
      switch response.response {
      case .startOfSpeech?:
        startsOfSpeech += 1
      case .result(let result)?:
        checkResult(result)
      default:
        fatalError("\(name): an empty response")
      }
      return
    }
    check(
      Self.documentedCodes.contains(status.code),
      "\(name): status \(status.code) is not in DESIGN.md's table: \(status)"
    )
    guard status.code == 100 else {
      terminal = status
      switch status.code {
      case 200:
        check(finals > 0, "\(name): 200 without a final result")
      case 400:
        check(!status.details.isEmpty, "\(name): a 400 that names no field")
      case 404:
        check(startsOfSpeech == 0, "\(name): 404 No speech after a StartOfSpeech")
      case 204:
        check(results == 0, "\(name): 204 No result after \(results) results")
      default:
        break
      }
      return
    }
    guard let configuration else {
      fatalError("\(name): 100 Continue without an accepted init: \(status)")
    }
    if responses == 0 {
      check(
        status.details == ServerSessionStateMachine.continueDetails(configuration),
        "\(name): the 100 Continue names another stream: \(status.details)"
      )
    } else {
      // A start_timers_message that starts stalled timers: once, and only when they stalled.
      timersContinues += 1
      check(
        configuration.stallTimers && timersContinues == 1,
        "\(name): a second 100 Continue, for timers that were not stalled or already started"
      )
    }
  }

  private func checkResult(_ result: RecognitionResult) {
    guard let configuration else { return }
    results += 1
    let final = result.resultType == .final
    check(
      final || configuration.resultType != .final,
      "\(name): a partial result when the client asked for FINAL only"
    )
    check(
      result.hypotheses.count <= configuration.maxHypotheses,
      "\(name): \(result.hypotheses.count) hypotheses, more than max_hypotheses"
    )
    check(
      result.absEndMs >= result.absStartMs,
      "\(name): a result that ends before it starts"
    )
    // Rule 5: StartOfSpeech once per utterance, before its first result.
    check(
      startsOfSpeech > finals,
      "\(name): a \(final ? "final" : "partial") result outside an utterance "
        + "(\(startsOfSpeech) StartOfSpeech, \(finals) final results before it)"
    )
    let text = result.hypotheses.first?.formattedText ?? ""
    if configuration.resultType == .immutablePartial, let last = lastPartialText,
      !final || checksImmutableFinals
    {
      // Partials only grow, and the final extends the last of them.
      check(
        text.hasPrefix(last),
        "\(name): an IMMUTABLE_PARTIAL \(final ? "final" : "partial") '\(text)' does not extend '\(last)'"
      )
    }
    lastPartialText = final ? nil : text
    if final {
      check(!result.hypotheses.isEmpty, "\(name): a final result without a hypothesis")
      check(
        configuration.mode != .single || finals == 0,
        "\(name): a second final result in SINGLE mode"
      )
      finals += 1
    }
  }

  /// The RPC ended: with exactly one terminal status (or a cancel), and nothing still running.
  private func checkFinished() {
    check(
      (terminal != nil) != cancelled,
      "\(name): ended with \(terminal.map { "status \($0.code)" } ?? "no status")"
        + (cancelled ? " and a cancel" : "")
    )
    check(
      terminal == machine.finalStatus,
      "\(name): the machine's final status is not the status sent"
    )
    check(cancelled || finishCalls == 1, "\(name): a status but no finishCall")
    check(engine == nil, "\(name): the RPC ended holding its engine")
    check(!idleTimerRunning, "\(name): the RPC ended with its idle timer running")
  }

  /// Checked once every event of the program has happened and the RPC was made to end.
  func checkAtEnd() {
    check(machine.isFinished, "\(name): the RPC did not end")
    check(jobs.isEmpty, "\(name): engine calls left queued")
    check(acquired <= 1, "\(name): acquired an engine \(acquired) times")
    check(
      acquired == released,
      "\(name): acquired an engine \(acquired) times but released it \(released) times"
    )
  }

  // MARK: Tracing

  func log(_ line: @autoclosure () -> String) {
    if trace { traceLine("  \(name): \(line())") }
  }

  static func describe(_ response: RecognitionResponse) -> String {
    switch response.response {
    case .status(let status)?:
      return "status \(status.code) \(status.message) \(status.details)"
    case .startOfSpeech(let start)?:
      return "start of speech at \(start.firstAudioToStartOfSpeechMs) ms"
    case .result(let result)?:
      let texts = result.hypotheses.map {
        "\"\($0.formattedText)\"\($0.rejected ? " rejected" : "")"
      }
      return "result \(result.resultType.rawValue == 0 ? "final" : "partial") "
        + "\(result.absStartMs)–\(result.absEndMs) ms \(texts.joined(separator: ", "))"
    case nil:
      return "empty"
    }
  }
}
