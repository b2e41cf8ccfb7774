public import NIOCore

/// A protobuf message with a hand-written binary codec.
///
/// Conformers compute their exact ``encodedSize``, write their fields in field-number order with
/// ``encode(to:)`` (so equal values give equal bytes), and read fields in any order with
/// ``decodeFields(from:)``, skipping fields they do not know. Use the extension methods —
/// ``serializedBytes()``, ``encode(into:)``, ``init(serializedBytes:options:)`` — rather than
/// the requirements themselves.
public protocol ProtoMessage: Sendable, Hashable {
  /// The fully qualified proto name, e.g. `nuance.asr.v1.RecognitionRequest`.
  static var protoName: String { get }

  /// The proto name of field `number`, or nil if the schema has no such field.
  static func protoFieldName(_ number: Int) -> StaticString?

  /// The message with every field at its default.
  init()

  /// The exact number of bytes ``encode(to:)`` writes.
  var encodedSize: Int { get }

  /// Writes the fields, in field-number order, leaving out proto3 defaults.
  func encode(to writer: inout ProtoWriter)

  /// Reads fields until the reader's current message ends, merging them into `self`.
  mutating func decodeFields(from reader: inout ProtoReader) throws(ProtoDecodingError)
}

extension ProtoMessage {
  /// Decodes a message from the readable bytes of `buffer`. `bytes` fields share its storage.
  @inlinable
  public init(
    serializedBytes buffer: ByteBuffer,
    options: ProtoDecodingOptions = ProtoDecodingOptions()
  ) throws(ProtoDecodingError) {
    self.init()
    try merge(serializedBytes: buffer, options: options)
  }

  /// Decodes a message from a byte array.
  @inlinable
  public init(
    serializedBytes bytes: [UInt8],
    options: ProtoDecodingOptions = ProtoDecodingOptions()
  ) throws(ProtoDecodingError) {
    try self.init(serializedBytes: ByteBuffer(bytes: bytes), options: options)
  }

  /// Merges the message encoded in the readable bytes of `buffer` into `self`: scalars it holds
  /// replace, repeated fields append, submessages merge.
  @inlinable
  public mutating func merge(
    serializedBytes buffer: ByteBuffer,
    options: ProtoDecodingOptions = ProtoDecodingOptions()
  ) throws(ProtoDecodingError) {
    var failure: ProtoDecodingError?
    buffer.withUnsafeReadableBytes { raw in
      guard let base = raw.baseAddress, raw.count > 0 else { return }
      var reader = ProtoReader(
        base: base,
        count: raw.count,
        storage: buffer,
        maxDepth: options.maxDepth
      )
      do throws(ProtoDecodingError) {
        try reader.decodeFields(of: &self, outerField: 0)
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
  }

  /// Appends the encoded message to `buffer`.
  @inlinable
  public func encode(into buffer: inout ByteBuffer) {
    let size = encodedSize
    guard size > 0 else { return }
    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
      var writer = ProtoWriter(base: raw.baseAddress!, capacity: size)
      encode(to: &writer)
      assert(writer.bytesWritten == size, "encodedSize disagrees with encode(to:)")
      return size
    }
  }

  /// Writes the encoded message at the start of `destination`, which must hold at least
  /// ``encodedSize`` bytes, and returns the number of bytes written. For writing straight into
  /// memory someone else owns, such as a frame buffer of the HTTP/2 library.
  ///
  /// It does not size the message first (a caller that framed it has done that already): the
  /// writer checks every write against `destination`, and submessages patch their lengths in.
  @inlinable
  public func encode(into destination: UnsafeMutableRawBufferPointer) -> Int {
    guard let base = destination.baseAddress, destination.count > 0 else {
      precondition(encodedSize == 0, "the message does not fit in the memory given")
      return 0
    }
    var writer = ProtoWriter(base: base, capacity: destination.count)
    encode(to: &writer)
    return writer.bytesWritten
  }

  /// The encoded message in a new buffer of exactly its size.
  @inlinable
  public func serializedBytes(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer
  {
    var buffer = allocator.buffer(capacity: encodedSize)
    encode(into: &buffer)
    return buffer
  }

  /// The encoded message as a byte array.
  @inlinable
  public func serializedByteArray() -> [UInt8] {
    let size = encodedSize
    return [UInt8](unsafeUninitializedCapacity: size) { storage, count in
      if size > 0 {
        var writer = ProtoWriter(
          base: UnsafeMutableRawPointer(storage.baseAddress!),
          capacity: size
        )
        encode(to: &writer)
      }
      count = size
    }
  }
}

/// A proto3 enum: open, so values the schema does not name survive a round trip.
public protocol ProtoEnum: RawRepresentable, Sendable, Hashable, CustomStringConvertible
where RawValue == Int32 {
  /// The value for a raw number, named or not.
  init(rawValue: Int32)
  /// The values the schema names, with their proto names.
  static var namedValues: [(Self, String)] { get }
}

extension ProtoEnum {
  /// The proto name of the value, or its number if the schema does not name it.
  public var description: String {
    Self.namedValues.first { $0.0 == self }?.1 ?? "\(rawValue)"
  }
}

extension ProtoReader {
  /// An enum field: any `int32` is kept, named or not.
  @inlinable
  public mutating func readEnum<E: ProtoEnum>(
    _ type: E.Type = E.self
  ) throws(ProtoDecodingError) -> E {
    E(rawValue: try readInt32())
  }
}
