import CHarkProtoOracle
import Foundation
import HarkProto
import NIOCore

// Hark's codec against libprotobuf-c on the messages of a recognition, in one process: ns per
// encode and per decode. Hark encodes into a reused ByteBuffer and decodes from one (its audio
// is then a slice, not a copy); libprotobuf-c packs into a preallocated array and unpacks (and
// frees) with its default allocator. Each figure is the median of several runs of a loop sized
// to take about 0.2 s.

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

// MARK: Report

func format(_ ns: Double) -> String {
  ns < 100 ? String(format: "%.1f", ns) : String(format: "%.0f", ns)
}

let cases: [(String, () -> Row)] = [
  ("audio request, 320 B", { benchmark("audio request, 320 B", audioRequest(bytes: 320)) }),
  ("audio request, 640 B", { benchmark("audio request, 640 B", audioRequest(bytes: 640)) }),
  ("full init", { benchmark("full init", fullInit()) }),
  ("result, 5 hyp × 10 words", { benchmark("result, 5 hyp × 10 words", finalResult()) }),
  ("status 100 Continue", { benchmark("status 100 Continue", continueStatus()) }),
]

// `CodecBenchmark --profile encode|decode N` runs only Hark's loops of the first matching
// message, for a profiler (valgrind --tool=callgrind counts instructions exactly).
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

if CommandLine.arguments.count >= 4, CommandLine.arguments[1] == "--profile" {
  let mode = CommandLine.arguments[2]
  let iterations = Int(CommandLine.arguments[3]) ?? 100_000
  switch CommandLine.arguments.count > 4 ? CommandLine.arguments[4] : "audio320" {
  case "init": profile(fullInit(), mode: mode, iterations: iterations)
  case "result": profile(finalResult(), mode: mode, iterations: iterations)
  case "status": profile(continueStatus(), mode: mode, iterations: iterations)
  default: profile(audioRequest(bytes: 320), mode: mode, iterations: iterations)
  }
  exit(0)
}

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

let filter = CommandLine.arguments.dropFirst().first
print("Codec benchmark: ns per operation (median of 11 interleaved rounds), release build")
print("")
print(
  "| message | bytes | Hark encode | protobuf-c pack | ratio | Hark encode into ByteBuffer "
    + "| Hark decode | protobuf-c unpack | ratio |"
)
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
var slower: [String] = []
for (name, run) in cases where filter == nil || name.contains(filter!) {
  let row = run()
  let encodeRatio = row.cPack / row.harkEncode
  let decodeRatio = row.cUnpack / row.harkDecode
  print(
    "| \(row.name) | \(row.bytes) | \(format(row.harkEncode)) | \(format(row.cPack)) | "
      + "\(String(format: "%.2f×", encodeRatio)) | \(format(row.harkEncodeBuffer)) | \(format(row.harkDecode)) | \(format(row.cUnpack)) | "
      + "\(String(format: "%.2f×", decodeRatio)) |"
  )
  if encodeRatio < 1 { slower.append("\(row.name) encode") }
  if decodeRatio < 1 { slower.append("\(row.name) decode") }
}
print("")
print("ratio = protobuf-c time / Hark time: above 1 means Hark is faster.")
print("Hark encode writes into preallocated memory, as protobuf_c_message_pack does; the column")
print(
  "after the ratio appends to a reused NIO ByteBuffer instead (capacity and exclusivity checks)."
)
if !slower.isEmpty { print("Slower than libprotobuf-c: \(slower.joined(separator: ", "))") }
