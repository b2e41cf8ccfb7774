import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A token kept in a file by someone else (a sidecar that renews it): the text of the file
/// without the spaces and line breaks around it, read again whenever the file changes.
///
/// Each call compares the file's device, inode, size and modification time with those of the
/// last read (one `stat`), so a file replaced by a rename or rewritten in place is seen at once,
/// and an unchanged one costs no read.
public final class TokenFile: TokenProvider {
  /// The file.
  public let path: String
  /// The most a token file may hold.
  public static let maxBytes = 64 * 1024

  private struct Identity: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
  }

  private let cache = Mutex<(identity: Identity, token: AccessToken)?>(nil)

  /// The token in the file at `path`.
  public init(path: String) {
    self.path = path
  }

  public func token() async throws -> AccessToken {
    try current()
  }

  /// The token the file holds now (a `stat`, and a read if the file changed).
  public func current() throws(TokenError) -> AccessToken {
    var info = stat()
    guard stat(path, &info) == 0 else { throw problem(String(cString: strerror(errno))) }
    let identity = Identity(
      device: UInt64(info.st_dev),
      inode: UInt64(info.st_ino),
      size: Int64(info.st_size),
      modifiedSeconds: Int(info.st_mtim.tv_sec),
      modifiedNanoseconds: Int(info.st_mtim.tv_nsec)
    )
    if let cached = cache.withLock({ $0 }), cached.identity == identity { return cached.token }
    let token = try read()
    cache.withLock { $0 = (identity, token) }
    return token
  }

  private func read() throws(TokenError) -> AccessToken {
    guard let file = fopen(path, "rb") else { throw problem(String(cString: strerror(errno))) }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count <= Self.maxBytes {
      let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
      bytes += chunk[0..<count]
      if count < chunk.count { break }
    }
    guard bytes.count <= Self.maxBytes else {
      throw problem("larger than \(Self.maxBytes / 1024) KiB")
    }
    let value = Self.token(fromText: String(decoding: bytes, as: UTF8.self))
    guard !value.isEmpty else { throw problem("it is empty") }
    guard AccessToken.isValidValue(value) else {
      throw problem("the token holds a space or a byte outside printable ASCII")
    }
    return AccessToken(value)
  }

  private func problem(_ reason: String) -> TokenError {
    TokenError(.unreadableFile, "cannot read the token file \(path): \(reason.lowercased())")
  }

  /// A file's token: its text without the spaces and line breaks around it (CR, LF or CRLF).
  public static func token(fromText text: String) -> String {
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
      let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
    else { return "" }
    return String(scalars[first...last])
  }
}
