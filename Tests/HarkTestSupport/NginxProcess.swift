public import Foundation
import NIOCore
import NIOPosix

/// nginx (Debian's nginx-light, installed by tools/bootstrap) on a free loopback port, proxying
/// gRPC to `upstreamPort` with `grpc_pass`: a real HTTP/2 proxy that nobody here wrote.
public final class NginxProcess: @unchecked Sendable {
  public let process = Process()
  public let port: Int
  public let directory: URL

  /// nginx proxying to `upstreamPort`; with `tls` (a certificate and key) it terminates TLS.
  public init(upstreamPort: Int, tls: (certificate: String, key: String)? = nil) throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("hark-nginx-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    port = try Self.freePort()
    let configuration = """
      daemon off;
      master_process off;
      worker_processes 1;
      pid \(directory.path)/nginx.pid;
      error_log \(directory.path)/error.log warn;
      events { worker_connections 256; }
      http {
        access_log off;
        client_body_temp_path \(directory.path)/body;
        proxy_temp_path \(directory.path)/proxy;
        fastcgi_temp_path \(directory.path)/fastcgi;
        uwsgi_temp_path \(directory.path)/uwsgi;
        scgi_temp_path \(directory.path)/scgi;
        server {
          listen 127.0.0.1:\(port) \(tls == nil ? "" : "ssl ")http2;
          \(tls.map { "ssl_certificate \($0.certificate); ssl_certificate_key \($0.key);" } ?? "")
          location / { grpc_pass grpc://127.0.0.1:\(upstreamPort); }
        }
      }
      """
    let path = directory.appendingPathComponent("nginx.conf").path
    try configuration.write(toFile: path, atomically: true, encoding: .utf8)
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
    process.arguments = ["-p", directory.path, "-c", path, "-e", "\(directory.path)/error.log"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
  }

  public var errorLog: String {
    (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8))
      ?? ""
  }

  public func stop() {
    // SIGKILL: a child of the test process inherits its blocked signals, SIGTERM among them.
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    try? FileManager.default.removeItem(at: directory)
  }

  /// A port nothing listens on now (bound to port 0, then released).
  public static func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
  }
}
