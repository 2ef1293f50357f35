/*
 * maps.c — /proc/self/maps read line by line without malloc or stdio, for the leak scan (its
 * roots) and the record (the loaded objects). One static buffer: both run once, one after the
 * other, as the record is written.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"

static uintptr_t hex(const char **p) {
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else return v;
    }
}

/* "lo-hi perms offset dev inode   name" */
static bool parse(const char *l, sx_map_line *m) {
    m->lo = hex(&l);
    if (*l++ != '-') return false;
    m->hi = hex(&l);
    if (*l++ != ' ' || strlen(l) < 5) return false;
    m->perms = l;
    l += 5;
    m->offset = hex(&l);
    for (int field = 0; field < 2 && *l; field++) { /* dev, inode */
        while (*l == ' ') l++;
        while (*l && *l != ' ') l++;
    }
    while (*l == ' ') l++;
    m->name = l;
    return true;
}

void sx_diag_maps_each(void (*fn)(const sx_map_line *m, void *arg), void *arg) {
    static char buf[65536];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t have = 0;
    ssize_t n;
    while ((n = read(fd, buf + have, sizeof buf - 1 - have)) > 0) {
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        sx_map_line m;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            if (parse(line, &m)) fn(&m, arg);
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1) have = 0; /* a line longer than the buffer: dropped */
    }
    close(fd);
}
