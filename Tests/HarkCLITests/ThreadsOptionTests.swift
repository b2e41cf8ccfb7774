import Foundation
import HarkAudio
import Testing

/// `--threads`: the event loops of `hark serve` and `hark load`.
@Suite("--threads", .timeLimit(.minutes(1)))
struct ThreadsOptionTests {
  /// The names of a process's threads.
  static func threadNames(of pid: Int32) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").compactMap {
      try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }
  }

  @Test("hark serve --threads 3 runs three event loops, and serves")
  func serveThreads() async throws {
    let server = try await HarkServeProcess.start(extra: ["--threads", "3"])
    let scratch = try Scratch()
    let path = try scratch.write(
      "keys.wav",
      wavBytes(keyPresses("4", sampleRate: 8000), format: .linear16(sampleRate: 8000))
    )
    let result = try await hark([
      "recognize", path, "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    #expect(result.status == 0, "\(result.standardError)")
    #expect(result.standardOutput.contains("4"), "\(result.standardOutput)")
    // SwiftNIO names a group's loops NIO-ELT-<group>-#<loop>.
    let loops = try Self.threadNames(of: server.process.processIdentifier)
      .filter { $0.hasPrefix("NIO-ELT-") }
    let groups = Dictionary(grouping: loops) { $0.split(separator: "#").first ?? "" }
    #expect(groups.values.contains { $0.count == 3 }, "\(loops)")
    await server.stop()
  }

  @Test("a --threads count out of range is a one-line usage error", arguments: ["0", "5000"])
  func badCount(_ count: String) async throws {
    for command in [
      ["serve", "--engine", "dtmf", "--listen", "127.0.0.1:0"],
      ["load", "--sessions", "1", "--plaintext", "--server", "127.0.0.1:1"],
    ] {
      let result = try await hark(command + ["--threads", count])
      #expect(result.status == 64, "\(result.standardError)")
      #expect(
        result.standardError.contains("Error: --threads must be between 1 and 1024"),
        "\(result.standardError)"
      )
    }
  }
}
