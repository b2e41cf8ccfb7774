import FuzzSupport
import HarkRecognizer

/// The engine of the fuzzer's one-slot pool: the real engine, failures the program injects, and
/// the calling contract of ``SpeechEngine`` checked on every call.
///
/// The contract: `prepare` once per recognition (after `reset`); audio positions that follow on
/// from the samples before them, so the engine sees every sample of the stream in order; onsets
/// and ends within the samples given; no call while the engine is back in the pool.
final class CheckedEngine: SpeechEngine {
  let base: any SpeechEngine
  /// Whether positions, onsets and ends are checked (off to let a wrong position reach the engine).
  let checksPositions: Bool
  /// The failure of the next call, if the program injected one.
  var fault: EngineError?
  /// Whether the engine is in the pool.
  var isIdle = true
  private var prepared = false
  private var streamEnd = 0

  init(_ base: any SpeechEngine, checksPositions: Bool) {
    self.base = base
    self.checksPositions = checksPositions
  }

  var runsOnWorkerThread: Bool { base.runsOnWorkerThread }

  private func call(_ name: String) throws(EngineError) {
    check(!isIdle, "engine contract: \(name) on an engine that is back in the pool")
    if let fault {
      self.fault = nil
      throw fault
    }
  }

  func prepare(_ configuration: RecognitionConfiguration) throws(EngineError) -> [EngineNotice] {
    check(!prepared, "engine contract: prepare twice without a reset")
    try call("prepare")
    prepared = true
    return try base.prepare(configuration)
  }

  func process(
    _ samples: UnsafeBufferPointer<Int16>,
    at position: Int
  ) throws(EngineError) -> EngineHypothesis? {
    check(prepared, "engine contract: process before prepare")
    if checksPositions {
      check(
        position == streamEnd,
        "engine contract: audio at sample \(position), but the samples before ended at \(streamEnd)"
      )
    }
    streamEnd = position + samples.count
    try call("process")
    return try base.process(samples, at: position)
  }

  func beginUtterance(at onset: Int) throws(EngineError) {
    check(prepared, "engine contract: beginUtterance before prepare")
    if checksPositions {
      check(
        onset >= 0 && onset <= streamEnd,
        "engine contract: an utterance begins at \(onset), outside the \(streamEnd) samples given"
      )
    }
    try call("beginUtterance")
    try base.beginUtterance(at: onset)
  }

  func endUtterance(at end: Int) throws(EngineError) -> [EngineHypothesis] {
    check(prepared, "engine contract: endUtterance before prepare")
    if checksPositions {
      check(
        end >= 0 && end <= streamEnd,
        "engine contract: an utterance ends at \(end), outside the \(streamEnd) samples given"
      )
    }
    try call("endUtterance")
    return try base.endUtterance(at: end)
  }

  func reset() {
    check(!isIdle, "engine contract: reset on an engine that is back in the pool")
    prepared = false
    streamEnd = 0
    fault = nil
    base.reset()
  }
}

/// The server's engine pool with one engine, so a second recognition at once is 409.
final class EnginePool {
  let engine: CheckedEngine
  private(set) var idle: CheckedEngine?

  init(_ engine: CheckedEngine) {
    self.engine = engine
    self.idle = engine
  }

  func acquire() -> CheckedEngine? {
    guard let engine = idle else { return nil }
    idle = nil
    engine.isIdle = false
    return engine
  }

  func release(_ engine: CheckedEngine) {
    check(idle == nil, "engine pool: an engine went back to the pool twice")
    check(engine === self.engine, "engine pool: an engine that is not the pool's came back")
    engine.isIdle = true
    idle = engine
  }
}
