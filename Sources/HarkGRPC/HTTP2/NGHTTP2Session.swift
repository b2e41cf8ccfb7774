internal import CHarkPrefetch
internal import CNGHTTP2
import HarkGRPCCore
import NIOCore

/// A negative return of libnghttp2, with its name.
struct NGHTTP2Error: Error, Hashable, Sendable, CustomStringConvertible {
  /// The nghttp2 error code (`NGHTTP2_ERR_…`, always negative).
  var code: Int32

  var description: String {
    "nghttp2: \(String(cString: nghttp2_strerror(code))) (\(code))"
  }

  /// Whether the session cannot be used any more (`nghttp2_is_fatal`).
  var isFatal: Bool { nghttp2_is_fatal(code) != 0 }
}

/// Turns every negative return code of libnghttp2 into an `NGHTTP2Error`, in one place.
@inline(__always)
private func check(_ returnValue: Int32) throws(NGHTTP2Error) {
  if returnValue < 0 { throw NGHTTP2Error(code: returnValue) }
}

/// What the data source of a stream has to send when nghttp2 asks.
enum NGHTTP2DataRead {
  /// Nothing yet: nghttp2 stops asking until `resumeData(streamID:)`.
  case deferred
  /// `length` bytes are ready; `endStream` ends the request or response body, after which
  /// `trailers` (if any) are sent as a final HEADERS frame with END_STREAM.
  case data(length: Int, endStream: Bool, trailers: [HTTPHeaderField]?)
}

/// The events of one nghttp2 session, delivered on the connection's event loop.
///
/// Byte pointers are valid only during the call: implementations copy what they keep.
protocol NGHTTP2SessionDelegate: AnyObject {
  /// A complete HEADERS block (request or response headers, or trailers) arrived.
  func session(receivedHeaders headers: [HTTPHeaderField], endStream: Bool, streamID: Int32)
  /// A HEADERS block arrived whose decoded size (RFC 9113 §6.5.2: names, values and 32 bytes a
  /// field) went over SETTINGS_MAX_HEADER_LIST_SIZE; its fields were dropped as they decoded.
  func session(receivedOversizedHeaderList size: Int, endStream: Bool, streamID: Int32)
  /// The peer reset a stream (RST_STREAM); `session(closedStream:errorCode:)` follows if the
  /// stream was open.
  func session(receivedResetForStream streamID: Int32, errorCode: HTTP2ErrorCode)
  /// nghttp2 refused a stream the peer opened beyond SETTINGS_MAX_CONCURRENT_STREAMS
  /// (RST_STREAM REFUSED_STREAM).
  func session(refusedStream streamID: Int32)
  /// A chunk of DATA arrived; the bytes count against flow control until consumed.
  func session(receivedData bytes: UnsafeRawBufferPointer, streamID: Int32)
  /// A DATA frame ended the peer's side of the stream.
  func session(receivedEndOfDataForStream streamID: Int32)
  /// The stream closed; `errorCode` is that of RST_STREAM (or NO_ERROR for a normal close).
  func session(closedStream streamID: Int32, errorCode: HTTP2ErrorCode)
  /// The peer sent GOAWAY.
  func session(
    receivedGoAwayWithLastStreamID lastStreamID: Int32,
    errorCode: HTTP2ErrorCode,
    debugData: [UInt8]
  )
  /// The peer sent a PING (answered automatically) or acknowledged ours.
  func session(receivedPing payload: UInt64, isAck: Bool)
  /// The peer's SETTINGS arrived (not an acknowledgement of ours).
  func sessionReceivedSettings()
  /// A frame that ends this side of a stream (END_STREAM) was written.
  func session(sentEndOfStream streamID: Int32)
  /// nghttp2 wants the next bytes of a stream's body.
  func session(readDataForStream streamID: Int32, maxLength: Int) -> NGHTTP2DataRead
  /// Writes `length` bytes of the stream's body, which `session(readDataForStream:)` announced.
  func session(writeData length: Int, forStream streamID: Int32, into buffer: inout ByteBuffer)
}

/// One HTTP/2 connection's nghttp2 session: the only object that touches the `nghttp2_session*`.
///
/// It lives on one event loop. Inbound bytes go in through ``receive(_:)``; the frames nghttp2
/// produces come out of ``send(into:)``. Request and response bodies use a data provider that
/// reports ``NGHTTP2DataRead/deferred`` until the application queues data, so HTTP/2 flow control
/// becomes back-pressure on the producer; DATA is written without an intermediate copy
/// (`NGHTTP2_DATA_FLAG_NO_COPY`). Inbound DATA is acknowledged (`WINDOW_UPDATE`) only when the
/// application calls ``consume(_:streamID:)``.
final class NGHTTP2Session {
  /// Which side of the connection this is.
  enum Role: Sendable {
    case client
    case server
  }

  /// The settings this side sends.
  struct Settings: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may open.
    var maxConcurrentStreams: Int
    /// SETTINGS_INITIAL_WINDOW_SIZE: bytes the peer may send on a stream before an update.
    var initialStreamWindowSize: Int
    /// The connection-level receive window.
    var connectionWindowSize: Int
    /// SETTINGS_MAX_HEADER_LIST_SIZE, which this side also enforces as header blocks decode.
    var maxHeaderListSize: Int
    /// The RST_STREAM rate beyond which nghttp2 itself ends the connection (a server's
    /// backstop; the connection's own, stricter limit acts first).
    var resetBurst: Int
    var resetsPerSecond: Int

    init(
      maxConcurrentStreams: Int,
      initialStreamWindowSize: Int,
      connectionWindowSize: Int,
      maxHeaderListSize: Int = 16 << 10,
      resetBurst: Int = 1000,
      resetsPerSecond: Int = 100
    ) {
      self.maxConcurrentStreams = maxConcurrentStreams
      self.initialStreamWindowSize = initialStreamWindowSize
      self.connectionWindowSize = connectionWindowSize
      self.maxHeaderListSize = maxHeaderListSize
      self.resetBurst = resetBurst
      self.resetsPerSecond = resetsPerSecond
    }
  }

  /// CONTINUATION frames a HEADERS frame may be followed by (libnghttp2's default, set here so
  /// the limit does not depend on the library's version or patches).
  static let maxContinuations = 8
  /// SETTINGS and PING acknowledgements nghttp2 may queue before it calls the peer a flood.
  static let maxOutboundAcks = 1000
  /// Entries a SETTINGS frame may carry.
  static let maxSettingsEntries = 32

  let role: Role
  private var session: OpaquePointer?
  /// The send buffer's writer index at which the callbacks stop taking frames.
  fileprivate var sendLimitIndex = Int.max
  unowned(unsafe) var delegate: (any NGHTTP2SessionDelegate)?

  /// The header block being received (HEADERS and CONTINUATION frames of one stream are never
  /// interleaved with another stream's, so one buffer suffices).
  fileprivate var headerBlock: [HTTPHeaderField] = []
  /// The decoded size of the header block so far (RFC 9113 §6.5.2).
  fileprivate var headerBlockSize = 0
  /// The largest decoded header block accepted.
  fileprivate let maxHeaderListSize: Int
  /// The last error nghttp2 reported about the peer's frames (its own words), for logs.
  fileprivate(set) var lastPeerError: String?
  /// The GOAWAY this side sent, once it did: its error code and debug data.
  fileprivate(set) var sentGoAway: (errorCode: HTTP2ErrorCode, debugData: String)?
  /// Where `send(into:)` collects frames while nghttp2 produces them.
  fileprivate var sendBuffer = ByteBuffer()

  /// A session for `role` that sends `settings` first.
  init(role: Role, settings: Settings) throws(NGHTTP2Error) {
    self.role = role
    self.maxHeaderListSize = settings.maxHeaderListSize
    var callbacks: OpaquePointer?
    try check(nghttp2_session_callbacks_new(&callbacks))
    defer { nghttp2_session_callbacks_del(callbacks) }
    nghttp2_session_callbacks_set_send_callback(callbacks, onSend)
    nghttp2_session_callbacks_set_send_data_callback(callbacks, onSendData)
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
    nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, onInvalidFrame)
    nghttp2_session_callbacks_set_error_callback2(callbacks, onError)

    var options: OpaquePointer?
    try check(nghttp2_option_new(&options))
    defer { nghttp2_option_del(options) }
    // The application acknowledges DATA as it consumes messages: a slow reader slows its peer.
    nghttp2_option_set_no_auto_window_update(options, 1)
    // Until the peer's SETTINGS arrive, nghttp2 assumes 100 concurrent streams; a recognizer
    // serves thousands per connection, and the peer's real limit applies once it arrives.
    nghttp2_option_set_peer_max_concurrent_streams(options, 1 << 20)
    // Flood limits set here rather than left to the library's version and patches.
    nghttp2_option_set_max_continuations(options, Self.maxContinuations)
    nghttp2_option_set_max_outbound_ack(options, Self.maxOutboundAcks)
    nghttp2_option_set_max_settings(options, Self.maxSettingsEntries)
    nghttp2_option_set_stream_reset_rate_limit(
      options,
      UInt64(clamping: settings.resetBurst),
      UInt64(clamping: settings.resetsPerSecond)
    )

    let userData = Unmanaged.passUnretained(self).toOpaque()
    switch role {
    case .client: try check(nghttp2_session_client_new2(&session, callbacks, userData, options))
    case .server: try check(nghttp2_session_server_new2(&session, callbacks, userData, options))
    }

    var entries = [
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
        value: UInt32(clamping: settings.maxConcurrentStreams)
      ),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
        value: UInt32(clamping: settings.initialStreamWindowSize)
      ),
      nghttp2_settings_entry(
        settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
        value: UInt32(clamping: settings.maxHeaderListSize)
      ),
    ]
    try check(
      nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
    )
    try check(
      nghttp2_session_set_local_window_size(
        session,
        UInt8(NGHTTP2_FLAG_NONE.rawValue),
        0,
        Int32(clamping: settings.connectionWindowSize)
      )
    )
  }

  deinit {
    nghttp2_session_del(session)
  }

  // MARK: Bytes in and out

  /// Feeds bytes read from the socket; callbacks to the delegate happen during the call.
  func receive(_ bytes: ByteBuffer) throws(NGHTTP2Error) {
    inbound = bytes
    defer {
      inbound = nil
      inboundBase = nil
    }
    let result = bytes.withUnsafeReadableBytes { raw -> Int in
      guard let base = raw.baseAddress else { return 0 }
      inboundBase = base
      return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), raw.count)
    }
    if result < 0 { throw NGHTTP2Error(code: Int32(truncatingIfNeeded: result)) }
  }

  /// The bytes `receive` is feeding, while it runs: DATA payloads point into them.
  private var inbound: ByteBuffer?
  private var inboundBase: UnsafeRawPointer?

  /// `bytes` (a DATA payload nghttp2 passed to the delegate) as a slice of the buffer being
  /// received — no allocation, no copy — or nil if they do not lie in it.
  func inboundSlice(_ bytes: UnsafeRawBufferPointer) -> ByteBuffer? {
    guard let inbound, let inboundBase, let start = bytes.baseAddress else { return nil }
    let offset = inboundBase.distance(to: start)
    guard offset >= 0, offset + bytes.count <= inbound.readableBytes else { return nil }
    return inbound.getSlice(at: inbound.readerIndex + offset, length: bytes.count)
  }

  /// How many bytes one ``send(into:)`` appends at most (one frame may take it past).
  static let sendLimit = 256 << 10
  /// The last ``send(into:)`` stopped at ``sendLimit`` with frames still to send.
  private(set) var stoppedAtSendLimit = false

  /// Appends the frames nghttp2 has ready to `buffer`, up to about ``sendLimit`` bytes (see
  /// ``stoppedAtSendLimit``); returns whether anything was added. Without a limit, one call
  /// would serialise as much as the peer's window allows (32 MiB for Hark's server) into one
  /// buffer, a copy of bytes that wait in their streams' queues just as well.
  @discardableResult
  func send(into buffer: inout ByteBuffer) throws(NGHTTP2Error) -> Bool {
    swap(&sendBuffer, &buffer)
    let before = sendBuffer.writerIndex
    sendLimitIndex = before + Self.sendLimit
    stoppedAtSendLimit = false
    let result = nghttp2_session_send(session)
    let wrote = sendBuffer.writerIndex != before
    swap(&sendBuffer, &buffer)
    try check(result)
    return wrote
  }

  /// nghttp2 keeps the frame and offers it again at the next ``send(into:)``.
  fileprivate func stopAtSendLimit() -> Int {
    stoppedAtSendLimit = true
    return Int(NGHTTP2_ERR_WOULDBLOCK.rawValue)
  }

  /// Whether the session wants to read or write more; when neither, it is finished (e.g. after
  /// GOAWAY and every stream closed).
  var isActive: Bool {
    nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
  }

  // MARK: Streams

  /// Starts a request with `headers` and a body read from the delegate; returns the stream id.
  func submitRequest(headers: [HTTPHeaderField]) throws(NGHTTP2Error) -> Int32 {
    var provider = nghttp2_data_provider()
    provider.read_callback = onReadData
    let streamID = Self.withNameValues(headers) { nameValues, count in
      nghttp2_submit_request(session, nil, nameValues, count, &provider, nil)
    }
    try check(streamID)
    return streamID
  }

  /// Sends response headers; the body is read from the delegate (`withBody`) or there is none
  /// and the headers end the stream (a Trailers-Only or HTTP error response).
  func submitResponse(
    streamID: Int32,
    headers: [HTTPHeaderField],
    withBody: Bool
  ) throws(NGHTTP2Error) {
    var provider = nghttp2_data_provider()
    provider.read_callback = onReadData
    let result = Self.withNameValues(headers) { nameValues, count in
      if withBody {
        return nghttp2_submit_response(session, streamID, nameValues, count, &provider)
      }
      return nghttp2_submit_response(session, streamID, nameValues, count, nil)
    }
    try check(result)
  }

  /// Tells nghttp2 that a deferred stream has data (or its end) to send.
  func resumeData(streamID: Int32) {
    // Fails only if the stream is gone or not deferred; either way there is nothing to resume.
    _ = nghttp2_session_resume_data(session, streamID)
  }

  // MARK: Prefetching

  /// Remembers `address` (an unretained stream object) with nghttp2's stream `streamID`, for
  /// ``streamAddress(_:)``; nil forgets it.
  func setStreamAddress(_ address: UnsafeMutableRawPointer?, streamID: Int32) {
    nghttp2_session_set_stream_user_data(session, streamID, address)
  }

  /// The address set for an open stream, or nil. Its lookup reads nghttp2's stream, so ask for
  /// it after ``prefetchStream(_:)``.
  func streamAddress(_ streamID: Int32) -> UnsafeMutableRawPointer? {
    nghttp2_session_get_stream_user_data(session, streamID)
  }

  /// Asks the CPU to bring in nghttp2's state of stream `streamID` (which receiving its DATA
  /// reads and writes), without waiting for it. Finding it reads only nghttp2's stream map.
  func prefetchStream(_ streamID: Int32) {
    if let stream = nghttp2_session_find_stream(session, streamID) {
      hark_prefetch_lines(UnsafeRawPointer(stream), 4)
    }
  }

  /// Whether the peer ended its side of the stream (END_STREAM or RST_STREAM), or the stream is
  /// gone.
  func peerEndedStream(_ streamID: Int32) -> Bool {
    nghttp2_session_get_stream_remote_close(session, streamID) != 0
  }

  /// Whether this side may still send on the stream: it exists, and this side has not ended it
  /// (END_STREAM or RST_STREAM sent).
  func isLocallyOpen(_ streamID: Int32) -> Bool {
    nghttp2_session_get_stream_local_close(session, streamID) == 0
  }

  /// Resets a stream with `errorCode`.
  func resetStream(_ streamID: Int32, errorCode: HTTP2ErrorCode) {
    // Fails only for stream 0; a reset of a closed stream is ignored by nghttp2.
    _ = nghttp2_submit_rst_stream(
      session,
      UInt8(NGHTTP2_FLAG_NONE.rawValue),
      streamID,
      errorCode.rawValue
    )
  }

  /// Acknowledges `count` bytes of a stream's DATA as consumed, opening the peer's windows.
  func consume(_ count: Int, streamID: Int32) {
    guard count > 0 else { return }
    if nghttp2_session_consume(session, streamID, count) < 0 {
      // The stream is gone; its bytes still count against the connection window.
      _ = nghttp2_session_consume_connection(session, count)
    }
  }

  /// Sends a PING with `payload`.
  func ping(payload: UInt64) throws(NGHTTP2Error) {
    var bytes = payload.bigEndian
    let result = withUnsafeBytes(of: &bytes) { raw in
      nghttp2_submit_ping(
        session,
        UInt8(NGHTTP2_FLAG_NONE.rawValue),
        raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
      )
    }
    try check(result)
  }

  /// Sends GOAWAY naming `lastStreamID` as the last stream processed.
  func goAway(
    lastStreamID: Int32,
    errorCode: HTTP2ErrorCode,
    debugData: String = ""
  ) throws(NGHTTP2Error) {
    var debug = Array(debugData.utf8)
    let result = debug.withUnsafeMutableBufferPointer { buffer in
      nghttp2_submit_goaway(
        session,
        UInt8(NGHTTP2_FLAG_NONE.rawValue),
        lastStreamID,
        errorCode.rawValue,
        buffer.baseAddress,
        buffer.count
      )
    }
    try check(result)
  }

  /// Sends a server's shutdown notice: GOAWAY NO_ERROR with the largest stream id, which tells
  /// the client to open no more streams while every stream goes on (RFC 9113 §6.8). The final
  /// GOAWAY, naming the last stream processed, follows with ``goAway(lastStreamID:errorCode:debugData:)``.
  func submitShutdownNotice() throws(NGHTTP2Error) {
    try check(nghttp2_submit_shutdown_notice(session))
  }

  /// The id of the last stream the peer opened that this side processed (for GOAWAY).
  var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

  /// Calls `body` with an `nghttp2_nv` array for `fields`; nghttp2 copies what it keeps.
  private static func withNameValues<R>(
    _ fields: [HTTPHeaderField],
    _ body: (UnsafePointer<nghttp2_nv>, Int) -> R
  ) -> R {
    // One contiguous buffer of every name and value, so all pointers live for the whole call.
    var storage: [UInt8] = []
    storage.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
    var ranges: [(name: Range<Int>, value: Range<Int>)] = []
    ranges.reserveCapacity(fields.count)
    for field in fields {
      let nameStart = storage.count
      storage.append(contentsOf: field.name.utf8)
      let valueStart = storage.count
      storage.append(contentsOf: field.value.utf8)
      ranges.append((nameStart..<valueStart, valueStart..<storage.count))
    }
    return storage.withUnsafeMutableBufferPointer { bytes in
      let base = bytes.baseAddress ?? UnsafeMutablePointer<UInt8>(bitPattern: 1)!
      let nameValues = ranges.map { range in
        nghttp2_nv(
          name: base + range.name.lowerBound,
          value: base + range.value.lowerBound,
          namelen: range.name.count,
          valuelen: range.value.count,
          flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
        )
      }
      return nameValues.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }
  }

  fileprivate func submitTrailers(streamID: Int32, trailers: [HTTPHeaderField]) -> Int32 {
    Self.withNameValues(trailers) { nameValues, count in
      nghttp2_submit_trailer(session, streamID, nameValues, count)
    }
  }
}

// MARK: Callbacks
//
// Non-capturing functions that nghttp2 calls with the session's user data (the NGHTTP2Session,
// unretained: it owns the nghttp2_session, so it outlives every callback). Each copies what it
// needs before returning and reports failure only as NGHTTP2_ERR_CALLBACK_FAILURE.

@inline(__always)
private func owner(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session {
  Unmanaged<NGHTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
}

private func onSend(
  _ session: OpaquePointer?,
  _ data: UnsafePointer<UInt8>?,
  _ length: Int,
  _ flags: Int32,
  _ userData: UnsafeMutableRawPointer?
) -> Int {
  guard let data else { return 0 }
  let owner = owner(userData)
  if owner.sendBuffer.writerIndex >= owner.sendLimitIndex { return owner.stopAtSendLimit() }
  owner.sendBuffer.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
  return length
}

private func onSendData(
  _ session: OpaquePointer?,
  _ frame: UnsafeMutablePointer<nghttp2_frame>?,
  _ frameHeader: UnsafePointer<UInt8>?,
  _ length: Int,
  _ source: UnsafeMutablePointer<nghttp2_data_source>?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guard let frame, let frameHeader else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
  let owner = owner(userData)
  if owner.sendBuffer.writerIndex >= owner.sendLimitIndex {
    return Int32(truncatingIfNeeded: owner.stopAtSendLimit())
  }
  owner.sendBuffer.writeBytes(UnsafeRawBufferPointer(start: frameHeader, count: 9))
  // Hark never pads DATA, so there is no pad length byte or padding to write.
  owner.delegate?.session(
    writeData: length,
    forStream: frame.pointee.hd.stream_id,
    into: &owner.sendBuffer
  )
  return 0
}

private func onBeginHeaders(
  _ session: OpaquePointer?,
  _ frame: UnsafePointer<nghttp2_frame>?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  let owner = owner(userData)
  owner.headerBlock.removeAll(keepingCapacity: true)
  owner.headerBlockSize = 0
  return 0
}

private func onHeader(
  _ session: OpaquePointer?,
  _ frame: UnsafePointer<nghttp2_frame>?,
  _ name: UnsafePointer<UInt8>?,
  _ nameLength: Int,
  _ value: UnsafePointer<UInt8>?,
  _ valueLength: Int,
  _ flags: UInt8,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  let owner = owner(userData)
  // Counted as the fields decode, so a small block that expands (references to a large entry of
  // the HPACK table) costs no more than the limit: past it, fields are counted, never kept.
  owner.headerBlockSize += nameLength + valueLength + 32
  guard owner.headerBlockSize <= owner.maxHeaderListSize else {
    if !owner.headerBlock.isEmpty { owner.headerBlock = [] }
    return 0
  }
  let name = String(decoding: UnsafeBufferPointer(start: name, count: nameLength), as: UTF8.self)
  let value = String(decoding: UnsafeBufferPointer(start: value, count: valueLength), as: UTF8.self)
  owner.headerBlock.append(HTTPHeaderField(name, value))
  return 0
}

private func onFrameReceived(
  _ session: OpaquePointer?,
  _ frame: UnsafePointer<nghttp2_frame>?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guard let frame else { return 0 }
  let owner = owner(userData)
  guard let delegate = owner.delegate else { return 0 }
  let header = frame.pointee.hd
  let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
  switch UInt32(header.type) {
  case NGHTTP2_HEADERS.rawValue:
    if owner.headerBlockSize > owner.maxHeaderListSize {
      let size = owner.headerBlockSize
      owner.headerBlockSize = 0
      delegate.session(
        receivedOversizedHeaderList: size,
        endStream: endStream,
        streamID: header.stream_id
      )
      return 0
    }
    let headers = owner.headerBlock
    owner.headerBlock.removeAll(keepingCapacity: true)
    delegate.session(receivedHeaders: headers, endStream: endStream, streamID: header.stream_id)
  case NGHTTP2_RST_STREAM.rawValue:
    delegate.session(
      receivedResetForStream: header.stream_id,
      errorCode: HTTP2ErrorCode(rawValue: frame.pointee.rst_stream.error_code)
    )
  case NGHTTP2_DATA.rawValue:
    if endStream { delegate.session(receivedEndOfDataForStream: header.stream_id) }
  case NGHTTP2_GOAWAY.rawValue:
    let goAway = frame.pointee.goaway
    var debugData: [UInt8] = []
    if let bytes = goAway.opaque_data, goAway.opaque_data_len > 0 {
      debugData = Array(UnsafeBufferPointer(start: bytes, count: goAway.opaque_data_len))
    }
    delegate.session(
      receivedGoAwayWithLastStreamID: goAway.last_stream_id,
      errorCode: HTTP2ErrorCode(rawValue: goAway.error_code),
      debugData: debugData
    )
  case NGHTTP2_SETTINGS.rawValue:
    if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { delegate.sessionReceivedSettings() }
  case NGHTTP2_PING.rawValue:
    let payload = withUnsafeBytes(of: frame.pointee.ping.opaque_data) {
      UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self))
    }
    delegate.session(
      receivedPing: payload,
      isAck: header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
    )
  default:
    break
  }
  return 0
}

private func onFrameSent(
  _ session: OpaquePointer?,
  _ frame: UnsafePointer<nghttp2_frame>?,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guard let frame else { return 0 }
  let header = frame.pointee.hd
  if UInt32(header.type) == NGHTTP2_GOAWAY.rawValue {
    let goAway = frame.pointee.goaway
    var debugData = ""
    if let bytes = goAway.opaque_data, goAway.opaque_data_len > 0 {
      debugData = String(
        decoding: UnsafeBufferPointer(start: bytes, count: goAway.opaque_data_len),
        as: UTF8.self
      )
    }
    owner(userData).sentGoAway = (HTTP2ErrorCode(rawValue: goAway.error_code), debugData)
    return 0
  }
  if header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 {
    owner(userData).delegate?.session(sentEndOfStream: header.stream_id)
  }
  return 0
}

private func onInvalidFrame(
  _ session: OpaquePointer?,
  _ frame: UnsafePointer<nghttp2_frame>?,
  _ libraryErrorCode: Int32,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guard let frame else { return 0 }
  let owner = owner(userData)
  if libraryErrorCode == NGHTTP2_ERR_REFUSED_STREAM.rawValue,
    UInt32(frame.pointee.hd.type) == NGHTTP2_HEADERS.rawValue
  {
    owner.delegate?.session(refusedStream: frame.pointee.hd.stream_id)
    return 0
  }
  owner.lastPeerError = String(cString: nghttp2_strerror(libraryErrorCode))
  return 0
}

private func onError(
  _ session: OpaquePointer?,
  _ libraryErrorCode: Int32,
  _ message: UnsafePointer<CChar>?,
  _ length: Int,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  guard let message else { return 0 }
  owner(userData).lastPeerError = String(
    decoding: UnsafeRawBufferPointer(start: message, count: length),
    as: UTF8.self
  )
  return 0
}

private func onDataChunk(
  _ session: OpaquePointer?,
  _ flags: UInt8,
  _ streamID: Int32,
  _ data: UnsafePointer<UInt8>?,
  _ length: Int,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  owner(userData).delegate?.session(
    receivedData: UnsafeRawBufferPointer(start: data, count: length),
    streamID: streamID
  )
  return 0
}

private func onStreamClose(
  _ session: OpaquePointer?,
  _ streamID: Int32,
  _ errorCode: UInt32,
  _ userData: UnsafeMutableRawPointer?
) -> Int32 {
  owner(userData).delegate?.session(
    closedStream: streamID,
    errorCode: HTTP2ErrorCode(rawValue: errorCode)
  )
  return 0
}

private func onReadData(
  _ session: OpaquePointer?,
  _ streamID: Int32,
  _ buffer: UnsafeMutablePointer<UInt8>?,
  _ length: Int,
  _ dataFlags: UnsafeMutablePointer<UInt32>?,
  _ source: UnsafeMutablePointer<nghttp2_data_source>?,
  _ userData: UnsafeMutableRawPointer?
) -> Int {
  let owner = owner(userData)
  guard let delegate = owner.delegate, let dataFlags else {
    return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
  }
  switch delegate.session(readDataForStream: streamID, maxLength: length) {
  case .deferred:
    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
  case .data(let count, let endStream, let trailers):
    var flags: UInt32 = 0
    if count > 0 { flags |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue }
    if endStream {
      flags |= NGHTTP2_DATA_FLAG_EOF.rawValue
      if let trailers {
        flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
        // nghttp2 allows submitting trailers from inside this callback.
        if owner.submitTrailers(streamID: streamID, trailers: trailers) < 0 {
          return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
        }
      }
    }
    dataFlags.pointee = flags
    return count
  }
}
