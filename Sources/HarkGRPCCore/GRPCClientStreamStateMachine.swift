public import NIOCore

/// The gRPC rules of one client-side stream: the request headers, messages each way, the
/// response headers, the status, deadlines, cancellation and resets.
///
/// ```
///          start()                 receive(headers:) :status 200
///   idle ──────────► requestOpen ───────────────────────────► responseOpen
///                    (headers sent)  │                           │ receive(data:) → messages
///                                    │ Trailers-Only             │ receive(headers: trailers)
///                                    ▼                           ▼
///                                 closed(status) ◄───────────────┘
///   finish() half-closes the request side in any open state; it does not end the call.
///   From every open state: receive(reset:) → the RST_STREAM mapping (H28); connectionLost →
///   UNAVAILABLE; cancel() → CANCELLED; deadlineExpired() → DEADLINE_EXCEEDED; a framing error
///   → INTERNAL or RESOURCE_EXHAUSTED (the last three also reset the stream with CANCEL).
/// ```
///
/// The call's status comes from `grpc-status` and `grpc-message`; when a response carries no
/// `grpc-status` the status is synthesized from the HTTP status (H23), and a response whose
/// content-type is not gRPC ends with UNKNOWN.
public struct GRPCClientStreamStateMachine: Sendable {
  enum State: Sendable {
    case idle
    case requestOpen(requestClosed: Bool)
    case responseOpen(requestClosed: Bool)
    case closed(GRPCStatus)
  }

  private var state: State = .idle
  private var deframer: GRPCMessageDeframer

  /// A machine that accepts response messages up to `maxReceiveMessageSize` bytes.
  public init(maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize) {
    deframer = GRPCMessageDeframer(maxMessageSize: maxReceiveMessageSize)
  }

  /// The request headers of a call (H2–H8), in the order the specification asks for: pseudo
  /// headers, then the timeout, the call definition, and custom metadata.
  public static func requestHeaders(
    path: String,
    authority: String,
    scheme: String = "http",
    timeout: GRPCTimeout?,
    userAgent: String,
    metadata: GRPCMetadata
  ) -> [HTTPHeaderField] {
    var fields = [
      HTTPHeaderField(":method", "POST"), HTTPHeaderField(":scheme", scheme),
      HTTPHeaderField(":path", path), HTTPHeaderField(":authority", authority),
    ]
    if let timeout { fields.append(HTTPHeaderField("grpc-timeout", timeout.headerValue)) }
    fields.append(HTTPHeaderField("te", "trailers"))
    fields.append(HTTPHeaderField("content-type", "application/grpc"))
    fields.append(HTTPHeaderField("user-agent", userAgent))
    fields += metadata.headerFields.map { HTTPHeaderField($0.name, $0.value) }
    return fields
  }

  /// A misuse by the caller: sending before `start()` or after `finish()`.
  public struct InvalidTransition: Error, Hashable, Sendable {
    /// What was attempted.
    public var message: String
  }

  /// Marks the request headers as sent.
  public mutating func start() throws(InvalidTransition) {
    guard case .idle = state else { throw InvalidTransition(message: "the call already started") }
    state = .requestOpen(requestClosed: false)
  }

  /// What to do with a request message.
  public enum OnSend: Sendable, Equatable {
    /// Frame it and queue it.
    case send
    /// The call already ended (e.g. the server answered early): drop the message.
    case drop
  }

  /// Checks that a request message may be sent.
  /// (`mutating` though it changes nothing: called on a class's stored machine, a non-mutating
  /// method would copy the whole machine, its deframer's buffer included, for every message.)
  public mutating func sendMessage() throws(InvalidTransition) -> OnSend {
    switch state {
    case .idle: throw InvalidTransition(message: "the call has not started")
    case .requestOpen(false), .responseOpen(false): return .send
    case .requestOpen(true), .responseOpen(true):
      throw InvalidTransition(message: "the request stream was already finished")
    case .closed: return .drop
    }
  }

  /// Half-closes the request side; returns whether END_STREAM must be sent.
  public mutating func finish() -> Bool {
    switch state {
    case .requestOpen(false):
      state = .requestOpen(requestClosed: true)
      return true
    case .responseOpen(false):
      state = .responseOpen(requestClosed: true)
      return true
    case .idle, .requestOpen(true), .responseOpen(true), .closed:
      return false
    }
  }

  /// What response HEADERS mean.
  public enum OnResponseHeaders: Sendable, Equatable {
    /// The response started; here is the server's initial metadata.
    case receivedMetadata(GRPCMetadata)
    /// The call ended with this status and trailing metadata. If `resetStream`, the request
    /// side is still open and the stream must be reset with NO_ERROR (H29) or CANCEL.
    case receivedStatus(GRPCStatus, GRPCMetadata, resetStream: Bool)
    /// Nothing to report (the call was already over).
    case ignore
  }

  /// Handles response HEADERS: the response headers, Trailers-Only, or the trailers.
  public mutating func receive(headers: [HTTPHeaderField], endStream: Bool) -> OnResponseHeaders {
    switch state {
    case .idle, .closed:
      return .ignore
    case .requestOpen(let requestClosed):
      var httpStatus: Int?
      var contentType: String?
      for field in headers {
        if field.name == ":status" { httpStatus = Int(field.value) }
        if field.name == "content-type" { contentType = field.value }
      }
      // H23: 1xx headers are skipped; the real response follows.
      if let httpStatus, (100..<200).contains(httpStatus) { return .ignore }
      let hasGRPCStatus = headers.contains { $0.name == "grpc-status" }
      if httpStatus != 200 && !hasGRPCStatus {
        let code = GRPCStatus.Code(httpStatus: httpStatus ?? 0)
        let status = GRPCStatus(code, "HTTP status \(httpStatus.map(String.init) ?? "missing")")
        return close(status, GRPCMetadata(), requestClosed: requestClosed)
      }
      if let contentType, !contentType.hasPrefix("application/grpc"), !hasGRPCStatus {
        let status = GRPCStatus(.unknown, "response content-type '\(contentType)' is not gRPC")
        return close(status, GRPCMetadata(), requestClosed: requestClosed)
      }
      if endStream {
        // Trailers-Only.
        let (status, metadata) = Self.status(from: headers)
        return close(status, metadata, requestClosed: requestClosed)
      }
      state = .responseOpen(requestClosed: requestClosed)
      return .receivedMetadata(
        GRPCMetadata(receivedHeaderFields: headers.map { (name: $0.name, value: $0.value) })
      )
    case .responseOpen(let requestClosed):
      guard endStream else {
        let status = GRPCStatus(.internalError, "trailers without END_STREAM")
        return close(status, GRPCMetadata(), requestClosed: requestClosed, forceReset: true)
      }
      if let status = unfinishedMessageStatus() {
        return close(status, GRPCMetadata(), requestClosed: requestClosed)
      }
      let (status, metadata) = Self.status(from: headers)
      return close(status, metadata, requestClosed: requestClosed)
    }
  }

  private mutating func close(
    _ status: GRPCStatus,
    _ metadata: GRPCMetadata,
    requestClosed: Bool,
    forceReset: Bool = false
  ) -> OnResponseHeaders {
    state = .closed(status)
    return .receivedStatus(status, metadata, resetStream: forceReset || !requestClosed)
  }

  private func unfinishedMessageStatus() -> GRPCStatus? {
    do {
      try deframer.finish()
      return nil
    } catch {
      return error.status
    }
  }

  /// The status of trailers (or of a Trailers-Only response).
  static func status(from fields: [HTTPHeaderField]) -> (GRPCStatus, GRPCMetadata) {
    var code: GRPCStatus.Code?
    var message = ""
    var statusText: String?
    var pushback: Int?
    for field in fields {
      switch field.name {
      case "grpc-status":
        statusText = field.value
        code = Int(field.value).flatMap { GRPCStatus.Code(rawValue: $0) }
      case "grpc-message":
        message = GRPCStatusMessage.decode(field.value)
      case "grpc-retry-pushback-ms":
        // A6: a non-negative integer; anything else asks the client not to retry. At most
        // 9 digits (over 11 days), so that no value a server sends overflows.
        let digits = field.value.utf8
        let valid =
          !digits.isEmpty && digits.count <= 9 && digits.allSatisfy { (0x30...0x39).contains($0) }
        pushback = valid ? Int(field.value) : -1
      default: break
      }
    }
    let metadata = GRPCMetadata(
      receivedHeaderFields: fields.map { (name: $0.name, value: $0.value) }
    )
    guard let code else {
      // H18/H23: a missing or unparseable grpc-status is synthesized; a 200 without one is UNKNOWN.
      let reason = statusText.map { "invalid grpc-status '\($0)'" } ?? "response has no grpc-status"
      return (GRPCStatus(.unknown, reason), metadata)
    }
    var status = GRPCStatus(code, message)
    status.retryPushbackMilliseconds = pushback
    return (status, metadata)
  }

  /// What response DATA means.
  public enum OnResponseData: Sendable {
    /// Deliver these messages (possibly none).
    case deliver(GRPCMessageBatch)
    /// The call failed (bad framing, an oversized message, or DATA before headers): report
    /// `status` and reset the stream with CANCEL.
    case fail(GRPCStatus)
    /// The call is over; discard.
    case ignore
  }

  /// Handles response DATA.
  public mutating func receive(data: ByteBuffer, endStream: Bool) -> OnResponseData {
    switch state {
    case .responseOpen:
      deframer.append(data)
      var messages = GRPCMessageBatch()
      do {
        while let message = try deframer.next() { messages.append(message) }
      } catch {
        state = .closed(error.status)
        return .fail(error.status)
      }
      if endStream {
        // The response ended without trailers: there is no status (H23: a 200 → UNKNOWN).
        let status =
          unfinishedMessageStatus()
          ?? GRPCStatus(.unknown, "response ended without trailers")
        state = .closed(status)
        return messages.isEmpty ? .fail(status) : .deliver(messages)
      }
      return .deliver(messages)
    case .requestOpen:
      let status = GRPCStatus(.internalError, "DATA before the response headers")
      state = .closed(status)
      return .fail(status)
    case .idle, .closed:
      return .ignore
    }
  }

  /// The status the call ended with, once it ended.
  public var status: GRPCStatus? {
    if case .closed(let status) = state { return status }
    return nil
  }

  /// What ends the call from outside the response.
  public enum OnTermination: Sendable, Equatable {
    /// The call ends now with this status; if `resetStream`, send RST_STREAM CANCEL.
    case ended(GRPCStatus, resetStream: Bool)
    /// The call was already over.
    case ignore
  }

  /// The server reset the stream (RST_STREAM with `errorCode`).
  public mutating func receiveReset(errorCode: HTTP2ErrorCode) -> OnTermination {
    terminate(GRPCStatus(rstStreamErrorCode: errorCode), reset: false)
  }

  /// The connection was lost, or the server refused the stream (GOAWAY past it): UNAVAILABLE.
  public mutating func connectionLost(_ reason: String) -> OnTermination {
    terminate(GRPCStatus(.unavailable, reason), reset: false)
  }

  /// The caller cancelled the call: CANCELLED (or `status`, e.g. INTERNAL for a response that
  /// does not decode), and RST_STREAM CANCEL (H30).
  public mutating func cancel(
    status: GRPCStatus = GRPCStatus(.cancelled, "cancelled by the client")
  ) -> OnTermination {
    terminate(status, reset: true)
  }

  /// The call's deadline passed: DEADLINE_EXCEEDED locally, and RST_STREAM CANCEL (H30).
  public mutating func deadlineExpired() -> OnTermination {
    terminate(GRPCStatus(.deadlineExceeded, "deadline exceeded"), reset: true)
  }

  /// The stream closed without a status (e.g. END_STREAM with no trailers was already handled):
  /// whatever the stream's close means.
  private mutating func terminate(_ status: GRPCStatus, reset: Bool) -> OnTermination {
    switch state {
    case .closed:
      return .ignore
    case .idle:
      state = .closed(status)
      return .ended(status, resetStream: false)
    case .requestOpen, .responseOpen:
      state = .closed(status)
      return .ended(status, resetStream: reset)
    }
  }

  /// Whether the call has ended.
  public var isClosed: Bool {
    if case .closed = state { return true }
    return false
  }
}
