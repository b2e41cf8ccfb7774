import BenchmarkSupport
import Dispatch
import Foundation
import HarkAudio
import HarkProto
import HarkRecognizer

// The server session state machine's audio path, as its driver calls it: ns per 20 ms audio
// message of 8 kHz L16 given to `ServerSessionStateMachine.audio(_:into:)`, the machine stored
// in a class (as the session stores it, so that a copy of its state would show). No engine and
// no I/O: only the machine's own cost per message (endpointing, timers, its actions).
//
//   silence: a recognition that hears no speech (the common message).
//   speech:  DTMF keys and pauses, so utterances start and end; each final the machine asks for
//            is answered at once with one hypothesis (building results is counted too).
//
// Each figure is the median of several rounds of a loop sized to take about 0.2 s.

final class Session {
  var machine = ServerSessionStateMachine()
  var actions: [ServerSessionStateMachine.Action] = []

  init(mode: UtteranceDetectionMode) {
    var parameters = RecognitionParameters(
      language: "en-US",
      audioFormat: .pcm(sampleRateHz: 8000)
    )
    parameters.utteranceDetectionMode = mode
    parameters.resultType = .final
    machine.receive(
      .initMessage(RecognitionInitMessage(parameters: parameters)),
      into: &actions
    )
    machine.engineReady(into: &actions)
    actions.removeAll(keepingCapacity: true)
    actions.reserveCapacity(32)
  }
}

@inline(never)
func blackHole<T>(_ value: T) {
  withExtendedLifetime(value) {}
}

/// 20 ms messages of `segments`.
func messages(_ segments: [DTMFGenerator.Segment]) -> [[Int16]] {
  var generator = DTMFGenerator(sampleRate: 8000)
  let samples = generator.generate(segments)
  return stride(from: 0, to: samples.count, by: 160).map {
    Array(samples[$0..<min($0 + 160, samples.count)])
  }
}

let silence = messages([.silence(milliseconds: 2000)])
let speech = messages(
  [.silence(milliseconds: 300)] + DTMFGenerator.segments(DTMFSymbol.symbols("123")!)
    + [.silence(milliseconds: 700)]
)
let hypothesis = [
  EngineHypothesis(
    words: [EngineWord(text: "1", startSample: 2400, endSample: 3200, confidence: 1)],
    confidence: 1
  )
]

/// ns per message over `iterations` messages, cycling through `audio`.
@inline(never)
func audioLoop(_ session: Session, _ audio: [[Int16]], iterations: Int) -> Double {
  var finals = 0
  let start = DispatchTime.now().uptimeNanoseconds
  for index in 0..<iterations {
    audio[index % audio.count].withUnsafeBufferPointer {
      session.machine.audio($0, into: &session.actions)
    }
    for action in session.actions {
      if case .engineEndUtterance(let end) = action {
        var answered: [ServerSessionStateMachine.Action] = []
        session.machine.engineFinal(hypothesis, end: end, into: &answered)
        finals += answered.count
      }
    }
    session.actions.removeAll(keepingCapacity: true)
  }
  let elapsed = DispatchTime.now().uptimeNanoseconds - start
  blackHole(finals)
  return Double(elapsed) / Double(iterations)
}

/// The number of iterations of `body` that take about `target` nanoseconds.
func calibrate(target: UInt64 = 200_000_000, _ body: (Int) -> Double) -> Int {
  var iterations = 1000
  while true {
    let start = DispatchTime.now().uptimeNanoseconds
    _ = body(iterations)
    if DispatchTime.now().uptimeNanoseconds - start > target / 4 { return iterations * 4 }
    iterations *= 4
  }
}

/// The median ns per iteration of each loop over `rounds` rounds, the loops taking turns.
func measureInterleaved(rounds: Int = 9, _ loops: [(Int) -> Double]) -> [Double] {
  let iterations = loops.map { calibrate($0) }
  var samples = Array(repeating: [Double](), count: loops.count)
  for _ in 0..<rounds {
    for (index, loop) in loops.enumerated() { samples[index].append(loop(iterations[index])) }
  }
  return samples.map { $0.sorted()[rounds / 2] }
}

let silent = Session(mode: .multiple)
let speaking = Session(mode: .multiple)
let figures = measureInterleaved([
  { audioLoop(silent, silence, iterations: $0) },
  { audioLoop(speaking, speech, iterations: $0) },
])
writeLine("ServerSessionStateMachine.audio, ns per 20 ms message (median):")
writeLine("  silence  \(String(format: "%7.1f", figures[0]))")
writeLine("  speech   \(String(format: "%7.1f", figures[1]))")
if silent.machine.isFinished || speaking.machine.isFinished {
  log("a recognition ended during the benchmark: the figures are not of the audio path")
}
