import HarkProto
import NIOCore

/// SplitMix64: a small seeded generator, so a failing random case can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64

  init(seed: UInt64) {
    state = seed
  }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Random messages of every type of the schema, biased toward edges: defaults, maximum values,
/// empty and non-ASCII strings, unknown enum values, present-but-default oneof members.
///
/// Strings never contain NUL, because libprotobuf-c keeps strings NUL-terminated; floats are never
/// NaN, so that `==` can compare values (NaN has its own tests, compared by bit pattern).
struct MessageGenerator {
  var rng: SplitMix64

  init(seed: UInt64) {
    rng = SplitMix64(seed: seed)
  }

  mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }

  mutating func count(max: Int) -> Int { Int.random(in: 0...max, using: &rng) }

  private static let alphabet: [String] = [
    "a", "b", "z", "A", "0", "9", " ", "-", "_", "\t", "\n", "é", "ß", "☺", "中", "😈", "\u{7F}",
    "\u{80}", "\u{FFFD}", "\u{10FFFF}",
  ]

  mutating func string() -> String {
    if chance(25) { return "" }
    let length = Int.random(in: 1...14, using: &rng)
    return String((0..<length).map { _ in Character(Self.alphabet.randomElement(using: &rng)!) })
  }

  mutating func uint32() -> UInt32 {
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: 0
    case 1: UInt32.max
    case 2: UInt32.random(in: 1...127, using: &rng)
    case 3: UInt32.random(in: 128...16_383, using: &rng)
    default: UInt32.random(in: 0...UInt32.max, using: &rng)
    }
  }

  mutating func int32() -> Int32 {
    switch Int.random(in: 0..<5, using: &rng) {
    case 0: 0
    case 1: Int32.min
    case 2: Int32.max
    case 3: -1
    default: Int32.random(in: Int32.min...Int32.max, using: &rng)
    }
  }

  mutating func float() -> Float {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: 0
    case 1: -0.0
    case 2: .infinity
    case 3: -.greatestFiniteMagnitude
    case 4: .leastNonzeroMagnitude
    default: Float.random(in: -1000...1000, using: &rng)
    }
  }

  /// A float for a field with implicit presence: never -0.0, which libprotobuf-c leaves out where
  /// C++, Go and upb (and Hark) write it; the oracle tests check that divergence on its own.
  mutating func implicitFloat() -> Float {
    let value = float()
    return value == 0 ? 0 : value
  }

  mutating func bool() -> Bool { chance(50) }

  mutating func enumValue<E: ProtoEnum>(_ type: E.Type) -> E {
    if chance(10) { return E(rawValue: [7, 100, -1, Int32.max].randomElement(using: &rng)!) }
    return E.namedValues.randomElement(using: &rng)!.0
  }

  mutating func bytes() -> ByteBuffer {
    let length = chance(20) ? 0 : Int.random(in: 1...700, using: &rng)
    var buffer = ByteBuffer()
    for _ in 0..<length { buffer.writeInteger(UInt8.random(in: 0...255, using: &rng)) }
    return buffer
  }

  mutating func stringMap() -> [String: String] {
    var map: [String: String] = [:]
    for _ in 0..<count(max: 4) { map[string()] = string() }
    return map
  }

  mutating func optional<T>(_ make: (inout MessageGenerator) -> T) -> T? {
    chance(60) ? make(&self) : nil
  }

  // MARK: recognizer.proto

  mutating func recognitionRequest() -> RecognitionRequest {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: RecognitionRequest()
    case 1, 2: .initMessage(recognitionInitMessage())
    case 3: RecognitionRequest(.controlMessage(controlMessage()))
    default: .audio(bytes())
    }
  }

  mutating func controlMessage() -> ControlMessage {
    ControlMessage(chance(80) ? .startTimersMessage(StartTimersControlMessage()) : nil)
  }

  mutating func recognitionInitMessage() -> RecognitionInitMessage {
    RecognitionInitMessage(
      parameters: optional { $0.recognitionParameters() },
      resources: (0..<count(max: 3)).map { _ in recognitionResource() },
      clientData: stringMap(),
      userID: string()
    )
  }

  mutating func recognitionParameters() -> RecognitionParameters {
    var p = RecognitionParameters()
    p.language = string()
    p.topic = string()
    p.audioFormat = optional { $0.audioFormat() }
    p.utteranceDetectionMode = enumValue(UtteranceDetectionMode.self)
    p.resultType = enumValue(ResultType.self)
    p.recognitionFlags = optional { $0.recognitionFlags() }
    p.noInputTimeoutMs = uint32()
    p.recognitionTimeoutMs = uint32()
    p.utteranceEndSilenceMs = uint32()
    p.speechDetectionSensitivity = optional { $0.float() }
    p.maxHypotheses = uint32()
    p.speechDomain = string()
    p.formatting = optional { $0.formatting() }
    return p
  }

  mutating func audioFormat() -> AudioFormat {
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: AudioFormat()
    case 1: AudioFormat(.pcm(pcm()))
    case 2: AudioFormat(.alaw(ALaw()))
    case 3: AudioFormat(.ulaw(ULaw()))
    case 4: AudioFormat(.opus(opus()))
    default: AudioFormat(.oggOpus(oggOpus()))
    }
  }

  mutating func pcm() -> PCM { PCM(sampleRateHz: uint32()) }

  mutating func opus() -> Opus {
    var o = Opus()
    o.decodeRateHz = uint32()
    o.preskipSamples = uint32()
    o.sourceRateHz = uint32()
    return o
  }

  mutating func oggOpus() -> OggOpus {
    var o = OggOpus()
    o.decodeRateHz = uint32()
    return o
  }

  mutating func recognitionFlags() -> RecognitionFlags {
    var f = RecognitionFlags()
    f.autoPunctuate = bool()
    f.filterProfanity = bool()
    f.includeTokenization = bool()
    f.stallTimers = bool()
    f.discardSpeakerAdaptation = bool()
    f.suppressCallRecording = bool()
    f.maskLoadFailures = bool()
    f.suppressInitialCapitalization = bool()
    f.allowZeroBaseLmWeight = bool()
    f.filterWakeupWord = bool()
    return f
  }

  mutating func formatting() -> Formatting {
    var f = Formatting()
    f.scheme = string()
    for _ in 0..<count(max: 4) { f.options[string()] = bool() }
    return f
  }

  mutating func recognitionResponse() -> RecognitionResponse {
    let response: RecognitionResponse.Response?
    switch Int.random(in: 0..<5, using: &rng) {
    case 0: response = nil
    case 1: response = .status(recognitionStatus())
    case 2: response = .startOfSpeech(startOfSpeech())
    default: response = .result(recognitionResult())
    }
    return RecognitionResponse(response, cookies: chance(30) ? stringMap() : [:])
  }

  mutating func recognitionStatus() -> RecognitionStatus {
    RecognitionStatus(code: uint32(), message: string(), details: string())
  }

  mutating func startOfSpeech() -> StartOfSpeech {
    StartOfSpeech(firstAudioToStartOfSpeechMs: uint32())
  }

  // MARK: resource.proto

  mutating func recognitionResource() -> RecognitionResource {
    let resource: RecognitionResource.Resource?
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: resource = nil
    case 1: resource = .externalReference(resourceReference())
    case 2: resource = .inlineWordset(string())
    case 3: resource = .builtin(string())
    case 4: resource = .inlineGrammar(string())
    default: resource = .wakeupWord(wakeupWord())
    }
    let weight: RecognitionResource.Weight?
    switch Int.random(in: 0..<3, using: &rng) {
    case 0: weight = nil
    case 1: weight = .weightEnum(enumValue(ResourceWeight.self))
    default: weight = .weightValue(float())
    }
    return RecognitionResource(resource, weight: weight, reuse: enumValue(ResourceReuse.self))
  }

  mutating func resourceReference() -> ResourceReference {
    var r = ResourceReference()
    r.type = enumValue(ResourceType.self)
    r.uri = string()
    r.maskLoadFailures = bool()
    r.requestTimeoutMs = uint32()
    r.headers = stringMap()
    return r
  }

  mutating func wakeupWord() -> WakeupWord {
    WakeupWord(words: (0..<count(max: 3)).map { _ in string() })
  }

  // MARK: result.proto

  mutating func recognitionResult() -> RecognitionResult {
    var r = RecognitionResult()
    r.resultType = enumValue(ResultType.self)
    r.absStartMs = uint32()
    r.absEndMs = uint32()
    r.utteranceInfo = optional { $0.utteranceInfo() }
    r.hypotheses = (0..<count(max: 3)).map { _ in hypothesis() }
    r.dataPack = optional { $0.dataPack() }
    r.notifications = (0..<count(max: 2)).map { _ in notification() }
    return r
  }

  mutating func utteranceInfo() -> UtteranceInfo {
    var u = UtteranceInfo()
    u.durationMs = uint32()
    u.clippingDurationMs = uint32()
    u.droppedSpeechPackets = uint32()
    u.droppedNonspeechPackets = uint32()
    u.dsp = optional { $0.dsp() }
    return u
  }

  mutating func dsp() -> Dsp {
    var d = Dsp()
    d.snrEstimateDb = implicitFloat()
    d.level = implicitFloat()
    d.numChannels = uint32()
    d.initialSilenceMs = uint32()
    d.initialEnergy = implicitFloat()
    d.finalEnergy = implicitFloat()
    d.meanEnergy = implicitFloat()
    return d
  }

  mutating func hypothesis() -> Hypothesis {
    var h = Hypothesis()
    h.confidence = optional { $0.float() }
    h.averageConfidence = optional { $0.float() }
    h.rejected = bool()
    h.formattedText = string()
    h.minimallyFormattedText = string()
    h.words = (0..<count(max: 4)).map { _ in word() }
    h.encryptedTokenization = string()
    h.grammarID = optional { $0.string() }
    h.detectedWakeupWord = optional { $0.string() }
    return h
  }

  mutating func word() -> Word {
    var w = Word()
    w.text = string()
    w.confidence = optional { $0.float() }
    w.startMs = uint32()
    w.endMs = uint32()
    w.silenceAfterWordMs = uint32()
    w.grammarRule = optional { $0.string() }
    return w
  }

  mutating func dataPack() -> DataPack {
    var d = DataPack()
    d.language = string()
    d.topic = string()
    d.version = string()
    d.id = string()
    return d
  }

  mutating func notification() -> Notification {
    var n = Notification()
    n.code = int32()
    n.severity = enumValue(SeverityType.self)
    n.message = optional { $0.localizedMessage() }
    n.data = stringMap()
    return n
  }

  mutating func localizedMessage() -> LocalizedMessage {
    var m = LocalizedMessage()
    m.locale = string()
    m.message = string()
    m.messageResourceID = string()
    return m
  }
}
