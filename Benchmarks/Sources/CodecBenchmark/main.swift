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

struct Row {
  var name: String
  var bytes: Int
  var harkEncode: Double
  var harkEncodeBuffer: Double
  var harkDecode: Double
  var cPack: Double
  var cUnpack: Double
}

func benchmark<M: ProtoMessage>(_ name: String, _ message: M) -> Row {
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
      run: { benchmark(name, message()) },
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
struct UPBRow {
  var decode: Double
  var encode: Double
  var decodeOverhead: Double
  var encodeOverhead: Double
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

/// The figures of tools/bench_codec_upb.py's JSON output, by message key, and a line that says
/// what was measured.
func loadUPB(path: String) -> (rows: [String: UPBRow], summary: String) {
  guard let data = FileManager.default.contents(atPath: path),
    let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
    let messages = root["messages"] as? [String: [String: Any]],
    let overhead = root["overhead"] as? [String: [String: Double]]
  else {
    fatalError("\(path) is not the output of tools/bench_codec_upb.py")
  }
  var rows: [String: UPBRow] = [:]
  for (key, figures) in messages {
    guard let decode = figures["decode"] as? Double, let encode = figures["encode"] as? Double,
      let decodeOverhead = figures["decode_overhead"] as? Double,
      let encodeOverhead = figures["encode_overhead"] as? Double
    else { fatalError("\(path): incomplete figures for \(key)") }
    rows[key] = UPBRow(
      decode: decode,
      encode: encode,
      decodeOverhead: decodeOverhead,
      encodeOverhead: encodeOverhead
    )
  }
  let perType = overhead.keys.sorted().map { type in
    let short = type.split(separator: ".").last.map(String.init) ?? type
    return "\(short) decode \(format(overhead[type]!["decode"] ?? 0)) ns, "
      + "encode \(format(overhead[type]!["encode"] ?? 0)) ns"
  }
  let version = root["protobuf_version"] as? String ?? "?"
  let implementation = root["implementation"] as? String ?? "?"
  let python = root["python_version"] as? String ?? "?"
  let loop = root["loop_ns"] as? Double ?? 0
  return (
    rows,
    "upb: Python protobuf \(version) (implementation \(implementation)), Python \(python). "
      + "Per-call overhead (the same call on an empty message): \(perType.joined(separator: "; ")); "
      + "timeit's bare loop \(format(loop)) ns."
  )
}

// MARK: Report

func format(_ ns: Double) -> String {
  ns < 100 ? String(format: "%.1f", ns) : String(format: "%.0f", ns)
}

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

// `--upb FILE` adds the figures of tools/bench_codec_upb.py to the table.
var upb: (rows: [String: UPBRow], summary: String)?
if arguments.count >= 2, arguments[0] == "--upb" {
  upb = loadUPB(path: arguments[1])
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

print("Codec benchmark: ns per operation (median of 11 interleaved rounds), release build")
if let upb { print(upb.summary) }
print("")
print(
  "| message | bytes | encode: Hark | Hark, ByteBuffer | protobuf-c | upb | upb − call | ratio "
    + "| decode: Hark | protobuf-c | upb | upb − call | ratio |"
)
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
var slower: [String] = []
for testCase in cases
where filter == nil || testCase.name.contains(filter!) || testCase.key == filter {
  let row = testCase.run()
  let upbRow = upb?.rows[testCase.key]
  // upb's C work alone, where it is more than its per-call overhead (a difference of two noisy
  // figures says little when the overhead dominates).
  let upbEncode = upbRow.map { UPBFigure(raw: $0.encode, overhead: $0.encodeOverhead) }
  let upbDecode = upbRow.map { UPBFigure(raw: $0.decode, overhead: $0.decodeOverhead) }
  let encodeRatio = min(row.cPack, upbEncode?.comparable ?? .infinity) / row.harkEncode
  let decodeRatio = min(row.cUnpack, upbDecode?.comparable ?? .infinity) / row.harkDecode
  let dash = "–"
  let columns = [
    row.name, "\(row.bytes)",
    format(row.harkEncode), format(row.harkEncodeBuffer), format(row.cPack),
    upbEncode.map { format($0.raw) } ?? dash, upbEncode?.description ?? dash,
    String(format: "%.2f×", encodeRatio),
    format(row.harkDecode), format(row.cUnpack),
    upbDecode.map { format($0.raw) } ?? dash, upbDecode?.description ?? dash,
    String(format: "%.2f×", decodeRatio),
  ]
  print("| " + columns.joined(separator: " | ") + " |")
  if row.cPack < row.harkEncode { slower.append("\(row.name) encode (protobuf-c)") }
  if let work = upbEncode?.comparable, work < row.harkEncode {
    slower.append("\(row.name) encode (upb)")
  }
  if row.cUnpack < row.harkDecode { slower.append("\(row.name) decode (protobuf-c)") }
  if let work = upbDecode?.comparable, work < row.harkDecode {
    slower.append("\(row.name) decode (upb)")
  }
}
print("")
print("Hark encode: into preallocated memory, as protobuf_c_message_pack does; Hark, ByteBuffer:")
print("appended to a reused NIO ByteBuffer (capacity and exclusivity checks). upb: one Python call")
print("(SerializeToString, FromString) with its overhead; upb − call: minus that overhead.")
print("ratio = the faster of protobuf-c and upb − call, over Hark: above 1 means Hark is faster.")
print("(upb − call in parentheses: the overhead is over half the raw figure, so the difference")
print("is mostly noise; it is left out of the ratio and of the verdict below.)")
if !slower.isEmpty { print("Hark is slower on: \(slower.joined(separator: ", "))") }
