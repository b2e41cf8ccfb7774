import Foundation

/// Speech that espeak-ng (installed by tools/bootstrap) synthesizes, converted by SoX to mono
/// 16-bit samples at `sampleRate`.
func synthesizedSpeech(
  _ text: String,
  voice: String,
  pitch: Int = 50,
  sampleRate: Int
) throws -> [Int16] {
  let scratch = try ScratchDirectory()
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = [
    "espeak-ng", "-v", voice, "-p", "\(pitch)", "-w", scratch.path("speech.wav"), text,
  ]
  try process.run()
  process.waitUntilExit()
  guard process.terminationStatus == 0 else {
    throw SoX.Failure(
      arguments: process.arguments ?? [],
      status: process.terminationStatus,
      standardError: ""
    )
  }
  // --guard keeps the resampler from clipping loud speech.
  try SoX.run(
    [
      "--guard", scratch.path("speech.wav"), "-r", "\(sampleRate)", "-c", "1", "-b", "16", "-e",
      "signed", "-L",
    ]
      + ["-t", "raw", scratch.path("speech.raw")]
  )
  return try scratch.readSamples("speech.raw")
}
