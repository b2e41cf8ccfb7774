// What every benchmark executable needs: its own CPU time and resident set, its arguments, and
// line-at-a-time output (stdout may be a pipe, which print buffers).

import Foundation

/// User plus system CPU time of this process so far, in seconds.
public func cpuSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
}

/// The resident set, in bytes (/proc/self/statm).
public func residentBytes() -> Int {
  guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
    return 0
  }
  let fields = statm.split(separator: " ")
  guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
  return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// The value after `name` in `arguments`, if any.
public func option(_ name: String, _ arguments: [String]) -> String? {
  guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
  return arguments[index + 1]
}

/// Writes a line to stdout at once.
public func writeLine(_ line: String) {
  FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Writes a line to stderr.
public func log(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
