import HarkGRPCCore
import NIOCore
import Testing

/// The connection limits on a virtual clock: each timeout fires exactly when due, and not a
/// moment before.
@Suite("Server connection policy")
struct ServerConnectionPolicyTests {
  let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

  func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

  @Test("no SETTINGS within the handshake timeout closes the connection with NO_ERROR")
  func handshakeTimeout() {
    var policy = ServerConnectionPolicy(
      limits: .init(handshakeTimeout: .seconds(10), idleTimeout: .seconds(1)),
      now: start
    )
    #expect(policy.nextDeadline == at(10_000))
    // The idle timeout does not run before the handshake.
    #expect(policy.tick(now: at(9_999)) == .proceed)
    guard case .close(let error, let code) = policy.tick(now: at(10_000)) else {
      Issue.record("expected a close")
      return
    }
    #expect(error.limit == .handshakeTimeout)
    #expect(error.message == "no HTTP/2 preface and SETTINGS within 10 s")
    #expect(code == .noError)
    // Decided once: later events are ignored.
    #expect(policy.tick(now: at(20_000)) == .proceed)
    #expect(policy.nextDeadline == nil)
  }

  @Test("idle from the handshake while no stream is open; a stream stops the clock")
  func idleTimeout() {
    var policy = ServerConnectionPolicy(
      limits: .init(handshakeTimeout: .seconds(10), idleTimeout: .milliseconds(500)),
      now: start
    )
    policy.receivedSettings(now: at(100))
    #expect(policy.nextDeadline == at(600))
    policy.streamOpened()
    #expect(policy.nextDeadline == nil)
    #expect(policy.tick(now: at(60_000)) == .proceed)
    policy.streamClosed(now: at(60_000))
    #expect(policy.tick(now: at(60_499)) == .proceed)
    guard case .close(let error, .noError) = policy.tick(now: at(60_500)) else {
      Issue.record("expected a close")
      return
    }
    #expect(error.limit == .idleTimeout)
    #expect(error.message == "no stream for 500 ms")
  }

  @Test("resets: a burst up to the limit passes, one more is ENHANCE_YOUR_CALM; tokens refill")
  func resetRate() {
    var policy = ServerConnectionPolicy(
      limits: .init(resetBurst: 10, resetsPerSecond: 5),
      now: start
    )
    for _ in 0..<10 { #expect(policy.receivedReset(now: start) == .proceed) }
    // A second later, five more tokens.
    for _ in 0..<5 { #expect(policy.receivedReset(now: at(1000)) == .proceed) }
    guard case .close(let error, .enhanceYourCalm) = policy.receivedReset(now: at(1000)) else {
      Issue.record("expected ENHANCE_YOUR_CALM")
      return
    }
    #expect(error.limit == .resetRate)
  }

  @Test("oversized header lists: each refuses its stream, one past the limit closes")
  func oversizedHeaderLists() {
    var policy = ServerConnectionPolicy(limits: .init(maxOversizedHeaderLists: 2), now: start)
    #expect(policy.receivedOversizedHeaderList(size: 20_000, limit: 16_384) == .proceed)
    #expect(policy.receivedOversizedHeaderList(size: 20_000, limit: 16_384) == .proceed)
    guard
      case .close(let error, .enhanceYourCalm) = policy.receivedOversizedHeaderList(
        size: 470_000_000,
        limit: 16_384
      )
    else {
      Issue.record("expected ENHANCE_YOUR_CALM")
      return
    }
    #expect(error.limit == .headerListSize)
    #expect(error.message.contains("the last 470000000"))
  }

  @Test("no limits: nothing ever closes")
  func noLimits() {
    var policy = ServerConnectionPolicy(
      limits: .init(handshakeTimeout: nil, idleTimeout: nil),
      now: start
    )
    #expect(policy.nextDeadline == nil)
    #expect(policy.tick(now: at(86_400_000)) == .proceed)
  }

  @Test("a write stall: queued output untaken for the timeout; any progress restarts the clock")
  func writeStall() {
    var detector = WriteStallDetector(timeout: .seconds(1))
    var stalls: [Bool] = []
    for (pending, taken, time) in [
      (false, 0, 0), (true, 0, 100), (true, 0, 1099),
      // Progress: the clock starts over.
      (true, 10, 1099), (true, 10, 2098), (true, 10, 2099),
      // Drained: no stall, however long.
      (false, 10, 9000), (true, 10, 9001),
    ] as [(Bool, Int, Int64)] {
      stalls.append(detector.check(pendingBytes: pending, bytesTaken: taken, now: at(time)))
    }
    #expect(stalls == [false, false, false, false, false, true, false, false])
  }
}
