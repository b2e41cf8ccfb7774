internal import Dispatch
import HarkRecognizer
import NIOCore

/// Runs one recognition's engine, and brings each of its answers back through one callback,
/// on the session's event loop.
///
/// An engine that ``SpeechEngine/runsOnWorkerThread`` (speech decoding: milliseconds a message)
/// runs on a serial queue of its own, so it never stalls the loop's other connections; its jobs
/// copy their samples, and their answers come back to the loop in order. Any other engine (DTMF:
/// microseconds) runs inline, on the samples the session decoded into its per-thread buffer: no
/// copy, no allocation, and its answer is delivered before the call returns. Either way
/// ``SpeechEngine/prepare(_:)``, which may compile a grammar, runs off the loop: on the worker,
/// or on Dispatch's global queue (not NIO's small thread pool, which a few slow preparations
/// would fill, holding up every other recognition's).
///
/// A worker that falls more than `maxBufferedSamples` behind is reported (``behindChanged``), so
/// that the session stops acknowledging the client's data; it is again once half of them are
/// done. The engine goes back to its pool only once it is idle: after the jobs still queued, or
/// after a preparation still running.
///
/// Used on its event loop only.
final class EngineRunner {
  /// What the engine answered.
  enum Answer: Sendable {
    /// ``SpeechEngine/prepare(_:)`` returned: its notices, or why it refused the recognition.
    case prepared(Result<[EngineNotice], EngineError>)
    /// A partial hypothesis, of the samples that start at `position`.
    case partial(EngineHypothesis, position: Int)
    /// The hypotheses of the utterance that ended at `end`.
    case final([EngineHypothesis], end: Int)
    /// The engine failed.
    case failed(EngineError)
  }

  /// An engine handed to another thread: the runner lets one thread at a time call it (the
  /// worker, the thread pool while preparing, or the loop).
  private struct HandedEngine: @unchecked Sendable {
    let engine: any SpeechEngine
  }

  /// One call of the engine.
  private enum Job: Sendable {
    case prepare(RecognitionConfiguration)
    case audio(position: Int)
    case beginUtterance(onset: Int)
    case endUtterance(end: Int)
  }

  private let engine: any SpeechEngine
  private let pool: EnginePool
  private let eventLoop: any EventLoop
  private let worker: DispatchQueue?
  private let maxBufferedSamples: Int
  /// Samples handed to the worker and not yet done.
  private var bufferedSamples = 0
  private var behind = false
  private var preparing = false
  private var released = false
  /// Where answers go; dropped on ``release()`` (it holds the session).
  private var answered: ((Answer) -> Void)?
  /// Told when the worker falls behind (true) and catches up (false).
  private var behindChanged: ((Bool) -> Void)?

  /// A runner of `engine`, taken from `pool`, for a session on `eventLoop`.
  init(
    engine: any SpeechEngine,
    pool: EnginePool,
    eventLoop: any EventLoop,
    maxBufferedSamples: Int,
    answered: @escaping (Answer) -> Void,
    behindChanged: @escaping (Bool) -> Void
  ) {
    self.engine = engine
    self.pool = pool
    self.eventLoop = eventLoop
    self.worker = engine.runsOnWorkerThread ? DispatchQueue(label: "hark.engine") : nil
    self.maxBufferedSamples = max(maxBufferedSamples, 1)
    self.answered = answered
    self.behindChanged = behindChanged
  }

  /// Where the runner and its engine are in memory, for a session's prefetch.
  struct Addresses {
    var runner: UnsafeRawPointer
    var engine: UnsafeRawPointer
    /// The 64-byte lines of the engine's object worth prefetching.
    var engineLines: Int32
  }

  var addresses: Addresses {
    Addresses(
      runner: UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()),
      engine: UnsafeRawPointer(Unmanaged.passUnretained(engine as AnyObject).toOpaque()),
      engineLines: Int32(engine.prefetchLines)
    )
  }

  /// Prepares the engine for `configuration`, off the event loop; answers ``Answer/prepared(_:)``.
  func prepare(_ configuration: RecognitionConfiguration) {
    preparing = true
    let handed = HandedEngine(engine: engine)
    let runner = NIOLoopBound(self, eventLoop: eventLoop)
    let eventLoop = self.eventLoop
    let job: @Sendable () -> Void = {
      let answer = Self.run(
        .prepare(configuration),
        on: handed.engine,
        samples: .init(start: nil, count: 0)
      )
      eventLoop.execute { runner.value.completed(answer, samples: 0) }
    }
    (worker ?? DispatchQueue.global()).async(execute: job)
  }

  /// Gives the engine `samples`, which start at `position`.
  func audio(_ samples: UnsafeBufferPointer<Int16>, at position: Int) {
    run(.audio(position: position), samples: samples)
  }

  /// An utterance began at `onset`.
  func beginUtterance(at onset: Int) {
    run(.beginUtterance(onset: onset), samples: .init(start: nil, count: 0))
  }

  /// The utterance ended at `end`: its final hypotheses follow.
  func endUtterance(at end: Int) {
    run(.endUtterance(end: end), samples: .init(start: nil, count: 0))
  }

  /// The recognition is over: no more answers; the engine is reset and goes back to the pool
  /// once it is idle.
  func release() {
    guard !released else { return }
    released = true
    answered = nil
    behindChanged = nil
    // A preparation still running releases the engine when it returns.
    if !preparing { returnEngine() }
  }

  // MARK: Running jobs

  /// Runs `job` inline, or queues it for the worker with a copy of its samples.
  private func run(_ job: Job, samples: UnsafeBufferPointer<Int16>) {
    guard !released else { return }
    guard let worker else {
      if let answer = Self.run(job, on: engine, samples: samples) { deliver(answer) }
      return
    }
    let count = samples.count
    // The session reuses its buffer for the next message: the job takes a copy.
    let copy = Array(samples)
    bufferedSamples += count
    if bufferedSamples > maxBufferedSamples && !behind {
      behind = true
      behindChanged?(true)
    }
    let handed = HandedEngine(engine: engine)
    let runner = NIOLoopBound(self, eventLoop: eventLoop)
    let eventLoop = self.eventLoop
    worker.async {
      let answer = copy.withUnsafeBufferPointer { Self.run(job, on: handed.engine, samples: $0) }
      guard answer != nil || count > 0 else { return }
      eventLoop.execute { runner.value.completed(answer, samples: count) }
    }
  }

  /// A job of the worker or the thread pool finished: back on the loop.
  private func completed(_ answer: Answer?, samples: Int) {
    bufferedSamples -= samples
    if case .prepared? = answer {
      preparing = false
      // Released while it prepared: nobody waits for it any more.
      if released {
        returnEngine()
        return
      }
    }
    if behind && bufferedSamples <= maxBufferedSamples / 2 {
      behind = false
      behindChanged?(false)
    }
    if let answer { deliver(answer) }
  }

  private func deliver(_ answer: Answer) {
    guard !released else { return }
    answered?(answer)
  }

  /// Resets the engine and returns it to the pool, after the worker's queued jobs.
  private func returnEngine() {
    let handed = HandedEngine(engine: engine)
    let pool = self.pool
    guard let worker else {
      engine.reset()
      pool.release(engine)
      return
    }
    worker.async {
      handed.engine.reset()
      pool.release(handed.engine)
    }
  }

  /// One call of `engine`; its answer, if it has one.
  private static func run(
    _ job: Job,
    on engine: any SpeechEngine,
    samples: UnsafeBufferPointer<Int16>
  ) -> Answer? {
    do throws(EngineError) {
      switch job {
      case .prepare(let configuration):
        return .prepared(.success(try engine.prepare(configuration)))
      case .audio(let position):
        return try engine.process(samples, at: position).map { .partial($0, position: position) }
      case .beginUtterance(let onset):
        try engine.beginUtterance(at: onset)
        return nil
      case .endUtterance(let end):
        return .final(try engine.endUtterance(at: end), end: end)
      }
    } catch {
      if case .prepare = job { return .prepared(.failure(error)) }
      return .failed(error)
    }
  }
}
