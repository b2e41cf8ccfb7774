/// Turns audio messages of any length into whole 16-bit samples, in order.
///
/// A client may cut its audio anywhere: an L16 stream sent as 161 bytes and then 159 bytes has a
/// sample split across the two messages. The assembler keeps such a trailing byte, at most one,
/// until the next message completes it. L16 is little-endian, as ASRaaS specifies; every G.711
/// byte is a whole sample, decoded with ``G711``.
public struct PCMAssembler: Sendable {
  /// How the bytes encode samples.
  public let encoding: AudioEncoding

  /// The first byte of a split L16 sample, waiting for its second.
  private var pendingByte: UInt8?

  /// An assembler for a stream in `encoding`, at the start of the stream.
  public init(encoding: AudioEncoding) {
    self.encoding = encoding
  }

  /// The number of bytes kept for the next message: 0, or 1 in the middle of an L16 sample.
  public var pendingBytes: Int { pendingByte == nil ? 0 : 1 }

  /// Appends the samples that `bytes`, following the bytes given before, complete to `samples`.
  public mutating func append(_ bytes: UnsafeRawBufferPointer, into samples: inout [Int16]) {
    switch encoding {
    case .ulaw, .alaw:
      G711.decode(bytes, encoding: encoding, into: &samples)
    case .linear16:
      var rest = bytes[...]
      if let low = pendingByte, let high = rest.popFirst() {
        samples.append(Self.sample(low: low, high: high))
        pendingByte = nil
      }
      let pairs = rest.count / 2
      let start = rest.startIndex
      // One copy of the bytes into the array's new capacity (they need not be aligned, and are
      // not zero-filled first), then byte order fixed in place.
      samples.append(addingCapacity: pairs) { output in
        output.withUnsafeMutableBufferPointer { buffer, initialized in
          guard pairs > 0 else { return }
          UnsafeMutableRawPointer(buffer.baseAddress! + initialized).copyMemory(
            from: bytes.baseAddress! + start,
            byteCount: 2 * pairs
          )
          initialized += pairs
        }
      }
      #if _endian(big)
        let first = samples.count - pairs
        samples.withUnsafeMutableBufferPointer { samples in
          for index in samples.indices[first...] {
            samples[index] = Int16(littleEndian: samples[index])
          }
        }
      #endif
      if rest.count % 2 == 1 { pendingByte = rest.last }
    }
  }

  private static func sample(low: UInt8, high: UInt8) -> Int16 {
    Int16(bitPattern: (UInt16(high) << 8) | UInt16(low))
  }
}
