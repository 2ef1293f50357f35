/*
 * memlog.c — the shared-mapping log of memlog.h.
 *
 * Layout of the file: one header page, then the data area, a ring of `capacity` bytes split in
 * segments of `segment_size`. Places in the log are 64-bit byte positions that only grow; the
 * byte at position P lives at data + P % capacity. Every record starts on a 16-byte cell with an
 * 8-byte tag word:
 *
 *   bit 63 set        the cell is free for the record that may start at position P: the rest of
 *                     the word is P mixed with the log's salt, so it is different at every lap
 *   bit 63 clear      a claimed record: bits 0-31 its length, 32-33 its state (claimed,
 *                     committed, skipped), 34 "padding to the end of the segment", 35-62 the pid
 *                     of the producer that claimed it
 *
 * Claiming: a producer reads the tail T, checks that the ring has room (T + size <= freed +
 * capacity, freed being where the consumer gave room back), and compare-and-swaps the tag at T
 * from free(T) to claimed(length, pid). The claim and the record's length and owner are one
 * atomic step, so whatever happens to the producer afterwards, everyone can find where the next
 * record starts. Then the tail is moved from T to T + size by compare-and-swap; any producer that
 * finds a claimed tag at the tail moves it on the claimer's behalf, so a producer that dies right
 * after its claim stops nobody. Because free(T) names the lap, a producer that read T long ago and
 * was descheduled while the ring went round cannot claim a cell of a later lap by mistake.
 *
 * Publishing: the producer writes its bytes, then stores the committed state with release; the
 * consumer loads tags with acquire, so a committed tag means the bytes before it are visible.
 * The consumer gives room back by writing the next lap's free tags into the cells it has read and
 * storing the new `freed` with release; a producer that loads `freed` with acquire sees those
 * tags, and the consumer's reads of the old bytes are ordered before the producer's writes.
 *
 * Growing: the first lap reaches each segment once; the producer that needs it takes the grow
 * lock (a pid in the header, taken over if that process died), extends the file with fallocate
 * (never shrinking it, unlike ftruncate racing with another grower), writes the segment's free
 * tags and publishes the count of grown segments with release. The mapping of the whole ring was
 * made when the log was opened, so growing never moves memory.
 */
#define _GNU_SOURCE
#include "memlog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "memlog\0\1"
#define VERSION 1
#define CELL 16u
#define TAG_BYTES 8u

#define TAG_FREE (1ull << 63)
#define ST_SHIFT 32
#define ST_MASK (3ull << ST_SHIFT)
#define ST_CLAIMED (1ull << ST_SHIFT)
#define ST_COMMITTED (2ull << ST_SHIFT)
#define ST_SKIPPED (3ull << ST_SHIFT)
#define TAG_PAD (1ull << 34)
#define PID_SHIFT 35
#define PID_MASK ((1ull << 28) - 1)

/* The header page. The constant part is written once at creation; the atomics each have their
 * own cache line, as producers hammer the tail and the consumer writes freed. */
struct header {
    char magic[8];
    uint32_t version, cell;
    uint64_t segment_size, capacity, data_offset, salt;
    uint32_t huge_pages;
    _Alignas(64) _Atomic uint64_t tail;          /* next position to claim (may lag: helped on) */
    _Alignas(64) _Atomic uint64_t freed;         /* positions below it are consumed and free */
    _Atomic uint64_t skipped;                    /* records skipped, producer dead */
    _Atomic int32_t consumer;                    /* pid of the consumer, 0 if none */
    _Alignas(64) _Atomic uint64_t grown;         /* segments the file has (first lap) */
    _Atomic int32_t grower;                      /* pid holding the grow lock, 0 if none */
};

struct memlog {
    struct header *hdr;
    char *data;
    void *map;
    size_t map_len;
    int fd, flags, is_consumer, huge;
    uint64_t seg, cap, salt; /* powers of two: positions are split with masks */
    int seg_shift;
    char name[256];
};

/* ---- the calling process's pid, kept across fork ---- */

static _Atomic int self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;
static void refresh_pid(void) { atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed); }
static void init_pid(void) {
    refresh_pid();
    pthread_atfork(NULL, NULL, refresh_pid);
}
static pid_t self(void) { return atomic_load_explicit(&self_pid, memory_order_relaxed); }

/* A process is dead if it is gone or a zombie (its parent has not waited for it yet). */
static int pid_alive(pid_t pid) {
    if (pid == self()) return 1;
    if (kill(pid, 0) != 0 && errno == ESRCH) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno != ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 1;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

/* Waiting: spin briefly, then yield, then sleep in short steps. */
static void backoff(unsigned *spins) {
    unsigned s = (*spins)++;
    if (s < 32) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else if (s < 256) {
        sched_yield();
    } else {
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void say(const memlog *log, int flags, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const memlog *log, int flags, const char *fmt, ...) {
    if (flags & MEMLOG_QUIET) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "memlog: %s: %s\n", log->name, line);
}

/* ---- tags ---- */

static inline uint64_t free_tag(const memlog *log, uint64_t pos) {
    return TAG_FREE | ((pos ^ log->salt) & ~TAG_FREE);
}
static inline uint64_t record_size(uint64_t len) {
    return (TAG_BYTES + len + CELL - 1) & ~(uint64_t)(CELL - 1);
}
static inline uint64_t tag_len(uint64_t tag) { return tag & 0xffffffffu; }
static inline pid_t tag_pid(uint64_t tag) { return (pid_t)((tag >> PID_SHIFT) & PID_MASK); }
static inline _Atomic uint64_t *tag_at(const memlog *log, uint64_t pos) {
    return (_Atomic uint64_t *)(log->data + (pos & (log->cap - 1)));
}

/* ---- growing the file, first lap only ---- */

static int grow_segment(memlog *log, uint64_t g) {
    off_t at = (off_t)(log->hdr->data_offset + g * log->seg);
    int r = fallocate(log->fd, 0, at, (off_t)log->seg);
    if (r != 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        /* only the grow lock's holder extends the file, so ftruncate cannot shrink it here */
        struct stat st;
        r = fstat(log->fd, &st);
        if (r == 0 && st.st_size < at + (off_t)log->seg) r = ftruncate(log->fd, at + (off_t)log->seg);
    }
    if (r != 0) return -1;
    for (uint64_t pos = g * log->seg; pos < (g + 1) * log->seg; pos += CELL)
        atomic_store_explicit(tag_at(log, pos), free_tag(log, pos), memory_order_relaxed);
    atomic_store_explicit(&log->hdr->grown, g + 1, memory_order_release);
    return 0;
}

/* Make sure segment s (of the first lap) exists in the file and carries its free tags. */
static int ensure_grown(memlog *log, uint64_t s) {
    struct header *h = log->hdr;
    unsigned spins = 0;
    while (atomic_load_explicit(&h->grown, memory_order_acquire) <= s) {
        int32_t owner = 0;
        if (atomic_compare_exchange_strong(&h->grower, &owner, self())) {
            int r = 0;
            for (uint64_t g = atomic_load(&h->grown); g <= s && r == 0; g++) r = grow_segment(log, g);
            int e = errno;
            atomic_store_explicit(&h->grower, 0, memory_order_release);
            errno = e;
            if (r != 0) return -1;
        } else if (!pid_alive(owner)) {
            atomic_compare_exchange_strong(&h->grower, &owner, 0); /* the grower died: take over */
        } else {
            backoff(&spins);
        }
    }
    return 0;
}

/* ---- producers ---- */

size_t memlog_max_record(const memlog *log) { return (size_t)(log->seg - TAG_BYTES); }

void *memlog_reserve(memlog *log, size_t len) {
    if (len > memlog_max_record(log)) {
        errno = EMSGSIZE;
        return NULL;
    }
    struct header *h = log->hdr;
    const uint64_t n = record_size(len);
    const uint64_t mine = ST_CLAIMED | ((uint64_t)self() & PID_MASK) << PID_SHIFT | len;
    unsigned spins = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
        uint64_t off = t & (log->cap - 1), rest = log->seg - (t & (log->seg - 1));
        uint64_t need = n <= rest ? n : rest; /* no room left in this segment: pad it */
        if (t + need > atomic_load_explicit(&h->freed, memory_order_acquire) + log->cap) {
            if (atomic_load_explicit(&h->tail, memory_order_relaxed) != t) continue;
            if (log->flags & MEMLOG_NONBLOCK) {
                errno = EAGAIN;
                return NULL;
            }
            backoff(&spins); /* a whole ring ahead of the consumer: wait for room */
            continue;
        }
        if (t < log->cap && ensure_grown(log, off >> log->seg_shift) != 0) return NULL;
        _Atomic uint64_t *tag = tag_at(log, t);
        uint64_t cur = free_tag(log, t);
        uint64_t want = n <= rest ? mine : ST_COMMITTED | TAG_PAD | (rest - TAG_BYTES);
        if (atomic_compare_exchange_strong_explicit(tag, &cur, want, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_compare_exchange_strong_explicit(&h->tail, &t, t + need, memory_order_release,
                                                    memory_order_relaxed);
            if (n <= rest) return (char *)tag + TAG_BYTES;
            continue; /* padded to the end of the segment: claim again in the next one */
        }
        /* Someone claimed T first: move the tail past their record for them. If T was stale,
         * cur is not theirs but the tail is no longer T and this does nothing. */
        if (!(cur & TAG_FREE) && (cur & ST_MASK)) {
            uint64_t size = record_size(tag_len(cur));
            if (size <= rest)
                atomic_compare_exchange_strong_explicit(&h->tail, &t, t + size,
                                                        memory_order_release, memory_order_relaxed);
        }
    }
}

void memlog_commit(memlog *log, void *p) {
    (void)log;
    _Atomic uint64_t *tag = (_Atomic uint64_t *)((char *)p - TAG_BYTES);
    uint64_t cur = atomic_load_explicit(tag, memory_order_relaxed);
    atomic_store_explicit(tag, (cur & ~ST_MASK) | ST_COMMITTED, memory_order_release);
}

int memlog_append(memlog *log, const void *data, size_t len) {
    void *p = memlog_reserve(log, len);
    if (!p) return -1;
    memcpy(p, data, len);
    memlog_commit(log, p);
    return 0;
}

/* ---- the consumer ---- */

int memlog_consumer(memlog *log) {
    _Atomic int32_t *c = &log->hdr->consumer;
    for (;;) {
        int32_t cur = 0;
        if (atomic_compare_exchange_strong(c, &cur, self()) || cur == self()) break;
        if (pid_alive(cur)) {
            errno = EBUSY;
            return -1;
        }
        atomic_compare_exchange_strong(c, &cur, 0); /* the last consumer died */
    }
    log->is_consumer = 1;
    return 0;
}

/* Give the cells of [from, to) back to the producers: next lap's free tags, then `freed`. */
static void give_back(memlog *log, uint64_t from, uint64_t to) {
    for (uint64_t pos = from; pos < to; pos += CELL)
        atomic_store_explicit(tag_at(log, pos), free_tag(log, pos + log->cap),
                              memory_order_relaxed);
    atomic_store_explicit(&log->hdr->freed, to, memory_order_release);
}

long memlog_consume(memlog *log, int (*fn)(const memlog_record *r, void *arg), void *arg,
                    size_t max) {
    if (!log->is_consumer && memlog_consumer(log) != 0) return -1;
    struct header *h = log->hdr;
    uint64_t start = atomic_load_explicit(&h->freed, memory_order_relaxed), p = start;
    long count = 0;
    int stop = 0, err = 0;
    while (!stop && (max == 0 || (size_t)count < max)) {
        if (p < log->cap && p >> log->seg_shift >= atomic_load_explicit(&h->grown, memory_order_acquire))
            break; /* nothing claimed here yet: the segment does not exist */
        _Atomic uint64_t *tagp = tag_at(log, p);
        uint64_t tag = atomic_load_explicit(tagp, memory_order_acquire);
        if (tag & TAG_FREE) {
            if (tag != free_tag(log, p)) err = 1;
            break; /* not claimed yet */
        }
        uint64_t size = record_size(tag_len(tag)), rest = log->seg - (p & (log->seg - 1));
        if (!(tag & ST_MASK) || size > rest) {
            err = 1;
            break;
        }
        if ((tag & ST_MASK) == ST_CLAIMED) {
            if (pid_alive(tag_pid(tag))) break; /* being written: come back later */
            uint64_t skip = (tag & ~ST_MASK) | ST_SKIPPED;
            if (!atomic_compare_exchange_strong(tagp, &tag, skip))
                continue; /* committed just before it died: read it again */
            atomic_fetch_add(&h->skipped, 1);
            tag = skip;
        }
        if (!(tag & TAG_PAD)) {
            int skipped = (tag & ST_MASK) == ST_SKIPPED;
            memlog_record r = {skipped ? NULL : (char *)tagp + TAG_BYTES, (size_t)tag_len(tag), p,
                               tag_pid(tag), skipped};
            count++;
            stop = fn(&r, arg) != 0;
        }
        p += size;
        if (p - start >= log->seg) { /* give room back as we go, not only at the end */
            give_back(log, start, p);
            start = p;
        }
    }
    if (p != start) give_back(log, start, p);
    if (err) {
        errno = EIO;
        return -1;
    }
    return count;
}

/* ---- opening ---- */

static memlog *new_handle(const char *path, int flags) {
    memlog *log = calloc(1, sizeof *log);
    if (!log) return NULL;
    pthread_once(&self_once, init_pid);
    log->fd = -1;
    log->flags = flags;
    snprintf(log->name, sizeof log->name, "%s", path ? path : "anonymous log");
    return log;
}

static memlog *fail(memlog *log, const char *what) {
    int e = errno;
    say(log, log->flags, "%s: %s", what, strerror(e));
    memlog_close(log);
    errno = e;
    return NULL;
}

/* Is shared memory (tmpfs, memfd) allowed transparent huge pages when asked with madvise? */
static int shmem_thp_advise(void) {
    char buf[256] = "";
    int fd = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, "[always]") || strstr(buf, "[within_size]") || strstr(buf, "[advise]") ||
           strstr(buf, "[force]");
}

/* Map the header and the whole ring at once: growing the file later never moves it. */
static int do_map(memlog *log, uint64_t data_offset) {
    log->map_len = (size_t)(data_offset + log->cap);
    log->map = mmap(NULL, log->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, 0);
    if (log->map == MAP_FAILED) {
        log->map = NULL;
        return -1;
    }
    log->hdr = log->map;
    log->data = (char *)log->map + data_offset;
    return 0;
}

static void advise_huge(memlog *log, int on_hugetlbfs, int quiet) {
    if (on_hugetlbfs) {
        log->huge = 1;
        return;
    }
    struct statfs fs;
    int shmem = fstatfs(log->fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
    if (shmem && shmem_thp_advise() && madvise(log->data, log->cap, MADV_HUGEPAGE) == 0) {
        log->huge = 1;
        return;
    }
    say(log, quiet ? MEMLOG_QUIET : 0, "huge pages not available (%s): using normal pages",
        shmem ? "transparent huge pages are off for shared memory: "
                "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
              : "the file is neither on hugetlbfs nor on tmpfs");
}

static int parse_size_ok(uint64_t seg, uint64_t cap, uint64_t unit) {
    return seg >= unit && !(seg & (seg - 1)) && seg <= (1ull << 30) && cap >= seg &&
           !(cap & (cap - 1)) && cap <= (1ull << 46);
}

/* Check the sizes of a log to create; on failure say why, close the handle, errno EINVAL. */
static int sizes_ok(memlog *log, uint64_t seg, uint64_t cap, uint64_t unit) {
    if (parse_size_ok(seg, cap, unit)) return 1;
    say(log, log->flags,
        "segment size %llu and capacity %llu: both must be powers of two, the segment from %llu "
        "bytes to 1 GiB, the capacity from the segment size to 64 TiB",
        (unsigned long long)seg, (unsigned long long)cap, (unsigned long long)unit);
    memlog_close(log);
    errno = EINVAL;
    return 0;
}

memlog *memlog_create(const char *path, const memlog_config *config, int flags) {
    memlog *log = new_handle(path, flags);
    if (!log) return NULL;
    uint64_t seg = config && config->segment_size ? config->segment_size : 1u << 20;
    uint64_t cap = config && config->capacity ? config->capacity : 64u << 20;
    int huge = config && config->huge_pages;
    int on_hugetlbfs = 0;
    uint64_t unit = (uint64_t)sysconf(_SC_PAGESIZE);
    if (!sizes_ok(log, seg, cap, unit)) return NULL; /* before the file is touched */
    if (path) {
        log->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (log->fd < 0) return fail(log, "cannot create");
    } else {
        if (huge) { /* a hugetlb memfd works only if huge pages are reserved: try one */
            log->fd = memfd_create("memlog", MFD_CLOEXEC | MFD_HUGETLB);
            struct statfs fs;
            if (log->fd >= 0 && fstatfs(log->fd, &fs) == 0 &&
                fallocate(log->fd, 0, 0, (off_t)fs.f_bsize) == 0 && (uint64_t)fs.f_bsize <= seg) {
                on_hugetlbfs = 1;
            } else if (log->fd >= 0) {
                close(log->fd);
                log->fd = -1;
            }
        }
        if (log->fd < 0) log->fd = memfd_create("memlog", MFD_CLOEXEC);
        if (log->fd < 0) return fail(log, "memfd_create");
    }
    struct statfs fs;
    if (path && fstatfs(log->fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC) on_hugetlbfs = 1;
    if (on_hugetlbfs && fstatfs(log->fd, &fs) == 0) unit = (uint64_t)fs.f_bsize;
    if (on_hugetlbfs && !sizes_ok(log, seg, cap, unit)) {
        if (path) unlink(path);
        return NULL;
    }
    log->seg = seg;
    log->seg_shift = __builtin_ctzll(seg);
    log->cap = cap;
    if (ftruncate(log->fd, (off_t)unit) != 0) return fail(log, "cannot size the header");
    if (do_map(log, unit) != 0) return fail(log, "mmap");
    struct header *h = log->hdr;
    h->version = VERSION;
    h->cell = CELL;
    h->segment_size = seg;
    h->capacity = cap;
    h->data_offset = unit;
    if (getrandom(&h->salt, sizeof h->salt, GRND_NONBLOCK) != sizeof h->salt)
        h->salt = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)log;
    log->salt = h->salt;
    h->huge_pages = (uint32_t)huge;
    if (huge) advise_huge(log, on_hugetlbfs, flags & MEMLOG_QUIET);
    atomic_thread_fence(memory_order_release);
    memcpy(h->magic, MAGIC, sizeof h->magic); /* last: an opener sees a finished header */
    return log;
}

memlog *memlog_open(const char *path, int flags) {
    memlog *log = new_handle(path, flags);
    if (!log) return NULL;
    log->fd = open(path, O_RDWR | O_CLOEXEC);
    if (log->fd < 0) return fail(log, "cannot open");
    struct header h;
    ssize_t n = pread(log->fd, &h, sizeof h, 0);
    if (n < (ssize_t)sizeof h || memcmp(h.magic, MAGIC, sizeof h.magic) != 0) {
        errno = EINVAL;
        return fail(log, "not a memlog file");
    }
    if (h.version != VERSION || h.cell != CELL || h.data_offset < sizeof h ||
        !parse_size_ok(h.segment_size, h.capacity, 4096)) {
        errno = EINVAL;
        return fail(log, "unsupported memlog version or corrupt header");
    }
    log->seg = h.segment_size;
    log->seg_shift = __builtin_ctzll(h.segment_size);
    log->cap = h.capacity;
    log->salt = h.salt;
    if (do_map(log, h.data_offset) != 0) return fail(log, "mmap");
    struct statfs fs;
    if (h.huge_pages)
        advise_huge(log, fstatfs(log->fd, &fs) == 0 && fs.f_type == HUGETLBFS_MAGIC, 1);
    return log;
}

void memlog_close(memlog *log) {
    if (!log) return;
    if (log->is_consumer) {
        int32_t me = self();
        atomic_compare_exchange_strong(&log->hdr->consumer, &me, 0);
    }
    if (log->map) munmap(log->map, log->map_len);
    if (log->fd >= 0) close(log->fd);
    free(log);
}

void memlog_get_stat(const memlog *log, memlog_stat *st) {
    struct header *h = log->hdr;
    st->claimed = atomic_load(&h->tail);
    st->consumed = atomic_load(&h->freed);
    st->capacity = log->cap;
    st->segment_size = log->seg;
    st->segments = atomic_load(&h->grown);
    st->skipped = atomic_load(&h->skipped);
    st->consumer = atomic_load(&h->consumer);
    st->huge_pages = log->huge;
}
