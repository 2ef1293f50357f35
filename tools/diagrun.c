/*
 * diagrun.c — run a command under libstrata-diag.so (diagrun.h).
 *
 * The library writes PREFIX.PID as each process of the command exits; the command's own process
 * keeps its pid through exec, so its dump is DIR/diag.PID for the pid fork returned (children it
 * started leave dumps of their own beside it, ignored here and removed with the directory).
 *
 * The preload and the options are set in the child only: strata itself, and the addr2line it runs
 * later, stay as they were. A pipe closed on exec tells the parent whether the exec happened, so
 * that "not found" is not mistaken for a program that ended without writing its dump.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "diagrun.h"

const char *diag_library(void) {
    static const char *found;
    if (!found) found = cli_library_named("libstrata-diag.so", "STRATA_DIAG_LIBRARY");
    return found;
}

static bool make_dir(struct diag_run *r) {
    snprintf(r->dir, sizeof r->dir, "%s/strata-diag-XXXXXX", cli_tmpdir());
    if (mkdtemp(r->dir)) return true;
    fprintf(stderr, "strata: cannot make a temporary directory %s: %s\n", r->dir, strerror(errno));
    r->dir[0] = '\0';
    return false;
}

/* The child: environment, then exec; on failure the errno goes up the pipe. */
_Noreturn static void start(char **argv, const char *lib, const char *options, int report) {
    cli_preload_library(lib);
    cli_add_options(options);
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "strata: cannot run '%s': %s\n", argv[0], strerror(err));
    if (write(report, &err, sizeof err) != (ssize_t)sizeof err) _exit(126);
    _exit(err == ENOENT ? 127 : 126);
}

/* Whether the child exec'd: the pipe closes with nothing in it. */
static bool exec_happened(int fd) {
    int err;
    ssize_t n;
    while ((n = read(fd, &err, sizeof err)) < 0 && errno == EINTR) {
    }
    close(fd);
    return n == 0;
}

/* Signals sent to strata alone (kill PID, a timeout) go on to the command, which would have had
 * them without strata in between; SIGINT and SIGQUIT from the terminal reach it anyway. */
static pid_t forward_to;
static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
enum { NFORWARD = sizeof forwarded / sizeof forwarded[0] };
static void forward(int sig) {
    if (forward_to > 0) kill(forward_to, sig);
}

static int wait_for(pid_t pid) {
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit, pass = {.sa_handler = forward},
                     old_pass[NFORWARD];
    sigemptyset(&ignore.sa_mask);
    sigemptyset(&pass.sa_mask);
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    forward_to = pid;
    for (int i = 0; i < NFORWARD; i++) sigaction(forwarded[i], &pass, &old_pass[i]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "strata: waitpid: %s\n", strerror(errno));
            status = -1;
            break;
        }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    for (int i = 0; i < NFORWARD; i++) sigaction(forwarded[i], &old_pass[i], NULL);
    forward_to = 0;
    return status;
}

int diag_run(char **argv, const char *mode, const char *options, struct diag_run *r) {
    return diag_run_with(argv, diag_library(), mode, options, false, r);
}

int diag_run_with(char **argv, const char *lib, const char *mode, const char *options, bool quiet,
                  struct diag_run *r) {
    memset(r, 0, sizeof *r);
    if (!make_dir(r)) return 1;
    size_t n = (options ? strlen(options) : 0) + (mode ? strlen(mode) : 0) + strlen(r->dir) + 64;
    char *opts = cli_alloc(n);
    snprintf(opts, n, "%s%s%s%s%sdiag_file=%s/diag", options && *options ? options : "",
             options && *options ? "," : "", mode ? "diag=" : "", mode ? mode : "", mode ? "," : "", r->dir);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, "strata: pipe: %s\n", strerror(errno));
        free(opts);
        return 1;
    }
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) start(argv, lib, opts, pfd[1]);
    close(pfd[1]);
    free(opts);
    if (r->pid < 0) {
        fprintf(stderr, "strata: fork: %s\n", strerror(errno));
        close(pfd[0]);
        return 1;
    }
    r->ran = exec_happened(pfd[0]);
    r->status = wait_for(r->pid);
    snprintf(r->dump, sizeof r->dump, "%s/diag.%d", r->dir, (int)r->pid);
    if (!r->ran) return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 126;
    if (quiet && r->status >= 0 && WIFSIGNALED(r->status)) return 128 + WTERMSIG(r->status);
    return cli_exit_status(argv[0], r->status);
}

void diag_run_cleanup(struct diag_run *r) {
    if (!r->dir[0]) return;
    DIR *dir = opendir(r->dir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir(dir)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(dir), e->d_name, 0);
        closedir(dir);
    }
    rmdir(r->dir);
    r->dir[0] = '\0';
}
