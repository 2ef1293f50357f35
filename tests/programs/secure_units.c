/*
 * secure_units.c — the unit tests whose assertions hold in any mode, run again in secure mode
 * (STRATA_OPTIONS=secure=1 on the release build): alignment, semantics, churn, threads, fork,
 * out-of-memory, C++, allocation before main. Each of their results is passed on as one of this
 * program's, named secure/TEST.
 *
 * Left out, as they test what secure mode changes on purpose: brk (no brk heap), large (a fixed
 * mmap threshold), stats (quarantined blocks are not yet freed), thread_exit (nor are an exiting
 * thread's), misuse (secure mode's own messages; the security corpus checks those).
 */
#include <sys/wait.h>

#include "harness.h"

static const char *root = STRATA_ROOT;

static const char *units[] = {"align", "semantics", "churn", "compat", "cxx",     "early",
                              "orphans", "oom",       "threads", "fork", "hugepages"};

/* Run build/tests/rel/NAME in secure mode, echoing its ok / not ok lines as ours. */
static void run_unit(const char *name) {
    char path[4400];
    snprintf(path, sizeof path, "%s/build/tests/rel/%s", root, name);
    int pfd[2];
    if (pipe(pfd) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        setenv("STRATA_OPTIONS", "secure=1", 1);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *in = fdopen(pfd[0], "r");
    char line[8192];
    int results = 0;
    while (fgets(line, sizeof line, in)) {
        if (!strncmp(line, "ok ", 3)) printf("ok secure/%s: %s", name, line + 3), results++;
        else if (!strncmp(line, "not ok ", 7)) printf("not ok secure/%s: %s", name, line + 7), results++;
        else if (!strncmp(line, "skip ", 5)) printf("skip secure/%s: %s", name, line + 5), results++;
        fflush(stdout);
    }
    fclose(in);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || results == 0)
        printf("not ok secure/%s: exit %d signal %d after %d results\n", name,
               WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0, results);
}

int main(void) {
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) run_unit(units[i]);
    return 0;
}
