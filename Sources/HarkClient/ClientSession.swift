import CHarkPrefetch
package import HarkGRPC
package import HarkGRPCCore
package import HarkProto
package import HarkRecognizer
package import NIOCore

/// What a ``ClientSession`` reports to the code that drives it, on the session's event loop.
///
/// The library's ``Recognition`` and `hark load`'s sessions are the two delegates: one hands
/// events to an application, the other measures.
package protocol ClientSessionDelegate: AnyObject {
  /// This request goes out now.
  func clientSession(willSend request: RecognitionRequest)
  /// The request stream is half-closed now.
  func clientSessionWillHalfClose()
  /// A response arrived (`bytes` long on the wire, without its gRPC prefix); its actions follow.
  func clientSession(received response: RecognitionResponse, bytes: Int)
  /// The call ended at the gRPC level; its actions follow.
  func clientSession(callEnded status: GRPCStatus)
  /// An event for the application, in order; `.finished` is the last.
  func clientSession(deliver event: RecognitionEvent)
  /// The recognition is over (after its `.finished` event); nothing more is reported.
  func clientSession(finished outcome: RecognitionOutcome)
  /// Audio may be offered again: the 100 Continue arrived (the prebuffer was sent), or HTTP/2
  /// flow control let the queued requests go.
  func clientSessionCanTakeAudio()
  /// The actions of one input were carried out (a batch of events may leave now).
  func clientSessionDidPerform()
}

extension ClientSessionDelegate {
  package func clientSession(willSend request: RecognitionRequest) {}
  package func clientSessionWillHalfClose() {}
  package func clientSession(received response: RecognitionResponse, bytes: Int) {}
  package func clientSession(callEnded status: GRPCStatus) {}
  package func clientSessionCanTakeAudio() {}
  package func clientSessionDidPerform() {}
}

/// One recognition on the client: the HTTP/2 stream of its Recognize call and the
/// ``ClientSessionStateMachine`` it carries out, on the connection's event loop.
///
/// The only driver of the machine, for the library and for `hark load` alike: the transport
/// calls it on the loop directly, and whoever offers audio does so on the loop too (the library
/// in batches, see ``Recognition``). No task, no actor hop and no allocation per frame beyond the
/// frame's encoding. What it does is reported to its ``ClientSessionDelegate``, which it holds
/// until the recognition ends.
package final class ClientSession: GRPCClientStreamHandler {
  package static let path = "/nuance.asr.v1.Recognizer/Recognize"

  package let eventLoop: any EventLoop
  /// The connection the current attempt's call runs on (a retry may take another); nil when
  /// none could be made for the first attempt (`unavailable` says why).
  private var connection: GRPCClientConnection?
  private let unavailable: GRPCStatus?
  /// Makes a connection on this session's event loop for a retry when the current one takes no
  /// new calls; nil retries only on the current one.
  private let reconnect: Reconnect?
  private var machine: ClientSessionStateMachine
  /// The call's metadata and deadline, for each attempt.
  private var metadata = GRPCMetadata()
  private var deadline: NIODeadline?
  /// The wait before a retry's call opens.
  private var retryTimer: Scheduled<Void>?
  /// When the current stream is handed over (``ResumePolicy/maxStreamDuration``).
  private var streamLimit: Scheduled<Void>?
  private var stream: GRPCClientStream? {
    didSet { streamAddress = stream.map { Unmanaged.passUnretained($0).toOpaque() } }
  }
  /// `stream`'s address, for ``prefetchStream()`` (reading `stream` itself would retain it).
  private var streamAddress: UnsafeMutableRawPointer?
  private var delegate: (any ClientSessionDelegate)?
  /// The actions being carried out; a machine call made from inside a delegate's callback adds
  /// to them, and the loop that is already running carries them out in order.
  private var actions: [ClientSessionStateMachine.Action] = []
  private var performing = false
  /// The machine ended the recognition (its `.finish` action was carried out).
  private var ended = false

  /// Makes a connection on the given event loop, for a retry.
  package typealias Reconnect = @Sendable (any EventLoop) async throws -> GRPCClientConnection

  package convenience init(
    connection: GRPCClientConnection,
    prebufferLimit: Int = ClientSessionStateMachine.defaultPrebufferLimit,
    retryPolicy: RetryPolicy = .none,
    resumePolicy: ResumePolicy? = nil,
    reconnect: Reconnect? = nil,
    delegate: any ClientSessionDelegate
  ) {
    self.init(
      connection: connection,
      unavailable: nil,
      eventLoop: connection.eventLoop,
      prebufferLimit: prebufferLimit,
      retryPolicy: retryPolicy,
      resumePolicy: resumePolicy,
      reconnect: reconnect,
      delegate: delegate
    )
  }

  /// A session whose first attempt found no connection (`unavailable` says why): it starts as
  /// a call that failed with it, which its retry policy may try again on `eventLoop`.
  package convenience init(
    eventLoop: any EventLoop,
    unavailable: GRPCStatus,
    prebufferLimit: Int = ClientSessionStateMachine.defaultPrebufferLimit,
    retryPolicy: RetryPolicy,
    resumePolicy: ResumePolicy? = nil,
    reconnect: Reconnect?,
    delegate: any ClientSessionDelegate
  ) {
    self.init(
      connection: nil,
      unavailable: unavailable,
      eventLoop: eventLoop,
      prebufferLimit: prebufferLimit,
      retryPolicy: retryPolicy,
      resumePolicy: resumePolicy,
      reconnect: reconnect,
      delegate: delegate
    )
  }

  private init(
    connection: GRPCClientConnection?,
    unavailable: GRPCStatus?,
    eventLoop: any EventLoop,
    prebufferLimit: Int,
    retryPolicy: RetryPolicy,
    resumePolicy: ResumePolicy?,
    reconnect: Reconnect?,
    delegate: any ClientSessionDelegate
  ) {
    self.connection = connection
    self.unavailable = unavailable
    self.eventLoop = eventLoop
    self.reconnect = reconnect
    self.machine = ClientSessionStateMachine(
      prebufferLimit: prebufferLimit,
      retryPolicy: retryPolicy,
      resumePolicy: resumePolicy
    )
    self.delegate = delegate
  }

  /// Asks the CPU to bring in the stream's first lines, which the next frame's send touches (see
  /// hark_prefetch.h).
  fileprivate func prefetchStream() {
    if let streamAddress { hark_prefetch_lines(streamAddress, StreamIO.prefetchLines) }
  }

  /// The outcome, once the recognition ended.
  package var outcome: RecognitionOutcome? { machine.outcome }

  /// Holds back (or releases) the acknowledgement of the server's responses: while held, HTTP/2
  /// flow control stops the server once the stream's window is spent.
  package func holdResponses(_ hold: Bool) {
    stream?.holdConsumption(hold)
  }

  /// Whether the stream's request queue is below its high watermark (audio may go on).
  package var isWritable: Bool { stream?.isWritable ?? true }

  /// Opens the call and sends the init; false if the recognition already ended (e.g. the
  /// connection could not take the call).
  @discardableResult
  package func start(
    _ initMessage: RecognitionInitMessage,
    metadata: GRPCMetadata,
    timeout: TimeAmount? = nil
  ) -> Bool {
    eventLoop.preconditionInEventLoop()
    self.metadata = metadata
    let now = NIODeadline.now()
    deadline = timeout.map { now + $0 }
    // A connection that cannot take the call ends it from inside makeStream (UNAVAILABLE).
    stream = connection?.makeStream(
      path: Self.path,
      metadata: metadata,
      timeout: timeout,
      handler: self
    )
    do {
      try machine.start(initMessage, now: now.uptimeNanoseconds, into: &actions)
    } catch {
      // It ended already.
      return false
    }
    if connection == nil, let unavailable {
      // No connection for the first attempt: its call failed before it started.
      actions.removeAll()
      machine.callEnded(unavailable, now: now.uptimeNanoseconds, into: &actions)
    }
    perform()
    return machine.outcome == nil
  }

  /// Offers an audio frame (see ``ClientSessionStateMachine/audio(_:into:)``).
  package func audio(_ frame: ByteBuffer) -> ClientSessionStateMachine.OnAudio {
    audio(frame, last: false)
  }

  /// Offers an audio frame, and ends the audio after it if `last`.
  package func audio(_ frame: ByteBuffer, last: Bool) -> ClientSessionStateMachine.OnAudio {
    if !last && !performing {
      // The common case, a frame of a streaming recognition, without the actions array: the
      // machine decides, and the frame goes out as its `.send` action would.
      switch machine.audioStep(frame) {
      case .send:
        performing = true
        let request = RecognitionRequest.audio(frame)
        delegate?.clientSession(willSend: request)
        stream?.send(request)
        performing = false
        // What the send reported meanwhile (e.g. a call that ended), in order.
        if !actions.isEmpty { perform() }
        return .taken
      case .taken: return .taken
      case .wait: return .wait
      case .stop: return .stop
      }
    }
    let taken = machine.audio(frame, into: &actions)
    if last && taken == .taken { machine.endOfAudio(into: &actions) }
    perform()
    return taken
  }

  /// The audio ended: the request stream is half-closed once everything held is sent.
  package func endOfAudio() {
    machine.endOfAudio(into: &actions)
    perform()
  }

  /// Sends `start_timers_message` (held until the 100 Continue).
  package func startTimers() {
    machine.startTimers(into: &actions)
    perform()
  }

  /// Cancels the recognition (`.cancelled`, and RST_STREAM to the server) unless it ended.
  package func cancel() {
    machine.cancel(into: &actions)
    perform()
  }

  private func perform() {
    guard !performing else { return }
    performing = true
    var index = 0
    while index < actions.count {
      let action = actions[index]
      index += 1
      switch action {
      case .send(let request):
        delegate?.clientSession(willSend: request)
        stream?.send(request)
      case .halfClose:
        delegate?.clientSessionWillHalfClose()
        stream?.finish()
      case .deliver(let event):
        delegate?.clientSession(deliver: event)
        if case .started = event { delegate?.clientSessionCanTakeAudio() }
      case .finish(let outcome, let cancelCall):
        ended = true
        retryTimer?.cancel()
        retryTimer = nil
        streamLimit?.cancel()
        streamLimit = nil
        if cancelCall { stream?.cancel() }
        delegate?.clientSession(finished: outcome)
      case .abandonCall:
        streamLimit?.cancel()
        streamLimit = nil
        stream?.abandon()
        stream = nil
      case .limitStream(let delay):
        streamLimit?.cancel()
        streamLimit = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
          [self] in
          streamLimit = nil
          machine.streamDurationReached(now: NIODeadline.now().uptimeNanoseconds, into: &actions)
          perform()
        }
      case .retry(let delay):
        streamLimit?.cancel()
        streamLimit = nil
        stream = nil
        retryTimer = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(delay)) {
          [self] in
          retryTimer = nil
          openRetry()
        }
      }
    }
    actions.removeAll(keepingCapacity: true)
    performing = false
    guard let delegate else { return }
    delegate.clientSessionDidPerform()
    if ended {
      // The recognition is over: nothing more is reported, and the delegate (which holds this
      // session) is let go.
      self.delegate = nil
    }
  }

  // MARK: Retries

  /// The retry's wait is over: its call opens on the current connection if it takes new calls,
  /// else on a new one.
  private func openRetry() {
    guard !ended else { return }
    if let connection, connection.isAvailable {
      openRetryCall()
      return
    }
    guard let reconnect else {
      retryFailed(GRPCStatus(.unavailable, "the connection is closed or going away"))
      return
    }
    let eventLoop = self.eventLoop
    let session = NIOLoopBound(self, eventLoop: eventLoop)
    Task {
      do {
        let connection = try await reconnect(eventLoop)
        eventLoop.execute {
          session.value.connection = connection
          session.value.openRetryCall()
        }
      } catch {
        let status = (error as? GRPCStatus) ?? GRPCStatus(.unavailable, "\(error)")
        eventLoop.execute { session.value.retryFailed(status) }
      }
    }
  }

  /// Opens the retry's call and sends the init on it.
  private func openRetryCall() {
    guard !ended else { return }
    var timeout: TimeAmount?
    if let deadline {
      let left = deadline - NIODeadline.now()
      guard left > .zero else {
        retryFailed(GRPCStatus(.deadlineExceeded, "deadline exceeded before the retry"))
        return
      }
      timeout = left
    }
    guard let connection else { return }
    let stream = connection.makeStream(
      path: Self.path,
      metadata: metadata,
      timeout: timeout,
      handler: self
    )
    // A connection that could not take the call ended it already (the machine decided).
    guard !stream.isFinished else { return }
    self.stream = stream
    machine.retryNow(into: &actions)
    perform()
  }

  /// The retry's call could not open.
  private func retryFailed(_ status: GRPCStatus) {
    machine.callEnded(status, now: NIODeadline.now().uptimeNanoseconds, into: &actions)
    perform()
  }

  // MARK: GRPCClientStreamHandler

  package func receive(message: ByteBuffer) {
    let response: RecognitionResponse
    do {
      response = try RecognitionResponse(serializedBytes: message)
    } catch {
      // A response that does not decode: the client's INTERNAL error (H36). The stream reports
      // the call's end through `finished`.
      stream?.cancel(
        status: GRPCStatus(.internalError, "cannot decode a RecognitionResponse: \(error)")
      )
      return
    }
    delegate?.clientSession(received: response, bytes: message.readableBytes)
    machine.receive(response, into: &actions)
    perform()
  }

  package func finished(status: GRPCStatus, metadata: GRPCMetadata) {
    delegate?.clientSession(callEnded: status)
    machine.callEnded(status, now: NIODeadline.now().uptimeNanoseconds, into: &actions)
    perform()
  }

  package func writabilityChanged(isWritable: Bool) {
    if isWritable && !ended { delegate?.clientSessionCanTakeAudio() }
  }
}

/// A ``ClientSession``'s address, which its driver keeps to prefetch the session's memory ahead
/// of its next frame (reading the driver's reference to the session would retain it, a write to
/// the cold line being prefetched). Valid while the driver holds the session.
package struct ClientSessionAddress {
  private let address: UnsafeMutableRawPointer

  package init(_ session: ClientSession) {
    address = Unmanaged.passUnretained(session).toOpaque()
  }

  /// Asks the CPU to bring in the session's first lines.
  package func prefetchSession() {
    hark_prefetch_lines(address, 3)
  }

  /// Asks the CPU to bring in the session's stream; reads the session, so call it after
  /// ``prefetchSession()`` had time to take effect.
  package func prefetchStream() {
    Unmanaged<ClientSession>.fromOpaque(address)._withUnsafeGuaranteedRef { $0.prefetchStream() }
  }
}
