import HarkGRPCCore
public import HarkProto
import NIOConcurrencyHelpers
public import NIOCore

/// The standard gRPC health service, `grpc.health.v1.Health` (Check and Watch), as load
/// balancers, orchestrators (Kubernetes' gRPC probes) and `grpc_health_probe`-like tools ask it.
///
/// The server sets each service's status; `""` stands for the server as a whole. Check answers
/// a known service's status, and NOT_FOUND for another; Watch sends the status at once and then
/// each change, and `SERVICE_UNKNOWN` for a service not (yet) known.
public final class HealthService: Sendable {
  /// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
  public enum ServingStatus: Int32, Sendable, Hashable, CustomStringConvertible {
    case unknown = 0
    case serving = 1
    case notServing = 2
    case serviceUnknown = 3

    public var description: String {
      switch self {
      case .unknown: "UNKNOWN"
      case .serving: "SERVING"
      case .notServing: "NOT_SERVING"
      case .serviceUnknown: "SERVICE_UNKNOWN"
      }
    }
  }

  public static let checkPath = "/grpc.health.v1.Health/Check"
  public static let watchPath = "/grpc.health.v1.Health/Watch"

  private struct State {
    var statuses: [String: ServingStatus]
    var watchers: [Int: (service: String, continuation: AsyncStream<ServingStatus>.Continuation)] =
      [:]
    var nextWatcher = 0
  }

  private let state: NIOLockedValueBox<State>

  /// A health service that knows `statuses` (by service name; `""` for the whole server).
  public init(_ statuses: [String: ServingStatus]) {
    state = NIOLockedValueBox(State(statuses: statuses))
  }

  /// The status of `service`, nil if it is not known.
  public func status(of service: String) -> ServingStatus? {
    state.withLockedValue { $0.statuses[service] }
  }

  /// Sets the status of `service`, telling its watchers.
  public func setStatus(_ status: ServingStatus, for service: String) {
    let watchers = state.withLockedValue { state in
      state.statuses[service] = status
      return state.watchers.values.filter { $0.service == service }.map(\.continuation)
    }
    for watcher in watchers { watcher.yield(status) }
  }

  /// Ends every Watch call (OK, after the last status it sent): a server going away lets its
  /// watchers go, so that they do not hold its drain open.
  public func endWatches() {
    let watchers = state.withLockedValue { state in
      defer { state.watchers = [:] }
      return state.watchers.values.map(\.continuation)
    }
    for watcher in watchers { watcher.finish() }
  }

  /// Sets every known service's status.
  public func setAll(_ status: ServingStatus) {
    for service in state.withLockedValue({ Array($0.statuses.keys) }) {
      setStatus(status, for: service)
    }
  }

  /// Check and Watch, to serve next to the server's own methods.
  public var methods: [GRPCServer.Method] {
    [
      .async(
        Self.checkPath,
        requestType: HealthCheckRequest.self,
        responseType: HealthCheckResponse.self
      ) { call in
        var service: String?
        for try await request in call.requests where service == nil { service = request.service }
        guard let status = self.status(of: service ?? "") else {
          throw GRPCStatus(.notFound, "unknown service \(service ?? "")")
        }
        try await call.send(HealthCheckResponse(status: status))
      },
      .async(
        Self.watchPath,
        requestType: HealthCheckRequest.self,
        responseType: HealthCheckResponse.self
      ) { call in
        var service: String?
        for try await request in call.requests where service == nil {
          service = request.service
          break
        }
        let (changes, continuation) = AsyncStream.makeStream(
          of: ServingStatus.self,
          bufferingPolicy: .bufferingNewest(1)
        )
        let id = self.state.withLockedValue { state in
          defer { state.nextWatcher += 1 }
          state.watchers[state.nextWatcher] = (service ?? "", continuation)
          return state.nextWatcher
        }
        defer { _ = self.state.withLockedValue { $0.watchers.removeValue(forKey: id) } }
        var last = self.status(of: service ?? "") ?? .serviceUnknown
        try await call.send(HealthCheckResponse(status: last))
        for await status in changes where status != last {
          last = status
          try await call.send(HealthCheckResponse(status: status))
        }
      },
    ]
  }
}

/// `grpc.health.v1.HealthCheckRequest`.
public struct HealthCheckRequest: ProtoMessage, GRPCCodable {
  public var service = ""

  public init() {}
  public init(service: String) { self.service = service }

  public static let protoName = "grpc.health.v1.HealthCheckRequest"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "service" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, service) }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(service, field: 1)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): service = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `grpc.health.v1.HealthCheckResponse`.
public struct HealthCheckResponse: ProtoMessage, GRPCCodable {
  /// The serving status as sent; a value this side does not know stays as it is.
  public var rawStatus: Int32 = 0

  public init() {}
  public init(status: HealthService.ServingStatus) { rawStatus = status.rawValue }

  /// The status, nil for a value this side does not know.
  public var status: HealthService.ServingStatus? {
    HealthService.ServingStatus(rawValue: rawStatus)
  }

  public static let protoName = "grpc.health.v1.HealthCheckResponse"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "status" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, rawStatus) }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(rawStatus, field: 1)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): rawStatus = try reader.readInt32()
      default: try reader.skip(tag)
      }
    }
  }
}
