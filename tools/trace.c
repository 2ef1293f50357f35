/*
 * trace.c — run a command on strata and stop it as it exits, to look at its memory then.
 *
 * cli_run_to_exit(argv, at_exit, arg): fork; the child asks to be traced (PTRACE_TRACEME), stops
 * itself, and execs the command on strata (cli_exec_on_strata). At that first stop the parent sets
 *
 *   PTRACE_O_TRACEEXIT   a stop when the process starts to exit, before its memory is released
 *   PTRACE_O_TRACEEXEC   an exec stops as an event, not as a SIGTRAP the command would receive
 *   PTRACE_O_EXITKILL    the command dies if strata does
 *
 * and lets it run, giving every signal it receives back to it (a signal-delivery stop continues
 * with that signal). At the exit stop, if the command was exec'd, at_exit(pid, arg) runs while the
 * process's memory is still mapped; then the command finishes exiting.
 *
 * Limits, by design:
 *   - Only the process started is traced: not its children, not its other threads. The exit stop
 *     comes when the process exits (exit, a return from main, a fatal signal), or earlier when
 *     the main thread alone ends with pthread_exit.
 *   - A process killed by SIGKILL is not stopped at its exit: no snapshot, and a line says so.
 *   - A tracee cannot stay stopped for job control (SIGSTOP, Ctrl-Z) without PTRACE_SEIZE; such a
 *     stop is continued at once.
 *   - While the command runs, strata ignores SIGINT and SIGQUIT (as system() does): Ctrl-C reaches
 *     the command, which is still stopped at its exit.
 *   - A set-user-ID program runs without its privileges, as under any tracer.
 *   - Where ptrace is refused (seccomp, Yama ptrace_scope 3, a process already traced), the child
 *     says so in one line and runs the command untraced; its exit status still passes through.
 *
 * The result is the status for strata to exit with: the command's exit code, or 128+N after a
 * line "strata: CMD killed by signal N (SIGNAME)".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* The child: be traced (or say why not), stop so the parent can set its options, exec. */
_Noreturn static void start_traced(char **argv) {
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0)
        raise(SIGSTOP);
    else
        fprintf(stderr, "strata: cannot trace '%s' (ptrace: %s): running it without a snapshot\n", argv[0],
                strerror(errno));
    cli_exec_on_strata(argv);
}

/* A stop with a signal to deliver, as opposed to a group-stop (for which there is no siginfo). */
static bool signal_delivery_stop(pid_t pid) {
    siginfo_t si;
    return ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0;
}

struct traced {
    pid_t pid;
    bool started, execed, stopped_at_exit;
};

/* Handle one stop of the tracee; returns the signal to continue it with. */
static int on_stop(struct traced *t, int status, void (*at_exit)(pid_t, void *), void *arg) {
    int sig = WSTOPSIG(status), event = (status >> 16) & 0xff;
    if (!t->started) { /* our own SIGSTOP, before the exec */
        t->started = true;
        long opts = PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
        if (ptrace(PTRACE_SETOPTIONS, t->pid, NULL, (void *)opts) != 0)
            fprintf(stderr, "strata: cannot trace the command (PTRACE_SETOPTIONS: %s): no snapshot\n",
                    strerror(errno));
        return sig == SIGSTOP ? 0 : sig;
    }
    if (sig == SIGTRAP && event == PTRACE_EVENT_EXEC) {
        t->execed = true;
        return 0;
    }
    if (sig == SIGTRAP && event == PTRACE_EVENT_EXIT) {
        if (t->execed && !t->stopped_at_exit) at_exit(t->pid, arg);
        t->stopped_at_exit = true;
        return 0;
    }
    if (event) return 0;
    return signal_delivery_stop(t->pid) ? sig : 0;
}

/* Follow the tracee until it is gone; returns its wait status, or -1. */
static int follow(struct traced *t, void (*at_exit)(pid_t, void *), void *arg) {
    for (;;) {
        int status;
        if (waitpid(t->pid, &status, 0) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "strata: waitpid: %s\n", strerror(errno));
            return -1;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) return status;
        if (!WIFSTOPPED(status)) continue;
        int sig = on_stop(t, status, at_exit, arg);
        ptrace(PTRACE_CONT, t->pid, NULL, (void *)(long)sig); /* ESRCH if killed meanwhile: fine */
    }
}

int cli_run_to_exit(char **argv, void (*at_exit)(pid_t, void *), void *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "strata: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) start_traced(argv);
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGINT, &ignore, &old_int);
    sigaction(SIGQUIT, &ignore, &old_quit);
    struct traced t = {.pid = pid};
    int status = follow(&t, at_exit, arg);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (t.execed && !t.stopped_at_exit)
        fprintf(stderr, "strata: %s was not stopped at its exit (killed by SIGKILL?): no snapshot\n", argv[0]);
    return cli_exit_status(argv[0], status);
}
