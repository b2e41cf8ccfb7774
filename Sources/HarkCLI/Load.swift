import ArgumentParser
import Foundation
import HarkAudio
import HarkCLIKit
import HarkClient
import HarkGRPC
import HarkLoad
import HarkProto
import HarkRecognizer
import NIOCore

/// `hark load`: many real-time recognitions against a server, measured.
struct Load: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Simulate many real-time recognition sessions against a server and measure it.",
    subcommands: [Run.self, Merge.self],
    defaultSubcommand: Run.self
  )

  struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "run",
      abstract: "Run a load (the default: `hark load --server …` is `hark load run --server …`).",
      discussion: """
        Closed loop (--sessions N) keeps N sessions streaming, replacing each that ends; open \
        loop (--rate R) starts R sessions a second, at most --max-sessions at once. Each \
        session streams the next --audio file in 20 ms frames, paced at real time (or \
        --speed X), then half-closes and waits for its final status. One ring of 1 ms ticks \
        per event loop paces every frame; each frame's lateness is measured, and the report \
        warns when the generator itself fell behind (frame lateness p99 over 20 ms).

        Without --audio, each session streams 4 s of synthesized key presses (DTMF) at 8 kHz, \
        which `hark serve --engine dtmf` recognizes.

        Credentials are those of `hark recognize` (--token, --token-file, --client-id with \
        --client-secret or --client-secret-file; or HARK_TOKEN, HARK_CLIENT_ID and \
        HARK_CLIENT_SECRET in the environment). Every session of the run shares one token \
        provider: an OAuth2 token is fetched once before the load starts and again only ahead \
        of its expiry; each session sends the token current when it starts.

        Exit codes: 0 every session ended without a transport error and every --fail-on \
        threshold held; 1 a --fail-on threshold was exceeded; 2 sessions failed for transport \
        errors; 64 bad usage.
        """
    )

    @Option(help: "The server, HOST:PORT, over TLS (--plaintext for h2c).")
    var server: HostPort

    @OptionGroup(title: "Connection")
    var connection: ConnectionOptionGroup

    @Option(help: "Closed loop: sessions kept streaming at once.")
    var sessions: Int?

    @Option(help: "Open loop: new sessions a second.")
    var rate: Double?

    @Option(help: "Open loop: the most sessions at once (default: twice what the rate needs).")
    var maxSessions: Int?

    @Option(help: "Seconds of load after the ramp-up.")
    var duration: Double = 60

    @Option(help: "Seconds over which the sessions start (closed) or the rate rises (open).")
    var rampUp: Double = 0

    @Option(
      help:
        "Seconds sessions in flight may go on after the load before they are cancelled (default: the longest audio + 10 s)."
    )
    var drainTimeout: Double?

    @Option(
      help: ArgumentHelp(
        "How long before a session the server refused (409, 429) is replaced.",
        valueName: "duration"
      )
    )
    var refusedBackoff: DurationArgument = .seconds(1)

    @Option(
      help: """
        Retries of a session refused before its 100 (409, 429, 503, 512, UNAVAILABLE), after \
        the server's pushback or a jittered backoff; retried sessions are counted apart.
        """
    )
    var retries: Int = 0

    @Flag(
      help: """
        Resume a session's stream that fails mid-call on a new one (as hark recognize \
        --resume); resumed streams are counted.
        """
    )
    var resume = false

    @Option(help: "HTTP/2 connections (default: one per 1,000 sessions, 1…16).")
    var connections: Int?

    @Option(help: EventLoopThreads.help)
    var threads: Int?

    @Option(help: "An audio file; repeat for several, each session takes the next.")
    var audio: [String] = []

    @Option(help: "How to read the audio files: wav, l16, ulaw or alaw (default: by extension).")
    var format: AudioClip.FileFormat?

    @Option(help: "The sample rate of raw audio files: 8000 or 16000.")
    var sampleRate: Int?

    @Flag(help: "Pace the audio at real time (the default).")
    var realtime = false

    @Option(help: "Pace the audio at this multiple of real time.")
    var speed: Double?

    @OptionGroup(title: "Recognition")
    var recognition: RecognitionOptionGroup

    @OptionGroup(title: "Credentials")
    var credentials: CredentialOptionGroup

    @Option(help: "Write the report as JSON (mergeable) to this file.")
    var json: String?

    @Option(help: "Write the report as a self-contained HTML page to this file.")
    var html: String?

    @Option(help: "Seeds the sessions' start phases.")
    var seed: UInt64 = 1

    @Option(help: "Run shard I of N of the planned load, e.g. 2/4.")
    var shard: Shard = Shard(index: 1, count: 1)

    @Option(
      help:
        "Fail (exit 1) when a threshold is exceeded, e.g. p99-final=200ms,failed=0 (repeatable)."
    )
    var failOn: [String] = []

    @Flag(help: "No live line on stderr.")
    var quiet = false

    func validate() throws {
      try EventLoopThreads.validate(threads)
      switch (sessions, rate) {
      case (nil, nil):
        throw ValidationError("give --sessions N (closed loop) or --rate R (open loop)")
      case (_?, _?): throw ValidationError("--sessions and --rate exclude each other")
      default: break
      }
      if let sessions, sessions < 1 { throw ValidationError("--sessions must be at least 1") }
      if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
      if maxSessions != nil && rate == nil {
        throw ValidationError("--max-sessions goes with --rate")
      }
      if let maxSessions, maxSessions < 1 {
        throw ValidationError("--max-sessions must be at least 1")
      }
      if !(duration > 0) { throw ValidationError("--duration must be positive") }
      if !(rampUp >= 0) { throw ValidationError("--ramp-up must not be negative") }
      if let drainTimeout, !(drainTimeout >= 0) {
        throw ValidationError("--drain-timeout must not be negative")
      }
      if !(0...100).contains(retries) {
        throw ValidationError("--retries must be from 0 to 100, not \(retries)")
      }
      if let connections, connections < 1 {
        throw ValidationError("--connections must be at least 1")
      }
      if realtime && speed != nil {
        throw ValidationError("--realtime and --speed exclude each other")
      }
      if let speed, !(speed > 0) { throw ValidationError("--speed must be positive") }
      if let sampleRate, sampleRate != 8000 && sampleRate != 16000 {
        throw ValidationError("--sample-rate must be 8000 or 16000")
      }
      do {
        _ = try LoadThreshold.parse(failOn)
      } catch {
        throw ValidationError("\(error)")
      }
    }

    func run() async throws {
      let options = try recognition.options()
      let thresholds = try LoadThreshold.parse(failOn)
      let tokenProvider = try credentials.tokenProvider(caFile: connection.cacert)
      do {
        try await load(options: options, thresholds: thresholds, tokenProvider: tokenProvider)
      } catch {
        await tokenProvider?.close()
        throw error
      }
      await tokenProvider?.close()
    }

    private func load(
      options: RecognizeOptions,
      thresholds: [LoadThreshold],
      tokenProvider: (any TokenProvider)?
    ) async throws {
      var clips: [(name: String, clip: AudioClip)] = []
      do {
        for path in audio {
          clips.append(
            (
              path,
              try AudioClip.read(
                path: path,
                format: format ?? .guess(path: path),
                sampleRate: sampleRate
              )
            )
          )
        }
      } catch {
        printError("hark: \(error)")
        throw ExitCode(2)
      }
      if clips.isEmpty { clips = [("synthesized DTMF 1234", Self.defaultClip())] }
      let speed = self.speed ?? 1
      let longest = clips.map(\.clip.duration).max() ?? 1
      let arrivals: LoadConfiguration.Arrivals =
        if let sessions {
          .closed(sessions: sessions)
        } else {
          .open(
            rate: rate!,
            maxSessions: maxSessions
              ?? max(Int((rate! * (longest / speed + 2) * 2).rounded(.up)), 1)
          )
        }
      let configuration = LoadConfiguration(
        host: server.host,
        port: server.port,
        client: connection.clientConfiguration(),
        arrivals: arrivals,
        duration: duration,
        rampUp: rampUp,
        connections: connections,
        clips: clips,
        speed: speed,
        initMessage: { format in options.initMessage(format: format) },
        tokenProvider: tokenProvider,
        startTimersAfterMilliseconds: options.startTimersAfterMs,
        endSilenceMilliseconds: options.utteranceEndSilenceMs.flatMap { $0 > 0 ? $0 : nil }
          ?? RecognitionConfiguration.defaultUtteranceEndSilenceMs,
        seed: seed,
        shard: (shard.index, shard.count),
        drainTimeout: drainTimeout,
        refusedBackoff: Double(refusedBackoff.nanoseconds) / 1e9,
        retryPolicy: .retries(retries),
        resumePolicy: resume ? ResumePolicy() : nil
      )
      let startedAt = ISO8601DateFormatter().string(from: Date())
      let quiet = self.quiet
      if !quiet {
        let rampUpText = rampUp > 0 ? "\(rampUp) s ramp-up + " : ""
        printError(
          "hark load: \(Self.describe(configuration.shardArrivals)) against \(server), "
            + "\(configuration.connections) connection(s), \(rampUpText)\(duration) s"
        )
      }
      var report: LoadReport
      do {
        let group = EventLoopThreads.makeGroup(threads)
        report = try await LoadGenerator(configuration: configuration, group: group).run {
          progress in
          guard !quiet else { return }
          printError(
            LoadLiveLine.render(
              elapsed: progress.elapsed,
              active: progress.active,
              totals: progress.totals,
              lastSecond: progress.lastSecond,
              handshakeSoFar: progress.handshake,
              finalSoFar: progress.final
            )
          )
        }
      } catch {
        if error is GRPCConnectError || error is TokenError {
          printError("hark: \(error)")
        } else {
          printError("hark: cannot run the load against \(server): \(error)")
        }
        throw ExitCode(2)
      }
      report.parameters.startedAt = startedAt
      report.parameters.version = HarkVersion.current
      try finish(report, json: json, html: html, thresholds: thresholds)
    }

    static func describe(_ arrivals: LoadConfiguration.Arrivals) -> String {
      switch arrivals {
      case .closed(let sessions): "\(sessions) sessions"
      case .open(let rate, let maxSessions): "\(rate) sessions/s (at most \(maxSessions) at once)"
      }
    }

    /// 4 s of key presses 1 2 3 4 (80 ms tones, 300 ms apart) between silences, at 8 kHz.
    static func defaultClip() -> AudioClip {
      var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -60, seed: 1)
      let samples = generator.generate(
        [.silence(milliseconds: 500)]
          + DTMFGenerator.segments(
            DTMFSymbol.symbols("1234")!,
            toneMilliseconds: 80,
            gapMilliseconds: 220
          )
          + [.silence(milliseconds: 2300)]
      )
      var bytes = ByteBuffer()
      for sample in samples { bytes.writeInteger(sample, endianness: .little) }
      return AudioClip(format: .linear16(sampleRate: 8000), bytes: bytes)
    }
  }

  struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "merge",
      abstract: "Merge the JSON reports of shards into one report (exact percentiles).",
      discussion: """
        Exit codes: 0 merged, and no session failed for a transport error and every --fail-on \
        threshold held; 1 a threshold was exceeded; 2 a transport error was counted or a report \
        cannot be read; 64 bad usage.
        """
    )

    @Argument(help: "The JSON reports of `hark load --json`.")
    var reports: [String]

    @Option(help: "Write the merged report as JSON to this file.")
    var json: String?

    @Option(help: "Write the merged report as a self-contained HTML page to this file.")
    var html: String?

    @Option(help: "Fail (exit 1) when a threshold is exceeded, e.g. p99-final=200ms (repeatable).")
    var failOn: [String] = []

    func validate() throws {
      guard !reports.isEmpty else { throw ValidationError("give the reports to merge") }
      do {
        _ = try LoadThreshold.parse(failOn)
      } catch {
        throw ValidationError("\(error)")
      }
    }

    func run() async throws {
      let thresholds = try LoadThreshold.parse(failOn)
      var loaded: [LoadReport] = []
      do {
        for path in reports {
          guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadReportError("cannot read \(path)")
          }
          do {
            loaded.append(try LoadReport(jsonText: String(decoding: data, as: UTF8.self)))
          } catch {
            throw LoadReportError("\(path): \(error)")
          }
        }
        let merged = try LoadReport.merged(loaded)
        try finish(merged, json: json, html: html, thresholds: thresholds)
      } catch let error as LoadReportError {
        printError("hark: \(error)")
        throw ExitCode(2)
      }
    }
  }

  struct Shard: ExpressibleByArgument, Sendable {
    var index: Int
    var count: Int

    init(index: Int, count: Int) {
      self.index = index
      self.count = count
    }

    init?(argument: String) {
      let parts = argument.split(separator: "/")
      guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1,
        (1...count).contains(index)
      else { return nil }
      self.init(index: index, count: count)
    }

    var defaultValueDescription: String { "\(index)/\(count)" }
  }
}

/// Writes the summary and the reports asked for; ends with the report's exit status.
private func finish(
  _ report: LoadReport,
  json: String?,
  html: String?,
  thresholds: [LoadThreshold]
) throws {
  print(report.summaryTable())
  do {
    if let json { try Data(report.jsonText().utf8).write(to: URL(fileURLWithPath: json)) }
    if let html { try Data(report.html().utf8).write(to: URL(fileURLWithPath: html)) }
  } catch {
    printError("hark: cannot write the report: \(error.localizedDescription)")
    throw ExitCode(2)
  }
  for violation in thresholds.flatMap({ $0.evaluate(report) }) {
    printError("hark: --fail-on: \(violation)")
  }
  let status = report.exitStatus(thresholds: thresholds)
  if status != 0 { throw ExitCode(status) }
}
