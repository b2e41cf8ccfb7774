public import NIOCore

// The request side of recognizer.proto: what a client sends on the Recognize stream.

/// `nuance.asr.v1.RecognitionRequest`: one message of the request stream — the init first, then
/// control and audio messages.
public struct RecognitionRequest: ProtoMessage {
  /// The `request_union` oneof.
  public enum Request: Sendable, Hashable {
    /// Field 1: parameters and resources; required first.
    indirect case recognitionInitMessage(RecognitionInitMessage)
    /// Field 2: timer control.
    case controlMessage(ControlMessage)
    /// Field 3: audio samples in the format the init declared.
    case audio(ByteBuffer)
  }

  /// Which member of `request_union` is set, if any.
  public var request: Request?

  public init() {}

  /// A request carrying `request`.
  public init(_ request: Request?) {
    self.request = request
  }

  /// An init request.
  public static func initMessage(_ message: RecognitionInitMessage) -> Self {
    Self(.recognitionInitMessage(message))
  }

  /// An audio request.
  public static func audio(_ samples: ByteBuffer) -> Self {
    Self(.audio(samples))
  }

  /// The request that starts stalled timers: `control_message { start_timers_message {} }`.
  public static var startTimers: Self {
    Self(.controlMessage(ControlMessage(.startTimersMessage(StartTimersControlMessage()))))
  }
}

extension RecognitionRequest {
  public static let protoName = "nuance.asr.v1.RecognitionRequest"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "recognition_init_message"
    case 2: "control_message"
    case 3: "audio"
    default: nil
    }
  }

  public var encodedSize: Int {
    switch request {
    case nil: 0
    case .recognitionInitMessage(let message)?: ProtoSize.present(1, message)
    case .controlMessage(let message)?: ProtoSize.present(2, message)
    case .audio(let samples)?: ProtoSize.present(3, samples)
    }
  }

  public func encode(to writer: inout ProtoWriter) {
    // `if case` rather than a switch: the switch retains the init message's box (and releases
    // it after) around writing it.
    if case .recognitionInitMessage(let message)? = request {
      writer.writePresent(message, field: 1)
    } else if case .controlMessage(let message)? = request {
      writer.writePresent(message, field: 2)
    } else if case .audio(let samples)? = request {
      writer.writePresent(samples, field: 3)
    }
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    // Nearly every request is audio alone (see ProtoReader.expect(tag:)).
    if reader.expect(tag: 0x1A) { request = .audio(try reader.readBytes()) }
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        var message = RecognitionInitMessage()
        if case .recognitionInitMessage(let existing)? = request {
          message = existing
          request = nil
        }
        try reader.readMessage(into: &message)
        request = .recognitionInitMessage(message)
      case (2, .lengthDelimited):
        var message = ControlMessage()
        if case .controlMessage(let existing)? = request { message = existing }
        try reader.readMessage(into: &message)
        request = .controlMessage(message)
      case (3, .lengthDelimited):
        request = .audio(try reader.readBytes())
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.ControlMessage`: timer control.
public struct ControlMessage: ProtoMessage {
  /// The `control_message_union` oneof.
  public enum Control: Sendable, Hashable {
    /// Field 1: start the stalled no-input and recognition timers.
    case startTimersMessage(StartTimersControlMessage)
  }

  /// Which member of `control_message_union` is set, if any.
  public var control: Control?

  public init() {}

  /// A control message carrying `control`.
  public init(_ control: Control?) {
    self.control = control
  }
}

extension ControlMessage {
  public static let protoName = "nuance.asr.v1.ControlMessage"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "start_timers_message" : nil
  }

  public var encodedSize: Int {
    switch control {
    case nil: 0
    case .startTimersMessage(let message)?: ProtoSize.present(1, message)
    }
  }

  public func encode(to writer: inout ProtoWriter) {
    switch control {
    case nil: break
    case .startTimersMessage(let message)?: writer.writePresent(message, field: 1)
    }
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        var message = StartTimersControlMessage()
        try reader.readMessage(into: &message)
        control = .startTimersMessage(message)
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.StartTimersControlMessage`: starts the timers an init stalled. No fields.
public struct StartTimersControlMessage: ProtoMessage {
  public init() {}

  public static let protoName = "nuance.asr.v1.StartTimersControlMessage"
  public static func protoFieldName(_ number: Int) -> StaticString? { nil }
  public var encodedSize: Int { 0 }
  public func encode(to writer: inout ProtoWriter) {}
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() { try reader.skip(tag) }
  }
}

/// `nuance.asr.v1.RecognitionInitMessage`: the parameters and resources of a recognition turn.
public struct RecognitionInitMessage: ProtoMessage {
  /// Field 1: language, audio format and the other parameters.
  public var parameters: RecognitionParameters?
  /// Field 2: DLMs, wordsets, builtins and grammars that tune recognition.
  public var resources: [RecognitionResource] = []
  /// Field 3: client key-value pairs for the call log.
  public var clientData: [String: String] = [:]
  /// Field 4: an identifier of the user.
  public var userID: String = ""

  public init() {}

  /// An init message with these parameters and resources.
  public init(
    parameters: RecognitionParameters?,
    resources: [RecognitionResource] = [],
    clientData: [String: String] = [:],
    userID: String = ""
  ) {
    self.parameters = parameters
    self.resources = resources
    self.clientData = clientData
    self.userID = userID
  }
}

extension RecognitionInitMessage {
  public static let protoName = "nuance.asr.v1.RecognitionInitMessage"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "parameters"
    case 2: "resources"
    case 3: "client_data"
    case 4: "user_id"
    default: nil
    }
  }

  public var encodedSize: Int {
    ProtoSize.field(1, parameters) + ProtoSize.field(2, resources) + ProtoSize.field(3, clientData)
      + ProtoSize.field(4, userID)
  }

  public func encode(to writer: inout ProtoWriter) {
    writer.write(parameters, field: 1)
    writer.write(resources, field: 2)
    writer.write(clientData, field: 3)
    writer.write(userID, field: 4)
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        try reader.readMessage(into: &parameters)
      case (2, .lengthDelimited):
        try reader.readRepeatedMessage(into: &resources)
      case (3, .lengthDelimited):
        try reader.readStringToStringEntry(into: &clientData)
      case (4, .lengthDelimited):
        userID = try reader.readString()
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.RecognitionParameters`: the language is required; all others are optional.
public struct RecognitionParameters: ProtoMessage {
  /// Field 1: language and country code, e.g. `en-US`. Mandatory.
  public var language: String = ""
  /// Field 2: specialized language model in the data pack; the server's default is `GEN`.
  public var topic: String = ""
  /// Field 3: codec and sample rate of the audio. Mandatory.
  public var audioFormat: AudioFormat?
  /// Field 4: how the end of an utterance is determined. Default SINGLE.
  public var utteranceDetectionMode: UtteranceDetectionMode = .single
  /// Field 5: the level of results returned. Default FINAL.
  public var resultType: ResultType = .final
  /// Field 6: boolean parameters.
  public var recognitionFlags: RecognitionFlags?
  /// Field 7: non-speech allowed after the timers start before 404, in ms; 0 means none.
  public var noInputTimeoutMs: UInt32 = 0
  /// Field 8: speech allowed in one utterance before 413, in ms; 0 means none.
  public var recognitionTimeoutMs: UInt32 = 0
  /// Field 9: silence that ends an utterance, in ms; 0 means the server default (500).
  public var utteranceEndSilenceMs: UInt32 = 0
  /// Field 10 (oneof `optional_speech_detection_sensitivity`): 0 ignores all noise, 1 takes all
  /// noise as speech; nil means the default, 0.5.
  public var speechDetectionSensitivity: Float?
  /// Field 11: maximum number of n-best hypotheses; 0 means the server default.
  public var maxHypotheses: UInt32 = 0
  /// Field 15: mapping to weight sets of the data pack.
  public var speechDomain: String = ""
  /// Field 16: formatting scheme and options.
  public var formatting: Formatting?

  public init() {}

  /// Parameters for `language` and `audioFormat`, every other parameter at its default.
  public init(language: String, audioFormat: AudioFormat?) {
    self.language = language
    self.audioFormat = audioFormat
  }
}

extension RecognitionParameters {
  public static let protoName = "nuance.asr.v1.RecognitionParameters"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "language"
    case 2: "topic"
    case 3: "audio_format"
    case 4: "utterance_detection_mode"
    case 5: "result_type"
    case 6: "recognition_flags"
    case 7: "no_input_timeout_ms"
    case 8: "recognition_timeout_ms"
    case 9: "utterance_end_silence_ms"
    case 10: "speech_detection_sensitivity"
    case 11: "max_hypotheses"
    case 15: "speech_domain"
    case 16: "formatting"
    default: nil
    }
  }

  public var encodedSize: Int {
    var size = ProtoSize.field(1, language) + ProtoSize.field(2, topic)
    size += ProtoSize.field(3, audioFormat)
    size += ProtoSize.field(4, utteranceDetectionMode) + ProtoSize.field(5, resultType)
    size += ProtoSize.field(6, recognitionFlags)
    size += ProtoSize.field(7, noInputTimeoutMs) + ProtoSize.field(8, recognitionTimeoutMs)
    size += ProtoSize.field(9, utteranceEndSilenceMs)
    if let speechDetectionSensitivity { size += ProtoSize.present(10, speechDetectionSensitivity) }
    size += ProtoSize.field(11, maxHypotheses) + ProtoSize.field(15, speechDomain)
    size += ProtoSize.field(16, formatting)
    return size
  }

  public func encode(to writer: inout ProtoWriter) {
    writer.write(language, field: 1)
    writer.write(topic, field: 2)
    writer.write(audioFormat, field: 3)
    writer.write(utteranceDetectionMode, field: 4)
    writer.write(resultType, field: 5)
    writer.write(recognitionFlags, field: 6)
    writer.write(noInputTimeoutMs, field: 7)
    writer.write(recognitionTimeoutMs, field: 8)
    writer.write(utteranceEndSilenceMs, field: 9)
    if let speechDetectionSensitivity { writer.writePresent(speechDetectionSensitivity, field: 10) }
    writer.write(maxHypotheses, field: 11)
    writer.write(speechDomain, field: 15)
    writer.write(formatting, field: 16)
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): language = try reader.readString()
      case (2, .lengthDelimited): topic = try reader.readString()
      case (3, .lengthDelimited):
        try reader.readMessage(into: &audioFormat)
      case (4, .varint): utteranceDetectionMode = try reader.readEnum()
      case (5, .varint): resultType = try reader.readEnum()
      case (6, .lengthDelimited):
        try reader.readMessage(into: &recognitionFlags)
      case (7, .varint): noInputTimeoutMs = try reader.readUInt32()
      case (8, .varint): recognitionTimeoutMs = try reader.readUInt32()
      case (9, .varint): utteranceEndSilenceMs = try reader.readUInt32()
      case (10, .fixed32): speechDetectionSensitivity = try reader.readFloat()
      case (11, .varint): maxHypotheses = try reader.readUInt32()
      case (15, .lengthDelimited): speechDomain = try reader.readString()
      case (16, .lengthDelimited):
        try reader.readMessage(into: &formatting)
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.AudioFormat`: the codec and sample rate of the audio.
public struct AudioFormat: ProtoMessage {
  /// The `audio_format_union` oneof.
  public enum Format: Sendable, Hashable {
    /// Field 1: signed 16-bit little-endian PCM, 8 or 16 kHz.
    case pcm(PCM)
    /// Field 2: G.711 A-law, 8 kHz.
    case alaw(ALaw)
    /// Field 3: G.711 µ-law, 8 kHz.
    case ulaw(ULaw)
    /// Field 4: RFC 6716 Opus.
    case opus(Opus)
    /// Field 5: RFC 7845 Ogg Opus.
    case oggOpus(OggOpus)
  }

  /// Which member of `audio_format_union` is set, if any.
  public var format: Format?

  public init() {}

  /// An audio format carrying `format`.
  public init(_ format: Format?) {
    self.format = format
  }

  /// L16 PCM at `sampleRateHz` (0 means 8000).
  public static func pcm(sampleRateHz: UInt32) -> Self {
    Self(.pcm(PCM(sampleRateHz: sampleRateHz)))
  }
  /// G.711 µ-law at 8 kHz.
  public static var ulaw: Self { Self(.ulaw(ULaw())) }
  /// G.711 A-law at 8 kHz.
  public static var alaw: Self { Self(.alaw(ALaw())) }
}

extension AudioFormat {
  public static let protoName = "nuance.asr.v1.AudioFormat"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "pcm"
    case 2: "alaw"
    case 3: "ulaw"
    case 4: "opus"
    case 5: "ogg_opus"
    default: nil
    }
  }

  public var encodedSize: Int {
    switch format {
    case nil: 0
    case .pcm(let message)?: ProtoSize.present(1, message)
    case .alaw(let message)?: ProtoSize.present(2, message)
    case .ulaw(let message)?: ProtoSize.present(3, message)
    case .opus(let message)?: ProtoSize.present(4, message)
    case .oggOpus(let message)?: ProtoSize.present(5, message)
    }
  }

  public func encode(to writer: inout ProtoWriter) {
    switch format {
    case nil: break
    case .pcm(let message)?: writer.writePresent(message, field: 1)
    case .alaw(let message)?: writer.writePresent(message, field: 2)
    case .ulaw(let message)?: writer.writePresent(message, field: 3)
    case .opus(let message)?: writer.writePresent(message, field: 4)
    case .oggOpus(let message)?: writer.writePresent(message, field: 5)
    }
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        var message = PCM()
        if case .pcm(let existing)? = format { message = existing }
        try reader.readMessage(into: &message)
        format = .pcm(message)
      case (2, .lengthDelimited):
        var message = ALaw()
        try reader.readMessage(into: &message)
        format = .alaw(message)
      case (3, .lengthDelimited):
        var message = ULaw()
        try reader.readMessage(into: &message)
        format = .ulaw(message)
      case (4, .lengthDelimited):
        var message = Opus()
        if case .opus(let existing)? = format { message = existing }
        try reader.readMessage(into: &message)
        format = .opus(message)
      case (5, .lengthDelimited):
        var message = OggOpus()
        if case .oggOpus(let existing)? = format { message = existing }
        try reader.readMessage(into: &message)
        format = .oggOpus(message)
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.PCM`: signed 16-bit little-endian PCM.
public struct PCM: ProtoMessage {
  /// Field 1: 0, 8000 or 16000; 0 means 8000.
  public var sampleRateHz: UInt32 = 0

  public init() {}

  /// PCM at `sampleRateHz`.
  public init(sampleRateHz: UInt32) {
    self.sampleRateHz = sampleRateHz
  }

  public static let protoName = "nuance.asr.v1.PCM"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "sample_rate_hz" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, sampleRateHz) }
  public func encode(to writer: inout ProtoWriter) { writer.write(sampleRateHz, field: 1) }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): sampleRateHz = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.ALaw`: G.711 A-law at 8 kHz. No fields.
public struct ALaw: ProtoMessage {
  public init() {}

  public static let protoName = "nuance.asr.v1.ALaw"
  public static func protoFieldName(_ number: Int) -> StaticString? { nil }
  public var encodedSize: Int { 0 }
  public func encode(to writer: inout ProtoWriter) {}
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() { try reader.skip(tag) }
  }
}

/// `nuance.asr.v1.ULaw`: G.711 µ-law at 8 kHz. No fields.
public struct ULaw: ProtoMessage {
  public init() {}

  public static let protoName = "nuance.asr.v1.ULaw"
  public static func protoFieldName(_ number: Int) -> StaticString? { nil }
  public var encodedSize: Int { 0 }
  public func encode(to writer: inout ProtoWriter) {}
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() { try reader.skip(tag) }
  }
}

/// `nuance.asr.v1.Opus`: RFC 6716 Opus.
public struct Opus: ProtoMessage {
  /// Field 1: decoder output rate: 0, 8000, 16000; 0 means 8000.
  public var decodeRateHz: UInt32 = 0
  /// Field 2: decoder 48 kHz output samples to skip.
  public var preskipSamples: UInt32 = 0
  /// Field 3: input source sample rate.
  public var sourceRateHz: UInt32 = 0

  public init() {}

  public static let protoName = "nuance.asr.v1.Opus"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "decode_rate_hz"
    case 2: "preskip_samples"
    case 3: "source_rate_hz"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, decodeRateHz) + ProtoSize.field(2, preskipSamples)
      + ProtoSize.field(3, sourceRateHz)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(decodeRateHz, field: 1)
    writer.write(preskipSamples, field: 2)
    writer.write(sourceRateHz, field: 3)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): decodeRateHz = try reader.readUInt32()
      case (2, .varint): preskipSamples = try reader.readUInt32()
      case (3, .varint): sourceRateHz = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.OggOpus`: RFC 7845 Ogg-encapsulated Opus.
public struct OggOpus: ProtoMessage {
  /// Field 1: decoder output rate: 0, 8000, 16000; 0 means 8000.
  public var decodeRateHz: UInt32 = 0

  public init() {}

  public static let protoName = "nuance.asr.v1.OggOpus"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "decode_rate_hz" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, decodeRateHz) }
  public func encode(to writer: inout ProtoWriter) { writer.write(decodeRateHz, field: 1) }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): decodeRateHz = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.EnumUtteranceDetectionMode`: how the end of an utterance is determined.
public struct UtteranceDetectionMode: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// Results for the first utterance only; trailing audio is ignored. The default.
  public static let single = Self(rawValue: 0)
  /// Results for every utterance of the audio stream.
  public static let multiple = Self(rawValue: 1)
  /// No endpointing: one result for all the audio, when the client stops sending.
  public static let disabled = Self(rawValue: 2)

  public static let namedValues: [(Self, String)] = [
    (.single, "SINGLE"), (.multiple, "MULTIPLE"), (.disabled, "DISABLED"),
  ]
}

/// `nuance.asr.v1.RecognitionFlags`: boolean parameters, all false by default.
public struct RecognitionFlags: ProtoMessage {
  /// Field 1: punctuate, if the language supports it.
  public var autoPunctuate = false
  /// Field 2: mask known profanities.
  public var filterProfanity = false
  /// Field 3: include the tokenized result.
  public var includeTokenization = false
  /// Field 4: stall the no-input and recognition timers until a `start_timers_message`.
  public var stallTimers = false
  /// Field 5: discard updated speaker-profile data.
  public var discardSpeakerAdaptation = false
  /// Field 6: do not record the call.
  public var suppressCallRecording = false
  /// Field 7: errors loading resources do not end the recognition.
  public var maskLoadFailures = false
  /// Field 8: do not capitalize the first word of a sentence.
  public var suppressInitialCapitalization = false
  /// Field 9: let resources take the whole weight space.
  public var allowZeroBaseLmWeight = false
  /// Field 10: remove the wakeup word from the final result.
  public var filterWakeupWord = false

  public init() {}

  public static let protoName = "nuance.asr.v1.RecognitionFlags"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "auto_punctuate"
    case 2: "filter_profanity"
    case 3: "include_tokenization"
    case 4: "stall_timers"
    case 5: "discard_speaker_adaptation"
    case 6: "suppress_call_recording"
    case 7: "mask_load_failures"
    case 8: "suppress_initial_capitalization"
    case 9: "allow_zero_base_lm_weight"
    case 10: "filter_wakeup_word"
    default: nil
    }
  }

  public var encodedSize: Int {
    // Fields 1 ... 10 take a one-byte tag and a one-byte value when set.
    var count = 0
    if autoPunctuate { count += 1 }
    if filterProfanity { count += 1 }
    if includeTokenization { count += 1 }
    if stallTimers { count += 1 }
    if discardSpeakerAdaptation { count += 1 }
    if suppressCallRecording { count += 1 }
    if maskLoadFailures { count += 1 }
    if suppressInitialCapitalization { count += 1 }
    if allowZeroBaseLmWeight { count += 1 }
    if filterWakeupWord { count += 1 }
    return 2 * count
  }

  public func encode(to writer: inout ProtoWriter) {
    writer.write(autoPunctuate, field: 1)
    writer.write(filterProfanity, field: 2)
    writer.write(includeTokenization, field: 3)
    writer.write(stallTimers, field: 4)
    writer.write(discardSpeakerAdaptation, field: 5)
    writer.write(suppressCallRecording, field: 6)
    writer.write(maskLoadFailures, field: 7)
    writer.write(suppressInitialCapitalization, field: 8)
    writer.write(allowZeroBaseLmWeight, field: 9)
    writer.write(filterWakeupWord, field: 10)
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      guard tag.wireType == .varint else {
        try reader.skip(tag)
        continue
      }
      switch tag.fieldNumber {
      case 1: autoPunctuate = try reader.readBool()
      case 2: filterProfanity = try reader.readBool()
      case 3: includeTokenization = try reader.readBool()
      case 4: stallTimers = try reader.readBool()
      case 5: discardSpeakerAdaptation = try reader.readBool()
      case 6: suppressCallRecording = try reader.readBool()
      case 7: maskLoadFailures = try reader.readBool()
      case 8: suppressInitialCapitalization = try reader.readBool()
      case 9: allowZeroBaseLmWeight = try reader.readBool()
      case 10: filterWakeupWord = try reader.readBool()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Formatting`: formatting scheme and options.
public struct Formatting: ProtoMessage {
  /// Field 1: keyword for a formatting type of the data pack.
  public var scheme: String = ""
  /// Field 2: formatting options.
  public var options: [String: Bool] = [:]

  public init() {}

  public static let protoName = "nuance.asr.v1.Formatting"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "scheme"
    case 2: "options"
    default: nil
    }
  }
  public var encodedSize: Int { ProtoSize.field(1, scheme) + ProtoSize.field(2, options) }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(scheme, field: 1)
    writer.write(options, field: 2)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): scheme = try reader.readString()
      case (2, .lengthDelimited):
        try reader.readStringToBoolEntry(into: &options)
      default: try reader.skip(tag)
      }
    }
  }
}
