/*
 * secret.c — the process's secrets: the free key's (a freed block's second word holds secret ^
 * its address: the double-free check) and the free-list links' key (libstrata-secure.so stores
 * links xor the block and this). Random per process, from getrandom, or from the kernel's
 * AT_RANDOM bytes and the clock when that fails.
 */
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

uintptr_t sx_secret;
uintptr_t sx_list_key;

bool sx_getrandom(void *buf, size_t n) {
    int saved = errno;
    long r = syscall(SYS_getrandom, buf, n, 1 /* GRND_NONBLOCK */);
    errno = saved;
    return r == (long)n;
}

void sx_secret_init(void) {
    uint64_t r[2] = {0, 0};
    if (!sx_getrandom(r, sizeof r)) {
        const uint64_t *at = (const uint64_t *)getauxval(AT_RANDOM);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r[0] = (at ? at[0] : 0) ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&r;
        r[1] = (at ? at[1] : 0) ^ ((uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull) ^ (uint64_t)getpid();
    }
    /* Top bit set: secret ^ address is never 0 and never looks like a pointer. */
    sx_secret = (uintptr_t)(r[0] | ((uint64_t)1 << 63));
    /* Set before any block is freed (every free list is written with it) and never changed:
     * a forked child keeps its parent's lists, and so its key. */
    sx_list_key = (uintptr_t)r[1];
}
