/*
 * harness.h — a small test harness for strata's test programs.
 *
 * A test program defines test functions and runs them from main with RUN(fn). Each prints one
 * line for tests/runner: "ok NAME", "not ok NAME: file:line: what failed" or "skip NAME: why".
 * CHECK stops the current test at the first failed condition.
 *
 * Helpers: run a function in a forked child and collect its exit status and stderr (misuse tests
 * expect an abort with a message); re-execute the test program with other STRATA_OPTIONS; read
 * the resident set size; fill and verify block contents; limit the address space (out of memory).
 */
#ifndef STRATA_TEST_HARNESS_H
#define STRATA_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *th_test;
static int th_failed, th_skipped;
static char th_why[512];

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            th_fail(__FILE__, __LINE__, "%s", #cond);                                \
            return;                                                                  \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        if (!(cond)) {                                                               \
            th_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
            return;                                                                  \
        }                                                                            \
    } while (0)

#define SKIP(...)                                                                    \
    do {                                                                             \
        th_skipped = 1;                                                              \
        snprintf(th_why, sizeof th_why, __VA_ARGS__);                                \
        return;                                                                      \
    } while (0)

#define RUN(fn) th_run(#fn, fn)

__attribute__((format(printf, 3, 4), unused)) static void th_fail(const char *file, int line,
                                                                   const char *fmt, ...) {
    th_failed = 1;
    const char *base = strrchr(file, '/');
    int n = snprintf(th_why, sizeof th_why, "%s:%d: ", base ? base + 1 : file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(th_why + n, sizeof th_why - (size_t)n, fmt, ap);
    va_end(ap);
}

__attribute__((unused)) static void th_run(const char *name, void (*fn)(void)) {
    th_test = name;
    th_failed = th_skipped = 0;
    th_why[0] = '\0';
    fn();
    if (th_failed) printf("not ok %s: %s\n", name, th_why);
    else if (th_skipped) printf("skip %s: %s\n", name, th_why);
    else printf("ok %s\n", name);
    fflush(stdout);
}

/* Keep the compiler from removing allocations whose results look unused. */
static void *volatile th_sink;
static inline void th_use(void *p) { th_sink = p; }

/* Deterministic contents for a block, so a check on free catches any overlap or corruption. */
static inline void th_fill(void *p, size_t n, unsigned seed) {
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < n; i++) c[i] = (unsigned char)(seed + i * 131);
}
static inline int th_verify(const void *p, size_t n, unsigned seed) {
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (unsigned char)(seed + i * 131)) return 0;
    return 1;
}

static inline long th_rss_kb(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = -1;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The page size strata works with: the kernel's, or the one a test makes it believe in
 * (STRATA_TEST_PAGE_SIZE, tests/pagesize.sh). */
static inline size_t th_page_size(void) {
    const char *t = getenv("STRATA_TEST_PAGE_SIZE");
    size_t kernel = (size_t)sysconf(_SC_PAGESIZE), want = t ? strtoul(t, NULL, 10) : 0;
    return want > kernel ? want : kernel;
}

/* Result of running something in a child process. */
typedef struct {
    int exited, code, signaled, sig;
    char err[4096]; /* what it wrote on stderr */
    char out[4096]; /* what it wrote on stdout (th_exec only) */
} th_result;

__attribute__((unused)) static void th_drain(int fd, char *buf, size_t cap) {
    size_t len = 0;
    for (;;) {
        char tmp[1024];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t take = (size_t)n;
        if (len + take > cap - 1) take = cap - 1 - len;
        memcpy(buf + len, tmp, take);
        len += take;
    }
    buf[len] = '\0';
}

__attribute__((unused)) static void th_status(th_result *r, int st) {
    r->exited = WIFEXITED(st);
    r->code = r->exited ? WEXITSTATUS(st) : -1;
    r->signaled = WIFSIGNALED(st);
    r->sig = r->signaled ? WTERMSIG(st) : 0;
}

/* Run fn(arg) in a forked child; the child exits 0 when fn returns. */
__attribute__((unused)) static th_result th_child(void (*fn)(void *), void *arg) {
    th_result r;
    memset(&r, 0, sizeof r);
    int pfd[2];
    if (pipe(pfd) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    close(pfd[1]);
    th_drain(pfd[0], r.err, sizeof r.err);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    th_status(&r, st);
    return r;
}

/* argv for `prog ARGS...`, args ending at a NULL or after n (at most 14): the command lines a
 * table of cases holds. */
typedef struct {
    char *v[16];
} th_argv;
__attribute__((unused)) static th_argv th_args(const char *prog, const char *const *args, size_t n) {
    th_argv a = {{(char *)prog}};
    for (size_t j = 0; j < n && j < 14 && args[j]; j++) a.v[j + 1] = (char *)args[j];
    return a;
}

static void th_exec_self(char **argv);

/* Run argv (self: this test program, with argv[1...]) with extra environment ("NAME=value"
 * strings, NULL-terminated), collecting output. */
static th_result th_exec_in(char *const argv[], char *const env[], bool self) {
    th_result r;
    memset(&r, 0, sizeof r);
    int ofd[2], efd[2];
    if (pipe(ofd) != 0 || pipe(efd) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd[1], 1);
        dup2(efd[1], 2);
        close(ofd[0]);
        close(efd[0]);
        for (char *const *e = env; e && *e; e++) putenv(*e);
        if (self) th_exec_self((char **)argv);
        else execvp(argv[0], argv);
        _exit(127);
    }
    close(ofd[1]);
    close(efd[1]);
    /* stderr is usually short: read stdout first, then stderr */
    th_drain(ofd[0], r.out, sizeof r.out);
    th_drain(efd[0], r.err, sizeof r.err);
    close(ofd[0]);
    close(efd[0]);
    int st;
    waitpid(pid, &st, 0);
    th_status(&r, st);
    return r;
}

__attribute__((unused)) static th_result th_exec(char *const argv[], char *const env[]) {
    return th_exec_in(argv, env, false);
}

/* th_exec, where the argument TH_OUTFILE stands for a fresh temporary file, read into buf
 * (capacity cap) once argv has run, then removed: for commands that write a file (-O FILE). */
#define TH_OUTFILE "@th-outfile@"
__attribute__((unused)) static th_result th_exec_file(char *argv[], char *buf, size_t cap) {
    char file[] = "/tmp/strata-test-XXXXXX";
    int fd = mkstemp(file);
    if (fd < 0) abort();
    close(fd);
    for (char **a = argv; *a; a++)
        if (!strcmp(*a, TH_OUTFILE)) *a = file;
    th_result r = th_exec(argv, NULL);
    buf[0] = '\0';
    fd = open(file, O_RDONLY);
    if (fd >= 0) {
        ssize_t k = read(fd, buf, cap - 1);
        buf[k > 0 ? k : 0] = '\0';
        close(fd);
    }
    unlink(file);
    return r;
}

/* Execute this test program again with argv (argv[0] is replaced by the program's path). Under an
 * emulator (make test-arm64 runs the arm64 tests with STRATA_TEST_EMULATOR="qemu-aarch64 -L
 * /usr/aarch64-linux-gnu") through it: without binfmt_misc the kernel cannot run another
 * architecture's program itself. Returns only if it could not. */
__attribute__((unused)) static void th_exec_self(char **argv) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) return;
    exe[n] = '\0';
    const char *emu = getenv("STRATA_TEST_EMULATOR");
    char words[512], *v[64];
    int k = 0;
    if (emu) {
        snprintf(words, sizeof words, "%s", emu);
        for (char *w = strtok(words, " "); w && k < 16; w = strtok(NULL, " ")) v[k++] = w;
    }
    v[k++] = exe;
    for (int i = 1; argv[i] && k < 63; i++) v[k++] = argv[i];
    v[k] = NULL;
    execvp(v[0], v);
}

/* Tests that look at where a given block lies (which page, which segment, which block a malloc
 * takes back) run without the heap profile: a block it samples is served by the profile heap, in
 * a mapping of its own. Re-executes the program with profile_rate=0 added to STRATA_OPTIONS. */
__attribute__((unused)) static void th_without_profile(char **argv) {
    const char *opts = getenv("STRATA_OPTIONS");
    if (opts && strstr(opts, "profile_rate=0")) return;
    char env[1024];
    snprintf(env, sizeof env, "%s%sprofile_rate=0", opts ? opts : "", opts && *opts ? "," : "");
    setenv("STRATA_OPTIONS", env, 1);
    th_exec_self(argv);
    perror("exec of the test program itself");
    exit(99);
}

/* Re-run this test program in a mode (argv[1]) with the given STRATA_OPTIONS. */
__attribute__((unused)) static th_result th_self(const char *mode, const char *options) {
    char opt[1024];
    snprintf(opt, sizeof opt, "STRATA_OPTIONS=%s", options ? options : "");
    char *argv[] = {(char *)"self", (char *)mode, NULL};
    char *env[] = {opt, NULL};
    return th_exec_in(argv, env, true);
}

/* Count the lines of s that start with prefix. */
static inline int th_count_lines(const char *s, const char *prefix) {
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, len)) n++;
    return n;
}

/* An aborted child that said `what` in exactly one line starting "strata: ". */
static inline int th_aborted_with(const th_result *r, const char *what) {
    return r->signaled && r->sig == SIGABRT && strstr(r->err, what) != NULL &&
           th_count_lines(r->err, "strata: ") == 1;
}

/* fn(arg), run in a child, must abort saying `what` in one "strata: " line, which names the
 * address arg when `named`. */
__attribute__((unused)) static void th_expect_abort(void (*fn)(void *), void *arg, const char *what, bool named) {
    th_result r = th_child(fn, arg);
    char addr[64] = "";
    if (named) snprintf(addr, sizeof addr, "%p", arg);
    CHECKF(th_aborted_with(&r, what), "expected an abort saying '%s'; got exit %d signal %d: %s",
           what, r.code, r.sig, r.err);
    CHECKF(!named || strstr(r.err, addr), "message does not name %s: %s", addr, r.err);
}

/* Is this process running under valgrind (its libraries in LD_PRELOAD)? Its memory and address
 * space are valgrind's too then: a check of RSS or of running out under RLIMIT_AS measures the
 * tool (memcheck's records of every block strata describes to it), not strata. */
static inline int th_under_valgrind(void) {
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "/vgpreload_") != NULL;
}

/* Under an emulator (make test-arm64 runs the arm64 tests in qemu-user, which says so in
 * STRATA_TEST_EMULATOR) some of what a test measures is the emulator's, not strata's: the resident
 * set holds its translated code, RLIMIT_AS is not passed on to the kernel, the program break is its
 * own (no [heap] mapping), and a forked child of a threaded process cannot start threads (qemu 7.2
 * asserts, with glibc's malloc too) and can hang translating code, when another thread held the
 * translator's allocator lock (glib's g_slice) at the fork. Checks of those skip there, after
 * running what they can. */
static inline int th_emulated(void) { return getenv("STRATA_TEST_EMULATOR") != NULL; }
#define TH_EMU_RSS "under qemu-user, whose translated code counts in the resident set"
#define TH_EMU_AS "under qemu-user, which does not pass RLIMIT_AS on to the kernel"
#define TH_EMU_BRK "under qemu-user, whose program break is its own (no [heap] mapping)"
#define TH_EMU_FORK "under qemu-user 7.2, whose forked child of a busy threaded process can assert or hang in the emulator itself"
#define SKIP_IF_EMULATED(why)                                                        \
    do {                                                                             \
        if (th_emulated()) SKIP("%s", why);                                          \
    } while (0)

/* Limit the address space (RLIMIT_AS) to what the process uses now plus `extra` bytes: how a
 * child runs out of memory. Exits 90 or 91 if it cannot. */
__attribute__((unused)) static void th_limit_as(size_t extra) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(90);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + extra;
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(91);
}

/* fn(arg) in a child must abort saying `what` in one "strata: " line. */
#define CHECK_ABORTS(fn, arg, what)                                                              \
    do {                                                                                         \
        th_result r_ = th_child(fn, arg);                                                        \
        CHECKF(th_aborted_with(&r_, what), "expected an abort saying '%s'; got exit %d signal %d: %s", \
               what, r_.code, r_.sig, r_.err);                                                   \
    } while (0)

/* fn(arg) in a child must return (exit 0); its exit code says what went wrong otherwise. */
#define CHECK_CHILD_OK(fn, arg)                                                                  \
    do {                                                                                         \
        th_result r_ = th_child(fn, arg);                                                        \
        CHECKF(r_.exited && r_.code == 0, "child exited %d (signal %d): %s", r_.code, r_.sig,   \
               r_.err);                                                                          \
    } while (0)

/* The start of a command's test: the command and the library built, the environment cleared of
 * what would change their behaviour, a scratch directory made from the template tmp (removed at
 * exit). False, with a "not ok setup" line, when any of that fails. */
__attribute__((unused)) static const char *th_tmpdir;

__attribute__((unused)) static void th_tmpdir_remove(void) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", th_tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", th_tmpdir);
}

__attribute__((unused)) static bool th_command_setup(const char *strata, const char *lib, char *tmp) {
    if (access(strata, X_OK) != 0 || access(lib, R_OK) != 0) {
        printf("not ok setup: %s or %s missing (run make first)\n", strata, lib);
        return false;
    }
    static const char *const drop[] = {"LD_PRELOAD", "STRATA_OPTIONS", "STRATA_LIBRARY"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) unsetenv(drop[i]);
    setenv("LC_ALL", "C", 1);
    if (!mkdtemp(tmp)) {
        printf("not ok setup: mkdtemp: %s\n", strerror(errno));
        return false;
    }
    th_tmpdir = tmp;
    atexit(th_tmpdir_remove);
    return true;
}

#endif
