/// An HTTP/2 error code, as carried by RST_STREAM and GOAWAY frames (RFC 9113 §7).
///
/// Any 32-bit value may arrive; the RFC asks that unknown codes trigger no special behaviour.
public struct HTTP2ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  /// The 32-bit value on the wire.
  public let rawValue: UInt32

  /// The code with value `rawValue`, named or not.
  public init(rawValue: UInt32) {
    self.rawValue = rawValue
  }

  /// NO_ERROR (0x0): not the result of an error, e.g. a graceful shutdown.
  public static let noError = HTTP2ErrorCode(rawValue: 0x0)
  /// PROTOCOL_ERROR (0x1): an unspecific protocol error.
  public static let protocolError = HTTP2ErrorCode(rawValue: 0x1)
  /// INTERNAL_ERROR (0x2): an unexpected internal error.
  public static let internalError = HTTP2ErrorCode(rawValue: 0x2)
  /// FLOW_CONTROL_ERROR (0x3): the peer violated flow control.
  public static let flowControlError = HTTP2ErrorCode(rawValue: 0x3)
  /// SETTINGS_TIMEOUT (0x4): a SETTINGS frame was not acknowledged in time.
  public static let settingsTimeout = HTTP2ErrorCode(rawValue: 0x4)
  /// STREAM_CLOSED (0x5): a frame arrived after the stream was half-closed.
  public static let streamClosed = HTTP2ErrorCode(rawValue: 0x5)
  /// FRAME_SIZE_ERROR (0x6): a frame had an invalid size.
  public static let frameSizeError = HTTP2ErrorCode(rawValue: 0x6)
  /// REFUSED_STREAM (0x7): the stream was refused before any processing.
  public static let refusedStream = HTTP2ErrorCode(rawValue: 0x7)
  /// CANCEL (0x8): the stream is no longer needed.
  public static let cancel = HTTP2ErrorCode(rawValue: 0x8)
  /// COMPRESSION_ERROR (0x9): the header compression context cannot be maintained.
  public static let compressionError = HTTP2ErrorCode(rawValue: 0x9)
  /// CONNECT_ERROR (0xa): the connection of a CONNECT request was reset or closed.
  public static let connectError = HTTP2ErrorCode(rawValue: 0xa)
  /// ENHANCE_YOUR_CALM (0xb): the peer generates excessive load.
  public static let enhanceYourCalm = HTTP2ErrorCode(rawValue: 0xb)
  /// INADEQUATE_SECURITY (0xc): the transport does not meet minimum security requirements.
  public static let inadequateSecurity = HTTP2ErrorCode(rawValue: 0xc)
  /// HTTP_1_1_REQUIRED (0xd): the request must be retried over HTTP/1.1.
  public static let http11Required = HTTP2ErrorCode(rawValue: 0xd)

  private static let names = [
    "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
    "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
    "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
  ]

  /// The RFC's name for the code, e.g. `ENHANCE_YOUR_CALM`, or its value in hex, e.g. `0x1f`.
  public var description: String {
    rawValue < Self.names.count
      ? Self.names[Int(rawValue)] : "0x" + String(rawValue, radix: 16)
  }
}

extension GRPCStatus {
  /// The status of a call whose stream the server reset with `rstStreamErrorCode`.
  ///
  /// This is the client's side of the gRPC mapping from RST_STREAM error codes: REFUSED_STREAM
  /// means no processing happened (UNAVAILABLE, so the call may be retried), CANCEL that the
  /// server cancelled the call (CANCELLED), ENHANCE_YOUR_CALM that it is overloaded
  /// (RESOURCE_EXHAUSTED) and INADEQUATE_SECURITY that the connection is not secure enough
  /// (PERMISSION_DENIED). Every other code, including NO_ERROR (a server should have sent an OK
  /// status instead), STREAM_CLOSED, HTTP_1_1_REQUIRED and unknown codes, is INTERNAL. The
  /// message names the HTTP/2 code.
  public init(rstStreamErrorCode: HTTP2ErrorCode) {
    let code: Code =
      switch rstStreamErrorCode {
      case .refusedStream: .unavailable
      case .cancel: .cancelled
      case .enhanceYourCalm: .resourceExhausted
      case .inadequateSecurity: .permissionDenied
      default: .internalError
      }
    self.init(code, "stream reset by the server with HTTP/2 error code \(rstStreamErrorCode)")
  }
}

extension GRPCStatus.Code {
  /// The code for a response with HTTP status `httpStatus` and no `grpc-status`.
  ///
  /// Only for responses that lack `grpc-status`, as from a proxy that does not speak gRPC; a
  /// server must not use this table to choose an HTTP status. 200 maps to UNKNOWN because a truly
  /// successful response carries `grpc-status: 0`.
  public init(httpStatus: Int) {
    self =
      switch httpStatus {
      case 400: .internalError
      case 401: .unauthenticated
      case 403: .permissionDenied
      case 404: .unimplemented
      case 429: .unavailable
      case 431: .internalError
      case 502, 503, 504: .unavailable
      default: .unknown
      }
  }
}
