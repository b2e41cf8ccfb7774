import HarkGRPCCore
import NIOCore
import Testing

@Suite("gRPC client stream state machine")
struct GRPCClientStreamStateMachineTests {
  typealias Machine = GRPCClientStreamStateMachine

  // MARK: - Fixtures

  static let path = "/nuance.asr.v1.Recognizer/Recognize"

  /// The response headers of a call that started well, with initial metadata.
  static let responseHeaders = fields([
    ":status": "200", "content-type": "application/grpc", "x-server-id": "krypton-1",
  ])
  static let initialMetadata = metadata(["x-server-id": "krypton-1"])

  /// Trailers: a status, a percent-encoded message and trailing metadata.
  static let trailers = fields([
    "grpc-status": "5", "grpc-message": "no%20such user", "x-request-id": "42",
  ])
  static let notFound = GRPCStatus(.notFound, "no such user")
  static let trailingMetadata = metadata(["x-request-id": "42"])

  /// A Trailers-Only response: HTTP status, content-type and trailers in one HEADERS frame.
  static let trailersOnly =
    fields([":status": "200", "content-type": "application/grpc"]) + trailers

  /// A message of three bytes, framed.
  static let message: [UInt8] = [0, 0, 0, 0, 3, 0x12, 0x01, 0x08]
  static let messageBody: [UInt8] = [0x12, 0x01, 0x08]

  static let cancelledByClient = GRPCStatus(.cancelled, "cancelled by the client")
  static let deadlineExceeded = GRPCStatus(.deadlineExceeded, "deadline exceeded")
  static let badFlag = GRPCStatus(.internalError, "message has an invalid compressed flag 2")
  static let dataBeforeHeaders = GRPCStatus(.internalError, "DATA before the response headers")
  static let trailersWithoutEndStream = GRPCStatus(.internalError, "trailers without END_STREAM")
  static let endedWithoutTrailers = GRPCStatus(.unknown, "response ended without trailers")

  // MARK: - States and actions as tests see them

  /// The diagram's states, read back through the public API alone.
  enum Phase: Hashable, Sendable {
    case idle
    case requestOpen(requestClosed: Bool)
    case responseOpen(requestClosed: Bool)
    case closed(GRPCStatus)
  }

  /// The state `machine` is in, found from its properties and, on copies, from what it would do.
  static func phase(of machine: Machine) -> Phase {
    #expect(machine.isClosed == (machine.status != nil))
    if let status = machine.status { return .closed(status) }
    let requestClosed: Bool
    var machine = machine
    do {
      #expect(try machine.sendMessage() == .send)
      requestClosed = false
    } catch {
      if error.message == "the call has not started" { return .idle }
      #expect(error.message == "the request stream was already finished")
      requestClosed = true
    }
    var probe = machine
    if case .deliver = probe.receive(data: ByteBuffer(), endStream: false) {
      return .responseOpen(requestClosed: requestClosed)
    }
    return .requestOpen(requestClosed: requestClosed)
  }

  /// A state reachable through the public API, named by the events that lead there.
  enum Start: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Not started.
    case idle
    /// The request headers went out.
    case requestOpen
    /// The request headers went out, then END_STREAM.
    case requestFinished
    /// The response headers arrived.
    case responseOpen
    /// The response headers arrived and the request was finished.
    case responseOpenRequestFinished
    /// The server sent an OK status.
    case succeeded
    /// The caller cancelled before the call started.
    case cancelledBeforeStart
    /// The caller cancelled the call.
    case cancelled
    /// The server sent bad framing.
    case failed

    var testDescription: String { rawValue }

    /// The state the events lead to.
    var phase: Phase {
      switch self {
      case .idle: .idle
      case .requestOpen: .requestOpen(requestClosed: false)
      case .requestFinished: .requestOpen(requestClosed: true)
      case .responseOpen: .responseOpen(requestClosed: false)
      case .responseOpenRequestFinished: .responseOpen(requestClosed: true)
      case .succeeded: .closed(.ok)
      case .cancelledBeforeStart, .cancelled: .closed(cancelledByClient)
      case .failed: .closed(badFlag)
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
    case .idle:
      break
    case .requestOpen:
      try machine.start()
    case .requestFinished:
      try machine.start()
      _ = machine.finish()
    case .responseOpen:
      try machine.start()
      _ = machine.receive(headers: responseHeaders, endStream: false)
    case .responseOpenRequestFinished:
      machine = try Self.machine(in: .responseOpen, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = machine.finish()
    case .succeeded:
      machine = try Self.machine(
        in: .responseOpenRequestFinished,
        maxReceiveMessageSize: maxReceiveMessageSize
      )
      _ = machine.receive(headers: fields(["grpc-status": "0"]), endStream: true)
    case .cancelledBeforeStart:
      _ = machine.cancel()
    case .cancelled:
      try machine.start()
      _ = machine.cancel()
    case .failed:
      machine = try Self.machine(in: .responseOpen, maxReceiveMessageSize: maxReceiveMessageSize)
      _ = machine.receive(data: ByteBuffer(bytes: [2, 0, 0, 0, 0]), endStream: false)
    }
    return machine
  }

  /// `receive(data:endStream:)`'s answer, comparable, with the messages as bytes.
  enum DataAction: Equatable, Sendable {
    case deliver([[UInt8]])
    case fail(GRPCStatus)
    case ignore

    init(_ action: Machine.OnResponseData) {
      switch action {
      case .deliver(let messages): self = .deliver(messages.map { Array($0.readableBytesView) })
      case .fail(let status): self = .fail(status)
      case .ignore: self = .ignore
      }
    }
  }

  /// What a call that may throw did: its result, or the message of its `InvalidTransition`.
  enum Outcome<Value: Equatable & Sendable>: Equatable, Sendable {
    case returned(Value)
    case refused(String)
  }

  @Test(
    "grpc-retry-pushback-ms is read into the status; a value that is not a count means no retry",
    arguments: [
      ("250", 250), ("0", 0), ("-1", -1), ("1.5", -1), ("", -1), ("9999999999", -1),
      ("12ms", -1), (nil, nil),
    ] as [(String?, Int?)]
  )
  func retryPushback(_ value: String?, _ expected: Int?) throws {
    var trailers =
      fields([":status": "200", "content-type": "application/grpc", "grpc-status": "8"])
    if let value { trailers.append(HTTPHeaderField("grpc-retry-pushback-ms", value)) }
    var machine = try Self.machine(in: .requestFinished)
    guard
      case .receivedStatus(let status, _, _) = machine.receive(headers: trailers, endStream: true)
    else {
      Issue.record("no status")
      return
    }
    #expect(status.code == .resourceExhausted)
    #expect(status.retryPushbackMilliseconds == expected)
    // And back: a server's status writes it.
    if let expected, expected >= 0 {
      let written = GRPCServerStreamStateMachine.statusFields(status, GRPCMetadata())
      #expect(written.contains(HTTPHeaderField("grpc-retry-pushback-ms", "\(expected)")))
    }
  }

  @Test("each start is reached by its events", arguments: Start.allCases)
  func startsAreReached(_ start: Start) throws {
    #expect(Self.phase(of: try Self.machine(in: start)) == start.phase)
  }

  @Test("every state table names every start once")
  func tablesCoverEveryStart() {
    let tables: [[Start]] = [
      Self.startTable.map(\.0), Self.sendMessageTable.map(\.0), Self.finishTable.map(\.0),
      Self.responseHeadersTable.map(\.0), Self.trailersOnlyTable.map(\.0),
      Self.trailersTable.map(\.0), Self.dataTable.map(\.0), Self.lastDataTable.map(\.0),
      Self.resetTable.map(\.0), Self.connectionLostTable.map(\.0), Self.cancelTable.map(\.0),
      Self.deadlineTable.map(\.0),
    ]
    for table in tables { #expect(table == Start.allCases) }
  }

  // MARK: - Every state × every event

  static let alreadyStarted = "the call already started"

  static let startTable: [(Start, Outcome<Bool>, Phase)] = [
    (.idle, .returned(true), .requestOpen(requestClosed: false)),
    (.requestOpen, .refused(alreadyStarted), Start.requestOpen.phase),
    (.requestFinished, .refused(alreadyStarted), Start.requestFinished.phase),
    (.responseOpen, .refused(alreadyStarted), Start.responseOpen.phase),
    (
      .responseOpenRequestFinished, .refused(alreadyStarted),
      Start.responseOpenRequestFinished.phase
    ),
    (.succeeded, .refused(alreadyStarted), Start.succeeded.phase),
    (.cancelledBeforeStart, .refused(alreadyStarted), Start.cancelledBeforeStart.phase),
    (.cancelled, .refused(alreadyStarted), Start.cancelled.phase),
    (.failed, .refused(alreadyStarted), Start.failed.phase),
  ]

  @Test("start()", arguments: startTable)
  func startInEachState(_ start: Start, expected: Outcome<Bool>, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let outcome: Outcome<Bool>
    do {
      try machine.start()
      outcome = .returned(true)
    } catch {
      outcome = .refused(error.message)
    }
    #expect(outcome == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let notStarted = "the call has not started"
  static let alreadyFinished = "the request stream was already finished"

  static let sendMessageTable: [(Start, Outcome<Machine.OnSend>)] = [
    (.idle, .refused(notStarted)),
    (.requestOpen, .returned(.send)),
    (.requestFinished, .refused(alreadyFinished)),
    (.responseOpen, .returned(.send)),
    (.responseOpenRequestFinished, .refused(alreadyFinished)),
    // The call ended (the server answered early, or it was cancelled): drop, not a bug.
    (.succeeded, .returned(.drop)),
    (.cancelledBeforeStart, .returned(.drop)),
    (.cancelled, .returned(.drop)),
    (.failed, .returned(.drop)),
  ]

  @Test("sendMessage()", arguments: sendMessageTable)
  func sendMessageInEachState(_ start: Start, expected: Outcome<Machine.OnSend>) throws {
    var machine = try Self.machine(in: start)
    let outcome: Outcome<Machine.OnSend>
    do {
      outcome = .returned(try machine.sendMessage())
    } catch {
      outcome = .refused(error.message)
    }
    #expect(outcome == expected)
    #expect(Self.phase(of: machine) == start.phase)
  }

  static let finishTable: [(Start, Bool, Phase)] = [
    (.idle, false, .idle),
    (.requestOpen, true, .requestOpen(requestClosed: true)),
    (.requestFinished, false, .requestOpen(requestClosed: true)),
    (.responseOpen, true, .responseOpen(requestClosed: true)),
    (.responseOpenRequestFinished, false, .responseOpen(requestClosed: true)),
    (.succeeded, false, Start.succeeded.phase),
    (.cancelledBeforeStart, false, Start.cancelledBeforeStart.phase),
    (.cancelled, false, Start.cancelled.phase),
    (.failed, false, Start.failed.phase),
  ]

  @Test("finish() half-closes the request once; it never ends the call", arguments: finishTable)
  func finishInEachState(_ start: Start, sendsEndStream: Bool, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.finish() == sendsEndStream)
    #expect(Self.phase(of: machine) == after)
  }

  static let responseHeadersTable: [(Start, Machine.OnResponseHeaders, Phase)] = [
    (.idle, .ignore, .idle),
    (.requestOpen, .receivedMetadata(initialMetadata), .responseOpen(requestClosed: false)),
    (.requestFinished, .receivedMetadata(initialMetadata), .responseOpen(requestClosed: true)),
    // A second HEADERS without END_STREAM: trailers without END_STREAM, reset either way.
    (
      .responseOpen,
      .receivedStatus(trailersWithoutEndStream, GRPCMetadata(), resetStream: true),
      .closed(trailersWithoutEndStream)
    ),
    (
      .responseOpenRequestFinished,
      .receivedStatus(trailersWithoutEndStream, GRPCMetadata(), resetStream: true),
      .closed(trailersWithoutEndStream)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("response headers (:status 200, no END_STREAM)", arguments: responseHeadersTable)
  func responseHeadersInEachState(
    _ start: Start,
    expected: Machine.OnResponseHeaders,
    after: Phase
  ) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.receive(headers: Self.responseHeaders, endStream: false) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let trailersOnlyTable: [(Start, Machine.OnResponseHeaders, Phase)] = [
    (.idle, .ignore, .idle),
    // H29: a status before our END_STREAM means we reset the stream.
    (
      .requestOpen, .receivedStatus(notFound, trailingMetadata, resetStream: true),
      .closed(notFound)
    ),
    (
      .requestFinished, .receivedStatus(notFound, trailingMetadata, resetStream: false),
      .closed(notFound)
    ),
    // After response headers these fields are trailers; :status and content-type are not
    // metadata.
    (
      .responseOpen, .receivedStatus(notFound, trailingMetadata, resetStream: true),
      .closed(notFound)
    ),
    (
      .responseOpenRequestFinished,
      .receivedStatus(notFound, trailingMetadata, resetStream: false), .closed(notFound)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("a Trailers-Only response (H19)", arguments: trailersOnlyTable)
  func trailersOnlyInEachState(
    _ start: Start,
    expected: Machine.OnResponseHeaders,
    after: Phase
  ) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.receive(headers: Self.trailersOnly, endStream: true) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let trailersTable: [(Start, Machine.OnResponseHeaders, Phase)] = [
    (.idle, .ignore, .idle),
    (
      .requestOpen, .receivedStatus(notFound, trailingMetadata, resetStream: true),
      .closed(notFound)
    ),
    (
      .requestFinished, .receivedStatus(notFound, trailingMetadata, resetStream: false),
      .closed(notFound)
    ),
    (
      .responseOpen, .receivedStatus(notFound, trailingMetadata, resetStream: true),
      .closed(notFound)
    ),
    (
      .responseOpenRequestFinished,
      .receivedStatus(notFound, trailingMetadata, resetStream: false), .closed(notFound)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("trailers (grpc-status, END_STREAM) (H18, H20)", arguments: trailersTable)
  func trailersInEachState(
    _ start: Start,
    expected: Machine.OnResponseHeaders,
    after: Phase
  ) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.receive(headers: Self.trailers, endStream: true) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let dataTable: [(Start, DataAction, Phase)] = [
    (.idle, .ignore, .idle),
    (.requestOpen, .fail(dataBeforeHeaders), .closed(dataBeforeHeaders)),
    (.requestFinished, .fail(dataBeforeHeaders), .closed(dataBeforeHeaders)),
    (.responseOpen, .deliver([messageBody]), Start.responseOpen.phase),
    (
      .responseOpenRequestFinished, .deliver([messageBody]), Start.responseOpenRequestFinished.phase
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("a DATA frame with one message", arguments: dataTable)
  func dataInEachState(_ start: Start, expected: DataAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: false)
    #expect(DataAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let lastDataTable: [(Start, DataAction, Phase)] = [
    (.idle, .ignore, .idle),
    (.requestOpen, .fail(dataBeforeHeaders), .closed(dataBeforeHeaders)),
    (.requestFinished, .fail(dataBeforeHeaders), .closed(dataBeforeHeaders)),
    // The message is delivered; the missing trailers end the call with UNKNOWN (H23).
    (.responseOpen, .deliver([messageBody]), .closed(endedWithoutTrailers)),
    (.responseOpenRequestFinished, .deliver([messageBody]), .closed(endedWithoutTrailers)),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("a DATA frame with one message and END_STREAM", arguments: lastDataTable)
  func lastDataInEachState(_ start: Start, expected: DataAction, after: Phase) throws {
    var machine = try Self.machine(in: start)
    let action = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: true)
    #expect(DataAction(action) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let resetByServer = GRPCStatus(
    .cancelled,
    "stream reset by the server with HTTP/2 error code CANCEL"
  )

  static let resetTable: [(Start, Machine.OnTermination, Phase)] = [
    (.idle, .ended(resetByServer, resetStream: false), .closed(resetByServer)),
    (.requestOpen, .ended(resetByServer, resetStream: false), .closed(resetByServer)),
    (.requestFinished, .ended(resetByServer, resetStream: false), .closed(resetByServer)),
    (.responseOpen, .ended(resetByServer, resetStream: false), .closed(resetByServer)),
    (
      .responseOpenRequestFinished, .ended(resetByServer, resetStream: false),
      .closed(resetByServer)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("receiveReset(errorCode: CANCEL)", arguments: resetTable)
  func resetInEachState(_ start: Start, expected: Machine.OnTermination, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.receiveReset(errorCode: .cancel) == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let connectionLost = GRPCStatus(.unavailable, "connection reset by peer")

  static let connectionLostTable: [(Start, Machine.OnTermination, Phase)] = [
    (.idle, .ended(connectionLost, resetStream: false), .closed(connectionLost)),
    (.requestOpen, .ended(connectionLost, resetStream: false), .closed(connectionLost)),
    (.requestFinished, .ended(connectionLost, resetStream: false), .closed(connectionLost)),
    (.responseOpen, .ended(connectionLost, resetStream: false), .closed(connectionLost)),
    (
      .responseOpenRequestFinished, .ended(connectionLost, resetStream: false),
      .closed(connectionLost)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("connectionLost(_:) is UNAVAILABLE (H33)", arguments: connectionLostTable)
  func connectionLostInEachState(
    _ start: Start,
    expected: Machine.OnTermination,
    after: Phase
  ) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.connectionLost("connection reset by peer") == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let cancelTable: [(Start, Machine.OnTermination, Phase)] = [
    // Nothing went out, so there is no stream to reset.
    (.idle, .ended(cancelledByClient, resetStream: false), .closed(cancelledByClient)),
    // H30: client cancellation is RST_STREAM CANCEL.
    (.requestOpen, .ended(cancelledByClient, resetStream: true), .closed(cancelledByClient)),
    (.requestFinished, .ended(cancelledByClient, resetStream: true), .closed(cancelledByClient)),
    (.responseOpen, .ended(cancelledByClient, resetStream: true), .closed(cancelledByClient)),
    (
      .responseOpenRequestFinished, .ended(cancelledByClient, resetStream: true),
      .closed(cancelledByClient)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("cancel()", arguments: cancelTable)
  func cancelInEachState(_ start: Start, expected: Machine.OnTermination, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.cancel() == expected)
    #expect(Self.phase(of: machine) == after)
  }

  static let deadlineTable: [(Start, Machine.OnTermination, Phase)] = [
    (.idle, .ended(deadlineExceeded, resetStream: false), .closed(deadlineExceeded)),
    // H30: DEADLINE_EXCEEDED locally, RST_STREAM CANCEL to the server.
    (.requestOpen, .ended(deadlineExceeded, resetStream: true), .closed(deadlineExceeded)),
    (.requestFinished, .ended(deadlineExceeded, resetStream: true), .closed(deadlineExceeded)),
    (.responseOpen, .ended(deadlineExceeded, resetStream: true), .closed(deadlineExceeded)),
    (
      .responseOpenRequestFinished, .ended(deadlineExceeded, resetStream: true),
      .closed(deadlineExceeded)
    ),
    (.succeeded, .ignore, Start.succeeded.phase),
    (.cancelledBeforeStart, .ignore, Start.cancelledBeforeStart.phase),
    (.cancelled, .ignore, Start.cancelled.phase),
    (.failed, .ignore, Start.failed.phase),
  ]

  @Test("deadlineExpired()", arguments: deadlineTable)
  func deadlineInEachState(_ start: Start, expected: Machine.OnTermination, after: Phase) throws {
    var machine = try Self.machine(in: start)
    #expect(machine.deadlineExpired() == expected)
    #expect(Self.phase(of: machine) == after)
  }

  // MARK: - Request headers

  @Test("request headers: pseudo headers, timeout, te, content-type, user-agent, metadata (H8)")
  func requestHeaderOrder() throws {
    var metadata = GRPCMetadata()
    try metadata.add("authorization", "Bearer y235.wef315yfh138vh31hv93hv8h3v")
    try metadata.add("x-client-id", "a")
    try metadata.add("trace-bin", binary: [1, 2, 3])
    let headers = Machine.requestHeaders(
      path: Self.path,
      authority: "asr.api.nuance.com:443",
      scheme: "https",
      timeout: GRPCTimeout(value: 250, unit: .milliseconds),
      userAgent: "grpc-swift-hark/0.1",
      metadata: metadata
    )
    #expect(
      headers
        == fields([
          ":method": "POST", ":scheme": "https", ":path": Self.path,
          ":authority": "asr.api.nuance.com:443", "grpc-timeout": "250m", "te": "trailers",
          "content-type": "application/grpc", "user-agent": "grpc-swift-hark/0.1",
          "authorization": "Bearer y235.wef315yfh138vh31hv93hv8h3v", "x-client-id": "a",
          "trace-bin": "AQID",
        ])
    )
  }

  @Test("request headers without a timeout or metadata; the scheme defaults to http")
  func minimalRequestHeaders() {
    let headers = Machine.requestHeaders(
      path: Self.path,
      authority: "localhost:50051",
      timeout: nil,
      userAgent: "grpc-swift-hark/0.1",
      metadata: GRPCMetadata()
    )
    #expect(
      headers
        == fields([
          ":method": "POST", ":scheme": "http", ":path": Self.path, ":authority": "localhost:50051",
          "te": "trailers", "content-type": "application/grpc",
          "user-agent": "grpc-swift-hark/0.1",
        ])
    )
  }

  // MARK: - Response headers

  @Test(
    "response headers: the metadata is what is left after :status and reserved fields",
    arguments: [false, true]
  )
  func responseMetadata(requestFinished: Bool) throws {
    var machine = try Self.machine(in: requestFinished ? .requestFinished : .requestOpen)
    let headers = fields([
      ":status": "200", "content-type": "application/grpc+proto", "grpc-encoding": "identity",
      "grpc-accept-encoding": "identity", "x-server-id": "krypton-1", "trace-bin": "AQID",
      "bad-bin": "!",
    ])
    var expected = GRPCMetadata()
    try expected.add("x-server-id", "krypton-1")
    try expected.add("trace-bin", binary: [1, 2, 3])
    #expect(machine.receive(headers: headers, endStream: false) == .receivedMetadata(expected))
    #expect(Self.phase(of: machine) == .responseOpen(requestClosed: requestFinished))
  }

  @Test(
    "a response without grpc-status takes its status from the HTTP status (H23)",
    arguments: [
      (400, GRPCStatus.Code.internalError), (401, .unauthenticated), (403, .permissionDenied),
      (404, .unimplemented), (429, .unavailable), (431, .internalError), (502, .unavailable),
      (503, .unavailable), (504, .unavailable), (500, .unknown), (302, .unknown),
      (418, .unknown),
    ] as [(Int, GRPCStatus.Code)],
    [false, true]
  )
  func httpStatusMapping(_ row: (Int, GRPCStatus.Code), endStream: Bool) throws {
    let (httpStatus, code) = row
    let status = GRPCStatus(code, "HTTP status \(httpStatus)")
    for (start, resetStream) in [(Start.requestOpen, true), (.requestFinished, false)] {
      var machine = try Self.machine(in: start)
      let headers = fields([":status": String(httpStatus), "content-type": "text/html"])
      #expect(
        machine.receive(headers: headers, endStream: endStream)
          == .receivedStatus(status, GRPCMetadata(), resetStream: resetStream)
      )
      #expect(Self.phase(of: machine) == .closed(status))
    }
  }

  @Test("a response without :status or grpc-status is UNKNOWN")
  func missingHTTPStatus() throws {
    var machine = try Self.machine(in: .requestFinished)
    let status = GRPCStatus(.unknown, "HTTP status missing")
    #expect(
      machine.receive(headers: fields(["content-type": "application/grpc"]), endStream: true)
        == .receivedStatus(status, GRPCMetadata(), resetStream: false)
    )
    #expect(Self.phase(of: machine) == .closed(status))
  }

  @Test("a non-200 Trailers-Only with grpc-status takes the grpc-status (H23)")
  func grpcStatusWinsOverHTTPStatus() throws {
    var machine = try Self.machine(in: .requestFinished)
    let headers = fields([
      ":status": "503", "content-type": "application/grpc", "grpc-status": "8",
      "grpc-message": "busy",
    ])
    let status = GRPCStatus(.resourceExhausted, "busy")
    #expect(
      machine.receive(headers: headers, endStream: true)
        == .receivedStatus(status, GRPCMetadata(), resetStream: false)
    )
    #expect(Self.phase(of: machine) == .closed(status))
  }

  @Test(
    "1xx headers are skipped; the response that follows counts (H23)",
    arguments: [100, 103, 199]
  )
  func informationalHeaders(_ httpStatus: Int) throws {
    var machine = try Self.machine(in: .requestOpen)
    #expect(
      machine.receive(headers: fields([":status": String(httpStatus)]), endStream: false) == .ignore
    )
    #expect(Self.phase(of: machine) == .requestOpen(requestClosed: false))
    #expect(
      machine.receive(headers: Self.responseHeaders, endStream: false)
        == .receivedMetadata(Self.initialMetadata)
    )
    #expect(Self.phase(of: machine) == .responseOpen(requestClosed: false))
  }

  @Test(
    "a 200 whose content-type is not gRPC is UNKNOWN",
    arguments: ["text/html", "application/json", "text/plain; charset=utf-8"]
  )
  func nonGRPCContentType(_ contentType: String) throws {
    var machine = try Self.machine(in: .requestOpen)
    let headers = fields([":status": "200", "content-type": contentType])
    let status = GRPCStatus(.unknown, "response content-type '\(contentType)' is not gRPC")
    #expect(
      machine.receive(headers: headers, endStream: false)
        == .receivedStatus(status, GRPCMetadata(), resetStream: true)
    )
    #expect(Self.phase(of: machine) == .closed(status))
  }

  @Test("a Trailers-Only with a non-gRPC content-type but a grpc-status takes the grpc-status")
  func nonGRPCContentTypeWithStatus() throws {
    var machine = try Self.machine(in: .requestFinished)
    let headers = fields([":status": "200", "content-type": "text/plain", "grpc-status": "0"])
    #expect(
      machine.receive(headers: headers, endStream: true)
        == .receivedStatus(.ok, GRPCMetadata(), resetStream: false)
    )
  }

  @Test("a Trailers-Only without grpc-status is UNKNOWN (H23: a 200 is not OK by itself)")
  func trailersOnlyWithoutStatus() throws {
    var machine = try Self.machine(in: .requestFinished)
    let headers = fields([":status": "200", "content-type": "application/grpc", "x-a": "1"])
    let status = GRPCStatus(.unknown, "response has no grpc-status")
    #expect(
      machine.receive(headers: headers, endStream: true)
        == .receivedStatus(status, metadata(["x-a": "1"]), resetStream: false)
    )
    #expect(Self.phase(of: machine) == .closed(status))
  }

  // MARK: - Trailers

  @Test(
    "grpc-status: a missing or invalid value is UNKNOWN (H18, H21)",
    arguments: [
      ("0", GRPCStatus(.ok)),
      ("1", GRPCStatus(.cancelled)),
      ("13", GRPCStatus(.internalError)),
      ("16", GRPCStatus(.unauthenticated)),
      ("17", GRPCStatus(.unknown, "invalid grpc-status '17'")),
      ("-1", GRPCStatus(.unknown, "invalid grpc-status '-1'")),
      ("OK", GRPCStatus(.unknown, "invalid grpc-status 'OK'")),
      ("", GRPCStatus(.unknown, "invalid grpc-status ''")),
      (" 0", GRPCStatus(.unknown, "invalid grpc-status ' 0'")),
      (nil, GRPCStatus(.unknown, "response has no grpc-status")),
    ] as [(String?, GRPCStatus)]
  )
  func grpcStatusValues(_ value: String?, expected: GRPCStatus) throws {
    var machine = try Self.machine(in: .responseOpenRequestFinished)
    var trailers = fields(["x-request-id": "42"])
    if let value { trailers.insert(HTTPHeaderField("grpc-status", value), at: 0) }
    #expect(
      machine.receive(headers: trailers, endStream: true)
        == .receivedStatus(expected, Self.trailingMetadata, resetStream: false)
    )
    #expect(Self.phase(of: machine) == .closed(expected))
  }

  @Test(
    "grpc-message is percent-decoded, leniently (H22)",
    arguments: [
      ("no such user", "no such user"),
      ("caf%C3%A9 100%25%0Aok", "café 100%\nok"),
      ("caf%c3%a9", "café"),
      ("100%", "100%"),
      ("%zz%4", "%zz%4"),
      ("%FF", "\u{FFFD}"),
      ("", ""),
    ] as [(String, String)]
  )
  func grpcMessageValues(_ value: String, expected: String) throws {
    var machine = try Self.machine(in: .responseOpenRequestFinished)
    let trailers = fields(["grpc-status": "3", "grpc-message": value])
    let status = GRPCStatus(.invalidArgument, expected)
    #expect(
      machine.receive(headers: trailers, endStream: true)
        == .receivedStatus(status, GRPCMetadata(), resetStream: false)
    )
  }

  @Test("trailing metadata keeps custom fields, binary ones decoded, and drops reserved ones")
  func trailingMetadataFields() throws {
    var machine = try Self.machine(in: .responseOpenRequestFinished)
    let trailers = fields([
      "grpc-status": "0", "grpc-status-details-bin": "CAU", "x-a": "1",
      "trace-proto-bin": "AQID", "x-a": "2",
    ])
    var expected = GRPCMetadata()
    try expected.add("x-a", "1")
    try expected.add("trace-proto-bin", binary: [1, 2, 3])
    try expected.add("x-a", "2")
    #expect(
      machine.receive(headers: trailers, endStream: true)
        == .receivedStatus(.ok, expected, resetStream: false)
    )
  }

  @Test(
    "trailers without END_STREAM are INTERNAL and always reset the stream",
    arguments: [Start.responseOpen, .responseOpenRequestFinished]
  )
  func trailersWithoutEndStream(_ start: Start) throws {
    var machine = try Self.machine(in: start)
    #expect(
      machine.receive(headers: Self.trailers, endStream: false)
        == .receivedStatus(Self.trailersWithoutEndStream, GRPCMetadata(), resetStream: true)
    )
    #expect(Self.phase(of: machine) == .closed(Self.trailersWithoutEndStream))
    // The real trailers that follow are too late.
    #expect(machine.receive(headers: Self.trailers, endStream: true) == .ignore)
  }

  // MARK: - Response messages

  /// Three messages (one of them empty) in a byte stream.
  static let threeMessages: [UInt8] =
    [0, 0, 0, 0, 3, 1, 2, 3] + [0, 0, 0, 0, 0] + [0, 0, 0, 0, 2, 4, 5]

  @Test(
    "messages split across DATA frames arrive whole, whatever the split (H15)",
    arguments: [
      [20], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [3, 17], [5, 3, 5, 7],
      [7, 4, 9], [8, 12],
    ] as [[Int]]
  )
  func splitMessages(_ chunkSizes: [Int]) throws {
    #expect(chunkSizes.reduce(0, +) == Self.threeMessages.count)
    var machine = try Self.machine(in: .responseOpenRequestFinished)
    var received: [[UInt8]] = []
    var offset = 0
    for size in chunkSizes {
      let chunk = ByteBuffer(bytes: Self.threeMessages[offset..<offset + size])
      offset += size
      guard case .deliver(let messages) = DataAction(machine.receive(data: chunk, endStream: false))
      else {
        Issue.record("a chunk was not delivered")
        return
      }
      received += messages
    }
    #expect(received == [[1, 2, 3], [], [4, 5]])
    #expect(
      machine.receive(headers: fields(["grpc-status": "0"]), endStream: true)
        == .receivedStatus(.ok, GRPCMetadata(), resetStream: false)
    )
  }

  static let tooLarge = GRPCStatus(
    .resourceExhausted,
    "message of 5 bytes is larger than the limit of 4 bytes"
  )

  @Test(
    "an oversized response message is RESOURCE_EXHAUSTED, checked on its prefix (H36)",
    arguments: [false, true]
  )
  func oversizedMessage(endStream: Bool) throws {
    var machine = try Self.machine(in: .responseOpen, maxReceiveMessageSize: 4)
    let atLimit = machine.receive(
      data: ByteBuffer(bytes: [0, 0, 0, 0, 4, 1, 2, 3, 4]),
      endStream: false
    )
    #expect(DataAction(atLimit) == .deliver([[1, 2, 3, 4]]))
    let action = machine.receive(data: ByteBuffer(bytes: [0, 0, 0, 0, 5, 1]), endStream: endStream)
    #expect(DataAction(action) == .fail(Self.tooLarge))
    #expect(Self.phase(of: machine) == .closed(Self.tooLarge))
    // Whatever the server sends next is too late.
    #expect(machine.receive(headers: fields(["grpc-status": "0"]), endStream: true) == .ignore)
  }

  @Test(
    "bad compressed flags are INTERNAL (C2)",
    arguments: [
      (1, "message has the compressed flag set but no grpc-encoding was negotiated"),
      (2, "message has an invalid compressed flag 2"),
    ] as [(UInt8, String)]
  )
  func badCompressedFlag(_ flag: UInt8, message: String) throws {
    var machine = try Self.machine(in: .responseOpen)
    let action = machine.receive(data: ByteBuffer(bytes: [flag, 0, 0, 0, 1, 7]), endStream: false)
    let status = GRPCStatus(.internalError, message)
    #expect(DataAction(action) == .fail(status))
    #expect(Self.phase(of: machine) == .closed(status))
  }

  /// A response cut inside a message: its bytes and how many of them are buffered at the end.
  static let cuts: [([UInt8], Int)] = [
    ([0, 0, 0], 3),  // inside the prefix
    ([0, 0, 0, 0, 5, 1, 2], 7),  // inside the message
  ]

  @Test(
    "trailers inside a message: INTERNAL, whatever the grpc-status says",
    arguments: cuts,
    [Start.responseOpen, .responseOpenRequestFinished]
  )
  func trailersInsideMessage(_ cut: ([UInt8], Int), start: Start) throws {
    var machine = try Self.machine(in: start)
    let partial = machine.receive(data: ByteBuffer(bytes: cut.0), endStream: false)
    #expect(DataAction(partial) == .deliver([]))
    let status = GRPCStatus(
      .internalError,
      "stream ended inside a message, after \(cut.1) of its bytes"
    )
    #expect(
      machine.receive(headers: fields(["grpc-status": "0"]), endStream: true)
        == .receivedStatus(status, GRPCMetadata(), resetStream: start == .responseOpen)
    )
    #expect(Self.phase(of: machine) == .closed(status))
  }

  @Test("END_STREAM on DATA inside a message: INTERNAL", arguments: cuts)
  func dataEndInsideMessage(_ cut: ([UInt8], Int)) throws {
    let status = GRPCStatus(
      .internalError,
      "stream ended inside a message, after \(cut.1) of its bytes"
    )
    // The cut arrives with END_STREAM.
    var machine = try Self.machine(in: .responseOpen)
    let action = machine.receive(data: ByteBuffer(bytes: cut.0), endStream: true)
    #expect(DataAction(action) == .fail(status))
    #expect(Self.phase(of: machine) == .closed(status))

    // The cut arrives, then an empty DATA frame with END_STREAM.
    var split = try Self.machine(in: .responseOpen)
    #expect(
      DataAction(split.receive(data: ByteBuffer(bytes: cut.0), endStream: false)) == .deliver([])
    )
    #expect(DataAction(split.receive(data: ByteBuffer(), endStream: true)) == .fail(status))
    #expect(Self.phase(of: split) == .closed(status))

    // A whole message before the cut is still delivered; the status says what went wrong.
    var after = try Self.machine(in: .responseOpen)
    let both = after.receive(data: ByteBuffer(bytes: Self.message + cut.0), endStream: true)
    #expect(DataAction(both) == .deliver([Self.messageBody]))
    #expect(Self.phase(of: after) == .closed(status))
  }

  @Test("END_STREAM on an empty DATA frame, without trailers: UNKNOWN (H20, H23)")
  func endStreamWithoutTrailers() throws {
    var machine = try Self.machine(in: .responseOpenRequestFinished)
    let first = machine.receive(data: ByteBuffer(bytes: Self.message), endStream: false)
    #expect(DataAction(first) == .deliver([Self.messageBody]))
    let last = machine.receive(data: ByteBuffer(), endStream: true)
    #expect(DataAction(last) == .fail(Self.endedWithoutTrailers))
    #expect(Self.phase(of: machine) == .closed(Self.endedWithoutTrailers))
  }

  // MARK: - Terminations

  @Test(
    "RST_STREAM from the server maps its error code to a status (H28)",
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
    ] as [(HTTP2ErrorCode, GRPCStatus.Code)],
    [Start.requestOpen, .requestFinished, .responseOpen, .responseOpenRequestFinished]
  )
  func resetErrorCodes(_ row: (HTTP2ErrorCode, GRPCStatus.Code), start: Start) throws {
    let (errorCode, code) = row
    let status = GRPCStatus(code, "stream reset by the server with HTTP/2 error code \(errorCode)")
    var machine = try Self.machine(in: start)
    #expect(machine.receiveReset(errorCode: errorCode) == .ended(status, resetStream: false))
    #expect(Self.phase(of: machine) == .closed(status))
    // Once ended, every other ending is ignored and the status stays.
    #expect(machine.receiveReset(errorCode: .cancel) == .ignore)
    #expect(machine.connectionLost("gone") == .ignore)
    #expect(machine.cancel() == .ignore)
    #expect(machine.deadlineExpired() == .ignore)
    #expect(machine.status == status)
  }

  @Test("cancel(status:) ends the call with the caller's status and a reset")
  func cancelWithStatus() throws {
    var machine = try Self.machine(in: .responseOpen)
    let status = GRPCStatus(.internalError, "response does not decode")
    #expect(machine.cancel(status: status) == .ended(status, resetStream: true))
    #expect(Self.phase(of: machine) == .closed(status))
    #expect(try machine.sendMessage() == .drop)
  }
}

// MARK: - Helpers

private func fields(_ pairs: KeyValuePairs<String, String>) -> [HTTPHeaderField] {
  pairs.map { HTTPHeaderField($0.key, $0.value) }
}

private func metadata(_ strings: KeyValuePairs<String, String>) -> GRPCMetadata {
  var metadata = GRPCMetadata()
  for (name, value) in strings { try! metadata.add(name, value) }
  return metadata
}
