/*
 * chart.c — line and bar charts as inline SVG (chart.h).
 *
 * The SVG is drawn here, in C, so the page needs no script to show its charts: a viewBox of
 * fixed size, scaled by the browser to the page's width. Axes get "nice" ticks (1, 2 or 5 times
 * a power of ten of the unit chosen for the largest value: B, KiB, MiB...; ms or s).
 * A series of more than MAX_POINTS samples is thinned to the largest value of each run of
 * consecutive samples, so that peaks survive.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <string.h>

#include "chart.h"
#include "html.h"

enum { W = 960, H = 300, LEFT = 80, RIGHT = 20, TOP = 28, BOTTOM = 48, MAX_POINTS = 1500 };
#define PLOT_W (W - LEFT - RIGHT)
#define PLOT_H (H - TOP - BOTTOM)

/* ---- axes ---- */

struct axis {
    double max, step, unit; /* ticks at 0, step, 2 step ... max; labels in `unit`s */
    const char *suffix;
};

/* 1, 2 or 5 times a power of ten, at least raw. */
static double nice(double raw) {
    double mag = 1;
    while (mag * 10 <= raw) mag *= 10;
    while (mag > raw && mag > 1e-9) mag /= 10;
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

static void pick_unit(double max, enum chart_unit u, struct axis *a) {
    static const char *const bytes[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    a->unit = 1;
    a->suffix = u == CHART_BYTES ? "B" : u == CHART_MS ? "ms" : "";
    if (u == CHART_BYTES)
        for (size_t i = 1; i < sizeof bytes / sizeof bytes[0] && max / a->unit >= 1024; i++)
            a->unit *= 1024, a->suffix = bytes[i];
    else if (u == CHART_MS && max >= 10000) a->unit = 1000, a->suffix = "s";
    else if (u == CHART_COUNT && max >= 1e7) a->unit = 1e6, a->suffix = "M";
    else if (u == CHART_COUNT && max >= 1e4) a->unit = 1e3, a->suffix = "k";
}

static struct axis make_axis(double max, enum chart_unit u, int ticks) {
    struct axis a;
    pick_unit(max, u, &a);
    if (max <= 0) max = a.unit;
    a.step = nice(max / a.unit / ticks) * a.unit;
    double k = (double)(long long)(max / a.step);
    if (k * a.step < max) k++;
    a.max = k * a.step;
    return a;
}

/* "1.5 MiB", "250 ms", "20k" (count suffixes stick to the number). */
static void tick_label(const struct axis *a, double v, char *buf, size_t cap) {
    bool apart = *a->suffix && strcmp(a->suffix, "k") != 0 && strcmp(a->suffix, "M") != 0;
    snprintf(buf, cap, "%g%s%s", v / a->unit, apart ? " " : "", a->suffix);
}

static double px(const struct axis *a, double x) { return LEFT + x / a->max * PLOT_W; }
static double py(const struct axis *a, double y) { return TOP + PLOT_H - y / a->max * PLOT_H; }

static void y_grid(FILE *out, const struct axis *a) {
    char label[48];
    for (double v = 0; v <= a->max * 1.0000001; v += a->step) {
        tick_label(a, v, label, sizeof label);
        fprintf(out, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", LEFT, W - RIGHT, py(a, v),
                py(a, v));
        fprintf(out, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 6,
                py(a, v) + 4, label);
    }
}

static void x_ticks(FILE *out, const struct axis *a) {
    char label[48];
    for (double v = 0; v <= a->max * 1.0000001; v += a->step) {
        tick_label(a, v, label, sizeof label);
        fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", px(a, v),
                H - BOTTOM + 16, label);
    }
    fprintf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n", LEFT, W - RIGHT, H - BOTTOM,
            H - BOTTOM);
}

static void svg_open(FILE *out, const char *id, const char *label, size_t marks, size_t points) {
    fprintf(out, "<svg class=\"chart\" data-chart=\"");
    html_text(out, id);
    fprintf(out, "\" data-marks=\"%zu\" data-points=\"%zu\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", marks,
            points, W, H);
    html_text(out, label);
    fprintf(out, "\">\n");
}

/* ---- lines ---- */

static size_t group_size(size_t n) { return n > MAX_POINTS ? (n + MAX_POINTS - 1) / MAX_POINTS : 1; }

static size_t points_of(size_t n) { return n == 1 ? 2 : (n + group_size(n) - 1) / group_size(n); }

static void polyline(FILE *out, const struct chart_lines *c, const struct chart_series *s, const struct axis *xa,
                     const struct axis *ya) {
    fprintf(out, "<polyline class=\"d\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", s->color);
    if (c->n == 1) fprintf(out, "%d,%.1f %d,%.1f", LEFT, py(ya, s->y[0]), W - RIGHT, py(ya, s->y[0]));
    size_t g = group_size(c->n), peak = 0;
    for (size_t i = 0; c->n > 1 && i < c->n; i += g) {
        size_t best = i;
        for (size_t j = i; j < i + g && j < c->n; j++)
            if (s->y[j] > s->y[best]) best = j;
        fprintf(out, "%.1f,%.1f ", px(xa, c->x[best]), py(ya, s->y[best]));
    }
    for (size_t i = 0; i < c->n; i++)
        if (s->y[i] > s->y[peak]) peak = i;
    char v[32], t[32];
    double top = c->n ? s->y[peak] : 0;
    if (c->y_unit == CHART_BYTES) fmt_bytes(top, v, sizeof v);
    else fmt_count((uint64_t)top, v, sizeof v);
    fmt_ms(c->n ? c->x[peak] : 0, t, sizeof t);
    fprintf(out, "\"><title>");
    html_text(out, s->name);
    fprintf(out, ": peak %s at %s</title></polyline>\n", v, t);
}

static void legend(FILE *out, const struct chart_series *s, size_t n) {
    for (size_t i = 0, x = LEFT + 8; i < n; x += 40 + 7 * strlen(s[i].name), i++) {
        fprintf(out, "<rect x=\"%zu\" y=\"8\" width=\"14\" height=\"4\" fill=\"%s\"/>", x, s[i].color);
        fprintf(out, "<text class=\"legend\" x=\"%zu\" y=\"14\">", x + 20);
        html_text(out, s[i].name);
        fprintf(out, "</text>\n");
    }
}

void chart_lines(FILE *out, const struct chart_lines *c) {
    double xmax = c->n ? c->x[c->n - 1] : 0, ymax = 0;
    for (size_t k = 0; k < c->n_series; k++)
        for (size_t i = 0; i < c->n; i++)
            if (c->series[k].y[i] > ymax) ymax = c->series[k].y[i];
    struct axis xa = make_axis(xmax, c->x_unit, 8), ya = make_axis(ymax, c->y_unit, 5);
    svg_open(out, c->id, c->label, c->n ? c->n_series : 0, c->n ? c->n_series * points_of(c->n) : 0);
    y_grid(out, &ya);
    x_ticks(out, &xa);
    for (size_t k = 0; c->n && k < c->n_series; k++) polyline(out, c, &c->series[k], &xa, &ya);
    legend(out, c->series, c->n_series);
    fprintf(out, "</svg>\n");
}

/* ---- bars ---- */

static void bar_name(FILE *out, const struct chart_bars *c, size_t i, double bw) {
    double x = LEFT + (i + 0.5) * bw;
    int y = H - BOTTOM + 14;
    if (bw >= 48) fprintf(out, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x, y);
    else fprintf(out, "<text class=\"tick\" text-anchor=\"end\" transform=\"translate(%.1f %d) rotate(-40)\">", x + 3, y);
    html_text(out, c->names[i]);
    fprintf(out, "</text>\n");
}

void chart_bars(FILE *out, const struct chart_bars *c) {
    double vmax = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i] > vmax) vmax = c->v[i];
    struct axis ya = make_axis(vmax, c->unit, 5);
    double bw = c->n ? (double)PLOT_W / (double)c->n : PLOT_W;
    size_t every = bw >= 14 ? 1 : (size_t)(14 / bw) + 1; /* names that fit */
    svg_open(out, c->id, c->label, c->n, 0);
    y_grid(out, &ya);
    for (size_t i = 0; i < c->n; i++) {
        double h = c->v[i] / ya.max * PLOT_H, gap = bw > 6 ? 2 : 0;
        fprintf(out, "<rect class=\"d\" fill=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>",
                c->color, LEFT + i * bw + gap / 2, TOP + PLOT_H - h, bw - gap, h);
        html_text(out, c->tips[i]);
        fprintf(out, "</title></rect>\n");
        if (i % every == 0) bar_name(out, c, i, bw);
    }
    fprintf(out, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>\n</svg>\n", LEFT, W - RIGHT,
            H - BOTTOM, H - BOTTOM);
}
