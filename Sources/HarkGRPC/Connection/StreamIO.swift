import HarkGRPCCore
import NIOCore

/// The HTTP/2 side of one stream, common to both roles: the body waiting for nghttp2, what
/// follows it, and the inbound bytes not yet acknowledged. Only `isWritable` is public.
///
/// ``GRPCClientStream`` and ``GRPCServerStream`` are subclasses rather than owners of one, so
/// that an audio message touches one per-stream object rather than two: at thousands of streams
/// a loop's objects do not stay in cache, and the second object's first touch was a tenth of
/// `hark load`'s CPU.
public class StreamIO {
  /// Framed messages waiting to be taken by nghttp2's data provider, after those in the
  /// connection's scratch (see ``OutboundScratch``).
  final private(set) var outbound = ByteBuffer()
  /// The connection's buffer for the first message each stream queues between two flushes.
  private unowned(unsafe) let scratch: OutboundScratch
  /// This stream's bytes in `scratch.buffer`, which come before `outbound`'s.
  final private var scratchStart = 0
  final private var scratchLength = 0
  /// Whether this stream is in `scratch.users`.
  final fileprivate var usesScratch = false
  /// END_STREAM follows the queued bytes.
  final var outboundEnded = false
  /// Trailers follow the queued bytes (a server's status).
  final var trailers: [HTTPHeaderField]?
  /// nghttp2 was told there is nothing to send and waits for `resumeData`.
  final var deferred = false
  /// Inbound bytes received but not yet acknowledged with `consume`.
  final var unconsumedBytes = 0
  /// While true, consumed bytes are not acknowledged: the application's buffer is full, so the
  /// peer's window stays closed until it drains.
  final var consumptionHeld = false
  /// Bytes consumed while `consumptionHeld`, to acknowledge on release.
  final var heldBytes = 0
  /// Above this many queued bytes the stream stops accepting writes.
  let highWatermark: Int
  /// Below this many queued bytes it accepts them again.
  let lowWatermark: Int
  /// Whether the send queue is below its high watermark (the last writability reported).
  public final private(set) var isWritable = true
  /// Body bytes nghttp2 has taken so far (for the write-stall check).
  final private(set) var bytesTaken = 0
  /// This side's END_STREAM went out: nothing is left to send.
  final var endWritten = false
  /// Watches for output the peer does not take; made at the first check.
  final private var stallDetector: WriteStallDetector?

  /// `scratch` is the connection's, which outlives its streams' use of it (it lets them go at
  /// each flush and when the connection goes).
  init(scratch: OutboundScratch, highWatermark: Int = 64 << 10, lowWatermark: Int = 16 << 10) {
    self.scratch = scratch
    self.highWatermark = highWatermark
    self.lowWatermark = lowWatermark
  }

  /// The bytes queued for nghttp2.
  final var queuedBytes: Int { scratchLength + outbound.readableBytes }

  /// Queues a framed message. A stream's first message since the last flush goes to the
  /// connection's scratch, which every stream shares and which stays in cache, rather than to
  /// the stream's own buffer, whose storage at thousands of streams is a cache miss a message.
  final func enqueue(_ message: some GRPCCodable) {
    if scratchLength == 0 && outbound.readableBytes == 0 && scratch.isOpen {
      let start = scratch.buffer.writerIndex
      scratch.buffer.writeGRPCMessage(message)
      scratchStart = start
      scratchLength = scratch.buffer.writerIndex - start
      if !usesScratch {
        usesScratch = true
        scratch.users.append(self)
      }
      return
    }
    leaveScratch()
    outbound.writeGRPCMessage(message)
  }

  /// Moves this stream's bytes from the scratch to its own buffer (in order, before any later).
  final fileprivate func leaveScratch() {
    guard scratchLength > 0 else { return }
    // A stream's bytes are in the scratch only while its own buffer is empty (`enqueue`). They
    // are copied, not shared: the scratch's storage is reused at the next flush.
    assert(outbound.readableBytes == 0)
    outbound.clear()
    outbound.writeImmutableBuffer(scratch.buffer.getSlice(at: scratchStart, length: scratchLength)!)
    scratchLength = 0
  }

  /// Drops every queued byte (the stream was reset).
  final func clearQueue() {
    scratchLength = 0
    outbound.clear()
  }

  /// Answers nghttp2's request for up to `maxLength` body bytes.
  final func read(maxLength: Int) -> NGHTTP2DataRead {
    let available = queuedBytes
    if available == 0 && !outboundEnded {
      deferred = true
      return .deferred
    }
    let length = min(available, maxLength)
    let ends = outboundEnded && length == available
    return .data(length: length, endStream: ends, trailers: ends ? trailers : nil)
  }

  /// Moves `length` queued bytes into `buffer` (the DATA frame nghttp2 is writing); returns true
  /// when this made the stream writable again.
  final func write(_ length: Int, into buffer: inout ByteBuffer) -> Bool {
    bytesTaken &+= length
    if scratchLength > 0 {
      // The scratch's bytes come first, and `read` announced no more than they hold when
      // there are any (the stream's own buffer is empty then).
      let copied = Swift.min(length, scratchLength)
      scratch.buffer.withUnsafeReadableBytes { all in
        let start = scratchStart - scratch.buffer.readerIndex
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: all[start..<start + copied]))
      }
      scratchStart += copied
      scratchLength -= copied
    } else {
      // Copied straight from the queue's storage (a slice would retain it).
      let copied = outbound.withUnsafeReadableBytes { queued in
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: queued.prefix(length)))
      }
      outbound.moveReaderIndex(forwardBy: copied)
    }
    if outbound.readableBytes == 0 {
      // Reuse the storage rather than let the queue grow.
      outbound.clear()
    } else if outbound.readerIndex >= Swift.max(outbound.readableBytes, 16 << 10) {
      // A queue that is topped up before it empties (a stream held by flow control) would
      // otherwise write each message after the last at an ever higher index, and its storage
      // would grow without bound. Moving the unread bytes to the front once they are no more
      // than the bytes already read costs at most one copy of each byte.
      outbound.discardReadBytes()
    }
    if !isWritable && queuedBytes <= lowWatermark {
      isWritable = true
      return true
    }
    return false
  }

  /// Records that messages were queued; returns true when this made the stream unwritable.
  final func didQueue() -> Bool {
    if isWritable && queuedBytes > highWatermark {
      isWritable = false
      return true
    }
    return false
  }

  /// Whether output has waited untaken for `timeout` (see ``WriteStallDetector``).
  final func checkStall(timeout: TimeAmount, now: NIODeadline) -> Bool {
    if stallDetector == nil { stallDetector = WriteStallDetector(timeout: timeout) }
    let pending = queuedBytes > 0 || (outboundEnded && !endWritten)
    return stallDetector!.check(pendingBytes: pending, bytesTaken: bytesTaken, now: now)
  }

  /// Asks the CPU to bring in what handling this stream's next inbound message reads beyond the
  /// stream itself (its handler), without waiting for it. Called unretained, before nghttp2
  /// parses a read: it may read the stream's own fields and nothing else.
  func prefetchHandler() {}

  /// The 64-byte lines of a stream object worth prefetching: all of a client's or a server's
  /// stream (about 400 bytes; their handler fields are among the last).
  @inlinable package static var prefetchLines: Int32 { 8 }

  /// After ``prefetchHandler()``: what the handler's handling of the message reads next (the
  /// handler's own objects). Called unretained, like it.
  func prefetchHandlerDependents() {}

  /// Whether nghttp2 must be told that data is ready.
  final func takeDeferred() -> Bool {
    defer { deferred = false }
    return deferred
  }
}

/// The connection's buffer for the first message each of its streams queues between two
/// flushes: at a flush nghttp2 copies them from here into its DATA frames, and what it did not
/// take (a stream held by flow control) moves to its stream's own buffer. One buffer, written in
/// order and reused at every flush, stays in cache where thousands of per-stream buffers do not.
final class OutboundScratch {
  var buffer = ByteBuffer()
  /// The streams with bytes here (strong, until the next flush).
  fileprivate(set) var users: [StreamIO] = []
  /// False once the connection is gone: streams queue in their own buffers.
  fileprivate(set) var isOpen = true

  /// After a flush: what nghttp2 left moves to its streams' own buffers, and the scratch is
  /// empty again.
  func flushed() {
    for stream in users {
      stream.leaveScratch()
      stream.usesScratch = false
    }
    users.removeAll(keepingCapacity: true)
    buffer.clear()
  }

  /// The connection is gone: no stream uses the scratch any more.
  func close() {
    flushed()
    isOpen = false
  }
}
