public import NIOCore

/// Writes gRPC Length-Prefixed-Messages: a compressed flag byte, a four-byte big-endian length,
/// then the message (gRPC over HTTP/2, "Message framing").
public enum GRPCMessageFramer {
  /// The size of the prefix before each message.
  public static let prefixLength = 5

  /// Appends `message` to `buffer` as one uncompressed Length-Prefixed-Message.
  @inlinable
  public static func append(_ message: ByteBuffer, to buffer: inout ByteBuffer) {
    writePrefix(length: message.readableBytes, to: &buffer)
    var message = message
    buffer.writeBuffer(&message)
  }

  /// Appends a message of `length` bytes that `writeMessage` writes into `buffer`, so a codec can
  /// encode straight into the outbound buffer without an intermediate copy.
  @inlinable
  public static func append(
    length: Int,
    to buffer: inout ByteBuffer,
    writeMessage: (inout ByteBuffer) -> Void
  ) {
    writePrefix(length: length, to: &buffer)
    let start = buffer.writerIndex
    writeMessage(&buffer)
    precondition(buffer.writerIndex - start == length, "message length disagrees with its encoding")
  }

  @inlinable
  static func writePrefix(length: Int, to buffer: inout ByteBuffer) {
    precondition(length >= 0 && length <= Int(UInt32.max), "gRPC messages are at most 4 GiB")
    buffer.reserveCapacity(minimumWritableBytes: prefixLength + length)
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(length), endianness: .big)
  }
}
