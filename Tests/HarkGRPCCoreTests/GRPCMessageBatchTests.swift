import HarkGRPCCore
import NIOCore
import Testing

@Suite("GRPCMessageBatch")
struct GRPCMessageBatchTests {
  @Test("holds none, one or many messages in order", arguments: [0, 1, 2, 5])
  func order(count: Int) {
    let messages = (0..<count).map { ByteBuffer(string: "message \($0)") }
    var batch = GRPCMessageBatch()
    for message in messages { batch.append(message) }
    #expect(batch.count == count)
    #expect(batch.isEmpty == (count == 0))
    #expect(Array(batch) == messages)
    #expect(batch == GRPCMessageBatch(messages))
    for index in messages.indices { #expect(batch[index] == messages[index]) }
  }
}
