import HarkAudio
import HarkClient
import HarkLoad
import HarkProto
import HarkRecognizer
import HarkServer
import NIOCore
import Testing

/// Short real runs against an in-process recognizer (dtmf engine): the report must agree with
/// what the server saw.
@Suite("hark load against a real server", .serialized, .timeLimit(.minutes(2)))
struct LoadGeneratorTests {
  /// 1.2 s of audio: key presses 1 and 2, then enough silence to end the utterance.
  static let clip: AudioClip = {
    var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -60, seed: 3)
    let samples = generator.generate(
      [.silence(milliseconds: 200)]
        + DTMFGenerator.segments(
          DTMFSymbol.symbols("12")!,
          toneMilliseconds: 80,
          gapMilliseconds: 120
        )
        + [.silence(milliseconds: 600)]
    )
    var bytes = ByteBuffer()
    for sample in samples { bytes.writeInteger(sample, endianness: .little) }
    return AudioClip(format: .linear16(sampleRate: 8000), bytes: bytes)
  }()

  static func initMessage(_ format: AudioStreamFormat) -> RecognitionInitMessage {
    var parameters = RecognitionParameters(language: "en-US", audioFormat: format.protoFormat)
    parameters.utteranceDetectionMode = .multiple
    return RecognitionInitMessage(parameters: parameters)
  }

  static func server(recognizers: Int = 1000, port: Int = 0) async throws -> (RecognizerServer, Int)
  {
    let server = RecognizerServer(
      configuration: .init(host: "127.0.0.1", port: port, recognizers: recognizers)
    ) { DTMFEngine() }
    let address = try await server.start()
    return (server, address.port!)
  }

  static func configuration(
    port: Int,
    arrivals: LoadConfiguration.Arrivals,
    duration: Double,
    speed: Double = 4,
    connections: Int = 2,
    shard: (Int, Int) = (1, 1),
    refusedBackoff: Double = LoadConfiguration.defaultRefusedBackoff,
    retryPolicy: RetryPolicy = .none
  ) -> LoadConfiguration {
    LoadConfiguration(
      host: "127.0.0.1",
      port: port,
      arrivals: arrivals,
      duration: duration,
      connections: connections,
      clips: [("keys", clip)],
      speed: speed,
      initMessage: initMessage,
      shard: shard,
      refusedBackoff: refusedBackoff,
      retryPolicy: retryPolicy
    )
  }

  /// The server counts an RPC when it ends; the client may see its status a moment before.
  static func settled(_ server: RecognizerServer, rpcs: Int) async throws {
    for _ in 0..<100 where server.statistics.rpcs < rpcs {
      try await Task.sleep(for: .milliseconds(20))
    }
  }

  @Test("closed loop: every counter and histogram agrees with the server")
  func closedLoop() async throws {
    let (server, port) = try await Self.server()
    let report = try await LoadGenerator(
      configuration: Self.configuration(port: port, arrivals: .closed(sessions: 20), duration: 1.5)
    ).run()
    let counters = report.counters
    try await Self.settled(server, rpcs: counters.sessionsStarted)
    let seen = server.statistics
    #expect(counters.sessionsStarted >= 20)
    #expect(counters.sessionsStarted == seen.rpcs)
    #expect(counters.sessionsCompleted == counters.sessionsStarted)
    #expect(counters.sessionsFailed == 0)
    #expect(counters.sessionsCancelled == 0)
    #expect(counters.transportErrors.isEmpty)
    #expect(counters.statuses["200"] == seen.statuses[200])
    #expect(counters.statuses["200"] == counters.sessionsCompleted)
    #expect(counters.statuses["100"] == counters.sessionsStarted)
    #expect(counters.audioMessages == seen.audioMessages)
    // Every session streams the whole clip: 60 frames of 20 ms.
    #expect(counters.audioMessages == 60 * counters.sessionsStarted)
    #expect(counters.audioMilliseconds == 1200 * counters.sessionsStarted)
    #expect(counters.finalResults == counters.sessionsStarted)
    #expect(report[.handshake].count == UInt64(counters.sessionsStarted))
    #expect(report[.session].count == UInt64(counters.sessionsStarted))
    #expect(report[.end].count == UInt64(counters.sessionsStarted))
    #expect(report[.final].count == UInt64(counters.finalResults))
    #expect(report[.startOfSpeech].count == UInt64(counters.sessionsStarted))
    #expect(report[.frameLateness].count == UInt64(counters.audioMessages))
    #expect(counters.bytesSent > counters.audioBytes)
    #expect(counters.bytesReceived > 0)
    // The timeline adds up to the totals.
    var summed = LoadCounters()
    for point in report.timeline { summed.add(point.counters) }
    #expect(summed == counters)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("open loop: the arrival rate is held")
  func openLoop() async throws {
    let (server, port) = try await Self.server()
    let report = try await LoadGenerator(
      configuration: Self.configuration(
        port: port,
        arrivals: .open(rate: 20, maxSessions: 100),
        duration: 3,
        speed: 8
      )
    ).run()
    // 20 a second for 3 s.
    #expect(abs(report.counters.sessionsStarted - 60) <= 3)
    #expect(report.counters.sessionsSkipped == 0)
    #expect(report.counters.sessionsFailed == 0)
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("409s are refusals, with their message, replaced after the refused backoff")
  func refusals() async throws {
    let (server, port) = try await Self.server(recognizers: 4)
    let report = try await LoadGenerator(
      configuration: Self.configuration(
        port: port,
        arrivals: .closed(sessions: 8),
        duration: 1,
        refusedBackoff: 0.5
      )
    ).run()
    let counters = report.counters
    try await Self.settled(server, rpcs: counters.sessionsStarted)
    let conflicts = counters.statuses["409"] ?? 0
    #expect(conflicts > 0)
    #expect(conflicts == server.statistics.statuses[409])
    #expect(counters.sessionsRefused == conflicts)
    #expect(counters.sessionsFailed == 0)
    #expect(counters.messages.values.reduce(0, +) == conflicts, "\(counters.messages)")
    #expect(counters.messages.keys.allSatisfy { $0.hasPrefix("409") }, "\(counters.messages)")
    // Four sessions too many, each asking again at most every 0.5 s over the 1 s of load: a
    // replacement in a hot loop (or after the 100 ms pause of a failure) asks far more often.
    #expect(conflicts <= 4 * 3, "\(conflicts) refusals")
    #expect(counters.statuses["200"] == server.statistics.statuses[200])
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a server restarted on the same port: the run reconnects and goes on")
  func reconnects() async throws {
    let (first, port) = try await Self.server()
    let run = Task {
      try await LoadGenerator(
        configuration: Self.configuration(
          port: port,
          arrivals: .closed(sessions: 10),
          duration: 3,
          speed: 1,
          connections: 1
        )
      ).run()
    }
    try await Task.sleep(for: .milliseconds(600))
    await first.shutdown(gracePeriod: .milliseconds(100))
    try await Task.sleep(for: .milliseconds(300))
    let (second, _) = try await Self.server(port: port)
    let report = try await run.value
    let counters = report.counters
    #expect(counters.reconnects >= 1, "\(counters)")
    // The sessions on the new server ran to their end.
    #expect((second.statistics.statuses[200] ?? 0) > 0, "\(second.statistics)")
    #expect(counters.statuses["200"] == second.statistics.statuses[200])
    // Calls in flight on the first server ended with its 512 (or the lost connection), counted
    // with their messages.
    #expect(counters.sessionsFailed > 0)
    #expect(counters.messages.values.reduce(0, +) >= counters.sessionsFailed)
    await second.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a rolling restart (a drain, a new server on the port) with two retries fails no session")
  func rollingRestart() async throws {
    let (first, port) = try await Self.server()
    let run = Task {
      try await LoadGenerator(
        configuration: Self.configuration(
          port: port,
          arrivals: .closed(sessions: 20),
          duration: 3,
          speed: 1,
          connections: 2,
          retryPolicy: .retries(2)
        )
      ).run()
    }
    try await Task.sleep(for: .milliseconds(800))
    // The old server drains (as on SIGTERM) while the new one takes the port at once.
    let drain = Task { await first.drain(timeout: .seconds(10)) }
    var second: RecognizerServer?
    for _ in 0..<100 where second == nil {
      second = try? await Self.server(port: port).0
      if second == nil { try await Task.sleep(for: .milliseconds(10)) }
    }
    let replacement = try #require(second)
    let report = try await run.value
    let drained = await drain.value
    let counters = report.counters
    #expect(counters.sessionsFailed == 0, "\(counters.messages)")
    #expect(counters.transportErrorCount == 0, "\(counters.transportErrors)")
    #expect(counters.reconnects >= 1)
    // Both servers finished recognitions: the old one those in flight when it drained.
    #expect((first.statistics.statuses[200] ?? 0) > 0)
    #expect((replacement.statistics.statuses[200] ?? 0) > 0)
    #expect(drained.recognitionsCut == 0)
    await replacement.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a server that goes away: 512 statuses, then reconnections that back off")
  func serverGone() async throws {
    let (server, port) = try await Self.server()
    let run = Task {
      try await LoadGenerator(
        configuration: Self.configuration(
          port: port,
          arrivals: .closed(sessions: 10),
          duration: 2,
          speed: 1
        )
      ).run()
    }
    try await Task.sleep(for: .milliseconds(600))
    await server.shutdown(gracePeriod: .milliseconds(100))
    let report = try await run.value
    let counters = report.counters
    #expect((counters.statuses["512"] ?? 0) > 0)
    #expect(counters.sessionsFailed > 0)
    // The replacements wait for a connection rather than fail in a loop; the lane tries to
    // connect with a growing backoff (100 ms, 200 ms, … at most), a few times in the 1.4 s left.
    let attempts = counters.messages.filter { $0.key.hasPrefix("reconnect failed") }.values
      .reduce(0, +)
    #expect(attempts >= 1 && attempts <= 14, "\(counters.messages)")
    #expect(counters.sessionsStarted <= 20, "\(counters.sessionsStarted) sessions started")
  }

  @Test("two shards of a plan run the same sessions as the whole plan")
  func shards() async throws {
    let (server, port) = try await Self.server()
    let whole = try await LoadGenerator(
      configuration: Self.configuration(
        port: port,
        arrivals: .open(rate: 20, maxSessions: 100),
        duration: 2,
        speed: 8
      )
    ).run()
    var parts: [LoadReport] = []
    for index in 1...2 {
      parts.append(
        try await LoadGenerator(
          configuration: Self.configuration(
            port: port,
            arrivals: .open(rate: 20, maxSessions: 100),
            duration: 2,
            speed: 8,
            shard: (index, 2)
          )
        ).run()
      )
    }
    // Reports as `hark load merge` reads them: through their JSON.
    let merged = try LoadReport.merged(parts.map { try LoadReport(jsonText: $0.jsonText()) })
    #expect(merged.counters.sessionsStarted == whole.counters.sessionsStarted)
    #expect(merged.counters.statuses == whole.counters.statuses)
    #expect(merged.counters.audioMessages == whole.counters.audioMessages)
    #expect(merged.counters.audioMilliseconds == whole.counters.audioMilliseconds)
    for metric in LoadMetric.allCases {
      #expect(merged[metric].count == whole[metric].count, "\(metric)")
      // Exact: the merged histogram holds every value of both shards.
      var sum = parts[0][metric]
      sum.add(parts[1][metric])
      #expect(merged[metric] == sum, "\(metric)")
    }
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}
