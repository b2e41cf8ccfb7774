public import HarkAudio
public import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Audio streamed as it is read from a file descriptor — standard input in a telephony pipeline
/// (`sox … -t raw - | hark recognize -`) — cut into frames.
///
/// Reading happens on a thread of its own, one frame ahead of the consumer: nothing is read
/// faster than it is taken, so a live source is never buffered without bound. A WAV header at
/// the start of the stream is parsed and removed.
public struct AudioStreamInput: Sendable {
  /// The format of the audio.
  public let format: AudioStreamFormat
  /// The frames, `frameMilliseconds` each (the last may be shorter).
  public let frames: StreamedFrames

  /// How the stream's bytes are to be read: a WAV stream, raw audio of a format, or whichever
  /// the first bytes show (a RIFF/WAVE header, else raw audio of `raw`).
  public enum Declared: Sendable, Hashable {
    case wav
    case raw(AudioStreamFormat)
    case sniff(raw: AudioStreamFormat)
  }

  /// Starts reading `descriptor` (which stays open; the caller owns it).
  public static func open(
    descriptor: Int32,
    declared: Declared,
    name: String = "standard input",
    frameMilliseconds: Int = 20
  ) async throws(AudioClip.FileError) -> AudioStreamInput {
    let reader = DescriptorReader(descriptor: descriptor)
    var head: [UInt8] = []
    let format: AudioStreamFormat
    let isWAV: Bool
    switch declared {
    case .wav:
      isWAV = true
    case .raw:
      isWAV = false
    case .sniff:
      // Enough bytes to tell a WAV header.
      head = await reader.read(atLeast: 12, limit: 12)
      isWAV = head.count >= 12 && AudioClip.isWAV(head)
    }
    let rawFormat: AudioStreamFormat? =
      switch declared {
      case .raw(let declaredFormat): declaredFormat
      case .sniff(let declaredFormat): isWAV ? nil : declaredFormat
      case .wav: nil
      }
    if let rawFormat {
      format = rawFormat
    } else {
      // Read until the header parses (its fmt chunk and the start of its data chunk), at most
      // 1 MiB of it.
      while true {
        do {
          let file = try WAVFile(bytes: head)
          format = try file.validate()
          head = Array(head[file.dataRange.lowerBound...])
          break
        } catch let error where Self.mayNeedMore(error) && head.count < 1 << 20 {
          let more = await reader.read(atLeast: 1, limit: 4096)
          if more.isEmpty { throw AudioClip.FileError(message: "\(name): \(error)") }
          head += more
        } catch {
          throw AudioClip.FileError(message: "\(name): \(error)")
        }
      }
    }
    return AudioStreamInput(
      format: format,
      frames: StreamedFrames(
        reader: reader,
        first: head,
        frameBytes: max(format.bytes(forMilliseconds: frameMilliseconds), 1)
      )
    )
  }
}

extension AudioStreamInput {
  /// Whether a WAV header that does not parse yet may parse with more of the stream.
  static func mayNeedMore(_ error: WAVError) -> Bool {
    switch error.reason {
    case .truncatedHeader, .missingFormatChunk, .missingDataChunk: true
    default: false
    }
  }
}

/// Frames read from a descriptor as they are asked for.
public struct StreamedFrames: AsyncSequence, Sendable {
  public typealias Element = ByteBuffer

  let reader: DescriptorReader
  let first: [UInt8]
  let frameBytes: Int

  public struct AsyncIterator: AsyncIteratorProtocol {
    let reader: DescriptorReader
    var pending: [UInt8]
    let frameBytes: Int
    var ended = false

    public mutating func next() async -> ByteBuffer? {
      while !ended && pending.count < frameBytes {
        let more = await reader.read(atLeast: frameBytes - pending.count, limit: frameBytes * 8)
        if more.isEmpty { ended = true } else { pending += more }
      }
      guard !pending.isEmpty else { return nil }
      let count = Swift.min(frameBytes, pending.count)
      let frame = ByteBuffer(bytes: pending[..<count])
      pending.removeFirst(count)
      return frame
    }
  }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(reader: reader, pending: first, frameBytes: frameBytes)
  }
}

/// Blocking reads of a descriptor, on NIO's thread pool so that they never hold one of Swift
/// concurrency's threads.
final class DescriptorReader: Sendable {
  let descriptor: Int32

  init(descriptor: Int32) {
    self.descriptor = descriptor
  }

  /// At least `atLeast` bytes (fewer only at the end of the stream or on an error), at most
  /// `limit`.
  func read(atLeast: Int, limit: Int) async -> [UInt8] {
    let descriptor = self.descriptor
    let result = try? await NIOThreadPool.singleton.runIfActive {
      var bytes: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: max(limit, 1))
      while bytes.count < atLeast {
        let wanted = limit - bytes.count
        let count = chunk.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, wanted) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += chunk[0..<count]
      }
      return bytes
    }
    return result ?? []
  }
}

#if canImport(Glibc)
  private let systemRead = Glibc.read
#elseif canImport(Musl)
  private let systemRead = Musl.read
#elseif canImport(Darwin)
  private let systemRead = Darwin.read
#endif

/// Frames handed out no faster than real time: each when the audio before it has played, on a
/// schedule from the first frame (so that lateness does not accumulate).
public struct RealTimeFrames<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Base.Element == ByteBuffer {
  public typealias Element = ByteBuffer

  let base: Base
  let bytesPerSecond: Int

  /// `base`'s frames of audio of `format`, paced.
  public init(_ base: Base, format: AudioStreamFormat) {
    self.base = base
    self.bytesPerSecond = format.bytesPerSecond
  }

  public struct AsyncIterator: AsyncIteratorProtocol {
    var base: Base.AsyncIterator
    let bytesPerSecond: Int
    var start: ContinuousClock.Instant?
    var bytesBefore = 0

    public mutating func next() async throws -> ByteBuffer? {
      guard let frame = try await base.next() else { return nil }
      let now = ContinuousClock.now
      let start = self.start ?? now
      self.start = start
      let due = start + .nanoseconds(Int64(bytesBefore) * 1_000_000_000 / Int64(bytesPerSecond))
      if due > now { try? await Task.sleep(until: due, clock: .continuous) }
      bytesBefore += frame.readableBytes
      return frame
    }
  }

  public func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(base: base.makeAsyncIterator(), bytesPerSecond: bytesPerSecond)
  }
}
