import HarkGRPCCore
import Testing

@Suite("HTTP/2 error codes and their gRPC statuses")
struct HTTP2ErrorCodeTests {
  @Test(
    "the named codes have the RFC 9113 values and names",
    arguments: [
      (HTTP2ErrorCode.noError, 0x0, "NO_ERROR"),
      (.protocolError, 0x1, "PROTOCOL_ERROR"),
      (.internalError, 0x2, "INTERNAL_ERROR"),
      (.flowControlError, 0x3, "FLOW_CONTROL_ERROR"),
      (.settingsTimeout, 0x4, "SETTINGS_TIMEOUT"),
      (.streamClosed, 0x5, "STREAM_CLOSED"),
      (.frameSizeError, 0x6, "FRAME_SIZE_ERROR"),
      (.refusedStream, 0x7, "REFUSED_STREAM"),
      (.cancel, 0x8, "CANCEL"),
      (.compressionError, 0x9, "COMPRESSION_ERROR"),
      (.connectError, 0xa, "CONNECT_ERROR"),
      (.enhanceYourCalm, 0xb, "ENHANCE_YOUR_CALM"),
      (.inadequateSecurity, 0xc, "INADEQUATE_SECURITY"),
      (.http11Required, 0xd, "HTTP_1_1_REQUIRED"),
    ] as [(HTTP2ErrorCode, UInt32, String)]
  )
  func namedCodes(_ code: HTTP2ErrorCode, rawValue: UInt32, name: String) {
    #expect(code.rawValue == rawValue)
    #expect(code.description == name)
    #expect(HTTP2ErrorCode(rawValue: rawValue) == code)
  }

  @Test(
    "unknown codes are described by their value in hex",
    arguments: [(0xe, "0xe"), (0x1f, "0x1f"), (0xFFFF_FFFF, "0xffffffff")] as [(UInt32, String)]
  )
  func unknownCodes(_ rawValue: UInt32, description: String) {
    #expect(HTTP2ErrorCode(rawValue: rawValue).description == description)
  }

  @Test(
    "a RST_STREAM received by the client maps to a gRPC status",
    arguments: [
      (HTTP2ErrorCode.noError, GRPCStatus.Code.internalError),
      (.protocolError, .internalError),
      (.internalError, .internalError),
      (.flowControlError, .internalError),
      (.settingsTimeout, .internalError),
      (.streamClosed, .internalError),
      (.frameSizeError, .internalError),
      (.refusedStream, .unavailable),
      (.cancel, .cancelled),
      (.compressionError, .internalError),
      (.connectError, .internalError),
      (.enhanceYourCalm, .resourceExhausted),
      (.inadequateSecurity, .permissionDenied),
      (.http11Required, .internalError),
      (HTTP2ErrorCode(rawValue: 0xe), .internalError),
      (HTTP2ErrorCode(rawValue: 0xFFFF_FFFF), .internalError),
    ] as [(HTTP2ErrorCode, GRPCStatus.Code)]
  )
  func rstStreamStatus(_ errorCode: HTTP2ErrorCode, expected: GRPCStatus.Code) {
    let status = GRPCStatus(rstStreamErrorCode: errorCode)
    #expect(status.code == expected)
    #expect(status.message.hasSuffix(" \(errorCode)"))
  }

  @Test("the RST_STREAM status message names the HTTP/2 code")
  func rstStreamMessage() {
    #expect(
      GRPCStatus(rstStreamErrorCode: .refusedStream).description
        == "UNAVAILABLE: stream reset by the server with HTTP/2 error code REFUSED_STREAM"
    )
    #expect(
      GRPCStatus(rstStreamErrorCode: HTTP2ErrorCode(rawValue: 0x1f)).message
        == "stream reset by the server with HTTP/2 error code 0x1f"
    )
  }

  @Test(
    "an HTTP status without grpc-status maps to a gRPC code",
    arguments: [
      (400, GRPCStatus.Code.internalError),
      (401, .unauthenticated),
      (403, .permissionDenied),
      (404, .unimplemented),
      (429, .unavailable),
      (431, .internalError),
      (502, .unavailable),
      (503, .unavailable),
      (504, .unavailable),
      (200, .unknown),
      (100, .unknown),
      (204, .unknown),
      (302, .unknown),
      (405, .unknown),
      (415, .unknown),
      (500, .unknown),
      (505, .unknown),
      (0, .unknown),
      (-1, .unknown),
    ] as [(Int, GRPCStatus.Code)]
  )
  func httpStatus(_ status: Int, expected: GRPCStatus.Code) {
    #expect(GRPCStatus.Code(httpStatus: status) == expected)
  }
}
