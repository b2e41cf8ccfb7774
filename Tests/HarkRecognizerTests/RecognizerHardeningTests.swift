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
import NIOPosix
import Testing

/// Attacks and careless clients against a real recognizer (DTMF engine) over real sockets: the
/// server answers each with a status or a limit, frees what the call held, and keeps serving.
@Suite("Recognizer under attack")
struct RecognizerHardeningTests {
  /// An audio format under test: its init field, and how samples become its bytes.
  struct Format: Sendable, CustomTestStringConvertible {
    var name: String
    var sampleRate: Int
    var audioFormat: AudioFormat
    var encoding: AudioEncoding

    var testDescription: String { name }

    func encode(_ samples: [Int16]) -> ByteBuffer {
      var buffer = ByteBuffer()
      switch encoding {
      case .linear16:
        for sample in samples { buffer.writeInteger(sample, endianness: .little) }
      case .ulaw, .alaw:
        var bytes: [UInt8] = []
        samples.withUnsafeBufferPointer { G711.encode($0, encoding: encoding, into: &bytes) }
        buffer.writeBytes(bytes)
      }
      return buffer
    }

    static let all: [Format] = [
      Format(
        name: "L16 8 kHz",
        sampleRate: 8000,
        audioFormat: .pcm(sampleRateHz: 8000),
        encoding: .linear16
      ),
      Format(
        name: "L16 16 kHz",
        sampleRate: 16000,
        audioFormat: .pcm(sampleRateHz: 16000),
        encoding: .linear16
      ),
      Format(
        name: "µ-law",
        sampleRate: 8000,
        audioFormat: AudioFormat(.ulaw(ULaw())),
        encoding: .ulaw
      ),
      Format(
        name: "A-law",
        sampleRate: 8000,
        audioFormat: AudioFormat(.alaw(ALaw())),
        encoding: .alaw
      ),
    ]
  }

  @Test(
    "audio messages of every size from 1 to 330 bytes, and larger ones to 4,096, are recognized",
    arguments: Format.all
  )
  func everyMessageSize(_ format: Format) async throws {
    // Thousands of tiny messages a call keep an event loop busy: one of the test's own, so the
    // other tests' connections are not held up behind them.
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    let harness = try await RecognizerHarness.start(recognizers: 4, group: group)
    var generator = DTMFGenerator(sampleRate: format.sampleRate, seed: 7)
    let audio = format.encode(generator.generate(keys("5", before: 60, after: 60)))
    let initMessage = RecognitionRequest.initMessage(
      makeInit(format: format.audioFormat, mode: .multiple)
    )
    let failures = NIOLockedValueBox<[String]>([])
    let port = harness.port
    try await forEach(FixedSizeMessages.sizesUnderTest, concurrently: 4) { size in
      var rest = audio
      var requests = [initMessage]
      while rest.readableBytes > 0 {
        requests.append(.audio(rest.readSlice(length: min(size, rest.readableBytes))!))
      }
      let responses: [RecognitionResponse]
      do {
        responses = try await RawRecognizeCall.run(port: port, requests)
      } catch {
        failures.withLockedValue { $0.append("\(size) bytes: \(error)") }
        return
      }
      if responses.statusCodes != [100, 200] || responses.finalTexts != ["5"] {
        failures.withLockedValue {
          $0.append("\(size) bytes: \(responses.statusCodes), finals \(responses.finalTexts)")
        }
      }
    }
    #expect(failures.withLockedValue { $0 }.isEmpty, "\(failures.withLockedValue { $0 })")
    #expect(harness.server.idleRecognizers == 4)
    await harness.stop()
  }

  @Test("2,000 connect/close cycles leave no connection handler, stream or session alive")
  func connectionChurn() async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { group.shutdownGracefully { _ in } }
    let harness = try await RecognizerHarness.start(recognizers: 4, group: group)
    let server = harness.server
    let port = harness.port
    let initBytes = Self.framed(.initMessage(makeInit()))
    let audioBytes = Self.framed(.audio(dtmfAudio(keys("1"))))
    let request = RawFrame.grpcRequest(streamID: 1, path: RecognizerServer.recognizePath)
    let preface = RawFrame.preface + RawFrame.emptySettings
    try await forEach(Array(0..<2000), concurrently: 16) { index in
      let peer = try await RawConnection.connect(port: port)
      switch index % 5 {
      case 0: break  // connect, then close: not a byte
      case 1: try await peer.send(preface)
      case 2: try await peer.send(preface + request)
      case 3: try await peer.send(preface + request + RawFrame.dataFrame(streamID: 1, initBytes))
      default:
        try await peer.send(
          preface + request + RawFrame.dataFrame(streamID: 1, initBytes + audioBytes)
        )
      }
      await peer.close()
    }
    // Everything those connections made is freed once they are gone. An engine whose session
    // went while it was being prepared goes back to the pool when the preparation returns (off
    // the loop), which may be after the session itself is freed.
    let allFreed = await eventually(within: 30) {
      server.liveObjects.connections == 0 && server.liveObjects.streams == 0
        && server.liveSessions == 0 && server.activeRecognitions == 0
        && server.idleRecognizers == 4
    }
    #expect(
      allFreed,
      "connections \(server.liveObjects.connections), streams \(server.liveObjects.streams), sessions \(server.liveSessions), idle recognizers \(server.idleRecognizers)"
    )
    #expect(server.connectionCount == 0)
    // …and the server still recognizes.
    let events = try await harness.recognize(makeInit(), audio: dtmfAudio(keys("42")))
    #expect(events.map(\.summary) == ["100", "sos", "final:42", "200"])
    await harness.stop()
  }

  @Test("a Recognize stream that sends no init is 408 after the pre-init timeout")
  func headersOnly() async throws {
    let harness = try await RecognizerHarness.start(
      recognizers: 2,
      configure: { configuration in
        configuration.initTimeout = .milliseconds(200)
      }
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: harness.port)
    let responses = try await channel.withCall(
      path: RecognizerServer.recognizePath,
      request: RecognitionRequest.self,
      response: RecognitionResponse.self
    ) { call in
      var responses: [RecognitionResponse] = []
      for try await response in call.responses { responses.append(response) }
      return responses
    }
    guard case .status(let status)? = responses.first?.response, responses.count == 1 else {
      Issue.record("expected one status, got \(responses)")
      return
    }
    #expect(status.code == 408)
    #expect(status.details.contains("recognition_init_message"), "\(status.details)")
    #expect(harness.server.idleRecognizers == 2)
    await channel.close()
    await harness.stop()
  }

  @Test("the init may take its time within the pre-init timeout")
  func slowInit() async throws {
    let harness = try await RecognizerHarness.start(
      recognizers: 2,
      configure: { configuration in
        configuration.initTimeout = .seconds(5)
      }
    )
    let channel = GRPCChannel(host: "127.0.0.1", port: harness.port)
    let codes = try await channel.withCall(
      path: RecognizerServer.recognizePath,
      request: RecognitionRequest.self,
      response: RecognitionResponse.self
    ) { call in
      try await Task.sleep(for: .milliseconds(300))
      try await call.send(.initMessage(makeInit()))
      try await call.send(.audio(dtmfAudio(keys("7"))))
      await call.finish()
      var codes: [UInt32] = []
      for try await response in call.responses {
        if case .status(let status)? = response.response { codes.append(status.code) }
      }
      return codes
    }
    #expect(codes == [100, 200])
    await channel.close()
    await harness.stop()
  }

  /// A client that opens no receive window (SETTINGS_INITIAL_WINDOW_SIZE 0), so no response can
  /// reach it, and streams key presses as fast as the server's window lets it.
  struct ZeroWindowClient {
    let peer: RawConnection
    let initialWindow: Int

    static func start(port: Int) async throws -> ZeroWindowClient {
      let peer = try await RawConnection.connect(port: port)
      // SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 0.
      let settings = RawFrame.encode(type: RawFrame.settings, payload: [0, 4, 0, 0, 0, 0])
      try await peer.send(RawFrame.preface + settings)
      let serverSettings = await peer.waitForFrames { frames in
        frames.contains { $0.type == RawFrame.settings && $0.flags & 1 == 0 }
      }
      // Acknowledged, the server's window applies to the stream opened next.
      try await peer.send(
        RawFrame.encode(type: RawFrame.settings, flags: 1)
          + RawFrame.grpcRequest(streamID: 1, path: RecognizerServer.recognizePath)
      )
      let initMessage = makeInit(mode: .multiple, resultType: .partial) { parameters in
        parameters.utteranceEndSilenceMs = 100
      }
      try await peer.send(
        RawFrame.dataFrame(streamID: 1, RecognizerHardeningTests.framed(.initMessage(initMessage)))
      )
      return ZeroWindowClient(
        peer: peer,
        initialWindow: RecognizerHardeningTests.initialWindowSize(in: serverSettings)
      )
    }

    /// Streams audio while the server's window allows, until it stops acknowledging (nothing
    /// for two seconds once `held` says the server holds the client back), the stream is reset,
    /// or `cap` bytes went out; returns the bytes sent.
    func streamUntilHeld(cap: Int, held: @escaping () -> Bool = { true }) async throws -> Int {
      let deadline = ContinuousClock.now + .seconds(90)
      // About 5 responses a second of audio (start of speech, partials and finals per key).
      let chunk = RecognizerHardeningTests.framed(
        .audio(dtmfAudio(keys("1234567890", before: 100, after: 200)))
      )
      var sent = chunk.count  // what the init cost is close enough to this
      while sent < cap {
        let window = initialWindow + RecognizerHardeningTests.windowUpdates(for: 1, in: peer.frames)
        if window - sent >= chunk.count {
          // In DATA frames no larger than the default SETTINGS_MAX_FRAME_SIZE.
          var frames: [UInt8] = []
          for start in stride(from: 0, to: chunk.count, by: 16384) {
            frames += RawFrame.dataFrame(
              streamID: 1,
              Array(chunk[start..<min(start + 16384, chunk.count)])
            )
          }
          try await peer.send(frames)
          sent += chunk.count
          continue
        }
        let grew = await eventually(within: 2) {
          initialWindow + RecognizerHardeningTests.windowUpdates(for: 1, in: peer.frames) > window
        }
        if peer.frames.contains(where: { $0.type == RawFrame.rstStream }) { break }
        // A server merely slow to acknowledge (a busy machine) is waited for.
        if !grew && (held() || ContinuousClock.now > deadline) { break }
      }
      return sent
    }
  }

  @Test("a client that reads no responses is stopped by flow control: its audio goes unread")
  func zeroWindowClientIsHeld() async throws {
    let harness = try await RecognizerHarness.start(
      recognizers: 1,
      configure: { configuration in configuration.writeStallTimeout = nil }
    )
    let client = try await ZeroWindowClient.start(port: harness.port)
    let cap = 16 << 20
    let server = harness.server
    let sent = try await client.streamUntilHeld(cap: cap) {
      server.statistics.backpressureHolds >= 1
    }
    // The server stopped acknowledging once its response queue was full, long before the cap;
    // before, it kept reading (4.5 MiB/s) and queued responses without bound.
    // (What it takes in first depends on how fast responses fill the queue: about 2 MiB of key
    // presses here, plus one stream window.)
    #expect(sent < cap / 2, "the server acknowledged \(sent) bytes")
    #expect(harness.server.statistics.backpressureHolds >= 1)
    #expect(!client.peer.frames.contains { $0.type == RawFrame.rstStream })
    await client.peer.close()
    #expect(await eventually { harness.server.idleRecognizers == 1 })
    await harness.stop()
  }

  @Test(
    "a stream whose responses go unread for the write-stall timeout is reset, its recognizer freed"
  )
  func zeroWindowClientIsReset() async throws {
    let harness = try await RecognizerHarness.start(
      recognizers: 1,
      configure: { configuration in configuration.writeStallTimeout = .milliseconds(500) }
    )
    let server = harness.server
    let client = try await ZeroWindowClient.start(port: harness.port)
    _ = try await client.streamUntilHeld(cap: 256 << 10)
    let reset = await client.peer.waitForFrames(timeout: .seconds(30)) { frames in
      frames.contains { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    }
    let rst = reset.first { $0.type == RawFrame.rstStream && $0.streamID == 1 }
    #expect(rst?.errorCode == HTTP2ErrorCode.cancel.rawValue)
    #expect(await eventually { server.idleRecognizers == 1 && server.activeRecognitions == 0 })
    #expect(server.limitCounts[.writeStall] >= 1)
    await client.peer.close()
    await harness.stop()
  }

  /// A gRPC message of `request`.
  static func framed(_ request: RecognitionRequest) -> [UInt8] {
    var buffer = ByteBuffer()
    GRPCMessageFramer.append(request.serializedBytes(), to: &buffer)
    return Array(buffer.readableBytesView)
  }

  /// SETTINGS_INITIAL_WINDOW_SIZE in the server's first SETTINGS (65,535 if absent).
  static func initialWindowSize(in frames: [RawFrame]) -> Int {
    guard let settings = frames.first(where: { $0.type == RawFrame.settings && $0.flags & 1 == 0 })
    else { return 65_535 }
    var window = 65_535
    var offset = 0
    while offset + 6 <= settings.payload.count {
      let id = Int(settings.payload[offset]) << 8 | Int(settings.payload[offset + 1])
      let value = settings.payload[offset + 2..<offset + 6].reduce(0) { $0 << 8 | Int($1) }
      if id == 4 { window = value }
      offset += 6
    }
    return window
  }

  /// The sum of the WINDOW_UPDATE increments the server sent for `stream`.
  static func windowUpdates(for stream: UInt32, in frames: [RawFrame]) -> Int {
    frames.filter { $0.type == RawFrame.windowUpdate && $0.streamID == stream }.reduce(0) {
      $0 + Int($1.payload.prefix(4).reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF)
    }
  }
}
