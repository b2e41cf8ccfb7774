import NIOConcurrencyHelpers
public import NIOCore
import Synchronization

/// Audio an application pushes to a recognition as it arrives — from a telephony callback, a
/// socket's read handler, a capture thread — with no task of its own.
///
/// ```swift
/// let (audio, writer) = RecognitionAudio.makeStream()
/// // From the media callback, on any thread, without `await`:
/// writer.yield(frame)
/// // When the caller hangs up:
/// writer.finish()
/// ```
///
/// Given to ``RecognizerClient/recognize(_:audio:metadata:timeout:prebufferLimit:trace:_:)``,
/// each frame goes straight into the recognition's inbox on its event loop, where the frames of
/// all recognitions on that loop are taken in one turn: no task wakes up per frame. (Any other
/// `AsyncSequence` of frames works too; the recognition then reads it from a task, which wakes
/// once per frame the producer hands over.) Iterated by other code, it is an ordinary
/// `AsyncSequence` of the frames yielded; consume it once.
///
/// Nothing is dropped silently: `yield` tells whether it took the frame. Frames yielded before
/// the recognition starts, and while the server or the network does not keep up (before the
/// 100 Continue, or while HTTP/2 flow control holds the stream), wait in memory up to
/// `bufferLimit` bytes; beyond it `yield` answers ``RecognitionAudioWriter/YieldResult/full``
/// and leaves the frame to the caller.
public struct RecognitionAudio: AsyncSequence, Sendable {
  public typealias Element = ByteBuffer
  public typealias Failure = Never

  let pipe: AudioPipe

  /// The most audio, in bytes, waiting by default: 64 s of 8 kHz L16, 32 s at 16 kHz.
  public static let defaultBufferLimit = 1 << 20

  /// A sequence of frames and the writer that feeds it.
  public static func makeStream(
    bufferLimit: Int = RecognitionAudio.defaultBufferLimit
  ) -> (audio: RecognitionAudio, writer: RecognitionAudioWriter) {
    let pipe = AudioPipe(limit: Swift.max(bufferLimit, 0))
    return (RecognitionAudio(pipe: pipe), RecognitionAudioWriter(pipe: pipe))
  }

  public func makeAsyncIterator() -> Iterator {
    Iterator(channel: pipe.channel)
  }

  /// Takes the frames a batch at a time, then hands them out one by one without a lock.
  public struct Iterator: AsyncIteratorProtocol {
    public typealias Element = ByteBuffer
    public typealias Failure = Never

    private var batches: BatchIterator<ByteBuffer>

    init(channel: BatchChannel<ByteBuffer>) {
      batches = BatchIterator(channel: channel)
    }

    public mutating func next(
      isolation actor: isolated (any Actor)? = #isolation
    ) async -> ByteBuffer? {
      await batches.next(isolation: actor)
    }

    public mutating func next() async -> ByteBuffer? {
      await batches.next(isolation: nil)
    }
  }
}

/// Feeds a ``RecognitionAudio`` from any thread, without `await`.
public struct RecognitionAudioWriter: Sendable {
  let pipe: AudioPipe

  /// What became of a yielded frame.
  public enum YieldResult: Sendable, Hashable {
    /// Taken: it will be sent in order.
    case enqueued
    /// Not taken: `bufferLimit` bytes already wait (the server or the network is not keeping
    /// up, or the recognition has not started). The caller keeps the frame.
    case full
    /// Not taken: the audio was finished, or the recognition ended and takes no more.
    case ended
  }

  /// Hands over a frame (empty frames are skipped when sent).
  @discardableResult
  public func yield(_ frame: ByteBuffer) -> YieldResult {
    pipe.yield(frame)
  }

  /// Ends the audio: the request stream is half-closed once every frame taken is sent.
  public func finish() {
    pipe.finish()
  }
}

/// The state behind a ``RecognitionAudio`` and its writer: frames wait in `channel` until a
/// recognition binds the pipe, then go straight to its driver.
final class AudioPipe: @unchecked Sendable {  // mutable state under `lock`
  /// `driver` once it is set (it is set once, under the lock, and never cleared), read without
  /// the lock: a frame for a bound pipe costs the driver's lock alone. Unretained: `driver`
  /// holds it for as long as the pipe lives.
  private let boundDriver = Atomic<Unmanaged<RecognitionDriver>?>(nil)
  let limit: Int
  let channel = BatchChannel<ByteBuffer>()
  private let lock = NIOLock()
  private var driver: RecognitionDriver?
  /// Bytes waiting in `channel`.
  private var bufferedBytes = 0
  private var finished = false
  /// A recognition took the pipe (or could not start): nothing waits in `channel` any more.
  private var bound = false

  init(limit: Int) {
    self.limit = limit
  }

  func yield(_ frame: ByteBuffer) -> RecognitionAudioWriter.YieldResult {
    if let driver = boundDriver.load(ordering: .acquiring) {
      return driver._withUnsafeGuaranteedRef { $0.offerNow(frame, limit: limit) }
    }
    lock.lock()
    if let driver {
      lock.unlock()
      return driver.offerNow(frame, limit: limit)
    }
    defer { lock.unlock() }
    if finished || bound { return .ended }
    // Frames a reader took no longer count.
    if bufferedBytes > 0 && channel.isEmpty { bufferedBytes = 0 }
    guard bufferedBytes + frame.readableBytes <= limit else { return .full }
    bufferedBytes += frame.readableBytes
    channel.send([frame], finish: false)
    return .enqueued
  }

  func finish() {
    lock.lock()
    if let driver {
      lock.unlock()
      driver.endOfAudio(failed: false)
      return
    }
    defer { lock.unlock() }
    guard !finished else { return }
    finished = true
    if !bound { channel.send([], finish: true) }
  }

  /// Hands the frames yielded so far, and every later one, to `driver`; false if the pipe was
  /// taken already.
  func bind(_ driver: RecognitionDriver) -> Bool {
    lock.lock()
    defer { lock.unlock() }
    guard !bound else { return false }
    bound = true
    // Under the lock, so that a frame yielded meanwhile follows these.
    for frame in channel.takeBuffered() {
      _ = driver.offerNow(frame, limit: .max)
    }
    bufferedBytes = 0
    if finished {
      driver.endOfAudio(failed: false)
    } else {
      self.driver = driver
      boundDriver.store(.passUnretained(driver), ordering: .releasing)
    }
    return true
  }

  /// No recognition will take the frames (it could not start): the writer's frames are refused.
  func close() {
    lock.withLock {
      bound = true
      bufferedBytes = 0
      _ = channel.takeBuffered()
      channel.send([], finish: true)
    }
  }
}
