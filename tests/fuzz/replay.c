/*
 * replay.c — runs inputs through the fuzzing harness without libFuzzer, for make test and for
 * reproducing a crash under gdb.
 *
 *   replay                        every file of tests/fuzz/corpus/single and .../threads, each
 *                                 through its variant; prints one "ok" line per variant
 *   replay [-t] FILE|DIR...       those inputs, through the threaded variant with -t
 *
 * All inputs run in one process, one after another, as under the fuzzer: the allocator's state
 * carries from one to the next.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef FZ_CORPUS
#define FZ_CORPUS "tests/fuzz/corpus"
#endif

static const char *current; /* the input being run, for the failure line */
static const char *test_name;

static void report_failure(const char *message) {
    printf("not ok %s: %s: %s\n", test_name, current, message);
    fflush(stdout);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run one file; returns 0 if it could not be read. */
static int run_file(const char *path, int threaded) {
    static uint8_t buf[1 << 20];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) return 0;
    current = path;
    fz_run(buf, (size_t)n, threaded);
    return 1;
}

/* Run a file, or every file of a directory in name order; returns the number run, -1 on error. */
static long run_path(const char *path, int threaded) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) return run_file(path, threaded) ? 1 : -1;
    struct dirent **list;
    int k = scandir(path, &list, NULL, NULL);
    if (k < 0) return -1;
    char **names = calloc((size_t)k, sizeof *names);
    int m = 0;
    for (int j = 0; j < k; j++) {
        if (list[j]->d_name[0] != '.' && asprintf(&names[m], "%s/%s", path, list[j]->d_name) > 0) m++;
        free(list[j]);
    }
    free(list);
    qsort(names, (size_t)m, sizeof *names, cmp_names);
    long ran = 0;
    for (int j = 0; j < m; j++) {
        if (!run_file(names[j], threaded)) {
            fprintf(stderr, "replay: cannot read %s: %s\n", names[j], strerror(errno));
            ran = -1;
            break;
        }
        ran++;
        free(names[j]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv) {
    fz_on_failure = report_failure;
#ifdef FZ_SECURE /* fuzz/replay_secure: the corpus again in secure mode (read at strata's start) */
    setenv("STRATA_OPTIONS", "secure=1", 1);
#endif
    if (argc == 1) { /* make test: both corpora */
        static const char *const variant[] = {"single", "threads"};
        for (int t = 0; t < 2; t++) {
            char dir[4096], name[64];
            snprintf(dir, sizeof dir, "%s/%s", FZ_CORPUS, variant[t]);
            snprintf(name, sizeof name, "corpus_%s", variant[t]);
            test_name = name;
            long ran = run_path(dir, t);
            if (ran <= 0) printf("not ok %s: no inputs could be read in %s\n", name, dir);
            else printf("ok %s (%ld inputs)\n", name, ran);
            fflush(stdout);
        }
        return 0;
    }
    int threaded = 0, status = 0;
    test_name = "replay";
    for (int j = 1; j < argc; j++) {
        if (!strcmp(argv[j], "-t")) {
            threaded = 1;
            continue;
        }
        long ran = run_path(argv[j], threaded);
        if (ran < 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[j]);
            status = 2;
        } else {
            printf("%s: %ld inputs passed\n", argv[j], ran);
        }
    }
    return status;
}
