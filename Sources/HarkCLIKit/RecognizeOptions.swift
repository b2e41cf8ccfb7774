public import HarkAudio
import HarkClient
public import HarkProto
import HarkRecognizer

/// What `hark recognize` asks of the recognizer: everything of the init message that its options
/// set. (Credentials are a ``RecognizeRunner``'s token provider.)
public struct RecognizeOptions: Sendable, Hashable {
  public var language = "en-US"
  public var topic = ""
  public var mode: UtteranceDetectionMode = .multiple
  public var resultType: ResultType = .final
  public var noInputTimeoutMs: Int?
  public var recognitionTimeoutMs: Int?
  public var utteranceEndSilenceMs: Int?
  public var sensitivity: Float?
  public var maxHypotheses: Int?
  /// Stall the no-input and recognition timers until `start_timers_message`.
  public var stallTimers = false
  /// Send `start_timers_message` this long after the 100 Continue (implies `stallTimers`).
  public var startTimersAfterMs: Int?
  /// Builtin resources by name (`digits`, `yesno`, …).
  public var builtins: [String] = []
  /// Inline wordsets: the JSON texts.
  public var wordsets: [String] = []
  public var clientData: [String: String] = [:]
  public var userID = ""

  public init() {}

  /// The init message for audio of `format`.
  public func initMessage(format: AudioStreamFormat) -> RecognitionInitMessage {
    var parameters = RecognitionParameters(language: language, audioFormat: format.protoFormat)
    parameters.topic = topic
    parameters.utteranceDetectionMode = mode
    parameters.resultType = resultType
    if let noInputTimeoutMs { parameters.noInputTimeoutMs = UInt32(clamping: noInputTimeoutMs) }
    if let recognitionTimeoutMs {
      parameters.recognitionTimeoutMs = UInt32(clamping: recognitionTimeoutMs)
    }
    if let utteranceEndSilenceMs {
      parameters.utteranceEndSilenceMs = UInt32(clamping: utteranceEndSilenceMs)
    }
    parameters.speechDetectionSensitivity = sensitivity
    if let maxHypotheses { parameters.maxHypotheses = UInt32(clamping: maxHypotheses) }
    if stallTimers || startTimersAfterMs != nil {
      var flags = parameters.recognitionFlags ?? RecognitionFlags()
      flags.stallTimers = true
      parameters.recognitionFlags = flags
    }
    var message = RecognitionInitMessage(parameters: parameters)
    message.resources =
      builtins.map { RecognitionResource(.builtin($0)) }
      + wordsets.map { RecognitionResource(.inlineWordset($0)) }
    message.clientData = clientData
    message.userID = userID
    return message
  }

  /// Why an option's value cannot be used; `message` is one line naming it.
  public struct Problem: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
  }

  /// Checks a wordset's JSON as the server will read it, so a bad file fails before any call.
  public static func checkWordset(_ text: String, name: String) throws(Problem) {
    do {
      _ = try Wordset.parse(text)
    } catch {
      throw Problem("\(name) is not a wordset: \(error.message)")
    }
  }

  /// A `KEY=VALUE` pair of `--client-data`.
  public static func clientDataPair(_ text: String) throws(Problem) -> (String, String) {
    guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
      throw Problem("--client-data takes KEY=VALUE, not '\(text)'")
    }
    return (String(text[..<equals]), String(text[text.index(after: equals)...]))
  }
}
