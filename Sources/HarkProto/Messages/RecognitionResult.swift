// result.proto (and nuance.rpc.LocalizedMessage): what a recognition returns.

/// `nuance.asr.v1.EnumResultType`: the level of results requested or returned.
public struct ResultType: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  /// Only the final version of each utterance. The default.
  public static let final = Self(rawValue: 0)
  /// Partial results, which may change, before each final result.
  public static let partial = Self(rawValue: 1)
  /// Stabilized partial results, which only grow, before each final result.
  public static let immutablePartial = Self(rawValue: 2)

  public static let namedValues: [(Self, String)] = [
    (.final, "FINAL"), (.partial, "PARTIAL"), (.immutablePartial, "IMMUTABLE_PARTIAL"),
  ]
}

/// `nuance.asr.v1.Result`: a transcription result.
///
/// Named `RecognitionResult` in Swift so it does not shadow `Swift.Result`.
public struct RecognitionResult: ProtoMessage {
  /// Field 1: whether this result is final or partial.
  public var resultType: ResultType = .final
  /// Field 2: start of the result in the audio stream, in ms.
  public var absStartMs: UInt32 = 0
  /// Field 3: end of the result in the audio stream, in ms.
  public var absEndMs: UInt32 = 0
  /// Field 4: information about the utterance.
  public var utteranceInfo: UtteranceInfo?
  /// Field 5: the n-best hypotheses, best first.
  public var hypotheses: [Hypothesis] = []
  /// Field 6: the data pack that recognized it.
  public var dataPack: DataPack?
  /// Field 7: notifications, e.g. a resource that failed to load.
  public var notifications: [Notification] = []

  public init() {}

  public static let protoName = "nuance.asr.v1.Result"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "result_type"
    case 2: "abs_start_ms"
    case 3: "abs_end_ms"
    case 4: "utterance_info"
    case 5: "hypotheses"
    case 6: "data_pack"
    case 7: "notifications"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, resultType) + ProtoSize.field(2, absStartMs) + ProtoSize.field(3, absEndMs)
      + ProtoSize.field(4, utteranceInfo) + ProtoSize.field(5, hypotheses)
      + ProtoSize.field(6, dataPack) + ProtoSize.field(7, notifications)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(resultType, field: 1)
    writer.write(absStartMs, field: 2)
    writer.write(absEndMs, field: 3)
    writer.write(utteranceInfo, field: 4)
    writer.write(hypotheses, field: 5)
    writer.write(dataPack, field: 6)
    writer.write(notifications, field: 7)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): resultType = try reader.readEnum()
      case (2, .varint): absStartMs = try reader.readUInt32()
      case (3, .varint): absEndMs = try reader.readUInt32()
      case (4, .lengthDelimited):
        try reader.readMessage(into: &utteranceInfo)
      case (5, .lengthDelimited):
        try reader.readRepeatedMessage(into: &hypotheses)
      case (6, .lengthDelimited):
        try reader.readMessage(into: &dataPack)
      case (7, .lengthDelimited):
        try reader.readRepeatedMessage(into: &notifications)
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.UtteranceInfo`: information about an utterance.
public struct UtteranceInfo: ProtoMessage {
  /// Field 1: utterance duration in ms.
  public var durationMs: UInt32 = 0
  /// Field 2: ms of clipping detected.
  public var clippingDurationMs: UInt32 = 0
  /// Field 3: speech audio buffers discarded.
  public var droppedSpeechPackets: UInt32 = 0
  /// Field 4: non-speech audio buffers discarded.
  public var droppedNonspeechPackets: UInt32 = 0
  /// Field 5: signal-processing figures.
  public var dsp: Dsp?

  public init() {}

  public static let protoName = "nuance.asr.v1.UtteranceInfo"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "duration_ms"
    case 2: "clipping_duration_ms"
    case 3: "dropped_speech_packets"
    case 4: "dropped_nonspeech_packets"
    case 5: "dsp"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, durationMs) + ProtoSize.field(2, clippingDurationMs)
      + ProtoSize.field(3, droppedSpeechPackets) + ProtoSize.field(4, droppedNonspeechPackets)
      + ProtoSize.field(5, dsp)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(durationMs, field: 1)
    writer.write(clippingDurationMs, field: 2)
    writer.write(droppedSpeechPackets, field: 3)
    writer.write(droppedNonspeechPackets, field: 4)
    writer.write(dsp, field: 5)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): durationMs = try reader.readUInt32()
      case (2, .varint): clippingDurationMs = try reader.readUInt32()
      case (3, .varint): droppedSpeechPackets = try reader.readUInt32()
      case (4, .varint): droppedNonspeechPackets = try reader.readUInt32()
      case (5, .lengthDelimited):
        try reader.readMessage(into: &dsp)
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Dsp`: digital signal processing results.
public struct Dsp: ProtoMessage {
  /// Field 1: estimated speech-to-noise ratio, dB.
  public var snrEstimateDb: Float = 0
  /// Field 2: estimated speech signal level.
  public var level: Float = 0
  /// Field 3: number of channels; always 1.
  public var numChannels: UInt32 = 0
  /// Field 4: ms of silence before the utterance started.
  public var initialSilenceMs: UInt32 = 0
  /// Field 5: energy of the first speech frame.
  public var initialEnergy: Float = 0
  /// Field 6: energy of the last speech frame.
  public var finalEnergy: Float = 0
  /// Field 7: mean energy of the utterance.
  public var meanEnergy: Float = 0

  public init() {}

  public static let protoName = "nuance.asr.v1.Dsp"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "snr_estimate_db"
    case 2: "level"
    case 3: "num_channels"
    case 4: "initial_silence_ms"
    case 5: "initial_energy"
    case 6: "final_energy"
    case 7: "mean_energy"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, snrEstimateDb) + ProtoSize.field(2, level) + ProtoSize.field(3, numChannels)
      + ProtoSize.field(4, initialSilenceMs) + ProtoSize.field(5, initialEnergy)
      + ProtoSize.field(6, finalEnergy) + ProtoSize.field(7, meanEnergy)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(snrEstimateDb, field: 1)
    writer.write(level, field: 2)
    writer.write(numChannels, field: 3)
    writer.write(initialSilenceMs, field: 4)
    writer.write(initialEnergy, field: 5)
    writer.write(finalEnergy, field: 6)
    writer.write(meanEnergy, field: 7)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .fixed32): snrEstimateDb = try reader.readFloat()
      case (2, .fixed32): level = try reader.readFloat()
      case (3, .varint): numChannels = try reader.readUInt32()
      case (4, .varint): initialSilenceMs = try reader.readUInt32()
      case (5, .fixed32): initialEnergy = try reader.readFloat()
      case (6, .fixed32): finalEnergy = try reader.readFloat()
      case (7, .fixed32): meanEnergy = try reader.readFloat()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Hypothesis`: one transcription variation.
public struct Hypothesis: ProtoMessage {
  /// Field 1 (oneof `optional_hypothesis_confidence`): confidence of the whole transcription, 0 to 1.
  public var confidence: Float?
  /// Field 2 (oneof `optional_hypothesis_average_confidence`): duration-weighted mean of the
  /// word confidences, 0 to 1.
  public var averageConfidence: Float?
  /// Field 3: whether the hypothesis was rejected.
  public var rejected = false
  /// Field 4: formatted text, e.g. `$500`.
  public var formattedText: String = ""
  /// Field 5: minimally formatted text, e.g. `five hundred dollars`.
  public var minimallyFormattedText: String = ""
  /// Field 6: the recognized words.
  public var words: [Word] = []
  /// Field 7: Nuance-internal tokenization.
  public var encryptedTokenization: String = ""
  /// Field 9 (oneof `optional_hypothesis_grammar_id`): the grammar that matched.
  public var grammarID: String?
  /// Field 10 (oneof `optional_detected_wuw`): the wakeup word detected.
  public var detectedWakeupWord: String?

  public init() {}

  public static let protoName = "nuance.asr.v1.Hypothesis"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "confidence"
    case 2: "average_confidence"
    case 3: "rejected"
    case 4: "formatted_text"
    case 5: "minimally_formatted_text"
    case 6: "words"
    case 7: "encrypted_tokenization"
    case 9: "grammar_id"
    case 10: "detected_wakeup_word"
    default: nil
    }
  }
  public var encodedSize: Int {
    var size = 0
    if let confidence { size += ProtoSize.present(1, confidence) }
    if let averageConfidence { size += ProtoSize.present(2, averageConfidence) }
    size += ProtoSize.field(3, rejected) + ProtoSize.field(4, formattedText)
    size += ProtoSize.field(5, minimallyFormattedText) + ProtoSize.field(6, words)
    size += ProtoSize.field(7, encryptedTokenization)
    if let grammarID { size += ProtoSize.present(9, grammarID) }
    if let detectedWakeupWord { size += ProtoSize.present(10, detectedWakeupWord) }
    return size
  }
  public func encode(to writer: inout ProtoWriter) {
    if let confidence { writer.writePresent(confidence, field: 1) }
    if let averageConfidence { writer.writePresent(averageConfidence, field: 2) }
    writer.write(rejected, field: 3)
    writer.write(formattedText, field: 4)
    writer.write(minimallyFormattedText, field: 5)
    writer.write(words, field: 6)
    writer.write(encryptedTokenization, field: 7)
    if let grammarID { writer.writePresent(grammarID, field: 9) }
    if let detectedWakeupWord { writer.writePresent(detectedWakeupWord, field: 10) }
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    // The fields a recognizer writes, in number order, then the words back to back: read
    // without a dispatch per field (see ProtoReader.expect(tag:)).
    if reader.expect(tag: 0x0D) { confidence = try reader.readFloat() }
    if reader.expect(tag: 0x15) { averageConfidence = try reader.readFloat() }
    if reader.expect(tag: 0x18) { rejected = try reader.readBool() }
    if reader.expect(tag: 0x22) { formattedText = try reader.readString() }
    if reader.expect(tag: 0x2A) {
      minimallyFormattedText = try reader.readString(sameAs: formattedText)
    }
    while reader.expect(tag: 0x32) { try reader.readRepeatedMessage(into: &words) }
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .fixed32): confidence = try reader.readFloat()
      case (2, .fixed32): averageConfidence = try reader.readFloat()
      case (3, .varint): rejected = try reader.readBool()
      case (4, .lengthDelimited): formattedText = try reader.readString()
      case (5, .lengthDelimited):
        // Often the formatted text itself (when formatting changes nothing).
        minimallyFormattedText = try reader.readString(sameAs: formattedText)
      case (6, .lengthDelimited):
        try reader.readRepeatedMessage(into: &words)
      case (7, .lengthDelimited): encryptedTokenization = try reader.readString()
      case (9, .lengthDelimited): grammarID = try reader.readString()
      case (10, .lengthDelimited): detectedWakeupWord = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Word`: a recognized word.
public struct Word: ProtoMessage {
  /// Field 1: the word.
  public var text: String = ""
  /// Field 2 (oneof `optional_word_confidence`): its confidence, 0 to 1.
  public var confidence: Float?
  /// Field 3: its start in the audio stream, in ms.
  public var startMs: UInt32 = 0
  /// Field 4: its end in the audio stream, in ms.
  public var endMs: UInt32 = 0
  /// Field 5: silence after it, in ms.
  public var silenceAfterWordMs: UInt32 = 0
  /// Field 6 (oneof `optional_word_grammar_rule`): the grammar rule that recognized it.
  public var grammarRule: String?

  public init() {}

  /// A word with its text and times.
  public init(text: String, confidence: Float? = nil, startMs: UInt32, endMs: UInt32) {
    self.text = text
    self.confidence = confidence
    self.startMs = startMs
    self.endMs = endMs
  }

  public static let protoName = "nuance.asr.v1.Word"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "text"
    case 2: "confidence"
    case 3: "start_ms"
    case 4: "end_ms"
    case 5: "silence_after_word_ms"
    case 6: "grammar_rule"
    default: nil
    }
  }
  public var encodedSize: Int {
    var size = ProtoSize.field(1, text)
    if let confidence { size += ProtoSize.present(2, confidence) }
    size += ProtoSize.field(3, startMs) + ProtoSize.field(4, endMs)
    size += ProtoSize.field(5, silenceAfterWordMs)
    if let grammarRule { size += ProtoSize.present(6, grammarRule) }
    return size
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(text, field: 1)
    if let confidence { writer.writePresent(confidence, field: 2) }
    writer.write(startMs, field: 3)
    writer.write(endMs, field: 4)
    writer.write(silenceAfterWordMs, field: 5)
    if let grammarRule { writer.writePresent(grammarRule, field: 6) }
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    // A result carries many words, each written as text, confidence, start, end (tags 0x0A,
    // 0x15, 0x18, 0x20): those in that order are read without a dispatch per field.
    if reader.expect(tag: 0x0A) { text = try reader.readString() }
    if reader.expect(tag: 0x15) { confidence = try reader.readFloat() }
    if reader.expect(tag: 0x18) { startMs = try reader.readUInt32() }
    if reader.expect(tag: 0x20) { endMs = try reader.readUInt32() }
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): text = try reader.readString()
      case (2, .fixed32): confidence = try reader.readFloat()
      case (3, .varint): startMs = try reader.readUInt32()
      case (4, .varint): endMs = try reader.readUInt32()
      case (5, .varint): silenceAfterWordMs = try reader.readUInt32()
      case (6, .lengthDelimited): grammarRule = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.DataPack`: the data pack that recognized a result.
public struct DataPack: ProtoMessage {
  /// Field 1: its language.
  public var language: String = ""
  /// Field 2: its topic.
  public var topic: String = ""
  /// Field 3: its version.
  public var version: String = ""
  /// Field 4: its identifier.
  public var id: String = ""

  public init() {}

  public static let protoName = "nuance.asr.v1.DataPack"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "language"
    case 2: "topic"
    case 3: "version"
    case 4: "id"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, language) + ProtoSize.field(2, topic) + ProtoSize.field(3, version)
      + ProtoSize.field(4, id)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(language, field: 1)
    writer.write(topic, field: 2)
    writer.write(version, field: 3)
    writer.write(id, field: 4)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): language = try reader.readString()
      case (2, .lengthDelimited): topic = try reader.readString()
      case (3, .lengthDelimited): version = try reader.readString()
      case (4, .lengthDelimited): id = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Notification`: a notification about the recognition.
public struct Notification: ProtoMessage {
  /// Field 1: its code.
  public var code: Int32 = 0
  /// Field 2: its severity.
  public var severity: SeverityType = .unknown
  /// Field 3: its message.
  public var message: LocalizedMessage?
  /// Field 4: more key-value pairs.
  public var data: [String: String] = [:]

  public init() {}

  public static let protoName = "nuance.asr.v1.Notification"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "code"
    case 2: "severity"
    case 3: "message"
    case 4: "data"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, code) + ProtoSize.field(2, severity) + ProtoSize.field(3, message)
      + ProtoSize.field(4, data)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(code, field: 1)
    writer.write(severity, field: 2)
    writer.write(message, field: 3)
    writer.write(data, field: 4)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): code = try reader.readInt32()
      case (2, .varint): severity = try reader.readEnum()
      case (3, .lengthDelimited):
        try reader.readMessage(into: &message)
      case (4, .lengthDelimited):
        try reader.readStringToStringEntry(into: &data)
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.EnumSeverityType`: the severity of a notification.
public struct SeverityType: ProtoEnum {
  public var rawValue: Int32
  public init(rawValue: Int32) { self.rawValue = rawValue }

  public static let unknown = Self(rawValue: 0)
  public static let error = Self(rawValue: 10)
  public static let warning = Self(rawValue: 20)
  public static let info = Self(rawValue: 30)

  public static let namedValues: [(Self, String)] = [
    (.unknown, "SEVERITY_UNKNOWN"), (.error, "SEVERITY_ERROR"), (.warning, "SEVERITY_WARNING"),
    (.info, "SEVERITY_INFO"),
  ]
}

/// `nuance.rpc.LocalizedMessage`: a message in a given locale.
public struct LocalizedMessage: ProtoMessage {
  /// Field 1: BCP 47 locale, e.g. `en-US`.
  public var locale: String = ""
  /// Field 2: the message in that locale.
  public var message: String = ""
  /// Field 3: a service-specific text resource identifier.
  public var messageResourceID: String = ""

  public init() {}

  public static let protoName = "nuance.rpc.LocalizedMessage"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "locale"
    case 2: "message"
    case 3: "message_resource_id"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, locale) + ProtoSize.field(2, message) + ProtoSize.field(3, messageResourceID)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(locale, field: 1)
    writer.write(message, field: 2)
    writer.write(messageResourceID, field: 3)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): locale = try reader.readString()
      case (2, .lengthDelimited): message = try reader.readString()
      case (3, .lengthDelimited): messageResourceID = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}
