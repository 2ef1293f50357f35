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
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "strata.h"

_Atomic int sx_init_state;
static __thread bool tls_initialising __attribute__((tls_model("initial-exec")));

static int report_fd = 2;

void sx_process_init_slow(void) {
    if (tls_initialising || !sx_once_claim(&sx_init_state)) return;
    tls_initialising = true;
    sx_os_init();
    sx_vg_init();
    sx_secret_init();
    sx_options_init();
    /* programs may close stderr before exit (sort does): keep a copy for the exit report */
    if (sx_opt.stats) report_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
    if (sx_opt.secure) sx_secure_init();
    else if (sx_opt.sampled_guard) sx_sampled_init();
    sx_profile_init();
    sx_thresholds_init();
    sx_limit_init();
    sx_thread_key_init();
    sx_fork_init();
    sx_once_done(&sx_init_state);
    tls_initialising = false;
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
    sx_profile_dump();
    if (sx_opt.stats) sx_stats_print(report_fd >= 0 ? report_fd : 2, "at exit");
    else if (sx_opt.verbose && sx_announced()) sx_stats_print(2, NULL);
}
