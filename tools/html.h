/*
 * html.h — writing text into an HTML page: escaping, and numbers as people read them.
 */
#ifndef STRATA_TOOLS_HTML_H
#define STRATA_TOOLS_HTML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* s with & < > " ' escaped: safe as element text and inside a quoted attribute. */
void html_text(FILE *out, const char *s);
/* The first n bytes of s (fewer if s is shorter), escaped; a UTF-8 character is never cut. */
void html_text_n(FILE *out, const char *s, size_t n);

/* 0 B, 512 B, 1.5 KiB, 12.3 MiB, 2.0 GiB */
void fmt_bytes(double bytes, char *buf, size_t cap);
/* 1234567 -> 1,234,567 */
void fmt_count(uint64_t n, char *buf, size_t cap);
/* 850 ms, 12.5 s, 3 min 20 s */
void fmt_ms(double ms, char *buf, size_t cap);

#endif
