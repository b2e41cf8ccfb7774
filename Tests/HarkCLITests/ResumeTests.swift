import Foundation
import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// A long call that outlives its servers: the first killed (-9), the second stopped (SIGTERM,
/// its drain time up), each replaced on the same port. With resume, the application's
/// transcript is the undisturbed one: every key press once, at its time.
@Suite("Resume across servers that die", .timeLimit(.minutes(2)))
struct ResumeTests {
  /// 60 s of 8 kHz L16: 30 key presses, one every 2 s.
  static let keys = String(repeating: "0123456789", count: 3)
  static let audio: ByteBuffer = {
    var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -60, seed: 11)
    var segments: [DTMFGenerator.Segment] = []
    for key in DTMFSymbol.symbols(keys)! {
      segments +=
        [.silence(milliseconds: 300)]
        + DTMFGenerator.segments([key], toneMilliseconds: 100, gapMilliseconds: 1600)
    }
    var bytes = ByteBuffer()
    for sample in generator.generate(segments) { bytes.writeInteger(sample, endianness: .little) }
    return bytes
  }()

  static func initMessage() -> RecognitionInitMessage {
    var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
    parameters.utteranceDetectionMode = .multiple
    return RecognitionInitMessage(parameters: parameters)
  }

  /// The call's finals (text, start, end) and its other events, streaming the audio at
  /// `speed` times real time; `during` runs meanwhile.
  static func run(
    port: Int,
    speed: Double,
    during: @escaping @Sendable (_ finals: NIOLockedValueBox<Int>) async throws -> Void = { _ in }
  ) async throws -> (finals: [(String, UInt32, UInt32)], events: [RecognitionEvent]) {
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let (audio, writer) = RecognitionAudio.makeStream()
    let producer = Task {
      var frames = Self.audio
      let period = Duration.nanoseconds(Int64(20_000_000 / speed))
      var due = ContinuousClock.now
      while frames.readableBytes > 0, !Task.isCancelled {
        let frame = frames.readSlice(length: min(320, frames.readableBytes))!
        due += period
        try? await Task.sleep(until: due)
        _ = writer.yield(frame)
      }
      writer.finish()
    }
    // The finals delivered so far: the faults wait for the call to get that far, however
    // slowly a busy machine runs it.
    let delivered = NIOLockedValueBox(0)
    let faults = Task { try await during(delivered) }
    let events = try await client.recognize(
      initMessage(),
      audio: audio,
      // Patient with a replacement server that a busy machine starts slowly.
      resume: ResumePolicy(
        retry: RetryPolicy(
          maxAttempts: 60,
          initialBackoff: .milliseconds(100),
          maxBackoff: .seconds(1),
          budget: .seconds(60)
        )
      )
    ) { recognition in
      var events: [RecognitionEvent] = []
      for await event in recognition.events {
        events.append(event)
        if case .finalResult = event { delivered.withLockedValue { $0 += 1 } }
      }
      return events
    }
    producer.cancel()
    try await faults.value
    await client.close()
    let finals = events.compactMap { event -> (String, UInt32, UInt32)? in
      guard case .finalResult(let result) = event else { return nil }
      return (result.hypotheses.first?.formattedText ?? "", result.absStartMs, result.absEndMs)
    }
    return (finals, events)
  }

  @Test("killed, then stopped: the transcript and its times are those of an undisturbed call")
  func resumedCall() async throws {
    let quiet = try await HarkServeProcess.start()
    let undisturbed = try await Self.run(port: quiet.port, speed: 20)
    await quiet.stop()
    #expect(undisturbed.finals.map(\.0).joined() == Self.keys)

    let first = try await HarkServeProcess.start()
    let port = first.port
    let servers = NIOLockedValueBox<[HarkServeProcess]>([first])
    /// Waits until the call has delivered `count` finals.
    @Sendable func after(_ count: Int, _ delivered: NIOLockedValueBox<Int>) async throws {
      while delivered.withLockedValue({ $0 }) < count {
        try await Task.sleep(for: .milliseconds(5))
      }
    }
    // Faults after the 7th key (about 14 s into the audio) and after the 17th (34 s).
    let disturbed = try await Self.run(port: port, speed: 10) { delivered in
      try await after(7, delivered)
      first.signal(SIGKILL)
      _ = await first.waitForExit()
      let second = try await HarkServeProcess.start(port: port)
      servers.withLockedValue { $0.append(second) }
      try await after(17, delivered)
      // SIGTERM: the drain (1 s in tests) ends with 512 for the call, which resumes on a third.
      second.signal()
      try await second.waitForLog(containing: "Draining")
      var third: HarkServeProcess?
      for _ in 0..<100 where third == nil {
        third = try? await HarkServeProcess.start(port: port)
        if third == nil { try await Task.sleep(for: .milliseconds(20)) }
      }
      if let third { servers.withLockedValue { $0.append(third) } }
    }
    for server in servers.withLockedValue({ $0 }) { await server.stop() }

    let resumes = disturbed.events.compactMap { event -> Int? in
      if case .resumed(let atMs) = event { return atMs }
      return nil
    }
    #expect(resumes.count == 2, "\(disturbed.events.map { "\($0)".prefix(40) })")
    #expect(
      disturbed.events.last.map { if case .finished(let o) = $0 { o.code == 200 } else { false } }
        == true
    )
    // Every key once, in order, at the time an undisturbed call gives it (within a frame).
    #expect(disturbed.finals.map(\.0) == undisturbed.finals.map(\.0))
    for (resumed, quiet) in zip(disturbed.finals, undisturbed.finals) {
      #expect(abs(Int(resumed.1) - Int(quiet.1)) <= 40, "\(resumed) vs \(quiet)")
      #expect(abs(Int(resumed.2) - Int(quiet.2)) <= 40, "\(resumed) vs \(quiet)")
    }
  }
}

extension ResumeTests {
  @Test("without --resume, a server killed mid-call fails it at once: exit 9")
  func killedWithoutResume() async throws {
    let server = try await HarkServeProcess.start()
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", "ulaw",
      "--verbose",
    ])
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    process.write(encoded(generator.generate([.silence(milliseconds: 200)]), format: .ulaw))
    try await process.waitForStandardError(containing: "← status 100")
    let killed = ContinuousClock.now
    server.signal(SIGKILL)
    let status = try await process.wait()
    #expect(status == 9, "\(process.standardError)")
    #expect(process.standardError.contains("UNAVAILABLE"), "\(process.standardError)")
    // The peer's reset reaches the client at once; the bound is for a loaded machine.
    #expect(ContinuousClock.now - killed < .seconds(10))
    process.closeInput()
  }
}
