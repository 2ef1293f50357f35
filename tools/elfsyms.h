/*
 * elfsyms.h — the function symbols of an ELF file (.symtab and .dynsym), to name an address when
 * addr2line cannot: a stripped library still has its exported functions in .dynsym.
 */
#ifndef STRATA_TOOLS_ELFSYMS_H
#define STRATA_TOOLS_ELFSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_symbol {
    uint64_t addr, size; /* ELF virtual address; size 0 when the file does not say */
    const char *name;    /* as in the file (not demangled) */
};

struct elf_symbols {
    struct elf_symbol *syms; /* sorted by address */
    size_t n;
    void *map; /* the file, mapped: the names point into it */
    size_t map_len;
};

/* Read the function symbols of a 64-bit ELF file of this machine's byte order. False (and *s
 * empty) for anything else: a missing file, not ELF, no symbol table. */
bool elf_symbols_load(const char *path, struct elf_symbols *s);
/* The function holding ELF address addr: the nearest symbol at or below it (within its size
 * when the size is known), or NULL. */
const struct elf_symbol *elf_symbols_find(const struct elf_symbols *s, uint64_t addr);
void elf_symbols_free(struct elf_symbols *s);

#endif
