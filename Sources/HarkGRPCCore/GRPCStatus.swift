/// A gRPC status: a code and a message, as carried by the `grpc-status` and `grpc-message`
/// trailers.
public struct GRPCStatus: Error, Hashable, Sendable, CustomStringConvertible {
  /// The status codes of gRPC (`grpc/include/grpc/impl/codegen/status.h`).
  public struct Code: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The numeric value sent in `grpc-status`.
    public let rawValue: Int

    /// The code for `rawValue`, or nil outside 0 ... 16.
    public init?(rawValue: Int) {
      guard (0...16).contains(rawValue) else { return nil }
      self.rawValue = rawValue
    }

    private init(_ rawValue: Int) { self.rawValue = rawValue }

    public static let ok = Code(0)
    public static let cancelled = Code(1)
    public static let unknown = Code(2)
    public static let invalidArgument = Code(3)
    public static let deadlineExceeded = Code(4)
    public static let notFound = Code(5)
    public static let alreadyExists = Code(6)
    public static let permissionDenied = Code(7)
    public static let resourceExhausted = Code(8)
    public static let failedPrecondition = Code(9)
    public static let aborted = Code(10)
    public static let outOfRange = Code(11)
    public static let unimplemented = Code(12)
    public static let internalError = Code(13)
    public static let unavailable = Code(14)
    public static let dataLoss = Code(15)
    public static let unauthenticated = Code(16)

    private static let names = [
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The code's name as the gRPC specification spells it, e.g. `RESOURCE_EXHAUSTED`.
    public var description: String { Code.names[rawValue] }

    public static func < (lhs: Code, rhs: Code) -> Bool { lhs.rawValue < rhs.rawValue }
  }

  /// The status code.
  public var code: Code
  /// A developer-facing message; may be empty.
  public var message: String
  /// The server's retry pushback (gRFC A6, trailer `grpc-retry-pushback-ms`): how long the
  /// client should wait before trying the call again; nil when the server gave none. A
  /// negative or malformed value, which A6 reads as "do not retry", is kept as -1.
  public var retryPushbackMilliseconds: Int?

  /// A status of `code` with `message`.
  public init(_ code: Code, _ message: String = "") {
    self.code = code
    self.message = message
  }

  /// The OK status.
  public static let ok = GRPCStatus(.ok)

  /// A status of a failure that trying again does not cure (a TLS certificate that does not
  /// verify, the wrong protocol): its pushback says not to retry, as a server's negative one
  /// does (gRFC A6).
  public static func lasting(_ code: Code, _ message: String) -> GRPCStatus {
    var status = GRPCStatus(code, message)
    status.retryPushbackMilliseconds = -1
    return status
  }

  public var description: String {
    message.isEmpty ? "\(code)" : "\(code): \(message)"
  }
}
