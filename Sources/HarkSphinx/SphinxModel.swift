public import HarkRecognizer

#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Where a PocketSphinx model lives: an acoustic model, a language model and a dictionary, laid
/// out as Debian's `pocketsphinx-en-us` lays them out.
public struct SphinxModel: Sendable, Hashable {
  /// The directory of Debian's `pocketsphinx-en-us` package.
  public static let defaultDirectory = "/usr/share/pocketsphinx/model/en-us"

  /// The model directory.
  public var directory: String
  /// The acoustic model (a directory: `mdef`, `means`, `feat.params`, …).
  public var acousticModel: String
  /// The n-gram language model for dictation.
  public var languageModel: String
  /// The pronunciation dictionary.
  public var dictionary: String

  /// The model in `directory`: `en-us/` (acoustic model), `en-us.lm.bin` and
  /// `cmudict-en-us.dict`.
  ///
  /// - Throws: ``EngineError`` (an internal failure) naming the first file that is missing, and
  ///   the package that provides it.
  public init(directory: String = Self.defaultDirectory) throws(EngineError) {
    let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    self.directory = base
    acousticModel = base + "/en-us"
    languageModel = base + "/en-us.lm.bin"
    dictionary = base + "/cmudict-en-us.dict"
    for path in [
      acousticModel + "/mdef", acousticModel + "/feat.params", languageModel, dictionary,
    ]
    where access(path, R_OK) != 0 {
      throw EngineError(
        .internalFailure,
        "the PocketSphinx model is missing: cannot read \(path)"
          + (base == Self.defaultDirectory
            ? " (install the Debian package pocketsphinx-en-us)" : "")
      )
    }
  }
}
