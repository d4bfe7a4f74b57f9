// libFuzzer's driver entry point (compiler-rt lib/fuzzer/FuzzerInterface.h), declared for Swift.
// Declarations only: the definitions come from the runtime `-sanitize=fuzzer` links in.
#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer with the command line `argc`/`argv` against `callback`, as its own `main` does.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
