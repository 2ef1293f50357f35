/*
 * entry.c — the libFuzzer entry point: one fuzz target per variant, chosen by FZ_THREADED
 * (build/fuzz/fuzz-single, build/fuzz/fuzz-threads).
 */
#include "fuzz.h"

#ifndef FZ_THREADED
#define FZ_THREADED 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, FZ_THREADED);
    return 0;
}
