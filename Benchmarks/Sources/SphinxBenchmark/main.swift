import BenchmarkSupport
import Foundation
import HarkAudio
import HarkProto
import HarkRecognizer
import HarkSphinx

// The sphinx engine's cost: CPU seconds per second of audio (the real-time factor), on the
// samples in Samples/ at 8 kHz, driven as the server's session drives an engine (20 ms messages,
// the whole clip one utterance), and how many real-time recognitions one core could carry.
//
//   swift run -c release --package-path Benchmarks SphinxBenchmark [--seconds S] [--samples DIR]
//
// Each scenario repeats its clip until at least S seconds of audio (default 60) are decoded.
// Prints a Markdown table. Not a test: run it on an idle machine.

/// The 16-bit mono samples of the WAV file at `path`.
func samples(ofWAV path: String) throws -> (samples: [Int16], sampleRate: Int) {
  let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  let wav = try WAVFile(bytes: bytes)
  precondition(wav.channels == 1 && wav.bitsPerSample == 16, "\(path): not 16-bit mono")
  let data = bytes[wav.dataRange]
  let samples = stride(from: data.startIndex, to: data.endIndex - 1, by: 2).map { index in
    Int16(bitPattern: UInt16(data[index]) | UInt16(data[index + 1]) << 8)
  }
  return (samples, wav.sampleRate)
}

struct Scenario {
  var name: String
  var clip: String
  var resources: [RecognitionResource] = []
  var resultType: ResultType = .final
  var maxHypotheses: UInt32 = 1
}

var seconds = 60.0
var samplesDirectory = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent().appendingPathComponent("Samples").path
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
  switch argument {
  case "--seconds": seconds = Double(arguments.popFirst() ?? "") ?? seconds
  case "--samples": samplesDirectory = arguments.popFirst() ?? samplesDirectory
  default:
    FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8))
    exit(2)
  }
}

let departments = RecognitionResource(
  .inlineWordset(
    #"{"DEPARTMENT": [{"literal": "operator"}, {"literal": "billing"}, {"literal": "sales"}]}"#
  )
)
let scenarios = [
  Scenario(name: "dictation", clip: "sentence-8k.wav"),
  Scenario(name: "dictation, partial results", clip: "sentence-8k.wav", resultType: .partial),
  Scenario(name: "dictation, 10-best", clip: "sentence-8k.wav", maxHypotheses: 10),
  Scenario(
    name: "builtin digits",
    clip: "digits-8k.wav",
    resources: [RecognitionResource(.builtin("digits"))]
  ),
  Scenario(
    name: "builtin digits, partial results",
    clip: "digits-8k.wav",
    resources: [RecognitionResource(.builtin("digits"))],
    resultType: .partial
  ),
  Scenario(name: "wordset (3 phrases)", clip: "operator-8k.wav", resources: [departments]),
]

let before = residentBytes()
var start = cpuSeconds()
let engine = try SphinxEngine()
let loadSeconds = cpuSeconds() - start
let engineBytes = residentBytes() - before

print(
  "| scenario (8 kHz) | transcript | audio s | CPU s | real-time factor "
    + "| real-time sessions per core | first prepare ms | prepare ms |"
)
print("|---|---|---:|---:|---:|---:|---:|---:|")
for scenario in scenarios {
  let (clip, sampleRate) = try samples(ofWAV: samplesDirectory + "/" + scenario.clip)
  var parameters = RecognitionParameters(
    language: "en-US",
    audioFormat: .pcm(sampleRateHz: UInt32(sampleRate))
  )
  parameters.resultType = scenario.resultType
  parameters.maxHypotheses = scenario.maxHypotheses
  parameters.utteranceDetectionMode = .disabled
  let configuration = try RecognitionConfiguration(
    validating: RecognitionInitMessage(parameters: parameters, resources: scenario.resources)
  )
  // prepare runs on the server's event loop when a recognition starts: the first one for a
  // grammar compiles it, later ones find it compiled.
  start = cpuSeconds()
  _ = try engine.prepare(configuration)
  let firstPrepare = cpuSeconds() - start
  engine.reset()
  start = cpuSeconds()
  for _ in 0..<20 {
    _ = try engine.prepare(configuration)
    engine.reset()
  }
  let prepare = (cpuSeconds() - start) / 20
  let frame = sampleRate / 50
  var audioSamples = 0
  var transcript = ""
  start = cpuSeconds()
  while Double(audioSamples) < seconds * Double(sampleRate) {
    _ = try engine.prepare(configuration)
    try engine.beginUtterance(at: 0)
    try clip.withUnsafeBufferPointer { all in
      for position in stride(from: 0, to: all.count, by: frame) {
        let chunk = UnsafeBufferPointer(rebasing: all[position..<min(position + frame, all.count)])
        _ = try engine.process(chunk, at: position)
      }
    }
    transcript = try engine.endUtterance(at: clip.count).first?.text ?? ""
    engine.reset()
    audioSamples += clip.count
  }
  let cpu = cpuSeconds() - start
  let audio = Double(audioSamples) / Double(sampleRate)
  let factor = cpu / audio
  print(
    "| \(scenario.name) | \(transcript) | \(String(format: "%.1f", audio)) | "
      + "\(String(format: "%.2f", cpu)) | \(String(format: "%.3f", factor)) | "
      + "\(Int(1 / factor)) | \(String(format: "%.2f", firstPrepare * 1000)) | "
      + "\(String(format: "%.2f", prepare * 1000)) |"
  )
}
print(
  "\nEngine load: \(String(format: "%.2f", loadSeconds)) CPU s, "
    + "\(engineBytes / 1_048_576) MiB resident per engine."
)
