import HarkGRPC
public import HarkGRPCCore
public import HarkProto
public import HarkRecognizer
import NIOCore

/// One recognition in progress: its events, and the controls an application has over it.
///
/// Events arrive in order — `started` (the 100 Continue), start of speech, partial and final
/// results — and end with exactly one `finished(outcome)`.
public final class Recognition: Sendable {
  /// The recognition's events; the last is `.finished`.
  public let events: AsyncStream<RecognitionEvent>
  private let continuation: AsyncStream<RecognitionEvent>.Continuation
  private let session: RecognitionSession?
  private let ended: EventLoopPromise<RecognitionOutcome>?
  private let failure: RecognitionOutcome?

  init(
    connection: GRPCClientConnection,
    metadata: GRPCMetadata,
    timeout: TimeAmount?,
    prebufferLimit: Int,
    trace: (@Sendable (RecognitionTrace) -> Void)?
  ) {
    (events, continuation) = AsyncStream.makeStream(of: RecognitionEvent.self)
    let ended = connection.eventLoop.makePromise(of: RecognitionOutcome.self)
    self.ended = ended
    self.failure = nil
    session = RecognitionSession(
      connection: connection,
      metadata: metadata,
      timeout: timeout,
      prebufferLimit: prebufferLimit,
      events: continuation,
      ended: ended,
      trace: trace
    )
  }

  /// A recognition that could not start (no connection).
  init(failed status: GRPCStatus) {
    (events, continuation) = AsyncStream.makeStream(of: RecognitionEvent.self)
    let outcome = RecognitionOutcome(transportFailure: status)
    continuation.yield(.finished(outcome))
    continuation.finish()
    session = nil
    ended = nil
    failure = outcome
  }

  func start<Audio: AsyncSequence & Sendable>(_ initMessage: RecognitionInitMessage, audio: Audio)
  where Audio.Element == ByteBuffer {
    guard let session else { return }
    Task {
      guard await session.start(initMessage) else { return }
      do {
        for try await frame in audio {
          guard await session.audio(frame) else { return }
        }
      } catch {
        // The audio source failed: the recognition cannot go on.
        await session.cancelNow()
        return
      }
      await session.endOfAudio()
    }
  }

  /// Starts the stalled no-input and recognition timers (`start_timers_message`), e.g. when the
  /// prompt finished playing. Before the 100 Continue it is held and sent right after it.
  public func startTimers() {
    guard let session else { return }
    session.eventLoop.execute { session.assumeIsolated { $0.startTimers() } }
  }

  /// Cancels the recognition (its outcome becomes `.cancelled` unless it already ended).
  public func cancel() {
    guard let session else { return }
    session.eventLoop.execute { session.assumeIsolated { $0.cancelNow() } }
  }

  /// The outcome, once the recognition ended.
  public var outcome: RecognitionOutcome {
    get async {
      if let failure { return failure }
      return (try? await ended!.futureResult.get()) ?? .cancelled
    }
  }
}

/// The client side of one recognition: an actor on its connection's event loop that carries out
/// the ``ClientSessionStateMachine``. The transport's callbacks enter it without a hop; the audio
/// producer enters it once per frame.
actor RecognitionSession {
  nonisolated let eventLoop: any EventLoop
  nonisolated var unownedExecutor: UnownedSerialExecutor {
    eventLoop.executor.asUnownedSerialExecutor()
  }

  private var machine: ClientSessionStateMachine
  private var actions: [ClientSessionStateMachine.Action] = []
  private let connection: GRPCClientConnection
  private let metadata: GRPCMetadata
  private let timeout: TimeAmount?
  private let events: AsyncStream<RecognitionEvent>.Continuation
  private let ended: EventLoopPromise<RecognitionOutcome>
  private let trace: (@Sendable (RecognitionTrace) -> Void)?
  private var stream: GRPCClientStream?
  /// The audio producer, waiting for the 100 (prebuffer full) or for the stream to drain.
  private var producer: CheckedContinuation<Bool, Never>?

  static let path = "/nuance.asr.v1.Recognizer/Recognize"

  init(
    connection: GRPCClientConnection,
    metadata: GRPCMetadata,
    timeout: TimeAmount?,
    prebufferLimit: Int,
    events: AsyncStream<RecognitionEvent>.Continuation,
    ended: EventLoopPromise<RecognitionOutcome>,
    trace: (@Sendable (RecognitionTrace) -> Void)?
  ) {
    self.trace = trace
    self.eventLoop = connection.eventLoop
    self.connection = connection
    self.metadata = metadata
    self.timeout = timeout
    self.machine = ClientSessionStateMachine(prebufferLimit: prebufferLimit)
    self.events = events
    self.ended = ended
  }

  /// Opens the call and sends the init; false if the recognition already ended.
  func start(_ initMessage: RecognitionInitMessage) -> Bool {
    let handler = Handler(session: self)
    trace?(.callStarted(path: Self.path, metadata: metadata.redactingCredentials()))
    stream = connection.makeStream(
      path: Self.path,
      metadata: metadata,
      timeout: timeout,
      handler: handler
    )
    do {
      try machine.start(initMessage, into: &actions)
    } catch {
      return false
    }
    perform()
    return machine.outcome == nil
  }

  /// Offers an audio frame; waits while it cannot be taken. False when the producer must stop.
  func audio(_ frame: ByteBuffer) async -> Bool {
    while true {
      switch machine.audio(frame, into: &actions) {
      case .taken:
        perform()
        if let stream, !stream.isWritable, machine.outcome == nil {
          // HTTP/2 flow control: wait until the server has taken what is queued.
          guard await waitForProducerWakeUp() else { return false }
        }
        return machine.outcome == nil
      case .wait:
        guard await waitForProducerWakeUp() else { return false }
      case .stop:
        return false
      }
    }
  }

  private func waitForProducerWakeUp() async -> Bool {
    await withCheckedContinuation { continuation in
      producer = continuation
    }
  }

  private func wakeProducer(_ keepGoing: Bool) {
    producer?.resume(returning: keepGoing)
    producer = nil
  }

  func endOfAudio() {
    machine.endOfAudio(into: &actions)
    perform()
  }

  func startTimers() {
    machine.startTimers(into: &actions)
    perform()
  }

  func cancelNow() {
    machine.cancel(into: &actions)
    perform()
  }

  func receive(_ message: ByteBuffer) {
    do {
      let response = try RecognitionResponse(serializedBytes: message)
      trace?(.received(response))
      machine.receive(response, into: &actions)
    } catch {
      // A response that does not decode: the client's INTERNAL error (H36).
      stream?.cancel(
        status: GRPCStatus(.internalError, "cannot decode a RecognitionResponse: \(error)")
      )
      return
    }
    perform()
  }

  func callFinished(_ status: GRPCStatus) {
    trace?(.callEnded(status))
    machine.callEnded(status, into: &actions)
    perform()
  }

  func writabilityChanged(_ writable: Bool) {
    if writable { wakeProducer(true) }
  }

  private func perform() {
    var index = 0
    while index < actions.count {
      let action = actions[index]
      index += 1
      switch action {
      case .send(let request):
        trace?(.sent(request))
        stream?.send(request)
      case .halfClose:
        trace?(.halfClosed)
        stream?.finish()
      case .deliver(let event):
        events.yield(event)
        if case .started = event { wakeProducer(true) }
      case .finish(let outcome, let cancelCall):
        if cancelCall { stream?.cancel() }
        events.finish()
        ended.succeed(outcome)
        wakeProducer(false)
      }
    }
    actions.removeAll(keepingCapacity: true)
  }

  /// The transport's handler for the call: enters the session on the event loop.
  final class Handler: GRPCClientStreamHandler {
    let session: RecognitionSession

    init(session: RecognitionSession) {
      self.session = session
    }

    func receive(message: ByteBuffer) {
      session.assumeIsolated { $0.receive(message) }
    }

    func finished(status: GRPCStatus, metadata: GRPCMetadata) {
      session.assumeIsolated { $0.callFinished(status) }
    }

    func writabilityChanged(isWritable: Bool) {
      session.assumeIsolated { $0.writabilityChanged(isWritable) }
    }
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
