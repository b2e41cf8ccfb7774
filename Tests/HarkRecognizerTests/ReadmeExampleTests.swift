import HarkAudio
import HarkClient
import HarkProto
import HarkRecognizer
import NIOCore
import Testing

// The integrator's example of README.md, compiled and run: keep the two the same.

/// What a telephony application does with one caller's digits.
func collectDigits(
  client: RecognizerClient,
  frames: AsyncStream<ByteBuffer>  // 20 ms of 8 kHz µ-law each, as RTP delivers them
) async throws -> String? {
  var parameters = RecognitionParameters(language: "en-US", audioFormat: .ulaw)
  parameters.utteranceDetectionMode = .single
  parameters.noInputTimeoutMs = 5000
  let request = RecognitionInitMessage(
    parameters: parameters,
    resources: [RecognitionResource(.builtin("digits"))]
  )
  var digits: String?
  let outcome = try await client.recognize(request, audio: frames) { recognition in
    for await event in recognition.events {
      if case .finalResult(let result) = event, let best = result.hypotheses.first, !best.rejected {
        digits = best.formattedText
      }
    }
    return await recognition.outcome
  }
  switch outcome.kind {
  case .success: return digits
  case .noSpeech, .noResult: return nil  // reprompt the caller
  case .conflict, .tooManyRequests, .shutdown: throw RetryLater(outcome)  // another server
  default: throw CallFailed(outcome)  // 400, 401, 500, a lost connection …
  }
}

struct RetryLater: Error {
  let outcome: RecognitionOutcome; init(_ o: RecognitionOutcome) { outcome = o }
}
struct CallFailed: Error {
  let outcome: RecognitionOutcome; init(_ o: RecognitionOutcome) { outcome = o }
}

@Suite("README: the integrator's example")
struct ReadmeExampleTests {
  @Test("µ-law frames pushed as they arrive: the digits the caller pressed")
  func example() async throws {
    let harness = try await RecognizerHarness.start()
    let (frames, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
    var generator = DTMFGenerator(sampleRate: 8000, seed: 2)
    let samples = generator.generate(
      [.silence(milliseconds: 300)] + DTMFGenerator.segments(DTMFSymbol.symbols("4711")!)
        + [.silence(milliseconds: 800)]
    )
    var ulaw: [UInt8] = []
    samples.withUnsafeBufferPointer { G711.encode($0, encoding: .ulaw, into: &ulaw) }
    // The "RTP" side: a frame at a time, then the hang-up.
    for start in stride(from: 0, to: ulaw.count, by: 160) {
      feed.yield(ByteBuffer(bytes: ulaw[start..<min(start + 160, ulaw.count)]))
    }
    feed.finish()
    #expect(try await collectDigits(client: harness.client, frames: frames) == "4711")
    await harness.stop()
  }
}
