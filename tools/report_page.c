/*
 * report_page.c — the page `strata report` writes (report.h): a header (command, how it ended,
 * totals), the misuse that stopped the program if any, then four sections:
 *
 *   heap    live heap (bytes requested and not freed) and RSS over time, from the sample records
 *   sites   the allocation sites as a flame graph of bytes requested, and the largest sites
 *   leaks   blocks still allocated at exit, by stack: lost ones first, then reachable ones
 *   sizes   how many requests, and how many bytes, fell in each size range
 *
 * A running process (strata report PID, from its heap profile: report.live) gets the header with
 * its profile's totals, the sites as live bytes estimated, and its statistics table.
 *
 * Everything taken from the program (command line, function and file names, paths) goes through
 * html_text: a function called operator< must not open a tag.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "cli.h"
#include "flame.h"
#include "html.h"
#include "report.h"
#include "strata.h"

enum { MAX_ROWS = 200, TOP_SITES = 20, STACK_FRAMES = 64 };

/* ---- pieces ---- */

static void bytes_cell(FILE *out, uint64_t v) {
    char b[32];
    fmt_bytes((double)v, b, sizeof b);
    fprintf(out, "<td class=\"n\">%s</td>", b);
}

static void count_cell(FILE *out, uint64_t v) {
    char b[32];
    fmt_count(v, b, sizeof b);
    fprintf(out, "<td class=\"n\">%s</td>", b);
}

/* A stack as a <details>: its innermost frame, then all its frames. */
static void stack_html(FILE *out, const struct report *r, uint64_t id) {
    const struct dump_stack *st = dump_stack(r->d, id);
    if (!st || !st->depth) {
        fprintf(out, "<span class=\"muted\">(no stack recorded)</span>");
        return;
    }
    char text[1024];
    sym_frame_text(symbols_frame(r->sym, st->pc[0]), text, sizeof text);
    fprintf(out, "<details><summary class=\"mono\">");
    html_text(out, text);
    fprintf(out, "</summary><pre>");
    size_t n = st->depth < STACK_FRAMES ? st->depth : STACK_FRAMES;
    for (size_t i = 0; i < n; i++) {
        sym_frame_text(symbols_frame(r->sym, st->pc[i]), text, sizeof text);
        fprintf(out, "#%zu 0x%llx in ", i, (unsigned long long)st->pc[i]);
        html_text(out, text);
        fputc('\n', out);
    }
    if (n < st->depth) fprintf(out, "... %zu more frames\n", st->depth - n);
    fprintf(out, "</pre></details>");
}

/* ---- header ---- */

static const struct {
    const char *key, *name;
    bool bytes;
} total_names[] = {
    {"allocs", "allocations", false},        {"frees", "frees", false},
    {"bytes", "bytes requested", true},      {"live", "live at exit", true},
    {"live_blocks", "live blocks at exit", false}, {"peak_live", "peak live", true},
    {"tracked", "allocations with a stack", false}, {"sample_bytes", "sampling interval", true},
    {"depth", "stack depth", false},          {"unguarded", "blocks without a guard", false},
    {"lost_nostack_blocks", "lost blocks with no stack recorded", false},
    {"lost_nostack_bytes", "lost bytes with no stack recorded", true},
    {"reachable_nostack_blocks", "reachable blocks with no stack recorded", false},
    {"reachable_nostack_bytes", "reachable bytes with no stack recorded", true},
};

static int known_total(const char *key) {
    for (size_t i = 0; i < sizeof total_names / sizeof total_names[0]; i++)
        if (!strcmp(key, total_names[i].key)) return (int)i;
    return -1;
}

static void total_row(FILE *out, const char *name, uint64_t v, bool bytes) {
    fprintf(out, "<tr><th>");
    html_text(out, name);
    fprintf(out, "</th>");
    if (bytes) bytes_cell(out, v);
    else count_cell(out, v);
    fprintf(out, "</tr>\n");
}

static void leak_total_row(FILE *out, const struct dump *d, enum dump_leak_kind kind) {
    uint64_t bytes, blocks;
    char b[32], n[32];
    dump_leak_sum(d, kind, &bytes, &blocks);
    fmt_bytes((double)bytes, b, sizeof b);
    fmt_count(blocks, n, sizeof n);
    fprintf(out, "<tr><th>%s</th><td class=\"n\">%s</td><td>in %s block%s</td></tr>\n",
            kind == DUMP_LOST ? "leaked (lost)" : "leaked (reachable)", b, n, blocks == 1 ? "" : "s");
}

static void totals(FILE *out, const struct dump *d) {
    uint64_t v;
    fprintf(out, "<table class=\"totals\">\n");
    for (size_t i = 0; i < sizeof total_names / sizeof total_names[0]; i++)
        if (dump_total(d, total_names[i].key, &v)) total_row(out, total_names[i].name, v, total_names[i].bytes);
    for (size_t i = 0; i < d->n_totals; i++) /* keys this strata has no name for */
        if (known_total(d->totals[i].key) < 0) total_row(out, d->totals[i].key, d->totals[i].value, false);
    if (d->n_leaks) leak_total_row(out, d, DUMP_LOST), leak_total_row(out, d, DUMP_REACHABLE);
    fprintf(out, "</table>\n");
}

static void live_totals(FILE *out, const struct report_live *l) {
    fprintf(out, "<table class=\"totals\">\n");
    total_row(out, "live (estimated)", (uint64_t)(l->live_bytes + 0.5), true);
    total_row(out, "live objects (estimated)", (uint64_t)(l->live_objects + 0.5), false);
    total_row(out, "samples", l->samples, false);
    total_row(out, "sampling interval", l->rate, true);
    if (l->dropped) total_row(out, "samples not recorded (a table was full)", l->dropped, false);
    fprintf(out, "</table>\n");
}

static void header(FILE *out, const struct report *r) {
    const struct dump *d = r->d;
    fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>strata report: ");
    html_text(out, r->command);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>strata report</h1>\n", report_css);
    fprintf(out, "<p><code class=\"command\">");
    html_text(out, r->command);
    fprintf(out, "</code></p>\n<p class=\"outcome\">");
    html_text(out, r->outcome);
    fprintf(out, " &middot; pid %ld", d->pid);
    if (d->n_samples) {
        char t[32];
        fmt_ms((double)d->samples[d->n_samples - 1].ms, t, sizeof t);
        fprintf(out, " &middot; ran %s", t);
    }
    if (r->live) {
        fprintf(out, "</p>\n<nav><a href=\"#sites\">live memory by site</a><a href=\"#stats\">statistics</a></nav>\n");
        live_totals(out, r->live);
    } else {
        fprintf(out, "</p>\n<nav><a href=\"#heap\">heap over time</a><a href=\"#sites\">allocation sites</a>"
                     "<a href=\"#leaks\">leaks</a><a href=\"#sizes\">sizes</a></nav>\n");
        totals(out, d);
    }
    if (!d->complete)
        fprintf(out, "<p class=\"note\">The dump was cut short (the process died while writing it): what "
                     "follows is what it holds.</p>\n");
    fprintf(out, "</header>\n");
}

/* ---- the misuse that stopped the program ---- */

static void misuse(FILE *out, const struct report *r) {
    const struct dump_error *e = &r->d->error;
    char size[32];
    fmt_bytes((double)e->size, size, sizeof size);
    fprintf(out, "<section id=\"error\">\n<h2>What stopped the program</h2>\n<p class=\"misuse\"><b>");
    html_text(out, e->kind);
    fprintf(out, "</b>: ");
    html_text(out, e->access);
    fprintf(out, " at 0x%llx, %lld bytes from the start of a block of %s</p>\n", (unsigned long long)e->addr,
            (long long)e->off, size);
    fprintf(out, "<p>allocated at</p>\n");
    stack_html(out, r, e->alloc);
    if (e->free) {
        fprintf(out, "<p>freed at</p>\n");
        stack_html(out, r, e->free);
    }
    fprintf(out, "</section>\n");
}

/* ---- heap over time ---- */

static void heap_section(FILE *out, const struct dump *d) {
    fprintf(out, "<section id=\"heap\">\n<h2>Live heap and RSS over time</h2>\n");
    if (!d->n_samples) {
        fprintf(out, "<p class=\"muted\">The dump has no samples.</p>\n</section>\n");
        return;
    }
    size_t n = d->n_samples;
    double *x = cli_alloc(n * sizeof *x), *live = cli_alloc(n * sizeof *live), *rss = cli_alloc(n * sizeof *rss);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)d->samples[i].ms, live[i] = (double)d->samples[i].live, rss[i] = (double)d->samples[i].rss;
    struct chart_series series[] = {{"live heap (requested, not freed)", "#d9480f", live},
                                    {"resident set (RSS)", "#1c7ed6", rss}};
    struct chart_lines c = {"heap", "live heap and RSS over time", x, n, CHART_MS, CHART_BYTES, series, 2};
    chart_lines(out, &c);
    fprintf(out, "<p class=\"muted\">%zu samples; hover a line for its peak.</p>\n</section>\n", n);
    free(x), free(live), free(rss);
}

/* ---- allocation sites ---- */

static int site_bytes_desc(const void *a, const void *b) {
    const struct dump_site *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

static void top_sites(FILE *out, const struct report *r) {
    size_t n = r->d->n_sites;
    struct dump_site *s = cli_alloc(n * sizeof *s);
    memcpy(s, r->d->sites, n * sizeof *s);
    qsort(s, n, sizeof *s, site_bytes_desc);
    if (r->live)
        fprintf(out, "<table class=\"rows sites\">\n<tr><th class=\"n\">live bytes</th><th class=\"n\">live "
                     "objects</th><th>allocated at</th></tr>\n");
    else
        fprintf(out, "<table class=\"rows sites\">\n<tr><th class=\"n\">bytes</th><th class=\"n\">allocations</th>"
                     "<th class=\"n\">frees</th><th>allocated at</th></tr>\n");
    for (size_t i = 0; i < n && i < TOP_SITES; i++) {
        fprintf(out, "<tr>");
        bytes_cell(out, s[i].bytes);
        count_cell(out, s[i].allocs);
        if (!r->live) count_cell(out, s[i].frees);
        fprintf(out, "<td>");
        stack_html(out, r, s[i].stack);
        fprintf(out, "</td></tr>\n");
    }
    fprintf(out, "</table>\n");
    if (n > TOP_SITES) fprintf(out, "<p class=\"muted\">The %d largest of %zu sites.</p>\n", TOP_SITES, n);
    free(s);
}

static void sites_section(FILE *out, const struct report *r) {
    fprintf(out, "<section id=\"sites\">\n<h2>%s</h2>\n", r->live ? "Live memory by allocation site" : "Largest allocation sites");
    if (!r->d->n_sites) {
        fprintf(out, "<p class=\"muted\">The dump has no allocation sites.</p>\n</section>\n");
        return;
    }
    if (r->live)
        fprintf(out, "<p class=\"muted\">Live bytes now, by call stack, estimated from the heap profile (one "
                     "sample per %llu bytes allocated): callers above callees, widths in proportion. Click a frame "
                     "to zoom in, the top bar to zoom out.</p>\n", (unsigned long long)r->live->rate);
    else
        fprintf(out, "<p class=\"muted\">Bytes requested over the run, by call stack: callers above callees, "
                     "widths in proportion. Click a frame to zoom in, the top bar to zoom out.</p>\n");
    struct flame_node *root = flame_build(r->d, r->sym);
    flame_svg(out, root, "sites");
    flame_free(root);
    top_sites(out, r);
    fprintf(out, "</section>\n");
}

/* ---- leaks ---- */

static void leak_row(FILE *out, const struct report *r, const struct dump_leak *l) {
    const char *kind = l->kind == DUMP_LOST ? "lost" : "reachable";
    fprintf(out, "<tr><td class=\"%s\">%s</td>", kind, kind);
    bytes_cell(out, l->bytes);
    count_cell(out, l->blocks);
    fprintf(out, "<td class=\"mono\">0x%llx</td><td>", (unsigned long long)l->addr);
    stack_html(out, r, l->stack);
    fprintf(out, "</td></tr>\n");
}

static void leaks_section(FILE *out, const struct report *r) {
    fprintf(out, "<section id=\"leaks\">\n<h2>Leaks</h2>\n");
    size_t n;
    struct dump_leak *l = dump_leaks_sorted(r->d, &n);
    if (!n) {
        fprintf(out, "<p class=\"muted\">No block was left allocated at exit%s.</p>\n",
                strcmp(r->d->mode, "report") && *r->d->mode ? " (or this run did not look for leaks)" : "");
    } else {
        fprintf(out, "<p class=\"muted\">Blocks still allocated at exit, by the stack that allocated them. "
                     "<b>lost</b>: no pointer to them is left; <b>reachable</b>: still pointed to (from "
                     "globals, stacks or other reachable blocks).</p>\n");
        fprintf(out, "<table class=\"rows leaks\">\n<tr><th>kind</th><th class=\"n\">bytes</th>"
                     "<th class=\"n\">blocks</th><th>one of them</th><th>allocated at</th></tr>\n");
        for (size_t i = 0; i < n && i < MAX_ROWS; i++) leak_row(out, r, &l[i]);
        fprintf(out, "</table>\n");
        if (n > MAX_ROWS) fprintf(out, "<p class=\"muted\">%zu more not shown.</p>\n", n - MAX_ROWS);
    }
    free(l);
    fprintf(out, "</section>\n");
}

/* ---- sizes ---- */

/* A size limit as exactly as it fits: 16 B, 4 KiB, 1536 B, 2 MiB. */
static void exact_size(uint64_t v, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (v >= 1024 && v % 1024 == 0 && u + 1 < sizeof units / sizeof units[0]) v /= 1024, u++;
    snprintf(buf, cap, "%llu %s", (unsigned long long)v, units[u]);
}

static void size_names(const struct dump *d, char **names, char **tips) {
    char lo[32], hi[32], bytes[32], count[32];
    for (size_t i = 0; i < d->n_sizes; i++) {
        const struct dump_size *s = &d->sizes[i];
        exact_size(s->limit, hi, sizeof hi);
        exact_size(i ? d->sizes[i - 1].limit + 1 : 0, lo, sizeof lo);
        fmt_bytes((double)s->bytes, bytes, sizeof bytes);
        fmt_count(s->allocs, count, sizeof count);
        names[i] = cli_alloc(48);
        tips[i] = cli_alloc(160);
        snprintf(names[i], 48, "\xe2\x89\xa4%s", hi); /* ≤ */
        snprintf(tips[i], 160, "%s to %s: %s requests, %s", lo, hi, count, bytes);
    }
}

static void sizes_section(FILE *out, const struct dump *d) {
    fprintf(out, "<section id=\"sizes\">\n<h2>Request sizes</h2>\n");
    size_t n = d->n_sizes;
    if (!n) {
        fprintf(out, "<p class=\"muted\">The dump has no size histogram.</p>\n</section>\n");
        return;
    }
    char **names = cli_alloc(n * sizeof *names), **tips = cli_alloc(n * sizeof *tips);
    double *count = cli_alloc(n * sizeof *count), *bytes = cli_alloc(n * sizeof *bytes);
    size_names(d, names, tips);
    for (size_t i = 0; i < n; i++) count[i] = (double)d->sizes[i].allocs, bytes[i] = (double)d->sizes[i].bytes;
    struct chart_bars by_count = {"sizes", "requests by size", "#5f3dc4", (const char *const *)names,
                                  (const char *const *)tips, count, n, CHART_COUNT};
    struct chart_bars by_bytes = {"size-bytes", "bytes by request size", "#2b8a3e", (const char *const *)names,
                                  (const char *const *)tips, bytes, n, CHART_BYTES};
    fprintf(out, "<p class=\"muted\">Requests in each size range (up to the size shown):</p>\n");
    chart_bars(out, &by_count);
    fprintf(out, "<p class=\"muted\">Bytes requested in each range:</p>\n");
    chart_bars(out, &by_bytes);
    fprintf(out, "</section>\n");
    for (size_t i = 0; i < n; i++) free(names[i]), free(tips[i]);
    free(names), free(tips), free(count), free(bytes);
}

/* ---- the page ---- */

static void footer(FILE *out, const struct report *r) {
    fprintf(out, "<footer><p class=\"muted\">strata " STRATA_VERSION_STRING " &middot; from ");
    html_text(out, r->d->file);
    if (r->d->unknown) fprintf(out, " (%zu records of unknown types skipped)", r->d->unknown);
    fprintf(out, "</p></footer>\n");
}

/* ---- a running process's statistics ---- */

static void stats_section(FILE *out, const struct report_live *l) {
    fprintf(out, "<section id=\"stats\">\n<h2>Heap statistics</h2>\n");
    if (!l->stats) {
        fprintf(out, "<p class=\"muted\">Its statistics could not be read.</p>\n</section>\n");
        return;
    }
    fprintf(out, "<p class=\"muted\">As <code>strata stats PID</code> prints them (\"-\": known inside the "
                 "process only).</p>\n<pre>");
    html_text(out, l->stats);
    fprintf(out, "</pre>\n</section>\n");
}

bool report_write(FILE *out, const struct report *r) {
    header(out, r);
    if (r->live) {
        sites_section(out, r);
        stats_section(out, r->live);
    } else {
        if (r->d->has_error) misuse(out, r);
        heap_section(out, r->d);
        sites_section(out, r);
        leaks_section(out, r);
        sizes_section(out, r->d);
    }
    footer(out, r);
    fprintf(out, "<script>\n%s</script>\n</body>\n</html>\n", report_js);
    return fflush(out) == 0 && !ferror(out);
}
