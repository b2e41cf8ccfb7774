public import NIOCore

/// Audio bytes cut into messages of exactly `size` bytes (the last may be shorter): how a
/// client that ignores frame boundaries (a 1,024-byte read loop, say) streams its audio.
public struct FixedSizeMessages: AsyncSequence, Sendable {
  public let bytes: ByteBuffer
  public let size: Int

  public init(_ bytes: ByteBuffer, size: Int) {
    precondition(size > 0)
    self.bytes = bytes
    self.size = size
  }

  public struct AsyncIterator: AsyncIteratorProtocol {
    var remaining: ByteBuffer
    let size: Int

    public mutating func next() async -> ByteBuffer? {
      guard remaining.readableBytes > 0 else { return nil }
      return remaining.readSlice(length: Swift.min(size, remaining.readableBytes))
    }
  }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(remaining: bytes, size: size)
  }

  /// Every size from 1 to 330 bytes (every split of a 10 ms frame of 8 and 16 kHz L16, odd
  /// byte counts included), then powers of two and primes up to 4,096.
  public static let sizesUnderTest: [Int] =
    Array(1...330) + [
      331, 337, 401, 509, 512, 640, 997, 1000, 1021, 1024, 2039, 2048, 3200, 4093, 4096,
    ]
}

/// Runs `body` for each of `items`, at most `width` at once.
public func forEach<Item: Sendable>(
  _ items: [Item],
  concurrently width: Int,
  _ body: @escaping @Sendable (Item) async throws -> Void
) async throws {
  try await withThrowingTaskGroup(of: Void.self) { group in
    var iterator = items.makeIterator()
    for _ in 0..<width {
      guard let item = iterator.next() else { break }
      group.addTask { try await body(item) }
    }
    while try await group.next() != nil {
      guard let item = iterator.next() else { continue }
      group.addTask { try await body(item) }
    }
  }
}
