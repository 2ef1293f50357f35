/*
 * symbols.h — the return addresses of a dump's stacks as functions and source lines.
 *
 * symbols_load resolves every address of every stack at once: each address is placed in its
 * module (the dump's module records), and each module's addresses go to one run of
 *   addr2line -f -C -e MODULE
 * (STRATA_ADDR2LINE names another program). Addresses it leaves as ?? (or all of them, without
 * addr2line) are named from the module's ELF symbol tables as func+0xOFF; an address no table
 * covers is shown as module+0xOFF.
 */
#ifndef STRATA_TOOLS_SYMBOLS_H
#define STRATA_TOOLS_SYMBOLS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dump.h"

struct sym_frame {
    uint64_t pc;
    const char *module; /* the module's file name (no directory), or NULL: in no module */
    uint64_t offset;    /* pc - bias: the return address's ELF address in its module */
    const char *func;   /* demangled function name, or NULL */
    bool func_start;    /* func came from a symbol table: func_off is pc's distance from its start */
    uint64_t func_off;
    const char *file; /* source file (relative to the current directory when under it), or NULL */
    unsigned line;
};

struct symbols;

/* Resolve all of d's stacks (d must outlive the result). Never fails: what cannot be resolved
 * stays as module+offset. */
struct symbols *symbols_load(const struct dump *d);
void symbols_free(struct symbols *s);

/* The frame of a return address (one of the dump's stacks, or any other: resolved then, without
 * addr2line). The pointer is valid until symbols_free. */
const struct sym_frame *symbols_frame(struct symbols *s, uint64_t pc);

/* What a frame is, in words:
 *   make_node (tests/leaky.c:12)        function and line
 *   make_node+0x1f (leaky)              function from the symbol table, no line
 *   make_node (leaky+0x1234)            function from addr2line, no line
 *   leaky+0x1234 (tests/leaky.c:12)     a line, no function
 *   libfoo.so+0x1234                    no function
 *   ??                                  in no module */
void sym_frame_text(const struct sym_frame *f, char *buf, size_t cap);
/* A short name for the frame (flame graph): the function, else module+0xOFF, else ??. */
void sym_frame_label(const struct sym_frame *f, char *buf, size_t cap);

/* Print a stack, a line per frame, innermost first, at most max_frames (0: all):
 *       #0 0x55d0c1a2b3c4 in make_node (tests/leaky.c:12)
 *       #1 0x7f12a0429d8f in libfoo.so+0x1234
 * indent: the text before "#". */
void symbols_print_stack(FILE *out, struct symbols *s, const struct dump_stack *st, const char *indent,
                         size_t max_frames);

#endif
