import HarkClient
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import HarkServer
import HarkTestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// A server that drains for a rolling deploy (DESIGN rule 8), over real sockets: it stops
/// listening at once, refuses new calls, lets the calls in flight finish, and ends the rest with
/// 512 when its time is up or a second signal comes.
@Suite("Drain", .timeLimit(.minutes(1)))
struct DrainTests {
  /// Whether a TCP connection to the port can be made now.
  static func canConnect(_ port: Int) async -> Bool {
    guard let connection = try? await RawConnection.connect(port: port) else { return false }
    await connection.close()
    return true
  }

  @Test("a drain lets the recognition in flight finish, and refuses new connections and calls")
  func callsInFlightFinish() async throws {
    let harness = try await RecognizerHarness.start()
    let (audio, writer) = RecognitionAudio.makeStream()
    let started = NIOLockedValueBox(false)
    let call = Task {
      try await harness.client.recognize(makeInit(), audio: audio) { recognition in
        var events: [RecognitionEvent] = []
        for await event in recognition.events {
          if case .started = event { started.withLockedValue { $0 = true } }
          events.append(event)
        }
        return events
      }
    }
    let frames = audioFrames(dtmfAudio(keys("1")))
    _ = writer.yield(frames[0])
    #expect(await eventually { started.withLockedValue { $0 } })

    let drain = Task { await harness.server.drain(timeout: .seconds(30)) }
    // The listener closes at once: a replacement could bind the port, and probes fail.
    #expect(await eventually { await !Self.canConnect(harness.port) })
    // A new call cannot start: its connection went away, and no new one can be made.
    let refused = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("2")))
    #expect(refused.map(\.summary) == ["transportFailure"])

    // The call in flight goes on to its end.
    for frame in frames.dropFirst() { _ = writer.yield(frame) }
    writer.finish()
    #expect(try await call.value.map(\.summary) == ["100", "sos", "final:1", "200"])
    let outcome = await drain.value
    #expect(outcome.ending == .drained)
    #expect(outcome.recognitionsAtStart == 1)
    #expect(outcome.recognitionsCut == 0)
    await harness.client.close()
  }

  @Test("a call opened on a draining connection after its GOAWAY is refused with REFUSED_STREAM")
  func refusedStream() async throws {
    let harness = try await RecognizerHarness.start()
    let peer = try await RawConnection.connect(port: harness.port)
    var initBytes = ByteBuffer()
    GRPCMessageFramer.append(
      RecognitionRequest.initMessage(makeInit()).serializedBytes(),
      to: &initBytes
    )
    // Stream 1: a recognition that keeps the connection open through the drain.
    try await peer.send(
      RawFrame.preface + RawFrame.emptySettings
        + RawFrame.grpcRequest(streamID: 1, path: RecognizerServer.recognizePath)
        + RawFrame.dataFrame(streamID: 1, Array(initBytes.readableBytesView))
    )
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    let drain = Task { await harness.server.drain(timeout: .seconds(30)) }
    let frames = await peer.waitForFrames { $0.contains { $0.type == RawFrame.goAway } }
    let goAway = try #require(frames.first { $0.type == RawFrame.goAway })
    #expect(goAway.errorCode == 0)
    // Stream 3, after the GOAWAY that named stream 1 the last: refused, not served.
    try await peer.send(
      RawFrame.grpcRequest(streamID: 3, path: RecognizerServer.recognizePath)
        + RawFrame.dataFrame(streamID: 3, Array(initBytes.readableBytesView))
    )
    let after = await peer.waitForFrames(timeout: .seconds(5)) { frames in
      frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 3 }
    }
    let reset = after.first { $0.type == RawFrame.rstStream && $0.streamID == 3 }
    #expect(reset?.errorCode == HTTP2ErrorCode.refusedStream.rawValue, "\(after.map(\.type))")
    #expect(!after.contains { $0.type == RawFrame.headers && $0.streamID == 3 })
    // Stream 1 ends: the connection closes, and the drain with it.
    try await peer.send(RawFrame.dataFrame(streamID: 1, [], endStream: true))
    let outcome = await drain.value
    #expect(outcome.ending == .drained)
    #expect(outcome.recognitionsCut == 0)
    await peer.close()
    await harness.client.close()
  }

  @Test("a drain's time up ends the recognitions left with 512")
  func timeUp() async throws {
    let harness = try await RecognizerHarness.start()
    let held = Task {
      try await harness.rawCall([.initMessage(makeInit())], holdUntil: { false }, halfClose: false)
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    let outcome = await harness.server.drain(timeout: .milliseconds(300))
    #expect(outcome == .init(recognitionsAtStart: 1, recognitionsCut: 1, ending: .timedOut))
    #expect(try await held.value.map(\.summary) == ["100", "512"])
    await harness.client.close()
  }

  @Test("endDrain (a second signal) cuts the wait short: 512 at once")
  func endedEarly() async throws {
    let harness = try await RecognizerHarness.start()
    let held = Task {
      try await harness.rawCall([.initMessage(makeInit())], holdUntil: { false }, halfClose: false)
    }
    #expect(await eventually { harness.server.activeRecognitions == 1 })
    let start = ContinuousClock.now
    let drain = Task { await harness.server.drain(timeout: .seconds(60)) }
    try await Task.sleep(for: .milliseconds(200))
    harness.server.endDrain()
    let outcome = await drain.value
    #expect(outcome == .init(recognitionsAtStart: 1, recognitionsCut: 1, ending: .ended))
    #expect(ContinuousClock.now - start < .seconds(30))
    #expect(try await held.value.map(\.summary) == ["100", "512"])
    await harness.client.close()
  }
}
