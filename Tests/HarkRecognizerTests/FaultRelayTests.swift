import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Faults between client and server, injected by a userspace relay (these kernels have no
/// `tc netem`): a partition, a slow path, a dropped connection, under a recognition of key
/// presses streamed at four times real time.
@Suite("Faults on the path", .timeLimit(.minutes(1)))
struct FaultRelayTests {
  static let pressed = "2468"

  /// The harness's server, permitting the fast keepalive pings of these tests.
  static func harness() async throws -> RecognizerHarness {
    try await RecognizerHarness.start(configure: { configuration in
      configuration.pingPolicy = ServerPingPolicy(permitKeepaliveTime: .milliseconds(50))
    })
  }

  /// A client through `relay` whose keepalive notices a dead path within about 0.6 s.
  static func client(_ relay: FaultRelay) -> RecognizerClient {
    RecognizerClient(
      host: "127.0.0.1",
      port: relay.port,
      configuration: GRPCClientConfiguration(
        keepaliveInterval: .milliseconds(300),
        keepaliveTimeout: .milliseconds(300),
        keepaliveMinimumInterval: .milliseconds(50)
      )
    )
  }

  /// Streams the key presses at four times real time; `fault` runs once the call has
  /// delivered its first final result and `after` more has passed (so that a busy machine that
  /// runs the call slowly still meets the fault mid-call).
  static func recognize(
    _ client: RecognizerClient,
    resume: ResumePolicy?,
    after: Duration,
    fault: @escaping @Sendable () async throws -> Void
  ) async throws -> [RecognitionEvent] {
    let finals = NIOLockedValueBox(0)
    // A key, then enough silence to end its utterance: a final result each.
    var audio = ByteBuffer()
    for key in pressed {
      var one = dtmfAudio(keys(String(key), before: 300, after: 700))
      audio.writeBuffer(&one)
    }
    let (stream, producer) = pacedAudio(audio)
    let faults = Task {
      while finals.withLockedValue({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
      try await Task.sleep(for: after)
      try await fault()
    }
    let events = try await client.recognize(makeInit(), audio: stream, resume: resume) {
      recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events {
        events.append(event)
        if case .finalResult = event { finals.withLockedValue { $0 += 1 } }
      }
      return events
    }
    producer.cancel()
    try await faults.value
    return events
  }

  static func finals(_ events: [RecognitionEvent]) -> String {
    events.compactMap { event -> String? in
      if case .finalResult(let result) = event { return result.hypotheses.first?.formattedText }
      return nil
    }.joined()
  }

  @Test("a partition: keepalive fails the call within its time; with resume, it goes on after")
  func partition() async throws {
    let harness = try await Self.harness()
    let relay = try await FaultRelay.start(to: harness.port)
    // Without resume: UNAVAILABLE once the PING goes unanswered.
    let start = ContinuousClock.now
    let failed = try await Self.recognize(
      Self.client(relay),
      resume: nil,
      after: .milliseconds(50)
    ) {
      relay.stall()
    }
    #expect(failed.last?.summary == "transportFailure", "\(failed.map(\.summary))")
    #expect(ContinuousClock.now - start < .seconds(10))
    relay.resume()

    // With resume: the stream fails the same way, and a new one takes over once the path is back
    // (5 s later).
    let resumed = try await Self.recognize(
      Self.client(relay),
      resume: ResumePolicy(),
      after: .milliseconds(50)
    ) {
      relay.stall()
      try await Task.sleep(for: .seconds(5))
      relay.resume()
    }
    #expect(
      resumed.contains { if case .resumed = $0 { true } else { false } },
      "\(resumed.map(\.summary))"
    )
    #expect(Self.finals(resumed) == Self.pressed, "\(resumed.map(\.summary))")
    #expect(resumed.last?.summary == "200")
    await relay.close()
    await harness.stop()
  }

  @Test("a slow path (60 ms each way) changes nothing but the time")
  func delay() async throws {
    let harness = try await Self.harness()
    let relay = try await FaultRelay.start(to: harness.port)
    relay.setDelay(.milliseconds(60))
    let events = try await Self.recognize(Self.client(relay), resume: nil, after: .zero) {}
    #expect(relay.connectionsAccepted == 1)
    #expect(Self.finals(events) == Self.pressed, "\(events.map(\.summary))")
    #expect(events.last?.summary == "200")
    await relay.close()
    await harness.stop()
  }

  @Test("a dropped connection: UNAVAILABLE at once; with resume, the transcript is whole")
  func dropped() async throws {
    let harness = try await Self.harness()
    let relay = try await FaultRelay.start(to: harness.port)
    let failed = try await Self.recognize(
      Self.client(relay),
      resume: nil,
      after: .milliseconds(50)
    ) {
      relay.dropConnections()
    }
    #expect(failed.last?.summary == "transportFailure", "\(failed.map(\.summary))")
    let resumed = try await Self.recognize(
      Self.client(relay),
      resume: ResumePolicy(),
      after: .milliseconds(50)
    ) {
      relay.dropConnections()
    }
    #expect(resumed.contains { if case .resumed = $0 { true } else { false } })
    #expect(Self.finals(resumed) == Self.pressed, "\(resumed.map(\.summary))")
    #expect(resumed.last?.summary == "200")
    await relay.close()
    await harness.stop()
  }
}

extension FaultRelayTests {
  @Test("past the resume buffer, a dropped connection is not resumed: DATA_LOSS, naming why")
  func resumeBufferExceeded() async throws {
    let harness = try await Self.harness()
    let relay = try await FaultRelay.start(to: harness.port)
    // 10 s of silence (no final result; 2.5 s at four times real time) against a buffer of
    // 200 ms; the path breaks half a second in.
    var generator = DTMFGenerator(sampleRate: 8000, seed: 9)
    var silence = ByteBuffer()
    for sample in generator.generate([.silence(milliseconds: 10_000)]) {
      silence.writeInteger(sample, endianness: .little)
    }
    let (stream, producer) = pacedAudio(silence)
    let client = Self.client(relay)
    let dropped = Task {
      try await Task.sleep(for: .milliseconds(500))
      relay.dropConnections()
    }
    let outcome = try await client.recognize(
      makeInit(),
      audio: stream,
      resume: ResumePolicy(maxBufferedAudio: .milliseconds(200))
    ) { recognition in
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    producer.cancel()
    try await dropped.value
    #expect(outcome.transportStatus?.code == .dataLoss, "\(outcome)")
    #expect(outcome.transportStatus?.message.contains("not resumed: more than") == true)
    await client.close()
    await relay.close()
    await harness.stop()
  }
}
