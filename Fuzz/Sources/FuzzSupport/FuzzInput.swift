import Foundation

/// A fuzzer's input read as a stream of choices.
///
/// Past the end every read gives zero, so any input is a whole program, and a choice's first
/// entry is what a cut-off input chooses: tables list their most ordinary value first.
public struct FuzzInput {
  private let bytes: UnsafeBufferPointer<UInt8>
  private var index = 0

  public init(_ bytes: UnsafeBufferPointer<UInt8>) {
    self.bytes = bytes
  }

  /// Whether every byte was read.
  public var isAtEnd: Bool { index >= bytes.count }

  public mutating func byte() -> UInt8 {
    guard index < bytes.count else { return 0 }
    defer { index += 1 }
    return bytes[index]
  }

  public mutating func uint16() -> UInt16 {
    UInt16(byte()) | UInt16(byte()) << 8
  }

  public mutating func uint32() -> UInt32 {
    UInt32(uint16()) | UInt32(uint16()) << 16
  }

  /// The next `count` bytes, fewer at the end.
  public mutating func bytes(_ count: Int) -> [UInt8] {
    let taken = min(count, bytes.count - min(index, bytes.count))
    defer { index += taken }
    return Array(bytes[index..<index + taken])
  }

  /// A string of up to `limit` bytes (a length byte, then the bytes, as lossy UTF-8).
  public mutating func string(limit: Int) -> String {
    String(decoding: bytes(Int(byte()) % (limit + 1)), as: UTF8.self)
  }

  /// One of `choices`.
  public mutating func pick<T>(_ choices: [T]) -> T {
    choices[Int(byte()) % choices.count]
  }
}

/// Traps with `message` unless `condition` holds: libFuzzer reports it as a crash, and unlike
/// `precondition` the message is printed in release builds too.
public func check(
  _ condition: @autoclosure () -> Bool,
  _ message: @autoclosure () -> String,
  file: StaticString = #fileID,
  line: UInt = #line
) {
  if !condition() { fatalError(message(), file: file, line: line) }
}

/// Writes a line of a replay's trace to standard error at once, so that it precedes a crash.
public func traceLine(_ line: String) {
  FileHandle.standardError.write(Data((line + "\n").utf8))
}
