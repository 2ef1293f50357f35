/*
 * run.c — `strata run [-o OPTIONS] [-v] [--] CMD ARGS...` and `strata options`.
 *
 * `run` execs the program in place, so its exit status (or the signal that killed it) is the
 * command's own. With guard_sample=N in the options (the sampled guard, see README), it runs the
 * program as a child instead and waits: when a sampled block is misused, libstrata.so leaves a
 * record of it (support/record.h) and `run` prints its stacks with functions and source lines,
 * then ends as the program did (the same signal, or the same exit status).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "diagcmd.h"

/* Is guard_sample set above 0 in STRATA_OPTIONS? The last setting counts, as in the library. */
static bool sampling(void) {
    const char *o = getenv("STRATA_OPTIONS");
    bool on = false;
    for (const char *p = o; p && (p = strstr(p, "guard_sample=")); p += 13)
        if (p == o || p[-1] == ',') on = atol(p + 13) > 0;
    return on;
}

/* Every record in the run's directory: the command's, and its children's (they inherit the
 * options), each explained with its stacks. */
static void explain_records(struct diag_cmd *c) {
    DIR *dir = opendir(c->run.dir);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "diag.", 5) != 0) continue;
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", c->run.dir, e->d_name);
        if (dump_read(path, &c->dump) && c->dump.has_error) {
            c->sym = symbols_load(&c->dump);
            guard_explain(c);
            symbols_free(c->sym);
            c->sym = NULL;
        } else if (!c->dump.has_error) {
            fprintf(stderr, "strata: run: %s\n", c->dump.why[0] ? c->dump.why : "a sampled guard's record is empty");
        }
        dump_free(&c->dump);
        memset(&c->dump, 0, sizeof c->dump);
    }
    closedir(dir);
}

static int run_sampled(char **cmd) {
    struct diag_cmd c = {.sub = "run", .cmd = cmd, .out = stderr};
    c.status = diag_run_with(cmd, cli_library(), NULL, NULL, true, &c.run);
    if (!c.run.ran && !c.run.dir[0]) cli_exec_on_strata(cmd); /* no directory for records: run it anyway */
    if (c.run.ran) explain_records(&c);
    int status = c.status, wait_status = c.run.status;
    bool ran = c.run.ran;
    c.out = NULL;
    diag_cmd_done(&c);
    if (ran && wait_status >= 0 && WIFSIGNALED(wait_status)) { /* end as the program did */
        int sig = WTERMSIG(wait_status);
        struct rlimit no_core = {0, 0}; /* the program dumped its core (if any): not strata's over it */
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        fflush(NULL);
        raise(sig);
    }
    return status;
}

int cmd_run(int argc, char **argv) {
    char **cmd = argv + cli_command_start(argc, argv, "run");
    if (!sampling()) cli_exec_on_strata(cmd);
    return run_sampled(cmd);
}

int cmd_options(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == '-') cli_unknown_option(argv[1]);
    if (argc > 1) cli_usage("options takes no arguments ('%s')", argv[1]);
    cli_add_options("help");
    dup2(1, 2); /* the library prints the table on stderr */
    char *true_argv[] = {"true", NULL};
    cli_exec_on_strata(true_argv);
}
