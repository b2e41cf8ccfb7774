import CHarkProtoOracle
import Glibc
import HarkProto
import NIOCore

// Converts between Hark's Swift messages and the C structs that protoc-c generated, field by
// field, so that libprotobuf-c can serve as an independent oracle: it packs and unpacks; Hark's
// codec is never involved on the C side.

/// Owns the C memory of messages built from Swift values; frees it all at once.
final class CArena {
  private var allocations: [UnsafeMutableRawPointer] = []

  deinit {
    for allocation in allocations { free(allocation) }
  }

  /// A zeroed C struct set up by its protoc-c `…__init` function.
  func new<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
    let raw = calloc(1, MemoryLayout<T>.stride)!
    allocations.append(raw)
    let pointer = raw.bindMemory(to: T.self, capacity: 1)
    initialize(pointer)
    return pointer
  }

  /// A C array of pointers to the structs `elements` builds.
  func array<T>(
    _ elements: [UnsafeMutablePointer<T>]
  ) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
    guard !elements.isEmpty else { return nil }
    let raw = calloc(elements.count, MemoryLayout<UnsafeMutablePointer<T>?>.stride)!
    allocations.append(raw)
    let pointer = raw.bindMemory(to: UnsafeMutablePointer<T>?.self, capacity: elements.count)
    for (index, element) in elements.enumerated() { pointer[index] = element }
    return pointer
  }

  /// A NUL-terminated copy of `string` (which must not contain NUL: C strings cannot).
  func string(_ string: String) -> UnsafeMutablePointer<CChar> {
    let copy = strdup(string)!
    allocations.append(UnsafeMutableRawPointer(copy))
    return copy
  }

  /// A copy of `bytes` as `ProtobufCBinaryData`.
  func binary(_ bytes: ByteBuffer) -> ProtobufCBinaryData {
    let count = bytes.readableBytes
    let raw = malloc(max(count, 1))!
    allocations.append(raw)
    bytes.withUnsafeReadableBytes { source in
      if count > 0 { raw.copyMemory(from: source.baseAddress!, byteCount: count) }
    }
    return ProtobufCBinaryData(len: count, data: raw.assumingMemoryBound(to: UInt8.self))
  }

  /// A C array of strings.
  func strings(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    guard !strings.isEmpty else { return nil }
    let raw = calloc(strings.count, MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)!
    allocations.append(raw)
    let pointer = raw.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: strings.count)
    for (index, string) in strings.enumerated() { pointer[index] = self.string(string) }
    return pointer
  }
}

/// A Swift message with a protoc-c counterpart.
protocol ProtobufCBridged: ProtoMessage {
  associatedtype CMessage
  /// The protoc-c `…__init` function of the counterpart.
  static func cInit(_ message: UnsafeMutablePointer<CMessage>)
  /// The C struct holding the same values.
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage>
  /// The Swift value of a C struct.
  init(cMessage: UnsafePointer<CMessage>)
}

extension ProtobufCBridged {
  static var cDescriptor: UnsafePointer<ProtobufCMessageDescriptor> {
    let arena = CArena()
    let message: UnsafeMutablePointer<CMessage> = arena.new { cInit($0) }
    return UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self).pointee
      .descriptor
  }

  /// libprotobuf-c's encoding of the C struct built from `self`.
  func cPacked() -> [UInt8] {
    let arena = CArena()
    return Self.cPack(UnsafeRawPointer(cMessage(in: arena)))
  }

  static func cPack(_ message: UnsafeRawPointer) -> [UInt8] {
    let base = message.assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    return [UInt8](unsafeUninitializedCapacity: size) { storage, count in
      count = protobuf_c_message_pack(base, storage.baseAddress)
    }
  }

  /// Unpacks `bytes` with libprotobuf-c and hands the C struct to `body`; nil if C rejects them.
  static func withCUnpacked<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CMessage>) -> T) -> T? {
    let unpacked = bytes.withUnsafeBufferPointer { buffer in
      hark_oracle_unpack(cDescriptor, buffer.baseAddress, buffer.count)
    }
    guard let unpacked else { return nil }
    defer { protobuf_c_message_free_unpacked(unpacked, nil) }
    return body(UnsafeRawPointer(unpacked).assumingMemoryBound(to: CMessage.self))
  }

  /// The Swift value libprotobuf-c unpacks from `bytes`; nil if C rejects them.
  static func cUnpacked(_ bytes: [UInt8]) -> Self? {
    withCUnpacked(bytes) { Self(cMessage: $0) }
  }

  /// libprotobuf-c's re-encoding of what it unpacked from `bytes`.
  static func cRepacked(_ bytes: [UInt8]) -> [UInt8]? {
    withCUnpacked(bytes) { cPack(UnsafeRawPointer($0)) }
  }
}

// MARK: Field helpers

private func swiftString(_ pointer: UnsafePointer<CChar>?) -> String {
  pointer.map { String(cString: $0) } ?? ""
}

private func swiftBytes(_ data: ProtobufCBinaryData) -> ByteBuffer {
  guard data.len > 0, let bytes = data.data else { return ByteBuffer() }
  return ByteBuffer(bytes: UnsafeBufferPointer(start: bytes, count: data.len))
}

private func swiftMessages<M: ProtobufCBridged>(
  _ count: Int,
  _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>?
) -> [M] {
  (0..<count).map { M(cMessage: pointer![$0]!) }
}

private func swiftStringMap<Entry>(
  _ count: Int,
  _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?,
  _ entry: (Entry) -> (UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<CChar>?)
) -> [String: String] {
  var map: [String: String] = [:]
  for index in 0..<count {
    let (key, value) = entry(pointer![index]!.pointee)
    map[swiftString(key)] = swiftString(value)
  }
  return map
}

/// Map entries in key order, as Hark writes them, so packed bytes can be compared.
private func sortedEntries<V>(_ map: [String: V]) -> [(String, V)] {
  map.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
}

private func cEnum<E: RawRepresentable>(_ value: some ProtoEnum) -> E
where E.RawValue: BinaryInteger {
  E(rawValue: E.RawValue(truncatingIfNeeded: value.rawValue))!
}

private func swiftEnum<E: ProtoEnum, C: RawRepresentable>(_ value: C) -> E
where C.RawValue: BinaryInteger {
  E(rawValue: Int32(truncatingIfNeeded: value.rawValue))
}

// MARK: recognizer.proto

extension RecognitionRequest: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionRequest
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_request__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    switch request {
    case nil: break
    case .recognitionInitMessage(let value)?:
      m.pointee.request_union_case =
        NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_RECOGNITION_INIT_MESSAGE
      m.pointee.recognition_init_message = value.cMessage(in: arena)
    case .controlMessage(let value)?:
      m.pointee.request_union_case =
        NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_CONTROL_MESSAGE
      m.pointee.control_message = value.cMessage(in: arena)
    case .audio(let value)?:
      m.pointee.request_union_case = NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_AUDIO
      m.pointee.audio = arena.binary(value)
    }
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    switch m.pointee.request_union_case {
    case NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_RECOGNITION_INIT_MESSAGE:
      request = .recognitionInitMessage(.init(cMessage: m.pointee.recognition_init_message))
    case NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_CONTROL_MESSAGE:
      request = .controlMessage(.init(cMessage: m.pointee.control_message))
    case NUANCE__ASR__V1__RECOGNITION_REQUEST__REQUEST_UNION_AUDIO:
      request = .audio(swiftBytes(m.pointee.audio))
    default: break
    }
  }
}

extension ControlMessage: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__ControlMessage
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__control_message__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    if case .startTimersMessage(let value)? = control {
      m.pointee.control_message_union_case =
        NUANCE__ASR__V1__CONTROL_MESSAGE__CONTROL_MESSAGE_UNION_START_TIMERS_MESSAGE
      m.pointee.start_timers_message = value.cMessage(in: arena)
    }
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    if m.pointee.control_message_union_case
      == NUANCE__ASR__V1__CONTROL_MESSAGE__CONTROL_MESSAGE_UNION_START_TIMERS_MESSAGE
    {
      control = .startTimersMessage(.init(cMessage: m.pointee.start_timers_message))
    }
  }
}

extension StartTimersControlMessage: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__StartTimersControlMessage
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__start_timers_control_message__init(m)
  }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> { arena.new(Self.cInit) }
  init(cMessage m: UnsafePointer<CMessage>) { self.init() }
}

extension RecognitionInitMessage: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionInitMessage
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_init_message__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.parameters = parameters?.cMessage(in: arena)
    m.pointee.n_resources = resources.count
    m.pointee.resources = arena.array(resources.map { $0.cMessage(in: arena) })
    let entries = sortedEntries(clientData).map { key, value in
      let entry: UnsafeMutablePointer<Nuance__Asr__V1__RecognitionInitMessage__ClientDataEntry> =
        arena.new(nuance__asr__v1__recognition_init_message__client_data_entry__init)
      entry.pointee.key = arena.string(key)
      entry.pointee.value = arena.string(value)
      return entry
    }
    m.pointee.n_client_data = entries.count
    m.pointee.client_data = arena.array(entries)
    m.pointee.user_id = arena.string(userID)
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    parameters = m.pointee.parameters.map { RecognitionParameters(cMessage: $0) }
    resources = swiftMessages(m.pointee.n_resources, m.pointee.resources)
    clientData = swiftStringMap(m.pointee.n_client_data, m.pointee.client_data) {
      ($0.key, $0.value)
    }
    userID = swiftString(m.pointee.user_id)
  }
}

extension RecognitionParameters: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionParameters
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_parameters__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.language = arena.string(language)
    m.pointee.topic = arena.string(topic)
    m.pointee.audio_format = audioFormat?.cMessage(in: arena)
    m.pointee.utterance_detection_mode = cEnum(utteranceDetectionMode)
    m.pointee.result_type = cEnum(resultType)
    m.pointee.recognition_flags = recognitionFlags?.cMessage(in: arena)
    m.pointee.no_input_timeout_ms = noInputTimeoutMs
    m.pointee.recognition_timeout_ms = recognitionTimeoutMs
    m.pointee.utterance_end_silence_ms = utteranceEndSilenceMs
    if let speechDetectionSensitivity {
      m.pointee.optional_speech_detection_sensitivity_case =
        NUANCE__ASR__V1__RECOGNITION_PARAMETERS__OPTIONAL_SPEECH_DETECTION_SENSITIVITY_SPEECH_DETECTION_SENSITIVITY
      m.pointee.speech_detection_sensitivity = speechDetectionSensitivity
    }
    m.pointee.max_hypotheses = maxHypotheses
    m.pointee.speech_domain = arena.string(speechDomain)
    m.pointee.formatting = formatting?.cMessage(in: arena)
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    language = swiftString(m.pointee.language)
    topic = swiftString(m.pointee.topic)
    audioFormat = m.pointee.audio_format.map { AudioFormat(cMessage: $0) }
    utteranceDetectionMode = swiftEnum(m.pointee.utterance_detection_mode)
    resultType = swiftEnum(m.pointee.result_type)
    recognitionFlags = m.pointee.recognition_flags.map { RecognitionFlags(cMessage: $0) }
    noInputTimeoutMs = m.pointee.no_input_timeout_ms
    recognitionTimeoutMs = m.pointee.recognition_timeout_ms
    utteranceEndSilenceMs = m.pointee.utterance_end_silence_ms
    if m.pointee.optional_speech_detection_sensitivity_case
      == NUANCE__ASR__V1__RECOGNITION_PARAMETERS__OPTIONAL_SPEECH_DETECTION_SENSITIVITY_SPEECH_DETECTION_SENSITIVITY
    {
      speechDetectionSensitivity = m.pointee.speech_detection_sensitivity
    }
    maxHypotheses = m.pointee.max_hypotheses
    speechDomain = swiftString(m.pointee.speech_domain)
    formatting = m.pointee.formatting.map { Formatting(cMessage: $0) }
  }
}

extension AudioFormat: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__AudioFormat
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__audio_format__init(m) }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    switch format {
    case nil: break
    case .pcm(let value)?:
      m.pointee.audio_format_union_case = NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_PCM
      m.pointee.pcm = value.cMessage(in: arena)
    case .alaw(let value)?:
      m.pointee.audio_format_union_case = NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_ALAW
      m.pointee.alaw = value.cMessage(in: arena)
    case .ulaw(let value)?:
      m.pointee.audio_format_union_case = NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_ULAW
      m.pointee.ulaw = value.cMessage(in: arena)
    case .opus(let value)?:
      m.pointee.audio_format_union_case = NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_OPUS
      m.pointee.opus = value.cMessage(in: arena)
    case .oggOpus(let value)?:
      m.pointee.audio_format_union_case = NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_OGG_OPUS
      m.pointee.ogg_opus = value.cMessage(in: arena)
    }
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    switch m.pointee.audio_format_union_case {
    case NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_PCM:
      format = .pcm(.init(cMessage: m.pointee.pcm))
    case NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_ALAW:
      format = .alaw(.init(cMessage: m.pointee.alaw))
    case NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_ULAW:
      format = .ulaw(.init(cMessage: m.pointee.ulaw))
    case NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_OPUS:
      format = .opus(.init(cMessage: m.pointee.opus))
    case NUANCE__ASR__V1__AUDIO_FORMAT__AUDIO_FORMAT_UNION_OGG_OPUS:
      format = .oggOpus(.init(cMessage: m.pointee.ogg_opus))
    default: break
    }
  }
}

extension PCM: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__PCM
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__pcm__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.sample_rate_hz = sampleRateHz
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) { self.init(sampleRateHz: m.pointee.sample_rate_hz) }
}

extension ALaw: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__ALaw
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__alaw__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> { arena.new(Self.cInit) }
  init(cMessage m: UnsafePointer<CMessage>) { self.init() }
}

extension ULaw: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__ULaw
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__ulaw__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> { arena.new(Self.cInit) }
  init(cMessage m: UnsafePointer<CMessage>) { self.init() }
}

extension Opus: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Opus
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__opus__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.decode_rate_hz = decodeRateHz
    m.pointee.preskip_samples = preskipSamples
    m.pointee.source_rate_hz = sourceRateHz
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    decodeRateHz = m.pointee.decode_rate_hz
    preskipSamples = m.pointee.preskip_samples
    sourceRateHz = m.pointee.source_rate_hz
  }
}

extension OggOpus: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__OggOpus
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__ogg_opus__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.decode_rate_hz = decodeRateHz
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    decodeRateHz = m.pointee.decode_rate_hz
  }
}

extension RecognitionFlags: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionFlags
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_flags__init(m)
  }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.auto_punctuate = autoPunctuate ? 1 : 0
    m.pointee.filter_profanity = filterProfanity ? 1 : 0
    m.pointee.include_tokenization = includeTokenization ? 1 : 0
    m.pointee.stall_timers = stallTimers ? 1 : 0
    m.pointee.discard_speaker_adaptation = discardSpeakerAdaptation ? 1 : 0
    m.pointee.suppress_call_recording = suppressCallRecording ? 1 : 0
    m.pointee.mask_load_failures = maskLoadFailures ? 1 : 0
    m.pointee.suppress_initial_capitalization = suppressInitialCapitalization ? 1 : 0
    m.pointee.allow_zero_base_lm_weight = allowZeroBaseLmWeight ? 1 : 0
    m.pointee.filter_wakeup_word = filterWakeupWord ? 1 : 0
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    autoPunctuate = m.pointee.auto_punctuate != 0
    filterProfanity = m.pointee.filter_profanity != 0
    includeTokenization = m.pointee.include_tokenization != 0
    stallTimers = m.pointee.stall_timers != 0
    discardSpeakerAdaptation = m.pointee.discard_speaker_adaptation != 0
    suppressCallRecording = m.pointee.suppress_call_recording != 0
    maskLoadFailures = m.pointee.mask_load_failures != 0
    suppressInitialCapitalization = m.pointee.suppress_initial_capitalization != 0
    allowZeroBaseLmWeight = m.pointee.allow_zero_base_lm_weight != 0
    filterWakeupWord = m.pointee.filter_wakeup_word != 0
  }
}

extension Formatting: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Formatting
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__formatting__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.scheme = arena.string(scheme)
    let entries = sortedEntries(options).map { key, value in
      let entry: UnsafeMutablePointer<Nuance__Asr__V1__Formatting__OptionsEntry> =
        arena.new(nuance__asr__v1__formatting__options_entry__init)
      entry.pointee.key = arena.string(key)
      entry.pointee.value = value ? 1 : 0
      return entry
    }
    m.pointee.n_options = entries.count
    m.pointee.options = arena.array(entries)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    scheme = swiftString(m.pointee.scheme)
    for index in 0..<m.pointee.n_options {
      let entry = m.pointee.options[index]!.pointee
      options[swiftString(entry.key)] = entry.value != 0
    }
  }
}

extension RecognitionResponse: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionResponse
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_response__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    switch response {
    case nil: break
    case .status(let value)?:
      m.pointee.response_union_case = NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_STATUS
      m.pointee.status = value.cMessage(in: arena)
    case .startOfSpeech(let value)?:
      m.pointee.response_union_case =
        NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_START_OF_SPEECH
      m.pointee.start_of_speech = value.cMessage(in: arena)
    case .result(let value)?:
      m.pointee.response_union_case = NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_RESULT
      m.pointee.result = value.cMessage(in: arena)
    }
    let entries = sortedEntries(cookies).map { key, value in
      let entry: UnsafeMutablePointer<Nuance__Asr__V1__RecognitionResponse__CookiesEntry> =
        arena.new(nuance__asr__v1__recognition_response__cookies_entry__init)
      entry.pointee.key = arena.string(key)
      entry.pointee.value = arena.string(value)
      return entry
    }
    m.pointee.n_cookies = entries.count
    m.pointee.cookies = arena.array(entries)
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    switch m.pointee.response_union_case {
    case NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_STATUS:
      response = .status(.init(cMessage: m.pointee.status))
    case NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_START_OF_SPEECH:
      response = .startOfSpeech(.init(cMessage: m.pointee.start_of_speech))
    case NUANCE__ASR__V1__RECOGNITION_RESPONSE__RESPONSE_UNION_RESULT:
      response = .result(.init(cMessage: m.pointee.result))
    default: break
    }
    cookies = swiftStringMap(m.pointee.n_cookies, m.pointee.cookies) { ($0.key, $0.value) }
  }
}

extension RecognitionStatus: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Status
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__status__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.code = code
    m.pointee.message = arena.string(message)
    m.pointee.details = arena.string(details)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init(
      code: m.pointee.code,
      message: swiftString(m.pointee.message),
      details: swiftString(m.pointee.details)
    )
  }
}

extension StartOfSpeech: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__StartOfSpeech
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__start_of_speech__init(m)
  }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.first_audio_to_start_of_speech_ms = firstAudioToStartOfSpeechMs
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init(firstAudioToStartOfSpeechMs: m.pointee.first_audio_to_start_of_speech_ms)
  }
}

// MARK: resource.proto

extension RecognitionResource: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__RecognitionResource
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__recognition_resource__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    switch resource {
    case nil: break
    case .externalReference(let value)?:
      m.pointee.resource_union_case =
        NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_EXTERNAL_REFERENCE
      m.pointee.external_reference = value.cMessage(in: arena)
    case .inlineWordset(let value)?:
      m.pointee.resource_union_case =
        NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_INLINE_WORDSET
      m.pointee.inline_wordset = arena.string(value)
    case .builtin(let value)?:
      m.pointee.resource_union_case = NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_BUILTIN
      m.pointee.builtin = arena.string(value)
    case .inlineGrammar(let value)?:
      m.pointee.resource_union_case =
        NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_INLINE_GRAMMAR
      m.pointee.inline_grammar = arena.string(value)
    case .wakeupWord(let value)?:
      m.pointee.resource_union_case =
        NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_WAKEUP_WORD
      m.pointee.wakeup_word = value.cMessage(in: arena)
    }
    switch weight {
    case nil: break
    case .weightEnum(let value)?:
      m.pointee.weight_union_case = NUANCE__ASR__V1__RECOGNITION_RESOURCE__WEIGHT_UNION_WEIGHT_ENUM
      m.pointee.weight_enum = cEnum(value)
    case .weightValue(let value)?:
      m.pointee.weight_union_case = NUANCE__ASR__V1__RECOGNITION_RESOURCE__WEIGHT_UNION_WEIGHT_VALUE
      m.pointee.weight_value = value
    }
    m.pointee.reuse = cEnum(reuse)
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    switch m.pointee.resource_union_case {
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_EXTERNAL_REFERENCE:
      resource = .externalReference(.init(cMessage: m.pointee.external_reference))
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_INLINE_WORDSET:
      resource = .inlineWordset(swiftString(m.pointee.inline_wordset))
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_BUILTIN:
      resource = .builtin(swiftString(m.pointee.builtin))
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_INLINE_GRAMMAR:
      resource = .inlineGrammar(swiftString(m.pointee.inline_grammar))
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__RESOURCE_UNION_WAKEUP_WORD:
      resource = .wakeupWord(.init(cMessage: m.pointee.wakeup_word))
    default: break
    }
    switch m.pointee.weight_union_case {
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__WEIGHT_UNION_WEIGHT_ENUM:
      weight = .weightEnum(swiftEnum(m.pointee.weight_enum))
    case NUANCE__ASR__V1__RECOGNITION_RESOURCE__WEIGHT_UNION_WEIGHT_VALUE:
      weight = .weightValue(m.pointee.weight_value)
    default: break
    }
    reuse = swiftEnum(m.pointee.reuse)
  }
}

extension ResourceReference: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__ResourceReference
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__resource_reference__init(m)
  }

  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.type = cEnum(type)
    m.pointee.uri = arena.string(uri)
    m.pointee.mask_load_failures = maskLoadFailures ? 1 : 0
    m.pointee.request_timeout_ms = requestTimeoutMs
    let entries = sortedEntries(headers).map { key, value in
      let entry: UnsafeMutablePointer<Nuance__Asr__V1__ResourceReference__HeadersEntry> =
        arena.new(nuance__asr__v1__resource_reference__headers_entry__init)
      entry.pointee.key = arena.string(key)
      entry.pointee.value = arena.string(value)
      return entry
    }
    m.pointee.n_headers = entries.count
    m.pointee.headers = arena.array(entries)
    return m
  }

  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    type = swiftEnum(m.pointee.type)
    uri = swiftString(m.pointee.uri)
    maskLoadFailures = m.pointee.mask_load_failures != 0
    requestTimeoutMs = m.pointee.request_timeout_ms
    headers = swiftStringMap(m.pointee.n_headers, m.pointee.headers) { ($0.key, $0.value) }
  }
}

extension WakeupWord: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__WakeupWord
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__wakeup_word__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.n_words = words.count
    m.pointee.words = arena.strings(words)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init(words: (0..<m.pointee.n_words).map { swiftString(m.pointee.words[$0]) })
  }
}

// MARK: result.proto

extension RecognitionResult: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Result
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__result__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.result_type = cEnum(resultType)
    m.pointee.abs_start_ms = absStartMs
    m.pointee.abs_end_ms = absEndMs
    m.pointee.utterance_info = utteranceInfo?.cMessage(in: arena)
    m.pointee.n_hypotheses = hypotheses.count
    m.pointee.hypotheses = arena.array(hypotheses.map { $0.cMessage(in: arena) })
    m.pointee.data_pack = dataPack?.cMessage(in: arena)
    m.pointee.n_notifications = notifications.count
    m.pointee.notifications = arena.array(notifications.map { $0.cMessage(in: arena) })
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    resultType = swiftEnum(m.pointee.result_type)
    absStartMs = m.pointee.abs_start_ms
    absEndMs = m.pointee.abs_end_ms
    utteranceInfo = m.pointee.utterance_info.map { UtteranceInfo(cMessage: $0) }
    hypotheses = swiftMessages(m.pointee.n_hypotheses, m.pointee.hypotheses)
    dataPack = m.pointee.data_pack.map { DataPack(cMessage: $0) }
    notifications = swiftMessages(m.pointee.n_notifications, m.pointee.notifications)
  }
}

extension UtteranceInfo: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__UtteranceInfo
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) {
    nuance__asr__v1__utterance_info__init(m)
  }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.duration_ms = durationMs
    m.pointee.clipping_duration_ms = clippingDurationMs
    m.pointee.dropped_speech_packets = droppedSpeechPackets
    m.pointee.dropped_nonspeech_packets = droppedNonspeechPackets
    m.pointee.dsp = dsp?.cMessage(in: arena)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    durationMs = m.pointee.duration_ms
    clippingDurationMs = m.pointee.clipping_duration_ms
    droppedSpeechPackets = m.pointee.dropped_speech_packets
    droppedNonspeechPackets = m.pointee.dropped_nonspeech_packets
    dsp = m.pointee.dsp.map { Dsp(cMessage: $0) }
  }
}

extension Dsp: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Dsp
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__dsp__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.snr_estimate_db = snrEstimateDb
    m.pointee.level = level
    m.pointee.num_channels = numChannels
    m.pointee.initial_silence_ms = initialSilenceMs
    m.pointee.initial_energy = initialEnergy
    m.pointee.final_energy = finalEnergy
    m.pointee.mean_energy = meanEnergy
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    snrEstimateDb = m.pointee.snr_estimate_db
    level = m.pointee.level
    numChannels = m.pointee.num_channels
    initialSilenceMs = m.pointee.initial_silence_ms
    initialEnergy = m.pointee.initial_energy
    finalEnergy = m.pointee.final_energy
    meanEnergy = m.pointee.mean_energy
  }
}

extension Hypothesis: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Hypothesis
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__hypothesis__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    if let confidence {
      m.pointee.optional_hypothesis_confidence_case =
        NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_CONFIDENCE_CONFIDENCE
      m.pointee.confidence = confidence
    }
    if let averageConfidence {
      m.pointee.optional_hypothesis_average_confidence_case =
        NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_AVERAGE_CONFIDENCE_AVERAGE_CONFIDENCE
      m.pointee.average_confidence = averageConfidence
    }
    m.pointee.rejected = rejected ? 1 : 0
    m.pointee.formatted_text = arena.string(formattedText)
    m.pointee.minimally_formatted_text = arena.string(minimallyFormattedText)
    m.pointee.n_words = words.count
    m.pointee.words = arena.array(words.map { $0.cMessage(in: arena) })
    m.pointee.encrypted_tokenization = arena.string(encryptedTokenization)
    if let grammarID {
      m.pointee.optional_hypothesis_grammar_id_case =
        NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_GRAMMAR_ID_GRAMMAR_ID
      m.pointee.grammar_id = arena.string(grammarID)
    }
    if let detectedWakeupWord {
      m.pointee.optional_detected_wuw_case =
        NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_DETECTED_WUW_DETECTED_WAKEUP_WORD
      m.pointee.detected_wakeup_word = arena.string(detectedWakeupWord)
    }
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    if m.pointee.optional_hypothesis_confidence_case
      == NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_CONFIDENCE_CONFIDENCE
    {
      confidence = m.pointee.confidence
    }
    if m.pointee.optional_hypothesis_average_confidence_case
      == NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_AVERAGE_CONFIDENCE_AVERAGE_CONFIDENCE
    {
      averageConfidence = m.pointee.average_confidence
    }
    rejected = m.pointee.rejected != 0
    formattedText = swiftString(m.pointee.formatted_text)
    minimallyFormattedText = swiftString(m.pointee.minimally_formatted_text)
    words = swiftMessages(m.pointee.n_words, m.pointee.words)
    encryptedTokenization = swiftString(m.pointee.encrypted_tokenization)
    if m.pointee.optional_hypothesis_grammar_id_case
      == NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_HYPOTHESIS_GRAMMAR_ID_GRAMMAR_ID
    {
      grammarID = swiftString(m.pointee.grammar_id)
    }
    if m.pointee.optional_detected_wuw_case
      == NUANCE__ASR__V1__HYPOTHESIS__OPTIONAL_DETECTED_WUW_DETECTED_WAKEUP_WORD
    {
      detectedWakeupWord = swiftString(m.pointee.detected_wakeup_word)
    }
  }
}

extension Word: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Word
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__word__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.text = arena.string(text)
    if let confidence {
      m.pointee.optional_word_confidence_case =
        NUANCE__ASR__V1__WORD__OPTIONAL_WORD_CONFIDENCE_CONFIDENCE
      m.pointee.confidence = confidence
    }
    m.pointee.start_ms = startMs
    m.pointee.end_ms = endMs
    m.pointee.silence_after_word_ms = silenceAfterWordMs
    if let grammarRule {
      m.pointee.optional_word_grammar_rule_case =
        NUANCE__ASR__V1__WORD__OPTIONAL_WORD_GRAMMAR_RULE_GRAMMAR_RULE
      m.pointee.grammar_rule = arena.string(grammarRule)
    }
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    text = swiftString(m.pointee.text)
    if m.pointee.optional_word_confidence_case
      == NUANCE__ASR__V1__WORD__OPTIONAL_WORD_CONFIDENCE_CONFIDENCE
    {
      confidence = m.pointee.confidence
    }
    startMs = m.pointee.start_ms
    endMs = m.pointee.end_ms
    silenceAfterWordMs = m.pointee.silence_after_word_ms
    if m.pointee.optional_word_grammar_rule_case
      == NUANCE__ASR__V1__WORD__OPTIONAL_WORD_GRAMMAR_RULE_GRAMMAR_RULE
    {
      grammarRule = swiftString(m.pointee.grammar_rule)
    }
  }
}

extension DataPack: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__DataPack
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__data_pack__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.language = arena.string(language)
    m.pointee.topic = arena.string(topic)
    m.pointee.version = arena.string(version)
    m.pointee.id = arena.string(id)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    language = swiftString(m.pointee.language)
    topic = swiftString(m.pointee.topic)
    version = swiftString(m.pointee.version)
    id = swiftString(m.pointee.id)
  }
}

extension Notification: ProtobufCBridged {
  typealias CMessage = Nuance__Asr__V1__Notification
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__asr__v1__notification__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.code = code
    m.pointee.severity = cEnum(severity)
    m.pointee.message = message?.cMessage(in: arena)
    let entries = sortedEntries(data).map { key, value in
      let entry: UnsafeMutablePointer<Nuance__Asr__V1__Notification__DataEntry> =
        arena.new(nuance__asr__v1__notification__data_entry__init)
      entry.pointee.key = arena.string(key)
      entry.pointee.value = arena.string(value)
      return entry
    }
    m.pointee.n_data = entries.count
    m.pointee.data = arena.array(entries)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    code = m.pointee.code
    severity = swiftEnum(m.pointee.severity)
    message = m.pointee.message.map { LocalizedMessage(cMessage: $0) }
    data = swiftStringMap(m.pointee.n_data, m.pointee.data) { ($0.key, $0.value) }
  }
}

extension LocalizedMessage: ProtobufCBridged {
  typealias CMessage = Nuance__Rpc__LocalizedMessage
  static func cInit(_ m: UnsafeMutablePointer<CMessage>) { nuance__rpc__localized_message__init(m) }
  func cMessage(in arena: CArena) -> UnsafeMutablePointer<CMessage> {
    let m: UnsafeMutablePointer<CMessage> = arena.new(Self.cInit)
    m.pointee.locale = arena.string(locale)
    m.pointee.message = arena.string(message)
    m.pointee.message_resource_id = arena.string(messageResourceID)
    return m
  }
  init(cMessage m: UnsafePointer<CMessage>) {
    self.init()
    locale = swiftString(m.pointee.locale)
    message = swiftString(m.pointee.message)
    messageResourceID = swiftString(m.pointee.message_resource_id)
  }
}
