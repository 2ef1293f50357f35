/*
 * fault.c — what a SIGSEGV's context says about the fault: whether it was a read or a write, and
 * the instruction that made it. For the handlers of strata guard (diag/guard.c) and of the sampled
 * guard (region/sampled.c).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "support.h"

#if defined(__aarch64__)
/* arm64: the fault's syndrome register is one of the records after the registers (an
 * _aarch64_ctx header each: magic, size; a zero magic ends them). Its WnR bit says write. */
static uint64_t arm64_esr(const ucontext_t *uc) {
    const uint8_t *p = (const uint8_t *)uc->uc_mcontext.__reserved;
    const uint8_t *end = p + sizeof uc->uc_mcontext.__reserved;
    while (p + 8 <= end) {
        uint32_t magic, size;
        memcpy(&magic, p, 4), memcpy(&size, p + 4, 4);
        if (magic == 0 || size < 8 || size > (size_t)(end - p)) break;
        if (magic == 0x45535201u && size >= 16) { /* ESR_MAGIC: struct esr_context */
            uint64_t esr;
            memcpy(&esr, p + 8, 8);
            return esr;
        }
        p += size;
    }
    return 0;
}
#endif

const char *sx_fault_access(const void *ctx) {
#if defined(__x86_64__)
    return ((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_ERR] & 2 ? "write" : "read";
#elif defined(__aarch64__)
    uint64_t esr = arm64_esr((const ucontext_t *)ctx);
    unsigned ec = (unsigned)(esr >> 26) & 0x3f; /* exception class: a data abort is 0x24 or 0x25 */
    if (ec != 0x24 && ec != 0x25) return "access";
    return esr & (1u << 6) ? "write" : "read"; /* its ISS bit 6, WnR */
#else
    (void)ctx;
    return "access";
#endif
}

uintptr_t sx_fault_pc(const void *ctx) {
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)ctx)->uc_mcontext.pc;
#else
    (void)ctx;
    return 0;
#endif
}
