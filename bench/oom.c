/*
 * oom.c — `make bench-oom`: how every entry point runs out of memory, and comes back, under each
 * way the kernel can refuse memory. Not a timing: a table of what happened, for BENCHMARKS.md.
 *
 * For each way of running out (RLIMIT_AS at the process's size + 256 MiB; vm.max_map_count filled
 * with one-page mappings and the program break blocked, 64 of them given back once the blocks are
 * freed; RLIMIT_DATA, which limits brk and private mappings alike) and each entry point, a child
 * process: allocates blocks of SIZE until the call
 * fails, notes how many it got, what errno (or return code) said and whether anything was printed;
 * frees them all; then asks for one 64 MiB block and for one more block from the same entry point.
 * Run it preloaded with any allocator: `LD_PRELOAD=lib/libstrata.so build/bench/oom`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MANY = 4 << 20, MIB = 1 << 20 };
static void *held[MANY];
static size_t size;

static int e_malloc(void **o) { return (*o = malloc(size)) ? 0 : errno; }
static int e_calloc(void **o) { return (*o = calloc(size / 16, 16)) ? 0 : errno; }
static int e_realloc(void **o) {
    void *p = malloc(16);
    if (!p) return errno;
    void *q = realloc(p, size);
    if (!q) {
        int e = errno;
        free(p);
        return e;
    }
    *o = q;
    return 0;
}
static int e_posix_memalign(void **o) { return posix_memalign(o, 4096, size); }
static int e_aligned_alloc(void **o) { return (*o = aligned_alloc(64, size)) ? 0 : errno; }
static int e_valloc(void **o) { return (*o = valloc(size)) ? 0 : errno; }

static const struct {
    const char *name;
    int (*fn)(void **);
} entries[] = {{"malloc", e_malloc},           {"calloc", e_calloc},
               {"realloc", e_realloc},         {"posix_memalign", e_posix_memalign},
               {"aligned_alloc", e_aligned_alloc}, {"valloc", e_valloc}};

/* A limit of what the process uses now (KiB from /proc/self/status: VmSize or VmData) + extra. */
static void limit(int resource, const char *key, size_t extra) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') kb = atol(line + k + 1);
    if (f) fclose(f);
    if (kb < 0) _exit(90);
    struct rlimit rl = {.rlim_cur = (rlim_t)kb * 1024 + extra, .rlim_max = (rlim_t)kb * 1024 + extra};
    if (setrlimit(resource, &rl) != 0) _exit(91);
}

static void by_as(void) { limit(RLIMIT_AS, "VmSize", (size_t)256 * MIB); }
static void by_data(void) { limit(RLIMIT_DATA, "VmData", (size_t)256 * MIB); }
static void *fillers[70000];
static int nfillers;
static void by_maps(void) {
    uintptr_t at = ((uintptr_t)sbrk(0) + 4095) & ~(uintptr_t)4095; /* the break cannot grow */
    mmap((void *)at, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    while (nfillers < 70000 && (fillers[nfillers] = mmap(NULL, 4096, nfillers & 1 ? PROT_READ : PROT_NONE,
                                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) != MAP_FAILED)
        nfillers++;
}
/* After the blocks are freed: whatever else took the mappings gives 64 of them back. */
static void relieve_maps(void) {
    for (int i = 0; i < 64 && nfillers; i++) munmap(fillers[--nfillers], 4096);
}

static const struct {
    const char *name;
    void (*fn)(void), (*relieve)(void);
} ways[] = {{"RLIMIT_AS", by_as, NULL}, {"max_map_count", by_maps, relieve_maps}, {"RLIMIT_DATA", by_data, NULL}};

/* In the child: one line of the table on stdout; stderr captured by the parent. */
static void one(int w, int e) {
    ways[w].fn();
    size_t n = 0;
    int err = 0;
    for (; n < MANY; n++) {
        errno = 0;
        err = entries[e].fn(&held[n]);
        if (err) break;
        memset(held[n], 1, size < 4096 ? size : 4096);
    }
    for (size_t i = 0; i < n; i++) free(held[i]);
    if (ways[w].relieve) ways[w].relieve();
    errno = 0;
    void *big = malloc((size_t)64 * MIB);
    if (big) memset(big, 2, (size_t)64 * MIB);
    free(big);
    void *again = NULL;
    int err2 = entries[e].fn(&again);
    free(again);
    printf("| %s | %s | %zu | %zu | %s | %s | %s |", ways[w].name, entries[e].name, size, n,
           n == MANY ? "never failed" : err == ENOMEM ? "ENOMEM" : strerror(err),
           big ? "yes" : "NO", err2 == 0 ? "yes" : "NO");
    fflush(stdout);
}

int main(int argc, char **argv) {
    static const size_t sizes[] = {1000, 64 << 10, 1 << 20};
    if (argc == 4) { /* one case, here: oom WAY ENTRY SIZE (indexes) */
        size = sizes[atoi(argv[3])];
        one(atoi(argv[1]), atoi(argv[2]));
        printf("\n");
        return 0;
    }
    printf("| ran out by | entry point | block | blocks before NULL | error | 64 MiB after freeing | entry works again | said on stderr |\n");
    printf("|---|---|---:|---:|---|---|---|---|\n");
    for (int w = 0; w < 3; w++)
        for (size_t e = 0; e < sizeof entries / sizeof entries[0]; e++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                size = sizes[s];
                int pfd[2];
                if (pipe(pfd) != 0) return 1;
                fflush(stdout);
                pid_t pid = fork();
                if (pid == 0) {
                    dup2(pfd[1], 2);
                    close(pfd[0]);
                    one(w, (int)e);
                    _exit(0);
                }
                close(pfd[1]);
                char msg[256] = "";
                ssize_t k = read(pfd[0], msg, sizeof msg - 1);
                msg[k > 0 ? k : 0] = '\0';
                for (char *c = msg; *c; c++)
                    if (*c == '\n' || *c == '|') *c = ' ';
                close(pfd[0]);
                int st;
                waitpid(pid, &st, 0);
                if (WIFSIGNALED(st)) printf("| %s | %s | %zu | killed by signal %d | | | |", ways[w].name,
                                            entries[e].name, size, WTERMSIG(st));
                printf(" %s |\n", msg[0] ? msg : "nothing");
            }
    return 0;
}
