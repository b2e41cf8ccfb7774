import Foundation

/// SoX, the audio tool that tools/bootstrap installs: an oracle for G.711 and WAV that nobody
/// here wrote.
enum SoX {
  struct Failure: Error, CustomStringConvertible {
    var arguments: [String]
    var status: Int32
    var standardError: String

    var description: String {
      "sox \(arguments.joined(separator: " ")) exited with \(status): \(standardError)"
    }
  }

  /// Runs `sox` with `arguments`, always with `-D` so that it never dithers: dither would add
  /// noise when reducing 16-bit samples to G.711's 13 or 14 bits.
  static func run(_ arguments: [String]) throws {
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
final class ScratchDirectory {
  let url: URL

  init() throws {
    url = FileManager.default.temporaryDirectory
      .appendingPathComponent("hark-audio-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  deinit {
    try? FileManager.default.removeItem(at: url)
  }

  func path(_ name: String) -> String {
    url.appendingPathComponent(name).path
  }

  func write(_ bytes: [UInt8], to name: String) throws {
    try Data(bytes).write(to: url.appendingPathComponent(name))
  }

  func write(samples: [Int16], to name: String) throws {
    try write(
      samples.flatMap { sample in
        [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
      },
      to: name
    )
  }

  func read(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url.appendingPathComponent(name)))
  }

  func readSamples(_ name: String) throws -> [Int16] {
    let bytes = try read(name)
    return stride(from: 0, to: bytes.count - 1, by: 2).map { index in
      Int16(bitPattern: UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8)
    }
  }
}
