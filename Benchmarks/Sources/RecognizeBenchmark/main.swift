import BenchmarkSupport
import Foundation
import HarkAudio
import HarkClient
import HarkLoad
import HarkProto
import HarkRecognizer
import HarkServer
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

// The two sides of tools/bench-recognize: a recognizer with the dtmf engine, and a client that
// keeps many real-time recognitions going with the client library, as a telephony integrator
// would (each call's audio arrives every 20 ms and is handed to the library).
//
//   RecognizeBenchmark server --port 0 [--recognizers N]
//   RecognizeBenchmark client --target HOST:PORT [--sessions N] [--duration S] [--warmup S]
//                             [--connections C] [--cycle-ms MS]
//   RecognizeBenchmark load   --target HOST:PORT [--sessions N] [--duration S] [--warmup S]
//                             [--connections C] [--cycle-ms MS]
//
// `load` runs the same calls with `hark load`'s engine (HarkLoad's LoadGenerator: sessions
// paced by a timer wheel on the event loop, no application task), for a side-by-side figure.
//
// The server prints LISTENING <port> and runs until stdin reaches EOF. The client opens its
// sessions over one second, writes ESTABLISHED to stderr when every one has its 100 Continue,
// MEASURING and DONE around the measured window, then ends every session's audio, waits for
// their final statuses, and writes one JSON line to stdout.

// MARK: Server

func runServer(_ arguments: [String]) async throws {
  let port = Int(option("--port", arguments) ?? "0") ?? 0
  let recognizers = Int(option("--recognizers", arguments) ?? "5000") ?? 5000
  let server = RecognizerServer(
    configuration: .init(host: "127.0.0.1", port: port, recognizers: recognizers)
  ) { DTMFEngine() }
  let address = try await server.start()
  writeLine("LISTENING \(address.port!)")
  _ = await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
  await server.shutdown(gracePeriod: .seconds(1))
}

// MARK: Client

/// One call's audio, as a telephony integration receives it: a frame every 20 ms, pushed into
/// an `AsyncStream` the client library reads.
/// How the feed hands a call its frames: the library's writer (`--input writer`, the default:
/// frames go straight into the recognition's inbox) or an `AsyncStream` the library reads from
/// a task (`--input stream`: a task wakes per frame).
///
/// A class, so that the feed's loop calls it in place: a multi-payload enum is copied (its
/// payload retained) on every call, a cost of the benchmark's own that would be counted as the
/// library's.
final class Feed: Sendable {
  private let writer: RecognitionAudioWriter?
  private let continuation: AsyncStream<ByteBuffer>.Continuation?

  static func writer(_ writer: RecognitionAudioWriter) -> Feed {
    Feed(writer: writer, continuation: nil)
  }

  static func stream(_ continuation: AsyncStream<ByteBuffer>.Continuation) -> Feed {
    Feed(writer: nil, continuation: continuation)
  }

  private init(
    writer: RecognitionAudioWriter?,
    continuation: AsyncStream<ByteBuffer>.Continuation?
  ) {
    self.writer = writer
    self.continuation = continuation
  }

  func yield(_ frame: ByteBuffer) {
    if let writer {
      writer.yield(frame)
    } else {
      continuation?.yield(frame)
    }
  }

  func finish() {
    writer?.finish()
    continuation?.finish()
  }
}

struct Call {
  let feed: Feed
  /// Where in the looped clip this call is.
  var position: Int
}

struct Counters {
  var established = 0
  var frames = 0
  var late = 0
  var finals = 0
  var outcomes: [String: Int] = [:]
}

/// The clip every call loops: digit, then silence long enough to end the utterance — one final
/// result per `cycleMilliseconds`. Quiet noise throughout, so the endpointer has work to do.
func clipFrames(cycleMilliseconds: Int) -> [ByteBuffer] {
  var generator = DTMFGenerator(sampleRate: 8000, noiseLevel: -50, seed: 1)
  let samples = generator.generate([
    .dtmf(.five, milliseconds: 120),
    .silence(milliseconds: cycleMilliseconds - 120),
  ])
  var frames: [ByteBuffer] = []
  for start in stride(from: 0, to: samples.count, by: 160) {
    var frame = ByteBuffer()
    frame.reserveCapacity(320)
    for sample in samples[start..<min(start + 160, samples.count)] {
      frame.writeInteger(sample, endianness: .little)
    }
    frames.append(frame)
  }
  return frames
}

func runClient(_ arguments: [String]) async throws {
  let target = option("--target", arguments) ?? "127.0.0.1:50051"
  let sessions = Int(option("--sessions", arguments) ?? "1000") ?? 1000
  let duration = Double(option("--duration", arguments) ?? "10") ?? 10
  let warmup = Double(option("--warmup", arguments) ?? "2") ?? 2
  let connections = Int(option("--connections", arguments) ?? "1") ?? 1
  let cycle = Int(option("--cycle-ms", arguments) ?? "2000") ?? 2000
  let input = option("--input", arguments) ?? "writer"
  guard input == "writer" || input == "stream" else {
    log("--input: expected writer or stream, got \(input)")
    exit(64)
  }
  let parts = target.split(separator: ":")
  let client = RecognizerClient(
    host: String(parts[0]),
    port: Int(parts[1])!,
    connections: connections
  )
  let frames = clipFrames(cycleMilliseconds: cycle)
  let counters = NIOLockedValueBox(Counters())
  var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
  parameters.utteranceDetectionMode = .multiple
  parameters.resultType = .final
  let initMessage = RecognitionInitMessage(parameters: parameters)

  // A warm connection first, so the baseline memory includes it.
  _ = try await client.channel.connection()
  let rssBefore = residentBytes()

  @Sendable func recognize(_ audio: some AsyncSequence<ByteBuffer, Never> & Sendable) async {
    do {
      let outcome = try await client.recognize(initMessage, audio: audio) { recognition in
        for await event in recognition.events {
          switch event {
          case .started: counters.withLockedValue { $0.established += 1 }
          case .finalResult: counters.withLockedValue { $0.finals += 1 }
          default: break
          }
        }
        return await recognition.outcome
      }
      let name = outcome.status.map { "\($0.code)" } ?? "\(outcome.kind)"
      counters.withLockedValue { $0.outcomes[name, default: 0] += 1 }
    } catch {
      counters.withLockedValue { $0.outcomes["\(error)", default: 0] += 1 }
    }
  }

  var calls: [Call] = []
  let group = DispatchGroup()
  for index in 0..<sessions {
    group.enter()
    let position = (index * 7) % frames.count
    if input == "writer" {
      let (audio, writer) = RecognitionAudio.makeStream()
      calls.append(Call(feed: .writer(writer), position: position))
      Task {
        defer { group.leave() }
        await recognize(audio)
      }
    } else {
      let (audio, continuation) = AsyncStream.makeStream(
        of: ByteBuffer.self,
        bufferingPolicy: .unbounded
      )
      calls.append(Call(feed: .stream(continuation), position: position))
      Task {
        defer { group.leave() }
        await recognize(audio)
      }
    }
  }

  // The feed: a thread that wakes every 2 ms and hands the next frame to a tenth of the calls,
  // on a schedule computed from the start, so lateness does not accumulate.
  let stop = NIOLockedValueBox(false)
  let feedDone = DispatchSemaphore(value: 0)
  let callsBox = NIOLockedValueBox(calls)
  let slots = 10
  let feed = Thread {
    // The feeds apart from the positions, so that moving a call on does not copy its feed (and
    // retain the writer) on every frame: the benchmark's own costs stay out of the library's.
    let feeds = callsBox.withLockedValue { $0.map(\.feed) }
    var positions = callsBox.withLockedValue { $0.map(\.position) }
    let slotNanoseconds: UInt64 = 20_000_000 / UInt64(slots)
    let start = DispatchTime.now().uptimeNanoseconds
    var tick: UInt64 = 0
    while !stop.withLockedValue({ $0 }) {
      let due = start + tick * slotNanoseconds
      let now = DispatchTime.now().uptimeNanoseconds
      if due > now { usleep(UInt32((due - now) / 1000)) }
      let late = DispatchTime.now().uptimeNanoseconds > due + 20_000_000
      var sent = 0
      // Calls start one slot at a time over the first second (the ramp).
      let open = min(feeds.count, Int(tick) * feeds.count / (1000 / 2) + 1)
      var index = Int(tick % UInt64(slots))
      while index < open {
        feeds[index].yield(frames[positions[index]])
        positions[index] = (positions[index] + 1) % frames.count
        sent += 1
        index += slots
      }
      counters.withLockedValue {
        $0.frames += sent
        if late { $0.late += sent }
      }
      tick += 1
    }
    for feed in feeds { feed.finish() }
    feedDone.signal()
  }
  feed.start()

  // Every session started?
  let rampDeadline = ContinuousClock.now + .seconds(30)
  while counters.withLockedValue({ $0.established }) < sessions {
    if ContinuousClock.now > rampDeadline {
      log("only \(counters.withLockedValue { $0.established }) of \(sessions) sessions started")
      break
    }
    try await Task.sleep(for: .milliseconds(50))
  }
  try await Task.sleep(for: .milliseconds(500))
  let rssEstablished = residentBytes()
  log("ESTABLISHED")

  try await Task.sleep(for: .seconds(warmup))
  let start = counters.withLockedValue { $0 }
  let cpu0 = cpuSeconds()
  let wall0 = ContinuousClock.now
  log("MEASURING")
  try await Task.sleep(for: .seconds(duration))
  let end = counters.withLockedValue { $0 }
  let cpu1 = cpuSeconds()
  let elapsed = ContinuousClock.now - wall0
  log("DONE")

  // End every call's audio: each recognition ends with its final status.
  stop.withLockedValue { $0 = true }
  feedDone.wait()
  let drained = await withCheckedContinuation { continuation in
    DispatchQueue.global().async {
      continuation.resume(returning: group.wait(timeout: .now() + 30) == .success)
    }
  }
  let final = counters.withLockedValue { $0 }
  await client.close()

  let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
  let result: [String: any Sendable] = [
    "sessions": sessions,
    "established": end.established,
    "frames": end.frames - start.frames,
    "late_frames": end.late - start.late,
    "finals": end.finals - start.finals,
    "expected_finals": Double(sessions) * seconds * 1000 / Double(cycle),
    "seconds": seconds,
    "cpu_seconds": cpu1 - cpu0,
    "rss_before": rssBefore,
    "rss_established": rssEstablished,
    "outcomes": final.outcomes,
    "all_ended": drained,
  ]
  let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
  writeLine(String(decoding: json, as: UTF8.self))
  let ok = drained && final.outcomes == ["200": sessions]
  if !ok { exit(1) }
}

// MARK: hark load's engine

func runLoad(_ arguments: [String]) async throws {
  let target = option("--target", arguments) ?? "127.0.0.1:50051"
  let sessions = Int(option("--sessions", arguments) ?? "1000") ?? 1000
  let duration = Double(option("--duration", arguments) ?? "10") ?? 10
  let warmup = Double(option("--warmup", arguments) ?? "2") ?? 2
  let connections = Int(option("--connections", arguments) ?? "1") ?? 1
  let cycle = Int(option("--cycle-ms", arguments) ?? "2000") ?? 2000
  let parts = target.split(separator: ":")
  // The library client's looped clip, long enough that no session ends during the run.
  let cycleFrames = clipFrames(cycleMilliseconds: cycle)
  var bytes = ByteBuffer()
  let cycles = Int(((warmup + duration + 10) * 1000 / Double(cycle)).rounded(.up))
  for _ in 0..<cycles {
    for var frame in cycleFrames { bytes.writeBuffer(&frame) }
  }
  let clip = AudioClip(format: .linear16(sampleRate: 8000), bytes: bytes)
  var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
  parameters.utteranceDetectionMode = .multiple
  parameters.resultType = .final
  let initMessage = RecognitionInitMessage(parameters: parameters)
  let rampUp = 1.0
  let configuration = LoadConfiguration(
    host: String(parts[0]),
    port: Int(parts[1])!,
    arrivals: .closed(sessions: sessions),
    duration: warmup + duration + 1,
    rampUp: rampUp,
    connections: connections,
    clips: [(name: "dtmf-cycle", clip: clip)],
    initMessage: { _ in initMessage },
    drainTimeout: 0
  )
  struct Mark {
    var cpu: Double
    var messages: Int
    var at: ContinuousClock.Instant
  }
  let marks = NIOLockedValueBox<[String: Mark]>([:])
  let rssBefore = residentBytes()
  let rssEstablished = NIOLockedValueBox(0)
  let report = try await LoadGenerator(configuration: configuration).run { progress in
    let now = Mark(cpu: cpuSeconds(), messages: progress.totals.audioMessages, at: .now)
    marks.withLockedValue { marks in
      if progress.elapsed >= rampUp + 0.5 && marks["ESTABLISHED"] == nil {
        marks["ESTABLISHED"] = now
        rssEstablished.withLockedValue { $0 = residentBytes() }
        log("ESTABLISHED")
      }
      if progress.elapsed >= rampUp + warmup && marks["MEASURING"] == nil {
        marks["MEASURING"] = now
        log("MEASURING")
      }
      if progress.elapsed >= rampUp + warmup + duration && marks["DONE"] == nil {
        marks["DONE"] = now
        log("DONE")
      }
    }
  }
  let (start, end) = marks.withLockedValue { ($0["MEASURING"], $0["DONE"]) }
  guard let start, let end else {
    log("the load ended before its measured window")
    exit(1)
  }
  let elapsed = end.at - start.at
  let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
  let counters = report.counters
  let result: [String: any Sendable] = [
    "sessions": sessions,
    "frames": end.messages - start.messages,
    "late_frames": counters.lateFrames,
    "seconds": seconds,
    "cpu_seconds": end.cpu - start.cpu,
    "rss_before": rssBefore,
    "rss_established": rssEstablished.withLockedValue { $0 },
    "sessions_failed": counters.sessionsFailed,
  ]
  let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
  writeLine(String(decoding: json, as: UTF8.self))
  if counters.sessionsFailed > 0 { exit(1) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "server": try await runServer(arguments)
case "client": try await runClient(arguments)
case "load": try await runLoad(arguments)
default:
  log("usage: RecognizeBenchmark server --port P | client --target HOST:PORT [--sessions N] ...")
  exit(64)
}
