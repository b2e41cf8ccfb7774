import HarkAudio
import HarkClient
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Retries before the 100 Continue in the client's machine, without sockets: which refusals are
/// retried, when, and that the audio held meanwhile goes whole, once, to the accepted attempt.
@Suite("Client retries before the 100")
struct ClientRetryTests {
  typealias Machine = ClientSessionStateMachine

  static let second: UInt64 = 1_000_000_000

  static func frame(_ tag: UInt8) -> ByteBuffer { ByteBuffer(repeating: tag, count: 320) }

  static func status(_ code: UInt32) -> RecognitionResponse {
    .status(code: code, message: code == 100 ? "Continue" : "Status \(code)")
  }

  /// The end of a refused call, with the server's pushback (ms) in its trailers.
  static func trailers(pushback: Int?) -> GRPCStatus {
    var status = GRPCStatus.ok
    status.retryPushbackMilliseconds = pushback
    return status
  }

  /// What the actions say, in short.
  static func summary(_ actions: [Machine.Action]) -> [String] {
    actions.map { action in
      switch action {
      case .send(let request):
        switch request.request {
        case .recognitionInitMessage?: "send init"
        case .audio(let bytes)?:
          "send audio#\(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) ?? 0)"
        case .controlMessage?: "send start_timers"
        case nil: "send nothing"
        }
      case .halfClose: "half-close"
      case .deliver(.retrying(let attempt, let delay, let reason)):
        "retrying \(attempt) after \(delay) for \(reason.code.map(String.init) ?? "\(reason.kind)")"
      case .deliver(.started): "started"
      case .deliver(let event): "deliver \(event)"
      case .finish(let outcome, let cancel):
        "finish \(outcome.code.map(String.init) ?? "\(outcome.kind)")\(cancel ? " cancel" : "")"
      case .retry(let delay): "retry after \(delay)"
      case .abandonCall: "abandon"
      case .limitStream(let after): "limit \(after)"
      }
    }
  }

  @Test("a 409 before the 100 is retried after the server's pushback, the audio held whole")
  func conflictRetried() throws {
    var machine = Machine(retryPolicy: .retries(2), seed: 1)
    var actions: [Machine.Action] = []
    try machine.start(makeInit(), now: 0, into: &actions)
    #expect(Self.summary(actions) == ["send init"])
    actions = []
    _ = machine.audio(Self.frame(1), into: &actions)
    machine.receive(Self.status(409), into: &actions)
    // Nothing until the call's end brings the pushback.
    #expect(actions.isEmpty)
    _ = machine.audio(Self.frame(2), into: &actions)
    machine.callEnded(Self.trailers(pushback: 1000), now: 10_000_000, into: &actions)
    #expect(
      Self.summary(actions) == ["retrying 2 after 1.0 seconds for 409", "retry after 1.0 seconds"]
    )
    actions = []
    // Meanwhile: more audio, the end of it, start_timers: all held.
    _ = machine.audio(Self.frame(3), into: &actions)
    machine.startTimers(into: &actions)
    machine.endOfAudio(into: &actions)
    #expect(actions.isEmpty)
    machine.retryNow(into: &actions)
    #expect(Self.summary(actions) == ["send init"])
    #expect(machine.attempt == 2)
    actions = []
    machine.receive(Self.status(100), into: &actions)
    #expect(
      Self.summary(actions) == [
        "started", "send audio#1", "send audio#2", "send audio#3",
        "send start_timers", "half-close",
      ]
    )
  }

  @Test("each refusal the policy retries: 409, 429, 503 and 512; not 400, 401 or 500")
  func retryableStatuses() throws {
    for code: UInt32 in [409, 429, 503, 512, 400, 401, 403, 500, 502] {
      var machine = Machine(retryPolicy: .retries(1), seed: 2)
      var actions: [Machine.Action] = []
      try machine.start(makeInit(), into: &actions)
      actions = []
      machine.receive(Self.status(code), into: &actions)
      machine.callEnded(.ok, into: &actions)
      let retried = [409, 429, 503, 512].contains(code)
      #expect(
        actions.contains { if case .retry = $0 { true } else { false } } == retried,
        "\(code)"
      )
      #expect((machine.outcome == nil) == retried, "\(code)")
    }
  }

  @Test("UNAVAILABLE before any response is retried after a jittered backoff; after one, not")
  func unavailable() throws {
    var machine = Machine(
      retryPolicy: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(100)),
      seed: 3
    )
    var actions: [Machine.Action] = []
    try machine.start(makeInit(), into: &actions)
    actions = []
    machine.callEnded(GRPCStatus(.unavailable, "connection refused"), into: &actions)
    guard case .retry(let first)? = actions.last else {
      Issue.record("no retry: \(Self.summary(actions))")
      return
    }
    #expect(first >= .zero && first <= .milliseconds(100))
    actions = []
    // The retry's connection cannot be made either: the next wait's bound doubles.
    machine.callEnded(GRPCStatus(.unavailable, "connection refused"), into: &actions)
    guard case .retry(let second)? = actions.last else {
      Issue.record("no second retry: \(Self.summary(actions))")
      return
    }
    #expect(second >= .zero && second <= .milliseconds(200))
    #expect(machine.attempt == 2)
    actions = []
    machine.retryNow(into: &actions)
    #expect(machine.attempt == 3)
    // A response came, then the call failed: not retried (the server had the init).
    machine.receive(RecognitionResponse(.startOfSpeech(StartOfSpeech())), into: &actions)
    actions = []
    machine.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    #expect(machine.outcome?.kind == .transportFailure)

    // Another code (INTERNAL) is not retried.
    var other = Machine(retryPolicy: .retries(2), seed: 3)
    try other.start(makeInit(), into: &actions)
    other.callEnded(GRPCStatus(.internalError, "broken"), into: &actions)
    #expect(other.outcome?.kind == .transportFailure)
  }

  @Test("no retry once the attempts, the budget or the pushback say so")
  func limits() throws {
    var actions: [Machine.Action] = []
    // Attempts: the second 409 of a policy of two attempts ends the recognition with it.
    var attempts = Machine(retryPolicy: .retries(1), seed: 4)
    try attempts.start(makeInit(), into: &actions)
    attempts.receive(Self.status(409), into: &actions)
    attempts.callEnded(Self.trailers(pushback: 0), into: &actions)
    attempts.retryNow(into: &actions)
    attempts.receive(Self.status(409), into: &actions)
    attempts.callEnded(Self.trailers(pushback: 0), into: &actions)
    #expect(attempts.outcome?.code == 409)

    // Budget: a pushback that would start the retry after it.
    var budget = Machine(
      retryPolicy: RetryPolicy(maxAttempts: 5, budget: .seconds(2)),
      seed: 4
    )
    try budget.start(makeInit(), now: 0, into: &actions)
    budget.receive(Self.status(429), into: &actions)
    budget.callEnded(Self.trailers(pushback: 1500), now: Self.second, into: &actions)
    #expect(budget.outcome?.code == 429)

    // A negative pushback: the server asks not to retry (gRFC A6).
    var refused = Machine(retryPolicy: .retries(3), seed: 4)
    try refused.start(makeInit(), into: &actions)
    refused.receive(Self.status(512), into: &actions)
    refused.callEnded(Self.trailers(pushback: -1), into: &actions)
    #expect(refused.outcome?.code == 512)

    // No policy: the refusal is the outcome, as before.
    var none = Machine(seed: 4)
    try none.start(makeInit(), into: &actions)
    actions = []
    none.receive(Self.status(409), into: &actions)
    #expect(none.outcome?.code == 409)
  }

  @Test("cancel while waiting to retry ends the recognition with no call to cancel")
  func cancelWhileWaiting() throws {
    var machine = Machine(retryPolicy: .retries(2), seed: 5)
    var actions: [Machine.Action] = []
    try machine.start(makeInit(), into: &actions)
    machine.receive(Self.status(409), into: &actions)
    machine.callEnded(Self.trailers(pushback: 1000), into: &actions)
    actions = []
    machine.cancel(into: &actions)
    #expect(Self.summary(actions).last == "finish cancelled")
    // A late retryNow (a timer that fired anyway) sends nothing.
    actions = []
    machine.retryNow(into: &actions)
    #expect(actions.isEmpty)
  }

  @Test("the backoff's bound grows by the multiplier up to its cap; the pushback is capped too")
  func backoff() {
    let policy = RetryPolicy(
      maxAttempts: 10,
      initialBackoff: .milliseconds(100),
      maxBackoff: .seconds(1),
      multiplier: 2
    )
    #expect(policy.delay(beforeRetry: 1, pushbackMilliseconds: nil, unit: 1) == .milliseconds(100))
    #expect(policy.delay(beforeRetry: 3, pushbackMilliseconds: nil, unit: 1) == .milliseconds(400))
    #expect(policy.delay(beforeRetry: 9, pushbackMilliseconds: nil, unit: 1) == .seconds(1))
    #expect(
      policy.delay(beforeRetry: 3, pushbackMilliseconds: nil, unit: 0.5) == .milliseconds(200)
    )
    #expect(policy.delay(beforeRetry: 1, pushbackMilliseconds: 250, unit: 0) == .milliseconds(250))
    #expect(policy.delay(beforeRetry: 1, pushbackMilliseconds: 60_000, unit: 0) == .seconds(1))
    #expect(policy.delay(beforeRetry: 1, pushbackMilliseconds: -1, unit: 0) == nil)
  }
}

/// Retries over real sockets: a refused recognition waits and tries again, and the attempt the
/// server accepts gets every frame the application produced, once.
@Suite("Client retries over sockets", .timeLimit(.minutes(1)))
struct ClientRetrySocketTests {
  @Test("a 409 is retried after the server's pushback; the accepted call gets every frame once")
  func conflict() async throws {
    let records = NIOLockedValueBox<[RecognizerServer.RecognitionRecord]>([])
    let harness = try await RecognizerHarness.start(
      recognizers: 1,
      configure: { configuration in
        configuration.onRecognitionEnded = { record in
          records.withLockedValue { $0.append(record) }
        }
      }
    )
    let released = NIOLockedValueBox(false)
    let holder = Task {
      try await harness.rawCall(
        [.initMessage(makeInit())],
        holdUntil: { released.withLockedValue { $0 } }
      )
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    // The whole utterance is produced at once, before any attempt is accepted.
    let frames = audioFrames(dtmfAudio(keys("4")))
    let (audio, writer) = RecognitionAudio.makeStream()
    for frame in frames { #expect(writer.yield(frame) == .enqueued) }
    writer.finish()
    let call = Task {
      try await harness.client.recognize(makeInit(), audio: audio, retryPolicy: .retries(3)) {
        recognition in
        var events: [RecognitionEvent] = []
        for await event in recognition.events {
          events.append(event)
          // The busy recognizer frees up while the first retry waits out its pushback.
          if case .retrying = event { released.withLockedValue { $0 = true } }
        }
        return events
      }
    }
    let events = try await call.value
    #expect(events.map(\.summary) == ["retry2:409", "100", "sos", "final:4", "200"])
    if case .retrying(_, let delay, _) = events.first {
      #expect(delay == .milliseconds(ServerSessionStateMachine.conflictPushbackMilliseconds))
    }
    _ = try await holder.value
    #expect(await eventually { records.withLockedValue { $0.count } == 3 })
    // The refused call had no audio; the accepted one had every frame, once.
    let accepted = records.withLockedValue { $0 }.filter { $0.status?.code == 200 }
    #expect(accepted.count == 1)
    #expect(accepted.first?.audioMessages == frames.count)
    let refused = records.withLockedValue { $0 }.filter { $0.status?.code == 409 }
    #expect(refused.map(\.audioMessages) == [0])
    await harness.stop()
  }

  @Test("a server that is not up yet: the refused connection is retried until it answers")
  func serverNotUpYet() async throws {
    // A port nothing listens on yet.
    let probe = RecognizerServer(configuration: .init(host: "127.0.0.1", port: 0, recognizers: 1)) {
      DTMFEngine()
    }
    let port = try await probe.start().port!
    await probe.shutdown(gracePeriod: .milliseconds(50))

    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let policy = RetryPolicy(
      maxAttempts: 50,
      initialBackoff: .milliseconds(50),
      maxBackoff: .milliseconds(200)
    )
    let call = Task {
      try await client.recognize(
        makeInit(),
        audio: AudioClip(format: .linear16(sampleRate: 8000), bytes: dtmfAudio(keys("9")))
          .frames(frameMilliseconds: 20),
        retryPolicy: policy
      ) { recognition in
        var events: [RecognitionEvent] = []
        for await event in recognition.events { events.append(event) }
        return events
      }
    }
    try await Task.sleep(for: .milliseconds(400))
    let server = RecognizerServer(
      configuration: .init(host: "127.0.0.1", port: port, recognizers: 1)
    ) { DTMFEngine() }
    _ = try await server.start()
    let events = try await call.value
    let retries = events.filter { if case .retrying = $0 { true } else { false } }
    #expect(!retries.isEmpty)
    #expect(retries.allSatisfy { $0.summary.hasSuffix(":transportFailure") }, "\(retries)")
    #expect(
      events.filter { if case .retrying = $0 { false } else { true } }.map(\.summary)
        == ["100", "sos", "final:9", "200"]
    )
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
