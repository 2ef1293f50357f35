/*
 * job.h — run a command with both its output pipes read as they fill (its output can be long),
 * for the tests of commands: start it, wait for some text to appear, collect what it wrote and
 * how it ended. Include after harness.h.
 */
#ifndef STRATA_TEST_JOB_H
#define STRATA_TEST_JOB_H

#include <poll.h>
#include <stdbool.h>
#include <time.h>

typedef struct {
    int exited, code, signaled, sig;
    char *out, *err;
} result;

static void append(int fd, char **buf, size_t *len, bool *open) {
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
        *open = false;
        return;
    }
    *buf = realloc(*buf, *len + (size_t)n + 1);
    if (!*buf) abort();
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

typedef struct {
    pid_t pid;
    int out, err;
    size_t olen, elen;
    bool oopen, eopen;
    result r;
} job;

/* Start argv (uid >= 0: as that user), its output collected by job_read. */
static job job_start(char *const argv[], int uid) {
    job j = {0};
    int ofd[2], efd[2];
    if (pipe2(ofd, O_CLOEXEC) != 0 || pipe2(efd, O_CLOEXEC) != 0) abort();
    fflush(NULL);
    j.pid = fork();
    if (j.pid < 0) abort();
    if (j.pid == 0) {
        dup2(ofd[1], 1);
        dup2(efd[1], 2);
        if (uid >= 0 && (setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0)) _exit(120);
        if (uid >= 0 && access(argv[0], X_OK) != 0) _exit(120); /* a checkout in a 0700 dir */
        execvp(argv[0], argv);
        _exit(127);
    }
    close(ofd[1]);
    close(efd[1]);
    j.out = ofd[0], j.err = efd[0];
    j.oopen = j.eopen = true;
    j.r.out = calloc(1, 1);
    j.r.err = calloc(1, 1);
    return j;
}

/* Read the job's output for up to ms milliseconds, or until `want` appears `times` times in its
 * stdout (want NULL: until both pipes close). True if that happened. */
static bool job_read(job *j, const char *want, int times, int ms) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (want) {
            int n = 0;
            for (const char *p = j->r.out; (p = strstr(p, want)); p += strlen(want)) n++;
            if (n >= times) return true;
        } else if (!j->oopen && !j->eopen) {
            return true;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0 || (!j->oopen && !j->eopen)) return false;
        struct pollfd p[2] = {{j->oopen ? j->out : -1, POLLIN, 0}, {j->eopen ? j->err : -1, POLLIN, 0}};
        if (poll(p, 2, left) <= 0) continue;
        if (p[0].revents) append(j->out, &j->r.out, &j->olen, &j->oopen);
        if (p[1].revents) append(j->err, &j->r.err, &j->elen, &j->eopen);
    }
}

static result job_finish(job *j) {
    job_read(j, NULL, 0, 30000);
    close(j->out);
    close(j->err);
    int st;
    while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR) {
    }
    j->r.exited = WIFEXITED(st), j->r.code = j->r.exited ? WEXITSTATUS(st) : -1;
    j->r.signaled = WIFSIGNALED(st), j->r.sig = j->r.signaled ? WTERMSIG(st) : 0;
    return j->r;
}

static result run_as(char *const argv[], int uid) {
    job j = job_start(argv, uid);
    return job_finish(&j);
}

static result run(char *const argv[]) { return run_as(argv, -1); }

static void done(result *r) {
    free(r->out);
    free(r->err);
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#endif
