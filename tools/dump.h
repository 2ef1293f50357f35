/*
 * dump.h — a diag dump (the file libstrata-diag.so writes, format in src/diag/dump.h) read into
 * memory, for strata leaks, guard and report.
 *
 * Addresses are kept as the process had them; symbols.h turns them into functions and lines.
 */
#ifndef STRATA_TOOLS_DUMP_H
#define STRATA_TOOLS_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dump_module {
    uint64_t bias, lo, hi; /* code in [lo, hi); address A is at ELF address A - bias */
    char *path;            /* as the loader has it; "" is the executable (see dump_module_path) */
};

struct dump_stack {
    uint64_t id;
    size_t depth;
    uint64_t *pc; /* return addresses, innermost first */
};

struct dump_site {
    uint64_t stack, allocs, bytes, frees;
};

enum dump_leak_kind { DUMP_LOST, DUMP_REACHABLE };

struct dump_leak {
    uint64_t stack;
    enum dump_leak_kind kind;
    uint64_t blocks, bytes, addr;
};

struct dump_sample {
    uint64_t ms, live, rss, allocs;
};

struct dump_size {
    uint64_t limit, allocs, bytes; /* requests of at most limit bytes (above the previous limit) */
};

struct dump_total {
    char *key;
    uint64_t value;
};

struct dump_error {
    char kind[32];   /* overflow, underflow, use-after-free, double-free, invalid-free, corrupt-tail */
    char access[16]; /* read, write or free */
    uint64_t addr, alloc, free, size; /* alloc, free: stack IDs, 0 when unknown */
    uint64_t at;                      /* the stack where it happened (the access or the free), 0: unknown */
    int64_t off;                      /* addr - block start */
};

enum dump_end { DUMP_END_UNKNOWN, DUMP_END_EXIT, DUMP_END_SIGNAL, DUMP_END_ABORT };

struct dump {
    char *file;
    int version;
    long pid;
    char mode[16];     /* leaks, guard or report */
    enum dump_end end; /* how the process ended, from its process record */
    int signal;        /* DUMP_END_SIGNAL: which */
    char *exe;         /* "" when the dump has no exe record */
    struct dump_module *modules;
    struct dump_stack *stacks; /* sorted by id */
    struct dump_site *sites;
    struct dump_leak *leaks;
    struct dump_sample *samples; /* sorted by time */
    struct dump_size *sizes;     /* sorted by limit */
    struct dump_total *totals;
    size_t n_modules, n_stacks, n_sites, n_leaks, n_samples, n_sizes, n_totals;
    bool has_error;
    struct dump_error error;
    bool complete;  /* the "end" line was there: the process finished writing */
    size_t unknown; /* records of types this reader does not know (skipped) */
    char why[512];  /* dump_read failed: "FILE: reason" (or "FILE:LINE: reason") */
    int why_errno;  /* the errno of a file that could not be read (ENOENT: there is none) */
};

/* Read `path` into *d (zeroed first). False when the file is missing, unreadable, not a dump, of
 * another version or has a malformed record: d->why says so in one line. A file cut short (no
 * "end": the process died while writing it) is read as far as it goes, its last line dropped when
 * that line has no newline. */
bool dump_read(const char *path, struct dump *d);
void dump_free(struct dump *d);

/* The stack with that ID, or NULL. */
const struct dump_stack *dump_stack(const struct dump *d, uint64_t id);
/* The module whose code holds the return address pc (looked up at pc - 1), or NULL. */
const struct dump_module *dump_module_of(const struct dump *d, uint64_t pc);
/* A module's file: its path, or the executable's for "". */
const char *dump_module_path(const struct dump *d, const struct dump_module *m);
/* A total by key; false if the dump has none. */
bool dump_total(const struct dump *d, const char *key, uint64_t *value);

/* The leaks merged by stack and kind, lost ones first, then by bytes (largest first). Returns a
 * new array (free it) and its length in *n. */
struct dump_leak *dump_leaks_sorted(const struct dump *d, size_t *n);
/* Bytes and blocks of the leaks of one kind. */
void dump_leak_sum(const struct dump *d, enum dump_leak_kind kind, uint64_t *bytes, uint64_t *blocks);

#endif
