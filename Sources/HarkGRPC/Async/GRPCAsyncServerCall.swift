public import HarkGRPCCore
import NIOConcurrencyHelpers
public import NIOCore

/// A server call in the async API: the request, its messages, and how to answer.
///
/// The method's closure runs in its own task; returning ends the call with OK (and the trailing
/// metadata set with ``setTrailingMetadata(_:)``), throwing a `GRPCStatus` ends it with that
/// status, and throwing anything else ends it with UNKNOWN.
public final class GRPCAsyncServerCall<Request: GRPCCodable, Response: GRPCCodable>: Sendable {
  /// The method's path.
  public let path: String
  /// The client's custom metadata.
  public let metadata: GRPCMetadata
  /// The client's deadline, if it sent one.
  public let timeout: GRPCTimeout?
  /// The request messages; iterate them once. Throws `GRPCStatus` if the call is cancelled.
  public let requests: GRPCMessageSequence<Request>

  private let eventLoop: any EventLoop
  private let bridge: NIOLoopBound<Bridge>
  private let trailers = NIOLockedValueBox(GRPCMetadata())

  final class Bridge: GRPCServerStreamHandler {
    let stream: GRPCServerStream
    let source: GRPCMessageSequence<Request>.Source
    let waiters = WritabilityWaiters()
    var task: Task<Void, Never>?
    var cancelledStatus: GRPCStatus?

    init(stream: GRPCServerStream, source: GRPCMessageSequence<Request>.Source) {
      self.stream = stream
      self.source = source
    }

    func receive(message: ByteBuffer) {
      let request: Request
      do {
        request = try Request(decoding: message)
      } catch {
        // A request that does not decode is the server's INTERNAL error (H36).
        let status = GRPCStatus(.internalError, "cannot decode a request: \(error)")
        stream.finish(status: status)
        cancelled(status)
        return
      }
      if source.yield(request) == .stopProducing { stream.holdConsumption(true) }
    }

    func receiveEndOfRequests() {
      source.finish()
    }

    func cancelled(_ status: GRPCStatus) {
      guard cancelledStatus == nil else { return }
      cancelledStatus = status
      source.finish(status)
      waiters.resumeAll(throwing: status)
      task?.cancel()
    }

    func writabilityChanged(isWritable: Bool) {
      if isWritable { waiters.resumeAll() }
    }
  }

  init(stream: GRPCServerStream) {
    let eventLoop = stream.eventLoop
    self.eventLoop = eventLoop
    path = stream.request.path
    metadata = stream.request.metadata
    timeout = stream.request.timeout
    let holder = NIOLoopBoundBox<Bridge?>(nil, eventLoop: eventLoop)
    let sequence = GRPCMessageSequence<Request>.makeSequence(
      backPressureStrategy: .init(lowWatermark: 4, highWatermark: 16),
      finishOnDeinit: false,
      delegate: GRPCConsumptionDelegate(
        eventLoop: stream.eventLoop,
        release: { holder.value?.stream.holdConsumption(false) },
        terminated: {}
      )
    )
    requests = sequence.sequence
    let bridge = Bridge(stream: stream, source: sequence.source)
    holder.value = bridge
    self.bridge = NIOLoopBound(bridge, eventLoop: stream.eventLoop)
  }

  var handler: any GRPCServerStreamHandler { bridge.value }

  /// Sends a response message, suspending while the response queue is full.
  ///
  /// - Throws: `GRPCStatus` CANCELLED if the call was cancelled.
  public func send(_ message: Response) async throws {
    let bridge = self.bridge
    let writable = try await eventLoop.submit { () throws -> Bool in
      let bridge = bridge.value
      guard bridge.stream.send(message) else {
        throw bridge.cancelledStatus ?? GRPCStatus(.cancelled, "the call ended")
      }
      return bridge.stream.isWritable
    }.get()
    guard !writable else { return }
    try await withCheckedThrowingContinuation {
      (continuation: CheckedContinuation<Void, any Error>) in
      eventLoop.execute {
        let bridge = bridge.value
        if let status = bridge.cancelledStatus {
          continuation.resume(throwing: status)
        } else if bridge.stream.isWritable {
          continuation.resume()
        } else {
          bridge.waiters.add(continuation)
        }
      }
    }
  }

  /// Sends the response headers now, with initial `metadata` (otherwise they go, without
  /// metadata, with the first response).
  public func sendHeaders(metadata: GRPCMetadata = GRPCMetadata()) async {
    let bridge = self.bridge
    try? await eventLoop.submit { bridge.value.stream.sendHeaders(metadata: metadata) }.get()
  }

  /// Cancels the call (RST_STREAM CANCEL): the client sees CANCELLED, the requests end.
  public func cancel() {
    let bridge = self.bridge
    eventLoop.execute {
      bridge.value.stream.cancel()
      bridge.value.cancelled(GRPCStatus(.cancelled, "cancelled by the server"))
    }
  }

  /// Sets the metadata sent with the status.
  public func setTrailingMetadata(_ metadata: GRPCMetadata) {
    trailers.withLockedValue { $0 = metadata }
  }

  func run(
    _ body: @escaping @Sendable (GRPCAsyncServerCall<Request, Response>) async throws -> Void
  ) {
    let bridge = self.bridge
    let eventLoop = self.eventLoop
    let trailers = self.trailers
    bridge.value.task = Task {
      let status: GRPCStatus
      do {
        try await body(self)
        status = .ok
      } catch let error as GRPCStatus {
        status = error
      } catch {
        status = GRPCStatus(.unknown, "the method failed: \(error)")
      }
      let metadata = trailers.withLockedValue { $0 }
      eventLoop.execute { bridge.value.stream.finish(status: status, metadata: metadata) }
    }
  }
}

extension GRPCServer.Method {
  /// A method served by an async closure, one task per call.
  public static func async<Request: GRPCCodable, Response: GRPCCodable>(
    _ path: String,
    requestType: Request.Type = Request.self,
    responseType: Response.Type = Response.self,
    _ body: @escaping @Sendable (GRPCAsyncServerCall<Request, Response>) async throws -> Void
  ) -> Self {
    GRPCServer.Method(path: path) { stream in
      let call = GRPCAsyncServerCall<Request, Response>(stream: stream)
      call.run(body)
      return call.handler
    }
  }
}

extension GRPCServerStream {
  /// Holds back (or releases) flow-control acknowledgement of received requests: while held,
  /// the client may send at most what its HTTP/2 window still allows. For a handler whose work
  /// falls behind what arrives.
  public func holdConsumption(_ hold: Bool) {
    // Once the stream is gone from its connection there is nothing to acknowledge (and the
    // connection itself may be gone).
    guard isAttached else { return }
    connectionHandler.holdConsumption(hold, on: self, streamID: streamID)
  }
}
