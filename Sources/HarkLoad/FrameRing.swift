import CHarkPrefetch

/// Paces elements that each act once per period at a phase of their own (`hark load`'s sessions,
/// a frame every 20 ms): a ring of one bucket per tick of the period, where an element is filed
/// once, in the bucket of its phase, and visited in place at every turn until it asks to leave.
///
/// It replaced a hashed timer wheel that re-filed every session at every frame: at 5,000
/// sessions, moving each one out of its bucket and into the next (a retain, a release and an
/// array copy per frame, on objects no longer in cache) was a fifth of the load generator's CPU.
/// Here a visit reads an unretained reference from a bucket that stays in place; the ring holds
/// one reference to each element from ``insert(_:due:)`` until the visit that returns false.
///
/// The ring's tick divides the period exactly (at most `buckets − 1` nanoseconds short of it:
/// 20 ms in 1 ms ticks is exact; a third of it is 7 ticks of 952,380 ns). Time is a parameter —
/// nanoseconds on any monotonic clock — so tests drive the ring directly. An element that falls
/// behind its phase (its visit could not act) is the caller's to catch up between visits.
final class FrameRing<Element: RingElement> {
  /// The width of a bucket; a multiple of it spans the period.
  let tickNanoseconds: UInt64
  private var buckets: [ContiguousArray<Unmanaged<Element>>]
  /// The first tick whose boundary has not been visited.
  private var nextTick: UInt64
  /// Elements in the ring.
  private(set) var count = 0

  /// A ring whose ticks are as close to `tickNanoseconds` as divides `periodNanoseconds`,
  /// starting at time `start`.
  init(periodNanoseconds: UInt64, tickNanoseconds: UInt64, start: UInt64) {
    precondition(periodNanoseconds > 0 && tickNanoseconds > 0)
    let buckets = max(1, (periodNanoseconds + tickNanoseconds / 2) / tickNanoseconds)
    self.tickNanoseconds = max(1, periodNanoseconds / buckets)
    self.buckets = Array(repeating: [], count: Int(buckets))
    self.nextTick = start.divided(roundingUpBy: self.tickNanoseconds)
  }

  deinit {
    for bucket in buckets {
      for element in bucket { element.release() }
    }
  }

  /// Files `element` at the phase of `due`: its first visit is at the first tick boundary at or
  /// after `due` (the next advance's first, if that boundary was visited already), then one
  /// every period.
  func insert(_ element: Element, due: UInt64) {
    let tick = max(due.divided(roundingUpBy: tickNanoseconds), nextTick)
    buckets[Int(tick % UInt64(buckets.count))].append(.passRetained(element))
    count += 1
  }

  /// Visits, tick by tick, the elements of every tick boundary passed by `now` (one lap at most,
  /// after a stall longer than a period). `visit` returns whether the element stays; it may
  /// insert elements but not advance the ring.
  func advance(to now: UInt64, _ visit: (Element) -> Bool) {
    let lastTick = now / tickNanoseconds
    guard lastTick >= nextTick else { return }
    let lap = UInt64(buckets.count)
    var tick = lastTick >= nextTick + lap ? lastTick + 1 - lap : nextTick
    nextTick = lastTick + 1
    while tick <= lastTick {
      let bucket = Int(tick % lap)
      var index = 0
      while index < buckets[bucket].count {
        prefetch(bucket, index)
        let element = buckets[bucket][index]
        if element._withUnsafeGuaranteedRef(visit) {
          index += 1
        } else {
          // The visit inserts only at the end, so `element` is still at `index`.
          buckets[bucket].swapAt(index, buckets[bucket].count - 1)
          buckets[bucket].removeLast().release()
          count -= 1
        }
      }
      tick += 1
    }
  }
}

extension FrameRing {
  /// How many visits ahead each stage of the prefetch runs (see ``RingElement``).
  static var prefetchDistances: (object: Int, stage1: Int, stage2: Int) { (8, 5, 2) }

  /// Before the visit at `index`: the later elements' memory, so that it arrives while the
  /// elements in between are visited.
  @inline(__always)
  private func prefetch(_ bucket: Int, _ index: Int) {
    let count = buckets[bucket].count
    let distances = Self.prefetchDistances
    if index + distances.object < count {
      hark_prefetch_lines(buckets[bucket][index + distances.object].toOpaque(), 2)
    }
    if index + distances.stage1 < count {
      buckets[bucket][index + distances.stage1]._withUnsafeGuaranteedRef { $0.prefetch(stage: 1) }
    }
    if index + distances.stage2 < count {
      buckets[bucket][index + distances.stage2]._withUnsafeGuaranteedRef { $0.prefetch(stage: 2) }
    }
  }
}

/// An element of a ``FrameRing``.
///
/// At thousands of elements, an element's memory (and the objects its visit goes through) has
/// left the cache by its next turn, and each first touch waits for memory in turn. The ring
/// prefetches the element's own first lines some visits ahead, then asks the element, one
/// stage at a time as its turn nears, to prefetch what it points to: stage 1 may read the
/// element's own fields (prefetched by then), stage 2 what stage 1 prefetched.
protocol RingElement: AnyObject {
  func prefetch(stage: Int)
}

extension RingElement {
  func prefetch(stage: Int) {}
}

extension UInt64 {
  fileprivate func divided(roundingUpBy divisor: UInt64) -> UInt64 {
    self / divisor + (self % divisor == 0 ? 0 : 1)
  }
}
