// The response side of recognizer.proto: what a server sends on the Recognize stream.

/// `nuance.asr.v1.RecognitionResponse`: a status, a start-of-speech event or a result.
public struct RecognitionResponse: ProtoMessage {
  /// The `response_union` oneof.
  public enum Response: Sendable, Hashable {
    /// Field 1: a status — always the first response, and the last.
    case status(RecognitionStatus)
    /// Field 2: speech was detected.
    case startOfSpeech(StartOfSpeech)
    /// Field 3: a partial or final result.
    indirect case result(RecognitionResult)
  }

  /// Which member of `response_union` is set, if any.
  public var response: Response?
  /// Field 4: cookies from resource fetches, in the first response only (Hark's field number;
  /// see DESIGN.md rule 9).
  public var cookies: [String: String] = [:]

  public init() {}

  /// A response carrying `response`.
  public init(_ response: Response?, cookies: [String: String] = [:]) {
    self.response = response
    self.cookies = cookies
  }

  /// A status response.
  public static func status(code: UInt32, message: String, details: String = "") -> Self {
    Self(.status(RecognitionStatus(code: code, message: message, details: details)))
  }
}

extension RecognitionResponse {
  public static let protoName = "nuance.asr.v1.RecognitionResponse"

  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "status"
    case 2: "start_of_speech"
    case 3: "result"
    case 4: "cookies"
    default: nil
    }
  }

  public var encodedSize: Int {
    let size: Int
    switch response {
    case nil: size = 0
    case .status(let message)?: size = ProtoSize.present(1, message)
    case .startOfSpeech(let message)?: size = ProtoSize.present(2, message)
    case .result(let message)?: size = ProtoSize.present(3, message)
    }
    return size + ProtoSize.field(4, cookies)
  }

  public func encode(to writer: inout ProtoWriter) {
    switch response {
    case nil: break
    case .status(let message)?: writer.writePresent(message, field: 1)
    case .startOfSpeech(let message)?: writer.writePresent(message, field: 2)
    case .result(let message)?: writer.writePresent(message, field: 3)
    }
    writer.write(cookies, field: 4)
  }

  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited):
        var message = RecognitionStatus()
        if case .status(let existing)? = response { message = existing }
        try reader.readMessage(into: &message)
        response = .status(message)
      case (2, .lengthDelimited):
        var message = StartOfSpeech()
        if case .startOfSpeech(let existing)? = response { message = existing }
        try reader.readMessage(into: &message)
        response = .startOfSpeech(message)
      case (3, .lengthDelimited):
        var message = RecognitionResult()
        if case .result(let existing)? = response {
          message = existing
          response = nil
        }
        try reader.readMessage(into: &message)
        response = .result(message)
      case (4, .lengthDelimited):
        try reader.readStringToStringEntry(into: &cookies)
      default:
        try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.Status`: an HTTP-style status of the recognition (100, 200, 204, 4xx, 5xx).
///
/// Named `RecognitionStatus` in Swift so it is not confused with a gRPC status.
public struct RecognitionStatus: ProtoMessage {
  /// Field 1: the HTTP-style code.
  public var code: UInt32 = 0
  /// Field 2: a brief description, e.g. `Continue`.
  public var message: String = ""
  /// Field 3: a longer description, e.g. which field of a bad request was wrong.
  public var details: String = ""

  public init() {}

  /// A status with these values.
  public init(code: UInt32, message: String, details: String = "") {
    self.code = code
    self.message = message
    self.details = details
  }

  public static let protoName = "nuance.asr.v1.Status"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "code"
    case 2: "message"
    case 3: "details"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, code) + ProtoSize.field(2, message) + ProtoSize.field(3, details)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(code, field: 1)
    writer.write(message, field: 2)
    writer.write(details, field: 3)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): code = try reader.readUInt32()
      case (2, .lengthDelimited): message = try reader.readString()
      case (3, .lengthDelimited): details = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `nuance.asr.v1.StartOfSpeech`: speech was detected.
public struct StartOfSpeech: ProtoMessage {
  /// Field 1: offset from the start of the audio stream to the start of speech, in ms.
  public var firstAudioToStartOfSpeechMs: UInt32 = 0

  public init() {}

  /// A start-of-speech event at `firstAudioToStartOfSpeechMs`.
  public init(firstAudioToStartOfSpeechMs: UInt32) {
    self.firstAudioToStartOfSpeechMs = firstAudioToStartOfSpeechMs
  }

  public static let protoName = "nuance.asr.v1.StartOfSpeech"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    number == 1 ? "first_audio_to_start_of_speech_ms" : nil
  }
  public var encodedSize: Int { ProtoSize.field(1, firstAudioToStartOfSpeechMs) }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(firstAudioToStartOfSpeechMs, field: 1)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): firstAudioToStartOfSpeechMs = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}
