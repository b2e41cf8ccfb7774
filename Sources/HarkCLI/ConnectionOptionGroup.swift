import ArgumentParser
import HarkGRPC
import NIOCore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// How `--server` is reached, as grpcurl spells it: TLS by default, `--plaintext` for h2c.
struct ConnectionOptionGroup: ParsableArguments {
  @Flag(help: "Speak HTTP/2 without TLS (h2c), e.g. to a local hark serve without --tls-cert.")
  var plaintext = false

  @Option(
    help: ArgumentHelp(
      "Also trust the certificate authorities of this PEM file (the server's and the token endpoint's).",
      valueName: "file"
    )
  )
  var cacert: String?

  @Option(
    help: ArgumentHelp("Present this PEM client certificate (mTLS); with --key.", valueName: "file")
  )
  var cert: String?

  @Option(help: ArgumentHelp("The PEM private key of --cert.", valueName: "file"))
  var key: String?

  @Flag(help: "TLS without verifying the server's certificate (encrypted, but to anyone).")
  var insecure = false

  @Option(
    help: ArgumentHelp(
      "The :authority of requests, and the name verified in the server's certificate.",
      valueName: "name"
    )
  )
  var authority: String?

  @Option(
    help: ArgumentHelp(
      "Send a keepalive PING after this long without a frame from the server while a call is "
        + "open; a server that does not answer within --keepalive-timeout fails the call "
        + "(UNAVAILABLE). 0 for none; at least 10s otherwise (gRFC A8).",
      valueName: "duration"
    )
  )
  var keepalive: DurationArgument = .seconds(60)

  @Option(help: ArgumentHelp("How long a keepalive PING may go unanswered.", valueName: "duration"))
  var keepaliveTimeout: DurationArgument = .seconds(20)

  func validate() throws {
    if !keepalive.isZero && keepalive.nanoseconds < 10_000_000_000 {
      throw ValidationError("--keepalive must be 0 (none) or at least 10s, not \(keepalive)")
    }
    if keepaliveTimeout.isZero {
      throw ValidationError("--keepalive-timeout must be more than 0")
    }
    if plaintext {
      // --cacert stays allowed: an OAuth2 token endpoint is HTTPS whatever the server speaks.
      for (flag, value) in [("--cert", cert), ("--key", key)] where value != nil {
        throw ValidationError("\(flag) is a TLS option, but --plaintext turns TLS off")
      }
      if insecure { throw ValidationError("--insecure and --plaintext exclude each other") }
    }
    if (cert == nil) != (key == nil) {
      throw ValidationError("--cert and --key go together: a client certificate needs its key")
    }
    for (flag, file) in [("--cacert", cacert), ("--cert", cert), ("--key", key)] {
      if let file, access(file, R_OK) != 0 {
        throw ValidationError(
          "\(flag) \(file): \(String(cString: strerror(errno)).lowercased())"
        )
      }
    }
  }

  /// Whether any of these options was given (they need --server).
  var anyGiven: Bool {
    plaintext || cacert != nil || cert != nil || key != nil || insecure || authority != nil
  }

  /// The client settings these options describe; `--insecure` prints its warning here.
  func clientConfiguration() -> GRPCClientConfiguration {
    var configuration = GRPCClientConfiguration(
      keepaliveInterval: keepalive.isZero ? nil : .nanoseconds(keepalive.nanoseconds),
      keepaliveTimeout: .nanoseconds(keepaliveTimeout.nanoseconds),
      authority: authority
    )
    if !plaintext {
      if insecure {
        printError(
          "hark: warning: --insecure: the server's certificate is not verified; anyone on the path can read and change the call"
        )
      }
      configuration.tls = GRPCClientTLS(
        caFiles: cacert.map { [$0] } ?? [],
        certificateFile: cert,
        keyFile: key,
        verification: insecure ? .none : .full
      )
    }
    return configuration
  }
}
