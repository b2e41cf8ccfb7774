import Foundation
import FuzzSupport
import HarkProto
import HarkRecognizer
import NIOCore

/// Runs fuzzer inputs as programs of Recognize RPCs (``SessionProgram``) against one server's
/// state machines and one engine, which every input reuses.
///
/// After every event the RPCs check what they sent (``RPCDriver``); at the end of an input each
/// RPC still running is made to end as a client would end it (half-close, then every engine call
/// answered), and then every RPC must have ended with exactly one status or a cancel, and the
/// engine must be back in the pool. A violation traps, which libFuzzer reports as a crash.
///
/// Environment: `HARK_FUZZ_TRACE=1` prints each event and response (to replay a crash);
/// `HARK_FUZZ_ENGINE_POSITIONS=0` stops checking engine positions, so that a wrong one reaches
/// the engine itself; `HARK_FUZZ_IMMUTABLE_FINALS=1` checks that an IMMUTABLE_PARTIAL final
/// extends the last partial (DESIGN rule 5), which the sphinx engine does not always do yet.
public final class SessionFuzzer {
  private let pool: EnginePool
  private let clips = SpeechClips.load()
  private let audioByteLimit: Int
  private let trace: Bool
  private let checksImmutableFinals: Bool

  /// A fuzzer of sessions on `engine`, whose programs send at most `audioByteLimit` bytes of audio.
  public init(engine: any SpeechEngine, audioByteLimit: Int) {
    let environment = ProcessInfo.processInfo.environment
    pool = EnginePool(
      CheckedEngine(engine, checksPositions: environment["HARK_FUZZ_ENGINE_POSITIONS"] != "0")
    )
    self.audioByteLimit = audioByteLimit
    trace = environment["HARK_FUZZ_TRACE"] == "1"
    checksImmutableFinals = environment["HARK_FUZZ_IMMUTABLE_FINALS"] == "1"
  }

  /// Runs one input (libFuzzer's `LLVMFuzzerTestOneInput`).
  public func run(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(UnsafeBufferPointer(start: data, count: data == nil ? 0 : count))
    let program = SessionProgram(decoding: &input, audioByteLimit: audioByteLimit)
    let rpcs = program.onWorker.enumerated().map { index, onWorker in
      RPCDriver(
        name: "rpc\(index)",
        onWorker: onWorker,
        pool: pool,
        trace: trace,
        checksImmutableFinals: checksImmutableFinals
      )
    }
    if trace { traceLine("program: \(rpcs.count) RPCs, on worker: \(program.onWorker)") }
    for (index, event) in program.events {
      let rpc = rpcs[index]
      if trace { traceLine("\(rpc.name) \(Self.describe(event))") }
      switch event {
      case .request(let request):
        guard !rpc.halfClosed else { continue }
        rpc.receive(request.serializedBytes())
      case .encodedRequest(let bytes):
        guard !rpc.halfClosed else { continue }
        rpc.receive(ByteBuffer(bytes: bytes))
      case .audio(let content, let messageBytes, let messages):
        guard !rpc.halfClosed else { continue }
        let format = rpc.audioFormat
        for message in rpc.stream.messages(
          content,
          messageBytes: messageBytes,
          messages: messages,
          encoding: format.encoding,
          sampleRate: format.sampleRate,
          clips: clips
        ) {
          rpc.receive(RecognitionRequest(.audio(ByteBuffer(bytes: message))).serializedBytes())
        }
      case .endOfRequests:
        guard !rpc.halfClosed else { continue }
        rpc.endOfRequests()
      case .cancel:
        rpc.cancel()
      case .idleTimeout:
        rpc.idleTimeout()
      case .shutdown:
        for rpc in rpcs { rpc.shutdown() }
      case .runEngineJobs(let count):
        rpc.runJobs(count)
      case .failNextEngineCall(let error):
        pool.engine.fault = error
      case .refuseNextInit(let rejection):
        rpc.refusals.append(rejection)
      }
    }
    // The clients close their streams, and the workers answer every call.
    if trace { traceLine("end of program") }
    for rpc in rpcs {
      if !rpc.isFinished && !rpc.halfClosed { rpc.endOfRequests() }
      rpc.runJobs(.max)
      check(
        rpc.isFinished,
        "\(rpc.name) did not end after its client closed and its engine answered"
      )
    }
    for rpc in rpcs {
      rpc.runJobs(.max)
      rpc.checkAtEnd()
    }
    check(pool.idle != nil, "the engine is not back in the pool after every RPC ended")
    pool.engine.fault = nil
    return 0
  }

  static func describe(_ event: SessionProgram.Event) -> String {
    switch event {
    case .request(let request):
      switch request.request {
      case .recognitionInitMessage(let message)?:
        return describe(message)
      case .controlMessage(let control)?:
        return control.control == nil ? "empty control message" : "start_timers"
      case .audio?: return "audio"
      case nil: return "empty request"
      }
    case .encodedRequest(let bytes): return "encoded request of \(bytes.count) bytes"
    case .audio(let content, let messageBytes, let messages):
      return "audio \(messages) × \(messageBytes) bytes of \(content)"
    case .endOfRequests: return "end of requests"
    case .cancel: return "cancel"
    case .idleTimeout: return "idle timeout"
    case .shutdown: return "shutdown"
    case .runEngineJobs(let count): return "run \(count == .max ? "all" : "\(count)") engine jobs"
    case .failNextEngineCall(let error): return "fail the next engine call: \(error.kind)"
    case .refuseNextInit(let rejection):
      return "refuse the next init: \(ServerSessionStateMachine.status(for: rejection).code)"
    }
  }

  static func describe(_ message: RecognitionInitMessage) -> String {
    guard let parameters = message.parameters else { return "init without parameters" }
    var words = ["init", parameters.language.debugDescription]
    words.append(
      parameters.audioFormat.map { "\($0.format.map { "\($0)" } ?? "no format")" } ?? "-"
    )
    words.append("mode \(parameters.utteranceDetectionMode.rawValue)")
    words.append("result \(parameters.resultType.rawValue)")
    if let flags = parameters.recognitionFlags {
      words.append("stall \(flags.stallTimers) mask \(flags.maskLoadFailures)")
    }
    words.append(
      "timeouts \(parameters.noInputTimeoutMs)/\(parameters.recognitionTimeoutMs)/"
        + "\(parameters.utteranceEndSilenceMs)"
    )
    words.append("sensitivity \(parameters.speechDetectionSensitivity.map { "\($0)" } ?? "-")")
    words.append("max \(parameters.maxHypotheses)")
    words.append("resources \(message.resources.map { $0.resource.map { "\($0)" } ?? "nil" })")
    return words.joined(separator: " ")
  }
}
