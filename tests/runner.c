/*
 * runner — runs strata's test programs and counts their results.
 *
 *   runner [-t SECONDS] PROGRAM...
 *
 * Each program prints "ok NAME", "not ok NAME: why" or "skip NAME: why" lines (tests/harness.h).
 * The runner echoes them with the program's name (its directory and file name, as in
 * "debug/test_malloc"), counts them, and counts a program
 * that crashes, exits non-zero or outlives its time limit as one more failure; what the program
 * leaves running is killed 10 s after it ends. The last line is
 * "N passed, N failed"; the exit status is 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed, failed, skipped;

/* "build/tests/debug/test_malloc" -> "debug/test_malloc" */
static const char *short_name(const char *path) {
    const char *s = path + strlen(path);
    int slashes = 0;
    while (s > path && !(s[-1] == '/' && ++slashes == 2)) s--;
    return s;
}

/* One line of the program's output: echoed with the program's name, and counted. */
static void take_line(const char *name, const char *line, int *lines, int *prog_failed) {
    if (!strncmp(line, "ok ", 3)) {
        passed++, ++*lines;
        printf("ok %s: %s\n", name, line + 3);
    } else if (!strncmp(line, "not ok ", 7)) {
        failed++, ++*lines, *prog_failed = 1;
        printf("not ok %s: %s\n", name, line + 7);
    } else if (!strncmp(line, "skip ", 5)) {
        skipped++, ++*lines;
        printf("skip %s: %s\n", name, line + 5);
    } else {
        printf("   %s\n", line);
    }
    fflush(stdout);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Reads the program's output until the pipe's end. What is left of its process group 10 s after
 * the program itself has ended is killed, and 5 s after that the pipe is given up on: a descendant
 * that hangs holding it (a forked child stuck in an emulator, say) cannot keep the runner waiting.
 * Returns the program's wait status. */
static int read_output(pid_t pid, int fd, const char *name, int *lines, int *prog_failed) {
    static char buf[65536];
    size_t have = 0;
    int st = 0, ended = 0, killed = 0;
    double since = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r < 0 && errno != EINTR) break;
        if (r > 0) {
            ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            char *line = buf, *nl;
            while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
                *nl = '\0';
                take_line(name, line, lines, prog_failed);
                line = nl + 1;
            }
            have -= (size_t)(line - buf);
            memmove(buf, line, have);
            if (have == sizeof buf - 1) { /* a line longer than the buffer: take it as it is */
                buf[have] = '\0';
                take_line(name, buf, lines, prog_failed);
                have = 0;
            }
        }
        if (!ended && waitpid(pid, &st, WNOHANG) == pid) {
            ended = 1;
            since = now();
        } else if (ended && !killed && now() - since > 10) {
            killed = 1;
            since = now();
            kill(-pid, SIGKILL); /* leftovers of the program's own children */
        } else if (killed && now() - since > 5) {
            printf("   %s: something outside its process group still holds its output; not waiting\n", name);
            break;
        }
    }
    if (have) {
        buf[have] = '\0';
        take_line(name, buf, lines, prog_failed);
    }
    if (!ended)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    kill(-pid, SIGKILL);
    return st;
}

static void run_one(const char *prog, int timeout) {
    int pfd[2];
    if (pipe(pfd) != 0) {
        perror("runner: pipe");
        exit(2);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        alarm((unsigned)timeout); /* inherited by exec: kills a program that hangs */
        execl(prog, prog, (char *)NULL);
        fprintf(stderr, "runner: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* as the child does: the group exists before either kills it */
    close(pfd[1]);
    int lines = 0, prog_failed = 0;
    const char *name = short_name(prog);
    int st = read_output(pid, pfd[0], name, &lines, &prog_failed);
    close(pfd[0]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (WIFSIGNALED(st)) {
        failed++;
        printf("not ok %s: killed by signal %d (%s)%s\n", name, WTERMSIG(st),
               strsignal(WTERMSIG(st)), WTERMSIG(st) == SIGALRM ? ", time limit" : "");
    } else if (WEXITSTATUS(st) != 0 && !prog_failed) {
        failed++;
        printf("not ok %s: exited with status %d\n", name, WEXITSTATUS(st));
    } else if (lines == 0) {
        failed++;
        printf("not ok %s: reported no tests\n", name);
    }
    printf("   (%s: %.1f s)\n", name, secs);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int timeout = 600;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) timeout = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: runner [-t SECONDS] PROGRAM...\n");
            return 2;
        }
    }
    for (; i < argc; i++) run_one(argv[i], timeout);
    if (skipped) printf("%d skipped\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
