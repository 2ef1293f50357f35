/*
 * limit.c — the memory limit strata lives within, and how close the process is to it.
 *
 * A service in a container runs under its cgroup's memory limit: past it the kernel kills the
 * process. Memory strata caches for reuse (free spans, empty segments, freed huge mappings) is
 * the difference between staying under the limit and being killed, so strata reads the limit at
 * start: cgroup v2's memory.max and memory.high of the process's cgroup and every ancestor (the
 * smallest wins), or cgroup v1's hierarchical_memory_limit; none when unlimited or unreadable. The
 * option memory_limit=SIZE sets one by hand (memory_limit=0: none, whatever the cgroup says).
 *
 * What counts against it is anonymous memory, the part the kernel cannot drop on its own: the
 * cgroup's "anon" (v2) or "total_rss" (v1) from memory.stat, or for a limit set by hand the
 * process's resident memory less its file-backed pages (/proc/self/statm). Files are read only
 * when strata has taken another sx_limit_step bytes from the kernel (sx_limit_take), never on a
 * fast path; the decision what to give back is core/reclaim.c's. Nothing here allocates.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

size_t sx_limit_bytes;        /* 0: none */
size_t sx_limit_mark;         /* high-water mark: high_water percent of the limit */
size_t sx_limit_step;         /* bytes taken from the kernel between two looks at the usage */
_Atomic intptr_t sx_limit_credit; /* bytes left before the next look */
_Atomic bool sx_limit_due;    /* a look is due: the next slow path takes it */
_Atomic bool sx_pressure;     /* over the mark at the last look: keep nothing cached */

enum { SRC_NONE, SRC_OPTION, SRC_V1, SRC_V2 };
static int source;
static char stat_path[512]; /* memory.stat of the cgroup whose usage counts */

/* Read a small file into buf (NUL-terminated); its length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = '\0';
    return n;
}

/* A decimal number at s; false if there is none. */
static bool parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return p != s;
}

/* The value of the line "key N" in a memory.stat text; false if absent. */
static bool stat_field(const char *text, const char *key, uint64_t *out) {
    size_t k = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, key, k) && p[k] == ' ') return parse_u64(p + k + 1, out);
    return false;
}

/* The path of this process's cgroup for `controller` ("" for v2's unified line) from
 * /proc/self/cgroup, into out; false if there is no such line. */
static bool cgroup_path(const char *controller, char *out, size_t cap) {
    char buf[2048];
    if (read_file("/proc/self/cgroup", buf, sizeof buf) <= 0) return false;
    size_t clen = strlen(controller);
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        /* "ID:CONTROLLERS:PATH"; v2's is "0::PATH" */
        char *c = strchr(line, ':'), *path = c ? strchr(c + 1, ':') : NULL;
        if (path) {
            c++;
            bool match = clen == 0 ? path == c && line[0] == '0' : false;
            for (char *t = c; !match && t < path;) { /* comma-separated list */
                char *e = memchr(t, ',', (size_t)(path - t));
                if (!e) e = path;
                match = (size_t)(e - t) == clen && !memcmp(t, controller, clen);
                t = e + 1;
            }
            if (match) {
                sx_fmt(out, cap, "%s", path + 1);
                return true;
            }
        }
        line = next;
    }
    return false;
}

/* "max", or a number of bytes; false if unreadable. */
static bool read_limit(const char *path, uint64_t *out) {
    char buf[64];
    if (read_file(path, buf, sizeof buf) <= 0) return false;
    if (!strncmp(buf, "max", 3)) {
        *out = UINT64_MAX;
        return true;
    }
    return parse_u64(buf, out);
}

/* cgroup v2: the smallest memory.max or memory.high of the cgroup and its ancestors. */
static uint64_t limit_v2(void) {
    char rel[400];
    if (!cgroup_path("", rel, sizeof rel)) return 0;
    if (rel[0] && rel[strlen(rel) - 1] == '/') rel[strlen(rel) - 1] = '\0';
    sx_fmt(stat_path, sizeof stat_path, "/sys/fs/cgroup%s/memory.stat", rel);
    uint64_t best = UINT64_MAX;
    bool any = false;
    for (;;) {
        static const char *const files[] = {"memory.max", "memory.high"};
        for (int i = 0; i < 2; i++) {
            char path[600];
            uint64_t v;
            sx_fmt(path, sizeof path, "/sys/fs/cgroup%s/%s", rel, files[i]);
            if (read_limit(path, &v)) {
                any = true;
                if (v < best) best = v;
            }
        }
        char *slash = strrchr(rel, '/');
        if (!slash) break;
        *slash = '\0'; /* the parent; "" is the root, which has no limit files */
    }
    return any && best != UINT64_MAX ? best : 0;
}

/* cgroup v1: the memory controller's hierarchical limit, which takes the ancestors' into account.
 * "Unlimited" is a number near 2^63. */
static uint64_t limit_v1(void) {
    char rel[400], buf[4096];
    if (!cgroup_path("memory", rel, sizeof rel)) return 0;
    sx_fmt(stat_path, sizeof stat_path, "/sys/fs/cgroup/memory%s/memory.stat", rel);
    uint64_t v;
    if (read_file(stat_path, buf, sizeof buf) <= 0 || !stat_field(buf, "hierarchical_memory_limit", &v))
        return 0;
    return v >= ((uint64_t)1 << 62) ? 0 : v;
}

void sx_limit_init(void) {
    uint64_t limit = 0;
    if (sx_opt.memory_limit_set) {
        limit = sx_opt.memory_limit;
        source = limit ? SRC_OPTION : SRC_NONE;
    } else if ((limit = limit_v2()) != 0) {
        source = SRC_V2;
    } else if ((limit = limit_v1()) != 0) {
        source = SRC_V1;
    }
    if (!limit || source == SRC_NONE) return;
    sx_limit_bytes = (size_t)limit;
    sx_limit_mark = (size_t)(limit / 100 * (uint64_t)sx_opt.high_water);
    /* a look per 1/64 of the limit taken, but at least every 64 MiB and at most every 1 MiB */
    size_t step = sx_limit_bytes / 64;
    if (step < ((size_t)1 << 20)) step = (size_t)1 << 20;
    if (step > ((size_t)64 << 20)) step = (size_t)64 << 20;
    sx_limit_step = step;
    atomic_store(&sx_limit_credit, (intptr_t)step);
    atomic_store(&sx_limit_due, true); /* the first look comes with the first slow path */
    if (sx_opt.verbose >= 1) {
        char b[32];
        sx_message("memory limit %s (%s), giving back cached memory past %d%%",
                   sx_fmt_bytes(b, sizeof b, sx_limit_bytes),
                   source == SRC_OPTION ? "memory_limit" : source == SRC_V2 ? "cgroup v2" : "cgroup v1",
                   sx_opt.high_water);
    }
}

/* Anonymous memory counted against the limit now; 0 if it cannot be read. */
size_t sx_limit_usage(void) {
    char buf[4096];
    uint64_t v = 0;
    switch (source) {
    case SRC_V2:
        if (read_file(stat_path, buf, sizeof buf) > 0 && stat_field(buf, "anon", &v)) return (size_t)v;
        return 0;
    case SRC_V1:
        if (read_file(stat_path, buf, sizeof buf) > 0 && stat_field(buf, "total_rss", &v)) return (size_t)v;
        return 0;
    case SRC_OPTION: {
        /* pages: size resident shared(file-backed) ... */
        if (read_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
        uint64_t f[3] = {0, 0, 0};
        const char *p = buf;
        for (int i = 0; i < 3 && p; i++) {
            if (!parse_u64(p, &f[i])) return 0;
            p = strchr(p, ' ');
            if (p) p++;
        }
        return f[1] > f[2] ? (size_t)(f[1] - f[2]) * (size_t)sysconf(_SC_PAGESIZE) : 0;
    }
    default: return 0;
    }
}
