/*
 * case.h — what every program of the security corpus shares.
 *
 * A case program is run as `PROGRAM VARIANT SIZE` (SIZE: small = 8 B, medium = 4 KiB, large =
 * 256 KiB; some categories give the third word another meaning, see corpus.h). It commits one
 * misuse, gives the allocator a chance to notice it (more mallocs and frees of the same size),
 * then reports with one of:
 *
 *   case_missed(what)   prints "NOT CAUGHT: what", exit 0: the misuse went unnoticed
 *   case_caught(why)    prints "CAUGHT: why", exit 3: the program itself saw the allocator refuse
 *                       (NULL and ENOMEM, a block not handed out again, freed data wiped)
 *   case_broken(why)    prints "SETUP: why", exit 2: the case could not even be set up
 *
 * An allocator that notices the misuse usually kills the process (abort, or a fault) before any
 * of these. Output uses write(2) only: stdio would allocate from the heap being tested.
 */
#ifndef STRATA_SECURITY_CASE_H
#define STRATA_SECURITY_CASE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CASE_MARKER "NOT CAUGHT"
enum { CASE_EXIT_CAUGHT = 3, CASE_EXIT_BROKEN = 2 };

static void case_say(const char *tag, const char *what) {
    char line[256];
    size_t n = 0;
    for (const char *s = tag; *s && n < sizeof line - 2; s++) line[n++] = *s;
    for (const char *s = ": "; *s && n < sizeof line - 2; s++) line[n++] = *s;
    for (const char *s = what; *s && n < sizeof line - 2; s++) line[n++] = *s;
    line[n++] = '\n';
    if (write(1, line, n) < 0) _exit(4);
}
__attribute__((noreturn, unused)) static void case_missed(const char *what) {
    case_say(CASE_MARKER, what);
    _exit(0);
}
__attribute__((noreturn, unused)) static void case_caught(const char *why) {
    case_say("CAUGHT", why);
    _exit(CASE_EXIT_CAUGHT);
}
__attribute__((noreturn, unused)) static void case_broken(const char *why) {
    case_say("SETUP", why);
    _exit(CASE_EXIT_BROKEN);
}

/* small | medium | large -> bytes; 0 for anything else */
__attribute__((unused)) static size_t case_size(const char *s) {
    if (!strcmp(s, "small")) return 8;
    if (!strcmp(s, "medium")) return 4096;
    if (!strcmp(s, "large")) return 256 * 1024;
    return 0;
}

/* The SIZE of `PROGRAM VARIANT SIZE` in bytes; a case run any other way is broken. */
__attribute__((unused)) static size_t case_args(int argc, char **argv) {
    size_t n = argc == 3 ? case_size(argv[2]) : 0;
    if (!n) case_broken("usage: PROGRAM VARIANT small|medium|large");
    return n;
}

/* Keeps the compiler from deciding a result is unused. */
static void *volatile case_sink;
static volatile unsigned char case_byte_sink;

__attribute__((unused)) static void *case_malloc(size_t n) {
    void *p = malloc(n);
    if (!p) case_broken("malloc returned NULL");
    case_sink = p;
    return p;
}

/* The secret a block holds: not one repeated byte, so that it cannot be mistaken for a fill. */
static inline unsigned char case_secret(size_t i, unsigned seed) {
    return (unsigned char)(0x5c + seed + i * 7);
}
__attribute__((unused)) static void case_fill(void *p, size_t n, unsigned seed) {
    unsigned char *c = (unsigned char *)p;
    for (size_t i = 0; i < n; i++) c[i] = case_secret(i, seed);
}
/* 1 when all n bytes at p are the same byte (zeroed or poisoned), 0 otherwise. */
__attribute__((unused)) static int case_uniform(const volatile unsigned char *p, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (p[i] != p[0]) return 0;
    return 1;
}

/* Give the allocator a look at the heap after a misuse: blocks of size n taken and given back
 * (a checking allocator verifies canaries, free lists and freed contents here), and some of
 * other sizes. */
__attribute__((unused)) static void case_churn(size_t n) {
    enum { K = 16 };
    void *b[K];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < K; i++) {
            b[i] = malloc(n);
            if (b[i]) memset(b[i], 0x11, n < 64 ? n : 64);
        }
        for (int i = 0; i < K; i++) free(b[i]);
    }
    for (int i = 0; i < K; i++) b[i] = malloc((size_t)(i + 1) * 24);
    for (int i = K - 1; i >= 0; i--) free(b[i]);
    malloc_trim(0);
}

#endif
