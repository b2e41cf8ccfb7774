import FuzzSupport
import HarkAudio
import HarkProto
import HarkRecognizer
import NIOCore

/// One Recognize RPC carried out as `RecognizerSession` carries it out (see its `perform()`),
/// synchronously and without a transport, checking what it sends as it goes.
///
/// An engine runs inline (its answers reported at once, a partial after the message's other
/// actions) or on a "worker": its calls queue up, in order, and are answered when the program
/// runs them, interleaved with the client's requests as a worker thread's answers would be. The
/// engine goes back to the pool after the calls queued before the release.
final class RPCDriver {
  /// The statuses DESIGN.md's table lists.
  static let documentedCodes: Set<UInt32> = [
    100, 200, 204, 400, 401, 403, 404, 408, 409, 410, 413, 429, 500, 502, 512,
  ]

  /// An engine call waiting on the worker.
  enum Job {
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
  private var pendingPartial: EngineHypothesis?
  private var jobs: [(engine: CheckedEngine, job: Job)] = []
  /// Statuses the server's policy gives the next inits instead of admitting them.
  var refusals: [RecognitionStatus] = []
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
      samples.removeAll(keepingCapacity: true)
      bytes.withUnsafeReadableBytes { raw in assembler?.append(raw, into: &samples) }
      samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
    } else {
      machine.receive(request, into: &actions)
    }
    perform()
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
      do throws(EngineError) {
        switch job {
        case .audio(let samples, let position):
          let partial = try samples.withUnsafeBufferPointer { samples throws(EngineError) in
            try engine.process(samples, at: position)
          }
          if let partial { machine.enginePartial(partial, into: &actions) }
        case .begin(let onset):
          try engine.beginUtterance(at: onset)
        case .end(let end):
          machine.engineFinal(try engine.endUtterance(at: end), end: end, into: &actions)
        case .release:
          engine.reset()
          pool.release(engine)
          released += 1
          log("engine released (worker)")
        }
      } catch {
        machine.engineFailed(error, into: &actions)
      }
      perform()
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
        guard let engine = engineForCall("engineAudio") else { break }
        if onWorker {
          jobs.append((engine, .audio(samples, position: position)))
          break
        }
        do throws(EngineError) {
          let partial = try samples.withUnsafeBufferPointer { samples throws(EngineError) in
            try engine.process(samples, at: position)
          }
          if let partial { pendingPartial = partial }
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .engineBeginUtterance(let onset):
        guard let engine = engineForCall("engineBeginUtterance") else { break }
        if onWorker {
          jobs.append((engine, .begin(onset: onset)))
          break
        }
        do throws(EngineError) {
          try engine.beginUtterance(at: onset)
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .engineEndUtterance(let end):
        guard let engine = engineForCall("engineEndUtterance") else { break }
        if onWorker {
          jobs.append((engine, .end(end)))
          break
        }
        do throws(EngineError) {
          let hypotheses = try engine.endUtterance(at: end)
          pendingPartial = nil
          machine.engineFinal(hypotheses, end: end, into: &actions)
        } catch {
          machine.engineFailed(error, into: &actions)
        }
      case .releaseEngine:
        releaseEngine()
      case .restartIdleTimer:
        idleTimerRunning = true
      case .stopIdleTimer:
        idleTimerRunning = false
      }
      if index == actions.count, let partial = pendingPartial {
        // After the message's other actions, so that its StartOfSpeech goes first.
        pendingPartial = nil
        machine.enginePartial(partial, into: &actions)
      }
    }
    actions.removeAll(keepingCapacity: true)
    if machine.isFinished { checkFinished() }
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
      machine.rejectInit(
        RecognitionStatus(code: 409, message: "Conflict", details: "all 1 recognizers are busy"),
        into: &actions
      )
      return
    }
    acquired += 1
    log("engine acquired")
    do throws(EngineError) {
      let notices = try engine.prepare(configuration)
      self.engine = engine
      self.configuration = configuration
      assembler = PCMAssembler(encoding: configuration.audioFormat.encoding)
      machine.engineReady(notices: notices, into: &actions)
    } catch {
      engine.reset()
      pool.release(engine)
      released += 1
      log("engine released (prepare failed)")
      let status: RecognitionStatus
      switch error.kind {
      case .badRequest(let field):
        status = .init(code: 400, message: "Bad request", details: "\(field): \(error.message)")
      case .resourceFailed(let field):
        status = .init(code: 502, message: "Resource error", details: "\(field): \(error.message)")
      case .internalFailure:
        status = .init(code: 500, message: "Internal server error", details: error.message)
      }
      machine.rejectInit(status, into: &actions)
    }
  }

  private func releaseEngine() {
    check(engine != nil, "\(name): releaseEngine while the RPC holds no engine")
    guard let engine else { return }
    self.engine = nil
    if onWorker {
      // After the calls still queued: the engine goes back to the pool once it is idle.
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
