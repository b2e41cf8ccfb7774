import HarkClient
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

/// Resume of a long stream in the client's machine, without sockets: what is kept, what goes
/// again on the new stream, and how its times join the recognition's timeline.
@Suite("Client resume of a failed stream")
struct ClientResumeTests {
  typealias Machine = ClientSessionStateMachine

  /// 20 ms of 8 kHz L16, every byte `tag`.
  static func frame(_ tag: UInt8) -> ByteBuffer { ByteBuffer(repeating: tag, count: 320) }

  static func status(_ code: UInt32) -> RecognitionResponse {
    .status(code: code, message: code == 100 ? "Continue" : "Status \(code)")
  }

  static func final(startMs: UInt32, endMs: UInt32, text: String) -> RecognitionResponse {
    var result = RecognitionResult()
    result.resultType = .final
    result.absStartMs = startMs
    result.absEndMs = endMs
    var hypothesis = Hypothesis()
    hypothesis.formattedText = text
    hypothesis.words = [Word(text: text, confidence: 1, startMs: startMs, endMs: endMs)]
    result.hypotheses = [hypothesis]
    return RecognitionResponse(.result(result))
  }

  static func summary(_ actions: [Machine.Action]) -> [String] {
    actions.map { action in
      switch action {
      case .send(let request):
        switch request.request {
        case .recognitionInitMessage?: "init"
        case .audio(let bytes)?: "#\(bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) ?? 0)"
        case .controlMessage?: "start_timers"
        case nil: "nothing"
        }
      case .halfClose: "half-close"
      case .deliver(.started): "started"
      case .deliver(.resumed(let at)): "resumed@\(at)"
      case .deliver(.finalResult(let result)):
        "final \(result.absStartMs)-\(result.absEndMs) words \(result.hypotheses[0].words.map { "\($0.startMs)-\($0.endMs)" })"
      case .deliver(.startOfSpeech(let start)): "sos@\(start.firstAudioToStartOfSpeechMs)"
      case .deliver(let event): "\(event)"
      case .finish(let outcome, _): "finish \(outcome.code.map(String.init) ?? "\(outcome.kind)")"
      case .retry: "retry"
      case .abandonCall: "abandon"
      case .limitStream(let after): "limit \(after)"
      }
    }
  }

  /// A streaming machine with resume that sent frames #1…#5 (100 ms).
  static func streaming(
    mode: UtteranceDetectionMode = .multiple,
    policy: ResumePolicy = ResumePolicy()
  ) throws -> Machine {
    var machine = Machine(resumePolicy: policy, seed: 1)
    var actions: [Machine.Action] = []
    try machine.start(makeInit(mode: mode), into: &actions)
    machine.receive(status(100), into: &actions)
    for tag: UInt8 in 1...5 { _ = machine.audio(frame(tag), into: &actions) }
    return machine
  }

  @Test("a lost connection resumes: the unfinalized audio goes again first, times are shifted")
  func lostConnection() throws {
    var machine = try Self.streaming()
    var actions: [Machine.Action] = []
    // A final result to 40 ms: frames #1 and #2 need no resume.
    machine.receive(Self.final(startMs: 0, endMs: 40, text: "1"), into: &actions)
    #expect(Self.summary(actions) == ["final 0-40 words [\"0-40\"]"])
    actions = []
    machine.callEnded(GRPCStatus(.unavailable, "connection reset by peer"), into: &actions)
    #expect(Self.summary(actions) == ["retry"])
    actions = []
    // Audio meanwhile is held; the new stream's 100 replays #3…#5, then it.
    _ = machine.audio(Self.frame(6), into: &actions)
    machine.retryNow(into: &actions)
    #expect(Self.summary(actions) == ["init"])
    actions = []
    machine.receive(Self.status(100), into: &actions)
    #expect(Self.summary(actions) == ["resumed@40", "#3", "#4", "#5", "#6"])
    actions = []
    // The new stream's times start at 40 ms of the recognition.
    machine.receive(
      RecognitionResponse(.startOfSpeech(StartOfSpeech(firstAudioToStartOfSpeechMs: 10))),
      into: &actions
    )
    machine.receive(Self.final(startMs: 10, endMs: 30, text: "2"), into: &actions)
    #expect(Self.summary(actions) == ["sos@50", "final 50-70 words [\"50-70\"]"])
    // And a second failure resumes from 60 ms: frame #4 (60 to 80 ms) holds audio after the
    // final's end at 70.
    actions = []
    machine.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    machine.retryNow(into: &actions)
    actions = []
    machine.receive(Self.status(100), into: &actions)
    #expect(Self.summary(actions) == ["resumed@60", "#4", "#5", "#6"])
  }

  @Test("a 512 mid-call resumes once its call ended; start_timers and the end of audio go again")
  func shutdown() throws {
    var machine = Machine(resumePolicy: ResumePolicy(), seed: 2)
    var actions: [Machine.Action] = []
    try machine.start(makeInit(), into: &actions)
    machine.receive(Self.status(100), into: &actions)
    machine.startTimers(into: &actions)
    _ = machine.audio(Self.frame(1), into: &actions)
    machine.endOfAudio(into: &actions)
    actions = []
    machine.receive(Self.status(512), into: &actions)
    #expect(actions.isEmpty)
    machine.callEnded(.ok, into: &actions)
    #expect(Self.summary(actions) == ["retry"])
    actions = []
    machine.retryNow(into: &actions)
    machine.receive(Self.status(100), into: &actions)
    #expect(Self.summary(actions) == ["init", "resumed@0", "#1", "start_timers", "half-close"])
  }

  @Test("not resumed: SINGLE after its final, audio past the buffer, no policy, a 400")
  func notResumed() throws {
    var actions: [Machine.Action] = []
    var single = try Self.streaming(mode: .single)
    single.receive(Self.final(startMs: 0, endMs: 40, text: "1"), into: &actions)
    single.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    #expect(single.outcome?.kind == .transportFailure)

    // 60 ms of buffer, 100 ms of audio without a final: a resume would leave a gap.
    var overflowed = try Self.streaming(policy: ResumePolicy(maxBufferedAudio: .milliseconds(60)))
    actions = []
    overflowed.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    #expect(overflowed.outcome?.kind == .transportFailure)
    #expect(overflowed.outcome?.transportStatus?.code == .dataLoss)
    #expect(
      overflowed.outcome?.transportStatus?.message.contains("not resumed: more than") == true,
      "\(String(describing: overflowed.outcome))"
    )

    var none = Machine(seed: 3)
    try none.start(makeInit(), into: &actions)
    none.receive(Self.status(100), into: &actions)
    none.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    #expect(none.outcome?.kind == .transportFailure)

    var badRequest = try Self.streaming()
    badRequest.receive(Self.status(400), into: &actions)
    #expect(badRequest.outcome?.code == 400)
  }
}

extension ClientResumeTests {
  @Test("past maxStreamDuration the stream is handed over to a new one, as a resume")
  func maxStreamDuration() throws {
    var machine = Machine(
      resumePolicy: ResumePolicy(maxStreamDuration: .seconds(300)),
      seed: 4
    )
    var actions: [Machine.Action] = []
    try machine.start(makeInit(), into: &actions)
    actions = []
    machine.receive(Self.status(100), into: &actions)
    #expect(Self.summary(actions) == ["limit 300.0 seconds", "started"])
    _ = machine.audio(Self.frame(1), into: &actions)
    actions = []
    machine.streamDurationReached(now: 0, into: &actions)
    #expect(Self.summary(actions) == ["abandon", "retry"])
    actions = []
    machine.retryNow(into: &actions)
    machine.receive(Self.status(100), into: &actions)
    #expect(Self.summary(actions) == ["init", "limit 300.0 seconds", "resumed@0", "#1"])
  }
}

/// Resume over sockets with the in-process recognizer: a stream handed over at its duration
/// limit, again and again, still gives every key once.
@Suite("Client resume over sockets", .timeLimit(.minutes(1)))
struct ClientResumeSocketTests {
  @Test("a call handed over every 400 ms gives the transcript of one stream")
  func handedOver() async throws {
    let harness = try await RecognizerHarness.start()
    let pressed = "13579"
    // Four times real time: 20 ms frames every 5 ms.
    let (stream, producer) = pacedAudio(dtmfAudio(keys(pressed, before: 300, after: 800)))
    let events = try await harness.client.recognize(
      makeInit(),
      audio: stream,
      resume: ResumePolicy(maxStreamDuration: .milliseconds(400))
    ) { recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events { events.append(event) }
      return events
    }
    producer.cancel()
    let finals = events.compactMap { event -> String? in
      if case .finalResult(let result) = event { return result.hypotheses.first?.formattedText }
      return nil
    }
    let resumes = events.filter { if case .resumed = $0 { true } else { false } }
    #expect(!resumes.isEmpty)
    #expect(finals.joined() == pressed, "\(events.map(\.summary))")
    #expect(events.last?.summary == "200")
    await harness.stop()
  }
}

extension ClientResumeTests {
  @Test("a resumed stream that hears no utterance after the recognition's finals: 200, not 204")
  func lastStreamSilent() throws {
    var machine = try Self.streaming()
    var actions: [Machine.Action] = []
    machine.receive(Self.final(startMs: 0, endMs: 100, text: "1"), into: &actions)
    machine.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    machine.retryNow(into: &actions)
    machine.receive(Self.status(100), into: &actions)
    machine.endOfAudio(into: &actions)
    machine.receive(Self.status(204), into: &actions)
    #expect(machine.outcome?.code == 200)
    #expect(machine.outcome?.status?.details.contains("204") == true)
    // Without a final anywhere, 204 stays 204.
    var silent = try Self.streaming()
    silent.callEnded(GRPCStatus(.unavailable, "reset"), into: &actions)
    silent.retryNow(into: &actions)
    silent.receive(Self.status(100), into: &actions)
    silent.receive(Self.status(204), into: &actions)
    #expect(silent.outcome?.code == 204)
  }
}
