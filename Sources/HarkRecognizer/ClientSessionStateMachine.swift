import HarkAudio
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
///
///   initSent ── 409/429/503/512 ──► refused ── call ended ──► retryWaiting ── retryNow() ──► initSent
///      └──── UNAVAILABLE, no response ─────────────────────────┘   (attempts, backoff and
///                                                                   budget of the RetryPolicy)
/// ```
///
/// A refusal before the 100 that trying again can cure is retried by the ``RetryPolicy``: the
/// machine waits for the refused call's end (its trailers carry the server's pushback), then
/// asks the driver to wait and open a new call (``Action/retry(after:)``), on which it sends the
/// init again (``retryNow(into:)``). Audio, `start_timers_message` and the end of audio that
/// arrive meanwhile are held as before the 100: nothing is lost, and nothing was sent twice,
/// since no audio goes out before the 100.
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
    /// A refusal the policy may retry: waiting for the call's end (and its pushback).
    case refused(RecognitionStatus)
    /// Waiting to open the next attempt's call.
    case retryWaiting
    /// A 512 mid-call that a resume may cure: waiting for the call's end.
    case interrupted(RecognitionStatus)
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
  /// When refusals before the 100 are retried.
  public let retryPolicy: RetryPolicy
  /// The attempt in progress (1 for the first), 0 before ``start(_:now:into:)``.
  public private(set) var attempt = 0
  /// The init, kept to start each retry with.
  private var initMessage: RecognitionInitMessage?
  /// When the first attempt started (nanoseconds of the driver's monotonic clock).
  private var firstAttemptAt: UInt64 = 0
  /// The current attempt received a response.
  private var receivedResponse = false
  /// Draws the backoffs' jitter.
  private var random: SplitMix64
  /// Whether and how a failed stream is resumed; nil never.
  public let resumePolicy: ResumePolicy?
  /// What a resume needs (nil without a resume policy, or for Opus).
  private var ledger: ResumeLedger?
  /// The policy of the current stream's refusals before its 100: a resumed stream's is the
  /// resume policy's.
  private var activeRetryPolicy: RetryPolicy {
    if let resumePolicy, let ledger, ledger.resumes > 0 { return resumePolicy.retry }
    return retryPolicy
  }

  /// The default prebuffer: 320,000 bytes (10 s of 16 kHz L16), as Krypton's `maxAudioPrebufferSize`.
  public static let defaultPrebufferLimit = 320_000

  /// A machine that holds at most `prebufferLimit` bytes of audio before the 100, and retries
  /// refusals before it by `retryPolicy` (`seed` draws the jitter of its backoffs).
  public init(
    prebufferLimit: Int = ClientSessionStateMachine.defaultPrebufferLimit,
    retryPolicy: RetryPolicy = .none,
    resumePolicy: ResumePolicy? = nil,
    seed: UInt64 = UInt64.random(in: 0...UInt64.max)
  ) {
    self.prebufferLimit = prebufferLimit
    self.retryPolicy = retryPolicy
    self.resumePolicy = resumePolicy
    self.random = SplitMix64(seed: seed)
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
    /// The attempt's call ended with a refusal to retry: after `after`, open a new call (on a
    /// connection that takes new calls) and call ``retryNow(into:)``, which sends the init on it.
    case retry(after: Duration)
    /// Let go of the current call without reporting its end (RST_STREAM CANCEL to the server):
    /// a resume hands the recognition over to a new one.
    case abandonCall
    /// The stream runs: call ``streamDurationReached(now:into:)`` after `after`
    /// (``ResumePolicy/maxStreamDuration``).
    case limitStream(after: Duration)
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

  /// Sends the init message; `now` (nanoseconds of a monotonic clock) starts the retry budget.
  public mutating func start(
    _ message: RecognitionInitMessage,
    now: UInt64 = 0,
    into actions: inout [Action]
  ) throws(InvalidTransition) {
    guard case .idle = state else {
      throw InvalidTransition(message: "the recognition already started")
    }
    state = .initSent
    attempt = 1
    firstAttemptAt = now
    if let resumePolicy {
      ledger = ResumeLedger(policy: resumePolicy, format: message.parameters?.audioFormat)
    }
    if retryPolicy.maxAttempts > 1 || ledger != nil { initMessage = message }
    singleMode = message.parameters?.utteranceDetectionMode == .single
    actions.append(.send(.initMessage(message)))
  }

  /// SINGLE mode: one final result ends the recognition (no resume after it).
  private var singleMode = false

  /// The next attempt's call is open (after ``Action/retry(after:)``): sends the init on it.
  public mutating func retryNow(into actions: inout [Action]) {
    guard case .retryWaiting = state, let initMessage else { return }
    attempt += 1
    receivedResponse = false
    state = .initSent
    actions.append(.send(.initMessage(initMessage)))
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
    case .initSent, .refused, .retryWaiting, .interrupted:
      guard !endOfAudioHeld else { return .stop }
      guard frame.readableBytes > 0 else { return .taken }
      // Hold it for the 100; the first frame is always taken so a large frame cannot wait forever.
      guard held.isEmpty || heldBytes + frame.readableBytes <= prebufferLimit else { return .wait }
      held.append(frame)
      heldBytes += frame.readableBytes
      return .taken
    case .streaming:
      guard frame.readableBytes > 0 else { return .taken }
      if ledger != nil { ledger!.sent(frame) }
      return .send
    case .halfClosed, .finished:
      return .stop
    }
  }

  /// The application asks to start the stalled timers (e.g. after its prompt played).
  public mutating func startTimers(into actions: inout [Action]) {
    switch state {
    case .idle, .initSent, .refused, .retryWaiting, .interrupted: startTimersHeld = true
    case .streaming:
      ledger?.timersStarted = true
      actions.append(.send(.startTimers))
    case .halfClosed, .finished: break
    }
  }

  /// The audio ended: half-close once everything held is sent.
  public mutating func endOfAudio(into actions: inout [Action]) {
    switch state {
    case .initSent, .refused, .retryWaiting, .interrupted:
      endOfAudioHeld = true
    case .streaming:
      state = .halfClosed
      audioEnded = true
      actions.append(.halfClose)
    case .idle, .halfClosed, .finished:
      break
    }
  }

  /// The current stream was half-closed (a resumed stream half-closes after its audio too).
  private var audioEnded = false

  private var isStreamingOrHalfClosed: Bool {
    switch state {
    case .streaming, .halfClosed: true
    default: false
    }
  }

  /// A response arrived.
  public mutating func receive(_ response: RecognitionResponse, into actions: inout [Action]) {
    if case .initSent = state { receivedResponse = true }
    switch (state, response.response) {
    case (.finished, _), (.idle, _), (.refused, _), (.retryWaiting, _), (.interrupted, _):
      // After a refusal to retry, its call is ending: nothing it says changes that.
      return
    case (_, .status(let status)?)
    where status.code == 512 && isStreamingOrHalfClosed && ledger?.canResume == true:
      // The server is going away mid-call: resumed once the call has ended.
      state = .interrupted(status)
    case (.initSent, .status(let status)?)
    where status.code >= 200 && attempt < activeRetryPolicy.maxAttempts
      && RetryPolicy.isRetryable(RecognitionOutcome(status: status), receivedResponse: true):
      // Retried once the call has ended, with the pushback of its trailers.
      state = .refused(status)
    case (.initSent, .status(let status)?) where status.code == 100:
      state = .streaming
      if let limit = resumePolicy?.maxStreamDuration, ledger != nil {
        actions.append(.limitStream(after: limit))
      }
      if let ledger, ledger.resumes > 0 {
        // A resumed stream: the audio no final covered goes again, first.
        actions.append(.deliver(.resumed(atMs: Int(ledger.streamOffsetMs.rounded()))))
        for frame in ledger.frames { actions.append(.send(.audio(frame))) }
        if ledger.timersStarted { startTimersHeld = true }
      } else {
        actions.append(.deliver(.started(status, cookies: response.cookies)))
      }
      for frame in held {
        ledger?.sent(frame)
        actions.append(.send(.audio(frame)))
      }
      held.removeAll()
      heldBytes = 0
      if startTimersHeld {
        startTimersHeld = false
        ledger?.timersStarted = true
        actions.append(.send(.startTimers))
      }
      if endOfAudioHeld {
        state = .halfClosed
        audioEnded = true
        actions.append(.halfClose)
      }
    case (_, .status(let status)?) where status.code == 100:
      // The answer to start_timers_message.
      actions.append(.deliver(.timersStarted(status)))
    case (_, .status(let status)?) where status.code >= 200:
      var status = status
      if status.code == 204, let ledger, ledger.resumes > 0, ledger.finalsDelivered > 0 {
        // The last stream of a resumed recognition heard no utterance, but the recognition
        // did: its outcome is the recognition's, 200.
        status = RecognitionStatus(
          code: 200,
          message: "Success",
          details:
            "a resumed recognition; its last stream answered \(status.code) \(status.message)"
        )
      }
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
    case (_, .startOfSpeech?), (_, .result?):
      // On the recognition's timeline (a resumed stream's times shifted).
      let shifted = ledger.map { $0.shifted(response) } ?? response
      if case .startOfSpeech(let event)? = shifted.response {
        actions.append(.deliver(.startOfSpeech(event)))
      } else if case .result(let result)? = shifted.response {
        if result.resultType == .final, case .result(let original)? = response.response {
          ledger?.finalized(throughStreamMs: original.absEndMs)
          ledger?.finalsDelivered += 1
          if singleMode { ledger?.singleDone = true }
        }
        actions.append(
          .deliver(result.resultType == .final ? .finalResult(result) : .partialResult(result))
        )
      }
    case (_, nil):
      break
    }
  }

  /// The call ended at the gRPC level (`status`), after or without a terminal Nuance status, at
  /// `now` (nanoseconds of the clock of ``start(_:now:into:)``). While the machine waits for a
  /// retry's call, the failure to open it.
  public mutating func callEnded(
    _ status: GRPCStatus,
    now: UInt64 = 0,
    into actions: inout [Action]
  ) {
    switch state {
    case .interrupted(let interruption):
      resumeOrFinish(RecognitionOutcome(status: interruption), now: now, into: &actions)
      return
    case _
    where isStreamingOrHalfClosed && ledger != nil
      && [.unavailable, .internalError, .unknown].contains(status.code):
      // The stream failed mid-call: the connection lost, a reset, a GOAWAY past it.
      resumeOrFinish(RecognitionOutcome(transportFailure: status), now: now, into: &actions)
      return
    case .refused(let refusal):
      retryOrFinish(
        RecognitionOutcome(status: refusal),
        pushback: status.retryPushbackMilliseconds,
        now: now,
        into: &actions
      )
      return
    case .initSent
    where attempt < activeRetryPolicy.maxAttempts
      && RetryPolicy.isRetryable(
        RecognitionOutcome(transportFailure: status),
        receivedResponse: receivedResponse
      ):
      retryOrFinish(
        RecognitionOutcome(transportFailure: status),
        pushback: status.retryPushbackMilliseconds,
        now: now,
        into: &actions
      )
      return
    case .retryWaiting:
      // The retry's call could not be opened: that attempt failed.
      attempt += 1
      retryOrFinish(
        RecognitionOutcome(transportFailure: status),
        pushback: status.retryPushbackMilliseconds,
        now: now,
        into: &actions
      )
      return
    default:
      break
    }
    guard outcome == nil else { return }
    let failure =
      status.code == .ok
      ? GRPCStatus(.internalError, "the server ended the call without a final status") : status
    finish(RecognitionOutcome(transportFailure: failure), cancelCall: false, into: &actions)
  }

  /// The application cancels the recognition.
  public mutating func cancel(into actions: inout [Action]) {
    guard outcome == nil else { return }
    // Waiting to retry, no call is open.
    let callOpen = if case .retryWaiting = state { false } else { true }
    finish(.cancelled, cancelCall: callOpen, into: &actions)
  }

  /// The stream ran for ``ResumePolicy/maxStreamDuration``: it is handed over to a new one, as
  /// a resume, unless the recognition cannot resume (then it goes on).
  public mutating func streamDurationReached(now: UInt64, into actions: inout [Action]) {
    guard isStreamingOrHalfClosed, ledger?.canResume == true else { return }
    actions.append(.abandonCall)
    resumeOrFinish(
      RecognitionOutcome(transportFailure: GRPCStatus(.unavailable, "stream duration reached")),
      now: now,
      into: &actions
    )
  }

  /// Resumes the recognition on a new stream after the one that failed with `reason`, if the
  /// resume policy allows it; else the recognition ends with `reason`.
  private mutating func resumeOrFinish(
    _ reason: RecognitionOutcome,
    now: UInt64,
    into actions: inout [Action]
  ) {
    guard var ledger, let resumePolicy, ledger.canResume else {
      var outcome = reason
      if let why = ledger?.cannotResumeReason, let transport = reason.transportStatus {
        // Audio with no final result was let go: a resume would lose it. DATA_LOSS says so,
        // in a type an application can switch on; the message keeps the stream's failure.
        let code = ledger?.lostAudio == true ? GRPCStatus.Code.dataLoss : transport.code
        outcome = RecognitionOutcome(
          transportFailure: GRPCStatus(code, "\(transport.message) (not resumed: \(why))")
        )
      }
      finish(outcome, cancelCall: false, into: &actions)
      return
    }
    if audioEnded { endOfAudioHeld = true }
    ledger.beginResume()
    let delay =
      resumePolicy.retry.delay(
        beforeRetry: ledger.resumes,
        pushbackMilliseconds: nil,
        unit: random.nextUnitInterval()
      ) ?? .zero
    self.ledger = ledger
    state = .retryWaiting
    attempt = 0
    firstAttemptAt = now
    receivedResponse = false
    actions.append(.retry(after: delay))
  }

  /// Retries after the attempt that ended with `reason`, if the policy allows another attempt
  /// within its budget; else the recognition ends with `reason`.
  private mutating func retryOrFinish(
    _ reason: RecognitionOutcome,
    pushback: Int?,
    now: UInt64,
    into actions: inout [Action]
  ) {
    let elapsed = Duration.nanoseconds(Int64(clamping: now &- firstAttemptAt))
    let retryPolicy = activeRetryPolicy
    guard attempt < retryPolicy.maxAttempts,
      let delay = retryPolicy.delay(
        beforeRetry: attempt,
        pushbackMilliseconds: pushback,
        unit: random.nextUnitInterval()
      ),
      elapsed + delay <= retryPolicy.budget
    else {
      finish(reason, cancelCall: false, into: &actions)
      return
    }
    state = .retryWaiting
    actions.append(.deliver(.retrying(attempt: attempt + 1, after: delay, reason: reason)))
    actions.append(.retry(after: delay))
  }

  private mutating func finish(
    _ outcome: RecognitionOutcome,
    cancelCall: Bool,
    into actions: inout [Action]
  ) {
    state = .finished(outcome)
    held.removeAll()
    heldBytes = 0
    initMessage = nil
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
  /// The attempt before was refused for `reason` (before the 100): attempt `attempt` (2 for
  /// the first retry) starts after `after`. The audio waits for it.
  case retrying(attempt: Int, after: Duration, reason: RecognitionOutcome)
  /// A failed stream was resumed (``ResumePolicy``): a new stream took over, with the audio
  /// from `atMs` of the recognition's timeline on, and its times are shifted onto that timeline.
  case resumed(atMs: Int)
  /// The recognition ended.
  case finished(RecognitionOutcome)
}
