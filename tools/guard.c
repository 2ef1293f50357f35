/*
 * guard.c — `strata guard [OPTIONS] [--] CMD ARGS...`: run CMD under libstrata-diag.so with
 * diag=guard: every block ends against an inaccessible page (or starts after one), freed blocks
 * stay inaccessible for a while, and the bytes between a block's end and its page are checked
 * when it is freed. The first overflow, underflow, use after free, double or invalid free stops
 * CMD; the library says what happened in one line, and this command adds the stacks: where it
 * happened, where the block was allocated and where it was freed.
 *
 *   -o, --options OPTIONS   more STRATA_OPTIONS for CMD (-v: verbose=1)
 *   -O, --output FILE       the stacks go to FILE instead of stderr
 *   --depth N               frames recorded per stack (1 to 64, default 16)
 *   --sample N              guard one block in N (fewer mappings, faster; misses the rest)
 *   --align N               a block's end is aligned to N bytes against its page (a power of two,
 *                           default 16); 1 puts it exactly at the page, so a write even one byte
 *                           past faults where it happens (malloc's 16-byte alignment given up)
 *   --underflow             the inaccessible page before each block instead of after it
 *   --quarantine SIZE       address space of freed blocks kept inaccessible (default 256m)
 *
 * A write into the bytes between a block's end and its page (alignment leaves up to 15) is seen
 * when the block is freed, or at exit for a block never freed (with the stack that allocated it).
 * The exit status is CMD's: 128+11 after a fault, 128+6 after a bad free.
 */
#define _GNU_SOURCE
#include <string.h>

#include "cli.h"
#include "diagcmd.h"

static void stack_of(struct diag_cmd *c, const char *what, uint64_t id) {
    const struct dump_stack *st = id ? dump_stack(&c->dump, id) : NULL;
    if (!st) return;
    fprintf(c->out, "  %s\n", what);
    symbols_print_stack(c->out, c->sym, st, "    ", 0);
}

void guard_explain(struct diag_cmd *c) {
    const struct dump_error *e = &c->dump.error;
    fprintf(c->out, "strata: %s: %s at 0x%llx", strcmp(c->dump.mode, "sampled") ? "guard" : "guard_sample", e->kind,
            (unsigned long long)e->addr);
    if (strcmp(e->kind, "invalid-free") != 0)
        fprintf(c->out, " (%s, offset %lld in the %llu-byte block at 0x%llx)",
                !strcmp(e->access, "exit") ? "found at exit, the block never freed" : e->access, (long long)e->off,
                (unsigned long long)e->size, (unsigned long long)(e->addr - (uint64_t)e->off));
    fputc('\n', c->out);
    stack_of(c, !strcmp(e->access, "free") ? "freed at" : "accessed at", e->at);
    stack_of(c, "the block was allocated at", e->alloc);
    stack_of(c, !strcmp(e->kind, "double-free") ? "and first freed at" : "and freed at", e->free);
}

int cmd_guard(int argc, char **argv) {
    struct diag_cmd c = {.sub = "guard"};
    for (int i = 1; i < argc && !c.cmd; i++) {
        const char *v;
        if (diag_arg_common(argc, argv, &i, &c)) continue;
        if ((v = cli_option_value(argc, argv, &i, NULL, "--sample"))) {
            diag_arg_number("guard", "--sample", v, 1, 1000000);
            diag_cmd_option(&c, "guard_sample=%s", v);
        } else if ((v = cli_option_value(argc, argv, &i, NULL, "--quarantine"))) {
            diag_cmd_option(&c, "quarantine=%s", v);
        } else if ((v = cli_option_value(argc, argv, &i, NULL, "--align"))) {
            long a = diag_arg_number("guard", "--align", v, 1, 4096);
            if (a & (a - 1)) cli_usage("guard: --align takes a power of two, not '%s'", v);
            diag_cmd_option(&c, "guard_align=%s", v);
        } else if (!strcmp(argv[i], "--underflow")) {
            diag_cmd_option(&c, "%s", "guard_underflow=1");
        } else {
            cli_unknown_option(argv[i]);
        }
    }
    diag_args_done(&c);
    if (diag_cmd_run(&c, "guard")) {
        uint64_t unguarded = 0;
        if (c.dump.has_error) guard_explain(&c);
        else if (c.dump.end == DUMP_END_EXIT)
            fprintf(c.out, "strata: guard: no heap misuse seen in %s\n", c.cmd[0]);
        if (dump_total(&c.dump, "unguarded", &unguarded) && unguarded)
            fprintf(c.out, "strata: guard: %llu blocks had no guard (a limit of the guard was reached: "
                           "262144 guarded blocks at once, or vm.max_map_count without guard markers; "
                           "--sample N guards fewer)\n", (unsigned long long)unguarded);
    }
    int status = c.status;
    diag_cmd_done(&c);
    return status;
}
