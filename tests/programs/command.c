/*
 * command.c — the `strata` command line (tools/strata.c).
 *
 *   strata run [-o OPTIONS] [-v] [--] CMD ARGS...   exec CMD in place with libstrata preloaded
 *   strata options | version | help [SUB] | --version | --help | SUB --help
 *
 * Exit statuses and signals pass through (the command execs in place); -v and -o reach the
 * library and combine with STRATA_OPTIONS; a bad command line (an unknown option of any
 * subcommand) prints a usage message starting "strata:" and exits 2, while `strata SUB --help` or
 * `-h`, for every subcommand `strata --help` names, prints SUB's usage on stdout and exits 0; a command that cannot be found exits 127 with one "strata: cannot run"
 * line; an existing LD_PRELOAD is kept; STRATA_LIBRARY is honoured and checked.
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */

#include <limits.h>
#include <sys/stat.h>

#include "strata.h"

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"
#define LIBSTRATA STRATA_ROOT "/lib/libstrata.so"
#define VERSION_LINE "strata: version " STRATA_VERSION_STRING " serving pid "

static char tmp[] = "/tmp/strata-command-XXXXXX";

/* Like th_exec, with text for stdin and the child's pid (to see that `run` execs in place). */
static th_result run_in(char *const argv[], char *const env[], const char *input, pid_t *pid_out) {
    th_result r;
    memset(&r, 0, sizeof r);
    int ifd[2], ofd[2], efd[2];
    if (pipe(ifd) != 0 || pipe(ofd) != 0 || pipe(efd) != 0) abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) abort();
    if (pid == 0) {
        dup2(ifd[0], 0);
        dup2(ofd[1], 1);
        dup2(efd[1], 2);
        close(ifd[0]), close(ifd[1]), close(ofd[0]), close(ofd[1]), close(efd[0]), close(efd[1]);
        for (char *const *e = env; e && *e; e++) putenv(*e);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(ifd[0]);
    close(ofd[1]);
    close(efd[1]);
    if (input) {
        size_t len = strlen(input);
        if (write(ifd[1], input, len) != (ssize_t)len) abort(); /* small: fits the pipe */
    }
    close(ifd[1]);
    th_drain(ofd[0], r.out, sizeof r.out);
    th_drain(efd[0], r.err, sizeof r.err);
    close(ofd[0]);
    close(efd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    th_status(&r, st);
    if (pid_out) *pid_out = pid;
    return r;
}

static th_result run(char *const argv[], char *const env[]) { return run_in(argv, env, NULL, NULL); }

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* The stderr of a bad command line: a "strata: " line, then the usage text; exit 2. The usage of
 * subcommand `sub`, or (sub NULL) the general one, which names every subcommand. */
static int is_usage_error(const th_result *r, const char *sub) {
    char usage[64];
    snprintf(usage, sizeof usage, "\nusage: strata %s", sub ? sub : "");
    return r->exited && r->code == 2 && !strncmp(r->err, "strata: ", 8) && strstr(r->err, usage) &&
           (sub || (strstr(r->err, "strata run") && strstr(r->err, "strata options"))) && r->out[0] == '\0';
}

/* ---- exit status and signals ---- */

static void exit_status_passes_through(void) {
    th_result r = run((char *[]){STRATA, "run", "--", "sh", "-c", "exit 3", NULL}, NULL);
    CHECKF(r.exited && r.code == 3, "exited %d code %d signal %d; stderr: %s", r.exited, r.code, r.sig, r.err);
    r = run((char *[]){STRATA, "run", "sh", "-c", "exit 255", NULL}, NULL); /* without -- */
    CHECKF(r.exited && r.code == 255, "code %d; stderr: %s", r.code, r.err);
    r = run((char *[]){STRATA, "run", "--", "true", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "true: code %d; stderr: %s", r.code, r.err);
    r = run((char *[]){STRATA, "run", "--", "false", NULL}, NULL);
    CHECKF(r.exited && r.code == 1, "false: code %d; stderr: %s", r.code, r.err);
    CHECKF(r.err[0] == '\0', "strata printed something without being asked: %s", r.err);
}

static void signal_passes_through(void) {
    th_result r = run((char *[]){STRATA, "run", "--", "sh", "-c", "kill -TERM $$", NULL}, NULL);
    CHECKF(r.signaled && r.sig == SIGTERM, "exited %d code %d signaled %d sig %d", r.exited, r.code,
           r.signaled, r.sig);
    r = run((char *[]){STRATA, "run", "--", "sh", "-c", "kill -KILL $$", NULL}, NULL);
    CHECKF(r.signaled && r.sig == SIGKILL, "exited %d code %d sig %d", r.exited, r.code, r.sig);
}

/* The command replaces strata in the same process: its $$ is the pid strata was started as. */
static void run_execs_in_place(void) {
    pid_t pid = 0;
    th_result r = run_in((char *[]){STRATA, "run", "--", "sh", "-c", "echo $$; echo $PPID", NULL}, NULL,
                         NULL, &pid);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    long shell_pid = -1, parent = -1;
    CHECKF(sscanf(r.out, "%ld %ld", &shell_pid, &parent) == 2, "stdout: %s", r.out);
    CHECKF(shell_pid == (long)pid, "the command ran as pid %ld, strata as %ld: not exec'd in place",
           shell_pid, (long)pid);
    CHECKF(parent == (long)getpid(), "the command's parent is %ld, not the caller %ld", parent,
           (long)getpid());
}

/* stdin, stdout and arguments (with spaces and an argument that looks like an option) pass. */
static void io_and_arguments_pass_through(void) {
    th_result r = run_in((char *[]){STRATA, "run", "--", "cat", NULL}, NULL, "hello\nworld\n", NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "hello\nworld\n"), "code %d out '%s' err %s",
           r.code, r.out, r.err);
    r = run((char *[]){STRATA, "run", "--", "printf", "[%s]", "a b", "-o", "--", "-v", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "[a b][-o][--][-v]"), "out '%s' err %s", r.out, r.err);
    /* the first word that is not an option is the command; what follows belongs to it */
    r = run((char *[]){STRATA, "run", "printf", "%s.", "-v", "--bogus", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "-v.--bogus."), "out '%s' err %s", r.out, r.err);
}

/* ---- verbose and options ---- */

static void verbose_flag_shows_strata_serving(void) {
    th_result plain = run((char *[]){"ls", "-a", STRATA_ROOT "/include", NULL}, NULL);
    CHECK(plain.exited && plain.code == 0);
    th_result r = run((char *[]){STRATA, "run", "-v", "--", "ls", "-a", STRATA_ROOT "/include", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.err, VERSION_LINE) != NULL, "no '%s' line: stderr: %s", VERSION_LINE, r.err);
    CHECKF(!strcmp(r.out, plain.out), "ls printed '%s' on strata, '%s' without", r.out, plain.out);
    /* bash exits through exit(), so the summary is printed (dash uses _exit; ls closes stderr) */
    r = run((char *[]){STRATA, "run", "--verbose", "bash", "-c", "echo hi", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "hi\n"), "code %d out %s", r.code, r.out);
    CHECKF(th_count_lines(r.err, VERSION_LINE) == 1, "--verbose: stderr: %s", r.err);
    CHECKF(th_count_lines(r.err, "strata: exit of pid ") == 1, "no exit summary: stderr: %s", r.err);
}

static void options_flag_reaches_the_library(void) {
    static char *const forms[][6] = {
        {STRATA, "run", "-o", "verbose=1", "--", NULL},
        {STRATA, "run", "--options", "verbose=1", "--", NULL},
        {STRATA, "run", "--options=verbose=1", "--", NULL},
        {STRATA, "run", "-o", "verbose=1", NULL},
    };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        char *argv[10];
        int n = 0;
        for (int i = 0; forms[f][i]; i++) argv[n++] = forms[f][i];
        argv[n++] = "sh";
        argv[n++] = "-c";
        argv[n++] = "echo ran";
        argv[n] = NULL;
        th_result r = run(argv, NULL);
        CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "ran\n"), "form %zu: code %d out %s err %s", f,
               r.code, r.out, r.err);
        CHECKF(th_count_lines(r.err, VERSION_LINE) == 1, "form %zu (%s %s): stderr: %s", f, forms[f][2],
               forms[f][3] ? forms[f][3] : "", r.err);
    }
    /* -o beats STRATA_OPTIONS where both name an option */
    th_result r = run((char *[]){STRATA, "run", "-o", "verbose=1", "--", "sh", "-c", ":", NULL},
                      (char *[]){"STRATA_OPTIONS=verbose=0", NULL});
    CHECKF(th_count_lines(r.err, VERSION_LINE) == 1, "-o verbose=1 lost to STRATA_OPTIONS=verbose=0: %s",
           r.err);
    /* without -v nothing is said */
    r = run((char *[]){STRATA, "run", "--", "sh", "-c", ":", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && r.err[0] == '\0', "stderr: %s", r.err);
}

static void environment_and_command_line_options_combine(void) {
    th_result r = run((char *[]){STRATA, "run", "-o", "verbose=1", "--", "sh", "-c", "echo \"$STRATA_OPTIONS\"", NULL},
                      (char *[]){"STRATA_OPTIONS=mmap_threshold=64k,brk=0", NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.out, "mmap_threshold=64k") && strstr(r.out, "brk=0") && strstr(r.out, "verbose=1"),
           "the command's STRATA_OPTIONS is '%.*s'", (int)strcspn(r.out, "\n"), r.out);
    /* the library applied all three: the verbose line reports the other two */
    CHECKF(th_count_lines(r.err, VERSION_LINE) == 1, "stderr: %s", r.err);
    CHECKF(strstr(r.err, "brk off") && strstr(r.err, "mmap threshold 65536"),
           "options from the environment not applied: %s", r.err);
    /* several -o and -v together */
    r = run((char *[]){STRATA, "run", "-o", "brk=0", "-o", "mmap_threshold=256k", "-v", "sh", "-c", ":", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.err, "brk off") && strstr(r.err, "mmap threshold 262144"), "stderr: %s", r.err);
    CHECKF(th_count_lines(r.err, "strata: ") == th_count_lines(r.err, VERSION_LINE) +
                                                     th_count_lines(r.err, "strata: exit of pid "),
           "unexpected strata message: %s", r.err);
}

static void bad_option_value_is_reported_once(void) {
    th_result r = run((char *[]){STRATA, "run", "-o", "mmap_threshold=abc", "--", "sh", "-c", "echo ok", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "the program did not run to exit 0: code %d sig %d; stderr: %s", r.code,
           r.sig, r.err);
    CHECKF(!strcmp(r.out, "ok\n"), "stdout '%s'", r.out);
    CHECKF(!strncmp(r.err, "strata: bad value 'abc' for option mmap_threshold", 49),
           "stderr: '%s'", r.err);
    CHECKF(lines(r.err) == 1, "%d lines on stderr: '%s'", lines(r.err), r.err);
    /* an unknown option name, the same */
    r = run((char *[]){STRATA, "run", "-o", "no_such_option=1", "--", "sh", "-c", "echo ok", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "ok\n"), "code %d out '%s' err %s", r.code, r.out, r.err);
    CHECKF(!strncmp(r.err, "strata: unknown option 'no_such_option'", 39) && lines(r.err) == 1,
           "stderr: '%s'", r.err);
    /* good options beside the bad one still apply */
    r = run((char *[]){STRATA, "run", "-o", "brk=maybe,verbose=1", "--", "sh", "-c", "echo ok", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "ok\n"), "code %d out '%s'", r.code, r.out);
    CHECKF(th_count_lines(r.err, "strata: bad value 'maybe' for option brk") == 1, "stderr: %s", r.err);
    CHECKF(th_count_lines(r.err, VERSION_LINE) == 1, "verbose=1 beside a bad value lost: %s", r.err);
}

/* ---- usage errors ---- */

static void bad_command_lines_print_usage_and_exit_2(void) {
    static char *const cases[][6] = {
        {STRATA, NULL},
        {STRATA, "run", NULL},
        {STRATA, "run", "--", NULL},
        {STRATA, "run", "-v", NULL},
        {STRATA, "bogus", NULL},
        {STRATA, "run", "--bogus", "sh", NULL},
        {STRATA, "run", "-x", "--", "sh", NULL},
        {STRATA, "run", "-o", NULL},
        {STRATA, "options", "extra", NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        th_result r = run(cases[c], NULL);
        char cmd[128] = "strata";
        for (int i = 1; cases[c][i]; i++) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", cases[c][i]);
        const char *sub = cases[c][1] && strcmp(cases[c][1], "bogus") ? cases[c][1] : NULL;
        CHECKF(is_usage_error(&r, sub), "'%s': exited %d code %d; stdout '%s'; stderr '%.200s'", cmd, r.exited,
               r.code, r.out, r.err);
    }
    /* the message names what was wrong */
    th_result r = run((char *[]){STRATA, "bogus", NULL}, NULL);
    CHECKF(strstr(r.err, "bogus") != NULL, "'strata bogus': %s", r.err);
    r = run((char *[]){STRATA, "run", "--bogus", "sh", NULL}, NULL);
    CHECKF(strstr(r.err, "--bogus") != NULL, "'strata run --bogus': %s", r.err);
}

static void help_prints_usage_on_stdout(void) {
    static char *const forms[] = {"help", "--help", "-h"};
    for (size_t i = 0; i < 3; i++) {
        th_result r = run((char *[]){STRATA, forms[i], NULL}, NULL);
        CHECKF(r.exited && r.code == 0, "strata %s: code %d", forms[i], r.code);
        CHECKF(strstr(r.out, "usage") && strstr(r.out, "strata run") && strstr(r.out, "strata options"),
               "strata %s: stdout '%s'", forms[i], r.out);
        CHECKF(r.err[0] == '\0', "strata %s: stderr '%s'", forms[i], r.err);
    }
}

/* The subcommands, as `strata --help` names them ("usage: strata NAME ..." and "       strata NAME
 * ..." lines), each once, in order; how many. */
static int subcommands(char names[][16], int cap) {
    static th_result r;
    r = run((char *[]){STRATA, "--help", NULL}, NULL);
    int n = 0;
    for (const char *line = r.out; *line; line += strcspn(line, "\n"), line += *line == '\n') {
        char name[16];
        if (sscanf(line, "usage: strata %15[a-z]", name) != 1 && sscanf(line, "       strata %15[a-z]", name) != 1)
            continue;
        bool seen = false;
        for (int i = 0; i < n; i++) seen = seen || !strcmp(names[i], name);
        if (!seen && n < cap) strcpy(names[n++], name);
    }
    return n;
}

/* `strata NAME --help` and `-h`: NAME's usage and options on stdout, exit 0, for every subcommand;
 * `strata help NAME` prints the same. */
static void every_subcommand_has_help(void) {
    char names[32][16];
    int n = subcommands(names, 32);
    static const char *const known[] = {"run", "maps", "stats", "leaks", "guard", "report", "profile",
                                        "options", "version", "help"};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        bool found = false;
        for (int i = 0; i < n; i++) found = found || !strcmp(names[i], known[k]);
        CHECKF(found, "'%s' is not among the %d subcommands strata --help names", known[k], n);
    }
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: strata %s", names[i]);
        th_result byname = run((char *[]){STRATA, "help", names[i], NULL}, NULL);
        CHECKF(byname.exited && byname.code == 0 && !strncmp(byname.out, want, strlen(want)),
               "strata help %s: code %d stdout '%.200s' stderr '%.200s'", names[i], byname.code, byname.out,
               byname.err);
        static char *const forms[] = {"--help", "-h"};
        for (int f = 0; f < 2; f++) {
            th_result r = run((char *[]){STRATA, names[i], forms[f], NULL}, NULL);
            CHECKF(r.exited && r.code == 0, "strata %s %s: exited %d code %d; stderr '%.200s'", names[i], forms[f],
                   r.exited, r.code, r.err);
            CHECKF(!strncmp(r.out, want, strlen(want)) && strstr(r.out, "-h, --help"),
                   "strata %s %s: stdout '%.300s'", names[i], forms[f], r.out);
            CHECKF(r.err[0] == '\0', "strata %s %s: stderr '%.200s'", names[i], forms[f], r.err);
            CHECKF(!strcmp(r.out, byname.out), "strata %s %s and strata help %s differ", names[i], forms[f],
                   names[i]);
        }
    }
    /* after other options too; and one that belongs to CMD stays CMD's */
    static char *const late[][7] = {
        {STRATA, "leaks", "-o", "verbose=1", "--depth", "4", "--help"},
        {STRATA, "stats", "1", "--help", NULL},
        {STRATA, "maps", "-t", "-h", NULL},
        {STRATA, "run", "-v", "--help", NULL},
    };
    for (size_t c = 0; c < sizeof late / sizeof late[0]; c++) {
        char *argv[8] = {0};
        memcpy(argv, late[c], sizeof late[c]);
        th_result r = run(argv, NULL);
        char want[64];
        snprintf(want, sizeof want, "usage: strata %s", late[c][1]);
        CHECKF(r.exited && r.code == 0 && !strncmp(r.out, want, strlen(want)) && !r.err[0],
               "strata %s ... %s: code %d out '%.100s' err '%.200s'", late[c][1], late[c][3], r.code, r.out, r.err);
    }
    th_result r = run((char *[]){STRATA, "run", "echo", "-h", "--help", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "-h --help\n"), "run echo -h --help: out '%.200s'", r.out);
    r = run((char *[]){STRATA, "run", "--", "sh", "-c", "echo \"$1\"", "sh", "--help", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "--help\n"), "run -- sh --help: out '%.200s'", r.out);
}

/* An option a subcommand does not take is still a usage error: a "strata:" line naming it, the
 * subcommand's usage on stderr, nothing on stdout, exit 2; before the subcommand, the general usage. */
static void unknown_options_exit_2(void) {
    char names[32][16];
    int n = subcommands(names, 32);
    CHECKF(n >= 10, "strata --help names %d subcommands", n);
    for (int i = 0; i < n; i++) {
        th_result r = run((char *[]){STRATA, names[i], "--no-such-option", "true", NULL}, NULL);
        CHECKF(is_usage_error(&r, names[i]), "strata %s --no-such-option: code %d out '%.100s' err '%.300s'",
               names[i], r.code, r.out, r.err);
        CHECKF(strstr(r.err, "'--no-such-option'") && strstr(r.err, "'--no-such-option'") < strchr(r.err, '\n'),
               "strata %s: the first line does not name the option: '%.200s'", names[i], r.err);
        r = run((char *[]){STRATA, names[i], "-Z", NULL}, NULL);
        CHECKF(is_usage_error(&r, names[i]) && strstr(r.err, "'-Z'"), "strata %s -Z: code %d err '%.300s'", names[i],
               r.code, r.err);
    }
    th_result r = run((char *[]){STRATA, "--no-such-option", NULL}, NULL);
    CHECKF(is_usage_error(&r, NULL) && strstr(r.err, "'--no-such-option'"), "strata --no-such-option: code %d err '%.200s'",
           r.code, r.err);
    r = run((char *[]){STRATA, "help", "no-such-command", NULL}, NULL);
    CHECKF(is_usage_error(&r, "help") && strstr(r.err, "no-such-command"), "strata help no-such-command: %.200s", r.err);
    r = run((char *[]){STRATA, "version", "extra", NULL}, NULL);
    CHECKF(is_usage_error(&r, "version"), "strata version extra: code %d err '%.200s'", r.code, r.err);
}

static void missing_command_exits_127(void) {
    th_result r = run((char *[]){STRATA, "run", "--", "/nonexistent", NULL}, NULL);
    CHECKF(r.exited && r.code == 127, "exited %d code %d; stderr: %s", r.exited, r.code, r.err);
    CHECKF(!strncmp(r.err, "strata: cannot run", 18), "stderr: '%s'", r.err);
    CHECKF(strstr(r.err, "/nonexistent") != NULL, "the message does not name the command: %s", r.err);
    CHECKF(lines(r.err) == 1, "%d lines: '%s'", lines(r.err), r.err);
    CHECKF(r.out[0] == '\0', "stdout: %s", r.out);
    /* searched in PATH too */
    r = run((char *[]){STRATA, "run", "strata-no-such-command-xyz", "arg", NULL}, NULL);
    CHECKF(r.exited && r.code == 127, "PATH search: code %d; stderr: %s", r.code, r.err);
    CHECKF(!strncmp(r.err, "strata: cannot run", 18) && lines(r.err) == 1, "stderr: '%s'", r.err);
}

static void command_that_cannot_execute_exits_126(void) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/not-executable", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("#!/bin/sh\necho ran\n", f);
    fclose(f);
    CHECK(chmod(path, 0644) == 0);
    if (geteuid() == 0 && access(path, X_OK) == 0) SKIP("root may execute a file without x bits here");
    th_result r = run((char *[]){STRATA, "run", "--", path, NULL}, NULL);
    CHECKF(r.exited && r.code == 126, "code %d; stderr: %s", r.code, r.err);
    CHECKF(!strncmp(r.err, "strata: cannot run", 18) && lines(r.err) == 1, "stderr: '%s'", r.err);
    CHECKF(r.out[0] == '\0', "it ran: %s", r.out);
}

/* ---- options, version ---- */

static void options_lists_every_option(void) {
    th_result r = run((char *[]){STRATA, "options", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "exited %d code %d sig %d; stderr: %s", r.exited, r.code, r.sig, r.err);
    static const char *const names[] = {"mmap_threshold", "trim_threshold", "top_pad",
                                        "brk",            "foreign_free",   "verbose"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECKF(strstr(r.out, names[i]) != NULL, "'%s' missing from stdout '%.200s' (stderr '%.200s')",
               names[i], r.out, r.err);
    /* with its current value, as set in STRATA_OPTIONS */
    r = run((char *[]){STRATA, "options", NULL}, (char *[]){"STRATA_OPTIONS=top_pad=1m", NULL});
    CHECKF(r.exited && r.code == 0, "code %d", r.code);
    CHECKF(strstr(r.out, "top_pad=1048576") != NULL, "STRATA_OPTIONS=top_pad=1m: stdout '%.300s'", r.out);
}

static void version_matches_the_header(void) {
    th_result r = run((char *[]){STRATA, "version", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(!strcmp(r.out, "strata " STRATA_VERSION_STRING "\n"), "stdout '%s', want 'strata %s'", r.out,
           STRATA_VERSION_STRING);
    r = run((char *[]){STRATA, "--version", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "strata " STRATA_VERSION_STRING "\n") && !r.err[0],
           "--version: code %d out '%s' err '%s'", r.code, r.out, r.err);
}

/* ---- the library ---- */

/* LD_PRELOAD already set is kept beside libstrata: a small library whose constructor speaks. */
static void existing_ld_preload_is_kept(void) {
    char src[PATH_MAX], lib[PATH_MAX];
    snprintf(src, sizeof src, "%s/marker.c", tmp);
    snprintf(lib, sizeof lib, "%s/libmarker.so", tmp);
    FILE *f = fopen(src, "w");
    CHECK(f != NULL);
    fputs("#include <unistd.h>\n"
          "__attribute__((constructor)) static void marker(void) {\n"
          "    static const char m[] = \"marker library loaded\\n\";\n"
          "    if (write(2, m, sizeof m - 1) < 0) _exit(99);\n"
          "}\n",
          f);
    fclose(f);
    th_result c = run((char *[]){"cc", "-shared", "-fPIC", "-o", lib, src, NULL}, NULL);
    if (!c.exited || c.code != 0) SKIP("cannot build a small shared library with cc: %.100s", c.err);
    char env[PATH_MAX + 16];
    snprintf(env, sizeof env, "LD_PRELOAD=%s", lib);
    th_result r = run((char *[]){STRATA, "run", "-v", "--", "sh", "-c", "echo \"$LD_PRELOAD\"", NULL},
                      (char *[]){env, NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.out, lib) != NULL, "the old LD_PRELOAD was dropped: LD_PRELOAD='%.*s'",
           (int)strcspn(r.out, "\n"), r.out);
    CHECKF(strstr(r.out, "libstrata.so") != NULL, "libstrata.so not preloaded: LD_PRELOAD='%.*s'",
           (int)strcspn(r.out, "\n"), r.out);
    CHECKF(strstr(r.err, "marker library loaded") != NULL, "the other library did not load: %s", r.err);
    CHECKF(strstr(r.err, VERSION_LINE) != NULL, "strata did not serve: %s", r.err);
    /* both are mapped in the command itself */
    r = run((char *[]){STRATA, "run", "--", "sh", "-c",
                       "grep -q libmarker.so /proc/$$/maps && grep -q libstrata.so /proc/$$/maps && echo both",
                       NULL},
            (char *[]){env, NULL});
    CHECKF(r.exited && r.code == 0 && !strcmp(r.out, "both\n"), "code %d out '%s' err %s", r.code, r.out,
           r.err);
}

static void library_is_found_beside_the_command(void) {
    /* through a symlink elsewhere: the library is still found from the real location */
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/strata-link", tmp);
    CHECK(symlink(STRATA, link) == 0);
    th_result r = run((char *[]){link, "run", "-v", "--", "sh", "-c", "echo \"$LD_PRELOAD\"", NULL}, NULL);
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.err, VERSION_LINE) != NULL, "stderr: %s", r.err);
    CHECKF(r.out[0] == '/' && strstr(r.out, "libstrata.so"), "LD_PRELOAD='%.*s' is not an absolute path",
           (int)strcspn(r.out, "\n"), r.out);
}

static void strata_library_variable(void) {
    /* pointing at the library: used */
    th_result r = run((char *[]){STRATA, "run", "-v", "--", "sh", "-c", "echo \"$LD_PRELOAD\"", NULL},
                      (char *[]){"STRATA_LIBRARY=" LIBSTRATA, NULL});
    CHECKF(r.exited && r.code == 0, "code %d; stderr: %s", r.code, r.err);
    CHECKF(strstr(r.out, LIBSTRATA) != NULL, "LD_PRELOAD='%.*s'", (int)strcspn(r.out, "\n"), r.out);
    CHECKF(strstr(r.err, VERSION_LINE) != NULL, "stderr: %s", r.err);
    /* pointing at nothing: a clear one-line message, the command not run, a failing status */
    r = run((char *[]){STRATA, "run", "--", "sh", "-c", "echo ran", NULL},
            (char *[]){"STRATA_LIBRARY=/nonexistent/libstrata.so", NULL});
    CHECKF(r.exited && r.code != 0, "exited %d code %d", r.exited, r.code);
    CHECKF(r.out[0] == '\0', "the command ran anyway: %s", r.out);
    CHECKF(!strncmp(r.err, "strata: ", 8) && strstr(r.err, "/nonexistent/libstrata.so") && lines(r.err) == 1,
           "stderr: '%s'", r.err);
    CHECKF(strstr(r.err, "STRATA_LIBRARY") != NULL, "the message does not say where the path came from: %s",
           r.err);
}

int main(void) {
    if (!th_command_setup(STRATA, LIBSTRATA, tmp)) return 1;

    RUN(exit_status_passes_through);
    RUN(signal_passes_through);
    RUN(run_execs_in_place);
    RUN(io_and_arguments_pass_through);
    RUN(verbose_flag_shows_strata_serving);
    RUN(options_flag_reaches_the_library);
    RUN(environment_and_command_line_options_combine);
    RUN(bad_option_value_is_reported_once);
    RUN(bad_command_lines_print_usage_and_exit_2);
    RUN(help_prints_usage_on_stdout);
    RUN(every_subcommand_has_help);
    RUN(unknown_options_exit_2);
    RUN(missing_command_exits_127);
    RUN(command_that_cannot_execute_exits_126);
    RUN(options_lists_every_option);
    RUN(version_matches_the_header);
    RUN(existing_ld_preload_is_kept);
    RUN(library_is_found_beside_the_command);
    RUN(strata_library_variable);
    return 0;
}
