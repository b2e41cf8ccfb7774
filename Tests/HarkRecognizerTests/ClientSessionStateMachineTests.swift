import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

/// The client's Recognize protocol without sockets: build the target state by its events, apply
/// one event, and compare what the machine answers, the actions and the state it leads to.
///
/// Audio frames are tagged: frame `#n` is 320 bytes of the value n (`#9` is 1000 bytes, more
/// than the table's prebuffer of 960). Answers and actions are written as short strings:
/// `taken`, `wait`, `stop` (what `audio` returns), `refused` (`start` threw), `send init`,
/// `send audio#1`, `send start_timers`, `half-close`, `started 100`, `timers started`,
/// `info 101`, `sos`, `partial`, `final`, `finished 200` (the event to the application), and
/// `finish 200` / `cancel …` (end the call, or cancel it).
@Suite("Client session state machine")
struct ClientSessionStateMachineTests {
  typealias Machine = ClientSessionStateMachine

  /// The table's prebuffer: three 320-byte frames.
  static let prebufferLimit = 960

  static let initMessage = makeInit()

  /// Frame `#tag`: `count` bytes of `tag`.
  static func frame(_ tag: UInt8, count: Int = 320) -> ByteBuffer {
    ByteBuffer(repeating: tag, count: count)
  }

  // MARK: - Events

  /// A response of the server.
  enum Response: Hashable, Sendable, Codable, CustomStringConvertible {
    case status(UInt32)
    case startOfSpeech
    case partial
    case final
    /// A response with no member of its oneof set.
    case empty

    var description: String {
      switch self {
      case .status(let code): "\(code)"
      case .startOfSpeech: "StartOfSpeech"
      case .partial: "partial result"
      case .final: "final result"
      case .empty: "empty response"
      }
    }

    var message: RecognitionResponse {
      switch self {
      case .status(let code):
        return .status(code: code, message: code == 100 ? "Continue" : "Status \(code)")
      case .startOfSpeech:
        return RecognitionResponse(
          .startOfSpeech(StartOfSpeech(firstAudioToStartOfSpeechMs: 300))
        )
      case .partial:
        var result = RecognitionResult()
        result.resultType = .partial
        return RecognitionResponse(.result(result))
      case .final:
        return RecognitionResponse(.result(RecognitionResult()))
      case .empty:
        return RecognitionResponse()
      }
    }
  }

  /// One event of the diagram.
  enum Event: Hashable, Sendable, Codable, CustomStringConvertible {
    case start
    /// Frame `#tag` (320 bytes; `#9`: 1000 bytes).
    case audio(UInt8)
    case emptyAudio
    case startTimers
    case endOfAudio
    case cancel
    case receive(Response)
    /// The call ended with gRPC OK.
    case callEndedOK
    /// The call failed: UNAVAILABLE.
    case callFailed

    var description: String {
      switch self {
      case .start: "start"
      case .audio(let tag): "audio#\(tag)"
      case .emptyAudio: "empty audio"
      case .startTimers: "startTimers"
      case .endOfAudio: "endOfAudio"
      case .cancel: "cancel"
      case .receive(let response): "receive \(response)"
      case .callEndedOK: "call ended OK"
      case .callFailed: "call failed"
      }
    }
  }

  struct Session {
    var machine = Machine(prebufferLimit: ClientSessionStateMachineTests.prebufferLimit)
    /// Every event delivered to the application.
    var delivered: [RecognitionEvent] = []

    /// Applies `event`; returns what `audio` or `start` answered, then the actions.
    @discardableResult
    mutating func apply(_ event: Event) -> [String] {
      var actions: [Machine.Action] = []
      var answer: [String] = []
      switch event {
      case .start:
        do {
          try machine.start(ClientSessionStateMachineTests.initMessage, into: &actions)
        } catch {
          answer = ["refused"]
        }
      case .audio(let tag):
        let frame = ClientSessionStateMachineTests.frame(tag, count: tag == 9 ? 1000 : 320)
        answer = ["\(machine.audio(frame, into: &actions))"]
      case .emptyAudio:
        answer = ["\(machine.audio(ByteBuffer(), into: &actions))"]
      case .startTimers:
        machine.startTimers(into: &actions)
      case .endOfAudio:
        machine.endOfAudio(into: &actions)
      case .cancel:
        machine.cancel(into: &actions)
      case .receive(let response):
        machine.receive(response.message, into: &actions)
      case .callEndedOK:
        machine.callEnded(.ok, into: &actions)
      case .callFailed:
        machine.callEnded(GRPCStatus(.unavailable, "connection reset"), into: &actions)
      }
      for case .deliver(let event) in actions { delivered.append(event) }
      return answer + actions.map(ClientSessionStateMachineTests.summary)
    }

    @discardableResult
    mutating func apply(_ events: [Event]) -> [String] {
      events.flatMap { apply($0) }
    }
  }

  static func summary(_ action: Machine.Action) -> String {
    switch action {
    case .send(let request):
      switch request.request {
      case .recognitionInitMessage?: "send init"
      case .audio(let bytes)?:
        "send audio#\(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) ?? 0)"
      case .controlMessage?: "send start_timers"
      case nil: "send empty"
      }
    case .halfClose: "half-close"
    case .deliver(let event):
      switch event {
      case .started(let status, _): "started \(status.code)"
      case .timersStarted: "timers started"
      case .informational(let status): "info \(status.code)"
      case .startOfSpeech: "sos"
      case .partialResult: "partial"
      case .finalResult: "final"
      case .retrying(let attempt, _, let reason): "retrying \(attempt) \(summary(reason))"
      case .resumed(let atMs): "resumed \(atMs)"
      case .finished(let outcome): "finished \(summary(outcome))"
      }
    case .finish(let outcome, let cancelCall):
      "\(cancelCall ? "cancel" : "finish") \(summary(outcome))"
    case .retry(let delay): "retry after \(delay)"
    case .abandonCall: "abandon"
    case .limitStream(let after): "limit \(after)"
    }
  }

  /// "200", "cancelled", "transport INTERNAL".
  static func summary(_ outcome: RecognitionOutcome) -> String {
    if let code = outcome.code { return "\(code)" }
    if outcome.kind == .cancelled { return "cancelled" }
    return "transport \(outcome.transportStatus?.code.description ?? "?")"
  }

  // MARK: - States

  /// The diagram's states, read back through the public API alone.
  enum Phase: Hashable, Sendable, CustomStringConvertible {
    /// Not started; whether start_timers was asked for already.
    case idle(startTimers: Bool)
    /// The init went out: the frames held, and whether start_timers and the end are held.
    case initSent(held: [UInt8], startTimers: Bool, endOfAudio: Bool)
    case streaming
    case halfClosed
    /// Over, with the outcome's summary.
    case finished(String)

    var description: String {
      switch self {
      case .idle(let startTimers): "idle(startTimers: \(startTimers))"
      case .initSent(let held, let startTimers, let endOfAudio):
        "initSent(held: \(held), startTimers: \(startTimers), endOfAudio: \(endOfAudio))"
      case .streaming: "streaming"
      case .halfClosed: "halfClosed"
      case .finished(let outcome): "finished(\(outcome))"
      }
    }
  }

  /// The state `machine` is in, found from its properties and, on copies, from what the 100
  /// would release.
  static func phase(of machine: Machine) -> Phase {
    if let outcome = machine.outcome { return .finished(summary(outcome)) }
    if machine.isStreaming { return .streaming }
    var probe = machine
    var actions: [Machine.Action] = []
    let idle = (try? probe.start(initMessage, into: &actions)) != nil
    actions = []
    probe.receive(.status(code: 100, message: "Continue"), into: &actions)
    let released = actions.map(summary)
    if idle { return .idle(startTimers: released.contains("send start_timers")) }
    if released.first == "timers started" { return .halfClosed }
    #expect(released.first == "started 100")
    let held = released.compactMap { action -> UInt8? in
      guard action.hasPrefix("send audio#") else { return nil }
      return UInt8(action.dropFirst("send audio#".count))
    }
    return .initSent(
      held: held,
      startTimers: released.contains("send start_timers"),
      endOfAudio: released.contains("half-close")
    )
  }

  /// A state named by the events that lead there.
  enum Start: String, CaseIterable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Nothing done.
    case idle
    /// The application asked for start_timers before starting.
    case idleTimersAsked
    /// The init went out.
    case initSent
    /// Frames #1 and #2 are held for the 100.
    case holding
    /// Frames #1 to #3 fill the prebuffer.
    case full
    /// start_timers is held for the 100.
    case timersHeld
    /// Frame #1 and the end of the audio are held for the 100.
    case endHeld
    /// The 100 arrived.
    case streaming
    /// The audio ended after the 100.
    case halfClosed
    /// The server sent 200.
    case finished
    /// The application cancelled while streaming.
    case cancelled
    /// The call failed (UNAVAILABLE) before the 100.
    case failed

    var description: String { rawValue }

    var recipe: [Event] {
      switch self {
      case .idle: []
      case .idleTimersAsked: [.startTimers]
      case .initSent: [.start]
      case .holding: [.start, .audio(1), .audio(2)]
      case .full: [.start, .audio(1), .audio(2), .audio(3)]
      case .timersHeld: [.start, .startTimers]
      case .endHeld: [.start, .audio(1), .endOfAudio]
      case .streaming: [.start, .receive(.status(100))]
      case .halfClosed: Start.streaming.recipe + [.endOfAudio]
      case .finished: Start.streaming.recipe + [.receive(.status(200))]
      case .cancelled: Start.streaming.recipe + [.cancel]
      case .failed: [.start, .callFailed]
      }
    }

    var phase: Phase {
      switch self {
      case .idle: .idle(startTimers: false)
      case .idleTimersAsked: .idle(startTimers: true)
      case .initSent: .initSent(held: [], startTimers: false, endOfAudio: false)
      case .holding: .initSent(held: [1, 2], startTimers: false, endOfAudio: false)
      case .full: .initSent(held: [1, 2, 3], startTimers: false, endOfAudio: false)
      case .timersHeld: .initSent(held: [], startTimers: true, endOfAudio: false)
      case .endHeld: .initSent(held: [1], startTimers: false, endOfAudio: true)
      case .streaming: .streaming
      case .halfClosed: .halfClosed
      case .finished: .finished("200")
      case .cancelled: .finished("cancelled")
      case .failed: .finished("transport UNAVAILABLE")
      }
    }

    var session: Session {
      var session = Session()
      session.apply(recipe)
      return session
    }
  }

  @Test("each recipe leads to its state", arguments: Start.allCases)
  func recipes(_ start: Start) {
    #expect(Self.phase(of: start.session.machine) == start.phase)
  }

  // MARK: - Every state × event

  enum Outcome: Hashable, Sendable {
    case transition([String], Phase)
    /// An application bug: an assertion in debug builds, refused in release builds.
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

  static let events: [Event] = [
    .start, .audio(4), .emptyAudio, .audio(9), .startTimers, .endOfAudio, .cancel,
    .receive(.status(100)), .receive(.status(101)), .receive(.startOfSpeech), .receive(.partial),
    .receive(.final), .receive(.empty), .receive(.status(200)), .receive(.status(404)),
    .callEndedOK, .callFailed,
  ]

  static let idles: [Start] = [.idle, .idleTimersAsked]
  /// The states before the 100.
  static let waitingFor100: [Start] = [.initSent, .holding, .full, .timersHeld, .endHeld]
  static let over: [Start] = [.finished, .cancelled, .failed]

  static func unchanged(_ starts: [Start], _ event: Event, _ actions: [String] = []) -> [Row] {
    starts.map { Row($0, event, actions, $0.phase) }
  }

  /// Rows for `starts` that all end with `outcome`, cancelling the call or not.
  static func ending(
    _ starts: [Start],
    _ event: Event,
    _ outcome: String,
    cancelCall: Bool = false
  ) -> [Row] {
    starts.map {
      Row(
        $0,
        event,
        ["finished \(outcome)", "\(cancelCall ? "cancel" : "finish") \(outcome)"],
        .finished(outcome)
      )
    }
  }

  static func held(_ held: [UInt8], startTimers: Bool = false, endOfAudio: Bool = false) -> Phase {
    .initSent(held: held, startTimers: startTimers, endOfAudio: endOfAudio)
  }

  static let table: [Row] =
    // start: once.
    [
      Row(.idle, .start, ["send init"], held([])),
      Row(.idleTimersAsked, .start, ["send init"], held([], startTimers: true)),
    ]
    + unchanged(waitingFor100 + [.streaming, .halfClosed] + over, .start, ["refused"])
    // A frame: held before the 100 up to the prebuffer, sent after it, refused after the end.
    + idles.map { Row($0, .audio(4), callerBug: ()) }
    + [
      Row(.initSent, .audio(4), ["taken"], held([4])),
      Row(.holding, .audio(4), ["taken"], held([1, 2, 4])),
      Row(.full, .audio(4), ["wait"], held([1, 2, 3])),
      Row(.timersHeld, .audio(4), ["taken"], held([4], startTimers: true)),
      Row(.endHeld, .audio(4), ["stop"], held([1], endOfAudio: true)),
      Row(.streaming, .audio(4), ["taken", "send audio#4"], .streaming),
    ]
    + unchanged([.halfClosed] + over, .audio(4), ["stop"])
    // An empty frame is taken and never sent.
    + idles.map { Row($0, .emptyAudio, callerBug: ()) }
    + unchanged([.initSent, .holding, .full, .timersHeld, .streaming], .emptyAudio, ["taken"])
    + unchanged([.endHeld, .halfClosed] + over, .emptyAudio, ["stop"])
    // A frame larger than the prebuffer: taken only when nothing is held.
    + idles.map { Row($0, .audio(9), callerBug: ()) }
    + [
      Row(.initSent, .audio(9), ["taken"], held([9])),
      Row(.holding, .audio(9), ["wait"], held([1, 2])),
      Row(.full, .audio(9), ["wait"], held([1, 2, 3])),
      Row(.timersHeld, .audio(9), ["taken"], held([9], startTimers: true)),
      Row(.endHeld, .audio(9), ["stop"], held([1], endOfAudio: true)),
      Row(.streaming, .audio(9), ["taken", "send audio#9"], .streaming),
    ]
    + unchanged([.halfClosed] + over, .audio(9), ["stop"])
    // start_timers: held until the 100, sent while streaming, dropped after the audio ended.
    + [
      Row(.idle, .startTimers, [], .idle(startTimers: true)),
      Row(.idleTimersAsked, .startTimers, [], .idle(startTimers: true)),
      Row(.initSent, .startTimers, [], held([], startTimers: true)),
      Row(.holding, .startTimers, [], held([1, 2], startTimers: true)),
      Row(.full, .startTimers, [], held([1, 2, 3], startTimers: true)),
      Row(.timersHeld, .startTimers, [], held([], startTimers: true)),
      Row(.endHeld, .startTimers, [], held([1], startTimers: true, endOfAudio: true)),
      Row(.streaming, .startTimers, ["send start_timers"], .streaming),
    ]
    + unchanged([.halfClosed] + over, .startTimers)
    // The end of the audio: held until the 100, a half-close after it.
    + unchanged(idles, .endOfAudio)
    + [
      Row(.initSent, .endOfAudio, [], held([], endOfAudio: true)),
      Row(.holding, .endOfAudio, [], held([1, 2], endOfAudio: true)),
      Row(.full, .endOfAudio, [], held([1, 2, 3], endOfAudio: true)),
      Row(.timersHeld, .endOfAudio, [], held([], startTimers: true, endOfAudio: true)),
      Row(.endHeld, .endOfAudio, [], held([1], endOfAudio: true)),
      Row(.streaming, .endOfAudio, ["half-close"], .halfClosed),
    ]
    + unchanged([.halfClosed] + over, .endOfAudio)
    // cancel: at any time before the outcome, once.
    + ending(
      idles + waitingFor100 + [.streaming, .halfClosed],
      .cancel,
      "cancelled",
      cancelCall: true
    )
    + unchanged(over, .cancel)
    // The 100: releases what is held, in order; later, it answers start_timers.
    + unchanged(idles, .receive(.status(100)))
    + [
      Row(.initSent, .receive(.status(100)), ["started 100"], .streaming),
      Row(
        .holding,
        .receive(.status(100)),
        ["started 100", "send audio#1", "send audio#2"],
        .streaming
      ),
      Row(
        .full,
        .receive(.status(100)),
        ["started 100", "send audio#1", "send audio#2", "send audio#3"],
        .streaming
      ),
      Row(.timersHeld, .receive(.status(100)), ["started 100", "send start_timers"], .streaming),
      Row(
        .endHeld,
        .receive(.status(100)),
        ["started 100", "send audio#1", "half-close"],
        .halfClosed
      ),
      Row(.streaming, .receive(.status(100)), ["timers started"], .streaming),
      Row(.halfClosed, .receive(.status(100)), ["timers started"], .halfClosed),
    ]
    + unchanged(over, .receive(.status(100)))
    // Another 1xx is passed on; nothing changes.
    + unchanged(idles, .receive(.status(101)))
    + unchanged(waitingFor100 + [.streaming, .halfClosed], .receive(.status(101)), ["info 101"])
    + unchanged(over, .receive(.status(101)))
    // Results before the 100 break the protocol; after it they are delivered.
    + results(.startOfSpeech, "sos")
    + results(.partial, "partial")
    + results(.final, "final")
    + unchanged(idles, .receive(.empty))
    + ending(waitingFor100, .receive(.empty), "transport INTERNAL", cancelCall: true)
    + unchanged([.streaming, .halfClosed] + over, .receive(.empty))
    // A terminal status ends the recognition with its outcome.
    + unchanged(idles, .receive(.status(200)))
    + ending(waitingFor100 + [.streaming, .halfClosed], .receive(.status(200)), "200")
    + unchanged(over, .receive(.status(200)))
    + unchanged(idles, .receive(.status(404)))
    + ending(waitingFor100 + [.streaming, .halfClosed], .receive(.status(404)), "404")
    + unchanged(over, .receive(.status(404)))
    // The call ending without a status is a transport failure.
    + ending(idles + waitingFor100 + [.streaming, .halfClosed], .callEndedOK, "transport INTERNAL")
    + unchanged(over, .callEndedOK)
    + ending(
      idles + waitingFor100 + [.streaming, .halfClosed],
      .callFailed,
      "transport UNAVAILABLE"
    )
    + unchanged(over, .callFailed)

  static func results(_ response: Response, _ delivered: String) -> [Row] {
    unchanged(idles, .receive(response))
      + ending(waitingFor100, .receive(response), "transport INTERNAL", cancelCall: true)
      + unchanged([.streaming, .halfClosed], .receive(response), [delivered])
      + unchanged(over, .receive(response))
  }

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
    case .callerBug:
      #if DEBUG
        await #expect(processExitsWith: .failure) {
          [start = row.start as Start, event = row.event as Event] in
          var session = start.session
          session.apply(event)
        }
      #else
        #expect(session.apply(row.event) == ["stop"])
        #expect(Self.phase(of: session.machine) == row.start.phase)
      #endif
    }
  }

  // MARK: - Rules

  /// The events the invariants are checked over.
  static let alphabet: [Event] = [
    .audio(4), .emptyAudio, .audio(9), .startTimers, .endOfAudio, .receive(.status(100)),
    .receive(.status(101)), .receive(.final), .receive(.status(200)), .cancel, .callEndedOK,
  ]

  @Test(
    "over every sequence of 4 events after start: audio only after the 100, never empty, never lost; start_timers only while recognizing; nothing after the outcome"
  )
  func invariants() {
    var sequences: [[Event]] = [[]]
    for _ in 0..<4 {
      sequences = sequences.flatMap { sequence in Self.alphabet.map { sequence + [$0] } }
    }
    for sequence in sequences {
      var session = Session()
      session.apply([.start, .audio(1)])
      var started = false
      var halfClosed = false
      var taken: [String] = ["send audio#1"]
      var sent: [String] = []
      for event in sequence {
        let wasOver = session.machine.outcome != nil
        let actions = session.apply(event)
        if wasOver {
          #expect(actions == (event.isAudio ? ["stop"] : []), "\(sequence)")
          continue
        }
        if event.isAudio && event != .emptyAudio && actions.first == "taken" {
          taken.append("send audio#\(event.tag)")
        }
        for action in actions {
          if action == "started 100" { started = true }
          if action == "half-close" { halfClosed = true }
          if action.hasPrefix("send audio") || action == "send start_timers" {
            #expect(
              started && !halfClosed,
              "\(sequence): \(action) before the 100 or after the end"
            )
          }
          if action.hasPrefix("send audio") { sent.append(action) }
        }
        #expect(!actions.contains("send audio#0"), "\(sequence): an empty frame went out")
      }
      if session.machine.outcome == nil && started {
        // Every frame taken went out, once, in order.
        #expect(sent == taken, "\(sequence)")
      } else {
        #expect(taken.starts(with: sent), "\(sequence)")
      }
    }
  }

  @Test("beyond the prebuffer the producer waits; the frame it offers again after the 100 goes out")
  func prebuffer() {
    var session = Start.full.session
    #expect(session.apply(.audio(4)) == ["wait"])
    #expect(
      session.apply(.receive(.status(100)))
        == ["started 100", "send audio#1", "send audio#2", "send audio#3"]
    )
    #expect(session.apply(.audio(4)) == ["taken", "send audio#4"])
  }

  @Test("the default prebuffer holds 10 s of 16 kHz L16")
  func defaultPrebuffer() throws {
    var machine = Machine()
    #expect(machine.prebufferLimit == 320_000)
    var actions: [Machine.Action] = []
    try machine.start(Self.initMessage, into: &actions)
    for _ in 0..<1000 {
      #expect(machine.audio(Self.frame(1), into: &actions) == .taken)
    }
    #expect(machine.audio(Self.frame(2), into: &actions) == .wait)
  }

  @Test("start_timers asked for before start() follows the audio held for the 100")
  func startTimersBeforeStart() {
    var session = Session()
    #expect(
      session.apply([.startTimers, .start, .audio(1), .endOfAudio]) == ["send init", "taken"]
    )
    #expect(
      session.apply(.receive(.status(100)))
        == ["started 100", "send audio#1", "send start_timers", "half-close"]
    )
  }

  @Test("starting twice throws")
  func startTwice() throws {
    var machine = Machine()
    var actions: [Machine.Action] = []
    try machine.start(Self.initMessage, into: &actions)
    let error = #expect(throws: Machine.InvalidTransition.self) {
      try machine.start(Self.initMessage, into: &actions)
    }
    #expect(error?.message == "the recognition already started")
    #expect(actions.count == 1)
  }

  @Test("the 100's cookies and status reach the application")
  func startedEvent() {
    var session = Start.initSent.session
    var actions: [Machine.Action] = []
    let status = RecognitionStatus(
      code: 100,
      message: "Continue",
      details: "recognition started on audio/l16;rate=8000 stream"
    )
    session.machine.receive(
      RecognitionResponse(.status(status), cookies: ["session": "abc"]),
      into: &actions
    )
    #expect(actions == [.deliver(.started(status, cookies: ["session": "abc"]))])
  }

  @Test("results before the 100 end the recognition with a protocol error and cancel the call")
  func resultBefore100() {
    var session = Start.holding.session
    var actions: [Machine.Action] = []
    session.machine.receive(Response.final.message, into: &actions)
    let outcome = RecognitionOutcome(
      transportFailure: GRPCStatus(
        .internalError,
        "the server sent a result before its 100 Continue"
      )
    )
    #expect(actions == [.deliver(.finished(outcome)), .finish(outcome, cancelCall: true)])
    #expect(session.machine.outcome == outcome)
    // The held audio is gone with it: nothing is sent if a 100 follows.
    actions = []
    session.machine.receive(Response.status(100).message, into: &actions)
    #expect(actions.isEmpty)
  }

  struct StatusCase: Sendable, CustomTestStringConvertible {
    var code: UInt32
    var kind: RecognitionOutcome.Kind
    var testDescription: String { "\(code)" }
  }

  @Test(
    "every terminal status ends the recognition with its outcome, in every state that waits",
    arguments: [
      StatusCase(code: 200, kind: .success), StatusCase(code: 204, kind: .noResult),
      StatusCase(code: 299, kind: .otherStatus), StatusCase(code: 400, kind: .badRequest),
      StatusCase(code: 401, kind: .unauthorized), StatusCase(code: 403, kind: .forbidden),
      StatusCase(code: 404, kind: .noSpeech), StatusCase(code: 408, kind: .audioTimeout),
      StatusCase(code: 409, kind: .conflict), StatusCase(code: 410, kind: .notRecognizing),
      StatusCase(code: 413, kind: .tooMuchSpeech), StatusCase(code: 429, kind: .tooManyRequests),
      StatusCase(code: 500, kind: .internalError), StatusCase(code: 502, kind: .resourceError),
      StatusCase(code: 503, kind: .serviceUnavailable), StatusCase(code: 512, kind: .shutdown),
    ]
  )
  func terminalStatus(_ statusCase: StatusCase) {
    for start in [Start.initSent, .holding, .streaming, .halfClosed] {
      var session = start.session
      var actions: [Machine.Action] = []
      let status = RecognitionStatus(code: statusCase.code, message: "M", details: "D")
      session.machine.receive(RecognitionResponse(.status(status)), into: &actions)
      let outcome = RecognitionOutcome(status: status)
      #expect(outcome.kind == statusCase.kind)
      #expect(actions == [.deliver(.finished(outcome)), .finish(outcome, cancelCall: false)])
      #expect(session.machine.outcome == outcome)
      // The producer is told to stop at once.
      #expect(session.apply(.audio(5)) == ["stop"])
    }
  }

  @Test("informational statuses other than 100 are passed on", arguments: [0, 1, 101, 150, 199])
  func informational(code: UInt32) {
    var session = Start.streaming.session
    #expect(session.apply(.receive(.status(code))) == ["info \(code)"])
    #expect(session.machine.outcome == nil)
  }

  @Test("a call that ends without a status: INTERNAL if it ended OK, else its own status")
  func callEnded() {
    var ok = Start.halfClosed.session
    var actions: [Machine.Action] = []
    ok.machine.callEnded(.ok, into: &actions)
    #expect(
      ok.machine.outcome
        == RecognitionOutcome(
          transportFailure: GRPCStatus(
            .internalError,
            "the server ended the call without a final status"
          )
        )
    )

    var failed = Start.streaming.session
    failed.machine.callEnded(GRPCStatus(.unavailable, "connection reset"), into: &actions)
    #expect(
      failed.machine.outcome
        == RecognitionOutcome(transportFailure: GRPCStatus(.unavailable, "connection reset"))
    )

    // After a status, the end of the call changes nothing.
    var finished = Start.finished.session
    actions = []
    finished.machine.callEnded(GRPCStatus(.unavailable, "late"), into: &actions)
    #expect(actions.isEmpty)
    #expect(finished.machine.outcome?.code == 200)
  }

  @Test("the application sees each event once, and finished last")
  func deliveredOrder() {
    var session = Session()
    session.apply([
      .start, .audio(1), .receive(.status(100)), .startTimers, .receive(.status(100)),
      .receive(.startOfSpeech), .receive(.partial), .receive(.final), .endOfAudio,
      .receive(.status(200)), .receive(.final), .cancel, .callEndedOK,
    ])
    #expect(
      session.delivered.map(\.summary) == [
        "100", "timers:100", "sos", "partial:", "final:", "200",
      ]
    )
  }
}

extension ClientSessionStateMachineTests.Event {
  var isAudio: Bool {
    switch self {
    case .audio, .emptyAudio: true
    default: false
    }
  }

  var tag: UInt8 {
    if case .audio(let tag) = self { return tag }
    return 0
  }
}
