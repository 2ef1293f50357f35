/*
 * statsfile.c — the statistics file `strata stats PID` reads (src/heap/share.c), seen from
 * inside the process that writes it.
 *
 * The process has one descriptor on a memfd named "strata", at 100 or above and close-on-exec
 * (so that exec drops it); the file's header names this process and this layout; a malloc counts
 * in the file as it happens, a new thread's heap joins the file, and a forked child gets a file of
 * its own (same descriptor number, another file, its own pid), so that what the child counts is
 * not in its parent's.
 */
#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "../../src/sizeclass.h"
#include "../../src/support/statfile.h"
#include "strata.h"

static int stats_fd(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int found = -1, count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char link[64], target[128];
        snprintf(link, sizeof link, "/proc/self/fd/%.20s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (!strcmp(target, "/memfd:strata (deleted)")) {
            found = atoi(e->d_name);
            count++;
        }
    }
    closedir(d);
    return count == 1 ? found : -2 - count;
}

static bool read_header(int fd, sx_share_header *h) {
    return pread(fd, h, sizeof *h, 0) == (ssize_t)sizeof *h;
}

/* The counters of heap i, as the strata command finds them. */
static bool read_heap(int fd, const sx_share_header *h, unsigned i, sx_heap_counts *c) {
    off_t off = (off_t)((i / h->region_heaps) * h->region_bytes + h->heaps_at +
                        (i % h->region_heaps) * h->heap_stride);
    return pread(fd, c, sizeof *c, off) == (ssize_t)sizeof *c;
}

/* Mallocs of the size class of `size`, over every heap in the file: the fast path counts them
 * by direct-table slot, the slow path by class. */
static uint64_t class_mallocs(int fd, size_t size) {
    sx_share_header h;
    if (!read_header(fd, &h)) return 0;
    unsigned bin = sx_bin_of(size);
    uint64_t n = 0;
    for (unsigned i = 0; i < h.heaps; i++) {
        sx_heap_counts c;
        if (!read_heap(fd, &h, i, &c)) continue;
        n += c.n_alloc[bin];
        for (unsigned d = sx_bin_direct_lo(bin); d <= sx_bin_direct_hi(bin); d++) n += c.n_direct[d];
    }
    return n;
}

static void descriptor_is_high_and_closed_on_exec(void) {
    th_use(malloc(16));
    int fd = stats_fd();
    CHECKF(fd >= 100, "statistics descriptor %d (below -1: none or several)", fd);
    int flags = fcntl(fd, F_GETFD);
    CHECKF(flags >= 0 && (flags & FD_CLOEXEC), "descriptor %d flags %d", fd, flags);
}

static void header_names_this_process(void) {
    int fd = stats_fd();
    CHECK(fd >= 0);
    sx_share_header h;
    CHECK(read_header(fd, &h));
    CHECKF(h.magic == SX_SHARE_MAGIC && h.version == SX_SHARE_VERSION, "magic %llx version %u",
           (unsigned long long)h.magic, h.version);
    CHECKF(h.pid == getpid(), "header pid %d, process %d", h.pid, (int)getpid());
    CHECK(h.heap_counts_size == sizeof(sx_heap_counts) && h.counters_size == sizeof(sx_counters));
    CHECK(h.bins == SX_BINS && h.region_heaps > 0 && h.heaps >= 1);
    CHECKF(!strcmp(h.library, STRATA_VERSION_STRING), "library '%.16s'", h.library);
    CHECKF(h.count.mmap_calls > 0, "no mmap counted in the file's sx_count");
}

static void mallocs_count_in_the_file(void) {
    int fd = stats_fd();
    CHECK(fd >= 0);
    uint64_t before = class_mallocs(fd, 40);
    enum { N = 1000 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(40);
    uint64_t after = class_mallocs(fd, 40);
    for (int i = 0; i < N; i++) free(p[i]);
    CHECKF(after >= before + N, "%d mallocs of 40 bytes: their class went from %llu to %llu", N,
           (unsigned long long)before, (unsigned long long)after);
}

static pthread_barrier_t made, seen;

static void *thread_allocates(void *arg) {
    for (int i = 0; i < 700; i++) ((void **)arg)[i] = malloc(200);
    pthread_barrier_wait(&made);
    pthread_barrier_wait(&seen);
    for (int i = 0; i < 700; i++) free(((void **)arg)[i]);
    return NULL;
}

static void thread_heaps_join_the_file(void) {
    int fd = stats_fd();
    CHECK(fd >= 0);
    sx_share_header h0, h1;
    CHECK(read_header(fd, &h0));
    uint64_t before = class_mallocs(fd, 200);
    static void *blocks[2][700];
    pthread_t t[2];
    pthread_barrier_init(&made, NULL, 3);
    pthread_barrier_init(&seen, NULL, 3);
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, thread_allocates, blocks[i]) == 0);
    pthread_barrier_wait(&made);
    bool ok = read_header(fd, &h1);
    uint64_t after = class_mallocs(fd, 200);
    pthread_barrier_wait(&seen);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&made);
    pthread_barrier_destroy(&seen);
    CHECK(ok);
    /* a thread may adopt the heap of one that exited; two live ones cannot share */
    CHECKF(h1.heaps >= 3 && h1.heaps >= h0.heaps, "heaps in the file: %u, then %u", h0.heaps, h1.heaps);
    CHECKF(after >= before + 1400, "2 threads x 700 mallocs of 200 bytes: %llu -> %llu",
           (unsigned long long)before, (unsigned long long)after);
}

static uint64_t identity(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static void fork_child_gets_its_own_file(void) {
    int fd = stats_fd();
    CHECK(fd >= 0);
    uint64_t parent_file = identity(fd), before = class_mallocs(fd, 100);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char why[200] = "";
        int cfd = stats_fd();
        sx_share_header h;
        uint64_t cb = class_mallocs(cfd, 100);
        for (int i = 0; i < 500; i++) th_use(malloc(100));
        uint64_t ca = class_mallocs(cfd, 100);
        if (cfd != fd) snprintf(why, sizeof why, "child's descriptor %d, parent's %d", cfd, fd);
        else if (identity(cfd) == parent_file) snprintf(why, sizeof why, "child writes its parent's file");
        else if (!read_header(cfd, &h) || h.pid != getpid())
            snprintf(why, sizeof why, "child's header says pid %d, child is %d", h.pid, (int)getpid());
        else if (ca < cb + 500)
            snprintf(why, sizeof why, "child's 500 mallocs: %llu -> %llu", (unsigned long long)cb,
                     (unsigned long long)ca);
        ssize_t w = write(pfd[1], why, strlen(why) + 1);
        _exit(w > 0 ? 0 : 1);
    }
    close(pfd[1]);
    char why[200] = "no answer from the child";
    ssize_t n = read(pfd[0], why, sizeof why - 1);
    if (n > 0) why[n] = '\0';
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0 && why[0] == '\0', "%s", why);
    uint64_t after = class_mallocs(fd, 100);
    CHECKF(after < before + 500, "the child's mallocs counted in the parent's file: %llu -> %llu",
           (unsigned long long)before, (unsigned long long)after);
    CHECK(identity(fd) == parent_file);
}

int main(void) {
    RUN(descriptor_is_high_and_closed_on_exec);
    RUN(header_names_this_process);
    RUN(mallocs_count_in_the_file);
    RUN(thread_heaps_join_the_file);
    RUN(fork_child_gets_its_own_file);
    return 0;
}
