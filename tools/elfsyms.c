/*
 * elfsyms.c — function symbols read straight from an ELF file's section headers, for the
 * addresses addr2line leaves as ??: libraries without debug information, or no addr2line at all.
 *
 * Only 64-bit ELF in the machine's own byte order (the processes strata runs in); every offset
 * and size read from the file is checked against the file's length before use, since a module
 * path in a dump may name anything.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "elfsyms.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ELFDATA ELFDATA2LSB
#else
#define HOST_ELFDATA ELFDATA2MSB
#endif

struct image {
    const unsigned char *base;
    size_t len;
    const Elf64_Shdr *sh;
    size_t shnum;
};

/* [off, off + len) lies inside the file. */
static bool inside(const struct image *im, uint64_t off, uint64_t len) {
    return off <= im->len && len <= im->len - off;
}

static bool open_image(const struct image *file, struct image *im) {
    *im = *file;
    if (im->len < sizeof(Elf64_Ehdr)) return false;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)im->base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != HOST_ELFDATA || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff == 0)
        return false;
    if (!inside(im, eh->e_shoff, sizeof(Elf64_Shdr))) return false;
    im->sh = (const Elf64_Shdr *)(im->base + eh->e_shoff);
    im->shnum = eh->e_shnum ? eh->e_shnum : im->sh[0].sh_size; /* many sections: the count is in #0 */
    return inside(im, eh->e_shoff, (uint64_t)im->shnum * sizeof(Elf64_Shdr));
}

static bool is_function(const Elf64_Sym *sym) {
    int type = ELF64_ST_TYPE(sym->st_info);
    return (type == STT_FUNC || type == STT_GNU_IFUNC) && sym->st_shndx != SHN_UNDEF && sym->st_value != 0;
}

static void add(struct elf_symbols *s, size_t *cap, const Elf64_Sym *sym, const char *name) {
    if (s->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        s->syms = cli_realloc(s->syms, *cap * sizeof *s->syms);
    }
    s->syms[s->n++] = (struct elf_symbol){sym->st_value, sym->st_size, name};
}

/* The functions of one symbol table section. */
static void read_table(const struct image *im, const Elf64_Shdr *tab, struct elf_symbols *s, size_t *cap) {
    if (tab->sh_link >= im->shnum || tab->sh_entsize != sizeof(Elf64_Sym)) return;
    const Elf64_Shdr *str = &im->sh[tab->sh_link];
    if (!inside(im, tab->sh_offset, tab->sh_size) || !inside(im, str->sh_offset, str->sh_size)) return;
    const Elf64_Sym *syms = (const Elf64_Sym *)(im->base + tab->sh_offset);
    const char *strings = (const char *)im->base + str->sh_offset;
    for (size_t i = 0; i < tab->sh_size / sizeof(Elf64_Sym); i++) {
        if (!is_function(&syms[i]) || syms[i].st_name >= str->sh_size) continue;
        const char *name = strings + syms[i].st_name;
        if (*name && memchr(name, '\0', str->sh_size - syms[i].st_name)) add(s, cap, &syms[i], name);
    }
}

/* By address; of symbols at one address, one with a size first. */
static int by_address(const void *a, const void *b) {
    const struct elf_symbol *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    return (x->size < y->size) - (x->size > y->size);
}

static void sort_unique(struct elf_symbols *s) {
    qsort(s->syms, s->n, sizeof *s->syms, by_address);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!k || s->syms[k - 1].addr != s->syms[i].addr) s->syms[k++] = s->syms[i];
    s->n = k;
}

static bool map_file(const char *path, struct elf_symbols *s) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    if (ok) {
        s->map_len = (size_t)st.st_size;
        s->map = mmap(NULL, s->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        ok = s->map != MAP_FAILED;
        if (!ok) s->map = NULL;
    }
    close(fd);
    return ok;
}

bool elf_symbols_load(const char *path, struct elf_symbols *s) {
    memset(s, 0, sizeof *s);
    if (!map_file(path, s)) return false;
    struct image im, file = {.base = s->map, .len = s->map_len};
    size_t cap = 0;
    if (open_image(&file, &im))
        for (size_t i = 0; i < im.shnum; i++)
            if (im.sh[i].sh_type == SHT_SYMTAB || im.sh[i].sh_type == SHT_DYNSYM) read_table(&im, &im.sh[i], s, &cap);
    if (!s->n) {
        elf_symbols_free(s);
        return false;
    }
    sort_unique(s);
    return true;
}

const struct elf_symbol *elf_symbols_find(const struct elf_symbols *s, uint64_t addr) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* the first symbol above addr */
        size_t mid = (lo + hi) / 2;
        if (s->syms[mid].addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    const struct elf_symbol *sym = &s->syms[lo - 1];
    return sym->size == 0 || addr - sym->addr < sym->size ? sym : NULL;
}

void elf_symbols_free(struct elf_symbols *s) {
    if (s->map) munmap(s->map, s->map_len);
    free(s->syms);
    memset(s, 0, sizeof *s);
}
