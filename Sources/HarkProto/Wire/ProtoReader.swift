public import NIOCore

/// Limits that bound what decoding untrusted bytes may cost.
public struct ProtoDecodingOptions: Sendable, Hashable {
  /// How deep submessages (and map entries) may nest below the top-level message.
  public var maxDepth: Int

  /// Options with a nesting budget of `maxDepth` (100 by default, as in C++ and Java protobuf).
  public init(maxDepth: Int = 100) {
    self.maxDepth = maxDepth
  }
}

/// A bounds-checked cursor over the bytes of one encoded message.
///
/// Every read checks the bytes that remain before it touches them and throws
/// ``ProtoDecodingError`` instead of trapping. Lengths are checked against the input before
/// anything is allocated, so the memory a decode takes is bounded by the input's size.
///
/// `bytes` fields are decoded without a copy: they are slices of the ``NIOCore/ByteBuffer`` the
/// message was decoded from. A reader lives only inside the `withUnsafeReadableBytes` call that
/// made it (see ``ProtoMessage/init(serializedBytes:options:)``).
public struct ProtoReader {
  @usableFromInline let base: UnsafeRawPointer
  @usableFromInline var position: Int
  @usableFromInline var end: Int
  @usableFromInline var depthRemaining: Int
  /// The buffer `base` points into, so that `bytes` fields can be sliced from it.
  @usableFromInline let storage: ByteBuffer
  /// The number of the field whose record is being read, for error messages.
  @usableFromInline var currentField: Int

  @usableFromInline
  init(base: UnsafeRawPointer, count: Int, storage: ByteBuffer, maxDepth: Int) {
    self.base = base
    self.position = 0
    self.end = count
    self.depthRemaining = maxDepth
    self.storage = storage
    self.currentField = 0
  }

  /// Whether the current message (or submessage) has no more bytes.
  @inlinable
  public var isAtEnd: Bool { position >= end }

  @inlinable
  func failure(_ code: ProtoDecodingError.Code, at offset: Int) -> ProtoDecodingError {
    ProtoDecodingError(code: code, offset: offset)
  }

  // MARK: Tags

  /// The next field's tag, or `nil` at the end of the current message.
  @inlinable @inline(__always)
  public mutating func nextTag() throws(ProtoDecodingError) -> FieldTag? {
    guard position < end else { return nil }
    let start = position
    let raw = try readTagVarint()
    let fieldNumber = Int(raw >> 3)
    guard fieldNumber != 0 else { throw failure(.invalidFieldNumber, at: start) }
    currentField = fieldNumber
    let wireType: WireType
    switch raw & 7 {
    case 0: wireType = .varint
    case 1: wireType = .fixed64
    case 2: wireType = .lengthDelimited
    case 5: wireType = .fixed32
    case 3, 4: throw failure(.groupNotSupported, at: start)
    default: throw failure(.invalidWireType, at: start)
    }
    return FieldTag(uncheckedFieldNumber: fieldNumber, wireType: wireType)
  }

  /// Takes the next record's tag if it is the one-byte `tag` (a field number below 16), as
  /// protobuf C++'s generated parsers once did with `ExpectTag`: encoders write fields in number
  /// order, so a message can read the fields it expects in that order with one comparison each,
  /// without decoding the tag and dispatching on it. False (taking nothing) otherwise; the
  /// caller's general loop then reads what follows.
  @inlinable @inline(__always)
  public mutating func expect(tag: UInt8) -> Bool {
    assert(tag < 0x80, "expect(tag:) takes one-byte tags only")
    guard position < end, base.load(fromByteOffset: position, as: UInt8.self) == tag else {
      return false
    }
    position &+= 1
    currentField = Int(tag &>> 3)
    return true
  }

  /// A tag: at most five bytes, at most 2^32-1.
  @inlinable @inline(__always)
  mutating func readTagVarint() throws(ProtoDecodingError) -> UInt64 {
    let first = base.load(fromByteOffset: position, as: UInt8.self)
    if first < 0x80 {
      position += 1
      return UInt64(first)
    }
    let start = position
    let value = try readVarint()
    guard position - start <= 5 else { throw failure(.malformedVarint, at: start) }
    guard value <= UInt64(UInt32.max) else { throw failure(.invalidFieldNumber, at: start) }
    return value
  }

  // MARK: Scalars

  /// A varint of up to ten bytes.
  @inlinable @inline(__always)
  public mutating func readVarint() throws(ProtoDecodingError) -> UInt64 {
    var p = position
    guard p < end else { throw failure(.truncated, at: p) }
    let first = base.load(fromByteOffset: p, as: UInt8.self)
    if first < 0x80 {
      position = p + 1
      return UInt64(first)
    }
    var result = UInt64(first & 0x7F)
    var shift: UInt64 = 7
    p += 1
    while true {
      guard p < end else { throw failure(.truncated, at: p) }
      let byte = base.load(fromByteOffset: p, as: UInt8.self)
      p += 1
      result |= UInt64(byte & 0x7F) &<< shift
      if byte < 0x80 {
        position = p
        return result
      }
      shift += 7
      // Ten bytes carry 70 bits; a continuation bit on the tenth byte is malformed.
      guard shift < 70 else { throw failure(.malformedVarint, at: position) }
    }
  }

  /// A `uint32` field: a varint truncated to 32 bits, as C++ protobuf does.
  @inlinable @inline(__always)
  public mutating func readUInt32() throws(ProtoDecodingError) -> UInt32 {
    UInt32(truncatingIfNeeded: try readVarint())
  }

  /// An `int32` field (or an enum): a varint truncated to 32 bits.
  @inlinable @inline(__always)
  public mutating func readInt32() throws(ProtoDecodingError) -> Int32 {
    Int32(truncatingIfNeeded: try readVarint())
  }

  /// A `bool` field: any non-zero varint is true.
  @inlinable @inline(__always)
  public mutating func readBool() throws(ProtoDecodingError) -> Bool {
    try readVarint() != 0
  }

  /// A little-endian `fixed32`.
  @inlinable @inline(__always)
  public mutating func readFixed32() throws(ProtoDecodingError) -> UInt32 {
    guard end - position >= 4 else { throw failure(.truncated, at: position) }
    let value = base.loadUnaligned(fromByteOffset: position, as: UInt32.self)
    position += 4
    return UInt32(littleEndian: value)
  }

  /// A little-endian `fixed64`.
  @inlinable
  public mutating func readFixed64() throws(ProtoDecodingError) -> UInt64 {
    guard end - position >= 8 else { throw failure(.truncated, at: position) }
    let value = base.loadUnaligned(fromByteOffset: position, as: UInt64.self)
    position += 8
    return UInt64(littleEndian: value)
  }

  /// A `float` field (`fixed32` bits).
  @inlinable @inline(__always)
  public mutating func readFloat() throws(ProtoDecodingError) -> Float {
    Float(bitPattern: try readFixed32())
  }

  /// A `double` field (`fixed64` bits).
  @inlinable
  public mutating func readDouble() throws(ProtoDecodingError) -> Double {
    Double(bitPattern: try readFixed64())
  }

  // MARK: Length-delimited

  /// A length prefix: at most five bytes, at most 2^31-1, and within the current message.
  @inlinable @inline(__always)
  public mutating func readLength() throws(ProtoDecodingError) -> Int {
    let start = position
    let value = try readVarint()
    guard position - start <= 5, value <= UInt64(Int32.max) else {
      throw failure(.invalidLength, at: start)
    }
    let length = Int(value)
    guard length <= end - position else { throw failure(.truncated, at: start) }
    return length
  }

  /// A `string` field, validated as UTF-8 (Unicode Table 3-7: no overlong forms, no surrogates,
  /// nothing past U+10FFFF).
  @inlinable
  public mutating func readString() throws(ProtoDecodingError) -> String {
    let length = try readLength()
    if length == 0 { return "" }
    let start = position
    let bytes = UnsafeBufferPointer(
      start: (base + start).assumingMemoryBound(to: UInt8.self),
      count: length
    )
    let string: String
    if ProtoReader.isASCII(base + start, count: length) {
      // ASCII is valid UTF-8: copy it without the standard library validating it again.
      string = String(
        copying: UTF8Span(unchecked: Span(_unsafeElements: bytes), isKnownASCII: true)
      )
    } else {
      // `_tryFromUTF8` validates and copies in one pass; it is the public entry point the
      // standard library's inlinable `String.decodeCString` calls. `String(validating:as:)` is
      // generic and resolves generic metadata at run time on each call.
      guard let validated = String._tryFromUTF8(bytes) else {
        throw failure(.invalidUTF8, at: start)
      }
      string = validated
    }
    position += length
    return string
  }

  /// Whether the `count` bytes at `start` are all ASCII, eight at a time.
  @inlinable @inline(__always)
  static func isASCII(_ start: UnsafeRawPointer, count: Int) -> Bool {
    if count >= 8 {
      // Whole words, then the last eight bytes (overlapping the words already checked).
      var bits: UInt64 = 0
      var offset = 0
      while offset &+ 8 <= count {
        bits |= start.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset &+= 8
      }
      bits |= start.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
      return bits & 0x8080_8080_8080_8080 == 0
    }
    if count >= 4 {
      let bits =
        start.loadUnaligned(as: UInt32.self)
        | start.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
      return bits & 0x8080_8080 == 0
    }
    var bits: UInt8 = 0
    for offset in 0..<count { bits |= start.load(fromByteOffset: offset, as: UInt8.self) }
    return bits < 0x80
  }

  /// Decodes a submessage and appends it to `messages`, decoding in place rather than copying.
  @inlinable
  public mutating func readRepeatedMessage<M: ProtoMessage>(
    into messages: inout [M]
  ) throws(ProtoDecodingError) {
    // Size the array once for the records that follow back to back (as encoders write them),
    // rather than growing it 1, 2, 4, 8, ... elements at a time.
    if messages.isEmpty { messages.reserveCapacity(consecutiveRecordCount()) }
    messages.append(M())
    try readMessage(into: &messages[messages.count - 1])
  }

  /// The number of records of the current field from here on without another field between
  /// them, at most 256 (beyond that growing an array or a map costs little): the reader is just
  /// past a length-delimited record's tag. Only counts: malformed bytes end the run, and are reported
  /// when they are decoded.
  @inlinable
  func consecutiveRecordCount() -> Int {
    let tag = currentField << 3 | Int(WireType.lengthDelimited.rawValue)
    // Multi-byte tags are not worth it: every repeated field of nuance.asr.v1 has a small number.
    guard tag < 0x80 else { return 1 }
    var count = 0
    var p = position
    while count < 256 {
      // A length of at most five bytes, whose payload ends within the current message.
      var length = 0
      var shift = 0
      while true {
        guard p < end, shift < 35 else { return max(count, 1) }
        let byte = base.load(fromByteOffset: p, as: UInt8.self)
        p += 1
        length |= Int(byte & 0x7F) << shift
        if byte < 0x80 { break }
        shift += 7
      }
      guard length <= end - p else { return max(count, 1) }
      p += length
      count += 1
      guard p < end, base.load(fromByteOffset: p, as: UInt8.self) == UInt8(tag) else { break }
      p += 1
    }
    return count
  }

  /// A `bytes` field: a slice of the input buffer, without a copy.
  @inlinable
  public mutating func readBytes() throws(ProtoDecodingError) -> ByteBuffer {
    let length = try readLength()
    guard let slice = storage.getSlice(at: storage.readerIndex + position, length: length) else {
      throw failure(.truncated, at: position)
    }
    position += length
    return slice
  }

  /// Skips the payload of a record the message does not know.
  @inlinable
  public mutating func skip(_ tag: FieldTag) throws(ProtoDecodingError) {
    switch tag.wireType {
    case .varint:
      _ = try readVarint()
    case .fixed64:
      guard end - position >= 8 else { throw failure(.truncated, at: position) }
      position += 8
    case .fixed32:
      guard end - position >= 4 else { throw failure(.truncated, at: position) }
      position += 4
    case .lengthDelimited:
      position += try readLength()
    case .startGroup, .endGroup:
      // `nextTag()` never returns a group tag.
      throw failure(.groupNotSupported, at: position)
    }
  }

  // MARK: Submessages

  /// Decodes a length-delimited submessage and merges it into `message`, as proto3 merges a
  /// submessage that appears more than once.
  @inlinable
  public mutating func readMessage<M: ProtoMessage>(
    into message: inout M
  ) throws(ProtoDecodingError) {
    let outerField = currentField
    let length = try readLength()
    guard depthRemaining > 0 else { throw failure(.depthLimitExceeded, at: position) }
    let outerEnd = end
    end = position + length
    depthRemaining -= 1
    try decodeFields(of: &message, outerField: outerField)
    depthRemaining += 1
    end = outerEnd
    currentField = outerField
  }

  /// Decodes a length-delimited submessage into an optional field: merges it into the message
  /// there, or into a new one.
  ///
  /// In place: decoding into a copy and storing it back would copy the message (a hundred
  /// bytes or more for some) twice, with its strings' references.
  @inlinable
  public mutating func readMessage<M: ProtoMessage>(
    into message: inout M?
  ) throws(ProtoDecodingError) {
    if message == nil { message = M() }
    try readMessage(into: &message!)
  }

  /// Decodes the fields up to the current end into `message`, naming `M` and the field in any
  /// error; `outerField` is the field of the enclosing message that holds `message`.
  @inlinable @inline(__always)
  mutating func decodeFields<M: ProtoMessage>(
    of message: inout M,
    outerField: Int
  ) throws(ProtoDecodingError) {
    do throws(ProtoDecodingError) {
      try message.decodeFields(from: &self)
    } catch {
      var error = error
      let fieldName = M.protoFieldName(currentField).map { $0.description } ?? "#\(currentField)"
      if error.messageName.isEmpty {
        error.messageName = M.protoName
        error.fieldName = fieldName
        error.fieldPath = error.fieldPath.isEmpty ? fieldName : "\(fieldName).\(error.fieldPath)"
      } else {
        error.fieldPath = "\(fieldName).\(error.fieldPath)"
      }
      currentField = outerField
      throw error
    }
  }

  /// Decodes a `map<string, string>` entry into `map` (and, into an empty map, the entries of
  /// the field that follow it back to back); the last entry of a key wins.
  @inlinable
  public mutating func readStringToStringEntry(
    into map: inout [String: String]
  ) throws(ProtoDecodingError) {
    try readMapEntries(into: &map) { (reader: inout ProtoReader) throws(ProtoDecodingError) in
      try reader.readStringToStringEntry()
    }
  }

  /// Decodes a `map<string, string>` entry; a missing key or value keeps its default.
  @inlinable
  public mutating func readStringToStringEntry() throws(ProtoDecodingError) -> (
    key: String, value: String
  ) {
    try readMapEntry(defaultValue: "", valueWireType: .lengthDelimited) {
      (reader: inout ProtoReader) throws(ProtoDecodingError) in try reader.readString()
    }
  }

  /// Decodes a `map<string, bool>` entry into `map` (and, into an empty map, the entries of the
  /// field that follow it back to back); the last entry of a key wins.
  @inlinable
  public mutating func readStringToBoolEntry(
    into map: inout [String: Bool]
  ) throws(ProtoDecodingError) {
    try readMapEntries(into: &map) { (reader: inout ProtoReader) throws(ProtoDecodingError) in
      try reader.readStringToBoolEntry()
    }
  }

  /// Decodes a map entry with `readEntry` into `map`. Into an empty map it decodes the whole run
  /// of the field's records that follow back to back (as encoders write a map) first, then
  /// creates the dictionary at their count: every other way to size a dictionary
  /// (`Dictionary(minimumCapacity:)`, `reserveCapacity`) is a generic call into the standard
  /// library that looks up the storage's type metadata at run time, which costs more than
  /// decoding a few entries.
  @inlinable
  mutating func readMapEntries<Value>(
    into map: inout [String: Value],
    readEntry: (inout ProtoReader) throws(ProtoDecodingError) -> (key: String, value: Value)
  ) throws(ProtoDecodingError) {
    guard map.isEmpty else {
      let (key, value) = try readEntry(&self)
      map[key] = value
      return
    }
    let count = consecutiveRecordCount()
    var failure: ProtoDecodingError?
    withUnsafeTemporaryAllocation(of: (String, Value).self, capacity: count) { entries in
      var decoded = 0
      do throws(ProtoDecodingError) {
        while true {
          entries.initializeElement(at: decoded, to: try readEntry(&self))
          decoded += 1
          guard decoded < count else { break }
          // The next record's one-byte tag, which consecutiveRecordCount() found to be this
          // field's.
          _ = try nextTag()
        }
      } catch {
        failure = error
      }
      // Also after a failure, so that the entries decoded before it are merged as before.
      map = Dictionary(
        MovingElements(UnsafeMutableBufferPointer(rebasing: entries[..<decoded])),
        uniquingKeysWith: { _, last in last }
      )
    }
    if let failure { throw failure }
  }

  /// The most UTF-8 bytes a `String` holds inline, without allocating storage.
  @inlinable
  static var smallStringCapacity: Int { MemoryLayout<Int>.size == 8 ? 15 : 10 }

  /// Decodes a `string` field whose value is often the same as `candidate` (a field decoded
  /// before it), returning `candidate` itself when the bytes are the same: a copy of a
  /// string's reference rather than new storage for it.
  @inlinable
  public mutating func readString(sameAs candidate: String) throws(ProtoDecodingError) -> String {
    let start = position
    let length = try readLength()
    // Small strings take no storage: only longer ones are worth comparing.
    if length > ProtoReader.smallStringCapacity, candidate.utf8.count == length {
      let bytes = base + position
      let same = candidate.utf8.withContiguousStorageIfAvailable { utf8 in
        ProtoReader.equalBytes(UnsafeRawPointer(utf8.baseAddress!), bytes, count: length)
      }
      if same == true {
        position += length
        return candidate
      }
    }
    position = start
    return try readString()
  }

  /// Whether the `count` (at least eight) bytes at `a` and at `b` are the same, eight at a time.
  @inlinable
  static func equalBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
    var offset = 0
    while offset &+ 8 <= count {
      guard
        a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
          == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
      else { return false }
      offset &+= 8
    }
    // The last eight bytes, overlapping those already compared.
    return a.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
      == b.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
  }

  /// Decodes a `map<string, bool>` entry; a missing key or value keeps its default.
  @inlinable
  public mutating func readStringToBoolEntry() throws(ProtoDecodingError) -> (
    key: String, value: Bool
  ) {
    try readMapEntry(defaultValue: false, valueWireType: .varint) {
      (reader: inout ProtoReader) throws(ProtoDecodingError) in try reader.readBool()
    }
  }

  /// Decodes a map entry, a submessage of `string key = 1` and a value `= 2` read by `readValue`.
  @inlinable
  mutating func readMapEntry<Value>(
    defaultValue: Value,
    valueWireType: WireType,
    readValue: (inout ProtoReader) throws(ProtoDecodingError) -> Value
  ) throws(ProtoDecodingError) -> (key: String, value: Value) {
    let outerField = currentField
    let length = try readLength()
    guard depthRemaining > 0 else { throw failure(.depthLimitExceeded, at: position) }
    let outerEnd = end
    end = position + length
    depthRemaining -= 1
    var key = ""
    var value = defaultValue
    do throws(ProtoDecodingError) {
      while let tag = try nextTag() {
        if tag.fieldNumber == 1 && tag.wireType == .lengthDelimited {
          key = try readString()
        } else if tag.fieldNumber == 2 && tag.wireType == valueWireType {
          value = try readValue(&self)
        } else {
          try skip(tag)
        }
      }
    } catch {
      var error = error
      error.fieldPath = currentField == 1 ? "key" : currentField == 2 ? "value" : "#\(currentField)"
      currentField = outerField
      throw error
    }
    depthRemaining += 1
    end = outerEnd
    currentField = outerField
    return (key, value)
  }
}

/// The elements of an initialized buffer, each moved out as it is iterated, so that a
/// collection can take them without copying them: the buffer is left uninitialized once the
/// sequence has been iterated to its end.
@usableFromInline
struct MovingElements<Element>: Sequence, IteratorProtocol {
  @usableFromInline let elements: UnsafeMutableBufferPointer<Element>
  @usableFromInline var index = 0

  @inlinable
  init(_ elements: UnsafeMutableBufferPointer<Element>) {
    self.elements = elements
  }

  @inlinable
  var underestimatedCount: Int { elements.count - index }

  @inlinable
  mutating func next() -> Element? {
    guard index < elements.count else { return nil }
    defer { index += 1 }
    return elements.moveElement(from: index)
  }
}
