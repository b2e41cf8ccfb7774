import HarkGRPCCore
import HarkTesting
import NIOCore
import Testing

@testable import HarkGRPC

/// Hark client ↔ Hark server over real loopback sockets.
@Suite("Hark client and server")
struct EchoTests {
  @Test("one bidirectional stream carries 1,000 messages each way")
  func manyMessages() async throws {
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let received = try await channel.withCall(
      path: EchoService.chatPath,
      request: EchoRequest.self,
      response: EchoResponse.self
    ) { call in
      async let responses: [EchoResponse] = {
        var all: [EchoResponse] = []
        for try await response in call.responses { all.append(response) }
        return all
      }()
      for index in 0..<1000 {
        let payload = ByteBuffer(bytes: (0..<320).map { UInt8(truncatingIfNeeded: $0 &+ index) })
        try await call.send(EchoRequest(payload: payload, text: "m\(index)"))
      }
      await call.finish()
      let all = try await responses
      #expect(await call.status == .ok)
      return all
    }
    #expect(received.count == 1000)
    for (index, response) in received.enumerated() {
      #expect(response.sequence == UInt32(index + 1))
      #expect(response.text == "m\(index)")
      #expect(
        response.payload
          == ByteBuffer(bytes: (0..<320).map { UInt8(truncatingIfNeeded: $0 &+ index) })
      )
    }
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }

  @Test("the server's prefetch follows the frames: most DATA frames had their stream prefetched")
  func prefetchFollowsTheFrames() async throws {
    // The connection finds each read's DATA frames by following the frame headers from the
    // connection preface on; a scanner that missed a read (say, the ones before any stream was
    // open) would read payload bytes as headers and prefetch nothing useful ever after.
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let calls = 10
    let messages = 50
    try await withThrowingTaskGroup(of: Void.self) { group in
      for call in 0..<calls {
        group.addTask {
          try await channel.withCall(
            path: EchoService.chatPath,
            request: EchoRequest.self,
            response: EchoResponse.self
          ) { call_ in
            async let responses: Int = {
              var count = 0
              for try await _ in call_.responses { count += 1 }
              return count
            }()
            for index in 0..<messages {
              let payload = ByteBuffer(repeating: UInt8(truncatingIfNeeded: call), count: 320)
              try await call_.send(EchoRequest(payload: payload, text: "\(call).\(index)"))
            }
            await call_.finish()
            #expect(try await responses == messages)
          }
        }
      }
      try await group.waitForAll()
    }
    await channel.close()
    // The connection tells its count when it closes.
    #expect(await eventually(within: 5) { server.liveObjects.connections == 0 })
    // A call's first frame may share a read with its HEADERS, before the stream is registered.
    let frames = calls * messages
    #expect(
      server.liveObjects.prefetchedFrames >= frames / 2,
      "\(server.liveObjects.prefetchedFrames) of \(frames) DATA frames prefetched"
    )
    #expect(server.liveObjects.prefetchedFrames <= frames + calls)
    await server.shutdown(gracePeriod: .seconds(1))
  }

  @Test(
    "40 calls on one connection through a 700-byte stream window: every message once, in order"
  )
  func manyCallsThroughASmallWindow() async throws {
    // The window splits messages across DATA frames and holds streams between flushes, so the
    // connection's shared outbound scratch is taken in parts and left behind by held streams.
    var configuration = GRPCConnectionConfiguration()
    configuration.initialStreamWindowSize = 700
    let (server, port) = try await EchoService.startServer(configuration: configuration)
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    func payload(_ call: Int, _ index: Int) -> ByteBuffer {
      let size = (call * 131 + index * 37) % 900 + 1
      return ByteBuffer(
        bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index &* 7 &+ call) }
      )
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
      for call in 0..<40 {
        group.addTask {
          let received = try await channel.withCall(
            path: EchoService.chatPath,
            request: EchoRequest.self,
            response: EchoResponse.self
          ) { call_ in
            async let responses: [EchoResponse] = {
              var all: [EchoResponse] = []
              for try await response in call_.responses { all.append(response) }
              return all
            }()
            for index in 0..<60 {
              try await call_.send(
                EchoRequest(payload: payload(call, index), text: "\(call).\(index)")
              )
            }
            await call_.finish()
            let all = try await responses
            #expect(await call_.status == .ok)
            return all
          }
          #expect(received.count == 60)
          for (index, response) in received.enumerated() {
            #expect(response.text == "\(call).\(index)")
            #expect(response.payload == payload(call, index))
          }
        }
      }
      try await group.waitForAll()
    }
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }

  @Test(
    "a request queue that never empties keeps its storage bounded: 8 MiB through a 16 KiB window"
  )
  func backloggedQueueStorage() async throws {
    // The sender tops the queue up each time it drains to its low watermark, so the queue holds
    // bytes from the first message to the last, and its storage must be reused from the front.
    // Before this test, each message went after the last at an ever higher index: 8 MiB of
    // storage here, and at 5,000 backlogged `hark load` sessions, a quarter of a gigabyte.
    var configuration = GRPCConnectionConfiguration()
    configuration.initialStreamWindowSize = 16 << 10
    let (server, port) = try await EchoService.startServer(configuration: configuration)
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let connection = try await channel.connection()
    let sender = BackloggedSender(total: 8 << 20, eventLoop: connection.eventLoop)
    let largest = try await connection.eventLoop.flatSubmit {
      sender.stream = connection.makeStream(path: EchoService.chatPath, handler: sender)
      sender.writabilityChanged(isWritable: true)
      return sender.done.futureResult
    }.get()
    #expect(sender.sent == 8 << 20)
    #expect(sender.status?.code == .ok)
    #expect(sender.received == 8 << 20)
    #expect(sender.neverEmptied)
    #expect(largest < 1 << 20, "the queue's storage grew to \(largest) bytes")
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }
}

extension EchoTests {
  @Test(
    "4 MiB queued in one turn of the loop goes out in bounded writes: every byte once, in order"
  )
  func burstInBoundedWrites() async throws {
    let (server, port) = try await EchoService.startServer()
    let channel = GRPCChannel(host: "127.0.0.1", port: port)
    let connection = try await channel.connection()
    let receiver = BurstReceiver(eventLoop: connection.eventLoop)
    let count = 256
    try await connection.eventLoop.flatSubmit {
      let stream = connection.makeStream(path: EchoService.chatPath, handler: receiver)
      for index in 0..<count {
        let payload = ByteBuffer(repeating: UInt8(truncatingIfNeeded: index), count: 16 << 10)
        _ = stream.send(EchoRequest(payload: payload, text: "\(index)"))
      }
      stream.finish()
      return receiver.done.futureResult
    }.get()
    #expect(receiver.status?.code == .ok)
    #expect(receiver.texts == (0..<count).map { "\($0)" })
    #expect(receiver.intact)
    await channel.close()
    await server.shutdown(gracePeriod: .seconds(1))
  }
}

private final class BurstReceiver: GRPCClientStreamHandler, @unchecked Sendable {
  var texts: [String] = []
  var intact = true
  var status: GRPCStatus?
  let done: EventLoopPromise<Void>

  init(eventLoop: any EventLoop) { done = eventLoop.makePromise() }

  func receive(message: ByteBuffer) {
    guard let response = try? EchoResponse(decoding: message) else {
      intact = false
      return
    }
    let byte = UInt8(truncatingIfNeeded: texts.count)
    if response.payload.readableBytes != 16 << 10
      || !response.payload.readableBytesView.allSatisfy({ $0 == byte })
    {
      intact = false
    }
    texts.append(response.text)
  }

  func finished(status: GRPCStatus, metadata: GRPCMetadata) {
    self.status = status
    done.succeed()
  }
}

/// Sends `total` payload bytes in 1 KiB messages, refilling the queue whenever it drains to its
/// low watermark; reports the largest capacity the queue's storage reached.
private final class BackloggedSender: GRPCClientStreamHandler, @unchecked Sendable {
  let total: Int
  var stream: GRPCClientStream?
  var sent = 0
  var received = 0
  var status: GRPCStatus?
  var largestCapacity = 0
  var neverEmptied = true
  let done: EventLoopPromise<Int>

  init(total: Int, eventLoop: any EventLoop) {
    self.total = total
    self.done = eventLoop.makePromise()
  }

  func writabilityChanged(isWritable: Bool) {
    guard isWritable, let stream else { return }
    if sent > 0 && stream.queuedBytes == 0 { neverEmptied = false }
    while stream.isWritable && sent < total {
      let payload = ByteBuffer(repeating: UInt8(truncatingIfNeeded: sent >> 10), count: 1024)
      _ = stream.send(EchoRequest(payload: payload, text: ""))
      sent += payload.readableBytes
    }
    largestCapacity = max(largestCapacity, stream.outbound.capacity)
    if sent == total { stream.finish() }
  }

  func receive(message: ByteBuffer) {
    received += (try? EchoResponse(decoding: message))?.payload.readableBytes ?? 0
  }

  func finished(status: GRPCStatus, metadata: GRPCMetadata) {
    self.status = status
    done.succeed(largestCapacity)
  }
}
