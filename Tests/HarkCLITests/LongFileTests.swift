import Foundation
import HarkTesting
import Testing

/// A two-minute file streamed as fast as the server takes it: the client sends a whole
/// flow-control window (over a minute of 8 kHz audio) before the sphinx engine has decoded much
/// of it, and the server must not mistake its own decoding delay for a client that stopped
/// sending (408). Every sentence is transcribed, to the end of the file.
@Suite("a two-minute file through sphinx", .serialized, .timeLimit(.minutes(5)))
struct LongFileTests {
  /// 18 sentences of 2.95 s, 1.076 s apart (the first 72 s: dense speech, so that the backlog
  /// in the server's first window takes the engine longer than the idle timeout), 40 s of
  /// silence, then two more sentences, the last ending 0.4 s before the file does: 120 s of
  /// 8 kHz audio, 20 sentences.
  static let sentences = 20
  static let fileMilliseconds = 120_000

  static func makeLongFile(in scratch: Scratch) throws -> String {
    func path(_ name: String) -> String { scratch.directory.appendingPathComponent(name).path }
    let sentence = samplesDirectory.appendingPathComponent("sentence-8k.wav").path
    try SoX.run([
      sentence, path("dense.wav"), "trim", "0.4", "2.95", "pad", "0", "1.076", "repeat", "17",
    ])
    try SoX.run([
      sentence, path("last.wav"), "trim", "0.4", "2.95", "pad", "0", "1.076", "repeat", "1",
    ])
    try SoX.run([
      "-n", "-r", "8000", "-c", "1", "-b", "16", path("silence.wav"), "trim", "0", "40.256",
    ])
    let file = path("two-minutes.wav")
    try SoX.run([
      path("dense.wav"), path("silence.wav"), path("last.wav"), file, "trim", "0", "120",
    ])
    return file
  }

  /// The `abs_end_ms` of each final result in `hark recognize --json` output, and its text.
  static func finals(in output: String) throws -> [(end: Int, text: String)] {
    try output.split(separator: "\n").compactMap { line in
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
      guard let result = object?["result"] as? [String: Any],
        (result["result_type"] as? String ?? "FINAL") == "FINAL"
      else { return nil }
      let end = (result["abs_end_ms"] as? NSNumber)?.intValue ?? 0
      let hypotheses = result["hypotheses"] as? [[String: Any]] ?? []
      return (end, hypotheses.first?["formatted_text"] as? String ?? "")
    }
  }

  static func check(_ result: ProcessResult) throws {
    #expect(result.status == 0, "\(result.standardError)")
    let finals = try Self.finals(in: result.standardOutput)
    #expect(finals.count == sentences, "\(finals.map(\.text))")
    #expect(finals.allSatisfy { !$0.text.isEmpty }, "\(finals.map(\.text))")
    let lastEnd = finals.last?.end ?? 0
    #expect(
      lastEnd >= fileMilliseconds - 1000 && lastEnd <= fileMilliseconds,
      "the last final ends at \(lastEnd) ms of \(fileMilliseconds)"
    )
  }

  @Test("the embedded recognizer (hark recognize FILE) transcribes it to its end")
  func embedded() async throws {
    let scratch = try Scratch()
    let path = try Self.makeLongFile(in: scratch)
    try Self.check(try await hark(["recognize", path, "--json"]))
  }

  @Test("hark serve (sphinx) transcribes it to its end for hark recognize --server")
  func server() async throws {
    let scratch = try Scratch()
    let path = try Self.makeLongFile(in: scratch)
    let server = try await HarkServeProcess.start(engine: "sphinx", extra: ["--recognizers", "1"])
    let result = try await hark([
      "recognize", path, "--json", "--plaintext", "--server", "127.0.0.1:\(server.port)",
    ])
    await server.stop()
    try Self.check(result)
  }
}
