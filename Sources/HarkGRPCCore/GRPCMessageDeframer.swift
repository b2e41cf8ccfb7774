public import NIOCore

/// Why inbound bytes do not form valid gRPC messages, with the status the specification assigns.
public struct GRPCFramingError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What went wrong.
  public enum Reason: Hashable, Sendable {
    /// A message declared a length over the receiver's limit (gRPC: RESOURCE_EXHAUSTED).
    case messageTooLarge(length: Int, limit: Int)
    /// The compressed flag was set but no `grpc-encoding` was negotiated (gRPC: INTERNAL).
    case compressedWithoutEncoding
    /// The compressed flag was neither 0 nor 1 (gRPC: INTERNAL).
    case invalidCompressedFlag(UInt8)
    /// The stream ended inside a message, with `bufferedBytes` of it received (gRPC: INTERNAL).
    case truncatedMessage(bufferedBytes: Int)
  }

  /// What went wrong.
  public var reason: Reason

  public init(_ reason: Reason) {
    self.reason = reason
  }

  /// The gRPC status that reports this error to the peer.
  public var status: GRPCStatus {
    switch reason {
    case .messageTooLarge: GRPCStatus(.resourceExhausted, description)
    case .compressedWithoutEncoding, .invalidCompressedFlag, .truncatedMessage:
      GRPCStatus(.internalError, description)
    }
  }

  public var description: String {
    switch reason {
    case .messageTooLarge(let length, let limit):
      "message of \(length) bytes is larger than the limit of \(limit) bytes"
    case .compressedWithoutEncoding:
      "message has the compressed flag set but no grpc-encoding was negotiated"
    case .invalidCompressedFlag(let flag):
      "message has an invalid compressed flag \(flag)"
    case .truncatedMessage(let bufferedBytes):
      "stream ended inside a message, after \(bufferedBytes) of its bytes"
    }
  }
}

/// Splits a stream of bytes into gRPC messages, whatever the chunking of the bytes.
///
/// Feed bytes with ``append(_:)`` as they arrive and take messages with ``next()``. A message's
/// declared length is checked against ``maxMessageSize`` as soon as its prefix is complete, before
/// any of its body is buffered. A message that lies within one appended chunk is returned as a
/// slice of that chunk, without a copy.
public struct GRPCMessageDeframer: Sendable {
  /// The default limit on a message's size: 4 MiB, as in gRPC.
  public static let defaultMaxMessageSize = 4 * 1024 * 1024

  /// The largest message accepted, in bytes.
  public let maxMessageSize: Int
  /// Whether a `grpc-encoding` was negotiated, so compressed messages may arrive.
  public let compressionNegotiated: Bool

  private var buffer: ByteBuffer?
  /// The prefix of the message being assembled, once it was read and validated.
  private var pendingLength: Int?
  private var pendingCompressed = false

  /// A deframer with a limit of `maxMessageSize` bytes per message.
  public init(
    maxMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize,
    compressionNegotiated: Bool = false
  ) {
    self.maxMessageSize = maxMessageSize
    self.compressionNegotiated = compressionNegotiated
  }

  /// The number of bytes held that do not yet form a whole message.
  public var bufferedBytes: Int {
    (buffer?.readableBytes ?? 0) + (pendingLength == nil ? 0 : GRPCMessageFramer.prefixLength)
  }

  /// Appends bytes received from the peer.
  public mutating func append(_ bytes: ByteBuffer) {
    guard bytes.readableBytes > 0 else { return }
    if var held = buffer, held.readableBytes > 0 {
      buffer = nil  // keep `held` uniquely referenced, so the write does not copy it
      // Reclaim consumed space before it grows, as NIO's ByteToMessageDecoder does.
      if held.readerIndex > 1024 && held.readerIndex > held.readableBytes {
        held.discardReadBytes()
      }
      var bytes = bytes
      held.writeBuffer(&bytes)
      buffer = held
    } else {
      buffer = bytes
    }
  }

  /// The next whole message, or nil if more bytes are needed.
  ///
  /// - Throws: ``GRPCFramingError`` when a prefix is invalid; the stream cannot continue then.
  public mutating func next() throws(GRPCFramingError) -> ByteBuffer? {
    guard var held = buffer else { return nil }
    buffer = nil
    defer { buffer = held }
    if pendingLength == nil {
      guard held.readableBytes >= GRPCMessageFramer.prefixLength else { return nil }
      let flag = held.readInteger(as: UInt8.self)!
      let length = Int(held.readInteger(endianness: .big, as: UInt32.self)!)
      switch flag {
      case 0: pendingCompressed = false
      case 1:
        guard compressionNegotiated else { throw GRPCFramingError(.compressedWithoutEncoding) }
        pendingCompressed = true
      default: throw GRPCFramingError(.invalidCompressedFlag(flag))
      }
      guard length <= maxMessageSize else {
        throw GRPCFramingError(.messageTooLarge(length: length, limit: maxMessageSize))
      }
      pendingLength = length
    }
    guard let length = pendingLength, let message = held.readSlice(length: length) else {
      return nil
    }
    pendingLength = nil
    return message
  }

  /// Whether the last message returned by ``next()`` had its compressed flag set.
  public var lastMessageWasCompressed: Bool { pendingCompressed }

  /// Checks that the stream ended on a message boundary; call it at end of stream.
  public func finish() throws(GRPCFramingError) {
    if bufferedBytes > 0 {
      throw GRPCFramingError(.truncatedMessage(bufferedBytes: bufferedBytes))
    }
  }
}
