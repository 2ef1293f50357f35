/*
 * profiled.c — a program with known allocation sites, for strata profile (issue 18): each site
 * allocates blocks of one size, frees some and keeps the rest live, so that the live bytes of
 * each are known exactly:
 *
 *   site_a   8 MiB live in 100-byte blocks    (twice as many allocated, every other one freed)
 *   site_b  16 MiB live in 4 KiB blocks       (as many again allocated and freed)
 *   site_c  4.1 MiB live in 300 KiB blocks    (huge blocks: a mapping each; 6 more freed)
 *   churn   nothing live                      (32 MiB allocated and freed in 1 KiB blocks)
 *
 * Then it prints "ready PID" and its exact figures ("site_a BYTES" ...), and waits until its
 * stdin closes; with the argument "exit" it exits at once instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A_SIZE 100
#define A_LIVE 83886 /* 8 MiB */
#define B_SIZE 4096
#define B_LIVE 4096 /* 16 MiB */
#define C_SIZE (300 << 10)
#define C_LIVE 14

static void *a[2 * A_LIVE], *b[2 * B_LIVE], *c[C_LIVE + 6];

__attribute__((noinline)) static void *site_a(void) { return malloc(A_SIZE); }
__attribute__((noinline)) static void *site_b(void) { return malloc(B_SIZE); }
__attribute__((noinline)) static void *site_c(void) { return malloc(C_SIZE); }
__attribute__((noinline)) static void *churn(void) { return malloc(1024); }

static void touch(void *p, size_t n) {
    if (!p) {
        fprintf(stderr, "profiled: out of memory\n");
        exit(1);
    }
    memset(p, 1, n < 64 ? n : 64);
}

int main(int argc, char **argv) {
    for (int i = 0; i < 2 * A_LIVE; i++) touch(a[i] = site_a(), A_SIZE);
    for (int i = 0; i < 2 * B_LIVE; i++) touch(b[i] = site_b(), B_SIZE);
    for (int i = 0; i < C_LIVE + 6; i++) touch(c[i] = site_c(), C_SIZE);
    for (int i = 0; i < 32 << 10; i++) {
        void *p = churn();
        touch(p, 1024);
        free(p);
    }
    for (int i = 0; i < 2 * A_LIVE; i += 2) free(a[i]);
    for (int i = B_LIVE; i < 2 * B_LIVE; i++) free(b[i]);
    for (int i = C_LIVE; i < C_LIVE + 6; i++) free(c[i]);
    printf("ready %d\nsite_a %d\nsite_b %d\nsite_c %d\n", (int)getpid(), A_LIVE * A_SIZE, B_LIVE * B_SIZE,
           C_LIVE * C_SIZE);
    fflush(stdout);
    if (argc > 1 && !strcmp(argv[1], "exit")) return 0;
    char ch;
    while (read(0, &ch, 1) > 0) {
    }
    return 0;
}
