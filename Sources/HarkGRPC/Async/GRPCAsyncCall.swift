public import HarkGRPCCore
import NIOConcurrencyHelpers
public import NIOCore

/// The inbound messages of a call, with back-pressure: when the consumer falls behind, the
/// stream stops acknowledging DATA, and HTTP/2 flow control stops the peer.
public typealias GRPCMessageSequence<Message: Sendable> = NIOThrowingAsyncSequenceProducer<
  Message, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
  GRPCConsumptionDelegate
>

/// Releases held flow control when the consumer of a ``GRPCMessageSequence`` wants more.
public struct GRPCConsumptionDelegate: NIOAsyncSequenceProducerDelegate {
  let eventLoop: any EventLoop
  let release: @Sendable () -> Void
  let terminated: @Sendable () -> Void

  public func produceMore() {
    eventLoop.execute { release() }
  }

  public func didTerminate() {
    eventLoop.execute { terminated() }
  }
}

/// Waiters for a stream's queue to drain, on one event loop.
final class WritabilityWaiters {
  private var waiters: [CheckedContinuation<Void, any Error>] = []

  func add(_ continuation: CheckedContinuation<Void, any Error>) {
    waiters.append(continuation)
  }

  func resumeAll(throwing error: (any Error)? = nil) {
    let waiting = waiters
    waiters.removeAll()
    for waiter in waiting {
      if let error { waiter.resume(throwing: error) } else { waiter.resume() }
    }
  }
}

/// A client call in the async API: send requests, read responses, then the status.
///
/// ``send(_:)`` suspends while the request queue is full (the server's flow-control window is
/// closed); ``responses`` yields each response and throws the status if the call ends with one
/// other than OK.
public final class GRPCAsyncCall<Request: GRPCCodable, Response: GRPCCodable>: Sendable {
  /// The responses; iterate them once. Ends normally on OK, throws `GRPCStatus` otherwise.
  public let responses: GRPCMessageSequence<Response>
  private let eventLoop: any EventLoop
  private let bridge: NIOLoopBound<Bridge>
  private let ended: EventLoopPromise<(GRPCStatus, GRPCMetadata)>
  private let headers: EventLoopPromise<GRPCMetadata>

  /// Bridges the on-loop stream events to the async side.
  final class Bridge: GRPCClientStreamHandler {
    var stream: GRPCClientStream?
    let source: GRPCMessageSequence<Response>.Source
    let ended: EventLoopPromise<(GRPCStatus, GRPCMetadata)>
    let headers: EventLoopPromise<GRPCMetadata>
    let waiters = WritabilityWaiters()
    var status: GRPCStatus?

    init(
      source: GRPCMessageSequence<Response>.Source,
      ended: EventLoopPromise<(GRPCStatus, GRPCMetadata)>,
      headers: EventLoopPromise<GRPCMetadata>
    ) {
      self.source = source
      self.ended = ended
      self.headers = headers
    }

    func receive(metadata: GRPCMetadata) {
      headers.succeed(metadata)
    }

    func receive(message: ByteBuffer) {
      let response: Response
      do {
        response = try Response(decoding: message)
      } catch {
        // A response that does not decode is the client's INTERNAL error (H36).
        stream?.cancel(status: GRPCStatus(.internalError, "cannot decode a response: \(error)"))
        return
      }
      if source.yield(response) == .stopProducing, let stream {
        stream.holdConsumption(true)
      }
    }

    func finished(status: GRPCStatus, metadata: GRPCMetadata) {
      self.status = status
      headers.succeed(GRPCMetadata())
      ended.succeed((status, metadata))
      if status.code == .ok { source.finish() } else { source.finish(status) }
      waiters.resumeAll(
        throwing: status.code == .ok ? GRPCStatus(.cancelled, "the call ended") : status
      )
    }

    func writabilityChanged(isWritable: Bool) {
      if isWritable { waiters.resumeAll() }
    }
  }

  init(connection: GRPCClientConnection, path: String, metadata: GRPCMetadata, timeout: TimeAmount?)
  {
    eventLoop = connection.eventLoop
    eventLoop.preconditionInEventLoop()
    let ended = eventLoop.makePromise(of: (GRPCStatus, GRPCMetadata).self)
    let headers = eventLoop.makePromise(of: GRPCMetadata.self)
    self.ended = ended
    self.headers = headers
    let holder = NIOLoopBoundBox<Bridge?>(nil, eventLoop: eventLoop)
    let eventLoop = self.eventLoop
    let sequence = GRPCMessageSequence<Response>.makeSequence(
      backPressureStrategy: .init(lowWatermark: 4, highWatermark: 16),
      finishOnDeinit: false,
      delegate: GRPCConsumptionDelegate(
        eventLoop: eventLoop,
        release: { holder.value?.stream?.holdConsumption(false) },
        terminated: {}
      )
    )
    responses = sequence.sequence
    let bridge = Bridge(source: sequence.source, ended: ended, headers: headers)
    holder.value = bridge
    self.bridge = NIOLoopBound(bridge, eventLoop: eventLoop)
    bridge.stream = connection.makeStream(
      path: path,
      metadata: metadata,
      timeout: timeout,
      handler: bridge
    )
  }

  /// Sends a request message, suspending while the request queue is full.
  ///
  /// - Throws: the call's status if it already ended (CANCELLED if it ended with OK).
  public func send(_ message: Request) async throws {
    let bridge = self.bridge
    let writable = try await eventLoop.submit { () throws -> Bool in
      let bridge = bridge.value
      guard let stream = bridge.stream, stream.send(message) else {
        throw bridge.status ?? GRPCStatus(.cancelled, "the call ended")
      }
      return stream.isWritable
    }.get()
    guard !writable else { return }
    try await withCheckedThrowingContinuation {
      (continuation: CheckedContinuation<Void, any Error>) in
      eventLoop.execute {
        let bridge = bridge.value
        if let status = bridge.status {
          continuation.resume(throwing: status)
        } else if bridge.stream?.isWritable ?? true {
          continuation.resume()
        } else {
          bridge.waiters.add(continuation)
        }
      }
    }
  }

  /// Half-closes the request stream.
  public func finish() async {
    let bridge = self.bridge
    try? await eventLoop.submit { bridge.value.stream?.finish() }.get()
  }

  /// Cancels the call (CANCELLED); the server sees RST_STREAM CANCEL.
  public func cancel() {
    let bridge = self.bridge
    eventLoop.execute { bridge.value.stream?.cancel() }
  }

  /// The server's response headers (empty if the call ended without any).
  public var initialMetadata: GRPCMetadata {
    get async { (try? await headers.futureResult.get()) ?? GRPCMetadata() }
  }

  /// The status the call ended with, once it ended.
  public var status: GRPCStatus {
    get async { (try? await ended.futureResult.get())?.0 ?? GRPCStatus(.unknown, "no status") }
  }

  /// The trailing metadata, once the call ended.
  public var trailingMetadata: GRPCMetadata {
    get async { (try? await ended.futureResult.get())?.1 ?? GRPCMetadata() }
  }

  var isFinished: Bool {
    get async {
      let bridge = self.bridge
      return (try? await eventLoop.submit { bridge.value.status != nil }.get()) ?? true
    }
  }
}

extension GRPCChannel {
  /// Runs `body` with a new call to `path`; if the call is still open when `body` returns or
  /// throws, it is cancelled.
  public func withCall<Request: GRPCCodable, Response: GRPCCodable, Result: Sendable>(
    path: String,
    metadata: GRPCMetadata = GRPCMetadata(),
    timeout: TimeAmount? = nil,
    request: Request.Type = Request.self,
    response: Response.Type = Response.self,
    _ body: (GRPCAsyncCall<Request, Response>) async throws -> Result
  ) async throws -> Result {
    let connection = try await connection()
    let call = try await connection.eventLoop.submit {
      GRPCAsyncCall<Request, Response>(
        connection: connection,
        path: path,
        metadata: metadata,
        timeout: timeout
      )
    }.get()
    do {
      let result = try await body(call)
      if await !call.isFinished { call.cancel() }
      return result
    } catch {
      call.cancel()
      throw error
    }
  }
}

extension GRPCClientStream {
  /// Holds back (or releases) flow-control acknowledgement of received responses.
  package func holdConsumption(_ hold: Bool) {
    connectionHandler.holdConsumption(hold, on: self, streamID: streamID)
  }
}
