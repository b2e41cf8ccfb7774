import Testing

@testable import HarkLoad

@Suite("The frame ring that paces every session's frames")
struct FrameRingTests {
  final class Session: RingElement {
    let name: Int
    var visits: [UInt64] = []
    /// Leaves the ring after this many visits.
    var visitsLeft: Int
    init(_ name: Int, visits: Int = .max) {
      self.name = name
      self.visitsLeft = visits
    }
  }

  @Test("the tick divides the period: exactly when it can, else a few nanoseconds short")
  func tick() {
    #expect(
      FrameRing<Session>(periodNanoseconds: 20_000_000, tickNanoseconds: 1_000_000, start: 0)
        .tickNanoseconds == 1_000_000
    )
    // A third of 20 ms: 7 ticks of 952,380 ns (6 ns short of the period).
    #expect(
      FrameRing<Session>(periodNanoseconds: 6_666_666, tickNanoseconds: 1_000_000, start: 0)
        .tickNanoseconds == 952_380
    )
    // A period shorter than a tick: one bucket.
    #expect(
      FrameRing<Session>(periodNanoseconds: 300_000, tickNanoseconds: 1_000_000, start: 0)
        .tickNanoseconds == 300_000
    )
  }

  @Test("each element is visited at its phase once a period, never before its first due time")
  func phases() {
    let ring = FrameRing<Session>(
      periodNanoseconds: 20_000_000,
      tickNanoseconds: 1_000_000,
      start: 0
    )
    let sessions = (0..<3).map { Session($0) }
    // Due at 0, 7.5 ms and 14.2 ms: visited at the tick boundaries at or after them.
    let dues: [UInt64] = [0, 7_500_000, 14_200_000]
    for (session, due) in zip(sessions, dues) { ring.insert(session, due: due) }
    var now: UInt64 = 0
    while now <= 100_000_000 {
      ring.advance(to: now) { session in
        session.visits.append(now)
        return true
      }
      now += 250_000
    }
    #expect(sessions[0].visits == [0, 20, 40, 60, 80, 100].map { $0 * 1_000_000 })
    #expect(sessions[1].visits == [8, 28, 48, 68, 88].map { $0 * 1_000_000 })
    #expect(sessions[2].visits == [15, 35, 55, 75, 95].map { $0 * 1_000_000 })
    #expect(ring.count == 3)
  }

  @Test("an element leaves when its visit says so, and the others in its bucket are still visited")
  func leaving() {
    let ring = FrameRing<Session>(periodNanoseconds: 4_000, tickNanoseconds: 1_000, start: 0)
    // Five in one bucket, leaving after 1, 2, 3, 4 and 5 visits.
    let sessions = (0..<5).map { Session($0, visits: $0 + 1) }
    for session in sessions { ring.insert(session, due: 2_000) }
    var now: UInt64 = 0
    while now <= 40_000 {
      ring.advance(to: now) { session in
        session.visits.append(now)
        session.visitsLeft -= 1
        return session.visitsLeft > 0
      }
      now += 1_000
    }
    for session in sessions {
      #expect(session.visits == (0...session.name).map { UInt64(2_000 + 4_000 * $0) })
    }
    #expect(ring.count == 0)
  }

  @Test("a boundary already visited: the element waits for the next advance's first boundary")
  func past() {
    let ring = FrameRing<Session>(periodNanoseconds: 4_000, tickNanoseconds: 1_000, start: 0)
    ring.advance(to: 50_500) { _ in true }
    let late = Session(0)
    ring.insert(late, due: 1_000)
    ring.advance(to: 50_900) { session in
      session.visits.append(50_900)
      return true
    }
    #expect(late.visits.isEmpty)
    ring.advance(to: 51_000) { session in
      session.visits.append(51_000)
      return true
    }
    #expect(late.visits == [51_000])
  }

  @Test("a stall longer than a period: one lap visits every element once")
  func stall() {
    let ring = FrameRing<Session>(periodNanoseconds: 4_000, tickNanoseconds: 1_000, start: 0)
    let sessions = (0..<20).map { Session($0) }
    for (index, session) in sessions.enumerated() { ring.insert(session, due: UInt64(index) * 100) }
    ring.advance(to: 1_000_000) { session in
      session.visits.append(1_000_000)
      return true
    }
    #expect(sessions.allSatisfy { $0.visits == [1_000_000] })
  }

  @Test("the ring holds its elements until they leave, and lets go of the rest when it goes")
  func ownership() {
    weak var left: Session?
    weak var stayed: Session?
    var ring: FrameRing<Session>? = FrameRing(
      periodNanoseconds: 2_000,
      tickNanoseconds: 1_000,
      start: 0
    )
    do {
      let leaving = Session(0)
      let staying = Session(1)
      left = leaving
      stayed = staying
      ring?.insert(leaving, due: 0)
      ring?.insert(staying, due: 1_000)
    }
    #expect(left != nil && stayed != nil)
    ring?.advance(to: 1_500) { $0.name == 1 }
    #expect(left == nil)
    #expect(stayed != nil)
    ring = nil
    #expect(stayed == nil)
  }
}
