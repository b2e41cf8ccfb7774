import Foundation
import FuzzSupport
@_spi(Testing) import HarkGRPC
import HarkGRPCCore
import HarkTesting
import Logging
import NIOCore
import NIOEmbedded

/// Runs fuzzer inputs as HTTP/2 clients (``ClientProgram``) of one ``GRPCServer``, each on a
/// connection of its own: an `EmbeddedChannel` the server serves with `serve(channel:)`, so the
/// real connection handler and nghttp2 session see the bytes, in the chunks the input chose, with
/// the loop's virtual time advanced between them.
///
/// Checks, each a trap that libFuzzer reports as a crash:
/// - nothing the client sends traps the server;
/// - the server's bytes are whole HTTP/2 frames: SETTINGS first, streams only on odd ids (the
///   client's), no frame longer than the client allows, and after a GOAWAY with an error code
///   the connection closes;
/// - once the channel is closed, no connection handler or stream of the server is alive, and
///   the server has forgotten the connection.
///
/// The server serves the Echo service only. Recognize needs an actor whose executor is the
/// connection's event loop (`RecognizerSession`), and an `EmbeddedEventLoop` cannot be one (its
/// `executor` is a fatal error); a request to Recognize is answered UNIMPLEMENTED here.
///
/// Environment: `HARK_FUZZ_TRACE=1` prints each step and each frame the server sent.
final class HTTP2Fuzzer {
  /// Served by ``LoopChat``, the whole Echo service; ``EchoService/loopMethod`` serves it here.
  static let loopChatPath = "/hark.testing.v1.Echo/LoopChat"

  /// Short limits, so that a few steps of virtual time reach every timer, and small ones, so
  /// that a few frames reach every limit.
  static let configuration = GRPCServer.Configuration(
    host: "127.0.0.1",
    port: 0,
    connection: GRPCConnectionConfiguration(
      maxConcurrentStreams: 4,
      maxReceiveMessageSize: 4096,
      initialStreamWindowSize: 16 << 10,
      connectionWindowSize: 64 << 10,
      maxHeaderListSize: 1024,
      maxQueuedBytesPerStream: 16 << 10
    ),
    pingPolicy: ServerPingPolicy(permitKeepaliveTime: .milliseconds(500), maxPingStrikes: 2),
    connectionLimits: ServerConnectionPolicy.Limits(
      handshakeTimeout: .milliseconds(200),
      idleTimeout: .milliseconds(400),
      resetBurst: 20,
      resetsPerSecond: 10,
      maxOversizedHeaderLists: 2
    ),
    writeStallTimeout: .milliseconds(300),
    logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
  )

  private let server: GRPCServer
  private let trace: Bool
  /// The server's connections refer to it weakly, which gives it a side table that lives as long
  /// as it does. The object's header holds that table's address only in an encoded form, which
  /// LeakSanitizer cannot follow; this reference holds it plainly, so that the table is not
  /// reported as leaked by the first input.
  private weak var serverSideTable: GRPCServer?

  init() {
    // The server is never started: it needs no listener, and its own promise lives on a loop
    // of this thread.
    server = GRPCServer(
      configuration: Self.configuration,
      methods: [
        LoopChat.method,
        GRPCServer.Method(path: Self.loopChatPath, makeHandler: EchoService.loopMethod.makeHandler),
      ],
      group: EmbeddedEventLoop()
    )
    serverSideTable = server
    trace = ProcessInfo.processInfo.environment["HARK_FUZZ_TRACE"] == "1"
  }

  /// Runs one input (libFuzzer's `LLVMFuzzerTestOneInput`).
  func run(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var input = FuzzInput(UnsafeBufferPointer(start: data, count: data == nil ? 0 : count))
    let program = ClientProgram(decoding: &input)
    let output = serve(program)
    check(
      server.liveObjects.connections == 0,
      "\(server.liveObjects.connections) connection handlers alive after the channel closed"
    )
    check(
      server.liveObjects.streams == 0,
      "\(server.liveObjects.streams) streams alive after the channel closed"
    )
    check(server.connectionCount == 0, "the server still counts the closed connection")
    checkFrames(output, program: program)
    return 0
  }

  /// The server's output, and whether it closed the connection itself, before the client did.
  struct Output {
    var bytes: [UInt8] = []
    var closedByServer = false
  }

  /// Runs the program on a new connection, closes it and lets the loop tear it down.
  private func serve(_ program: ClientProgram) -> Output {
    let channel = EmbeddedChannel()
    let loop = channel.embeddedEventLoop
    var output = Output()
    traced = 0
    do {
      try server.serve(channel: channel)
      channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 50_051), promise: nil)
    } catch {
      fatalError("cannot serve an EmbeddedChannel: \(error)")
    }
    loop.run()
    var pending: [UInt8] = []

    func collect() {
      while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        output.bytes += buffer.readableBytesView
      }
    }
    func deliver(chunkSize: Int) {
      defer { pending = [] }
      var offset = 0
      while offset < pending.count, channel.isActive {
        let end = min(pending.count, offset + chunkSize)
        do {
          try channel.writeInbound(ByteBuffer(bytes: pending[offset..<end]))
        } catch {
          fatalError("the pipeline passed on an error: \(error)")
        }
        loop.run()
        collect()
        offset = end
      }
    }

    collect()
    for step in program.steps {
      guard channel.isActive else { break }
      switch step {
      case .write(let bytes, let description):
        if trace { traceLine("client: \(description) (\(bytes.count) bytes)") }
        pending += bytes
      case .deliver(let chunkSize):
        // Reads of at least 1/256 of what is pending, so that a flood is not a million reads.
        let size = max(chunkSize, pending.count / 256)
        if trace { traceLine("deliver \(pending.count) bytes in reads of \(size)") }
        deliver(chunkSize: size)
      case .advance(let amount):
        deliver(chunkSize: max(pending.count, 1))
        if trace { traceLine("advance \(amount.nanoseconds / 1_000_000) ms") }
        loop.advanceTime(by: amount)
        collect()
      case .writable(let isWritable):
        if trace { traceLine("client socket writable: \(isWritable)") }
        deliver(chunkSize: max(pending.count, 1))
        guard channel.isWritable != isWritable else { continue }
        channel.isWritable = isWritable
        channel.pipeline.fireChannelWritabilityChanged()
        loop.run()
        collect()
      case .drain:
        if trace { traceLine("server drains its connections") }
        deliver(chunkSize: max(pending.count, 1))
        server.drainConnections()
        loop.run()
        collect()
      }
      if trace { traceOutput(output.bytes) }
    }
    if channel.isActive { deliver(chunkSize: max(pending.count, 1)) }
    output.closedByServer = !channel.isActive
    if trace { traceLine("closed by the server: \(output.closedByServer)") }
    channel.close(promise: nil)
    loop.run()
    collect()
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return output
  }

  private var traced = 0

  private func traceOutput(_ bytes: [UInt8]) {
    let frames = Self.parse(bytes).frames
    for frame in frames.dropFirst(traced) {
      traceLine("  server: \(frame)")
    }
    traced = frames.count
  }

  // MARK: The server's frames

  struct Frame: CustomStringConvertible {
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32
    var payload: ArraySlice<UInt8>

    var errorCode: UInt32? {
      let offset =
        switch type {
        case 7: 4
        case 3: 0
        default: -1
        }
      guard offset >= 0, payload.count >= offset + 4 else { return nil }
      return payload.dropFirst(offset).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    var description: String {
      let names = [
        "DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY",
        "WINDOW_UPDATE", "CONTINUATION",
      ]
      let name = type < names.count ? names[Int(type)] : "type \(type)"
      var text = "\(name) flags \(flags) stream \(streamID) length \(payload.count)"
      if let errorCode { text += " code \(errorCode)" }
      if type == 7, payload.count > 8 {
        text += " \"\(String(decoding: payload.dropFirst(8), as: UTF8.self))\""
      }
      return text
    }
  }

  static func parse(_ bytes: [UInt8]) -> (frames: [Frame], rest: Int) {
    var frames: [Frame] = []
    var offset = 0
    while bytes.count - offset >= 9 {
      let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
      guard bytes.count - offset - 9 >= length else { break }
      let streamID =
        bytes[offset + 5..<offset + 9].reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
      frames.append(
        Frame(
          type: bytes[offset + 3],
          flags: bytes[offset + 4],
          streamID: streamID,
          payload: bytes[offset + 9..<offset + 9 + length]
        )
      )
      offset += 9 + length
    }
    return (frames, bytes.count - offset)
  }

  private func checkFrames(_ output: Output, program: ClientProgram) {
    let (frames, rest) = Self.parse(output.bytes)
    check(rest == 0, "the server's output ends with \(rest) bytes that are no whole frame")
    guard let first = frames.first else { return }
    check(
      first.type == 4 && first.flags == 0 && first.streamID == 0,
      "the server's first frame is not its SETTINGS: \(first)"
    )
    for frame in frames {
      check(
        frame.payload.count <= program.largestFrameSizeAnnounced,
        "a frame longer than the client allows: \(frame)"
      )
      switch frame.type {
      case 0, 1, 3, 9:
        check(
          frame.streamID & 1 == 1,
          "a stream frame on a stream the client did not open: \(frame)"
        )
      case 4, 6, 7:
        check(frame.streamID == 0, "a connection frame on a stream: \(frame)")
      case 8:
        break
      default:
        check(false, "a frame a server does not send: \(frame)")
      }
    }
    if let goAway = frames.first(where: { $0.type == 7 && $0.errorCode != 0 }) {
      check(
        output.closedByServer,
        "the server sent \(goAway) but kept the connection open"
      )
    }
  }
}
