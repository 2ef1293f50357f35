/*
 * fault.c — what a SIGSEGV's context says about the fault: whether it was a read or a write, and
 * the instruction that made it. For the handlers of strata guard (diag/guard.c) and of the sampled
 * guard (region/sampled.c).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <ucontext.h>

#include "support.h"

const char *sx_fault_access(const void *ctx) {
#if defined(__x86_64__)
    return ((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_ERR] & 2 ? "write" : "read";
#else
    (void)ctx;
    return "access";
#endif
}

uintptr_t sx_fault_pc(const void *ctx) {
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
#else
    (void)ctx;
    return 0;
#endif
}
