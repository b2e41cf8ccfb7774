/// An HPACK encoder (RFC 7541) that encodes each field the way it is told to, keeping its own
/// model of the peer's dynamic table, so that a program can refer back to fields it indexed.
///
/// The model may drift from the server's (after a block the server rejected, say); a reference
/// then decodes to another field or to an error, which is fuzzing too.
struct HeaderBlockEncoder {
  /// How one field is written.
  enum Representation: CaseIterable {
    /// A literal that enters the dynamic table (§6.2.1).
    case incrementalIndexing
    /// A literal the table does not keep (§6.2.2).
    case withoutIndexing
    /// A literal no intermediary may index (§6.2.3).
    case neverIndexed
    /// A reference to the whole field in the dynamic or static table (§6.1), if either has it;
    /// otherwise an incrementally indexed literal, so that the next reference finds it.
    case indexed
    /// A literal whose name is a reference to the static table, if it has the name.
    case staticName
    /// A literal value with the Huffman flag on bytes that are not Huffman code.
    case badHuffman
  }

  private var table: [(name: String, value: String)] = []
  private var tableSize = 0
  private(set) var capacity = 4096

  static let staticTable: [(name: String, value: String)] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
  ]
  /// Names of the static table beyond its first eight entries that requests use.
  static let staticNames: [String: Int] = ["content-type": 31, "user-agent": 58]

  /// A dynamic table size update (§6.3), which must open a block.
  mutating func sizeUpdate(_ size: Int, into block: inout [UInt8]) {
    block += Self.integer(size, prefixBits: 5, flags: 0x20)
    capacity = size
    evict()
  }

  /// Appends `name: value` written as `representation`; `garbage` feeds `.badHuffman`.
  mutating func encode(
    _ name: String,
    _ value: String,
    as representation: Representation,
    garbage: [UInt8] = [],
    into block: inout [UInt8]
  ) {
    switch representation {
    case .indexed:
      if let index = index(of: name, value) {
        block += Self.integer(index, prefixBits: 7, flags: 0x80)
      } else {
        encode(name, value, as: .incrementalIndexing, into: &block)
      }
    case .incrementalIndexing:
      block.append(0x40)
      block += Self.string(name) + Self.string(value)
      insert(name, value)
    case .withoutIndexing:
      block.append(0x00)
      block += Self.string(name) + Self.string(value)
    case .neverIndexed:
      block.append(0x10)
      block += Self.string(name) + Self.string(value)
    case .staticName:
      guard let index = Self.staticNameIndex(name) else {
        encode(name, value, as: .withoutIndexing, into: &block)
        return
      }
      block += Self.integer(index, prefixBits: 4, flags: 0x00) + Self.string(value)
    case .badHuffman:
      block.append(0x00)
      block += Self.string(name)
      block += Self.integer(garbage.count, prefixBits: 7, flags: 0x80) + garbage
    }
  }

  /// The index of the whole field, dynamic table first (61 static entries precede it).
  private func index(of name: String, _ value: String) -> Int? {
    if let position = table.firstIndex(where: { $0.name == name && $0.value == value }) {
      return 62 + position
    }
    return Self.staticTable.firstIndex { $0.name == name && $0.value == value }.map { $0 + 1 }
  }

  private static func staticNameIndex(_ name: String) -> Int? {
    if let position = staticTable.firstIndex(where: { $0.name == name }) { return position + 1 }
    return staticNames[name]
  }

  private mutating func insert(_ name: String, _ value: String) {
    table.insert((name, value), at: 0)
    tableSize += Self.entrySize(name, value)
    evict()
  }

  private mutating func evict() {
    while tableSize > capacity, let last = table.popLast() {
      tableSize -= Self.entrySize(last.name, last.value)
    }
  }

  private static func entrySize(_ name: String, _ value: String) -> Int {
    name.utf8.count + value.utf8.count + 32
  }

  /// An integer with a `prefixBits`-bit prefix, the prefix's other bits set to `flags` (§5.1).
  static func integer(_ value: Int, prefixBits: Int, flags: UInt8) -> [UInt8] {
    let limit = (1 << prefixBits) - 1
    guard value >= limit else { return [flags | UInt8(value)] }
    var bytes = [flags | UInt8(limit)]
    var rest = value - limit
    while rest >= 128 {
      bytes.append(UInt8(rest & 0x7F) | 0x80)
      rest >>= 7
    }
    bytes.append(UInt8(rest))
    return bytes
  }

  /// A string literal, not Huffman-coded (§5.2).
  static func string(_ string: String) -> [UInt8] {
    let bytes = Array(string.utf8)
    return integer(bytes.count, prefixBits: 7, flags: 0) + bytes
  }
}
