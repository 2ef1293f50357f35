/*
 * lostfound.c — one planted case per run (argv[1]), each a few blocks whose fate at exit valgrind
 * memcheck knows: strata leaks must class them as memcheck does (tests/programs/leaks_exact.c).
 *
 *   dead_frame   a function mallocs, keeps the pointer in a local, returns without freeing: the
 *                last copy is a stale word in a dead frame, below the stack pointer: lost
 *   global       a block pointed to from a global: reachable
 *   main_local   a block pointed to from a local of main, in scope when main calls exit: reachable
 *   indirect     a lost block holding the only pointer to another: both lost (memcheck: one
 *                definitely, one indirectly)
 *   cycle        two blocks pointing at each other, nothing else at them: both lost
 *   interior     a block pointed into (16 bytes in) from a global only: memcheck's "possibly
 *                lost"; strata counts it reachable (a pointer into a block keeps it)
 *   mixed        all of the above in one run
 *
 * The lost cases allocate below a gap of a few KiB of stack (deep): the stale copies of their
 * pointers lie well below the frames of exit, where the exit hook's own frames go. No stdio: its
 * buffer is a block of its own, which memcheck's run frees (__libc_freeres) and strata's does not.
 * Built with -O0 (tests/tests.mk) and the pointers kept in volatile locals.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GAP 4096

static void *volatile global_ptr;
static char *volatile interior_ptr;

__attribute__((noinline)) static void lose_here(void) {
    void *volatile p = malloc(48);
    memset(p, 1, 48);
}

__attribute__((noinline)) static void lose_two(void) {
    void **volatile a = malloc(64);
    a[0] = malloc(32); /* only a holds it */
}

__attribute__((noinline)) static void lose_cycle(void) {
    void **volatile a = malloc(80), **volatile b = malloc(80);
    a[0] = b;
    b[0] = a;
}

/* fn, called below GAP bytes of stack */
__attribute__((noinline)) static void deep(void (*fn)(void)) {
    volatile char gap[GAP];
    gap[0] = 0;
    gap[GAP - 1] = 0;
    fn();
}

/* Overwrite the registers and the shallow stack with something else. */
__attribute__((noinline)) static void settle(void) {
    volatile char mark[512];
    memset((char *)mark, 0, sizeof mark);
    write(1, "", 0);
}

static int is(const char *a, const char *b) { return !strcmp(a, b) || !strcmp(a, "mixed"); }

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "mixed";
    void *volatile keep = NULL;
    if (is(c, "dead_frame")) deep(lose_here);
    if (is(c, "global")) global_ptr = malloc(24);
    if (is(c, "main_local")) keep = malloc(40);
    if (is(c, "indirect")) deep(lose_two);
    if (is(c, "cycle")) deep(lose_cycle);
    if (is(c, "interior")) interior_ptr = (char *)malloc(96) + 16;
    settle();
    write(1, "lostfound: done\n", 16);
    exit(keep ? 0 : 0); /* main's frame (keep) still live */
}
