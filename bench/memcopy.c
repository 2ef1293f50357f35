/*
 * memcopy.c — a memcpy-heavy loop, for what libstrata-secure.so's guarded copies cost
 * (src/api/memops.c; SECURITY.md, "What the checks cost"): ROUNDS (1000000) rounds of memcpy,
 * memmove and memset of 8 to 1024 bytes between 16 blocks of the heap and into a stack buffer,
 * the blocks allocated once. Built with -fno-builtin, so that every copy is a call. Instructions:
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null build/bench/memcopy
 * with LD_PRELOAD=lib/libstrata-secure.so (and STRATA_OPTIONS=secure=0), or nothing preloaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000000;
    static const size_t sizes[8] = {8, 16, 24, 32, 64, 128, 256, 1024};
    char *blocks[16], stack[1024];
    for (int i = 0; i < 16; i++) blocks[i] = malloc(1024 + i * 16);
    memset(stack, 1, sizeof stack);
    unsigned long sum = 0;
    for (long r = 0; r < rounds; r++) {
        size_t n = sizes[r & 7];
        char *a = blocks[r & 15], *b = blocks[(r >> 4) & 15];
        memcpy(a, b, n);
        memmove(a + 1, a, n - 1);
        memset(b, (int)r, n);
        memcpy(stack, a, n);
        sum += (unsigned char)stack[n - 1];
    }
    printf("%lu\n", sum);
    return 0;
}
