public import ArgumentParser
public import HarkClient
import HarkProto
import HarkRecognizer

#if canImport(Glibc)
  import Glibc
#endif

/// `hark recognize`: stream an audio file to a recognizer and print what was said.
struct Recognize: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Stream an audio file to a recognizer and print each final transcript.",
    discussion: """
      Exit codes: 0 status 200; 3 status 204 (no result); 4 status 404 (no speech); 5 status \
      408 (audio timeout); 6 status 413 (too much speech); 7 any other 4xx (400, 401, 403, \
      409, 410, 429); 8 any 5xx (500, 502, 503, 512); 9 connection or transport failure; \
      2 unreadable or invalid audio; 64 bad usage.
      """
  )

  @Argument(help: "The audio file: WAV, or raw L16, µ-law or A-law.")
  var file: String

  @Option(help: "The recognizer, HOST:PORT.")
  var server: HostPort

  @Option(help: "How to read the file: wav, l16, ulaw or alaw (default: by its extension).")
  var format: AudioClip.FileFormat?

  @Option(help: "The sample rate of raw audio: 8000 or 16000.")
  var rate: Int?

  func validate() throws {
    if let rate, rate != 8000 && rate != 16000 {
      throw ValidationError("--rate must be 8000 or 16000")
    }
  }

  func run() async throws {
    let clip: AudioClip
    do {
      clip = try AudioClip.read(path: file, format: format ?? .guess(path: file), sampleRate: rate)
    } catch {
      printError("hark: \(error)")
      throw ExitCode(2)
    }
    var parameters = RecognitionParameters(language: "en-US", audioFormat: clip.format.protoFormat)
    parameters.utteranceDetectionMode = .multiple
    let client = RecognizerClient(host: server.host, port: server.port)
    let outcome = try await client.recognize(
      RecognitionInitMessage(parameters: parameters),
      audio: clip.frames()
    ) { event in
      if case .finalResult(let result) = event, let best = result.hypotheses.first, !best.rejected {
        print(best.formattedText)
      }
    }
    await client.close()
    if outcome.exitCode != 0 { printError("hark: \(outcome)") }
    throw ExitCode(outcome.exitCode)
  }
}

extension AudioClip.FileFormat: ExpressibleByArgument {}

extension RecognitionOutcome {
  /// The exit code of `hark recognize` for this outcome.
  var exitCode: Int32 {
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

/// Writes a line to stderr.
func printError(_ line: String) {
  var stream = StandardError()
  print(line, to: &stream)
}

struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    var string = string
    string.withUTF8 { bytes in
      _ = Glibc.write(2, bytes.baseAddress, bytes.count)
    }
  }
}
