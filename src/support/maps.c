/*
 * maps.c — /proc/self/maps read line by line without malloc or stdio, and the loaded objects
 * (modules) found in it: for the leak scan (its roots), the diagnostic record and the sampled
 * guard's report. One static buffer: each runs once, as the process ends or stops.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

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

void sx_maps_each(void (*fn)(const sx_map_line *m, void *arg), void *arg) {
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

/* ELF address = run-time address - bias, from the program headers of the object mapped at base.
 * Under memcheck, valgrind's own tool is mapped too, and reading it is an error: skipped. */
static bool elf_bias(uintptr_t base, size_t page, uintptr_t *bias) {
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)base;
    if (!sx_vg_addressable(e, sizeof *e)) return false;
    if (memcmp(e->e_ident, ELFMAG, SELFMAG) || e->e_ident[EI_CLASS] != ELFCLASS64) return false;
    if (e->e_phoff + (size_t)e->e_phnum * sizeof(Elf64_Phdr) > page) return false;
    if (!sx_vg_addressable((const void *)(base + e->e_phoff), (size_t)e->e_phnum * sizeof(Elf64_Phdr)))
        return false;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + e->e_phoff);
    for (int i = 0; i < e->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD) {
            *bias = base - sx_align_down(ph[i].p_vaddr - ph[i].p_offset, page);
            return true;
        }
    return false;
}

typedef struct {
    void (*fn)(const sx_module *m, void *arg);
    void *arg;
    size_t page;
    uintptr_t base; /* where the current object's offset 0 is mapped */
    char path[512];
} module_walk;

/* One line of /proc/self/maps: the code of a loaded object becomes a module. */
static void module_line(const sx_map_line *l, void *arg) {
    module_walk *w = arg;
    const char *path = l->name;
    if (path[0] != '/' || strchr(path, ' ')) return; /* anonymous, or "(deleted)" */
    if (l->offset == 0 && l->perms[0] == 'r') {
        w->base = l->lo;
        sx_fmt(w->path, sizeof w->path, "%s", path);
    }
    sx_module m = {.lo = l->lo, .hi = l->hi, .path = path};
    if (l->perms[2] == 'x' && w->base && !strcmp(path, w->path) && elf_bias(w->base, w->page, &m.bias))
        w->fn(&m, w->arg);
}

void sx_modules_each(size_t page, void (*fn)(const sx_module *m, void *arg), void *arg) {
    static module_walk w;
    w = (module_walk){.fn = fn, .arg = arg, .page = page};
    sx_maps_each(module_line, &w);
}
