import CHarkPrefetch
import HarkGRPC
public import HarkGRPCCore
public import HarkProto
public import HarkRecognizer
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// One recognition in progress: its events, and the controls an application has over it.
///
/// Events arrive in order — `started` (the 100 Continue), start of speech, partial and final
/// results — and end with exactly one `finished(outcome)`.
///
/// The recognition runs on its connection's event loop (a ``ClientSession``). The application's
/// audio frames cross into the loop in batches: whatever the producer has ready when the loop
/// takes its turn goes over at once, so a frame costs the producer a lock and no hop, and a
/// producer faster than the loop costs the loop one turn per batch. Events leave the loop in
/// batches too.
public final class Recognition: Sendable {
  /// The recognition's events; the last is `.finished`. Iterate it from one task.
  ///
  /// Up to 1,024 events wait for the application; beyond them the recognition stops taking the
  /// server's responses (HTTP/2 flow control holds the server back) until the application takes
  /// them, so a fast or hostile server cannot fill the client's memory. An application that
  /// awaits ``outcome`` must still iterate the events (the `recognize` that takes `onEvent`
  /// does).
  public let events: RecognitionEvents
  private let driver: RecognitionDriver?
  private let failure: RecognitionOutcome?

  init(
    transport: RecognitionDriver.Transport,
    metadata: GRPCMetadata,
    timeout: TimeAmount?,
    prebufferLimit: Int,
    retryPolicy: RetryPolicy,
    resumePolicy: ResumePolicy?,
    reconnect: ClientSession.Reconnect?,
    drainQueue: AudioDrainQueue,
    trace: (@Sendable (RecognitionTrace) -> Void)?
  ) {
    let channel = RecognitionEventChannel(capacity: RecognitionDriver.eventCapacity)
    events = RecognitionEvents(channel: channel)
    failure = nil
    driver = RecognitionDriver(
      transport: transport,
      metadata: metadata,
      timeout: timeout,
      prebufferLimit: prebufferLimit,
      retryPolicy: retryPolicy,
      resumePolicy: resumePolicy,
      reconnect: reconnect,
      drainQueue: drainQueue,
      events: channel,
      trace: trace
    )
  }

  /// A recognition that could not start (no connection).
  init(failed status: GRPCStatus) {
    let outcome = RecognitionOutcome(transportFailure: status)
    let channel = RecognitionEventChannel()
    channel.send([.finished(outcome)], finish: true)
    events = RecognitionEvents(channel: channel)
    driver = nil
    failure = outcome
  }

  func start<Audio: AsyncSequence & Sendable>(_ initMessage: RecognitionInitMessage, audio: Audio)
  where Audio.Element == ByteBuffer {
    let pipe = (audio as? RecognitionAudio)?.pipe
    guard let driver else {
      pipe?.close()
      return
    }
    // The loop runs its tasks in order: the init goes before any batch of audio.
    driver.eventLoop.execute { driver.start(initMessage) }
    // The library's own sequence is fed by its writer straight into the inbox: no task.
    if let pipe, pipe.bind(driver) { return }
    Task {
      do {
        for try await frame in audio {
          guard await driver.offer(frame) else { return }
        }
        driver.endOfAudio(failed: false)
      } catch {
        // The audio source failed: the recognition cannot go on.
        driver.endOfAudio(failed: true)
      }
    }
  }

  /// Starts the stalled no-input and recognition timers (`start_timers_message`), e.g. when the
  /// prompt finished playing. Before the 100 Continue it is held and sent right after it.
  public func startTimers() {
    guard let driver else { return }
    driver.eventLoop.execute { driver.startTimers() }
  }

  /// Cancels the recognition (its outcome becomes `.cancelled` unless it already ended).
  public func cancel() {
    guard let driver else { return }
    driver.eventLoop.execute { driver.cancel() }
  }

  /// The outcome, once the recognition ended.
  public var outcome: RecognitionOutcome {
    get async {
      if let failure { return failure }
      return (try? await driver?.ended.futureResult.get()) ?? .cancelled
    }
  }
}

/// The events of a ``Recognition``, in order; `.finished` is the last. An iteration ends after
/// it, or when the iterating task is cancelled.
public struct RecognitionEvents: AsyncSequence, Sendable {
  public typealias Element = RecognitionEvent
  public typealias Failure = Never

  let channel: RecognitionEventChannel

  public func makeAsyncIterator() -> Iterator {
    Iterator(channel: channel)
  }

  /// Takes the events a batch at a time, then hands them out one by one without a lock.
  public struct Iterator: AsyncIteratorProtocol {
    public typealias Element = RecognitionEvent
    public typealias Failure = Never

    private var batches: BatchIterator<RecognitionEvent>

    init(channel: RecognitionEventChannel) {
      batches = BatchIterator(channel: channel)
    }

    public mutating func next(
      isolation actor: isolated (any Actor)? = #isolation
    ) async -> RecognitionEvent? {
      await batches.next(isolation: actor)
    }

    public mutating func next() async -> RecognitionEvent? {
      await batches.next(isolation: nil)
    }
  }
}

/// Events on their way from the event loop to the application.
typealias RecognitionEventChannel = BatchChannel<RecognitionEvent>

/// Elements on their way from one thread to one reader: the writer puts in what it has at once,
/// the reader takes all there are at once.
final class BatchChannel<Element: Sendable>: Sendable {
  private struct State {
    var buffered: [Element] = []
    var finished = false
    /// The reader's task was cancelled: its iteration is over.
    var abandoned = false
    var reader: CheckedContinuation<[Element]?, Never>?
    /// Run once the reader takes what waits (see ``whenTaken(_:)``).
    var whenTaken: (@Sendable () -> Void)?
  }

  private let state = NIOLockedValueBox(State())
  /// How many elements may wait for the reader before ``send(_:finish:)`` reports the channel
  /// full (the writer then stops producing until they are taken).
  let capacity: Int

  init(capacity: Int = .max) {
    self.capacity = capacity
  }

  /// Adds `elements` (and ends the sequence after them if `finish`); true when `capacity` or
  /// more elements now wait for the reader. Once the reader is gone, elements are dropped.
  @discardableResult
  func send(_ elements: [Element], finish: Bool) -> Bool {
    let (wake, full): ((CheckedContinuation<[Element]?, Never>, [Element]?)?, Bool) =
      state.withLockedValue { state in
        if state.abandoned {
          // Nobody will read them: they take no memory and hold nothing back.
          if finish { state.finished = true }
          return (nil, false)
        }
        if state.buffered.isEmpty {
          state.buffered = elements
        } else {
          state.buffered.append(contentsOf: elements)
        }
        if finish { state.finished = true }
        guard let reader = state.reader else {
          return (nil, state.buffered.count >= capacity)
        }
        state.reader = nil
        let batch = state.buffered
        state.buffered = []
        return ((reader, batch.isEmpty ? nil : batch), false)
      }
    if let (reader, batch) = wake { reader.resume(returning: batch) }
    return full
  }

  /// Runs `action` once the reader has taken the elements waiting now (at once if none wait, or
  /// the reader is gone). One action at a time.
  func whenTaken(_ action: @escaping @Sendable () -> Void) {
    let now = state.withLockedValue { state -> Bool in
      if state.buffered.isEmpty || state.abandoned { return true }
      state.whenTaken = action
      return false
    }
    if now { action() }
  }

  /// The elements taken from `state.buffered` by the reader: the pending ``whenTaken(_:)``
  /// action, to run once the lock is released.
  private static func taken(_ state: inout State) -> (@Sendable () -> Void)? {
    defer { state.whenTaken = nil }
    return state.whenTaken
  }

  /// Whether no element waits.
  var isEmpty: Bool {
    state.withLockedValue { $0.buffered.isEmpty }
  }

  /// The elements waiting, taken without waiting for more.
  func takeBuffered() -> [Element] {
    let (batch, action) = state.withLockedValue { state in
      defer { state.buffered = [] }
      return (state.buffered, Self.taken(&state))
    }
    action?()
    return batch
  }

  private enum Now {
    case batch([Element], taken: (@Sendable () -> Void)?)
    case end
    case wait
  }

  /// The elements not yet taken, waiting for some; nil once they ended (or the task was
  /// cancelled).
  func take(isolation actor: isolated (any Actor)?) async -> [Element]? {
    let now: Now = state.withLockedValue { state in
      if !state.buffered.isEmpty {
        defer { state.buffered = [] }
        return .batch(state.buffered, taken: Self.taken(&state))
      }
      return state.finished || state.abandoned ? .end : .wait
    }
    switch now {
    case .batch(let batch, let taken):
      taken?()
      return batch
    case .end: return nil
    case .wait: break
    }
    return await withTaskCancellationHandler {
      await withCheckedContinuation(isolation: actor) { reader in
        let ready: Now = state.withLockedValue { state in
          if !state.buffered.isEmpty {
            defer { state.buffered = [] }
            return .batch(state.buffered, taken: Self.taken(&state))
          }
          if state.finished || state.abandoned { return .end }
          state.reader = reader
          return .wait
        }
        switch ready {
        case .batch(let batch, let taken):
          taken?()
          reader.resume(returning: batch)
        case .end: reader.resume(returning: nil)
        case .wait: break
        }
      }
    } onCancel: {
      let (reader, taken) = state.withLockedValue { state in
        state.abandoned = true
        state.buffered = []
        defer { state.reader = nil }
        return (state.reader, Self.taken(&state))
      }
      reader?.resume(returning: nil)
      taken?()
    }
  }
}

/// Takes a ``BatchChannel``'s elements a batch at a time, and hands them out one by one.
struct BatchIterator<Element: Sendable> {
  let channel: BatchChannel<Element>
  private var batch: [Element] = []
  private var index = 0

  init(channel: BatchChannel<Element>) {
    self.channel = channel
  }

  mutating func next(isolation actor: isolated (any Actor)?) async -> Element? {
    if index == batch.count {
      guard let next = await channel.take(isolation: actor) else { return nil }
      batch = next
      index = 0
    }
    defer { index += 1 }
    return batch[index]
  }
}

/// The recognitions of one event loop whose audio inboxes have frames: the loop takes them all
/// in one turn, so that producers handing over frames one at a time cost the loop one task per
/// turn rather than one per frame.
final class AudioDrainQueue: @unchecked Sendable {  // `ready` under `lock`; `spare` on the loop
  let eventLoop: any EventLoop
  private let lock = NIOLock()
  /// Retained (unmanaged, so that visiting one and prefetching those ahead retains nothing).
  private var ready: [Unmanaged<RecognitionDriver>] = []
  private var spare: [Unmanaged<RecognitionDriver>] = []

  init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  deinit {
    // Drivers scheduled on a loop that shut down before it drained them.
    for driver in ready { driver.release() }
  }

  /// `driver` has frames (or the end of its audio) for the loop.
  func schedule(_ driver: RecognitionDriver) {
    let first = lock.withLock { () -> Bool in
      ready.append(.passRetained(driver))
      return ready.count == 1
    }
    if first { eventLoop.execute { self.drainAll() } }
  }

  private func drainAll() {
    lock.withLock { swap(&ready, &spare) }
    for index in spare.indices {
      prefetch(ahead: index)
      spare[index]._withUnsafeGuaranteedRef { $0.drain() }
    }
    for driver in spare { driver.release() }
    spare.removeAll(keepingCapacity: true)
  }

  /// Before the drain of `spare[index]`: the memory of the drivers a few drains ahead, in two
  /// stages, so that it arrives while the drivers in between drain (at thousands of
  /// recognitions a driver's objects have left the cache by its next frame, and each first
  /// touch would wait for memory in turn).
  @inline(__always)
  private func prefetch(ahead index: Int) {
    if index + 6 < spare.count { hark_prefetch_lines(spare[index + 6].toOpaque(), 4) }
    if index + 4 < spare.count {
      spare[index + 4]._withUnsafeGuaranteedRef { $0.sessionAddress?.prefetchSession() }
    }
    if index + 2 < spare.count {
      spare[index + 2]._withUnsafeGuaranteedRef { $0.sessionAddress?.prefetchStream() }
    }
  }
}

/// The library's driver of one ``ClientSession``: it takes the application's audio frames into
/// the event loop in batches, and hands the session's events to the application in batches.
///
/// Its audio inbox is the one part shared with the producer's task, under a lock; everything
/// else lives on the event loop.
final class RecognitionDriver: ClientSessionDelegate, @unchecked Sendable {
  /// The inbox, shared with the producer. First, so that it shares the object's first cache
  /// line with its header (the reference count a schedule retains): a producer handing over a
  /// frame for each of thousands of recognitions finds each one's lines cold, and the lock
  /// inline (rather than a separate lock object) is one line fewer to wait for.
  private let inbox: Mutex<Inbox>

  /// The state the producer and the loop share.
  private struct Inbox {
    var frames: [ByteBuffer] = []
    var bytes = 0
    /// How many bytes may wait in the inbox before the producer waits.
    var credit: Int
    var producerEnded: Bool?
    var closed = false
    var drainScheduled = false
    /// The backlog's bytes as the loop last published them (for a writer's limit).
    var publishedBacklogBytes = 0
    var producer: CheckedContinuation<Bool, Never>?
  }

  let eventLoop: any EventLoop
  let ended: EventLoopPromise<RecognitionOutcome>
  private let metadata: GRPCMetadata
  private let timeout: TimeAmount?
  private let prebufferLimit: Int
  private let events: RecognitionEventChannel
  private let drainQueue: AudioDrainQueue
  private let trace: (@Sendable (RecognitionTrace) -> Void)?

  /// The most audio, in bytes, waiting in the inbox while the recognition streams: beyond it
  /// the producer waits for the loop to take its batch (1 s of 16 kHz L16).
  static let inboxLimit = 32_000

  /// The most events that wait for the application: beyond them the recognition stops
  /// acknowledging the server's responses, so HTTP/2 flow control holds the server back until
  /// the application takes them. Memory stays bounded however fast a server sends (at most
  /// this many events, then one stream window of responses).
  static let eventCapacity = 1_024

  // MARK: On the event loop

  private var session: ClientSession? {
    didSet { sessionAddress = session.map(ClientSessionAddress.init) }
  }
  /// `session`'s address, for the drain queue's prefetch.
  private(set) var sessionAddress: ClientSessionAddress?
  /// Frames the session could not take yet (its prebuffer was full before the 100), in order.
  private var backlog: [ByteBuffer] = []
  private var backlogStart = 0
  /// The bytes of the backlog not yet taken by the session.
  private var backlogBytes = 0
  /// Audio bytes the session holds for the 100.
  private var prebuffered = 0
  private var started = false
  /// Whether `start` ran: the init goes first. A drain the shared queue runs before it (a task
  /// queued on the loop ahead of this recognition's start) waits for it.
  private var initSent = false
  private var drainAfterInit = false
  /// The producer's audio ended, and the session is told once the backlog is through.
  private var endOfAudioPending = false
  private var finished = false
  private var pendingEvents: [RecognitionEvent] = []
  /// The application has `eventCapacity` events to take: the server's responses are not
  /// acknowledged until it takes them.
  private var responsesHeld = false
  /// The credit the inbox was last given.
  private var grantedCredit: Int
  /// The backlog's bytes the inbox was last told.
  private var loopPublishedBacklogBytes = 0
  /// The array the inbox's frames were last drained into, emptied: swapped into the inbox at
  /// the next drain, so that the two arrays take turns and a frame costs no allocation.
  private var spareFrames: [ByteBuffer] = []
  /// The most frames a spare array keeps room for: a burst's larger array is let go.
  private static let spareFramesCapacity = 64

  /// Where the first attempt's call goes.
  enum Transport {
    /// On this connection.
    case connection(GRPCClientConnection)
    /// Nowhere: no connection could be made (why), so the first attempt failed; a retry may
    /// find one on the event loop.
    case unavailable(GRPCStatus, eventLoop: any EventLoop)

    var eventLoop: any EventLoop {
      switch self {
      case .connection(let connection): connection.eventLoop
      case .unavailable(_, let eventLoop): eventLoop
      }
    }
  }

  init(
    transport: Transport,
    metadata: GRPCMetadata,
    timeout: TimeAmount?,
    prebufferLimit: Int,
    retryPolicy: RetryPolicy,
    resumePolicy: ResumePolicy?,
    reconnect: ClientSession.Reconnect?,
    drainQueue: AudioDrainQueue,
    events: RecognitionEventChannel,
    trace: (@Sendable (RecognitionTrace) -> Void)?
  ) {
    self.eventLoop = transport.eventLoop
    self.drainQueue = drainQueue
    self.ended = transport.eventLoop.makePromise(of: RecognitionOutcome.self)
    self.metadata = metadata
    self.timeout = timeout
    self.prebufferLimit = prebufferLimit
    self.events = events
    self.trace = trace
    self.inbox = Mutex(Inbox(credit: prebufferLimit))
    self.grantedCredit = prebufferLimit
    self.session = nil
    switch transport {
    case .connection(let connection):
      self.session = ClientSession(
        connection: connection,
        prebufferLimit: prebufferLimit,
        retryPolicy: retryPolicy,
        resumePolicy: resumePolicy,
        reconnect: reconnect,
        delegate: self
      )
    case .unavailable(let status, let eventLoop):
      self.session = ClientSession(
        eventLoop: eventLoop,
        unavailable: status,
        prebufferLimit: prebufferLimit,
        retryPolicy: retryPolicy,
        resumePolicy: resumePolicy,
        reconnect: reconnect,
        delegate: self
      )
    }
  }

  // MARK: The producer's side (any thread)

  /// Puts a frame in the inbox; waits while the inbox is over its credit. False when the
  /// recognition takes no more audio (the producer stops).
  func offer(_ frame: ByteBuffer) async -> Bool {
    let (accepted, schedule, wait) = inbox.withLock { inbox -> (Bool, Bool, Bool) in
      guard !inbox.closed else { return (false, false, false) }
      inbox.frames.append(frame)
      inbox.bytes += frame.readableBytes
      let schedule = !inbox.drainScheduled
      inbox.drainScheduled = true
      return (true, schedule, inbox.bytes >= inbox.credit)
    }
    if schedule { drainQueue.schedule(self) }
    guard accepted else { return false }
    guard wait else { return true }
    return await withCheckedContinuation { producer in
      let ready: Bool? = inbox.withLock { inbox in
        if inbox.closed { return false }
        if inbox.bytes < inbox.credit { return true }
        inbox.producer = producer
        return nil
      }
      if let ready { producer.resume(returning: ready) }
    }
  }

  /// Puts a frame in the inbox without waiting (a ``RecognitionAudioWriter``'s frame): refused
  /// when the recognition takes no more audio, or when `limit` bytes already wait in the inbox
  /// and the backlog.
  func offerNow(_ frame: ByteBuffer, limit: Int) -> RecognitionAudioWriter.YieldResult {
    let (result, schedule) = inbox.withLock {
      inbox -> (RecognitionAudioWriter.YieldResult, Bool) in
      guard !inbox.closed, inbox.producerEnded == nil else { return (.ended, false) }
      let waiting = inbox.bytes &+ inbox.publishedBacklogBytes
      guard frame.readableBytes <= limit &- waiting else { return (.full, false) }
      inbox.frames.append(frame)
      inbox.bytes += frame.readableBytes
      let schedule = !inbox.drainScheduled
      inbox.drainScheduled = true
      return (.enqueued, schedule)
    }
    if schedule { drainQueue.schedule(self) }
    return result
  }

  /// The producer's audio ended (or failed).
  func endOfAudio(failed: Bool) {
    let schedule = inbox.withLock { inbox -> Bool in
      guard !inbox.closed, inbox.producerEnded == nil else { return false }
      inbox.producerEnded = failed
      let schedule = !inbox.drainScheduled
      inbox.drainScheduled = true
      return schedule
    }
    if schedule { drainQueue.schedule(self) }
  }

  // MARK: The loop's side

  func start(_ initMessage: RecognitionInitMessage) {
    trace?(.callStarted(path: ClientSession.path, metadata: metadata.redactingCredentials()))
    session?.start(initMessage, metadata: metadata, timeout: timeout)
    initSent = true
    if drainAfterInit {
      drainAfterInit = false
      drain()
    }
  }

  func startTimers() {
    session?.startTimers()
  }

  func cancel() {
    session?.cancel()
  }

  /// Takes the inbox's batch into the session (called by the ``AudioDrainQueue``).
  func drain() {
    guard initSent else {
      // The inbox keeps its frames (and the producer's drain stays scheduled) until the init.
      drainAfterInit = true
      return
    }
    var batch: [ByteBuffer] = []
    swap(&batch, &spareFrames)
    let (ended, producerWaits) = inbox.withLock { inbox -> (Bool?, Bool) in
      swap(&batch, &inbox.frames)
      inbox.bytes = 0
      inbox.drainScheduled = false
      return (inbox.producerEnded, inbox.producer != nil)
    }
    guard let session, !finished else { return }
    for frame in batch {
      guard take(frame, session) else { break }
    }
    if batch.capacity <= Self.spareFramesCapacity {
      batch.removeAll(keepingCapacity: true)
      spareFrames = batch
    }
    if let ended, !endOfAudioPending && !finished {
      if ended {
        session.cancel()
      } else {
        endOfAudioPending = true
        endAudioIfDue(session)
      }
    }
    grantCredit(wake: producerWaits)
  }

  /// Offers `frame` behind the backlog; false once the recognition takes no more audio. While
  /// HTTP/2 flow control holds the stream, frames wait in the backlog (a writer's producer does
  /// not wait for credit).
  private func take(_ frame: ByteBuffer, _ session: ClientSession) -> Bool {
    if backlogStart < backlog.count || (started && !session.isWritable) {
      backlog.append(frame)
      backlogBytes += frame.readableBytes
      return true
    }
    switch session.audio(frame) {
    case .taken:
      if !started { prebuffered += frame.readableBytes }
      return true
    case .wait:
      backlog.append(frame)
      backlogBytes += frame.readableBytes
      return true
    case .stop:
      return false
    }
  }

  private func endAudioIfDue(_ session: ClientSession) {
    guard endOfAudioPending, backlogStart == backlog.count, !finished else { return }
    session.endOfAudio()
  }

  /// Gives the inbox the credit the session's state allows, waking a waiting producer.
  private func grantCredit(wake: Bool = false) {
    guard !finished else { return }
    let newCredit: Int
    if backlogStart < backlog.count {
      newCredit = 0
    } else if !started {
      newCredit = max(prebufferLimit - prebuffered, 0)
    } else {
      newCredit = session?.isWritable ?? true ? Self.inboxLimit : 0
    }
    guard wake || newCredit != grantedCredit || backlogBytes != loopPublishedBacklogBytes else {
      return
    }
    grantedCredit = newCredit
    loopPublishedBacklogBytes = backlogBytes
    let backlogBytes = self.backlogBytes
    let producer = inbox.withLock { inbox -> CheckedContinuation<Bool, Never>? in
      inbox.credit = newCredit
      inbox.publishedBacklogBytes = backlogBytes
      guard inbox.bytes < inbox.credit, let producer = inbox.producer else { return nil }
      inbox.producer = nil
      return producer
    }
    producer?.resume(returning: true)
  }

  // MARK: ClientSessionDelegate

  func clientSession(willSend request: RecognitionRequest) {
    trace?(.sent(request))
  }

  func clientSessionWillHalfClose() {
    trace?(.halfClosed)
  }

  func clientSession(received response: RecognitionResponse, bytes: Int) {
    trace?(.received(response))
  }

  func clientSession(callEnded status: GRPCStatus) {
    trace?(.callEnded(status))
  }

  func clientSession(deliver event: RecognitionEvent) {
    if case .started = event {
      started = true
      prebuffered = 0
    }
    pendingEvents.append(event)
  }

  func clientSessionCanTakeAudio() {
    guard let session, !finished else { return }
    // The backlog goes first, in order, as far as the session takes it.
    while backlogStart < backlog.count {
      if started && !session.isWritable {
        grantCredit()
        return
      }
      switch session.audio(backlog[backlogStart]) {
      case .taken:
        if !started { prebuffered += backlog[backlogStart].readableBytes }
        backlogBytes -= backlog[backlogStart].readableBytes
        backlogStart += 1
      case .wait:
        grantCredit()
        return
      case .stop:
        backlogStart = backlog.count
      }
    }
    backlog = []
    backlogStart = 0
    backlogBytes = 0
    endAudioIfDue(session)
    grantCredit()
  }

  func clientSession(finished outcome: RecognitionOutcome) {
    finished = true
    backlog = []
    backlogStart = 0
    backlogBytes = 0
    let producer = inbox.withLock { inbox -> CheckedContinuation<Bool, Never>? in
      inbox.closed = true
      inbox.frames = []
      inbox.bytes = 0
      defer { inbox.producer = nil }
      return inbox.producer
    }
    producer?.resume(returning: false)
    ended.succeed(outcome)
  }

  func clientSessionDidPerform() {
    guard !pendingEvents.isEmpty || finished else { return }
    let batch = pendingEvents
    pendingEvents = []
    let full = events.send(batch, finish: finished)
    if finished {
      session = nil
    } else if full && !responsesHeld {
      responsesHeld = true
      session?.holdResponses(true)
      let eventLoop = self.eventLoop
      events.whenTaken { [weak self] in
        eventLoop.execute { self?.eventsTaken() }
      }
    }
  }

  /// The application took the events that held the server's responses back.
  private func eventsTaken() {
    guard responsesHeld else { return }
    responsesHeld = false
    session?.holdResponses(false)
  }
}

/// What a recognition sent and received, for a caller that wants to watch the protocol
/// (`hark recognize --verbose`). Reported on the connection's event loop, in order.
public enum RecognitionTrace: Sendable {
  /// The call was opened with this path and metadata, credentials redacted
  /// (`authorization: Bearer <redacted>`).
  case callStarted(path: String, metadata: GRPCMetadata)
  /// A request went out.
  case sent(RecognitionRequest)
  /// The request stream was half-closed.
  case halfClosed
  /// A response arrived.
  case received(RecognitionResponse)
  /// The call ended with this gRPC status.
  case callEnded(GRPCStatus)
}

extension GRPCMetadata {
  /// The metadata with the values that may be credentials replaced by `<redacted>`: an
  /// `authorization` value keeps its scheme (`Bearer <redacted>`); a name that speaks of a
  /// token, secret, key, password, cookie or auth loses its whole value.
  public func redactingCredentials() -> GRPCMetadata {
    var redacted = GRPCMetadata()
    for entry in self {
      let name = entry.name
      let sensitive = ["auth", "token", "secret", "key", "password", "cookie"].contains {
        name.contains($0)
      }
      // The names and values were valid when added, and a redacted value is printable ASCII.
      switch entry.value {
      case .string(let value) where name == "authorization" || name == "proxy-authorization":
        let scheme = value.prefix { $0 != " " }
        try? redacted.add(name, scheme == value[...] ? "<redacted>" : "\(scheme) <redacted>")
      case .string(let value):
        try? redacted.add(name, sensitive ? "<redacted>" : value)
      case .binary(let bytes):
        try? redacted.add(name, binary: sensitive ? Array("<redacted>".utf8) : bytes)
      }
    }
    return redacted
  }
}
