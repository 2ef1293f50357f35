/*
 * report.h — the HTML page of `strata report`: one self-contained file (inline CSS, SVG drawn
 * by strata, a short inline script for zooming and for checking what was drawn; nothing fetched).
 */
#ifndef STRATA_TOOLS_REPORT_H
#define STRATA_TOOLS_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dump.h"
#include "symbols.h"

/* A running process drawn from its heap profile (strata report PID): the dump's sites are its
 * stacks, their bytes and allocs the live bytes and objects estimated. */
struct report_live {
    uint64_t rate, samples, dropped;
    double live_bytes, live_objects;
    const char *stats; /* its statistics as `strata stats PID` prints them, or NULL */
};

struct report {
    const struct dump *d;
    struct symbols *sym;
    const char *command; /* what ran, for the title */
    const char *outcome; /* "exited with status 0", "killed by signal 9 (SIGKILL)" */
    const struct report_live *live; /* NULL: a diag dump */
};

/* Write the page; false when writing failed. */
bool report_write(FILE *out, const struct report *r);

/* The page's style sheet and script (report_assets.c). */
extern const char report_css[];
extern const char report_js[];

#endif
