/// A hashed timer wheel: what `hark load` paces every session's frames with, instead of a timer
/// (or a sleeping task) per frame.
///
/// Time is a parameter — nanoseconds on any monotonic clock — so tests drive the wheel
/// directly. Each bucket covers one tick; an element is filed in the bucket of its due tick and
/// handed out by the first ``advance(to:_:)`` whose time reaches its due time (never earlier).
/// Elements due further ahead than the wheel's span wait in their bucket for as many turns as
/// they need. Filing and handing out are O(1) per element.
public struct TimerWheel<Element> {
  /// The width of a bucket.
  public let tickNanoseconds: UInt64
  private var buckets: [[(due: UInt64, element: Element)]]
  private let mask: Int
  /// The next tick to hand out.
  private var nextTick: UInt64
  /// Elements filed and not yet handed out.
  public private(set) var count = 0

  /// A wheel of `buckets` (rounded up to a power of two) ticks of `tickNanoseconds`, starting at
  /// time `start`.
  public init(tickNanoseconds: UInt64, buckets: Int = 1024, start: UInt64) {
    precondition(tickNanoseconds > 0 && buckets > 0)
    var size = 1
    while size < buckets { size <<= 1 }
    self.tickNanoseconds = tickNanoseconds
    self.buckets = Array(repeating: [], count: size)
    self.mask = size - 1
    self.nextTick = start / tickNanoseconds
  }

  /// Files `element`, due at `due` (a time already past is handed out by the next advance).
  public mutating func schedule(_ element: Element, at due: UInt64) {
    let tick = max(due / tickNanoseconds, nextTick)
    buckets[Int(tick & UInt64(mask))].append((due, element))
    count += 1
  }

  /// Hands out, in tick order, every element due at or before `now`, and files nothing new in
  /// the ticks it passes (`body` may schedule: later ticks are handed out by later advances).
  public mutating func advance(to now: UInt64, _ body: (Element, _ due: UInt64) -> Void) {
    let lastTick = now / tickNanoseconds
    // A long stall: one lap of the wheel covers every bucket.
    var tick = nextTick
    let end = min(lastTick, nextTick + UInt64(mask))
    while tick <= end {
      let index = Int(tick & UInt64(mask))
      if !buckets[index].isEmpty {
        var bucket: [(due: UInt64, element: Element)] = []
        swap(&bucket, &buckets[index])
        for entry in bucket {
          if entry.due <= now {
            count -= 1
            body(entry.element, entry.due)
          } else {
            // Due in a later lap, or later within this tick.
            buckets[index].append(entry)
          }
        }
        if buckets[index].isEmpty {
          // Keep the storage for the bucket's next turn.
          bucket.removeAll(keepingCapacity: true)
          swap(&bucket, &buckets[index])
        }
      }
      tick += 1
    }
    // Ticks passed in full are done; the current one may still get elements due later in it.
    nextTick = max(nextTick, lastTick)
  }
}
