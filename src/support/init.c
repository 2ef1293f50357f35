/*
 * init.c — process start-up and exit.
 *
 * strata has no constructor that must run first: malloc can be called by the dynamic loader, by
 * other libraries' constructors, by dlsym, before main. All state is usable zero-initialised and
 * the first slow-path call sets up the rest here, in an order that needs no allocation until the
 * core is ready: page size, the free-key secret, options, thresholds. Only then are the pthread
 * key (thread exit) and the fork handlers registered, since either may allocate, which by then
 * works. Another thread arriving meanwhile waits; the initialising thread re-entering goes on.
 */
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"
#include "strata.h"

_Atomic int sx_init_state;
uintptr_t sx_secret;
uintptr_t sx_list_key;
static __thread bool tls_initialising __attribute__((tls_model("initial-exec")));

static void secret_init(void) {
    uint64_t r[2] = {0, 0};
    if (!sx_os_getrandom(r, sizeof r)) {
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

static int report_fd = 2;

void sx_process_init_slow(void) {
    if (tls_initialising) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&sx_init_state, &expected, 1)) {
        while (atomic_load_explicit(&sx_init_state, memory_order_acquire) != 2) sched_yield();
        return;
    }
    tls_initialising = true;
    sx_os_init();
    secret_init();
    sx_options_init();
    /* programs may close stderr before exit (sort does): keep a copy for the exit report */
    if (sx_opt.stats) report_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
    if (sx_opt.secure) sx_secure_init();
    sx_thresholds_init();
    sx_limit_init();
    sx_thread_key_init();
    sx_fork_init();
    atomic_store_explicit(&sx_init_state, 2, memory_order_release);
    tls_initialising = false;
}

/* verbose=1: say so when strata first serves the process (its first thread heap is made). */
static _Atomic bool announced;

void sx_announce(void) {
    if (sx_opt.verbose && !atomic_exchange(&announced, true))
        sx_message("version %s serving pid %d (brk %s, mmap threshold %zu)", STRATA_VERSION_STRING,
                   (int)getpid(), sx_opt.brk ? "on" : "off", sx_opt.mmap_threshold);
}

/* A program that never allocates still gets what STRATA_OPTIONS asks for (verbose lines, help).
 * Without the variable nothing happens here: start-up stays lazy and free. */
__attribute__((constructor)) static void sx_start_if_configured(void) {
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, "STRATA_OPTIONS=", 15)) {
            sx_process_init();
            return;
        }
}

__attribute__((destructor)) static void sx_exit_report(void) {
    if (sx_opt.stats) sx_stats_print(report_fd >= 0 ? report_fd : 2, "at exit");
    else if (sx_opt.verbose && atomic_load(&announced)) sx_stats_print(2, NULL);
}
