/*
 * stats_live.c — `strata stats PID [--watch N]` (tools/stats.c) on processes running on strata.
 *
 * The processes are this program re-run on libstrata in a helper mode (hold blocks and wait for
 * stdin to close; start threads; fork; exec a program that is not on strata; run out of file
 * descriptors) and perl under `strata run`. The table read from outside must match, class by
 * class, the one the process prints itself with malloc_stats() at the same quiet moment, and
 * mark with "-" what only the process can know; --watch prints until the process exits, then
 * exits 0; a forked child has a statistics file of its own with its own counts; after exec, exit
 * or without a file there are no statistics; a missing, unreadable or foreign process gives one
 * "strata:" line and exit 1, a bad command line the usage and exit 2.
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */
#include "job.h"

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LIBSTRATA STRATA_ROOT "/lib/libstrata.so"

static char tmp[] = "/tmp/strata-stats-live-XXXXXX";

/* ---- helper modes: this program on strata ---- */

/* Wait until the test closes our stdin. */
static void wait_for_eof(void) {
    char c;
    while (read(0, &c, 1) > 0) {
    }
}

static void say(const char *line) {
    if (write(1, line, strlen(line)) < 0) _exit(3);
}

/* 5000 blocks of 48 bytes (1000 freed), 300 of 3000, a huge one, and 40 pages' worth of 256
 * bytes all freed (so that pages go back); then our own report. */
static int hold(void) {
    static void *small[5000], *gone[10000];
    for (int i = 0; i < 5000; i++) small[i] = malloc(48);
    mallopt(M_MMAP_THRESHOLD, 512 << 10); /* the report shows it, fixed */
    for (int i = 0; i < 300; i++) th_use(malloc(3000));
    for (int i = 0; i < 1000; i++) free(small[i]);
    for (int i = 0; i < 10000; i++) gone[i] = malloc(256);
    for (int i = 0; i < 10000; i++) free(gone[i]);
    th_use(malloc(1 << 20));
    printf("ready %d\n", (int)getpid()); /* stdio's buffer is allocated before the report */
    fflush(stdout);
    malloc_stats(); /* on stderr, a file the test reads */
    say("printed\n");
    wait_for_eof();
    return 0;
}

static pthread_barrier_t all_made;

static void *thread_allocates(void *arg) {
    for (int i = 0; i < 2000; i++) th_use(malloc(80));
    pthread_barrier_wait(&all_made);
    return arg;
}

/* A thread that never allocates has no heap: its frees count apart (sx_count). */
static void *thread_frees(void *arg) {
    for (int i = 0; i < 500; i++) free(((void **)arg)[i]);
    return NULL;
}

/* 4 threads, all alive at once, 2000 mallocs of 80 bytes each; then they exit. Then a thread
 * without a heap frees 500 blocks of 112 bytes. */
static int threads(void) {
    pthread_t t[4];
    pthread_barrier_init(&all_made, NULL, 4);
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, thread_allocates, NULL) != 0) return 4;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    static void *blocks[500];
    for (int i = 0; i < 500; i++) blocks[i] = malloc(112);
    pthread_t f;
    if (pthread_create(&f, NULL, thread_frees, blocks) != 0) return 4;
    pthread_join(f, NULL);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    wait_for_eof();
    return 0;
}

/* 3000 blocks of 48 bytes, then fork; the child makes 7000 of 200. */
static int forks(void) {
    for (int i = 0; i < 3000; i++) th_use(malloc(48));
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 5;
    char line[64];
    if (child == 0) {
        for (int i = 0; i < 7000; i++) th_use(malloc(200));
        snprintf(line, sizeof line, "child %d\n", (int)getpid());
        say(line);
        wait_for_eof();
        _exit(0);
    }
    snprintf(line, sizeof line, "parent %d\n", (int)getpid());
    say(line);
    wait_for_eof();
    int st;
    waitpid(child, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 6;
}

/* Allocate, then on a byte from the test exec cat, which is not on strata. */
static int execs(void) {
    for (int i = 0; i < 1000; i++) th_use(malloc(48));
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char c;
    if (read(0, &c, 1) != 1) return 7;
    unsetenv("LD_PRELOAD");
    execlp("cat", "cat", (char *)NULL);
    return 8;
}

/* No descriptor left for the statistics file when the first heap is made. */
static int no_descriptors(void) {
    struct rlimit rl = {3, 3};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 9;
    static void *p[1000];
    for (int i = 0; i < 1000; i++) p[i] = malloc(48);
    for (int i = 0; i < 1000; i++) free(p[i]);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    wait_for_eof();
    return 0;
}

/* ---- running things ---- */

/* A process to read: this program in a helper mode (on strata unless told otherwise), its stdin
 * a pipe the test closes to end it, its stderr a file. */
typedef struct {
    pid_t pid;
    int in, out;
    char err_path[sizeof tmp + 32];
    char said[512]; /* what it printed on stdout so far */
} helper;

static bool helper_wait_for(helper *h, const char *text, int ms) {
    size_t len = strlen(h->said);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!strstr(h->said, text)) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {h->out, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) return false;
        ssize_t n = read(h->out, h->said + len, sizeof h->said - 1 - len);
        if (n <= 0) return false;
        len += (size_t)n;
        h->said[len] = '\0';
    }
    return true;
}

/* Start argv (with libstrata preloaded if on_strata) and wait until it says `wait_for`. */
static helper spawn(char *const argv[], bool on_strata, const char *wait_for) {
    static int serial;
    helper h = {0};
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) abort();
    snprintf(h.err_path, sizeof h.err_path, "%s/err.%d", tmp, ++serial);
    int err = open(h.err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (err < 0) abort();
    fflush(NULL);
    h.pid = fork();
    if (h.pid < 0) abort();
    if (h.pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err, 2);
        if (on_strata) setenv("LD_PRELOAD", LIBSTRATA, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err);
    h.in = in[1];
    h.out = out[0];
    if (!helper_wait_for(&h, wait_for, 20000)) h.said[0] = '\0';
    return h;
}

/* This program in a helper mode. */
static helper helper_start(const char *mode, bool on_strata, const char *wait_for) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) abort();
    exe[n] = '\0';
    return spawn((char *[]){exe, (char *)mode, NULL}, on_strata, wait_for);
}

static bool helper_ready(const helper *h) { return h->said[0] != '\0'; }

/* Close its stdin; its exit status (-1 if it did not exit normally). reap false: leave it. */
static int helper_end(helper *h, bool reap) {
    if (h->in >= 0) close(h->in);
    h->in = -1;
    if (!reap) return 0;
    int st;
    while (waitpid(h->pid, &st, 0) < 0 && errno == EINTR) {
    }
    close(h->out); /* after: it may write a last line */
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return calloc(1, 1);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static result stats_of(pid_t pid) {
    char p[16];
    snprintf(p, sizeof p, "%d", (int)pid);
    return run((char *[]){STRATA, "stats", p, NULL});
}

/* ---- reading the table ---- */

/* The line of a report that starts with `key` (which starts with a newline), in out. */
static void report_line(const char *report, const char *key, char *out, size_t cap) {
    out[0] = '\0';
    const char *p = strstr(report, key);
    if (!p) return;
    p++;
    size_t n = strcspn(p, "\n");
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* The class rows of a report: the lines between the "class" header and the "huge" row. */
static void class_rows(const char *report, char *out, size_t cap) {
    out[0] = '\0';
    const char *p = strstr(report, "      class      mallocs");
    if (!p) return;
    p = strchr(p, '\n');
    const char *end = p ? strstr(p, "        huge ") : NULL;
    if (!p || !end) return;
    p++;
    size_t n = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

typedef struct {
    long mallocs, frees, live, peak, pages;
} row;

/* The row of a class ("48", "large", "huge"); false if there is none. */
static bool class_row(const char *report, const char *name, row *r) {
    char key[32];
    snprintf(key, sizeof key, "\n  %10s ", name);
    const char *p = strstr(report, key);
    if (!p) return false;
    memset(r, 0, sizeof *r);
    return sscanf(p + strlen(key), "%ld %ld %ld", &r->mallocs, &r->frees, &r->live) == 3;
}

static long number_after(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* ---- tests ---- */

static void live_table_matches_malloc_stats(void) {
    helper h = helper_start("hold", true, "printed\n");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result r = stats_of(h.pid);
    char *own = slurp(h.err_path);
    int code = helper_end(&h, true);
    char title[64], mine[8192], theirs[8192];
    snprintf(title, sizeof title, "heap statistics (pid %d, live, ", (int)h.pid);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "code %d; stderr: %s", r.code, r.err);
    CHECKF(code == 0, "the helper exited %d", code);
    CHECKF(strstr(r.out, title), "no title '%s' in: %.400s", title, r.out);
    class_rows(own, mine, sizeof mine);
    class_rows(r.out, theirs, sizeof theirs);
    CHECKF(mine[0] && !strcmp(mine, theirs), "the process said:\n%s\nstrata stats said:\n%s", mine,
           theirs);
    static const char *const same[] = {"\n  segments ", "\n  thresholds ", "\n  max huge ",
                                       "\n  system calls ", "\n  calls ", "\n  bytes "};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char a[512], b[512];
        report_line(own, same[i], a, sizeof a);
        report_line(r.out, same[i], b, sizeof b);
        CHECKF(a[0] && !strcmp(a, b), "the process said '%s', strata stats '%s'", a, b);
    }
    CHECKF(strstr(r.out, "thresholds     mmap 524288 (fixed)"), "%.1000s", r.out);
    row small, mid, huge;
    CHECKF(class_row(r.out, "48", &small) && small.mallocs >= 5000 && small.frees >= 1000 &&
               small.live >= 4000,
           "class 48: %.2000s", r.out);
    CHECKF(class_row(r.out, "3072", &mid) && mid.mallocs >= 300 && mid.live >= 300, "class 3072: %.2000s",
           r.out);
    CHECKF(class_row(r.out, "huge", &huge) && huge.mallocs >= 1 && huge.live >= 1, "huge: %.2000s", r.out);
    CHECKF(class_row(r.out, "256", &mid) && mid.mallocs >= 10000 && mid.live == 0, "class 256: %.2000s",
           r.out);
    /* what the walk alone knows is marked, not made up */
    CHECKF(strstr(r.out, "\n  in use         - ") && strstr(r.out, "committed -,") &&
               strstr(r.out, "resident/in use -") && !strstr(own, "committed -,"),
           "%.1500s", r.out);
    CHECKF(number_after(r.out, "  calls          ") >= 5301, "%.1500s", r.out);
    free(own);
    done(&r);
}

static void live_table_of_exited_threads(void) {
    helper h = helper_start("threads", true, "ready");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result r = stats_of(h.pid);
    int code = helper_end(&h, true);
    CHECKF(r.exited && r.code == 0 && code == 0, "code %d, helper %d; stderr: %s", r.code, code, r.err);
    row c;
    CHECKF(class_row(r.out, "80", &c) && c.mallocs >= 8000, "4 threads x 2000 mallocs of 80 bytes: %.2000s",
           r.out);
    CHECKF(class_row(r.out, "112", &c) && c.mallocs >= 500 && c.frees >= 500 && c.live == 0,
           "500 blocks freed by a thread without a heap: %.2000s", r.out);
    const char *seg = strstr(r.out, "\n  segments ");
    CHECKF(seg && number_after(seg, "cached; ") >= 5, "thread heaps: %.600s", r.out);
    done(&r);
}

static void perl_under_strata_run(void) {
    helper perl = spawn((char *[]){STRATA, "run", "--", "perl", "-e",
                                   "$| = 1; my @a = map { 'x' x 40 . $_ } 1 .. 50000; "
                                   "print \"ready $$\\n\"; <STDIN>; print scalar(@a), \"\\n\"",
                                   NULL},
                        false, "ready");
    CHECKF(helper_ready(&perl), "perl did not get ready");
    long pid = number_after(perl.said, "ready ");
    CHECKF(pid == perl.pid, "perl says it is %ld, started as %d", pid, (int)perl.pid);
    result r = stats_of(perl.pid);
    int code = helper_end(&perl, true);
    CHECKF(r.exited && r.code == 0 && code == 0, "code %d, perl %d; stderr: %s", r.code, code, r.err);
    long mallocs = number_after(r.out, "  calls          ");
    printf("# perl holding 50000 strings: %ld allocation calls\n", mallocs);
    CHECKF(mallocs >= 50000, "%ld mallocs for 50000 strings: %.1500s", mallocs, r.out);
    row c;
    CHECKF(class_row(r.out, "48", &c) || class_row(r.out, "64", &c), "no class of 48 or 64: %.1500s", r.out);
    CHECKF(c.live > 1000, "%.1500s", r.out);
    done(&r);
}

static void watch_prints_until_the_process_exits(void) {
    helper h = helper_start("hold", true, "printed\n");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    char p[16];
    snprintf(p, sizeof p, "%d", (int)h.pid);
    job w = job_start((char *[]){STRATA, "stats", "--watch", "1", p, NULL}, -1);
    bool twice = job_read(&w, "heap statistics", 2, 15000);
    int code = helper_end(&h, true);
    result r = job_finish(&w);
    CHECKF(twice, "not two tables in 15 s: %.600s; stderr %s", r.out, r.err);
    CHECKF(code == 0, "helper exited %d", code);
    char want[64];
    snprintf(want, sizeof want, "strata: %d: exited\n", (int)h.pid);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.err, want), "code %d; stderr '%s'", r.code, r.err);
    row c;
    CHECKF(class_row(r.out, "48", &c) && c.mallocs >= 5000, "%.1000s", r.out);
    done(&r);
}

/* The statistics file of a process: the descriptor's target, as stat() gives it. */
static bool stats_file_of(pid_t pid, struct stat *st) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    for (int fd = 0; fd < 1024; fd++) {
        char link[96], target[128];
        snprintf(link, sizeof link, "%s/%d", dir, fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (!strcmp(target, "/memfd:strata (deleted)")) return stat(link, st) == 0;
    }
    return false;
}

static void fork_child_has_its_own_statistics(void) {
    helper h = helper_start("fork", true, "child");
    if (helper_ready(&h)) helper_wait_for(&h, "parent", 5000);
    long parent = number_after(h.said, "parent "), child = number_after(h.said, "child ");
    CHECKF(parent > 0 && child > 0, "helper said '%s'", h.said);
    result rp = stats_of((pid_t)parent), rc = stats_of((pid_t)child);
    struct stat fp, fc;
    bool files = stats_file_of((pid_t)parent, &fp) && stats_file_of((pid_t)child, &fc);
    int code = helper_end(&h, true);
    CHECKF(rp.exited && rp.code == 0 && rc.exited && rc.code == 0, "codes %d %d: %s %s", rp.code, rc.code,
           rp.err, rc.err);
    CHECKF(code == 0, "helper exited %d", code);
    CHECKF(files && fp.st_ino != fc.st_ino, "parent and child share a statistics file (%d)", files);
    row c;
    CHECKF(class_row(rc.out, "208", &c) && c.mallocs >= 7000, "child's 7000 mallocs of 200: %.1500s", rc.out);
    CHECKF(class_row(rc.out, "48", &c) && c.mallocs >= 3000, "child's inherited counts: %.1500s", rc.out);
    CHECKF(!class_row(rp.out, "208", &c) || c.mallocs < 7000, "parent counts its child's mallocs: %.1500s",
           rp.out);
    CHECKF(class_row(rp.out, "48", &c) && c.mallocs >= 3000, "parent: %.1500s", rp.out);
    done(&rp);
    done(&rc);
}

static bool runs(pid_t pid, const char *name) {
    char link[64], exe[4096];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = '\0';
    const char *slash = strrchr(exe, '/');
    return slash && !strcmp(slash + 1, name);
}

/* exec keeps the pid and the start time: only the file's going with the exec tells. */
static void no_statistics_after_exec(void) {
    helper h = helper_start("exec", true, "ready");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result before = stats_of(h.pid);
    CHECK(write(h.in, "x", 1) == 1);
    for (int i = 0; i < 500 && !runs(h.pid, "cat"); i++) usleep(10000);
    bool cat = runs(h.pid, "cat");
    result after = stats_of(h.pid);
    int code = helper_end(&h, true);
    CHECKF(before.exited && before.code == 0, "before exec: code %d, %s", before.code, before.err);
    CHECKF(cat && code == 0, "the helper did not become cat (%d, exit %d)", cat, code);
    char want[96];
    snprintf(want, sizeof want, "strata: %d: not running on strata (no live statistics)\n", (int)h.pid);
    CHECKF(after.exited && after.code == 1 && !strcmp(after.err, want) && after.out[0] == '\0',
           "after exec: code %d, stderr '%s', stdout '%.200s'", after.code, after.err, after.out);
    done(&before);
    done(&after);
}

static char proc_state(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] ? p[2] : 0;
}

static void no_statistics_after_exit(void) {
    helper h = helper_start("hold", true, "printed\n");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result live = stats_of(h.pid);
    helper_end(&h, false);
    for (int i = 0; i < 500 && proc_state(h.pid) != 'Z'; i++) usleep(10000);
    result zombie = stats_of(h.pid);
    int code = helper_end(&h, true);
    result gone = stats_of(h.pid);
    char want[96];
    CHECKF(live.exited && live.code == 0 && code == 0, "live: code %d; helper %d", live.code, code);
    snprintf(want, sizeof want, "strata: %d: has exited (a zombie): no live statistics\n", (int)h.pid);
    CHECKF(zombie.exited && zombie.code == 1 && !strcmp(zombie.err, want), "zombie: code %d, '%s'",
           zombie.code, zombie.err);
    snprintf(want, sizeof want, "strata: %d: no such process\n", (int)h.pid);
    CHECKF(gone.exited && gone.code == 1 && !strcmp(gone.err, want) && gone.out[0] == '\0',
           "gone: code %d, stderr '%s' stdout '%.100s'", gone.code, gone.err, gone.out);
    done(&live);
    done(&zombie);
    done(&gone);
}

static void no_statistics_file_without_descriptors(void) {
    helper h = helper_start("nofile", true, "ready");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result r = stats_of(h.pid);
    int code = helper_end(&h, true);
    CHECKF(code == 0, "the helper (allocating with no descriptor to spare) exited %d", code);
    CHECKF(r.exited && r.code == 1 && lines(r.err) == 1 && strstr(r.err, "has no statistics file"),
           "code %d; stderr '%s'", r.code, r.err);
}

static void not_on_strata(void) {
    helper h = helper_start("hold", false, "printed\n");
    CHECKF(helper_ready(&h), "the helper did not get ready");
    result r = stats_of(h.pid);
    helper_end(&h, true);
    char want[96];
    snprintf(want, sizeof want, "strata: %d: not running on strata (no live statistics)\n", (int)h.pid);
    CHECKF(r.exited && r.code == 1 && !strcmp(r.err, want) && r.out[0] == '\0', "code %d; stderr '%s'",
           r.code, r.err);
    done(&r);
}

/* As root, read a helper as nobody; otherwise pid 1 if it is not ours. */
static void unreadable_process(void) {
    helper h = {.pid = 1, .in = -1, .out = -1};
    int uid = -1;
    if (geteuid() == 0) {
        uid = 65534;
        h = helper_start("hold", true, "printed\n");
        CHECKF(helper_ready(&h), "the helper did not get ready");
    } else {
        struct stat st;
        if (stat("/proc/1", &st) != 0 || st.st_uid == geteuid()) SKIP("no process of another user to read");
    }
    char p[16];
    snprintf(p, sizeof p, "%d", (int)h.pid);
    result r = run_as((char *[]){STRATA, "stats", p, NULL}, uid);
    if (h.in >= 0) helper_end(&h, true);
    if (r.exited && r.code == 120) SKIP("cannot run the command as uid %d", uid);
    CHECKF(r.exited && r.code == 1 && lines(r.err) == 1 && !strncmp(r.err, "strata: ", 8) &&
               strstr(r.err, strerror(EACCES)) && r.out[0] == '\0',
           "code %d; stderr '%s'; stdout '%.200s'", r.code, r.err, r.out);
    done(&r);
}

static void missing_process(void) {
    result r = run((char *[]){STRATA, "stats", "2147483647", NULL});
    CHECKF(r.exited && r.code == 1 && !strcmp(r.err, "strata: 2147483647: no such process\n") &&
               r.out[0] == '\0',
           "code %d; stderr '%s'", r.code, r.err);
    done(&r);
}

static void bad_command_lines_print_usage_and_exit_2(void) {
    static char *const bad[][6] = {
        {"stats", NULL},
        {"stats", "--watch", NULL},
        {"stats", "--watch", "0", "1", NULL},
        {"stats", "-w", "x", "1", NULL},
        {"stats", "--watch=-3", "1", NULL},
        {"stats", "-w", "1", NULL},
        {"stats", "1", "2", NULL},
        {"stats", "1", "--bogus", NULL},
        {"stats", "99999999999", NULL},
        {"stats", "-o", "verbose=1", "1", NULL},
        {"stats", "--bogus", "--", "true", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result r = run(th_args(STRATA, (const char *const *)bad[i], sizeof bad[i] / sizeof bad[i][0]).v);
        CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8) && strstr(r.err, "usage") &&
                   strstr(r.err, "strata stats PID") && r.out[0] == '\0',
               "case %zu: code %d; stderr '%.300s'", i, r.code, r.err);
        done(&r);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) {
        static const struct {
            const char *name;
            int (*fn)(void);
        } modes[] = {{"hold", hold}, {"threads", threads}, {"fork", forks}, {"exec", execs},
                     {"nofile", no_descriptors}};
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
            if (!strcmp(argv[1], modes[i].name)) return modes[i].fn();
        return 2;
    }
    if (!th_command_setup(STRATA, LIBSTRATA, tmp)) return 1;

    RUN(live_table_matches_malloc_stats);
    RUN(live_table_of_exited_threads);
    RUN(perl_under_strata_run);
    RUN(watch_prints_until_the_process_exits);
    RUN(fork_child_has_its_own_statistics);
    RUN(no_statistics_after_exec);
    RUN(no_statistics_after_exit);
    RUN(no_statistics_file_without_descriptors);
    RUN(not_on_strata);
    RUN(unreadable_process);
    RUN(missing_process);
    RUN(bad_command_lines_print_usage_and_exit_2);
    return 0;
}
