/// Finds the DATA frames in an HTTP/2 connection's bytes as they are read, ahead of the HTTP/2
/// implementation that parses them: the connection uses their stream ids to prefetch the
/// streams' memory (see `GRPCConnectionHandler`).
///
/// Only frame boundaries are tracked: each frame header gives the length of the payload to skip
/// to the next one. A header split between two reads is kept until its last byte arrives. The
/// scanner never fails and never traps: on bytes that are not HTTP/2 it reports stream ids that
/// mean nothing, which only makes a prefetch useless (nghttp2 rejects the bytes).
public struct HTTP2FrameScanner: Sendable {
  /// The length of an HTTP/2 frame header.
  static let headerLength = 9

  /// Bytes of the current frame's payload (or of the client's connection preface) still to
  /// skip before the next frame header.
  private var skip: Int
  /// The first bytes of a frame header that the last read ended in.
  private var partial = InlineArray<9, UInt8>(repeating: 0)
  private var partialCount = 0

  /// A scanner of the bytes a server reads (`prefaceLength` 24: the client's connection preface
  /// comes before its first frame) or a client reads (0).
  public init(prefaceLength: Int) {
    skip = max(prefaceLength, 0)
  }

  /// The server's scanner: the 24-byte client preface, then frames.
  public static var server: HTTP2FrameScanner { HTTP2FrameScanner(prefaceLength: 24) }
  /// The client's scanner: frames from the first byte.
  public static var client: HTTP2FrameScanner { HTTP2FrameScanner(prefaceLength: 0) }

  /// Reads the next bytes of the connection, and calls `found` with the stream id of each DATA
  /// frame whose header is complete in them, at most `limit` times (the boundaries are tracked
  /// to the end regardless).
  public mutating func scan(
    _ bytes: UnsafeRawBufferPointer,
    limit: Int,
    _ found: (Int32) -> Void
  ) {
    var reported = 0
    var position = 0
    let count = bytes.count
    if partialCount > 0 {
      // The rest of a header the previous read began.
      let needed = Self.headerLength - partialCount
      let taken = min(needed, count)
      for index in 0..<taken { partial[partialCount + index] = bytes[index] }
      partialCount += taken
      position = taken
      guard partialCount == Self.headerLength else { return }
      partialCount = 0
      let header = Header(
        length: Int(partial[0]) << 16 | Int(partial[1]) << 8 | Int(partial[2]),
        type: partial[3],
        streamID: Int32(partial[5] & 0x7F) << 24 | Int32(partial[6]) << 16
          | Int32(partial[7]) << 8 | Int32(partial[8])
      )
      if header.isData && reported < limit {
        found(header.streamID)
        reported += 1
      }
      skip = header.length
    }
    while true {
      // Skip the payload (or the preface); stop if it runs past these bytes.
      let remaining = count - position
      if skip >= remaining {
        skip -= remaining
        return
      }
      position += skip
      skip = 0
      if count - position < Self.headerLength {
        // A header split across reads: keep its first bytes.
        partialCount = count - position
        for index in 0..<partialCount { partial[index] = bytes[position + index] }
        return
      }
      let header = Header(
        length: Int(bytes[position]) << 16 | Int(bytes[position + 1]) << 8
          | Int(bytes[position + 2]),
        type: bytes[position + 3],
        streamID: Int32(bytes[position + 5] & 0x7F) << 24 | Int32(bytes[position + 6]) << 16
          | Int32(bytes[position + 7]) << 8 | Int32(bytes[position + 8])
      )
      if header.isData && reported < limit {
        found(header.streamID)
        reported += 1
      }
      position += Self.headerLength
      skip = header.length
    }
  }

  private struct Header {
    var length: Int
    var type: UInt8
    var streamID: Int32
    /// A DATA frame (type 0) of a stream (not the connection, 0).
    var isData: Bool { type == 0 && streamID != 0 }
  }
}
