/*
 * os.h — the os layer: the only code that makes memory system calls (mmap, munmap, mremap,
 * madvise, mprotect, mincore, brk, the statistics file's memfd). Below it: support.
 */
#ifndef STRATA_OS_H
#define STRATA_OS_H

#include "../support/support.h"

#pragma GCC visibility push(hidden)

/* errno is preserved by every call here. */
/* strata's page: what it maps, guards and decommits by (the kernel's, unless a test overrides it) */
extern size_t sx_os_page;
extern size_t sx_os_kernel_page; /* the kernel's: what mincore and statm count in */
void sx_os_init(void);
void *sx_os_map(size_t size);
/* A mapping of `size` bytes at base B with B % SX_SEG_SIZE == 0 and (B + offset) % align == 0
 * (align is raised to SX_SEG_SIZE if smaller; pass offset 0 unless align is bigger). */
void *sx_os_map_aligned(size_t size, size_t align, size_t offset);
bool sx_os_unmap(void *p, size_t size); /* false: still mapped (the map count was full) */
bool sx_os_mapped(const void *p);
bool sx_os_map_at(void *p, size_t size); /* exactly there, if nothing is mapped in the range */
void sx_os_decommit(void *p, size_t size);
/* Resize a mapping in place; false if the address range after it is taken. */
bool sx_os_remap_inplace(void *p, size_t old_size, size_t new_size);
/* Move a mapping's pages (no copy) onto `dest`, which must be a mapping of new_size bytes. */
bool sx_os_remap_to(void *p, size_t old_size, size_t new_size, void *dest);
bool sx_os_protect(void *p, size_t size, int prot);
void *sx_os_reserve(size_t size); /* PROT_NONE */
bool sx_os_guard(void *p, size_t size, bool on);
/* Guard markers (Linux 6.13's MADV_GUARD_INSTALL): pages of an ordinary mapping made to fault on
 * any access (on), or ordinary demand-zero memory again (off), without splitting the mapping, so
 * they cost nothing of vm.max_map_count. Marking drops the pages' contents. false: the kernel has
 * no such markers (before 6.13, or a mapping they do not apply to) or refused. */
bool sx_os_mark_guard(void *p, size_t size, bool on);
/* Which pages of [p, p + size) are resident: vec[i] & 1 for page i (mincore); false on failure. */
bool sx_os_resident(void *p, size_t size, unsigned char *vec);
/* Huge pages: ask for transparent ones on a range; map reserved (hugetlb) ones, 2 MiB multiples,
 * aligned to `align`, or NULL if the kernel has none to give. */
void sx_os_advise_huge(void *p, size_t size);
void sx_os_advise_nohuge(void *p, size_t size); /* small metadata: never a 2 MiB page */
void *sx_os_map_hugetlb(size_t size, size_t align);
uintptr_t sx_os_brk_get(void);
bool sx_os_brk_set(uintptr_t end);
/* The shared statistics file (a memfd; share.c). */
int sx_os_shm_create(const char *name);
bool sx_os_shm_resize(int fd, size_t size);
void *sx_os_shm_map(int fd, size_t offset, size_t size, void *at);
bool sx_os_shm_write(int fd, const void *p, size_t n, size_t offset);
uint64_t sx_os_fd_identity(int fd);
bool sx_os_fd_move(int from, int to);
void sx_os_close(int fd);

#pragma GCC visibility pop

#endif
