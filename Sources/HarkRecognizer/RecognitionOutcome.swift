public import HarkGRPCCore
public import HarkProto

/// How a recognition ended: the Nuance status the server sent, or the failure below it.
///
/// Every recognition ends with exactly one outcome. Its ``kind`` names the status it came from,
/// so a caller can switch over what happened without comparing numbers.
public struct RecognitionOutcome: Sendable, Hashable, CustomStringConvertible {
  /// What happened, one case per status of the protocol.
  public enum Kind: Sendable, Hashable {
    /// 200: a result with at least one hypothesis (accepted or rejected).
    case success
    /// 204: no utterance in the audio.
    case noResult
    /// 400: the request was malformed or unsupported; the details name the field.
    case badRequest
    /// 401: no token, or one the server does not accept (or gRPC UNAUTHENTICATED).
    case unauthorized
    /// 403: the token may not use the requested topic (or gRPC PERMISSION_DENIED).
    case forbidden
    /// 404: no speech within `no_input_timeout_ms`.
    case noSpeech
    /// 408: the client sent no audio for the server's idle timeout.
    case audioTimeout
    /// 409: every recognizer of the server is busy.
    case conflict
    /// 410: `start_timers_message` while no recognition was in progress.
    case notRecognizing
    /// 413: speech longer than `recognition_timeout_ms`.
    case tooMuchSpeech
    /// 429: the server's rate of new recognitions was exceeded.
    case tooManyRequests
    /// 500: the recognizer failed.
    case internalError
    /// 502: a resource failed to load.
    case resourceError
    /// 503: a gateway could not reach the service.
    case serviceUnavailable
    /// 512: the server shut down during the recognition.
    case shutdown
    /// Another status code.
    case otherStatus
    /// The call failed below the protocol (connection, HTTP/2, gRPC): see ``transportStatus``.
    case transportFailure
    /// The client cancelled the recognition.
    case cancelled
  }

  /// What happened.
  public let kind: Kind
  /// The status the server sent, if it sent one.
  public let status: RecognitionStatus?
  /// The gRPC status of a call that failed below the protocol.
  public let transportStatus: GRPCStatus?

  /// The outcome of a status the server sent.
  public init(status: RecognitionStatus) {
    self.status = status
    self.transportStatus = nil
    switch status.code {
    case 200: kind = .success
    case 204: kind = .noResult
    case 400: kind = .badRequest
    case 401: kind = .unauthorized
    case 403: kind = .forbidden
    case 404: kind = .noSpeech
    case 408: kind = .audioTimeout
    case 409: kind = .conflict
    case 410: kind = .notRecognizing
    case 413: kind = .tooMuchSpeech
    case 429: kind = .tooManyRequests
    case 500: kind = .internalError
    case 502: kind = .resourceError
    case 503: kind = .serviceUnavailable
    case 512: kind = .shutdown
    default: kind = .otherStatus
    }
  }

  /// The outcome of a call that failed below the protocol. UNAUTHENTICATED and
  /// PERMISSION_DENIED, as gateways in front of a recognizer send them, are ``Kind/unauthorized``
  /// and ``Kind/forbidden``, as their in-band 401 and 403 are; every other status is
  /// ``Kind/transportFailure``.
  public init(transportFailure status: GRPCStatus) {
    switch status.code {
    case .unauthenticated: self.kind = .unauthorized
    case .permissionDenied: self.kind = .forbidden
    default: self.kind = .transportFailure
    }
    self.status = nil
    self.transportStatus = status
  }

  /// The outcome of a recognition the client cancelled.
  public static let cancelled = RecognitionOutcome(kind: .cancelled)

  private init(kind: Kind) {
    self.kind = kind
    self.status = nil
    self.transportStatus = GRPCStatus(.cancelled, "cancelled by the client")
  }

  /// The status code, if the server sent a status.
  public var code: UInt32? { status?.code }

  /// Whether the recognition completed normally (200 or 204).
  public var isSuccess: Bool { kind == .success || kind == .noResult }

  public var description: String {
    if kind == .cancelled { return "cancelled" }
    if let status {
      let details = status.details.isEmpty ? "" : " — \(status.details)"
      return "\(status.code) \(status.message)\(details)"
    }
    switch (kind, transportStatus) {
    case (.unauthorized, let transport?): return "unauthorized: \(transport)"
    case (.forbidden, let transport?): return "forbidden: \(transport)"
    case (_, let transport?): return "transport failure: \(transport)"
    case (_, nil): return "cancelled"
    }
  }
}
