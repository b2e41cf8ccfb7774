import HarkGRPC
import HarkGRPCCore
import HarkTesting
import NIOCore

/// Echo's Chat with the behaviours of ``EchoService/method`` (delays, statuses, server cancel,
/// response sizes and counts, metadata echoed as trailers), served on the event loop.
///
/// `EchoService.method` runs each call in a task that hops to the connection's event loop, and
/// an `EmbeddedEventLoop` may be used from its own thread only. Like that method, this one takes
/// the requests in order, waits out each delay before the next request, and sends while the
/// stream is writable; a request whose text is "flood" sends without waiting, which the stream's
/// queue limit must stop. "hold" and "release" hold and release flow control of the requests,
/// and "headers" sends the response headers at once.
final class LoopChat: GRPCServerStreamHandler {
  private let stream: GRPCServerStream
  private var sequence: UInt32 = 0
  private var requests: [EchoRequest] = []
  /// The request whose responses are being sent, and how many are left.
  private var answering: EchoRequest?
  private var responsesLeft = 0
  /// The delay of the first request, while it runs.
  private var delay: Scheduled<Void>?
  private var delayed = false
  private var requestsEnded = false
  private var ended = false

  init(stream: GRPCServerStream) {
    self.stream = stream
  }

  static var method: GRPCServer.Method {
    GRPCServer.Method(path: EchoService.chatPath) { stream in LoopChat(stream: stream) }
  }

  func receive(message: ByteBuffer) {
    guard !ended else { return }
    guard let request = try? EchoRequest(decoding: message) else {
      end(.internalError, "cannot decode a request")
      return
    }
    requests.append(request)
    proceed()
  }

  func receiveEndOfRequests() {
    requestsEnded = true
    proceed()
  }

  func cancelled(_ status: GRPCStatus) {
    ended = true
    delay?.cancel()
    delay = nil
    requests = []
  }

  func writabilityChanged(isWritable: Bool) {
    if isWritable { proceed() }
  }

  private func proceed() {
    while !ended {
      if answering != nil {
        guard sendResponses() else { return }
        continue
      }
      guard let request = requests.first else {
        if requestsEnded { finish() }
        return
      }
      if request.delayMs > 0 && !delayed {
        guard delay == nil else { return }
        delay = stream.eventLoop.assumeIsolated().scheduleTask(
          in: .milliseconds(Int64(request.delayMs))
        ) { [weak self] in
          guard let self else { return }
          self.delay = nil
          self.delayed = true
          self.proceed()
        }
        return
      }
      delayed = false
      requests.removeFirst()
      if let status = request.status {
        end(GRPCStatus.Code(rawValue: Int(status.code)) ?? .unknown, status.message)
        return
      }
      if request.cancel {
        ended = true
        stream.cancel()
        return
      }
      switch request.text {
      case "hold": stream.holdConsumption(true)
      case "release": stream.holdConsumption(false)
      case "headers":
        var metadata = GRPCMetadata()
        try? metadata.add("x-server", "hark")
        stream.sendHeaders(metadata: metadata)
      default: break
      }
      answering = request
      responsesLeft = max(1, Int(request.responseCount))
    }
  }

  /// Sends the current request's responses while the stream takes them; false when it must wait.
  private func sendResponses() -> Bool {
    guard let request = answering else { return true }
    while responsesLeft > 0 {
      guard stream.isWritable || request.text == "flood" else { return false }
      sequence += 1
      responsesLeft -= 1
      let payload =
        request.responseBytes > 0
        ? ByteBuffer(repeating: 0xAB, count: Int(request.responseBytes)) : request.payload
      guard stream.send(EchoResponse(payload: payload, text: request.text, sequence: sequence))
      else {
        ended = true
        return false
      }
    }
    answering = nil
    return true
  }

  private func finish() {
    ended = true
    var trailers = GRPCMetadata()
    for entry in stream.request.metadata where entry.name.hasPrefix("x-echo-") {
      let name = "echo-" + entry.name.dropFirst("x-echo-".count)
      switch entry.value {
      case .string(let value): try? trailers.add(name, value)
      case .binary(let bytes): try? trailers.add(name, binary: bytes)
      }
    }
    stream.finish(status: .ok, metadata: trailers)
  }

  private func end(_ code: GRPCStatus.Code, _ message: String) {
    ended = true
    delay?.cancel()
    delay = nil
    stream.finish(status: GRPCStatus(code, message))
  }
}
