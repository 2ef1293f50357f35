/*
 * corpus.h — the security corpus as a table, and how one case is run and judged.
 *
 * Shared by tests/security/runner.c (make test-security: every case under every allocator) and
 * tests/programs/security.c (make test: the cases strata must keep catching).
 *
 * A case is CATEGORY/VARIANT/SIZE, run as `build/security/PROGRAM VARIANT SIZE`. Verdicts:
 *   caught   killed by SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGTRAP or SIGFPE (where the category
 *            counts signals), or "CAUGHT: ..." and exit 3 (the program saw the allocator refuse),
 *            or any other non-zero exit without the marker (an allocator that exits on an error)
 *   missed   printed "NOT CAUGHT: ..." (the misuse went unnoticed), or exited 0 without it; in
 *            categories where nothing was misused (reuse, impossible request) also any crash
 *   reported the allocator printed an error of its own about the misuse (a line of
 *            sec_report_prefixes on stderr) and went on, and the program then printed "NOT
 *            CAUGHT": not caught (the process did not stop; mimalloc's secure build drops a
 *            double free it detects and goes on), counted apart so that the table can say so
 *   hung     still running after the time limit (counts as not caught)
 *   broken   the case could not be set up ("SETUP: ..." and exit 2, or it could not be started)
 */
#ifndef STRATA_SECURITY_CORPUS_H
#define STRATA_SECURITY_CORPUS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC_SIZES {"small", "medium", "large"}
#define SEC_MAX_VARIANTS 9

typedef struct {
    const char *name;        /* the row of the table */
    const char *program;     /* build/security/PROGRAM */
    const char *variants[SEC_MAX_VARIANTS + 1]; /* NULL-terminated */
    const char *sizes[3];    /* small medium large, or the category's own third words */
    bool signal_catches;     /* a fault or abort counts as caught */
} sec_category;

static const sec_category sec_categories[] = {
    {"double free", "double_free", {"immediate", "delayed", "interleaved", "reused"}, SEC_SIZES, true},
    {"invalid free", "invalid_free",
     {"stack", "global", "interior", "unaligned", "before", "far"}, SEC_SIZES, true},
    {"overflow", "overflow",
     {"over-1-direct", "over-1-memcpy", "over-32-direct", "over-32-memcpy", "over-1m-direct",
      "over-1m-memcpy", "over-1-memcpy-kept", "over-32-memcpy-kept"}, SEC_SIZES, true},
    {"underflow", "overflow",
     {"under-1-direct", "under-1-memcpy", "under-32-direct", "under-32-memcpy", "under-1m-direct",
      "under-1m-memcpy", "under-1-memcpy-kept", "under-32-memcpy-kept"}, SEC_SIZES, true},
    {"zero-size access", "zero_size", {"read", "write"}, {"malloc", "calloc", "memalign"}, true},
    {"read after free", "use_after_free", {"read", "read-reuse"}, SEC_SIZES, true},
    {"write after free", "use_after_free", {"write", "write-reuse"}, SEC_SIZES, true},
    {"immediate reuse", "reuse", {"immediate"}, SEC_SIZES, false},
    {"impossible request", "large_request", {"max", "half", "calloc", "realloc"}, SEC_SIZES, false},
    {"exec from heap", "exec_heap", {"ret"}, SEC_SIZES, true},
    {"delete mismatch", "delete_mismatch", {"array-as-scalar", "scalar-as-array", "trivial"},
     SEC_SIZES, true},
};
enum { SEC_NCATEGORIES = sizeof sec_categories / sizeof sec_categories[0] };

typedef enum { SEC_CAUGHT, SEC_MISSED, SEC_HUNG, SEC_BROKEN, SEC_REPORTED } sec_verdict;
static const char *const sec_verdict_names[] = {"caught", "missed", "hung", "broken", "reported"};

/* How the allocators under test begin an error message on stderr (the case programs write
 * nothing there). Only one that goes on after its message makes a difference: the others abort,
 * which is caught whatever they print. strata and glibc's own messages are not listed: both
 * abort after them. */
static const char *const sec_report_prefixes[] = {
    "mimalloc: error:",      /* mimalloc (with MIMALLOC_SHOW_ERRORS=1; it goes on after most) */
    "fatal allocator error", /* hardened_malloc (aborts) */
    "Scudo ERROR",           /* scudo, either one (aborts, or the older one exits 1) */
    "<jemalloc>:",           /* jemalloc */
    NULL,
};

typedef struct {
    sec_verdict verdict;
    char how[200]; /* "SIGABRT: first line of stderr", "NOT CAUGHT: ...", ... */
} sec_outcome;

/* The environment of a column: LD_PRELOAD (NULL: none), STRATA_OPTIONS (NULL: unset) and one more
 * variable as "NAME=VALUE" (NULL: none). */
typedef struct {
    const char *preload;
    const char *options;
    const char *extra;
} sec_env;

/* strata's secure mode: lib/libstrata-secure.so where it has been built, else secure=1 on
 * lib/libstrata.so. root: the repository (absolute); buf holds the library path. */
__attribute__((unused)) static sec_env sec_secure_env(const char *root, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/lib/libstrata-secure.so", root);
    if (access(buf, R_OK) == 0) return (sec_env){buf, NULL, NULL};
    snprintf(buf, cap, "%s/lib/libstrata.so", root);
    return (sec_env){buf, "secure=1", NULL};
}

static const char *sec_signal_name(int sig) {
    switch (sig) {
    case SIGABRT: return "SIGABRT";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    default: return "another signal";
    }
}

static void sec_first_line(char *dst, size_t cap, const char *prefix, const char *text) {
    size_t len = strcspn(text, "\n");
    snprintf(dst, cap, "%s%.*s", prefix, (int)(len > 150 ? 150 : len), text);
}

/* The first line of err that begins with one of sec_report_prefixes, or NULL. */
static const char *sec_report_line(const char *err) {
    for (const char *line = err; *line; line += strcspn(line, "\n"), line += *line == '\n')
        for (const char *const *p = sec_report_prefixes; *p; p++)
            if (!strncmp(line, *p, strlen(*p))) return line;
    return NULL;
}

/* Unsets every variable of the environment whose name begins with prefix. */
static void sec_unset_prefixed(const char *prefix) {
    extern char **environ;
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, prefix, strlen(prefix)) != 0) continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
            unsetenv(name);
            again = true;
            break;
        }
    }
}

static void sec_collect(int ofd, int efd, char *out, size_t ocap, char *err, size_t ecap) {
    size_t olen = 0, elen = 0;
    struct pollfd p[2] = {{ofd, POLLIN, 0}, {efd, POLLIN, 0}};
    int open_fds = 2;
    while (open_fds) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char tmp[4096];
            ssize_t n = read(p[i].fd, tmp, sizeof tmp);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_fds--;
                continue;
            }
            char *buf = i ? err : out;
            size_t *len = i ? &elen : &olen, cap = i ? ecap : ocap;
            size_t take = (size_t)n < cap - 1 - *len ? (size_t)n : cap - 1 - *len;
            memcpy(buf + *len, tmp, take);
            *len += take;
        }
    }
    out[olen] = '\0';
    err[elen] = '\0';
}

/* Run one case and judge it. bindir: where the case programs are; timeout in seconds. */
__attribute__((unused)) static sec_outcome sec_run(const char *bindir, const sec_category *c,
                                                   const char *variant, const char *size,
                                                   sec_env env, unsigned timeout) {
    sec_outcome r = {SEC_BROKEN, ""};
    char prog[PATH_MAX + 64];
    snprintf(prog, sizeof prog, "%.*s/%s", PATH_MAX, bindir, c->program);
    if (access(prog, X_OK) != 0) {
        snprintf(r.how, sizeof r.how, "cannot run %.180s", prog);
        return r;
    }
    int ofd[2], efd[2];
    if (pipe(ofd) != 0 || pipe(efd) != 0) {
        snprintf(r.how, sizeof r.how, "pipe: %s", strerror(errno));
        return r;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(r.how, sizeof r.how, "fork: %s", strerror(errno));
        return r;
    }
    if (pid == 0) {
        setpgid(0, 0);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(ofd[1], 1);
        dup2(efd[1], 2);
        close(ofd[0]), close(ofd[1]), close(efd[0]), close(efd[1]);
        /* nothing of the caller's allocator settings leaks into the column */
        static const char *const drop[] = {"LD_PRELOAD", "STRATA_OPTIONS", "MALLOC_CHECK_",
                                           "MALLOC_PERTURB_", "GLIBC_TUNABLES", "MALLOC_CONF",
                                           "SCUDO_OPTIONS", NULL};
        for (const char *const *d = drop; *d; d++) unsetenv(*d);
        sec_unset_prefixed("MIMALLOC_");
        if (env.preload) setenv("LD_PRELOAD", env.preload, 1);
        if (env.options) setenv("STRATA_OPTIONS", env.options, 1);
        if (env.extra) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(env.extra, "="), env.extra);
            if (strchr(env.extra, '=')) setenv(name, strchr(env.extra, '=') + 1, 1);
        }
        signal(SIGALRM, SIG_DFL);
        alarm(timeout); /* survives exec: a case that hangs dies of SIGALRM */
        execl(prog, prog, variant, size, (char *)NULL);
        _exit(127);
    }
    close(ofd[1]);
    close(efd[1]);
    char out[2048], err[2048];
    sec_collect(ofd[0], efd[0], out, sizeof out, err, sizeof err);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    kill(-pid, SIGKILL); /* anything the case left behind */

    const char *marker = strstr(out, "NOT CAUGHT");
    const char *said = strstr(out, "CAUGHT: ");
    const char *setup = strstr(out, "SETUP: ");
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        char prefix[48];
        snprintf(prefix, sizeof prefix, "%s: ", sec_signal_name(sig));
        sec_first_line(r.how, sizeof r.how, prefix, err);
        bool fatal = sig == SIGABRT || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
                     sig == SIGTRAP || sig == SIGFPE;
        if (sig == SIGALRM) {
            r.verdict = SEC_HUNG;
            snprintf(r.how, sizeof r.how, "still running after %u s", timeout);
        } else if (marker) r.verdict = SEC_MISSED; /* died only after the marker */
        else r.verdict = fatal && c->signal_catches ? SEC_CAUGHT : SEC_MISSED;
        return r;
    }
    int code = WEXITSTATUS(st);
    if (marker) {
        const char *report = c->signal_catches ? sec_report_line(err) : NULL;
        r.verdict = report ? SEC_REPORTED : SEC_MISSED;
        if (report) sec_first_line(r.how, sizeof r.how, "went on after: ", report);
        else sec_first_line(r.how, sizeof r.how, "", marker);
    } else if (code == 2 && setup) {
        r.verdict = SEC_BROKEN;
        sec_first_line(r.how, sizeof r.how, "", setup);
    } else if (code == 127) {
        r.verdict = SEC_BROKEN;
        snprintf(r.how, sizeof r.how, "exec failed (exit 127)");
    } else if (code == 3 && said) {
        r.verdict = SEC_CAUGHT;
        sec_first_line(r.how, sizeof r.how, "", said);
    } else if (code != 0) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "exit %d: ", code);
        r.verdict = c->signal_catches ? SEC_CAUGHT : SEC_MISSED;
        sec_first_line(r.how, sizeof r.how, prefix, err);
    } else {
        r.verdict = SEC_MISSED;
        snprintf(r.how, sizeof r.how, "exit 0 without a verdict");
    }
    return r;
}

/* Number of variants and sizes of a category. */
static inline int sec_nvariants(const sec_category *c) {
    int n = 0;
    while (n < SEC_MAX_VARIANTS && c->variants[n]) n++;
    return n;
}
__attribute__((unused)) static const sec_category *sec_find(const char *name) {
    for (int i = 0; i < SEC_NCATEGORIES; i++)
        if (!strcmp(sec_categories[i].name, name)) return &sec_categories[i];
    return NULL;
}

#endif
