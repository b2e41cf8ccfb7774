import ArgumentParser
import HarkCLIKit
import HarkProto

/// The recognition parameters `hark recognize` and `hark load` share.
struct RecognitionOptionGroup: ParsableArguments {
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

  /// The options, with the wordset files read; a file that cannot be read or is not a wordset
  /// ends the command with exit status 2 and a one-line error.
  func options() throws -> RecognizeOptions {
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
        let text = try readTextFile(path, what: "wordset")
        try RecognizeOptions.checkWordset(text, name: path)
        options.wordsets.append(text)
      }
    } catch {
      printError("hark: \(error)")
      throw ExitCode(2)
    }
    return options
  }
}
