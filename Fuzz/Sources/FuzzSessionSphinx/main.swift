import CFuzzDriver
import Glibc
import HarkRecognizer
import HarkSphinx
import SessionFuzzing

/// Recognize sessions on the sphinx engine (see SessionFuzzer), with up to 2 s of 16 kHz L16
/// audio each (4 s at 8 kHz). The model loads once; every input reuses the engine.
let engine: SphinxEngine
do {
  engine = try SphinxEngine()
} catch {
  print("FuzzSessionSphinx: \(error) (tools/bootstrap installs pocketsphinx-en-us)")
  exit(1)
}
nonisolated(unsafe) let fuzzer = SessionFuzzer(engine: engine, audioByteLimit: 64_000)

var arguments = CommandLine.argc
var argumentValues: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentValues) { data, count in fuzzer.run(data, count) })
