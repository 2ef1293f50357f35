/*
 * segmap.c — the segment map: one bit per 4 MiB of address space, set where a strata segment
 * starts. free() asks it before reading any header, so a pointer strata never handed out (a stack
 * or global address, another allocator's block) is recognised without touching memory that may not
 * be mapped. 2^25 bits cover 47-bit addresses: 4 MiB of zero-initialised .bss, of which only the
 * pages for addresses in use ever become resident.
 */
#include "region.h"

_Atomic uint64_t sx_segmap[SX_SEGMAP_BITS / 64];

void sx_segmap_set(const sx_segment *seg) {
    uintptr_t i = (uintptr_t)seg >> SX_SEG_SHIFT;
    SX_ASSERT(i < SX_SEGMAP_BITS);
    sx_bitmap_set(sx_segmap, i, true);
}

void sx_segmap_clear(const sx_segment *seg) {
    uintptr_t i = (uintptr_t)seg >> SX_SEG_SHIFT;
    SX_ASSERT(i < SX_SEGMAP_BITS);
    sx_bitmap_set(sx_segmap, i, false);
}
