/// Why a metadata entry was refused.
public struct GRPCMetadataError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong with the entry.
  public enum Reason: Hashable, Sendable {
    /// The name is empty.
    case emptyName
    /// The name holds a byte outside `0-9 a-z _ - .`, such as an uppercase letter or `:`.
    case invalidNameByte(UInt8)
    /// The name is that of a header gRPC or HTTP/2 defines, or starts with `grpc-`.
    case reservedName
    /// A value for a name without `-bin` holds a byte outside 0x20–0x7E.
    case invalidValueByte(UInt8)
    /// A value for a name without `-bin` was given as bytes.
    case binaryValueForASCIIName
    /// A value for a name ending in `-bin` was given as a string.
    case stringValueForBinaryName
    /// A received value for a name ending in `-bin` is not base64.
    case invalidBase64
  }

  /// The name of the entry.
  public var name: String
  /// What is wrong with it.
  public var reason: Reason

  /// An error for the entry `name`, refused because of `reason`.
  public init(name: String, reason: Reason) {
    self.name = name
    self.reason = reason
  }

  /// A sentence naming the entry and the problem, for logs and status messages.
  public var message: String { description }

  /// The message.
  public var description: String {
    let problem =
      switch reason {
      case .emptyName: "the name is empty"
      case .invalidNameByte(let byte): "the name holds \(Self.show(byte)), not 0-9 a-z _ - ."
      case .reservedName: "the name is reserved for gRPC and HTTP/2"
      case .invalidValueByte(let byte): "the value holds \(Self.show(byte)), not 0x20-0x7E"
      case .binaryValueForASCIIName: "a binary value needs a name ending in -bin"
      case .stringValueForBinaryName: "a name ending in -bin needs a binary value"
      case .invalidBase64: "the value is not base64"
      }
    return "invalid metadata \"\(name)\": \(problem)"
  }

  private static func show(_ byte: UInt8) -> String {
    (0x21...0x7E).contains(byte)
      ? "\"\(Character(Unicode.Scalar(byte)))\""
      : "byte 0x" + String(byte, radix: 16, uppercase: true)
  }
}

/// The custom metadata of a call: ordered name-value pairs sent as HTTP/2 header fields.
///
/// Names are lowercase, made of `0-9 a-z _ - .`. A name ending in `-bin` carries bytes, sent in
/// base64; any other name carries printable ASCII (0x20–0x7E). Names may repeat, and the order
/// of entries is kept, so two metadata are equal only if they hold the same entries in the same
/// order.
///
/// ``add(_:_:)`` refuses names starting with `grpc-`, which the specification reserves, and the
/// names in ``reservedNames``, which belong to the call definition, the response or HTTP/2
/// itself. ``init(headerFields:)`` drops the latter from what a peer sent and keeps the rest.
public struct GRPCMetadata: Hashable, Sendable, Sequence, CustomStringConvertible {
  /// The value of an entry.
  public enum Value: Hashable, Sendable {
    /// A printable ASCII value, for a name without the `-bin` suffix.
    case string(String)
    /// Bytes, for a name ending in `-bin`.
    case binary([UInt8])
  }

  /// One name-value pair.
  public struct Entry: Hashable, Sendable {
    /// The lowercase name.
    public let name: String
    /// The value.
    public let value: Value
  }

  /// Header names that are not custom metadata: those of the call definition (H2), of responses
  /// and trailers (H17, H18), and the connection-specific fields HTTP/2 forbids (RFC 9113
  /// §8.2.2). Pseudo-headers, starting with `:`, are not metadata either.
  public static let reservedNames: Set<String> = [
    // Call definition.
    "te", "content-type", "user-agent", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
    "grpc-message-type",
    // Response and trailers.
    "grpc-status", "grpc-message", "grpc-status-details-bin",
    // Connection-specific, malformed in HTTP/2.
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
  ]

  private var entries: [Entry] = []

  /// Empty metadata.
  public init() {}

  /// The number of entries.
  public var count: Int { entries.count }

  /// Whether there are no entries.
  public var isEmpty: Bool { entries.isEmpty }

  /// Appends the string `value` for `name`.
  ///
  /// - Throws: ``GRPCMetadataError`` if `name` is invalid or reserved, ends in `-bin`, or `value`
  ///   holds a byte outside 0x20–0x7E.
  public mutating func add(_ name: String, _ value: String) throws(GRPCMetadataError) {
    try Self.validateForAdding(name)
    guard !Self.isBinaryName(name) else {
      throw GRPCMetadataError(name: name, reason: .stringValueForBinaryName)
    }
    if let byte = value.utf8.first(where: { !(0x20...0x7E).contains($0) }) {
      throw GRPCMetadataError(name: name, reason: .invalidValueByte(byte))
    }
    entries.append(Entry(name: name, value: .string(value)))
  }

  /// Appends the bytes `binary` for `name`, which must end in `-bin`.
  ///
  /// - Throws: ``GRPCMetadataError`` if `name` is invalid or reserved, or lacks `-bin`.
  public mutating func add(_ name: String, binary: [UInt8]) throws(GRPCMetadataError) {
    try Self.validateForAdding(name)
    guard Self.isBinaryName(name) else {
      throw GRPCMetadataError(name: name, reason: .binaryValueForASCIIName)
    }
    entries.append(Entry(name: name, value: .binary(binary)))
  }

  /// The values for `name`, in order.
  public func values(for name: String) -> [Value] {
    entries.filter { $0.name == name }.map(\.value)
  }

  /// The first string value for `name`, if any.
  public func first(_ name: String) -> String? {
    for entry in entries where entry.name == name {
      if case .string(let value) = entry.value { return value }
    }
    return nil
  }

  /// An iterator over the entries, in order.
  public func makeIterator() -> IndexingIterator<[Entry]> {
    entries.makeIterator()
  }

  /// The number of entries, which iteration yields exactly.
  public var underestimatedCount: Int { entries.count }

  /// The entries as `name: value` pairs, binary values in base64.
  public var description: String {
    let fields = headerFields.map { "\($0.name): \($0.value)" }
    return "[" + fields.joined(separator: ", ") + "]"
  }

  // MARK: - HTTP/2 header fields

  /// The custom metadata among the header fields a peer sent.
  ///
  /// Pseudo-headers and ``reservedNames`` are dropped. Other names starting with `grpc-` are
  /// kept, since gRPC defines more of them than this list (`grpc-trace-bin`, for one). A value
  /// for a `-bin` name is split on commas, because a peer may join repeated fields into one,
  /// and each part is decoded from base64, padded or not, into its own entry. String values are
  /// kept as they came, since implementations are lenient with what peers send.
  ///
  /// - Throws: ``GRPCMetadataError`` if a name is invalid, or a `-bin` value is not base64.
  public init(
    headerFields: some Sequence<(name: String, value: String)>
  ) throws(GRPCMetadataError) {
    for (name, value) in headerFields {
      if name.utf8.first == UInt8(ascii: ":") || Self.reservedNames.contains(name) { continue }
      try Self.validate(name)
      guard Self.isBinaryName(name) else {
        entries.append(Entry(name: name, value: .string(value)))
        continue
      }
      for part in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
        guard let bytes = Base64.decode(Self.trimmingWhitespace(part)) else {
          throw GRPCMetadataError(name: name, reason: .invalidBase64)
        }
        entries.append(Entry(name: name, value: .binary(bytes)))
      }
    }
  }

  /// The custom metadata among received header fields, leniently: an entry that does not parse
  /// (an invalid name, a `-bin` value that is not base64) is left out rather than losing the
  /// rest. What a peer sends is read this way; ``init(headerFields:)`` says what was wrong.
  public init(receivedHeaderFields headerFields: some Sequence<(name: String, value: String)>) {
    for field in headerFields {
      if let single = try? GRPCMetadata(headerFields: CollectionOfOne(field)) {
        entries += single.entries
      }
    }
  }

  /// The entries as HTTP/2 header fields, in order, with binary values in unpadded base64.
  public var headerFields: [(name: String, value: String)] {
    entries.map { entry in
      switch entry.value {
      case .string(let value): (entry.name, value)
      case .binary(let bytes): (entry.name, Base64.encode(bytes))
      }
    }
  }

  // MARK: - Validation

  private static func isBinaryName(_ name: String) -> Bool {
    name.hasSuffix("-bin")
  }

  private static func validate(_ name: String) throws(GRPCMetadataError) {
    guard !name.isEmpty else { throw GRPCMetadataError(name: name, reason: .emptyName) }
    if let byte = name.utf8.first(where: { !isNameByte($0) }) {
      throw GRPCMetadataError(name: name, reason: .invalidNameByte(byte))
    }
  }

  private static func validateForAdding(_ name: String) throws(GRPCMetadataError) {
    try validate(name)
    if name.hasPrefix("grpc-") || reservedNames.contains(name) {
      throw GRPCMetadataError(name: name, reason: .reservedName)
    }
  }

  /// `bytes` without the spaces and tabs HTTP allows around the items of a list.
  private static func trimmingWhitespace(_ bytes: Substring.UTF8View) -> ArraySlice<UInt8> {
    let isWhitespace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    let array = Array(bytes)
    guard let start = array.firstIndex(where: { !isWhitespace($0) }) else { return [] }
    let end = array.lastIndex(where: { !isWhitespace($0) })!
    return array[start...end]
  }

  private static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"): true
    case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."): true
    default: false
    }
  }
}

/// Base64 with the standard alphabet (RFC 4648 §4), as `-bin` metadata uses it.
private enum Base64 {
  private static let alphabet = Array(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8
  )

  /// The 6-bit value of each byte, or 0xFF for bytes outside the alphabet.
  private static let values: [UInt8] = {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
    return table
  }()

  /// `bytes` in base64 without padding, which gRPC asks senders to emit.
  static func encode(_ bytes: [UInt8]) -> String {
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count * 4 + 2) / 3)
    var index = 0
    while index < bytes.count {
      let remaining = bytes.count - index
      let b0 = bytes[index]
      let b1 = remaining > 1 ? bytes[index + 1] : 0
      let b2 = remaining > 2 ? bytes[index + 2] : 0
      output.append(alphabet[Int(b0 >> 2)])
      output.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
      if remaining > 1 { output.append(alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)]) }
      if remaining > 2 { output.append(alphabet[Int(b2 & 0x3F)]) }
      index += 3
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// The bytes that the base64 text `text` encodes, padded or not; nil if it is not base64.
  ///
  /// Padding is accepted only in full (`QQ==`, not `QQ=`). Bits left over in the last
  /// character are ignored rather than checked for zero, as many encoders are sloppy there.
  static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
    var characters = Array(text)
    if characters.count % 4 == 0, characters.last == UInt8(ascii: "=") {
      characters.removeLast()
      if characters.last == UInt8(ascii: "=") { characters.removeLast() }
    }
    // One character left over carries only 6 bits, less than a byte.
    guard characters.count % 4 != 1 else { return nil }
    var output: [UInt8] = []
    output.reserveCapacity(characters.count * 3 / 4)
    var accumulator: UInt32 = 0
    var bits = 0
    for character in characters {
      let value = values[Int(character)]
      guard value != 0xFF else { return nil }
      accumulator = accumulator << 6 | UInt32(value)
      bits += 6
      if bits >= 8 {
        bits -= 8
        output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
      }
    }
    return output
  }
}
