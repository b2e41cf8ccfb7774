import HarkRecognizer

/// The engines `hark` can run a recognizer with.
enum EngineName: String, CaseIterable, Sendable {
  /// In-band DTMF key presses.
  case dtmf

  /// The engine a recognizer runs when none is named.
  static let standard = EngineName.dtmf

  /// Makes one engine instance (a server's pool calls it once per slot).
  var factory: @Sendable () -> any SpeechEngine {
    switch self {
    case .dtmf: { DTMFEngine() }
    }
  }
}
