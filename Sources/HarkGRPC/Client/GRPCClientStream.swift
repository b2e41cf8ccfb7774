internal import CHarkPrefetch
public import HarkGRPCCore
public import NIOCore

/// Receives the events of one client call on its connection's event loop.
///
/// This is the client's low-level API: every call happens on the event loop, with no task hop per
/// message. ``GRPCChannel`` also offers an async API built on it.
public protocol GRPCClientStreamHandler: AnyObject {
  /// The server's response headers arrived.
  func receive(metadata: GRPCMetadata)
  /// A response message arrived (decode it with its codec).
  func receive(message: ByteBuffer)
  /// The call ended with `status` and trailing `metadata`. Nothing follows.
  func finished(status: GRPCStatus, metadata: GRPCMetadata)
  /// The request queue filled (`false`) or drained (`true`).
  func writabilityChanged(isWritable: Bool)
}

extension GRPCClientStreamHandler {
  public func receive(metadata: GRPCMetadata) {}
  public func writabilityChanged(isWritable: Bool) {}
}

/// The client side of one call.
///
/// Use it only on ``eventLoop`` (every method checks): it may be handed to whatever runs there,
/// such as an actor whose executor is that loop, hence `Sendable`.
public final class GRPCClientStream: StreamIO, @unchecked Sendable {
  /// The event loop every call must be made on.
  public let eventLoop: any EventLoop
  /// The HTTP/2 stream id (0 until the request headers are submitted).
  public private(set) var streamID: Int32 = 0

  private var machine: GRPCClientStreamStateMachine
  /// Strong: the connection lets go of its streams when they close or it does, which ends the
  /// cycle. (An unowned reference cost an atomic strong retain at each use, several per message.)
  private let connection: GRPCConnectionHandler
  private var handler: (any GRPCClientStreamHandler)? {
    didSet { handlerAddress = handler.map { Unmanaged.passUnretained($0 as AnyObject).toOpaque() } }
  }
  /// `handler`'s address, for ``prefetchHandler()`` (reading `handler` would retain it).
  private var handlerAddress: UnsafeMutableRawPointer?
  private var deadline: Scheduled<Void>?
  /// The pool's connection, which counts its open calls; told once, when this call ends.
  private var owner: GRPCClientConnection?

  init(
    connection: GRPCConnectionHandler,
    owner: GRPCClientConnection?,
    maxReceiveMessageSize: Int,
    handler: any GRPCClientStreamHandler
  ) {
    self.connection = connection
    self.owner = owner
    self.eventLoop = connection.eventLoop
    self.machine = GRPCClientStreamStateMachine(maxReceiveMessageSize: maxReceiveMessageSize)
    self.handler = handler
    super.init(scratch: connection.outboundScratch)
  }

  override func prefetchHandler() {
    if let handlerAddress { hark_prefetch_lines(handlerAddress, 4) }
  }

  /// Submits the request headers; fails the call (through the handler) if that is impossible.
  func start(headers: [HTTPHeaderField], timeout: TimeAmount?) {
    do {
      try machine.start()
      streamID = try connection.session.submitRequest(headers: headers)
    } catch {
      end(GRPCStatus(.unavailable, "cannot start the call: \(error)"), GRPCMetadata())
      return
    }
    connection.register(self, id: streamID)
    if let timeout {
      deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
        self?.terminate(.deadline)
      }
    }
    connection.scheduleFlush()
  }

  /// Whether the call has ended.
  public var isFinished: Bool { machine.isClosed }

  /// Sends a request message; returns false if the call already ended (the message is dropped).
  @discardableResult
  public func send(_ message: some GRPCCodable) -> Bool {
    eventLoop.preconditionInEventLoop()
    switch try? machine.sendMessage() {
    case .send?:
      io.enqueue(message)
      connection.queued(on: streamID, self)
      return true
    case .drop?, nil:
      return false
    }
  }

  /// Half-closes the request stream: END_STREAM follows the queued messages.
  public func finish() {
    eventLoop.preconditionInEventLoop()
    guard machine.finish() else { return }
    io.outboundEnded = true
    connection.queued(on: streamID, self)
  }

  /// Cancels the call: CANCELLED (or `status`), and RST_STREAM CANCEL to the server.
  public func cancel(status: GRPCStatus = GRPCStatus(.cancelled, "cancelled by the client")) {
    eventLoop.preconditionInEventLoop()
    terminate(.cancel(status))
  }

  /// Lets go of the call: RST_STREAM CANCEL to the server, and nothing more reported to the
  /// handler (its owner has moved on to another call).
  public func abandon() {
    eventLoop.preconditionInEventLoop()
    handler = nil
    terminate(.cancel(GRPCStatus(.cancelled, "abandoned by the client")))
  }

  /// Ends a call that could not start.
  func fail(_ status: GRPCStatus) {
    if case .ended(let status, _) = machine.connectionLost(status.message) {
      end(status, GRPCMetadata())
    }
  }

  var connectionHandler: GRPCConnectionHandler { connection }

  private enum Termination {
    case cancel(GRPCStatus)
    case deadline
  }

  private func terminate(_ termination: Termination) {
    let onTermination: GRPCClientStreamStateMachine.OnTermination
    switch termination {
    case .cancel(let status): onTermination = machine.cancel(status: status)
    case .deadline: onTermination = machine.deadlineExpired()
    }
    guard case .ended(let status, let reset) = onTermination else { return }
    if reset && streamID != 0 {
      connection.session.resetStream(streamID, errorCode: .cancel)
      connection.scheduleFlush()
    }
    end(status, GRPCMetadata())
  }

  private func end(_ status: GRPCStatus, _ metadata: GRPCMetadata) {
    deadline?.cancel()
    deadline = nil
    let handler = self.handler
    self.handler = nil
    if let owner {
      self.owner = nil
      owner.streamEnded()
    }
    handler?.finished(status: status, metadata: metadata)
  }

}

extension GRPCClientStream: ConnectionStream {
  func registered() {}

  func receivedHeaders(_ headers: [HTTPHeaderField], endStream: Bool) {
    switch machine.receive(headers: headers, endStream: endStream) {
    case .receivedMetadata(let metadata):
      handler?.receive(metadata: metadata)
    case .receivedStatus(let status, let metadata, let reset):
      if reset {
        // H29: trailers before our END_STREAM: reset so the server stops waiting for more
        // (after the read, unless the server reset the stream itself).
        connection.resetAfterRead(streamID)
      }
      end(status, metadata)
    case .ignore:
      break
    }
  }

  func receivedData(_ bytes: ByteBuffer) {
    // Messages are delivered at once and a partial one is held by the deframer: acknowledge the
    // bytes, unless the handler holds consumption because its own buffer is full.
    defer { connection.consume(bytes.readableBytes, on: self, streamID: streamID) }
    switch machine.receive(data: bytes, endStream: false) {
    case .deliver(let messages):
      for message in messages { handler?.receive(message: message) }
    case .fail(let status):
      connection.session.resetStream(streamID, errorCode: .cancel)
      connection.scheduleFlush()
      end(status, GRPCMetadata())
    case .ignore:
      break
    }
  }

  func receivedEndOfData() {
    switch machine.receive(data: ByteBuffer(), endStream: true) {
    case .deliver(let messages):
      for message in messages { handler?.receive(message: message) }
      if let status = machine.status { end(status, GRPCMetadata()) }
    case .fail(let status):
      end(status, GRPCMetadata())
    case .ignore:
      break
    }
  }

  func closed(errorCode: HTTP2ErrorCode) {
    let onTermination: GRPCClientStreamStateMachine.OnTermination
    if errorCode == .noError {
      onTermination = machine.connectionLost("the stream closed without a status")
    } else {
      onTermination = machine.receiveReset(errorCode: errorCode)
    }
    if case .ended(let status, _) = onTermination { end(status, GRPCMetadata()) }
  }

  func connectionLost(_ reason: String) {
    if case .ended(let status, _) = machine.connectionLost(reason) { end(status, GRPCMetadata()) }
  }

  func writabilityChanged(_ isWritable: Bool) {
    handler?.writabilityChanged(isWritable: isWritable)
  }

  func receivedOversizedHeaderList(_ error: GRPCLimitExceeded) {
    // The server's headers or trailers are over this side's limit: the call cannot be read.
    terminate(.cancel(GRPCStatus(.resourceExhausted, "the server's \(error.message)")))
  }

  func outputStalled(_ error: GRPCLimitExceeded) {
    terminate(.cancel(GRPCStatus(.resourceExhausted, error.message)))
  }
}
