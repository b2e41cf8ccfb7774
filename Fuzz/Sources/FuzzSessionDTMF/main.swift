import CFuzzDriver
import Glibc
import HarkRecognizer
import SessionFuzzing

/// Recognize sessions on the dtmf engine: programs of requests through the server's state machine
/// (see SessionFuzzer), with up to 6 s of 8 kHz L16 audio each.
nonisolated(unsafe) let fuzzer = SessionFuzzer(engine: DTMFEngine(), audioByteLimit: 96_000)

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentValues) { data, count in fuzzer.run(data, count) })
