/*
 * fmt.c — messages without malloc.
 *
 * printf may allocate, and the allocator cannot call itself while reporting a problem in itself, so
 * strata formats into stack buffers and writes with write(2). Supported: %s %c %d %i %u %x %p %%,
 * with l/z/ll length modifiers, a field width for numbers and a precision (.N or .*) for strings.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

typedef struct {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, char c) {
    if (o->len + 1 < o->cap) o->buf[o->len] = c;
    o->len++;
}

/* Right-aligned in `width` columns, at most `prec` characters (-1: all). */
static void put_str(out_t *o, const char *s, int width, int prec) {
    if (!s) s = "(null)";
    int n = 0;
    while (s[n] && n != prec) n++;
    for (int i = n; i < width; i++) put(o, ' ');
    for (int i = 0; i < n; i++) put(o, s[i]);
}

static void put_num(out_t *o, unsigned long long v, unsigned base, bool neg, int width, char padc) {
    char tmp[32];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    if (neg) tmp[n++] = '-';
    for (int i = n; i < width; i++) put(o, padc);
    while (n) put(o, tmp[--n]);
}

size_t sx_vfmt(char *buf, size_t cap, const char *fmt, va_list ap) {
    out_t o = {buf, cap, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&o, *f);
            continue;
        }
        f++;
        char padc = ' ';
        int width = 0, lng = 0, prec = -1;
        if (*f == '0') padc = '0', f++;
        while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        if (*f == '.') {
            f++;
            if (*f == '*') prec = va_arg(ap, int), f++;
            else for (prec = 0; *f >= '0' && *f <= '9'; f++) prec = prec * 10 + (*f - '0');
        }
        while (*f == 'l' || *f == 'z') lng++, f++;
        switch (*f) {
        case 's': put_str(&o, va_arg(ap, const char *), width, prec); break;
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case 'd':
        case 'i': {
            long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
            put_num(&o, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, 10, v < 0,
                    width, padc);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            put_num(&o, v, *f == 'x' ? 16 : 10, false, width, padc);
            break;
        }
        case 'p':
            put_str(&o, "0x", 0, -1);
            put_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, 0, ' ');
            break;
        case '%': put(&o, '%'); break;
        case '\0': f--; break;
        default: put(&o, '%'); put(&o, *f); break;
        }
    }
    if (cap) buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

size_t sx_fmt(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t n = sx_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void sx_write(int fd, const char *s, size_t n) {
    int saved = errno;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

void sx_printf(int fd, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t n = sx_vfmt(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sx_write(fd, buf, n < sizeof buf ? n : sizeof buf - 1);
}

static void vmessage(const char *fmt, va_list ap) {
    char buf[512];
    size_t n = sx_fmt(buf, sizeof buf, "strata: ");
    n += sx_vfmt(buf + n, sizeof buf - n - 1, fmt, ap);
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    sx_write(2, buf, n);
}

void sx_message(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

_Noreturn void sx_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    abort();
}

_Noreturn void sx_assert_fail(const char *cond, const char *file, int line) {
    sx_fatal("internal assertion failed: %s (%s:%d)", cond, file, line);
}

const char *sx_fmt_bytes(char *buf, size_t cap, size_t n) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    size_t whole = n, tenths = 0;
    while (whole >= 1024 && u < 4) {
        tenths = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    if (u == 0) sx_fmt(buf, cap, "%zu B", n);
    else sx_fmt(buf, cap, "%zu.%zu %s", whole, tenths, units[u]);
    return buf;
}
