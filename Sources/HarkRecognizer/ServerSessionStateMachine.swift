internal import HarkAudio
public import HarkProto
public import NIOCore

/// The Recognize protocol as a server enforces it, for one RPC: the init, the 100 Continue,
/// audio and timers, utterances and results, and every terminal status.
///
/// ```
///                  init ✓ (valid)                  engine ready (100 Continue)
///   awaitingInit ───────────────► acquiring ─────────────────────────────► recognizing ─────────► finished(status)
///    │ audio first ──► 400         │ audio, start_timers, a second init,    │ timers: stalled ─start_timers─► running (100)
///    │ start_timers ─► 410         │ end of requests: queued, replayed in   │ per utterance: waiting → inSpeech → trailing silence
///    │ end of requests ► 400       │ order after the 100 (queue full: pause │
///    │ no init in time ► 408       │ the client's data); dropped if the     │ second init ─────────────────► 400
///    │ bad init ─────► 400 <field> │ recognition does not start             │ no speech for no_input_timeout ► 404
///    └ shutdown ─────► 512         │ rejected: unauthenticated ► 401        │ speech past recognition_timeout ► final, 413
///                                  │   forbidden topic ────────► 403        │ no audio message for idle timeout ► 408
///                                  │   every engine busy ──────► 409        │ engine failed ───────────────► 500
///                                  │   rate limit ─────────────► 429        │ shutdown ────────────────────► 512
///                                  │   engine refused ► 400 · 502 · 500     │ SINGLE: end of the utterance ► final, 200
///                                  │ shutdown ────────────────► 512         │ end of requests: an utterance → final, 200;
///                                  └ client reset ────────────► (none)      │                  none at all → 204
///                                                                           └ client reset ────────────────► (no status)
/// ```
///
/// Timers count audio samples, never wall time, so audio faster than real time behaves like
/// real-time audio; only the idle and pre-init timeouts are wall time, and the driver reports
/// them as events (its idle clock stops while it withholds the client's flow-control window, so
/// that only a client that really stops sending gets 408).
/// They start with the 100 unless `stall_timers` is set, then with `start_timers_message` (which
/// is answered with another 100). Stalling holds the no-input and recognition timers only.
///
/// The driver carries out actions in order, and an event it reports while doing so (an engine
/// that answers at once) appends its actions after the ones still to do. The machine relies on
/// it for the order of responses: a message's ``Action/engineAudio(position:)`` comes before the
/// StartOfSpeech the same message produces, so a partial result the engine returns for those
/// samples goes out after it. A partial computed from audio that reached past the end of its
/// utterance is dropped: the final result, which follows, supersedes it.
///
/// Bad transitions come in three kinds: a driver that reports engine results nobody asked for
/// is a caller bug (ignored, with an assertion in debug builds); what the client sends out of
/// order is a protocol violation answered with its status; and events after the end (audio
/// after SINGLE's result, a reset after the status) are races, ignored.
public struct ServerSessionStateMachine: Sendable {
  /// What the driver does next, in order.
  public enum Action: Sendable, Equatable {
    /// Check the recognition against the server's policy (credentials, rate limit), take an
    /// engine of the pool and prepare it with the ``configuration`` (off the event loop); then
    /// call ``engineReady(notices:into:)`` or ``rejectInit(_:into:)``. Meanwhile the machine
    /// queues what the client sends.
    case acquireEngine
    /// Send this response.
    case send(RecognitionResponse)
    /// End the RPC (gRPC OK): the status was the last response. With a pushback, the trailers
    /// tell the client when it may try again (`grpc-retry-pushback-ms`, gRFC A6, and
    /// `retry-after` in seconds): for 409, 429 and 512 (DESIGN rule 11).
    case finishCall(pushbackMilliseconds: Int?)
    /// Give the engine this message's samples (which start at `position`), and report a partial
    /// hypothesis it returns with ``enginePartial(_:position:into:)``.
    case engineAudio(position: Int)
    /// Tell the engine an utterance began at `onset`.
    case engineBeginUtterance(onset: Int)
    /// Tell the engine the utterance ended at `end`, and report its hypotheses with
    /// ``engineFinal(_:end:into:)`` (or ``engineFailed(_:into:)``).
    case engineEndUtterance(end: Int)
    /// Decode this audio message, which arrived while the engine was acquired, and report it
    /// with ``audio(_:into:)`` now, as if it had just arrived.
    case replayAudio(ByteBuffer)
    /// Stop acknowledging the client's data, so that HTTP/2 flow control holds the client back:
    /// the queue of what it sent while the engine is acquired is full.
    case pauseRequests
    /// Acknowledge the client's data again.
    case resumeRequests
    /// The recognition is over: reset the engine and return it to the pool (an engine still
    /// being made or prepared, once that returns).
    case releaseEngine
    /// (Re)start the idle timer: no audio message for that long is 408 (``idleTimeout(milliseconds:into:)``).
    case restartIdleTimer
    /// Stop the idle timer.
    case stopIdleTimer
  }

  /// Why the driver could not start an accepted recognition; each becomes its status
  /// (``status(for:)``).
  public enum InitRejection: Sendable, Hashable {
    /// The call's credentials are missing, malformed or not accepted: 401, with `reason` as
    /// the details.
    case unauthenticated(reason: String)
    /// The credentials are valid but may not use `topic`: 403.
    case forbidden(topic: String)
    /// More new recognitions per second than the server allows: 429, with the time until the
    /// limit allows the next one as the pushback.
    case rateLimited(retryAfterMilliseconds: Int)
    /// Every one of the server's `capacity` engines is busy: 409.
    case enginesBusy(capacity: Int)
    /// The engine refused the recognition's configuration: 400 (a parameter or resource it
    /// cannot take), 502 (a resource that failed to load) or 500, by the error's kind.
    case prepareFailed(EngineError)
    /// The server's own admission hook refused the recognition with this status.
    case refused(RecognitionStatus)
  }

  enum State: Sendable {
    case awaitingInit
    /// The init was valid; the driver is acquiring an engine. Boxed (`indirect`): inline, its
    /// configuration (some 900 bytes) would make every state that large, and the state is
    /// copied about when the machine switches on it, per audio message.
    indirect case acquiring(Acquisition)
    /// The recognition runs.
    case recognizing(RecognitionBox)
    case finished
    /// Only while a payload is out of the enum being changed: taken out, it is referenced once,
    /// so it is changed in place rather than copied.
    case modifying
  }

  /// An accepted init and what the client sent while its engine is acquired.
  struct Acquisition: Sendable {
    var configuration: RecognitionConfiguration
    /// What arrived meanwhile, in order.
    var queue: [Queued] = []
    /// The audio bytes in `queue`.
    var queuedBytes = 0
    /// Whether the driver was told to stop acknowledging the client's data.
    var pausedRequests = false
    /// Whether a start_timers_message is queued (once is enough: a second would find the
    /// timers running).
    var startTimersQueued = false
  }

  /// A request held while the engine is acquired.
  enum Queued: Sendable {
    case audio(ByteBuffer)
    case startTimers
    /// Another init message (whatever it holds: 400).
    case secondInit
    case endOfRequests
  }

  /// Everything a recognition tracks.
  struct Recognition: Sendable {
    var configuration: RecognitionConfiguration
    var endpointer: Endpointer
    /// The sample at which the no-input and recognition timers started; nil while stalled.
    var timersStart: Int?
    /// Whether any utterance has started (no-input no longer applies).
    var heardSpeech = false
    /// The utterance the engine is in, if any (its onset).
    var utteranceOnset: Int?
    /// The utterances whose final results were requested and have not come back, oldest first:
    /// one audio message can end an utterance and start (or end) the next before the driver
    /// reports the first final.
    var pendingFinals: [PendingFinal] = []
    /// Utterances finished with a final result.
    var finishedUtterances = 0
    /// A final result was requested of the engine and has not come back yet; what follows the
    /// last of them.
    var awaitingFinal: PendingEnd?
    /// The text of the last partial result sent for this utterance.
    var lastPartialText: String?
    /// Notices of the engine to send with the next result.
    var notices: [EngineNotice] = []
    /// What the client sent while the engine was acquired and is not replayed yet.
    var replay: ArraySlice<Queued> = []
  }

  /// The running recognition as the state holds it: behind one reference, copied on write.
  ///
  /// Per audio message the machine takes it out of `state` and puts it back. A recognition held
  /// inline (some 250 bytes, a dozen references) was copied several times and retained field
  /// by field on the way; a reference is one retain, and the recognition inside is changed in
  /// place. A copy of the machine (a value) shares it until either changes it.
  final class RecognitionBox: @unchecked Sendable {  // copied on write: never changed while shared
    var recognition: Recognition

    init(_ recognition: Recognition) {
      self.recognition = recognition
    }
  }

  /// An utterance whose final result was requested.
  struct PendingFinal: Sendable {
    var onset: Int
    var end: Int
    /// The stream position of the audio being handled when the final was requested (the start
    /// of the message that ended the utterance, or all the audio at the end of requests): a
    /// partial computed from samples at or past it is superseded by the final.
    var requestedAt: Int
  }

  /// Why a final result was requested, which says what follows it.
  enum PendingEnd: Sendable, Equatable {
    /// An utterance ended (MULTIPLE: keep going; SINGLE: 200).
    case utteranceEnded
    /// The recognition timeout: 413 follows.
    case recognitionTimeout
    /// The client ended its stream: 200 follows.
    case endOfRequests
  }

  /// Audio bytes the machine queues while the engine is acquired before it pauses the client's
  /// data: one second of the largest PCM stream (L16 at 16 kHz). At most this plus the stream's
  /// flow-control window is ever queued.
  public static let defaultMaxQueuedAudioBytes = 32_000

  private var state: State = .awaitingInit
  private let maxQueuedAudioBytes: Int
  /// The status the recognition ended with, once it ended.
  public private(set) var finalStatus: RecognitionStatus?

  /// A machine that queues up to `maxQueuedAudioBytes` of audio while the engine is acquired
  /// before it pauses the client's data.
  public init(maxQueuedAudioBytes: Int = ServerSessionStateMachine.defaultMaxQueuedAudioBytes) {
    self.maxQueuedAudioBytes = maxQueuedAudioBytes
  }

  /// The configuration of the recognition, once the init was accepted.
  public var configuration: RecognitionConfiguration? {
    switch state {
    case .acquiring(let acquisition): acquisition.configuration
    case .recognizing(let box): box.recognition.configuration
    case .awaitingInit, .finished, .modifying: nil
    }
  }

  // The two questions a driver asks for every message have `mutating` getters though they change
  // nothing: a non-mutating getter called on a class's or actor's stored machine copies the whole
  // machine first (retaining what it holds).

  /// Whether the RPC has ended.
  public var isFinished: Bool {
    mutating get {
      if case .finished = state { return true }
      return false
    }
  }

  /// Whether audio messages are being recognized (the driver decodes them only then).
  public var isRecognizing: Bool {
    mutating get {
      if case .recognizing = state { return true }
      return false
    }
  }

  // MARK: Requests

  /// A request message arrived (other than audio, which the driver decodes and reports with
  /// ``audio(_:into:)`` while ``isRecognizing``).
  public mutating func receive(_ request: RecognitionRequest, into actions: inout [Action]) {
    switch request.request {
    case .recognitionInitMessage(let message)?:
      receiveInit(message, into: &actions)
    case .controlMessage(let control)?:
      guard case .startTimersMessage? = control.control else {
        // A control message without a known control: nothing to do.
        return
      }
      startTimers(into: &actions)
    case .audio(let bytes)?:
      switch state {
      case .awaitingInit:
        end(
          400,
          "Bad request",
          "recognition_init_message must be the first message, before any audio",
          into: &actions
        )
      case .acquiring:
        // An empty message would change nothing when replayed (the idle timer starts with the
        // 100), so only audio is queued.
        guard bytes.readableBytes > 0 else { return }
        enqueue(.audio(bytes), into: &actions)
      case .recognizing, .finished, .modifying:
        // While recognizing, audio goes to audio(_:into:).
        break
      }
    case nil:
      break
    }
  }

  private mutating func receiveInit(_ message: RecognitionInitMessage, into actions: inout [Action])
  {
    switch state {
    case .awaitingInit:
      do {
        state = .acquiring(
          Acquisition(configuration: try RecognitionConfiguration(validating: message))
        )
        actions.append(.acquireEngine)
      } catch {
        end(400, "Bad request", "\(error)", into: &actions)
      }
    case .acquiring:
      // Answered (400) after the 100, as if the engine had been ready at once.
      enqueue(.secondInit, into: &actions)
    case .recognizing:
      end(Self.secondInitStatus, into: &actions)
    case .finished, .modifying:
      break
    }
  }

  private static let secondInitStatus = RecognitionStatus(
    code: 400,
    message: "Bad request",
    details: "recognition_init_message: a recognition accepts one init message"
  )

  /// The driver could not start the recognition: its status (401, 403, 409, 429, 400, 502 or
  /// 500), and the engine, if the driver took one, goes back.
  public mutating func rejectInit(_ rejection: InitRejection, into actions: inout [Action]) {
    guard case .acquiring = state else { return }
    end(Self.status(for: rejection), pushback: Self.pushback(for: rejection), into: &actions)
  }

  /// How long a client refused for `rejection` should wait before it tries again, in
  /// milliseconds; nil for a refusal that trying again does not cure.
  public static func pushback(for rejection: InitRejection) -> Int? {
    switch rejection {
    case .rateLimited(let milliseconds): max(milliseconds, 0)
    case .enginesBusy: conflictPushbackMilliseconds
    case .unauthenticated, .forbidden, .prepareFailed, .refused: nil
    }
  }

  /// The pushback of a 409: a recognition lasts seconds, so a recognizer is unlikely to be free
  /// much sooner.
  public static let conflictPushbackMilliseconds = 1_000
  /// The pushback of a 512: the server is going away, and another one (behind the same address
  /// or load balancer) may take the call at once.
  public static let shutdownPushbackMilliseconds = 0

  /// The status that refuses a recognition for `rejection`.
  public static func status(for rejection: InitRejection) -> RecognitionStatus {
    switch rejection {
    case .unauthenticated(let reason):
      RecognitionStatus(code: 401, message: "Unauthorized", details: reason)
    case .forbidden(let topic):
      RecognitionStatus(
        code: 403,
        message: "Forbidden",
        details: "the token may not use the topic \(topic)"
      )
    case .rateLimited(_):
      RecognitionStatus(
        code: 429,
        message: "Too many requests",
        details: "the server's limit of new recognitions per second was exceeded"
      )
    case .enginesBusy(let capacity):
      RecognitionStatus(
        code: 409,
        message: "Conflict",
        details: "all \(capacity) recognizers are busy"
      )
    case .prepareFailed(let error):
      switch error.kind {
      case .badRequest(let field):
        RecognitionStatus(code: 400, message: "Bad request", details: "\(field): \(error.message)")
      case .resourceFailed(let field):
        RecognitionStatus(
          code: 502,
          message: "Resource error",
          details: "\(field): \(error.message)"
        )
      case .internalFailure:
        RecognitionStatus(code: 500, message: "Internal server error", details: error.message)
      }
    case .refused(let status):
      status
    }
  }

  /// The engine is ready: the recognition starts (100 Continue), and what the client sent
  /// meanwhile is replayed in order.
  public mutating func engineReady(notices: [EngineNotice] = [], into actions: inout [Action]) {
    guard case .acquiring(let acquisition) = state else {
      assertionFailure("engineReady without acquireEngine")
      return
    }
    let configuration = acquisition.configuration
    var recognition = Recognition(
      configuration: configuration,
      endpointer: Endpointer(
        configuration: .init(
          sampleRate: configuration.sampleRate,
          endSilenceMilliseconds: configuration.utteranceEndSilenceMs,
          sensitivity: configuration.sensitivity
        )
      )
    )
    recognition.notices = notices
    recognition.replay = acquisition.queue[...]
    if !configuration.stallTimers { recognition.timersStart = 0 }
    if configuration.mode == .disabled {
      // No endpointing: the whole stream is one utterance for the engine.
      recognition.utteranceOnset = 0
      actions.append(.engineBeginUtterance(onset: 0))
    }
    state = .recognizing(RecognitionBox(recognition))
    actions.append(
      .send(.status(code: 100, message: "Continue", details: Self.continueDetails(configuration)))
    )
    actions.append(.restartIdleTimer)
    if acquisition.pausedRequests { actions.append(.resumeRequests) }
    replayQueued(into: &actions)
  }

  /// The details of every 100 Continue: the stream the recognition runs on.
  public static func continueDetails(_ configuration: RecognitionConfiguration) -> String {
    "recognition started on \(configuration.audioFormat.mediaType) stream"
  }

  /// Replays what arrived while the engine was acquired, up to the next audio message: the
  /// driver decodes that one (``Action/replayAudio(_:)``) and reports it with ``audio(_:into:)``,
  /// which goes on with the rest.
  private mutating func replayQueued(into actions: inout [Action]) {
    while let next = nextReplayed() {
      switch next {
      case .audio(let bytes):
        actions.append(.replayAudio(bytes))
        return
      case .startTimers:
        startTimers(into: &actions)
      case .secondInit:
        end(Self.secondInitStatus, into: &actions)
      case .endOfRequests:
        endOfRequests(into: &actions)
      }
    }
  }

  /// The next request to replay, taken off the queue.
  private mutating func nextReplayed() -> Queued? {
    guard let box = takeRecognition() else { return nil }
    let next = box.recognition.replay.popFirst()
    state = .recognizing(box)
    return next
  }

  private mutating func startTimers(into actions: inout [Action]) {
    switch state {
    case .awaitingInit:
      // Seed 004: a start_timers_message while no recognition is in progress is 410.
      end(
        410,
        "Not recognizing",
        "start_timers_message arrived before a recognition started",
        into: &actions
      )
    case .acquiring:
      // Replayed after the 100.
      enqueue(.startTimers, into: &actions)
    case .recognizing:
      guard let box = takeRecognition() else { return }
      // Timers already running: the message changes nothing (DESIGN rule 2).
      let starts = box.recognition.timersStart == nil
      if starts { box.recognition.timersStart = box.recognition.endpointer.position }
      state = .recognizing(box)
      guard starts else { return }
      actions.append(.send(.status(code: 100, message: "Continue", details: "timers started")))
    case .finished, .modifying:
      break
    }
  }

  /// The driver decoded an audio message into `samples`; run endpointing and the timers on them.
  public mutating func audio(_ samples: UnsafeBufferPointer<Int16>, into actions: inout [Action]) {
    let start = actions.count
    let step = audioStep(samples, into: &actions)
    var first: [Action] = []
    if step.restartsIdleTimer { first.append(.restartIdleTimer) }
    if let position = step.enginePosition { first.append(.engineAudio(position: position)) }
    actions.insert(contentsOf: first, at: start)
  }

  /// What ``audioStep(_:into:)`` decided: the two actions that begin almost every audio
  /// message's list in ``audio(_:into:)``, for the driver to carry out before those it appended.
  public struct AudioStep: Sendable, Hashable {
    /// ``Action/restartIdleTimer``.
    public var restartsIdleTimer: Bool
    /// ``Action/engineAudio(position:)`` at this position.
    public var enginePosition: Int?

    public init(restartsIdleTimer: Bool, enginePosition: Int?) {
      self.restartsIdleTimer = restartsIdleTimer
      self.enginePosition = enginePosition
    }
  }

  /// Decides an audio message like ``audio(_:into:)``, but returns its first two actions rather
  /// than appending them: the common message then needs no list of actions. For a driver that
  /// is not carrying out actions at the time; it restarts the idle timer and gives the engine
  /// the samples (in that order) before the actions appended to `actions`.
  public mutating func audioStep(
    _ samples: UnsafeBufferPointer<Int16>,
    into actions: inout [Action]
  ) -> AudioStep {
    // Taken out of the enum and put back: changed in place, with no copy per message.
    guard let box = takeRecognition() else {
      return AudioStep(restartsIdleTimer: false, enginePosition: nil)
    }
    let (position, ended) = Self.audio(samples, recognition: &box.recognition, into: &actions)
    let replaying = !box.recognition.replay.isEmpty
    state = .recognizing(box)
    if let ended {
      end(ended, into: &actions)
    } else if replaying {
      replayQueued(into: &actions)
    }
    return AudioStep(restartsIdleTimer: true, enginePosition: position)
  }

  /// The engine position of `samples` (nil once the recognition is ending) and the status to
  /// end with, if a timer expired.
  private static func audio(
    _ samples: UnsafeBufferPointer<Int16>,
    recognition: inout Recognition,
    into actions: inout [Action]
  ) -> (position: Int?, ended: RecognitionStatus?) {
    if recognition.awaitingFinal == .endOfRequests
      || recognition.awaitingFinal == .recognitionTimeout
    {
      // The recognition is ending; audio no longer matters.
      return (nil, nil)
    }
    // The stream position of these samples: every sample before them, not just whole frames (a
    // message need not be a whole number of 10 ms frames).
    let position = recognition.endpointer.samplesSeen
    return (position, endpoint(samples, at: position, recognition: &recognition, into: &actions))
  }

  /// Endpointing and the timers over `samples` (which start at `position`), updating
  /// `recognition` in place; the status to end with, if a timer expired.
  private static func endpoint(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int,
    recognition: inout Recognition,
    into actions: inout [Action]
  ) -> RecognitionStatus? {
    var ended: RecognitionStatus?
    // Frame by frame, the endpointer changed in place (no copy of it, no closure).
    var index = 0
    while index < samples.count {
      let step = recognition.endpointer.feedFrame(UnsafeBufferPointer(rebasing: samples[index...]))
      index += step.taken
      guard step.completed, ended == nil, recognition.awaitingFinal != .recognitionTimeout else {
        continue
      }
      Self.frame(
        &recognition,
        event: step.event,
        messageStart: position,
        ended: &ended,
        into: &actions
      )
    }
    return ended
  }

  /// One 10 ms frame of endpointing, in the message that starts at `messageStart`: utterance
  /// boundaries and the timers.
  private static func frame(
    _ recognition: inout Recognition,
    event: Endpointer.Event?,
    messageStart: Int,
    ended: inout RecognitionStatus?,
    into actions: inout [Action]
  ) {
    // Fields are read from `recognition.configuration` in place: copying the configuration (its
    // strings, resources and init message) per 10 ms frame would dominate the cost of audio.
    let single = recognition.configuration.mode == .single
    let disabled = recognition.configuration.mode == .disabled
    if single && recognition.finishedUtterances > 0 { return }
    if single && recognition.awaitingFinal == .utteranceEnded { return }

    switch event {
    case .speechStarted(let onset)?:
      if !recognition.heardSpeech || !disabled {
        // One StartOfSpeech per utterance (DISABLED has one utterance: the first speech).
        actions.append(
          .send(
            RecognitionResponse(
              .startOfSpeech(
                StartOfSpeech(
                  firstAudioToStartOfSpeechMs: recognition.configuration.milliseconds(
                    samples: onset
                  )
                )
              )
            )
          )
        )
      }
      recognition.heardSpeech = true
      if !disabled {
        recognition.utteranceOnset = onset
        recognition.lastPartialText = nil
        actions.append(.engineBeginUtterance(onset: onset))
      }
    case .speechEnded(let end)?:
      if !disabled, let onset = recognition.utteranceOnset {
        recognition.awaitingFinal = .utteranceEnded
        recognition.pendingFinals.append(
          PendingFinal(onset: onset, end: end, requestedAt: messageStart)
        )
        recognition.utteranceOnset = nil
        actions.append(.engineEndUtterance(end: end))
      }
    case nil:
      break
    }

    guard let timersStart = recognition.timersStart else { return }
    // no_input_timeout_ms: non-speech since the timers started, before the first speech.
    let noInputTimeoutMs = recognition.configuration.noInputTimeoutMs
    if noInputTimeoutMs > 0 && !recognition.heardSpeech
      && recognition.endpointer.position - timersStart
        >= recognition.configuration.samples(milliseconds: noInputTimeoutMs)
    {
      ended = RecognitionStatus(
        code: 404,
        message: "No speech",
        details: "no speech within no_input_timeout_ms (\(noInputTimeoutMs) ms)"
      )
      return
    }
    // recognition_timeout_ms: from the start of speech (or the timers) to the latest speech.
    let recognitionTimeoutMs = recognition.configuration.recognitionTimeoutMs
    if recognitionTimeoutMs > 0, recognition.endpointer.inSpeech,
      recognition.awaitingFinal == nil || recognition.awaitingFinal == .utteranceEnded
    {
      let start = max(recognition.endpointer.utteranceOnset, timersStart)
      if recognition.endpointer.lastSpeechEnd - start
        >= recognition.configuration.samples(milliseconds: recognitionTimeoutMs)
      {
        recognition.awaitingFinal = .recognitionTimeout
        recognition.pendingFinals.append(
          PendingFinal(
            onset: recognition.utteranceOnset ?? recognition.endpointer.utteranceOnset,
            end: recognition.endpointer.lastSpeechEnd,
            requestedAt: messageStart
          )
        )
        recognition.utteranceOnset = nil
        actions.append(.engineEndUtterance(end: recognition.endpointer.lastSpeechEnd))
      }
    }
  }

  /// The engine returned a partial hypothesis, computed from the samples of the
  /// ``Action/engineAudio(position:)`` at `position`.
  ///
  /// An engine answers in order, so a partial that arrives while finals are pending belongs to
  /// the oldest utterance still waiting for its final (it ended, its final has not come back);
  /// otherwise to the utterance in progress. One computed from the audio that ended its
  /// utterance (or later audio) is dropped: the final that follows supersedes it.
  public mutating func enginePartial(
    _ hypothesis: EngineHypothesis,
    position: Int,
    into actions: inout [Action]
  ) {
    guard let box = takeRecognition() else { return }
    let result = Self.partialResult(hypothesis, position: position, recognition: &box.recognition)
    state = .recognizing(box)
    if let result { actions.append(.send(RecognitionResponse(.result(result)))) }
  }

  /// The partial result to send for `hypothesis`, if any.
  private static func partialResult(
    _ hypothesis: EngineHypothesis,
    position: Int,
    recognition: inout Recognition
  ) -> RecognitionResult? {
    let onset: Int
    let end: Int
    if let pending = recognition.pendingFinals.first {
      guard position < pending.requestedAt else { return nil }
      onset = pending.onset
      end = pending.end
    } else if let current = recognition.utteranceOnset {
      // The end of the audio the partial covers: so far.
      onset = current
      end = recognition.endpointer.position
    } else {
      return nil
    }
    let resultType = recognition.configuration.resultType
    switch resultType {
    case .partial:
      break
    case .immutablePartial:
      // Immutable partials only grow: a partial that revises what was sent is held back.
      if let last = recognition.lastPartialText, !hypothesis.text.hasPrefix(last) { return nil }
    default:
      return nil
    }
    guard hypothesis.text != recognition.lastPartialText else { return nil }
    recognition.lastPartialText = hypothesis.text
    return RecognitionResultBuilder.result(
      [hypothesis],
      type: resultType,
      onset: onset,
      end: end,
      configuration: recognition.configuration,
      statistics: recognition.endpointer.statistics,
      notices: [],
      final: false
    )
  }

  /// The engine returned the final hypotheses of the utterance that ended at `end`.
  public mutating func engineFinal(
    _ hypotheses: [EngineHypothesis],
    end: Int,
    into actions: inout [Action]
  ) {
    // The recognition ended while the engine worked (e.g. it failed on the same message): a race.
    if case .finished = state { return }
    guard let box = takeRecognition() else {
      assertionFailure("engineFinal without engineEndUtterance")
      return
    }
    let answered = Self.finalResult(hypotheses, end: end, recognition: &box.recognition)
    let single = box.recognition.configuration.mode == .single
    let recognitionTimeoutMs = box.recognition.configuration.recognitionTimeoutMs
    state = .recognizing(box)
    guard let (result, then) = answered else {
      assertionFailure("engineFinal without engineEndUtterance")
      return
    }
    actions.append(.send(RecognitionResponse(.result(result))))
    switch then {
    case nil:
      // Another final asked for follows: what is pending comes after the last of them.
      break
    case .recognitionTimeout?:
      self.end(
        413,
        "Too much speech",
        "speech lasted longer than recognition_timeout_ms (\(recognitionTimeoutMs) ms)",
        into: &actions
      )
    case .endOfRequests?:
      self.end(200, "Success", "", into: &actions)
    case .utteranceEnded?:
      if single { self.end(200, "Success", "", into: &actions) }
    }
  }

  /// The final result of the oldest utterance whose final was asked for, and, if it was the last
  /// of them, why it was asked for (what follows it); nil if none was asked for.
  private static func finalResult(
    _ hypotheses: [EngineHypothesis],
    end: Int,
    recognition: inout Recognition
  ) -> (RecognitionResult, then: PendingEnd?)? {
    guard let pending = recognition.awaitingFinal, !recognition.pendingFinals.isEmpty else {
      return nil
    }
    let utterance = recognition.pendingFinals.removeFirst()
    var best = hypotheses
    if best.isEmpty {
      // Heard something, recognized nothing acceptable: a rejected hypothesis (seed 004: 200 is
      // returned for accepted and rejected results alike).
      best = [EngineHypothesis(words: [], text: "", confidence: 0, rejected: true)]
    }
    let result = RecognitionResultBuilder.result(
      best,
      type: .final,
      onset: utterance.onset,
      end: end,
      configuration: recognition.configuration,
      statistics: recognition.endpointer.statistics,
      notices: recognition.notices,
      final: true
    )
    recognition.notices = []
    recognition.finishedUtterances += 1
    guard recognition.pendingFinals.isEmpty else { return (result, nil) }
    recognition.awaitingFinal = nil
    return (result, pending)
  }

  /// The engine failed: 500.
  public mutating func engineFailed(_ error: EngineError, into actions: inout [Action]) {
    guard case .recognizing = state else { return }
    end(500, "Internal server error", "the recognizer failed: \(error.message)", into: &actions)
  }

  /// The client half-closed its stream.
  public mutating func endOfRequests(into actions: inout [Action]) {
    switch state {
    case .awaitingInit:
      end(
        400,
        "Bad request",
        "recognition_init_message: the stream ended before an init message",
        into: &actions
      )
    case .acquiring:
      // Replayed after the 100, after the audio before it.
      enqueue(.endOfRequests, into: &actions)
    case .recognizing:
      guard let box = takeRecognition() else { return }
      let outcome = Self.endOfRequests(recognition: &box.recognition)
      state = .recognizing(box)
      switch outcome {
      case .finalRequested(let end): actions.append(.engineEndUtterance(end: end))
      case .waiting: break
      case .success: end(200, "Success", "", into: &actions)
      case .noResult: end(204, "No result", "the audio held no utterance", into: &actions)
      }
    case .finished, .modifying:
      break
    }
  }

  /// What the end of requests does to a running recognition.
  private enum EndOfRequestsOutcome {
    /// The open utterance ends at `end`: its final is asked for; 200 follows.
    case finalRequested(end: Int)
    /// The recognition is already ending, or a final is on its way (200 follows it).
    case waiting
    /// Utterances had their finals: 200.
    case success
    /// No utterance at all: 204.
    case noResult
  }

  private static func endOfRequests(recognition: inout Recognition) -> EndOfRequestsOutcome {
    if recognition.awaitingFinal == .recognitionTimeout
      || recognition.awaitingFinal == .endOfRequests
    {
      // The recognition is already ending.
      return .waiting
    }
    let disabled = recognition.configuration.mode == .disabled
    let inUtterance = disabled ? recognition.heardSpeech : recognition.endpointer.inSpeech
    if inUtterance, let onset = recognition.utteranceOnset {
      recognition.awaitingFinal = .endOfRequests
      let end = disabled ? recognition.endpointer.samplesSeen : recognition.endpointer.lastSpeechEnd
      recognition.pendingFinals.append(
        PendingFinal(onset: onset, end: end, requestedAt: recognition.endpointer.samplesSeen)
      )
      recognition.utteranceOnset = nil
      return .finalRequested(end: end)
    }
    if recognition.awaitingFinal == .utteranceEnded {
      // A final result is on its way; the recognition ends (200) after it.
      recognition.awaitingFinal = .endOfRequests
      return .waiting
    }
    return recognition.finishedUtterances > 0 ? .success : .noResult
  }

  /// No init message arrived within the server's pre-init timeout of the stream's start: 408
  /// (seed 004: "excessive stall in sending audio data"), so a client that opens a stream and
  /// sends nothing cannot hold it.
  public mutating func initTimeout(milliseconds: Int, into actions: inout [Action]) {
    guard case .awaitingInit = state else { return }
    end(
      408,
      "Audio timeout",
      "recognition_init_message: none arrived within \(milliseconds) ms of the stream's start",
      into: &actions
    )
  }

  /// No audio message arrived for the server's idle timeout: 408.
  public mutating func idleTimeout(milliseconds: Int, into actions: inout [Action]) {
    guard case .recognizing = state else { return }
    end(408, "Audio timeout", "no audio for \(milliseconds) ms", into: &actions)
  }

  /// The server is shutting down: 512.
  public mutating func shutdown(into actions: inout [Action]) {
    switch state {
    case .awaitingInit, .acquiring, .recognizing:
      end(
        RecognitionStatus(code: 512, message: "Shutdown", details: "the server is shutting down"),
        pushback: Self.shutdownPushbackMilliseconds,
        into: &actions
      )
    case .finished, .modifying:
      break
    }
  }

  /// The client cancelled the RPC (or the connection went): no status, the engine goes back.
  public mutating func cancel(into actions: inout [Action]) {
    switch state {
    case .recognizing:
      state = .finished
      actions.append(.stopIdleTimer)
      actions.append(.releaseEngine)
    case .acquiring:
      state = .finished
      actions.append(.releaseEngine)
    case .awaitingInit:
      state = .finished
    case .finished, .modifying:
      break
    }
  }

  // MARK: Payloads, changed in place

  /// Takes the running recognition out of `state`, which holds `.modifying` until the caller
  /// puts it back, and makes it the only reference to its box (copying the box of a machine
  /// that was copied): the caller then changes the recognition in place, and its arrays are
  /// not copied on write. Nil unless recognizing.
  private mutating func takeRecognition() -> RecognitionBox? {
    guard case .recognizing(var box) = state else { return nil }
    state = .modifying
    if !isKnownUniquelyReferenced(&box) { box = RecognitionBox(box.recognition) }
    return box
  }

  /// Queues `item` while acquiring (taken out of `state` and back as the recognition is), and
  /// pauses the client's data once the queued audio passes the limit.
  private mutating func enqueue(_ item: Queued, into actions: inout [Action]) {
    guard case .acquiring(var acquisition) = state else { return }
    state = .modifying
    switch item {
    case .audio(let bytes):
      acquisition.queue.append(item)
      acquisition.queuedBytes += bytes.readableBytes
    case .startTimers:
      // Once is enough: a second would find the timers running.
      if !acquisition.startTimersQueued { acquisition.queue.append(item) }
      acquisition.startTimersQueued = true
    case .secondInit, .endOfRequests:
      acquisition.queue.append(item)
    }
    let pause = acquisition.queuedBytes > maxQueuedAudioBytes && !acquisition.pausedRequests
    if pause { acquisition.pausedRequests = true }
    state = .acquiring(acquisition)
    if pause { actions.append(.pauseRequests) }
  }

  private mutating func end(
    _ code: UInt32,
    _ message: String,
    _ details: String,
    into actions: inout [Action]
  ) {
    end(RecognitionStatus(code: code, message: message, details: details), into: &actions)
  }

  /// Sends `status` and ends the RPC (with `pushback` in its trailers); an engine held (or
  /// being acquired) goes back.
  private mutating func end(
    _ status: RecognitionStatus,
    pushback: Int? = nil,
    into actions: inout [Action]
  ) {
    let wasAcquiring: Bool
    let wasRecognizing: Bool
    switch state {
    case .finished, .modifying: return
    case .awaitingInit: (wasAcquiring, wasRecognizing) = (false, false)
    case .acquiring: (wasAcquiring, wasRecognizing) = (true, false)
    case .recognizing: (wasAcquiring, wasRecognizing) = (false, true)
    }
    state = .finished
    finalStatus = status
    actions.append(.send(RecognitionResponse(.status(status))))
    actions.append(.finishCall(pushbackMilliseconds: pushback))
    if wasRecognizing { actions.append(.stopIdleTimer) }
    if wasAcquiring || wasRecognizing { actions.append(.releaseEngine) }
  }
}
