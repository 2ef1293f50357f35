/*
 * memlog.h — a log that many threads and processes append records to through a shared mapping,
 * and one consumer writes out in order.
 *
 * The log is a file (or an anonymous memfd shared with forked children) mapped MAP_SHARED by
 * every process that uses it. Its data area is a ring of `capacity` bytes made of fixed-size
 * segments; the whole ring's address range is mapped once when a process opens the log, and the
 * file grows beneath that mapping a segment at a time as the first lap reaches it, so memory
 * never moves under a writer. A record never straddles a segment (the rest of a segment is
 * padded). Producers take no lock: a record's place is claimed with one compare-and-swap on its
 * header word, written in the same step as its length and the producer's pid, and published
 * with a release store. The consumer reads header words with acquire loads, hands committed
 * records over in the order they were claimed, and skips, with a marker, a record whose
 * producer died between claim and commit. When producers are a whole ring ahead of the
 * consumer, memlog_reserve waits (or fails with EAGAIN under MEMLOG_NONBLOCK).
 *
 * See README.md beside this file for the design and the memory ordering.
 */
#ifndef MEMLOG_H
#define MEMLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct memlog memlog;

typedef struct {
    size_t segment_size; /* bytes per segment (0: 1 MiB): a power of two, at least a page */
    size_t capacity;     /* bytes in the ring (0: 64 MiB): a power of two, >= segment_size */
    int huge_pages;      /* ask for huge pages; falls back with a message on stderr */
} memlog_config;

/* Flags for memlog_open and memlog_create. */
#define MEMLOG_NONBLOCK 1 /* memlog_reserve fails with EAGAIN instead of waiting for room */
#define MEMLOG_QUIET 2    /* no message on stderr (errors are still returned) */

/* Create (or truncate) the log file PATH; PATH NULL: an anonymous log in a memfd, which forked
 * children share. NULL config: the defaults. Returns NULL with errno set and, unless
 * MEMLOG_QUIET, a "memlog: PATH: ..." line on stderr. */
memlog *memlog_create(const char *path, const memlog_config *config, int flags);
/* Attach to an existing log file. */
memlog *memlog_open(const char *path, int flags);
/* Unmap; the file stays. Records reserved and not committed by this process are left as they
 * are (the consumer skips them once this process has exited). */
void memlog_close(memlog *log);

/* ---- producers: any thread of any process that has the log open ---- */

/* Append one record of len bytes (at most memlog_max_record). 0, or -1 with errno (EMSGSIZE,
 * EAGAIN under MEMLOG_NONBLOCK when the ring is full, EIO on a corrupt log). */
int memlog_append(memlog *log, const void *data, size_t len);
/* Claim room for a record of len bytes and return where to write it; the record reaches the
 * consumer once memlog_commit(log, p) is called. Between the two calls the consumer waits for
 * it (or skips it, if this process dies). NULL with errno as for memlog_append. */
void *memlog_reserve(memlog *log, size_t len);
void memlog_commit(memlog *log, void *p);
size_t memlog_max_record(const memlog *log);

/* ---- the consumer: one process at a time ---- */

typedef struct {
    const void *data; /* the record's bytes (NULL for a skipped record) */
    size_t len;       /* its length */
    uint64_t pos;     /* its place in the log (bytes since the log was created) */
    pid_t pid;        /* the producer's pid */
    int skipped;      /* 1: its producer died before committing it; data is lost */
} memlog_record;

/* Become the log's consumer: 0, or -1 with errno EBUSY when a live process already is. */
int memlog_consumer(memlog *log);
/* Hand at most max records (0: no limit) to fn, in order, then give their room back to the
 * producers. Stops at the first record not yet committed (waiting for it only while its
 * producer is alive: returns, to be called again). Returns how many records fn was given, or -1
 * with errno (EIO: a corrupt log). fn returning non-zero stops early; that record counts as
 * consumed. */
long memlog_consume(memlog *log, int (*fn)(const memlog_record *r, void *arg), void *arg,
                    size_t max);

/* ---- state ---- */

typedef struct {
    uint64_t claimed;    /* bytes claimed by producers since creation (the tail) */
    uint64_t consumed;   /* bytes handed to the consumer and given back (the head) */
    uint64_t capacity, segment_size;
    uint64_t segments;   /* segments the file has grown to */
    uint64_t skipped;    /* records skipped because their producer died */
    pid_t consumer;      /* the consumer's pid, 0 if none */
    int huge_pages;      /* 1 if the mapping is backed by huge pages (hugetlbfs or THP asked) */
} memlog_stat;
void memlog_get_stat(const memlog *log, memlog_stat *st);

#endif
