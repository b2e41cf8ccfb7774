import CHarkPrefetch
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore

/// One simulated call: streams its clip frame by frame when its loop's ring says, through a
/// ``ClientSession`` (the client library's core), and records what the session reports into its
/// loop's metrics.
///
/// Lives on its loop's event loop; the transport calls the session there directly. No task, no
/// actor hop and no allocation per frame beyond the frame's encoding.
final class LoadSession: ClientSessionDelegate, RingElement {
  /// The loop outlives its sessions (the generator holds it until every connection is closed),
  /// and a safe unowned reference would cost an atomic retain at each of the many uses a frame
  /// makes of it.
  unowned(unsafe) let loop: LoadLoop
  let lane: LoadLoop.Lane
  private let clip: ByteBuffer
  private let frameBytes: Int
  private let bytesPerMillisecond: Double
  private let periodNanoseconds: UInt64
  /// Set once in `start`; the session holds this object (its delegate) until it ends.
  private var session: ClientSession?
  /// `session`'s address, for the ring's prefetch.
  private var sessionAddress: ClientSessionAddress?
  /// When the input being handled happened.
  private var now: UInt64 = 0
  private var offset = 0
  /// Frames taken by the state machine (sent, or held before the 100).
  private var frameIndex = 0
  /// When the first frame was due, and when the next one is.
  private var firstDue: UInt64 = 0
  private(set) var nextDue: UInt64 = 0
  private var initSentAt: UInt64 = 0
  private var halfClosedAt: UInt64?
  private var onsetMilliseconds: UInt32?
  private var awaitingFirstPartial = false
  private var timersTask: Scheduled<Void>?
  private(set) var ended = false
  /// The last frame went out, or the machine takes no more audio.
  private var audioSent = false
  /// In the loop's list of sessions visited at every tick.
  private var isBehind = false
  /// Cancelled by the run at its end (not a failure).
  var cancelledByRun = false
  /// Ended with a status of 400 or more, or a transport error.
  private(set) var failed = false
  /// Refused by the server for its capacity or rate (409, 429): not a failure.
  private(set) var refused = false
  /// Retried at least once before its 100.
  private var retried = false
  /// When the latest frames went out, by frame index modulo its size: in the session's own
  /// storage, so that recording a frame touches one cache line rather than an array's header
  /// and element (at thousands of sessions, each is a cache miss). Last, so that the fields a
  /// frame uses share the object's first lines.
  private var sendTimes = SendTimes(repeating: 0)

  typealias SendTimes = InlineArray<128, UInt64>
  static let sendTimeHistory = SendTimes.count

  init(loop: LoadLoop, lane: LoadLoop.Lane, clip: ByteBuffer, frameBytes: Int, bytesPerSecond: Int)
  {
    self.loop = loop
    self.lane = lane
    self.clip = clip
    self.frameBytes = frameBytes
    self.bytesPerMillisecond = Double(bytesPerSecond) / 1000
    self.periodNanoseconds = loop.periodNanoseconds
  }

  // MARK: Driving

  /// Opens the call and sends the init; the first frame is due at `firstDue`.
  func start(
    initMessage: RecognitionInitMessage,
    metadata: GRPCMetadata,
    now: UInt64,
    firstDue: UInt64
  ) {
    initSentAt = now
    self.firstDue = firstDue
    nextDue = firstDue
    loop.metrics.second.counters.sessionsStarted += 1
    self.now = now
    let session = ClientSession(
      connection: lane.connection,
      retryPolicy: loop.retryPolicy,
      resumePolicy: loop.configuration.resumePolicy,
      reconnect: loop.retryConnection(for: lane),
      delegate: self
    )
    self.session = session
    sessionAddress = ClientSessionAddress(session)
    session.start(initMessage, metadata: metadata)
    if !ended { loop.ring.insert(self, due: firstDue) }
  }

  /// The ring's visit at this session's phase: sends the frame that is due; false once the
  /// session has no more frames to send (the ring lets it go).
  func ringVisit(now: UInt64) -> Bool {
    guard !ended, !audioSent else { return false }
    // Caught up by the loop meanwhile (the frame of this phase went out already), or visited
    // early after a stall. Half a tick covers the ring's drift from a period it does not divide.
    if isBehind || nextDue > now + loop.tickNanoseconds / 2 { return true }
    if sendDueFrame(now: now) {
      isBehind = true
      loop.behind.append(self)
    }
    return !ended && !audioSent
  }

  /// The loop's visit at every tick while the session is behind; false once it is back on its
  /// phase (or has nothing more to send).
  func catchUp(now: UInt64) -> Bool {
    if !ended && !audioSent && nextDue <= now && sendDueFrame(now: now) { return true }
    isBehind = false
    return false
  }

  /// Sends the frame that is due, if the call takes it; returns whether the session needs a
  /// visit at every tick: flow control or the prebuffer held the frame, or the next one is due
  /// already.
  private func sendDueFrame(now: UInt64) -> Bool {
    guard let session else { return false }
    self.now = now
    // HTTP/2 flow control holds the call: the frame waits (and is late when it goes).
    if !session.isWritable { return true }
    let length = min(frameBytes, clip.readableBytes - offset)
    let frame = clip.getSlice(at: clip.readerIndex + offset, length: length)!
    let last = offset + length >= clip.readableBytes
    switch session.audio(frame, last: last) {
    case .taken:
      let lateness = now &- nextDue
      let metrics = loop.metrics
      metrics.frameLateness.record(nanoseconds: now >= nextDue ? lateness : 0)
      if now >= nextDue && lateness > 20_000_000 { metrics.second.counters.lateFrames += 1 }
      sendTimes[frameIndex % Self.sendTimeHistory] = now
      frameIndex += 1
      offset += length
      nextDue += periodNanoseconds
      if last { audioSent = true }
      return !ended && !last && nextDue <= now
    case .wait:
      // The prebuffer before the 100 is full: try again next tick.
      return true
    case .stop:
      audioSent = true
      return false
    }
  }

  /// The ring's prefetch (see ``RingElement``): the client session, and the line of
  /// `sendTimes` the next frame writes; then the session's stream.
  func prefetch(stage: Int) {
    guard let sessionAddress else { return }
    if stage == 1 {
      sessionAddress.prefetchSession()
      withUnsafeMutablePointer(to: &sendTimes) {
        hark_prefetch(UnsafeRawPointer($0) + 8 * (frameIndex % Self.sendTimeHistory))
      }
    } else {
      sessionAddress.prefetchStream()
    }
  }

  /// Cancels the call (the run is over).
  func cancel(now: UInt64) {
    guard !ended else { return }
    cancelledByRun = true
    self.now = now
    session?.cancel()
  }

  // MARK: ClientSessionDelegate

  func clientSession(willSend request: RecognitionRequest) {
    let metrics = loop.metrics
    if case .audio(let bytes)? = request.request {
      metrics.second.counters.audioMessages += 1
      metrics.second.counters.audioBytes += bytes.readableBytes
      metrics.second.counters.audioMilliseconds += Int(
        (Double(bytes.readableBytes) / bytesPerMillisecond).rounded()
      )
    }
    metrics.second.counters.bytesSent += request.encodedSize + 5
  }

  func clientSessionWillHalfClose() {
    halfClosedAt = now
  }

  func clientSession(received response: RecognitionResponse, bytes: Int) {
    now = LoadLoop.now()
    loop.metrics.second.counters.bytesReceived += bytes + 5
  }

  func clientSession(callEnded status: GRPCStatus) {
    now = LoadLoop.now()
  }

  func clientSession(deliver event: RecognitionEvent) {
    deliver(event, now: now)
  }

  func clientSession(finished outcome: RecognitionOutcome) {
    finish(outcome, now: now)
  }

  private func deliver(_ event: RecognitionEvent, now: UInt64) {
    let metrics = loop.metrics
    switch event {
    case .started:
      metrics.second.counters.statuses["100", default: 0] += 1
      metrics.handshake.record(nanoseconds: now - initSentAt)
      metrics.second.handshake.record(nanoseconds: now - initSentAt)
      if let after = loop.startTimersAfterMilliseconds {
        timersTask = loop.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(after))) {
          [self] in
          self.now = LoadLoop.now()
          session?.startTimers()
        }
      }
    case .timersStarted, .informational:
      metrics.second.counters.statuses["100", default: 0] += 1
    case .resumed:
      metrics.second.counters.resumes += 1
    case .retrying(_, _, let reason):
      metrics.second.counters.retries += 1
      if !retried {
        retried = true
        metrics.second.counters.sessionsRetried += 1
      }
      if let status = reason.status {
        metrics.second.counters.statuses["\(status.code)", default: 0] += 1
        metrics.second.counters.count(
          message: "retried: " + Self.message(status.code, status.message)
        )
      } else if let transport = reason.transportStatus {
        metrics.second.counters.count(
          message: "retried: " + Self.message(transport.code, transport.message)
        )
      }
    case .startOfSpeech(let start):
      onsetMilliseconds = start.firstAudioToStartOfSpeechMs
      awaitingFirstPartial = true
      if let sent = sendTime(ofAudioAt: Int(start.firstAudioToStartOfSpeechMs)) {
        metrics.startOfSpeech.record(nanoseconds: now &- sent)
      }
    case .partialResult:
      metrics.second.counters.partialResults += 1
      if awaitingFirstPartial, let onsetMilliseconds,
        let sent = sendTime(ofAudioAt: Int(onsetMilliseconds))
      {
        awaitingFirstPartial = false
        metrics.firstPartial.record(nanoseconds: now &- sent)
      }
    case .finalResult(let result):
      metrics.second.counters.finalResults += 1
      awaitingFirstPartial = false
      // The server decides that the utterance ended once it has the end silence after the
      // speech: the latency runs from when that audio went out.
      let end = Int(result.absEndMs) + loop.endSilenceMilliseconds
      if let sent = sendTime(ofAudioAt: end) {
        metrics.final.record(nanoseconds: now &- sent)
        metrics.second.final.record(nanoseconds: now &- sent)
      }
    case .finished:
      break
    }
  }

  /// A report's message: the code and what the server (or the transport) said, on one line and
  /// at most 200 characters, whatever the peer sent.
  static func message(_ code: some CustomStringConvertible, _ text: String) -> String {
    let line = text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : "\($0)" }
      .joined()
    let trimmed = line.count > 200 ? line.prefix(199) + "…" : Substring(line)
    return trimmed.isEmpty ? "\(code)" : "\(code) \(trimmed)"
  }

  /// When the frame holding the audio at `milliseconds` went out (the last frame sent, if the
  /// audio reaches past it); nil before any frame.
  private func sendTime(ofAudioAt milliseconds: Int) -> UInt64? {
    guard frameIndex > 0 else { return nil }
    let frame = min(
      max(Int(Double(milliseconds) * bytesPerMillisecond) / frameBytes, 0),
      frameIndex - 1
    )
    if frameIndex - frame <= Self.sendTimeHistory { return sendTimes[frame % Self.sendTimeHistory] }
    // Older than the history: when it was due.
    return firstDue + UInt64(frame) * periodNanoseconds
  }

  private func finish(_ outcome: RecognitionOutcome, now: UInt64) {
    guard !ended else { return }
    ended = true
    timersTask?.cancel()
    timersTask = nil
    let metrics = loop.metrics
    metrics.session.record(nanoseconds: now - initSentAt)
    if let halfClosedAt, outcome.status != nil {
      metrics.end.record(nanoseconds: now - halfClosedAt)
    }
    if outcome.kind == .cancelled {
      if cancelledByRun {
        metrics.second.counters.sessionsCancelled += 1
      } else {
        failed = true
        metrics.second.counters.sessionsFailed += 1
        metrics.second.counters.transportErrors["CANCELLED", default: 0] += 1
      }
    } else if let status = outcome.status {
      metrics.second.counters.sessionsCompleted += 1
      metrics.second.counters.statuses["\(status.code)", default: 0] += 1
      if outcome.kind == .conflict || outcome.kind == .tooManyRequests {
        refused = true
        metrics.second.counters.sessionsRefused += 1
        metrics.second.counters.count(message: Self.message(status.code, status.message))
      } else if status.code >= 400 {
        failed = true
        metrics.second.counters.sessionsFailed += 1
        metrics.second.counters.count(message: Self.message(status.code, status.message))
      }
    } else if let transport = outcome.transportStatus {
      failed = true
      metrics.second.counters.sessionsFailed += 1
      metrics.second.counters.transportErrors["\(transport.code)", default: 0] += 1
      metrics.second.counters.count(message: Self.message(transport.code, transport.message))
    }
    loop.sessionEnded(self, now: now)
  }
}
