public import HarkGRPCCore
public import HarkProto
public import NIOCore

/// The Recognize protocol as a client follows it, for one recognition.
///
/// ```
///          start()              100 Continue                 endOfAudio()
///   idle ──────────► initSent ──────────────────► streaming ─────────────► halfClosed
///   (init sent)      │ audio: held (prebuffer)    │ audio: sent             │
///                    │ start_timers: held         │ start_timers: sent      │
///                    │ endOfAudio: held           │                         │
///                    └────────────┬───────────────┴────────────┬────────────┘
///                                 ▼ status ≥ 200, call ended, cancel()        ▼
///                              finished(outcome) — audio is no longer taken
/// ```
///
/// Audio is never sent before the 100 and never lost: until then it is held, up to a prebuffer
/// bound beyond which the producer is told to wait (``OnAudio/wait``), never dropped. Empty
/// frames are skipped. A `start_timers_message` goes out only while the recognition runs; one
/// asked for earlier (even before `start()`) follows the held audio. After the outcome, audio is refused at once so the
/// producer stops.
///
/// Bad transitions come in three kinds: starting twice or sending audio before `start()` is a
/// caller bug (refused); a server that answers out of order gets an outcome of a protocol error;
/// events after the outcome are ignored.
public struct ClientSessionStateMachine: Sendable {
  enum State: Sendable {
    case idle
    case initSent
    case streaming
    case halfClosed
    case finished(RecognitionOutcome)
  }

  private var state: State = .idle
  private var held: [ByteBuffer] = []
  private var heldBytes = 0
  private var startTimersHeld = false
  private var endOfAudioHeld = false
  /// The most audio held before the 100, in bytes.
  public let prebufferLimit: Int

  /// The default prebuffer: 320,000 bytes (10 s of 16 kHz L16), as Krypton's `maxAudioPrebufferSize`.
  public static let defaultPrebufferLimit = 320_000

  /// A machine that holds at most `prebufferLimit` bytes of audio before the 100.
  public init(prebufferLimit: Int = ClientSessionStateMachine.defaultPrebufferLimit) {
    self.prebufferLimit = prebufferLimit
  }

  /// What the driver does.
  ///
  /// The rare, large payloads are indirect, so that the actions of each audio frame stay small to
  /// copy.
  public enum Action: Sendable, Equatable {
    /// Send this request.
    case send(RecognitionRequest)
    /// Half-close the request stream.
    case halfClose
    /// Hand this event to the application.
    indirect case deliver(RecognitionEvent)
    /// The recognition is over: stop the audio producer and end (or cancel) the call.
    indirect case finish(RecognitionOutcome, cancelCall: Bool)
  }

  /// What to do with an audio frame.
  public enum OnAudio: Sendable, Equatable {
    /// It was taken (sent or held); the actions say what to send.
    case taken
    /// The prebuffer is full: offer the frame again after the recognition starts.
    case wait
    /// The recognition is over or the audio ended: stop producing.
    case stop
  }

  /// The recognition's outcome, once it ended.
  public var outcome: RecognitionOutcome? {
    if case .finished(let outcome) = state { return outcome }
    return nil
  }

  /// Whether audio frames are being sent (the 100 arrived).
  public var isStreaming: Bool {
    if case .streaming = state { return true }
    return false
  }

  /// A misuse by the application, e.g. audio before the init.
  public struct InvalidTransition: Error, Hashable, Sendable {
    public var message: String
  }

  /// Sends the init message.
  public mutating func start(
    _ message: RecognitionInitMessage,
    into actions: inout [Action]
  ) throws(InvalidTransition) {
    guard case .idle = state else {
      throw InvalidTransition(message: "the recognition already started")
    }
    state = .initSent
    actions.append(.send(.initMessage(message)))
  }

  /// Offers an audio frame.
  public mutating func audio(_ frame: ByteBuffer, into actions: inout [Action]) -> OnAudio {
    switch audioStep(frame) {
    case .send:
      actions.append(.send(.audio(frame)))
      return .taken
    case .taken: return .taken
    case .wait: return .wait
    case .stop: return .stop
    }
  }

  /// What ``audio(_:into:)`` decides, as one value rather than actions: `.send` when the frame
  /// goes out now, as `.send(.audio(frame))` would (the driver's path for the common case of a
  /// streaming recognition, which then needs no actions array).
  public enum AudioStep: Sendable, Hashable {
    case send
    case taken
    case wait
    case stop
  }

  /// Decides an audio frame like ``audio(_:into:)``; on `.send` the caller sends it.
  public mutating func audioStep(_ frame: ByteBuffer) -> AudioStep {
    switch state {
    case .idle:
      assertionFailure("audio before start()")
      return .stop
    case .initSent:
      guard !endOfAudioHeld else { return .stop }
      guard frame.readableBytes > 0 else { return .taken }
      // Hold it for the 100; the first frame is always taken so a large frame cannot wait forever.
      guard held.isEmpty || heldBytes + frame.readableBytes <= prebufferLimit else { return .wait }
      held.append(frame)
      heldBytes += frame.readableBytes
      return .taken
    case .streaming:
      return frame.readableBytes > 0 ? .send : .taken
    case .halfClosed, .finished:
      return .stop
    }
  }

  /// The application asks to start the stalled timers (e.g. after its prompt played).
  public mutating func startTimers(into actions: inout [Action]) {
    switch state {
    case .idle, .initSent: startTimersHeld = true
    case .streaming: actions.append(.send(.startTimers))
    case .halfClosed, .finished: break
    }
  }

  /// The audio ended: half-close once everything held is sent.
  public mutating func endOfAudio(into actions: inout [Action]) {
    switch state {
    case .initSent:
      endOfAudioHeld = true
    case .streaming:
      state = .halfClosed
      actions.append(.halfClose)
    case .idle, .halfClosed, .finished:
      break
    }
  }

  /// A response arrived.
  public mutating func receive(_ response: RecognitionResponse, into actions: inout [Action]) {
    switch (state, response.response) {
    case (.finished, _), (.idle, _):
      return
    case (.initSent, .status(let status)?) where status.code == 100:
      state = .streaming
      actions.append(.deliver(.started(status, cookies: response.cookies)))
      for frame in held { actions.append(.send(.audio(frame))) }
      held.removeAll()
      heldBytes = 0
      if startTimersHeld { actions.append(.send(.startTimers)) }
      if endOfAudioHeld {
        state = .halfClosed
        actions.append(.halfClose)
      }
    case (_, .status(let status)?) where status.code == 100:
      // The answer to start_timers_message.
      actions.append(.deliver(.timersStarted(status)))
    case (_, .status(let status)?) where status.code >= 200:
      finish(RecognitionOutcome(status: status), cancelCall: false, into: &actions)
    case (_, .status(let status)?):
      // Another informational status: passed on, the recognition goes on.
      actions.append(.deliver(.informational(status)))
    case (.initSent, _):
      // Results before the 100: the server broke the protocol.
      finish(
        RecognitionOutcome(
          transportFailure: GRPCStatus(
            .internalError,
            "the server sent a result before its 100 Continue"
          )
        ),
        cancelCall: true,
        into: &actions
      )
    case (_, .startOfSpeech(let event)?):
      actions.append(.deliver(.startOfSpeech(event)))
    case (_, .result(let result)?):
      actions.append(
        .deliver(result.resultType == .final ? .finalResult(result) : .partialResult(result))
      )
    case (_, nil):
      break
    }
  }

  /// The call ended at the gRPC level (`status`), after or without a terminal Nuance status.
  public mutating func callEnded(_ status: GRPCStatus, into actions: inout [Action]) {
    guard outcome == nil else { return }
    let failure =
      status.code == .ok
      ? GRPCStatus(.internalError, "the server ended the call without a final status") : status
    finish(RecognitionOutcome(transportFailure: failure), cancelCall: false, into: &actions)
  }

  /// The application cancels the recognition.
  public mutating func cancel(into actions: inout [Action]) {
    guard outcome == nil else { return }
    finish(.cancelled, cancelCall: true, into: &actions)
  }

  private mutating func finish(
    _ outcome: RecognitionOutcome,
    cancelCall: Bool,
    into actions: inout [Action]
  ) {
    state = .finished(outcome)
    held.removeAll()
    heldBytes = 0
    actions.append(.deliver(.finished(outcome)))
    actions.append(.finish(outcome, cancelCall: cancelCall))
  }
}

/// What a recognition reports to the application, in order; ``finished(_:)`` comes last, once.
public enum RecognitionEvent: Sendable, Hashable {
  /// The server accepted the init (100 Continue) and returned these cookies.
  case started(RecognitionStatus, cookies: [String: String])
  /// The stalled timers started (100 to `start_timers_message`).
  case timersStarted(RecognitionStatus)
  /// Another informational status.
  case informational(RecognitionStatus)
  /// Speech was detected.
  case startOfSpeech(StartOfSpeech)
  /// A partial result (PARTIAL or IMMUTABLE_PARTIAL).
  case partialResult(RecognitionResult)
  /// The final result of an utterance.
  case finalResult(RecognitionResult)
  /// The recognition ended.
  case finished(RecognitionOutcome)
}
