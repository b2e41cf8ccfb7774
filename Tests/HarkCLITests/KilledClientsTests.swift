import Foundation
import HarkAudio
import HarkTestSupport
import Testing

/// Clients that die mid-stream, many times over: the server gives back what they held.
@Suite("Killed clients", .timeLimit(.minutes(2)))
struct KilledClientsTests {
  static func openDescriptors(of pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
  }

  @Test("200 clients killed (-9) mid-stream: RSS, descriptors and recognizers come back")
  func killedMidStream() async throws {
    let server = try await HarkServeProcess.start(
      extra: ["--recognizers", "20", "--statistics-interval", "0.2"]
    )
    let pid = server.process.processIdentifier
    var generator = DTMFGenerator(sampleRate: 8000, seed: 5)
    let audio = encoded(generator.generate([.silence(milliseconds: 400)]), format: .ulaw)
    // A warm-up round, so that the baseline has the pool's engines and buffers.
    func round() async throws {
      var clients: [HarkProcess] = []
      for _ in 0..<20 {
        let client = try HarkProcess([
          "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format",
          "ulaw", "--verbose", "--retries", "0",
        ])
        client.write(audio)
        clients.append(client)
      }
      // Each is streaming (its 100 came) when it is killed.
      for client in clients { try await client.waitForStandardError(containing: "← status 100") }
      for client in clients { client.signal(SIGKILL) }
      for client in clients { _ = try await client.wait() }
    }
    func idle() async -> Bool {
      let deadline = ContinuousClock.now + .seconds(20)
      while ContinuousClock.now < deadline {
        let last = server.standardError.split(separator: "\n").last { $0.contains("Statistics") }
        if let last, last.contains("recognizers_busy=0"), last.contains("connections=0"),
          last.contains("active=0")
        {
          return true
        }
        try? await Task.sleep(for: .milliseconds(100))
      }
      return false
    }
    try await round()
    #expect(await idle())
    let rss = GrammarMemoryTests.residentKiB(of: pid)
    let descriptors = Self.openDescriptors(of: pid)
    for _ in 0..<10 { try await round() }
    #expect(await idle(), "\(server.standardError.suffix(600))")
    #expect(Self.openDescriptors(of: pid) == descriptors)
    // 200 calls' worth of buffers would be megabytes; allocator noise stays far below.
    #expect(GrammarMemoryTests.residentKiB(of: pid) - rss < 4096, "RSS \(rss) KiB before")
    // Every recognizer is free: 20 recognitions at once, none refused.
    let results = try await withThrowingTaskGroup(of: Int32.self) { group in
      for _ in 0..<20 {
        group.addTask {
          let client = try HarkProcess([
            "recognize", "-", "--plaintext", "--server", "127.0.0.1:\(server.port)", "--format",
            "ulaw", "--retries", "0",
          ])
          client.write(encoded(keyPresses("5", sampleRate: 8000), format: .ulaw))
          client.closeInput()
          return try await client.wait()
        }
      }
      var statuses: [Int32] = []
      for try await status in group { statuses.append(status) }
      return statuses
    }
    #expect(results.allSatisfy { $0 == 0 }, "\(results)")
    await server.stop()
  }
}
