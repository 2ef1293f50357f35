/*
 * heapbugs.c — one heap bug per run, chosen by argv[1], for strata guard. Prints "not caught"
 * when the bug went unnoticed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile char sink;

__attribute__((noinline)) static char *make_block(size_t n) { return malloc(n); }
__attribute__((noinline)) static void drop_block(char *p) { free(p); }

int main(int argc, char **argv) {
    const char *bug = argc > 1 ? argv[1] : "none";
    char *p = make_block(24);
    if (!strcmp(bug, "overflow")) p[40] = 1;            /* lands on the guard page */
    else if (!strcmp(bug, "overflow1")) p[24] = 0;      /* in the alignment slack: seen at free */
    else if (!strcmp(bug, "underflow")) sink = p[-1];   /* needs --underflow */
    else if (!strcmp(bug, "use-after-free")) {
        drop_block(p);
        sink = p[3];
    } else if (!strcmp(bug, "double-free")) {
        drop_block(p);
        drop_block(p);
    } else if (!strcmp(bug, "invalid-free")) {
        char local[16];
        free(local + sink);
    } else if (!strcmp(bug, "memcpy")) {
        char src[64] = {0};
        memcpy(p, src, sizeof src);
    } else if (!strcmp(bug, "late-use-after-free")) { /* out of the quarantine by the time it is read */
        drop_block(p);
        for (int i = 0; i < 64; i++) drop_block(make_block(6000));
        sink = p[3];
    } else if (!strcmp(bug, "slack-at-exit")) { /* in the alignment slack, and never freed */
        p[24] = 'X';
        printf("not caught: %s\n", bug);
        return 0;
    }
    drop_block(p);
    printf("not caught: %s\n", bug);
    return 0;
}
