/*
 * leaks.c — `strata leaks [OPTIONS] [--] CMD ARGS...`: run CMD under libstrata-diag.so with
 * diag=leaks and, once it has exited, list the blocks it never freed, grouped by the call stack
 * that allocated them, largest first: lost ones (nothing in the process pointed to them any more)
 * apart from those still reachable from its globals, stacks and registers, then a summary.
 *
 *   -o, --options OPTIONS   more STRATA_OPTIONS for CMD (-v: verbose=1)
 *   -O, --output FILE       the list goes to FILE instead of stderr
 *   --depth N               frames recorded per stack (1 to 64, default 16)
 *   --sample BYTES          take a stack once per BYTES allocated (faster; leaks from blocks
 *                           without a stack are counted, not placed)
 *   --lost                  list only lost blocks (reachable ones in the summary)
 *
 * The exit status is CMD's (128+N when signal N killed it).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diagcmd.h"

static void bytes_text(uint64_t n, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(buf, cap, "%llu bytes", (unsigned long long)n);
        return;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, cap, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)n);
}

static void print_leak(struct diag_cmd *c, const struct dump_leak *l) {
    char b[64];
    bytes_text(l->bytes, b, sizeof b);
    fprintf(c->out, "%s: %s in %llu block%s, allocated at\n", l->kind == DUMP_LOST ? "lost" : "reachable",
            b, (unsigned long long)l->blocks, l->blocks == 1 ? "" : "s");
    const struct dump_stack *st = dump_stack(&c->dump, l->stack);
    if (st) symbols_print_stack(c->out, c->sym, st, "    ", 0);
    else fprintf(c->out, "    (stack %llu not in the record)\n", (unsigned long long)l->stack);
    fputc('\n', c->out);
}

static void summary(struct diag_cmd *c) {
    uint64_t lb, ln, rb, rn, v, nostack[4] = {0};
    dump_leak_sum(&c->dump, DUMP_LOST, &lb, &ln);
    dump_leak_sum(&c->dump, DUMP_REACHABLE, &rb, &rn);
    dump_total(&c->dump, "lost_nostack_blocks", &nostack[0]);
    dump_total(&c->dump, "lost_nostack_bytes", &nostack[1]);
    dump_total(&c->dump, "reachable_nostack_blocks", &nostack[2]);
    dump_total(&c->dump, "reachable_nostack_bytes", &nostack[3]);
    ln += nostack[0], lb += nostack[1], rn += nostack[2], rb += nostack[3];
    char lost[64], reach[64], req[64];
    bytes_text(lb, lost, sizeof lost);
    bytes_text(rb, reach, sizeof reach);
    fprintf(c->out, "strata: leaks: %s lost in %llu block%s, %s still reachable in %llu block%s\n", lost,
            (unsigned long long)ln, ln == 1 ? "" : "s", reach, (unsigned long long)rn, rn == 1 ? "" : "s");
    uint64_t allocs = 0, frees = 0, bytes = 0, live = 0, live_blocks = 0;
    dump_total(&c->dump, "allocs", &allocs);
    dump_total(&c->dump, "frees", &frees);
    dump_total(&c->dump, "bytes", &bytes);
    dump_total(&c->dump, "live", &live);
    dump_total(&c->dump, "live_blocks", &live_blocks);
    bytes_text(bytes, req, sizeof req);
    fprintf(c->out, "strata: leaks: %llu allocations, %llu frees, %s requested; at exit %llu blocks live\n",
            (unsigned long long)allocs, (unsigned long long)frees, req, (unsigned long long)live_blocks);
    if (dump_total(&c->dump, "sample_bytes", &v) && v) {
        uint64_t tracked = 0;
        dump_total(&c->dump, "tracked", &tracked);
        fprintf(c->out, "strata: leaks: sampled: %llu of the allocations have a stack (one per %llu bytes); "
                        "%llu lost and %llu reachable blocks without one are counted above, not listed\n",
                (unsigned long long)tracked, (unsigned long long)v, (unsigned long long)nostack[0],
                (unsigned long long)nostack[2]);
    }
    if (c->dump.end != DUMP_END_EXIT)
        fprintf(c->out, "strata: leaks: %s did not exit normally: no leak scan, only what was recorded\n",
                c->cmd[0]);
}

int cmd_leaks(int argc, char **argv) {
    struct diag_cmd c = {.sub = "leaks"};
    bool lost_only = false;
    for (int i = 1; i < argc && !c.cmd; i++) {
        const char *v;
        if (diag_arg_common(argc, argv, &i, &c)) continue;
        if ((v = cli_option_value(argc, argv, &i, NULL, "--sample"))) {
            diag_arg_number("leaks", "--sample", v, 1, 1L << 40);
            diag_cmd_option(&c, "diag_sample=%s", v);
        } else if (!strcmp(argv[i], "--lost")) {
            lost_only = true;
        } else {
            cli_unknown_option(argv[i]);
        }
    }
    diag_args_done(&c);
    if (diag_cmd_run(&c, "leaks")) {
        size_t n;
        struct dump_leak *l = dump_leaks_sorted(&c.dump, &n);
        for (size_t i = 0; i < n; i++)
            if (!lost_only || l[i].kind == DUMP_LOST) print_leak(&c, &l[i]);
        free(l);
        summary(&c);
    }
    int status = c.status;
    diag_cmd_done(&c);
    return status;
}
