import CFuzzDriver
import Glibc
import HarkProto
import NIOCore

/// Decodes the input as a RecognitionRequest. Whatever it decodes to must re-encode to bytes
/// that decode and re-encode to the same bytes: decoding is total and encoding is a fixed point.
func fuzzRequest(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  guard let data else { return 0 }
  let input = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: count))
  guard let message = try? RecognitionRequest(serializedBytes: input) else { return 0 }
  let encoded = message.serializedBytes()
  precondition(encoded.readableBytes == message.encodedSize)
  guard let again = try? RecognitionRequest(serializedBytes: encoded) else {
    fatalError("re-encoded request does not decode")
  }
  precondition(again.serializedBytes() == encoded, "encoding is not a fixed point")
  return 0
}

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentValues) { data, count in fuzzRequest(data, count) })
