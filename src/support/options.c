/*
 * options.c — STRATA_OPTIONS, the one environment variable that configures strata.
 *
 * A comma-separated list of name=value pairs, e.g. "mmap_threshold=256k,brk=0,verbose=1". Sizes
 * take k, m and g suffixes (powers of 1024); booleans take 1/0, yes/no, on/off, true/false. An
 * unknown name or a bad value is reported in one line and ignored, keeping the default. "help"
 * prints the table. Set-user-ID programs ignore the variable.
 *
 * Parsing happens on the first allocation, possibly before libc has set up `environ`; then the
 * variable is read from /proc/self/environ instead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "support.h"

sx_options sx_opt = {
    .mmap_threshold = SX_MMAP_THRESHOLD_DEFAULT,
    .trim_threshold = SX_TRIM_THRESHOLD_DEFAULT,
    .top_pad = SX_TOP_PAD_DEFAULT,
    .brk = true,
    .verbose = 0,
    .foreign_free = SX_FOREIGN_ABORT,
    .diag_depth = 16,
    .guard_sample = 0,
    .guard_sample_cost = 1,
    .profile_rate = SX_PROFILE_RATE_DEFAULT,
    .profile_cost = 1,
    .guard_align = 16,
    .quarantine = (size_t)256 << 20,
    .high_water = 90,
    .secure_verify = 8,
#ifdef STRATA_SECURE_DEFAULT /* lib/libstrata-secure.so */
    .secure = true,
#endif
#ifdef STRATA_DEBUG
    .pool_debug = true,
#endif
};

/* libstrata-diag.so defines it true (diag/diag.c); here, the release build's answer. */
__attribute__((weak)) bool sx_diag_linked = false;

enum { OPT_SIZE, OPT_BOOL, OPT_INT, OPT_ENUM, OPT_STR };

static const char *const foreign_names[] = {"abort", "forward", "ignore", NULL};
static const char *const huge_names[] = {"off", "thp", "hugetlb", NULL};
static const char *const diag_names[] = {"none", "leaks", "guard", "report", NULL};

typedef struct {
    const char *name;
    int type;
    void *value;
    bool *set;        /* marks that the user chose the value */
    size_t max;       /* for sizes and integers; for strings, the buffer's size */
    const char *help;
    const char *const *names; /* for enums: the values, in order */
} option_t;

static const option_t options[] = {
    {.name = "mmap_threshold", .type = OPT_SIZE, .value = &sx_opt.mmap_threshold,
     .set = &sx_opt.mmap_threshold_set, .max = SX_MMAP_THRESHOLD_MAX,
     .help = "blocks this big or bigger get their own mapping (fixes the threshold: no adapting)"},
    {.name = "trim_threshold", .type = OPT_SIZE, .value = &sx_opt.trim_threshold,
     .set = &sx_opt.trim_threshold_set, .max = SIZE_MAX,
     .help = "free memory at the top of [heap] beyond this is returned by lowering the break"},
    {.name = "top_pad", .type = OPT_SIZE, .value = &sx_opt.top_pad, .set = &sx_opt.top_pad_set,
     .max = (size_t)1 << 30, .help = "extra memory the break is moved by, and kept when trimming"},
    {.name = "brk", .type = OPT_BOOL, .value = &sx_opt.brk, .max = 1,
     .help = "grow the heap with the program break ([heap]) before using mmap"},
    {.name = "foreign_free", .type = OPT_ENUM, .value = &sx_opt.foreign_free, .names = foreign_names,
     .help = "pointers strata did not allocate: abort, forward (to the next allocator) or ignore"},
    {.name = "huge_pages", .type = OPT_ENUM, .value = &sx_opt.huge_pages, .names = huge_names,
     .help = "back memory with huge pages: off, thp (transparent, by madvise) or hugetlb "
             "(reserved pages for big blocks where the kernel has them, else thp)"},
    {.name = "secure", .type = OPT_BOOL, .value = &sx_opt.secure, .max = 1,
     .help = "secure mode: canaries, zero-on-free, quarantine, random order (see SECURITY.md)"},
    {.name = "secure_verify", .type = OPT_INT, .value = &sx_opt.secure_verify, .max = 1000000,
     .help = "secure mode: a freed block over 512 bytes leaving the quarantine has all its bytes "
             "checked for writes after free one time in N at random (1: always), else its first, "
             "middle and last 64 bytes and one other 64-byte line; malloc_trim checks all"},
    {.name = "memory_limit", .type = OPT_SIZE, .value = &sx_opt.memory_limit,
     .set = &sx_opt.memory_limit_set, .max = SIZE_MAX,
     .help = "live within this much memory (default: the cgroup's memory.max/memory.high or "
             "memory.limit_in_bytes; 0: no limit): past high_water of it, cached memory goes back"},
    {.name = "high_water", .type = OPT_INT, .value = &sx_opt.high_water, .max = 100,
     .help = "percent of the memory limit past which strata gives back everything it caches"},
    {.name = "stats", .type = OPT_BOOL, .value = &sx_opt.stats, .max = 1,
     .help = "print heap statistics at exit, per size class (calls take the slow path: slower)"},
    {.name = "pool_debug", .type = OPT_BOOL, .value = &sx_opt.pool_debug, .max = 1,
     .help = "strata_pool: make the memory of destroyed and reset pools inaccessible and catch "
             "calls on destroyed pools (default 1 in the debug build)"},
    {.name = "diag", .type = OPT_ENUM, .value = &sx_opt.diag, .names = diag_names,
     .help = "libstrata-diag.so: none, leaks (stacks of unfreed blocks), guard (guard pages) or "
             "report (leaks and a record over time); see strata leaks, guard, report"},
    {.name = "diag_file", .type = OPT_STR, .value = sx_opt.diag_file, .max = sizeof sx_opt.diag_file,
     .help = "libstrata-diag.so: write what was recorded to this path + .PID at exit"},
    {.name = "diag_depth", .type = OPT_INT, .value = &sx_opt.diag_depth, .max = 64,
     .help = "libstrata-diag.so: call stack frames recorded per allocation (1 to 64)"},
    {.name = "diag_sample", .type = OPT_SIZE, .value = &sx_opt.diag_sample, .max = (size_t)1 << 40,
     .help = "libstrata-diag.so: take a stack once per this many bytes allocated (0: every block)"},
    {.name = "guard_sample", .type = OPT_INT, .value = &sx_opt.guard_sample, .max = 1000000,
     .help = "one allocation in N, at random, on guard pages (GWP-ASan style; 0: off): an "
             "overflow or use after free of a sampled block is reported with its stacks, and the "
             "process dies of it. libstrata-diag.so, diag=guard: guard one block in N (0, 1: all)"},
    {.name = "guard_sample_cost", .type = OPT_INT, .value = &sx_opt.guard_sample_cost, .max = 100,
     .help = "percent of the time since start the sampled guard's samples may take (guard_sample), "
             "in CPU time of the threads that take them: one that would go past it is not taken, "
             "whatever N says (0: no limit)"},
    {.name = "profile_rate", .type = OPT_SIZE, .value = &sx_opt.profile_rate, .max = (size_t)1 << 40,
     .help = "the heap profile that strata profile PID reads: one allocation sampled, with its "
             "call stack, per this many bytes allocated on average (0: off)"},
    {.name = "profile_cost", .type = OPT_INT, .value = &sx_opt.profile_cost, .max = 100,
     .help = "percent of a thread's time the heap profile's samples may take: a thread past it "
             "samples less often, each sample then standing for more bytes (0: no limit)"},
    {.name = "profile_dump", .type = OPT_STR, .value = sx_opt.profile_dump, .max = sizeof sx_opt.profile_dump,
     .help = "write the heap profile to this path when the process exits (strata profile -- CMD)"},
    {.name = "guard_align", .type = OPT_INT, .value = &sx_opt.guard_align, .max = 4096,
     .help = "libstrata-diag.so, diag=guard: alignment of a block's end against its guard page "
             "(1: exactly at it, so a write one byte past faults; 16 keeps malloc's alignment)"},
    {.name = "guard_underflow", .type = OPT_BOOL, .value = &sx_opt.guard_underflow, .max = 1,
     .help = "libstrata-diag.so, diag=guard: put the guard page before each block, not after"},
    {.name = "quarantine", .type = OPT_SIZE, .value = &sx_opt.quarantine, .max = (size_t)1 << 40,
     .help = "libstrata-diag.so, diag=guard: freed blocks' address space kept inaccessible"},
    {.name = "verbose", .type = OPT_INT, .value = &sx_opt.verbose, .max = 3,
     .help = "1: start-up and exit summary; 2: also segment, brk and threshold events"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

static void describe(const option_t *o, char *buf, size_t cap) {
    switch (o->type) {
    case OPT_SIZE: sx_fmt(buf, cap, "%zu", *(size_t *)o->value); break;
    case OPT_BOOL: sx_fmt(buf, cap, "%d", *(bool *)o->value ? 1 : 0); break;
    case OPT_INT: sx_fmt(buf, cap, "%d", *(int *)o->value); break;
    case OPT_ENUM: sx_fmt(buf, cap, "%s", o->names[*(int *)o->value]); break;
    case OPT_STR: sx_fmt(buf, cap, "%s", *(const char *)o->value ? (const char *)o->value : "\"\""); break;
    }
}

static void print_help(void) {
    sx_printf(2, "strata: options (STRATA_OPTIONS=name=value,...), with current values:\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        char v[32];
        describe(&options[i], v, sizeof v);
        sx_printf(2, "  %s=%s\n      %s\n", options[i].name, v, options[i].help);
    }
}

static bool eq(const char *a, size_t n, const char *b) { return strlen(b) == n && !memcmp(a, b, n); }

static bool parse_size(const char *s, size_t n, size_t *out) {
    if (n == 0) return false;
    size_t v = 0, i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (SIZE_MAX - 9) / 10) return false;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    if (i == 0) return false;
    if (i < n) {
        unsigned shift = 0;
        switch (s[i] | 0x20) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: return false;
        }
        i++;
        if (i < n && (s[i] | 0x20) == 'b') i++; /* "64kb" */
        if (i != n || v > (SIZE_MAX >> shift)) return false;
        v <<= shift;
    }
    *out = v;
    return true;
}

static bool parse_value(const option_t *o, const char *s, size_t n) {
    size_t v;
    switch (o->type) {
    case OPT_SIZE:
        if (!parse_size(s, n, &v) || v > o->max) return false;
        *(size_t *)o->value = v;
        return true;
    case OPT_INT:
        if (!parse_size(s, n, &v) || v > o->max) return false;
        *(int *)o->value = (int)v;
        return true;
    case OPT_BOOL:
        if (eq(s, n, "1") || eq(s, n, "yes") || eq(s, n, "on") || eq(s, n, "true"))
            *(bool *)o->value = true;
        else if (eq(s, n, "0") || eq(s, n, "no") || eq(s, n, "off") || eq(s, n, "false"))
            *(bool *)o->value = false;
        else return false;
        return true;
    case OPT_STR:
        if (n == 0 || n >= o->max) return false;
        memcpy(o->value, s, n);
        ((char *)o->value)[n] = '\0';
        return true;
    case OPT_ENUM:
        for (int i = 0; o->names[i]; i++)
            if (eq(s, n, o->names[i])) {
                *(int *)o->value = i;
                return true;
            }
        return false;
    }
    return false;
}

static void parse_item(const char *s, size_t n) {
    const char *eqs = memchr(s, '=', n);
    size_t nlen = eqs ? (size_t)(eqs - s) : n;
    if (eq(s, nlen, "help")) {
        print_help();
        return;
    }
    for (size_t i = 0; i < NOPTIONS; i++) {
        const option_t *o = &options[i];
        if (!eq(s, nlen, o->name)) continue;
        const char *val = eqs ? eqs + 1 : "1";
        size_t vlen = eqs ? n - nlen - 1 : 1;
        if (!eqs && o->type != OPT_BOOL && o->type != OPT_INT) vlen = 0;
        if (parse_value(o, val, vlen)) {
            if (o->set) *o->set = true;
        } else {
            char cur[32];
            describe(o, cur, sizeof cur);
            sx_message("bad value '%.*s' for option %s in STRATA_OPTIONS (keeping %s)", (int)vlen,
                       val, o->name, cur);
        }
        return;
    }
    sx_message("unknown option '%.*s' in STRATA_OPTIONS (ignored; STRATA_OPTIONS=help lists them)",
               (int)nlen, s);
}

/* Early in start-up `environ` may not be set yet: read the variable from /proc instead. */
static const char *env_from_proc(const char *name) {
    static char buf[16384];
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    size_t len = strlen(name);
    for (char *p = buf; p < buf + n; p += strlen(p) + 1)
        if (!strncmp(p, name, len) && p[len] == '=') return p + len + 1;
    return NULL;
}

const char *sx_env_get(const char *name) {
    extern char **environ;
    if (!environ) return env_from_proc(name);
    size_t len = strlen(name);
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, name, len) && (*e)[len] == '=') return *e + len + 1;
    return NULL;
}

static void options_parse(void) {
    if (getauxval(AT_SECURE)) return;
    const char *s = sx_env_get("STRATA_OPTIONS");
    if (!s) return;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        while (n && *s == ' ') s++, n--;
        while (n && s[n - 1] == ' ') n--;
        if (n) parse_item(s, n);
        if (!end) break;
        s = end + 1;
    }
    if (sx_opt.diag && !sx_diag_linked) {
        sx_message("option diag=%s needs libstrata-diag.so (strata leaks, guard and report preload "
                   "it); ignored", diag_names[sx_opt.diag]);
        sx_opt.diag = 0;
    }
    if (sx_opt.secure && sx_diag_linked && sx_opt.diag) {
        sx_message("option secure=1 does not combine with diag=%s (its checks would see secure mode's "
                   "canaries as the program's bytes); ignored", diag_names[sx_opt.diag]);
        sx_opt.secure = false;
    }
    /* In libstrata-diag.so guard_sample is diag=guard's one block in N, not the sampled guard; secure
     * mode has guard pages of its own. */
    sx_opt.sampled_guard = sx_opt.guard_sample > 0 && !sx_diag_linked && !sx_opt.secure;
    if (sx_opt.diag_depth < 1) {
        sx_message("bad value '0' for option diag_depth in STRATA_OPTIONS (keeping 16)");
        sx_opt.diag_depth = 16;
    }
    if (sx_opt.high_water < 1) {
        sx_message("bad value '0' for option high_water in STRATA_OPTIONS (keeping 90)");
        sx_opt.high_water = 90;
    }
    if (sx_opt.guard_align < 1 || (sx_opt.guard_align & (sx_opt.guard_align - 1))) {
        sx_message("bad value '%d' for option guard_align in STRATA_OPTIONS (a power of two; keeping 16)",
                   sx_opt.guard_align);
        sx_opt.guard_align = 16;
    }
}

/* Once per process, by whichever comes first: start-up, or a foreign free before any allocation
 * (it needs foreign_free). Another thread arriving meanwhile waits. */
void sx_options_init(void) {
    static _Atomic int state;
    if (!sx_once_claim(&state)) return;
    options_parse();
    /* libstrata-diag.so records every stack itself; secure mode's blocks are not the core's */
    if (sx_diag_linked || sx_opt.secure) sx_opt.profile_rate = 0;
    sx_once_done(&state);
}
