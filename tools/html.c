/*
 * html.c — escaping and number formats for the HTML report (html.h).
 */
#define _GNU_SOURCE
#include <string.h>

#include "html.h"

static void escape_char(FILE *out, char c) {
    switch (c) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&#39;", out); break;
    default: fputc(c, out);
    }
}

void html_text(FILE *out, const char *s) {
    for (; *s; s++) escape_char(out, *s);
}

void html_text_n(FILE *out, const char *s, size_t n) {
    size_t len = strnlen(s, n);
    if (len < strlen(s))
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80) len--; /* s[len] continues a character */
    for (size_t i = 0; i < len; i++) escape_char(out, s[i]);
}

void fmt_bytes(double bytes, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof units / sizeof units[0]) bytes /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%.0f B", bytes);
    else snprintf(buf, cap, "%.*f %s", bytes < 10 ? 2 : bytes < 100 ? 1 : 0, bytes, units[u]);
}

void fmt_count(uint64_t n, char *buf, size_t cap) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t at = 0;
    for (int i = 0; i < len && at + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = digits[i];
    }
    buf[at < cap ? at : cap - 1] = '\0';
}

void fmt_ms(double ms, char *buf, size_t cap) {
    if (ms < 1000) snprintf(buf, cap, "%.0f ms", ms);
    else if (ms < 60000) snprintf(buf, cap, "%.*f s", ms < 10000 ? 2 : 1, ms / 1000);
    else snprintf(buf, cap, "%ld min %ld s", (long)(ms / 60000), (long)(ms / 1000) % 60);
}
