import Dispatch
public import Testing

/// Runs the jobs of the tasks that prefer it on Dispatch's threads rather than the cooperative
/// pool's.
public final class DispatchTaskExecutor: TaskExecutor, @unchecked Sendable {
  /// The executor of `.cpuBound` tests.
  public static let cpuBound = DispatchTaskExecutor(label: "hark.tests.cpu-bound")

  private let queue: DispatchQueue

  init(label: String) {
    // Concurrent: a task never has two jobs at once, so each test still runs in order.
    queue = DispatchQueue(label: label, attributes: .concurrent)
  }

  public func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}

/// For tests that compute for seconds without suspending (speech decoding, tens of thousands of
/// random messages): they run on Dispatch's threads, not the cooperative pool's two (one per
/// core), which they would otherwise hold while every other test's tasks wait and their timeouts
/// run out. The test keeps its task, so its task-locals — and its `#expect`s — stay its own.
public struct CPUBoundTrait: TestTrait, SuiteTrait, TestScoping {
  public var isRecursive: Bool { true }

  public func provideScope(
    for test: Test,
    testCase: Test.Case?,
    performing function: @Sendable () async throws -> Void
  ) async throws {
    try await withTaskExecutorPreference(DispatchTaskExecutor.cpuBound) {
      try await function()
    }
  }
}

extension Trait where Self == CPUBoundTrait {
  /// Runs the test (or every test of the suite) off the cooperative pool.
  public static var cpuBound: Self { CPUBoundTrait() }
}
