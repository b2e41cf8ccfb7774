import Foundation
import HarkAudio
import HarkProto
import HarkTestSupport
import NIOCore
import Testing

/// `hark serve` and `hark recognize` as external checks drive them: the built binary, real
/// processes, real sockets, files on disk.
@Suite("hark serve and hark recognize", .timeLimit(.minutes(1)))
struct CLITests {
  @Test("a WAV file of key presses is printed as its transcript, exit 0")
  func wav() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("159#", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    let result = try await hark(
      ["recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", "wav"]
    )
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "159#\n")
    await server.stop()
  }

  @Test(
    "raw L16 at 8 and 16 kHz, µ-law and A-law, with --format and --rate",
    arguments: [
      ("l16", 8000, AudioStreamFormat.linear16(sampleRate: 8000)),
      ("l16", 16000, .linear16(sampleRate: 16000)),
      ("ulaw", 8000, .ulaw),
      ("alaw", 8000, .alaw),
    ]
  )
  func raw(format: String, rate: Int, audio: AudioStreamFormat) async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.raw",
      encoded(keyPresses("2*7", sampleRate: rate), format: audio)
    )
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", format,
      "--rate",
      "\(rate)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "2*7\n")
    await server.stop()
  }

  @Test("two utterances print two lines")
  func twoUtterances() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    var generator = DTMFGenerator(sampleRate: 8000, seed: 3)
    let samples = generator.generate(
      DTMFGenerator.segments(DTMFSymbol.symbols("12")!) + [.silence(milliseconds: 900)]
        + DTMFGenerator.segments(DTMFSymbol.symbols("34")!) + [.silence(milliseconds: 900)]
    )
    let path = try scratch.write("two.wav", wavBytes(samples, format: .linear16(sampleRate: 8000)))
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "12\n34\n")
    await server.stop()
  }

  @Test("audio without an utterance is 204: exit 3, the status on stderr")
  func noResult() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    var generator = DTMFGenerator(sampleRate: 8000, seed: 3)
    let samples = generator.generate([.silence(milliseconds: 400)])
    let path = try scratch.write(
      "quiet.wav",
      wavBytes(samples, format: .linear16(sampleRate: 8000))
    )
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 3)
    #expect(result.standardOutput == "")
    #expect(result.standardError.contains("204"))
    await server.stop()
  }

  @Test("--idle-timeout-ms and --recognizers are honoured by the server")
  func serverOptions() async throws {
    let server = try await HarkServeProcess.start(extra: [
      "--recognizers", "1", "--idle-timeout-ms", "300", "--max-sessions-per-second", "50",
    ])
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("9", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "9\n")
    await server.stop()
  }

  @Test(
    "bad input: a clear one-line error and its exit code",
    arguments: [
      (
        ["recognize", "/nonexistent/audio.wav", "--plaintext", "--server", "127.0.0.1:1"], 2,
        "/nonexistent/audio.wav"
      ),
      (
        ["recognize", "x.raw", "--plaintext", "--server", "127.0.0.1:1", "--rate", "44100"], 64,
        "--rate"
      ),
      (["recognize", "x.raw", "--server", "nowhere"], 64, "HOST:PORT"),
      (
        ["recognize", "x.raw", "--plaintext", "--server", "127.0.0.1:1", "--format", "mp3"], 64,
        "mp3"
      ),
      (["serve", "--recognizers", "0"], 64, "--recognizers"),
      (["serve", "--idle-timeout-ms", "0"], 64, "--idle-timeout-ms"),
      (["serve", "--max-sessions-per-second", "-1"], 64, "--max-sessions-per-second"),
      (["serve", "--engine", "whisper"], 64, "whisper"),
      (["serve", "--listen", "127.0.0.1"], 64, "HOST:PORT"),
      (["serve", "--statistics-interval", "-1"], 64, "--statistics-interval"),
      (
        ["recognize", "x.raw", "--plaintext", "--server", "127.0.0.1:1", "--timeout", "0"], 64,
        "--timeout"
      ),
      (["serve", "--handshake-timeout", "ten"], 64, "--handshake-timeout"),
      (["serve", "--write-stall-timeout", "5x"], 64, "--write-stall-timeout"),
      (["serve", "--max-header-list-size", "100"], 64, "--max-header-list-size"),
      (["serve", "--max-connections", "0"], 64, "--max-connections"),
      (["serve", "--max-resets-per-second", "0"], 64, "--max-resets-per-second"),
      (["serve", "--max-buffered-audio-ms", "5"], 64, "--max-buffered-audio-ms"),
      (["serve", "--max-queued-bytes-per-stream", "1000"], 64, "--max-queued-bytes-per-stream"),
    ]
  )
  func badInput(arguments: [String], status: Int32, mention: String) async throws {
    let result = try await hark(arguments)
    #expect(result.status == status, "\(result.standardError)")
    #expect(result.standardError.contains(mention), "\(result.standardError)")
    #expect(result.standardOutput == "")
  }

  @Test("a WAV file the recognizer cannot take is refused before connecting: exit 2")
  func unsupportedWAV() async throws {
    let scratch = try Scratch()
    var header = WAVFile.header(for: .linear16(sampleRate: 8000), dataByteCount: 4)
    // 44.1 kHz in the header's sample rate and byte rate fields.
    header.replaceSubrange(
      24..<28,
      with: withUnsafeBytes(of: UInt32(44_100).littleEndian, Array.init)
    )
    header.replaceSubrange(
      28..<32,
      with: withUnsafeBytes(of: UInt32(88_200).littleEndian, Array.init)
    )
    let path = try scratch.write("cd.wav", header + [0, 0, 0, 0])
    let result = try await hark(["recognize", path, "--plaintext", "--server", "127.0.0.1:1"])
    #expect(result.status == 2)
    #expect(result.standardError.contains("44100 Hz"), "\(result.standardError)")
  }

  @Test("no server listening: exit 9, a transport failure")
  func noServer() async throws {
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("1", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    // A port that was free a moment ago.
    let port = try freePort()
    let failure =
      "hark: transport failure: UNAVAILABLE: cannot connect to 127.0.0.1:\(port): "
      + "connection refused\n"
    let once = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(port)", "--retries", "0",
    ])
    #expect(once.status == 9, "\(once.standardError)")
    // One line that says what failed, not SwiftNIO's error tree.
    #expect(once.standardError == failure)
    // By default, two retries first, each a line saying why and when.
    let result = try await hark(["recognize", path, "--plaintext", "--server", "127.0.0.1:\(port)"])
    #expect(result.status == 9, "\(result.standardError)")
    let lines = result.standardError.split(separator: "\n")
    #expect(lines.count == 3, "\(result.standardError)")
    #expect(lines.prefix(2).allSatisfy { $0.contains("connection refused; retrying in") })
    #expect(lines.last.map { $0 + "\n" } == failure)
  }

  @Test("hark serve logs each recognition's end (debug) and statistics (each interval)")
  func serveLogs() async throws {
    let server = try await HarkServeProcess.start(
      extra: ["--log-level", "debug", "--statistics-interval", "0.3"]
    )
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("7", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    // The statistics line of the interval in which the recognition ended (an earlier one may
    // show it active).
    func endedLine() -> Substring? {
      server.standardError.split(separator: "\n").first {
        $0.contains("Statistics") && $0.contains("ended=1")
      }
    }
    let deadline = ContinuousClock.now + .seconds(20)
    while endedLine() == nil, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(50))
    }
    let log = server.standardError
    let ended = try #require(log.split(separator: "\n").first { $0.contains("Recognition ended") })
    #expect(ended.contains("status=200"), "\(ended)")
    #expect(ended.contains("audio_messages="), "\(ended)")
    let statistics = try #require(endedLine(), "\(log)")
    #expect(statistics.contains("statuses=200: 1"), "\(statistics)")
    await server.stop()
  }

  @Test("hark serve's limits: a silent peer is closed after --handshake-timeout, and counted")
  func serveLimits() async throws {
    let server = try await HarkServeProcess.start(
      extra: ["--handshake-timeout", "300ms", "--statistics-interval", "0.3"]
    )
    let peer = try await RawConnection.connect(port: server.port)
    #expect(await peer.waitForClose())
    let goAway = peer.frames.first { $0.type == RawFrame.goAway }
    #expect(goAway?.debugData.contains("within 300 ms") == true, "\(peer.frames)")
    // The limit is counted when the timeout fires, and the connection leaves the count once its
    // channel has closed: a statistics line may fall in between, so wait for one after both.
    func limitsLine() -> Substring? {
      server.standardError.split(separator: "\n").first {
        $0.contains("Statistics") && $0.contains("limits_exceeded=handshakeTimeout:1")
          && $0.contains("connections=0")
      }
    }
    let deadline = ContinuousClock.now + .seconds(20)
    while limitsLine() == nil, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(50))
    }
    let line = try #require(limitsLine(), "\(server.standardError)")
    #expect(line.contains("recognizers_idle=100"), "\(line)")
    let warning = server.standardError.split(separator: "\n").first {
      $0.contains("warning") && $0.contains("limit=handshakeTimeout")
    }
    #expect(warning?.contains("peer=127.0.0.1:") == true, "\(server.standardError)")
    await server.stop()
  }

  @Test("a server with few file descriptors refuses connections past its limit, and still serves")
  func fileDescriptorLimit() async throws {
    // 128 descriptors: at most 64 connections (the rest, at least 64, for the process's own).
    // No handshake timeout: on a machine the whole suite keeps busy, the server may take more
    // than its default 10 s to read the first peers' prefaces, and close them for that, which
    // is another limit than the one under test (this test failed so, twice, taking 40 s).
    let server = try await HarkServeProcess.start(
      extra: ["--statistics-interval", "0.3", "--handshake-timeout", "0"],
      fileDescriptors: 128
    )
    #expect(server.standardError.contains("max_connections=64"), "\(server.standardError)")
    var peers: [RawConnection] = []
    for _ in 0..<160 {
      let peer = try await RawConnection.connect(port: server.port)
      // (Fails for a connection the server closed already.)
      try? await peer.send(RawFrame.preface + RawFrame.emptySettings)
      peers.append(peer)
    }
    // The last 96 are closed as soon as accepted; the first 64 stay.
    let deadline = ContinuousClock.now + .seconds(20)
    while peers.filter(\.isClosed).count < 96, ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(50))
    }
    try await Task.sleep(for: .milliseconds(300))
    #expect(peers.filter(\.isClosed).count == 96)
    #expect(peers.prefix(64).allSatisfy { !$0.isClosed })
    // Descriptors remain for a recognition, which is still served.
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("3", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    for peer in peers.prefix(10) { await peer.close() }
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "3\n")
    #expect(server.standardError.contains("limit=connections"), "\(server.standardError)")
    for peer in peers { await peer.close() }
    await server.stop()
  }

  @Test("--timeout ends a recognition that runs longer: DEADLINE_EXCEEDED, exit 9")
  func timeout() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    let samples = generator.generate([.silence(milliseconds: 5000)])
    let path = try scratch.write("long.wav", wavBytes(samples, format: .linear16(sampleRate: 8000)))
    // 5 s of audio at real time cannot end within half a second.
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)", "--realtime",
      "--timeout", "0.5",
    ])
    #expect(result.status == 9, "\(result.standardError)")
    #expect(result.standardError.contains("DEADLINE_EXCEEDED"), "\(result.standardError)")
    await server.stop()
  }

  @Test("hark load with no server listening: one line naming the address, exit 2")
  func loadNoServer() async throws {
    let port = try freePort()
    let result = try await hark([
      "load", "--plaintext", "--server", "127.0.0.1:\(port)", "--sessions", "1", "--duration", "1",
      "--audio", samplesDirectory.appendingPathComponent("dtmf-8k.wav").path, "--quiet",
    ])
    #expect(result.status == 2, "\(result.standardError)")
    #expect(
      result.standardError.hasSuffix(
        "hark: cannot connect to 127.0.0.1:\(port): connection refused\n"
      ),
      "\(result.standardError)"
    )
  }

  @Test("SIGTERM: the server shuts down cleanly and exits 0")
  func sigterm() async throws {
    let server = try await HarkServeProcess.start()
    let status = await server.stop()
    #expect(status == 0)
    #expect(server.standardError.contains("Draining"))
    #expect(server.standardError.contains("ending=drained"), "\(server.standardError)")
  }
}

// MARK: Audio

func keyPresses(_ keys: String, sampleRate: Int) -> [Int16] {
  var generator = DTMFGenerator(sampleRate: sampleRate, seed: 1)
  return generator.generate(
    [.silence(milliseconds: 200)] + DTMFGenerator.segments(DTMFSymbol.symbols(keys)!)
      + [.silence(milliseconds: 700)]
  )
}

func encoded(_ samples: [Int16], format: AudioStreamFormat) -> [UInt8] {
  switch format.encoding {
  case .linear16:
    return samples.flatMap { sample in
      [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
    }
  case .ulaw, .alaw:
    var bytes: [UInt8] = []
    samples.withUnsafeBufferPointer { G711.encode($0, encoding: format.encoding, into: &bytes) }
    return bytes
  }
}

func wavBytes(_ samples: [Int16], format: AudioStreamFormat) -> [UInt8] {
  let data = encoded(samples, format: format)
  return WAVFile.header(for: format, dataByteCount: data.count) + data
}

// MARK: Processes

struct Scratch {
  let directory: URL

  init() throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("hark-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  func write(_ name: String, _ bytes: [UInt8]) throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
  }
}

/// The `hark` built next to this test bundle.
let harkExecutable: URL = {
  let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
  return executable.deletingLastPathComponent().appendingPathComponent("hark")
}()

struct ProcessResult: Sendable {
  var status: Int32
  var standardOutput: String
  var standardError: String
}

/// Runs blocking work on a thread of its own, off Swift concurrency's few threads.
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { continuation in
    Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
  }
}

/// Runs `hark` to completion, with `environment` added to this process's.
func hark(_ arguments: [String], environment: [String: String] = [:]) async throws -> ProcessResult
{
  try await offloaded {
    let process = Process()
    process.executableURL = harkExecutable
    process.arguments = arguments
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes to the end before waiting, so a full pipe cannot stall the child.
    let errorData = NSLockedData()
    let reader = Thread { errorData.set(errors.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    errorData.wait()
    return ProcessResult(
      status: process.terminationStatus,
      standardOutput: String(decoding: out, as: UTF8.self),
      standardError: String(decoding: errorData.data, as: UTF8.self)
    )
  }
}

/// Data one thread sets and another waits for.
final class NSLockedData: @unchecked Sendable {
  private let condition = NSCondition()
  private var value: Data?

  func set(_ data: Data) {
    condition.lock()
    value = data
    condition.broadcast()
    condition.unlock()
  }

  func wait() {
    condition.lock()
    while value == nil { condition.wait() }
    condition.unlock()
  }

  var data: Data {
    condition.lock()
    defer { condition.unlock() }
    return value ?? Data()
  }
}

/// `hark serve` on an ephemeral loopback port.
final class HarkServeProcess: @unchecked Sendable {
  let process: Process
  let port: Int
  private let log: NSLockedText

  private init(process: Process, port: Int, log: NSLockedText) {
    self.process = process
    self.port = port
    self.log = log
  }

  var standardError: String { log.text }

  /// Starts the server and waits for its "Ready" log line (after "Listening").
  /// `fileDescriptors` runs it under that limit (soft and hard, with prlimit).
  /// `drainTimeout` is short by default, so that stopping a server with a call left open (a
  /// test that failed half-way) does not wait out the 30 s of a real drain.
  static func start(
    engine: String = "dtmf",
    extra: [String] = [],
    fileDescriptors: Int? = nil,
    drainTimeout: String = "1s",
    port: Int = 0
  ) async throws -> HarkServeProcess {
    try await offloaded {
      let process = Process()
      let arguments =
        [
          "serve", "--listen", "127.0.0.1:\(port)", "--engine", engine, "--drain-timeout",
          drainTimeout,
        ]
        + extra
      if let fileDescriptors {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        process.arguments =
          ["--nofile=\(fileDescriptors):\(fileDescriptors)", harkExecutable.path] + arguments
      } else {
        process.executableURL = harkExecutable
        process.arguments = arguments
      }
      let errors = Pipe()
      process.standardError = errors
      process.standardOutput = FileHandle.nullDevice
      process.standardInput = FileHandle.nullDevice
      try process.run()
      let log = NSLockedText()
      let port = NSLockedData()
      let reader = Thread {
        var announced = false
        var pending = Data()
        while true {
          let chunk = errors.fileHandleForReading.availableData
          if chunk.isEmpty { break }
          log.append(String(decoding: chunk, as: UTF8.self))
          pending.append(chunk)
          // The port of the Listening line, once the Ready line says the engines are loaded
          // (a sphinx server listens while its models load, and refuses calls meanwhile).
          let text = String(decoding: pending, as: UTF8.self)
          if !announced, text.contains("] Ready"), let found = listeningPort(in: text) {
            announced = true
            port.set(Data(String(found).utf8))
          }
        }
        if !announced { port.set(Data()) }
      }
      reader.start()
      port.wait()
      guard let number = Int(String(decoding: port.data, as: UTF8.self)) else {
        process.terminate()
        process.waitUntilExit()
        throw CLITestError("hark serve did not start: \(log.text)")
      }
      return HarkServeProcess(process: process, port: number, log: log)
    }
  }

  /// Sends `number` (SIGTERM by default) without waiting.
  func signal(_ number: Int32 = SIGTERM) {
    kill(process.processIdentifier, number)
  }

  /// Waits until the log has `text` (20 s at most).
  func waitForLog(containing text: String) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while !log.text.contains(text) {
      guard ContinuousClock.now < deadline else {
        throw CLITestError("hark serve never logged \(text): \(log.text)")
      }
      try await Task.sleep(for: .milliseconds(20))
    }
  }

  /// Waits for the exit; its status.
  func waitForExit() async -> Int32 {
    let process = self.process
    return
      (try? await offloaded {
        process.waitUntilExit()
        return process.terminationStatus
      }) ?? -1
  }

  /// SIGTERM, then the exit status.
  @discardableResult
  func stop() async -> Int32 {
    let process = self.process
    return
      (try? await offloaded {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
      }) ?? -1
  }
}

/// The port of `hark serve`'s "Listening address=HOST:PORT" log line.
func listeningPort(in log: String) -> Int? {
  guard let line = log.split(separator: "\n").first(where: { $0.contains("Listening") }),
    let range = line.range(of: "address=")
  else { return nil }
  let address = line[range.upperBound...].prefix { !$0.isWhitespace }
  guard let colon = address.lastIndex(of: ":") else { return nil }
  return Int(address[address.index(after: colon)...])
}

final class NSLockedText: @unchecked Sendable {
  private let lock = NSLock()
  private var value = ""

  func append(_ text: String) { lock.withLock { value += text } }
  var text: String { lock.withLock { value } }
}

struct CLITestError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// A loopback port nothing listens on (bound, then released).
func freePort() throws -> Int {
  let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard descriptor >= 0 else { throw CLITestError("socket() failed") }
  defer { close(descriptor) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) { pointer in
    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
      bind(descriptor, socketAddress, length) == 0
        && getsockname(descriptor, socketAddress, &length) == 0
    }
  }
  guard bound else { throw CLITestError("bind() failed") }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// The committed samples (tools/make-samples).
let samplesDirectory = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Samples")

@Suite("hark recognize with the embedded sphinx recognizer", .serialized, .timeLimit(.minutes(2)))
struct EmbeddedSphinxTests {
  @Test("the README's first command: dictation of a sample, with no server")
  func dictation() async throws {
    let result = try await hark([
      "recognize", samplesDirectory.appendingPathComponent("account-16k.wav").path,
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "i would like to check my account balance\n")
  }

  @Test("grammars: --builtin digits and --builtin yesno on the 8 kHz samples")
  func builtins() async throws {
    let digits = try await hark([
      "recognize", samplesDirectory.appendingPathComponent("digits-8k.wav").path, "--builtin",
      "digits",
    ])
    #expect(digits.status == 0, "\(digits.standardError)")
    #expect(digits.standardOutput == "1234\n")
    let yes = try await hark([
      "recognize", samplesDirectory.appendingPathComponent("yes-8k.wav").path, "--builtin", "yesno",
    ])
    #expect(yes.status == 0, "\(yes.standardError)")
    #expect(yes.standardOutput == "yes\n")
  }

  @Test("a wordset file: its literals are what can be heard")
  func wordset() async throws {
    let scratch = try Scratch()
    let wordset = try scratch.write(
      "departments.json",
      Array(
        #"{"DEPARTMENT": [{"literal": "operator"}, {"literal": "billing"}, {"literal": "sales"}]}"#
          .utf8
      )
    )
    let result = try await hark([
      "recognize", samplesDirectory.appendingPathComponent("operator-8k.wav").path, "--wordset",
      wordset, "--json",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput.contains(#""formatted_text":"operator""#))
    #expect(result.standardOutput.contains(#""grammar_id":"wordset:DEPARTMENT""#))
  }

  @Test("a language the engine does not know is 400 naming it: exit 7")
  func language() async throws {
    let result = try await hark([
      "recognize", samplesDirectory.appendingPathComponent("yes-8k.wav").path, "--language",
      "fr-FR",
    ])
    #expect(result.status == 7)
    #expect(result.standardError.contains("400"))
    #expect(result.standardError.contains("language"))
  }
}

@Suite("hark --help")
struct HelpTests {
  @Test(
    "each command's help documents its options with readable defaults",
    arguments: [["recognize"], ["serve"], ["load", "run"], ["load", "merge"]]
  )
  func help(command: [String]) async throws {
    let result = try await hark(command + ["--help"])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput.contains("USAGE: hark \(command.joined(separator: " "))"))
    // A default shown as a Swift value's description (`Shard(index: 1, count: 1)`) is unreadable.
    let defaults = result.standardOutput.split(separator: "(default: ").dropFirst()
    for text in defaults {
      let value = text.prefix { $0 != ")" }
      #expect(!value.contains(":"), "a default printed as a Swift value: \(value)")
    }
  }
}

@Suite("hark serve (sphinx) under many grammars", .timeLimit(.minutes(3)))
struct GrammarMemoryTests {
  /// The server's resident memory, from /proc.
  static func residentKiB(of pid: Int32) -> Int {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
  }

  /// A recognition whose init compiles a grammar the engine has not seen (its name differs),
  /// then ends at once (204).
  static func recognize(port: Int, grammar index: Int) async throws -> [UInt32] {
    try await recognize(
      port: port,
      jsgf: "#JSGF V1.0; grammar g\(index); public <answer> = yes | no | maybe;"
    )
  }

  /// A recognition with the inline grammar `jsgf`, which ends at once.
  static func recognize(port: Int, jsgf: String) async throws -> [UInt32] {
    var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
    parameters.utteranceDetectionMode = .multiple
    let initMessage = RecognitionInitMessage(
      parameters: parameters,
      resources: [RecognitionResource(.inlineGrammar(jsgf))]
    )
    var codes: [UInt32] = []
    // The engine goes back to the pool a moment after its call ends: a 409 is tried again.
    for _ in 0..<100 {
      codes = try await RawRecognizeCall.run(port: port, [.initMessage(initMessage)]).statusCodes
      guard codes == [409] else { break }
      try await Task.sleep(for: .milliseconds(5))
    }
    return codes
  }

  @Test("1,000 distinct client grammars do not grow the server (PocketSphinx kept every one)")
  func distinctGrammars() async throws {
    let server = try await HarkServeProcess.start(engine: "sphinx", extra: ["--recognizers", "1"])
    let pid = server.process.processIdentifier
    for index in 0..<100 {
      #expect(try await Self.recognize(port: server.port, grammar: index) == [100, 204])
    }
    let before = Self.residentKiB(of: pid)
    var failures = 0
    for index in 100..<1100
    where try await Self.recognize(port: server.port, grammar: index) != [100, 204] {
      failures += 1
    }
    let after = Self.residentKiB(of: pid)
    #expect(failures == 0)
    // About 7 KB a grammar before the fix: 7 MB here. Allocator noise stays far below 3 MB.
    #expect(after - before < 3072, "RSS grew from \(before) KiB to \(after) KiB")
    await server.stop()
  }

  @Test("grammars that do not parse cost the server nothing (PocketSphinx leaked their tokens)")
  func brokenGrammars() async throws {
    let server = try await HarkServeProcess.start(engine: "sphinx", extra: ["--recognizers", "1"])
    let pid = server.process.processIdentifier
    // A syntax error after a 60,000-byte token: SphinxBase's parser kept twice the token.
    let broken = "#JSGF garbage " + String(repeating: "x", count: 60_000)
    for _ in 0..<20 {
      #expect(try await Self.recognize(port: server.port, jsgf: broken) == [502])
    }
    let before = Self.residentKiB(of: pid)
    var failures = 0
    for _ in 0..<200 where try await Self.recognize(port: server.port, jsgf: broken) != [502] {
      failures += 1
    }
    let after = Self.residentKiB(of: pid)
    #expect(failures == 0)
    // 120 KB a request before: 24 MB here.
    #expect(after - before < 4096, "RSS grew from \(before) KiB to \(after) KiB")
    await server.stop()
  }
}
