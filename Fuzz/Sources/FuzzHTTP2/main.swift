import CFuzzDriver
import Glibc

/// The server transport on HTTP/2 frame programs (see HTTP2Fuzzer and ClientProgram).
nonisolated(unsafe) let fuzzer = HTTP2Fuzzer()

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentValues) { data, count in fuzzer.run(data, count) })
