/*
 * memlog.c — examples/memlog: records appended by many threads of many processes reach the
 * consumer exactly once, in each producer's order, intact; the file grows segment by segment
 * without moving what a writer holds; a full ring waits (or says EAGAIN); a producer killed
 * between reserve and commit costs one skipped record and nothing else; the command line
 * (create, produce, consume -f, stat, demo) does the same across processes, on strata too; bad
 * command lines are usage errors.
 */
#include "harness.h"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "memlog.h"

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif
#define MEMLOG STRATA_ROOT "/build/examples/memlog"
#define STRATA STRATA_ROOT "/bin/strata"

static uint32_t fnv1a(const void *p, size_t n) {
    const unsigned char *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

/* ---- binary records: producer, sequence number, length and checksum of the payload ---- */

struct rec {
    uint32_t producer, seq, len, sum;
    unsigned char payload[];
};

static size_t rec_make(unsigned char *buf, uint32_t producer, uint32_t seq) {
    struct rec *r = (struct rec *)buf;
    r->producer = producer;
    r->seq = seq;
    r->len = (seq * 13 + producer * 7) % 200;
    for (uint32_t i = 0; i < r->len; i++) r->payload[i] = (unsigned char)(producer * 31 + seq + i);
    r->sum = fnv1a(r->payload, r->len);
    return sizeof *r + r->len;
}

#define MAX_PRODUCERS 64
struct checker {
    uint32_t next[MAX_PRODUCERS];
    uint64_t records, skipped, bad, last_pos, seg;
    pid_t skipped_pid;
    size_t skipped_len;
    char why[200];
};

static int check_rec(const memlog_record *m, void *arg) {
    struct checker *c = arg;
    if (c->records + c->skipped && m->pos <= c->last_pos && !c->bad++)
        snprintf(c->why, sizeof c->why, "position %llu after %llu", (unsigned long long)m->pos,
                 (unsigned long long)c->last_pos);
    c->last_pos = m->pos;
    if (c->seg && m->pos % c->seg + 8 + m->len > c->seg && !c->bad++)
        snprintf(c->why, sizeof c->why, "record at %llu straddles a segment", (unsigned long long)m->pos);
    if (m->skipped) {
        c->skipped++;
        c->skipped_pid = m->pid;
        c->skipped_len = m->len;
        return 0;
    }
    const struct rec *r = m->data;
    if (m->len < sizeof *r || r->producer >= MAX_PRODUCERS || m->len != sizeof *r + r->len ||
        fnv1a(r->payload, r->len) != r->sum || r->seq != c->next[r->producer]) {
        if (!c->bad++)
            snprintf(c->why, sizeof c->why, "record at %llu: len %zu producer %u seq %u (expected %u)",
                     (unsigned long long)m->pos, m->len, r->producer, r->seq,
                     r->producer < MAX_PRODUCERS ? c->next[r->producer] : 0);
        return 0;
    }
    c->next[r->producer]++;
    c->records++;
    return 0;
}

struct prod {
    memlog *log;
    uint32_t producer, count;
};

static void *produce(void *arg) {
    struct prod *p = arg;
    unsigned char buf[512];
    for (uint32_t seq = 0; seq < p->count; seq++)
        if (memlog_append(p->log, buf, rec_make(buf, p->producer, seq)) != 0) _exit(3);
    return NULL;
}

/* `threads` producer threads in this process, numbered from first */
static void produce_threads(memlog *log, uint32_t first, int threads, uint32_t count) {
    pthread_t t[16];
    struct prod p[16];
    for (int i = 0; i < threads; i++) {
        p[i] = (struct prod){log, first + (uint32_t)i, count};
        pthread_create(&t[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
}

/* Consume while children run; then what is left. Returns the children that exited 0. */
static int consume_while(memlog *log, struct checker *c, const pid_t *kids, int nkids) {
    int ok = 0, left = nkids;
    while (left) {
        if (memlog_consume(log, check_rec, c, 0) > 0) continue;
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < nkids; i++)
                if (kids[i] == pid) left--, ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
        } else {
            usleep(100);
        }
    }
    while (memlog_consume(log, check_rec, c, 0) > 0) {}
    return ok;
}

/* 3 processes x 3 threads x 20000 records through a 256 KiB ring of 16 KiB segments. */
static void threads_and_processes_exactly_once(void) {
    enum { PROCS = 3, THREADS = 3, COUNT = 50000 };
    memlog_config cfg = {.segment_size = 16 << 10, .capacity = 256 << 10};
    memlog *log = memlog_create(NULL, &cfg, 0);
    CHECK(log);
    CHECK(memlog_consumer(log) == 0);
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        fflush(NULL);
        kids[p] = fork();
        if (kids[p] == 0) {
            produce_threads(log, (uint32_t)(p * THREADS), THREADS, COUNT);
            _exit(0);
        }
    }
    static struct checker c;
    memset(&c, 0, sizeof c);
    c.seg = cfg.segment_size;
    int ok = consume_while(log, &c, kids, PROCS);
    memlog_stat st;
    memlog_get_stat(log, &st);
    memlog_close(log);
    CHECKF(ok == PROCS, "%d of %d producer processes exited 0", ok, PROCS);
    CHECKF(c.bad == 0, "%llu bad records, the first: %s", (unsigned long long)c.bad, c.why);
    CHECKF(c.skipped == 0, "%llu skipped", (unsigned long long)c.skipped);
    for (int i = 0; i < PROCS * THREADS; i++)
        CHECKF(c.next[i] == COUNT, "producer %d: %u records of %d", i, c.next[i], COUNT);
    CHECK(c.records == (uint64_t)PROCS * THREADS * COUNT);
    CHECKF(st.claimed / st.capacity >= 20, "only %llu laps of the ring",
           (unsigned long long)(st.claimed / st.capacity));
    CHECK(st.consumed == st.claimed && st.segments == 16);
    printf("# %llu records, %llu laps of a %llu KiB ring\n", (unsigned long long)c.records,
           (unsigned long long)(st.claimed / st.capacity), (unsigned long long)(st.capacity >> 10));
}

static char tmpdir[64];
static const char *tmp_path(const char *name) {
    static char path[4][160];
    static int i;
    if (!tmpdir[0]) {
        strcpy(tmpdir, "/tmp/memlog-test-XXXXXX");
        if (!mkdtemp(tmpdir)) abort();
    }
    i = (i + 1) % 4;
    snprintf(path[i], sizeof path[i], "%s/%s", tmpdir, name);
    return path[i];
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

struct filler {
    memlog *log;
    int n;
};
static void *fill(void *arg) {
    struct filler *f = arg;
    unsigned char buf[512];
    for (int i = 0; i < f->n; i++)
        if (memlog_append(f->log, buf, rec_make(buf, 1, (uint32_t)i)) != 0) return (void *)1;
    return NULL;
}

/* The file starts as its header and grows a segment at a time; a record reserved in the first
 * segment is written after ten more have grown, through the same pointer. */
static void grows_segment_by_segment(void) {
    const char *path = tmp_path("grow.log");
    long page = sysconf(_SC_PAGESIZE);
    memlog_config cfg = {.segment_size = 16 << 10, .capacity = 1 << 20};
    memlog *log = memlog_create(path, &cfg, 0);
    CHECK(log);
    memlog_stat st;
    memlog_get_stat(log, &st);
    CHECKF(st.segments == 0 && file_size(path) == page, "segments %llu, size %ld",
           (unsigned long long)st.segments, file_size(path));
    unsigned char first[512];
    size_t n0 = rec_make(first, 0, 0);
    void *held = memlog_reserve(log, n0);
    CHECK(held);
    memlog_get_stat(log, &st);
    CHECK(st.segments == 1 && file_size(path) == page + (16 << 10));
    /* another thread appends ~10 segments' worth while this one holds its reservation */
    struct filler f = {log, 1500};
    pthread_t t;
    pthread_create(&t, NULL, fill, &f);
    void *res;
    pthread_join(t, &res);
    CHECK(res == NULL);
    memlog_get_stat(log, &st);
    CHECKF(st.segments >= 10 && file_size(path) == page + (long)st.segments * (16 << 10),
           "segments %llu, file %ld bytes", (unsigned long long)st.segments, file_size(path));
    memcpy(held, first, n0);
    memlog_commit(log, held);
    /* a second handle, as another process would, opens the file by name and consumes it */
    memlog *reader = memlog_open(path, 0);
    CHECK(reader);
    static struct checker c;
    memset(&c, 0, sizeof c);
    c.seg = cfg.segment_size;
    long got = memlog_consume(reader, check_rec, &c, 0);
    CHECKF(got == 1501 && c.bad == 0 && c.next[0] == 1 && c.next[1] == 1500,
           "got %ld, bad %llu (%s)", got, (unsigned long long)c.bad, c.why);
    memlog_close(reader);
    memlog_close(log);
    unlink(path);
}

/* No consumer: MEMLOG_NONBLOCK fails with EAGAIN once the ring is full; after the consumer
 * gives room back appends work again. A blocking producer waits for room instead. */
static void full_ring_waits_or_eagain(void) {
    memlog_config cfg = {.segment_size = 8 << 10, .capacity = 64 << 10};
    memlog *log = memlog_create(NULL, &cfg, MEMLOG_NONBLOCK);
    CHECK(log);
    static unsigned char buf[512];
    int n = 0;
    while (memlog_append(log, buf, 100) == 0) n++;
    CHECKF(errno == EAGAIN, "errno %d after %d records", errno, n);
    CHECKF(n * 112 > (56 << 10) && n * 112 <= (64 << 10), "%d records of 112 bytes fit", n);
    static struct checker c;
    memset(&c, 0, sizeof c);
    long got = memlog_consume(log, check_rec, &c, 10);
    CHECK(got == 10);
    CHECK(memlog_append(log, buf, 100) == 0);
    CHECK(memlog_consume(log, check_rec, &c, 0) == n - 10 + 1);
    memlog_close(log);

    /* blocking: 4 rings' worth from a thread while this one consumes now and then */
    log = memlog_create(NULL, &cfg, 0);
    CHECK(log);
    memset(&c, 0, sizeof c);
    struct filler f = {log, 2000};
    pthread_t t;
    pthread_create(&t, NULL, fill, &f);
    while (c.records < 2000 && c.bad == 0) {
        if (memlog_consume(log, check_rec, &c, 50) == 0) usleep(200);
    }
    void *res;
    pthread_join(t, &res);
    memlog_close(log);
    CHECK(res == NULL);
    CHECKF(c.records == 2000 && c.bad == 0, "%llu records, %s", (unsigned long long)c.records, c.why);
}

/* A producer killed with SIGKILL between reserve and commit: the consumer waits for it while it
 * lives, then (even before its parent has reaped it) skips its record with a marker and goes
 * on with the records claimed after it. */
static void killed_producer_is_skipped(void) {
    memlog_config cfg = {.segment_size = 16 << 10, .capacity = 1 << 20};
    memlog *log = memlog_create(NULL, &cfg, 0);
    CHECK(log);
    CHECK(memlog_consumer(log) == 0);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t victim = fork();
    if (victim == 0) {
        unsigned char buf[512];
        for (uint32_t i = 0; i < 100; i++) memlog_append(log, buf, rec_make(buf, 0, i));
        char *p = memlog_reserve(log, 50);
        memset(p, 'x', 20); /* half written */
        if (write(pfd[1], "r", 1) != 1) _exit(1);
        pause();
        _exit(0);
    }
    char byte;
    CHECK(read(pfd[0], &byte, 1) == 1);
    pid_t after = fork();
    if (after == 0) {
        produce_threads(log, 1, 2, 1000); /* producers 1 and 2, behind the victim's record */
        _exit(0);
    }
    int st;
    CHECK(waitpid(after, &st, 0) == after && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    static struct checker c;
    memset(&c, 0, sizeof c);
    long got = memlog_consume(log, check_rec, &c, 0);
    CHECKF(got == 100 && c.next[0] == 100 && c.skipped == 0, "got %ld while the victim lives", got);
    CHECK(memlog_consume(log, check_rec, &c, 0) == 0);
    kill(victim, SIGKILL);
    for (int i = 0; i < 1000; i++) { /* SIGKILL is asynchronous: wait for the zombie */
        char path[64], buf[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)victim);
        int fd = open(path, O_RDONLY);
        ssize_t k = fd >= 0 ? read(fd, buf, sizeof buf - 1) : 0;
        if (fd >= 0) close(fd);
        if (k > 0 && strstr(buf, ") Z")) break;
        usleep(1000);
    }
    got = memlog_consume(log, check_rec, &c, 0); /* the victim is a zombie, not reaped */
    CHECKF(got == 2001, "got %ld after the kill (records %llu, skipped %llu, next0 %u, bad %s)", got, (unsigned long long)c.records, (unsigned long long)c.skipped, c.next[0], c.why);
    CHECKF(c.skipped == 1 && c.skipped_pid == victim && c.skipped_len == 50,
           "skipped %llu, pid %d (victim %d), len %zu", (unsigned long long)c.skipped,
           (int)c.skipped_pid, (int)victim, c.skipped_len);
    CHECKF(c.bad == 0 && c.next[1] == 1000 && c.next[2] == 1000, "%s", c.why);
    memlog_stat s;
    memlog_get_stat(log, &s);
    CHECK(s.skipped == 1 && s.consumed == s.claimed);
    CHECK(waitpid(victim, &st, 0) == victim && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    memlog_close(log);
    close(pfd[0]);
    close(pfd[1]);
}

static void record_size_limits(void) {
    memlog_config cfg = {.segment_size = 8 << 10, .capacity = 32 << 10};
    memlog *log = memlog_create(NULL, &cfg, 0);
    CHECK(log);
    size_t max = memlog_max_record(log);
    CHECK(max == (8 << 10) - 8);
    static unsigned char big[9000];
    errno = 0;
    CHECK(memlog_append(log, big, max + 1) == -1 && errno == EMSGSIZE);
    CHECK(memlog_append(log, big, 10) == 0);
    CHECK(memlog_append(log, big, max) == 0); /* pads the first segment, fills the second */
    CHECK(memlog_append(log, big, 0) == 0);
    memlog_stat st;
    memlog_get_stat(log, &st);
    CHECKF(st.claimed == (16 << 10) + 16, "claimed %llu", (unsigned long long)st.claimed);
    memlog_close(log);
}

static void huge_pages_or_fallback(void) {
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 2);
        memlog_config cfg = {.segment_size = 2 << 20, .capacity = 4 << 20, .huge_pages = 1};
        memlog *log = memlog_create(NULL, &cfg, 0);
        if (!log || memlog_append(log, "x", 1) != 0) _exit(1);
        memlog_stat st;
        memlog_get_stat(log, &st);
        _exit(st.huge_pages ? 10 : 11);
    }
    close(pfd[1]);
    char err[1024];
    th_drain(pfd[0], err, sizeof err);
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && (WEXITSTATUS(st) == 10 || WEXITSTATUS(st) == 11), "status %d: %s", st, err);
    if (WEXITSTATUS(st) == 11)
        CHECKF(strstr(err, "memlog: ") && strstr(err, "huge pages not available"), "stderr: %s", err);
    else
        CHECKF(err[0] == '\0', "stderr: %s", err);
    printf("# huge pages: %s\n", WEXITSTATUS(st) == 10 ? "yes" : "fell back to normal pages");
}

/* ---- the command line ---- */

static pid_t spawn(char *const argv[]) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Check lines "ID.T SEQ CRC PAYLOAD" of `ids` x `threads` producers of `count` records. */
static int check_lines(char *text, int ids, int threads, unsigned long count, char *why, size_t wn) {
    unsigned long next[16][16] = {{0}};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int id, t, off = 0;
        unsigned long seq;
        unsigned crc;
        if (sscanf(line, "p%d.%d %lu %x %n", &id, &t, &seq, &crc, &off) != 4 || id < 0 ||
            id >= ids || t < 0 || t >= threads) {
            snprintf(why, wn, "bad line: %.80s", line);
            return 0;
        }
        const char *payload = line + off;
        if (fnv1a(payload, strlen(payload)) != crc || seq != next[id][t]) {
            snprintf(why, wn, "line %.80s: expected seq %lu", line, next[id][t]);
            return 0;
        }
        next[id][t]++;
    }
    for (int i = 0; i < ids; i++)
        for (int t = 0; t < threads; t++)
            if (next[i][t] != count) {
                snprintf(why, wn, "p%d.%d: %lu records of %lu", i, t, next[i][t], count);
                return 0;
            }
    return 1;
}

/* memlog consume -f runs while three memlog produce processes of two threads write four rings'
 * worth; after SIGTERM it drains and exits; OUT holds every record once, in order. */
static void cli_concurrent_consumer(void) {
    char log[160], out[160];
    snprintf(log, sizeof log, "%s", tmp_path("cli.log"));
    snprintf(out, sizeof out, "%s", tmp_path("cli.out"));
    th_result r = th_exec((char *[]){MEMLOG, "create", log, "-s", "64K", "-c", "512K", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "create: %d %s", r.code, r.err);
    pid_t consumer = spawn((char *[]){MEMLOG, "consume", log, out, "-f", NULL});
    pid_t prod[3];
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%d", i);
        prod[i] = spawn((char *[]){MEMLOG, "produce", log, "-t", "2", "-n", "8000", "-i", id, NULL});
    }
    int st, ok = 0;
    for (int i = 0; i < 3; i++)
        ok += waitpid(prod[i], &st, 0) == prod[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    kill(consumer, SIGTERM);
    CHECK(waitpid(consumer, &st, 0) == consumer);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "consumer status %d", st);
    CHECKF(ok == 3, "%d of 3 producers exited 0", ok);
    size_t len;
    char *text = slurp(out, &len);
    CHECK(text);
    char why[200] = "";
    int good = check_lines(text, 3, 2, 8000, why, sizeof why);
    free(text);
    CHECKF(good, "%s", why);
    r = th_exec((char *[]){MEMLOG, "stat", log, NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "0 records skipped") &&
               strstr(r.out, "consumer pid 0"), "stat: %s %s", r.out, r.err);
    unsigned long long claimed = 0;
    const char *c = strstr(r.out, "claimed ");
    CHECK(c && sscanf(c, "claimed %llu", &claimed) == 1 && claimed > 4 * (512 << 10));
    unlink(log);
    unlink(out);
}

static void cli_demo_on_strata(void) {
    th_result r = th_exec((char *[]){STRATA, "run", "--", MEMLOG, "demo", "-p", "2", "-t", "2", "-n",
                                     "20000", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d: %s %s", r.code, r.out, r.err);
    CHECKF(strstr(r.out, "80000 consumed in order, 0 out of order or damaged, 0 skipped, 0 missing"),
           "%s", r.out);
}

static int usage_error(char *const argv[], const char *says) {
    th_result r = th_exec(argv, NULL);
    return r.exited && r.code == 2 && strstr(r.err, "usage: memlog") && (!says || strstr(r.err, says));
}

static void cli_bad_arguments(void) {
    const char *log = tmp_path("bad.log");
    CHECK(usage_error((char *[]){MEMLOG, NULL}, NULL));
    CHECK(usage_error((char *[]){MEMLOG, "frobnicate", NULL}, "unknown command: frobnicate"));
    CHECK(usage_error((char *[]){MEMLOG, "consume", (char *)log, NULL}, "LOG and OUT"));
    CHECK(usage_error((char *[]){MEMLOG, "produce", (char *)log, "-t", "two", NULL}, "-t: not a number"));
    CHECK(usage_error((char *[]){MEMLOG, "create", (char *)log, "-s", "12Q", NULL}, "-s: not a size"));
    CHECK(usage_error((char *[]){MEMLOG, "demo", "-x", NULL}, NULL));
    th_result r = th_exec((char *[]){MEMLOG, "create", (char *)log, "-s", "1000", NULL}, NULL);
    CHECKF(r.exited && r.code == 2 && strstr(r.err, "memlog: ") && strstr(r.err, "segment size 1000"),
           "code %d: %s", r.code, r.err);
    r = th_exec((char *[]){MEMLOG, "consume", "/nonexistent/log", "-", NULL}, NULL);
    CHECKF(r.exited && r.code == 1 && !strncmp(r.err, "memlog: /nonexistent/log: cannot open", 37),
           "code %d: %s", r.code, r.err);
    r = th_exec((char *[]){MEMLOG, "stat", STRATA_ROOT "/README.md", NULL}, NULL);
    CHECKF(r.exited && r.code == 1 && strstr(r.err, "README.md: not a memlog file"), "code %d: %s",
           r.code, r.err);
    unlink(log);
}

int main(void) {
    RUN(threads_and_processes_exactly_once);
    RUN(grows_segment_by_segment);
    RUN(full_ring_waits_or_eagain);
    RUN(killed_producer_is_skipped);
    RUN(record_size_limits);
    RUN(huge_pages_or_fallback);
    RUN(cli_concurrent_consumer);
    RUN(cli_demo_on_strata);
    RUN(cli_bad_arguments);
    if (tmpdir[0]) rmdir(tmpdir);
    return 0;
}
