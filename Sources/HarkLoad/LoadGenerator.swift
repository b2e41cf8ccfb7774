import HarkClient
import HarkGRPC
import HarkGRPCCore
import HarkProto
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// `hark load`'s engine: opens the connections, spreads the sessions over them, runs the load
/// for its duration, drains, and returns the report.
///
/// Sessions run on their connections' event loops (a ``LoadLoop`` per loop); the generator
/// itself only collects each second's figures and reports them to `progress`.
public struct LoadGenerator: Sendable {
  public let configuration: LoadConfiguration
  public let group: any EventLoopGroup

  public init(
    configuration: LoadConfiguration,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) {
    self.configuration = configuration
    self.group = group
  }

  /// What the generator reports each second.
  public struct Progress: Sendable {
    /// Seconds since the run started.
    public var elapsed: Double
    /// The second that just ended.
    public var lastSecond: LoadTimelinePoint
    /// Everything so far.
    public var totals: LoadCounters
    public var handshake: LatencyHistogram
    public var final: LatencyHistogram
    /// Sessions streaming now.
    public var active: Int
  }

  /// Runs the load; `progress` is called once a second.
  public func run(
    progress: @escaping @Sendable (Progress) -> Void = { _ in }
  ) async throws
    -> LoadReport
  {
    let configuration = self.configuration
    let cpuStart = Self.cpuSeconds()
    // The token comes before any connection: a refusal ends the run before it starts.
    let metadata = SessionMetadata(configuration.metadata)
    var refresher: Task<Void, Never>?
    if let provider = configuration.tokenProvider {
      try await metadata.update(from: provider)
      refresher = Task { await metadata.keepCurrent(from: provider) }
    }
    defer { refresher?.cancel() }
    // The keepalive interval of new connections, doubled each time the server answers the
    // pings with GOAWAY too_many_pings (gRFC A8), as GRPCChannel does.
    let keepalive = NIOLockedValueBox(configuration.client.keepaliveInterval)
    let tooManyPings: @Sendable () -> Void = {
      keepalive.withLockedValue { interval in interval = interval.map { min($0 * 2, .hours(2)) } }
    }
    // One SSL context for every connection (it reads the trust store and the files).
    let tlsContext = try configuration.client.tls.map { tls in
      do { return try tls.makeContext() } catch {
        throw GRPCStatus(.unavailable, "TLS: \(error)")
      }
    }
    // Every connection of the run, the first ones and those a lane makes on its own event loop
    // when its connection closed or went away.
    let connect: LoadLoop.Connect = { eventLoop in
      var client = configuration.client
      client.keepaliveInterval = keepalive.withLockedValue { $0 }
      return try await GRPCClientConnection.connect(
        host: configuration.host,
        port: configuration.port,
        configuration: client,
        group: eventLoop,
        tlsContext: tlsContext,
        onTooManyPings: tooManyPings
      )
    }
    var connections: [GRPCClientConnection] = []
    do {
      for _ in 0..<configuration.connections {
        connections.append(try await connect(group.next()))
      }
    } catch {
      for connection in connections { await connection.close() }
      throw error
    }

    // One LoadLoop per event loop the connections landed on; the load split over connections.
    let origin = NIODeadline.now().uptimeNanoseconds + 50_000_000
    let arrivals = configuration.shardArrivals
    var loops: [ObjectIdentifier: NIOLoopBound<LoadLoop>] = [:]
    var order: [NIOLoopBound<LoadLoop>] = []
    for (index, connection) in connections.enumerated() {
      let laneArrivals = Self.share(arrivals, lane: index, of: connections.count)
      let key = ObjectIdentifier(connection.eventLoop as AnyObject)
      let seed =
        configuration.seed &+ UInt64(configuration.shard.index) &* 0x1_0000 &+ UInt64(index)
      if loops[key] == nil {
        let loop = try await connection.eventLoop.submit {
          NIOLoopBound(
            LoadLoop(
              eventLoop: connection.eventLoop,
              configuration: configuration,
              metadata: metadata,
              origin: origin,
              seed: seed,
              connect: connect
            ),
            eventLoop: connection.eventLoop
          )
        }.get()
        loops[key] = loop
        order.append(loop)
      }
      let loop = loops[key]!
      // Lanes are numbered across shards, so each shard's sessions take their own clips.
      let laneIndex = (configuration.shard.index - 1) * connections.count + index
      let laneCount = configuration.shard.count * connections.count
      try await connection.eventLoop.submit {
        loop.value.add(
          LoadLoop.Lane(
            connection: connection,
            index: laneIndex,
            laneCount: laneCount,
            arrivals: laneArrivals
          )
        )
      }.get()
    }
    for loop in order {
      try await loop.eventLoop.submit { loop.value.start() }.get()
    }

    var report = LoadReport()
    report.parameters = Self.parameters(of: configuration)
    report.histograms = [:]
    var handshakeSoFar = LatencyHistogram()
    var finalSoFar = LatencyHistogram()
    let loadSeconds = configuration.rampUp + configuration.duration
    var second = 0

    func collect() async throws {
      let current = second
      var point = LoadTimelinePoint(second: current)
      for loop in order {
        let taken = try await loop.eventLoop.submit { loop.value.takeSecond(current) }.get()
        point.add(taken)
      }
      report.timeline.append(point)
      report.counters.add(point.counters)
      handshakeSoFar.add(point.handshake)
      finalSoFar.add(point.final)
      progress(
        Progress(
          elapsed: Double(second + 1),
          lastSecond: point,
          totals: report.counters,
          handshake: handshakeSoFar,
          final: finalSoFar,
          active: point.active
        )
      )
      second += 1
    }

    func activeSessions() async throws -> Int {
      var active = 0
      for loop in order {
        active += try await loop.eventLoop.submit { loop.value.activeSessions }.get()
      }
      return active
    }

    // The load: a point a second.
    while Double(second) < loadSeconds.rounded(.up) {
      try await sleep(until: origin + UInt64(second + 1) * 1_000_000_000)
      try await collect()
    }
    for loop in order { try await loop.eventLoop.submit { loop.value.stopArrivals() }.get() }
    // The drain: sessions in flight finish their audio, up to the drain timeout.
    let drainEnd = NIODeadline.now().uptimeNanoseconds + UInt64(configuration.drainTimeout * 1e9)
    while try await activeSessions() > 0 && NIODeadline.now().uptimeNanoseconds < drainEnd {
      try await sleep(until: origin + UInt64(second + 1) * 1_000_000_000)
      try await collect()
    }
    for loop in order { try await loop.eventLoop.submit { loop.value.cancelAll() }.get() }
    // The cancellations' counts land in a last point.
    try await Task.sleep(for: .milliseconds(20))
    try await collect()

    var used = connections
    for loop in order {
      let (histograms, loopConnections) = try await loop.eventLoop.submit {
        loop.value.stopTicking()
        return (loop.value.metrics.histograms, loop.value.allConnections)
      }.get()
      for (metric, histogram) in histograms {
        report.histograms[metric, default: LatencyHistogram()].add(histogram)
      }
      used += loopConnections.filter { connection in !used.contains { $0 === connection } }
    }
    for connection in used { await connection.close() }

    report.elapsedSeconds = Double(NIODeadline.now().uptimeNanoseconds - origin) / 1e9
    report.generator.cpuSeconds = Self.cpuSeconds() - cpuStart
    report.generator.peakResidentBytes = Self.peakResidentBytes()
    report.generator.fellBehind = report[.frameLateness].value(atPercentile: 99) > 20_000
    return report
  }

  /// The report's parameters of a run of `configuration` (this shard's share of the load).
  static func parameters(of configuration: LoadConfiguration) -> LoadParameters {
    var parameters = LoadParameters()
    parameters.server =
      configuration.host.contains(":")
      ? "[\(configuration.host)]:\(configuration.port)"
      : "\(configuration.host):\(configuration.port)"
    switch configuration.shardArrivals {
    case .closed(let sessions): parameters.sessions = sessions
    case .open(let rate, let maxSessions):
      parameters.rate = rate
      parameters.maxSessions = maxSessions
    }
    parameters.duration = configuration.duration
    parameters.rampUp = configuration.rampUp
    parameters.connections = configuration.connections
    parameters.audio = configuration.clips.map(\.name)
    parameters.speed = configuration.speed
    parameters.seed = configuration.seed
    parameters.shards = ["\(configuration.shard.index)/\(configuration.shard.count)"]
    if let message = configuration.clips.first.map({ configuration.initMessage($0.clip.format) }),
      let recognition = message.parameters
    {
      parameters.mode = recognition.utteranceDetectionMode.description
      parameters.resultType = recognition.resultType.description
    }
    return parameters
  }

  private func sleep(until uptime: UInt64) async throws {
    let now = NIODeadline.now().uptimeNanoseconds
    if uptime > now { try await Task.sleep(nanoseconds: uptime - now) }
  }

  /// Lane `lane`'s part of `arrivals` among `count` lanes.
  static func share(
    _ arrivals: LoadConfiguration.Arrivals,
    lane: Int,
    of count: Int
  ) -> LoadConfiguration.Arrivals {
    func split(_ total: Int) -> Int { total / count + (lane < total % count ? 1 : 0) }
    switch arrivals {
    case .closed(let sessions): return .closed(sessions: split(sessions))
    case .open(let rate, let maxSessions):
      return .open(rate: rate / Double(count), maxSessions: max(split(maxSessions), 1))
    }
  }

  static func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
      + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
  }

  /// The peak resident set (VmHWM), in bytes.
  static func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
  }
}
