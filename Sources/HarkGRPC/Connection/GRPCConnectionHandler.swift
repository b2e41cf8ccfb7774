public import HarkGRPCCore
import NIOCore

/// A stream as the connection sees it: where it routes the events of its stream id.
protocol ConnectionStream: AnyObject {
  var io: StreamIO { get }
  func receivedHeaders(_ headers: [HTTPHeaderField], endStream: Bool)
  func receivedData(_ bytes: ByteBuffer)
  func receivedEndOfData()
  /// The stream closed in nghttp2 (normally, by RST_STREAM, or because the connection went).
  func closed(errorCode: HTTP2ErrorCode)
  /// The connection is gone; `reason` says why.
  func connectionLost(_ reason: String)
  /// The stream was registered under its id (after its first HEADERS, for a server).
  func registered()
  /// The queue drained below its low watermark, or filled past its high one.
  func writabilityChanged(_ isWritable: Bool)
}

/// Settings of a gRPC connection, for either role.
public struct GRPCConnectionConfiguration: Sendable {
  /// SETTINGS_MAX_CONCURRENT_STREAMS this side advertises.
  public var maxConcurrentStreams: Int
  /// The largest message accepted.
  public var maxReceiveMessageSize: Int
  /// The receive window of each stream, in bytes.
  public var initialStreamWindowSize: Int
  /// The receive window of the connection, in bytes.
  public var connectionWindowSize: Int

  /// A configuration; by default 10,000 concurrent streams (a recognizer carries thousands per
  /// connection: the HTTP/2 habit of 100 would throttle it) and 4 MiB messages.
  public init(
    maxConcurrentStreams: Int = 10_000,
    maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize,
    initialStreamWindowSize: Int = 1 << 20,
    connectionWindowSize: Int = 32 << 20
  ) {
    self.maxConcurrentStreams = maxConcurrentStreams
    self.maxReceiveMessageSize = maxReceiveMessageSize
    self.initialStreamWindowSize = initialStreamWindowSize
    self.connectionWindowSize = connectionWindowSize
  }
}

/// Drives one HTTP/2 connection: socket bytes into nghttp2, nghttp2's frames back out, and each
/// stream's events to its `ConnectionStream`.
///
/// Everything here runs on the channel's event loop. Writes from many streams during one turn of
/// the loop leave in one socket write: a stream that queues data asks for a flush, and the flush
/// runs once, after the turn's other work.
final class GRPCConnectionHandler: ChannelInboundHandler, NGHTTP2SessionDelegate {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  let role: NGHTTP2Session.Role
  let session: NGHTTP2Session
  private(set) var context: ChannelHandlerContext?
  var streams: [Int32: any ConnectionStream] = [:]

  /// Called (server role) with the headers of a stream the client opened; returns its handler,
  /// or nil after answering the stream itself.
  var acceptStream:
    ((GRPCConnectionHandler, Int32, [HTTPHeaderField], Bool) -> (any ConnectionStream)?)?
  /// Called when the peer sends GOAWAY.
  var onGoAway: ((Int32, HTTP2ErrorCode, String) -> Void)?
  /// Called when a PING arrives (`isAck` false) or our PING is acknowledged.
  var onPing: ((UInt64, Bool) -> Void)?
  /// Called when frames arrive on the connection (any read), for keepalive.
  var onRead: (() -> Void)?
  /// Called once, when the connection is gone.
  var onClose: (() -> Void)?
  /// Called when the peer's SETTINGS arrive.
  var onSettings: (() -> Void)?
  /// Whether the peer's first SETTINGS arrived (a client uses the connection only then, so it
  /// knows the server's stream limit before opening streams).
  private(set) var receivedSettings = false

  /// Streams to reset with NO_ERROR once this side's END_STREAM is written: a response that
  /// ended before the request did (H29: the RST must follow the trailers, not overtake them).
  private var resetAfterEndOfStream: [Int32: HTTP2ErrorCode] = [:]

  private var flushScheduled = false
  private var isReading = false
  private var isClosed = false
  private var closeReason = "connection closed"

  init(role: NGHTTP2Session.Role, configuration: GRPCConnectionConfiguration) throws {
    self.role = role
    self.session = try NGHTTP2Session(
      role: role,
      settings: NGHTTP2Session.Settings(
        maxConcurrentStreams: configuration.maxConcurrentStreams,
        initialStreamWindowSize: configuration.initialStreamWindowSize,
        connectionWindowSize: configuration.connectionWindowSize
      )
    )
    session.delegate = self
  }

  var eventLoop: any EventLoop { context!.eventLoop }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if context.channel.isActive { flush() }
  }

  func channelActive(context: ChannelHandlerContext) {
    // The client preface and both sides' SETTINGS go out first.
    flush()
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let bytes = unwrapInboundIn(data)
    isReading = true
    defer { isReading = false }
    onRead?()
    do {
      try session.receive(bytes)
    } catch {
      // Bytes that are not HTTP/2 at all (no client preface, e.g. HTTP/1.1): a connection
      // error PROTOCOL_ERROR (RFC 9113 §3.4). nghttp2 queued GOAWAY for errors in frames itself.
      try? session.goAway(
        lastStreamID: 0,
        errorCode: .protocolError,
        debugData: "not an HTTP/2 connection preface"
      )
      closeReason = "HTTP/2 protocol error: \(error)"
      flush()
      context.close(promise: nil)
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    flush()
    context.fireChannelReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    // While the socket is full, frames stay in nghttp2 and queues, which holds writers back.
    if context.channel.isWritable { flush() }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    connectionGone()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    closeReason = "connection error: \(error)"
    context.close(promise: nil)
  }

  private func connectionGone() {
    guard !isClosed else { return }
    isClosed = true
    let remaining = streams
    streams.removeAll()
    for (_, stream) in remaining { stream.connectionLost(closeReason) }
    onClose?()
  }

  /// Closes the connection now; every open stream learns why.
  func close(reason: String) {
    closeReason = reason
    flush()
    context?.close(promise: nil)
  }

  var isConnectionClosed: Bool { isClosed }

  // MARK: Writing

  /// Sends what nghttp2 has ready, now if the loop is reading (the read completes with a flush)
  /// or at the end of this turn of the loop otherwise.
  func scheduleFlush() {
    guard !flushScheduled, !isReading, let context else { return }
    flushScheduled = true
    context.eventLoop.assumeIsolated().execute { self.flush() }
  }

  /// Sends what nghttp2 has ready.
  func flush() {
    flushScheduled = false
    guard let context, !isClosed, context.channel.isActive, context.channel.isWritable else {
      return
    }
    var buffer = context.channel.allocator.buffer(capacity: 0)
    do {
      let wrote = try session.send(into: &buffer)
      if wrote { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    } catch {
      closeReason = "HTTP/2 error: \(error)"
      context.close(promise: nil)
      return
    }
    if !session.isActive {
      // Both sides sent GOAWAY and every stream ended: the connection is done.
      context.close(promise: nil)
    }
  }

  /// Queues `bytes` for a stream and wakes nghttp2's data provider.
  func queued(on streamID: Int32, _ stream: any ConnectionStream) {
    if stream.io.didQueue() { stream.writabilityChanged(false) }
    if stream.io.takeDeferred() { session.resumeData(streamID: streamID) }
    scheduleFlush()
  }

  /// Registers a stream this side opened, or one the peer opened that this side accepted.
  func register(_ stream: any ConnectionStream, id: Int32) {
    streams[id] = stream
    stream.registered()
  }

  /// Called when this side queues HEADERS or DATA (which resets the server's ping strikes).
  var onSendingHeadersOrData: (() -> Void)?

  // MARK: nghttp2 events

  func session(receivedHeaders headers: [HTTPHeaderField], endStream: Bool, streamID: Int32) {
    if let stream = streams[streamID] {
      stream.receivedHeaders(headers, endStream: endStream)
      return
    }
    guard role == .server, let acceptStream else { return }
    if let stream = acceptStream(self, streamID, headers, endStream) {
      register(stream, id: streamID)
    }
  }

  func session(receivedData bytes: UnsafeRawBufferPointer, streamID: Int32) {
    guard let stream = streams[streamID] else {
      // A stream we already ended: acknowledge the bytes so the connection window stays open.
      session.consume(bytes.count, streamID: streamID)
      return
    }
    stream.io.unconsumedBytes += bytes.count
    // A slice of the bytes read from the socket; a copy only if nghttp2 buffered them itself.
    if let slice = session.inboundSlice(bytes) {
      stream.receivedData(slice)
      return
    }
    var buffer = context!.channel.allocator.buffer(capacity: bytes.count)
    buffer.writeBytes(bytes)
    stream.receivedData(buffer)
  }

  func session(receivedEndOfDataForStream streamID: Int32) {
    streams[streamID]?.receivedEndOfData()
  }

  func session(closedStream streamID: Int32, errorCode: HTTP2ErrorCode) {
    resetAfterEndOfStream.removeValue(forKey: streamID)
    guard let stream = streams.removeValue(forKey: streamID) else { return }
    if stream.io.unconsumedBytes > 0 {
      session.consume(stream.io.unconsumedBytes, streamID: streamID)
      stream.io.unconsumedBytes = 0
    }
    stream.closed(errorCode: errorCode)
  }

  func session(
    receivedGoAwayWithLastStreamID lastStreamID: Int32,
    errorCode: HTTP2ErrorCode,
    debugData: [UInt8]
  ) {
    onGoAway?(lastStreamID, errorCode, String(decoding: debugData, as: UTF8.self))
  }

  func session(receivedPing payload: UInt64, isAck: Bool) {
    onPing?(payload, isAck)
  }

  func session(readDataForStream streamID: Int32, maxLength: Int) -> NGHTTP2DataRead {
    guard let stream = streams[streamID] else { return .deferred }
    return stream.io.read(maxLength: maxLength)
  }

  func session(writeData length: Int, forStream streamID: Int32, into buffer: inout ByteBuffer) {
    guard let stream = streams[streamID] else { return }
    if stream.io.write(length, into: &buffer) { stream.writabilityChanged(true) }
  }

  /// Resets `streamID` with `errorCode` right after this side's END_STREAM frame is written.
  func reset(_ streamID: Int32, afterEndOfStreamWith errorCode: HTTP2ErrorCode) {
    resetAfterEndOfStream[streamID] = errorCode
  }

  func sessionReceivedSettings() {
    receivedSettings = true
    onSettings?()
  }

  func session(sentEndOfStream streamID: Int32) {
    if let errorCode = resetAfterEndOfStream.removeValue(forKey: streamID) {
      session.resetStream(streamID, errorCode: errorCode)
    }
  }

  /// Acknowledges `count` consumed bytes of a stream (later, if its consumption is held).
  func consume(_ count: Int, on stream: any ConnectionStream, streamID: Int32) {
    let count = min(count, stream.io.unconsumedBytes - stream.io.heldBytes)
    guard count > 0 else { return }
    if stream.io.consumptionHeld {
      stream.io.heldBytes += count
      return
    }
    stream.io.unconsumedBytes -= count
    session.consume(count, streamID: streamID)
    scheduleFlush()
  }

  /// Holds back (or releases) the acknowledgement of a stream's consumed bytes.
  func holdConsumption(_ hold: Bool, on stream: any ConnectionStream, streamID: Int32) {
    stream.io.consumptionHeld = hold
    guard !hold, stream.io.heldBytes > 0 else { return }
    let count = stream.io.heldBytes
    stream.io.heldBytes = 0
    consume(count, on: stream, streamID: streamID)
  }
}
