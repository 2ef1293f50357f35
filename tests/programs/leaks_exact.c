/*
 * leaks_exact.c — strata leaks tells lost from reachable as valgrind memcheck does: each case of
 * tests/planted/lostfound.c runs under `strata leaks` and under `valgrind --leak-check=full`, and
 * strata's blocks lost must be memcheck's definitely plus indirectly lost, its blocks reachable
 * memcheck's still reachable plus possibly lost (a block pointed into, not at its start: strata
 * keeps it reachable, memcheck says "possibly"). The case of a pointer left in a dead stack frame
 * (lost) is the one a scan of the whole stack, or of the scan's own frames, gets wrong. Without
 * valgrind, one skip line.
 */
#include "harness.h"

#include <stdbool.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LOSTFOUND STRATA_ROOT "/build/tests/planted/lostfound"

static char text[1 << 16];

typedef struct {
    long lost, reachable;
} split;

/* strata's summary: "strata: leaks: ... lost in N block(s), ... still reachable in M block(s)" */
static bool strata_split(const char *c, split *s, th_result *r) {
    *r = th_exec_file((char *[]){STRATA, "leaks", "-O", TH_OUTFILE, "--", LOSTFOUND, (char *)c, NULL}, text, sizeof text);
    const char *l = strstr(text, "strata: leaks: ");
    const char *lost = l ? strstr(l, " lost in ") : NULL, *reach = l ? strstr(l, " still reachable in ") : NULL;
    return lost && reach && sscanf(lost, " lost in %ld", &s->lost) == 1 &&
           sscanf(reach, " still reachable in %ld", &s->reachable) == 1;
}

static long valgrind_blocks(const char *kind) {
    const char *p = strstr(text, kind);
    long bytes, blocks;
    if (!p) return strstr(text, "no leaks are possible") ? 0 : -1;
    p += strlen(kind);
    return sscanf(p, " %ld bytes in %ld blocks", &bytes, &blocks) == 2 ? blocks : -1;
}

static bool valgrind_split(const char *c, split *s, th_result *r) {
    char file[] = "/tmp/strata-vg-XXXXXX", opt[64];
    int fd = mkstemp(file);
    if (fd < 0) return false;
    close(fd);
    snprintf(opt, sizeof opt, "--log-file=%s", file);
    *r = th_exec((char *[]){"valgrind", "--leak-check=full", opt, LOSTFOUND, (char *)c, NULL}, NULL);
    text[0] = '\0';
    fd = open(file, O_RDONLY);
    if (fd >= 0) {
        ssize_t k = read(fd, text, sizeof text - 1);
        text[k > 0 ? k : 0] = '\0';
        close(fd);
    }
    unlink(file);
    /* the LEAK SUMMARY's lines, "definitely lost: 48 bytes in 1 blocks" */
    long def = valgrind_blocks("definitely lost:"), ind = valgrind_blocks("indirectly lost:"),
         pos = valgrind_blocks("possibly lost:"), still = valgrind_blocks("still reachable:");
    if (def < 0 || ind < 0 || pos < 0 || still < 0) return false;
    s->lost = def + ind;
    s->reachable = still + pos;
    return true;
}

static bool have_valgrind(void) {
    th_result r = th_exec((char *[]){"valgrind", "--version", NULL}, NULL);
    return r.exited && r.code == 0 && !strncmp(r.out, "valgrind", 8);
}

/* What each case must come to (memcheck's figures checked as well: the planted program is right). */
static const struct {
    const char *name;
    split want;
} cases[] = {
    {"dead_frame", {1, 0}}, {"global", {0, 1}},   {"main_local", {0, 1}}, {"indirect", {2, 0}},
    {"cycle", {2, 0}},      {"interior", {0, 1}}, {"mixed", {5, 3}},
};

static void lost_and_reachable_as_memcheck_says(void) {
    if (!have_valgrind()) SKIP("valgrind is not installed: strata's split not compared with memcheck's");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *c = cases[i].name;
        split st = {-1, -1}, vg = {-1, -1};
        th_result r;
        bool ok = strata_split(c, &st, &r);
        CHECKF(ok && r.exited && r.code == 0, "%s: strata leaks: code %d, no summary: %.1500s %.300s", c, r.code, text, r.err);
        ok = valgrind_split(c, &vg, &r);
        CHECKF(ok && r.exited && r.code == 0, "%s: valgrind: code %d, no leak summary: %.1500s", c, r.code, text);
        CHECKF(vg.lost == cases[i].want.lost && vg.reachable == cases[i].want.reachable,
               "%s: memcheck says %ld lost, %ld reachable (the planted case is not what it says)", c, vg.lost, vg.reachable);
        CHECKF(st.lost == vg.lost && st.reachable == vg.reachable,
               "%s: strata says %ld blocks lost and %ld reachable, memcheck %ld lost (definitely + indirectly) and "
               "%ld reachable (still reachable + possibly lost)", c, st.lost, st.reachable, vg.lost, vg.reachable);
    }
}

int main(void) {
    RUN(lost_and_reachable_as_memcheck_says);
    return 0;
}
