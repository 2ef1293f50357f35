/*
 * report.c — `strata report` (tools/report.c and what it draws with: dump.c, symbols.c,
 * elfsyms.c, diagrun.c, report_page.c, chart.c, flame.c).
 *
 *   strata report [-o OPTIONS] [-O FILE] [--depth N] [--] CMD ARGS...
 *   strata report --from-dump DUMP [-O FILE] | --from-dump DUMP --stacks
 *
 * Hand-written dumps drawn with --from-dump: the page has its four sections, totals, leaks lost
 * before reachable, and no markup but its own (a function called operator< and a file called
 * <b>tree</b>.cc, from a stand-in addr2line, come out as text); headless Chromium, where there is
 * one, loads the page and its script finds every chart mark and point laid out, and zooms the
 * flame graph. A small program built here with -g writes a dump of its own return addresses:
 * they come out as its function and file:line (addr2line), as func+0xOFF from the symbol table
 * (no addr2line), and libc's as something better than ??. A missing, garbled, newer, malformed
 * or empty dump is one line and status 1; a dump cut short is drawn as far as it goes. Running a
 * command goes through a stand-in diag library built here (STRATA_DIAG_LIBRARY): its options,
 * the exit status, a SIGKILL (no dump: one line), a command not found, an unwritable report.
 * Bad command lines exit 2 with the usage.
 */
#include "harness.h" /* first: it defines _GNU_SOURCE */

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#ifndef STRATA_ROOT
#error "compile with -DSTRATA_ROOT='\"/path/to/repo\"'"
#endif

#define STRATA STRATA_ROOT "/bin/strata"

static char tmp[] = "/tmp/strata-report-XXXXXX";

/* ---- files and commands ---- */

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmp, name); }

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* The whole file, NUL-terminated (free it); NULL if it cannot be read. */
static char *read_text(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t len = 0, cap = 1 << 16;
    char *s = malloc(cap);
    size_t n;
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0)
        if ((len += n) == cap - 1) s = realloc(s, cap *= 2);
    fclose(f);
    if (s) s[len] = '\0';
    return s;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* A program on PATH, or NULL. */
static const char *which(const char *name) {
    static char found[PATH_MAX];
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/%s", (int)n, p, name);
        if (n && access(found, X_OK) == 0) return found;
        p += n + (p[n] == ':');
    }
    return NULL;
}

/* ---- the dumps ---- */

/* Three stacks in the program ("" module: the exe) and a library, three sites (the third too
 * small to draw: 5 frames in the flame graph), leaks, four samples, four size ranges, a record
 * type and a total this strata does not know. %s: the exe. */
static const char fixture[] =
    "strata-diag 1\n"
    "process 4242 report exit\n"
    "exe %s\n"
    "module 0x555555554000 0x555555555000 0x555555560000 \n"
    "module 0x7ffff7d80000 0x7ffff7da8000 0x7ffff7f3d000 /nonexistent/my libs/libfoo.so.6\n"
    "stack 1 3 0x555555555100 0x555555555200 0x7ffff7da9000\n"
    "stack 2 3 0x555555555300 0x555555555200 0x7ffff7da9000\n"
    "stack 3 2 0x7ffff7db0000 0x555555555400\n"
    "site 1 100 409600 90\n"
    "site 2 10 1024 0\n"
    "site 3 5 50 5\n"
    "leak 2 reachable 10 1024 0x5555555a1010\n"
    "leak 1 reachable 1 16 0x5555555a2010\n"
    "leak 1 lost 10 40960 0x5555555a0010\n"
    "sample 0 0 1048576 0\n"
    "sample 10 100000 2097152 50\n"
    "sample 30 50000 3145728 115\n"
    "sample 20 400000 4194304 100\n"
    "size 16 5 50\n"
    "size 32 0 0\n"
    "size 64 0 0\n"
    "size 4096 110 410624\n"
    "wibble 1 2 3\n"
    "total allocs 115\n"
    "total frees 95\n"
    "total bytes 410674\n"
    "total newthing 7\n"
    "total lost_nostack_blocks 3\n"
    "end\n";

#define FIXTURE_DRAWN "heap=2 sites=5 sizes=4 size-bytes=4"

static bool write_fixture(const char *path, const char *exe) {
    char text[sizeof fixture + PATH_MAX];
    snprintf(text, sizeof text, fixture, exe);
    return write_text(path, text);
}

/* Draw `dump` into `html` (both in tmp); the result, its page in *page (free it). */
static th_result draw(const char *dump, const char *html, char **page, char *const env[]) {
    char d[PATH_MAX], h[PATH_MAX];
    path_of(d, sizeof d, dump);
    path_of(h, sizeof h, html);
    unlink(h);
    th_result r = th_exec((char *[]){STRATA, "report", "--from-dump", d, "-O", h, NULL}, env);
    *page = read_text(h);
    return r;
}

/* ---- the page ---- */

static const char *const tags[] = {
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "code", "nav", "a",
    "table", "tr", "th", "td", "section", "svg", "line", "text", "polyline", "rect", "g", "details", "summary",
    "pre", "span", "b", "footer", "script",
};

/* Every '<' outside the script opens or closes one of the page's own tags: nothing taken from
 * the program made markup. On failure, *where is the offending text. */
static bool only_own_markup(const char *page, const char **where) {
    for (const char *p = strchr(page, '<'); p; p = strchr(p + 1, '<')) {
        if (!strncmp(p, "<script>", 8)) {
            p = strstr(p, "</script>");
            if (!p) return *where = "no </script>", false;
            continue;
        }
        const char *name = p + 1 + (p[1] == '/');
        size_t n = strspn(name, "!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
        bool known = false;
        for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) known |= strlen(tags[i]) == n && !strncmp(name, tags[i], n);
        if (!known) return *where = p, false;
    }
    return true;
}

static bool has_sections(const char *page) {
    static const char *const ids[] = {"heap", "sites", "leaks", "sizes"};
    for (size_t i = 0; i < 4; i++) {
        char s[64];
        snprintf(s, sizeof s, "<section id=\"%s\">", ids[i]);
        if (!strstr(page, s)) return false;
    }
    return count(page, "<section") == count(page, "</section>");
}

static void fixture_draws_every_section(void) {
    char dump[PATH_MAX], html[PATH_MAX], want[PATH_MAX + 64];
    path_of(dump, sizeof dump, "fixture.dump");
    CHECK(write_fixture(dump, "/nonexistent/leaky"));
    char *page;
    th_result r = draw("fixture.dump", "fixture.html", &page, NULL);
    path_of(html, sizeof html, "fixture.html");
    snprintf(want, sizeof want, "strata: report written to %s (3 sites, 3 leaks)\n", html);
    CHECKF(r.exited && r.code == 0 && !strcmp(r.err, want) && !r.out[0], "code %d err '%s' out '%.200s'", r.code,
           r.err, r.out);
    CHECKF(page != NULL, "no page at %s", html);
    CHECKF(!strncmp(page, "<!DOCTYPE html>\n", 16) && strstr(page, "</html>\n"), "%.300s", page);
    CHECKF(has_sections(page), "sections missing: %.3000s", page);
    const char *where = "";
    CHECKF(only_own_markup(page, &where), "markup not the page's own: %.80s", where);
    CHECKF(!strstr(page, "http") && !strstr(page, " src=") && !strstr(page, "<link") && !strstr(page, "url("),
           "the page refers to something outside it");
    CHECKF(strstr(page, "<title>strata report: /nonexistent/leaky</title>"), "title: %.500s", page);
    CHECKF(strstr(page, "leaky+0x1100") && strstr(page, "libfoo.so.6+0x29000"), "frames not named module+0xOFF");
    CHECKF(strstr(page, "newthing") && strstr(page, "1 records of unknown types skipped"), "unknown keys and records");
    CHECKF(strstr(page, "lost blocks with no stack recorded") && !strstr(page, "lost_nostack"),
           "a total the library writes shown by its key, not in words");
    const char *lost = strstr(page, "<td class=\"lost\">"), *reachable = strstr(page, "<td class=\"reachable\">");
    CHECKF(lost && reachable && lost < reachable, "lost leaks do not come first");
    CHECKF(strstr(page, "data-chart=\"heap\" data-marks=\"2\" data-points=\"8\"") &&
               strstr(page, "data-chart=\"sites\" data-marks=\"5\"") && strstr(page, "data-chart=\"sizes\" data-marks=\"4\""),
           "chart mark counts");
    free(page);
}

static const char fake_addr2line[] = "#!/bin/sh\n"
                                     "while read a; do\n"
                                     "  echo 'operator<(Node const&, Node const&)'\n"
                                     "  echo '/src/<b>tree</b>.cc:7'\n"
                                     "done\n";

/* A stand-in addr2line that names every function operator< in a file <b>tree</b>.cc, and an
 * executable whose path has markup in it too. */
static bool write_planted(char *env_var, size_t cap) {
    char prog[PATH_MAX], exe[PATH_MAX], dump[PATH_MAX];
    path_of(prog, sizeof prog, "addr2line");
    path_of(exe, sizeof exe, "prog<i>&\"q\"");
    path_of(dump, sizeof dump, "planted.dump");
    if (!write_text(prog, fake_addr2line) || chmod(prog, 0755) != 0 || !write_text(exe, "not a program\n"))
        return false;
    snprintf(env_var, cap, "STRATA_ADDR2LINE=%s", prog);
    return write_fixture(dump, exe);
}

static void program_names_are_escaped(void) {
    char env_var[PATH_MAX + 32];
    CHECK(write_planted(env_var, sizeof env_var));
    char *page;
    th_result r = draw("planted.dump", "planted.html", &page, (char *[]){env_var, NULL});
    CHECKF(r.exited && r.code == 0 && page, "code %d err %s", r.code, r.err);
    const char *where = "";
    CHECKF(only_own_markup(page, &where), "markup not the page's own: %.80s", where);
    CHECKF(!strstr(page, "operator<") && strstr(page, "operator&lt;(Node const&amp;, Node const&amp;)"),
           "operator< not escaped");
    CHECKF(!strstr(page, "<b>tree") && strstr(page, "&lt;b&gt;tree&lt;/b&gt;.cc:7"), "file name not escaped");
    CHECKF(strstr(page, "prog&lt;i&gt;&amp;&quot;q&quot;"), "exe path not escaped");
    free(page);
}

/* Replace the first `from` in text (of capacity cap) with `to`. */
static void substitute(char *text, size_t cap, const char *from, const char *to) {
    char *at = strstr(text, from);
    size_t a = strlen(from), b = strlen(to);
    if (!at || strlen(text) - a + b >= cap) abort();
    memmove(at + b, at + a, strlen(at + a) + 1);
    memcpy(at, to, b);
}

/* Guard mode: the misuse that stopped the program, with the stacks of its block. */
static void misuse_is_shown(void) {
    char dump[PATH_MAX], text[sizeof fixture + PATH_MAX + 128], *page;
    path_of(dump, sizeof dump, "guard.dump");
    snprintf(text, sizeof text, fixture, "/nonexistent/leaky");
    substitute(text, sizeof text, "report exit\n", "guard signal 11\n");
    substitute(text, sizeof text, "end\n", "error use-after-free 0x5555555a0010 1 2 64 16 write\nend\n");
    CHECK(write_text(dump, text));
    th_result r = draw("guard.dump", "guard.html", &page, NULL);
    CHECKF(r.exited && r.code == 0 && page, "code %d err %s", r.code, r.err);
    CHECKF(strstr(page, "killed by signal 11 (SIGSEGV)"), "outcome: %.300s", strstr(page, "<p class=\"outcome\">"));
    const char *error = strstr(page, "<section id=\"error\">");
    CHECKF(error && error < strstr(page, "<section id=\"heap\">"), "no misuse section before the others");
    CHECKF(strstr(error, "<b>use-after-free</b>: write at 0x5555555a0010, 16 bytes from the start of a block of 64 B"),
           "%.400s", error);
    CHECKF(strstr(error, "allocated at") && strstr(error, "freed at") && strstr(error, "leaky+0x1300"), "stacks");
    free(page);
}

/* ---- headless Chromium ---- */

static const char *chromium(void) {
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (which(names[i])) return which(names[i]);
    return NULL;
}

/* The DOM of the page `html` (in tmp) after load, with its script run; NULL if Chromium failed. */
static char *dom_of(const char *browser, const char *html, const char *fragment) {
    char page[PATH_MAX], out[PATH_MAX], profile[PATH_MAX], url[PATH_MAX + 64], cmd[4 * PATH_MAX];
    path_of(page, sizeof page, html);
    path_of(out, sizeof out, "dom.html");
    path_of(profile, sizeof profile, "chromium-profile");
    snprintf(url, sizeof url, "file://%s%s", page, fragment);
    snprintf(cmd, sizeof cmd,
             "timeout 120 '%s' --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir='%s' "
             "--dump-dom '%s' >'%s' 2>/dev/null",
             browser, profile, url, out);
    unlink(out);
    if (system(cmd) != 0) return NULL;
    return read_text(out);
}

/* Each chart's marks and points as the browser laid them out match what strata drew. */
static bool charts_match(const char *dom, const char **bad) {
    int n = 0;
    for (const char *p = strstr(dom, "<svg "); p; p = strstr(p + 1, "<svg ")) {
        int marks = -1, drawn = -2, points = -1, drawn_points = -2;
        const char *m = strstr(p, "data-marks=\""), *d = strstr(p, "data-drawn=\""), *e = strchr(p, '>');
        const char *pt = strstr(p, "data-points=\""), *dp = strstr(p, "data-drawn-points=\"");
        if (m && m < e) sscanf(m, "data-marks=\"%d", &marks);
        if (d && d < e) sscanf(d, "data-drawn=\"%d", &drawn);
        if (pt && pt < e) sscanf(pt, "data-points=\"%d", &points);
        if (dp && dp < e) sscanf(dp, "data-drawn-points=\"%d", &drawn_points);
        if (marks != drawn || points != drawn_points) return *bad = p, false;
        n++;
    }
    return *bad = "fewer than 4 charts", n >= 4;
}

/* The flame graph frame labelled `label` has `what` in it (its attributes, rect or text). */
static bool in_frame(const char *dom, const char *label, const char *what) {
    char attr[256];
    snprintf(attr, sizeof attr, "data-l=\"%s\"", label);
    const char *frame = strstr(dom, attr), *end = frame ? strstr(frame, "</g>") : NULL, *found = end ? strstr(frame, what) : NULL;
    return found && found < end;
}

static void chromium_draws_the_charts(void) {
    const char *browser = chromium();
    if (!browser) SKIP("no chromium (.ci/run installs it where it can)");
    char *page;
    th_result r = draw("fixture.dump", "fixture.html", &page, NULL);
    CHECKF(r.exited && r.code == 0 && page, "code %d err %s", r.code, r.err);
    free(page);
    char *dom = dom_of(browser, "fixture.html", "");
    if (!dom) SKIP("%s does not run here", browser);
    CHECKF(strstr(dom, "data-script=\"ok\""), "the script did not run to its end: %.400s", dom);
    CHECKF(strstr(dom, "<body data-drawn=\"" FIXTURE_DRAWN "\""), "drawn: %.300s", strstr(dom, "<body"));
    const char *bad = "";
    CHECKF(charts_match(dom, &bad), "a chart differs: %.300s", bad);
    CHECKF(strstr(dom, "data-chart=\"heap\"") && strstr(dom, "data-drawn-points=\"8\""), "heap chart points");
    free(dom);
    /* #zoom=3: the fourth frame (leaky+0x1100, under all, libfoo, leaky+0x1200) fills the width */
    dom = dom_of(browser, "fixture.html", "#zoom=3");
    CHECKF(dom && strstr(dom, "data-zoom=\"leaky+0x1100\""), "no zoom: %.300s", dom ? strstr(dom, "<body") : "");
    CHECKF(in_frame(dom, "leaky+0x1100", "width=\"960.00\""), "the zoomed frame is not full width");
    CHECKF(in_frame(dom, "all", "width=\"960.00\"") && !in_frame(dom, "all", "display: none"), "its caller");
    CHECKF(in_frame(dom, "leaky+0x1300", "display: none"), "the frame beside it is still shown");
    free(dom);
}

static void chromium_shows_planted_names_as_text(void) {
    const char *browser = chromium();
    if (!browser) SKIP("no chromium (.ci/run installs it where it can)");
    char env_var[PATH_MAX + 32], *page;
    CHECK(write_planted(env_var, sizeof env_var));
    th_result r = draw("planted.dump", "planted.html", &page, (char *[]){env_var, NULL});
    CHECKF(r.exited && r.code == 0 && page, "code %d err %s", r.code, r.err);
    free(page);
    char *dom = dom_of(browser, "planted.html", "");
    if (!dom) SKIP("%s does not run here", browser);
    CHECKF(strstr(dom, "data-script=\"ok\""), "the script did not run to its end");
    CHECKF(!strstr(dom, "<operator") && !strstr(dom, "<b>tree") && strstr(dom, "operator&lt;(Node const&amp;"),
           "a planted name became markup");
    const char *bad = "";
    CHECKF(charts_match(dom, &bad), "a chart differs: %.300s", bad);
    free(dom);
}

/* ---- symbols of a real program ---- */

/* Writes a dump of two return addresses: one in make_node (the line marked CALL), one in libc
 * (qsort calling back). Its modules come from dl_iterate_phdr, as the diag library's do. */
static const char leaky_c[] =
    "#define _GNU_SOURCE\n"
    "#include <link.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <unistd.h>\n"
    "static FILE *out;\n"
    "static unsigned long ra[2];\n"
    "__attribute__((noinline)) static void capture(void) {\n"
    "    ra[0] = (unsigned long)__builtin_return_address(0);\n"
    "    __asm__ volatile(\"\");\n"
    "}\n"
    "__attribute__((noinline)) void make_node(void) {\n"
    "    capture(); /* CALL */\n"
    "    __asm__ volatile(\"\");\n"
    "}\n"
    "static int cmp(const void *a, const void *b) {\n"
    "    ra[1] = (unsigned long)__builtin_return_address(0);\n"
    "    return *(const int *)a - *(const int *)b;\n"
    "}\n"
    "static int module(struct dl_phdr_info *m, size_t size, void *arg) {\n"
    "    for (int i = 0; i < m->dlpi_phnum; i++) {\n"
    "        const ElfW(Phdr) *ph = &m->dlpi_phdr[i];\n"
    "        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X))\n"
    "            fprintf(out, \"module 0x%lx 0x%lx 0x%lx %s\\n\", (unsigned long)m->dlpi_addr,\n"
    "                    (unsigned long)(m->dlpi_addr + ph->p_vaddr),\n"
    "                    (unsigned long)(m->dlpi_addr + ph->p_vaddr + ph->p_memsz), m->dlpi_name);\n"
    "    }\n"
    "    return 0;\n"
    "}\n"
    "int main(int argc, char **argv) {\n"
    "    int v[2] = {2, 1};\n"
    "    char exe[4096];\n"
    "    ssize_t n = readlink(\"/proc/self/exe\", exe, sizeof exe - 1);\n"
    "    exe[n > 0 ? n : 0] = 0;\n"
    "    make_node();\n"
    "    qsort(v, 2, sizeof *v, cmp);\n"
    "    if (!(out = fopen(argv[1], \"w\"))) return 1;\n"
    "    fprintf(out, \"strata-diag 1\\nprocess %d report exit\\nexe %s\\n\", (int)getpid(), exe);\n"
    "    dl_iterate_phdr(module, NULL);\n"
    "    fprintf(out, \"stack 1 1 0x%lx\\nstack 2 1 0x%lx\\n\", ra[0], ra[1]);\n"
    "    fprintf(out, \"site 1 1 100 0\\nsite 2 1 10 0\\nleak 1 lost 1 100 0x1000\\nend\\n\");\n"
    "    return fclose(out) != 0;\n"
    "}\n";

static int call_line(void) {
    int line = 1;
    for (const char *p = leaky_c; p < strstr(leaky_c, "/* CALL */"); p++) line += *p == '\n';
    return line;
}

/* Build leaky, run it; its dump's path in `dump`. False with a reason in `why` when there is
 * no compiler (a skip), or the program failed. */
static bool leaky_dump(char *dump, size_t cap, char *why, size_t why_cap, bool *skip) {
    char src[PATH_MAX], exe[PATH_MAX], cmd[3 * PATH_MAX];
    path_of(src, sizeof src, "leaky.c");
    path_of(exe, sizeof exe, "leaky");
    path_of(dump, cap, "leaky.dump");
    *skip = !which("cc");
    if (*skip) return snprintf(why, why_cap, "no cc to build the program"), false;
    snprintf(cmd, sizeof cmd, "cc -g -O0 -o '%s' '%s' && '%s' '%s'", exe, src, exe, dump);
    if (!write_text(src, leaky_c) || system(cmd) != 0) return snprintf(why, why_cap, "%s failed", cmd), false;
    return true;
}

/* The line of --stacks output for frame #0 of stack `id`. */
static bool frame_line(const char *out, int id, char *line, size_t cap) {
    char head[32];
    snprintf(head, sizeof head, "stack %d (", id);
    const char *s = strstr(out, head), *f = s ? strstr(s, "#0 0x") : NULL;
    if (!f) return false;
    snprintf(line, cap, "%.*s", (int)strcspn(f, "\n"), f);
    return true;
}

/* The address of frame #0 of stack `id` in the dump. */
static bool dump_address(const char *dump_text, int id, char *addr, size_t cap) {
    char head[32];
    snprintf(head, sizeof head, "\nstack %d 1 ", id);
    const char *s = strstr(dump_text, head);
    if (!s) return false;
    s += strlen(head);
    snprintf(addr, cap, "%.*s", (int)strcspn(s, "\n"), s);
    return true;
}

static void symbols_name_function_and_line(void) {
    char dump[PATH_MAX], why[3 * PATH_MAX + 64], want[128], line[512], addr[32];
    bool skip;
    if (!leaky_dump(dump, sizeof dump, why, sizeof why, &skip)) {
        if (skip) SKIP("%s", why);
        CHECKF(0, "%s", why);
    }
    char *text = read_text(dump);
    CHECK(text && dump_address(text, 1, addr, sizeof addr));
    free(text);
    th_result r = th_exec((char *[]){STRATA, "report", "--from-dump", dump, "--stacks", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && !r.err[0], "code %d err %s", r.code, r.err);
    CHECKF(frame_line(r.out, 1, line, sizeof line), "no stack 1: %s", r.out);
    snprintf(want, sizeof want, "#0 %s in make_node (", addr);
    CHECKF(!strncmp(line, want, strlen(want)), "'%s', not '%s...'", line, want);
    snprintf(want, sizeof want, "leaky.c:%d)", call_line());
    CHECKF(strstr(line, want) && line[strlen(line) - 1] == ')', "'%s' has no %s", line, want);
    CHECKF(frame_line(r.out, 2, line, sizeof line) && !strstr(line, " in ??"), "libc's frame: %s", r.out);
    /* and in the page */
    char html[PATH_MAX];
    path_of(html, sizeof html, "leaky.html");
    r = th_exec((char *[]){STRATA, "report", "--from-dump", dump, "-O", html, NULL}, NULL);
    char *page = read_text(html);
    CHECKF(r.exited && r.code == 0 && page, "code %d err %s", r.code, r.err);
    CHECKF(strstr(page, "data-l=\"make_node\"") && strstr(page, want), "make_node or its line not in the page");
    free(page);
}

static void symbols_without_addr2line(void) {
    char dump[PATH_MAX], why[3 * PATH_MAX + 64], line[512];
    bool skip;
    if (!leaky_dump(dump, sizeof dump, why, sizeof why, &skip)) {
        if (skip) SKIP("%s", why);
        CHECKF(0, "%s", why);
    }
    th_result r = th_exec((char *[]){STRATA, "report", "--from-dump", dump, "--stacks", NULL},
                          (char *[]){"STRATA_ADDR2LINE=/nonexistent/addr2line", NULL});
    CHECKF(r.exited && r.code == 0, "code %d err %s", r.code, r.err);
    CHECKF(frame_line(r.out, 1, line, sizeof line) && strstr(line, " in make_node+0x") && strstr(line, " (leaky)"),
           "%s", r.out);
    CHECKF(frame_line(r.out, 2, line, sizeof line) && strstr(line, "libc.so.6"), "libc's frame: %s", r.out);
}

/* ---- dumps that cannot be drawn, or only partly ---- */

/* `text` as a dump: drawing it fails with exactly `want` (%s: the dump's path). */
static bool refused(const char *text, const char *want, char *why, size_t cap) {
    char dump[PATH_MAX], html[PATH_MAX], line[2 * PATH_MAX];
    path_of(dump, sizeof dump, "bad.dump");
    path_of(html, sizeof html, "bad.html");
    unlink(dump);
    unlink(html);
    if (text && !write_text(dump, text)) return snprintf(why, cap, "cannot write %s", dump), false;
    snprintf(line, sizeof line, want, dump);
    th_result r = th_exec((char *[]){STRATA, "report", "--from-dump", dump, "-O", html, NULL}, NULL);
    if (r.exited && r.code == 1 && !strcmp(r.err, line) && !r.out[0] && !exists(html)) return true;
    snprintf(why, cap, "code %d, stderr '%s', not '%s'%s", r.code, r.err, line, exists(html) ? "; a page written" : "");
    return false;
}

static void bad_dumps_are_one_line(void) {
    char why[3 * PATH_MAX];
    CHECKF(refused(NULL, "strata: %s: No such file or directory\n", why, sizeof why), "missing: %s", why);
    CHECKF(refused("hello\n", "strata: %s: not a strata diagnostics dump (its first line is not 'strata-diag 1')\n",
                   why, sizeof why),
           "garbled: %s", why);
    CHECKF(refused("", "strata: %s: empty file (not a strata diagnostics dump)\n", why, sizeof why), "empty: %s", why);
    CHECKF(refused("strata-diag 2\nend\n", "strata: %s: dump format version 2 (this strata reads version 1)\n", why,
                   sizeof why),
           "newer: %s", why);
    CHECKF(refused("strata-diag 1\nsite 1 2 3 4\nstack 1 2 0x10\nend\n", "strata: %s:3: malformed stack record\n", why,
                   sizeof why),
           "malformed: %s", why);
    CHECKF(refused("strata-diag 1\nleak 1 forgotten 1 2 0x3\n", "strata: %s:2: malformed leak record\n", why,
                   sizeof why),
           "bad leak kind: %s", why);
}

static void dump_cut_short_is_drawn_as_far_as_it_goes(void) {
    char dump[PATH_MAX], text[sizeof fixture + 64];
    path_of(dump, sizeof dump, "short.dump");
    snprintf(text, sizeof text, fixture, "/nonexistent/leaky");
    *strstr(text, "end\n") = '\0';
    strcat(text, "stack 9 3 0x5555"); /* the process died in the middle of this line */
    CHECK(write_text(dump, text));
    th_result r = th_exec((char *[]){STRATA, "report", "--from-dump", dump, "--stacks", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "stack 3 (2 frames)") && !strstr(r.out, "stack 9"),
           "code %d out %s err %s", r.code, r.out, r.err);
    char *page;
    r = draw("short.dump", "short.html", &page, NULL);
    CHECKF(r.exited && r.code == 0 && page && has_sections(page), "code %d err %s", r.code, r.err);
    CHECKF(strstr(page, "was cut short"), "no word that the dump was cut short");
    free(page);
}

/* ---- running a command ---- */

/* A stand-in for libstrata-diag.so: at exit, a small dump at diag_file.PID, with the mode and
 * diag_depth it was given (total depth) and the number of options it saw (total options). */
static const char fake_diag_c[] =
    "#define _GNU_SOURCE\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <unistd.h>\n"
    "static void option(const char *all, const char *name, char *buf, size_t cap) {\n"
    "    size_t k = strlen(name);\n"
    "    for (const char *p = all ? all : \"\"; *p; p += strcspn(p, \",\"), p += *p == ',') {\n"
    "        size_t n = strcspn(p, \",\");\n"
    "        if (n > k && !strncmp(p, name, k) && p[k] == '=') snprintf(buf, cap, \"%.*s\", (int)(n - k - 1), p + k + 1);\n"
    "    }\n"
    "}\n"
    "__attribute__((destructor)) static void write_dump(void) {\n"
    "    const char *all = getenv(\"STRATA_OPTIONS\");\n"
    "    char mode[32] = \"\", prefix[4096] = \"\", depth[32] = \"0\", path[4200];\n"
    "    option(all, \"diag\", mode, sizeof mode);\n"
    "    option(all, \"diag_file\", prefix, sizeof prefix);\n"
    "    option(all, \"diag_depth\", depth, sizeof depth);\n"
    "    snprintf(path, sizeof path, \"%s.%d\", prefix, (int)getpid());\n"
    "    FILE *f = *prefix ? fopen(path, \"w\") : NULL;\n"
    "    if (!f) return;\n"
    "    fprintf(f, \"strata-diag 1\\nprocess %d %s exit\\n\", (int)getpid(), mode);\n"
    "    fprintf(f, \"sample 0 0 4096 0\\nsample 5 64 8192 1\\nstack 1 1 0x1234\\nsite 1 1 64 0\\n\");\n"
    "    fprintf(f, \"size 64 1 64\\ntotal allocs 1\\ntotal depth %s\\n\", depth);\n"
    "    fprintf(f, \"total verbose_%s 1\\nend\\n\", strstr(all, \"verbose=1\") ? \"on\" : \"off\");\n"
    "    fclose(f);\n"
    "}\n";

static char fake_env[PATH_MAX + 32];

/* Build the stand-in diag library once; false with `why` (a skip when there is no cc). */
static bool fake_diag(char *why, size_t cap, bool *skip) {
    char src[PATH_MAX], lib[PATH_MAX], cmd[3 * PATH_MAX];
    path_of(src, sizeof src, "fake_diag.c");
    path_of(lib, sizeof lib, "libfake-diag.so");
    snprintf(fake_env, sizeof fake_env, "STRATA_DIAG_LIBRARY=%s", lib);
    if (exists(lib)) return true;
    *skip = !which("cc");
    if (*skip) return snprintf(why, cap, "no cc to build a stand-in diag library"), false;
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -o '%s' '%s'", lib, src);
    if (!write_text(src, fake_diag_c) || system(cmd) != 0) return snprintf(why, cap, "%s failed", cmd), false;
    return true;
}

#define NEED_FAKE_DIAG()                                                                                        \
    do {                                                                                                        \
        char why_[3 * PATH_MAX];                                                                                \
        bool skip_ = false;                                                                                     \
        if (!fake_diag(why_, sizeof why_, &skip_)) {                                                            \
            if (skip_) SKIP("%s", why_);                                                                        \
            CHECKF(0, "%s", why_);                                                                              \
        }                                                                                                       \
    } while (0)

/* Nothing left in the directory strata was given as TMPDIR. */
static bool temp_dir_empty(void) {
    char dir[PATH_MAX], cmd[PATH_MAX + 32];
    path_of(dir, sizeof dir, "t");
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    return system(cmd) == 0;
}

/* Mode "exit3": what the command runs (sh would not do: dash leaves with _exit, destructors and
 * all skipped, and the library never writes its dump). */
static int print_and_exit_3(void) {
    printf("out\n");
    return 3;
}

/* Mode "steady": a second of a few allocations each millisecond, the rest of the time asleep. */
static int allocate_steadily(void) {
    for (int ms = 0; ms < 1000; ms++) {
        for (int i = 0; i < 3; i++) free(malloc(100 + (size_t)i));
        usleep(1000);
    }
    return 0;
}

/* The real libstrata-diag.so, diag=report, on a program that allocates a few thousand times in
 * one second: the heap over time has a sample every few tens of milliseconds, not a handful. */
static void a_one_second_run_has_many_samples(void) {
    char exe[PATH_MAX], dump[PATH_MAX], opts[PATH_MAX + 64], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    path_of(dump, sizeof dump, "steady");
    snprintf(opts, sizeof opts, "STRATA_OPTIONS=diag=report,diag_file=%s", dump);
    th_result r = th_exec((char *[]){exe, "steady", NULL},
                          (char *[]){"LD_PRELOAD=" STRATA_ROOT "/lib/libstrata-diag.so", opts, NULL});
    CHECKF(r.exited && r.code == 0, "code %d err %s", r.code, r.err);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "cat %s.* > %s.all", dump, dump);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s.all", dump);
    char *text = read_text(path);
    CHECKF(text != NULL, "no dump at %s.*", dump);
    int samples = 0;
    for (const char *t = text; t && (t = strstr(t, "\nsample ")); t++) samples++;
    printf("# %d samples of the heap over one second\n", samples);
    CHECKF(samples >= 40, "%d samples of the heap over one second", samples);
    free(text);
}

static void runs_the_command_and_draws_its_dump(void) {
    NEED_FAKE_DIAG();
    char exe[PATH_MAX], tmpdir[PATH_MAX + 8], want[2 * PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n] = '\0';
    snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s/t", tmp);
    unlink("strata-report.html");
    th_result r = th_exec((char *[]){STRATA, "report", "-v", "--depth", "7", "--", exe, "exit3", "a b", NULL},
                          (char *[]){fake_env, tmpdir, NULL});
    CHECKF(r.exited && r.code == 3 && !strcmp(r.out, "out\n"), "code %d out '%s' err '%s'", r.code, r.out, r.err);
    CHECKF(!strcmp(r.err, "strata: report written to strata-report.html (1 sites, 0 leaks)\n"), "stderr '%s'", r.err);
    char *page = read_text("strata-report.html"); /* the current directory: tmp */
    CHECKF(page && has_sections(page), "no page in %s", tmp);
    snprintf(want, sizeof want, "<code class=\"command\">%s exit3 &#39;a b&#39;</code>", exe);
    CHECKF(strstr(page, want), "no %s: %.600s", want, page);
    CHECKF(strstr(page, "exited with status 3"), "outcome");
    CHECKF(strstr(page, "<th>stack depth</th><td class=\"n\">7</td>") && strstr(page, "verbose_on"),
           "--depth 7 or -v did not reach the library");
    free(page);
    CHECKF(temp_dir_empty(), "dumps left in %s/t", tmp);
}

static void a_killed_command_leaves_no_dump(void) {
    NEED_FAKE_DIAG();
    char html[PATH_MAX], tmpdir[PATH_MAX + 8];
    path_of(html, sizeof html, "killed.html");
    snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s/t", tmp);
    th_result r = th_exec((char *[]){STRATA, "report", "-O", html, "sh", "-c", "kill -KILL $$", NULL},
                          (char *[]){fake_env, tmpdir, NULL});
    CHECKF(r.exited && r.code == 128 + SIGKILL, "code %d err %s", r.code, r.err);
    CHECKF(strstr(r.err, "strata: sh killed by signal 9 (SIGKILL)\n") &&
               strstr(r.err, "strata: report: sh (pid ") && strstr(r.err, ") left no dump (") && lines(r.err) == 2,
           "stderr: %s", r.err);
    CHECKF(!exists(html), "a page was written");
    CHECKF(temp_dir_empty(), "files left in %s/t", tmp);
}

static void commands_that_cannot_run_or_report(void) {
    NEED_FAKE_DIAG();
    th_result r = th_exec((char *[]){STRATA, "report", "--", "/nonexistent/program", NULL}, (char *[]){fake_env, NULL});
    CHECKF(r.exited && r.code == 127 && !strcmp(r.err, "strata: cannot run '/nonexistent/program': No such file or "
                                                       "directory\n"),
           "code %d err '%s'", r.code, r.err);
    r = th_exec((char *[]){STRATA, "report", "-O", "/nonexistent/dir/r.html", "--", "sh", "-c", "echo ran", NULL},
                (char *[]){fake_env, NULL});
    CHECKF(r.exited && r.code == 1 && !r.out[0] && lines(r.err) == 1 &&
               !strncmp(r.err, "strata: report: cannot write /nonexistent/dir/r.html: ", 54),
           "code %d out '%s' err '%s'", r.code, r.out, r.err);
    r = th_exec((char *[]){STRATA, "report", "--", "sh", "-c", "echo ran", NULL},
                (char *[]){"STRATA_DIAG_LIBRARY=/nonexistent/libstrata-diag.so", NULL});
    CHECKF(r.exited && r.code == 1 && !r.out[0] &&
               !strcmp(r.err, "strata: STRATA_DIAG_LIBRARY=/nonexistent/libstrata-diag.so: No such file or "
                              "directory\n"),
           "code %d out '%s' err '%s'", r.code, r.out, r.err);
}

static void bad_command_lines_print_usage_and_exit_2(void) {
    static char *const bad[][6] = {
        {"report", NULL},
        {"report", "--", NULL},
        {"report", "--bogus", "true", NULL},
        {"report", "--depth", "0", "true", NULL},
        {"report", "--depth=x", "true", NULL},
        {"report", "--depth", NULL},
        {"report", "-O", NULL},
        {"report", "-o", NULL},
        {"report", "--from-dump", "d", "--", "true", NULL},
        {"report", "--from-dump", "d", "-o", "a=1", NULL},
        {"report", "--stacks", "true", NULL},
        {"report", "-O", "", "true", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[8] = {STRATA}, words[128] = "";
        int n = 1;
        for (int j = 0; bad[i][j]; j++) {
            argv[n++] = bad[i][j];
            snprintf(words + strlen(words), sizeof words - strlen(words), " %s", bad[i][j]);
        }
        argv[n] = NULL;
        th_result r = th_exec(argv, NULL);
        CHECKF(r.exited && r.code == 2 && !strncmp(r.err, "strata: ", 8) && strstr(r.err, "usage") &&
                   strstr(r.err, "strata report") && !r.out[0],
               "strata%s: code %d err '%.300s' out '%.100s'", words, r.code, r.err, r.out);
    }
    th_result r = th_exec((char *[]){STRATA, "help", NULL}, NULL);
    CHECKF(r.exited && r.code == 0 && strstr(r.out, "strata report [-o OPTIONS] [-v] [-O FILE] [--depth N]"), "help: %.500s",
           r.out);
}

static void cleanup(void) {
    char cmd[sizeof tmp + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "exit3")) return print_and_exit_3();
    if (argc > 1 && !strcmp(argv[1], "steady")) return allocate_steadily();
    if (access(STRATA, X_OK) != 0) {
        printf("not ok setup: %s missing (run make first)\n", STRATA);
        return 1;
    }
    static const char *const drop[] = {"LD_PRELOAD", "STRATA_OPTIONS", "STRATA_DIAG_LIBRARY", "STRATA_ADDR2LINE"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) unsetenv(drop[i]);
    setenv("LC_ALL", "C", 1);
    char t[sizeof tmp + 4];
    if (!mkdtemp(tmp) || snprintf(t, sizeof t, "%s/t", tmp) < 0 || mkdir(t, 0700) != 0 || chdir(tmp) != 0) {
        printf("not ok setup: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    atexit(cleanup);

    RUN(fixture_draws_every_section);
    RUN(program_names_are_escaped);
    RUN(misuse_is_shown);
    RUN(chromium_draws_the_charts);
    RUN(chromium_shows_planted_names_as_text);
    RUN(symbols_name_function_and_line);
    RUN(symbols_without_addr2line);
    RUN(bad_dumps_are_one_line);
    RUN(dump_cut_short_is_drawn_as_far_as_it_goes);
    RUN(a_one_second_run_has_many_samples);
    RUN(runs_the_command_and_draws_its_dump);
    RUN(a_killed_command_leaves_no_dump);
    RUN(commands_that_cannot_run_or_report);
    RUN(bad_command_lines_print_usage_and_exit_2);
    return 0;
}
