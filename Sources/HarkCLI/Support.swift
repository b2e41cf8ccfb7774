public import ArgumentParser
@preconcurrency import Dispatch
import Foundation
import HarkCLIKit
public import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Logs go to stderr, so stdout carries only results.
func bootstrapLogging(level: Logger.Level) {
  LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = level
    return handler
  }
}

/// SIGTERM and SIGINT, caught from now on (so that one arriving before anyone waits is not the
/// default action, which would kill the process): wait for the first with ``first()``.
struct TerminationSignals {
  private let names: AsyncStream<String>

  init() async {
    names = await signalStream([(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")])
  }

  /// Waits for the first signal and returns its name.
  func first() async -> String {
    for await name in names { return name }
    return "none"
  }
}

/// A stream of the names of `signals` as they arrive; their default actions are turned off.
func signalStream(_ signals: [(Int32, String)]) async -> AsyncStream<String> {
  AsyncStream { continuation in
    let sources = signals.map { number, name in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { continuation.yield(name) }
      source.resume()
      return source
    }
    // The sources live as long as the stream.
    continuation.onTermination = { _ in
      for source in sources { source.cancel() }
    }
  }
}

/// Writes a line to stderr.
func printError(_ line: String) {
  var stream = StandardError()
  print(line, to: &stream)
}

struct StandardError: TextOutputStream {
  mutating func write(_ string: String) {
    var string = string
    string.withUTF8 { bytes in
      _ = Glibc.write(2, bytes.baseAddress, bytes.count)
    }
  }
}

/// The text of the file at `path` (a wordset, a secret); `what` names it in the error.
func readTextFile(_ path: String, what: String) throws(RecognizeOptions.Problem) -> String {
  guard let file = fopen(path, "rb") else {
    throw RecognizeOptions.Problem(
      "cannot read the \(what) \(path): \(String(cString: strerror(errno)))"
    )
  }
  defer { fclose(file) }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 65536)
  while true {
    let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
    bytes += chunk[0..<count]
    if count < chunk.count { break }
  }
  return String(decoding: bytes, as: UTF8.self)
}

/// Event loops: `--threads` of `hark serve` and `hark load`.
struct EventLoopThreads {
  /// The CPUs this process may run on: its affinity mask (`taskset`, cpusets), within what
  /// SwiftNIO counts (which includes a cgroup's CPU quota). At least 1.
  static var availableCPUs: Int {
    // Glibc's sched_getaffinity is not visible from Swift; the kernel states the same mask.
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
    {
      let count = line.dropFirst("Cpus_allowed:".count).reduce(0) { count, character in
        count + (character.hexDigitValue?.nonzeroBitCount ?? 0)
      }
      if count > 0 { return min(count, System.coreCount) }
    }
    return max(System.coreCount, 1)
  }

  static let help = ArgumentHelp(
    "Event loops (threads) carrying the connections.",
    discussion: "Default: one per CPU this process may run on, so `taskset -c 0 hark …` runs one.",
    valueName: "count"
  )

  /// Checks a `--threads` value.
  static func validate(_ threads: Int?) throws {
    if let threads, !(1...1024).contains(threads) {
      throw ValidationError("--threads must be between 1 and 1024")
    }
  }

  /// A group of `threads` event loops (the default when nil). Like SwiftNIO's singleton group,
  /// it lives as long as the process: work that ends after the command (a connection's close,
  /// a timer cancelled late) still finds its loop.
  static func makeGroup(_ threads: Int?) -> MultiThreadedEventLoopGroup {
    let count = threads ?? availableCPUs
    // SwiftNIO's shared group when it has that many loops, so that nothing else the process
    // does starts a second one.
    if count == NIOSingletons.groupLoopCountSuggestion { return .singleton }
    return MultiThreadedEventLoopGroup(numberOfThreads: count)
  }
}
