/*
 * programs.c — real programs give the same results on strata as on the system allocator.
 *
 * Each test runs a script (python3, gcc, g++, git, sort, perl, awk, sed, tar, gzip, bash, ...)
 * twice, side by side in two directories laid out alike: plainly, and with libstrata preloaded
 * and STRATA_OPTIONS=verbose=1 (some tests add a run with other options). The runs must agree on
 * all of stdout (captured in full, not just 4 KiB), on stderr once strata's own lines are taken
 * out, and on the exit status; the plain run must succeed, and the preloaded run's stderr must
 * show a "strata: version" line (strata served it) and no other strata message than those of
 * verbose=1. A program that is not installed makes its test a skip.
 *
 * Inputs are generated here, deterministically, under a mkdtemp directory that is removed as the
 * tests go (STRATA_KEEP_TMP=1 keeps it; STRATA_SHOW_OUTPUT=1 shows what each plain run printed).
 * Plain and preloaded runs go side by side, using both cores. A run that hangs is killed after
 * RUN_LIMIT seconds and reported; nothing is timed otherwise.
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */

#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define LIBSTRATA STRATA_ROOT "/lib/libstrata.so"
#ifndef RUN_LIMIT
#define RUN_LIMIT 120 /* seconds: a run still going then is taken to hang */
#endif
#define MAXJOBS 4

static char root[] = "/tmp/strata-programs-XXXXXX";
static char python[PATH_MAX]; /* the real python3 executable, not a pyenv shim */

/* ---- small utilities ---- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static const char *sb_str(const sbuf *b) { return b->p ? b->p : ""; }

static void sb_free(sbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Is `tool` an executable file in PATH (or an executable path)? */
static int have(const char *tool) {
    if (strchr(tool, '/')) return access(tool, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    char dir[PATH_MAX];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, n ? path : ".", tool);
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISREG(st.st_mode) && access(dir, X_OK) == 0) return 1;
        path += n;
        if (*path == ':') path++;
    }
    return 0;
}

static int write_file(const char *dir, const char *name, const char *text) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* A deterministic pseudo-random sequence (the inputs must be the same in every run). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static const char *const words[] = {
    "alpha", "bravo",  "charlie", "delta", "echo",   "foxtrot", "golf",    "hotel",
    "india", "juliet", "kilo",    "lima",  "mike",   "november", "oscar",  "papa",
    "quebec", "romeo", "sierra",  "tango", "uniform", "victor", "whiskey", "xray",
    "yankee", "zulu",  "malloc",  "free",  "realloc", "strata", "segment", "span"};
#define NWORDS (sizeof words / sizeof words[0])

/* `n` lines "NUMBER<TAB>WORD..." with plenty of duplicates. */
static int gen_lines(const char *dir, const char *name, int n) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    for (int i = 0; i < n; i++) {
        unsigned r = rng();
        fprintf(f, "%u\t%s", r % 200000, words[r % NWORDS]);
        if (r & 1) fprintf(f, " %s", words[(r >> 7) % NWORDS]);
        if ((r & 6) == 6) fprintf(f, "-%u", (r >> 12) % 100);
        fputc('\n', f);
    }
    return fclose(f) == 0;
}

/* A directory tree of `nfiles` text files (and a few binary ones) in 12 subdirectories. */
static int gen_tree(const char *dir, const char *name, int nfiles) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (mkdir(path, 0755) != 0) return 0;
    for (int d = 0; d < 12; d++) {
        snprintf(path, sizeof path, "%s/%s/d%02d", dir, name, d);
        if (mkdir(path, 0755) != 0) return 0;
    }
    for (int i = 0; i < nfiles; i++) {
        int bin = i % 37 == 5;
        snprintf(path, sizeof path, "%s/%s/d%02d/f%04d.%s", dir, name, i % 12, i, bin ? "bin" : "txt");
        FILE *f = fopen(path, "w");
        if (!f) return 0;
        unsigned len = rng() % (i % 50 == 0 ? 200000 : 6000);
        if (bin) {
            for (unsigned j = 0; j < len; j++) fputc((int)(rng() & 0xff), f);
        } else {
            for (unsigned j = 0; j < len;) {
                const char *w = words[rng() % NWORDS];
                j += (unsigned)fprintf(f, "%s%s", w, rng() % 9 == 0 ? "\n" : " ");
            }
            fputc('\n', f);
        }
        if (fclose(f) != 0) return 0;
    }
    return 1;
}

/* The directory of one test, root/NAME, made anew. */
static const char *test_dir(const char *name) {
    static char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    rm_tree(dir);
    if (mkdir(dir, 0755) != 0) return NULL;
    return dir;
}

/* ---- running programs side by side ---- */

typedef struct {
    const char *options; /* NULL: the plain run; else STRATA_OPTIONS of a preloaded run */
    char dir[PATH_MAX];
    pid_t pid;
    int fd[2], open_fds;
    sbuf out, err;
    int status, timed_out;
} job;

/* Run argv in every job's directory at once; collect all of stdout and stderr. */
static void run_jobs(job *jobs, int n, char *const argv[]) {
    struct pollfd pfd[2 * MAXJOBS];
    for (int i = 0; i < n; i++) {
        job *j = &jobs[i];
        int o[2], e[2];
        if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) abort();
        fflush(NULL);
        j->pid = fork();
        if (j->pid < 0) abort();
        if (j->pid == 0) {
            setpgid(0, 0);
            int in = open("/dev/null", O_RDONLY);
            if (in < 0 || chdir(j->dir) != 0) _exit(125);
            dup2(in, 0);
            dup2(o[1], 1);
            dup2(e[1], 2);
            if (j->options) {
                setenv("LD_PRELOAD", LIBSTRATA, 1);
                setenv("STRATA_OPTIONS", j->options, 1);
            }
            execvp(argv[0], argv);
            _exit(127);
        }
        setpgid(j->pid, j->pid);
        close(o[1]);
        close(e[1]);
        j->fd[0] = o[0];
        j->fd[1] = e[0];
        j->open_fds = 2;
        j->timed_out = 0;
    }
    time_t deadline = time(NULL) + RUN_LIMIT;
    for (;;) {
        int np = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (jobs[i].fd[k] >= 0) pfd[np++] = (struct pollfd){.fd = jobs[i].fd[k], .events = POLLIN};
        if (np == 0) break;
        long left = (long)(deadline - time(NULL));
        int r = left > 0 ? poll(pfd, (nfds_t)np, (int)(left * 1000)) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { /* hung: kill what is left; if its output stays open even so, give up on it */
            for (int i = 0; i < n; i++)
                if (jobs[i].open_fds) {
                    if (jobs[i].timed_out)
                        for (int k = 0; k < 2; k++)
                            if (jobs[i].fd[k] >= 0) close(jobs[i].fd[k]), jobs[i].fd[k] = -1;
                    jobs[i].timed_out = 1;
                    kill(-jobs[i].pid, SIGKILL);
                }
            deadline = time(NULL) + 5;
            continue;
        }
        for (int p = 0; p < np; p++) {
            if (!pfd[p].revents) continue;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 2; k++) {
                    if (jobs[i].fd[k] != pfd[p].fd) continue;
                    char tmp[65536];
                    ssize_t got = read(pfd[p].fd, tmp, sizeof tmp);
                    if (got < 0 && errno == EINTR) continue;
                    if (got > 0) {
                        sb_add(k ? &jobs[i].err : &jobs[i].out, tmp, (size_t)got);
                    } else {
                        close(jobs[i].fd[k]);
                        jobs[i].fd[k] = -1;
                        jobs[i].open_fds--;
                    }
                }
        }
    }
    /* a program may close its output and go on running: wait for it within the limit too */
    for (int i = 0; i < n; i++) {
        for (;;) {
            pid_t w = waitpid(jobs[i].pid, &jobs[i].status, WNOHANG);
            if (w == jobs[i].pid || (w < 0 && errno != EINTR)) break;
            if (time(NULL) > deadline) {
                jobs[i].timed_out = 1;
                kill(-jobs[i].pid, SIGKILL);
                deadline = time(NULL) + 5;
            }
            usleep(10000);
        }
        kill(-jobs[i].pid, SIGKILL); /* anything the script left running */
    }
}

static void describe_status(char *buf, size_t cap, int st, int timed_out) {
    if (timed_out) snprintf(buf, cap, "hung (killed after %d s)", RUN_LIMIT);
    else if (WIFEXITED(st)) snprintf(buf, cap, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(buf, cap, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else snprintf(buf, cap, "status 0x%x", st);
}

/* The last `n` characters of s, on one line, for a failure message. */
static const char *tail(const char *s, size_t n) {
    static char buf[4][256];
    static int which;
    char *b = buf[which++ & 3];
    size_t len = strlen(s);
    if (n > sizeof buf[0] - 1) n = sizeof buf[0] - 1;
    const char *from = len > n ? s + len - n : s;
    size_t i = 0;
    for (; from[i] && i < n; i++) b[i] = from[i] == '\n' ? '|' : from[i];
    b[i] = '\0';
    return b;
}

/* Where a and b first differ: line number and both lines (shortened). */
static void first_difference(const char *a, const char *b, char *buf, size_t cap) {
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') line++, la = a + 1, lb = b + 1;
        a++, b++;
    }
    int na = (int)strcspn(la, "\n"), nb = (int)strcspn(lb, "\n");
    snprintf(buf, cap, "line %d: plain '%.*s' vs strata '%.*s'", line, na > 70 ? 70 : na, la,
             nb > 70 ? 70 : nb, lb);
}

/* stderr without strata's own lines; sets *bad to the first strata line verbose=1 does not make. */
static char *strip_strata_lines(const char *s, int *served, char *bad, size_t badcap) {
    char *out = malloc(strlen(s) + 1);
    if (!out) abort();
    size_t n = 0;
    *served = 0;
    bad[0] = '\0';
    while (*s) {
        size_t len = strcspn(s, "\n");
        size_t next = len + (s[len] == '\n');
        if (!strncmp(s, "strata: ", 8)) {
            if (!strncmp(s, "strata: version ", 16)) (*served)++;
            else if (strncmp(s, "strata: exit of pid ", 20) && !bad[0])
                snprintf(bad, badcap, "%.*s", (int)(len > 150 ? 150 : len), s);
        } else {
            memcpy(out + n, s, next);
            n += next;
        }
        s += next;
    }
    out[n] = '\0';
    return out;
}

/*
 * Run argv plainly and on strata (STRATA_OPTIONS=verbose=1, then each of `more` options, which
 * should include verbose=1 too) in subdirectories of `dir`, and compare. Returns 1 when all
 * agree; otherwise records the failure (th_fail) and returns 0.
 */
static int compare_runs(const char *dir, char *const argv[], const char *const more[]) {
    job jobs[MAXJOBS];
    memset(jobs, 0, sizeof jobs);
    int n = 0;
    jobs[n++].options = NULL;
    jobs[n++].options = "verbose=1";
    for (int i = 0; more && more[i] && n < MAXJOBS; i++) jobs[n++].options = more[i];
    for (int i = 0; i < n; i++) {
        snprintf(jobs[i].dir, sizeof jobs[i].dir, "%s/run%d", dir, i);
        if (mkdir(jobs[i].dir, 0755) != 0) {
            th_fail(__FILE__, __LINE__, "mkdir %s: %s", jobs[i].dir, strerror(errno));
            return 0;
        }
    }
    run_jobs(jobs, n, argv);
    if (getenv("STRATA_SHOW_OUTPUT")) /* for writing tests: what the plain run printed */
        for (const char *l = sb_str(&jobs[0].out); *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
            printf("   | %.*s\n", (int)strcspn(l, "\n"), l);

    int ok = 1;
    char st0[96], st[96], diff[256], bad[160];
    describe_status(st0, sizeof st0, jobs[0].status, jobs[0].timed_out);
    if (jobs[0].timed_out || !WIFEXITED(jobs[0].status) || WEXITSTATUS(jobs[0].status) != 0) {
        th_fail(__FILE__, __LINE__, "the plain run failed (%s): stderr ...%s", st0,
                tail(sb_str(&jobs[0].err), 200));
        ok = 0;
    }
    for (int i = 1; ok && i < n; i++) {
        job *j = &jobs[i];
        describe_status(st, sizeof st, j->status, j->timed_out);
        int served;
        char *err = strip_strata_lines(sb_str(&j->err), &served, bad, sizeof bad);
        if (j->timed_out || j->status != jobs[0].status) {
            th_fail(__FILE__, __LINE__, "[%s] %s, plain %s; stderr ...%s", j->options, st, st0,
                    tail(sb_str(&j->err), 220));
            ok = 0;
        } else if (!served) {
            th_fail(__FILE__, __LINE__, "[%s] no 'strata: version' line: strata did not serve the run; stderr ...%s",
                    j->options, tail(sb_str(&j->err), 150));
            ok = 0;
        } else if (bad[0]) {
            th_fail(__FILE__, __LINE__, "[%s] strata said: %s", j->options, bad);
            ok = 0;
        } else if (j->out.n != jobs[0].out.n || memcmp(sb_str(&j->out), sb_str(&jobs[0].out), j->out.n)) {
            first_difference(sb_str(&jobs[0].out), sb_str(&j->out), diff, sizeof diff);
            th_fail(__FILE__, __LINE__, "[%s] stdout differs (%zu vs %zu bytes) at %s", j->options,
                    jobs[0].out.n, j->out.n, diff);
            ok = 0;
        } else if (strcmp(err, sb_str(&jobs[0].err))) {
            first_difference(sb_str(&jobs[0].err), err, diff, sizeof diff);
            th_fail(__FILE__, __LINE__, "[%s] stderr differs at %s", j->options, diff);
            ok = 0;
        }
        free(err);
    }
    if (ok && jobs[0].out.n == 0) {
        th_fail(__FILE__, __LINE__, "the script printed nothing: nothing was compared");
        ok = 0;
    }
    for (int i = 0; i < n; i++) {
        sb_free(&jobs[i].out);
        sb_free(&jobs[i].err);
    }
    if (!getenv("STRATA_KEEP_TMP")) rm_tree(dir); /* keep /tmp small as the tests go */
    return ok;
}

/* Run a shell script (sh -c) both ways in a fresh directory for the test; `dir` may hold inputs. */
static int compare_sh(const char *dir, const char *shell, const char *script, const char *const more[]) {
    char *argv[] = {(char *)shell, "-c", (char *)script, NULL};
    return compare_runs(dir, argv, more);
}

#define NEED(tool)                                                                   \
    do {                                                                             \
        if (!have(tool)) SKIP("%s is not installed", tool);                          \
    } while (0)

#define DIR_OR_FAIL(var, name)                                                       \
    const char *var = test_dir(name);                                                \
    CHECKF(var != NULL, "cannot make %s/%s: %s", root, name, strerror(errno))

/* ---- the comparison itself can fail ---- */

static int expect_mismatch_argv(const char *name, char *const argv[], const char *want, char *why,
                                size_t cap) {
    const char *dir = test_dir(name);
    if (!dir) return 0;
    int agreed = compare_runs(dir, argv, NULL);
    snprintf(why, cap, "%s", th_why);
    th_failed = 0; /* the failure was the point */
    th_why[0] = '\0';
    return !agreed && strstr(why, want) != NULL;
}

static int expect_mismatch(const char *name, const char *script, const char *want, char *why, size_t cap) {
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    return expect_mismatch_argv(name, argv, want, why, cap);
}

static void comparison_detects_differences(void) {
    char why[sizeof th_why];
    CHECKF(expect_mismatch("self-stdout", "echo \"$LD_PRELOAD\"", "stdout differs", why, sizeof why),
           "output that depends on LD_PRELOAD went unnoticed: %s", why);
    CHECKF(expect_mismatch("self-status", "echo x; test -z \"$LD_PRELOAD\"", "exit 1, plain exit 0", why,
                           sizeof why),
           "a different exit status went unnoticed: %s", why);
    CHECKF(expect_mismatch("self-stderr", "echo x; echo \"$STRATA_OPTIONS\" >&2", "stderr differs", why,
                           sizeof why),
           "a different stderr went unnoticed: %s", why);
    CHECKF(expect_mismatch("self-plain", "echo x; exit 3", "the plain run failed (exit 3)", why, sizeof why),
           "a failing plain run went unnoticed: %s", why);
    /* this program, re-run in a mode that never allocates: strata is loaded but serves nothing */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    char *argv[] = {exe, "--no-malloc", NULL};
    CHECKF(expect_mismatch_argv("self-served", argv, "strata did not serve", why, sizeof why),
           "a run strata did not serve went unnoticed: %s", why);
}

/* ---- python ---- */

static const char py_alloc[] =
    "import json, collections, hashlib, random, gc\n"
    "random.seed(12345)\n"
    "d = {}\n"
    "for i in range(60000):\n"
    "    k = 'key%d_%s' % (i, 'x' * (i % 37))\n"
    "    d[k] = [i, str(i) * (i % 5), {'n': i, 's': k[::-1], 't': (i, float(i) / 7)}]\n"
    "for i in range(0, 60000, 3):\n"
    "    del d['key%d_%s' % (i, 'x' * (i % 37))]\n"
    "s = json.dumps(d, sort_keys=True)\n"
    "back = json.loads(s)\n"
    "print(len(d), len(s), back == json.loads(json.dumps(back, sort_keys=True)))\n"
    "print(hashlib.sha256(s.encode()).hexdigest())\n"
    "letters = 'abcdefghij'\n"
    "words = [''.join(random.choice(letters) for _ in range(random.randint(1, 9))) for _ in range(30000)]\n"
    "c = collections.Counter(words)\n"
    "print(len(c), c.most_common(4))\n"
    "ordered = sorted(set(words), key=lambda w: (len(w), w))\n"
    "print(len(ordered), hashlib.md5('\\n'.join(ordered).encode()).hexdigest())\n"
    "text = ' '.join(words)\n"
    "for a, b in [('ab', 'BA'), ('c', 'ccc'), ('BA', ''), ('ccc', 'c' * 5)]:\n"
    "    text = text.replace(a, b)\n"
    "print(len(text), hashlib.sha1(text.encode()).hexdigest())\n"
    "bufs = [bytearray(n) for n in range(0, 3000000, 9973)]\n"
    "for i, b in enumerate(bufs):\n"
    "    if b: b[-1] = i % 256\n"
    "print(len(bufs), sum(len(b) for b in bufs), sum(b[-1] for b in bufs if b))\n"
    "grow = []\n"
    "for i in range(200):\n"
    "    grow.append(b'z' * (i * 4099))\n"
    "    if i % 3 == 0: grow.pop(0)\n"
    "print(sum(map(len, grow)))\n"
    "class Node:\n"
    "    __slots__ = ('v', 'next')\n"
    "    def __init__(self, v, nxt): self.v, self.next = v, nxt\n"
    "head = None\n"
    "for i in range(80000): head = Node(i, head)\n"
    "total = 0\n"
    "while head: total += head.v; head = head.next\n"
    "cycles = []\n"
    "for i in range(20000):\n"
    "    a = {'i': i}; b = [a]; a['b'] = b; cycles.append(a if i % 2 else None)\n"
    "del cycles\n"
    "print(total, gc.collect() >= 0)\n"
    "print(sorted({str(i): i for i in range(1000)}.items())[:3], len(hex(3 ** 20000)))\n";

static const char py_threads[] =
    "import threading, queue, hashlib, concurrent.futures\n"
    "jobs = queue.Queue(maxsize=64)\n"
    "results = queue.Queue()\n"
    "def worker(wid):\n"
    "    while True:\n"
    "        item = jobs.get()\n"
    "        if item is None:\n"
    "            break\n"
    "        s = ','.join(str(i * item) for i in range(item % 400))\n"
    "        d = {str(i): [i] * 3 for i in range(item % 200)}\n"
    "        blob = bytes(item % 5000)\n"
    "        results.put((item, hashlib.sha1(s.encode()).hexdigest(), len(d), len(blob)))\n"
    "threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]\n"
    "for t in threads: t.start()\n"
    "for i in range(8000): jobs.put(i)\n"
    "for t in threads: jobs.put(None)\n"
    "for t in threads: t.join()\n"
    "out = []\n"
    "while not results.empty(): out.append(results.get())\n"
    "out.sort()\n"
    "print(len(out), hashlib.sha256(repr(out).encode()).hexdigest())\n"
    "def task(n):\n"
    "    l = [str(x) * 3 for x in range(n)]\n"
    "    return hashlib.md5(''.join(l).encode()).hexdigest()\n"
    "with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:\n"
    "    hashes = list(ex.map(task, range(0, 6000, 7)))\n"
    "print(len(hashes), hashlib.md5(''.join(hashes).encode()).hexdigest())\n"
    "lock = threading.Lock()\n"
    "shared = []\n"
    "def churn(k):\n"
    "    local = []\n"
    "    for i in range(12000):\n"
    "        local.append({'k': k, 'i': i, 's': 'v' * (i % 50)})\n"
    "        if len(local) > 100:\n"
    "            with lock: shared.extend(local[:50])\n"
    "            del local[:50]\n"
    "ts = [threading.Thread(target=churn, args=(k,)) for k in range(6)]\n"
    "for t in ts: t.start()\n"
    "for t in ts: t.join()\n"
    "while shared: shared.pop()\n"
    "print('churn done', threading.active_count())\n";

/* The real python3 (pyenv shims are shell scripts that exec several times). */
static int find_python(void) {
    if (python[0]) return 1;
    if (!have("python3")) return 0;
    char *argv[] = {"python3", "-c", "import sys; print(sys.executable)", NULL};
    th_result r = th_exec(argv, NULL);
    if (!r.exited || r.code != 0) return 0;
    r.out[strcspn(r.out, "\n")] = '\0';
    if (r.out[0] != '/' || access(r.out, X_OK) != 0) return 0;
    snprintf(python, sizeof python, "%s", r.out);
    return 1;
}

static void python_allocation_heavy(void) {
    if (!find_python()) SKIP("python3 is not installed");
    DIR_OR_FAIL(dir, "python");
    CHECK(write_file(dir, "alloc.py", py_alloc));
    char *argv[] = {python, "../alloc.py", NULL};
    static const char *const more[] = {"verbose=1,brk=0,mmap_threshold=16k", NULL};
    compare_runs(dir, argv, more);
}

static void python_threads_and_queues(void) {
    if (!find_python()) SKIP("python3 is not installed");
    DIR_OR_FAIL(dir, "python-threads");
    CHECK(write_file(dir, "threads.py", py_threads));
    char *argv[] = {python, "../threads.py", NULL};
    compare_runs(dir, argv, NULL);
}

/* Through the pyenv shim (if any) and `strata run`-style preloading of every exec on the way. */
static void python_through_path(void) {
    NEED("python3");
    DIR_OR_FAIL(dir, "python-path");
    compare_sh(dir, "sh",
               "python3 -c 'import sys, json; d = {str(i): list(range(i % 50)) for i in range(5000)};"
               " print(sys.version_info[:2] >= (3, 0), len(json.dumps(d)))'",
               NULL);
}

/* ---- C and C++ toolchains ---- */

static const char c_list_h[] =
    "#include <stddef.h>\n"
    "struct node { struct node *next; char *key; long value; };\n"
    "struct node *list_push(struct node *head, const char *key, long value);\n"
    "struct node *list_sort(struct node *head);\n"
    "void list_free(struct node *head);\n"
    "char *strbuf_append(char *buf, size_t *len, const char *s);\n";
static const char c_list_c[] =
    "#include <stdlib.h>\n#include <string.h>\n#include \"list.h\"\n"
    "struct node *list_push(struct node *head, const char *key, long value) {\n"
    "    struct node *n = malloc(sizeof *n);\n"
    "    n->key = strdup(key); n->value = value; n->next = head; return n;\n}\n"
    "static struct node *merge(struct node *a, struct node *b) {\n"
    "    struct node h, *t = &h;\n"
    "    while (a && b) { if (strcmp(a->key, b->key) <= 0) { t->next = a; a = a->next; }\n"
    "                     else { t->next = b; b = b->next; } t = t->next; }\n"
    "    t->next = a ? a : b; return h.next;\n}\n"
    "struct node *list_sort(struct node *head) {\n"
    "    if (!head || !head->next) return head;\n"
    "    struct node *slow = head, *fast = head->next;\n"
    "    while (fast && fast->next) { slow = slow->next; fast = fast->next->next; }\n"
    "    struct node *b = slow->next; slow->next = NULL;\n"
    "    return merge(list_sort(head), list_sort(b));\n}\n"
    "void list_free(struct node *head) {\n"
    "    while (head) { struct node *n = head->next; free(head->key); free(head); head = n; }\n}\n";
static const char c_strbuf_c[] =
    "#include <stdlib.h>\n#include <string.h>\n#include \"list.h\"\n"
    "char *strbuf_append(char *buf, size_t *len, const char *s) {\n"
    "    size_t n = strlen(s);\n"
    "    buf = realloc(buf, *len + n + 1);\n"
    "    memcpy(buf + *len, s, n + 1); *len += n; return buf;\n}\n";
static const char c_main_c[] =
    "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"list.h\"\n"
    "int main(void) {\n"
    "    struct node *l = NULL; unsigned x = 1;\n"
    "    for (int i = 0; i < 100000; i++) { char k[32]; x = x * 1103515245 + 12345;\n"
    "        snprintf(k, sizeof k, \"k%u\", (x >> 8) % 50000); l = list_push(l, k, i); }\n"
    "    l = list_sort(l);\n"
    "    unsigned long h = 5381; long n = 0;\n"
    "    for (struct node *p = l; p; p = p->next, n++) for (char *c = p->key; *c; c++) h = h * 33 + (unsigned char)*c;\n"
    "    printf(\"%ld nodes, first %s, hash %lu\\n\", n, l->key, h);\n"
    "    list_free(l);\n"
    "    char *s = NULL; size_t len = 0;\n"
    "    for (int i = 0; i < 20000; i++) { char t[16]; snprintf(t, sizeof t, \"%d,\", i); s = strbuf_append(s, &len, t); }\n"
    "    printf(\"%zu bytes, ends %s\\n\", len, s + len - 6);\n"
    "    free(s);\n"
    "    void *big[64];\n"
    "    for (int i = 0; i < 64; i++) { big[i] = calloc(1, (size_t)(i + 1) << 15); memset(big[i], i, 100); }\n"
    "    long sum = 0; for (int i = 0; i < 64; i++) { sum += ((unsigned char *)big[i])[99]; free(big[i]); }\n"
    "    printf(\"sum %ld\\n\", sum);\n"
    "    return 0;\n}\n";

static void gcc_multi_file_program(void) {
    NEED("gcc");
    NEED("ar");
    DIR_OR_FAIL(dir, "gcc");
    CHECK(write_file(dir, "list.h", c_list_h) && write_file(dir, "list.c", c_list_c) &&
          write_file(dir, "strbuf.c", c_strbuf_c) && write_file(dir, "main.c", c_main_c));
    /* object files and the linked program must be byte-identical too (no -g: no paths in them) */
    compare_sh(dir, "sh",
               "set -e\n"
               "cp ../list.h ../list.c ../strbuf.c ../main.c .\n"
               "gcc -O2 -Wall -Wextra -c list.c strbuf.c\n"
               "ar rcsD liblist.a list.o strbuf.o\n"
               "gcc -O1 -Wall -Wextra -o prog main.c -L. -llist\n"
               "gcc -O0 -o prog0 main.c list.c strbuf.c\n"
               "./prog\n"
               "./prog0\n"
               "cksum list.o strbuf.o liblist.a prog\n"
               "gcc -E -P main.c | cksum\n",
               NULL);
}

static const char cxx_src[] =
    "#include <algorithm>\n#include <cstdio>\n#include <map>\n#include <memory>\n#include <mutex>\n"
    "#include <numeric>\n#include <set>\n#include <string>\n#include <thread>\n"
    "#include <unordered_map>\n#include <vector>\n#include <deque>\n#include <list>\n#include <sstream>\n"
    "struct Shape { virtual ~Shape() = default; virtual long area() const = 0; };\n"
    "struct Rect : Shape { long w, h; Rect(long a, long b) : w(a), h(b) {} long area() const override { return w * h; } };\n"
    "struct Sq : Shape { long s; explicit Sq(long a) : s(a) {} long area() const override { return s * s; } };\n"
    "int main() {\n"
    "    std::map<std::string, std::vector<int>> m;\n"
    "    std::unordered_map<std::string, long> um;\n"
    "    unsigned x = 7;\n"
    "    for (int i = 0; i < 200000; i++) {\n"
    "        x = x * 1664525u + 1013904223u;\n"
    "        std::string k = \"key\" + std::to_string(x % 20000);\n"
    "        m[k].push_back(i);\n"
    "        um[k + \"_u\"] += i;\n"
    "    }\n"
    "    size_t total = 0; for (auto &p : m) total += p.second.size();\n"
    "    std::printf(\"map %zu keys %zu values first %s\\n\", m.size(), total, m.begin()->first.c_str());\n"
    "    std::vector<std::pair<std::string, long>> v(um.begin(), um.end());\n"
    "    std::sort(v.begin(), v.end());\n"
    "    std::printf(\"umap %zu %s=%ld\\n\", v.size(), v.back().first.c_str(), v.back().second);\n"
    "    std::vector<std::unique_ptr<Shape>> shapes;\n"
    "    for (long i = 0; i < 100000; i++) {\n"
    "        if (i % 3) shapes.push_back(std::make_unique<Rect>(i % 17, i % 23));\n"
    "        else shapes.push_back(std::make_unique<Sq>(i % 31));\n"
    "    }\n"
    "    long area = 0; for (auto &s : shapes) area += s->area();\n"
    "    shapes.erase(std::remove_if(shapes.begin(), shapes.end(), [](auto &s) { return s->area() % 2; }), shapes.end());\n"
    "    std::printf(\"shapes area %ld kept %zu\\n\", area, shapes.size());\n"
    "    std::set<std::string> set; std::deque<std::string> dq; std::list<std::shared_ptr<std::string>> li;\n"
    "    for (int i = 0; i < 50000; i++) {\n"
    "        std::ostringstream os; os << \"s\" << (i * 7919) % 30011 << std::string(i % 40, 'x');\n"
    "        set.insert(os.str()); dq.push_front(os.str()); li.push_back(std::make_shared<std::string>(os.str()));\n"
    "        if (dq.size() > 1000) dq.pop_back();\n"
    "    }\n"
    "    std::printf(\"set %zu first %s deque %zu list %zu\\n\", set.size(), set.begin()->c_str(), dq.size(), li.size());\n"
    "    std::mutex mu; std::map<int, std::vector<std::string>> shared;\n"
    "    std::vector<std::thread> th;\n"
    "    for (int t = 0; t < 4; t++) th.emplace_back([t, &mu, &shared] {\n"
    "        std::vector<std::string> mine;\n"
    "        for (int i = 0; i < 30000; i++) { mine.push_back(std::to_string(t * 100000 + i) + std::string(i % 64, 'q'));\n"
    "            if (mine.size() > 500) { std::lock_guard<std::mutex> g(mu); auto &d = shared[t]; d.insert(d.end(), mine.begin(), mine.end()); mine.clear(); } }\n"
    "        std::lock_guard<std::mutex> g(mu); auto &d = shared[t]; d.insert(d.end(), mine.begin(), mine.end());\n"
    "    });\n"
    "    for (auto &t : th) t.join();\n"
    "    size_t chars = 0; for (auto &p : shared) for (auto &s : p.second) chars += s.size();\n"
    "    std::printf(\"threads %zu lists %zu chars\\n\", shared.size(), chars);\n"
    "    return 0;\n"
    "}\n";

static void gxx_stl_program(void) {
    NEED("g++");
    DIR_OR_FAIL(dir, "gxx");
    CHECK(write_file(dir, "stl.cc", cxx_src));
    compare_sh(dir, "sh",
               "set -e\n"
               "cp ../stl.cc .\n"
               "g++ -std=c++17 -O1 -Wall -pthread -o stl stl.cc\n"
               "./stl\n"
               "cksum stl\n",
               NULL);
}

/* ---- git ---- */

static void git_repository(void) {
    NEED("git");
    DIR_OR_FAIL(dir, "git");
    CHECK(gen_tree(dir, "tree", 250));
    compare_sh(dir, "sh",
               "set -e\n"
               "export HOME=\"$PWD\" GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME='Strata Test'\n"
               "export GIT_AUTHOR_EMAIL=test@example.com GIT_COMMITTER_NAME='Strata Test'\n"
               "export GIT_COMMITTER_EMAIL=test@example.com\n"
               "export GIT_AUTHOR_DATE='2021-06-01T12:00:00+0000' GIT_COMMITTER_DATE='2021-06-01T12:00:00+0000'\n"
               "git init -q -b main repo\n"
               "cd repo\n"
               "git config gc.auto 0 && git config pack.threads 1 && git config core.autocrlf false\n"
               "cp -R ../../tree/. .\n"
               "git add -A\n"
               "git commit -q -m 'initial import'\n"
               "sed -i 's/alpha/ALPHA/g; s/zulu/Zulu zulu/' d03/*.txt d07/*.txt\n"
               "git commit -q -am 'second: edit two directories'\n"
               "git mv d01 moved\n"
               "git rm -q -r d02\n"
               "git commit -q -m 'third: move and remove'\n"
               "git tag -a v1 -m 'version one'\n"
               "git checkout -q -b feature\n"
               "echo feature >> moved/f0001.txt\n"
               "git commit -q -am 'feature work'\n"
               "git checkout -q main\n"
               "echo main > d04/new.txt && git add d04/new.txt && git commit -q -m 'main work'\n"
               "git merge -q --no-ff -m 'merge feature' feature\n"
               "git log --format='%H %T %P %s' --all\n"
               "git rev-parse HEAD v1 'HEAD^{tree}'\n"
               "git log -p --stat | cksum\n"
               "git ls-tree -r HEAD | cksum\n"
               "git ls-files | wc -l\n"
               "git diff --stat HEAD~3 HEAD | tail -n 1\n"
               "git grep -c tango -- d05 | head -n 5\n"
               "git blame -s d03/f0003.txt | cksum\n"
               "git gc -q\n"
               "git count-objects -v | grep -E '^(count|in-pack|packs|garbage):'\n"
               "git fsck --full --strict --no-progress\n"
               "echo fsck ok\n"
               "git clone -q . ../clone\n"
               "cd ../clone && git log --oneline | wc -l && git fsck --no-progress && git rev-parse HEAD\n",
               NULL);
}

/* ---- text tools ---- */

static void sort_many_lines(void) {
    NEED("sort");
    NEED("cksum");
    DIR_OR_FAIL(dir, "sort");
    CHECK(gen_lines(dir, "lines", 250000));
    static const char *const more[] = {"verbose=1,mmap_threshold=1m,trim_threshold=0", NULL};
    compare_sh(dir, "sh",
               "set -e\n"
               "sort -n ../lines | cksum\n"
               "sort -u ../lines | cksum\n"
               "sort -u ../lines | wc -l\n"
               "sort -S 200M -t '\t' -k2,2 -k1,1nr ../lines | cksum\n"
               "sort -S 1M --parallel=2 -T . ../lines | cksum\n"
               "sort -r -S 64M ../lines | head -n 3\n"
               "sort -n -u ../lines | tail -n 3\n"
               "cut -f2 ../lines | sort | uniq -c | sort -k1,1nr -k2 | head -n 5\n",
               more);
}

static void perl_hashes(void) {
    NEED("perl");
    DIR_OR_FAIL(dir, "perl");
    CHECK(gen_lines(dir, "lines", 100000));
    CHECK(write_file(dir, "hash.pl",
                     "use strict; use warnings; use Digest::MD5 qw(md5_hex);\n"
                     "my %h;\n"
                     "for my $i (0 .. 120000) { $h{\"k$i\"} = [$i, 'v' x ($i % 20), {n => $i}]; }\n"
                     "delete $h{\"k$_\"} for grep { $_ % 3 == 0 } 0 .. 120000;\n"
                     "my $s = 0;\n"
                     "for my $k (sort keys %h) { $s = ($s * 31 + length($k) + $h{$k}[0]) % 1000000007; }\n"
                     "print scalar(keys %h), \" $s \", md5_hex(join ',', sort keys %h), \"\\n\";\n"
                     "my (%count, %pos);\n"
                     "open my $fh, '<', '../lines' or die;\n"
                     "while (my $line = <$fh>) {\n"
                     "    chomp $line; my ($n, $rest) = split /\\t/, $line, 2;\n"
                     "    for my $w (split /[ -]/, $rest) { $count{$w}++; push @{$pos{$w}}, $n if $n % 7 == 0; }\n"
                     "}\n"
                     "for my $w ((sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4]) {\n"
                     "    printf \"%s %d %d\\n\", $w, $count{$w}, scalar @{$pos{$w} || []};\n"
                     "}\n"
                     "my $str = join '', map { chr(65 + $_ % 26) } 0 .. 300000;\n"
                     "(my $t = $str) =~ s/([AEIOU])/lc($1) x 3/ge;\n"
                     "my @parts = split /q/i, $t;\n"
                     "print length($t), ' ', scalar(@parts), ' ', md5_hex($t), \"\\n\";\n"
                     "my @sorted = sort { $a <=> $b } map { ($_ * 7919) % 100003 } 1 .. 200000;\n"
                     "print \"@sorted[0 .. 4] $sorted[-1]\\n\";\n"));
    compare_sh(dir, "sh", "perl ../hash.pl", NULL);
}

static void awk_arrays(void) {
    NEED("awk");
    DIR_OR_FAIL(dir, "awk");
    CHECK(gen_lines(dir, "lines", 200000));
    compare_sh(dir, "sh",
               "set -e\n"
               "awk -F '\t' '{ n[$2]++; s[$2] += $1; if (length($2) > max) max = length($2);"
               " split($2, parts, / /); first[parts[1]] = first[parts[1]] \",\" substr($1, 1, 2) }"
               " END { for (k in n) printf \"%s %d %d\\n\", k, n[k], s[k]; print \"max\", max;"
               " for (k in first) print k, length(first[k]) }' ../lines | sort > counts\n"
               "wc -l < counts && head -n 3 counts && cksum < counts\n"
               "awk 'BEGIN { for (i = 0; i < 100000; i++) a[i \"\"] = sprintf(\"%08x\", i * 2654435761 % 4294967296);"
               " for (i = 0; i < 100000; i += 2) delete a[i \"\"]; c = 0; for (k in a) c++;"
               " s = \"\"; for (i = 1; i < 5000; i += 2) s = s a[i \"\"]; print c, length(s), substr(s, 1, 24) }'\n"
               "awk '{ $1 = $1 * 2; gsub(/a/, \"AA\"); print }' ../lines | cksum\n",
               NULL);
}

static void sed_scripts(void) {
    NEED("sed");
    DIR_OR_FAIL(dir, "sed");
    CHECK(gen_lines(dir, "lines", 200000));
    compare_sh(dir, "sh",
               "set -e\n"
               "sed -e 's/^\\([0-9]*\\)\t\\(.*\\)$/\\2:\\1/' -e '/^a/d' -e 'y/abc/XYZ/' ../lines | cksum\n"
               "sed -n '$=' ../lines\n"
               "sed -E 's/(e+)([a-z])/<\\2\\1>/g; s/[0-9]{3,}/N/' ../lines | cksum\n"
               "head -n 3000 ../lines | sed -n '1!G;h;$p' | cksum\n"
               "sed -n '/strata/{s/strata/STRATA/gp}' ../lines | wc -l\n"
               "cp ../lines copy && sed -i 's/free/FREE/g' copy && cksum < copy\n",
               NULL);
}

static void tar_gzip_round_trip(void) {
    NEED("tar");
    NEED("gzip");
    DIR_OR_FAIL(dir, "tar");
    CHECK(gen_tree(dir, "tree", 300));
    compare_sh(dir, "sh",
               "set -e\n"
               "cp -R ../tree t\n"
               "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - t | gzip -n -9 > a.tgz\n"
               "cksum < a.tgz\n"
               "gzip -t a.tgz\n"
               "gzip -dc a.tgz | tar -tvf - | cksum\n"
               "mkdir x && tar -C x -xzf a.tgz\n"
               "diff -r t x/t && echo trees equal\n"
               "find x -type f | sort | xargs cksum | cksum\n"
               "tar -czf b.tgz t && gzip -dc b.tgz | tar -tf - | sort | cksum\n"
               "gzip -1 -c ../tree/d00/f0000.txt | gzip -dc | cmp - ../tree/d00/f0000.txt && echo gzip ok\n",
               NULL);
}

static void bash_command_substitutions(void) {
    NEED("bash");
    DIR_OR_FAIL(dir, "bash");
    compare_sh(dir, "bash",
               "set -e\n"
               "declare -A h; s=''\n"
               "for i in $(seq 1 250); do\n"
               "  x=$(printf '%05d' \"$i\")\n"
               "  y=$(echo \"$x\" | tr 0-9 a-j)\n"
               "  h[$y]=$i\n"
               "  s+=\"$y,\"\n"
               "done\n"
               "echo \"${#h[@]} ${#s}\"\n"
               "for k in $(printf '%s\\n' \"${!h[@]}\" | sort | head -n 5); do echo \"$k ${h[$k]}\"; done\n"
               "arr=(); for ((i = 0; i < 30000; i++)); do arr+=(\"item$i\"); done\n"
               "echo \"${#arr[@]} ${arr[29999]}\"\n"
               "unset 'arr[5]' 'arr[7]'; echo \"${#arr[@]}\"\n"
               "str=$(printf 'abc%.0s' $(seq 1 5000))\n"
               "echo \"${#str}\" \"${str//b/XY}\" | cksum\n"
               "f() { local a=$1; if ((a > 0)); then echo \"$(f $((a - 1)))$a\"; fi; }\n"
               "f 40 | cksum\n"
               "echo \"$( (for i in 1 2 3; do echo sub$i & done; wait) | sort | tr '\\n' ' ')\"\n",
               NULL);
}

/* ---- more common tools ---- */

static void xz_round_trip(void) {
    NEED("xz");
    DIR_OR_FAIL(dir, "xz");
    CHECK(gen_lines(dir, "lines", 60000));
    compare_sh(dir, "sh",
               "set -e\n"
               "xz -6 -T1 -c ../lines > a.xz && cksum < a.xz\n"
               "xz -T2 --block-size=1MiB -c ../lines > b.xz && cksum < b.xz\n"
               "xz -dc a.xz | cmp - ../lines && xz -dc -T2 b.xz | cmp - ../lines && echo xz ok\n"
               "xz -l a.xz | tail -n 1\n",
               NULL);
}

static void bzip2_round_trip(void) {
    NEED("bzip2");
    DIR_OR_FAIL(dir, "bzip2");
    CHECK(gen_lines(dir, "lines", 100000));
    compare_sh(dir, "sh",
               "set -e\n"
               "bzip2 -9 -c ../lines > a.bz2 && cksum < a.bz2\n"
               "bzip2 -dc a.bz2 | cmp - ../lines && echo bzip2 ok\n",
               NULL);
}

static void zstd_round_trip(void) {
    NEED("zstd");
    DIR_OR_FAIL(dir, "zstd");
    CHECK(gen_lines(dir, "lines", 150000));
    compare_sh(dir, "sh",
               "set -e\n"
               "zstd -q -12 --single-thread -c ../lines > a.zst && cksum < a.zst\n"
               "zstd -q -3 -T2 -c ../lines > b.zst && cksum < b.zst\n"
               "zstd -q -dc a.zst | cmp - ../lines && zstd -q -dc b.zst | cmp - ../lines && echo zstd ok\n",
               NULL);
}

static void find_grep_diff(void) {
    NEED("find");
    NEED("grep");
    NEED("diff");
    DIR_OR_FAIL(dir, "find-grep-diff");
    CHECK(gen_tree(dir, "tree", 300));
    CHECK(gen_lines(dir, "a", 20000));
    compare_sh(dir, "sh",
               "find ../tree -name '*.txt' -size +2k -printf '%P %s\\n' | sort | cksum\n"
               "find ../tree -type f -newer ../a -o -type f -name 'f00*' | sort | head -n 5\n"
               "grep -r -n 'strata segment' ../tree | sort | cksum\n"
               "grep -r -c -E '(malloc|free) (span|segment)+' ../tree | sort | tail -n 3\n"
               "grep -r -l -i -F -e ROMEO -e juliet ../tree | sort | wc -l\n"
               "grep -o -w 'k[a-z]*o' ../a | sort | uniq -c\n"
               "sed 's/tango/TANGO/; 5000,5100d; 12000a\\\ninserted line' ../a > b\n"
               "diff -u --label a --label b ../a b > d.out; echo \"diff status $?\"; cksum < d.out\n"
               "diff ../a b | head -n 8\n"
               "diff -r ../tree ../tree && echo same trees\n",
               NULL);
}

static void make_functions_and_jobs(void) {
    NEED("make");
    DIR_OR_FAIL(dir, "make");
    CHECK(write_file(dir, "Makefile",
                     "N := $(shell seq 1 400)\n"
                     "NAMES := $(foreach n,$(N),item$(n))\n"
                     "OUTS := $(patsubst %,out/%.txt,$(NAMES))\n"
                     "WORDS := $(subst ., ,$(join $(NAMES),$(addprefix .,$(N))))\n"
                     "all: $(OUTS) summary\n"
                     "out:\n\tmkdir -p out\n"
                     "out/%.txt: | out\n\t@echo $* $(words $(filter $*%,$(NAMES))) > $@\n"
                     "summary: $(OUTS)\n"
                     "\t@echo names $(words $(NAMES)) words $(words $(WORDS)) > $@\n"
                     "\t@echo $(sort $(wordlist 1,30,$(WORDS))) >> $@\n"
                     "\t@echo $(lastword $(sort $(NAMES))) $(firstword $(NAMES)) >> $@\n"
                     ".PHONY: all\n"));
    compare_sh(dir, "sh",
               "set -e\n"
               "cp ../Makefile .\n"
               "make -s -j2 all > /dev/null\n"
               "cat summary\n"
               "cat out/*.txt | cksum\n"
               "make -s -j2 all\n"
               "make -n all | wc -l\n"
               "rm out/item7.txt && make -s all && cat out/item7.txt\n",
               NULL);
}

static void sqlite_queries(void) {
    NEED("sqlite3");
    DIR_OR_FAIL(dir, "sqlite3");
    compare_sh(dir, "sh",
               "sqlite3 db.sqlite \"\n"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, pad BLOB);\n"
               "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)\n"
               "  INSERT INTO t SELECT i, 'key' || (i * 7919 % 5003), i * 31 % 1009, zeroblob(i % 300) FROM c;\n"
               "CREATE INDEX tk ON t(k);\n"
               "SELECT count(*), sum(v), count(DISTINCT k) FROM t;\n"
               "SELECT k, count(*), sum(v), max(length(pad)) FROM t GROUP BY k ORDER BY 2 DESC, 1 LIMIT 5;\n"
               "SELECT a.k, count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.id < 2000 GROUP BY a.k ORDER BY 2 DESC, 1 LIMIT 3;\n"
               "DELETE FROM t WHERE v % 3 = 0; VACUUM;\n"
               "SELECT count(*), group_concat(id) FROM (SELECT id FROM t ORDER BY k, id LIMIT 10);\n"
               "PRAGMA integrity_check;\n"
               "\"\n",
               NULL);
}

static void node_script(void) {
    NEED("node");
    DIR_OR_FAIL(dir, "node");
    CHECK(write_file(dir, "s.js",
                     "const crypto = require('crypto');\n"
                     "const m = new Map(); const o = {};\n"
                     "for (let i = 0; i < 200000; i++) { m.set('k' + i, [i, String(i).repeat(i % 7)]); o['p' + (i % 5000)] = i; }\n"
                     "for (let i = 0; i < 200000; i += 3) m.delete('k' + i);\n"
                     "const s = JSON.stringify([...m.entries()]);\n"
                     "const back = JSON.parse(s);\n"
                     "console.log(m.size, s.length, back.length, Object.keys(o).length);\n"
                     "console.log(crypto.createHash('sha256').update(s).digest('hex'));\n"
                     "const bufs = []; for (let i = 0; i < 300; i++) bufs.push(Buffer.alloc(i * 1031, i & 255));\n"
                     "console.log(Buffer.concat(bufs).length, crypto.createHash('md5').update(Buffer.concat(bufs)).digest('hex'));\n"
                     "const zlib = require('zlib');\n"
                     "const z = zlib.gzipSync(Buffer.from(s)); console.log(zlib.gunzipSync(z).toString() === s);\n"));
    compare_sh(dir, "sh", "node ../s.js", NULL);
}

static void cleanup(void) {
    if (!getenv("STRATA_KEEP_TMP")) rm_tree(root);
    else printf("   kept %s\n", root);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--no-malloc")) { /* for comparison_detects_differences */
        ssize_t w = write(1, "x\n", 2);
        _exit(w == 2 ? 0 : 1);
    }
    if (access(LIBSTRATA, R_OK) != 0) {
        printf("not ok setup: %s: %s (run make first)\n", LIBSTRATA, strerror(errno));
        return 1;
    }
    /* The same environment for every run: only LD_PRELOAD and STRATA_OPTIONS differ. */
    static const char *const drop[] = {"LD_PRELOAD", "STRATA_OPTIONS", "STRATA_LIBRARY", "MAKEFLAGS",
                                       "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GIT_DIR",
                                       "GIT_WORK_TREE", "GIT_INDEX_FILE", "PYTHONSTARTUP",
                                       "MALLOC_CHECK_", "MALLOC_PERTURB_", "GLIBC_TUNABLES"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) unsetenv(drop[i]);
    setenv("LC_ALL", "C", 1);
    setenv("TZ", "UTC", 1);
    setenv("PYTHONHASHSEED", "0", 1);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
    setenv("PERL_HASH_SEED", "0", 1);
    setenv("PERL_PERTURB_KEYS", "0", 1);
    if (!mkdtemp(root)) {
        printf("not ok setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    atexit(cleanup);

    RUN(comparison_detects_differences);
    RUN(python_allocation_heavy);
    RUN(python_threads_and_queues);
    RUN(python_through_path);
    RUN(gcc_multi_file_program);
    RUN(gxx_stl_program);
    RUN(git_repository);
    RUN(sort_many_lines);
    RUN(perl_hashes);
    RUN(awk_arrays);
    RUN(sed_scripts);
    RUN(tar_gzip_round_trip);
    RUN(bash_command_substitutions);
    RUN(xz_round_trip);
    RUN(bzip2_round_trip);
    RUN(zstd_round_trip);
    RUN(find_grep_diff);
    RUN(make_functions_and_jobs);
    RUN(sqlite_queries);
    RUN(node_script);
    return 0;
}
