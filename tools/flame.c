/*
 * flame.c — the allocation sites of a dump as an icicle graph (flame.h).
 *
 * Each site's bytes go down its stack from the outermost frame (main's caller) to the innermost
 * (the call to malloc): a node per distinct function at each level of its parent, so that two
 * calls to make_node from the same caller are one box. Children are sorted largest first, so the
 * biggest allocators line up on the left.
 *
 * Each box is a <g class="fr"> holding its rectangle and label, with its place as fractions of
 * the whole width (data-x, data-w) and its depth (data-d): the page's script zooms on a click by
 * recomputing positions from those, without redrawing anything.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flame.h"
#include "html.h"

enum { W = 960, ROW = 18, CHAR_W = 7 };
#define MIN_WIDTH 0.5 /* px: narrower boxes (and all below them) are not drawn */

/* ---- the tree ---- */

static struct flame_node *new_node(const char *label, const char *where, size_t depth) {
    struct flame_node *n = cli_alloc(sizeof *n);
    n->label = cli_strdup(label);
    n->where = cli_strdup(where ? where : "");
    n->depth = depth;
    return n;
}

static struct flame_node *child_named(struct flame_node *parent, const char *label, const char *where) {
    for (struct flame_node *c = parent->child; c; c = c->next)
        if (!strcmp(c->label, label)) return c;
    struct flame_node *c = new_node(label, where, parent->depth + 1);
    c->next = parent->child;
    parent->child = c;
    return c;
}

static void count_site(struct flame_node *n, const struct dump_site *site) {
    n->bytes += site->bytes, n->allocs += site->allocs, n->frees += site->frees, n->sites++;
}

static void add_site(struct flame_node *root, const struct dump *d, struct symbols *s, const struct dump_site *site) {
    const struct dump_stack *st = dump_stack(d, site->stack);
    struct flame_node *n = root;
    count_site(n, site);
    if (!st || !st->depth) {
        count_site(child_named(root, "(no stack)", ""), site);
        return;
    }
    char label[512];
    for (size_t j = st->depth; j-- > 0;) {
        const struct sym_frame *f = symbols_frame(s, st->pc[j]);
        sym_frame_label(f, label, sizeof label);
        n = child_named(n, label, f->file ? f->file : f->module);
        count_site(n, site);
    }
}

static int larger_first(const void *a, const void *b) {
    const struct flame_node *x = *(struct flame_node *const *)a, *y = *(struct flame_node *const *)b;
    if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
    return strcmp(x->label, y->label);
}

static void sort_children(struct flame_node *n) {
    size_t k = 0;
    for (struct flame_node *c = n->child; c; c = c->next) k++, sort_children(c);
    if (k < 2) return;
    struct flame_node **v = cli_alloc(k * sizeof *v);
    k = 0;
    for (struct flame_node *c = n->child; c; c = c->next) v[k++] = c;
    qsort(v, k, sizeof *v, larger_first);
    for (size_t i = 0; i < k; i++) v[i]->next = i + 1 < k ? v[i + 1] : NULL;
    n->child = v[0];
    free(v);
}

struct flame_node *flame_build(const struct dump *d, struct symbols *s) {
    struct flame_node *root = new_node("all", "", 0);
    for (size_t i = 0; i < d->n_sites; i++) add_site(root, d, s, &d->sites[i]);
    sort_children(root);
    return root;
}

void flame_free(struct flame_node *root) {
    for (struct flame_node *c = root ? root->child : NULL, *next; c; c = next) {
        next = c->next;
        flame_free(c);
    }
    if (root) free(root->label), free(root->where), free(root);
}

/* ---- drawing ---- */

static double width_of(const struct flame_node *n, const struct flame_node *root) {
    return root->bytes ? (double)n->bytes / (double)root->bytes : n == root;
}

/* Frames wide enough to draw, and the depth of the deepest. */
static size_t visible(const struct flame_node *n, const struct flame_node *root, size_t *max_depth) {
    if (width_of(n, root) * W < MIN_WIDTH) return 0;
    if (n->depth > *max_depth) *max_depth = n->depth;
    size_t k = 1;
    for (const struct flame_node *c = n->child; c; c = c->next) k += visible(c, root, max_depth);
    return k;
}

/* Warm colours for functions, steady for one name; grey-blue for frames without one. */
static void colour(const struct flame_node *n, char *buf, size_t cap) {
    unsigned h = 2166136261u;
    for (const char *c = n->label; *c; c++) h = (h ^ (unsigned char)*c) * 16777619u;
    if (n->depth == 0) snprintf(buf, cap, "hsl(30,8%%,78%%)");
    else if (strstr(n->label, "+0x") || n->label[0] == '(' || !strcmp(n->label, "??"))
        snprintf(buf, cap, "hsl(210,22%%,%u%%)", 72 + h % 10);
    else snprintf(buf, cap, "hsl(%u,%u%%,%u%%)", h % 48, 70 + (h >> 8) % 20, 56 + (h >> 16) % 12);
}

static void tooltip(FILE *out, const struct flame_node *n, const struct flame_node *root) {
    char bytes[32], allocs[32];
    fmt_bytes((double)n->bytes, bytes, sizeof bytes);
    fmt_count(n->allocs, allocs, sizeof allocs);
    fprintf(out, "<title>");
    html_text(out, n->label);
    fprintf(out, "\n%s (%.1f%%), %s allocations, %llu site%s", bytes, 100 * width_of(n, root), allocs,
            (unsigned long long)n->sites, n->sites == 1 ? "" : "s");
    if (*n->where) fprintf(out, "\n"), html_text(out, n->where);
    fprintf(out, "</title>");
}

static void box(FILE *out, const struct flame_node *n, const struct flame_node *root, double x) {
    double w = width_of(n, root), left = x * W, wpx = w * W;
    char fill[48];
    colour(n, fill, sizeof fill);
    fprintf(out, "<g class=\"fr\" data-x=\"%.8f\" data-w=\"%.8f\" data-d=\"%zu\" data-l=\"", x, w, n->depth);
    html_text(out, n->label);
    fprintf(out, "\">");
    tooltip(out, n, root);
    fprintf(out, "<rect class=\"d\" x=\"%.2f\" y=\"%zu\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>", left,
            n->depth * ROW, wpx, ROW - 1, fill);
    size_t fits = wpx > 8 ? (size_t)((wpx - 6) / CHAR_W) : 0, len = strlen(n->label);
    fprintf(out, "<text x=\"%.2f\" y=\"%zu\">", left + 3, n->depth * ROW + 13);
    if (fits >= len) html_text(out, n->label);
    else if (fits >= 4) html_text_n(out, n->label, fits - 2), fputs("..", out);
    fprintf(out, "</text></g>\n");
}

static void draw(FILE *out, const struct flame_node *n, const struct flame_node *root, double x) {
    if (width_of(n, root) * W < MIN_WIDTH) return;
    box(out, n, root, x);
    for (const struct flame_node *c = n->child; c; c = c->next) {
        draw(out, c, root, x);
        x += width_of(c, root);
    }
}

size_t flame_svg(FILE *out, const struct flame_node *root, const char *id) {
    size_t depth = 0, frames = visible(root, root, &depth);
    fprintf(out, "<svg class=\"flame\" data-chart=\"");
    html_text(out, id);
    fprintf(out, "\" data-marks=\"%zu\" data-points=\"0\" viewBox=\"0 0 %d %zu\" role=\"img\" "
                 "aria-label=\"allocated bytes by call stack\">\n",
            frames, W, (depth + 1) * ROW);
    draw(out, root, root, 0);
    fprintf(out, "</svg>\n");
    return frames;
}
