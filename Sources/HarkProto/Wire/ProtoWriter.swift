public import NIOCore

/// A cursor that writes one message into memory reserved for it (usually at its exact
/// ``ProtoMessage/encodedSize``): it never grows, and every write is checked against the end,
/// so memory too small for the message (or a size computation that disagrees with its
/// encoding) traps instead of writing past it.
///
/// The `write…(_:field:)` methods follow proto3 implicit presence: a default value (0, false,
/// an empty string or buffer) writes nothing. The `write…Present` methods are for fields with
/// explicit presence (oneof members), which are written whatever their value.
public struct ProtoWriter {
  @usableFromInline let base: UnsafeMutableRawPointer
  @usableFromInline var position: Int
  @usableFromInline let capacity: Int

  @usableFromInline
  init(base: UnsafeMutableRawPointer, capacity: Int) {
    self.base = base
    self.position = 0
    self.capacity = capacity
  }

  /// The number of bytes written so far.
  @inlinable
  public var bytesWritten: Int { position }

  // MARK: Primitives

  @inlinable @inline(__always)
  mutating func reserve(_ count: Int) -> Int {
    let start = position
    precondition(count <= capacity - start, "the message does not fit in the memory given")
    position = start + count
    return start
  }

  /// Writes `value` as a varint.
  @inlinable @inline(__always)
  public mutating func writeVarint(_ value: UInt64) {
    if value < 0x80 {
      let at = reserve(1)
      base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: at, as: UInt8.self)
      return
    }
    let at = reserve(Varint.encodedSize(of: value))
    var p = at
    var v = value
    while v >= 0x80 {
      base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: p, as: UInt8.self)
      v >>= 7
      p += 1
    }
    base.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: p, as: UInt8.self)
  }

  /// Writes a field's tag.
  @inlinable @inline(__always)
  public mutating func writeTag(field: Int, _ wireType: WireType) {
    writeVarint(UInt64(truncatingIfNeeded: field << 3) | UInt64(wireType.rawValue))
  }

  /// Writes four little-endian bytes.
  @inlinable @inline(__always)
  public mutating func writeFixed32(_ value: UInt32) {
    let at = reserve(4)
    base.storeBytes(of: value.littleEndian, toByteOffset: at, as: UInt32.self)
  }

  /// Writes eight little-endian bytes.
  @inlinable @inline(__always)
  public mutating func writeFixed64(_ value: UInt64) {
    let at = reserve(8)
    base.storeBytes(of: value.littleEndian, toByteOffset: at, as: UInt64.self)
  }

  /// Writes raw bytes.
  @inlinable @inline(__always)
  public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) {
    guard let source = bytes.baseAddress, bytes.count > 0 else { return }
    let count = bytes.count
    let destination = base + reserve(count)
    // Most strings of a recognition are a few bytes: a call to memcpy costs more than copying
    // them in two (possibly overlapping) loads and stores.
    if count >= 8 && count <= 16 {
      let head = source.loadUnaligned(as: UInt64.self)
      let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
      destination.storeBytes(of: head, as: UInt64.self)
      destination.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
    } else if count >= 4 && count < 8 {
      let head = source.loadUnaligned(as: UInt32.self)
      let tail = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
      destination.storeBytes(of: head, as: UInt32.self)
      destination.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
    } else if count < 4 {
      for offset in 0..<count {
        destination.storeBytes(
          of: source.load(fromByteOffset: offset, as: UInt8.self),
          toByteOffset: offset,
          as: UInt8.self
        )
      }
    } else {
      destination.copyMemory(from: source, byteCount: count)
    }
  }

  // MARK: Fields with implicit presence (defaults are not written)

  /// Writes a `uint32` field unless it is 0.
  @inlinable @inline(__always)
  public mutating func write(_ value: UInt32, field: Int) {
    guard value != 0 else { return }
    writeTag(field: field, .varint)
    writeVarint(UInt64(value))
  }

  /// Writes an `int32` field (or an enum's raw value) unless it is 0; negative values take ten bytes.
  @inlinable @inline(__always)
  public mutating func write(_ value: Int32, field: Int) {
    guard value != 0 else { return }
    writeTag(field: field, .varint)
    writeVarint(UInt64(bitPattern: Int64(value)))
  }

  /// Writes an enum field unless it is the zero value.
  @inlinable
  public mutating func write<E: ProtoEnum>(_ value: E, field: Int) {
    write(value.rawValue, field: field)
  }

  /// Writes a `bool` field unless it is false.
  @inlinable @inline(__always)
  public mutating func write(_ value: Bool, field: Int) {
    guard value else { return }
    writeTag(field: field, .varint)
    writeVarint(1)
  }

  /// Writes a `float` field unless its bits are all zero (so -0.0 and NaN are written, as C++ does).
  @inlinable @inline(__always)
  public mutating func write(_ value: Float, field: Int) {
    guard value.bitPattern != 0 else { return }
    writePresent(value, field: field)
  }

  /// Writes a `string` field unless it is empty.
  @inlinable
  public mutating func write(_ value: String, field: Int) {
    guard !value.isEmpty else { return }
    writePresent(value, field: field)
  }

  /// Writes a `bytes` field unless it is empty.
  @inlinable
  public mutating func write(_ value: ByteBuffer, field: Int) {
    guard value.readableBytes > 0 else { return }
    writePresent(value, field: field)
  }

  // MARK: Fields with explicit presence

  /// Writes a `float` field whatever its value.
  @inlinable @inline(__always)
  public mutating func writePresent(_ value: Float, field: Int) {
    writeTag(field: field, .fixed32)
    writeFixed32(value.bitPattern)
  }

  /// Writes a `uint32` field whatever its value.
  @inlinable @inline(__always)
  public mutating func writePresent(_ value: UInt32, field: Int) {
    writeTag(field: field, .varint)
    writeVarint(UInt64(value))
  }

  /// Writes an enum field whatever its value.
  @inlinable
  public mutating func writePresent<E: ProtoEnum>(_ value: E, field: Int) {
    writeTag(field: field, .varint)
    writeVarint(UInt64(bitPattern: Int64(value.rawValue)))
  }

  /// Writes a `string` field whatever its value.
  @inlinable
  public mutating func writePresent(_ value: String, field: Int) {
    writeTag(field: field, .lengthDelimited)
    // Native strings (small ones too) give their UTF-8 without a copy of the string itself.
    let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
      writeVarint(UInt64(utf8.count))
      writeRaw(UnsafeRawBufferPointer(utf8))
    }
    if written == nil {
      let utf8 = Array(value.utf8)
      writeVarint(UInt64(utf8.count))
      utf8.withUnsafeBytes { writeRaw($0) }
    }
  }

  /// Writes a `bytes` field whatever its value.
  @inlinable
  public mutating func writePresent(_ value: ByteBuffer, field: Int) {
    writeTag(field: field, .lengthDelimited)
    writeVarint(UInt64(value.readableBytes))
    value.withUnsafeReadableBytes { writeRaw($0) }
  }

  /// Writes a submessage field whatever its value (an empty message is the two bytes tag, 0).
  ///
  /// The length is not computed beforehand (that would size every nested message once per level
  /// of nesting): one byte is reserved, the message is written, and if its length needs a longer
  /// varint the message is moved up. The move never passes the exact size reserved for the whole
  /// message, since the final encoding is at least as long as what has been written.
  @inlinable
  public mutating func writePresent<M: ProtoMessage>(_ message: M, field: Int) {
    writeTag(field: field, .lengthDelimited)
    let slot = reserve(1)
    message.encode(to: &self)
    finishLengthDelimited(slot: slot)
  }

  /// Writes the submessage `message` points to: an element of an array, which this way is
  /// not copied out of the array's storage before it is written (the writer stores through a
  /// raw pointer, so the compiler cannot tell that the storage stays unchanged meanwhile).
  @inlinable
  mutating func writePresent<M: ProtoMessage>(at message: UnsafePointer<M>, field: Int) {
    writeTag(field: field, .lengthDelimited)
    let slot = reserve(1)
    message.pointee.encode(to: &self)
    finishLengthDelimited(slot: slot)
  }

  /// Writes the length of what follows the one-byte `slot` into it, moving what follows up if
  /// the length needs a longer varint.
  @inlinable @inline(__always)
  mutating func finishLengthDelimited(slot: Int) {
    let length = position - slot - 1
    if length < 0x80 {
      base.storeBytes(of: UInt8(truncatingIfNeeded: length), toByteOffset: slot, as: UInt8.self)
      return
    }
    let lengthSize = Varint.encodedSize(of: UInt64(length))
    precondition(
      position + lengthSize - 1 <= capacity,
      "the message does not fit in the memory given"
    )
    (base + slot + lengthSize).copyMemory(from: base + slot + 1, byteCount: length)
    position = slot
    writeVarint(UInt64(length))
    position += length
  }

  /// Writes a submessage field if it is present.
  @inlinable
  public mutating func write<M: ProtoMessage>(_ message: M?, field: Int) {
    guard let message else { return }
    writePresent(message, field: field)
  }

  /// Writes each element of a repeated submessage field.
  @inlinable
  public mutating func write<M: ProtoMessage>(_ messages: [M], field: Int) {
    messages.withUnsafeBufferPointer { elements in
      guard let first = elements.baseAddress else { return }
      for index in elements.indices { writePresent(at: first + index, field: field) }
    }
  }

  /// Writes each element of a repeated `string` field, empty strings included.
  @inlinable
  public mutating func write(_ strings: [String], field: Int) {
    strings.withUnsafeBufferPointer { elements in
      for index in elements.indices { writePresent(elements[index], field: field) }
    }
  }

  /// Writes a `map<string, string>` field, entries sorted by key so equal maps give equal bytes.
  @inlinable
  public mutating func write(_ map: [String: String], field: Int) {
    guard !map.isEmpty else { return }
    ProtoWriter.forEachInKeyOrder(map) { key, value in
      writeTag(field: field, .lengthDelimited)
      let slot = reserve(1)
      write(key, field: 1)
      write(value, field: 2)
      finishLengthDelimited(slot: slot)
    }
  }

  /// Writes a `map<string, bool>` field, entries sorted by key so equal maps give equal bytes.
  @inlinable
  public mutating func write(_ map: [String: Bool], field: Int) {
    guard !map.isEmpty else { return }
    ProtoWriter.forEachInKeyOrder(map) { key, value in
      writeTag(field: field, .lengthDelimited)
      let slot = reserve(1)
      write(key, field: 1)
      write(value, field: 2)
      finishLengthDelimited(slot: slot)
    }
  }
}

extension ProtoWriter {
  /// Calls `body` for each entry of `map` in key order, sorting indices in temporary storage
  /// (on the stack for small maps) rather than allocating a sorted copy.
  @inlinable
  static func forEachInKeyOrder<Value>(
    _ map: [String: Value],
    _ body: (String, Value) -> Void
  ) {
    if map.count == 1, let entry = map.first {
      body(entry.key, entry.value)
      return
    }
    if map.count == 2 {
      // The common case of a few client_data entries, without the sort's machinery.
      let first = map.startIndex
      let second = map.index(after: first)
      let (a, b) = (map[first], map[second])
      if a.key < b.key {
        body(a.key, a.value)
        body(b.key, b.value)
      } else {
        body(b.key, b.value)
        body(a.key, a.value)
      }
      return
    }
    withUnsafeTemporaryAllocation(of: Dictionary<String, Value>.Index.self, capacity: map.count) {
      indices in
      var count = 0
      var index = map.startIndex
      while index != map.endIndex {
        indices.initializeElement(at: count, to: index)
        count += 1
        index = map.index(after: index)
      }
      var sorted = UnsafeMutableBufferPointer(rebasing: indices[0..<count])
      sorted.sort { map[$0].key < map[$1].key }
      for index in sorted { body(map[index].key, map[index].value) }
      _ = sorted.deinitialize()
    }
  }
}

/// Encoded sizes of fields, mirroring ``ProtoWriter`` method for method.
public enum ProtoSize {
  /// The size of a tag for `field`.
  @inlinable @inline(__always)
  public static func tag(_ field: Int) -> Int {
    Varint.encodedSize(of: UInt64(truncatingIfNeeded: field << 3))
  }

  /// The size of a length-delimited record of `length` payload bytes.
  @inlinable @inline(__always)
  public static func lengthDelimited(_ field: Int, length: Int) -> Int {
    tag(field) + Varint.encodedSize(of: UInt64(length)) + length
  }

  /// The size of a `uint32` field with implicit presence.
  @inlinable @inline(__always)
  public static func field(_ field: Int, _ value: UInt32) -> Int {
    value == 0 ? 0 : tag(field) + Varint.encodedSize(of: value)
  }

  /// The size of an `int32` field with implicit presence.
  @inlinable @inline(__always)
  public static func field(_ field: Int, _ value: Int32) -> Int {
    value == 0 ? 0 : tag(field) + Varint.encodedSize(of: value)
  }

  /// The size of an enum field with implicit presence.
  @inlinable
  public static func field<E: ProtoEnum>(_ field: Int, _ value: E) -> Int {
    self.field(field, value.rawValue)
  }

  /// The size of a `bool` field with implicit presence.
  @inlinable @inline(__always)
  public static func field(_ field: Int, _ value: Bool) -> Int {
    value ? tag(field) + 1 : 0
  }

  /// The size of a `float` field with implicit presence.
  @inlinable @inline(__always)
  public static func field(_ field: Int, _ value: Float) -> Int {
    value.bitPattern == 0 ? 0 : tag(field) + 4
  }

  /// The size of a `string` field with implicit presence.
  @inlinable @inline(__always)
  public static func field(_ field: Int, _ value: String) -> Int {
    value.isEmpty ? 0 : lengthDelimited(field, length: value.utf8.count)
  }

  /// The size of a `bytes` field with implicit presence.
  @inlinable
  public static func field(_ field: Int, _ value: ByteBuffer) -> Int {
    value.readableBytes == 0 ? 0 : lengthDelimited(field, length: value.readableBytes)
  }

  /// The size of an optional submessage field.
  @inlinable
  public static func field<M: ProtoMessage>(_ field: Int, _ message: M?) -> Int {
    guard let message else { return 0 }
    return present(field, message)
  }

  /// The size of a repeated submessage field.
  @inlinable
  public static func field<M: ProtoMessage>(_ field: Int, _ messages: [M]) -> Int {
    messages.withUnsafeBufferPointer { elements in
      var size = 0
      for index in elements.indices { size += present(field, elements[index]) }
      return size
    }
  }

  /// The size of a repeated `string` field.
  @inlinable
  public static func field(_ field: Int, _ strings: [String]) -> Int {
    var size = 0
    for string in strings { size += present(field, string) }
    return size
  }

  /// The size of a `map<string, string>` field.
  @inlinable
  public static func field(_ field: Int, _ map: [String: String]) -> Int {
    guard !map.isEmpty else { return 0 }
    var size = 0
    for (key, value) in map {
      size += lengthDelimited(field, length: self.field(1, key) + self.field(2, value))
    }
    return size
  }

  /// The size of a `map<string, bool>` field.
  @inlinable
  public static func field(_ field: Int, _ map: [String: Bool]) -> Int {
    guard !map.isEmpty else { return 0 }
    var size = 0
    for (key, value) in map {
      size += lengthDelimited(field, length: self.field(1, key) + self.field(2, value))
    }
    return size
  }

  /// The size of a `float` field with explicit presence.
  @inlinable @inline(__always)
  public static func present(_ field: Int, _ value: Float) -> Int {
    tag(field) + 4
  }

  /// The size of a `uint32` field with explicit presence.
  @inlinable
  public static func present(_ field: Int, _ value: UInt32) -> Int {
    tag(field) + Varint.encodedSize(of: value)
  }

  /// The size of an enum field with explicit presence.
  @inlinable
  public static func present<E: ProtoEnum>(_ field: Int, _ value: E) -> Int {
    tag(field) + Varint.encodedSize(of: value.rawValue)
  }

  /// The size of a `string` field with explicit presence.
  @inlinable @inline(__always)
  public static func present(_ field: Int, _ value: String) -> Int {
    lengthDelimited(field, length: value.utf8.count)
  }

  /// The size of a `bytes` field with explicit presence.
  @inlinable
  public static func present(_ field: Int, _ value: ByteBuffer) -> Int {
    lengthDelimited(field, length: value.readableBytes)
  }

  /// The size of a submessage field with explicit presence.
  @inlinable
  public static func present<M: ProtoMessage>(_ field: Int, _ message: M) -> Int {
    lengthDelimited(field, length: message.encodedSize)
  }
}
