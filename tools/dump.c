/*
 * dump.c — read a diag dump (src/diag/dump.h) into struct dump.
 *
 * One record per line, fields separated by one space. The reader is strict about the records it
 * knows (a malformed one is an error naming its line: the writer has a bug, and a report drawn
 * from half-read records would mislead) and lenient about the rest: unknown record types are
 * counted and skipped, fields past the known ones are ignored (room for later versions), and a
 * file without "end" was cut short by the process dying: it is read as far as it goes, its last
 * line dropped when the line has no newline (it may be cut in the middle of a number).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/support/record.h"
#include "cli.h"
#include "dump.h"

/* ---- fields ---- */

/* The next space-separated field of *p (NULL at the end of the line); *p moves past it. */
static char *field(char **p) {
    if (!*p || !**p) return NULL;
    char *f = *p, *sp = strchr(f, ' ');
    if (sp) {
        *sp = '\0';
        *p = sp + 1;
    } else {
        *p = f + strlen(f);
    }
    return f;
}

static bool digits(const char *s, int base, uint64_t *v) {
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, base);
    if (errno || *end) return false;
    *v = x;
    return true;
}

/* A number: decimal, or hex when written 0x... */
static bool number(const char *s, uint64_t *v) {
    if (s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return digits(s + 2, 16, v);
    return digits(s, 10, v);
}

/* A field the format says is hex: with or without 0x. */
static bool hex(const char *s, uint64_t *v) {
    if (s && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    return digits(s, 16, v);
}

static bool signed_number(const char *s, int64_t *v) {
    uint64_t u;
    bool neg = s && *s == '-';
    if (!number(neg ? s + 1 : s, &u) || u > (uint64_t)INT64_MAX) return false;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return true;
}

static bool numbers(char **p, uint64_t **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!number(field(p), v[i])) return false;
    return true;
}

/* ---- growing arrays: capacity doubles whenever the count reaches a power of two ---- */

static void *push(void *items, size_t *n, size_t size, void **slot) {
    if (*n >= 8 && (*n & (*n - 1)) == 0) items = cli_realloc(items, 2 * *n * size);
    else if (*n == 0) items = cli_realloc(items, 8 * size);
    *slot = (char *)items + *n * size;
    memset(*slot, 0, size);
    ++*n;
    return items;
}

#define PUSH(d, arr, count) ((d)->arr = push((d)->arr, &(d)->count, sizeof *(d)->arr, &slot), slot)

/* ---- records: each parser takes the fields after the type and says whether they were good ---- */

static bool rec_process(struct dump *d, char *p) {
    uint64_t pid, sig = 0;
    const char *spid = field(&p), *mode = field(&p), *how = field(&p);
    if (!number(spid, &pid) || !mode || !how || strlen(mode) >= sizeof d->mode) return false;
    d->pid = (long)pid;
    strcpy(d->mode, mode);
    if (!strcmp(how, "exit")) d->end = DUMP_END_EXIT;
    else if (!strcmp(how, "abort")) d->end = DUMP_END_ABORT;
    else if (!strcmp(how, "signal") && number(field(&p), &sig) && sig > 0 && sig < 128)
        d->end = DUMP_END_SIGNAL, d->signal = (int)sig;
    else return false;
    return true;
}

static bool rec_exe(struct dump *d, char *p) {
    free(d->exe);
    d->exe = cli_strdup(p ? p : "");
    return true;
}

static bool rec_module(struct dump *d, char *p) {
    uint64_t bias, lo, hi;
    if (!hex(field(&p), &bias) || !hex(field(&p), &lo) || !hex(field(&p), &hi) || hi < lo) return false;
    void *slot;
    struct dump_module *m = PUSH(d, modules, n_modules);
    *m = (struct dump_module){bias, lo, hi, cli_strdup(p ? p : "")};
    return true;
}

static bool rec_stack(struct dump *d, char *p) {
    uint64_t id, n;
    if (!number(field(&p), &id) || id == 0 || !number(field(&p), &n) || n > 4096) return false;
    uint64_t *pc = cli_alloc((size_t)n * sizeof *pc);
    for (size_t i = 0; i < n; i++)
        if (!hex(field(&p), &pc[i])) {
            free(pc);
            return false;
        }
    void *slot;
    struct dump_stack *st = PUSH(d, stacks, n_stacks);
    *st = (struct dump_stack){id, (size_t)n, pc};
    return true;
}

static bool rec_site(struct dump *d, char *p) {
    struct dump_site s;
    if (!numbers(&p, (uint64_t *[]){&s.stack, &s.allocs, &s.bytes, &s.frees}, 4)) return false;
    void *slot;
    *(struct dump_site *)PUSH(d, sites, n_sites) = s;
    return true;
}

static bool rec_leak(struct dump *d, char *p) {
    struct dump_leak l;
    const char *id = field(&p), *kind = field(&p);
    if (!number(id, &l.stack) || !kind) return false;
    if (!strcmp(kind, "lost")) l.kind = DUMP_LOST;
    else if (!strcmp(kind, "reachable")) l.kind = DUMP_REACHABLE;
    else return false;
    if (!numbers(&p, (uint64_t *[]){&l.blocks, &l.bytes}, 2) || !hex(field(&p), &l.addr)) return false;
    void *slot;
    *(struct dump_leak *)PUSH(d, leaks, n_leaks) = l;
    return true;
}

static bool rec_sample(struct dump *d, char *p) {
    struct dump_sample s;
    if (!numbers(&p, (uint64_t *[]){&s.ms, &s.live, &s.rss, &s.allocs}, 4)) return false;
    void *slot;
    *(struct dump_sample *)PUSH(d, samples, n_samples) = s;
    return true;
}

static bool rec_size(struct dump *d, char *p) {
    struct dump_size s;
    if (!numbers(&p, (uint64_t *[]){&s.limit, &s.allocs, &s.bytes}, 3)) return false;
    void *slot;
    *(struct dump_size *)PUSH(d, sizes, n_sizes) = s;
    return true;
}

static bool rec_total(struct dump *d, char *p) {
    const char *key = field(&p);
    uint64_t v;
    if (!key || !number(field(&p), &v)) return false;
    for (size_t i = 0; i < d->n_totals; i++)
        if (!strcmp(d->totals[i].key, key)) { /* a repeated key: the later value */
            d->totals[i].value = v;
            return true;
        }
    void *slot;
    *(struct dump_total *)PUSH(d, totals, n_totals) = (struct dump_total){cli_strdup(key), v};
    return true;
}

static bool copy_word(char *dst, size_t cap, const char *src) {
    if (!src || strlen(src) >= cap) return false;
    strcpy(dst, src);
    return true;
}

static bool rec_error(struct dump *d, char *p) {
    struct dump_error e;
    if (!copy_word(e.kind, sizeof e.kind, field(&p)) || !hex(field(&p), &e.addr) ||
        !numbers(&p, (uint64_t *[]){&e.alloc, &e.free, &e.size}, 3) || !signed_number(field(&p), &e.off) ||
        !copy_word(e.access, sizeof e.access, field(&p)))
        return false;
    const char *at = field(&p); /* optional: where the misuse happened */
    e.at = 0;
    if (at && !numbers(&(char *){(char *)at}, (uint64_t *[]){&e.at}, 1)) return false;
    d->error = e;
    d->has_error = true;
    return true;
}

static const struct {
    const char *type;
    bool (*read)(struct dump *d, char *rest);
} records[] = {
    {"process", rec_process}, {"exe", rec_exe},       {"module", rec_module}, {"stack", rec_stack},
    {"site", rec_site},       {"leak", rec_leak},     {"sample", rec_sample}, {"size", rec_size},
    {"total", rec_total},     {"error", rec_error},
};

/* ---- the file ---- */

static bool fail(struct dump *d, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
    d->why_errno = err;
    return false;
}

/* One line, its newline removed. */
static bool read_record(struct dump *d, char *line, size_t lineno) {
    char *rest = strchr(line, ' ');
    if (rest) *rest++ = '\0';
    if (!strcmp(line, "end")) {
        d->complete = true;
        return true;
    }
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++)
        if (!strcmp(line, records[i].type)) {
            if (records[i].read(d, rest)) return true;
            return fail(d, 0, "%s:%zu: malformed %s record", d->file, lineno, line);
        }
    d->unknown++;
    return true;
}

static bool read_header(struct dump *d, const char *line) {
    int version;
    char extra = '\n'; /* stays so for a file cut short after its first line */
    if (sscanf(line, "strata-diag %d%c", &version, &extra) < 1 || extra != '\n')
        return fail(d, 0, "%s: not a strata diagnostics dump (its first line is not 'strata-diag %d')", d->file,
                    SX_DIAG_DUMP_VERSION);
    if (version != SX_DIAG_DUMP_VERSION)
        return fail(d, 0, "%s: dump format version %d (this strata reads version %d)", d->file, version,
                    SX_DIAG_DUMP_VERSION);
    d->version = version;
    return true;
}

static bool read_lines(struct dump *d, FILE *f) {
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    bool ok = true;
    while (ok && !d->complete && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (lineno == 1) {
            ok = read_header(d, line);
            continue;
        }
        if (line[len - 1] != '\n') { /* a last line without newline: "end", or cut short */
            if (strcmp(line, "end") != 0) break;
        } else {
            line[len - 1] = '\0';
        }
        ok = read_record(d, line, lineno);
    }
    if (ok && lineno == 0) ok = fail(d, 0, "%s: empty file (not a strata diagnostics dump)", d->file);
    free(line);
    return ok;
}

static int by_stack_id(const void *a, const void *b) {
    uint64_t x = ((const struct dump_stack *)a)->id, y = ((const struct dump_stack *)b)->id;
    return (x > y) - (x < y);
}
static int by_module_lo(const void *a, const void *b) {
    uint64_t x = ((const struct dump_module *)a)->lo, y = ((const struct dump_module *)b)->lo;
    return (x > y) - (x < y);
}
static int by_sample_time(const void *a, const void *b) {
    uint64_t x = ((const struct dump_sample *)a)->ms, y = ((const struct dump_sample *)b)->ms;
    return (x > y) - (x < y);
}
static int by_size_limit(const void *a, const void *b) {
    uint64_t x = ((const struct dump_size *)a)->limit, y = ((const struct dump_size *)b)->limit;
    return (x > y) - (x < y);
}

bool dump_read(const char *path, struct dump *d) {
    memset(d, 0, sizeof *d);
    d->file = cli_strdup(path);
    d->exe = cli_strdup("");
    FILE *f = fopen(path, "re");
    if (!f) return fail(d, errno, "%s: %s", path, strerror(errno));
    bool ok = read_lines(d, f);
    if (ok && ferror(f)) ok = fail(d, errno, "%s: %s", path, strerror(errno));
    fclose(f);
    if (!ok) return false;
    qsort(d->stacks, d->n_stacks, sizeof *d->stacks, by_stack_id);
    qsort(d->modules, d->n_modules, sizeof *d->modules, by_module_lo);
    qsort(d->samples, d->n_samples, sizeof *d->samples, by_sample_time);
    qsort(d->sizes, d->n_sizes, sizeof *d->sizes, by_size_limit);
    return true;
}

void dump_free(struct dump *d) {
    for (size_t i = 0; i < d->n_modules; i++) free(d->modules[i].path);
    for (size_t i = 0; i < d->n_stacks; i++) free(d->stacks[i].pc);
    for (size_t i = 0; i < d->n_totals; i++) free(d->totals[i].key);
    free(d->modules), free(d->stacks), free(d->sites), free(d->leaks);
    free(d->samples), free(d->sizes), free(d->totals);
    free(d->file), free(d->exe);
    memset(d, 0, sizeof *d);
}

/* ---- looking things up ---- */

const struct dump_stack *dump_stack(const struct dump *d, uint64_t id) {
    struct dump_stack key = {.id = id};
    return d->n_stacks ? bsearch(&key, d->stacks, d->n_stacks, sizeof key, by_stack_id) : NULL;
}

const struct dump_module *dump_module_of(const struct dump *d, uint64_t pc) {
    uint64_t a = pc - 1; /* a return address may be just past its module's last call */
    size_t lo = 0, hi = d->n_modules;
    while (lo < hi) { /* the last module starting at or below a */
        size_t mid = (lo + hi) / 2;
        if (d->modules[mid].lo <= a) lo = mid + 1;
        else hi = mid;
    }
    for (size_t i = lo; i-- > 0;) /* modules may nest (a vdso inside a reservation): look back */
        if (a >= d->modules[i].lo && a < d->modules[i].hi) return &d->modules[i];
    return NULL;
}

const char *dump_module_path(const struct dump *d, const struct dump_module *m) {
    return m->path[0] ? m->path : d->exe;
}

bool dump_total(const struct dump *d, const char *key, uint64_t *value) {
    for (size_t i = 0; i < d->n_totals; i++)
        if (!strcmp(d->totals[i].key, key)) {
            *value = d->totals[i].value;
            return true;
        }
    return false;
}

/* ---- leaks ---- */

static int leak_order(const void *a, const void *b) {
    const struct dump_leak *x = a, *y = b;
    if (x->kind != y->kind) return x->kind == DUMP_LOST ? -1 : 1;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

static int leak_key(const void *a, const void *b) {
    const struct dump_leak *x = a, *y = b;
    if (x->kind != y->kind) return x->kind == DUMP_LOST ? -1 : 1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

struct dump_leak *dump_leaks_sorted(const struct dump *d, size_t *n) {
    struct dump_leak *l = cli_alloc(d->n_leaks * sizeof *l);
    if (d->n_leaks) memcpy(l, d->leaks, d->n_leaks * sizeof *l);
    qsort(l, d->n_leaks, sizeof *l, leak_key);
    size_t k = 0;
    for (size_t i = 0; i < d->n_leaks; i++) {
        if (k && !leak_key(&l[k - 1], &l[i])) { /* the same stack and kind twice: one row */
            l[k - 1].blocks += l[i].blocks;
            l[k - 1].bytes += l[i].bytes;
        } else {
            l[k++] = l[i];
        }
    }
    qsort(l, k, sizeof *l, leak_order);
    *n = k;
    return l;
}

void dump_leak_sum(const struct dump *d, enum dump_leak_kind kind, uint64_t *bytes, uint64_t *blocks) {
    *bytes = *blocks = 0;
    for (size_t i = 0; i < d->n_leaks; i++)
        if (d->leaks[i].kind == kind) *bytes += d->leaks[i].bytes, *blocks += d->leaks[i].blocks;
}
