public import HarkAudio
public import HarkClient
public import HarkGRPC
import HarkGRPCCore
import HarkProto
public import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
public import NIOCore

/// One run of `hark recognize`: audio in, transcripts out, an exit status at the end.
///
/// The recognizer is a server (`--server`) or, by default, an embedded one: a Hark server on a
/// loopback port in this process, reached over the same HTTP/2 path a remote server is.
public struct RecognizeRunner: Sendable {
  /// Where the recognizer is.
  public enum Target: Sendable {
    /// A server, reached with `configuration` (TLS or h2c, the authority).
    case server(host: String, port: Int, configuration: GRPCClientConfiguration)
    /// A recognizer in this process, with engines `makeEngine` makes, named `engine` in logs.
    case embedded(engine: String, makeEngine: @Sendable () -> any SpeechEngine)
  }

  /// How results are written.
  public enum Output: Sendable, Hashable {
    /// Each final transcript on its own line.
    case text
    /// One JSON object per response.
    case json
  }

  public var options: RecognizeOptions
  public var target: Target
  public var output: Output
  /// Shows the protocol exchange on stderr.
  public var verbose: Bool
  public var display: TerminalDisplay
  /// The longest the recognition may take once its call starts (`--timeout`); nil for none.
  public var timeout: Duration?
  /// How a refusal before the 100 is tried again (`--retries`).
  public var retryPolicy: RetryPolicy = .default
  /// Whether a stream that fails mid-call is resumed (`--resume`).
  public var resumePolicy: ResumePolicy?
  /// Where the access token comes from (`--token`, `--client-id`, …); nil sends none. The run
  /// does not close it.
  public var tokenProvider: (any TokenProvider)?

  public init(
    options: RecognizeOptions,
    target: Target,
    output: Output,
    verbose: Bool,
    display: TerminalDisplay
  ) {
    self.options = options
    self.target = target
    self.output = output
    self.verbose = verbose
    self.display = display
  }

  /// Cancels a run from outside (Ctrl-C): the recognition is cancelled cleanly.
  public final class Cancellation: Sendable {
    private let state = NIOLockedValueBox<(cancelled: Bool, recognition: Recognition?)>(
      (false, nil)
    )

    public init() {}

    public func cancel() {
      let recognition = state.withLockedValue { state in
        state.cancelled = true
        return state.recognition
      }
      recognition?.cancel()
    }

    func attach(_ recognition: Recognition) {
      let cancelled = state.withLockedValue { state in
        state.recognition = recognition
        return state.cancelled
      }
      if cancelled { recognition.cancel() }
    }
  }

  /// Streams `audio` (frames of `format`; `totalSeconds` of it if known) and writes the results;
  /// returns the outcome.
  public func run<Audio: AsyncSequence & Sendable>(
    audio: Audio,
    format: AudioStreamFormat,
    totalSeconds: Double?,
    cancellation: Cancellation = Cancellation()
  ) async throws -> RecognitionOutcome where Audio.Element == ByteBuffer {
    var embedded: RecognizerServer?
    let host: String
    let port: Int
    var client = GRPCClientConfiguration()
    switch target {
    case .server(let serverHost, let serverPort, let configuration):
      (host, port) = (serverHost, serverPort)
      client = configuration
    case .embedded(let engine, let makeEngine):
      var configuration = RecognizerServer.Configuration(host: "127.0.0.1", port: 0, recognizers: 1)
      // The engine is made (a speech model loaded) off the event loop, before the server listens.
      configuration.prewarmEngines = true
      let server = RecognizerServer(configuration: configuration, makeEngine: makeEngine)
      let address = try await server.start()
      embedded = server
      (host, port) = ("127.0.0.1", address.port ?? 0)
      if verbose { display.note("embedded recognizer (\(engine)) on 127.0.0.1:\(port)") }
    }
    do {
      let outcome = try await recognize(
        host: host,
        port: port,
        client: client,
        audio: audio,
        format: format,
        totalSeconds: totalSeconds,
        cancellation: cancellation
      )
      await embedded?.shutdown(gracePeriod: .milliseconds(100))
      return outcome
    } catch {
      await embedded?.shutdown(gracePeriod: .milliseconds(100))
      throw error
    }
  }

  private func recognize<Audio: AsyncSequence & Sendable>(
    host: String,
    port: Int,
    client configuration: GRPCClientConfiguration,
    audio: Audio,
    format: AudioStreamFormat,
    totalSeconds: Double?,
    cancellation: Cancellation
  ) async throws -> RecognitionOutcome where Audio.Element == ByteBuffer {
    let client = RecognizerClient(
      host: host,
      port: port,
      configuration: configuration,
      tokenProvider: tokenProvider
    )
    let progress = Progress(
      display: display,
      bytesPerSecond: format.bytesPerSecond,
      total: totalSeconds
    )
    let counted = CountedFrames(base: audio, progress: progress)
    let initMessage = options.initMessage(format: format)
    let trace: (@Sendable (RecognitionTrace) -> Void)? =
      verbose ? TraceFormatter(display: display, bytesPerSecond: format.bytesPerSecond).trace : nil
    let output = self.output
    let display = self.display
    let startTimersAfter = options.startTimersAfterMs
    let maxAttempts = retryPolicy.maxAttempts
    // After the 100, a retry opens a resumed stream, by the resume policy's attempts.
    let resumeAttempts = resumePolicy?.retry.maxAttempts ?? maxAttempts
    let outcome = try await client.recognize(
      initMessage,
      audio: counted,
      timeout: timeout,
      retryPolicy: retryPolicy,
      resume: resumePolicy,
      trace: trace
    ) { recognition in
      cancellation.attach(recognition)
      var timers: Task<Void, Never>?
      defer { timers?.cancel() }
      var started = false
      for await event in recognition.events {
        if output == .json, let line = ResponseJSON.line(event) { display.result(line) }
        switch event {
        case .started:
          started = true
          if let startTimersAfter {
            timers = Task {
              try? await Task.sleep(for: .milliseconds(startTimersAfter))
              if !Task.isCancelled { recognition.startTimers() }
            }
          }
        case .retrying(let attempt, let delay, let reason):
          // Why the recognition has not started yet, and when it tries again.
          let (seconds, attoseconds) = delay.components
          let tenths = Int(((Double(seconds) + Double(attoseconds) / 1e18) * 10).rounded())
          let wait = "\(tenths / 10).\(tenths % 10)"
          display.note(
            "hark: \(RecognizeRunner.describe(reason)); retrying in \(wait) s "
              + "(attempt \(attempt) of \(started ? resumeAttempts : maxAttempts))"
          )
        case .resumed(let atMs):
          display.note("hark: resumed on a new stream from \(atMs) ms of the audio")
        case .partialResult(let result):
          progress.partial(result.hypotheses.first?.formattedText ?? "")
        case .finalResult(let result):
          progress.partial("")
          if output == .text, let best = result.hypotheses.first, !best.rejected {
            display.result(best.formattedText)
          }
        default:
          break
        }
      }
      return await recognition.outcome
    }
    if outcome.kind == .cancelled, output == .text {
      // Interrupted: what was heard of the utterance in progress is printed too.
      let partial = progress.currentPartial
      if !partial.isEmpty { display.result(partial) }
    }
    display.finish()
    await client.close()
    return outcome
  }
}

extension RecognizeRunner {
  /// A refusal in a few words: `409 Conflict (all 4 recognizers are busy)`, `UNAVAILABLE: …`.
  static func describe(_ outcome: RecognitionOutcome) -> String {
    if let status = outcome.status {
      let details = status.details.isEmpty ? "" : " (\(status.details))"
      return "\(status.code) \(status.message)\(details)"
    }
    if let transport = outcome.transportStatus { return "\(transport)" }
    return "\(outcome.kind)"
  }
}

/// The status line's figures, fed by the audio as it is taken and by partial results.
final class Progress: Sendable {
  let display: TerminalDisplay
  let bytesPerSecond: Int
  let total: Double?
  private let state = NIOLockedValueBox<(bytes: Int, start: UInt64?, partial: String)>((0, nil, ""))

  init(display: TerminalDisplay, bytesPerSecond: Int, total: Double?) {
    self.display = display
    self.bytesPerSecond = bytesPerSecond
    self.total = total
  }

  func sent(_ bytes: Int) {
    let line = state.withLockedValue { state -> ProgressLine in
      let now = monotonicNanoseconds()
      let start = state.start ?? now
      state.start = start
      state.bytes += bytes
      return Self.line(state, now: now, start: start, bytesPerSecond: bytesPerSecond, total: total)
    }
    display.update(line)
  }

  func partial(_ text: String) {
    let line = state.withLockedValue { state -> ProgressLine in
      state.partial = text
      let now = monotonicNanoseconds()
      return Self.line(
        state,
        now: now,
        start: state.start ?? now,
        bytesPerSecond: bytesPerSecond,
        total: total
      )
    }
    display.update(line, force: true)
  }

  var currentPartial: String { state.withLockedValue { $0.partial } }

  private static func line(
    _ state: (bytes: Int, start: UInt64?, partial: String),
    now: UInt64,
    start: UInt64,
    bytesPerSecond: Int,
    total: Double?
  ) -> ProgressLine {
    ProgressLine(
      sentSeconds: Double(state.bytes) / Double(bytesPerSecond),
      totalSeconds: total,
      elapsedSeconds: Double(now - start) / 1e9,
      partial: state.partial
    )
  }
}

/// Frames passed through, counted for the status line as the client library takes them.
struct CountedFrames<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Base.Element == ByteBuffer {
  typealias Element = ByteBuffer
  let base: Base
  let progress: Progress

  struct AsyncIterator: AsyncIteratorProtocol {
    var base: Base.AsyncIterator
    let progress: Progress

    mutating func next() async throws -> ByteBuffer? {
      guard let frame = try await base.next() else { return nil }
      progress.sent(frame.readableBytes)
      return frame
    }
  }

  func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(base: base.makeAsyncIterator(), progress: progress)
  }
}

/// `--verbose`: the protocol exchange, one line per message, with runs of audio messages
/// summed up in one line.
final class TraceFormatter: Sendable {
  let display: TerminalDisplay
  let bytesPerSecond: Int
  private let audio = NIOLockedValueBox<(messages: Int, bytes: Int, sentBytes: Int)>((0, 0, 0))

  init(display: TerminalDisplay, bytesPerSecond: Int) {
    self.display = display
    self.bytesPerSecond = bytesPerSecond
  }

  var trace: @Sendable (RecognitionTrace) -> Void {
    { [self] event in self.record(event) }
  }

  func record(_ event: RecognitionTrace) {
    if case .sent(let request) = event, case .audio(let bytes)? = request.request {
      audio.withLockedValue { audio in
        audio.messages += 1
        audio.bytes += bytes.readableBytes
      }
      return
    }
    flushAudio()
    display.note(Self.describe(event))
  }

  func flushAudio() {
    let run = audio.withLockedValue { audio -> (messages: Int, bytes: Int, from: Int) in
      let run = (audio.messages, audio.bytes, audio.sentBytes)
      audio.sentBytes += audio.bytes
      audio.messages = 0
      audio.bytes = 0
      return run
    }
    guard run.messages > 0 else { return }
    let from = Double(run.from) / Double(bytesPerSecond)
    let to = Double(run.from + run.bytes) / Double(bytesPerSecond)
    display.note(
      "→ audio ×\(run.messages) (\(run.bytes) bytes, \(ProgressLine.seconds(from))–\(ProgressLine.seconds(to)) s)"
    )
  }

  static func describe(_ event: RecognitionTrace) -> String {
    switch event {
    case .callStarted(let path, let metadata):
      // The client redacted the credentials already; this is the last line of defence.
      let redacted = metadata.redactingCredentials()
      return "→ call \(path)" + (redacted.isEmpty ? "" : " \(redacted)")
    case .sent(let request):
      switch request.request {
      case .recognitionInitMessage(let message)?:
        let parameters = message.parameters ?? RecognitionParameters()
        var text = "→ recognition_init_message language=\(parameters.language)"
        if !parameters.topic.isEmpty { text += " topic=\(parameters.topic)" }
        text += " mode=\(parameters.utteranceDetectionMode) result_type=\(parameters.resultType)"
        if parameters.recognitionFlags?.stallTimers == true { text += " stall_timers" }
        for resource in message.resources {
          switch resource.resource {
          case .builtin(let name)?: text += " builtin=\(name)"
          case .inlineWordset?: text += " inline_wordset"
          case .inlineGrammar?: text += " inline_grammar"
          default: text += " resource"
          }
        }
        return text
      case .controlMessage?: return "→ start_timers_message"
      case .audio(let bytes)?: return "→ audio (\(bytes.readableBytes) bytes)"
      case nil: return "→ empty request"
      }
    case .halfClosed:
      return "→ end of audio (half-close)"
    case .received(let response):
      switch response.response {
      case .status(let status)?:
        let details = status.details.isEmpty ? "" : " — \(status.details)"
        return "← status \(status.code) \(status.message)\(details)"
      case .startOfSpeech(let start)?:
        return "← start_of_speech at \(start.firstAudioToStartOfSpeechMs) ms"
      case .result(let result)?:
        let best = result.hypotheses.first
        let text =
          best.map { "\"\($0.formattedText)\"" + ($0.rejected ? " (rejected)" : "") }
          ?? "no hypothesis"
        return "← result \(result.resultType) \(result.absStartMs)–\(result.absEndMs) ms: \(text)"
      case nil:
        return "← empty response"
      }
    case .callEnded(let status):
      return "← call ended: \(status.code)\(status.message.isEmpty ? "" : " \(status.message)")"
    }
  }
}

extension RecognitionOutcome {
  /// The exit status of `hark recognize` for this outcome (see its `--help`).
  public var exitStatus: Int32 {
    switch kind {
    case .success: 0
    case .noResult: 3
    case .noSpeech: 4
    case .audioTimeout: 5
    case .tooMuchSpeech: 6
    case .badRequest, .unauthorized, .forbidden, .conflict, .notRecognizing, .tooManyRequests: 7
    case .internalError, .resourceError, .serviceUnavailable, .shutdown: 8
    case .otherStatus: (code ?? 0) >= 500 ? 8 : 7
    case .transportFailure: 9
    case .cancelled: 130
    }
  }
}
