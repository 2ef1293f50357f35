/*
 * limit.c — a memory limit (the cgroup's, or memory_limit=) is lived within: past high_water of
 * it strata gives back what it caches, other threads' idle memory included, instead of letting
 * the kernel kill the process.
 *
 * The program ("hog" mode): four threads each fill HOG_THREAD_MIB of small blocks and free all but
 * one block per 4 MiB, so that their heaps keep every segment with its free spans resident and
 * nothing in use; then they sit idle while the main thread allocates HOG_MAIN_MIB more and
 * touches it. Without giving the idle threads' memory back, the process peaks near
 * 4 * HOG_THREAD_MIB + HOG_MAIN_MIB; the limit is set below that and above what it really uses.
 */
#include <pthread.h>
#include <sys/stat.h>

#include "harness.h"
#include "strata.h"

enum { THREADS = 4, HOG_THREAD_MIB = 60, HOG_MAIN_MIB = 120, LIMIT_MIB = 300 };

static pthread_barrier_t bar;

static void *hog_thread(void *arg) {
    enum { SIZE = 1000, N = (HOG_THREAD_MIB << 20) / SIZE, KEEP_EVERY = (4 << 20) / SIZE };
    static void *blocks[THREADS][N];
    void **b = blocks[(size_t)arg];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(SIZE);
        if (!b[i]) _exit(3);
        memset(b[i], 1, SIZE);
    }
    for (int i = 0; i < N; i++)
        if (i % KEEP_EVERY) free(b[i]);
    pthread_barrier_wait(&bar); /* filled and freed */
    pthread_barrier_wait(&bar); /* idle until the main thread is done */
    for (int i = 0; i < N; i += KEEP_EVERY) free(b[i]);
    return NULL;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') kb = atol(line + k + 1);
    fclose(f);
    return kb;
}

static int mode_hog(void) {
    pthread_t t[THREADS];
    pthread_barrier_init(&bar, NULL, THREADS + 1);
    for (size_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, hog_thread, (void *)i) != 0) return 2;
    pthread_barrier_wait(&bar);
    enum { N = (HOG_MAIN_MIB << 20) / (64 << 10) };
    static void *mine[N];
    for (int i = 0; i < N; i++) {
        mine[i] = malloc(64 << 10);
        if (!mine[i]) return 4;
        memset(mine[i], 2, 64 << 10);
    }
    pthread_barrier_wait(&bar);
    for (size_t i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) free(mine[i]);
    printf("peak %ld KiB\n", status_kb("VmHWM"));
    return 0;
}

static long peak_of(const th_result *r) {
    const char *p = strstr(r->out, "peak ");
    return p ? atol(p + 5) : -1;
}

/* memory_limit= by hand: the peak stays under the limit; with no limit it does not. */
static void memory_limit_option_is_lived_within(void) {
    char opt[64];
    snprintf(opt, sizeof opt, "memory_limit=%dm", LIMIT_MIB);
    th_result r = th_self("hog", opt);
    CHECKF(r.exited && r.code == 0, "exit %d signal %d: %s", r.code, r.sig, r.err);
    long peak = peak_of(&r);
    CHECKF(peak > 0 && peak < LIMIT_MIB * 1024L, "peak %ld KiB under a %d MiB limit", peak, LIMIT_MIB);
    th_result u = th_self("hog", "memory_limit=0");
    CHECKF(u.exited && u.code == 0, "without a limit: exit %d signal %d: %s", u.code, u.sig, u.err);
    long upeak = peak_of(&u);
    CHECKF(upeak > LIMIT_MIB * 1024L, "without a limit the peak is only %ld KiB: the test shows nothing",
           upeak);
}

/* ---- a real cgroup ---- */

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* Make a cgroup with a memory limit of LIMIT_MIB; its directory in dir, or false with why. */
static bool cgroup_make(char *dir, size_t cap, char *why, size_t wcap) {
    char limit[32];
    snprintf(limit, sizeof limit, "%lu", (unsigned long)LIMIT_MIB << 20);
    struct stat st;
    if (stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0) { /* v1 */
        snprintf(dir, cap, "/sys/fs/cgroup/memory/strata-test-%d", (int)getpid());
        if (mkdir(dir, 0755) != 0) {
            snprintf(why, wcap, "cannot create a v1 memory cgroup (%s): %s", dir, strerror(errno));
            return false;
        }
        char path[512];
        snprintf(path, sizeof path, "%s/memory.limit_in_bytes", dir);
        if (!write_file(path, limit)) {
            snprintf(why, wcap, "cannot set %s: %s", path, strerror(errno));
            rmdir(dir);
            return false;
        }
        return true;
    }
    if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) { /* v2 */
        char self[400] = "", line[512];
        FILE *f = fopen("/proc/self/cgroup", "r");
        while (f && fgets(line, sizeof line, f))
            if (!strncmp(line, "0::", 3)) sscanf(line + 3, "%399s", self);
        if (f) fclose(f);
        if (!strcmp(self, "/")) self[0] = '\0';
        char parent[512], path[600];
        snprintf(parent, sizeof parent, "/sys/fs/cgroup%s", self);
        snprintf(path, sizeof path, "%s/cgroup.subtree_control", parent);
        if (!write_file(path, "+memory")) {
            snprintf(why, wcap, "cannot enable the memory controller under %s (v2): %s", parent,
                     strerror(errno));
            return false;
        }
        snprintf(dir, cap, "%s/strata-test-%d", parent, (int)getpid());
        if (mkdir(dir, 0755) != 0) {
            snprintf(why, wcap, "cannot create a v2 cgroup (%s): %s", dir, strerror(errno));
            return false;
        }
        snprintf(path, sizeof path, "%s/memory.max", dir);
        if (!write_file(path, limit)) {
            snprintf(why, wcap, "cannot set %s: %s", path, strerror(errno));
            rmdir(dir);
            return false;
        }
        return true;
    }
    snprintf(why, wcap, "no cgroup memory controller mounted under /sys/fs/cgroup");
    return false;
}

/* Run the hog in the cgroup: a child joins it, then runs this program again. */
static th_result run_in_cgroup(const char *dir, const char *options) {
    char procs[600], exe[4096], opt[256];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(opt, sizeof opt, "STRATA_OPTIONS=%s", options);
    char *argv[] = {"sh", "-c", "echo $$ > \"$0\" && exec $STRATA_TEST_EMULATOR \"$1\" hog", procs, exe, NULL};
    char *env[] = {opt, NULL};
    return th_exec(argv, env);
}

static void cgroup_limit_is_lived_within(void) {
    char dir[512], why[600];
    if (!cgroup_make(dir, sizeof dir, why, sizeof why)) SKIP("%s", why);
    th_result r = run_in_cgroup(dir, "");
    th_result u = run_in_cgroup(dir, "memory_limit=0"); /* the cgroup's limit ignored */
    rmdir(dir);
    CHECKF(r.exited && r.code == 0, "in a %d MiB cgroup: exit %d signal %d: %s", LIMIT_MIB, r.code,
           r.sig, r.err);
    long peak = peak_of(&r);
    CHECKF(peak > 0 && peak < LIMIT_MIB * 1024L, "peak %ld KiB in a %d MiB cgroup", peak, LIMIT_MIB);
    /* the same program not watching the limit is killed by the kernel */
    CHECKF(u.signaled && u.sig == SIGKILL, "ignoring the cgroup's limit: exit %d signal %d (%s): the "
           "test shows nothing", u.code, u.sig, u.out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "hog")) return mode_hog();
    RUN(memory_limit_option_is_lived_within);
    RUN(cgroup_limit_is_lived_within);
    return 0;
}
