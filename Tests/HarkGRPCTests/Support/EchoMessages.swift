import HarkGRPC
import HarkProto
import NIOCore

// hark.testing.v1 (proto/hark/testing/v1/echo.proto): the messages of the transport tests'
// Echo service, with the same hand-written codec as nuance.asr.v1.

/// `hark.testing.v1.EchoStatus`.
struct EchoStatus: ProtoMessage {
  var code: Int32 = 0
  var message: String = ""

  init() {}
  init(code: Int32, message: String) {
    self.code = code
    self.message = message
  }

  static let protoName = "hark.testing.v1.EchoStatus"
  static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "code"
    case 2: "message"
    default: nil
    }
  }
  var encodedSize: Int { ProtoSize.field(1, code) + ProtoSize.field(2, message) }
  func encode(to writer: inout ProtoWriter) {
    writer.write(code, field: 1)
    writer.write(message, field: 2)
  }
  mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .varint): code = try reader.readInt32()
      case (2, .lengthDelimited): message = try reader.readString()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `hark.testing.v1.EchoRequest`.
struct EchoRequest: ProtoMessage, GRPCCodable {
  var payload = ByteBuffer()
  var text: String = ""
  var responseBytes: UInt32 = 0
  var delayMs: UInt32 = 0
  var status: EchoStatus?
  var cancel = false
  var responseCount: UInt32 = 0

  init() {}
  init(payload: ByteBuffer = ByteBuffer(), text: String = "") {
    self.payload = payload
    self.text = text
  }

  static let protoName = "hark.testing.v1.EchoRequest"
  static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "payload"
    case 2: "text"
    case 3: "response_bytes"
    case 4: "delay_ms"
    case 5: "status"
    case 6: "cancel"
    case 7: "response_count"
    default: nil
    }
  }
  var encodedSize: Int {
    ProtoSize.field(1, payload) + ProtoSize.field(2, text) + ProtoSize.field(3, responseBytes)
      + ProtoSize.field(4, delayMs) + ProtoSize.field(5, status) + ProtoSize.field(6, cancel)
      + ProtoSize.field(7, responseCount)
  }
  func encode(to writer: inout ProtoWriter) {
    writer.write(payload, field: 1)
    writer.write(text, field: 2)
    writer.write(responseBytes, field: 3)
    writer.write(delayMs, field: 4)
    writer.write(status, field: 5)
    writer.write(cancel, field: 6)
    writer.write(responseCount, field: 7)
  }
  mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): payload = try reader.readBytes()
      case (2, .lengthDelimited): text = try reader.readString()
      case (3, .varint): responseBytes = try reader.readUInt32()
      case (4, .varint): delayMs = try reader.readUInt32()
      case (5, .lengthDelimited):
        var message = status ?? EchoStatus()
        try reader.readMessage(into: &message)
        status = message
      case (6, .varint): cancel = try reader.readBool()
      case (7, .varint): responseCount = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}

/// `hark.testing.v1.EchoResponse`.
struct EchoResponse: ProtoMessage, GRPCCodable {
  var payload = ByteBuffer()
  var text: String = ""
  var sequence: UInt32 = 0

  init() {}
  init(payload: ByteBuffer, text: String, sequence: UInt32) {
    self.payload = payload
    self.text = text
    self.sequence = sequence
  }

  static let protoName = "hark.testing.v1.EchoResponse"
  static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "payload"
    case 2: "text"
    case 3: "sequence"
    default: nil
    }
  }
  var encodedSize: Int {
    ProtoSize.field(1, payload) + ProtoSize.field(2, text) + ProtoSize.field(3, sequence)
  }
  func encode(to writer: inout ProtoWriter) {
    writer.write(payload, field: 1)
    writer.write(text, field: 2)
    writer.write(sequence, field: 3)
  }
  mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
    while let tag = try reader.nextTag() {
      switch (tag.fieldNumber, tag.wireType) {
      case (1, .lengthDelimited): payload = try reader.readBytes()
      case (2, .lengthDelimited): text = try reader.readString()
      case (3, .varint): sequence = try reader.readUInt32()
      default: try reader.skip(tag)
      }
    }
  }
}
