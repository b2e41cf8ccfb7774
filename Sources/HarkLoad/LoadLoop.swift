import HarkAudio
import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import HarkRecognizer
import NIOCore
import NIOPosix

/// What one event loop's sessions measured: touched only on that loop.
final class LoopMetrics {
  var handshake = LatencyHistogram()
  var startOfSpeech = LatencyHistogram()
  var firstPartial = LatencyHistogram()
  var final = LatencyHistogram()
  var end = LatencyHistogram()
  var session = LatencyHistogram()
  var frameLateness = LatencyHistogram()
  /// The current second's counters and latencies (the generator takes it each second).
  var second = LoadTimelinePoint(second: 0)

  var histograms: [LoadMetric: LatencyHistogram] {
    [
      .handshake: handshake, .startOfSpeech: startOfSpeech, .firstPartial: firstPartial,
      .final: final, .end: end, .session: session, .frameLateness: frameLateness,
    ]
  }
}

/// The sessions of one event loop: one ``FrameRing`` paces all their frames, ticking every
/// millisecond; arrivals, replacements and measurements stay on the loop, so nothing is shared
/// between threads but what the generator collects once a second.
final class LoadLoop {
  /// A connection and its share of the load.
  final class Lane {
    /// The connection new sessions start on; replaced once it closed or went away.
    var connection: GRPCClientConnection
    /// Connections this lane used before, closed at the end of the run.
    var retired: [GRPCClientConnection] = []
    /// This lane's place among all lanes (for choosing clips).
    let index: Int
    let laneCount: Int
    let arrivals: LoadConfiguration.Arrivals
    var sessionsStarted = 0
    /// Sessions running or waiting for a connection.
    var active = 0
    /// Sessions due to start that wait for the lane's next connection.
    var waiting = 0
    /// A new connection is being made (or waits for its backoff).
    var reconnecting = false
    /// Attempts to connect since the lane last had a connection.
    var failedConnects = 0
    /// Retries waiting for the lane's next connection.
    var connectionWaiters: [EventLoopPromise<GRPCClientConnection>] = []

    init(
      connection: GRPCClientConnection,
      index: Int,
      laneCount: Int,
      arrivals: LoadConfiguration.Arrivals
    ) {
      self.connection = connection
      self.index = index
      self.laneCount = laneCount
      self.arrivals = arrivals
    }
  }

  let eventLoop: any EventLoop
  let configuration: LoadConfiguration
  /// What each session's call sends: the configuration's metadata and the current token.
  let metadata: SessionMetadata
  /// About a millisecond: the ring's tick, which divides the frame period.
  let tickNanoseconds: UInt64
  let periodNanoseconds: UInt64
  let startTimersAfterMilliseconds: Int?
  let endSilenceMilliseconds: Int
  /// Every session that still has frames to send, at its phase.
  let ring: FrameRing<LoadSession>
  /// Sessions more than a period behind, or held by flow control or the prebuffer: visited at
  /// every tick (one frame each) until they are back on their phase.
  var behind: [LoadSession] = []
  let metrics = LoopMetrics()
  private(set) var lanes: [Lane] = []
  private var sessions: [ObjectIdentifier: LoadSession] = [:]
  private var random: SplitMix64
  /// Arrivals and replacements happen until this time.
  private let loadEnd: UInt64
  /// The run cancelled its sessions: not even a planned arrival starts now.
  private var cancelledAll = false
  private let origin: UInt64
  private var stopped = false
  private var ticker: Scheduled<Void>?
  private var tickCount: UInt64 = 0
  private let clips:
    [(format: AudioStreamFormat, bytes: ByteBuffer, initMessage: RecognitionInitMessage)]

  /// Makes a new connection on the given event loop (to replace one that closed or went away).
  typealias Connect = @Sendable (any EventLoop) async throws -> GRPCClientConnection
  private let connect: Connect

  init(
    eventLoop: any EventLoop,
    configuration: LoadConfiguration,
    metadata: SessionMetadata,
    origin: UInt64,
    seed: UInt64,
    connect: @escaping Connect
  ) {
    self.eventLoop = eventLoop
    self.connect = connect
    self.configuration = configuration
    self.metadata = metadata
    self.origin = origin
    self.periodNanoseconds = UInt64(
      Double(configuration.frameMilliseconds) * 1e6 / configuration.speed
    )
    self.startTimersAfterMilliseconds = configuration.startTimersAfterMilliseconds
    self.endSilenceMilliseconds = configuration.endSilenceMilliseconds
    self.ring = FrameRing(
      periodNanoseconds: max(periodNanoseconds, 1),
      tickNanoseconds: 1_000_000,
      start: origin
    )
    self.tickNanoseconds = ring.tickNanoseconds
    self.random = SplitMix64(seed: seed)
    self.refusedBackoff = UInt64(max(configuration.refusedBackoff, 0) * 1e9)
    self.loadEnd = origin + UInt64((configuration.rampUp + configuration.duration) * 1e9)
    self.clips = configuration.clips.map { clip in
      (clip.clip.format, clip.clip.bytes, configuration.initMessage(clip.clip.format))
    }
  }

  static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

  /// How long a closed loop waits before it replaces a session that failed.
  static let failedSessionPause: UInt64 = 100_000_000
  /// How long a closed loop waits before it replaces a session the server refused.
  let refusedBackoff: UInt64

  var activeSessions: Int { sessions.count }

  // MARK: Running

  func add(_ lane: Lane) {
    lanes.append(lane)
  }

  /// Starts ticking and schedules each lane's arrivals.
  func start() {
    for lane in lanes { scheduleArrivals(lane) }
    scheduleTick()
  }

  private func scheduleTick() {
    tickCount += 1
    let deadline = NIODeadline.uptimeNanoseconds(origin + tickCount * tickNanoseconds)
    ticker = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
      let now = Self.now()
      // Those behind first: one that falls behind during the ring's visits catches up from
      // the next tick on, a frame a tick.
      if !behind.isEmpty { catchUp(now: now) }
      ring.advance(to: now) { $0.ringVisit(now: now) }
      if !stopped || !sessions.isEmpty { scheduleTick() }
    }
  }

  private func catchUp(now: UInt64) {
    var index = 0
    while index < behind.count {
      if behind[index].catchUp(now: now) {
        index += 1
      } else {
        behind.swapAt(index, behind.count - 1)
        behind.removeLast()
      }
    }
  }

  private func scheduleArrivals(_ lane: Lane) {
    switch lane.arrivals {
    case .closed(let count):
      // The first sessions start evenly over the ramp-up (at once without one).
      let rampUp = UInt64(configuration.rampUp * 1e9)
      for index in 0..<count {
        let offset = rampUp * UInt64(index) / UInt64(count)
        // A random phase within a frame period, so lanes do not send in lockstep.
        let phase = random.next() % max(periodNanoseconds, 1)
        let due = origin + offset + phase
        at(due) { [self] in startSession(on: lane, plannedAt: due) }
      }
    case .open(let rate, _):
      scheduleOpenArrival(lane, number: 0, rate: rate)
    }
  }

  /// The `number`-th arrival of an open-loop lane: the rate rises linearly over the ramp-up,
  /// then holds (arrival k at t with ∫₀ᵗ rate = k).
  private func scheduleOpenArrival(_ lane: Lane, number: Int, rate: Double) {
    guard rate > 0 else { return }
    let k = Double(number) + 0.5
    let rampUp = configuration.rampUp
    let seconds: Double =
      rampUp > 0 && k < rate * rampUp / 2
      ? (2 * k * rampUp / rate).squareRoot()
      : rampUp / 2 + k / rate
    let due = origin + UInt64(seconds * 1e9)
    guard due < loadEnd else { return }
    at(due) { [self] in
      if case .open(_, let maxSessions) = lane.arrivals, lane.active >= maxSessions {
        metrics.second.counters.sessionsSkipped += 1
      } else {
        startSession(on: lane, plannedAt: due)
      }
      scheduleOpenArrival(lane, number: number + 1, rate: rate)
    }
  }

  private func at(_ time: UInt64, _ body: @escaping () -> Void) {
    eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(time)) { body() }
  }

  /// Starts a session: one of the plan's arrivals (`plannedAt` its time, which decides whether
  /// it is part of the load however late its timer fires), or a closed loop's replacement.
  private func startSession(on lane: Lane, plannedAt: UInt64? = nil) {
    let now = Self.now()
    if let plannedAt {
      guard !cancelledAll, plannedAt < loadEnd else { return }
    } else {
      guard !stopped, now < loadEnd else { return }
    }
    lane.active += 1
    guard lane.connection.isAvailable else {
      // The connection closed or received GOAWAY: the session starts on the lane's next one.
      lane.waiting += 1
      reconnect(lane)
      return
    }
    begin(on: lane, now: now)
  }

  /// Starts a session on the lane's connection (counted in `lane.active` already).
  private func begin(on lane: Lane, now: UInt64) {
    let clip = clips[(lane.index + lane.sessionsStarted * lane.laneCount) % clips.count]
    lane.sessionsStarted += 1
    let session = LoadSession(
      loop: self,
      lane: lane,
      clip: clip.bytes,
      frameBytes: max(clip.format.bytes(forMilliseconds: configuration.frameMilliseconds), 1),
      bytesPerSecond: clip.format.bytesPerSecond
    )
    sessions[ObjectIdentifier(session)] = session
    session.start(
      initMessage: clip.initMessage,
      metadata: metadata.value,
      now: now,
      firstDue: now
    )
  }

  /// The first reconnection waits this long at most, doubling with each failed attempt up to
  /// ``reconnectBackoffCap`` (full jitter: a random wait up to that bound).
  static let reconnectBackoffBase: UInt64 = 100_000_000
  static let reconnectBackoffCap: UInt64 = 2_000_000_000

  /// Makes the lane a new connection unless one is on its way: at once after the lane's
  /// connection was lost, then after a backoff for each failed attempt, while the load lasts.
  private func reconnect(_ lane: Lane) {
    if cancelledAll {
      let waiters = lane.connectionWaiters
      lane.connectionWaiters = []
      for waiter in waiters { waiter.fail(GRPCStatus(.cancelled, "the run is over")) }
      return
    }
    guard !lane.reconnecting else { return }
    lane.reconnecting = true
    let now = Self.now()
    var delay: UInt64 = 0
    if lane.failedConnects > 0 {
      let bound = min(
        Self.reconnectBackoffBase << UInt64(min(lane.failedConnects - 1, 20)),
        Self.reconnectBackoffCap
      )
      delay = random.next() % (bound + 1)
    }
    let eventLoop = self.eventLoop
    let connect = self.connect
    let bound = NIOLoopBound((self, lane), eventLoop: eventLoop)
    at(now + delay) {
      Task {
        let result: Result<GRPCClientConnection, any Error>
        do {
          result = .success(try await connect(eventLoop))
        } catch {
          result = .failure(error)
        }
        eventLoop.execute { bound.value.0.connected(bound.value.1, result) }
      }
    }
  }

  /// A reconnection of `lane` ended: the waiting sessions start on the new connection, or the
  /// lane tries again after a backoff.
  private func connected(_ lane: Lane, _ result: Result<GRPCClientConnection, any Error>) {
    lane.reconnecting = false
    let waiters = lane.connectionWaiters
    lane.connectionWaiters = []
    switch result {
    case .success(let connection):
      if cancelledAll {
        lane.retired.append(connection)
        for waiter in waiters {
          waiter.fail(GRPCStatus(.cancelled, "the run is over"))
        }
        return
      }
      for waiter in waiters { waiter.succeed(connection) }
      lane.retired.append(lane.connection)
      lane.connection = connection
      lane.failedConnects = 0
      metrics.second.counters.reconnects += 1
      let now = Self.now()
      let waiting = lane.waiting
      lane.waiting = 0
      for _ in 0..<waiting { begin(on: lane, now: now) }
    case .failure(let error):
      lane.failedConnects += 1
      for waiter in waiters { waiter.fail(error) }
      let reason = (error as? GRPCStatus)?.message ?? "\(error)"
      metrics.second.counters.count(message: "reconnect failed: \(reason)")
      guard !stopped, Self.now() < loadEnd else {
        // The load is over: the sessions that waited never start.
        lane.active -= lane.waiting
        lane.waiting = 0
        return
      }
      if lane.waiting > 0 { reconnect(lane) }
    }
  }

  /// When sessions refused before their 100 are tried again.
  var retryPolicy: RetryPolicy { configuration.retryPolicy }

  /// What a session's retry opens its call on: the lane's connection, or (once the lane made a
  /// new one) that one; while the lane has none that takes calls, it starts making one and the
  /// attempt fails with UNAVAILABLE (the session's policy decides what next).
  func retryConnection(for lane: Lane) -> ClientSession.Reconnect {
    let bound = NIOLoopBound((self, lane), eventLoop: eventLoop)
    return { eventLoop in
      try await eventLoop.flatSubmit { () -> EventLoopFuture<GRPCClientConnection> in
        let (loop, lane) = bound.value
        if lane.connection.isAvailable { return eventLoop.makeSucceededFuture(lane.connection) }
        // The lane's next connection, or the failure to make it.
        let promise = eventLoop.makePromise(of: GRPCClientConnection.self)
        lane.connectionWaiters.append(promise)
        loop.reconnect(lane)
        return promise.futureResult
      }.get()
    }
  }

  /// Every connection the lanes used, for the run to close.
  var allConnections: [GRPCClientConnection] {
    lanes.flatMap { [$0.connection] + $0.retired }
  }

  func sessionEnded(_ session: LoadSession, now: UInt64) {
    sessions.removeValue(forKey: ObjectIdentifier(session))
    session.lane.active -= 1
    // Closed loop: a session that ends is replaced while the load lasts — never from inside
    // its own callbacks; a refused one after the refused backoff, and a failed one after a
    // pause, so a refusing server is not hammered by a storm of instant retries.
    if case .closed = session.lane.arrivals, !stopped, now < loadEnd, !session.cancelledByRun {
      let lane = session.lane
      let pause =
        session.refused ? refusedBackoff : session.failed ? Self.failedSessionPause : 0
      at(now + pause) { [self] in startSession(on: lane) }
    }
  }

  /// Stops arrivals; sessions in flight go on.
  func stopArrivals() {
    stopped = true
  }

  /// Cancels every session still in flight.
  func cancelAll() {
    stopped = true
    cancelledAll = true
    for lane in lanes {
      lane.active -= lane.waiting
      lane.waiting = 0
    }
    let now = Self.now()
    for session in Array(sessions.values) { session.cancel(now: now) }
  }

  /// Takes the current second's point, starting the next.
  func takeSecond(_ second: Int) -> LoadTimelinePoint {
    var point = metrics.second
    point.second = second
    point.active = sessions.count
    metrics.second = LoadTimelinePoint(second: second + 1)
    return point
  }

  func stopTicking() {
    ticker?.cancel()
    ticker = nil
  }
}
