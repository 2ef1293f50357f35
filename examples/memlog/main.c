/*
 * memlog — the command line of the shared-mapping log (memlog.h).
 *
 *   memlog create LOG [-s SEGMENT] [-c CAPACITY] [-H]
 *   memlog write LOG [TEXT...]                       TEXT, or each line of stdin, as a record
 *   memlog produce LOG [-t THREADS] [-n COUNT] [-i ID]   numbered, checksummed test records
 *   memlog consume LOG OUT [-f]                      committed records to OUT in order
 *   memlog stat LOG
 *   memlog demo [-p PROCESSES] [-t THREADS] [-n COUNT] [-H]
 *
 * Exit status: 0, 1 on an error (one "memlog: ..." line), 2 on a bad command line (usage).
 */
#define _GNU_SOURCE
#include "memlog.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: memlog create LOG [-s SEGMENT] [-c CAPACITY] [-H]\n"
    "       memlog write LOG [TEXT...]\n"
    "       memlog produce LOG [-t THREADS] [-n COUNT] [-i ID]\n"
    "       memlog consume LOG OUT [-f]\n"
    "       memlog stat LOG\n"
    "       memlog demo [-p PROCESSES] [-t THREADS] [-n COUNT] [-H]\n"
    "  create   a log file: SEGMENT bytes per segment (default 1M), CAPACITY bytes in the ring\n"
    "           (default 64M), both powers of two (K, M, G suffixes); -H: huge pages where the\n"
    "           system has them\n"
    "  write    append each TEXT, or each line of stdin, as a record (with its newline)\n"
    "  produce  THREADS threads (default 1) each append COUNT records (default 1000) of the form\n"
    "           \"ID.THREAD SEQ CRC PAYLOAD\", CRC the FNV-1a hash of PAYLOAD in hex\n"
    "  consume  write the committed records to OUT (\"-\": stdout) in order, with a line\n"
    "           \"#memlog skipped ...\" for a record whose producer died; stops when it has\n"
    "           caught up, or with -f follows the log until SIGINT or SIGTERM\n"
    "  stat     print the log's state\n"
    "  demo     an anonymous log: PROCESSES forked producers (default 2) of THREADS threads\n"
    "           (default 2) append COUNT records each (default 100000) while this process\n"
    "           consumes and checks them\n";

static void usage(const char *why, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage(const char *why, ...) {
    if (why) {
        va_list ap;
        va_start(ap, why);
        fputs("memlog: ", stderr);
        vfprintf(stderr, why, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fputs(usage_text, stderr);
    exit(2);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("memlog: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* A count or a size: digits with an optional K, M or G suffix. */
static unsigned long long number(const char *opt, const char *s, int sizes) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (sizes && *end && !end[1]) {
        int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
                  : *end == 'G' || *end == 'g' ? 30 : -1;
        if (shift > 0 && v <= (~0ull >> shift)) v <<= shift, end++;
    }
    if (errno || end == s || *end || *s == '-') usage("%s: not a %s: %s", opt, sizes ? "size" : "number", s);
    return v;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static memlog *open_log(const char *path) {
    memlog *log = memlog_open(path, 0);
    if (!log) exit(1); /* memlog_open said why */
    return log;
}

/* ---- create, write, stat ---- */

static int cmd_create(int argc, char **argv) {
    memlog_config cfg = {0};
    int c;
    while ((c = getopt(argc, argv, "s:c:H")) != -1) {
        if (c == 's') cfg.segment_size = number("-s", optarg, 1);
        else if (c == 'c') cfg.capacity = number("-c", optarg, 1);
        else if (c == 'H') cfg.huge_pages = 1;
        else usage(NULL);
    }
    if (argc - optind != 1) usage("create: one LOG expected");
    memlog *log = memlog_create(argv[optind], &cfg, 0);
    if (!log) return errno == EINVAL ? 2 : 1;
    memlog_close(log);
    return 0;
}

static void append_line(memlog *log, const char *path, const char *text, size_t len) {
    char *p = memlog_reserve(log, len + 1);
    if (!p) die("%s: append: %s", path, strerror(errno));
    memcpy(p, text, len);
    p[len] = '\n';
    memlog_commit(log, p);
}

static int cmd_write(int argc, char **argv) {
    if (argc < 2) usage("write: LOG expected");
    memlog *log = open_log(argv[1]);
    if (argc > 2) {
        for (int i = 2; i < argc; i++) append_line(log, argv[1], argv[i], strlen(argv[i]));
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) > 0)
            append_line(log, argv[1], line, (size_t)n - (line[n - 1] == '\n'));
        free(line);
    }
    memlog_close(log);
    return 0;
}

static int cmd_stat(int argc, char **argv) {
    if (argc != 2) usage("stat: one LOG expected");
    memlog *log = open_log(argv[1]);
    memlog_stat st;
    memlog_get_stat(log, &st);
    printf("%s: capacity %llu bytes in segments of %llu, %llu segments grown; claimed %llu bytes, "
           "consumed %llu, %llu records skipped; consumer pid %d; huge pages %s\n",
           argv[1], (unsigned long long)st.capacity, (unsigned long long)st.segment_size,
           (unsigned long long)st.segments, (unsigned long long)st.claimed,
           (unsigned long long)st.consumed, (unsigned long long)st.skipped, (int)st.consumer,
           st.huge_pages ? "yes" : "no");
    memlog_close(log);
    return 0;
}

/* ---- produce: numbered, checksummed records ---- */

static uint32_t fnv1a(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

struct producer {
    memlog *log;
    const char *path, *id;
    int thread;
    unsigned long count;
};

static void *produce_thread(void *arg) {
    struct producer *pr = arg;
    for (unsigned long seq = 0; seq < pr->count; seq++) {
        char payload[64], rec[160];
        size_t plen = (seq * 7 + (size_t)pr->thread * 3) % 61;
        for (size_t i = 0; i < plen; i++) payload[i] = (char)('a' + (seq + i) % 26);
        int n = snprintf(rec, sizeof rec, "%s.%d %lu %08x %.*s\n", pr->id, pr->thread, seq,
                         fnv1a(payload, plen), (int)plen, payload);
        if (n < 0 || (size_t)n >= sizeof rec) die("produce: ID too long");
        if (memlog_append(pr->log, rec, (size_t)n) != 0)
            die("%s: append: %s", pr->path, strerror(errno));
    }
    return NULL;
}

static int cmd_produce(int argc, char **argv) {
    unsigned long threads = 1, count = 1000;
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%d", (int)getpid());
    const char *id = idbuf;
    int c;
    while ((c = getopt(argc, argv, "t:n:i:")) != -1) {
        if (c == 't') threads = number("-t", optarg, 0);
        else if (c == 'n') count = number("-n", optarg, 0);
        else if (c == 'i') id = optarg;
        else usage(NULL);
    }
    if (argc - optind != 1) usage("produce: one LOG expected");
    if (threads < 1 || threads > 1024) usage("-t: between 1 and 1024 threads");
    if (strlen(id) > 40 || strpbrk(id, " \n")) usage("-i: at most 40 characters, no spaces");
    memlog *log = open_log(argv[optind]);
    pthread_t tid[1024];
    struct producer pr[1024];
    for (unsigned long i = 0; i < threads; i++) {
        pr[i] = (struct producer){log, argv[optind], id, (int)i, count};
        if (pthread_create(&tid[i], NULL, produce_thread, &pr[i]) != 0) die("pthread_create failed");
    }
    for (unsigned long i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    memlog_close(log);
    return 0;
}

/* ---- consume ---- */

struct sink {
    int fd;
    const char *name;
    size_t len;
    char buf[1 << 16];
};

static void sink_flush(struct sink *s) {
    for (size_t done = 0; done < s->len;) {
        ssize_t n = write(s->fd, s->buf + done, s->len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("%s: write: %s", s->name, strerror(errno));
        done += (size_t)n;
    }
    s->len = 0;
}

static void sink_put(struct sink *s, const void *data, size_t len) {
    if (s->len + len > sizeof s->buf) sink_flush(s);
    if (len > sizeof s->buf) {
        memcpy(s->buf, data, sizeof s->buf); /* longer than the buffer: write it in pieces */
        s->len = sizeof s->buf;
        sink_flush(s);
        sink_put(s, (const char *)data + sizeof s->buf, len - sizeof s->buf);
        return;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

static int to_sink(const memlog_record *r, void *arg) {
    struct sink *s = arg;
    if (r->skipped) {
        char line[160];
        int n = snprintf(line, sizeof line,
                         "#memlog skipped %zu bytes at offset %llu: pid %d died before committing\n",
                         r->len, (unsigned long long)r->pos, (int)r->pid);
        sink_put(s, line, (size_t)n);
    } else {
        sink_put(s, r->data, r->len);
    }
    return 0;
}

static volatile sig_atomic_t stop_requested;
static void on_stop(int sig) { stop_requested++; }

static int cmd_consume(int argc, char **argv) {
    int follow = 0, c;
    while ((c = getopt(argc, argv, "f")) != -1) {
        if (c == 'f') follow = 1;
        else usage(NULL);
    }
    if (argc - optind != 2) usage("consume: LOG and OUT expected");
    const char *path = argv[optind], *out = argv[optind + 1];
    memlog *log = open_log(path);
    if (memlog_consumer(log) != 0)
        die("%s: %s", path, errno == EBUSY ? "another live process is its consumer" : strerror(errno));
    static struct sink s;
    s.name = out;
    s.fd = strcmp(out, "-") ? open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : 1;
    if (s.fd < 0) die("%s: cannot open: %s", out, strerror(errno));
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Without -f: stop once what was claimed at the start is written out. With -f: the same,
     * counted from the first SIGINT or SIGTERM; a second one stops at once. */
    memlog_stat st;
    memlog_get_stat(log, &st);
    uint64_t until = st.claimed;
    int stopping = !follow;
    unsigned idle = 0;
    while (stop_requested < 2) {
        long n = memlog_consume(log, to_sink, &s, 4096);
        if (n < 0) die("%s: corrupt record (%s)", path, strerror(errno));
        sink_flush(&s);
        if (n >= 1024) { /* busy: read on; with fewer, let records gather rather than chase */
            idle = 0;     /* the producers cache line by cache line */
            continue;
        }
        if (n > 0) idle = 0;
        memlog_get_stat(log, &st);
        if (!stopping && stop_requested) stopping = 1, until = st.claimed;
        if (stopping && st.consumed >= until) break;
        struct timespec ts = {0, idle < 10 ? 100 * 1000 : 1000 * 1000};
        idle++;
        nanosleep(&ts, NULL);
    }
    memlog_close(log);
    if (s.fd != 1) close(s.fd);
    return 0;
}

/* ---- demo ---- */

struct demo_rec {
    uint32_t producer, seq;
    char text[24];
};

struct demo_check {
    uint32_t *next; /* per producer: the sequence number expected next */
    unsigned long records, bad, skipped;
};

static int demo_check(const memlog_record *r, void *arg) {
    struct demo_check *c = arg;
    const struct demo_rec *d = r->data;
    if (r->skipped) c->skipped++;
    else if (r->len != sizeof *d || c->next[d->producer] != d->seq) c->bad++;
    else c->next[d->producer]++, c->records++;
    return 0;
}

struct demo_thread {
    memlog *log;
    uint32_t producer;
    unsigned long count;
};

static void *demo_produce(void *arg) {
    struct demo_thread *t = arg;
    for (uint32_t seq = 0; seq < t->count; seq++) {
        struct demo_rec d = {t->producer, seq, "heartbeat"};
        if (memlog_append(t->log, &d, sizeof d) != 0) die("demo: append: %s", strerror(errno));
    }
    return NULL;
}

static int cmd_demo(int argc, char **argv) {
    unsigned long procs = 2, threads = 2, count = 100000;
    memlog_config cfg = {.segment_size = 256 << 10, .capacity = 4 << 20};
    int c;
    while ((c = getopt(argc, argv, "p:t:n:H")) != -1) {
        if (c == 'p') procs = number("-p", optarg, 0);
        else if (c == 't') threads = number("-t", optarg, 0);
        else if (c == 'n') count = number("-n", optarg, 0);
        else if (c == 'H') cfg.huge_pages = 1, cfg.segment_size = 2 << 20;
        else usage(NULL);
    }
    if (optind != argc) usage("demo: unexpected argument %s", argv[optind]);
    if (procs < 1 || procs > 64 || threads < 1 || threads > 64)
        usage("demo: 1 to 64 processes and threads");
    if (count > 0xffffffffu) usage("-n: at most 4294967295 records");
    memlog *log = memlog_create(NULL, &cfg, 0);
    if (!log) return 1;
    if (memlog_consumer(log) != 0) die("demo: %s", strerror(errno));
    double t0 = now();
    pid_t pids[64];
    for (unsigned long p = 0; p < procs; p++) {
        fflush(NULL);
        pids[p] = fork();
        if (pids[p] < 0) die("fork: %s", strerror(errno));
        if (pids[p] == 0) {
            pthread_t tid[64];
            struct demo_thread dt[64];
            for (unsigned long i = 0; i < threads; i++) {
                dt[i] = (struct demo_thread){log, (uint32_t)(p * threads + i), count};
                pthread_create(&tid[i], NULL, demo_produce, &dt[i]);
            }
            for (unsigned long i = 0; i < threads; i++) pthread_join(tid[i], NULL);
            _exit(0);
        }
    }
    struct demo_check chk = {calloc(procs * threads, sizeof(uint32_t)), 0, 0, 0};
    unsigned long total = procs * threads * count, running = procs;
    while (chk.records + chk.skipped < total && (running || chk.bad == 0)) {
        long n = memlog_consume(log, demo_check, &chk, 0);
        if (n < 0) die("demo: corrupt record");
        if (n == 0) {
            int st;
            if (running && waitpid(-1, &st, WNOHANG) > 0) running--;
            else if (!running) break;
            else sched_yield();
        }
    }
    while (waitpid(-1, NULL, 0) > 0) {}
    double dt = now() - t0;
    memlog_stat st;
    memlog_get_stat(log, &st);
    printf("memlog demo: %lu processes x %lu threads x %lu records through a %llu KiB ring "
           "(%llu laps): %lu consumed in order, %lu out of order or damaged, %lu skipped, %lu "
           "missing; %.3f s, %.2f M records/s\n",
           procs, threads, count, (unsigned long long)(st.capacity >> 10),
           (unsigned long long)(st.claimed / st.capacity), chk.records, chk.bad, chk.skipped,
           total - chk.records - chk.skipped, dt, (double)chk.records / dt / 1e6);
    free(chk.next);
    memlog_close(log);
    return chk.records == total ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) usage(NULL);
    const char *cmd = argv[1];
    argc--, argv++;
    optind = 1;
    if (!strcmp(cmd, "create")) return cmd_create(argc, argv);
    if (!strcmp(cmd, "write")) return cmd_write(argc, argv);
    if (!strcmp(cmd, "produce")) return cmd_produce(argc, argv);
    if (!strcmp(cmd, "consume")) return cmd_consume(argc, argv);
    if (!strcmp(cmd, "stat")) return cmd_stat(argc, argv);
    if (!strcmp(cmd, "demo")) return cmd_demo(argc, argv);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    usage("unknown command: %s", cmd);
}
