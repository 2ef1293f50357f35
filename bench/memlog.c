/*
 * memlog — records per second through examples/memlog against the two usual ways of logging
 * from several threads: fprintf + fflush to a shared FILE (stdio's lock, a write per record) and
 * a buffer behind a pthread mutex drained by a writer thread.
 *
 *   build/bench/memlog [--runs N] [--records N] [--threads LIST] [--dir DIR] [--only METHOD]
 *                      [--raw]
 *
 * Every producer thread formats the same ~60-byte line for each of its records (with --raw, the
 * line is formatted once and only its record number is rewritten, so that the table shows the
 * cost of the log itself rather than of snprintf). Every method
 * ends with all records written to a file in DIR (default /tmp) by write(2), and the file's size
 * is checked against the bytes produced. The memlog ring is a file in /dev/shm (8 MiB in 1 MiB
 * segments) drained by a consumer thread; the mutex buffer is two 4 MiB halves swapped by its
 * writer thread. Runs are interleaved (each method at each thread count, then again) and the
 * table gives medians in millions of records per second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "memlog.h"

static unsigned long records = 200000; /* per thread */
static char out_path[512], log_path[512];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "bench/memlog: %s: %s\n", what, strerror(errno));
    exit(1);
}

#define LINE_FMT "thread %02d record %08lu value %016lx level info\n"
#define SEQ_AT 17 /* where the 8 digits of the record number are in the line */
static int raw;       /* --raw: lines formatted once, only the record number patched in */

static int format_line(char *buf, size_t n, int thread, unsigned long i) {
    static __thread int len; /* every field has a fixed width: so has the line */
    if (raw && i > 0) {      /* buf holds the previous line */
        for (int d = SEQ_AT + 7; d >= SEQ_AT; d--, i /= 10) buf[d] = (char)('0' + i % 10);
        return len;
    }
    return len = snprintf(buf, n, LINE_FMT, thread, i, raw ? 0 : i * 0x9e3779b97f4a7c15ul);
}

static void write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        p += w, n -= (size_t)w;
    }
}

enum { M_MEMLOG, M_MUTEX, M_FPRINTF, METHODS };
static const char *method_name[METHODS] = {"memlog", "mutex buffer", "fprintf+fflush"};

struct run {
    int thread, method;
    void *shared; /* the FILE, the struct mbuf or the memlog */
    atomic_ulong *bytes;
};

struct mbuf;
static void mutex_put(struct mbuf *b, const char *line, size_t n);

/* A producer thread: its records, one at a time, by its method. */
static void *producer(void *arg) {
    struct run *r = arg;
    unsigned long bytes = 0;
    char line[128];
    for (unsigned long i = 0; i < records; i++) {
        int n;
        if (r->method == M_FPRINTF && !raw) {
            n = fprintf(r->shared, LINE_FMT, r->thread, i, i * 0x9e3779b97f4a7c15ul);
        } else {
            n = format_line(line, sizeof line, r->thread, i);
            if (r->method == M_FPRINTF) fwrite(line, 1, (size_t)n, r->shared);
            else if (r->method == M_MUTEX) mutex_put(r->shared, line, (size_t)n);
            else if (memlog_append(r->shared, line, (size_t)n) != 0) die("memlog_append");
        }
        if (r->method == M_FPRINTF) fflush(r->shared);
        bytes += (unsigned long)n;
    }
    atomic_fetch_add(r->bytes, bytes);
    return NULL;
}

/* ---- a mutex-protected buffer, two halves, a writer thread ---- */

#define HALF (4u << 20)
struct mbuf {
    pthread_mutex_t lock;
    pthread_cond_t filled, drained;
    char *cur, *spare;
    size_t len;
    int fd, done, writing;
};

static void mutex_put(struct mbuf *b, const char *line, size_t n) {
    pthread_mutex_lock(&b->lock);
    while (b->len + n > HALF) { /* both halves busy: wait for the writer */
        pthread_cond_signal(&b->filled);
        pthread_cond_wait(&b->drained, &b->lock);
    }
    memcpy(b->cur + b->len, line, n);
    b->len += n;
    if (b->len > HALF / 2 && !b->writing) pthread_cond_signal(&b->filled);
    pthread_mutex_unlock(&b->lock);
}

static void *mutex_writer(void *arg) {
    struct mbuf *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->len == 0 && !b->done) pthread_cond_wait(&b->filled, &b->lock);
        if (b->len == 0 && b->done) break;
        char *full = b->cur;
        size_t n = b->len;
        b->cur = b->spare, b->spare = full, b->len = 0, b->writing = 1;
        pthread_cond_broadcast(&b->drained);
        pthread_mutex_unlock(&b->lock);
        write_all(b->fd, full, n);
        pthread_mutex_lock(&b->lock);
        b->writing = 0;
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- memlog ---- */

struct drain {
    memlog *log;
    int fd;
    atomic_int done;
    size_t len;
    char buf[1 << 20];
};

static int to_buf(const memlog_record *rec, void *arg) {
    struct drain *d = arg;
    if (d->len + rec->len > sizeof d->buf) write_all(d->fd, d->buf, d->len), d->len = 0;
    memcpy(d->buf + d->len, rec->data, rec->len);
    d->len += rec->len;
    return 0;
}

static void *memlog_writer(void *arg) {
    struct drain *d = arg;
    for (;;) {
        int finished = atomic_load(&d->done);
        long n = memlog_consume(d->log, to_buf, d, 0);
        if (n < 0) die("memlog_consume");
        if (d->len) write_all(d->fd, d->buf, d->len), d->len = 0;
        if (n == 0 && finished) break;
        /* Few records: let more gather before reading on, rather than chase the producers line
         * by line (each read would take the cache line they are writing away from them). */
        if (n < 1024 && !finished) nanosleep(&(struct timespec){0, 50 * 1000}, NULL);
    }
    return NULL;
}

/* ---- one timed run ---- */

static double run_once(int method, int nthreads) {
    int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(out_path);
    atomic_ulong bytes = 0;
    pthread_t tid[64], writer = 0;
    struct run r[64];
    FILE *f = NULL;
    static struct mbuf mb;
    static struct drain dr;
    memlog *log = NULL;
    void *shared;
    if (method == M_FPRINTF) {
        f = fdopen(fd, "w");
        if (!f) die("fdopen");
        shared = f;
    } else if (method == M_MUTEX) {
        memset(&mb, 0, sizeof mb);
        pthread_mutex_init(&mb.lock, NULL);
        pthread_cond_init(&mb.filled, NULL);
        pthread_cond_init(&mb.drained, NULL);
        mb.cur = malloc(HALF), mb.spare = malloc(HALF), mb.fd = fd;
        shared = &mb;
    } else {
        memlog_config cfg = {.segment_size = 1 << 20, .capacity = 8 << 20};
        log = memlog_create(log_path[0] ? log_path : NULL, &cfg, 0);
        if (!log) exit(1);
        memset(&dr, 0, sizeof dr);
        dr.log = log, dr.fd = fd;
        if (memlog_consumer(log) != 0) die("memlog_consumer");
        shared = log;
    }
    double t0 = now();
    if (method == M_MUTEX) pthread_create(&writer, NULL, mutex_writer, &mb);
    if (method == M_MEMLOG) pthread_create(&writer, NULL, memlog_writer, &dr);
    for (int i = 0; i < nthreads; i++) {
        r[i] = (struct run){i, method, shared, &bytes};
        pthread_create(&tid[i], NULL, producer, &r[i]);
    }
    for (int i = 0; i < nthreads; i++) pthread_join(tid[i], NULL);
    if (method == M_MUTEX) {
        pthread_mutex_lock(&mb.lock);
        mb.done = 1;
        pthread_cond_signal(&mb.filled);
        pthread_mutex_unlock(&mb.lock);
        pthread_join(writer, NULL);
    } else if (method == M_MEMLOG) {
        atomic_store(&dr.done, 1);
        pthread_join(writer, NULL);
    }
    double dt = now() - t0;
    struct stat st;
    if (fstat(fd, &st) != 0) die("fstat");
    if ((unsigned long)st.st_size != atomic_load(&bytes)) {
        fprintf(stderr, "bench/memlog: %s with %d threads wrote %lld bytes of %lu\n",
                method_name[method], nthreads, (long long)st.st_size, atomic_load(&bytes));
        exit(1);
    }
    if (f) fclose(f);
    else close(fd);
    if (method == M_MUTEX) free(mb.cur), free(mb.spare);
    if (log) memlog_close(log);
    return (double)nthreads * (double)records / dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    fputs("usage: build/bench/memlog [--runs N] [--records N] [--threads 1,2,4] [--dir DIR]\n"
          "                          [--only memlog|mutex|fprintf] [--raw]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    int runs = 5, threads[16] = {1, 2, 4}, nt = 3;
    const char *dir = "/tmp";
    int only = -1;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--runs") && v) runs = atoi(v), i++;
        else if (!strcmp(argv[i], "--records") && v) records = strtoul(v, NULL, 10), i++;
        else if (!strcmp(argv[i], "--dir") && v) dir = v, i++;
        else if (!strcmp(argv[i], "--raw")) raw = 1;
        else if (!strcmp(argv[i], "--only") && v) {
            for (int m = 0; m < METHODS; m++)
                if (!strncmp(v, method_name[m], strlen(v))) only = m;
            if (only < 0) usage();
            i++;
        }
        else if (!strcmp(argv[i], "--threads") && v) {
            nt = 0;
            for (char *s = argv[++i]; *s && nt < 16;) {
                threads[nt] = (int)strtol(s, &s, 10);
                if (threads[nt] < 1 || threads[nt] > 64 || (*s && *s != ',')) usage();
                nt++;
                if (*s) s++;
            }
        } else {
            fprintf(stderr, "bench/memlog: unknown or incomplete option: %s\n", argv[i]);
            usage();
        }
    }
    if (runs < 1 || runs > 99 || records < 1 || nt == 0) usage();
    snprintf(out_path, sizeof out_path, "%s/memlog-bench-%d.out", dir, (int)getpid());
    if (access("/dev/shm", W_OK) == 0)
        snprintf(log_path, sizeof log_path, "/dev/shm/memlog-bench-%d.log", (int)getpid());

    static double rate[16][METHODS][99];
    for (int k = 0; k < runs; k++)
        for (int t = 0; t < nt; t++)
            for (int m = 0; m < METHODS; m++)
                rate[t][m][k] = only < 0 || only == m ? run_once(m, threads[t]) : 0;
    unlink(out_path);
    if (log_path[0]) unlink(log_path);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("%lu records of ~60 bytes per thread (%s), %d interleaved runs, medians; %ld cores; "
           "output file in %s%s\n\n",
           records, raw ? "formatted once, --raw" : "snprintf per record", runs, cores, dir,
           log_path[0] ? ", memlog ring in /dev/shm" : "");
    printf("| threads | memlog M rec/s | mutex buffer M rec/s | fprintf+fflush M rec/s | memlog / mutex "
           "| memlog / fprintf |\n|---:|---:|---:|---:|---:|---:|\n");
    for (int t = 0; t < nt; t++) {
        double med[METHODS];
        for (int m = 0; m < METHODS; m++) {
            qsort(rate[t][m], (size_t)runs, sizeof(double), cmp_double);
            med[m] = rate[t][m][runs / 2] / 1e6;
        }
        printf("| %d | %.2f | %.2f | %.2f | %.2f× | %.1f× |\n", threads[t], med[M_MEMLOG],
               med[M_MUTEX], med[M_FPRINTF], med[M_MEMLOG] / med[M_MUTEX],
               med[M_MEMLOG] / med[M_FPRINTF]);
    }
    return 0;
}
