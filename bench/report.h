/*
 * report.h — what the benchmark drivers (driver.c, diag.c) share: the line that describes the
 * machine, medians, printing to the terminal and the markdown summary at once, a status line,
 * and putting a result file into BENCHMARKS.md between its markers.
 */
#ifndef STRATA_BENCH_REPORT_H
#define STRATA_BENCH_REPORT_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* "AMD EPYC, 2 cores, 23 GiB, Linux 6.1.0, 2026-11-22" */
static inline void bench_machine(char *out, size_t cap) {
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
                snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    struct utsname u;
    uname(&u);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    long mem = sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024 / 1024;
    snprintf(out, cap, "%s, %ld cores, %ld GiB, Linux %s, %s", model, sysconf(_SC_NPROCESSORS_ONLN),
             mem, u.release, date);
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v); NAN for none. */
static inline double bench_median(double *v, int n) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Put the file `path` between the markers "<!-- bench:KEY:begin -->" and "<!-- bench:KEY:end -->"
 * of the document `doc` (BENCHMARKS.md), so that it always shows the last run. */
static inline void bench_publish(const char *doc, const char *key, const char *path) {
    char begin[64], end[64];
    snprintf(begin, sizeof begin, "<!-- bench:%s:begin -->", key);
    snprintf(end, sizeof end, "<!-- bench:%s:end -->", key);
    FILE *f = fopen(doc, "r"), *g = fopen(path, "r");
    if (!f || !g) {
        fprintf(stderr, "cannot publish %s into %s\n", path, doc);
        if (f) fclose(f);
        if (g) fclose(g);
        return;
    }
    static char text[1 << 20], table[1 << 18];
    size_t n = fread(text, 1, sizeof text - 1, f), m = fread(table, 1, sizeof table - 1, g);
    text[n] = table[m] = '\0';
    fclose(f);
    fclose(g);
    char *b = strstr(text, begin), *e = b ? strstr(b, end) : NULL;
    if (!b || !e) {
        fprintf(stderr, "%s has no %s ... %s section: not updated\n", doc, begin, end);
        return;
    }
    f = fopen(doc, "w");
    if (!f) return;
    fprintf(f, "%.*s%s\n%s%s", (int)(b - text), text, begin, table, e);
    fclose(f);
    printf("updated %s (%s)\n", doc, key);
}

/* Both to stdout and to the markdown summary (md, when it is open). */
static FILE *md;
static __attribute__((format(printf, 1, 2), unused)) void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (md) {
        va_start(ap, fmt);
        vfprintf(md, fmt, ap);
        va_end(ap);
    }
}

/* A status line on a terminal; in a log, nothing (the tables say it all). */
static __attribute__((format(printf, 1, 2), unused)) void progress(const char *fmt, ...) {
    if (!isatty(2)) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

#endif
