/*
 * maps.c — `strata maps PID` and `strata maps [-o OPTIONS] -- CMD ARGS...`: a process's memory,
 * region by region, labelled, with its size, RSS, PSS and swap from /proc/PID/smaps; totals per
 * kind; the process's peaks from /proc/PID/status and a short /proc/meminfo summary.
 *
 * With `-- CMD`, CMD runs on strata and the snapshot is taken as it exits (trace.c), after its last
 * free but before its memory goes. The snapshot goes to stderr, the command's own stdout being
 * stdout; -O FILE writes it to FILE. The exit status is the command's.
 *
 * Labels, first rule that applies (the regions are in address order):
 *   heap       [heap]: the program break. strata puts its brk segments there.
 *   stack      [stack] (the main thread)
 *   vdso       [vdso], [vvar], [vvar_vclock], [vsyscall]
 *   strata     [anon:strata...], where the kernel names regions; /memfd:strata, the statistics
 *              file strata shares with `strata stats PID` (src/heap/share.c)
 *   guard      no access at all (---p): stack guards, reservations, gaps inside libraries
 *   text, rodata, data
 *              a mapping of the main executable (/proc/PID/exe) by permissions: executable = text,
 *              writable = data, read-only = rodata (which includes the RELRO part)
 *   lib-text, lib-rodata, lib-data
 *              the same for a shared library: a file whose name ends in .so or contains .so.
 *   then, for an anonymous rw region:
 *   bss, lib-bss
 *              one that starts where a binary's data mapping ends: that binary's bss
 *   stack      "[thread stack]": one of 64 KiB or more right after an anonymous guard of at most
 *              64 KiB, as glibc maps thread stacks
 *   strata     when libstrata is mapped in the process, one that starts on a 4 MiB boundary:
 *              strata's segments and huge blocks all do (the kernel merges neighbouring ones into
 *              one region, so a region may hold several). Best effort: a program linked with
 *              libstrata.a shows them as anon-mmap, and another mapping may happen to qualify.
 *   anon-mmap  any other anonymous region ([anon:NAME] included)
 *   file       any other file mapping (shared memory, other memfds, locale files, ...)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "cli.h"

/* In the order of the totals. The lib- kinds follow the executable's in the same order. */
enum kind {
    K_TEXT, K_RODATA, K_DATA, K_BSS,
    K_LIB_TEXT, K_LIB_RODATA, K_LIB_DATA, K_LIB_BSS,
    K_HEAP, K_STRATA, K_ANON, K_STACK, K_FILE, K_GUARD, K_VDSO,
    K_COUNT
};

static const char *const kind_names[K_COUNT] = {
    [K_TEXT] = "text",         [K_RODATA] = "rodata",         [K_DATA] = "data",         [K_BSS] = "bss",
    [K_LIB_TEXT] = "lib-text", [K_LIB_RODATA] = "lib-rodata", [K_LIB_DATA] = "lib-data", [K_LIB_BSS] = "lib-bss",
    [K_HEAP] = "heap",         [K_STRATA] = "strata",         [K_ANON] = "anon-mmap",    [K_STACK] = "stack",
    [K_FILE] = "file",         [K_GUARD] = "guard",           [K_VDSO] = "vdso",
};

enum { SIZE, RSS, PSS, SWAP, NFIELDS }; /* the smaps fields kept, in kB */
static const char *const field_names[NFIELDS] = {"Size", "Rss", "Pss", "Swap"};

#define SEGMENT_ALIGN (4UL << 20) /* strata's segments and huge blocks start on these boundaries */
#define STACK_GUARD_MAX (64UL << 10)
#define THREAD_STACK_MIN (64UL << 10)

struct region {
    unsigned long start, end, kb[NFIELDS];
    char perms[5];
    char *path;       /* as smaps says: a file, [heap], [anon:NAME], ... or "" */
    const char *name; /* what to show: the path, whose bss, [thread stack] */
    enum kind kind;
};

struct maps {
    pid_t pid;
    struct region *r;
    size_t n, cap;
    char exe[PATH_MAX];
};

/* ---- reading /proc/PID/smaps ---- */

static void *grow(void *p, size_t size) {
    p = realloc(p, size);
    if (!p) {
        fprintf(stderr, "strata: out of memory\n");
        exit(1);
    }
    return p;
}

/* "Name:   value kB" and the like: the first word ends in ':'. */
static bool is_field(const char *line) {
    size_t word = strcspn(line, " \t\n");
    return word > 0 && line[word - 1] == ':';
}

static bool parse_header(const char *line, struct region *r) {
    unsigned long offset, inode;
    unsigned major, minor;
    int at = 0;
    memset(r, 0, sizeof *r);
    if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu %n", &r->start, &r->end, r->perms, &offset, &major, &minor,
               &inode, &at) < 7 || at == 0)
        return false;
    size_t len = strcspn(line + at, "\n");
    r->path = grow(NULL, len + 1);
    memcpy(r->path, line + at, len);
    r->path[len] = '\0';
    r->name = r->path;
    return true;
}

static void parse_field(const char *line, struct region *r) {
    char name[32];
    unsigned long value;
    if (sscanf(line, "%31[^:]: %lu", name, &value) != 2) return;
    for (int f = 0; f < NFIELDS; f++)
        if (!strcmp(name, field_names[f])) r->kb[f] = value;
}

static void add_region(struct maps *m, const struct region *r) {
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->r = grow(m->r, m->cap * sizeof *m->r);
    }
    m->r[m->n++] = *r;
}

/* Read every region of /proc/PID/smaps; false after a one-line message. */
static bool read_smaps(struct maps *m) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps", (int)m->pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT) fprintf(stderr, "strata: maps: no process %d\n", (int)m->pid);
        else fprintf(stderr, "strata: maps: cannot read %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    while (getline(&line, &cap, f) > 0) {
        struct region r;
        if (is_field(line)) {
            if (m->n) parse_field(line, &m->r[m->n - 1]);
        } else if (parse_header(line, &r)) {
            add_region(m, &r);
        }
    }
    bool ok = !ferror(f);
    if (!ok) fprintf(stderr, "strata: maps: cannot read %s: %s\n", path, strerror(errno));
    free(line);
    fclose(f);
    if (ok && m->n == 0) {
        fprintf(stderr, "strata: maps: process %d has no memory mappings (a kernel thread or a zombie)\n",
                (int)m->pid);
        ok = false;
    }
    return ok;
}

static void free_maps(struct maps *m) {
    for (size_t i = 0; i < m->n; i++) free(m->r[i].path);
    free(m->r);
}

/* ---- labels ---- */

static bool starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* The path without the " (deleted)" the kernel adds to files removed since they were mapped. */
static size_t path_len(const char *path) {
    static const char deleted[] = " (deleted)";
    size_t n = strlen(path), d = sizeof deleted - 1;
    return n > d && !strcmp(path + n - d, deleted) ? n - d : n;
}

static bool is_library(const char *path) {
    size_t n = path_len(path);
    const char *slash = memrchr(path, '/', n), *base = slash ? slash + 1 : path;
    size_t len = n - (size_t)(base - path);
    return memmem(base, len, ".so.", 4) || (len > 3 && !memcmp(base + len - 3, ".so", 3));
}

static bool is_anonymous(const struct region *r) {
    return r->path[0] == '\0' || starts(r->path, "[anon:") || starts(r->path, "/anon_hugepage");
}

static bool strata_is_mapped(const struct maps *m) {
    for (size_t i = 0; i < m->n; i++) {
        const char *slash = strrchr(m->r[i].path, '/');
        if (slash && starts(slash + 1, "libstrata")) return true;
    }
    return false;
}

static enum kind binary_kind(const struct region *r, bool lib) {
    enum kind k = r->perms[2] == 'x' ? K_TEXT : r->perms[1] == 'w' ? K_DATA : K_RODATA;
    return lib ? k + (K_LIB_TEXT - K_TEXT) : k;
}

/* The region before r, when it ends where r starts. */
static struct region *adjacent_before(struct maps *m, size_t i) {
    return i > 0 && m->r[i - 1].end == m->r[i].start ? &m->r[i - 1] : NULL;
}

static enum kind anonymous_kind(struct maps *m, size_t i, bool strata) {
    struct region *r = &m->r[i], *prev = adjacent_before(m, i);
    if (strcmp(r->perms, "rw-p") != 0) return K_ANON;
    if (prev && (prev->kind == K_DATA || prev->kind == K_LIB_DATA)) {
        r->name = prev->path;
        return prev->kind == K_DATA ? K_BSS : K_LIB_BSS;
    }
    if (prev && prev->kind == K_GUARD && is_anonymous(prev) && prev->end - prev->start <= STACK_GUARD_MAX &&
        r->end - r->start >= THREAD_STACK_MIN) {
        prev->name = "[thread stack guard]";
        r->name = "[thread stack]";
        return K_STACK;
    }
    if (strata && r->start % SEGMENT_ALIGN == 0) return K_STRATA;
    return K_ANON;
}

static enum kind label(struct maps *m, size_t i, bool strata) {
    const struct region *r = &m->r[i];
    const char *p = r->path;
    if (!strcmp(p, "[heap]")) return K_HEAP;
    if (starts(p, "[stack")) return K_STACK;
    if (!strcmp(p, "[vdso]") || starts(p, "[vvar") || !strcmp(p, "[vsyscall]")) return K_VDSO;
    if (starts(p, "[anon:strata") || starts(p, "/memfd:strata ")) return K_STRATA;
    if (!strncmp(r->perms, "---", 3)) return K_GUARD;
    if (is_anonymous(r)) return anonymous_kind(m, i, strata);
    if (p[0] == '/' && m->exe[0] && !strcmp(p, m->exe)) return binary_kind(r, false);
    if (p[0] == '/' && is_library(p)) return binary_kind(r, true);
    return p[0] == '/' || starts(p, "anon_inode:") ? K_FILE : K_ANON;
}

static void label_all(struct maps *m) {
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)m->pid);
    ssize_t n = readlink(link, m->exe, sizeof m->exe - 1);
    m->exe[n > 0 ? n : 0] = '\0';
    bool strata = strata_is_mapped(m);
    for (size_t i = 0; i < m->n; i++) m->r[i].kind = label(m, i, strata);
}

/* ---- printing ---- */

/* kB in human units: 0, 4.0K, 132K, 1.2M, 40.5M, 2.0G. */
static const char *human(unsigned long kb, char buf[16]) {
    if (kb == 0) return "0";
    static const char units[] = "KMGTP";
    double v = (double)kb;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, 16, v < 100 ? "%.1f%c" : "%.0f%c", v, units[u]);
    return buf;
}

/* Hex digits of the highest address, [vsyscall] (far up in kernel space) aside. */
static int address_width(const struct maps *m) {
    int w = 8;
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->r[i].path, "[vsyscall]")) continue;
        int d = snprintf(NULL, 0, "%lx", m->r[i].end);
        if (d > w) w = d;
    }
    return w;
}

static void print_sizes(FILE *out, const char *first, int width, const char *kind, const unsigned long kb[]) {
    char b[NFIELDS][16];
    fprintf(out, "%-*s  %-10s %6s %6s %6s %6s", width, first, kind, human(kb[SIZE], b[0]),
            human(kb[RSS], b[1]), human(kb[PSS], b[2]), human(kb[SWAP], b[3]));
}

static void print_regions(FILE *out, const struct maps *m, int aw) {
    fprintf(out, "%-*s  %-10s %6s %6s %6s %6s  %s\n", 2 * aw + 1, "address", "kind", "size", "rss", "pss",
            "swap", "name");
    for (size_t i = 0; i < m->n; i++) {
        const struct region *r = &m->r[i];
        char range[64];
        snprintf(range, sizeof range, "%0*lx-%0*lx", aw, r->start, aw, r->end);
        print_sizes(out, range, 2 * aw + 1, kind_names[r->kind], r->kb);
        fprintf(out, "%s%s\n", r->name[0] ? "  " : "", r->name);
    }
}

static void print_totals(FILE *out, const struct maps *m, int aw) {
    unsigned long kb[K_COUNT + 1][NFIELDS] = {{0}};
    size_t count[K_COUNT + 1] = {0};
    for (size_t i = 0; i < m->n; i++)
        for (int f = 0; f < NFIELDS; f++) {
            kb[m->r[i].kind][f] += m->r[i].kb[f];
            kb[K_COUNT][f] += m->r[i].kb[f];
        }
    for (size_t i = 0; i < m->n; i++) count[m->r[i].kind]++;
    count[K_COUNT] = m->n;
    fprintf(out, "%-*s  %-10s %6s %6s %6s %6s  %s\n", 2 * aw + 1, "totals per kind", "kind", "size", "rss",
            "pss", "swap", "regions");
    for (int k = 0; k <= K_COUNT; k++) {
        if (!count[k]) continue;
        print_sizes(out, "", 2 * aw + 1, k == K_COUNT ? "total" : kind_names[k], kb[k]);
        fprintf(out, "  %zu\n", count[k]);
    }
}

/* Values of the named "Name: value [kB]" lines of a /proc file; has[i] says which were there. */
static void read_values(const char *path, const char *const names[], size_t n, unsigned long vals[],
                        bool has[], bool kb[]) {
    FILE *f = fopen(path, "re");
    if (!f) return;
    char line[256], name[64], unit[8];
    unsigned long v;
    while (fgets(line, sizeof line, f)) {
        int got = sscanf(line, "%63[^:]: %lu %7s", name, &v, unit);
        if (got < 2) continue;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(name, names[i])) vals[i] = v, has[i] = true, kb[i] = got == 3;
    }
    fclose(f);
}

/* "label Name value  Name value ..." for those of names the file has, `per_line` to a line. */
static void print_values(FILE *out, const char *label, const char *path, const char *const names[], size_t n,
                         size_t per_line) {
    unsigned long vals[16] = {0};
    bool has[16] = {false}, kb[16] = {false};
    read_values(path, names, n, vals, has, kb);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (!has[i]) continue;
        char b[16];
        if (shown % per_line == 0) fprintf(out, "%s%-9s", shown ? "\n" : "", shown ? "" : label);
        if (kb[i]) fprintf(out, "  %s %s", names[i], human(vals[i], b));
        else fprintf(out, "  %s %lu", names[i], vals[i]);
        shown++;
    }
    if (shown) fputc('\n', out);
}

static void print_process(FILE *out, const struct maps *m) {
    static const char *const names[] = {"VmPeak", "VmSize", "VmHWM", "VmRSS", "VmSwap", "Threads"};
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)m->pid);
    print_values(out, "process:", path, names, sizeof names / sizeof names[0], 6);
}

static void print_meminfo(FILE *out) {
    static const char *const names[] = {"MemTotal",        "MemAvailable",   "MemFree",      "Buffers",
                                        "Cached",          "SwapTotal",      "SwapFree",     "AnonHugePages",
                                        "HugePages_Total", "HugePages_Free", "Hugepagesize"};
    print_values(out, "system:", "/proc/meminfo", names, sizeof names / sizeof names[0], 6);
}

static void print_title(FILE *out, const struct maps *m, bool at_exit) {
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)m->pid);
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    fprintf(out, "strata maps: pid %d (%s)%s\n", (int)m->pid, comm, at_exit ? " as it exits" : "");
}

/* ---- the command ---- */

struct maps_args {
    bool totals_only, with_options;
    pid_t pid;
    char **cmd;
    const char *output;
    FILE *out;
    bool failed;
};

/* Read, label and print one process's memory. */
static bool show(pid_t pid, const struct maps_args *a, bool at_exit) {
    struct maps m = {.pid = pid};
    if (!read_smaps(&m)) {
        free_maps(&m);
        return false;
    }
    label_all(&m);
    int aw = address_width(&m);
    print_title(a->out, &m, at_exit);
    if (!a->totals_only) {
        print_regions(a->out, &m, aw);
        fputc('\n', a->out);
    }
    print_totals(a->out, &m, aw);
    print_process(a->out, &m);
    print_meminfo(a->out);
    fflush(a->out);
    free_maps(&m);
    return true;
}

static void snapshot(pid_t pid, void *arg) {
    struct maps_args *a = arg;
    if (!show(pid, a, true)) a->failed = true;
}

static pid_t parse_pid(const char *s) {
    if (!*s) return 0;
    for (const char *c = s; *c; c++)
        if (!isdigit((unsigned char)*c)) return 0;
    errno = 0;
    long v = strtol(s, NULL, 10);
    return errno || v > INT_MAX ? 0 : (pid_t)v;
}

static void parse_args(int argc, char **argv, struct maps_args *a) {
    const char *pid_arg = NULL, *v;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--")) {
            a->cmd = argv + i + 1;
            if (!a->cmd[0]) cli_usage("maps: no command given after --", NULL);
            break;
        } else if ((v = cli_option_value(argc, argv, &i, "-o", "--options"))) {
            cli_add_options(v);
            a->with_options = true;
        } else if ((v = cli_option_value(argc, argv, &i, "-O", "--output"))) {
            a->output = v;
        } else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            cli_add_options("verbose=1");
            a->with_options = true;
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--totals")) {
            a->totals_only = true;
        } else if (arg[0] == '-' && arg[1]) {
            cli_unknown_option(arg);
        } else if (pid_arg) {
            cli_usage("maps: one PID at a time ('%s' is one too many)", arg);
        } else {
            pid_arg = arg;
        }
    }
    if (a->cmd && pid_arg) cli_usage("maps: give a PID or -- CMD, not both (PID '%s')", pid_arg);
    if (a->cmd) return;
    if (!pid_arg) cli_usage("maps: no PID given (or -- CMD to run)", NULL);
    if (!(a->pid = parse_pid(pid_arg)))
        cli_usage("maps: '%s' is not a PID (to run a command: strata maps -- CMD ARGS...)", pid_arg);
    if (a->with_options) cli_usage("maps: -o and -v are for a command run with --", NULL);
}

int cmd_maps(int argc, char **argv) {
    struct maps_args a = {.out = NULL};
    parse_args(argc, argv, &a);
    a.out = a.cmd ? stderr : stdout;
    if (a.output && !(a.out = fopen(a.output, "we"))) {
        fprintf(stderr, "strata: maps: cannot write %s: %s\n", a.output, strerror(errno));
        return 1;
    }
    int status = a.cmd ? cli_run_to_exit(a.cmd, snapshot, &a) : show(a.pid, &a, false) ? 0 : 1;
    if (a.output && fclose(a.out) != 0) {
        fprintf(stderr, "strata: maps: cannot write %s: %s\n", a.output, strerror(errno));
        if (!a.cmd) status = 1;
    }
    return status;
}
