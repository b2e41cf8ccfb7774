import HarkAudio
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

/// The server's Recognize protocol without sockets or clocks: build the target state by its
/// events, apply one event, and compare the actions and the state it leads to.
///
/// Positions are samples of 8 kHz audio (80 a frame of 10 ms). Actions are written as short
/// strings: `idle` (restart the idle timer), `audio@800` (give the engine the message's samples,
/// which start at sample 800), `begin@2400` / `end@4000` (utterance boundaries for the engine),
/// `sos 300ms`, `partial '5' 300-500ms` / `final '5' 300-500ms` (results and their
/// `abs_start_ms`-`abs_end_ms`), `404 No speech` (a status), `finish` (end the call),
/// `idle stop`, `release` (the engine), `acquire` (an engine), `replay 8000B` (an audio message
/// queued while acquiring, which the test then reports as a driver does), `pause` / `resume`
/// (the client's data).
@Suite("Server session state machine")
struct ServerSessionStateMachineTests {
  typealias Machine = ServerSessionStateMachine

  // MARK: - Audio

  /// What a test sends as one audio message.
  enum Sound: Hashable, Sendable, Codable, CustomStringConvertible {
    /// An audio message without samples.
    case empty
    /// Digital silence.
    case silence(milliseconds: Int)
    /// The DTMF key 5, each tone at -10 dBFS: speech to the endpointer.
    case tone(milliseconds: Int)
    /// Pieces one after another in one message.
    indirect case sequence([Sound])

    var description: String {
      switch self {
      case .empty: "empty"
      case .silence(let milliseconds): "\(milliseconds) ms silence"
      case .tone(let milliseconds): "\(milliseconds) ms tone"
      case .sequence(let sounds): sounds.map(\.description).joined(separator: " + ")
      }
    }

    var segments: [DTMFGenerator.Segment] {
      switch self {
      case .empty: []
      case .silence(let milliseconds): [.silence(milliseconds: milliseconds)]
      case .tone(let milliseconds): [.dtmf(.five, milliseconds: milliseconds)]
      case .sequence(let sounds): sounds.flatMap(\.segments)
      }
    }

    func samples(sampleRate: Int = 8000) -> [Int16] {
      var generator = DTMFGenerator(sampleRate: sampleRate)
      return generator.generate(segments)
    }

    /// The samples as the L16 bytes of an audio message.
    var bytes: ByteBuffer {
      var buffer = ByteBuffer()
      for sample in samples() { buffer.writeInteger(sample, endianness: .little) }
      return buffer
    }
  }

  // MARK: - Events

  /// The table's recognition: MULTIPLE, PARTIAL, no-input 800 ms, recognition timeout 1000 ms,
  /// the default end silence (500 ms).
  static func tableInit(
    stallTimers: Bool = false,
    mode: UtteranceDetectionMode = .multiple,
    resultType: ResultType = .partial,
    configure: (inout RecognitionParameters) -> Void = { _ in }
  ) -> RecognitionInitMessage {
    makeInit(mode: mode, resultType: resultType) { parameters in
      parameters.noInputTimeoutMs = 800
      parameters.recognitionTimeoutMs = 1000
      if stallTimers {
        var flags = RecognitionFlags()
        flags.stallTimers = true
        parameters.recognitionFlags = flags
      }
      configure(&parameters)
    }
  }

  /// One event of the diagram.
  enum Event: Hashable, Sendable, Codable, CustomStringConvertible {
    /// A valid init message (the session's).
    case initMessage
    /// An init message without a language.
    case badInit
    /// `control_message { start_timers_message {} }`.
    case startTimers
    /// A control message without a control.
    case emptyControl
    /// A request message with no member of its oneof set.
    case emptyRequest
    /// An audio message: `audio(_:)` while recognizing, else `receive(_:)`, as the driver does.
    case audio(Sound)
    /// The client half-closed.
    case endOfRequests
    /// The driver acquired and prepared an engine.
    case engineReady
    /// The driver refused the recognition: 409, the pool is busy.
    case rejectInit
    /// The engine returned a partial hypothesis, computed from the first audio message (as an
    /// engine on a worker thread that is behind reports it).
    case partial(String)
    /// The engine returned the final hypotheses of the utterance the machine last ended.
    case final([String])
    /// The engine failed.
    case engineFailed
    /// No audio message for the idle timeout (10 s).
    case idleTimeout
    /// No init within the pre-init timeout (10 s).
    case initTimeout
    /// The server shuts down.
    case shutdown
    /// The client reset the RPC.
    case cancel

    var description: String {
      switch self {
      case .initMessage: "init"
      case .badInit: "bad init"
      case .startTimers: "start_timers"
      case .emptyControl: "empty control"
      case .emptyRequest: "empty request"
      case .audio(let sound): "audio(\(sound))"
      case .endOfRequests: "end of requests"
      case .engineReady: "engine ready"
      case .rejectInit: "reject init (409)"
      case .partial(let text): "partial '\(text)'"
      case .final(let texts): "final \(texts)"
      case .engineFailed: "engine failed"
      case .idleTimeout: "idle timeout"
      case .initTimeout: "init timeout"
      case .shutdown: "shutdown"
      case .cancel: "cancel"
      }
    }
  }

  /// A machine and what a driver remembers of it: where it last asked the engine to end an
  /// utterance, which is the end the engine's final result reports.
  struct Session {
    var machine = Machine()
    var requestedEnd: Int?
    var initMessage: RecognitionInitMessage
    /// Every status sent, in order.
    var statuses: [RecognitionStatus] = []
    /// Every result sent, in order.
    var results: [RecognitionResult] = []
    /// Decodes replayed audio messages.
    var assembler: PCMAssembler?

    init(_ initMessage: RecognitionInitMessage = ServerSessionStateMachineTests.tableInit()) {
      self.initMessage = initMessage
    }

    /// Applies `event` and returns its actions as strings.
    @discardableResult
    mutating func apply(_ event: Event) -> [String] {
      var actions: [Machine.Action] = []
      switch event {
      case .initMessage:
        machine.receive(.initMessage(initMessage), into: &actions)
      case .badInit:
        machine.receive(.initMessage(makeInit { $0.language = "" }), into: &actions)
      case .startTimers:
        machine.receive(.startTimers, into: &actions)
      case .emptyControl:
        machine.receive(RecognitionRequest(.controlMessage(ControlMessage())), into: &actions)
      case .emptyRequest:
        machine.receive(RecognitionRequest(), into: &actions)
      case .audio(let sound):
        if machine.isRecognizing {
          let sampleRate = machine.configuration!.sampleRate
          sound.samples(sampleRate: sampleRate).withUnsafeBufferPointer {
            machine.audio($0, into: &actions)
          }
        } else {
          machine.receive(.audio(sound.bytes), into: &actions)
        }
      case .endOfRequests:
        machine.endOfRequests(into: &actions)
      case .engineReady:
        machine.engineReady(into: &actions)
      case .rejectInit:
        machine.rejectInit(.enginesBusy(capacity: 1), into: &actions)
      case .partial(let text):
        machine.enginePartial(
          ServerSessionStateMachineTests.hypothesis(text),
          position: 0,
          into: &actions
        )
      case .final(let texts):
        machine.engineFinal(
          texts.map { ServerSessionStateMachineTests.hypothesis($0) },
          end: requestedEnd ?? 0,
          into: &actions
        )
      case .engineFailed:
        machine.engineFailed(EngineError(.internalFailure, "decoder crashed"), into: &actions)
      case .idleTimeout:
        machine.idleTimeout(milliseconds: 10_000, into: &actions)
      case .initTimeout:
        machine.initTimeout(milliseconds: 10_000, into: &actions)
      case .shutdown:
        machine.shutdown(into: &actions)
      case .cancel:
        machine.cancel(into: &actions)
      }
      return record(actions)
    }

    /// Applies `events` in turn and returns all their actions.
    @discardableResult
    mutating func apply(_ events: [Event]) -> [String] {
      events.flatMap { apply($0) }
    }

    /// Gives the machine the samples of `sound` in messages of `milliseconds`; returns the
    /// actions of each message.
    mutating func audio(_ sound: Sound, messageMilliseconds milliseconds: Int) -> [[String]] {
      let samples = sound.samples()
      let size = 8 * milliseconds
      return stride(from: 0, to: samples.count, by: size).map { start in
        var actions: [Machine.Action] = []
        samples[start..<min(start + size, samples.count)].withUnsafeBufferPointer {
          machine.audio($0, into: &actions)
        }
        return record(actions)
      }
    }

    /// Records what `actions` send, and reports each replayed audio message as a driver does
    /// (decoded, with `audio(_:into:)`, whose actions follow); returns all the actions.
    private mutating func record(_ actions: [Machine.Action]) -> [String] {
      var actions = actions
      var index = 0
      while index < actions.count {
        let action = actions[index]
        index += 1
        switch action {
        case .engineEndUtterance(let end): requestedEnd = end
        case .send(let response):
          switch response.response {
          case .status(let status)?: statuses.append(status)
          case .result(let result)?: results.append(result)
          case .startOfSpeech?, nil: break
          }
        case .replayAudio(let bytes):
          if assembler == nil {
            assembler = PCMAssembler(encoding: machine.configuration!.audioFormat.encoding)
          }
          var samples: [Int16] = []
          bytes.withUnsafeReadableBytes { assembler!.append($0, into: &samples) }
          samples.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
        default: break
        }
      }
      return actions.map(ServerSessionStateMachineTests.summary)
    }
  }

  /// A hypothesis whose words are the characters of `text`, each 100 ms long and 200 ms after
  /// the one before, from 300 ms.
  static func hypothesis(_ text: String, confidence: Float = 0.9) -> EngineHypothesis {
    let words = text.enumerated().map { index, character in
      EngineWord(
        text: String(character),
        startSample: 2400 + index * 1600,
        endSample: 3200 + index * 1600,
        confidence: confidence
      )
    }
    return EngineHypothesis(words: words, text: text, confidence: confidence)
  }

  static func summary(_ action: Machine.Action) -> String {
    switch action {
    case .acquireEngine: "acquire"
    case .send(let response): summary(response)
    case .finishCall(let pushback): pushback.map { "finish, retry in \($0) ms" } ?? "finish"
    case .engineAudio(let position): "audio@\(position)"
    case .engineBeginUtterance(let onset): "begin@\(onset)"
    case .engineEndUtterance(let end): "end@\(end)"
    case .releaseEngine: "release"
    case .restartIdleTimer: "idle"
    case .stopIdleTimer: "idle stop"
    case .replayAudio(let bytes): "replay \(bytes.readableBytes)B"
    case .pauseRequests: "pause"
    case .resumeRequests: "resume"
    }
  }

  static func summary(_ response: RecognitionResponse) -> String {
    switch response.response {
    case .status(let status)?: "\(status.code) \(status.message)"
    case .startOfSpeech(let event)?: "sos \(event.firstAudioToStartOfSpeechMs)ms"
    case .result(let result)?:
      "\(name(result.resultType)) '\(text(result))' \(result.absStartMs)-\(result.absEndMs)ms"
    case nil: "empty"
    }
  }

  /// The texts of a result's hypotheses, joined by `|`.
  static func text(_ result: RecognitionResult) -> String {
    result.hypotheses.map(\.formattedText).joined(separator: "|")
  }

  static func name(_ type: ResultType) -> String {
    switch type {
    case .final: "final"
    case .partial: "partial"
    case .immutablePartial: "immutable"
    default: "type \(type.rawValue)"
    }
  }

  /// What a recognition that ends does after sending its status.
  static let ended = ["finish", "idle stop", "release"]

  // MARK: - States

  /// The timers of a recognition.
  enum Timers: Hashable, Sendable {
    case stalled
    case running
  }

  /// Where a recognition is in its utterances, as ending the request stream would show.
  enum Utterance: Hashable, Sendable {
    /// No utterance yet: ending now is 204.
    case none
    /// Between utterances after a final result: ending now is 200.
    case afterResult
    /// An utterance is open: ending now asks the engine for its final result.
    case open
    /// A final result was asked of the engine and has not come back.
    case finalPending
  }

  /// The diagram's states, read back through the public API alone.
  enum Phase: Hashable, Sendable, CustomStringConvertible {
    case awaitingInit
    case acquiring
    case recognizing(Timers, Utterance)
    /// Ended, with the status sent (nil: reset by the client, no status).
    case finished(UInt32?)

    var description: String {
      switch self {
      case .awaitingInit: "awaitingInit"
      case .acquiring: "acquiring"
      case .recognizing(let timers, let utterance): "recognizing(\(timers), \(utterance))"
      case .finished(let code): "finished(\(code.map(String.init) ?? "no status"))"
      }
    }
  }

  /// The state `machine` is in, found from its properties and, on copies, from what it would do.
  static func phase(of machine: Machine) -> Phase {
    var machine = machine
    if machine.isFinished { return .finished(machine.finalStatus?.code) }
    guard machine.isRecognizing else {
      #expect(machine.finalStatus == nil)
      return machine.configuration == nil ? .awaitingInit : .acquiring
    }
    var probe = machine
    var actions: [Machine.Action] = []
    probe.receive(.startTimers, into: &actions)
    let timers: Timers = actions.isEmpty ? .running : .stalled
    probe = machine
    actions = []
    probe.endOfRequests(into: &actions)
    let utterance: Utterance
    switch actions.first {
    case nil: utterance = .finalPending
    case .engineEndUtterance?: utterance = .open
    case .send(let response)? where response.status?.code == 200: utterance = .afterResult
    default: utterance = .none
    }
    return .recognizing(timers, utterance)
  }

  /// A state named by the events that lead there, on the table's recognition.
  enum Start: String, CaseIterable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Nothing received.
    case awaitingInit
    /// The init was accepted; the driver is preparing an engine.
    case acquiring
    /// 100 sent, `stall_timers` set, no audio yet.
    case stalled
    /// 100 sent, timers running, no audio yet.
    case waiting
    /// 500 ms of silence heard, no speech.
    case waitingInSilence
    /// 300 ms of silence, then 200 ms of tone still sounding: an utterance since 300 ms.
    case inSpeech
    /// `inSpeech`, then 200 ms of silence (less than the end silence).
    case trailingSilence
    /// `inSpeech`, then 500 ms of silence: the utterance ended, its final is asked for.
    case finalPending
    /// `inSpeech`, then 900 ms more tone: the recognition timeout asked for a final; 413 follows.
    case timeoutPending
    /// `inSpeech`, then the client half-closed: the final is asked for; 200 follows.
    case endPending
    /// `finalPending`, then the final result: waiting for the next utterance.
    case afterResult
    /// `afterResult`, then the client half-closed: 200.
    case finished
    /// `waiting`, then the client reset the RPC.
    case cancelled

    var description: String { rawValue }

    /// The events that lead here from a new machine.
    var recipe: [Event] {
      switch self {
      case .awaitingInit: []
      case .acquiring: [.initMessage]
      case .stalled, .waiting: [.initMessage, .engineReady]
      case .waitingInSilence: Start.waiting.recipe + [.audio(.silence(milliseconds: 500))]
      case .inSpeech:
        Start.waiting.recipe + [
          .audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)]))
        ]
      case .trailingSilence: Start.inSpeech.recipe + [.audio(.silence(milliseconds: 200))]
      case .finalPending: Start.inSpeech.recipe + [.audio(.silence(milliseconds: 500))]
      case .timeoutPending: Start.inSpeech.recipe + [.audio(.tone(milliseconds: 900))]
      case .endPending: Start.inSpeech.recipe + [.endOfRequests]
      case .afterResult: Start.finalPending.recipe + [.final(["5"])]
      case .finished: Start.afterResult.recipe + [.endOfRequests]
      case .cancelled: Start.waiting.recipe + [.cancel]
      }
    }

    /// The state the recipe leads to.
    var phase: Phase {
      switch self {
      case .awaitingInit: .awaitingInit
      case .acquiring: .acquiring
      case .stalled: .recognizing(.stalled, .none)
      case .waiting, .waitingInSilence: .recognizing(.running, .none)
      case .inSpeech, .trailingSilence: .recognizing(.running, .open)
      case .finalPending, .timeoutPending, .endPending: .recognizing(.running, .finalPending)
      case .afterResult: .recognizing(.running, .afterResult)
      case .finished: .finished(200)
      case .cancelled: .finished(nil)
      }
    }

    /// A session in this state.
    var session: Session {
      var session = Session(ServerSessionStateMachineTests.tableInit(stallTimers: self == .stalled))
      session.apply(recipe)
      return session
    }
  }

  @Test("each recipe leads to its state", arguments: Start.allCases)
  func recipes(_ start: Start) {
    #expect(Self.phase(of: start.session.machine) == start.phase)
  }

  @Test("the recipes' actions")
  func recipeActions() {
    var session = Session()
    #expect(session.apply(.initMessage) == ["acquire"])
    #expect(session.apply(.engineReady) == ["100 Continue", "idle"])
    #expect(
      session.apply(.audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)])))
        == ["idle", "audio@0", "sos 300ms", "begin@2400"]
    )
    #expect(session.apply(.audio(.silence(milliseconds: 200))) == ["idle", "audio@4000"])
    #expect(
      session.apply(.audio(.silence(milliseconds: 300))) == ["idle", "audio@5600", "end@4000"]
    )
    #expect(session.apply(.final(["5"])) == ["final '5' 300-500ms"])

    var timeout = Start.inSpeech.session
    #expect(timeout.apply(.audio(.tone(milliseconds: 900))) == ["idle", "audio@4000", "end@10400"])
  }

  // MARK: - Every state × event

  /// What one event does in one state.
  enum Outcome: Hashable, Sendable {
    /// These actions, and then this state.
    case transition([String], Phase)
    /// A driver bug: an assertion in debug builds, ignored in release builds.
    case callerBug
  }

  struct Row: Sendable, CustomTestStringConvertible {
    var start: Start
    var event: Event
    var outcome: Outcome

    init(_ start: Start, _ event: Event, _ actions: [String], _ phase: Phase) {
      self.start = start
      self.event = event
      self.outcome = .transition(actions, phase)
    }

    init(_ start: Start, _ event: Event, callerBug: Void) {
      self.start = start
      self.event = event
      self.outcome = .callerBug
    }

    var testDescription: String { "\(start) × \(event)" }
  }

  /// The events of the table, each applied to every state.
  static let events: [Event] = [
    .initMessage, .badInit, .startTimers, .emptyControl, .emptyRequest, .audio(.empty),
    .audio(.silence(milliseconds: 100)), .audio(.silence(milliseconds: 400)),
    .audio(.tone(milliseconds: 100)), .endOfRequests, .engineReady, .rejectInit, .partial("5"),
    .final(["5"]), .engineFailed, .idleTimeout, .initTimeout, .shutdown, .cancel,
  ]

  static let silence100 = Event.audio(.silence(milliseconds: 100))
  static let silence400 = Event.audio(.silence(milliseconds: 400))
  static let tone100 = Event.audio(.tone(milliseconds: 100))

  static let running = Phase.recognizing(.running, .none)
  static let stalledPhase = Phase.recognizing(.stalled, .none)
  static let open = Phase.recognizing(.running, .open)
  static let pending = Phase.recognizing(.running, .finalPending)
  static let afterResult = Phase.recognizing(.running, .afterResult)

  /// The states of a running recognition.
  static let recognizing: [Start] = [
    .stalled, .waiting, .waitingInSilence, .inSpeech, .trailingSilence, .finalPending,
    .timeoutPending, .endPending, .afterResult,
  ]

  /// Rows for `starts` that all give `actions` and leave their own state.
  static func unchanged(_ starts: [Start], _ event: Event, _ actions: [String] = []) -> [Row] {
    starts.map { Row($0, event, actions, $0.phase) }
  }

  /// Rows for `starts` that all end with `status` (e.g. "512 Shutdown"). While acquiring, the
  /// engine being prepared goes back too.
  static func ending(_ starts: [Start], _ event: Event, _ status: String) -> [Row] {
    starts.map { start in
      let code = UInt32(status.prefix(3))!
      // 409 and 512 tell the client when to try again (DESIGN rule 11).
      let finish =
        switch code {
        case 409: "finish, retry in \(Machine.conflictPushbackMilliseconds) ms"
        case 512: "finish, retry in \(Machine.shutdownPushbackMilliseconds) ms"
        default: "finish"
        }
      switch start {
      case .awaitingInit: return Row(start, event, [status, finish], .finished(code))
      case .acquiring: return Row(start, event, [status, finish, "release"], .finished(code))
      default: return Row(start, event, [status, finish] + ended.dropFirst(), .finished(code))
      }
    }
  }

  static let table: [Row] =
    // A valid init: the first is acquired, a second is 400 (after the 100: queued while
    // acquiring, see secondInitWhileAcquiring).
    [Row(.awaitingInit, .initMessage, ["acquire"], .acquiring)]
    + [Row(.acquiring, .initMessage, [], .acquiring)]
    + ending(recognizing, .initMessage, "400 Bad request")
    + unchanged([.finished, .cancelled], .initMessage)
    // An invalid init: 400 whenever the RPC is open (after the 100 while acquiring).
    + ending([.awaitingInit] + recognizing, .badInit, "400 Bad request")
    + [Row(.acquiring, .badInit, [], .acquiring)]
    + unchanged([.finished, .cancelled], .badInit)
    // start_timers: 410 before the init, queued while acquiring, 100 when it starts stalled
    // timers, else nothing.
    + ending([.awaitingInit], .startTimers, "410 Not recognizing")
    + [Row(.acquiring, .startTimers, [], .acquiring)]
    + [Row(.stalled, .startTimers, ["100 Continue"], running)]
    + unchanged(
      [
        .waiting, .waitingInSilence, .inSpeech, .trailingSilence, .finalPending, .timeoutPending,
        .endPending, .afterResult, .finished, .cancelled,
      ],
      .startTimers
    )
    // Messages without content change nothing.
    + unchanged(Start.allCases, .emptyControl)
    + unchanged(Start.allCases, .emptyRequest)
    // An empty audio message still counts as audio for the idle timer and the order rules
    // (while acquiring it is dropped: replayed, it would change nothing).
    + [
      Row(.awaitingInit, .audio(.empty), ["400 Bad request", "finish"], .finished(400)),
      Row(.acquiring, .audio(.empty), [], .acquiring),
      Row(.stalled, .audio(.empty), ["idle", "audio@0"], stalledPhase),
      Row(.waiting, .audio(.empty), ["idle", "audio@0"], running),
      Row(.waitingInSilence, .audio(.empty), ["idle", "audio@4000"], running),
      Row(.inSpeech, .audio(.empty), ["idle", "audio@4000"], open),
      Row(.trailingSilence, .audio(.empty), ["idle", "audio@5600"], open),
      Row(.finalPending, .audio(.empty), ["idle", "audio@8000"], pending),
      // The recognition is ending: the audio only restarts the idle timer.
      Row(.timeoutPending, .audio(.empty), ["idle"], pending),
      Row(.endPending, .audio(.empty), ["idle"], pending),
      Row(.afterResult, .audio(.empty), ["idle", "audio@8000"], afterResult),
      Row(.finished, .audio(.empty), [], .finished(200)),
      Row(.cancelled, .audio(.empty), [], .finished(nil)),
    ]
    // 100 ms of silence: too short for any timer or end of utterance. While acquiring, audio is
    // queued (replayedAfterEngineReady follows it).
    + [
      Row(.awaitingInit, silence100, ["400 Bad request", "finish"], .finished(400)),
      Row(.acquiring, silence100, [], .acquiring),
      Row(.stalled, silence100, ["idle", "audio@0"], stalledPhase),
      Row(.waiting, silence100, ["idle", "audio@0"], running),
      Row(.waitingInSilence, silence100, ["idle", "audio@4000"], running),
      Row(.inSpeech, silence100, ["idle", "audio@4000"], open),
      Row(.trailingSilence, silence100, ["idle", "audio@5600"], open),
      Row(.finalPending, silence100, ["idle", "audio@8000"], pending),
      Row(.timeoutPending, silence100, ["idle"], pending),
      Row(.endPending, silence100, ["idle"], pending),
      Row(.afterResult, silence100, ["idle", "audio@8000"], afterResult),
      Row(.finished, silence100, [], .finished(200)),
      Row(.cancelled, silence100, [], .finished(nil)),
    ]
    // 400 ms of silence: 900 ms without speech is past no-input (800 ms); 600 ms after speech is
    // past the end silence (500 ms).
    + [
      Row(.awaitingInit, silence400, ["400 Bad request", "finish"], .finished(400)),
      Row(.acquiring, silence400, [], .acquiring),
      Row(.stalled, silence400, ["idle", "audio@0"], stalledPhase),
      Row(.waiting, silence400, ["idle", "audio@0"], running),
      Row(
        .waitingInSilence,
        silence400,
        ["idle", "audio@4000", "404 No speech"] + ended,
        .finished(404)
      ),
      Row(.inSpeech, silence400, ["idle", "audio@4000"], open),
      Row(.trailingSilence, silence400, ["idle", "audio@5600", "end@4000"], pending),
      Row(.finalPending, silence400, ["idle", "audio@8000"], pending),
      Row(.timeoutPending, silence400, ["idle"], pending),
      Row(.endPending, silence400, ["idle"], pending),
      Row(.afterResult, silence400, ["idle", "audio@8000"], afterResult),
      Row(.finished, silence400, [], .finished(200)),
      Row(.cancelled, silence400, [], .finished(nil)),
    ]
    // 100 ms of tone: an utterance starts after three frames of speech, at its first.
    + [
      Row(.awaitingInit, tone100, ["400 Bad request", "finish"], .finished(400)),
      Row(.acquiring, tone100, [], .acquiring),
      Row(
        .stalled,
        tone100,
        ["idle", "audio@0", "sos 0ms", "begin@0"],
        .recognizing(.stalled, .open)
      ),
      Row(.waiting, tone100, ["idle", "audio@0", "sos 0ms", "begin@0"], open),
      Row(.waitingInSilence, tone100, ["idle", "audio@4000", "sos 500ms", "begin@4000"], open),
      Row(.inSpeech, tone100, ["idle", "audio@4000"], open),
      Row(.trailingSilence, tone100, ["idle", "audio@5600"], open),
      // The next utterance starts while the last one's final is on its way (the probe sees the
      // open one; nextUtteranceWhileFinalPending follows both).
      Row(.finalPending, tone100, ["idle", "audio@8000", "sos 1000ms", "begin@8000"], open),
      Row(.timeoutPending, tone100, ["idle"], pending),
      Row(.endPending, tone100, ["idle"], pending),
      Row(.afterResult, tone100, ["idle", "audio@8000", "sos 1000ms", "begin@8000"], open),
      Row(.finished, tone100, [], .finished(200)),
      Row(.cancelled, tone100, [], .finished(nil)),
    ]
    // The end of the request stream.
    + [
      Row(.awaitingInit, .endOfRequests, ["400 Bad request", "finish"], .finished(400)),
      // Queued, and replayed after the 100 (endOfRequestsWhileAcquiring).
      Row(.acquiring, .endOfRequests, [], .acquiring),
    ]
    + ending([.stalled, .waiting, .waitingInSilence], .endOfRequests, "204 No result")
    + [
      Row(.inSpeech, .endOfRequests, ["end@4000"], pending),
      Row(.trailingSilence, .endOfRequests, ["end@4000"], pending),
    ]
    + unchanged([.finalPending, .timeoutPending, .endPending], .endOfRequests)
    + ending([.afterResult], .endOfRequests, "200 Success")
    + unchanged([.finished, .cancelled], .endOfRequests)
    // The engine is ready only when the machine asked for one; even after a cancel while
    // acquiring it is a driver bug (the server's engine runner drops the answer of a preparation
    // it was told to release).
    + [Row(.acquiring, .engineReady, ["100 Continue", "idle"], running)]
    + Start.allCases.filter { $0 != .acquiring }.map { Row($0, .engineReady, callerBug: ()) }
    // The driver's refusal counts only while it acquires.
    + ending([.acquiring], .rejectInit, "409 Conflict")
    + unchanged(Start.allCases.filter { $0 != .acquiring }, .rejectInit)
    // A partial goes out for the open utterance (PARTIAL); its end is the audio so far. One that
    // arrives while a final is pending (an engine on a worker thread answers in order) is the
    // ended utterance's, up to its end.
    + [
      Row(.inSpeech, .partial("5"), ["partial '5' 300-500ms"], open),
      Row(.trailingSilence, .partial("5"), ["partial '5' 300-700ms"], open),
      Row(.finalPending, .partial("5"), ["partial '5' 300-500ms"], pending),
      Row(.endPending, .partial("5"), ["partial '5' 300-500ms"], pending),
      Row(.timeoutPending, .partial("5"), ["partial '5' 300-1300ms"], pending),
    ]
    + unchanged(
      Start.allCases.filter {
        ![.inSpeech, .trailingSilence, .finalPending, .endPending, .timeoutPending].contains($0)
      },
      .partial("5")
    )
    // A final result answers an end the machine asked for.
    + [
      Row(.finalPending, .final(["5"]), ["final '5' 300-500ms"], afterResult),
      Row(
        .timeoutPending,
        .final(["5"]),
        ["final '5' 300-1300ms", "413 Too much speech"] + ended,
        .finished(413)
      ),
      Row(
        .endPending,
        .final(["5"]),
        ["final '5' 300-500ms", "200 Success"] + ended,
        .finished(200)
      ),
    ]
    + [
      Start.awaitingInit, .acquiring, .stalled, .waiting, .waitingInSilence, .inSpeech,
      .trailingSilence, .afterResult,
    ].map { Row($0, .final(["5"]), callerBug: ()) }
    // After the end, a final still on its way is a race: ignored.
    + unchanged([.finished, .cancelled], .final(["5"]))
    // The engine failing, the idle timer and shutdown end a running recognition.
    + unchanged([.awaitingInit, .acquiring], .engineFailed)
    + ending(recognizing, .engineFailed, "500 Internal server error")
    + unchanged([.finished, .cancelled], .engineFailed)
    + unchanged([.awaitingInit, .acquiring], .idleTimeout)
    + ending(recognizing, .idleTimeout, "408 Audio timeout")
    + unchanged([.finished, .cancelled], .idleTimeout)
    // The pre-init timer matters only before the init: a stream that never sends one is 408.
    + ending([.awaitingInit], .initTimeout, "408 Audio timeout")
    + unchanged(Start.allCases.filter { $0 != .awaitingInit }, .initTimeout)
    + ending([.awaitingInit, .acquiring] + recognizing, .shutdown, "512 Shutdown")
    + unchanged([.finished, .cancelled], .shutdown)
    // A reset ends everything without a status.
    + [
      Row(.awaitingInit, .cancel, [], .finished(nil)),
      Row(.acquiring, .cancel, ["release"], .finished(nil)),
    ]
    + recognizing.map { Row($0, .cancel, ["idle stop", "release"], .finished(nil)) }
    + unchanged([.finished, .cancelled], .cancel)

  @Test("the table has every state × event once")
  func tableIsComplete() {
    for start in Start.allCases {
      for event in Self.events {
        let rows = Self.table.filter { $0.start == start && $0.event == event }
        #expect(rows.count == 1, "\(start) × \(event)")
      }
    }
    #expect(Self.table.count == Start.allCases.count * Self.events.count)
  }

  @Test("every state × event", arguments: table)
  func transition(_ row: Row) async {
    var session = row.start.session
    switch row.outcome {
    case .transition(let actions, let phase):
      #expect(session.apply(row.event) == actions)
      #expect(Self.phase(of: session.machine) == phase)
      if case .finished(let code?) = phase {
        // The status sent is the one the machine reports, and it was the last one sent.
        #expect(session.machine.finalStatus?.code == code)
        #expect(session.statuses.last == session.machine.finalStatus)
      }
    case .callerBug:
      #if DEBUG
        await #expect(processExitsWith: .failure) {
          [start = row.start as Start, event = row.event as Event] in
          var session = start.session
          session.apply(event)
        }
      #else
        #expect(session.apply(row.event) == [])
        #expect(Self.phase(of: session.machine) == row.start.phase)
      #endif
    }
  }

  // MARK: - Statuses

  struct StatusCase: Sendable, CustomTestStringConvertible {
    var start: Start
    var event: Event
    var code: UInt32
    var message: String
    var details: String
    var testDescription: String { "\(code) for \(event) in \(start)" }
  }

  static let statusCases: [StatusCase] = [
    StatusCase(
      start: .awaitingInit,
      event: .audio(.silence(milliseconds: 20)),
      code: 400,
      message: "Bad request",
      details: "recognition_init_message must be the first message, before any audio"
    ),
    StatusCase(
      start: .awaitingInit,
      event: .startTimers,
      code: 410,
      message: "Not recognizing",
      details: "start_timers_message arrived before a recognition started"
    ),
    StatusCase(
      start: .awaitingInit,
      event: .endOfRequests,
      code: 400,
      message: "Bad request",
      details: "recognition_init_message: the stream ended before an init message"
    ),
    StatusCase(
      start: .awaitingInit,
      event: .badInit,
      code: 400,
      message: "Bad request",
      details: "language: language is required, e.g. en-US"
    ),
    StatusCase(
      start: .inSpeech,
      event: .initMessage,
      code: 400,
      message: "Bad request",
      details: "recognition_init_message: a recognition accepts one init message"
    ),
    StatusCase(
      start: .acquiring,
      event: .rejectInit,
      code: 409,
      message: "Conflict",
      details: "all 1 recognizers are busy"
    ),
    StatusCase(
      start: .waitingInSilence,
      event: .audio(.silence(milliseconds: 300)),
      code: 404,
      message: "No speech",
      details: "no speech within no_input_timeout_ms (800 ms)"
    ),
    StatusCase(
      start: .timeoutPending,
      event: .final(["5"]),
      code: 413,
      message: "Too much speech",
      details: "speech lasted longer than recognition_timeout_ms (1000 ms)"
    ),
    StatusCase(
      start: .inSpeech,
      event: .idleTimeout,
      code: 408,
      message: "Audio timeout",
      details: "no audio for 10000 ms"
    ),
    StatusCase(
      start: .waiting,
      event: .engineFailed,
      code: 500,
      message: "Internal server error",
      details: "the recognizer failed: decoder crashed"
    ),
    StatusCase(
      start: .awaitingInit,
      event: .shutdown,
      code: 512,
      message: "Shutdown",
      details: "the server is shutting down"
    ),
    StatusCase(
      start: .inSpeech,
      event: .shutdown,
      code: 512,
      message: "Shutdown",
      details: "the server is shutting down"
    ),
    StatusCase(
      start: .waiting,
      event: .endOfRequests,
      code: 204,
      message: "No result",
      details: "the audio held no utterance"
    ),
    StatusCase(
      start: .afterResult,
      event: .endOfRequests,
      code: 200,
      message: "Success",
      details: ""
    ),
    StatusCase(
      start: .endPending,
      event: .final(["5"]),
      code: 200,
      message: "Success",
      details: ""
    ),
  ]

  @Test("each terminal status: code, message and details", arguments: statusCases)
  func statusDetails(_ statusCase: StatusCase) {
    var session = statusCase.start.session
    let before = session.statuses.count
    session.apply(statusCase.event)
    let expected = RecognitionStatus(
      code: statusCase.code,
      message: statusCase.message,
      details: statusCase.details
    )
    #expect(Array(session.statuses.dropFirst(before)) == [expected])
    #expect(session.machine.finalStatus == expected)
  }

  @Test("start_timers that starts stalled timers is answered with 100 \"timers started\"")
  func startTimersContinue() {
    var session = Start.stalled.session
    session.apply(.startTimers)
    #expect(
      session.statuses == [
        RecognitionStatus(
          code: 100,
          message: "Continue",
          details: "recognition started on audio/l16;rate=8000 stream"
        ),
        RecognitionStatus(code: 100, message: "Continue", details: "timers started"),
      ]
    )
    #expect(session.machine.finalStatus == nil)
    // A second one changes nothing (DESIGN rule 2).
    #expect(session.apply(.startTimers) == [])
  }

  struct FormatCase: Sendable, CustomTestStringConvertible {
    var format: AudioFormat
    var details: String
    var sampleRate: Int
    var testDescription: String { details }
  }

  @Test(
    "100 Continue names the stream",
    arguments: [
      FormatCase(
        format: .pcm(sampleRateHz: 0),
        details: "recognition started on audio/l16;rate=8000 stream",
        sampleRate: 8000
      ),
      FormatCase(
        format: .pcm(sampleRateHz: 8000),
        details: "recognition started on audio/l16;rate=8000 stream",
        sampleRate: 8000
      ),
      FormatCase(
        format: .pcm(sampleRateHz: 16000),
        details: "recognition started on audio/l16;rate=16000 stream",
        sampleRate: 16000
      ),
      FormatCase(
        format: AudioFormat(.ulaw(ULaw())),
        details: "recognition started on audio/pcmu;rate=8000 stream",
        sampleRate: 8000
      ),
      FormatCase(
        format: AudioFormat(.alaw(ALaw())),
        details: "recognition started on audio/pcma;rate=8000 stream",
        sampleRate: 8000
      ),
    ]
  )
  func continueDetails(_ formatCase: FormatCase) {
    var session = Session(makeInit(format: formatCase.format))
    session.apply([.initMessage, .engineReady])
    #expect(
      session.statuses == [
        RecognitionStatus(code: 100, message: "Continue", details: formatCase.details)
      ]
    )
    #expect(session.machine.configuration?.sampleRate == formatCase.sampleRate)
  }

  // MARK: - Rejections

  struct RejectionCase: Sendable, CustomTestStringConvertible {
    var rejection: Machine.InitRejection
    var status: RecognitionStatus
    var testDescription: String { "\(status.code) for \(rejection)" }

    init(_ rejection: Machine.InitRejection, _ code: UInt32, _ message: String, _ details: String) {
      self.rejection = rejection
      self.status = RecognitionStatus(code: code, message: message, details: details)
    }
  }

  static let rejectionCases: [RejectionCase] = [
    RejectionCase(
      .unauthenticated(reason: "the token is not one the server accepts"),
      401,
      "Unauthorized",
      "the token is not one the server accepts"
    ),
    RejectionCase(
      .forbidden(topic: "BANKING"),
      403,
      "Forbidden",
      "the token may not use the topic BANKING"
    ),
    RejectionCase(
      .rateLimited(retryAfterMilliseconds: 250),
      429,
      "Too many requests",
      "the server's limit of new recognitions per second was exceeded"
    ),
    RejectionCase(.enginesBusy(capacity: 4), 409, "Conflict", "all 4 recognizers are busy"),
    RejectionCase(
      .prepareFailed(EngineError(.badRequest(field: "resources[0].builtin"), "unknown builtin")),
      400,
      "Bad request",
      "resources[0].builtin: unknown builtin"
    ),
    RejectionCase(
      .prepareFailed(
        EngineError(.resourceFailed(field: "resources[0].inline_grammar"), "did not compile")
      ),
      502,
      "Resource error",
      "resources[0].inline_grammar: did not compile"
    ),
    RejectionCase(
      .prepareFailed(EngineError(.internalFailure, "the model did not load")),
      500,
      "Internal server error",
      "the model did not load"
    ),
    RejectionCase(
      .refused(RecognitionStatus(code: 403, message: "Forbidden", details: "not on Sundays")),
      403,
      "Forbidden",
      "not on Sundays"
    ),
  ]

  @Test(
    "each rejection of an accepted init: its status, and the engine goes back",
    arguments: rejectionCases
  )
  func rejections(_ rejectionCase: RejectionCase) {
    var session = Start.acquiring.session
    var actions: [Machine.Action] = []
    session.machine.rejectInit(rejectionCase.rejection, into: &actions)
    let pushback: Int? =
      switch rejectionCase.status.code {
      case 429: 250
      case 409: Machine.conflictPushbackMilliseconds
      default: nil
      }
    #expect(
      actions == [
        .send(RecognitionResponse(.status(rejectionCase.status))),
        .finishCall(pushbackMilliseconds: pushback), .releaseEngine,
      ]
    )
    #expect(session.machine.finalStatus == rejectionCase.status)
    #expect(Machine.status(for: rejectionCase.rejection) == rejectionCase.status)
  }

  // MARK: - While the engine is acquired

  @Test("audio, start_timers and the end of requests sent while acquiring are replayed in order")
  func replayedAfterEngineReady() {
    var session = Session(Self.tableInit(stallTimers: true))
    #expect(session.apply(.initMessage) == ["acquire"])
    #expect(
      session.apply(.audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)])))
        == []
    )
    #expect(session.apply(.startTimers) == [])
    // A second start_timers would change nothing after the first: not queued.
    #expect(session.apply(.startTimers) == [])
    #expect(session.apply(.audio(.silence(milliseconds: 500))) == [])
    #expect(session.apply(.endOfRequests) == [])
    #expect(
      session.apply(.engineReady) == [
        "100 Continue", "idle", "replay 8000B",
        // The first message: an utterance starts.
        "idle", "audio@0", "sos 300ms", "begin@2400",
        // start_timers: the stalled timers start.
        "100 Continue", "replay 8000B",
        // The second message ends the utterance; the end of requests waits for its final.
        "idle", "audio@4000", "end@4000",
      ]
    )
    #expect(session.apply(.final(["5"])) == ["final '5' 300-500ms", "200 Success"] + Self.ended)
    #expect(
      session.statuses.map(\.details) == [
        "recognition started on audio/l16;rate=8000 stream", "timers started", "",
      ]
    )
  }

  @Test("an end of requests while acquiring ends the recognition once the engine is ready")
  func endOfRequestsWhileAcquiring() {
    var empty = Session()
    empty.apply([.initMessage, .endOfRequests])
    #expect(empty.apply(.engineReady) == ["100 Continue", "idle", "204 No result"] + Self.ended)

    var spoken = Session()
    spoken.apply([
      .initMessage, .audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)])),
      .endOfRequests,
    ])
    #expect(
      spoken.apply(.engineReady) == [
        "100 Continue", "idle", "replay 8000B", "idle", "audio@0", "sos 300ms", "begin@2400",
        "end@4000",
      ]
    )
    #expect(spoken.apply(.final(["5"])) == ["final '5' 300-500ms", "200 Success"] + Self.ended)
  }

  @Test("a second init while acquiring is 400 once the engine is ready, after the 100")
  func secondInitWhileAcquiring() {
    var session = Session()
    session.apply([.initMessage, .audio(.silence(milliseconds: 100)), .badInit, .endOfRequests])
    #expect(
      session.apply(.engineReady)
        == ["100 Continue", "idle", "replay 1600B", "idle", "audio@0", "400 Bad request"]
        + Self.ended
    )
    #expect(
      session.statuses.last?.details
        == "recognition_init_message: a recognition accepts one init message"
    )
  }

  @Test("a rejection, a shutdown or a reset while acquiring drops what was queued")
  func queueDroppedWhenAcquiringEnds() {
    let queued: [Event] = [
      .initMessage, .audio(.tone(milliseconds: 200)), .startTimers, .endOfRequests,
    ]
    let endings: [(Event, [String], UInt32?)] = [
      (.rejectInit, ["409 Conflict", "finish, retry in 1000 ms", "release"], 409),
      (.shutdown, ["512 Shutdown", "finish, retry in 0 ms", "release"], 512),
      (.cancel, ["release"], nil),
    ]
    for (event, actions, code) in endings {
      var session = Session()
      session.apply(queued)
      #expect(session.apply(event) == actions, "\(event)")
      #expect(Self.phase(of: session.machine) == .finished(code), "\(event)")
      #expect(session.statuses.map(\.code) == (code.map { [$0] } ?? []), "\(event)")
      // What was queued never reaches the engine; a late answer changes nothing.
      #expect(session.apply([.partial("5"), .engineFailed, .idleTimeout]) == [], "\(event)")
    }
  }

  @Test("past the queue's limit the client's data is paused, and resumed when the engine is ready")
  func queueLimitPausesTheClient() {
    var session = Session(Self.tableInit { $0.noInputTimeoutMs = 0 })
    session.apply(.initMessage)
    // 1 s of 8 kHz L16: 16,000 bytes; the limit is 32,000.
    let second = Event.audio(.silence(milliseconds: 1000))
    #expect(session.apply(second) == [])
    #expect(session.apply(second) == [])
    #expect(session.apply(second) == ["pause"])
    #expect(session.apply(second) == [])
    #expect(
      session.apply(.engineReady) == [
        "100 Continue", "idle", "resume", "replay 16000B", "idle", "audio@0", "replay 16000B",
        "idle", "audio@8000", "replay 16000B", "idle", "audio@16000", "replay 16000B", "idle",
        "audio@24000",
      ]
    )
  }

  // MARK: - Partial results and the order of responses

  @Test("a partial the engine returns at once goes after its message's StartOfSpeech")
  func partialAfterStartOfSpeech() {
    var session = Start.waiting.session
    var actions: [Machine.Action] = []
    Sound.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)]).samples()
      .withUnsafeBufferPointer { session.machine.audio($0, into: &actions) }
    // Carrying out audio@0, the driver gets a partial and reports it at once.
    session.machine.enginePartial(Self.hypothesis("5"), position: 0, into: &actions)
    #expect(
      actions.map(Self.summary) == [
        "idle", "audio@0", "sos 300ms", "begin@2400", "partial '5' 300-500ms",
      ]
    )
  }

  @Test("a partial of the audio that ended its utterance is superseded by the final")
  func partialOfTheEndingMessage() {
    // The utterance ended in the message at sample 4000.
    var session = Start.finalPending.session
    var actions: [Machine.Action] = []
    session.machine.enginePartial(Self.hypothesis("5"), position: 4000, into: &actions)
    #expect(actions.isEmpty)
    // One of earlier audio (an engine on a worker thread, behind) still goes out.
    session.machine.enginePartial(Self.hypothesis("5"), position: 0, into: &actions)
    #expect(actions.map(Self.summary) == ["partial '5' 300-500ms"])
  }

  // MARK: - Timers count samples

  @Test("audioStep returns the two actions audio(_:into:) puts first, and appends the rest")
  func audioStepMatchesAudio() {
    var listed = Start.waiting.session.machine
    var stepped = listed
    var steps: [Machine.AudioStep] = []
    func message(_ samples: ArraySlice<Int16>) {
      samples.withUnsafeBufferPointer { message in
        var expected: [Machine.Action] = []
        listed.audio(message, into: &expected)
        var rest: [Machine.Action] = []
        let step = stepped.audioStep(message, into: &rest)
        steps.append(step)
        var actions: [Machine.Action] = step.restartsIdleTimer ? [.restartIdleTimer] : []
        if let position = step.enginePosition { actions.append(.engineAudio(position: position)) }
        #expect(actions + rest == expected)
      }
    }
    let samples = Sound.sequence([
      .silence(milliseconds: 300), .tone(milliseconds: 200), .silence(milliseconds: 900),
      .tone(milliseconds: 100), .silence(milliseconds: 2000),
    ]).samples()
    for start in stride(from: 0, to: samples.count, by: 160) {
      message(samples[start..<min(start + 160, samples.count)])
    }
    #expect(steps.allSatisfy { $0.restartsIdleTimer && $0.enginePosition != nil })
    // Audio after the end of requests restarts the idle clock only; after the end, nothing.
    var ignored: [Machine.Action] = []
    listed.endOfRequests(into: &ignored)
    stepped.endOfRequests(into: &ignored)
    message(samples[0..<160])
    #expect(steps.last == Machine.AudioStep(restartsIdleTimer: true, enginePosition: nil))
    listed.cancel(into: &ignored)
    stepped.cancel(into: &ignored)
    message(samples[0..<160])
    #expect(steps.last == Machine.AudioStep(restartsIdleTimer: false, enginePosition: nil))
  }

  @Test(
    "404 comes at the sample where no_input_timeout_ms ends, whatever the message size",
    arguments: [10, 20, 30, 100, 800, 2000]
  )
  func noInputInSamples(messageMilliseconds: Int) {
    var session = Start.waiting.session
    let messages = session.audio(
      .silence(milliseconds: 2000),
      messageMilliseconds: messageMilliseconds
    )
    // 800 ms is sample 6400; the message holding it is the last one that does anything.
    let last = (799 / messageMilliseconds)
    for (index, actions) in messages.enumerated() {
      let position = index * messageMilliseconds * 8
      if index < last {
        #expect(actions == ["idle", "audio@\(position)"])
      } else if index == last {
        #expect(actions == ["idle", "audio@\(position)", "404 No speech"] + Self.ended)
      } else {
        #expect(actions == [])
      }
    }
    #expect(session.machine.finalStatus?.code == 404)
  }

  @Test("with stall_timers, no-input counts from start_timers_message")
  func noInputFromStartTimers() {
    var session = Start.stalled.session
    #expect(session.apply(.audio(.silence(milliseconds: 1000))) == ["idle", "audio@0"])
    #expect(session.apply(.startTimers) == ["100 Continue"])
    #expect(session.apply(.audio(.silence(milliseconds: 790))) == ["idle", "audio@8000"])
    #expect(
      session.apply(.audio(.silence(milliseconds: 10)))
        == ["idle", "audio@14320", "404 No speech"] + Self.ended
    )
  }

  @Test("no_input_timeout_ms 0 never ends a recognition; nor does silence after speech")
  func noInputDisabledOrAfterSpeech() {
    var none = Session(Self.tableInit { $0.noInputTimeoutMs = 0 })
    none.apply([.initMessage, .engineReady])
    #expect(none.apply(.audio(.silence(milliseconds: 60_000))) == ["idle", "audio@0"])
    #expect(none.apply(.endOfRequests) == ["204 No result"] + Self.ended)

    var afterSpeech = Start.afterResult.session
    #expect(afterSpeech.apply(.audio(.silence(milliseconds: 5000))) == ["idle", "audio@8000"])
    #expect(Self.phase(of: afterSpeech.machine) == Self.afterResult)
  }

  @Test(
    "413 comes at the sample where recognition_timeout_ms ends, whatever the message size",
    arguments: [20, 100, 3000]
  )
  func recognitionTimeoutInSamples(messageMilliseconds: Int) {
    var session = Start.waiting.session
    let messages = session.audio(
      .sequence([.silence(milliseconds: 300), .tone(milliseconds: 2000)]),
      messageMilliseconds: messageMilliseconds
    )
    // Speech from 300 ms; 1000 ms of it end at 1300 ms, sample 10400.
    let flattened = messages.joined().filter { !$0.hasPrefix("idle") && !$0.hasPrefix("audio@") }
    #expect(flattened == ["sos 300ms", "begin@2400", "end@10400"])
    let last = messages.lastIndex { !$0.isEmpty && $0 != ["idle"] }!
    #expect(last == 1299 / messageMilliseconds)
    #expect(
      session.apply(.final(["5"])) == ["final '5' 300-1300ms", "413 Too much speech"] + Self.ended
    )
  }

  @Test("pauses shorter than the end silence count toward recognition_timeout_ms")
  func recognitionTimeoutAcrossPauses() {
    var session = Start.waiting.session
    let actions = session.apply(
      .audio(
        .sequence([
          .silence(milliseconds: 300), .tone(milliseconds: 600), .silence(milliseconds: 300),
          .tone(milliseconds: 600),
        ])
      )
    )
    #expect(actions == ["idle", "audio@0", "sos 300ms", "begin@2400", "end@10400"])
  }

  @Test("recognition_timeout_ms applies to each utterance, not to the recognition")
  func recognitionTimeoutPerUtterance() {
    var session = Start.waiting.session
    let utterance = Sound.sequence([.tone(milliseconds: 800), .silence(milliseconds: 600)])
    #expect(
      session.apply(.audio(utterance)) == ["idle", "audio@0", "sos 0ms", "begin@0", "end@6400"]
    )
    #expect(session.apply(.final(["5"])) == ["final '5' 0-800ms"])
    #expect(
      session.apply(.audio(utterance))
        == ["idle", "audio@11200", "sos 1400ms", "begin@11200", "end@17600"]
    )
    #expect(session.apply(.final(["5"])) == ["final '5' 1400-2200ms"])
    #expect(session.apply(.endOfRequests) == ["200 Success"] + Self.ended)
  }

  @Test("with stall_timers, recognition_timeout_ms counts from start_timers_message")
  func recognitionTimeoutFromStartTimers() {
    var session = Start.stalled.session
    #expect(
      session.apply(.audio(.tone(milliseconds: 1500))) == ["idle", "audio@0", "sos 0ms", "begin@0"]
    )
    #expect(session.apply(.startTimers) == ["100 Continue"])
    // 1000 ms of speech after the timers started at 1500 ms: 2500 ms, sample 20000.
    #expect(session.apply(.audio(.tone(milliseconds: 900))) == ["idle", "audio@12000"])
    #expect(
      session.apply(.audio(.tone(milliseconds: 200))) == ["idle", "audio@19200", "end@20000"]
    )
    #expect(
      session.apply(.final(["5"])) == ["final '5' 0-2500ms", "413 Too much speech"] + Self.ended
    )
  }

  @Test("stalled timers hold no-input and recognition timeouts, not endpointing or idle")
  func stalledTimersHoldOnlyTimers() {
    var session = Start.stalled.session
    #expect(
      session.apply(
        .audio(.sequence([.silence(milliseconds: 5000), .tone(milliseconds: 5000)]))
      ) == ["idle", "audio@0", "sos 5000ms", "begin@40000"]
    )
    #expect(
      session.apply(.audio(.silence(milliseconds: 500))) == ["idle", "audio@80000", "end@80000"]
    )
    #expect(session.apply(.idleTimeout) == ["408 Audio timeout"] + Self.ended)
  }

  // MARK: - Modes

  @Test("SINGLE: the first utterance's final result, then 200; nothing after")
  func single() {
    var session = Session(Self.tableInit(mode: .single))
    session.apply([.initMessage, .engineReady])
    #expect(
      session.apply(
        .audio(
          .sequence([
            .silence(milliseconds: 300), .tone(milliseconds: 200), .silence(milliseconds: 500),
            // A second utterance in the same message is not looked at.
            .tone(milliseconds: 200), .silence(milliseconds: 500),
          ])
        )
      ) == ["idle", "audio@0", "sos 300ms", "begin@2400", "end@4000"]
    )
    #expect(session.apply(.final(["5"])) == ["final '5' 300-500ms", "200 Success"] + Self.ended)
    #expect(session.apply(.audio(.tone(milliseconds: 200))) == [])
    #expect(session.apply(.endOfRequests) == [])
  }

  @Test("SINGLE: the client ending its stream while the final is on its way changes nothing")
  func singleEndWhilePending() {
    var session = Session(Self.tableInit(mode: .single))
    session.apply([
      .initMessage, .engineReady,
      .audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 200)])),
      .audio(.silence(milliseconds: 500)),
    ])
    #expect(session.apply(.endOfRequests) == [])
    #expect(session.apply(.final(["5"])) == ["final '5' 300-500ms", "200 Success"] + Self.ended)
  }

  @Test("MULTIPLE: a final result per utterance, then 200 when the client ends")
  func multiple() {
    var session = Start.afterResult.session
    #expect(
      session.apply(.audio(.sequence([.tone(milliseconds: 200), .silence(milliseconds: 500)])))
        == ["idle", "audio@8000", "sos 1000ms", "begin@8000", "end@9600"]
    )
    #expect(session.apply(.final(["55"])) == ["final '55' 1000-1200ms"])
    #expect(session.apply(.endOfRequests) == ["200 Success"] + Self.ended)
    #expect(session.results.map { Self.text($0) } == ["5", "55"])
  }

  @Test("DISABLED: one utterance from the first sample to the end of the stream")
  func disabled() {
    var session = Session(Self.tableInit(mode: .disabled))
    #expect(session.apply(.initMessage) == ["acquire"])
    // The engine is in an utterance from the start.
    #expect(session.apply(.engineReady) == ["begin@0", "100 Continue", "idle"])
    #expect(
      session.apply(
        .audio(
          .sequence([
            .silence(milliseconds: 300), .tone(milliseconds: 200), .silence(milliseconds: 700),
            .tone(milliseconds: 200), .silence(milliseconds: 700),
          ])
        )
      ) == ["idle", "audio@0", "sos 300ms"]
    )
    // Partials are of the whole stream.
    #expect(session.apply(.partial("55")) == ["partial '55' 0-2100ms"])
    #expect(session.apply(.endOfRequests) == ["end@16800"])
    #expect(
      session.apply(.final(["55"])) == ["final '55' 0-2100ms", "200 Success"] + Self.ended
    )
  }

  @Test("DISABLED without speech is 204; its timers still apply")
  func disabledTimers() {
    var silent = Session(Self.tableInit(mode: .disabled) { $0.noInputTimeoutMs = 0 })
    silent.apply([.initMessage, .engineReady, .audio(.silence(milliseconds: 2000))])
    #expect(silent.apply(.endOfRequests) == ["204 No result"] + Self.ended)

    var noInput = Session(Self.tableInit(mode: .disabled))
    noInput.apply([.initMessage, .engineReady])
    #expect(
      noInput.apply(.audio(.silence(milliseconds: 800)))
        == ["idle", "audio@0", "404 No speech"] + Self.ended
    )

    var tooLong = Session(Self.tableInit(mode: .disabled))
    tooLong.apply([.initMessage, .engineReady])
    #expect(
      tooLong.apply(.audio(.sequence([.silence(milliseconds: 300), .tone(milliseconds: 1500)])))
        == ["idle", "audio@0", "sos 300ms", "end@10400"]
    )
    #expect(
      tooLong.apply(.final(["5"])) == ["final '5' 0-1300ms", "413 Too much speech"] + Self.ended
    )
  }

  // MARK: - Result types

  struct ResultTypeCase: Sendable, CustomTestStringConvertible {
    var resultType: ResultType
    var partials: [String]
    var sent: [String]
    var testDescription: String { "\(name(resultType)): \(partials)" }
  }

  @Test(
    "FINAL sends no partials; PARTIAL each change; IMMUTABLE_PARTIAL only growth",
    arguments: [
      ResultTypeCase(resultType: .final, partials: ["1", "12", "13"], sent: []),
      ResultTypeCase(
        resultType: .partial,
        partials: ["1", "1", "12", "13", "134"],
        sent: ["partial '1'", "partial '12'", "partial '13'", "partial '134'"]
      ),
      ResultTypeCase(
        resultType: .immutablePartial,
        partials: ["1", "1", "12", "13", "124", "1245"],
        sent: ["immutable '1'", "immutable '12'", "immutable '124'", "immutable '1245'"]
      ),
    ]
  )
  func resultTypes(_ resultTypeCase: ResultTypeCase) {
    var session = Session(Self.tableInit(resultType: resultTypeCase.resultType))
    session.apply(Start.inSpeech.recipe)
    let sent = resultTypeCase.partials.flatMap { session.apply(.partial($0)) }
    #expect(sent == resultTypeCase.sent.map { "\($0) 300-500ms" })
    session.apply(.audio(.silence(milliseconds: 500)))
    #expect(session.apply(.final(["1245"])) == ["final '1245' 300-500ms"])
  }

  @Test("partials restart with each utterance")
  func partialsPerUtterance() {
    var session = Session(Self.tableInit(resultType: .immutablePartial))
    session.apply(Start.inSpeech.recipe)
    #expect(session.apply(.partial("12")) == ["immutable '12' 300-500ms"])
    session.apply([.audio(.silence(milliseconds: 500)), .final(["12"])])
    session.apply(.audio(.tone(milliseconds: 100)))
    // "3" does not grow "12", but it is the next utterance's first partial.
    #expect(session.apply(.partial("3")) == ["immutable '3' 1000-1100ms"])
  }

  // MARK: - Final results

  @Test("an utterance the engine recognizes nothing in gets a rejected hypothesis")
  func rejectedHypothesis() throws {
    var session = Start.finalPending.session
    #expect(session.apply(.final([])) == ["final '' 300-500ms"])
    let hypothesis = try #require(session.results.last?.hypotheses.first)
    #expect(hypothesis.rejected)
    #expect(hypothesis.confidence == 0)
    #expect(hypothesis.words.isEmpty)
    #expect(session.results.last?.hypotheses.count == 1)
  }

  @Test("a final result carries the best max_hypotheses, words in ms, and the utterance")
  func finalResultContents() throws {
    var session = Session(Self.tableInit { $0.maxHypotheses = 2 })
    session.apply(Start.finalPending.recipe)
    session.apply(.final(["123", "128", "723"]))
    let result = try #require(session.results.last)
    #expect(result.resultType == .final)
    #expect(result.hypotheses.map(\.formattedText) == ["123", "128"])
    #expect(result.hypotheses.map(\.minimallyFormattedText) == ["123", "128"])
    #expect(result.hypotheses.allSatisfy { !$0.rejected })
    let words = result.hypotheses[0].words
    #expect(words.map(\.text) == ["1", "2", "3"])
    #expect(words.map(\.startMs) == [300, 500, 700])
    #expect(words.map(\.endMs) == [400, 600, 800])
    #expect(words.map(\.silenceAfterWordMs) == [100, 100, 0])
    #expect(result.hypotheses[0].averageConfidence == 0.9)
    #expect(result.absStartMs == 300)
    #expect(result.absEndMs == 500)
    #expect(result.utteranceInfo?.durationMs == 200)
    #expect(result.utteranceInfo?.dsp?.initialSilenceMs == 300)
    #expect(result.utteranceInfo?.dsp?.numChannels == 1)
    #expect(result.dataPack?.language == "en-US")
    #expect(result.dataPack?.topic == "GEN")
    #expect(result.notifications.isEmpty)
  }

  @Test("the engine's notices go with the first final result only")
  func notices() throws {
    var session = Session()
    session.apply(.initMessage)
    var actions: [Machine.Action] = []
    session.machine.engineReady(
      notices: [EngineNotice(code: 1002, message: "wordset 'names' did not load")],
      into: &actions
    )
    session.apply(Array(Start.finalPending.recipe.dropFirst(2)) + [.final(["5"])])
    session.apply([.audio(.tone(milliseconds: 200)), .audio(.silence(milliseconds: 500))])
    session.apply(.final(["5"]))
    #expect(session.results.count == 2)
    let notification = try #require(session.results.first?.notifications.first)
    #expect(notification.code == 1002)
    #expect(notification.severity == .warning)
    #expect(notification.message?.message == "wordset 'names' did not load")
    #expect(notification.message?.locale == "en-US")
    #expect(session.results[1].notifications.isEmpty)
  }

  // MARK: - Several utterances in one message

  @Test("an utterance that starts while the last one's final is on its way gets its own final")
  func nextUtteranceWhileFinalPending() {
    var session = Start.finalPending.session
    #expect(
      session.apply(.audio(.tone(milliseconds: 200)))
        == ["idle", "audio@8000", "sos 1000ms", "begin@8000"]
    )
    // The final that arrives now is the first utterance's, with its own times.
    #expect(session.apply(.final(["5"])) == ["final '5' 300-500ms"])
    #expect(session.apply(.partial("6")) == ["partial '6' 1000-1200ms"])
    #expect(
      session.apply(.audio(.silence(milliseconds: 500))) == ["idle", "audio@9600", "end@9600"]
    )
    #expect(session.apply(.final(["6"])) == ["final '6' 1000-1200ms"])
    #expect(session.apply(.endOfRequests) == ["200 Success"] + Self.ended)
  }

  @Test("one message that ends two utterances asks for both finals; 200 follows the last")
  func twoUtterancesInOneMessage() {
    var session = Session(Self.tableInit { $0.utteranceEndSilenceMs = 100 })
    session.apply([.initMessage, .engineReady])
    #expect(
      session.apply(
        .audio(
          .sequence([
            .silence(milliseconds: 300), .tone(milliseconds: 100), .silence(milliseconds: 200),
            .tone(milliseconds: 100), .silence(milliseconds: 100),
          ])
        )
      ) == [
        "idle", "audio@0", "sos 300ms", "begin@2400", "end@3200", "sos 600ms", "begin@4800",
        "end@5600",
      ]
    )
    #expect(session.apply(.endOfRequests) == [])
    var actions: [Machine.Action] = []
    session.machine.engineFinal([Self.hypothesis("1")], end: 3200, into: &actions)
    #expect(actions.map(Self.summary) == ["final '1' 300-400ms"])
    actions = []
    session.machine.engineFinal([Self.hypothesis("2")], end: 5600, into: &actions)
    #expect(actions.map(Self.summary) == ["final '2' 600-700ms", "200 Success"] + Self.ended)
  }

  @Test("the client ending while one final is on its way and the next utterance is open")
  func endWithFinalPendingAndUtteranceOpen() {
    var session = Start.finalPending.session
    session.apply(.audio(.tone(milliseconds: 200)))
    #expect(session.apply(.endOfRequests) == ["end@9600"])
    var actions: [Machine.Action] = []
    session.machine.engineFinal([Self.hypothesis("5")], end: 4000, into: &actions)
    #expect(actions.map(Self.summary) == ["final '5' 300-500ms"])
    actions = []
    session.machine.engineFinal([Self.hypothesis("6")], end: 9600, into: &actions)
    #expect(actions.map(Self.summary) == ["final '6' 1000-1200ms", "200 Success"] + Self.ended)
  }

  @Test("a final that arrives after the engine failed is ignored")
  func finalAfterEngineFailed() {
    var session = Start.finalPending.session
    #expect(session.apply(.engineFailed) == ["500 Internal server error"] + Self.ended)
    #expect(session.apply(.final(["5"])) == [])
    #expect(session.machine.finalStatus?.code == 500)
  }
}

// MARK: - With a DTMF engine

/// Carries out a machine's actions as the server's session does with an inline engine, with a
/// DTMF engine and without I/O: actions in order, each engine answer reported the moment the
/// engine returns it (its actions then come after the ones still to do).
struct EngineDriver {
  var machine = ServerSessionStateMachine()
  let engine = DTMFEngine()
  /// Every response sent, in order.
  var responses: [RecognitionResponse] = []
  var engineReleased = false

  init(_ initMessage: RecognitionInitMessage) {
    var actions: [ServerSessionStateMachine.Action] = []
    machine.receive(.initMessage(initMessage), into: &actions)
    perform(&actions, samples: [])
  }

  /// Sends `samples` in messages of `milliseconds` each.
  mutating func audio(_ samples: [Int16], messageMilliseconds milliseconds: Int) {
    let size = machine.configuration!.samples(milliseconds: milliseconds)
    for start in stride(from: 0, to: samples.count, by: size) {
      let message = Array(samples[start..<min(start + size, samples.count)])
      var actions: [ServerSessionStateMachine.Action] = []
      message.withUnsafeBufferPointer { machine.audio($0, into: &actions) }
      perform(&actions, samples: message)
    }
  }

  mutating func endOfRequests() {
    var actions: [ServerSessionStateMachine.Action] = []
    machine.endOfRequests(into: &actions)
    perform(&actions, samples: [])
  }

  private mutating func perform(
    _ actions: inout [ServerSessionStateMachine.Action],
    samples: [Int16]
  ) {
    var index = 0
    while index < actions.count {
      let action = actions[index]
      index += 1
      switch action {
      case .acquireEngine:
        let notices = try! engine.prepare(machine.configuration!)
        machine.engineReady(notices: notices, into: &actions)
      case .send(let response):
        responses.append(response)
      case .finishCall, .restartIdleTimer, .stopIdleTimer, .pauseRequests, .resumeRequests:
        break
      case .replayAudio:
        Issue.record("nothing is queued: the engine is ready at once")
      case .engineAudio(let position):
        let partial = samples.withUnsafeBufferPointer { try! engine.process($0, at: position) }
        if let partial { machine.enginePartial(partial, position: position, into: &actions) }
      case .engineBeginUtterance(let onset):
        try! engine.beginUtterance(at: onset)
      case .engineEndUtterance(let end):
        machine.engineFinal(try! engine.endUtterance(at: end), end: end, into: &actions)
      case .releaseEngine:
        engine.reset()
        engineReleased = true
      }
    }
    actions.removeAll()
  }

  /// The responses: "100", "sos 300ms", "partial '1' 300-400ms", "final '1' 300-400ms", "200".
  var summary: [String] {
    responses.map { response in
      if let status = response.status { return "\(status.code)" }
      return ServerSessionStateMachineTests.summary(response)
    }
  }
}

extension ServerSessionStateMachineTests {
  struct DTMFCase: Sendable, CustomTestStringConvertible {
    var mode: UtteranceDetectionMode
    var resultType: ResultType
    var expected: [String]
    var testDescription: String { "\(mode) × \(name(resultType))" }
  }

  /// "12", a pause longer than the end silence, then "34": 2900 ms. A partial ends where the
  /// audio had got to when the key was detected (35 ms of tone, in 20 ms messages).
  static let twoUtterances: [DTMFGenerator.Segment] =
    keys("12", after: 1000) + keys("34", before: 0, after: 800)

  @Test(
    "with the DTMF engine, each mode × result type gives its exact responses",
    arguments: [
      DTMFCase(
        mode: .single,
        resultType: .final,
        expected: ["100", "sos 300ms", "final '12' 300-600ms", "200"]
      ),
      DTMFCase(
        mode: .single,
        resultType: .partial,
        expected: [
          "100", "sos 300ms", "partial '1' 300-440ms", "partial '12' 300-540ms",
          "final '12' 300-600ms", "200",
        ]
      ),
      DTMFCase(
        mode: .multiple,
        resultType: .final,
        expected: [
          "100", "sos 300ms", "final '12' 300-600ms", "sos 1700ms", "final '34' 1700-2000ms",
          "200",
        ]
      ),
      DTMFCase(
        mode: .multiple,
        resultType: .immutablePartial,
        expected: [
          "100", "sos 300ms", "immutable '1' 300-440ms", "immutable '12' 300-540ms",
          "final '12' 300-600ms", "sos 1700ms", "immutable '3' 1700-1840ms",
          "immutable '34' 1700-1940ms", "final '34' 1700-2000ms", "200",
        ]
      ),
      DTMFCase(
        mode: .disabled,
        resultType: .final,
        expected: ["100", "sos 300ms", "final '1234' 0-2900ms", "200"]
      ),
    ]
  )
  func dtmfModes(_ dtmfCase: DTMFCase) {
    var driver = EngineDriver(makeInit(mode: dtmfCase.mode, resultType: dtmfCase.resultType))
    var generator = DTMFGenerator(sampleRate: 8000)
    driver.audio(generator.generate(Self.twoUtterances), messageMilliseconds: 20)
    driver.endOfRequests()
    #expect(driver.summary == dtmfCase.expected)
    #expect(driver.engineReleased)
  }

  @Test(
    "utterances come out the same whatever the size of the audio messages",
    arguments: [20, 100, 500, 3000]
  )
  func dtmfMessageSizes(messageMilliseconds: Int) {
    var driver = EngineDriver(makeInit(mode: .multiple) { $0.utteranceEndSilenceMs = 150 })
    var generator = DTMFGenerator(sampleRate: 8000)
    let samples = generator.generate(
      keys("1", after: 300) + keys("2", before: 0, after: 300) + keys("3", before: 0, after: 300)
    )
    driver.audio(samples, messageMilliseconds: messageMilliseconds)
    driver.endOfRequests()
    let summary = driver.summary
    #expect(
      summary.filter { $0.hasPrefix("final") } == [
        "final '1' 300-400ms", "final '2' 800-900ms", "final '3' 1300-1400ms",
      ]
    )
    #expect(summary.filter { $0.hasPrefix("sos") } == ["sos 300ms", "sos 800ms", "sos 1300ms"])
    #expect(summary.first == "100")
    #expect(summary.last == "200")
    // Each utterance's StartOfSpeech comes before its final result.
    for (sos, final) in zip(
      ["sos 300ms", "sos 800ms", "sos 1300ms"],
      summary.filter { $0.hasPrefix("final") }
    ) {
      #expect(summary.firstIndex(of: sos)! < summary.firstIndex(of: final)!)
    }
  }
}
