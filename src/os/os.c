/*
 * os.c — the OS layer: the only place in strata that makes memory system calls.
 *
 * Every function here handles its own failures and leaves errno as it found it; callers decide
 * what a failure means (fall back to mmap when brk fails, return NULL with ENOMEM when mmap fails).
 * The shared statistics file (heap/share.c) is a memfd: its descriptor and mapping calls are
 * here too.
 * Anonymous private mappings are demand-zero: nothing is resident until touched, which is why a
 * 1.2 GiB malloc succeeds on a small machine (overcommit) and costs nothing until used.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"

size_t sx_os_page = 4096;
size_t sx_os_kernel_page = 4096;

/* The page size is the kernel's (AT_PAGESZ: 4 KiB on x86-64, 4, 16 or 64 KiB on arm64). Tests can
 * make strata believe in a larger one, STRATA_TEST_PAGE_SIZE=16384 or 65536, to show that nothing
 * assumes 4 KiB: every mapping is then aligned to it and every length a multiple of it, as on such
 * a kernel. Only what the kernel counts in its own pages (mincore, statm) uses sx_os_kernel_page. */
void sx_os_init(void) {
    unsigned long ps = getauxval(AT_PAGESZ);
    if (ps >= 4096 && ps <= SX_SLICE_SIZE && sx_is_pow2(ps)) sx_os_page = sx_os_kernel_page = ps;
    const char *test = getauxval(AT_SECURE) ? NULL : sx_env_get("STRATA_TEST_PAGE_SIZE");
    if (!test) return;
    size_t want = 0;
    for (; *test >= '0' && *test <= '9' && want <= SX_SLICE_SIZE; test++)
        want = want * 10 + (size_t)(*test - '0');
    if (!*test && want >= sx_os_kernel_page && want <= SX_SLICE_SIZE && sx_is_pow2(want))
        sx_os_page = want;
    else
        sx_message("bad value for STRATA_TEST_PAGE_SIZE (a power of two from %zu to %zu; keeping %zu)",
                   sx_os_kernel_page, SX_SLICE_SIZE, sx_os_page);
}

/* munmap can fail: unmapping part of a mapping splits it in two, which needs a mapping more than
 * vm.max_map_count may allow. Callers keep what they could not unmap (decommitted). */
bool sx_os_unmap(void *p, size_t size) {
    if (size == 0) return true;
    int saved = errno;
    int r = munmap(p, size);
    if (r != 0 && sx_opt.verbose >= 2) sx_message("munmap(%p, %zu) failed (errno %d)", p, size, errno);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->munmap_calls, 1, memory_order_relaxed);
    return r == 0;
}

/* Is any mapping at the page of p? (mincore fails with ENOMEM where nothing is mapped) */
bool sx_os_mapped(const void *p) {
    int saved = errno;
    unsigned char v;
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(sx_os_kernel_page - 1);
    bool mapped = mincore((void *)page, 1, &v) == 0 || errno != ENOMEM;
    errno = saved;
    return mapped;
}

static void *map_raw(void *hint, size_t size, int prot) {
    int saved = errno;
    void *p = mmap(hint, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | (prot ? 0 : MAP_NORESERVE), -1, 0);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->mmap_calls, 1, memory_order_relaxed);
    return p == MAP_FAILED ? NULL : p;
}

/* A mapping at an address aligned to sx_os_page: the kernel's choice when that is its own page
 * size, else (STRATA_TEST_PAGE_SIZE) cut out of a larger mapping. */
static void *map_page_aligned(size_t size, int prot) {
    size_t extra = sx_os_page - sx_os_kernel_page;
    if (!extra) return map_raw(NULL, size, prot);
    if (size > SIZE_MAX - extra) return NULL;
    uint8_t *p = map_raw(NULL, size + extra, prot);
    if (!p) return NULL;
    uint8_t *q = (uint8_t *)sx_align_up((uintptr_t)p, sx_os_page);
    sx_os_unmap(p, (size_t)(q - p));
    sx_os_unmap(q + size, (size_t)(p + extra - q));
    return q;
}

void *sx_os_map(size_t size) { return map_page_aligned(size, PROT_READ | PROT_WRITE); }

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Map exactly [p, p + size), if nothing is mapped anywhere in it. */
bool sx_os_map_at(void *p, size_t size) {
    int saved = errno;
    void *q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->mmap_calls, 1, memory_order_relaxed);
    if (q == MAP_FAILED) return false;
    if (q != p) { /* a kernel before 4.17 took the flag for a hint */
        sx_os_unmap(q, size);
        return false;
    }
    return true;
}

static uintptr_t aligned_base(uintptr_t p, size_t align, size_t offset) {
    uintptr_t want = ((p + offset + align - 1) / align) * align - offset;
    return want < p ? want + align : want;
}

/* The kernel places new mappings top-down: just below the last aligned one is likely free. */
static _Atomic uintptr_t last_aligned;

static void *map_at(uintptr_t hint, size_t size) {
    uint8_t *p = map_raw((void *)hint, size, PROT_READ | PROT_WRITE);
    if (p && (uintptr_t)p != hint) {
        sx_os_unmap(p, size);
        p = NULL;
    }
    return p;
}

void *sx_os_map_aligned(size_t size, size_t align, size_t offset) {
    if (align < SX_SEG_SIZE) align = SX_SEG_SIZE;
    if (size > SIZE_MAX - align) return NULL;
    /* First, right below the last aligned mapping (one system call when it works). Then the
     * kernel's own choice, kept if aligned, else the aligned address next to it as a hint. Only
     * then map size + align and trim the ends, which needs that much address space for a moment
     * (RLIMIT_AS). */
    uintptr_t last = atomic_load_explicit(&last_aligned, memory_order_relaxed);
    uint8_t *p = NULL;
    if (last > size + align + offset) /* B + offset aligned, B + size <= last */
        p = map_at(sx_align_down(last - size + offset, align) - offset, size);
    if (p) goto done;
    p = map_raw(NULL, size, PROT_READ | PROT_WRITE);
    if (!p) return NULL;
    if (((uintptr_t)p + offset) % align == 0) goto done;
    sx_os_unmap(p, size);
    p = map_at(aligned_base((uintptr_t)p, align, offset), size);
    if (p) goto done;
    p = map_raw(NULL, size + align, PROT_READ | PROT_WRITE);
    if (!p) return NULL;
    uintptr_t base = (uintptr_t)p, want = aligned_base(base, align, offset);
    size_t head = want - base, tail = align - head;
    if (head) sx_os_unmap(p, head);
    if (tail) sx_os_unmap((uint8_t *)want + size, tail);
    p = (uint8_t *)want;
done:
    atomic_store_explicit(&last_aligned, (uintptr_t)p, memory_order_relaxed);
    return p;
}

void sx_os_decommit(void *p, size_t size) {
    if (size == 0) return;
    int saved = errno;
    /* MADV_DONTNEED, not MADV_FREE: resident memory must fall when strata gives memory back. */
    if (madvise(p, size, MADV_DONTNEED) == 0)
        atomic_fetch_add_explicit(&sx_count->purged_bytes, size, memory_order_relaxed);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->madvise_calls, 1, memory_order_relaxed);
}

bool sx_os_remap_inplace(void *p, size_t old_size, size_t new_size) {
    int saved = errno;
    void *q = mremap(p, old_size, new_size, 0);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->mremap_calls, 1, memory_order_relaxed);
    return q == p;
}

bool sx_os_remap_to(void *p, size_t old_size, size_t new_size, void *dest) {
    int saved = errno;
    void *q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->mremap_calls, 1, memory_order_relaxed);
    return q == dest;
}

/* Make a guard page (on) or ordinary memory again (off); false if the kernel refused (the map
 * count, or hugetlb memory, which changes protection only in whole huge pages). */
bool sx_os_guard(void *p, size_t size, bool on) {
    int saved = errno;
    int r = mprotect(p, size, on ? PROT_NONE : PROT_READ | PROT_WRITE);
    errno = saved;
    return r == 0;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

bool sx_os_mark_guard(void *p, size_t size, bool on) {
    int saved = errno;
    int r = madvise(p, size, on ? MADV_GUARD_INSTALL : MADV_GUARD_REMOVE);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->madvise_calls, 1, memory_order_relaxed);
    return r == 0;
}

/* Address space nobody may touch (secure mode's zero-size blocks): NULL if none is left. */
void *sx_os_reserve(size_t size) { return map_page_aligned(size, PROT_NONE); }

bool sx_os_protect(void *p, size_t size, int prot) {
    int saved = errno;
    int r = mprotect(p, size, prot);
    errno = saved;
    return r == 0;
}

/* mincore answers in the kernel's pages; vec is in strata's: a page counts as resident when any of
 * its kernel pages is (they differ only under STRATA_TEST_PAGE_SIZE). */
bool sx_os_resident(void *p, size_t size, unsigned char *vec) {
    int saved = errno, r = 0;
    size_t per = sx_os_page / sx_os_kernel_page;
    if (per == 1) r = mincore(p, size, vec);
    else {
        unsigned char k[256];
        size_t pages = (size + sx_os_page - 1) / sx_os_page;
        memset(vec, 0, pages);
        for (size_t i = 0, kp = (size + sx_os_kernel_page - 1) / sx_os_kernel_page; r == 0 && i < kp;) {
            size_t n = kp - i < sizeof k ? kp - i : sizeof k;
            r = mincore((uint8_t *)p + i * sx_os_kernel_page, n * sx_os_kernel_page, k);
            for (size_t j = 0; r == 0 && j < n; j++) vec[(i + j) / per] |= k[j] & 1;
            i += n;
        }
    }
    errno = saved;
    return r == 0;
}

void sx_os_advise_huge(void *p, size_t size) {
    int saved = errno;
    madvise(p, size, MADV_HUGEPAGE); /* only advice: THP may be off, and that is fine */
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->madvise_calls, 1, memory_order_relaxed);
}

void sx_os_advise_nohuge(void *p, size_t size) {
    int saved = errno;
    madvise(p, size, MADV_NOHUGEPAGE);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->madvise_calls, 1, memory_order_relaxed);
}

void *sx_os_map_hugetlb(size_t size, size_t align) {
    const size_t huge = (size_t)2 << 20;
    if (size % huge || align % huge || size > SIZE_MAX - align) return NULL;
    int saved = errno;
    /* hugetlb mappings come 2 MiB aligned: map one more huge page than needed, then drop the
     * head or the tail to land on `align` */
    uint8_t *p = mmap(NULL, size + align - huge, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->mmap_calls, 1, memory_order_relaxed);
    if (p == MAP_FAILED) return NULL;
    uintptr_t base = (uintptr_t)p, want = sx_align_up(base, align);
    if (want > base) sx_os_unmap(p, want - base);
    if (want + size < base + size + align - huge)
        sx_os_unmap((uint8_t *)want + size, base + size + align - huge - (want + size));
    return (void *)want;
}

/* The program break, through glibc's brk/sbrk so that glibc's cached copy of the break stays
 * right for any other code in the process that calls sbrk. */
uintptr_t sx_os_brk_get(void) {
    int saved = errno;
    void *cur = sbrk(0);
    errno = saved;
    return cur == (void *)-1 ? 0 : (uintptr_t)cur;
}

bool sx_os_brk_set(uintptr_t end) {
    int saved = errno;
    int r = brk((void *)end);
    errno = saved;
    atomic_fetch_add_explicit(&sx_count->brk_calls, 1, memory_order_relaxed);
    return r == 0;
}

/* ---- the shared statistics file: a memfd mapped MAP_SHARED ---- */

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

/* A memfd, close-on-exec, moved to descriptor 100 or above where it can, out of the way of a
 * program that closes 0-2 and expects its next open to get them back. -1 if there is none. */
int sx_os_shm_create(const char *name) {
    int saved = errno;
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL) fd = memfd_create(name, MFD_CLOEXEC); /* before Linux 6.3 */
    if (fd >= 0 && fd < 100) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
        if (high >= 0) {
            close(fd);
            fd = high;
        }
    }
    errno = saved;
    return fd;
}

bool sx_os_shm_resize(int fd, size_t size) {
    int saved = errno;
    int r = ftruncate(fd, (off_t)size);
    errno = saved;
    return r == 0;
}

/* Map `size` bytes of the file from `offset`, shared, at `at` if not NULL (replacing what is
 * there). If that fails, [at, at+size) holds fresh private memory, as a failed MAP_FIXED may have
 * unmapped what was there. */
void *sx_os_shm_map(int fd, size_t offset, size_t size, void *at) {
    int saved = errno;
    void *p = mmap(at, size, PROT_READ | PROT_WRITE, MAP_SHARED | (at ? MAP_FIXED : 0), fd,
                   (off_t)offset);
    atomic_fetch_add_explicit(&sx_count->mmap_calls, 1, memory_order_relaxed);
    if (p == MAP_FAILED && at) {
        mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        atomic_fetch_add_explicit(&sx_count->mmap_calls, 1, memory_order_relaxed);
    }
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

/* Write n bytes from p into the file at `offset`. */
bool sx_os_shm_write(int fd, const void *p, size_t n, size_t offset) {
    int saved = errno;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, (const char *)p + done, n - done, (off_t)(offset + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    errno = saved;
    return done == n;
}

/* Which file a descriptor has open (device and inode), 0 if none: tells whether a descriptor is
 * still the one strata opened (a program may close it and open something else under its number). */
uint64_t sx_os_fd_identity(int fd) {
    int saved = errno;
    struct stat st;
    int r = fstat(fd, &st);
    errno = saved;
    return r == 0 ? (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << 48) : 0;
}

/* Put descriptor `from` under number `to` (close-on-exec), closing what was there and `from`. */
bool sx_os_fd_move(int from, int to) {
    int saved = errno;
    int r = dup3(from, to, O_CLOEXEC);
    if (r >= 0) close(from);
    errno = saved;
    return r >= 0;
}

void sx_os_close(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
}
