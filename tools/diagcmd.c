/*
 * diagcmd.c — the part of strata leaks and strata guard that is not their output: options, the run
 * under libstrata-diag.so (diagrun.c), the dump (dump.c) and its symbols (symbols.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diagcmd.h"

void diag_cmd_option(struct diag_cmd *c, const char *fmt, const char *value) {
    char opt[512];
    snprintf(opt, sizeof opt, fmt, value);
    if (strchr(value, ',')) cli_usage("option values cannot contain a comma ('%s')", value);
    size_t old = c->options ? strlen(c->options) : 0, n = old + strlen(opt) + 2;
    c->options = cli_realloc(c->options, n);
    snprintf(c->options + old, n - old, "%s%s", old ? "," : "", opt);
}

long diag_arg_number(const char *sub, const char *name, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s takes a number from %ld to %ld, not '%%s'", sub, name, min, max);
        cli_usage(msg, s);
    }
    return v;
}

bool diag_arg_common(int argc, char **argv, int *i, struct diag_cmd *c) {
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--")) {
        c->cmd = argv + *i + 1;
    } else if ((v = cli_option_value(argc, argv, i, "-o", "--options"))) {
        if (strchr(v, ',')) { /* a list of its own: no value check, the library says what is wrong */
            size_t old = c->options ? strlen(c->options) : 0, n = old + strlen(v) + 2;
            c->options = cli_realloc(c->options, n);
            snprintf(c->options + old, n - old, "%s%s", old ? "," : "", v);
        } else {
            diag_cmd_option(c, "%s", v);
        }
    } else if ((v = cli_option_value(argc, argv, i, "-O", "--output"))) {
        if (!*v) cli_usage("%s: -O needs a file name", c->sub);
        c->output = v;
    } else if ((v = cli_option_value(argc, argv, i, NULL, "--depth"))) {
        diag_arg_number(c->sub, "--depth", v, 1, 64);
        diag_cmd_option(c, "diag_depth=%s", v);
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        diag_cmd_option(c, "%s", "verbose=1");
    } else if (a[0] == '-' && a[1]) {
        return false;
    } else {
        c->cmd = argv + *i;
    }
    return true;
}

void diag_args_done(struct diag_cmd *c) {
    if (!c->cmd || !c->cmd[0]) cli_usage("%s: no command given", c->sub);
}

bool diag_cmd_run(struct diag_cmd *c, const char *mode) {
    c->out = stderr;
    if (c->output && !(c->out = fopen(c->output, "we"))) {
        fprintf(stderr, "strata: %s: cannot write %s: %s\n", c->sub, c->output, strerror(errno));
        c->status = 1;
        return false;
    }
    c->status = diag_run(c->cmd, mode, c->options, &c->run);
    if (!c->run.ran) return false;
    if (!dump_read(c->run.dump, &c->dump)) {
        if (c->dump.why_errno == ENOENT)
            fprintf(stderr, "strata: %s: %s (pid %d) left no record (killed by SIGKILL, or ended "
                            "with _exit?)\n", c->sub, c->cmd[0], (int)c->run.pid);
        else
            fprintf(stderr, "strata: %s\n", c->dump.why);
        return false;
    }
    c->sym = symbols_load(&c->dump);
    return true;
}

void diag_cmd_done(struct diag_cmd *c) {
    if (c->sym) symbols_free(c->sym);
    dump_free(&c->dump);
    diag_run_cleanup(&c->run);
    if (c->out && c->out != stderr) fclose(c->out);
    free(c->options);
}
