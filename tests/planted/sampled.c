/*
 * sampled.c — heap bugs that happen again and again, for libstrata's sampled guard
 * (guard_sample=N): only a sampled block faults, so each bug repeats until one is. argv[1] names
 * the bug; "clean" uses every entry point correctly, in threads and across a fork, and prints
 * "ok". Prints "not caught" when the loop ends without the bug being seen.
 */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 2000000

static volatile char sink;

__attribute__((noinline)) static char *make_block(size_t n) { return malloc(n); }
__attribute__((noinline)) static void drop_block(char *p) { free(p); }
__attribute__((noinline)) static void write_at(char *p, long i) { p[i] = 'X'; }

static int fail(const char *what) {
    printf("FAIL: %s\n", what);
    return 1;
}

static void *churn(void *arg) {
    uintptr_t seed = (uintptr_t)arg;
    char *keep[64] = {0};
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t n = 1 + (seed >> 33) % 700, k = (seed >> 20) % 64;
        if (keep[k]) {
            if (keep[k][0] != (char)k) return (void *)1;
            free(keep[k]);
        }
        keep[k] = malloc(n);
        memset(keep[k], (int)k, n);
    }
    for (int k = 0; k < 64; k++) free(keep[k]);
    return NULL;
}

static int clean(void) {
    for (int i = 0; i < 20000; i++) {
        size_t n = 1 + (size_t)i % 3000;
        char *p = calloc(1, n);
        for (size_t j = 0; j < n; j++)
            if (p[j]) return fail("calloc not zeroed");
        if (malloc_usable_size(p) < n) return fail("usable size below the request");
        memset(p, 7, n);
        char *q = realloc(p, n + 100);
        for (size_t j = 0; j < n; j++)
            if (q[j] != 7) return fail("realloc lost data");
        q = realloc(q, n / 2 + 1);
        if (q[0] != 7) return fail("realloc (shrink) lost data");
        void *a;
        if (posix_memalign(&a, 64, n) || (uintptr_t)a % 64) return fail("posix_memalign");
        free(a);
        char *z = malloc(0); /* a unique pointer, freed like any other */
        if (!z) return fail("malloc(0)");
        free(z);
        free(q);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r) return fail("a thread saw its data change");
    }
    pid_t pid = fork();
    if (pid == 0) _exit(churn((void *)9) != NULL);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) return fail("the forked child");
    puts("ok");
    return 0;
}

/* A program with a SIGSEGV handler of its own (as runtimes with their own faults have): it keeps
 * getting its faults, before and after the sampled guard has set up its handler, and the sampled
 * guard still stops a use after free after that ("own-handler-uaf"). */
static sigjmp_buf back;
static volatile int faults;
static void own_handler(int sig) {
    (void)sig;
    faults++;
    siglongjmp(back, 1);
}

static void fault_three_times(void) {
    for (int i = 0; i < 3; i++)
        if (!sigsetjmp(back, 1)) *(volatile int *)(uintptr_t)8 = 1;
}

static int own_handler_kept(void) {
    signal(SIGSEGV, own_handler);
    fault_three_times();
    for (int i = 0; i < 200000; i++) drop_block(make_block(32 + (size_t)i % 100));
    fault_three_times();
    if (faults != 6) return fail("the program's own SIGSEGV handler lost its faults");
    puts("ok");
    return 0;
}

static int own_handler_then_uaf(void) {
    if (own_handler_kept()) return 1;
    for (long i = 0; i < ROUNDS; i++) {
        char *p = make_block(24 + (size_t)i % 200);
        drop_block(p);
        if (!sigsetjmp(back, 1)) write_at(p, 8); /* the program's handler would come back here */
    }
    printf("not caught: own-handler-uaf (%d faults went to the program's handler)\n", faults - 6);
    return 0;
}

int main(int argc, char **argv) {
    const char *bug = argc > 1 ? argv[1] : "clean";
    if (!strcmp(bug, "clean")) return clean();
    if (!strcmp(bug, "own-handler")) return own_handler_kept();
    if (!strcmp(bug, "own-handler-uaf")) return own_handler_then_uaf();
    for (long i = 0; i < ROUNDS; i++) {
        char *p = make_block(24 + (size_t)i % 200);
        if (!strcmp(bug, "use-after-free")) {
            drop_block(p);
            write_at(p, 8);
            continue;
        }
        if (!strcmp(bug, "overflow")) write_at(p, (long)malloc_usable_size(p) + 20);
        else if (!strcmp(bug, "underflow")) write_at(p, -1);
        else if (!strcmp(bug, "double-free")) drop_block(p);
        else if (!strcmp(bug, "read-after-free")) {
            drop_block(p);
            sink = p[3];
            continue;
        }
        drop_block(p);
    }
    printf("not caught: %s\n", bug);
    return 0;
}
