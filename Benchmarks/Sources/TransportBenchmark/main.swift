import BenchmarkSupport
import Foundation
import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore
import NIOPosix

// The Swift side of tools/bench-transport: an Echo server and a load client built on Hark's
// on-loop API, with the CLI and output of tools/interop/bench_server.py and bench_client.py.
//
//   TransportBenchmark server --port 0
//   TransportBenchmark client --target HOST:PORT --scenario single|concurrent --duration S
//                             [--window W] [--streams N] [--rate R] [--warmup S]
//
// The client writes MEASURING and DONE to stderr when its measured window starts and ends, and
// one JSON line to stdout.

// MARK: Server

func runServer(_ arguments: [String]) async throws {
  let port = Int(option("--port", arguments) ?? "0") ?? 0
  let server = GRPCServer(
    configuration: .init(host: "127.0.0.1", port: port),
    methods: [EchoService.loopMethod]
  )
  let address = try await server.start()
  writeLine("LISTENING \(address.port!)")
  // Until stdin reaches EOF.
  _ = try await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
  await server.shutdown(gracePeriod: .milliseconds(500))
}

// MARK: Client

/// Counters of one client run, touched only on the connection's event loop.
final class Counters {
  var sent = 0
  var received = 0
  var late = 0
  var errors = 0
  /// Set when the client cancels its own calls at the end: those are not errors.
  var stopping = false
}

final class PipelinedEcho: GRPCClientStreamHandler {
  let counters: Counters
  let request: EchoRequest
  var stream: GRPCClientStream?

  init(counters: Counters, request: EchoRequest) {
    self.counters = counters
    self.request = request
  }

  func receive(message: ByteBuffer) {
    counters.received += 1
    guard let stream, stream.send(request) else { return }
    counters.sent += 1
  }

  func finished(status: GRPCStatus, metadata: GRPCMetadata) {
    if status.code != .ok && !counters.stopping { counters.errors += 1 }
  }
}

final class PacedEcho: GRPCClientStreamHandler {
  let counters: Counters

  init(counters: Counters) {
    self.counters = counters
  }

  func receive(message: ByteBuffer) {
    counters.received += 1
  }

  func finished(status: GRPCStatus, metadata: GRPCMetadata) {
    if status.code != .ok && !counters.stopping { counters.errors += 1 }
  }
}

struct Result: Encodable {
  enum CodingKeys: String, CodingKey {
    case scenario, messages, sent, seconds, cpu_seconds, errors, target_rate, late
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(scenario, forKey: .scenario)
    try container.encode(messages, forKey: .messages)
    try container.encode(sent, forKey: .sent)
    try container.encode(seconds, forKey: .seconds)
    try container.encode(cpu_seconds, forKey: .cpu_seconds)
    try container.encode(errors, forKey: .errors)
    // The contract has target_rate: null for the single scenario.
    try container.encode(target_rate, forKey: .target_rate)
    try container.encode(late, forKey: .late)
  }

  var scenario: String
  var messages: Int
  var sent: Int
  var seconds: Double
  var cpu_seconds: Double
  var errors: Int
  var target_rate: Double?
  var late: Int
}

func runClient(_ arguments: [String]) async throws {
  let target = option("--target", arguments) ?? "127.0.0.1:50051"
  let scenario = option("--scenario", arguments) ?? "single"
  let duration = Double(option("--duration", arguments) ?? "10") ?? 10
  let window = Int(option("--window", arguments) ?? "100") ?? 100
  let streams = Int(option("--streams", arguments) ?? "1000") ?? 1000
  let rate = Double(option("--rate", arguments) ?? "50") ?? 50
  let warmup = Double(option("--warmup", arguments) ?? (scenario == "single" ? "1" : "2")) ?? 1
  let parts = target.split(separator: ":")
  let connection = try await GRPCClientConnection.connect(
    host: String(parts[0]),
    port: Int(parts[1])!
  )
  let eventLoop = connection.eventLoop
  let request = EchoRequest(payload: ByteBuffer(repeating: 0x5A, count: 320))

  // Loop-bound state is made on its loop. A stream holds its handler.
  let (counters, streamsBox) = try await eventLoop.submit {
    (
      NIOLoopBound(Counters(), eventLoop: eventLoop),
      NIOLoopBoundBox([GRPCClientStream](), eventLoop: eventLoop)
    )
  }.get()

  try await eventLoop.submit {
    switch scenario {
    case "single":
      let handler = PipelinedEcho(counters: counters.value, request: request)
      let stream = connection.makeStream(path: EchoService.chatPath, handler: handler)
      handler.stream = stream
      for _ in 0..<window where stream.send(request) { counters.value.sent += 1 }
      streamsBox.value.append(stream)
    default:
      for _ in 0..<streams {
        let stream = connection.makeStream(
          path: EchoService.chatPath,
          handler: PacedEcho(counters: counters.value)
        )
        streamsBox.value.append(stream)
      }
      // One schedule drives every stream: each 1/rate period is cut into slots, and each slot
      // sends one message on its share of the streams, at a deadline computed from the start,
      // so lateness does not accumulate.
      let period = TimeAmount.nanoseconds(Int64(1e9 / rate))
      let slots = 10
      let slot = TimeAmount.nanoseconds(period.nanoseconds / Int64(slots))
      let start = NIODeadline.now() + .milliseconds(10)
      func tick(_ index: Int64) {
        let deadline = start + .nanoseconds(slot.nanoseconds * index)
        eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
          let lateness = NIODeadline.now() - deadline
          let slotIndex = Int(index % Int64(slots))
          let all = streamsBox.value
          var position = slotIndex
          while position < all.count {
            if all[position].send(request) {
              counters.value.sent += 1
              if lateness > .milliseconds(20) { counters.value.late += 1 }
            }
            position += slots
          }
          tick(index + 1)
        }
      }
      tick(0)
    }
  }.get()

  try await Task.sleep(nanoseconds: UInt64(warmup * 1e9))
  let (sent0, received0, late0) = try await eventLoop.submit {
    (counters.value.sent, counters.value.received, counters.value.late)
  }.get()
  let cpu0 = cpuSeconds()
  let wall0 = ContinuousClock.now
  log("MEASURING")
  try await Task.sleep(nanoseconds: UInt64(duration * 1e9))
  let (sent1, received1, late1, errors) = try await eventLoop.submit {
    (counters.value.sent, counters.value.received, counters.value.late, counters.value.errors)
  }.get()
  let cpu1 = cpuSeconds()
  let elapsed = ContinuousClock.now - wall0
  let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
  log("DONE")
  let result = Result(
    scenario: scenario,
    messages: received1 - received0,
    sent: sent1 - sent0,
    seconds: seconds,
    cpu_seconds: cpu1 - cpu0,
    errors: errors,
    target_rate: scenario == "single" ? nil : Double(streams) * rate,
    late: late1 - late0
  )
  writeLine(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
  try await eventLoop.submit {
    counters.value.stopping = true
    for stream in streamsBox.value { stream.cancel() }
  }.get()
  await connection.close()
  if errors > 0 || result.messages == 0 { exit(1) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "server": try await runServer(arguments)
case "client": try await runClient(arguments)
default:
  log(
    "usage: TransportBenchmark server --port P | client --target HOST:PORT --scenario single|concurrent ..."
  )
  exit(64)
}
