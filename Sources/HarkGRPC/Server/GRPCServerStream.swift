internal import CHarkPrefetch
public import HarkGRPCCore
public import NIOCore

/// Serves one RPC on its connection's event loop.
///
/// This is the server's low-level API: every call happens on the event loop, with no task or
/// actor hop per message. ``GRPCServer`` also offers an async API built on it.
public protocol GRPCServerStreamHandler: AnyObject {
  /// A request message arrived (its gRPC framing removed; decode it with its codec).
  func receive(message: ByteBuffer)
  /// The client half-closed the request stream.
  func receiveEndOfRequests()
  /// The call ended without the handler finishing it: the client cancelled or reset it, the
  /// deadline passed, the connection was lost, or the request was malformed.
  func cancelled(_ status: GRPCStatus)
  /// The stream's send queue filled (`false`) or drained (`true`).
  func writabilityChanged(isWritable: Bool)
  /// How many 64-byte lines of the handler object the stream prefetches before a message (its
  /// size, roughly); 4 by default. See ``prefetchDependents``.
  static var prefetchLines: Int { get }
  /// Called with the handler's address after its first ``prefetchLines`` were prefetched, before
  /// the message is parsed: asks the CPU to bring in, without waiting, what handling the message
  /// reads beyond the handler object (its other objects). It may read the handler's own fields
  /// and nothing else, and must not retain or release anything (see
  /// `Unmanaged._withUnsafeGuaranteedRef`). Nil by default.
  static var prefetchDependents: (@convention(c) (UnsafeRawPointer) -> Void)? { get }
}

extension GRPCServerStreamHandler {
  public func writabilityChanged(isWritable: Bool) {}
  public static var prefetchLines: Int { 4 }
  public static var prefetchDependents: (@convention(c) (UnsafeRawPointer) -> Void)? { nil }
}

/// The server side of one RPC: what the client asked for, and how to answer.
///
/// Use it only on ``eventLoop`` (every method checks): it may be handed to whatever runs there,
/// such as an actor whose executor is that loop, hence `Sendable`.
public final class GRPCServerStream: StreamIO, @unchecked Sendable {
  /// The request: its path, metadata and deadline.
  public let request: GRPCServerStreamStateMachine.Request
  /// The stream's HTTP/2 stream id.
  public let streamID: Int32
  /// The event loop every call must be made on.
  public let eventLoop: any EventLoop

  private var machine: GRPCServerStreamStateMachine
  /// Strong: the connection lets go of its streams when they close or it does, which ends the
  /// cycle. (An unowned reference cost an atomic strong retain at each use, several per message.)
  private let connection: GRPCConnectionHandler
  var connectionHandler: GRPCConnectionHandler { connection }

  /// When the message being handled arrived: the start of the connection's read that carried
  /// it (one clock reading for all the messages of a read), or now outside a read.
  public var arrivalTime: NIODeadline { connection.arrivalTime }
  /// The handler, until the call ends (answered, cancelled or closed): a strong reference, so
  /// the handler needs no weak-reference side table, whose slow retains cost every message.
  private var handler: (any GRPCServerStreamHandler)? {
    didSet {
      handlerAddress = handler.map { Unmanaged.passUnretained($0 as AnyObject).toOpaque() }
      handlerLines = handler.map { Int32(type(of: $0).prefetchLines) } ?? 0
      handlerDependents = handler.flatMap { type(of: $0).prefetchDependents }
    }
  }
  private var handlerLines: Int32 = 0
  private var handlerDependents: (@convention(c) (UnsafeRawPointer) -> Void)?
  /// `handler`'s address, for ``prefetchHandler()`` (reading `handler` would retain it).
  private var handlerAddress: UnsafeMutableRawPointer?
  private var deadline: Scheduled<Void>?

  init(
    streamID: Int32,
    request: GRPCServerStreamStateMachine.Request,
    machine: GRPCServerStreamStateMachine,
    connection: GRPCConnectionHandler
  ) {
    self.streamID = streamID
    self.request = request
    self.machine = machine
    self.connection = connection
    self.eventLoop = connection.eventLoop
    self.liveObjects = connection.liveObjects
    super.init(scratch: connection.outboundScratch)
    liveObjects?.serverStreams.add(1)
  }

  deinit {
    liveObjects?.serverStreams.add(-1)
  }

  override func prefetchHandler() {
    if let handlerAddress { hark_prefetch_lines(handlerAddress, handlerLines) }
  }

  override func prefetchHandlerDependents() {
    if let handlerAddress, let handlerDependents { handlerDependents(handlerAddress) }
  }

  private let liveObjects: LiveObjects?

  private var requestEndedBeforeRegistration = false
  /// Whether the connection still routes this stream's events (until the stream closes or the
  /// connection goes): the connection is reached only while it does.
  var isAttached = true

  func attach(_ handler: any GRPCServerStreamHandler, requestEnded: Bool) {
    self.handler = handler
    requestEndedBeforeRegistration = requestEnded
    if let timeout = request.timeout {
      deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout.amount) { [weak self] in
        self?.deadlinePassed()
      }
    }
  }

  // MARK: Answering

  /// Whether the call can still be answered.
  public var isOpen: Bool { machine.isResponseOpen }

  /// Sends the response headers now, with initial `metadata` (otherwise they go, without
  /// metadata, with the first message or the status).
  public func sendHeaders(metadata: GRPCMetadata = GRPCMetadata()) {
    eventLoop.preconditionInEventLoop()
    guard let headers = machine.sendHeaders(metadata: metadata) else { return }
    connection.onSendingHeadersOrData?()
    submitHeaders(headers)
    connection.scheduleFlush()
  }

  /// Sends a response message. Returns false if the call already ended (the message is dropped).
  @discardableResult
  public func send(_ message: some GRPCCodable) -> Bool {
    eventLoop.preconditionInEventLoop()
    let onSend: GRPCServerStreamStateMachine.OnSendMessage
    do {
      onSend = try machine.sendMessage()
    } catch {
      return false
    }
    if case .sendHeadersThenMessage(let headers) = onSend { submitHeaders(headers) }
    connection.onSendingHeadersOrData?()
    if io.queuedBytes > connection.configuration.maxQueuedBytesPerStream {
      // A handler that does not wait for writability: the stream ends rather than grow. (The
      // limit is on what waits already, so any one message up to the largest allowed passes.)
      connection.queueOverflowed(self)
      return false
    }
    io.enqueue(message)
    connection.queued(on: streamID, self)
    return true
  }

  private func submitHeaders(_ headers: [HTTPHeaderField]) {
    do {
      try connection.session.submitResponse(streamID: streamID, headers: headers, withBody: true)
    } catch {
      connection.close(reason: "cannot send response headers: \(error)")
    }
  }

  /// Ends the call with `status` and trailing `metadata`.
  public func finish(status: GRPCStatus = .ok, metadata: GRPCMetadata = GRPCMetadata()) {
    eventLoop.preconditionInEventLoop()
    perform(machine.finish(status: status, metadata: metadata))
  }

  /// Cancels the call from the server side: RST_STREAM CANCEL, which the client sees as CANCELLED
  /// (H28). For a call the handler cannot complete and has no status for.
  public func cancel() {
    eventLoop.preconditionInEventLoop()
    deadline?.cancel()
    deadline = nil
    guard case .cancelled = machine.receiveReset() else { return }
    connection.session.resetStream(streamID, errorCode: .cancel)
    connection.scheduleFlush()
    handler = nil
  }

  /// Sends the status as `onFinish` says, then RST_STREAM NO_ERROR if the client is still
  /// sending (H29).
  private func perform(_ onFinish: GRPCServerStreamStateMachine.OnFinish) {
    deadline?.cancel()
    deadline = nil
    switch onFinish {
    case .ignore:
      return
    case .sendTrailers(let trailers, let resetAfterward):
      io.trailers = trailers
      io.outboundEnded = true
      if resetAfterward { connection.reset(streamID, afterEndOfStreamWith: .noError) }
      connection.queued(on: streamID, self)
    case .sendTrailersOnly(let fields, let resetAfterward):
      do {
        try connection.session.submitResponse(streamID: streamID, headers: fields, withBody: false)
      } catch {
        connection.close(reason: "cannot send status: \(error)")
      }
      if resetAfterward { connection.reset(streamID, afterEndOfStreamWith: .noError) }
      connection.scheduleFlush()
    }
    // The handler has answered; it needs no more events.
    handler = nil
  }

  private func deadlinePassed() {
    deadline = nil
    let onFinish = machine.deadlineExpired()
    guard onFinish != .ignore else { return }
    let handler = self.handler
    // The status (DEADLINE_EXCEEDED), then, if the client is still sending, RST_STREAM NO_ERROR
    // as after any early status (H29). Not CANCEL (H30's reset for a server that cancels
    // without a status): a client whose own timer is a moment behind the server's (grpcio) takes
    // that reset for CANCELLED and drops the status before it.
    perform(onFinish)
    handler?.cancelled(GRPCStatus(.deadlineExceeded, "deadline exceeded"))
  }

  // MARK: Events

  func deliver(messages: GRPCMessageBatch, requestEnded: Bool) {
    guard let handler else { return }
    for message in messages { handler.receive(message: message) }
    if requestEnded { handler.receiveEndOfRequests() }
  }

  func fail(_ onFinish: GRPCServerStreamStateMachine.OnFinish, status: GRPCStatus) {
    let handler = self.handler
    perform(onFinish)
    handler?.cancelled(status)
  }
}

extension GRPCServerStream: ConnectionStream {
  func registered() {
    // A request whose headers carried END_STREAM has ended already.
    if requestEndedBeforeRegistration { handler?.receiveEndOfRequests() }
  }

  func receivedHeaders(_ headers: [HTTPHeaderField], endStream: Bool) {
    switch machine.receive(headers: headers, endStream: endStream) {
    case .requestEnded(.requestEnded):
      deliver(messages: GRPCMessageBatch(), requestEnded: true)
    case .requestEnded(.fail(let status, let onFinish)):
      fail(onFinish, status: status)
    case .protocolViolation(let status):
      fail(machine.finish(status: status), status: status)
    case .accept, .rejectHTTP, .rejectTrailersOnly, .requestEnded(.ignore), .ignore:
      break
    }
  }

  func receivedData(_ bytes: ByteBuffer) {
    // The handler has taken the bytes (messages are delivered at once; a partial one is held by
    // the deframer, at most one message's worth): the peer may send as much again, unless the
    // handler holds consumption because its own buffer is full.
    defer { connection.consume(bytes.readableBytes, on: self, streamID: streamID) }
    switch machine.receive(data: bytes, endStream: false) {
    case .deliver(let messages, let requestEnded):
      deliver(messages: messages, requestEnded: requestEnded)
    case .fail(let status, let onFinish):
      fail(onFinish, status: status)
    case .ignore:
      break
    }
  }

  func receivedEndOfData() {
    switch machine.receive(data: ByteBuffer(), endStream: true) {
    case .deliver(let messages, let requestEnded):
      deliver(messages: messages, requestEnded: requestEnded)
    case .fail(let status, let onFinish):
      fail(onFinish, status: status)
    case .ignore:
      break
    }
  }

  func closed(errorCode: HTTP2ErrorCode) {
    isAttached = false
    deadline?.cancel()
    deadline = nil
    if case .cancelled = machine.receiveReset() {
      let status =
        errorCode == .noError
        ? GRPCStatus(.cancelled, "stream closed")
        : GRPCStatus(.cancelled, "client reset the stream (\(errorCode))")
      handler?.cancelled(status)
    }
    handler = nil
  }

  func connectionLost(_ reason: String) {
    isAttached = false
    deadline?.cancel()
    deadline = nil
    if case .cancelled = machine.receiveReset() {
      handler?.cancelled(GRPCStatus(.cancelled, reason))
    }
    handler = nil
  }

  func writabilityChanged(_ isWritable: Bool) {
    handler?.writabilityChanged(isWritable: isWritable)
  }

  func receivedOversizedHeaderList(_ error: GRPCLimitExceeded) {
    // Request trailers over the limit: the request cannot be trusted to have ended cleanly.
    let status = GRPCStatus(.resourceExhausted, error.message)
    fail(machine.finish(status: status), status: status)
  }

  func outputStalled(_ error: GRPCLimitExceeded) {
    deadline?.cancel()
    deadline = nil
    let handler = self.handler
    self.handler = nil
    io.clearQueue()
    connection.session.resetStream(streamID, errorCode: .cancel)
    connection.scheduleFlush()
    if case .cancelled = machine.writeStalled() {
      handler?.cancelled(GRPCStatus(.resourceExhausted, error.message))
    }
  }
}
