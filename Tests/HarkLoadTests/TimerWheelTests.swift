import Testing

@testable import HarkLoad

@Suite("The timer wheel that paces every frame")
struct TimerWheelTests {
  @Test("elements come out at or after their due time, in tick order, never early")
  func order() {
    var wheel = TimerWheel<Int>(tickNanoseconds: 1_000, buckets: 8, start: 10_000)
    for (element, due) in [(1, 12_500), (2, 10_200), (3, 11_999), (4, 30_000), (5, 10_000)] {
      wheel.schedule(element, at: UInt64(due))
    }
    var out: [(Int, UInt64)] = []
    wheel.advance(to: 10_500) { element, due in out.append((element, due)) }
    #expect(out.map(\.0) == [2, 5])
    out = []
    wheel.advance(to: 12_000) { element, _ in out.append((element, 0)) }
    #expect(out.map(\.0) == [3])
    out = []
    // 30_000 is more than a lap (8 ticks) ahead of 12_000: it waits its turn.
    wheel.advance(to: 20_000) { element, _ in out.append((element, 0)) }
    #expect(out.map(\.0) == [1])
    #expect(wheel.count == 1)
    out = []
    wheel.advance(to: 29_999) { element, _ in out.append((element, 0)) }
    #expect(out.isEmpty)
    wheel.advance(to: 30_000) { element, _ in out.append((element, 0)) }
    #expect(out.map(\.0) == [4])
    #expect(wheel.count == 0)
  }

  @Test("a time already past is handed out by the next advance")
  func past() {
    var wheel = TimerWheel<String>(tickNanoseconds: 1_000, buckets: 4, start: 0)
    wheel.advance(to: 50_000) { _, _ in }
    wheel.schedule("late", at: 1_000)
    var out: [String] = []
    wheel.advance(to: 50_000) { element, _ in out.append(element) }
    #expect(out == ["late"])
  }

  @Test("what the body schedules again (a session's next frame) comes out on a later advance")
  func periodic() {
    var wheel = TimerWheel<Int>(tickNanoseconds: 1_000_000, buckets: 64, start: 0)
    // Three sessions, a frame every 20 ms, starting at different phases.
    for session in 0..<3 { wheel.schedule(session, at: UInt64(session) * 7_000_000) }
    var sent: [Int: [UInt64]] = [:]
    var now: UInt64 = 0
    while now <= 200_000_000 {
      var due: [(Int, UInt64)] = []
      wheel.advance(to: now) { session, time in due.append((session, time)) }
      for (session, time) in due {
        sent[session, default: []].append(time)
        wheel.schedule(session, at: time + 20_000_000)
      }
      now += 1_000_000
    }
    for session in 0..<3 {
      let times = sent[session] ?? []
      #expect(times.count == (200 - session * 7) / 20 + 1)
      #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 == 20_000_000 })
    }
  }

  @Test("a long stall: one lap hands out everything due")
  func stall() {
    var wheel = TimerWheel<Int>(tickNanoseconds: 1_000, buckets: 4, start: 0)
    for element in 0..<20 { wheel.schedule(element, at: UInt64(element) * 1_000) }
    var out: [Int] = []
    wheel.advance(to: 1_000_000) { element, _ in out.append(element) }
    #expect(out.sorted() == Array(0..<20))
    #expect(wheel.count == 0)
  }
}
