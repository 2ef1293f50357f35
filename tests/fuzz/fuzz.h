/*
 * fuzz.h — the fuzzing harness of strata's allocation API (tests/fuzz/README.md).
 *
 * fz_run interprets an input as a program of allocation calls over slots of live blocks, checks
 * each result against a reference model and aborts with a message on the first difference. It
 * calls only the strata_ functions (libstrata-api), so the process's own malloc stays glibc's (or
 * ASan's) and the fuzzer's bookkeeping never sits in strata's memory.
 */
#ifndef STRATA_FUZZ_H
#define STRATA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one program. threaded = 0: one thread, 64 slots. threaded = 1: the first byte picks 2 to 4
 * threads, each runs a slice of the rest, and they hand blocks to each other through shared boxes
 * so that frees and reallocs cross threads. Returns only if every check passed. */
void fz_run(const uint8_t *data, size_t size, int threaded);

/* Called with the failure message just before fz_run aborts (the replay program names the file). */
extern void (*fz_on_failure)(const char *message);

#endif
