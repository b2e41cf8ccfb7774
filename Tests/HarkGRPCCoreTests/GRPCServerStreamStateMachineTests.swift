import HarkGRPCCore
import NIOCore
import Testing

@Suite("gRPC server stream state machine")
struct GRPCServerStreamStateMachineTests {
  typealias Machine = GRPCServerStreamStateMachine

  // MARK: - Fixtures

  static let path = "/nuance.asr.v1.Recognizer/Recognize"
  static let authorization = "Bearer y235.wef315yfh138vh31hv93hv8h3v"

  /// A valid request (H2, H3, H25): pseudo headers, timeout, call definition, metadata.
  static let requestHeaders = fields([
    ":method": "POST", ":scheme": "http", ":path": path, ":authority": "asr.api.nuance.com:443",
    "grpc-timeout": "1S", "te": "trailers", "content-type": "application/grpc",
    "user-agent": "grpc-swift-hark/0.1", "authorization": authorization,
  ])

  /// What the machine accepts `requestHeaders` as.
  static let acceptedRequest = HeadersAction.accept(
    path: path,
    authority: "asr.api.nuance.com:443",
    timeout: GRPCTimeout(value: 1, unit: .seconds),
    metadata: metadata(["authorization": authorization])
  )

  /// The response headers of every accepted call (H17).
  static let responseHeaders = fields([":status": "200", "content-type": "application/grpc"])

  /// A message of three bytes, framed.
  static let message: [UInt8] = [0, 0, 0, 0, 3, 0x0A, 0x01, 0x41]
  static let messageBody: [UInt8] = [0x0A, 0x01, 0x41]

  // MARK: - States and actions as tests see them

  /// The diagram's states, read back through the public API alone.
  enum Phase: Hashable, Sendable {
    case awaitingHeaders
    case open(requestOpen: Bool, responseHeadersSent: Bool)
    case responseClosed
    case closed
  }

  /// The state `machine` is in, found from its properties and, on copies, from what it would do.
  static func phase(of machine: Machine) -> Phase {
    if machine.isClosed {
      #expect(!machine.isResponseOpen)
      return .closed
    }
    if !machine.isResponseOpen { return .responseClosed }
    var probe = machine
    if case .accept = probe.receive(headers: requestHeaders, endStream: false) {
      return .awaitingHeaders
    }
    probe = machine
    let requestOpen: Bool
    if case .deliver = probe.receive(data: ByteBuffer(), endStream: false) {
      requestOpen = true
    } else {
      requestOpen = false
    }
    probe = machine
    return .open(requestOpen: requestOpen, responseHeadersSent: probe.sendHeaders() == nil)
  }

  /// A state reachable through the public API, named by the events that lead there.
  enum Start: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Nothing received.
    case awaitingHeaders
    /// Request headers accepted; nothing sent.
    case open
    /// A response message went out, so the response headers did.
    case openResponseStarted
    /// The client half-closed; nothing sent.
    case requestEnded
    /// The client half-closed after a response message went out.
    case requestEndedResponseStarted
    /// The handler finished while the client is still sending.
    case responseClosed
    /// Both directions ended normally.
    case finished
    /// The client reset the stream.
    case reset
    /// The client sent bad framing.
    case failed
    /// The request was not gRPC (415).
    case rejected

    var testDescription: String { rawValue }

    /// The state the events lead to.
    var phase: Phase {
      switch self {
      case .awaitingHeaders: .awaitingHeaders
      case .open: .open(requestOpen: true, responseHeadersSent: false)
      case .openResponseStarted: .open(requestOpen: true, responseHeadersSent: true)
      case .requestEnded: .open(requestOpen: false, responseHeadersSent: false)
      case .requestEndedResponseStarted: .open(requestOpen: false, responseHeadersSent: true)
      case .responseClosed: .responseClosed
      case .finished, .reset, .failed, .rejected: .closed
      }
    }
  }

  /// A machine in `start`, built by applying the events that lead there.
  static func machine(
    in start: Start,
    maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize
  ) throws -> Machine {
    var machine = Machine(maxReceiveMessageSize: maxReceiveMessageSize)
    switch start {
    case .awaitingHeaders:
      break
    case .open:
      _ = machine.receive(headers: requestHeaders, endStream: false)
    case .openResponseStarted:
      machine = try Self.machine(in: .open, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = try machine.sendMessage()
    case .requestEnded:
      machine = try Self.machine(in: .open, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = machine.receive(data: ByteBuffer(), endStream: true)
    case .requestEndedResponseStarted:
      machine = try Self.machine(in: .requestEnded, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = try machine.sendMessage()
    case .responseClosed:
      machine = try Self.machine(
        in: .openResponseStarted,
        maxReceiveMessageSize: maxReceiveMessageSize
      )
      _ = machine.finish(status: .ok)
    case .finished:
      machine = try Self.machine(
        in: .requestEndedResponseStarted,
        maxReceiveMessageSize: maxReceiveMessageSize
      )
      _ = machine.finish(status: .ok)
    case .reset:
      machine = try Self.machine(in: .open, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = machine.receiveReset()
    case .failed:
      machine = try Self.machine(in: .open, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = machine.receive(data: ByteBuffer(bytes: [2, 0, 0, 0, 0]), endStream: false)
    case .rejected:
      _ = machine.receive(
        headers: fields([":method": "POST", ":path": path, "content-type": "text/html"]),
        endStream: false
      )
    }
    return machine
  }

  /// `receive(headers:endStream:)`'s answer, comparable.
  enum HeadersAction: Equatable, Sendable {
    case accept(path: String, authority: String?, timeout: GRPCTimeout?, metadata: GRPCMetadata)
    case rejectHTTP(status: Int, headers: [HTTPHeaderField])
    case rejectTrailersOnly(GRPCStatus, [HTTPHeaderField])
    case protocolViolation(GRPCStatus)
    case requestEnded(EndAction)
    case ignore

    init(_ action: Machine.OnRequestHeaders) {
      switch action {
      case .accept(let request):
        self = .accept(
          path: request.path,
          authority: request.authority,
          timeout: request.timeout,
          metadata: request.metadata
        )
      case .rejectHTTP(let status, let headers):
        self = .rejectHTTP(status: status, headers: headers)
      case .rejectTrailersOnly(let status, let fields): self = .rejectTrailersOnly(status, fields)
      case .protocolViolation(let status): self = .protocolViolation(status)
      case .requestEnded(let end): self = .requestEnded(EndAction(end))
      case .ignore: self = .ignore
      }
    }
  }

  /// `OnRequestEnd`, comparable.
  enum EndAction: Equatable, Sendable {
    case requestEnded
    case fail(GRPCStatus, Machine.OnFinish)
    case ignore

    init(_ action: Machine.OnRequestEnd) {
      switch action {
      case .requestEnded: self = .requestEnded
      case .fail(let status, let onFinish): self = .fail(status, onFinish)
      case .ignore: self = .ignore
      }
    }
  }

  /// `receive(data:endStream:)`'s answer, comparable, with the messages as bytes.
  enum DataAction: Equatable, Sendable {
    case deliver([[UInt8]], requestEnded: Bool)
    case fail(GRPCStatus, Machine.OnFinish)
    case ignore

    init(_ action: Machine.OnRequestData) {
      switch action {
      case .deliver(let messages, let requestEnded):
        self = .deliver(messages.map { Array($0.readableBytesView) }, requestEnded: requestEnded)
      case .fail(let status, let onFinish): self = .fail(status, onFinish)
      case .ignore: self = .ignore
      }
    }
  }

  /// `sendMessage()`'s answer, or its refusal.
  enum SendAction: Equatable, Sendable {
    case action(Machine.OnSendMessage)
    case refused
  }

  static func send(_ machine: inout Machine) -> SendAction {
    do {
      return .action(try machine.sendMessage())
    } catch {
      // A typed throw: the only error is StreamClosedError.
      return .refused
    }
  }

  @Test("each start is reached by its events", arguments: Start.allCases)
  func startsAreReached(_ start: Start) throws {
    #expect(Self.phase(of: try Self.machine(in: start)) == start.phase)
  }

  @Test("every state table names every start once")
  func tablesCoverEveryStart() {
    let tables: [[Start]] = [
      Self.requestHeadersTable.map(\.0), Self.requestTrailersTable.map(\.0),
      Self.dataTable.map(\.0), Self.lastDataTable.map(\.0), Self.sendMessageTable.map(\.0),
      Self.sendHeadersTable.map(\.0), Self.finishTable.map(\.0), Self.resetTable.map(\.0),
      Self.deadlineTable.map(\.0),
    ]
    for table in tables { #expect(table == Start.allCases) }
  }

  // MARK: - Every state × every event

  static let unexpectedHeaders = GRPCStatus(
    .internalError,
    "unexpected HEADERS in the request stream"
  )

  static let requestHeadersTable: [(Start, HeadersAction, Phase)] = [
    (.awaitingHeaders, acceptedRequest, .open(requestOpen: true, responseHeadersSent: false)),
    (.open, .protocolViolation(unexpectedHeaders), Start.open.phase),
    (.openResponseStarted, .protocolViolation(unexpectedHeaders), Start.openResponseStarted.phase),
    (.requestEnded, .ignore, Start.requestEnded.phase),
    (.requestEndedResponseStarted, .ignore, Start.requestEndedResponseStarted.phase),
    // The status is out: a HEADERS that races it is ignored, not a violation.
    (.responseClosed, .ignore, .responseClosed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("request headers without END_STREAM", arguments: requestHeadersTable)
  func requestHeadersInEachState(_ start: Start, expected: HeadersAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(headers: Self.requestHeaders, endStream: false)
    #expect(HeadersAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let requestTrailersTable: [(Start, HeadersAction, Phase)] = [
    // As the first HEADERS these are request headers without a content-type.
    (.awaitingHeaders, .rejectHTTP(status: 415, headers: []), .closed),
    (.open, .requestEnded(.requestEnded), .open(requestOpen: false, responseHeadersSent: false)),
    (
      .openResponseStarted, .requestEnded(.requestEnded),
      .open(requestOpen: false, responseHeadersSent: true)
    ),
    (.requestEnded, .ignore, Start.requestEnded.phase),
    (.requestEndedResponseStarted, .ignore, Start.requestEndedResponseStarted.phase),
    (.responseClosed, .requestEnded(.ignore), .closed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("request trailers (HEADERS with END_STREAM)", arguments: requestTrailersTable)
  func requestTrailersInEachState(_ start: Start, expected: HeadersAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(headers: fields(["x-checksum": "ab12"]), endStream: true)
    #expect(HeadersAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let dataTable: [(Start, DataAction, Phase)] = [
    (.awaitingHeaders, .ignore, .awaitingHeaders),
    (.open, .deliver([messageBody], requestEnded: false), Start.open.phase),
    (
      .openResponseStarted, .deliver([messageBody], requestEnded: false),
      Start.openResponseStarted.phase
    ),
    (.requestEnded, .ignore, Start.requestEnded.phase),
    (.requestEndedResponseStarted, .ignore, Start.requestEndedResponseStarted.phase),
    (.responseClosed, .ignore, .responseClosed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("a DATA frame with one message", arguments: dataTable)
  func dataInEachState(_ start: Start, expected: DataAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: false)
    #expect(DataAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let lastDataTable: [(Start, DataAction, Phase)] = [
    (.awaitingHeaders, .ignore, .awaitingHeaders),
    (
      .open, .deliver([messageBody], requestEnded: true),
      .open(requestOpen: false, responseHeadersSent: false)
    ),
    (
      .openResponseStarted, .deliver([messageBody], requestEnded: true),
      .open(requestOpen: false, responseHeadersSent: true)
    ),
    (.requestEnded, .ignore, Start.requestEnded.phase),
    (.requestEndedResponseStarted, .ignore, Start.requestEndedResponseStarted.phase),
    // The request's end, after the status, closes the stream.
    (.responseClosed, .ignore, .closed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("a DATA frame with one message and END_STREAM", arguments: lastDataTable)
  func lastDataInEachState(_ start: Start, expected: DataAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: true)
    #expect(DataAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let sendMessageTable: [(Start, SendAction, Phase)] = [
    (.awaitingHeaders, .refused, .awaitingHeaders),
    (
      .open, .action(.sendHeadersThenMessage(responseHeaders)),
      .open(requestOpen: true, responseHeadersSent: true)
    ),
    (
      .openResponseStarted, .action(.sendMessage),
      .open(requestOpen: true, responseHeadersSent: true)
    ),
    (
      .requestEnded, .action(.sendHeadersThenMessage(responseHeaders)),
      .open(requestOpen: false, responseHeadersSent: true)
    ),
    (
      .requestEndedResponseStarted, .action(.sendMessage),
      .open(requestOpen: false, responseHeadersSent: true)
    ),
    (.responseClosed, .refused, .responseClosed),
    (.finished, .refused, .closed),
    (.reset, .refused, .closed),
    (.failed, .refused, .closed),
    (.rejected, .refused, .closed),
  ]

  @Test("sendMessage()", arguments: sendMessageTable)
  func sendMessageInEachState(_ start: Start, expected: SendAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(Self.send(&machine) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let initialMetadata = metadata(
    ["x-server-id": "krypton-1"],
    binary: ["trace-bin": [1, 2, 3]]
  )
  static let headersWithMetadata =
    responseHeaders + fields(["x-server-id": "krypton-1", "trace-bin": "AQID"])

  static let sendHeadersTable: [(Start, [HTTPHeaderField]?, Phase)] = [
    (.awaitingHeaders, nil, .awaitingHeaders),
    (.open, headersWithMetadata, .open(requestOpen: true, responseHeadersSent: true)),
    (.openResponseStarted, nil, Start.openResponseStarted.phase),
    (.requestEnded, headersWithMetadata, .open(requestOpen: false, responseHeadersSent: true)),
    (.requestEndedResponseStarted, nil, Start.requestEndedResponseStarted.phase),
    (.responseClosed, nil, .responseClosed),
    (.finished, nil, .closed),
    (.reset, nil, .closed),
    (.failed, nil, .closed),
    (.rejected, nil, .closed),
  ]

  @Test("sendHeaders(metadata:)", arguments: sendHeadersTable)
  func sendHeadersInEachState(_ start: Start, expected: [HTTPHeaderField]?, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.sendHeaders(metadata: Self.initialMetadata) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let notFound = GRPCStatus(.notFound, "no such user")
  static let notFoundTrailers = fields([
    "grpc-status": "5", "grpc-message": "no such user", "x-request-id": "42",
  ])

  static let finishTable: [(Start, Machine.OnFinish, Phase)] = [
    // Nothing arrived, so nothing is left to read.
    (
      .awaitingHeaders,
      .sendTrailersOnly(responseHeaders + notFoundTrailers, resetAfterward: false), .closed
    ),
    // H29: trailers before the client's END_STREAM, then RST_STREAM NO_ERROR.
    (
      .open, .sendTrailersOnly(responseHeaders + notFoundTrailers, resetAfterward: true),
      .responseClosed
    ),
    (.openResponseStarted, .sendTrailers(notFoundTrailers, resetAfterward: true), .responseClosed),
    (
      .requestEnded, .sendTrailersOnly(responseHeaders + notFoundTrailers, resetAfterward: false),
      .closed
    ),
    (.requestEndedResponseStarted, .sendTrailers(notFoundTrailers, resetAfterward: false), .closed),
    (.responseClosed, .ignore, .responseClosed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("finish(status:metadata:)", arguments: finishTable)
  func finishInEachState(_ start: Start, expected: Machine.OnFinish, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.finish(
      status: Self.notFound,
      metadata: metadata(["x-request-id": "42"])
    )
    #expect(action == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let resetTable: [(Start, Machine.OnReset)] = [
    (.awaitingHeaders, .cancelled),
    (.open, .cancelled),
    (.openResponseStarted, .cancelled),
    (.requestEnded, .cancelled),
    (.requestEndedResponseStarted, .cancelled),
    // The status was sent: a reset is a race, not a cancellation.
    (.responseClosed, .ignore),
    (.finished, .ignore),
    (.reset, .ignore),
    (.failed, .ignore),
    (.rejected, .ignore),
  ]

  @Test("receiveReset() closes the stream from every state", arguments: resetTable)
  func resetInEachState(_ start: Start, expected: Machine.OnReset) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.receiveReset() == expected)
    #expect(Self.phase(of: machine) == .closed)
    #expect(!machine.isResponseOpen)
  }

  static let deadlineTrailers = fields([
    "grpc-status": "4", "grpc-message": "deadline exceeded",
  ])

  static let deadlineTable: [(Start, Machine.OnFinish, Phase)] = [
    (
      .awaitingHeaders, .sendTrailersOnly(responseHeaders + deadlineTrailers, resetAfterward: true),
      .closed
    ),
    (.open, .sendTrailersOnly(responseHeaders + deadlineTrailers, resetAfterward: true), .closed),
    (.openResponseStarted, .sendTrailers(deadlineTrailers, resetAfterward: true), .closed),
    // H30: the stream is reset with CANCEL even when the client already half-closed.
    (
      .requestEnded, .sendTrailersOnly(responseHeaders + deadlineTrailers, resetAfterward: true),
      .closed
    ),
    (.requestEndedResponseStarted, .sendTrailers(deadlineTrailers, resetAfterward: true), .closed),
    // The diagram: a deadline closes the stream from any state, with nothing more to send.
    (.responseClosed, .ignore, .closed),
    (.finished, .ignore, .closed),
    (.reset, .ignore, .closed),
    (.failed, .ignore, .closed),
    (.rejected, .ignore, .closed),
  ]

  @Test("deadlineExpired()", arguments: deadlineTable)
  func deadlineInEachState(_ start: Start, expected: Machine.OnFinish, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.deadlineExpired() == expected)
    #expect(Self.phase(of: machine) == after)
  }

  // MARK: - Request headers

  @Test("a valid request is accepted with its path, authority, deadline and metadata")
  func acceptsValidRequest() {
    var machine = Machine()
    #expect(machine.timeout == nil)
    let action = machine.receive(headers: Self.requestHeaders, endStream: false)
    #expect(HeadersAction(action) == Self.acceptedRequest)
    #expect(machine.timeout == GRPCTimeout(value: 1, unit: .seconds))
    #expect(Self.phase(of: machine) == .open(requestOpen: true, responseHeadersSent: false))
  }

  /// How a server answers a request's content-type.
  enum ContentTypeOutcome: Sendable {
    case accepted
    /// gRPC with a codec the server does not serve: UNIMPLEMENTED naming it.
    case unimplementedCodec(String)
    /// Not gRPC: HTTP 415.
    case unsupportedMediaType
  }

  @Test(
    "content-type: proto is served, another gRPC codec is UNIMPLEMENTED, the rest HTTP 415 (H5)",
    arguments: [
      (nil, .unsupportedMediaType), ("text/html", .unsupportedMediaType),
      ("application/json", .unsupportedMediaType), ("application/grp", .unsupportedMediaType),
      ("application/grpcx", .unsupportedMediaType), ("application/grpc-web", .unsupportedMediaType),
      ("application/grpc", .accepted), ("application/grpc+proto", .accepted),
      ("Application/GRPC+Proto", .accepted), ("application/grpc; charset=utf-8", .accepted),
      ("application/grpc+proto;x=1", .accepted),
      ("application/grpc+json", .unimplementedCodec("json")),
      ("application/grpc+thrift", .unimplementedCodec("thrift")),
    ] as [(String?, ContentTypeOutcome)]
  )
  func contentType(_ contentType: String?, outcome: ContentTypeOutcome) {
    var headers = fields([
      ":method": "POST", ":scheme": "http", ":path": Self.path, "te": "trailers",
    ])
    if let contentType { headers.append(HTTPHeaderField("content-type", contentType)) }
    var machine = Machine()
    let action = HeadersAction(machine.receive(headers: headers, endStream: false))
    switch outcome {
    case .accepted:
      let expected = HeadersAction.accept(
        path: Self.path,
        authority: nil,
        timeout: nil,
        metadata: GRPCMetadata()
      )
      #expect(action == expected)
      #expect(Self.phase(of: machine) == .open(requestOpen: true, responseHeadersSent: false))
    case .unimplementedCodec(let codec):
      guard case .rejectTrailersOnly(let status, let fields) = action else {
        Issue.record("expected a Trailers-Only UNIMPLEMENTED, got \(action)")
        return
      }
      #expect(status.code == .unimplemented)
      #expect(status.message.contains("application/grpc+\(codec)"), "\(status.message)")
      #expect(fields.contains(HTTPHeaderField("grpc-status", "12")))
      #expect(Self.phase(of: machine) == .closed)
    case .unsupportedMediaType:
      #expect(action == .rejectHTTP(status: 415, headers: []))
      #expect(Self.phase(of: machine) == .closed)
    }
  }

  @Test(
    "gRPC requires te: trailers: without it, or with another value, the call is INTERNAL",
    arguments: [nil, "gzip", "trailers, deflate"] as [String?]
  )
  func requiresTETrailers(_ te: String?) {
    var headers = fields([
      ":method": "POST", ":scheme": "http", ":path": Self.path, "content-type": "application/grpc",
    ])
    if let te { headers.append(HTTPHeaderField("te", te)) }
    var machine = Machine()
    let action = HeadersAction(machine.receive(headers: headers, endStream: false))
    guard case .rejectTrailersOnly(let status, _) = action else {
      Issue.record("expected a Trailers-Only INTERNAL, got \(action)")
      return
    }
    #expect(status.code == .internalError)
    #expect(status.message.contains("te: trailers"), "\(status.message)")
    #expect(Self.phase(of: machine) == .closed)
  }

  @Test("content-type is checked first: a GET of text/html is a 415, not a gRPC status")
  func contentTypeBeforeMethod() {
    var machine = Machine()
    let headers = fields([":method": "GET", ":path": "/", "content-type": "text/html"])
    let action = machine.receive(headers: headers, endStream: true)
    #expect(HeadersAction(action) == .rejectHTTP(status: 415, headers: []))
    #expect(Self.phase(of: machine) == .closed)
  }

  /// A request header to replace (or, with a nil value, remove), the status it draws, and any
  /// field beyond the status.
  struct Rejection: Sendable, CustomTestStringConvertible {
    var name: String
    var value: String?
    var status: GRPCStatus
    var extra: [HTTPHeaderField] = []

    var testDescription: String { "\(name): \(value ?? "(absent)")" }
  }

  static let rejections: [Rejection] = [
    Rejection(
      name: ":method",
      value: "GET",
      status: GRPCStatus(.internalError, "gRPC requests use POST, not GET")
    ),
    Rejection(
      name: ":method",
      value: nil,
      status: GRPCStatus(.internalError, "gRPC requests use POST, not no method")
    ),
    Rejection(
      name: ":path",
      value: nil,
      status: GRPCStatus(.internalError, "request has no :path")
    ),
    Rejection(
      name: ":path",
      value: "nuance.asr.v1.Recognizer/Recognize",
      status: GRPCStatus(.internalError, "request has no :path")
    ),
    // C1: UNIMPLEMENTED, naming what the server accepts.
    Rejection(
      name: "grpc-encoding",
      value: "gzip",
      status: GRPCStatus(.unimplemented, "compression 'gzip' is not supported"),
      extra: [HTTPHeaderField("grpc-accept-encoding", "identity")]
    ),
    Rejection(
      name: "grpc-encoding",
      value: "snappy",
      status: GRPCStatus(.unimplemented, "compression 'snappy' is not supported"),
      extra: [HTTPHeaderField("grpc-accept-encoding", "identity")]
    ),
    Rejection(
      name: "grpc-timeout",
      value: "1x",
      status: GRPCStatus(.internalError, "invalid grpc-timeout '1x'")
    ),
    Rejection(
      name: "grpc-timeout",
      value: "123456789S",
      status: GRPCStatus(.internalError, "invalid grpc-timeout '123456789S'")
    ),
    Rejection(
      name: "grpc-timeout",
      value: "-1S",
      status: GRPCStatus(.internalError, "invalid grpc-timeout '-1S'")
    ),
    Rejection(
      name: "grpc-timeout",
      value: "",
      status: GRPCStatus(.internalError, "invalid grpc-timeout ''")
    ),
    Rejection(
      name: "grpc-timeout",
      value: "S",
      status: GRPCStatus(.internalError, "invalid grpc-timeout 'S'")
    ),
  ]

  @Test("a gRPC request the server cannot serve gets a Trailers-Only status", arguments: rejections)
  func rejectsTrailersOnly(_ rejection: Rejection) {
    var headers = Self.requestHeaders.filter { $0.name != rejection.name }
    if let value = rejection.value { headers.append(HTTPHeaderField(rejection.name, value)) }
    var machine = Machine()
    let action = machine.receive(headers: headers, endStream: false)
    var expected = Self.responseHeaders
    expected.append(HTTPHeaderField("grpc-status", String(rejection.status.code.rawValue)))
    expected.append(HTTPHeaderField("grpc-message", rejection.status.message))
    expected += rejection.extra
    #expect(HeadersAction(action) == .rejectTrailersOnly(rejection.status, expected))
    #expect(Self.phase(of: machine) == .closed)
    #expect(machine.timeout == nil)
  }

  @Test("grpc-encoding: identity is no compression and is accepted")
  func identityEncoding() {
    var machine = Machine()
    let headers = Self.requestHeaders + [HTTPHeaderField("grpc-encoding", "identity")]
    #expect(
      HeadersAction(machine.receive(headers: headers, endStream: false)) == Self.acceptedRequest
    )
  }

  @Test(
    "grpc-timeout is parsed into the request's deadline (H4)",
    arguments: [
      ("1S", GRPCTimeout(value: 1, unit: .seconds)),
      ("250m", GRPCTimeout(value: 250, unit: .milliseconds)),
      ("100u", GRPCTimeout(value: 100, unit: .microseconds)),
      ("0n", GRPCTimeout(value: 0, unit: .nanoseconds)),
      ("5M", GRPCTimeout(value: 5, unit: .minutes)),
      ("99999999H", GRPCTimeout(value: 99_999_999, unit: .hours)),
      (nil, nil),
    ] as [(String?, GRPCTimeout?)]
  )
  func timeouts(_ value: String?, expected: GRPCTimeout?) throws {
    var headers = Self.requestHeaders.filter { $0.name != "grpc-timeout" }
    if let value { headers.append(HTTPHeaderField("grpc-timeout", value)) }
    var machine = Machine()
    let request = try #require(Self.request(machine.receive(headers: headers, endStream: false)))
    #expect(request.timeout == expected)
    #expect(machine.timeout == expected)
  }

  @Test("custom metadata is what is left after pseudo and reserved headers, bad entries dropped")
  func metadataExtraction() throws {
    let headers = fields([
      ":method": "POST", ":scheme": "https", ":path": Self.path, ":authority": "localhost",
      "grpc-timeout": "5S", "te": "trailers", "content-type": "application/grpc+proto",
      "grpc-accept-encoding": "identity", "user-agent": "grpc-python/1.60.0",
      "authorization": Self.authorization, "x-client-id": "a", "x-client-id": "b",
      "trace-bin": "AQID", "multi-bin": "AQ==, Ag", "grpc-trace-bin": "AAEC",
      // H25's example value is 17 characters, which is not base64: the entry is dropped.
      "trace-proto-bin": "jher831yy13JHy3hc",
      // Uppercase is not a valid metadata name: dropped, the call goes on.
      "X-Upper": "1",
    ])
    var machine = Machine()
    let request = try #require(Self.request(machine.receive(headers: headers, endStream: false)))
    #expect(
      request.metadata.headerFields.map { "\($0.name): \($0.value)" } == [
        "authorization: \(Self.authorization)", "x-client-id: a", "x-client-id: b",
        "trace-bin: AQID", "multi-bin: AQ", "multi-bin: Ag", "grpc-trace-bin: AAEC",
      ]
    )
    #expect(request.metadata.values(for: "trace-bin") == [.binary([1, 2, 3])])
    // A joined `-bin` value is split on commas, each part decoded padded or not (H7).
    #expect(request.metadata.values(for: "multi-bin") == [.binary([1]), .binary([2])])
    // Other grpc- names are kept: gRPC defines more of them than it reserves.
    #expect(request.metadata.values(for: "grpc-trace-bin") == [.binary([0, 1, 2])])
    #expect(request.metadata.values(for: "trace-proto-bin") == [])
    #expect(request.authority == "localhost")
    #expect(request.timeout == GRPCTimeout(value: 5, unit: .seconds))
  }

  static func request(_ action: Machine.OnRequestHeaders) -> Machine.Request? {
    if case .accept(let request) = action { return request }
    Issue.record("expected .accept, got \(action)")
    return nil
  }

  @Test("the authority is optional (H2)", arguments: ["asr.api.nuance.com:443", nil] as [String?])
  func authority(_ authority: String?) throws {
    var headers = Self.requestHeaders.filter { $0.name != ":authority" }
    if let authority { headers.append(HTTPHeaderField(":authority", authority)) }
    var machine = Machine()
    let request = try #require(Self.request(machine.receive(headers: headers, endStream: false)))
    #expect(request.authority == authority)
    #expect(request.path == Self.path)
  }

  @Test("END_STREAM on the request headers: a request without messages")
  func endStreamOnHeaders() throws {
    var machine = Machine()
    let action = machine.receive(headers: Self.requestHeaders, endStream: true)
    #expect(HeadersAction(action) == Self.acceptedRequest)
    #expect(Self.phase(of: machine) == .open(requestOpen: false, responseHeadersSent: false))

    // Later DATA is not part of the request, and the status needs no reset after it.
    var afterData = machine
    let data = afterData.receive(data: ByteBuffer(bytes: Self.message), endStream: true)
    #expect(DataAction(data) == .ignore)
    let onFinish = machine.finish(status: .ok)
    #expect(
      onFinish == .sendTrailersOnly(Self.responseHeaders + Self.okTrailers, resetAfterward: false)
    )
    #expect(Self.phase(of: machine) == .closed)
  }

  // MARK: - Request messages

  static let okTrailers = fields(["grpc-status": "0"])

  /// Three messages (one of them empty) in a byte stream.
  static let threeMessages: [UInt8] =
    [0, 0, 0, 0, 3, 1, 2, 3] + [0, 0, 0, 0, 0] + [0, 0, 0, 0, 2, 4, 5]

  @Test(
    "messages split across DATA frames arrive whole, whatever the split (H15)",
    arguments: [
      [20],  // all in one frame
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  // a byte a frame
      [3, 17],  // inside the first prefix
      [5, 3, 5, 7],  // on prefix and message boundaries
      [7, 4, 9],  // inside a message, then inside a prefix
      [8, 12],  // exactly after the first message
    ] as [[Int]]
  )
  func splitMessages(_ chunkSizes: [Int]) throws {
    #expect(chunkSizes.reduce(0, +) == Self.threeMessages.count)
    var machine = try Self.machine(in: .open)
    var received: [[UInt8]] = []
    var offset = 0
    for (index, size) in chunkSizes.enumerated() {
      let isLast = index == chunkSizes.count - 1
      let chunk = ByteBuffer(bytes: Self.threeMessages[offset..<offset + size])
      offset += size
      switch DataAction(machine.receive(data: chunk, endStream: isLast)) {
      case .deliver(let messages, let requestEnded):
        received += messages
        #expect(requestEnded == isLast)
      case let other:
        Issue.record("unexpected \(other)")
      }
    }
    #expect(received == [[1, 2, 3], [], [4, 5]])
    #expect(Self.phase(of: machine) == .open(requestOpen: false, responseHeadersSent: false))
  }

  @Test("an empty DATA frame with END_STREAM ends the request (H16)")
  func emptyEndOfRequest() throws {
    var machine = try Self.machine(in: .open)
    let first = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: false)
    #expect(DataAction(first) == .deliver([Self.messageBody], requestEnded: false))
    let last = machine.receive(data: ByteBuffer(), endStream: true)
    #expect(DataAction(last) == .deliver([], requestEnded: true))
    #expect(Self.phase(of: machine) == .open(requestOpen: false, responseHeadersSent: false))
  }

  /// How the request stream ends.
  enum RequestEnd: String, CaseIterable, Sendable {
    case dataWithEndStream
    case emptyDataWithEndStream
    case trailers
  }

  @Test(
    "the request ending inside a message is INTERNAL",
    arguments: [
      ([0, 0, 0], [], 3),  // inside the prefix
      ([0, 0, 0, 0, 5, 1, 2], [], 7),  // inside the message
      ([0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 2, 1], [[9]], 6),  // after a whole message
    ] as [([UInt8], [[UInt8]], Int)],
    RequestEnd.allCases
  )
  func endInsideMessage(_ row: ([UInt8], [[UInt8]], Int), end: RequestEnd) throws {
    let (bytes, wholeMessages, buffered) = row
    let status = GRPCStatus(
      .internalError,
      "stream ended inside a message, after \(buffered) of its bytes"
    )
    let trailers = fields([
      "grpc-status": "13",
      "grpc-message": "stream ended inside a message, after \(buffered) of its bytes",
    ])
    for (start, onFinish) in [
      (
        Start.open,
        Machine.OnFinish.sendTrailersOnly(Self.responseHeaders + trailers, resetAfterward: true)
      ),
      (.openResponseStarted, .sendTrailers(trailers, resetAfterward: true)),
    ] {
      var machine = try Self.machine(in: start)
      switch end {
      case .dataWithEndStream:
        // The whole messages before the cut are lost with the call.
        let action = machine.receive(data: ByteBuffer(bytes: bytes), endStream: true)
        #expect(DataAction(action) == .fail(status, onFinish))
      case .emptyDataWithEndStream:
        let first = machine.receive(data: ByteBuffer(bytes: bytes), endStream: false)
        #expect(DataAction(first) == .deliver(wholeMessages, requestEnded: false))
        let action = machine.receive(data: ByteBuffer(), endStream: true)
        #expect(DataAction(action) == .fail(status, onFinish))
      case .trailers:
        let first = machine.receive(data: ByteBuffer(bytes: bytes), endStream: false)
        #expect(DataAction(first) == .deliver(wholeMessages, requestEnded: false))
        let action = machine.receive(headers: fields(["x-checksum": "1"]), endStream: true)
        #expect(HeadersAction(action) == .requestEnded(.fail(status, onFinish)))
      }
      #expect(Self.phase(of: machine) == .closed)
    }
  }

  @Test(
    "a declared length over the limit is RESOURCE_EXHAUSTED; at the limit it is accepted",
    arguments: [
      (4, 4, true), (4, 5, false), (0, 0, true), (0, 1, false),
      (4 * 1024 * 1024, 4 * 1024 * 1024 + 1, false), (16, 0xFFFF_FFFF, false),
    ] as [(Int, Int, Bool)]
  )
  func messageSizeLimit(_ limit: Int, length: Int, accepted: Bool) throws {
    var machine = try Self.machine(in: .open, maxReceiveMessageSize: limit)
    var prefix = ByteBuffer()
    prefix.writeInteger(UInt8(0))
    prefix.writeInteger(UInt32(length), endianness: .big)
    let action = DataAction(machine.receive(data: prefix, endStream: false))
    if accepted {
      #expect(action == .deliver(length == 0 ? [[]] : [], requestEnded: false))
      #expect(Self.phase(of: machine) == Start.open.phase)
    } else {
      let message = "message of \(length) bytes is larger than the limit of \(limit) bytes"
      let trailers = fields(["grpc-status": "8", "grpc-message": message])
      let onFinish = Machine.OnFinish.sendTrailersOnly(
        Self.responseHeaders + trailers,
        resetAfterward: true
      )
      #expect(action == .fail(GRPCStatus(.resourceExhausted, message), onFinish))
      #expect(Self.phase(of: machine) == .closed)
    }
  }

  static let tooLarge = GRPCStatus(
    .resourceExhausted,
    "message of 5 bytes is larger than the limit of 4 bytes"
  )
  static let tooLargeTrailers = fields([
    "grpc-status": "8", "grpc-message": "message of 5 bytes is larger than the limit of 4 bytes",
  ])

  @Test(
    "an oversized message: Trailers-Only before the response headers, trailers after",
    arguments: [
      (
        Start.open,
        Machine.OnFinish.sendTrailersOnly(responseHeaders + tooLargeTrailers, resetAfterward: true)
      ),
      (.openResponseStarted, .sendTrailers(tooLargeTrailers, resetAfterward: true)),
    ] as [(Start, Machine.OnFinish)],
    [false, true]
  )
  func oversizedMessage(_ row: (Start, Machine.OnFinish), endStream: Bool) throws {
    let (start, onFinish) = row
    var machine = try Self.machine(in: start, maxReceiveMessageSize: 4)
    // The limit is checked on the prefix, before the body arrives.
    let action = machine.receive(data: ByteBuffer(bytes: [0, 0, 0, 0, 5, 1]), endStream: endStream)
    #expect(DataAction(action) == .fail(Self.tooLarge, onFinish))
    #expect(Self.phase(of: machine) == .closed)
    // The handler's own finish after that is a race: nothing more is sent.
    #expect(machine.finish(status: .ok) == .ignore)
    #expect(Self.send(&machine) == .refused)
  }

  @Test(
    "bad compressed flags are INTERNAL (C2)",
    arguments: [
      (1, "message has the compressed flag set but no grpc-encoding was negotiated"),
      (2, "message has an invalid compressed flag 2"),
      (0xFF, "message has an invalid compressed flag 255"),
    ] as [(UInt8, String)]
  )
  func badCompressedFlag(_ flag: UInt8, message: String) throws {
    var machine = try Self.machine(in: .open)
    let action = machine.receive(data: ByteBuffer(bytes: [flag, 0, 0, 0, 1, 7]), endStream: false)
    let trailers = fields(["grpc-status": "13", "grpc-message": message])
    let onFinish = Machine.OnFinish.sendTrailersOnly(
      Self.responseHeaders + trailers,
      resetAfterward: true
    )
    #expect(DataAction(action) == .fail(GRPCStatus(.internalError, message), onFinish))
    #expect(Self.phase(of: machine) == .closed)
  }

  // MARK: - Response

  @Test("the response headers are :status 200 and the gRPC content-type (H17)")
  func responseHeaderFields() {
    #expect(Machine.responseHeaders == Self.responseHeaders)
  }

  @Test("a whole call: headers once, messages, then trailers")
  func wholeCall() throws {
    var machine = try Self.machine(in: .open)
    #expect(Self.send(&machine) == .action(.sendHeadersThenMessage(Self.responseHeaders)))
    #expect(Self.send(&machine) == .action(.sendMessage))
    #expect(Self.send(&machine) == .action(.sendMessage))
    let end = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: true)
    #expect(DataAction(end) == .deliver([Self.messageBody], requestEnded: true))
    #expect(machine.isResponseOpen)
    #expect(machine.finish(status: .ok) == .sendTrailers(Self.okTrailers, resetAfterward: false))
    #expect(machine.isClosed)
    #expect(!machine.isResponseOpen)
  }

  @Test("sendHeaders(metadata:) sends the headers once; messages then follow alone")
  func sendHeadersThenMessages() throws {
    var machine = try Self.machine(in: .open)
    #expect(machine.sendHeaders() == Self.responseHeaders)
    #expect(machine.sendHeaders(metadata: Self.initialMetadata) == nil)
    #expect(Self.send(&machine) == .action(.sendMessage))
    #expect(machine.finish(status: .ok) == .sendTrailers(Self.okTrailers, resetAfterward: true))
  }

  @Test("finish twice: the second is ignored; a message after finishing is refused")
  func finishTwice() throws {
    var machine = try Self.machine(in: .requestEnded)
    let first = machine.finish(status: Self.notFound)
    let trailers = fields(["grpc-status": "5", "grpc-message": "no such user"])
    #expect(first == .sendTrailersOnly(Self.responseHeaders + trailers, resetAfterward: false))
    #expect(machine.finish(status: .ok) == .ignore)
    #expect(machine.finish(status: Self.notFound) == .ignore)
    #expect(Self.send(&machine) == .refused)
    #expect(machine.sendHeaders() == nil)
    #expect(Self.phase(of: machine) == .closed)
  }

  static let statusFieldsTable: [(GRPCStatus, GRPCMetadata, [HTTPHeaderField])] = [
    // H19: the status goes out even when it is OK; an empty message is left out.
    (.ok, GRPCMetadata(), fields(["grpc-status": "0"])),
    (GRPCStatus(.cancelled, ""), GRPCMetadata(), fields(["grpc-status": "1"])),
    // H21: decimal without leading zeros.
    (
      GRPCStatus(.unauthenticated, "token expired"), GRPCMetadata(),
      fields(["grpc-status": "16", "grpc-message": "token expired"])
    ),
    // H22: UTF-8, then percent-encoding of all but space and VCHAR other than %.
    (
      GRPCStatus(.invalidArgument, "café 100%\nok"), GRPCMetadata(),
      fields(["grpc-status": "3", "grpc-message": "caf%C3%A9 100%25%0Aok"])
    ),
    // H18: trailing metadata follows the status, binary values in unpadded base64.
    (
      GRPCStatus(.resourceExhausted, "quota"),
      metadata(["retry-after": "5"], binary: ["details-bin": [0xFF, 0x00]]),
      fields([
        "grpc-status": "8", "grpc-message": "quota", "retry-after": "5", "details-bin": "/wA",
      ])
    ),
    (
      .ok, metadata(["x-a": "1", "x-a": "2"]), fields(["grpc-status": "0", "x-a": "1", "x-a": "2"])
    ),
  ]

  @Test(
    "status fields: grpc-status, grpc-message, then trailing metadata",
    arguments: statusFieldsTable
  )
  func statusFields(
    _ status: GRPCStatus,
    _ metadata: GRPCMetadata,
    expected: [HTTPHeaderField]
  ) throws {
    #expect(Machine.statusFields(status, metadata) == expected)
    // finish(status:metadata:) sends exactly these, after the response headers if it must.
    var machine = try Self.machine(in: .openResponseStarted)
    #expect(
      machine.finish(status: status, metadata: metadata)
        == .sendTrailers(expected, resetAfterward: true)
    )
    var early = try Self.machine(in: .requestEnded)
    #expect(
      early.finish(status: status, metadata: metadata)
        == .sendTrailersOnly(Self.responseHeaders + expected, resetAfterward: false)
    )
  }

  // MARK: - Request trailers, resets and deadlines in context

  @Test("request trailers after messages end the request; the call goes on")
  func requestTrailersAfterMessages() throws {
    var machine = try Self.machine(in: .open)
    let data = machine.receive(
      data: ByteBuffer(bytes: Self.message + Self.message),
      endStream: false
    )
    #expect(
      DataAction(data) == .deliver([Self.messageBody, Self.messageBody], requestEnded: false)
    )
    let trailers = machine.receive(headers: fields(["x-checksum": "ab12"]), endStream: true)
    #expect(HeadersAction(trailers) == .requestEnded(.requestEnded))
    #expect(Self.send(&machine) == .action(.sendHeadersThenMessage(Self.responseHeaders)))
    #expect(machine.finish(status: .ok) == .sendTrailers(Self.okTrailers, resetAfterward: false))
    #expect(machine.isClosed)
  }

  @Test("after the status and a reset, the client's late frames change nothing")
  func lateFramesAfterReset() throws {
    var machine = try Self.machine(in: .responseClosed)
    #expect(machine.receiveReset() == .ignore)
    #expect(
      DataAction(machine.receive(data: ByteBuffer(bytes: Self.message), endStream: true)) == .ignore
    )
    #expect(HeadersAction(machine.receive(headers: [], endStream: true)) == .ignore)
    #expect(machine.deadlineExpired() == .ignore)
    #expect(machine.finish(status: .ok) == .ignore)
    #expect(Self.phase(of: machine) == .closed)
  }
}

// MARK: - Helpers

private func fields(_ pairs: KeyValuePairs<String, String>) -> [HTTPHeaderField] {
  pairs.map { HTTPHeaderField($0.key, $0.value) }
}

private func metadata(
  _ strings: KeyValuePairs<String, String>,
  binary: KeyValuePairs<String, [UInt8]> = [:]
) -> GRPCMetadata {
  var metadata = GRPCMetadata()
  for (name, value) in strings { try! metadata.add(name, value) }
  for (name, value) in binary { try! metadata.add(name, binary: value) }
  return metadata
}
