import CFuzzDriver
import Glibc
import HarkGRPCCore
import HarkProto
import NIOCore

/// Feeds the input to a deframer in chunks whose sizes come from the first bytes, decodes every
/// message as a RecognitionRequest, and checks that no byte is lost or invented.
func fuzzDeframer(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  guard let data else { return 0 }
  guard count > 2 else { return 0 }
  let chunkSeed = Int(data[0]) | Int(data[1]) << 8
  var input = ByteBuffer(bytes: UnsafeBufferPointer(start: data + 2, count: count - 2))
  var deframer = GRPCMessageDeframer(maxMessageSize: 2048, compressionNegotiated: data[0] & 1 == 1)
  var step = 0
  var consumed = 0
  while input.readableBytes > 0 {
    step += 1
    let size = min(input.readableBytes, 1 + (chunkSeed &* step) % 97)
    deframer.append(input.readSlice(length: size)!)
    do {
      while let message = try deframer.next() {
        consumed += GRPCMessageFramer.prefixLength + message.readableBytes
        precondition(message.readableBytes <= 2048)
        _ = try? RecognitionRequest(serializedBytes: message)
      }
    } catch {
      return 0
    }
  }
  // Whatever was not returned as a message is still held.
  precondition(
    consumed + deframer.bufferedBytes == count - 2,
    "the deframer lost or invented bytes"
  )
  return 0
}

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentValues) { data, count in fuzzDeframer(data, count) })
