import Foundation
import HarkAudio
import HarkRecognizer
import Testing

/// `hark recognize` end to end: every exit code from a real server outcome, standard input,
/// `--json`, interruption.
@Suite("hark recognize: outcomes, stdin, JSON, Ctrl-C", .timeLimit(.minutes(1)))
struct RecognizeCommandTests {
  static let keys = wavBytes(
    keyPresses("15", sampleRate: 8000),
    format: .linear16(sampleRate: 8000)
  )

  static func silence(milliseconds: Int) -> [UInt8] {
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    return wavBytes(
      generator.generate([.silence(milliseconds: milliseconds)]),
      format: .linear16(sampleRate: 8000)
    )
  }

  @Test(
    "each outcome of a real server has its exit code",
    arguments: [
      ("200", 0), ("204", 3), ("404", 4), ("413", 6), ("400", 7),
    ]
  )
  func exitCodes(status: String, exitCode: Int32) async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    var arguments = ["recognize", "--plaintext", "--server", "127.0.0.1:\(server.port)"]
    switch status {
    case "200":
      arguments.append(try scratch.write("keys.wav", Self.keys))
    case "204":
      arguments.append(try scratch.write("quiet.wav", Self.silence(milliseconds: 300)))
    case "404":
      arguments += [try scratch.write("quiet.wav", Self.silence(milliseconds: 1000))]
      arguments += ["--no-input-timeout-ms", "300"]
    case "413":
      var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
      let tone = generator.generate([
        .dtmf(.seven, milliseconds: 1500), .silence(milliseconds: 300),
      ])
      arguments.append(
        try scratch.write("long.wav", wavBytes(tone, format: .linear16(sampleRate: 8000)))
      )
      arguments += ["--recognition-timeout-ms", "400"]
    default:
      arguments.append(try scratch.write("keys.wav", Self.keys))
      arguments += ["--utterance-end-silence-ms", "100000000"]
    }
    let result = try await hark(arguments)
    #expect(result.status == exitCode, "\(result.standardError)")
    if exitCode != 0 {
      #expect(result.standardError.contains("hark: \(status)"), "\(result.standardError)")
    }
    await server.stop()
  }

  @Test("408: audio stops arriving on stdin: exit 5")
  func audioTimeout() async throws {
    let server = try await HarkServeProcess.start(extra: ["--idle-timeout-ms", "300"])
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    // A header and a little audio, then nothing (the pipe stays open).
    process.write(Array(Self.silence(milliseconds: 100)))
    let status = try await process.wait()
    #expect(status == 5, "\(process.standardError)")
    #expect(process.standardError.contains("hark: 408"))
    process.closeInput()
    await server.stop()
  }

  @Test("SIGTERM drains: the recognition in flight finishes, and the server exits 0")
  func drained() async throws {
    let server = try await HarkServeProcess.start(drainTimeout: "30s")
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", "ulaw",
      "--verbose",
    ])
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    process.write(encoded(generator.generate([.silence(milliseconds: 200)]), format: .ulaw))
    try await process.waitForStandardError(containing: "← status 100")
    server.signal()
    try await server.waitForLog(containing: "Draining")
    // The call goes on after the signal: its key press is recognized, and it ends with 200.
    process.write(encoded(keyPresses("7", sampleRate: 8000), format: .ulaw))
    process.closeInput()
    #expect(try await process.wait() == 0, "\(process.standardError)")
    #expect(process.standardOutput == "7\n")
    #expect(await server.waitForExit() == 0)
    #expect(server.standardError.contains("ending=drained"), "\(server.standardError)")
    #expect(server.standardError.contains("recognitions_cut=0"))
  }

  @Test("a second SIGTERM ends the drain: the recognition in flight gets 512 (exit 8)")
  func secondSignal() async throws {
    let server = try await HarkServeProcess.start(drainTimeout: "30s")
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--verbose",
    ])
    process.write(Array(Self.silence(milliseconds: 200)))
    try await process.waitForStandardError(containing: "← status 100")
    server.signal()
    try await server.waitForLog(containing: "Draining")
    server.signal()
    let status = try await process.wait()
    #expect(status == 8, "\(process.standardError)")
    #expect(process.standardError.contains("hark: 512"))
    #expect(await server.waitForExit() == 0)
    #expect(server.standardError.contains("ending=ended"), "\(server.standardError)")
    #expect(server.standardError.contains("recognitions_cut=1"))
    process.closeInput()
  }

  @Test("512: the server's drain time is up during the recognition: exit 8")
  func shutdown() async throws {
    let server = try await HarkServeProcess.start(drainTimeout: "0")
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--verbose",
    ])
    process.write(Array(Self.silence(milliseconds: 200)))
    // The recognition is under way (the pipe stays open) when the server stops.
    try await process.waitForStandardError(containing: "← status 100")
    await server.stop()
    let status = try await process.wait()
    #expect(status == 8, "\(process.standardError)")
    #expect(process.standardError.contains("hark: 512"))
    process.closeInput()
  }

  @Test("standard input: WAV sniffed from its header, raw µ-law by --format, results as they come")
  func standardInput() async throws {
    let server = try await HarkServeProcess.start()
    let wav = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--fast",
    ])
    wav.write(Self.keys)
    wav.closeInput()
    #expect(try await wav.wait() == 0, "\(wav.standardError)")
    #expect(wav.standardOutput == "15\n")

    let ulaw = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format", "ulaw",
      "--fast",
    ])
    ulaw.write(encoded(keyPresses("#0", sampleRate: 8000), format: .ulaw))
    ulaw.closeInput()
    #expect(try await ulaw.wait() == 0, "\(ulaw.standardError)")
    #expect(ulaw.standardOutput == "#0\n")
    await server.stop()
  }

  @Test("Ctrl-C cancels the recognition: exit 130, what was recognized is printed")
  func interrupted() async throws {
    let server = try await HarkServeProcess.start()
    let process = try HarkProcess([
      "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    // One utterance, then the pipe stays open and silent.
    process.write(Self.keys)
    try await process.waitForStandardOutput(containing: "15\n")
    process.signal(SIGINT)
    let status = try await process.wait()
    #expect(status == 130, "\(process.standardError)")
    #expect(process.standardOutput == "15\n")
    #expect(process.standardError.contains("cancelled"))
    process.closeInput()
    await server.stop()
  }

  @Test("--json: one object per response, in order, matching what the server sent")
  func json() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    let path = try scratch.write("keys.wav", Self.keys)
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)", "--json",
      "--result-type",
      "partial",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    let objects = try result.standardOutput.split(separator: "\n").map { line in
      try JSONValue.parse(String(line))
    }
    let kinds = objects.map { object -> String in
      guard case .object(let members) = object, let first = members.first else { return "?" }
      if first.0 == "status", case .object(let status) = first.1,
        let code = status.first(where: { $0.0 == "code" })?.1, case .number(let number) = code
      {
        return "status \(Int(number))"
      }
      if first.0 == "result", case .object(let result) = first.1,
        case .string(let type)? = result.first(where: { $0.0 == "result_type" })?.1
      {
        return "result \(type)"
      }
      return first.0
    }
    // DTMF partials: one per key as it is recognized, then the final.
    #expect(
      kinds == [
        "status 100", "start_of_speech", "result PARTIAL", "result PARTIAL", "result FINAL",
        "status 200",
      ]
    )
    guard case .object(let members)? = objects.dropLast().last,
      case .object(let finalResult)? = members.first?.1,
      case .array(let hypotheses)? = finalResult.first(where: { $0.0 == "hypotheses" })?.1,
      case .object(let best)? = hypotheses.first,
      case .string(let text)? = best.first(where: { $0.0 == "formatted_text" })?.1,
      case .array(let words)? = best.first(where: { $0.0 == "words" })?.1
    else {
      Issue.record("no final result with a hypothesis in \(result.standardOutput)")
      return
    }
    #expect(text == "15")
    #expect(words.count == 2)
    await server.stop()
  }

  @Test("--verbose shows the exchange; the embedded recognizer serves without --server")
  func verboseEmbedded() async throws {
    let scratch = try Scratch()
    let path = try scratch.write("keys.wav", Self.keys)
    let result = try await hark(["recognize", path, "--engine", "dtmf", "--verbose"])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput == "15\n")
    let lines = result.standardError.split(separator: "\n").map(String.init)
    #expect(lines.first?.hasPrefix("embedded recognizer (dtmf) on 127.0.0.1:") == true)
    #expect(
      lines.contains { $0.hasPrefix("→ recognition_init_message language=en-US mode=MULTIPLE") }
    )
    #expect(lines.contains { $0.hasPrefix("← status 100 Continue") })
    #expect(lines.contains { $0.hasPrefix("→ audio ×") })
    #expect(lines.contains("→ end of audio (half-close)"))
    #expect(lines.contains { $0.hasPrefix("← result FINAL") && $0.hasSuffix("\"15\"") })
    #expect(lines.contains("← status 200 Success"))
  }

  @Test("--stall-timers with --start-timers-after-ms: the timers start when asked")
  func startTimers() async throws {
    let server = try await HarkServeProcess.start()
    let scratch = try Scratch()
    let path = try scratch.write("quiet.wav", Self.silence(milliseconds: 1500))
    // Stalled timers: no 404 however long the silence.
    let stalled = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)", "--stall-timers",
      "--no-input-timeout-ms", "100", "--verbose",
    ])
    #expect(stalled.status == 3, "\(stalled.standardError)")
    // Started after 50 ms of real-time audio: 404 100 ms of audio later.
    let started = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
      "--start-timers-after-ms", "50",
      "--no-input-timeout-ms", "100", "--realtime", "--verbose",
    ])
    #expect(started.status == 4, "\(started.standardError)")
    #expect(started.standardError.contains("→ start_timers_message"))
    #expect(started.standardError.contains("← status 100 Continue — timers started"))
    await server.stop()
  }

  @Test("wordset files and tokens: checked before any call; unreadable ones are exit 2")
  func resourceFiles() async throws {
    let scratch = try Scratch()
    let audio = try scratch.write("keys.wav", Self.keys)
    let bad = try scratch.write("bad.json", Array("{\"names\": 5}".utf8))
    let badWordset = try await hark(["recognize", audio, "--engine", "dtmf", "--wordset", bad])
    #expect(badWordset.status == 2)
    #expect(badWordset.standardError.contains("bad.json is not a wordset"))
    let missing = try await hark([
      "recognize", audio, "--engine", "dtmf", "--token-file", "/nonexistent/token",
    ])
    #expect(missing.status == 2)
    #expect(missing.standardError.contains("/nonexistent/token"))
  }
}

/// A `hark` process whose stdin the test writes, whose output it reads as it comes, and which it
/// can signal.
final class HarkProcess: @unchecked Sendable {
  let process = Process()
  private let input = Pipe()
  private let output = NSLockedText()
  private let errors = NSLockedText()
  private let outputDone = NSLockedData()
  private let errorsDone = NSLockedData()

  init(_ arguments: [String]) throws {
    process.executableURL = harkExecutable
    process.arguments = arguments
    let outputPipe = Pipe()
    let errorPipe = Pipe()
    process.standardInput = input
    process.standardOutput = outputPipe
    process.standardError = errorPipe
    try process.run()
    for (pipe, text, done) in [(outputPipe, output, outputDone), (errorPipe, errors, errorsDone)] {
      Thread {
        while true {
          let chunk = pipe.fileHandleForReading.availableData
          if chunk.isEmpty { break }
          text.append(String(decoding: chunk, as: UTF8.self))
        }
        done.set(Data())
      }.start()
    }
  }

  var standardOutput: String { output.text }
  var standardError: String { errors.text }

  func write(_ bytes: [UInt8]) {
    try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
  }

  func closeInput() {
    try? input.fileHandleForWriting.close()
  }

  func signal(_ number: Int32) {
    kill(process.processIdentifier, number)
  }

  /// Waits for the exit; its status.
  func wait() async throws -> Int32 {
    let process = self.process
    let outputDone = self.outputDone
    let errorsDone = self.errorsDone
    return try await offloaded {
      process.waitUntilExit()
      outputDone.wait()
      errorsDone.wait()
      return process.terminationStatus
    }
  }

  func waitForStandardOutput(containing text: String) async throws {
    try await waitFor { self.output.text.contains(text) }
  }

  func waitForStandardError(containing text: String) async throws {
    try await waitFor { self.errors.text.contains(text) }
  }

  private func waitFor(_ condition: @escaping @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while !condition() {
      guard process.isRunning, ContinuousClock.now < deadline else {
        throw CLITestError(
          "hark exited or timed out: stdout \(standardOutput) stderr \(standardError)"
        )
      }
      try await Task.sleep(for: .milliseconds(20))
    }
  }
}
