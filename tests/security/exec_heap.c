/*
 * exec_heap — running code placed in a heap block.
 *
 *   ret   a block of SIZE bytes starting with a `ret` instruction, called as a function
 *
 * Caught: the call faults (the heap is not executable).
 */
#include "case.h"

int main(int argc, char **argv) {
    size_t n = case_args(argc, argv);
    if (strcmp(argv[1], "ret")) case_broken("unknown variant");
    unsigned char *p = case_malloc(n);
    memset(p, 0, n);
#if defined(__x86_64__) || defined(__i386__)
    p[0] = 0xc3;
#elif defined(__aarch64__)
    static const unsigned char ret[4] = {0xc0, 0x03, 0x5f, 0xd6};
    memcpy(p, ret, sizeof ret);
#else
    case_broken("no ret instruction known for this machine");
#endif
    __builtin___clear_cache((char *)p, (char *)p + 16);
    void (*fn)(void);
    memcpy(&fn, &p, sizeof fn);
    fn();
    case_missed("code in the heap ran");
}
