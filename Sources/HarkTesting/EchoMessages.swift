public import HarkGRPC
public import HarkProto
public import NIOCore

// hark.testing.v1 (proto/hark/testing/v1/echo.proto): the messages of the Echo service that
// the transport tests and benchmarks use, with the same hand-written codec as nuance.asr.v1.

/// `hark.testing.v1.EchoStatus`.
public struct EchoStatus: ProtoMessage {
  public var code: Int32 = 0
  public var message: String = ""

  public init() {}
  public init(code: Int32, message: String) {
    self.code = code
    self.message = message
  }

  public static let protoName = "hark.testing.v1.EchoStatus"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "code"
    case 2: "message"
    default: nil
    }
  }
  public var encodedSize: Int { ProtoSize.field(1, code) + ProtoSize.field(2, message) }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(code, field: 1)
    writer.write(message, field: 2)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
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
public struct EchoRequest: ProtoMessage, GRPCCodable {
  public var payload = ByteBuffer()
  public var text: String = ""
  public var responseBytes: UInt32 = 0
  public var delayMs: UInt32 = 0
  public var status: EchoStatus?
  public var cancel = false
  public var responseCount: UInt32 = 0

  public init() {}
  public init(payload: ByteBuffer = ByteBuffer(), text: String = "") {
    self.payload = payload
    self.text = text
  }

  public static let protoName = "hark.testing.v1.EchoRequest"
  public static func protoFieldName(_ number: Int) -> StaticString? {
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
  public var encodedSize: Int {
    ProtoSize.field(1, payload) + ProtoSize.field(2, text) + ProtoSize.field(3, responseBytes)
      + ProtoSize.field(4, delayMs) + ProtoSize.field(5, status) + ProtoSize.field(6, cancel)
      + ProtoSize.field(7, responseCount)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(payload, field: 1)
    writer.write(text, field: 2)
    writer.write(responseBytes, field: 3)
    writer.write(delayMs, field: 4)
    writer.write(status, field: 5)
    writer.write(cancel, field: 6)
    writer.write(responseCount, field: 7)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
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
public struct EchoResponse: ProtoMessage, GRPCCodable {
  public var payload = ByteBuffer()
  public var text: String = ""
  public var sequence: UInt32 = 0

  public init() {}
  public init(payload: ByteBuffer, text: String, sequence: UInt32) {
    self.payload = payload
    self.text = text
    self.sequence = sequence
  }

  public static let protoName = "hark.testing.v1.EchoResponse"
  public static func protoFieldName(_ number: Int) -> StaticString? {
    switch number {
    case 1: "payload"
    case 2: "text"
    case 3: "sequence"
    default: nil
    }
  }
  public var encodedSize: Int {
    ProtoSize.field(1, payload) + ProtoSize.field(2, text) + ProtoSize.field(3, sequence)
  }
  public func encode(to writer: inout ProtoWriter) {
    writer.write(payload, field: 1)
    writer.write(text, field: 2)
    writer.write(sequence, field: 3)
  }
  public mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError) {
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
