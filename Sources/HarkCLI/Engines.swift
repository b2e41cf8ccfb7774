import HarkRecognizer
import HarkSphinx
import NIOCore

/// The engines `hark` can run a recognizer with.
enum EngineName: String, CaseIterable, Sendable {
  /// US English speech, with CMU PocketSphinx.
  case sphinx
  /// In-band DTMF key presses.
  case dtmf

  /// The engine a recognizer runs when none is named.
  static let standard = EngineName.sphinx

  /// Makes one engine instance (a server's pool calls it once per slot).
  var factory: @Sendable () -> any SpeechEngine { factory(sphinxModel: nil) }

  /// Makes one engine instance; the sphinx engine's model is in `sphinxModel` (by default
  /// Debian's pocketsphinx-en-us).
  func factory(sphinxModel: String?) -> @Sendable () -> any SpeechEngine {
    switch self {
    case .sphinx: SphinxEngine.factory(modelDirectory: sphinxModel)
    case .dtmf: { DTMFEngine() }
    }
  }

  /// Recognitions a server runs at once when not told: for sphinx, what the cores can decode in
  /// real time (dictation costs about a quarter of a core; each engine holds about 90 MiB); for
  /// dtmf, many.
  var defaultRecognizers: Int {
    switch self {
    case .sphinx: 4 * System.coreCount
    case .dtmf: 100
    }
  }

  /// Checks what the engine needs before a recognizer starts: the sphinx engine's model.
  func check(sphinxModel: String?) throws {
    if self == .sphinx {
      _ = try SphinxModel(directory: sphinxModel ?? SphinxModel.defaultDirectory)
    }
  }
}
