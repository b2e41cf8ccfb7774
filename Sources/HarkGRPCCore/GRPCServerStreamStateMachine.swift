public import NIOCore

/// The gRPC rules of one server-side stream: request headers, messages, the response headers,
/// the status, deadlines and resets.
///
/// ```
///                  receive(headers:)             receive(data:endStream: true)
///   awaitingHeaders ──────────────► open(request open) ─────────────────────► open(request ended)
///    │ (a valid request)             │ sendMessage(): the headers first, once    │
///    │                               │ finish(status:)                           │ finish(status:)
///    │ invalid: reject (415,         ▼                                           ▼
///    │ UNIMPLEMENTED, INTERNAL …)   responseClosed(request open) ─request ends─► closed
///    ▼                              (status sent; the rest of the request is discarded)
///  closed
///
///  closed ◄── from any state: receiveReset() (RST_STREAM from the client, connection lost),
///             writeStalled(), deadlineExpired(), a malformed or oversized message
/// ```
///
/// Terminal transitions and the status each produces:
/// - a request that is not gRPC: HTTP 415 (a content-type other than `application/grpc…`), or
///   a Trailers-Only status: INTERNAL (not POST, no `:path`, no `te: trailers`), UNIMPLEMENTED
///   (a codec other than proto, compression the server does not speak);
/// - a malformed message: INTERNAL; an oversized one: RESOURCE_EXHAUSTED (status sent, then the
///   stream reset with NO_ERROR since the request body is left unread, H29);
/// - the request stream ending inside a message: INTERNAL;
/// - the deadline of `grpc-timeout`: DEADLINE_EXCEEDED, then RST_STREAM NO_ERROR if the client
///   is still sending (as after any early status);
/// - responses the client does not read for the write-stall timeout: RST_STREAM CANCEL
///   (``writeStalled()``), the handler learns the call was cancelled;
/// - RST_STREAM from the client: the call is cancelled (`.cancelled`), nothing is sent;
/// - the handler's `finish(status:)`: its status, as trailers (or Trailers-Only).
///
/// Bad transitions come in three kinds: a handler that writes after finishing is a caller bug
/// (the write is refused with a typed error); a client that violates the protocol gets a status
/// (an action, never a trap); and races such as a reset after the status was sent are ignored.
public struct GRPCServerStreamStateMachine: Sendable {
  /// Where the stream is.
  enum State: Sendable {
    case awaitingHeaders
    /// Request headers accepted. `responseHeadersSent` tells whether `:status 200` went out.
    case open(requestOpen: Bool, responseHeadersSent: Bool)
    /// The status was sent; the request may still be open (its remaining data is discarded).
    case responseClosed(requestOpen: Bool)
    case closed
  }

  private var state: State = .awaitingHeaders
  private var deframer: GRPCMessageDeframer
  /// The deadline the client asked for (`grpc-timeout`), once the headers arrived.
  public private(set) var timeout: GRPCTimeout?

  /// A machine that accepts messages up to `maxReceiveMessageSize` bytes.
  public init(maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize) {
    deframer = GRPCMessageDeframer(maxMessageSize: maxReceiveMessageSize)
  }

  /// A request the server accepted.
  public struct Request: Sendable {
    /// The method's path, e.g. `/nuance.asr.v1.Recognizer/Recognize`.
    public var path: String
    /// The client's custom metadata (e.g. `authorization`).
    public var metadata: GRPCMetadata
    /// The client's deadline, if it sent one.
    public var timeout: GRPCTimeout?
    /// The `:authority` the client named.
    public var authority: String?
  }

  /// What to do after request headers arrive.
  public enum OnRequestHeaders: Sendable {
    /// A valid gRPC request: route it by its path.
    case accept(Request)
    /// Not a gRPC request: answer with this HTTP status and END_STREAM (e.g. 415).
    case rejectHTTP(status: Int, headers: [HTTPHeaderField])
    /// A gRPC request the server cannot serve: answer with these Trailers-Only fields (END_STREAM).
    case rejectTrailersOnly(status: GRPCStatus, fields: [HTTPHeaderField])
    /// Headers arrived where none may (a second HEADERS without END_STREAM): reset the stream.
    case protocolViolation(GRPCStatus)
    /// The request stream ended with trailers (allowed, though unusual): treat as end of request.
    case requestEnded(OnRequestEnd)
    /// The status was already sent; ignore.
    case ignore
  }

  /// Handles HEADERS from the client: the request headers, or (rarely) request trailers.
  public mutating func receive(
    headers: [HTTPHeaderField],
    endStream: Bool
  ) -> OnRequestHeaders {
    switch state {
    case .awaitingHeaders:
      return acceptRequestHeaders(headers, endStream: endStream)
    case .responseClosed(true) where !endStream:
      // The status went out already: whatever the client sends now is a race to ignore.
      return .ignore
    case .open(true, _), .responseClosed(true):
      // Trailers from a client may end the request stream; anything else is a violation.
      guard endStream else {
        let status = GRPCStatus(.internalError, "unexpected HEADERS in the request stream")
        return .protocolViolation(status)
      }
      return .requestEnded(receiveEndOfRequest())
    case .open(false, _), .responseClosed(false), .closed:
      return .ignore
    }
  }

  private mutating func acceptRequestHeaders(
    _ headers: [HTTPHeaderField],
    endStream: Bool
  ) -> OnRequestHeaders {
    var method: String?
    var path: String?
    var contentType: String?
    var authority: String?
    var timeoutValue: String?
    var encoding: String?
    var te: String?
    for field in headers {
      switch field.name {
      case ":method": method = field.value
      case ":path": path = field.value
      case ":authority": authority = field.value
      case "content-type": contentType = field.value
      case "grpc-timeout": timeoutValue = field.value
      case "grpc-encoding": encoding = field.value
      case "te": te = field.value
      default: break
      }
    }
    func reject(_ status: GRPCStatus, extra: [HTTPHeaderField] = []) -> OnRequestHeaders {
      state = .closed
      let fields = Self.responseHeaders + Self.statusFields(status, GRPCMetadata()) + extra
      return .rejectTrailersOnly(status: status, fields: fields)
    }
    // H5: a content-type that is not application/grpc… is answered with HTTP 415; gRPC with a
    // codec other than protobuf is UNIMPLEMENTED, naming it.
    switch contentType.map(Self.codec(ofContentType:)) {
    case .protobuf?:
      break
    case .other(let codec)?:
      return reject(
        GRPCStatus(
          .unimplemented,
          "content-type application/grpc+\(codec): only the proto codec is served"
        )
      )
    case .notGRPC?, nil:
      state = .closed
      return .rejectHTTP(status: 415, headers: [])
    }
    // gRPC requires `te: trailers`: it tells the server that every proxy on the way carries
    // trailers, without which no status could arrive.
    guard te == "trailers" else {
      return reject(
        GRPCStatus(
          .internalError,
          te.map { "te: \($0): gRPC requires te: trailers" }
            ?? "the request has no te: trailers header, which gRPC requires"
        )
      )
    }
    guard method == "POST" else {
      return reject(
        GRPCStatus(.internalError, "gRPC requests use POST, not \(method ?? "no method")")
      )
    }
    guard let path, path.hasPrefix("/") else {
      return reject(GRPCStatus(.internalError, "request has no :path"))
    }
    if let encoding, encoding != "identity" {
      // C1: compression the server does not support → UNIMPLEMENTED naming what it accepts.
      return reject(
        GRPCStatus(.unimplemented, "compression '\(encoding)' is not supported"),
        extra: [HTTPHeaderField("grpc-accept-encoding", "identity")]
      )
    }
    if let timeoutValue {
      do {
        timeout = try GRPCTimeout(parsing: timeoutValue)
      } catch {
        return reject(GRPCStatus(.internalError, "invalid grpc-timeout '\(timeoutValue)'"))
      }
    }
    // An entry that does not parse is dropped rather than failing the call.
    let metadata = GRPCMetadata(
      receivedHeaderFields: headers.lazy.map { (name: $0.name, value: $0.value) }
    )
    state = .open(requestOpen: !endStream, responseHeadersSent: false)
    return .accept(Request(path: path, metadata: metadata, timeout: timeout, authority: authority))
  }

  /// What a request's content-type says about its messages.
  public enum ContentTypeCodec: Hashable, Sendable {
    /// `application/grpc` or `application/grpc+proto` (parameters after `;` ignored).
    case protobuf
    /// `application/grpc+NAME` with a codec other than proto, e.g. `json`.
    case other(String)
    /// Not gRPC at all.
    case notGRPC
  }

  /// The codec `contentType` names.
  public static func codec(ofContentType contentType: String) -> ContentTypeCodec {
    let mediaType =
      contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
      .first.map { $0.trimmingSpaces().lowercased() } ?? ""
    let prefix = "application/grpc"
    guard mediaType.hasPrefix(prefix) else { return .notGRPC }
    let rest = mediaType.dropFirst(prefix.count)
    if rest.isEmpty { return .protobuf }
    guard rest.first == "+" else { return .notGRPC }
    let codec = String(rest.dropFirst())
    return codec == "proto" ? .protobuf : .other(codec)
  }

  /// What to do with request DATA.
  public enum OnRequestData: Sendable {
    /// Deliver these messages, in order (possibly none), then, if `requestEnded`, the end of the
    /// request stream.
    case deliver(messages: GRPCMessageBatch, requestEnded: Bool)
    /// The bytes are not valid gRPC framing: the call ends with `status` (INTERNAL or
    /// RESOURCE_EXHAUSTED); send it as `onFinish` says and reset the stream, discarding the rest
    /// of the request.
    case fail(GRPCStatus, OnFinish)
    /// The call is over for this side; discard the bytes.
    case ignore
  }

  /// Handles DATA from the client.
  public mutating func receive(data: ByteBuffer, endStream: Bool) -> OnRequestData {
    guard case .open(true, _) = state else {
      if endStream, case .responseClosed(true) = state { state = .closed }
      return .ignore
    }
    deframer.append(data)
    var messages = GRPCMessageBatch()
    do {
      while let message = try deframer.next() { messages.append(message) }
    } catch {
      return .fail(error.status, failRequest(error.status))
    }
    guard endStream else { return .deliver(messages: messages, requestEnded: false) }
    switch receiveEndOfRequest() {
    case .requestEnded: return .deliver(messages: messages, requestEnded: true)
    case .fail(let status, let onFinish): return .fail(status, onFinish)
    case .ignore: return .deliver(messages: messages, requestEnded: false)
    }
  }

  /// Ends the call with `status` because of what the client sent, and closes both directions.
  private mutating func failRequest(_ status: GRPCStatus) -> OnFinish {
    let onFinish: OnFinish
    switch finish(status: status) {
    case .sendTrailers(let fields, _): onFinish = .sendTrailers(fields, resetAfterward: true)
    case .sendTrailersOnly(let fields, _):
      onFinish = .sendTrailersOnly(fields, resetAfterward: true)
    case .ignore: onFinish = .ignore
    }
    state = .closed
    return onFinish
  }

  /// What the end of the request stream means.
  public enum OnRequestEnd: Sendable {
    /// The client half-closed cleanly.
    case requestEnded
    /// The request stream ended inside a message: the call ends with this INTERNAL status.
    case fail(GRPCStatus, OnFinish)
    /// Nothing to report.
    case ignore
  }

  private mutating func receiveEndOfRequest() -> OnRequestEnd {
    switch state {
    case .open(true, let headersSent):
      do {
        try deframer.finish()
      } catch {
        return .fail(error.status, failRequest(error.status))
      }
      state = .open(requestOpen: false, responseHeadersSent: headersSent)
      return .requestEnded
    case .responseClosed(true):
      state = .closed
      return .ignore
    default:
      return .ignore
    }
  }

  /// A handler wrote after finishing the call.
  public struct StreamClosedError: Error, Hashable, Sendable {}

  /// What to send before a response message.
  public enum OnSendMessage: Sendable, Equatable {
    /// Send the response headers first (once), then the message.
    case sendHeadersThenMessage([HTTPHeaderField])
    /// Send the message.
    case sendMessage
  }

  /// Checks that a response message may be sent now.
  public mutating func sendMessage() throws(StreamClosedError) -> OnSendMessage {
    switch state {
    case .open(let requestOpen, false):
      state = .open(requestOpen: requestOpen, responseHeadersSent: true)
      return .sendHeadersThenMessage(Self.responseHeaders)
    case .open(_, true):
      return .sendMessage
    case .awaitingHeaders, .responseClosed, .closed:
      throw StreamClosedError()
    }
  }

  /// Sends the response headers now, with the server's initial `metadata`; nil if they already
  /// went out (or the call ended).
  public mutating func sendHeaders(metadata: GRPCMetadata = GRPCMetadata()) -> [HTTPHeaderField]? {
    guard case .open(let requestOpen, false) = state else { return nil }
    state = .open(requestOpen: requestOpen, responseHeadersSent: true)
    return Self.responseHeaders + metadata.headerFields.map { HTTPHeaderField($0.name, $0.value) }
  }

  /// The trailers that carry `status` and trailing `metadata` (H18, H21, H22).
  public static func statusFields(
    _ status: GRPCStatus,
    _ metadata: GRPCMetadata
  ) -> [HTTPHeaderField] {
    var fields = [HTTPHeaderField("grpc-status", String(status.code.rawValue))]
    if !status.message.isEmpty {
      fields.append(HTTPHeaderField("grpc-message", GRPCStatusMessage.encode(status.message)))
    }
    if let pushback = status.retryPushbackMilliseconds {
      fields.append(HTTPHeaderField("grpc-retry-pushback-ms", String(pushback)))
    }
    fields += metadata.headerFields.map { HTTPHeaderField($0.name, $0.value) }
    return fields
  }

  /// The response headers of every accepted call (H17).
  public static let responseHeaders = [
    HTTPHeaderField(":status", "200"), HTTPHeaderField("content-type", "application/grpc"),
  ]

  /// How to send the status.
  public enum OnFinish: Sendable, Equatable {
    /// After the queued messages, send these trailers with END_STREAM.
    case sendTrailers([HTTPHeaderField], resetAfterward: Bool)
    /// No headers went out: send one HEADERS frame with these fields and END_STREAM.
    case sendTrailersOnly([HTTPHeaderField], resetAfterward: Bool)
    /// The call already ended; nothing to send.
    case ignore
  }

  /// Ends the call with `status` and trailing `metadata`.
  ///
  /// `resetAfterward` is true when the client is still sending: the server then resets the
  /// stream with NO_ERROR after the trailers (H29), so the client stops.
  public mutating func finish(
    status: GRPCStatus,
    metadata: GRPCMetadata = GRPCMetadata()
  ) -> OnFinish {
    let trailers = Self.statusFields(status, metadata)
    switch state {
    case .open(let requestOpen, true):
      state = requestOpen ? .responseClosed(requestOpen: true) : .closed
      return .sendTrailers(trailers, resetAfterward: requestOpen)
    case .open(let requestOpen, false):
      state = requestOpen ? .responseClosed(requestOpen: true) : .closed
      return .sendTrailersOnly(Self.responseHeaders + trailers, resetAfterward: requestOpen)
    case .awaitingHeaders:
      state = .closed
      return .sendTrailersOnly(Self.responseHeaders + trailers, resetAfterward: false)
    case .responseClosed, .closed:
      return .ignore
    }
  }

  /// What a reset or a lost connection means to the handler.
  public enum OnReset: Sendable, Equatable {
    /// The call was live: tell the handler it was cancelled.
    case cancelled
    /// The status had already been sent: nothing to do.
    case ignore
  }

  /// The client reset the stream (RST_STREAM) or the connection was lost.
  public mutating func receiveReset() -> OnReset {
    switch state {
    case .awaitingHeaders, .open:
      state = .closed
      return .cancelled
    case .responseClosed, .closed:
      state = .closed
      return .ignore
    }
  }

  /// The client took none of the stream's queued responses for the write-stall timeout (or
  /// their queue outgrew its limit): the transport resets the stream with CANCEL, since no
  /// status could reach a client that does not read (H30). `.cancelled` when the handler was
  /// still answering and must learn that the call ended.
  public mutating func writeStalled() -> OnReset {
    let wasOpen = isResponseOpen
    state = .closed
    return wasOpen ? .cancelled : .ignore
  }

  /// The deadline the client set passed: send DEADLINE_EXCEEDED (then, if the client is still
  /// sending, RST_STREAM NO_ERROR as after any early status, H29).
  public mutating func deadlineExpired() -> OnFinish {
    failRequest(GRPCStatus(.deadlineExceeded, "deadline exceeded"))
  }

  /// Whether the call still expects anything from the handler.
  public var isResponseOpen: Bool {
    switch state {
    case .awaitingHeaders, .open: true
    case .responseClosed, .closed: false
    }
  }

  /// Whether the stream has ended in both directions.
  public var isClosed: Bool {
    if case .closed = state { return true }
    return false
  }
}

/// One HTTP/2 header field: a lowercase name and a value.
public struct HTTPHeaderField: Hashable, Sendable, CustomStringConvertible {
  /// The lowercase name, e.g. `:status` or `grpc-status`.
  public var name: String
  /// The value.
  public var value: String

  /// A header field.
  public init(_ name: String, _ value: String) {
    self.name = name
    self.value = value
  }

  public var description: String { "\(name): \(value)" }
}

extension Substring {
  /// The substring without leading and trailing spaces and tabs.
  fileprivate func trimmingSpaces() -> Substring {
    var result = self
    while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
    while let last = result.last, last == " " || last == "\t" { result.removeLast() }
    return result
  }
}
