internal import CHarkPrefetch
internal import CNGHTTP2
public import HarkGRPCCore
import NIOCore

/// A stream as the connection sees it: where it routes the events of its stream id. The stream
/// is its own ``StreamIO``.
protocol ConnectionStream: StreamIO {
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
  /// A header block on the stream (trailers, or a response's headers) went over the header
  /// list limit; its fields were dropped.
  func receivedOversizedHeaderList(_ error: GRPCLimitExceeded)
  /// The peer took none of the stream's queued bytes for the write-stall timeout, or its queue
  /// outgrew the per-stream limit: the stream must end.
  func outputStalled(_ error: GRPCLimitExceeded)
}

extension ConnectionStream {
  /// The HTTP/2 side of the stream: the stream itself.
  var io: StreamIO { self }
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
  /// SETTINGS_MAX_HEADER_LIST_SIZE this side advertises and enforces: the HPACK-decoded size of
  /// a header block (names, values and 32 bytes a field, RFC 9113 §6.5.2), counted while it
  /// decodes. A larger block refuses its stream with RESOURCE_EXHAUSTED.
  public var maxHeaderListSize: Int
  /// Response bytes a stream may have waiting for the peer when the server queues another
  /// message; past this the stream is reset, so a handler that ignores writability cannot grow
  /// memory without bound (any one message up to the size limit still passes).
  public var maxQueuedBytesPerStream: Int

  /// A configuration; by default 10,000 concurrent streams (a recognizer carries thousands per
  /// connection: the HTTP/2 habit of 100 would throttle it), 4 MiB messages, 16 KiB header
  /// lists and 1 MiB queued per stream.
  public init(
    maxConcurrentStreams: Int = 10_000,
    maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize,
    initialStreamWindowSize: Int = 1 << 20,
    connectionWindowSize: Int = 32 << 20,
    maxHeaderListSize: Int = 16 << 10,
    maxQueuedBytesPerStream: Int = 1 << 20
  ) {
    self.maxConcurrentStreams = maxConcurrentStreams
    self.maxReceiveMessageSize = maxReceiveMessageSize
    self.initialStreamWindowSize = initialStreamWindowSize
    self.connectionWindowSize = connectionWindowSize
    self.maxHeaderListSize = maxHeaderListSize
    self.maxQueuedBytesPerStream = maxQueuedBytesPerStream
  }
}

/// What a server holds each of its connections to, beyond the HTTP/2 settings.
struct ServerConnectionLimits {
  /// Handshake, idle, reset-rate and header-list limits.
  var policy: ServerConnectionPolicy.Limits
  /// How long queued output may go untaken before its stream (or, if the socket itself is full
  /// that long, the connection) ends; nil never.
  var writeStallTimeout: TimeAmount?

  /// How often the connection checks its timers: a quarter of the shortest timeout, between
  /// 5 ms and 1 s.
  var sweepInterval: TimeAmount? {
    let timeouts = [policy.handshakeTimeout, policy.idleTimeout, writeStallTimeout].compactMap {
      $0
    }
    guard let shortest = timeouts.min() else { return nil }
    return .nanoseconds(min(max(shortest.nanoseconds / 4, 5_000_000), 1_000_000_000))
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
  let configuration: GRPCConnectionConfiguration
  private(set) var context: ChannelHandlerContext?
  var streams: [Int32: any ConnectionStream] = [:]
  /// Where the streams queue their first message between two flushes.
  let outboundScratch = OutboundScratch()
  /// The stream whose DATA frame nghttp2 announced (read) and writes next.
  private var streamBeingWritten: (id: Int32, stream: any ConnectionStream)?

  /// A server's limits for this connection; nil for a client.
  private let serverLimits: ServerConnectionLimits?
  private var policy: ServerConnectionPolicy?
  private var sweepTask: Scheduled<Void>?
  /// Since when the socket has refused writes (the peer reads nothing); nil while it takes them.
  private var unwritableSince: NIODeadline?
  /// Called (server role) with every limit a peer exceeds, as it happens, whether or not the
  /// connection closes for it: for logs and counters.
  var onLimitExceeded: ((GRPCLimitExceeded) -> Void)?
  /// Whether the reason the connection is closing was reported already (so that the GOAWAY
  /// nghttp2 sends for the same reason is not reported twice).
  private var closeReported = false

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
  /// The peer's GOAWAY, in words, once one arrived.
  private(set) var receivedGoAway: String?
  /// Whether any byte arrived (client role: the first bytes are checked for TLS).
  private var receivedAnything = false
  /// Why a plaintext client's connection cannot work, when the server's first bytes say so.
  private(set) var plaintextHint: String?

  /// Streams to reset with NO_ERROR once this side's END_STREAM is written: a response that
  /// ended before the request did (H29: the RST must follow the trailers, not overtake them).
  private var resetAfterEndOfStream: [Int32: HTTP2ErrorCode] = [:]

  private var flushScheduled = false
  /// Frame boundaries in the bytes read, for the prefetch (see `prefetch(for:)`).
  private var frameScanner: HTTP2FrameScanner
  /// The stream ids of one read's DATA frames (reused).
  private var prefetchIDs: [Int32] = []
  /// The index in `prefetchIDs` of the DATA frame nghttp2 hands over next.
  private var prefetchCursor = 0
  /// DATA frames whose stream's handler was prefetched (told to `liveObjects` at the end).
  private var prefetchedFrames = 0
  private var isReading = false
  /// When the current read's bytes arrived (meaningful while `isReading`).
  private var readStartedAt = NIODeadline.uptimeNanoseconds(0)

  /// When the bytes being handled arrived: the start of the read that carries them, or now
  /// outside a read. One clock reading per read rather than one per message.
  var arrivalTime: NIODeadline { isReading ? readStartedAt : .now() }
  private var isClosed = false
  private var closeReason = "connection closed"

  init(
    role: NGHTTP2Session.Role,
    configuration: GRPCConnectionConfiguration,
    eventLoop: any EventLoop,
    serverLimits: ServerConnectionLimits? = nil,
    liveObjects: LiveObjects? = nil
  ) throws {
    self.liveObjects = liveObjects
    self.role = role
    self.eventLoop = eventLoop
    self.configuration = configuration
    self.serverLimits = serverLimits
    self.frameScanner = role == .server ? .server : .client
    let resets = serverLimits?.policy ?? ServerConnectionPolicy.Limits()
    self.session = try NGHTTP2Session(
      role: role,
      settings: NGHTTP2Session.Settings(
        maxConcurrentStreams: configuration.maxConcurrentStreams,
        initialStreamWindowSize: configuration.initialStreamWindowSize,
        connectionWindowSize: configuration.connectionWindowSize,
        maxHeaderListSize: configuration.maxHeaderListSize,
        // libnghttp2's own limiter is only a backstop against a flood of frames: it counts
        // every RST_STREAM, also those of streams this side had already ended (which cost
        // nothing, and which the connection's own limit leaves out), so it is set far above.
        resetBurst: max(10 * resets.resetBurst, 10_000),
        resetsPerSecond: max(10 * resets.resetsPerSecond, 1_000)
      )
    )
    session.delegate = self
    liveObjects?.connectionHandlers.add(1)
  }

  deinit {
    liveObjects?.connectionHandlers.add(-1)
  }

  /// The server's count of live objects, if it keeps one.
  let liveObjects: LiveObjects?

  /// The channel's event loop, where everything here runs (kept after the channel closes, for
  /// streams that still ask). Its clock (`now`) times every limit, so that on an
  /// `EmbeddedEventLoop` the limits follow the virtual time the timers run on.
  let eventLoop: any EventLoop

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if let serverLimits {
      policy = ServerConnectionPolicy(limits: serverLimits.policy, now: eventLoop.now)
      scheduleSweep()
    }
    if context.channel.isActive { flush() }
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    // The pipeline holds the handler and the handler its context: let go of the context, the
    // timer (connectionGone cancels it) and the closures the owner set, so nothing keeps this
    // connection alive once closed.
    connectionGone()
    self.context = nil
    acceptStream = nil
    onGoAway = nil
    onPing = nil
    onRead = nil
    onClose = nil
    onSettings = nil
    onSendingHeadersOrData = nil
    onLimitExceeded = nil
  }

  func channelActive(context: ChannelHandlerContext) {
    // The client preface and both sides' SETTINGS go out first.
    flush()
    context.fireChannelActive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let bytes = unwrapInboundIn(data)
    if role == .client, !receivedSettings, !receivedAnything {
      receivedAnything = true
      // A TLS record (alert 0x15, handshake 0x16) where the server's HTTP/2 SETTINGS should be.
      if let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
        first == 0x15 || first == 0x16
      {
        plaintextHint =
          "the server answered with TLS: it does not speak plaintext h2c (drop --plaintext)"
        closeReason = plaintextHint!
        context.close(promise: nil)
        return
      }
    }
    isReading = true
    readStartedAt = .now()
    defer { isReading = false }
    onRead?()
    prefetch(for: bytes)
    do {
      try session.receive(bytes)
    } catch {
      // nghttp2 stopped: say why in GOAWAY, naming the last stream processed. (For errors in
      // frames, nghttp2 queued a GOAWAY of its own already and does not stop.)
      let (limit, code, reason) = Self.describeFatal(error, firstBytes: bytes)
      let exceeded = GRPCLimitExceeded(limit, reason)
      report(exceeded, closing: true)
      try? session.goAway(
        lastStreamID: session.lastProcessedStreamID,
        errorCode: code,
        debugData: reason
      )
      closeReason = "HTTP/2 error: \(reason)"
      flush()
      context.close(promise: nil)
    }
  }

  /// Before nghttp2 parses a read: finds its DATA frames' streams, to prefetch their memory a
  /// few frames ahead of nghttp2 as it goes through them (see `prefetchStep()`).
  ///
  /// At thousands of streams none of a stream's memory is still in cache from its last message,
  /// and taken one message at a time every first touch waited for memory in turn. Prefetched
  /// stage by stage a few frames ahead (nghttp2's stream state, then the stream object found
  /// through it, then the stream's handler, then what the handler names), those waits overlap
  /// with the frames in between. Not further ahead: on a shared machine, lines fetched a whole
  /// read (hundreds of messages) early were evicted before their frame came.
  private func prefetch(for bytes: ByteBuffer) {
    prefetchIDs.removeAll(keepingCapacity: true)
    // Every byte, also before any stream is open: the scanner follows the frames from the first.
    let limit = isClosed || streams.isEmpty ? 0 : Self.prefetchLimit
    bytes.withUnsafeReadableBytes { raw in
      frameScanner.scan(raw, limit: limit) { prefetchIDs.append($0) }
    }
    // The first frames' stages, as if the frames before them had been handled.
    prefetchCursor = -Self.prefetchDistances.nghttp2
    while prefetchCursor < 0 { prefetchStep() }
  }

  /// How many DATA frames ahead of the one nghttp2 hands over each stage of the prefetch runs.
  static let prefetchDistances = (nghttp2: 10, stream: 7, handler: 4, dependents: 2)

  /// The next stage of the prefetch for the frames ahead, called as each DATA frame arrives.
  /// Nothing is retained: each stream is found again through nghttp2, which has the address of
  /// the streams `streams` holds (see `register`), so a stream that closed meanwhile is skipped.
  private func prefetchStep() {
    let index = prefetchCursor
    prefetchCursor += 1
    let distances = Self.prefetchDistances
    if index + distances.nghttp2 < prefetchIDs.count {
      session.prefetchStream(prefetchIDs[index + distances.nghttp2])
    }
    if let address = streamAddress(ofFrame: index + distances.stream) {
      hark_prefetch_lines(address, StreamIO.prefetchLines)
    }
    if let address = streamAddress(ofFrame: index + distances.handler) {
      Unmanaged<StreamIO>.fromOpaque(address)._withUnsafeGuaranteedRef { $0.prefetchHandler() }
      prefetchedFrames &+= 1
    }
    if let address = streamAddress(ofFrame: index + distances.dependents) {
      Unmanaged<StreamIO>.fromOpaque(address)._withUnsafeGuaranteedRef {
        $0.prefetchHandlerDependents()
      }
    }
  }

  /// The stream object of the read's DATA frame at `index` in `prefetchIDs`, if there is such a
  /// frame and its stream is open.
  @inline(__always)
  private func streamAddress(ofFrame index: Int) -> UnsafeMutableRawPointer? {
    guard index >= 0, index < prefetchIDs.count else { return nil }
    return session.streamAddress(prefetchIDs[index])
  }

  /// The most DATA frames of one read whose streams are prefetched.
  static let prefetchLimit = 1024

  /// What a fatal error of nghttp2 means: the limit, the GOAWAY code and the words for both.
  static func describeFatal(
    _ error: NGHTTP2Error,
    firstBytes: ByteBuffer
  ) -> (GRPCLimitExceeded.Limit, HTTP2ErrorCode, String) {
    switch error.code {
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue:
      let start =
        firstBytes.getBytes(at: firstBytes.readerIndex, length: min(firstBytes.readableBytes, 8))
        ?? []
      let hint: String
      if start.first == 0x16 {
        hint = ": a TLS handshake, but this server speaks HTTP/2 without TLS (h2c)"
      } else if let text = String(validating: start, as: UTF8.self),
        ["GET ", "POST", "PUT ", "HEAD", "OPTI", "PRI "].contains(where: text.hasPrefix)
      {
        hint = text.hasPrefix("PRI ") ? ": a malformed preface" : ": an HTTP/1.x request"
      } else {
        hint = ""
      }
      return (.protocolError, .protocolError, "not an HTTP/2 connection preface\(hint)")
    case NGHTTP2_ERR_FLOODED.rawValue:
      return (
        .flood, .enhanceYourCalm,
        "flood: more than \(NGHTTP2Session.maxOutboundAcks) SETTINGS or PING frames awaiting acknowledgement"
      )
    case NGHTTP2_ERR_CALLBACK_FAILURE.rawValue, NGHTTP2_ERR_NOMEM.rawValue:
      return (.protocolError, .internalError, "internal error: \(error)")
    default:
      return (.protocolError, .protocolError, "\(error)")
    }
  }

  func channelReadComplete(context: ChannelHandlerContext) {
    flush()
    context.fireChannelReadComplete()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    // While the socket is full, frames stay in nghttp2 and queues, which holds writers back.
    if context.channel.isWritable {
      unwritableSince = nil
      flush()
    } else if unwritableSince == nil {
      unwritableSince = eventLoop.now
    }
    context.fireChannelWritabilityChanged()
  }

  func channelInactive(context: ChannelHandlerContext) {
    connectionGone()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // In a few words ("connection reset by peer"), not the event loop's whole error.
    closeReason = "connection error: \(GRPCConnectError.reason(error))"
    context.close(promise: nil)
  }

  private func connectionGone() {
    guard !isClosed else { return }
    isClosed = true
    sweepTask?.cancel()
    sweepTask = nil
    liveObjects?.prefetchedFrameCount.add(prefetchedFrames)
    let remaining = streams
    streams.removeAll()
    for id in remaining.keys { session.setStreamAddress(nil, streamID: id) }
    streamBeingWritten = nil
    outboundScratch.close()
    for (_, stream) in remaining { stream.connectionLost(closeReason) }
    onClose?()
  }

  // MARK: Limits

  /// Tells the owner a limit was exceeded; `closing` when the connection closes for it.
  private func report(_ error: GRPCLimitExceeded, closing: Bool) {
    if closing {
      guard !closeReported else { return }
      closeReported = true
    }
    onLimitExceeded?(error)
  }

  /// Carries out a verdict of the policy: GOAWAY naming the reason, then close.
  private func carryOut(_ verdict: ServerConnectionPolicy.Verdict) {
    guard case .close(let error, let code) = verdict else { return }
    report(error, closing: true)
    try? session.goAway(
      lastStreamID: session.lastProcessedStreamID,
      errorCode: code,
      debugData: error.message
    )
    close(reason: error.description)
  }

  private func scheduleSweep() {
    guard let interval = serverLimits?.sweepInterval else { return }
    // A strong capture: connectionGone cancels the task. A weak one would give the handler a
    // side table for good, and every retain of it (by each stream, per message) the slow path.
    sweepTask = eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
      sweep()
    }
  }

  /// Checks the connection's timers and each stream's output.
  private func sweep() {
    guard !isClosed, let serverLimits else { return }
    let now = eventLoop.now
    if let verdict = policy?.tick(now: now), verdict != .proceed {
      carryOut(verdict)
      return
    }
    if let timeout = serverLimits.writeStallTimeout {
      if let unwritableSince, now - unwritableSince >= timeout {
        // The peer reads nothing at all: no frame, not even GOAWAY, can reach it.
        report(
          GRPCLimitExceeded(
            .writeStall,
            "the peer read nothing for \(ServerConnectionPolicy.describe(timeout))"
          ),
          closing: true
        )
        close(reason: "the peer stopped reading")
        return
      }
      var stalled: [any ConnectionStream] = []
      for stream in streams.values where stream.io.checkStall(timeout: timeout, now: now) {
        stalled.append(stream)
      }
      for stream in stalled {
        let error = GRPCLimitExceeded(
          .writeStall,
          "the peer took no response bytes for \(ServerConnectionPolicy.describe(timeout))"
        )
        report(error, closing: false)
        stream.outputStalled(error)
      }
    }
    scheduleSweep()
  }

  /// A stream's queue went over the per-stream limit: the stream ends.
  func queueOverflowed(_ stream: any ConnectionStream) {
    let error = GRPCLimitExceeded(
      .outboundQueue,
      "\(stream.io.queuedBytes) bytes queued for the peer, over the limit of \(configuration.maxQueuedBytesPerStream)"
    )
    report(error, closing: false)
    stream.outputStalled(error)
  }

  /// Closes the connection now; every open stream learns why.
  /// Ends a drained connection after the callback that closed its last stream (not from inside
  /// nghttp2's own call).
  private func scheduleEndOfDrain() {
    eventLoop.assumeIsolated().execute { self.endDrainIfIdle() }
  }

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
    if !resetAfterRead.isEmpty {
      for streamID in resetAfterRead where session.isLocallyOpen(streamID) {
        session.resetStream(streamID, errorCode: .noError)
      }
      resetAfterRead.removeAll(keepingCapacity: true)
    }
    // What nghttp2 did not take from the scratch moves to its streams' own buffers.
    defer { outboundScratch.flushed() }
    do {
      // A bounded buffer at a time, while the socket takes them; the rest waits in nghttp2 and
      // the streams' queues until the channel is writable again (which flushes).
      repeat {
        var buffer = context.channel.allocator.buffer(capacity: 0)
        if try session.send(into: &buffer) {
          context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
      } while session.stoppedAtSendLimit && context.channel.isActive && context.channel.isWritable
    } catch {
      closeReason = "HTTP/2 error: \(error)"
      report(GRPCLimitExceeded(.protocolError, "cannot write frames: \(error)"), closing: true)
      context.close(promise: nil)
      return
    }
    if let sent = session.sentGoAway, sent.errorCode != .noError, !closeReported {
      // nghttp2 ended the connection for an error in the peer's frames, in its own words.
      let limit: GRPCLimitExceeded.Limit =
        sent.errorCode == .enhanceYourCalm ? .flood : .protocolError
      let reason = session.lastPeerError ?? sent.debugData
      closeReason = "HTTP/2 error: \(reason)"
      report(
        GRPCLimitExceeded(
          limit,
          "GOAWAY \(sent.errorCode): \(reason.isEmpty ? "no reason" : reason)"
        ),
        closing: true
      )
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
    // For the read's prefetch: valid while `streams` holds the stream (cleared where it lets go).
    session.setStreamAddress(Unmanaged.passUnretained(stream.io).toOpaque(), streamID: id)
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
    // A limit may close the connection from one of nghttp2's callbacks, and nghttp2 goes on with
    // the rest of the bytes read (when the socket is full, the GOAWAY that would stop new streams
    // is not even written). A stream accepted then would never learn the connection is gone: its
    // handler would wait forever, and touch this handler once freed.
    guard role == .server, !isClosed, let acceptStream else { return }
    if draining {
      // A call that crossed the shutdown notice: refused, for the client to try elsewhere
      // (DESIGN rule 8). libnghttp2 would otherwise take it.
      session.resetStream(streamID, errorCode: .refusedStream)
      scheduleFlush()
      return
    }
    if let stream = acceptStream(self, streamID, headers, endStream) {
      policy?.streamOpened()
      register(stream, id: streamID)
    }
  }

  func session(receivedOversizedHeaderList size: Int, endStream: Bool, streamID: Int32) {
    let error = GRPCLimitExceeded(
      .headerListSize,
      "a header list of \(size) bytes on stream \(streamID), over the limit of \(configuration.maxHeaderListSize)"
    )
    report(error, closing: false)
    if let stream = streams[streamID] {
      stream.receivedOversizedHeaderList(error)
    } else if role == .server {
      respondTrailersOnly(
        streamID: streamID,
        status: GRPCStatus(
          .resourceExhausted,
          "request headers of \(size) bytes are over the server's limit of \(configuration.maxHeaderListSize)"
        ),
        requestEnded: endStream
      )
    }
    if let verdict = policy?.receivedOversizedHeaderList(
      size: size,
      limit: configuration.maxHeaderListSize
    ) {
      carryOut(verdict)
    }
  }

  func session(receivedResetForStream streamID: Int32, errorCode: HTTP2ErrorCode) {
    // Only the reset of a stream this side is still answering costs it work (the rapid-reset
    // attack). A client that resets a stream after its status, as gRPC clients do when the
    // status came before their END_STREAM (H29), costs nothing: counting those closed the
    // connection of a client whose calls were refused (409) faster than the reset rate.
    liveObjects?.resetsReceivedCount.add(1)
    guard session.isLocallyOpen(streamID) else { return }
    guard let verdict = policy?.receivedReset(now: eventLoop.now) else { return }
    carryOut(verdict)
  }

  func session(refusedStream streamID: Int32) {
    report(
      GRPCLimitExceeded(
        .concurrentStreams,
        "stream \(streamID) refused: over \(configuration.maxConcurrentStreams) concurrent streams"
      ),
      closing: false
    )
  }

  /// Answers a stream this side did not accept with a Trailers-Only gRPC status; if the peer is
  /// still sending, resets the stream with NO_ERROR after it (H29).
  func respondTrailersOnly(streamID: Int32, status: GRPCStatus, requestEnded: Bool) {
    respond(
      streamID: streamID,
      fields: GRPCServerStreamStateMachine.responseHeaders
        + GRPCServerStreamStateMachine.statusFields(status, GRPCMetadata()),
      reset: !requestEnded
    )
  }

  /// Answers a stream with one HEADERS frame and END_STREAM; if the client is still sending,
  /// resets the stream with NO_ERROR after it (H29).
  func respond(streamID: Int32, fields: [HTTPHeaderField], reset: Bool) {
    do {
      try session.submitResponse(streamID: streamID, headers: fields, withBody: false)
      if reset { self.reset(streamID, afterEndOfStreamWith: .noError) }
    } catch {
      session.resetStream(streamID, errorCode: .internalError)
    }
    scheduleFlush()
  }

  func session(receivedData bytes: UnsafeRawBufferPointer, streamID: Int32) {
    if prefetchCursor < prefetchIDs.count { prefetchStep() }
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

  /// The server is draining this connection: it sent the shutdown notice, refuses new streams,
  /// and ends the connection once its last stream has closed.
  private(set) var draining = false

  /// Begins a drain (server role): the shutdown notice now; new streams are refused with
  /// REFUSED_STREAM while those open go on; once none is left, the final GOAWAY and close.
  func beginDrain() {
    guard role == .server, !draining, !isClosed else { return }
    draining = true
    try? session.submitShutdownNotice()
    flush()
    endDrainIfIdle()
  }

  /// A draining connection without a stream: the final GOAWAY (naming the last stream
  /// processed), then close.
  private func endDrainIfIdle() {
    guard draining, streams.isEmpty, !isClosed else { return }
    try? session.goAway(lastStreamID: session.lastProcessedStreamID, errorCode: .noError)
    close(reason: "server draining")
  }

  func session(closedStream streamID: Int32, errorCode: HTTP2ErrorCode) {
    resetAfterEndOfStream.removeValue(forKey: streamID)
    guard let stream = streams.removeValue(forKey: streamID) else { return }
    defer { if draining && streams.isEmpty { scheduleEndOfDrain() } }
    session.setStreamAddress(nil, streamID: streamID)
    policy?.streamClosed(now: eventLoop.now)
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
    let debug = String(decoding: debugData, as: UTF8.self)
    receivedGoAway = debug.isEmpty ? "GOAWAY \(errorCode)" : "GOAWAY \(errorCode): \(debug)"
    onGoAway?(lastStreamID, errorCode, debug)
  }

  func session(receivedPing payload: UInt64, isAck: Bool) {
    onPing?(payload, isAck)
  }

  func session(readDataForStream streamID: Int32, maxLength: Int) -> NGHTTP2DataRead {
    guard let stream = streams[streamID] else { return .deferred }
    let read = stream.io.read(maxLength: maxLength)
    if case .data(let length, _, _) = read, length > 0 {
      // nghttp2 writes the frame next: its stream is at hand then without a second lookup.
      streamBeingWritten = (streamID, stream)
    }
    return read
  }

  func session(writeData length: Int, forStream streamID: Int32, into buffer: inout ByteBuffer) {
    let stream: any ConnectionStream
    if let current = streamBeingWritten, current.id == streamID {
      stream = current.stream
    } else if let found = streams[streamID] {
      stream = found
    } else {
      return
    }
    streamBeingWritten = nil
    if stream.io.write(length, into: &buffer) { stream.writabilityChanged(true) }
  }

  /// Resets `streamID` with `errorCode` right after this side's END_STREAM frame is written.
  /// Client streams whose status came before this side's END_STREAM (H29), to reset with
  /// NO_ERROR once the read that brought the status is done, unless the server reset them in
  /// that same read (as a Hark server does): a reset of a stream the server already closed is
  /// one more frame for its reset limits to count.
  private var resetAfterRead: [Int32] = []

  /// Resets client stream `streamID` with NO_ERROR after the current read, if the server has
  /// not reset it by then (see `resetAfterRead`).
  func resetAfterRead(_ streamID: Int32) {
    resetAfterRead.append(streamID)
    scheduleFlush()
  }

  func reset(_ streamID: Int32, afterEndOfStreamWith errorCode: HTTP2ErrorCode) {
    resetAfterEndOfStream[streamID] = errorCode
  }

  func sessionReceivedSettings() {
    receivedSettings = true
    policy?.receivedSettings(now: eventLoop.now)
    onSettings?()
  }

  func session(sentEndOfStream streamID: Int32) {
    streams[streamID]?.io.endWritten = true
    // The reset was decided while the peer was still sending; if its END_STREAM arrived before
    // ours went out, the stream is closed now, and nothing but PRIORITY may follow on it.
    if let errorCode = resetAfterEndOfStream.removeValue(forKey: streamID),
      !session.peerEndedStream(streamID)
    {
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
