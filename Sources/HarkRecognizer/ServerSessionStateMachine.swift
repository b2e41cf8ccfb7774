internal import HarkAudio
public import HarkProto

/// The Recognize protocol as a server enforces it, for one RPC: the init, the 100 Continue,
/// audio and timers, utterances and results, and every terminal status.
///
/// ```
///                      init ✓ (validated, engine acquired)
///   awaitingInit ──────────────────────────────────────► recognizing ───────────► finished(status)
///     │  audio first ─────────► 400 recognition_init_message   │ timers: stalled ─start_timers─► running (100)
///     │  start_timers first ──► 410                            │ per utterance: waiting → inSpeech → trailing silence
///     │  end of requests ─────► 400                            │
///     │  no init in time ─────► 408                            │
///     │  bad init ────────────► 400 <field>                    │ second init ─────────────────► 400
///     │  pool busy / rate / auth ► 409 / 429 / 401·403         │ no speech for no_input_timeout ► 404
///     │  resource failed ─────► 502                            │ speech past recognition_timeout ► final, 413
///     └─ shutdown ────────────► 512                            │ no audio message for idle timeout ► 408
///                                                              │ engine failed ───────────────► 500
///                                                              │ shutdown ────────────────────► 512
///                                                              │ SINGLE: end of the utterance ► final, 200
///                                                              │ end of requests: an utterance → final, 200;
///                                                              │                  none at all → 204
///                                                              └ client reset ────────────────► (no status)
/// ```
///
/// Timers count audio samples, never wall time, so audio faster than real time behaves like
/// real-time audio; only the idle and pre-init timeouts are wall time, and the driver reports
/// them as events (its idle clock stops while it withholds the client's flow-control window, so
/// that only a client that really stops sending gets 408).
/// They start with the 100 unless `stall_timers` is set, then with `start_timers_message` (which
/// is answered with another 100). Stalling holds the no-input and recognition timers only.
///
/// Bad transitions come in three kinds: a driver that reports engine results nobody asked for
/// is a caller bug (ignored, with an assertion in debug builds); what the client sends out of
/// order is a protocol violation answered with its status; and events after the end (audio
/// after SINGLE's result, a reset after the status) are races, ignored.
public struct ServerSessionStateMachine: Sendable {
  /// What the driver does next, in order.
  public enum Action: Sendable, Equatable {
    /// Validate the recognition with the server's policy (authorization, rate limit, engine
    /// pool) and prepare an engine with `configuration`; then call ``engineReady(notices:into:)``
    /// or ``rejectInit(_:into:)``.
    case acquireEngine
    /// Send this response.
    case send(RecognitionResponse)
    /// End the RPC (gRPC OK): the status was the last response.
    case finishCall
    /// Give the engine this message's samples (which start at `position`). A partial hypothesis
    /// it returns is reported with ``enginePartial(_:into:)`` after the message's other actions
    /// (so that a StartOfSpeech among them goes out first).
    case engineAudio(position: Int)
    /// Tell the engine an utterance began at `onset`.
    case engineBeginUtterance(onset: Int)
    /// Tell the engine the utterance ended at `end`, and report its hypotheses with
    /// ``engineFinal(_:into:)`` (or ``engineFailed(_:into:)``).
    case engineEndUtterance(end: Int)
    /// The recognition is over: reset the engine and return it to the pool.
    case releaseEngine
    /// (Re)start the idle timer: no audio message for that long is 408 (``idleTimeout(milliseconds:into:)``).
    case restartIdleTimer
    /// Stop the idle timer.
    case stopIdleTimer
  }

  enum State: Sendable {
    case awaitingInit
    /// The init was valid (its configuration is in `accepted`); the driver is acquiring an
    /// engine.
    case acquiring
    /// The recognition runs; its details are in `recognition` (kept outside the enum so that
    /// audio updates them in place, without copying them per message).
    case recognizing
    case finished
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
    /// The onsets of the utterances whose final results were requested and have not come back,
    /// oldest first: one audio message can end an utterance and start (or end) the next before
    /// the driver reports the first final.
    var endedOnsets: [Int] = []
    /// Where each of those utterances ended (the same order).
    var endedEnds: [Int] = []
    /// Utterances finished with a final result.
    var finishedUtterances = 0
    /// A final result was requested of the engine and has not come back yet; what follows the
    /// last of them.
    var awaitingFinal: PendingEnd?
    /// The text of the last partial result sent for this utterance.
    var lastPartialText: String?
    /// Notices of the engine to send with the next result.
    var notices: [EngineNotice] = []
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

  private var state: State = .awaitingInit
  /// The running recognition (state `recognizing`).
  private var recognition: Recognition?
  /// The configuration of an accepted init (state `acquiring`). Payloads live outside `state`,
  /// so that asking which state the machine is in copies nothing.
  private var accepted: RecognitionConfiguration?
  /// The status the recognition ended with, once it ended.
  public private(set) var finalStatus: RecognitionStatus?

  public init() {}

  /// The configuration of the recognition, once the init was accepted.
  public var configuration: RecognitionConfiguration? {
    switch state {
    case .acquiring: accepted
    case .recognizing: recognition?.configuration
    case .awaitingInit, .finished: nil
    }
  }

  // The two questions a driver asks for every message have `mutating` getters though they change
  // nothing: a non-mutating getter called on a class's or actor's stored machine copies the whole
  // machine (some 900 bytes) first.

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
    case .audio?:
      switch state {
      case .awaitingInit:
        end(
          400,
          "Bad request",
          "recognition_init_message must be the first message, before any audio",
          into: &actions
        )
      case .acquiring, .recognizing, .finished:
        // Audio while acquiring is held by the driver; while recognizing it goes to audio(_:).
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
        accepted = try RecognitionConfiguration(validating: message)
        state = .acquiring
        actions.append(.acquireEngine)
      } catch {
        end(400, "Bad request", "\(error)", into: &actions)
      }
    case .acquiring, .recognizing:
      end(
        400,
        "Bad request",
        "recognition_init_message: a recognition accepts one init message",
        into: &actions
      )
    case .finished:
      break
    }
  }

  /// The driver could not start the recognition: 401, 403, 409, 429, 400 or 502.
  public mutating func rejectInit(_ status: RecognitionStatus, into actions: inout [Action]) {
    guard case .acquiring = state else { return }
    end(status.code, status.message, status.details, into: &actions)
  }

  /// The engine is ready: the recognition starts (100 Continue).
  public mutating func engineReady(notices: [EngineNotice] = [], into actions: inout [Action]) {
    guard case .acquiring = state, let configuration = accepted else {
      assertionFailure("engineReady without acquireEngine")
      return
    }
    accepted = nil
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
    if !configuration.stallTimers { recognition.timersStart = 0 }
    if configuration.mode == .disabled {
      // No endpointing: the whole stream is one utterance for the engine.
      recognition.utteranceOnset = 0
      actions.append(.engineBeginUtterance(onset: 0))
    }
    self.recognition = recognition
    state = .recognizing
    actions.append(
      .send(.status(code: 100, message: "Continue", details: Self.continueDetails(configuration)))
    )
    actions.append(.restartIdleTimer)
  }

  /// The details of every 100 Continue: the stream the recognition runs on.
  public static func continueDetails(_ configuration: RecognitionConfiguration) -> String {
    "recognition started on \(configuration.audioFormat.mediaType) stream"
  }

  private mutating func startTimers(into actions: inout [Action]) {
    switch state {
    case .awaitingInit, .acquiring:
      // Seed 004: a start_timers_message while no recognition is in progress is 410.
      end(
        410,
        "Not recognizing",
        "start_timers_message arrived before a recognition started",
        into: &actions
      )
    case .recognizing:
      // Timers already running: the message changes nothing (DESIGN rule 2).
      guard recognition!.timersStart == nil else { return }
      recognition!.timersStart = recognition!.endpointer.position
      actions.append(.send(.status(code: 100, message: "Continue", details: "timers started")))
    case .finished:
      break
    }
  }

  /// The driver decoded an audio message into `samples`; run endpointing and the timers on them.
  public mutating func audio(_ samples: UnsafeBufferPointer<Int16>, into actions: inout [Action]) {
    guard case .recognizing = state else { return }
    actions.append(.restartIdleTimer)
    // Only through an inout access: reading `recognition!.field` copies all of the recognition.
    let ended = Self.audio(samples, recognition: &recognition!, into: &actions)
    if let ended { end(ended.code, ended.message, ended.details, into: &actions) }
  }

  private static func audio(
    _ samples: UnsafeBufferPointer<Int16>,
    recognition: inout Recognition,
    into actions: inout [Action]
  ) -> (code: UInt32, message: String, details: String)? {
    if recognition.awaitingFinal == .endOfRequests
      || recognition.awaitingFinal == .recognitionTimeout
    {
      // The recognition is ending; audio no longer matters.
      return nil
    }
    // The stream position of these samples: every sample before them, not just whole frames (a
    // message need not be a whole number of 10 ms frames).
    actions.append(.engineAudio(position: recognition.endpointer.samplesSeen))
    return endpoint(samples, recognition: &recognition, into: &actions)
  }

  /// Endpointing and the timers over `samples`, updating `recognition` in place; the status to
  /// end with, if a timer expired.
  private static func endpoint(
    _ samples: UnsafeBufferPointer<Int16>,
    recognition: inout Recognition,
    into actions: inout [Action]
  ) -> (code: UInt32, message: String, details: String)? {
    var ended: (code: UInt32, message: String, details: String)?
    // Frame by frame, the endpointer changed in place (no copy of it, no closure).
    var index = 0
    while index < samples.count {
      let step = recognition.endpointer.feedFrame(UnsafeBufferPointer(rebasing: samples[index...]))
      index += step.taken
      guard step.completed, ended == nil, recognition.awaitingFinal != .recognitionTimeout else {
        continue
      }
      Self.frame(&recognition, event: step.event, ended: &ended, into: &actions)
    }
    return ended
  }

  /// One 10 ms frame of endpointing: utterance boundaries and the timers.
  private static func frame(
    _ recognition: inout Recognition,
    event: Endpointer.Event?,
    ended: inout (code: UInt32, message: String, details: String)?,
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
        recognition.endedOnsets.append(onset)
        recognition.endedEnds.append(end)
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
      ended = (
        404, "No speech",
        "no speech within no_input_timeout_ms (\(noInputTimeoutMs) ms)"
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
        recognition.endedOnsets.append(
          recognition.utteranceOnset ?? recognition.endpointer.utteranceOnset
        )
        recognition.endedEnds.append(recognition.endpointer.lastSpeechEnd)
        recognition.utteranceOnset = nil
        actions.append(.engineEndUtterance(end: recognition.endpointer.lastSpeechEnd))
      }
    }
  }

  /// The engine returned a partial hypothesis of the current utterance.
  ///
  /// An engine on a worker thread answers in order, so a partial that arrives while finals are
  /// pending belongs to the oldest utterance still waiting for its final (it ended, its final has
  /// not come back); otherwise to the utterance in progress.
  public mutating func enginePartial(_ hypothesis: EngineHypothesis, into actions: inout [Action]) {
    guard case .recognizing = state, var recognition,
      let onset = recognition.endedOnsets.first ?? recognition.utteranceOnset
    else {
      return
    }
    // The end of the audio the partial covers: so far, or where its utterance ended.
    let end = recognition.endedEnds.first ?? recognition.endpointer.position
    let configuration = recognition.configuration
    switch configuration.resultType {
    case .partial:
      break
    case .immutablePartial:
      // Immutable partials only grow: a partial that revises what was sent is held back.
      if let last = recognition.lastPartialText, !hypothesis.text.hasPrefix(last) { return }
    default:
      return
    }
    guard hypothesis.text != recognition.lastPartialText else { return }
    recognition.lastPartialText = hypothesis.text
    let result = Self.result(
      [hypothesis],
      type: configuration.resultType,
      onset: onset,
      end: end,
      recognition: recognition,
      final: false
    )
    self.recognition = recognition
    actions.append(.send(RecognitionResponse(.result(result))))
  }

  /// The engine returned the final hypotheses of the utterance that ended.
  public mutating func engineFinal(
    _ hypotheses: [EngineHypothesis],
    end: Int,
    into actions: inout [Action]
  ) {
    // The recognition ended while the engine worked (e.g. it failed on the same message): a race.
    if case .finished = state { return }
    guard case .recognizing = state, var recognition, let pending = recognition.awaitingFinal,
      !recognition.endedOnsets.isEmpty
    else {
      assertionFailure("engineFinal without engineEndUtterance")
      return
    }
    let onset = recognition.endedOnsets.removeFirst()
    recognition.endedEnds.removeFirst()
    let configuration = recognition.configuration
    var best = hypotheses
    if best.isEmpty {
      // Heard something, recognized nothing acceptable: a rejected hypothesis (seed 004: 200 is
      // returned for accepted and rejected results alike).
      best = [EngineHypothesis(words: [], text: "", confidence: 0, rejected: true)]
    }
    let result = Self.result(
      best,
      type: .final,
      onset: onset,
      end: end,
      recognition: recognition,
      final: true
    )
    recognition.notices = []
    if recognition.endedOnsets.isEmpty { recognition.awaitingFinal = nil }
    recognition.finishedUtterances += 1
    self.recognition = recognition
    actions.append(.send(RecognitionResponse(.result(result))))
    // What is pending follows the last final asked for, not an earlier one.
    guard recognition.endedOnsets.isEmpty else { return }
    switch pending {
    case .recognitionTimeout:
      self.end(
        413,
        "Too much speech",
        "speech lasted longer than recognition_timeout_ms (\(configuration.recognitionTimeoutMs) ms)",
        into: &actions
      )
    case .endOfRequests:
      self.end(200, "Success", "", into: &actions)
    case .utteranceEnded:
      if configuration.mode == .single { self.end(200, "Success", "", into: &actions) }
    }
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
      // The driver answers the init first; the end is handled after engineReady.
      break
    case .recognizing:
      var recognition = recognition!
      if recognition.awaitingFinal == .recognitionTimeout
        || recognition.awaitingFinal == .endOfRequests
      {
        // The recognition is already ending.
        return
      }
      let endpointer = recognition.endpointer
      let inUtterance =
        recognition.configuration.mode == .disabled ? recognition.heardSpeech : endpointer.inSpeech
      if inUtterance, let onset = recognition.utteranceOnset {
        recognition.awaitingFinal = .endOfRequests
        let end =
          recognition.configuration.mode == .disabled
          ? endpointer.samplesSeen : endpointer.lastSpeechEnd
        recognition.endedOnsets.append(onset)
        recognition.endedEnds.append(end)
        recognition.utteranceOnset = nil
        self.recognition = recognition
        actions.append(.engineEndUtterance(end: end))
      } else if recognition.awaitingFinal == .utteranceEnded {
        // A final result is on its way; the recognition ends (200) after it.
        recognition.awaitingFinal = .endOfRequests
        self.recognition = recognition
      } else if recognition.finishedUtterances > 0 {
        end(200, "Success", "", into: &actions)
      } else {
        end(204, "No result", "the audio held no utterance", into: &actions)
      }
    case .finished:
      break
    }
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
      end(512, "Shutdown", "the server is shutting down", into: &actions)
    case .finished:
      break
    }
  }

  /// The client cancelled the RPC (or the connection went): no status, the engine goes back.
  public mutating func cancel(into actions: inout [Action]) {
    switch state {
    case .recognizing:
      state = .finished
      recognition = nil
      actions.append(.stopIdleTimer)
      actions.append(.releaseEngine)
    case .acquiring:
      state = .finished
      actions.append(.releaseEngine)
    case .awaitingInit:
      state = .finished
    case .finished:
      break
    }
  }

  private mutating func end(
    _ code: UInt32,
    _ message: String,
    _ details: String,
    into actions: inout [Action]
  ) {
    let hadEngine: Bool
    switch state {
    case .finished: return
    case .awaitingInit: hadEngine = false
    case .acquiring: hadEngine = false
    case .recognizing: hadEngine = true
    }
    state = .finished
    recognition = nil
    accepted = nil
    let status = RecognitionStatus(code: code, message: message, details: details)
    finalStatus = status
    actions.append(.send(RecognitionResponse(.status(status))))
    actions.append(.finishCall)
    if hadEngine {
      actions.append(.stopIdleTimer)
      actions.append(.releaseEngine)
    }
  }

  // MARK: Results

  static func result(
    _ hypotheses: [EngineHypothesis],
    type: ResultType,
    onset: Int,
    end: Int,
    recognition: Recognition,
    final: Bool
  ) -> RecognitionResult {
    let configuration = recognition.configuration
    var result = RecognitionResult()
    result.resultType = type
    result.absStartMs = configuration.milliseconds(samples: onset)
    result.absEndMs = configuration.milliseconds(samples: max(end, onset))
    result.hypotheses = hypotheses.prefix(configuration.maxHypotheses).map { hypothesis in
      var converted = Hypothesis()
      converted.confidence = hypothesis.confidence
      converted.rejected = final && hypothesis.rejected
      converted.formattedText = hypothesis.text
      converted.minimallyFormattedText = hypothesis.text
      converted.grammarID = hypothesis.grammarID
      var weighted: Float = 0
      var duration = 0
      converted.words = hypothesis.words.map { word in
        let length = max(word.endSample - word.startSample, 1)
        weighted += word.confidence * Float(length)
        duration += length
        var converted = Word(
          text: word.text,
          confidence: word.confidence,
          startMs: configuration.milliseconds(samples: word.startSample),
          endMs: configuration.milliseconds(samples: word.endSample)
        )
        converted.grammarRule = word.grammarRule
        return converted
      }
      converted.averageConfidence =
        duration > 0 ? weighted / Float(duration) : hypothesis.confidence
      return converted
    }
    // silence_after_word_ms: the gap to the next word.
    result.hypotheses = result.hypotheses.map { hypothesis in
      var hypothesis = hypothesis
      for index in hypothesis.words.indices.dropLast() {
        let gap = Int(hypothesis.words[index + 1].startMs) - Int(hypothesis.words[index].endMs)
        hypothesis.words[index].silenceAfterWordMs = UInt32(max(gap, 0))
      }
      return hypothesis
    }
    if final {
      let statistics = recognition.endpointer.statistics
      var info = UtteranceInfo()
      info.durationMs = result.absEndMs - result.absStartMs
      info.clippingDurationMs = configuration.milliseconds(samples: statistics.clippedSamples)
      var dsp = Dsp()
      dsp.snrEstimateDb = statistics.snrEstimate
      dsp.level = statistics.meanEnergy
      dsp.numChannels = 1
      dsp.initialSilenceMs = configuration.milliseconds(samples: onset)
      dsp.initialEnergy = statistics.initialEnergy
      dsp.finalEnergy = statistics.finalEnergy
      dsp.meanEnergy = statistics.meanEnergy
      info.dsp = dsp
      result.utteranceInfo = info
      var dataPack = DataPack()
      dataPack.language = configuration.language
      dataPack.topic = configuration.topic
      result.dataPack = dataPack
      result.notifications = recognition.notices.map { notice in
        var notification = Notification()
        notification.code = notice.code
        notification.severity = .warning
        var message = LocalizedMessage()
        message.locale = "en-US"
        message.message = notice.message
        notification.message = message
        return notification
      }
    }
    return result
  }
}
