/*
 * early.c — allocation before main, from constructors, through dlsym/dlerror/dlopen, and after
 * main returns (atexit handlers and destructors), all on strata.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>

#include "harness.h"
#include "strata.h"

static char *from_constructor;
static size_t constructor_usable;

__attribute__((constructor(101))) static void early_constructor(void) {
    from_constructor = malloc(123);
    if (from_constructor) {
        strcpy(from_constructor, "made before main");
        constructor_usable = malloc_usable_size(from_constructor);
    }
}

static void constructor_allocation_survives(void) {
    CHECK(from_constructor != NULL);
    CHECK(!strcmp(from_constructor, "made before main"));
    CHECK(constructor_usable >= 123);
    from_constructor = realloc(from_constructor, 5000);
    CHECK(!strcmp(from_constructor, "made before main"));
    free(from_constructor);
}

static void dynamic_loader_allocates_through_strata(void) {
    for (int i = 0; i < 200; i++) {
        CHECK(dlsym(RTLD_DEFAULT, "no_such_symbol_anywhere") == NULL);
        const char *err = dlerror(); /* dlerror allocates its message */
        CHECK(err != NULL);
        void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        if (!h) SKIP("libm.so.6 not found");
        CHECK(dlsym(h, "cos") != NULL);
        dlclose(h);
        CHECK(dlopen("/nonexistent/libnothing.so", RTLD_NOW) == NULL);
        CHECK(dlerror() != NULL);
    }
}

static char *for_atexit;
static void at_exit_handler(void) {
    /* runs after main returned: free what main left, and allocate again */
    free(for_atexit);
    char *p = malloc(1000);
    memset(p, 1, 1000);
    p = realloc(p, 100000);
    free(p);
    printf("atexit-ok\n");
    fflush(stdout);
}
__attribute__((destructor)) static void late_destructor(void) {
    void *p = calloc(10, 10);
    free(p);
}

static void mode_exit(void) {
    for_atexit = malloc(77);
    atexit(at_exit_handler);
}
static void allocation_after_main(void) {
    th_result r = th_self("exit", "");
    CHECKF(r.exited && r.code == 0, "exit %d sig %d: %s", r.code, r.sig, r.err);
    CHECKF(strstr(r.out, "atexit-ok") != NULL, "%s", r.out);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "exit")) {
        mode_exit();
        return 0;
    }
    RUN(constructor_allocation_survives);
    RUN(dynamic_loader_allocates_through_strata);
    RUN(allocation_after_main);
    return 0;
}
