public import HarkAudio
public import HarkClient
public import HarkGRPC
public import HarkGRPCCore
public import HarkProto
public import HarkRecognizer

/// What `hark load` runs: the server, the shape of the load, the audio and the recognition.
public struct LoadConfiguration: Sendable {
  /// How sessions arrive.
  public enum Arrivals: Sendable, Hashable {
    /// Closed loop: `sessions` kept open; each that ends is replaced at once.
    case closed(sessions: Int)
    /// Open loop: `rate` new sessions a second, at most `maxSessions` at once (an arrival
    /// beyond it is not started, and counted).
    case open(rate: Double, maxSessions: Int)
  }

  public var host: String
  public var port: Int
  /// How the server is reached: TLS or h2c, the authority.
  public var client: GRPCClientConfiguration
  public var arrivals: Arrivals
  /// Seconds of load after the ramp-up.
  public var duration: Double
  /// Seconds over which the first sessions start (closed loop), or the rate rises (open).
  public var rampUp: Double
  /// HTTP/2 connections the sessions spread over.
  public var connections: Int
  /// The audio: each new session takes the next clip.
  public var clips: [(name: String, clip: AudioClip)]
  /// Audio speed: 1 is real time (a frame every 20 ms); 2 is twice as fast.
  public var speed: Double
  /// Milliseconds of audio per frame.
  public var frameMilliseconds: Int
  /// The init message for a clip's format.
  public var initMessage: @Sendable (AudioStreamFormat) -> RecognitionInitMessage
  /// The call's metadata.
  public var metadata: GRPCMetadata
  /// Where the access token comes from (sent as `authorization: Bearer <token>`), shared by
  /// every session; nil sends none. The run does not close it.
  public var tokenProvider: (any TokenProvider)?
  /// Send `start_timers_message` this long after the 100, if set.
  public var startTimersAfterMilliseconds: Int?
  /// The end silence the server waits for before a final (for the final latency): the init's
  /// `utterance_end_silence_ms`, or the server default of 500.
  public var endSilenceMilliseconds: Int
  /// Seeds the sessions' start phases.
  public var seed: UInt64
  /// This run's share of the planned load: shard `index` (1-based) of `count`.
  public var shard: (index: Int, count: Int)
  /// How long, after the load, sessions still streaming may take to finish before they are
  /// cancelled.
  public var drainTimeout: Double
  /// Seconds before a closed loop replaces a session the server refused (409, 429), so that a
  /// server at capacity is not asked again in a hot loop.
  public var refusedBackoff: Double
  /// The default ``refusedBackoff``.
  public static let defaultRefusedBackoff = 1.0
  /// How each session retries a refusal before its 100 (`--retries`; none by default, so
  /// that a run measures the server's refusals as they are).
  public var retryPolicy: RetryPolicy
  /// Whether each session resumes a stream that fails mid-call (`--resume`).
  public var resumePolicy: ResumePolicy?

  public init(
    host: String,
    port: Int,
    client: GRPCClientConfiguration = GRPCClientConfiguration(),
    arrivals: Arrivals,
    duration: Double,
    rampUp: Double = 0,
    connections: Int? = nil,
    clips: [(name: String, clip: AudioClip)],
    speed: Double = 1,
    frameMilliseconds: Int = 20,
    initMessage: @escaping @Sendable (AudioStreamFormat) -> RecognitionInitMessage,
    metadata: GRPCMetadata = GRPCMetadata(),
    tokenProvider: (any TokenProvider)? = nil,
    startTimersAfterMilliseconds: Int? = nil,
    endSilenceMilliseconds: Int = 500,
    seed: UInt64 = 1,
    shard: (index: Int, count: Int) = (1, 1),
    drainTimeout: Double? = nil,
    refusedBackoff: Double = LoadConfiguration.defaultRefusedBackoff,
    retryPolicy: RetryPolicy = .none,
    resumePolicy: ResumePolicy? = nil
  ) {
    self.resumePolicy = resumePolicy
    self.refusedBackoff = refusedBackoff
    self.retryPolicy = retryPolicy
    self.host = host
    self.port = port
    self.client = client
    self.arrivals = arrivals
    self.duration = duration
    self.rampUp = rampUp
    self.clips = clips
    self.speed = speed
    self.frameMilliseconds = frameMilliseconds
    self.initMessage = initMessage
    self.metadata = metadata
    self.tokenProvider = tokenProvider
    self.startTimersAfterMilliseconds = startTimersAfterMilliseconds
    self.endSilenceMilliseconds = endSilenceMilliseconds
    self.seed = seed
    self.shard = shard
    let longest = clips.map(\.clip.duration).max() ?? 0
    self.drainTimeout = drainTimeout ?? (longest / speed + 10)
    self.connections = connections ?? Self.defaultConnections(for: arrivals)
  }

  /// One connection per 1,000 concurrent sessions, at least one and at most 16: HTTP/2 carries
  /// thousands of streams on a connection, and a few connections spread them over event loops.
  public static func defaultConnections(for arrivals: Arrivals) -> Int {
    let concurrent: Int
    switch arrivals {
    case .closed(let sessions): concurrent = sessions
    case .open(_, let maxSessions): concurrent = maxSessions
    }
    return min(max((concurrent + 999) / 1000, 1), 16)
  }

  /// This shard's part of the arrivals: an even split, the first shards taking the remainder.
  public var shardArrivals: Arrivals {
    let (index, count) = shard
    func share(_ total: Int) -> Int { total / count + (index <= total % count ? 1 : 0) }
    switch arrivals {
    case .closed(let sessions): return .closed(sessions: share(sessions))
    case .open(let rate, let maxSessions):
      return .open(rate: rate / Double(count), maxSessions: max(share(maxSessions), 1))
    }
  }
}
