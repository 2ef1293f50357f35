/*
 * leaky.c — a program with known leaks, for strata leaks and strata report.
 *
 *   lose_blocks        10 blocks of 100 bytes, pointers dropped: lost
 *   lose_cycle         two blocks pointing at each other, nothing else at them: lost
 *   keep_list          a list of 5 nodes hanging off a global: reachable
 *   keep_interior      a block only pointed into (8 bytes in) from a global: reachable
 *   lost_in_thread     a thread that allocates 3 blocks of 333 bytes and forgets them: lost
 *   lose_via_a, _b     one helper called from two functions at the same depth, interleaved:
 *                      300 blocks of 24 bytes lost from a, 500 of 40 from b (each stack its own)
 *   churn              many blocks allocated and freed (no leak), some through realloc
 *
 * argv[1] = "crash" ends it with SIGSEGV after the leaks are made (the record must survive).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    char pad[40];
};

static struct node *list;
static char *interior;

__attribute__((noinline)) static void lose_blocks(void) {
    for (int i = 0; i < 10; i++) {
        char *volatile p = malloc(100);
        p[0] = 1;
    }
}

__attribute__((noinline)) static void lose_cycle(void) {
    void **a = malloc(64), **b = malloc(64);
    *a = b;
    *b = a;
}

__attribute__((noinline)) static void keep_list(void) {
    for (int i = 0; i < 5; i++) {
        struct node *n = calloc(1, sizeof *n);
        n->next = list;
        list = n;
    }
}

__attribute__((noinline)) static void keep_interior(void) { interior = (char *)malloc(256) + 8; }

static void *thread_body(void *arg) {
    for (int i = 0; i < 3; i++) {
        char *volatile p = malloc(333);
        p[0] = 1;
    }
    return arg;
}

__attribute__((noinline)) static void lost_in_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, thread_body, NULL);
    pthread_join(t, NULL);
}

__attribute__((noinline)) static void *helper(size_t n) {
    char *p = malloc(n);
    p[0] = 1;
    return p;
}
__attribute__((noinline)) static void lose_via_a(void) { *(void *volatile *)helper(24) = NULL; }
__attribute__((noinline)) static void lose_via_b(void) { *(void *volatile *)helper(40) = NULL; }

__attribute__((noinline)) static void churn(void) {
    for (int i = 0; i < 20000; i++) {
        char *s = malloc(16 + i % 200);
        s = realloc(s, 300 + i % 50);
        free(s);
    }
    char *d = strdup("not a leak");
    free(d);
}

int main(int argc, char **argv) {
    lose_blocks();
    lose_cycle();
    keep_list();
    keep_interior();
    lost_in_thread();
    for (int i = 0; i < 500; i++) {
        if (i < 300) lose_via_a();
        lose_via_b();
    }
    churn();
    printf("leaky: done\n");
    fflush(stdout);
    if (argc > 1 && !strcmp(argv[1], "crash")) raise(SIGSEGV);
    return 3; /* an exit status of its own, to pass through */
}
