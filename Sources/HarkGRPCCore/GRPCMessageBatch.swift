public import NIOCore

/// The messages one chunk of DATA completed, in order: almost always none or one, so the first
/// is held inline and only a chunk that completes several allocates an array.
public struct GRPCMessageBatch: RandomAccessCollection, Sendable, Equatable {
  @usableFromInline var head: ByteBuffer?
  @usableFromInline var tail: [ByteBuffer] = []

  /// No messages.
  public init() {}

  /// These messages, in order.
  public init(_ messages: [ByteBuffer]) {
    for message in messages { append(message) }
  }

  /// Adds `message` after the others.
  @inlinable
  public mutating func append(_ message: ByteBuffer) {
    if head == nil { head = message } else { tail.append(message) }
  }

  @inlinable public var startIndex: Int { 0 }
  @inlinable public var endIndex: Int { head == nil ? 0 : 1 + tail.count }

  @inlinable
  public subscript(position: Int) -> ByteBuffer {
    precondition(position >= 0 && position < endIndex, "message index out of range")
    return position == 0 ? head! : tail[position - 1]
  }
}
