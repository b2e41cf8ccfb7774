public import ArgumentParser
import HarkAudio
import HarkCLIKit
public import HarkClient
import HarkProto
import HarkRecognizer

#if canImport(Glibc)
  import Glibc
#endif

/// `hark recognize`: stream audio to a recognizer and print what was said.
struct Recognize: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Stream audio to a recognizer and print each final transcript.",
    discussion: """
      With no --server, an embedded recognizer (the sphinx engine) serves the recognition in \
      this process, over the same HTTP/2 path a remote server is reached by.

      Reads FILE, or standard input for -. A file is streamed as fast as the recognizer takes \
      it (--fast), standard input as it arrives, paced to real time (--realtime). WAV files are \
      read by their header; raw audio by --format and --rate (default: by the file's extension, \
      else L16 at 8000 Hz).

      Final transcripts go to stdout, one per line (with --json, one JSON object per \
      response). When stderr is a terminal it shows the audio streamed, the real-time factor \
      and the partial result so far.

      Exit codes:
        0    status 200 (success)
        2    unreadable or invalid audio, or an unreadable --wordset/--token-file
        3    status 204 (no result)
        4    status 404 (no speech)
        5    status 408 (audio timeout)
        6    status 413 (too much speech)
        7    any other 4xx status (400, 401, 403, 409, 410, 429)
        8    any 5xx status (500, 502, 503, 512)
        9    connection or transport failure
        64   bad usage
        130  interrupted (Ctrl-C cancels the recognition; what was heard so far is printed)
      """
  )

  @Argument(help: "The audio: a WAV or raw file, or - for standard input.")
  var file: String

  @Option(help: "The recognizer, HOST:PORT. Without it, an embedded recognizer is used.")
  var server: HostPort?

  @Option(help: "The embedded recognizer's engine: sphinx (speech) or dtmf (key presses).")
  var engine: EngineName?

  @Option(help: "How to read the audio: wav, l16, ulaw or alaw (default: by extension/header).")
  var format: AudioClip.FileFormat?

  @Option(help: "The sample rate of raw audio: 8000 or 16000 (default 8000).")
  var rate: Int?

  @Option(help: "The language of the speech.")
  var language = "en-US"

  @Option(help: "The topic (language model) to use.")
  var topic: String?

  @Option(help: "Utterance detection: single, multiple or disabled.")
  var mode: Mode = .multiple

  @Option(help: "Results: final, partial or immutable-partial.")
  var resultType: ResultKind = .final

  @Option(help: "No speech within this long after the timers start is 404.")
  var noInputTimeoutMs: Int?

  @Option(help: "Speech longer than this is 413.")
  var recognitionTimeoutMs: Int?

  @Option(help: "Silence that ends an utterance (server default 500).")
  var utteranceEndSilenceMs: Int?

  @Option(help: "Speech detection sensitivity, 0 (least) to 1 (most).")
  var sensitivity: Float?

  @Option(help: "The most hypotheses per result.")
  var maxHypotheses: Int?

  @Flag(help: "Stall the no-input and recognition timers until start_timers_message.")
  var stallTimers = false

  @Option(help: "Send start_timers_message this long after the recognition starts (stalls them).")
  var startTimersAfterMs: Int?

  @Option(help: "A builtin resource, e.g. digits or yesno (repeatable).")
  var builtin: [String] = []

  @Option(help: "A file holding a wordset in JSON (repeatable).")
  var wordset: [String] = []

  @Option(help: "Client data, KEY=VALUE (repeatable).")
  var clientData: [String] = []

  @Option(help: "The user ID of the init message.")
  var userId: String?

  @Option(help: "An access token, sent as authorization: Bearer TOKEN.")
  var token: String?

  @Option(help: "A file holding the access token.")
  var tokenFile: String?

  @Flag(help: "Stream no faster than real time (the default for standard input).")
  var realtime = false

  @Flag(help: "Stream as fast as the recognizer takes the audio (the default for files).")
  var fast = false

  @Flag(help: "Write one JSON object per response to stdout.")
  var json = false

  @Flag(help: "Show the protocol exchange on stderr.")
  var verbose = false

  enum Mode: String, ExpressibleByArgument, CaseIterable {
    case single, multiple, disabled

    var value: UtteranceDetectionMode {
      switch self {
      case .single: .single
      case .multiple: .multiple
      case .disabled: .disabled
      }
    }
  }

  enum ResultKind: String, ExpressibleByArgument, CaseIterable {
    case final
    case partial
    case immutablePartial = "immutable-partial"

    var value: ResultType {
      switch self {
      case .final: .final
      case .partial: .partial
      case .immutablePartial: .immutablePartial
      }
    }
  }

  func validate() throws {
    if let rate, rate != 8000 && rate != 16000 {
      throw ValidationError("--rate must be 8000 or 16000, not \(rate)")
    }
    if realtime && fast { throw ValidationError("--realtime and --fast exclude each other") }
    if token != nil && tokenFile != nil {
      throw ValidationError("--token and --token-file exclude each other")
    }
    if server != nil, let engine {
      throw ValidationError(
        "--engine \(engine.rawValue) is for the embedded recognizer, not --server"
      )
    }
    if let sensitivity, !(0...1).contains(sensitivity) {
      throw ValidationError("--sensitivity must be between 0 and 1")
    }
    for (name, value) in [
      ("--no-input-timeout-ms", noInputTimeoutMs),
      ("--recognition-timeout-ms", recognitionTimeoutMs),
      ("--utterance-end-silence-ms", utteranceEndSilenceMs), ("--max-hypotheses", maxHypotheses),
      ("--start-timers-after-ms", startTimersAfterMs),
    ] {
      if let value, value < 0 { throw ValidationError("\(name) must not be negative") }
    }
    for pair in clientData {
      do {
        _ = try RecognizeOptions.clientDataPair(pair)
      } catch {
        throw ValidationError(error.message)
      }
    }
  }

  func run() async throws {
    var options = RecognizeOptions()
    options.language = language
    options.topic = topic ?? ""
    options.mode = mode.value
    options.resultType = resultType.value
    options.noInputTimeoutMs = noInputTimeoutMs
    options.recognitionTimeoutMs = recognitionTimeoutMs
    options.utteranceEndSilenceMs = utteranceEndSilenceMs
    options.sensitivity = sensitivity
    options.maxHypotheses = maxHypotheses
    options.stallTimers = stallTimers
    options.startTimersAfterMs = startTimersAfterMs
    options.builtins = builtin
    options.userID = userId ?? ""
    for pair in clientData {
      let (key, value) = try RecognizeOptions.clientDataPair(pair)
      options.clientData[key] = value
    }
    do {
      for path in wordset {
        let text = try readText(path, what: "wordset")
        try RecognizeOptions.checkWordset(text, name: path)
        options.wordsets.append(text)
      }
      if let tokenFile {
        options.token = try readText(tokenFile, what: "token file")
          .trimmingCharacters(in: "\n").trimmingCharacters(in: "\r")
      } else {
        options.token = token
      }
    } catch {
      printError("hark: \(error)")
      throw ExitCode(2)
    }

    let display = TerminalDisplay()
    let target: RecognizeRunner.Target =
      if let server {
        .server(host: server.host, port: server.port)
      } else {
        .embedded(engine: (engine ?? .standard).rawValue, makeEngine: (engine ?? .standard).factory)
      }
    let runner = RecognizeRunner(
      options: options,
      target: target,
      output: json ? .json : .text,
      verbose: verbose,
      display: display
    )
    let cancellation = RecognizeRunner.Cancellation()
    let interrupts = Task {
      var count = 0
      for await _ in await signalStream([(SIGINT, "SIGINT")]) {
        count += 1
        // The first Ctrl-C cancels the recognition; a second one does not wait for that.
        if count > 1 { Glibc.exit(130) }
        cancellation.cancel()
      }
    }
    defer { interrupts.cancel() }

    let outcome: RecognitionOutcome
    do {
      if file == "-" {
        outcome = try await recognizeStandardInput(runner, cancellation: cancellation)
      } else {
        outcome = try await recognizeFile(runner, cancellation: cancellation)
      }
    } catch let error as AudioClip.FileError {
      printError("hark: \(error)")
      throw ExitCode(2)
    } catch let error as ExitCode {
      throw error
    } catch {
      display.finish()
      printError("hark: \(error)")
      throw ExitCode(9)
    }
    if outcome.exitStatus != 0 && !json { display.note("hark: \(outcome)") }
    throw ExitCode(outcome.exitStatus)
  }

  private func recognizeFile(
    _ runner: RecognizeRunner,
    cancellation: RecognizeRunner.Cancellation
  ) async throws -> RecognitionOutcome {
    let clip = try AudioClip.read(
      path: file,
      format: format ?? .guess(path: file),
      sampleRate: rate
    )
    return try await runner.run(
      audio: clip.frames(pacing: realtime ? .realTime : .asFastAsPossible),
      format: clip.format,
      totalSeconds: clip.duration,
      cancellation: cancellation
    )
  }

  private func recognizeStandardInput(
    _ runner: RecognizeRunner,
    cancellation: RecognizeRunner.Cancellation
  ) async throws -> RecognitionOutcome {
    let declared: AudioStreamInput.Declared
    switch format {
    case .wav?:
      declared = .wav
    case .l16?, .ulaw?, .alaw?, nil:
      let encoding: AudioEncoding =
        switch format {
        case .ulaw?: .ulaw
        case .alaw?: .alaw
        default: .linear16
        }
      let sampleRate = rate ?? 8000
      guard AudioStreamFormat.isSupported(encoding, sampleRate: sampleRate) else {
        throw AudioClip.FileError(
          message: "\(format?.rawValue ?? "l16") at \(sampleRate) Hz is not supported"
        )
      }
      let raw = AudioStreamFormat(encoding: encoding, sampleRate: sampleRate)
      declared = format == nil ? .sniff(raw: raw) : .raw(raw)
    }
    let input = try await AudioStreamInput.open(descriptor: 0, declared: declared)
    if fast {
      return try await runner.run(
        audio: input.frames,
        format: input.format,
        totalSeconds: nil,
        cancellation: cancellation
      )
    }
    return try await runner.run(
      audio: RealTimeFrames(input.frames, format: input.format),
      format: input.format,
      totalSeconds: nil,
      cancellation: cancellation
    )
  }

  private func readText(_ path: String, what: String) throws(RecognizeOptions.Problem) -> String {
    guard let file = fopen(path, "rb") else {
      throw RecognizeOptions.Problem(
        "cannot read the \(what) \(path): \(String(cString: strerror(errno)))"
      )
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
      bytes += chunk[0..<count]
      if count < chunk.count { break }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

extension AudioClip.FileFormat: ExpressibleByArgument {}

extension EngineName: ExpressibleByArgument {}
