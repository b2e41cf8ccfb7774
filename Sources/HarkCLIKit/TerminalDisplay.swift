import NIOConcurrencyHelpers

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The status line `hark recognize` keeps at the bottom of a terminal: a progress bar of the
/// audio streamed, the real-time factor, and the partial result so far. A pure value: its
/// text for a terminal width is a function of its fields.
public struct ProgressLine: Sendable, Hashable {
  /// Seconds of audio handed to the recognizer.
  public var sentSeconds: Double
  /// Seconds of audio in all, if known (a file; not a stream).
  public var totalSeconds: Double?
  /// Wall-clock seconds since streaming began.
  public var elapsedSeconds: Double
  /// The latest partial result of the current utterance.
  public var partial: String

  public init(sentSeconds: Double, totalSeconds: Double?, elapsedSeconds: Double, partial: String) {
    self.sentSeconds = sentSeconds
    self.totalSeconds = totalSeconds
    self.elapsedSeconds = elapsedSeconds
    self.partial = partial
  }

  /// Audio seconds streamed per wall-clock second.
  public var realTimeFactor: Double? {
    elapsedSeconds > 0.05 ? sentSeconds / elapsedSeconds : nil
  }

  /// The line for a terminal `width` columns wide (never wider).
  public func render(width: Int) -> String {
    var line: String
    if let totalSeconds, totalSeconds > 0 {
      let barWidth = 20
      let fraction = min(max(sentSeconds / totalSeconds, 0), 1)
      let filled = Int((fraction * Double(barWidth)).rounded(.down))
      line =
        "[" + String(repeating: "#", count: filled)
        + String(repeating: "-", count: barWidth - filled)
        + "] " + Self.seconds(sentSeconds) + "/" + Self.seconds(totalSeconds) + " s"
    } else {
      line = Self.seconds(sentSeconds) + " s"
    }
    if let factor = realTimeFactor { line += "  " + Self.factor(factor) + "× real time" }
    if !partial.isEmpty {
      line += "  │ "
      let room = width - 1 - line.count
      if partial.count <= room {
        line += partial
      } else if room > 1 {
        // The end of the partial is what changes: keep it.
        line += "…" + partial.suffix(room - 1)
      }
    }
    return String(line.prefix(max(width - 1, 0)))
  }

  static func seconds(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
  }

  static func factor(_ value: Double) -> String {
    value >= 10 ? "\(Int(value.rounded()))" : seconds(value)
  }
}

/// Where `hark recognize` writes: results to stdout, everything else to stderr, and — when
/// stderr is a terminal — the status line, cleared before any other output and drawn again
/// after it. Safe to call from any thread.
public final class TerminalDisplay: Sendable {
  /// Whether the status line is shown (stderr is a terminal).
  public let showsProgress: Bool
  private let state = NIOLockedValueBox(State())

  struct State {
    var progress: ProgressLine?
    var drawn = false
    var lastDraw: UInt64 = 0
  }

  /// A display; `progress` nil means "if stderr is a terminal".
  public init(progress: Bool? = nil) {
    showsProgress = progress ?? (isatty(2) == 1)
  }

  /// A line of results on stdout.
  public func result(_ line: String) {
    state.withLockedValue { state in
      clear(&state)
      write(1, line + "\n")
      redraw(&state)
    }
  }

  /// A line of diagnostics on stderr.
  public func note(_ line: String) {
    state.withLockedValue { state in
      clear(&state)
      write(2, line + "\n")
      redraw(&state)
    }
  }

  /// Updates the status line (drawn at most 20 times a second unless `force`).
  public func update(_ progress: ProgressLine, force: Bool = false) {
    guard showsProgress else { return }
    state.withLockedValue { state in
      state.progress = progress
      let now = monotonicNanoseconds()
      guard force || now - state.lastDraw >= 50_000_000 else { return }
      state.lastDraw = now
      redraw(&state)
    }
  }

  /// Removes the status line for good.
  public func finish() {
    state.withLockedValue { state in
      clear(&state)
      state.progress = nil
    }
  }

  private func clear(_ state: inout State) {
    guard state.drawn else { return }
    write(2, "\r\u{1B}[2K")
    state.drawn = false
  }

  private func redraw(_ state: inout State) {
    guard showsProgress, let progress = state.progress else { return }
    write(2, "\r\u{1B}[2K" + progress.render(width: terminalWidth()))
    state.drawn = true
  }

  private func write(_ descriptor: Int32, _ text: String) {
    var text = text
    text.withUTF8 { bytes in
      var offset = 0
      while offset < bytes.count {
        let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 && errno == EINTR { continue }
        if written <= 0 { return }
        offset += written
      }
    }
  }

  private func terminalWidth() -> Int {
    var size = winsize()
    if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 10 { return Int(size.ws_col) }
    return 80
  }
}

func monotonicNanoseconds() -> UInt64 {
  var time = timespec()
  clock_gettime(CLOCK_MONOTONIC, &time)
  return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

#if canImport(Glibc)
  private let systemWrite = Glibc.write
#elseif canImport(Musl)
  private let systemWrite = Musl.write
#elseif canImport(Darwin)
  private let systemWrite = Darwin.write
#endif
