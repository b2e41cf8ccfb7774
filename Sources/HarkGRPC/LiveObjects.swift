import Synchronization

/// Counts of a server's transport objects alive in the process: a connection handler or stream
/// that outlives its socket or call shows here as a count that never returns to zero.
///
/// For tests, soaks and leak alarms; each count changes once per object, so keeping it costs
/// nothing per message.
public final class LiveObjects: Sendable {
  /// HTTP/2 connection handlers (one per connection) not yet freed.
  public var connections: Int { connectionHandlers.value }
  /// Streams (one per RPC) not yet freed.
  public var streams: Int { serverStreams.value }

  /// DATA frames whose stream's handler the closed connections prefetched before nghttp2 handed
  /// the frame over (for tests: the prefetch follows the frames).
  public var prefetchedFrames: Int { prefetchedFrameCount.value }

  /// RST_STREAM frames received from clients, on any stream (for tests: which resets clients
  /// send).
  public var resetsReceived: Int { resetsReceivedCount.value }

  let connectionHandlers = Counter()
  let serverStreams = Counter()
  let prefetchedFrameCount = Counter()
  let resetsReceivedCount = Counter()

  public init() {}

  /// A count that objects add to as they are made and subtract from as they are freed.
  public final class Counter: Sendable {
    private let count = Atomic<Int>(0)

    public init() {}

    /// Adds `delta` (1 as an object is made, -1 as it is freed).
    public func add(_ delta: Int) {
      count.add(delta, ordering: .relaxed)
    }

    /// The current count.
    public var value: Int { count.load(ordering: .relaxed) }
  }
}
