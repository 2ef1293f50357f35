/*
 * pprof.c — a heap profile in pprof's format: the protocol buffer of profile.proto
 * (github.com/google/pprof/proto/profile.proto), encoded by hand, in a gzip stream of stored
 * deflate blocks (gzip as pprof reads it; no compression library needed).
 *
 * The messages used, by field number:
 *   Profile   1 sample_type (ValueType), 2 sample, 3 mapping, 4 location, 5 function,
 *             6 string_table, 11 period_type, 12 period, 14 default_sample_type
 *   ValueType 1 type, 2 unit (string table indices)
 *   Sample    1 location_id (packed), 2 value (packed)
 *   Mapping   1 id, 2 memory_start, 3 memory_limit, 4 file_offset, 5 filename, 6 build_id,
 *             7 has_functions, 8 has_filenames, 9 has_line_numbers
 *   Location  1 id, 2 mapping_id, 3 address, 4 line (Line: 1 function_id, 2 line)
 *   Function  1 id, 2 name, 3 system_name, 4 filename
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pprof.h"

/* ---- a growing byte buffer, and protocol buffer fields into it ---- */
struct buf {
    uint8_t *b;
    size_t len, cap;
};

static void put(struct buf *o, const void *p, size_t n) {
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 64;
        o->b = cli_realloc(o->b, o->cap);
    }
    memcpy(o->b + o->len, p, n);
    o->len += n;
}

static void varint(struct buf *o, uint64_t v) {
    uint8_t t[10];
    int n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(o, t, (size_t)n);
}

enum { VARINT = 0, BYTES = 2 };
static void key(struct buf *o, int field, int type) { varint(o, (uint64_t)field << 3 | (uint64_t)type); }

static void field_u(struct buf *o, int field, uint64_t v) {
    if (!v) return; /* proto3: zero is the default, left out */
    key(o, field, VARINT);
    varint(o, v);
}

static void field_bytes(struct buf *o, int field, const void *p, size_t n) {
    key(o, field, BYTES);
    varint(o, n);
    put(o, p, n);
}

static void field_msg(struct buf *o, int field, struct buf *m) {
    field_bytes(o, field, m->b, m->len);
    m->len = 0;
}

/* ---- the profile in memory ---- */
struct loc {
    uint64_t addr, mapping, function;
    int64_t line;
};
struct fn {
    uint64_t name, file; /* string indices */
};

/* Ids (from 1) by hash, open addressing with linear probing; 0 is an empty slot. */
struct index {
    uint32_t *slot;
    size_t cap; /* a power of two, at least twice the ids held */
};

struct pprof {
    int nvalues;
    struct index string_ix, fn_ix, loc_ix;
    char **strings;
    size_t nstrings, capstrings;
    struct buf mappings, samples; /* encoded as they come */
    uint64_t nmappings;
    struct loc *locs;
    size_t nlocs, caplocs;
    struct fn *fns;
    size_t nfns, capfns;
    uint64_t *types, *units;
    uint64_t period_type, period_unit;
    int64_t period;
    uint64_t default_type;
};

static void *grow(void *a, size_t *cap, size_t n, size_t each) {
    if (n < *cap) return a;
    *cap = *cap ? *cap * 2 : 64;
    return cli_realloc(a, *cap * each);
}

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/* The slot of the id that is(p, id, key) says is the one, or the empty slot where it goes; held:
 * the ids in the index now (it grows to keep a free half). */
static uint32_t *index_slot(struct index *ix, size_t held, uint64_t hash, const struct pprof *p,
                            bool (*is)(const struct pprof *p, uint32_t id, const void *key), const void *key,
                            uint64_t (*hash_of)(const struct pprof *p, uint32_t id)) {
    if (2 * (held + 1) > ix->cap) { /* rehash into twice the room */
        struct index big = {cli_alloc((ix->cap ? 2 * ix->cap : 256) * sizeof *big.slot), ix->cap ? 2 * ix->cap : 256};
        for (size_t i = 0; i < ix->cap; i++)
            if (ix->slot[i]) {
                size_t j = mix(hash_of(p, ix->slot[i])) & (big.cap - 1);
                while (big.slot[j]) j = (j + 1) & (big.cap - 1);
                big.slot[j] = ix->slot[i];
            }
        free(ix->slot);
        *ix = big;
    }
    size_t j = mix(hash) & (ix->cap - 1);
    while (ix->slot[j] && !is(p, ix->slot[j], key)) j = (j + 1) & (ix->cap - 1);
    return &ix->slot[j];
}

static uint64_t string_hash(const char *s) {
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
static uint64_t string_hash_of(const struct pprof *p, uint32_t id) { return string_hash(p->strings[id]); }
static bool string_is(const struct pprof *p, uint32_t id, const void *key) { return !strcmp(p->strings[id], key); }

/* The string's index in the table (0 is ""). */
static uint64_t str(struct pprof *p, const char *s) {
    if (!s || !*s) return 0;
    uint32_t *slot = index_slot(&p->string_ix, p->nstrings, string_hash(s), p, string_is, s, string_hash_of);
    if (*slot) return *slot;
    p->strings = grow(p->strings, &p->capstrings, p->nstrings, sizeof *p->strings);
    p->strings[p->nstrings] = cli_strdup(s);
    *slot = (uint32_t)p->nstrings;
    return p->nstrings++;
}

struct pprof *pprof_new(const char *const *types, const char *const *units, int n) {
    struct pprof *p = cli_alloc(sizeof *p);
    p->nvalues = n;
    p->strings = grow(NULL, &p->capstrings, 0, sizeof *p->strings);
    p->strings[p->nstrings++] = cli_strdup("");
    p->types = cli_alloc((size_t)n * sizeof *p->types);
    p->units = cli_alloc((size_t)n * sizeof *p->units);
    for (int i = 0; i < n; i++) p->types[i] = str(p, types[i]), p->units[i] = str(p, units[i]);
    return p;
}

void pprof_free(struct pprof *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nstrings; i++) free(p->strings[i]);
    free(p->strings);
    free(p->mappings.b);
    free(p->samples.b);
    free(p->locs);
    free(p->string_ix.slot), free(p->fn_ix.slot), free(p->loc_ix.slot);
    free(p->fns);
    free(p->types);
    free(p->units);
    free(p);
}

uint64_t pprof_mapping(struct pprof *p, uint64_t lo, uint64_t hi, uint64_t offset, const char *file,
                       const char *build_id) {
    struct buf m = {0};
    uint64_t id = ++p->nmappings;
    field_u(&m, 1, id);
    field_u(&m, 2, lo);
    field_u(&m, 3, hi);
    field_u(&m, 4, offset);
    field_u(&m, 5, str(p, file));
    field_u(&m, 6, str(p, build_id));
    field_u(&m, 7, 1); /* has_functions, has_filenames, has_line_numbers: symbolized here */
    field_u(&m, 8, 1);
    field_u(&m, 9, 1);
    field_msg(&p->mappings, 3, &m);
    free(m.b);
    return id;
}

static uint64_t fn_hash_of(const struct pprof *p, uint32_t id) { return p->fns[id - 1].name << 32 ^ p->fns[id - 1].file; }
static bool fn_is(const struct pprof *p, uint32_t id, const void *key) {
    return !memcmp(&p->fns[id - 1], key, sizeof p->fns[0]);
}

static uint64_t function(struct pprof *p, const char *name, const char *source) {
    struct fn f = {str(p, name), str(p, source)};
    uint32_t *slot = index_slot(&p->fn_ix, p->nfns, f.name << 32 ^ f.file, p, fn_is, &f, fn_hash_of);
    if (*slot) return *slot;
    p->fns = grow(p->fns, &p->capfns, p->nfns, sizeof *p->fns);
    p->fns[p->nfns++] = f;
    return *slot = (uint32_t)p->nfns;
}

static uint64_t loc_hash_of(const struct pprof *p, uint32_t id) { return p->locs[id - 1].addr; }
static bool loc_is(const struct pprof *p, uint32_t id, const void *key) {
    return p->locs[id - 1].addr == *(const uint64_t *)key;
}

uint64_t pprof_location(struct pprof *p, uint64_t addr, uint64_t mapping, const char *fname,
                        const char *source, int64_t line) {
    uint32_t *slot = index_slot(&p->loc_ix, p->nlocs, addr, p, loc_is, &addr, loc_hash_of);
    if (*slot) return *slot;
    uint64_t fn = fname ? function(p, fname, source) : 0; /* other indexes: the slot stays */
    p->locs = grow(p->locs, &p->caplocs, p->nlocs, sizeof *p->locs);
    p->locs[p->nlocs++] = (struct loc){addr, mapping, fn, line};
    return *slot = (uint32_t)p->nlocs;
}

void pprof_sample(struct pprof *p, const uint64_t *locations, int depth, const int64_t *values) {
    struct buf s = {0}, packed = {0};
    for (int i = 0; i < depth; i++) varint(&packed, locations[i]);
    field_bytes(&s, 1, packed.b, packed.len);
    packed.len = 0;
    for (int i = 0; i < p->nvalues; i++) varint(&packed, (uint64_t)values[i]);
    field_bytes(&s, 2, packed.b, packed.len);
    field_msg(&p->samples, 2, &s);
    free(s.b);
    free(packed.b);
}

void pprof_period(struct pprof *p, const char *type, const char *unit, int64_t period) {
    p->period_type = str(p, type);
    p->period_unit = str(p, unit);
    p->period = period;
}

void pprof_default_type(struct pprof *p, const char *type) { p->default_type = str(p, type); }

/* ---- gzip of stored blocks ---- */
static uint32_t crc32_of(const uint8_t *b, size_t n) {
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static bool gzip_write(const uint8_t *b, size_t n, FILE *f) {
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    bool ok = fwrite(head, 1, sizeof head, f) == sizeof head;
    size_t at = 0;
    do { /* stored blocks of at most 65535 bytes; the last one says so */
        size_t k = n - at > 65535 ? 65535 : n - at;
        uint8_t h[5] = {at + k == n ? 1 : 0, (uint8_t)k, (uint8_t)(k >> 8), (uint8_t)~k, (uint8_t)(~k >> 8)};
        ok = ok && fwrite(h, 1, 5, f) == 5 && fwrite(b + at, 1, k, f) == k;
        at += k;
    } while (at < n);
    uint32_t crc = crc32_of(b, n), size = (uint32_t)n;
    uint8_t tail[8] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24),
                       (uint8_t)size, (uint8_t)(size >> 8), (uint8_t)(size >> 16), (uint8_t)(size >> 24)};
    return ok && fwrite(tail, 1, 8, f) == 8;
}

bool pprof_write(struct pprof *p, FILE *f) {
    struct buf o = {0}, m = {0}, line = {0};
    for (int i = 0; i < p->nvalues; i++) {
        field_u(&m, 1, p->types[i]);
        field_u(&m, 2, p->units[i]);
        field_msg(&o, 1, &m);
    }
    put(&o, p->samples.b, p->samples.len);
    put(&o, p->mappings.b, p->mappings.len);
    for (size_t i = 0; i < p->nlocs; i++) {
        const struct loc *l = &p->locs[i];
        field_u(&m, 1, i + 1);
        field_u(&m, 2, l->mapping);
        field_u(&m, 3, l->addr);
        if (l->function) {
            field_u(&line, 1, l->function);
            field_u(&line, 2, (uint64_t)l->line);
            field_msg(&m, 4, &line);
        }
        field_msg(&o, 4, &m);
    }
    for (size_t i = 0; i < p->nfns; i++) {
        field_u(&m, 1, i + 1);
        field_u(&m, 2, p->fns[i].name);
        field_u(&m, 3, p->fns[i].name);
        field_u(&m, 4, p->fns[i].file);
        field_msg(&o, 5, &m);
    }
    for (size_t i = 0; i < p->nstrings; i++) field_bytes(&o, 6, p->strings[i], strlen(p->strings[i]));
    if (p->period_type) {
        field_u(&m, 1, p->period_type);
        field_u(&m, 2, p->period_unit);
        field_msg(&o, 11, &m);
        field_u(&o, 12, (uint64_t)p->period);
    }
    field_u(&o, 14, p->default_type);
    bool ok = gzip_write(o.b, o.len, f);
    free(o.b);
    free(m.b);
    free(line.b);
    return ok;
}
