import Foundation

/// Speech that espeak-ng (installed by tools/bootstrap) synthesizes, converted by SoX to mono
/// 16-bit samples at `sampleRate`.
///
/// The same arguments give the same samples: espeak-ng is deterministic and SoX runs without
/// dither. `wordsPerMinute` is espeak-ng's speed (its default is 175).
public func synthesizedSpeech(
  _ text: String,
  voice: String,
  pitch: Int = 50,
  wordsPerMinute: Int? = nil,
  sampleRate: Int
) throws -> [Int16] {
  let scratch = try ScratchDirectory()
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments =
    ["espeak-ng", "-v", voice, "-p", "\(pitch)"]
    + (wordsPerMinute.map { ["-s", "\($0)"] } ?? [])
    + ["-w", scratch.path("speech.wav"), text]
  try process.run()
  process.waitUntilExit()
  guard process.terminationStatus == 0 else {
    throw SoX.Failure(
      arguments: process.arguments ?? [],
      status: process.terminationStatus,
      standardError: ""
    )
  }
  // --guard keeps the resampler from clipping loud speech.
  try SoX.run(
    [
      "--guard", scratch.path("speech.wav"), "-r", "\(sampleRate)", "-c", "1", "-b", "16", "-e",
      "signed", "-L",
    ]
      + ["-t", "raw", scratch.path("speech.raw")]
  )
  return try scratch.readSamples("speech.raw")
}

/// SoX, the audio tool that tools/bootstrap installs: an oracle for G.711 and WAV that nobody
/// here wrote, and the converter of synthesized speech.
public enum SoX {
  /// SoX (or espeak-ng) exited with an error.
  public struct Failure: Error, CustomStringConvertible {
    public var arguments: [String]
    public var status: Int32
    public var standardError: String

    public var description: String {
      "sox \(arguments.joined(separator: " ")) exited with \(status): \(standardError)"
    }
  }

  /// Runs `sox` with `arguments`, always with `-D` so that it never dithers: dither would add
  /// noise when reducing 16-bit samples to G.711's 13 or 14 bits.
  public static func run(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["sox", "-D"] + arguments
    let standardError = Pipe()
    process.standardError = standardError
    try process.run()
    let errorOutput = standardError.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw Failure(
        arguments: arguments,
        status: process.terminationStatus,
        standardError: String(decoding: errorOutput, as: UTF8.self)
      )
    }
  }
}

/// A directory of its own for one test, removed when the test ends.
public final class ScratchDirectory {
  private let url: URL

  /// A new, empty directory.
  public init() throws {
    url = FileManager.default.temporaryDirectory
      .appendingPathComponent("hark-test-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  deinit {
    try? FileManager.default.removeItem(at: url)
  }

  /// The path of the file `name` in the directory.
  public func path(_ name: String) -> String {
    url.appendingPathComponent(name).path
  }

  /// Writes `bytes` to the file `name`.
  public func write(_ bytes: [UInt8], to name: String) throws {
    try Data(bytes).write(to: url.appendingPathComponent(name))
  }

  /// Writes `samples` to the file `name`, little-endian.
  public func write(samples: [Int16], to name: String) throws {
    try write(
      samples.flatMap { sample in
        [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
      },
      to: name
    )
  }

  /// The bytes of the file `name`.
  public func read(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url.appendingPathComponent(name)))
  }

  /// The little-endian 16-bit samples of the file `name`.
  public func readSamples(_ name: String) throws -> [Int16] {
    let bytes = try read(name)
    return stride(from: 0, to: bytes.count - 1, by: 2).map { index in
      Int16(bitPattern: UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
    }
  }
}
