import ArgumentParser

/// A `HOST:PORT` argument; IPv6 hosts in brackets (`[::1]:50051`).
struct HostPort: ExpressibleByArgument, Sendable, CustomStringConvertible {
  var host: String
  var port: Int

  init?(argument: String) {
    let text = argument.trimmingCharacters(in: " ")
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
      (0...65535).contains(port)
    else { return nil }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { return nil }
    self.host = host
    self.port = port
  }

  var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

  static var defaultCompletionKind: CompletionKind { .default }
}

extension String {
  func trimmingCharacters(in set: Character) -> String {
    var text = Substring(self)
    while text.first == set { text.removeFirst() }
    while text.last == set { text.removeLast() }
    return String(text)
  }
}
