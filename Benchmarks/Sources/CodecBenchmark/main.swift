import CHarkProtoOracle
import Foundation
import HarkProto
import NIOCore

// Hark's codec against libprotobuf-c on the messages of a recognition, in one process: ns per
// encode and per decode. Hark encodes into preallocated memory (and, in a second column, into a
// reused ByteBuffer) and decodes from a ByteBuffer (its audio is then a slice, not a copy);
// libprotobuf-c packs into a preallocated array and unpacks (and frees) with its default
// allocator. Each figure is the median of 11 rounds of a loop sized to take about 40 ms, the
// loops of a message taking turns. Python protobuf (upb) is timed by tools/bench_codec_upb.py on
// the bytes `--write-messages` writes, and its figures are added to the table with `--upb`;
// tools/bench-codec runs all three and documents the columns.

// MARK: The messages

func audioRequest(bytes: Int) -> RecognitionRequest {
  .audio(ByteBuffer(bytes: (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
}

func fullInit() -> RecognitionRequest {
  var parameters = RecognitionParameters(language: "en-US", audioFormat: .pcm(sampleRateHz: 8000))
  parameters.topic = "GEN"
  parameters.utteranceDetectionMode = .multiple
  parameters.resultType = .partial
  var flags = RecognitionFlags()
  flags.autoPunctuate = true
  flags.stallTimers = true
  flags.filterProfanity = true
  parameters.recognitionFlags = flags
  parameters.noInputTimeoutMs = 5000
  parameters.recognitionTimeoutMs = 20000
  parameters.utteranceEndSilenceMs = 800
  parameters.speechDetectionSensitivity = 0.6
  parameters.maxHypotheses = 5
  let wordset = #"{"PLACES":[{"literal":"La Jolla","spoken":["la hoya"]},{"literal":"Beaumont"}]}"#
  return .initMessage(
    RecognitionInitMessage(
      parameters: parameters,
      resources: [
        RecognitionResource(.inlineWordset(wordset), weight: .weightEnum(.medium)),
        RecognitionResource(.builtin("DATE"), weight: .weightValue(0.25), reuse: .lowReuse),
      ],
      clientData: ["company": "Aardvark", "user": "Leslie"],
      userID: "b3a1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    )
  )
}

func finalResult() -> RecognitionResponse {
  let vocabulary = [
    "i", "would", "like", "to", "book", "a", "flight", "from", "boston", "tomorrow", "morning",
    "please", "two", "tickets", "to", "denver",
  ]
  var result = RecognitionResult()
  result.resultType = .final
  result.absStartMs = 1240
  result.absEndMs = 4630
  var info = UtteranceInfo()
  info.durationMs = 3390
  var dsp = Dsp()
  dsp.snrEstimateDb = 21.5
  dsp.level = 8200
  dsp.numChannels = 1
  dsp.initialSilenceMs = 1240
  dsp.initialEnergy = 61.2
  dsp.finalEnergy = 48.7
  dsp.meanEnergy = 66.1
  info.dsp = dsp
  result.utteranceInfo = info
  for h in 0..<5 {
    var hypothesis = Hypothesis()
    hypothesis.confidence = 0.9 - Float(h) * 0.1
    hypothesis.averageConfidence = 0.85 - Float(h) * 0.1
    var words: [Word] = []
    for w in 0..<10 {
      let text = vocabulary[(w + h) % vocabulary.count]
      let start = UInt32(1240 + w * 330)
      words.append(Word(text: text, confidence: 0.8, startMs: start, endMs: start + 300))
    }
    hypothesis.words = words
    hypothesis.formattedText = words.map(\.text).joined(separator: " ")
    hypothesis.minimallyFormattedText = hypothesis.formattedText
    result.hypotheses.append(hypothesis)
  }
  return RecognitionResponse(.result(result))
}

func continueStatus() -> RecognitionResponse {
  .status(
    code: 100,
    message: "Continue",
    details: "recognition started on audio/l16;rate=8000 stream"
  )
}

// MARK: Timing

@inline(never)
func blackHole<T>(_ value: T) {
  withExtendedLifetime(value) {}
}

/// The number of iterations of `body` that take about `target` nanoseconds.
func calibrate(target: UInt64 = 40_000_000, _ body: (Int) -> Double) -> Int {
  var iterations = 1000
  while true {
    let start = DispatchTime.now().uptimeNanoseconds
    _ = body(iterations)
    if DispatchTime.now().uptimeNanoseconds - start > target / 4 { return iterations * 4 }
    iterations *= 4
  }
}

/// The median ns per iteration of each loop over `rounds` rounds; the loops take turns within a
/// round, so a slow stretch of the machine falls on all of them alike.
func measureInterleaved(rounds: Int = 11, _ loops: [(Int) -> Double]) -> [Double] {
  let iterations = loops.map { calibrate($0) }
  var samples = Array(repeating: [Double](), count: loops.count)
  for _ in 0..<rounds {
    for (index, loop) in loops.enumerated() { samples[index].append(loop(iterations[index])) }
  }
  return samples.map { $0.sorted()[rounds / 2] }
}

/// ns per encode of `message` into a reused buffer, over `iterations` encodes.
@inline(never)
func encodeLoop<M: ProtoMessage>(_ message: M, iterations: Int) -> Double {
  var buffer = ByteBufferAllocator().buffer(capacity: message.encodedSize)
  let start = DispatchTime.now().uptimeNanoseconds
  for _ in 0..<iterations {
    buffer.clear()
    message.encode(into: &buffer)
  }
  let elapsed = DispatchTime.now().uptimeNanoseconds - start
  blackHole(buffer)
  return Double(elapsed) / Double(iterations)
}

/// ns per encode of `message` into preallocated memory, as libprotobuf-c packs.
@inline(never)
func encodeRawLoop<M: ProtoMessage>(_ message: M, iterations: Int) -> Double {
  let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: message.encodedSize, alignment: 16)
  defer { memory.deallocate() }
  var total = 0
  let start = DispatchTime.now().uptimeNanoseconds
  for _ in 0..<iterations {
    total &+= message.encode(into: memory)
  }
  let elapsed = DispatchTime.now().uptimeNanoseconds - start
  blackHole(total)
  return Double(elapsed) / Double(iterations)
}

/// ns per decode of `bytes` as an `M`, over `iterations` decodes.
@inline(never)
func decodeLoop<M: ProtoMessage>(_ type: M.Type, _ bytes: ByteBuffer, iterations: Int) -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  for _ in 0..<iterations {
    blackHole(try! M(serializedBytes: bytes))
  }
  return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations)
}

struct Row: Codable {
  var key: String
  var name: String
  var bytes: Int
  var harkEncode: Double
  var harkEncodeBuffer: Double
  var harkDecode: Double
  var cPack: Double
  var cUnpack: Double
}

func benchmark<M: ProtoMessage>(_ key: String, _ name: String, _ message: M) -> Row {
  let encoded = message.serializedBytes()
  let bytes = Array(encoded.readableBytesView)

  // Hark: encode into a reused buffer; decode from one.
  var check = ByteBuffer()
  message.encode(into: &check)
  precondition(check == encoded)
  // libprotobuf-c: the message as C unpacks it from the same bytes, packed and unpacked in C.
  let descriptor =
    M.self == RecognitionRequest.self
    ? hark_oracle_request_descriptor()! : hark_oracle_response_descriptor()!
  let cMessage = bytes.withUnsafeBufferPointer {
    hark_oracle_unpack(descriptor, $0.baseAddress, $0.count)
  }!
  defer { protobuf_c_message_free_unpacked(cMessage, nil) }
  var out = [UInt8](repeating: 0, count: bytes.count + 16)
  precondition(
    out.withUnsafeMutableBufferPointer { protobuf_c_message_pack(cMessage, $0.baseAddress) }
      == bytes.count
  )
  let cPack = { (iterations: Int) in
    out.withUnsafeMutableBufferPointer {
      hark_oracle_ns_per_pack(cMessage, $0.baseAddress, iterations)
    }
  }
  let cUnpack = { (iterations: Int) in
    bytes.withUnsafeBufferPointer {
      hark_oracle_ns_per_unpack(descriptor, $0.baseAddress, $0.count, iterations)
    }
  }
  let medians = measureInterleaved([
    { encodeRawLoop(message, iterations: $0) }, cPack, { encodeLoop(message, iterations: $0) },
    { decodeLoop(M.self, encoded, iterations: $0) }, cUnpack,
  ])
  let (harkEncode, cPackTime, harkEncodeBuffer, harkDecode, cUnpackTime) =
    (medians[0], medians[1], medians[2], medians[3], medians[4])
  return Row(
    key: key,
    name: name,
    bytes: bytes.count,
    harkEncode: harkEncode,
    harkEncodeBuffer: harkEncodeBuffer,
    harkDecode: harkDecode,
    cPack: cPackTime,
    cUnpack: cUnpackTime
  )
}

// MARK: Cases

/// One message of the table: `key` names it on the command line and in the files shared with
/// tools/bench_codec_upb.py.
struct Case {
  var key: String
  var name: String
  var protoName: String
  var encoded: () -> [UInt8]
  var run: () -> Row
  var runProfile: (_ mode: String, _ iterations: Int) -> Void
}

extension Case {
  init<M: ProtoMessage>(_ key: String, _ name: String, _ message: @escaping () -> M) {
    self.init(
      key: key,
      name: name,
      protoName: M.protoName,
      encoded: { message().serializedByteArray() },
      run: { benchmark(key, name, message()) },
      runProfile: { profile(message(), mode: $0, iterations: $1) }
    )
  }
}

let cases = [
  Case("audio320", "audio request, 320 B") { audioRequest(bytes: 320) },
  Case("audio640", "audio request, 640 B") { audioRequest(bytes: 640) },
  Case("init", "full init", fullInit),
  Case("result", "result, 5 hyp × 10 words", finalResult),
  Case("status", "status 100 Continue", continueStatus),
]

// MARK: Profiling

// `CodecBenchmark --profile MODE N [KEY]` runs only one loop of the message KEY (audio320 by
// default), for a profiler (`perf record -e cpu-clock`, or valgrind --tool=callgrind, which
// counts instructions exactly). MODE is encode, encode-raw, decode, c-pack or c-unpack.
@inline(never)
func profile<M: ProtoMessage>(_ message: M, mode: String, iterations: Int) {
  let bytes = Array(message.serializedBytes().readableBytesView)
  let descriptor =
    M.self == RecognitionRequest.self
    ? hark_oracle_request_descriptor()! : hark_oracle_response_descriptor()!
  switch mode {
  case "encode": _ = encodeLoop(message, iterations: iterations)
  case "encode-raw": _ = encodeRawLoop(message, iterations: iterations)
  case "decode": _ = decodeLoop(M.self, message.serializedBytes(), iterations: iterations)
  case "c-pack":
    let cMessage = bytes.withUnsafeBufferPointer {
      hark_oracle_unpack(descriptor, $0.baseAddress, $0.count)
    }!
    var out = [UInt8](repeating: 0, count: bytes.count + 16)
    _ = out.withUnsafeMutableBufferPointer {
      hark_oracle_ns_per_pack(cMessage, $0.baseAddress, iterations)
    }
  default:
    _ = bytes.withUnsafeBufferPointer {
      hark_oracle_ns_per_unpack(descriptor, $0.baseAddress, $0.count, iterations)
    }
  }
}

// MARK: upb

/// Python protobuf's figures for one message, as tools/bench_codec_upb.py measured them.
struct UPBRow: Decodable {
  var type: String
  var decode: Double
  var encode: Double
  var decodeOverhead: Double
  var encodeOverhead: Double
}

/// One run of tools/bench_codec_upb.py: its JSON output.
struct UPBRun: Decodable {
  var implementation: String
  var protobufVersion: String
  var pythonVersion: String
  var loopNs: Double
  var messages: [String: UPBRow]
}

/// One upb figure: the raw time of a Python call and that call's overhead.
struct UPBFigure: CustomStringConvertible {
  var raw: Double
  var overhead: Double

  /// upb's C work: the raw time less the overhead.
  var work: Double { raw - overhead }

  /// The C work where it dominates the raw time, so that it compares with Hark's; else nil.
  var comparable: Double? { overhead < raw / 2 ? work : nil }

  var description: String { comparable == nil ? "(\(format(work)))" : format(work) }
}

// MARK: Report

func format(_ ns: Double) -> String {
  ns < 100 ? String(format: "%.1f", ns) : String(format: "%.0f", ns)
}

func median(_ values: [Double]) -> Double {
  let sorted = values.sorted()
  let middle = sorted.count / 2
  return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// Prints the table of `runs` (each the rows of one run of this program, `upbRuns` each the
/// output of one run of tools/bench_codec_upb.py, possibly none): every figure is the median of
/// the runs' figures.
@MainActor func printTable(runs: [[Row]], upbRuns: [UPBRun]) {
  print("Codec benchmark: ns per operation, release build. Each figure is the median of 11 rounds")
  if runs.count > 1 || upbRuns.count > 1 {
    print(
      "of a run, then the median over \(runs.count) runs of Hark and protobuf-c (one process) and "
        + "\(upbRuns.count) of upb, taken in turns."
    )
  } else {
    print("of the run.")
  }
  if let first = upbRuns.first {
    // The overhead of each message type: the median over its messages and the runs.
    var overheads: [String: (decode: [Double], encode: [Double])] = [:]
    for row in upbRuns.flatMap(\.messages.values) {
      let short = row.type.split(separator: ".").last.map(String.init) ?? row.type
      overheads[short, default: ([], [])].decode.append(row.decodeOverhead)
      overheads[short, default: ([], [])].encode.append(row.encodeOverhead)
    }
    print(
      "upb: Python protobuf \(first.protobufVersion) (implementation \(first.implementation)), "
        + "Python \(first.pythonVersion); timeit's bare loop "
        + "\(format(median(upbRuns.map(\.loopNs)))) ns."
    )
    print("upb per-call overhead (the same call on an empty message):")
    for type in overheads.keys.sorted() {
      print(
        "  \(type): decode \(format(median(overheads[type]!.decode))) ns, "
          + "encode \(format(median(overheads[type]!.encode))) ns"
      )
    }
  }
  print("")
  print(
    "| message | bytes | encode: Hark | Hark, ByteBuffer | protobuf-c | upb | upb − call | ratio "
      + "| decode: Hark | protobuf-c | upb | upb − call | ratio |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  var slower: [String] = []
  for testCase in cases {
    let rows = runs.compactMap { $0.first { $0.key == testCase.key } }
    guard let first = rows.first else { continue }
    func hark(_ figure: KeyPath<Row, Double>) -> Double { median(rows.map { $0[keyPath: figure] }) }
    let (harkEncode, harkEncodeBuffer, cPack) = (
      hark(\.harkEncode), hark(\.harkEncodeBuffer), hark(\.cPack)
    )
    let (harkDecode, cUnpack) = (hark(\.harkDecode), hark(\.cUnpack))
    let upbRows = upbRuns.compactMap { $0.messages[testCase.key] }
    func upb(_ raw: KeyPath<UPBRow, Double>, _ overhead: KeyPath<UPBRow, Double>) -> UPBFigure? {
      upbRows.isEmpty
        ? nil
        : UPBFigure(
          raw: median(upbRows.map { $0[keyPath: raw] }),
          overhead: median(upbRows.map { $0[keyPath: overhead] })
        )
    }
    // upb's C work counts only where it is more than its per-call overhead (a difference of two
    // noisy figures says little when the overhead dominates).
    let upbEncode = upb(\.encode, \.encodeOverhead)
    let upbDecode = upb(\.decode, \.decodeOverhead)
    let encodeRatio = min(cPack, upbEncode?.comparable ?? .infinity) / harkEncode
    let decodeRatio = min(cUnpack, upbDecode?.comparable ?? .infinity) / harkDecode
    let dash = "–"
    let columns = [
      first.name, "\(first.bytes)",
      format(harkEncode), format(harkEncodeBuffer), format(cPack),
      upbEncode.map { format($0.raw) } ?? dash, upbEncode?.description ?? dash,
      String(format: "%.2f×", encodeRatio),
      format(harkDecode), format(cUnpack),
      upbDecode.map { format($0.raw) } ?? dash, upbDecode?.description ?? dash,
      String(format: "%.2f×", decodeRatio),
    ]
    print("| " + columns.joined(separator: " | ") + " |")
    if cPack < harkEncode { slower.append("\(first.name) encode (protobuf-c)") }
    if let work = upbEncode?.comparable, work < harkEncode {
      slower.append("\(first.name) encode (upb)")
    }
    if cUnpack < harkDecode { slower.append("\(first.name) decode (protobuf-c)") }
    if let work = upbDecode?.comparable, work < harkDecode {
      slower.append("\(first.name) decode (upb)")
    }
  }
  print("")
  print("Hark encode: into preallocated memory, as protobuf_c_message_pack does; Hark, ByteBuffer:")
  print(
    "appended to a reused NIO ByteBuffer (capacity and exclusivity checks). upb: one Python call"
  )
  print("(SerializeToString, FromString) with its overhead; upb − call: minus that overhead.")
  print("ratio = the faster of protobuf-c and upb − call, over Hark: above 1 means Hark is faster.")
  if !upbRuns.isEmpty {
    print("(upb − call in parentheses: the overhead is over half the raw figure, so the difference")
    print("is mostly noise; it is left out of the ratio and of the verdict below.)")
  }
  if !slower.isEmpty { print("Hark is slower on: \(slower.joined(separator: ", "))") }
}

// MARK: Main

var arguments = Array(CommandLine.arguments.dropFirst())

if arguments.count >= 3, arguments[0] == "--profile" {
  let iterations = Int(arguments[2]) ?? 100_000
  let key = arguments.count > 3 ? arguments[3] : "audio320"
  guard let selected = cases.first(where: { $0.key == key }) else {
    fatalError("no message \(key); one of \(cases.map(\.key))")
  }
  selected.runProfile(arguments[1], iterations)
  exit(0)
}

// `CodecBenchmark --write-messages DIR` writes each message's encoding to DIR/KEY.bin and their
// list to DIR/index.tsv (key, message type, name), for tools/bench_codec_upb.py.
if arguments.count == 2, arguments[0] == "--write-messages" {
  let directory = URL(fileURLWithPath: arguments[1], isDirectory: true)
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  var index = ""
  for testCase in cases {
    try Data(testCase.encoded()).write(to: directory.appendingPathComponent("\(testCase.key).bin"))
    index += "\(testCase.key)\t\(testCase.protoName)\t\(testCase.name)\n"
  }
  try Data(index.utf8).write(to: directory.appendingPathComponent("index.tsv"))
  exit(0)
}

// `CodecBenchmark --report DIR` prints the table of the runs in DIR: hark-*.json, each written
// by `--json`, and upb-*.json, each written by tools/bench_codec_upb.py.
if arguments.count == 2, arguments[0] == "--report" {
  let directory = URL(fileURLWithPath: arguments[1], isDirectory: true)
  let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
  func load<T: Decodable>(_ prefix: String, as type: T.Type) throws -> [T] {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return try names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".json") }.map {
      try decoder.decode(T.self, from: Data(contentsOf: directory.appendingPathComponent($0)))
    }
  }
  printTable(runs: try load("hark-", as: [Row].self), upbRuns: try load("upb-", as: UPBRun.self))
  exit(0)
}

// `--json FILE` writes the rows to FILE for `--report` instead of printing the table.
var jsonOutput: String?
if arguments.count >= 2, arguments[0] == "--json" {
  jsonOutput = arguments[1]
  arguments.removeFirst(2)
}
let filter = arguments.first

// Warm up (page in the code, let the CPU and the hypervisor settle) before anything is measured.
let warmUpEnd = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
while DispatchTime.now().uptimeNanoseconds < warmUpEnd {
  _ = encodeLoop(finalResult(), iterations: 100)
  _ = decodeLoop(
    RecognitionRequest.self,
    audioRequest(bytes: 320).serializedBytes(),
    iterations: 10_000
  )
}

let rows = cases.filter { filter == nil || $0.name.contains(filter!) || $0.key == filter }.map {
  $0.run()
}
if let jsonOutput {
  try JSONEncoder().encode(rows).write(to: URL(fileURLWithPath: jsonOutput))
} else {
  printTable(runs: [rows], upbRuns: [])
}
