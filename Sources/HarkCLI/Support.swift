public import ArgumentParser
@preconcurrency import Dispatch
import HarkCLIKit
public import Logging

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
