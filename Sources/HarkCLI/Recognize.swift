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

      Credentials: a token (--token, --token-file), or an OAuth2 client ID and secret \
      (--client-id with --client-secret or --client-secret-file) whose tokens come from \
      --token-url (Nuance Mix's by default, scope asr). Environment variables keep them out of \
      ps: HARK_TOKEN, or HARK_CLIENT_ID and HARK_CLIENT_SECRET. A flag beats the environment; \
      --token, --token-file and --client-id exclude each other.

      Exit codes:
        0    status 200 (success)
        2    unreadable or invalid audio, or an unreadable --wordset,
             --token-file or --client-secret-file
        3    status 204 (no result)
        4    status 404 (no speech)
        5    status 408 (audio timeout)
        6    status 413 (too much speech)
        7    any other 4xx status (400, 401, 403, 409, 410, 429), the gRPC statuses
             UNAUTHENTICATED and PERMISSION_DENIED (from a gateway), and no token:
             the token endpoint refused the credentials
        8    any 5xx status (500, 502, 503, 512)
        9    connection or transport failure (an unreachable token endpoint too)
        64   bad usage
        130  interrupted (Ctrl-C cancels the recognition; what was heard so far is printed)
      """
  )

  @Argument(help: "The audio: a WAV or raw file, or - for standard input.")
  var file: String

  @Option(
    help:
      "The recognizer, HOST:PORT, over TLS (--plaintext for h2c). Without it, an embedded recognizer is used."
  )
  var server: HostPort?

  @OptionGroup(title: "Connection")
  var connection: ConnectionOptionGroup

  @Option(help: "The embedded recognizer's engine: sphinx (speech) or dtmf (key presses).")
  var engine: EngineName?

  @Option(help: "How to read the audio: wav, l16, ulaw or alaw (default: by extension/header).")
  var format: AudioClip.FileFormat?

  @Option(help: "The sample rate of raw audio: 8000 or 16000 (default 8000).")
  var rate: Int?

  @OptionGroup(title: "Recognition")
  var recognition: RecognitionOptionGroup

  @OptionGroup(title: "Credentials")
  var credentials: CredentialOptionGroup

  @Flag(help: "Stream no faster than real time (the default for standard input).")
  var realtime = false

  @Flag(help: "Stream as fast as the recognizer takes the audio (the default for files).")
  var fast = false

  @Option(
    help: """
      The longest the recognition may take, in seconds, once its call starts (sent as \
      grpc-timeout): past it the call ends with DEADLINE_EXCEEDED (exit 9). Default: none.
      """
  )
  var timeout: Double?

  @Option(
    help: """
      Retries of a recognition refused before it starts (409, 429, 503, 512, or a server that \
      cannot be reached), after the server's pushback or a jittered backoff; the audio waits, \
      whole. 0 for none.
      """
  )
  var retries: Int = 2

  @Flag(
    help: """
      Resume a stream that fails mid-call (connection lost, GOAWAY, 512) on a new one: the \
      audio after the last final result (up to 60 s) goes again, and the results keep one \
      timeline. L16 and G.711 only.
      """
  )
  var resume = false

  @Option(
    help: ArgumentHelp(
      "Hand the recognition over to a new stream after this long on one (implies --resume), "
        + "to stay under a service's limit on a stream.",
      valueName: "duration"
    )
  )
  var maxStreamDuration: DurationArgument?

  @Flag(help: "Write one JSON object per response to stdout.")
  var json = false

  @Flag(help: "Show the protocol exchange on stderr.")
  var verbose = false

  func validate() throws {
    if let rate, rate != 8000 && rate != 16000 {
      throw ValidationError("--rate must be 8000 or 16000, not \(rate)")
    }
    if realtime && fast { throw ValidationError("--realtime and --fast exclude each other") }
    if !(0...100).contains(retries) {
      throw ValidationError("--retries must be from 0 to 100, not \(retries)")
    }
    if let maxStreamDuration, maxStreamDuration.nanoseconds < 1_000_000_000 {
      throw ValidationError("--max-stream-duration must be at least 1s, not \(maxStreamDuration)")
    }
    if let timeout, !(timeout > 0 && timeout <= 8 * 3600) {
      throw ValidationError(
        "--timeout must be more than 0 and at most 28800 seconds, not \(timeout)"
      )
    }
    if server == nil, connection.anyGiven {
      throw ValidationError(
        "--plaintext, --cacert, --cert, --key, --insecure and --authority go with --server"
      )
    }
    if server != nil, let engine {
      throw ValidationError(
        "--engine \(engine.rawValue) is for the embedded recognizer, not --server"
      )
    }
  }

  func run() async throws {
    let options = try recognition.options()
    let tokenProvider = try credentials.tokenProvider(caFile: connection.cacert)
    let status: Int32
    do {
      status = try await recognize(options: options, tokenProvider: tokenProvider)
    } catch {
      await tokenProvider?.close()
      throw error
    }
    await tokenProvider?.close()
    throw ExitCode(status)
  }

  /// Runs the recognition and returns the exit status.
  private func recognize(
    options: RecognizeOptions,
    tokenProvider: (any TokenProvider)?
  ) async throws -> Int32 {
    let display = TerminalDisplay()
    let target: RecognizeRunner.Target =
      if let server {
        .server(
          host: server.host,
          port: server.port,
          configuration: connection.clientConfiguration()
        )
      } else {
        .embedded(engine: (engine ?? .standard).rawValue, makeEngine: (engine ?? .standard).factory)
      }
    var runner = RecognizeRunner(
      options: options,
      target: target,
      output: json ? .json : .text,
      verbose: verbose,
      display: display
    )
    runner.timeout = timeout.map { .milliseconds(Int(($0 * 1000).rounded(.up))) }
    runner.tokenProvider = tokenProvider
    runner.retryPolicy = .retries(retries)
    if resume || maxStreamDuration != nil {
      runner.resumePolicy = ResumePolicy(
        maxStreamDuration: maxStreamDuration.map { .nanoseconds($0.nanoseconds) }
      )
    }
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
    return outcome.exitStatus
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
}

extension AudioClip.FileFormat: ExpressibleByArgument {}

extension EngineName: ExpressibleByArgument {}
