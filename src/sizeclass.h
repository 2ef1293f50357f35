/*
 * sizeclass.h — size classes ("bins", as ptmalloc calls its size-sorted lists).
 *
 * Blocks of 16 bytes or more must be 16-byte aligned, so classes up to 128 bytes step by 16
 * (16, 32, ... 128). Above that each doubling [2^k, 2^(k+1)] is cut into 8 classes, 2^(k-3) apart,
 * so a request wastes less than 12.5% of its class: 144, 160, ... 256, 288, 320, ... 128 KiB.
 * Classes up to 8 KiB live in 64 KiB pages (1 slice), larger ones in 512 KiB pages (8 slices).
 */
#ifndef STRATA_SIZECLASS_H
#define STRATA_SIZECLASS_H

#include "base.h"

static inline unsigned sx_bin_of(size_t size) {
    if (size <= 128) return size <= 16 ? 0 : (unsigned)((size - 1) >> 4);
    size_t w = size - 1;
    unsigned k = 63u - (unsigned)__builtin_clzl(w);
    return 8 + (k - 7) * 8 + (unsigned)((w >> (k - 3)) & 7);
}

static inline size_t sx_bin_size(unsigned bin) {
    if (bin < 8) return 16 * ((size_t)bin + 1);
    unsigned k = 7 + (bin - 8) / 8, j = (bin - 8) % 8;
    return ((size_t)1 << k) + ((size_t)(j + 1) << (k - 3));
}

static inline size_t sx_bin_slices(unsigned bin) {
    return sx_bin_size(bin) <= SX_SMALL_MAX ? 1 : SX_MEDIUM_SLICES;
}

/* Direct-table slots [lo, hi] that map to a bin: slot d serves sizes (16(d-1), 16d]. */
static inline unsigned sx_bin_direct_lo(unsigned bin) {
    return bin == 0 ? 0 : (unsigned)(sx_bin_size(bin - 1) / 16 + 1);
}
static inline unsigned sx_bin_direct_hi(unsigned bin) { return (unsigned)(sx_bin_size(bin) / 16); }

#endif
