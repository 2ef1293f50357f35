/*
 * share.c — the statistics file: what `strata stats PID` reads from outside the process.
 *
 * The counts a report needs are kept where they happen: calls per size class in each heap's
 * counters (meta.c puts them SX_HEAP_REGION above the heap), memory held and system calls in
 * sx_count. A tool outside the process cannot follow pointers into it, so when the process makes
 * its first heap, strata makes a memfd named "strata" and maps it shared: a header page (layout
 * version, struct sizes, pid, and sx_count itself, moved there from private memory), then the
 * heaps' counters, region by region. Everything is written in place; nothing is copied, and the
 * fast paths do exactly what they did. The command finds the file among /proc/PID/fd.
 *
 * A memfd rather than a name in /dev/shm: it goes when the process goes, however it ends (exit,
 * exec, a crash, kill -9), so no file is ever left behind and none can be mistaken for a live
 * process's. Its descriptor is close-on-exec and sits at 100 or above (os.c). If it cannot be made
 * (no memfd, a sandbox, no descriptor left), everything stays in private memory, silently.
 *
 * fork: the child inherits the shared mapping, and must not go on counting into its parent's
 * file. Its atfork handler copies what has been written so far into a new memfd, maps that over
 * the same addresses and puts it under the same descriptor number; the parent's is closed in the
 * child. (What the parent counts during the microseconds before the handler runs may be copied
 * too: statistics only, as nothing the allocator decides reads them.) If that fails, the child's
 * counters become private memory.
 */
#include <string.h>
#include <unistd.h>

#include "../internal.h"
#include "strata.h"

static sx_counters boot_counts; /* until the file exists, or for good without one */
sx_counters *sx_count = &boot_counts;

/* What is mapped from the file: the header, then one range per region of heaps. */
#define MAX_RANGES 256
static struct range {
    uint8_t *at;
    size_t offset, len;
} ranges[MAX_RANGES];
static unsigned nranges;
static sx_share_header *header;
static int file_fd = -1;
static uint64_t file_id; /* which file file_fd must still be */
static size_t file_size;
static bool unavailable; /* no file, and none will be tried */
static uint32_t heaps_made, heaps_hidden; /* what header->heaps and hidden_heaps must say */

static bool fd_is_ours(void) { return file_fd >= 0 && sx_os_fd_identity(file_fd) == file_id; }

/* Only the thread making the first heap counts anything before it exists (every other path to a
 * counter needs a heap, and waits for the meta lock), so copying sx_count over loses nothing. */
static bool create(void) {
    int fd = sx_os_shm_create(SX_SHARE_NAME);
    if (fd < 0) return false;
    sx_share_header *hd = NULL;
    if (sx_os_shm_resize(fd, SX_SHARE_HEADER)) hd = sx_os_shm_map(fd, 0, SX_SHARE_HEADER, NULL);
    if (!hd) {
        sx_os_close(fd);
        return false;
    }
    hd->version = SX_SHARE_VERSION;
    hd->header_size = sizeof(sx_share_header);
    hd->counters_size = sizeof(sx_counters);
    hd->heap_counts_size = sizeof(sx_heap_counts);
    hd->bins = SX_BINS;
    hd->direct_slots = SX_DIRECT_SLOTS;
    hd->heap_stride = (uint32_t)SX_HEAP_STRIDE;
    hd->region_heaps = (uint32_t)(SX_HEAP_REGION / SX_HEAP_STRIDE);
    hd->region_bytes = SX_HEAP_REGION;
    hd->pid = (int32_t)getpid();
    sx_fmt(hd->library, sizeof hd->library, "%s", STRATA_VERSION_STRING);
    hd->stats_option = sx_opt.stats;
    memcpy(&hd->count, &boot_counts, sizeof hd->count);
    header = hd;
    file_fd = fd;
    file_id = sx_os_fd_identity(fd);
    file_size = SX_SHARE_HEADER;
    ranges[nranges++] = (struct range){(uint8_t *)hd, 0, SX_SHARE_HEADER};
    __atomic_store_n(&sx_count, &hd->count, __ATOMIC_RELEASE);
    sx_thresholds_share(); /* again, in case mallopt changed them meanwhile */
    __atomic_store_n(&hd->magic, SX_SHARE_MAGIC, __ATOMIC_RELEASE);
    return true;
}

bool sx_share_map(void *at, size_t offset, size_t len) {
    if (!header) {
        if (unavailable) return false;
        if (!create()) {
            unavailable = true;
            return false;
        }
    }
    if (nranges == MAX_RANGES || !fd_is_ours()) return false;
    if (offset + len > file_size) {
        if (!sx_os_shm_resize(file_fd, offset + len)) return false;
        file_size = offset + len; /* sparse: pages cost memory once written */
    }
    if (!sx_os_shm_map(file_fd, offset, len, at)) return false;
    ranges[nranges++] = (struct range){at, offset, len};
    return true;
}

void sx_share_heap_made(bool in_file) {
    if (!header) return;
    heaps_made++;
    heaps_hidden += !in_file;
    atomic_store_explicit(&header->hidden_heaps, heaps_hidden, memory_order_relaxed);
    atomic_store_explicit(&header->heaps, heaps_made, memory_order_release);
}

/* The bytes of a range written so far: the header, or the counters of the heaps made in it. */
static size_t range_used(const struct range *r) {
    if (r->offset == 0) return r->len;
    size_t region = (r->offset - SX_SHARE_HEADER) / SX_HEAP_REGION;
    size_t per = SX_HEAP_REGION / SX_HEAP_STRIDE, heaps = heaps_made;
    if (heaps <= region * per) return 0;
    size_t n = heaps - region * per;
    return n >= per ? r->len : n * SX_HEAP_STRIDE;
}

/* Give up the file in a child: its counters go on in private copies. */
static void go_private(int new_fd) {
    for (unsigned i = 0; i < nranges; i++) {
        struct range *r = &ranges[i];
        uint8_t *copy = sx_os_map(r->len);
        if (!copy) continue; /* left counting into the file it has: statistics only */
        memcpy(copy, r->at, range_used(r));
        if (!sx_os_remap_to(copy, r->len, r->len, r->at)) sx_os_unmap(copy, r->len);
    }
    if (new_fd >= 0) sx_os_close(new_fd);
    if (fd_is_ours()) sx_os_close(file_fd);
    file_fd = -1;
    unavailable = true;
}

/* The child's header: its own pid, and the heaps as the child has them (the parent may have made
 * more since the fork). */
static void child_header(void) {
    header->pid = (int32_t)getpid();
    atomic_store(&header->hidden_heaps, heaps_hidden);
    atomic_store(&header->heaps, heaps_made);
}

void sx_share_fork_child(void) {
    if (!header || file_fd < 0) return;
    int fd = sx_os_shm_create(SX_SHARE_NAME);
    bool ok = fd >= 0 && sx_os_shm_resize(fd, file_size);
    for (unsigned i = 0; ok && i < nranges; i++)
        ok = sx_os_shm_write(fd, ranges[i].at, range_used(&ranges[i]), ranges[i].offset);
    if (!ok) {
        go_private(fd);
        child_header();
        return;
    }
    /* A range that fails to map holds fresh private memory instead: its counters start again
     * from zero, unseen (statistics only; it takes the kernel running out of mappings). */
    for (unsigned i = 0; i < nranges; i++)
        sx_os_shm_map(fd, ranges[i].offset, ranges[i].len, ranges[i].at);
    /* under the parent's descriptor number, if the program has not closed it */
    if (fd_is_ours() && sx_os_fd_move(fd, file_fd)) fd = file_fd;
    else if (fd_is_ours()) sx_os_close(file_fd);
    file_fd = fd;
    file_id = sx_os_fd_identity(fd);
    child_header();
}
