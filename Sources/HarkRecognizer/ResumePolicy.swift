public import HarkProto
public import NIOCore

/// Whether and how a long recognition goes on across a failed stream (opt-in).
///
/// The client keeps the audio it sent after the last final result (at most
/// ``maxBufferedAudio``). When the stream fails mid-call — the connection lost, a GOAWAY that
/// reset it, a 512 from a server shutting down — it opens a new Recognize with the same init,
/// sends that audio again (and `start_timers_message`, if the first stream had sent one), then
/// the audio that arrives meanwhile, and shifts the new stream's times (`abs_start_ms`,
/// `abs_end_ms`, word times, start of speech) so the application sees one continuous timeline.
/// The new stream's 100 is reported as `.resumed(atMs:)`.
///
/// A recognition in SINGLE mode that already delivered its final result is not resumed. One
/// whose unfinalized audio outgrew the buffer cannot be resumed without a gap: its failure ends
/// it as a transport failure with gRPC's DATA_LOSS, the message naming the stream's failure.
public struct ResumePolicy: Sendable, Hashable {
  /// The most audio kept for a resume, counted from the end of the last final result.
  public var maxBufferedAudio: Duration
  /// Resumes in one recognition, at most.
  public var maxResumes: Int
  /// How each resumed stream's own refusals before its 100 are retried, and the wait before
  /// each resume.
  public var retry: RetryPolicy
  /// A stream is handed over to a new one after this long (from its 100), to stay under a
  /// service's limit on one stream (Google's is 305 s); nil never. The hand-over is a resume:
  /// it counts against ``maxResumes``.
  public var maxStreamDuration: Duration?

  public init(
    maxBufferedAudio: Duration = .seconds(60),
    maxResumes: Int = 10,
    maxStreamDuration: Duration? = nil,
    retry: RetryPolicy = RetryPolicy(
      maxAttempts: 5,
      initialBackoff: .milliseconds(100),
      maxBackoff: .seconds(2),
      budget: .seconds(30)
    )
  ) {
    self.maxBufferedAudio = maxBufferedAudio
    self.maxResumes = maxResumes
    self.maxStreamDuration = maxStreamDuration
    self.retry = retry
  }
}

/// What a recognition keeps to resume: the audio sent but not yet covered by a final result,
/// and where the current stream sits on the recognition's timeline.
struct ResumeLedger: Sendable {
  let policy: ResumePolicy
  let bytesPerMillisecond: Double
  let maxBytes: Int
  /// Audio of the current stream (sent, or to send after its 100) that no final result has
  /// covered yet, in order; the first starts at `startMs` on the recognition's timeline.
  private(set) var frames: [ByteBuffer] = []
  private var bytes = 0
  private(set) var startMs: Double = 0
  /// Where the current stream's audio starts on the recognition's timeline.
  private(set) var streamOffsetMs: Double = 0
  /// Unfinalized audio had to be let go (the buffer's bound): no resume until a final result
  /// reaches past `droppedThroughMs`.
  private var overflowed = false
  private var droppedThroughMs: Double = 0
  private(set) var resumes = 0
  /// The stream sent `start_timers_message`: a resumed stream sends it too.
  var timersStarted = false
  /// SINGLE mode: the recognition delivered its final result.
  var singleDone = false
  /// Final results delivered so far, on every stream.
  var finalsDelivered = 0

  /// A ledger for audio of `format`; nil for a format whose time cannot be told from its
  /// length (Opus), which is not resumed.
  init?(policy: ResumePolicy, format: AudioFormat?) {
    let rate: Double
    switch format?.format {
    case .pcm(let pcm)?: rate = Double(pcm.sampleRateHz == 0 ? 8000 : pcm.sampleRateHz) * 2
    case .ulaw?, .alaw?: rate = 8000
    default: return nil
    }
    self.policy = policy
    bytesPerMillisecond = rate / 1000
    let (seconds, attoseconds) = policy.maxBufferedAudio.components
    maxBytes = Int(Double(seconds) * rate + Double(attoseconds) / 1e18 * rate)
  }

  func milliseconds(_ frame: ByteBuffer) -> Double {
    Double(frame.readableBytes) / bytesPerMillisecond
  }

  /// `frame` was sent on the current stream.
  mutating func sent(_ frame: ByteBuffer) {
    frames.append(frame)
    bytes += frame.readableBytes
    while bytes > maxBytes, !frames.isEmpty {
      let first = frames.removeFirst()
      bytes -= first.readableBytes
      startMs += milliseconds(first)
      overflowed = true
      droppedThroughMs = startMs
    }
  }

  /// A final result of the current stream ended at `endMs` of the stream: the audio before it
  /// needs no resume.
  mutating func finalized(throughStreamMs endMs: UInt32) {
    let end = Double(endMs) + streamOffsetMs
    var dropped = 0
    var ms = startMs
    while dropped < frames.count, ms + milliseconds(frames[dropped]) <= end {
      ms += milliseconds(frames[dropped])
      bytes -= frames[dropped].readableBytes
      dropped += 1
    }
    if dropped > 0 {
      frames.removeFirst(dropped)
      startMs = ms
    }
    if overflowed && end >= droppedThroughMs { overflowed = false }
  }

  /// Unfinalized audio was let go: a resume now would lose it.
  var lostAudio: Bool { overflowed }

  /// Whether a failed stream can be resumed without a gap.
  var canResume: Bool { !overflowed && !singleDone && resumes < policy.maxResumes }

  /// Why a failed stream cannot be resumed, for its outcome's message.
  var cannotResumeReason: String? {
    if overflowed {
      return "more than \(policy.maxBufferedAudio) of audio had no final result"
    }
    if resumes >= policy.maxResumes { return "\(resumes) resumes already" }
    return nil
  }

  /// A resume begins: the next stream starts where the unfinalized audio does.
  mutating func beginResume() {
    resumes += 1
    streamOffsetMs = startMs
  }

  /// `response` on the recognition's timeline: the current stream's times shifted by where it
  /// starts.
  func shifted(_ response: RecognitionResponse) -> RecognitionResponse {
    let offset = UInt32(clamping: Int(streamOffsetMs.rounded()))
    guard offset > 0 else { return response }
    var response = response
    switch response.response {
    case .startOfSpeech(var start)?:
      start.firstAudioToStartOfSpeechMs &+= offset
      response.response = .startOfSpeech(start)
    case .result(var result)?:
      result.absStartMs &+= offset
      result.absEndMs &+= offset
      for index in result.hypotheses.indices {
        for word in result.hypotheses[index].words.indices {
          result.hypotheses[index].words[word].startMs &+= offset
          result.hypotheses[index].words[word].endMs &+= offset
        }
      }
      response.response = .result(result)
    default:
      break
    }
    return response
  }
}
