// libFuzzer's driver entry point (compiler-rt, LLVM 11 and later). SwiftPM gives every
// executable its own main, so the fuzz targets call the driver from it instead of letting
// libFuzzer supply main.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*test_one_input)(const uint8_t *data, size_t size));
