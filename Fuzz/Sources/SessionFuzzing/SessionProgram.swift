import FuzzSupport
import HarkAudio
import HarkProto
import HarkRecognizer

/// What one fuzzer input does: the requests and events of a few Recognize RPCs on one server,
/// interleaved.
///
/// The input is read as `header (op params…)*`. The header gives the number of RPCs (1 … 3) and
/// whether each runs its engine on a worker (engine calls queued and answered when the program
/// says, as `RecognizerSession` does for the sphinx engine) or inline. Each op's low four bits
/// are its kind and its high four bits the RPC it goes to. Tables list their ordinary value first,
/// so zero bytes read as an ordinary recognition: en-US, L16 at 8 kHz, SINGLE, FINAL.
struct SessionProgram {
  /// An event of the program, for one RPC.
  enum Event {
    /// A request the client sends, as the server decodes it.
    case request(RecognitionRequest)
    /// Bytes the client sends as a request message, whatever they decode to.
    case encodedRequest([UInt8])
    /// `messages` audio messages of `messageBytes` bytes each, of `content`.
    case audio(AudioContent, messageBytes: Int, messages: Int)
    /// The client half-closes its stream.
    case endOfRequests
    /// The client resets the stream (or its connection goes).
    case cancel
    /// The idle timer fires (if it runs).
    case idleTimeout
    /// The server shuts down: every RPC.
    case shutdown
    /// The worker answers this many of the engine calls queued (all: `Int.max`).
    case runEngineJobs(Int)
    /// The engine's next call fails.
    case failNextEngineCall(EngineError)
    /// The server's policy refuses the next init (401, 403, 429).
    case refuseNextInit(ServerSessionStateMachine.InitRejection)
  }

  /// What an audio message's samples are.
  enum AudioContent {
    case silence
    /// White noise, uniform within ± `amplitude`.
    case noise(amplitude: Int)
    case tone(frequency: Double, amplitude: Double)
    case dtmf(DTMFSymbol, level: Double)
    /// A recorded sample (``SpeechClips``), from `offset` / 64 of its length on.
    case speech(clip: Int, offset: Int)
    /// A full-scale square wave: clipping.
    case square(period: Int)
    /// These bytes as the message, whatever the format.
    case bytes([UInt8])
  }

  /// Whether each RPC runs its engine on a worker.
  var onWorker: [Bool]
  var events: [(rpc: Int, event: Event)] = []

  /// The most audio a program sends, in bytes, and the most events it has: every input runs in
  /// bounded time.
  init(decoding input: inout FuzzInput, audioByteLimit: Int, eventLimit: Int = 256) {
    let header = input.byte()
    let count = 1 + Int(header & 3) % 3
    onWorker = (0..<count).map { header & (4 << $0) != 0 }
    var audioBytes = 0
    while !input.isAtEnd && events.count < eventLimit {
      let op = input.byte()
      let rpc = Int(op >> 4) % count
      let event: Event
      switch op & 0x0F {
      case 0, 1:
        event = .request(.initMessage(Self.initMessage(&input)))
      case 2, 3, 4, 5, 6:
        let content = Self.audioContent(&input)
        var messageBytes = Self.messageSize(&input)
        var messages = 1 + Int(input.byte()) % 32
        if case .bytes(let bytes) = content { messageBytes = bytes.count }
        let room = audioByteLimit - audioBytes
        if messageBytes * messages > room {
          messages = messageBytes == 0 ? 1 : room / messageBytes
          if messages == 0 {
            messages = 1
            messageBytes = room
          }
        }
        audioBytes += messageBytes * messages
        event = .audio(content, messageBytes: messageBytes, messages: messages)
      case 7:
        event = .request(
          RecognitionRequest(.controlMessage(ControlMessage(.startTimersMessage(.init()))))
        )
      case 8:
        // A control message without a control, or a request without a request.
        event = .request(
          input.byte() & 1 == 0 ? RecognitionRequest(.controlMessage(ControlMessage(nil))) : .init()
        )
      case 9: event = .endOfRequests
      case 10: event = .cancel
      case 11: event = .idleTimeout
      case 12: event = .shutdown
      case 13:
        let jobs = input.byte()
        event = .runEngineJobs(jobs >= 0xF0 ? Int.max : 1 + Int(jobs) % 8)
      case 14:
        event = .encodedRequest(input.bytes(Int(input.byte())))
      default:
        let fault = input.byte()
        switch fault % 6 {
        case 0: event = .failNextEngineCall(EngineError(.internalFailure, "injected failure"))
        case 1:
          event = .failNextEngineCall(
            EngineError(.badRequest(field: "injected"), "injected bad request")
          )
        case 2:
          event = .failNextEngineCall(
            EngineError(.resourceFailed(field: "injected"), "injected resource failure")
          )
        case 3: event = .refuseNextInit(.unauthenticated(reason: "injected"))
        case 4: event = .refuseNextInit(.forbidden(topic: "injected"))
        default: event = .refuseNextInit(.rateLimited)
        }
      }
      events.append((rpc, event))
    }
  }

  // MARK: Audio

  /// Sizes around 10 and 20 ms of each format, odd ones, tiny ones and a few KiB.
  static func messageSize(_ input: inout FuzzInput) -> Int {
    let choice = input.byte()
    switch choice % 16 {
    case 0, 1: return 320
    case 2: return 160
    case 3: return 640
    case 4: return 1024
    case 5: return 1
    case 6: return 0
    case 7: return 321
    case 8: return 3
    case 9: return 4096
    default: return 1 + Int(input.uint16()) % 4096
    }
  }

  static func audioContent(_ input: inout FuzzInput) -> AudioContent {
    let kind = input.byte()
    let parameter = input.byte()
    switch kind % 8 {
    case 0: return .speech(clip: Int(parameter & 3), offset: Int(parameter >> 2))
    case 1: return .silence
    case 2: return .noise(amplitude: 1 + Int(parameter) * Int(parameter) / 2)
    case 3:
      return .tone(
        frequency: 100 + Double(parameter % 32) * 110,
        amplitude: 32767 * Double(1 + parameter / 32) / 8
      )
    case 4:
      let symbols = DTMFSymbol.allCases
      return .dtmf(symbols[Int(parameter) % symbols.count], level: -Double(parameter / 16) * 3)
    case 5: return .square(period: 2 + Int(parameter))
    case 6: return .bytes(input.bytes(Int(parameter)))
    default: return .speech(clip: Int(parameter & 3), offset: Int(parameter >> 2))
    }
  }

  // MARK: Init messages

  static let languages = [
    "en-US", "en-us", "", "  ", " en-US\t", "fr-FR", "EN_US", "eng-USA", "de", "en-US\u{0}",
    "ja-JP", "en-US",
  ]

  static let timeouts: [UInt32] = [
    0, 0, 0, 0, 10, 100, 200, 300, 500, 1000, 2000, 5000, 1,
    UInt32(RecognitionConfiguration.maxTimerMs), UInt32(RecognitionConfiguration.maxTimerMs) + 1,
    .max,
  ]

  static let sensitivities: [Float?] = [nil, 0.5, 0, 1, 0.9, 0.1, .nan, 1.5, -0.5, .infinity]

  static let hypothesisCounts: [UInt32] = [0, 1, 2, 5, 10, 100, 101, .max]

  static let oddSampleRates: [UInt32] = [1, 7999, 8001, 11025, 22050, 44100, 48000, .max]

  /// An init message, valid or not in any of the ways DESIGN.md's 400s name.
  static func initMessage(_ input: inout FuzzInput) -> RecognitionInitMessage {
    var parameters = RecognitionParameters()
    parameters.language = input.pick(languages)
    switch input.byte() % 16 {
    case 0, 5, 15: parameters.audioFormat = AudioFormat(.pcm(PCM(sampleRateHz: 8000)))
    case 1, 6, 13: parameters.audioFormat = AudioFormat(.pcm(PCM(sampleRateHz: 16000)))
    case 2: parameters.audioFormat = AudioFormat(.pcm(PCM(sampleRateHz: 0)))
    case 3, 7: parameters.audioFormat = AudioFormat(.ulaw(ULaw()))
    case 4, 14: parameters.audioFormat = AudioFormat(.alaw(ALaw()))
    case 8:
      parameters.audioFormat = AudioFormat(.pcm(PCM(sampleRateHz: input.pick(oddSampleRates))))
    case 9:
      var opus = Opus()
      opus.decodeRateHz = input.pick([0, 8000, 16000, 48000])
      parameters.audioFormat = AudioFormat(.opus(opus))
    case 10:
      var oggOpus = OggOpus()
      oggOpus.decodeRateHz = input.pick([0, 8000, 16000, 44100])
      parameters.audioFormat = AudioFormat(.oggOpus(oggOpus))
    case 11: parameters.audioFormat = nil
    default: parameters.audioFormat = AudioFormat(nil)
    }
    // SINGLE, MULTIPLE, DISABLED and FINAL, PARTIAL, IMMUTABLE_PARTIAL, then unknown values.
    let kinds = input.byte()
    let rawValues: [Int32] = [0, 1, 2, 0, 1, 2, 3, -1]
    parameters.utteranceDetectionMode = .init(rawValue: rawValues[Int(kinds & 0x0F) % 8])
    parameters.resultType = .init(rawValue: rawValues[Int(kinds >> 4) % 8])
    let flags = input.byte()
    if flags & 0x0B != 0 {
      var recognitionFlags = RecognitionFlags()
      recognitionFlags.stallTimers = flags & 1 != 0
      recognitionFlags.maskLoadFailures = flags & 2 != 0
      parameters.recognitionFlags = recognitionFlags
    }
    if flags & 0x10 != 0 { parameters.topic = input.pick(["GEN", "HEALTHCARE", "x"]) }
    parameters.noInputTimeoutMs = input.pick(timeouts)
    parameters.recognitionTimeoutMs = input.pick(timeouts)
    parameters.utteranceEndSilenceMs = input.pick(timeouts)
    parameters.speechDetectionSensitivity = input.pick(sensitivities)
    parameters.maxHypotheses = input.pick(hypothesisCounts)
    var message = RecognitionInitMessage()
    message.parameters = flags & 0x80 != 0 && flags & 0x40 != 0 ? nil : parameters
    for _ in 0..<Int(input.byte()) % 4 {
      message.resources.append(resource(&input))
    }
    return message
  }

  static let malformedWordsets = [
    "{", "[]", "{}", #"{"a":1}"#, #"{"a":[{"spoken":["x"]}]}"#,
    #"{"a":[{"literal":"x","spoken":"y"}]}"#, #"{"a":[{"literal":"x","spoken":[1]}]}"#,
    #"{"names":[{"literal":"zzqxv"}]}"#, #"{"a":[{"literal":""}]}"#, "\u{0}", "null",
    #"{"a":[{"literal":"\ud800"}]}"#,
    #"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
  ]

  static let grammars = [
    "#JSGF V1.0; grammar g; public <answer> = (yes | no | operator);",
    "#JSGF V1.0; grammar g; public <answer> = (blorpxq | no);",
    "#JSGF V1.0; grammar g; public <a> = (yes | ;",
    "#JSGF garbage",
    "",
    """
    <grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" root="d">\
    <rule id="d"><one-of><item>billing</item><item>sales department</item></one-of></rule>\
    </grammar>
    """,
    """
    <grammar version="1.0" root="d"><rule id="d"><one-of><item><ruleref uri="#x"/></item>\
    </one-of></rule></grammar>
    """,
    #"<grammar root="d" mode="dtmf"><rule id="d">1</rule></grammar>"#,
    "<grammar><rule",
    #"<grammar root="missing"><rule id="d"><one-of><item>yes</item></one-of></rule></grammar>"#,
  ]

  static func resource(_ input: inout FuzzInput) -> RecognitionResource {
    let kind = input.byte()
    switch kind % 16 {
    case 0: return RecognitionResource(.builtin("digits"))
    case 1: return RecognitionResource(.builtin("dtmf"))
    case 2: return RecognitionResource(.builtin("yesno"))
    case 3: return RecognitionResource(.builtin("DIGITS"))
    case 4: return RecognitionResource(.builtin(input.pick(["pizza", "", "date", "digits "])))
    case 5, 6:
      return RecognitionResource(
        .inlineWordset(
          #"{"names":[{"literal":"john smith","spoken":["johnny"]},{"literal":"mary"}],"#
            + #""places":[{"literal":"boston"},{"literal":"xqzzv"}]}"#
        ),
        weight: .weightValue(0.5)
      )
    case 7: return RecognitionResource(.inlineWordset(input.pick(malformedWordsets)))
    case 8: return RecognitionResource(.inlineWordset(input.string(limit: 64)))
    case 9, 10: return RecognitionResource(.inlineGrammar(input.pick(grammars)))
    case 11: return RecognitionResource(.inlineGrammar(input.string(limit: 96)))
    case 12:
      var reference = ResourceReference()
      reference.uri = "urn:nuance-mix:tag:grammar/names/names_grammar/en-US"
      return RecognitionResource(.externalReference(reference))
    case 13: return RecognitionResource(.wakeupWord(WakeupWord(words: ["hey hark"])))
    case 14: return RecognitionResource(nil)
    default: return RecognitionResource(.builtin("digits"), weight: .weightEnum(.high))
    }
  }
}
