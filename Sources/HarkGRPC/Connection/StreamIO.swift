import HarkGRPCCore
import NIOCore

/// The HTTP/2 side of one stream, common to both roles: the body waiting for nghttp2, what
/// follows it, and the inbound bytes not yet acknowledged. Nothing of it is public.
///
/// ``GRPCClientStream`` and ``GRPCServerStream`` are subclasses rather than owners of one, so
/// that an audio message touches one per-stream object rather than two: at thousands of streams
/// a loop's objects do not stay in cache, and the second object's first touch was a tenth of
/// `hark load`'s CPU.
public class StreamIO {
  /// Framed messages waiting to be taken by nghttp2's data provider.
  final var outbound = ByteBuffer()
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

  init(highWatermark: Int = 64 << 10, lowWatermark: Int = 16 << 10) {
    self.highWatermark = highWatermark
    self.lowWatermark = lowWatermark
  }

  /// Answers nghttp2's request for up to `maxLength` body bytes.
  final func read(maxLength: Int) -> NGHTTP2DataRead {
    let available = outbound.readableBytes
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
    // Copied straight from the queue's storage (a slice would retain it).
    let copied = outbound.withUnsafeReadableBytes { queued in
      buffer.writeBytes(UnsafeRawBufferPointer(rebasing: queued.prefix(length)))
    }
    outbound.moveReaderIndex(forwardBy: copied)
    if outbound.readableBytes == 0 {
      // Reuse the storage rather than let the queue grow.
      outbound.clear()
    }
    if !isWritable && outbound.readableBytes <= lowWatermark {
      isWritable = true
      return true
    }
    return false
  }

  /// Records that messages were queued; returns true when this made the stream unwritable.
  final func didQueue() -> Bool {
    if isWritable && outbound.readableBytes > highWatermark {
      isWritable = false
      return true
    }
    return false
  }

  /// Whether output has waited untaken for `timeout` (see ``WriteStallDetector``).
  final func checkStall(timeout: TimeAmount, now: NIODeadline) -> Bool {
    if stallDetector == nil { stallDetector = WriteStallDetector(timeout: timeout) }
    let pending = outbound.readableBytes > 0 || (outboundEnded && !endWritten)
    return stallDetector!.check(pendingBytes: pending, bytesTaken: bytesTaken, now: now)
  }

  /// Whether nghttp2 must be told that data is ready.
  final func takeDeferred() -> Bool {
    defer { deferred = false }
    return deferred
  }
}
