import Foundation
import HarkAudio
import HarkClient
import HarkGRPC
import HarkProto
import HarkRecognizer
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The edges of the library's audio batches: frames cross into the event loop in batches, and
/// however the producer and the loop meet, every byte reaches the server once, in order.
@Suite("Client library: audio batches")
struct ClientBatchTests {
  typealias Log = ClientLibraryTests.Log

  /// Frame `index` of a clip whose bytes differ from frame to frame (so that a frame lost,
  /// repeated or reordered changes the checksum).
  static func frame(_ index: Int, bytes: Int = 320) -> ByteBuffer {
    var random = SplitMix64(seed: UInt64(index) &+ 1)
    var buffer = ByteBuffer()
    buffer.reserveCapacity(bytes)
    while buffer.readableBytes + 8 <= bytes { buffer.writeInteger(random.next()) }
    while buffer.readableBytes < bytes {
      buffer.writeInteger(UInt8(truncatingIfNeeded: random.next()))
    }
    return buffer
  }

  static func checksum(ofFrames count: Int, bytes: Int = 320) -> Checksum {
    var checksum = Checksum()
    for index in 0..<count { checksum.add(frame(index, bytes: bytes)) }
    return checksum
  }

  /// `count` frames made ahead, handed out as fast as they are asked for, counting the pulls.
  static func fastFrames(
    _ count: Int,
    pulled: NIOLockedValueBox<Int>
  ) -> AsyncMapSequence<AsyncStream<ByteBuffer>, ByteBuffer> {
    let frames = (0..<count).map { frame($0) }
    return AsyncStream { continuation in
      for frame in frames { continuation.yield(frame) }
      continuation.finish()
    }.map { frame in
      pulled.withLockedValue { $0 += 1 }
      return frame
    }
  }

  /// Frames made as they are asked for, without end.
  static func endlessFrames(pulled: NIOLockedValueBox<Int>) -> AsyncStream<ByteBuffer> {
    AsyncStream(unfolding: {
      frame(
        pulled.withLockedValue { count in
          defer { count += 1 }
          return count
        }
      )
    })
  }

  @Test("a producer faster than the loop: 5,000 frames arrive once, in order")
  func fasterThanTheLoop() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(log: log, delay: .zero)
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    let outcome = try await client.recognize(
      makeInit(),
      audio: Self.fastFrames(5_000, pulled: pulled)
    )
    #expect(outcome.code == 200, "\(outcome)")
    #expect(log.audioBytes.withLockedValue { $0 } == 5_000 * 320)
    #expect(log.checksum.withLockedValue { $0 } == Self.checksum(ofFrames: 5_000))
    #expect(log.all.last == "half-close")
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "audio that ends in the middle of a batch, behind a full prebuffer: all of it, then the half-close"
  )
  func endsMidBatch() async throws {
    let log = Log()
    let gate = Gate()
    let (server, port) = try await ClientLibraryTests.scriptedServer(
      log: log,
      delay: .zero,
      gate: gate
    )
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    let outcome = try await client.recognize(
      makeInit(),
      audio: Self.fastFrames(500, pulled: pulled),
      prebufferLimit: 3200
    ) { recognition in
      // Before the 100: the prebuffer's ten frames and the one offered, no more.
      #expect(await eventually(within: 10) { pulled.withLockedValue { $0 } >= 10 })
      try await Task.sleep(for: .milliseconds(50))
      #expect(pulled.withLockedValue { $0 } <= 11)
      gate.open()
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(outcome.code == 200, "\(outcome)")
    #expect(log.audioBytes.withLockedValue { $0 } == 500 * 320)
    #expect(log.checksum.withLockedValue { $0 } == Self.checksum(ofFrames: 500))
    #expect(log.all == ["init", "sent 100", "audio", "half-close"])
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("events the application does not take hold the server back; none is lost")
  func eventsHoldTheServer() async throws {
    // 3,000 results of 8 KB, sent as fast as the server can: far more than the library keeps
    // for an application that is not reading its events (RecognitionDriver.eventCapacity, then
    // one 1 MiB stream window).
    let count = 3_000
    let sent = NIOLockedValueBox(0)
    let (server, port) = try await ClientLibraryTests.recognizeServer { call in
      for try await request in call.requests {
        guard case .recognitionInitMessage? = request.request else { continue }
        try await call.send(.status(code: 100, message: "Continue"))
        var hypothesis = Hypothesis()
        hypothesis.formattedText = String(repeating: "word ", count: 1_600)
        var result = RecognitionResult()
        result.hypotheses = [hypothesis]
        for _ in 0..<count {
          try await call.send(RecognitionResponse(.result(result)))
          sent.withLockedValue { $0 += 1 }
        }
        try await call.send(.status(code: 200, message: "Success"))
        return
      }
    }
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let (audio, writer) = RecognitionAudio.makeStream()
    let outcome = try await client.recognize(makeInit(), audio: audio) { recognition in
      // Not reading: the server sends until flow control stops it, then waits.
      var last = -1
      while sent.withLockedValue({ $0 }) != last {
        last = sent.withLockedValue { $0 }
        try await Task.sleep(for: .milliseconds(300))
      }
      #expect(last < 2_000, "the server sent \(last) results to a client not reading them")
      var results = 0
      for await event in recognition.events {
        if case .finalResult = event { results += 1 }
      }
      #expect(results == count)
      writer.finish()
      return await recognition.outcome
    }
    #expect(outcome.code == 200, "\(outcome)")
    #expect(sent.withLockedValue { $0 } == count)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("cancellation while a batch is in flight: the producer stops, the server has a prefix")
  func cancelMidBatch() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(log: log, delay: .zero)
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    let outcome = try await client.recognize(
      makeInit(),
      audio: Self.endlessFrames(pulled: pulled)
    ) { recognition in
      for await event in recognition.events {
        if case .started = event {
          try await Task.sleep(for: .milliseconds(20))
          recognition.cancel()
        }
      }
      return await recognition.outcome
    }
    #expect(outcome.kind == .cancelled)
    let atOutcome = pulled.withLockedValue { $0 }
    try await Task.sleep(for: .milliseconds(200))
    // The producer stopped: at most the frame it was offering.
    #expect(pulled.withLockedValue { $0 } <= atOutcome + 1)
    // What the server got is the clip's beginning, each frame once, in order.
    #expect(await eventually { log.all.last == "audio" || log.all.last == "half-close" })
    try await Task.sleep(for: .milliseconds(100))
    let received = log.audioBytes.withLockedValue { $0 }
    #expect(received % 320 == 0)
    #expect(received / 320 <= atOutcome)
    #expect(log.checksum.withLockedValue { $0 } == Self.checksum(ofFrames: received / 320))
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("a server that does not read: the producer waits on flow control, then all arrives once")
  func backpressure() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(
      log: log,
      delay: .zero,
      readDelay: .milliseconds(600)
    )
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let pulled = NIOLockedValueBox(0)
    let count = 10_000  // 3.2 MB: beyond the 1 MiB stream window, the request queue and the inbox
    let outcome = try await client.recognize(
      makeInit(),
      audio: Self.fastFrames(count, pulled: pulled)
    ) { recognition in
      try await Task.sleep(for: .milliseconds(400))
      // The server is not reading: the producer is held, far short of the whole clip.
      #expect(pulled.withLockedValue { $0 } < count / 2)
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(outcome.code == 200, "\(outcome)")
    #expect(log.audioBytes.withLockedValue { $0 } == count * 320)
    #expect(log.checksum.withLockedValue { $0 } == Self.checksum(ofFrames: count))
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }
}

extension ClientBatchTests {
  @Test(
    "a recognition that starts while another's batch waits for the loop: its audio still follows its init"
  )
  func startsBehindAnotherBatch() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(log: log, delay: .zero)
    // One loop, which the test holds: the recognitions share it and its drain queue.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let client = RecognizerClient(host: "127.0.0.1", port: port, group: group)
    let (audioA, writerA) = RecognitionAudio.makeStream()
    let (audioB, writerB) = RecognitionAudio.makeStream()
    async let outcomeA = client.recognize(makeInit(), audio: audioA)
    #expect(writerA.yield(Self.frame(0)) == .enqueued)
    #expect(await eventually { log.audioBytes.withLockedValue { $0 } == 320 })

    // While the loop is held: A's next frame schedules a drain of the shared queue, then B
    // starts (its init queued behind that drain) and offers a frame.
    let held = NIOLockedValueBox(true)
    group.next().execute {
      while held.withLockedValue({ $0 }) { usleep(1000) }
    }
    #expect(writerA.yield(Self.frame(1)) == .enqueued)
    let offeredB = NIOLockedValueBox(false)
    async let outcomeB = client.recognize(makeInit(), audio: audioB) { recognition in
      #expect(writerB.yield(Self.frame(2)) == .enqueued)
      offeredB.withLockedValue { $0 = true }
      writerB.finish()
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(await eventually { offeredB.withLockedValue { $0 } })
    held.withLockedValue { $0 = false }
    writerA.finish()

    // B's frame went out after its init, not before (which lost it).
    let (a, b) = try await (outcomeA, outcomeB)
    #expect(a.code == 200, "\(a)")
    #expect(b.code == 200, "\(b)")
    #expect(log.audioBytes.withLockedValue { $0 } == 3 * 320)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
    try await group.shutdownGracefully()
  }
}

/// The library's own audio sequence: a writer that hands frames to the recognition's inbox
/// without a task, from any thread.
@Suite("Client library: RecognitionAudio writer")
struct RecognitionAudioWriterTests {
  typealias Log = ClientLibraryTests.Log

  @Test("frames yielded from a thread before and after the 100 arrive once, in order")
  func fromAThread() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(
      log: log,
      delay: .milliseconds(100)
    )
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let (audio, writer) = RecognitionAudio.makeStream()
    let count = 2_000
    // Half before the recognition exists, half from another thread while it runs.
    for index in 0..<count / 2 { #expect(writer.yield(ClientBatchTests.frame(index)) == .enqueued) }
    let feed = Thread {
      for index in count / 2..<count { _ = writer.yield(ClientBatchTests.frame(index)) }
      writer.finish()
    }
    let outcome = try await client.recognize(makeInit(), audio: audio) { recognition in
      feed.start()
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(outcome.code == 200, "\(outcome)")
    #expect(log.audioBytes.withLockedValue { $0 } == count * 320)
    #expect(log.checksum.withLockedValue { $0 } == ClientBatchTests.checksum(ofFrames: count))
    #expect(log.all == ["init", "sent 100", "audio", "half-close"])
    #expect(writer.yield(ClientBatchTests.frame(0)) == .ended)
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test(
    "a recognition that cannot take audio yet: yield answers full at the limit, nothing is lost"
  )
  func fullThenResumes() async throws {
    let log = Log()
    // The 100 comes late and the prebuffer is small, so frames wait in the recognition's
    // backlog, which counts toward the writer's limit (unlike the socket's buffers, whose size
    // the test cannot know).
    let (server, port) = try await ClientLibraryTests.scriptedServer(
      log: log,
      delay: .milliseconds(400)
    )
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let (audio, writer) = RecognitionAudio.makeStream(bufferLimit: 64 << 10)
    let count = 2_000  // 640 kB: ten times the limit
    let fulls = NIOLockedValueBox(0)
    let feed = Thread {
      var index = 0
      while index < count {
        switch writer.yield(ClientBatchTests.frame(index)) {
        case .enqueued: index += 1
        case .full:
          fulls.withLockedValue { $0 += 1 }
          usleep(2_000)
        case .ended: return
        }
      }
      writer.finish()
    }
    let outcome = try await client.recognize(makeInit(), audio: audio, prebufferLimit: 3200) {
      recognition in
      // Once the recognition has the writer: the frames go to its inbox, not the unbound pipe.
      feed.start()
      for await _ in recognition.events {}
      return await recognition.outcome
    }
    #expect(outcome.code == 200, "\(outcome)")
    #expect(fulls.withLockedValue { $0 } > 0)
    #expect(log.audioBytes.withLockedValue { $0 } == count * 320)
    #expect(log.checksum.withLockedValue { $0 } == ClientBatchTests.checksum(ofFrames: count))
    await client.close()
    await server.shutdown(gracePeriod: .milliseconds(100))
  }

  @Test("cancelled, or never started: the writer's frames are refused with ended")
  func endedRefuses() async throws {
    let log = Log()
    let (server, port) = try await ClientLibraryTests.scriptedServer(log: log, delay: .zero)
    let client = RecognizerClient(host: "127.0.0.1", port: port)
    let (audio, writer) = RecognitionAudio.makeStream()
    let outcome = try await client.recognize(makeInit(), audio: audio) { recognition in
      for await event in recognition.events {
        if case .started = event {
          #expect(writer.yield(ClientBatchTests.frame(0)) == .enqueued)
          recognition.cancel()
        }
      }
      return await recognition.outcome
    }
    #expect(outcome.kind == .cancelled)
    #expect(writer.yield(ClientBatchTests.frame(1)) == .ended)
    await server.shutdown(gracePeriod: .milliseconds(100))
    await client.close()

    // No server at all: the recognition cannot start, and says so to the writer.
    let closed = RecognizerClient(host: "127.0.0.1", port: port)
    let (unsent, refused) = RecognitionAudio.makeStream()
    let failed = try await closed.recognize(makeInit(), audio: unsent)
    #expect(failed.kind == .transportFailure, "\(failed)")
    #expect(refused.yield(ClientBatchTests.frame(0)) == .ended)
    await closed.close()
  }

  @Test("read as a plain AsyncSequence: the frames in order, then the end; the limit holds")
  func asASequence() async {
    let (audio, writer) = RecognitionAudio.makeStream(bufferLimit: 3 * 320)
    for index in 0..<3 { #expect(writer.yield(ClientBatchTests.frame(index)) == .enqueued) }
    #expect(writer.yield(ClientBatchTests.frame(3)) == .full)
    var iterator = audio.makeAsyncIterator()
    #expect(await iterator.next() == ClientBatchTests.frame(0))
    // The reader took the buffered frames: room again.
    #expect(writer.yield(ClientBatchTests.frame(3)) == .enqueued)
    writer.finish()
    #expect(writer.yield(ClientBatchTests.frame(4)) == .ended)
    var rest: [ByteBuffer] = []
    while let frame = await iterator.next() { rest.append(frame) }
    #expect(rest == (1...3).map { ClientBatchTests.frame($0) })
  }
}
