/*
 * symbols.c — name the return addresses of a dump's stacks (see symbols.h).
 *
 * A return address is the instruction after a call: the call itself, whose line is the one to
 * show, ends at the byte before it, so lookups use pc - 1 (and offsets shown are pc's own).
 *
 * addr2line reads each module's addresses from a temporary file (unlinked at once) on its
 * stdin, and writes two lines per address, function and file:line, to a pipe read to the end:
 * nothing waits on anything else, whatever the number of addresses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "elfsyms.h"
#include "symbols.h"

struct module_syms {
    const char *path; /* the file to read, or NULL when it is not a readable file */
    char *name;       /* its file name, for display */
    bool elf_tried;
    struct elf_symbols elf;
};

struct extra_frame { /* an address no stack had, resolved on demand */
    struct sym_frame f;
    struct extra_frame *next;
};

struct symbols {
    const struct dump *d;
    struct module_syms *mods; /* one per module of the dump */
    struct sym_frame *frames; /* every address of every stack, sorted by pc */
    size_t n;
    struct extra_frame *extra;
    bool no_addr2line; /* it could not be run once: do not try again */
    char cwd[PATH_MAX];
};

/* ---- modules ---- */

static void load_modules(struct symbols *s) {
    const struct dump *d = s->d;
    s->mods = cli_alloc((d->n_modules ? d->n_modules : 1) * sizeof *s->mods);
    for (size_t i = 0; i < d->n_modules; i++) {
        const char *path = dump_module_path(d, &d->modules[i]);
        struct stat st;
        const char *slash = strrchr(path, '/');
        s->mods[i].name = cli_strdup(*path ? (slash ? slash + 1 : path) : "(program)");
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0) s->mods[i].path = path;
    }
}

static void place(struct symbols *s, struct sym_frame *f) {
    const struct dump_module *m = dump_module_of(s->d, f->pc);
    if (!m) return;
    f->module = s->mods[m - s->d->modules].name;
    f->offset = f->pc - m->bias;
}

static struct module_syms *module_of(struct symbols *s, uint64_t pc) {
    const struct dump_module *m = dump_module_of(s->d, pc);
    return m ? &s->mods[m - s->d->modules] : NULL;
}

/* ---- the symbol table fallback ---- */

static void name_from_symtab(struct symbols *s, struct sym_frame *f) {
    struct module_syms *ms = module_of(s, f->pc);
    if (f->func || !ms || !ms->path) return;
    if (!ms->elf_tried) {
        ms->elf_tried = true;
        elf_symbols_load(ms->path, &ms->elf);
    }
    const struct elf_symbol *sym = elf_symbols_find(&ms->elf, f->offset - 1);
    if (!sym) return;
    f->func = cli_strdup(sym->name);
    f->func_start = true;
    f->func_off = f->offset - sym->addr;
}

/* ---- addr2line ---- */

/* A file (unlinked) holding the ELF addresses to look up, one per line, ready to read. */
static int address_file(struct sym_frame **frames, size_t n) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/strata-addr-XXXXXX", cli_tmpdir());
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return -1;
    unlink(path);
    FILE *f = fdopen(dup(fd), "w");
    if (!f) {
        close(fd);
        return -1;
    }
    for (size_t i = 0; i < n; i++) fprintf(f, "0x%llx\n", (unsigned long long)(frames[i]->offset - 1));
    if (fclose(f) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Start addr2line on `module` with stdin from fd; its stdout is the returned stream. */
static FILE *start_addr2line(const char *module, int in, pid_t *pid) {
    const char *prog = getenv("STRATA_ADDR2LINE");
    if (!prog || !*prog) prog = "addr2line";
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return NULL;
    fflush(NULL);
    *pid = fork();
    if (*pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(in, 0), dup2(out[1], 1);
        if (null >= 0) dup2(null, 2);
        execlp(prog, prog, "-f", "-C", "-e", module, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    if (*pid < 0) {
        close(out[0]);
        return NULL;
    }
    return fdopen(out[0], "r");
}

static char *next_line(FILE *f, char **buf, size_t *cap) {
    ssize_t n = getline(buf, cap, f);
    if (n <= 0) return NULL;
    (*buf)[strcspn(*buf, "\n")] = '\0';
    return *buf;
}

/* "file:line", "file:line (discriminator 2)", "??:0", "file:?" into the frame. */
static void set_location(struct symbols *s, struct sym_frame *f, char *loc) {
    char *disc = strstr(loc, " (discriminator");
    if (disc) *disc = '\0';
    char *colon = strrchr(loc, ':');
    if (!colon || colon == loc || !strncmp(loc, "??", 2)) return;
    *colon = '\0';
    f->line = (unsigned)strtoul(colon + 1, NULL, 10);
    size_t n = strlen(s->cwd);
    if (n > 1 && !strncmp(loc, s->cwd, n) && loc[n] == '/') loc += n + 1;
    f->file = cli_strdup(loc);
}

static void read_answers(struct symbols *s, FILE *in, struct sym_frame **frames, size_t n) {
    char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        char *func = next_line(in, &buf, &cap);
        if (!func) break;
        if (*func && strcmp(func, "??") != 0) frames[i]->func = cli_strdup(func);
        char *loc = next_line(in, &buf, &cap);
        if (!loc) break;
        set_location(s, frames[i], loc);
    }
    free(buf);
}

/* One run of addr2line for the addresses of one module. */
static void run_addr2line(struct symbols *s, const char *module, struct sym_frame **frames, size_t n) {
    if (s->no_addr2line) return;
    int in = address_file(frames, n);
    if (in < 0) return;
    pid_t pid;
    FILE *out = start_addr2line(module, in, &pid);
    close(in);
    if (!out) return;
    read_answers(s, out, frames, n);
    fclose(out);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) s->no_addr2line = true;
}

/* ---- all the stacks ---- */

static int by_pc(const void *a, const void *b) {
    uint64_t x = ((const struct sym_frame *)a)->pc, y = ((const struct sym_frame *)b)->pc;
    return (x > y) - (x < y);
}

static void collect_addresses(struct symbols *s) {
    const struct dump *d = s->d;
    size_t total = 0;
    for (size_t i = 0; i < d->n_stacks; i++) total += d->stacks[i].depth;
    s->frames = cli_alloc((total ? total : 1) * sizeof *s->frames);
    for (size_t i = 0; i < d->n_stacks; i++)
        for (size_t j = 0; j < d->stacks[i].depth; j++) s->frames[s->n++].pc = d->stacks[i].pc[j];
    qsort(s->frames, s->n, sizeof *s->frames, by_pc);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!k || s->frames[k - 1].pc != s->frames[i].pc) s->frames[k++] = s->frames[i];
    s->n = k;
}

/* Each module's frames, by one addr2line run per module: the frames are grouped by module first
 * (a counting sort on the module's index, which keeps them in pc order within a module). */
static void resolve_by_module(struct symbols *s) {
    size_t nm = s->d->n_modules, n = s->n;
    size_t *mod = cli_alloc((n + 1) * sizeof *mod), *start = cli_alloc((nm + 1) * sizeof *start);
    size_t *next = cli_alloc((nm + 1) * sizeof *next);
    struct sym_frame **batch = cli_alloc((n + 1) * sizeof *batch);
    for (size_t i = 0; i < n; i++) {
        struct module_syms *ms = module_of(s, s->frames[i].pc);
        mod[i] = ms ? (size_t)(ms - s->mods) : nm; /* nm: in no module */
        if (mod[i] < nm) start[mod[i] + 1]++;
    }
    for (size_t m = 1; m <= nm; m++) start[m] += start[m - 1]; /* module m: batch[start[m], start[m + 1]) */
    memcpy(next, start, (nm + 1) * sizeof *next);
    for (size_t i = 0; i < n; i++)
        if (mod[i] < nm) batch[next[mod[i]]++] = &s->frames[i];
    for (size_t m = 0; m < nm; m++)
        if (s->mods[m].path && start[m + 1] > start[m])
            run_addr2line(s, s->mods[m].path, batch + start[m], start[m + 1] - start[m]);
    free(batch), free(next), free(start), free(mod);
}

struct symbols *symbols_load(const struct dump *d) {
    struct symbols *s = cli_alloc(sizeof *s);
    s->d = d;
    if (!getcwd(s->cwd, sizeof s->cwd)) s->cwd[0] = '\0';
    load_modules(s);
    collect_addresses(s);
    for (size_t i = 0; i < s->n; i++) place(s, &s->frames[i]);
    resolve_by_module(s);
    for (size_t i = 0; i < s->n; i++) name_from_symtab(s, &s->frames[i]);
    return s;
}

const struct sym_frame *symbols_frame(struct symbols *s, uint64_t pc) {
    struct sym_frame key = {.pc = pc};
    struct sym_frame *f = s->n ? bsearch(&key, s->frames, s->n, sizeof key, by_pc) : NULL;
    if (f) return f;
    for (struct extra_frame *e = s->extra; e; e = e->next)
        if (e->f.pc == pc) return &e->f;
    struct extra_frame *e = cli_alloc(sizeof *e);
    e->f.pc = pc;
    place(s, &e->f);
    name_from_symtab(s, &e->f);
    e->next = s->extra;
    s->extra = e;
    return &e->f;
}

static void free_frame(struct sym_frame *f) {
    free((char *)f->func);
    free((char *)f->file);
}

void symbols_free(struct symbols *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free_frame(&s->frames[i]);
    for (struct extra_frame *e = s->extra, *next; e; e = next) {
        next = e->next;
        free_frame(&e->f);
        free(e);
    }
    for (size_t i = 0; i < s->d->n_modules; i++) {
        free(s->mods[i].name);
        elf_symbols_free(&s->mods[i].elf);
    }
    free(s->mods);
    free(s->frames);
    free(s);
}

/* ---- words ---- */

/* "file:12", or "file" when the line is unknown. */
static void location(const struct sym_frame *f, char *buf, size_t cap) {
    if (f->line) snprintf(buf, cap, "%s:%u", f->file, f->line);
    else snprintf(buf, cap, "%s", f->file);
}

void sym_frame_text(const struct sym_frame *f, char *buf, size_t cap) {
    unsigned long long off = (unsigned long long)f->offset, foff = (unsigned long long)f->func_off;
    char where[768] = "";
    if (f->file) location(f, where, sizeof where);
    if (!f->module) snprintf(buf, cap, "??");
    else if (f->func && f->file) snprintf(buf, cap, "%s (%s)", f->func, where);
    else if (f->func && f->func_start) snprintf(buf, cap, "%s+0x%llx (%s)", f->func, foff, f->module);
    else if (f->func) snprintf(buf, cap, "%s (%s+0x%llx)", f->func, f->module, off);
    else if (f->file) snprintf(buf, cap, "%s+0x%llx (%s)", f->module, off, where);
    else snprintf(buf, cap, "%s+0x%llx", f->module, off);
}

void sym_frame_label(const struct sym_frame *f, char *buf, size_t cap) {
    if (f->func) snprintf(buf, cap, "%s", f->func);
    else if (f->module) snprintf(buf, cap, "%s+0x%llx", f->module, (unsigned long long)f->offset);
    else snprintf(buf, cap, "??");
}

void symbols_print_stack(FILE *out, struct symbols *s, const struct dump_stack *st, const char *indent,
                         size_t max_frames) {
    size_t n = max_frames && st->depth > max_frames ? max_frames : st->depth;
    char text[1024];
    for (size_t i = 0; i < n; i++) {
        sym_frame_text(symbols_frame(s, st->pc[i]), text, sizeof text);
        fprintf(out, "%s#%zu 0x%llx in %s\n", indent, i, (unsigned long long)st->pc[i], text);
    }
    if (n < st->depth) fprintf(out, "%s... %zu more frames\n", indent, st->depth - n);
}
