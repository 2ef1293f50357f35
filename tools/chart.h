/*
 * chart.h — line and bar charts as inline SVG, for the HTML report.
 *
 * Every mark that shows data (a series' polyline, a bar) has class "d", and the <svg> says how
 * many it holds (data-marks) and, for lines, how many points they have in all (data-points): the
 * page's script checks these against what the browser drew.
 */
#ifndef STRATA_TOOLS_CHART_H
#define STRATA_TOOLS_CHART_H

#include <stddef.h>
#include <stdio.h>

enum chart_unit { CHART_BYTES, CHART_COUNT, CHART_MS };

struct chart_series {
    const char *name, *color;
    const double *y; /* one value per x */
};

struct chart_lines {
    const char *id; /* data-chart */
    const char *label; /* aria-label: what it shows */
    const double *x;   /* ascending */
    size_t n;
    enum chart_unit x_unit, y_unit;
    const struct chart_series *series;
    size_t n_series;
};

struct chart_bars {
    const char *id, *label, *color;
    const char *const *names; /* under each bar */
    const char *const *tips;  /* tooltip of each bar */
    const double *v;
    size_t n;
    enum chart_unit unit;
};

void chart_lines(FILE *out, const struct chart_lines *c);
void chart_bars(FILE *out, const struct chart_bars *c);

#endif
