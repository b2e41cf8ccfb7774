public import HarkGRPCCore
public import HarkProto
public import NIOCore

/// A message the gRPC layer can send and receive: any type with an exact encoded size, an
/// encoder into raw memory and a decoder from a buffer.
///
/// Every `ProtoMessage` is one (see the extension below); ``RawMessage`` carries bytes as they are.
public protocol GRPCCodable: Sendable {
  /// The exact number of bytes ``encode(into:)`` writes.
  var encodedSize: Int { get }
  /// Writes the message at the start of `destination` (at least ``encodedSize`` bytes) and
  /// returns the number of bytes written.
  func encode(into destination: UnsafeMutableRawBufferPointer) -> Int
  /// Decodes a message from the readable bytes of `buffer`.
  init(decoding buffer: ByteBuffer) throws
}

extension GRPCCodable where Self: ProtoMessage {
  /// Decodes with the protobuf codec.
  public init(decoding buffer: ByteBuffer) throws {
    try self.init(serializedBytes: buffer)
  }
}

extension RecognitionRequest: GRPCCodable {}
extension RecognitionResponse: GRPCCodable {}

/// A message that is its bytes: for tests and for peers that bring their own codec.
public struct RawMessage: GRPCCodable, Hashable {
  /// The message's bytes.
  public var bytes: ByteBuffer

  /// A message of `bytes`.
  public init(_ bytes: ByteBuffer) {
    self.bytes = bytes
  }

  public var encodedSize: Int { bytes.readableBytes }

  public func encode(into destination: UnsafeMutableRawBufferPointer) -> Int {
    bytes.withUnsafeReadableBytes { source in
      guard let from = source.baseAddress, source.count > 0 else { return 0 }
      destination.baseAddress!.copyMemory(from: from, byteCount: source.count)
      return source.count
    }
  }

  public init(decoding buffer: ByteBuffer) {
    bytes = buffer
  }
}

extension ByteBuffer {
  /// Appends `message` as a gRPC Length-Prefixed-Message, encoding it in place.
  @inlinable
  mutating func writeGRPCMessage(_ message: some GRPCCodable) {
    let length = message.encodedSize
    GRPCMessageFramer.append(length: length, to: &self) { buffer in
      guard length > 0 else { return }
      buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
        let written = message.encode(into: raw)
        assert(written == length, "encodedSize disagrees with encode(into:)")
        return written
      }
    }
  }
}
