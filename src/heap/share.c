/*
 * share.c — the statistics file: what `strata stats PID` reads from outside the process.
 *
 * The counts a report needs are kept where they happen: calls per size class in each heap's
 * counters (meta.c puts them SX_HEAP_REGION above the heap), memory held and system calls in
 * sx_count. A tool outside the process cannot follow pointers into it, so when the process makes
 * its first heap, strata makes a memfd named "strata" and maps it shared where the counters of
 * each region of heaps go: the heaps' counters, and before those of region 0 a header (layout
 * version, struct sizes, pid, and sx_count itself, moved there from private memory). Everything
 * is written in place; nothing is copied, and the fast paths do exactly what they did. Making it
 * costs the first malloc three system calls more (memfd_create, ftruncate, mmap) and the move of
 * its descriptor. The command finds the file among /proc/PID/fd.
 *
 * Past every region's part (at 256 MiB: the file is sparse) lies the heap profile's part, mapped
 * anywhere, when the first sample makes it (heap/profile.c); the header says where
 * (profile_at), and a fork child gets a copy of it as of its own regions.
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

#include "heap.h"
#include "strata.h"


#define MAX_REGIONS 256
static uint8_t *mapped[MAX_REGIONS]; /* where region k's part of the file is mapped; NULL: not */
static sx_share_header *header;
static int file_fd = -1;
static uint64_t file_id; /* which file file_fd must still be */
static bool unavailable; /* no file, and none will be tried */
static uint32_t heaps_made, heaps_hidden; /* what header->heaps and hidden_heaps must say */

/* The heap profile's part of the file, after every region's (heap/profile.c). */
#define PROFILE_AT ((size_t)MAX_REGIONS * SX_HEAP_REGION)
static uint8_t *profile_part;
static size_t profile_bytes;

static bool fd_is_ours(void) { return file_fd >= 0 && sx_os_fd_identity(file_fd) == file_id; }

/* The file, with region 0 mapped at `at` and the header at its start. The counts so far are copied
 * over, then sx_count points there (release: a thread that sees the new pointer sees the mapping
 * and the copy). Nearly every path to a counter needs a heap, and waits for the meta lock meanwhile;
 * a thread that counts without one (stats=1: the bytes its first malloc requested) may add to the
 * old counters after the copy, a count lost: statistics only. */
static bool create(uint8_t *at) {
    int fd = sx_os_shm_create(SX_SHARE_NAME);
    if (fd < 0) return false;
    if (!sx_os_shm_resize(fd, SX_HEAP_REGION) || !sx_os_shm_map(fd, 0, SX_HEAP_REGION, at)) {
        sx_os_close(fd);
        return false;
    }
    sx_share_header *hd = (sx_share_header *)at;
    hd->version = SX_SHARE_VERSION;
    hd->header_size = sizeof(sx_share_header);
    hd->counters_size = sizeof(sx_counters);
    hd->heap_counts_size = sizeof(sx_heap_counts);
    hd->bins = SX_BINS;
    hd->direct_slots = SX_DIRECT_SLOTS;
    hd->heaps_at = SX_SHARE_HEADER;
    hd->heap_stride = (uint32_t)SX_HEAP_STRIDE;
    hd->region_heaps = (uint32_t)sx_meta_region_heaps();
    hd->region_bytes = SX_HEAP_REGION;
    hd->pid = (int32_t)getpid();
    sx_fmt(hd->library, sizeof hd->library, "%s", STRATA_VERSION_STRING);
    hd->stats_option = sx_opt.stats;
    memcpy(&hd->count, sx_count, sizeof hd->count); /* still counters.c's own */
    header = hd;
    file_fd = fd;
    file_id = sx_os_fd_identity(fd);
    mapped[0] = at;
    atomic_store_explicit(&sx_count_at, &hd->count, memory_order_release);
    sx_thresholds_share(); /* again, in case mallopt changed them meanwhile */
    __atomic_store_n(&hd->magic, SX_SHARE_MAGIC, __ATOMIC_RELEASE);
    return true;
}

bool sx_share_map(void *at, unsigned region) {
    if (region == 0 && !unavailable && create(at)) return true;
    if (region == 0) unavailable = true;
    if (unavailable || region >= MAX_REGIONS || !fd_is_ours()) return false;
    /* sparse: a page of the file costs memory once it is written */
    size_t offset = (size_t)region * SX_HEAP_REGION;
    if (!sx_os_shm_resize(file_fd, offset + SX_HEAP_REGION) ||
        !sx_os_shm_map(file_fd, offset, SX_HEAP_REGION, at))
        return false;
    mapped[region] = at;
    return true;
}

void *sx_share_profile_map(size_t bytes) {
    if (!header || unavailable || !fd_is_ours() || !sx_os_shm_resize(file_fd, PROFILE_AT + bytes))
        return NULL;
    uint8_t *p = sx_os_shm_map(file_fd, PROFILE_AT, bytes, NULL);
    if (!p) return NULL;
    profile_part = p;
    profile_bytes = bytes;
    header->profile_bytes = bytes;
    atomic_store_explicit(&header->profile_at, PROFILE_AT, memory_order_release);
    return p;
}

void sx_share_heap_made(bool in_file) {
    if (!header) return;
    heaps_made++;
    heaps_hidden += !in_file;
    atomic_store_explicit(&header->hidden_heaps, heaps_hidden, memory_order_relaxed);
    atomic_store_explicit(&header->heaps, heaps_made, memory_order_release);
}

/* The bytes of region k's part written so far: the header's room, and the heaps made in it. */
static size_t region_used(unsigned k) {
    size_t per = sx_meta_region_heaps(), before = (size_t)k * per;
    size_t n = heaps_made > before ? heaps_made - before : 0;
    return SX_SHARE_HEADER + (n < per ? n : per) * SX_HEAP_STRIDE;
}

/* Give up the file in a child: its counters go on in private copies. */
static void go_private(int new_fd) {
    for (unsigned k = 0; k < MAX_REGIONS; k++) {
        if (!mapped[k]) continue;
        uint8_t *copy = sx_os_map(SX_HEAP_REGION);
        if (!copy) continue; /* left counting into the file it has: statistics only */
        memcpy(copy, mapped[k], region_used(k));
        if (!sx_os_remap_to(copy, SX_HEAP_REGION, SX_HEAP_REGION, mapped[k]))
            sx_os_unmap(copy, SX_HEAP_REGION);
    }
    if (profile_part) {
        uint8_t *copy = sx_os_map(profile_bytes);
        if (copy) {
            memcpy(copy, profile_part, profile_bytes);
            if (!sx_os_remap_to(copy, profile_bytes, profile_bytes, profile_part))
                sx_os_unmap(copy, profile_bytes);
        }
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
    unsigned last = 0;
    for (unsigned k = 0; k < MAX_REGIONS; k++)
        if (mapped[k]) last = k;
    int fd = sx_os_shm_create(SX_SHARE_NAME);
    bool ok = fd >= 0 && sx_os_shm_resize(fd, profile_part ? PROFILE_AT + profile_bytes
                                                         : (size_t)(last + 1) * SX_HEAP_REGION);
    for (unsigned k = 0; ok && k <= last; k++)
        if (mapped[k])
            ok = sx_os_shm_write(fd, mapped[k], region_used(k), (size_t)k * SX_HEAP_REGION);
    if (ok && profile_part) ok = sx_os_shm_write(fd, profile_part, profile_bytes, PROFILE_AT);
    if (!ok) {
        go_private(fd);
        child_header();
        return;
    }
    /* A region that fails to map holds fresh private memory instead: its counters start again
     * from zero, unseen (statistics only; it takes the kernel running out of mappings). */
    for (unsigned k = 0; k <= last; k++)
        if (mapped[k] && !sx_os_shm_map(fd, (size_t)k * SX_HEAP_REGION, SX_HEAP_REGION, mapped[k]))
            mapped[k] = NULL;
    if (profile_part && !sx_os_shm_map(fd, PROFILE_AT, profile_bytes, profile_part))
        atomic_store(&header->profile_at, 0); /* private memory from here: an empty profile */
    /* under the parent's descriptor number, if the program has not closed it */
    if (fd_is_ours() && sx_os_fd_move(fd, file_fd)) fd = file_fd;
    else if (fd_is_ours()) sx_os_close(file_fd);
    file_fd = fd;
    file_id = sx_os_fd_identity(fd);
    child_header();
}
