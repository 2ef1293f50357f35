/*
 * flame.h — where the bytes were allocated, as a flame graph (an icicle: the root, all bytes, on
 * top, each frame's callees below it, widths in proportion to bytes requested).
 */
#ifndef STRATA_TOOLS_FLAME_H
#define STRATA_TOOLS_FLAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dump.h"
#include "symbols.h"

struct flame_node {
    char *label; /* the function (or module+0xOFF); frames merge by it */
    char *where; /* its source file or module, for the tooltip; may be "" */
    uint64_t bytes, allocs, frees, sites;
    size_t depth;
    struct flame_node *child, *next; /* children, largest first once built */
};

/* The tree of the dump's sites over their symbolized stacks, outermost frame first. */
struct flame_node *flame_build(const struct dump *d, struct symbols *s);
void flame_free(struct flame_node *root);

/* The graph as an <svg data-chart="ID">; frames narrower than half a pixel are left out.
 * Returns the number of frames drawn (the root included). */
size_t flame_svg(FILE *out, const struct flame_node *root, const char *id);

#endif
