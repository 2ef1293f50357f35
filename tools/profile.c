/*
 * profile.c — the heap profile libstrata keeps of every process (issue 18):
 *
 *   strata profile PID [--top N | --folded] [-o FILE.pb.gz] [--save FILE] [--watch N]
 *   strata profile [--top N | --folded] [-o FILE.pb.gz] [--save FILE] [--rate BYTES] -- CMD ARGS...
 *   strata profile --from FILE [--top N | --folded] [-o FILE.pb.gz]
 *   strata profile --diff OLD NEW [--top N]
 *
 * A running process's profile is a part of its statistics file (stats.h finds it): copied whole
 * with the writers' seqlock (an even generation, the same before and after the copy), then read
 * with /proc/PID/maps into a struct profile (profile.h): the modules with their load bias (from
 * the ELF file's program headers: the PT_LOAD that holds the mapping's file offset) and build id,
 * the stacks without libstrata's own frames (malloc itself), and per stack the estimated live and
 * allocated bytes and objects. Stacks are named by symbols.c, like a diag dump's.
 *
 * A command is run with profile_dump=PATH in its STRATA_OPTIONS: libstrata writes its profile and
 * maps there as it exits (the saved format, profile.h), and that file is read the same way.
 *
 * Outputs: the functions that hold the most live memory (the innermost frame outside libstrata),
 * a table on stdout; folded stacks for flame graph tools (--folded); a pprof profile (-o,
 * gzip-compressed profile.proto, pprof.c); the raw profile with the maps (--save), which --from
 * reads back and --diff compares, function by function.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "diagrun.h"
#include "html.h"
#include "pprof.h"
#include "profile.h"
#include "stats.h"
#include "symbols.h"

enum { COPY_TRIES = 1000, DEFAULT_TOP = 20 };

/* An estimate as a whole number (the command links no libm). */
static long long to_int(double v) { return (long long)(v < 0 ? v - 0.5 : v + 0.5); }

/* ---- the profile part, checked ---- */

/* Is part (len bytes) a profile this command can read? Its header goes to *hd. */
static bool part_ok(const unsigned char *part, size_t len, sx_profile_header *hd, char *why, size_t cap) {
    if (len < sizeof *hd) {
        snprintf(why, cap, "its heap profile is cut short (%zu bytes)", len);
        return false;
    }
    memcpy(hd, part, sizeof *hd);
    if (hd->magic != SX_PROFILE_MAGIC) {
        snprintf(why, cap, "its heap profile is not one strata wrote");
        return false;
    }
    if (hd->version != SX_PROFILE_VERSION || hd->header_size != sizeof *hd ||
        hd->stack_size != sizeof(sx_profile_stack) || hd->live_size != sizeof(sx_profile_live) ||
        hd->depth != SX_PROFILE_DEPTH) {
        snprintf(why, cap, "its heap profile is of format %u, which this strata (format %u) cannot read",
                 hd->version, SX_PROFILE_VERSION);
        return false;
    }
    if (hd->stacks_at > len || (uint64_t)hd->max_stacks * sizeof(sx_profile_stack) > len - hd->stacks_at ||
        hd->live_at > len || (uint64_t)hd->max_live * sizeof(sx_profile_live) > len - hd->live_at) {
        snprintf(why, cap, "its heap profile's tables do not fit in it");
        return false;
    }
    return true;
}

static const sx_profile_stack *stack_at(const struct profile *p, uint32_t i) {
    return (const sx_profile_stack *)(p->part + p->hd.stacks_at) + i;
}

static const sx_profile_live *live_at(const struct profile *p, uint32_t i) {
    return (const sx_profile_live *)(p->part + p->hd.live_at) + i;
}

/* The generation of the profile at `at` in the file, or 1 (odd: "being written") on a failed read. */
static uint64_t generation(int fd, uint64_t at) {
    uint64_t g;
    off_t off = (off_t)(at + offsetof(sx_profile_header, generation));
    return pread(fd, &g, sizeof g, off) == (ssize_t)sizeof g ? g : 1;
}

/* Copy the profile part of an open statistics file: a copy taken while no writer wrote (the
 * generation even, and the same before and after). 0; 1: there is no profile yet; -1: an error
 * (why). */
static int copy_part(const struct stats_file *f, unsigned char **part, size_t *len, char *why, size_t cap) {
    sx_share_header hd;
    if (!stats_header(f->fd, &hd)) {
        snprintf(why, cap, "cannot read its statistics file: %s", strerror(errno));
        return -1;
    }
    uint64_t at = atomic_load(&hd.profile_at), n = hd.profile_bytes;
    if (!at) return 1;
    struct stat st;
    if (n < sizeof(sx_profile_header) || n > ((uint64_t)1 << 32) || fstat(f->fd, &st) != 0 ||
        at > (uint64_t)st.st_size || n > (uint64_t)st.st_size - at) {
        snprintf(why, cap, "its statistics file gives its heap profile a place it does not have");
        return -1;
    }
    *part = cli_alloc(n);
    *len = n;
    /* The readers' half of the seqlock (heap/profile.c write_begin): the generation, then the copy,
     * then the generation again, each read ordered before the next by an acquire fence (the reads
     * are the kernel's, in pread; a fence orders them as it orders the thread's own). The copy is
     * whole when both were even and the same: a write begun before the second read made the
     * generation odd before any of its stores, and the writer's release fence with this one
     * makes a copy that saw any of those stores see the odd generation too. */
    for (int i = 0; i < COPY_TRIES; i++) {
        uint64_t before = generation(f->fd, at);
        if (before & 1) {
            if (i > 10) usleep(100);
            continue;
        }
        atomic_thread_fence(memory_order_acquire);
        if (pread(f->fd, *part, n, (off_t)at) != (ssize_t)n) {
            snprintf(why, cap, "cannot read its heap profile: %s", errno ? strerror(errno) : "cut short");
            return -1;
        }
        sx_profile_header copy;
        memcpy(&copy, *part, sizeof copy);
        atomic_thread_fence(memory_order_acquire);
        if (generation(f->fd, at) == before && atomic_load(&copy.generation) == before)
            return copy.magic ? 0 : 1; /* no magic yet: the first sample is making it */
    }
    snprintf(why, cap, "its heap profile changed during each of %d reads; try again", COPY_TRIES);
    return -1;
}

/* ---- modules ---- */

/* hex digits of n bytes */
static void hex_of(const unsigned char *b, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 2 < cap; i++) k += (size_t)snprintf(out + k, cap - k, "%02x", b[i]);
    out[k] = '\0';
}

/* The build id in a PT_NOTE segment's notes, if there is one. */
static bool build_id_in(const unsigned char *notes, size_t len, char *out, size_t cap) {
    size_t at = 0;
    while (at + sizeof(Elf64_Nhdr) <= len) {
        Elf64_Nhdr nh;
        memcpy(&nh, notes + at, sizeof nh);
        size_t name = at + sizeof nh, desc = name + ((nh.n_namesz + 3) & ~3u);
        if (desc > len || nh.n_descsz > len - desc) return false;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(notes + name, "GNU", 4)) {
            hex_of(notes + desc, nh.n_descsz, out, cap);
            return true;
        }
        at = desc + ((nh.n_descsz + 3) & ~3u);
    }
    return false;
}

/* From an ELF file's program headers: the ELF address of file offset `off` (in the PT_LOAD that
 * maps it), and the build id. False if the file is not an ELF file of this machine. */
static bool elf_place(const char *path, uint64_t off, uint64_t *vaddr, char *build_id, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    Elf64_Ehdr eh;
    Elf64_Phdr ph[128];
    bool found = false;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 128)
        goto out;
    size_t nph = eh.e_phnum;
    if (pread(fd, ph, nph * sizeof *ph, (off_t)eh.e_phoff) != (ssize_t)(nph * sizeof *ph)) goto out;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < nph; i++) {
        uint64_t start = ph[i].p_offset & ~(uint64_t)(page - 1);
        if (ph[i].p_type == PT_LOAD && !found && off >= start && off < ph[i].p_offset + ph[i].p_filesz) {
            *vaddr = ph[i].p_vaddr - (ph[i].p_offset - off);
            found = true;
        }
    }
    build_id[0] = '\0';
    for (size_t i = 0; i < nph && found; i++) {
        if (ph[i].p_type != PT_NOTE || ph[i].p_filesz > 65536) continue;
        unsigned char notes[ph[i].p_filesz + 1];
        if (pread(fd, notes, ph[i].p_filesz, (off_t)ph[i].p_offset) == (ssize_t)ph[i].p_filesz &&
            build_id_in(notes, ph[i].p_filesz, build_id, cap))
            break;
    }
out:
    close(fd);
    return found;
}

/* A file is the one mapped (the inode /proc/PID/maps gives). */
static bool same_file(const char *path, unsigned long inode) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (!inode || st.st_ino == inode) && access(path, R_OK) == 0;
}

/* The file to read for a mapping of `path`: the path itself when it is still that file, else (a
 * running process) through /proc/PID/root (another mount namespace), /proc/PID/exe (the
 * executable, even deleted) or /proc/PID/map_files (root only). NULL: none. */
static char *file_for(int pid, const char *path, unsigned long inode, const char *range, const char *exe) {
    char name[PATH_MAX], alt[PATH_MAX + 64];
    snprintf(name, sizeof name, "%s", path);
    size_t n = strlen(name);
    static const char deleted[] = " (deleted)";
    if (n > sizeof deleted && !strcmp(name + n - (sizeof deleted - 1), deleted)) name[n - (sizeof deleted - 1)] = '\0';
    if (same_file(name, inode)) return cli_strdup(name);
    if (pid <= 0) return NULL;
    snprintf(alt, sizeof alt, "/proc/%d/root%s", pid, name);
    if (same_file(alt, inode)) return cli_strdup(alt);
    snprintf(alt, sizeof alt, "/proc/%d/exe", pid);
    if (exe && !strcmp(exe, path) && same_file(alt, inode)) return cli_strdup(alt);
    snprintf(alt, sizeof alt, "/proc/%d/map_files/%s", pid, range);
    if (same_file(alt, inode)) return cli_strdup(alt);
    return NULL;
}

static void add_module(struct profile *p, uint64_t lo, uint64_t hi, uint64_t off, const char *path,
                       unsigned long inode, const char *range) {
    struct dump *d = &p->d;
    d->modules = cli_realloc(d->modules, (d->n_modules + 1) * sizeof *d->modules);
    p->mods = cli_realloc(p->mods, (d->n_modules + 1) * sizeof *p->mods);
    struct dump_module *m = &d->modules[d->n_modules];
    struct profile_module *pm = &p->mods[d->n_modules++];
    memset(pm, 0, sizeof *pm);
    pm->file = cli_strdup(path);
    pm->offset = off;
    char *file = path[0] == '/' ? file_for(p->pid, path, inode, range, p->program) : NULL;
    uint64_t vaddr = off; /* without the file: as if its addresses were its offsets */
    if (file) elf_place(file, off, &vaddr, pm->build_id, sizeof pm->build_id);
    *m = (struct dump_module){.bias = lo - vaddr, .lo = lo, .hi = hi, .path = file ? file : cli_strdup(path)};
}

/* The executable mappings of a maps text become the modules (in address order, as maps has them). */
static void read_maps(struct profile *p) {
    for (char *line = p->maps; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        unsigned long long lo, hi, off;
        unsigned long inode;
        char perms[8], range[64];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %lu %n", &lo, &hi, perms, &off, &inode, &name_at) == 5 &&
            name_at && perms[2] == 'x' && line[name_at]) {
            snprintf(range, sizeof range, "%llx-%llx", lo, hi);
            add_module(p, lo, hi, off, line + name_at, inode, range);
        }
        if (!p->program && name_at && line[name_at] == '/') p->program = cli_strdup(line + name_at);
        if (nl) *nl = '\n';
        line = nl ? nl + 1 : NULL;
    }
}

/* ---- stacks and what they hold ---- */

static bool in_libstrata(const struct dump *d, uint64_t pc) {
    const struct dump_module *m = dump_module_of(d, pc);
    if (!m) return false;
    const char *slash = strrchr(m->path, '/');
    return !strncmp(slash ? slash + 1 : m->path, "libstrata", 9);
}

/* The stacks in use, each without its innermost frames in libstrata (all of them if every frame
 * is), as d.stacks with ids from 1; sites[i] the totals of stack i. */
static void read_stacks(struct profile *p) {
    struct dump *d = &p->d;
    uint32_t *id_of = cli_alloc((p->hd.max_stacks + 1) * sizeof *id_of); /* table index -> id */
    d->stacks = cli_alloc((p->hd.max_stacks + 1) * sizeof *d->stacks);
    p->sites = cli_alloc((p->hd.max_stacks + 1) * sizeof *p->sites);
    for (uint32_t i = 0; i < p->hd.max_stacks; i++) {
        const sx_profile_stack *s = stack_at(p, i);
        if (!s->depth) continue;
        size_t depth = s->depth < SX_PROFILE_DEPTH ? s->depth : SX_PROFILE_DEPTH, skip = 0;
        while (skip < depth && in_libstrata(d, s->pc[skip])) skip++;
        if (skip == depth) skip = 0;
        struct dump_stack *st = &d->stacks[d->n_stacks];
        st->id = d->n_stacks + 1;
        st->depth = depth - skip;
        st->pc = cli_alloc(st->depth * sizeof *st->pc);
        memcpy(st->pc, s->pc + skip, st->depth * sizeof *st->pc);
        p->sites[d->n_stacks] = (struct profile_site){st->id, 0, 0, s->alloc_space, s->alloc_objects};
        id_of[i] = (uint32_t)++d->n_stacks;
    }
    p->n_sites = d->n_stacks;
    for (uint32_t i = 0; i < p->hd.max_live; i++) {
        const sx_profile_live *l = live_at(p, i);
        if (!l->addr || l->stack >= p->hd.max_stacks || !id_of[l->stack]) continue;
        struct profile_site *site = &p->sites[id_of[l->stack] - 1];
        site->live_bytes += l->objects * (double)l->size;
        site->live_objects += l->objects;
        p->live_bytes += l->objects * (double)l->size;
        p->live_objects += l->objects;
    }
    free(id_of);
    d->sites = cli_alloc((p->n_sites + 1) * sizeof *d->sites);
    d->n_sites = p->n_sites;
    for (size_t i = 0; i < p->n_sites; i++)
        d->sites[i] = (struct dump_site){p->sites[i].stack, (uint64_t)to_int(p->sites[i].live_objects),
                                         (uint64_t)to_int(p->sites[i].live_bytes), 0};
}

/* Everything else from the part and the maps text, both in place. */
static bool profile_build(struct profile *p, char *why, size_t cap) {
    if (p->part && !part_ok(p->part, p->part_len, &p->hd, why, cap)) return false;
    if (!p->d.exe) p->d.exe = cli_strdup("");
    p->d.complete = true; /* a copy taken whole (for the report page) */
    read_maps(p);
    if (!p->program) p->program = cli_strdup("?");
    if (p->part) read_stacks(p);
    return true;
}

void profile_free(struct profile *p) {
    for (size_t i = 0; i < p->d.n_modules; i++) free(p->mods[i].file);
    dump_free(&p->d);
    free(p->mods), free(p->sites), free(p->part), free(p->maps), free(p->program);
    memset(p, 0, sizeof *p);
}

/* ---- where a profile comes from ---- */

/* A whole file (or /proc file), NUL-terminated; NULL with errno on failure. */
static char *read_all(int fd, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *s = cli_alloc(cap);
    for (;;) {
        if (n + 1 >= cap) s = cli_realloc(s, cap *= 2);
        ssize_t k = read(fd, s + n, cap - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            free(s);
            return NULL;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

static char *read_proc(int pid, const char *what) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    char *s = read_all(fd, NULL);
    close(fd);
    return s;
}

bool profile_of_pid(int pid, struct profile *p, char *why, size_t cap) {
    memset(p, 0, sizeof *p);
    p->pid = pid;
    unsigned long long start = stats_started(pid);
    struct stats_file f;
    int got = -1;
    if (stats_open(pid, &f, why, cap) == 0) {
        got = copy_part(&f, &p->part, &p->part_len, why, cap);
        close(f.fd);
        if (got == 1)
            snprintf(why, cap, "runs on strata but has no heap profile (no allocation sampled yet, or "
                               "profile_rate=0)");
    }
    if (got == 0) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%d/exe", pid);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) target[n] = '\0', p->program = cli_strdup(target);
        p->maps = read_proc(pid, "maps");
        char file[64];
        snprintf(file, sizeof file, "the statistics file of pid %d", pid);
        p->d.file = cli_strdup(file);
        if (!p->maps) snprintf(why, cap, "cannot read /proc/%d/maps: %s", pid, strerror(errno)), got = -1;
    }
    if (got == 0 && stats_gone(pid, start)) snprintf(why, cap, "exited"), got = -1;
    if (got == 0 && profile_build(p, why, cap)) return true;
    profile_free(p);
    return false;
}

bool profile_of_file(const char *path, struct profile *p) {
    memset(p, 0, sizeof *p);
    p->pid = -1;
    char why[512] = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    char *all = fd >= 0 ? read_all(fd, &len) : NULL;
    int err = errno;
    if (fd >= 0) close(fd);
    uint64_t n = 0;
    if (!all) {
        snprintf(why, sizeof why, "%s", strerror(err));
    } else if (len < 16 || memcmp(all, PROFILE_SAVE_MAGIC, 8)) {
        snprintf(why, sizeof why, "not a saved heap profile (no %s at its start)", PROFILE_SAVE_MAGIC);
    } else if (memcpy(&n, all + 8, 8), n > len - 16) {
        snprintf(why, sizeof why, "cut short (its profile has %llu bytes, the file %zu)", (unsigned long long)n, len);
    } else {
        if (n) {
            p->part = cli_alloc(n);
            memcpy(p->part, all + 16, n);
            p->part_len = n;
        }
        p->maps = cli_strdup(all + 16 + n);
        p->d.file = cli_strdup(path);
        if (p->part && p->part_len >= sizeof p->hd) p->pid = ((const sx_profile_header *)(const void *)p->part)->pid;
        if (profile_build(p, why, sizeof why)) {
            free(all);
            return true;
        }
    }
    fprintf(stderr, "strata: %s: %s\n", path, why);
    free(all);
    profile_free(p);
    return false;
}

/* ---- by function ---- */

/* What the functions that allocated (the innermost frame outside libstrata) hold. */
struct fn_row {
    char label[256]; /* the function, else module+0xOFF */
    char where[512]; /* file:line of its largest site, else its module */
    double live_bytes, live_objects, alloc_bytes, site_bytes;
};

static void frame_where(const struct sym_frame *f, char *buf, size_t cap) {
    if (f->file && f->line) snprintf(buf, cap, "%s:%u", f->file, f->line);
    else if (f->file) snprintf(buf, cap, "%s", f->file);
    else if (f->module) snprintf(buf, cap, "%s+0x%llx", f->module, (unsigned long long)f->offset);
    else snprintf(buf, cap, "?");
}

static int by_label(const void *a, const void *b) {
    return strcmp(((const struct fn_row *)a)->label, ((const struct fn_row *)b)->label);
}

static int by_live_bytes(const void *a, const void *b) {
    const struct fn_row *x = a, *y = b;
    if (x->live_bytes != y->live_bytes) return x->live_bytes < y->live_bytes ? 1 : -1;
    if (x->alloc_bytes != y->alloc_bytes) return x->alloc_bytes < y->alloc_bytes ? 1 : -1;
    return strcmp(x->label, y->label);
}

/* One row per function, sorted by label (for merging); their number in *n. */
static struct fn_row *by_function(const struct profile *p, struct symbols *sym, size_t *n) {
    struct fn_row *rows = cli_alloc((p->n_sites + 1) * sizeof *rows);
    for (size_t i = 0; i < p->n_sites; i++) {
        const struct dump_stack *st = &p->d.stacks[i];
        struct fn_row *r = &rows[i];
        if (st->depth) {
            const struct sym_frame *f = symbols_frame(sym, st->pc[0]);
            sym_frame_label(f, r->label, sizeof r->label);
            frame_where(f, r->where, sizeof r->where);
        } else {
            snprintf(r->label, sizeof r->label, "(no stack)");
        }
        r->live_bytes = r->site_bytes = p->sites[i].live_bytes;
        r->live_objects = p->sites[i].live_objects;
        r->alloc_bytes = p->sites[i].alloc_bytes;
    }
    qsort(rows, p->n_sites, sizeof *rows, by_label);
    size_t k = 0;
    for (size_t i = 0; i < p->n_sites; i++) {
        struct fn_row *r = &rows[i];
        if (k && !strcmp(rows[k - 1].label, r->label)) {
            struct fn_row *into = &rows[k - 1];
            into->live_bytes += r->live_bytes, into->live_objects += r->live_objects;
            into->alloc_bytes += r->alloc_bytes;
            if (r->site_bytes > into->site_bytes) into->site_bytes = r->site_bytes, memcpy(into->where, r->where, sizeof r->where);
        } else {
            rows[k++] = *r;
        }
    }
    *n = k;
    return rows;
}

static void bytes_text(double v, char *buf, size_t cap) { fmt_bytes(v < 0 ? 0 : v, buf, cap); }

static void header_line(const struct profile *p, const char *when) {
    char live[32], samples[32];
    bytes_text(p->live_bytes, live, sizeof live);
    fmt_count(p->hd.samples, samples, sizeof samples);
    printf("strata profile: pid %d (%s)%s, one sample per %llu bytes, %s samples, %s live (estimated)", p->pid,
           p->program, when, (unsigned long long)p->hd.rate, samples, live);
    if (p->hd.dropped) printf("; %llu samples not recorded (a table was full)", (unsigned long long)p->hd.dropped);
    printf("\n");
}

static void print_top(const struct profile *p, struct symbols *sym, long top, const char *when) {
    header_line(p, when);
    size_t n;
    struct fn_row *rows = by_function(p, sym, &n);
    qsort(rows, n, sizeof *rows, by_live_bytes);
    printf("%12s %7s %13s %12s  %s\n", "live bytes", "share", "live objects", "allocated", "function (where)");
    for (size_t i = 0; i < n && (long)i < top; i++) {
        char live[32], objects[32], alloc[32];
        bytes_text(rows[i].live_bytes, live, sizeof live);
        fmt_count((uint64_t)to_int(rows[i].live_objects), objects, sizeof objects);
        bytes_text(rows[i].alloc_bytes, alloc, sizeof alloc);
        double share = p->live_bytes > 0 ? 100 * rows[i].live_bytes / p->live_bytes : 0;
        printf("%12s %6.1f%% %13s %12s  %s (%s)\n", live, share, objects, alloc, rows[i].label, rows[i].where);
    }
    if ((long)n > top) printf("(%zu more function%s)\n", n - (size_t)top, n - (size_t)top == 1 ? "" : "s");
    free(rows);
}

/* ---- folded stacks ---- */

static int by_site_live(const void *a, const void *b) {
    const struct profile_site *x = *(const struct profile_site *const *)a, *y = *(const struct profile_site *const *)b;
    if (x->live_bytes != y->live_bytes) return x->live_bytes < y->live_bytes ? 1 : -1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

/* "outermost;...;innermost BYTES", a line per stack holding live bytes. */
static void print_folded(const struct profile *p, struct symbols *sym) {
    const struct profile_site **order = cli_alloc((p->n_sites + 1) * sizeof *order);
    for (size_t i = 0; i < p->n_sites; i++) order[i] = &p->sites[i];
    qsort(order, p->n_sites, sizeof *order, by_site_live);
    for (size_t i = 0; i < p->n_sites; i++) {
        long long bytes = to_int(order[i]->live_bytes);
        if (bytes <= 0) continue;
        const struct dump_stack *st = dump_stack(&p->d, order[i]->stack);
        for (size_t j = st->depth; j-- > 0;) {
            char label[512];
            sym_frame_label(symbols_frame(sym, st->pc[j]), label, sizeof label);
            for (char *c = label; *c; c++)
                if (*c == ';') *c = ':';
            printf("%s%s", label, j ? ";" : "");
        }
        printf("%s %lld\n", st->depth ? "" : "(no stack)", bytes);
    }
    free(order);
}

/* ---- pprof ---- */

static bool write_pprof(const struct profile *p, struct symbols *sym, const char *path) {
    static const char *const types[] = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"};
    static const char *const units[] = {"count", "bytes", "count", "bytes"};
    struct pprof *pp = pprof_new(types, units, 4);
    for (size_t i = 0; i < p->d.n_modules; i++) {
        const struct dump_module *m = &p->d.modules[i];
        pprof_mapping(pp, m->lo, m->hi, p->mods[i].offset, p->mods[i].file,
                      p->mods[i].build_id[0] ? p->mods[i].build_id : NULL);
    }
    uint64_t loc[SX_PROFILE_DEPTH];
    for (size_t i = 0; i < p->n_sites; i++) {
        const struct profile_site *s = &p->sites[i];
        const struct dump_stack *st = dump_stack(&p->d, s->stack);
        for (size_t j = 0; j < st->depth; j++) {
            const struct sym_frame *f = symbols_frame(sym, st->pc[j]);
            const struct dump_module *m = dump_module_of(&p->d, st->pc[j]);
            char label[512];
            sym_frame_label(f, label, sizeof label);
            loc[j] = pprof_location(pp, st->pc[j], m ? (uint64_t)(m - p->d.modules) + 1 : 0, label, f->file,
                                    f->line);
        }
        int64_t v[4] = {to_int(s->alloc_objects), to_int(s->alloc_bytes), to_int(s->live_objects),
                        to_int(s->live_bytes)};
        pprof_sample(pp, loc, (int)st->depth, v);
    }
    pprof_period(pp, "space", "bytes", (int64_t)p->hd.rate);
    pprof_default_type(pp, "inuse_space");
    FILE *f = fopen(path, "we");
    bool ok = f && pprof_write(pp, f);
    int err = errno;
    if (f && fclose(f) != 0) ok = false, err = errno;
    if (!ok) fprintf(stderr, "strata: profile: cannot write %s: %s\n", path, strerror(err));
    pprof_free(pp);
    return ok;
}

/* ---- the saved form ---- */

static bool save(const struct profile *p, const char *path) {
    FILE *f = fopen(path, "we");
    uint64_t n = p->part_len;
    bool ok = f && fwrite(PROFILE_SAVE_MAGIC, 8, 1, f) == 1 && fwrite(&n, 8, 1, f) == 1 &&
              (!n || fwrite(p->part, n, 1, f) == 1) && fputs(p->maps ? p->maps : "", f) >= 0;
    int err = errno;
    if (f && fclose(f) != 0) ok = false, err = errno;
    if (!ok) fprintf(stderr, "strata: profile: cannot write %s: %s\n", path, strerror(err));
    return ok;
}

/* ---- what grew ---- */

static int by_growth(const void *a, const void *b) {
    const struct fn_row *x = a, *y = b; /* live_bytes: the growth; alloc_bytes: the new figure */
    if (x->live_bytes != y->live_bytes) return x->live_bytes < y->live_bytes ? 1 : -1;
    return strcmp(x->label, y->label);
}

static void signed_bytes(double v, char *buf, size_t cap) {
    char b[24];
    bytes_text(v < 0 ? -v : v, b, sizeof b);
    snprintf(buf, cap, "%s%s", v > 0 ? "+" : v < 0 ? "-" : "", b);
}

/* Per function, the live bytes of `new` less those of `old`, largest growth first. */
static void print_diff(const struct profile *old, const struct profile *new, long top) {
    struct symbols *so = symbols_load(&old->d), *sn = symbols_load(&new->d);
    size_t no, nn;
    struct fn_row *ro = by_function(old, so, &no), *rn = by_function(new, sn, &nn);
    struct fn_row *diff = cli_alloc((no + nn + 1) * sizeof *diff);
    size_t k = 0, i = 0, j = 0;
    while (i < no || j < nn) { /* both sorted by label: merge; .site_bytes holds the old figure */
        int c = i == no ? 1 : j == nn ? -1 : strcmp(ro[i].label, rn[j].label);
        struct fn_row *r = &diff[k++];
        *r = c <= 0 ? ro[i] : rn[j];
        r->site_bytes = c <= 0 ? ro[i].live_bytes : 0;
        r->alloc_bytes = c >= 0 ? rn[j].live_bytes : 0;
        if (c >= 0) memcpy(r->where, rn[j].where, sizeof r->where);
        r->live_bytes = r->alloc_bytes - r->site_bytes;
        i += c <= 0, j += c >= 0;
    }
    qsort(diff, k, sizeof *diff, by_growth);
    char a[32], b[32], g[32];
    bytes_text(old->live_bytes, a, sizeof a);
    bytes_text(new->live_bytes, b, sizeof b);
    signed_bytes(new->live_bytes - old->live_bytes, g, sizeof g);
    printf("strata profile: live (estimated) %s in pid %d, then %s in pid %d: %s\n", a, old->pid, b, new->pid, g);
    printf("%12s %12s %12s  %s\n", "growth", "before", "after", "function (where)");
    size_t shown = 0;
    for (size_t x = 0; x < k && (long)shown < top; x++) {
        if (to_int(diff[x].live_bytes) == 0) continue;
        bytes_text(diff[x].site_bytes, a, sizeof a);
        bytes_text(diff[x].alloc_bytes, b, sizeof b);
        signed_bytes(diff[x].live_bytes, g, sizeof g);
        printf("%12s %12s %12s  %s (%s)\n", g, a, b, diff[x].label, diff[x].where);
        shown++;
    }
    if (!shown) printf("(no function's live bytes changed)\n");
    free(diff), free(ro), free(rn);
    symbols_free(so), symbols_free(sn);
}

/* ---- the command ---- */

struct profile_args {
    int pid;        /* 0: none */
    char **cmd;     /* -- CMD ARGS... */
    const char *from, *diff_old, *diff_new;
    const char *output, *save; /* -o FILE (pprof), --save FILE */
    const char *options; /* for CMD: --options OPTIONS */
    long rate;           /* for CMD: --rate BYTES; -1: not given */
    long top, watch;
    bool folded;
};

static const char usage_line[] = "(profile PID | profile [--rate BYTES] -- CMD | profile --from FILE | "
                                 "profile --diff OLD NEW)";

static long number_arg(const char *name, const char *s, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "profile: %s takes a number from %ld to %ld, not '%%s'", name, min, max);
        cli_usage(msg, s);
    }
    return v;
}

static void check_args(const struct profile_args *a) {
    int sources = (a->pid > 0) + (a->cmd != NULL) + (a->from != NULL) + (a->diff_old != NULL);
    if (sources == 0) cli_usage("profile: no PID, command, --from or --diff given %s", usage_line);
    if (sources > 1) cli_usage("profile: one of PID, -- CMD, --from FILE or --diff OLD NEW %s", usage_line);
    if (a->cmd && !a->cmd[0]) cli_usage("profile: no command after --", NULL);
    if (a->watch && (a->pid <= 0 || a->output || a->save || a->folded))
        cli_usage("profile: --watch goes with a PID and the table alone", NULL);
    if ((a->options || a->rate >= 0) && !a->cmd) cli_usage("profile: --rate and --options are for a command to run", NULL);
    if (a->diff_old && (a->output || a->save || a->folded))
        cli_usage("profile: --diff prints a table; -o, --save and --folded do not go with it", NULL);
    if (a->folded && a->top) cli_usage("profile: --folded prints every stack; --top is for the table", NULL);
}

/* A file name for `option`: not empty. */
static const char *file_arg(const char *option, const char *v) {
    if (!*v) cli_usage("profile: %s needs a file name", option);
    return v;
}

static void parse_args(int argc, char **argv, struct profile_args *a) {
    a->rate = -1;
    for (int i = 1; i < argc && !a->cmd; i++) {
        const char *arg = argv[i], *v;
        if (!strcmp(arg, "--")) a->cmd = argv + i + 1;
        else if (!strcmp(arg, "--folded")) a->folded = true;
        else if ((v = cli_option_value(argc, argv, &i, "-o", "--output"))) a->output = file_arg("-o", v);
        else if ((v = cli_option_value(argc, argv, &i, NULL, "--save"))) a->save = file_arg("--save", v);
        else if ((v = cli_option_value(argc, argv, &i, NULL, "--from"))) a->from = file_arg("--from", v);
        else if ((v = cli_option_value(argc, argv, &i, NULL, "--top"))) a->top = number_arg("--top", v, 1, 1000000);
        else if ((v = cli_option_value(argc, argv, &i, "-w", "--watch"))) a->watch = number_arg("--watch", v, 1, 86400);
        else if ((v = cli_option_value(argc, argv, &i, NULL, "--rate"))) a->rate = number_arg("--rate", v, 0, 1L << 40);
        else if ((v = cli_option_value(argc, argv, &i, NULL, "--options"))) a->options = v;
        else if (!strcmp(arg, "--diff")) {
            if (i + 2 >= argc) cli_usage("profile: --diff needs two saved profiles, OLD and NEW", NULL);
            a->diff_old = argv[++i];
            a->diff_new = argv[++i];
        } else if (arg[0] == '-' && arg[1]) {
            cli_unknown_option(arg);
        } else if (!a->pid && stats_is_pid(arg)) {
            long pid = strtol(arg, NULL, 10);
            if (strlen(arg) > 10 || pid <= 0 || pid > INT_MAX) cli_usage("profile: '%s' is not a PID", arg);
            a->pid = (int)pid;
        } else if (!a->pid) {
            a->cmd = argv + i; /* a command without "--" */
        } else {
            cli_usage("profile PID: unexpected '%s'", arg);
        }
    }
    check_args(a);
}

/* The outputs asked for, from a profile read. */
static bool emit(const struct profile_args *a, const struct profile *p, const char *when) {
    bool ok = true;
    if (a->save) ok = save(p, a->save) && ok;
    if (!p->part) {
        fprintf(stderr, "strata: profile: pid %d took no sample (profile_rate=0, or it allocated less than "
                        "the rate)\n", p->pid);
        return false;
    }
    struct symbols *sym = symbols_load(&p->d);
    if (a->output) ok = write_pprof(p, sym, a->output) && ok;
    if (a->folded) print_folded(p, sym);
    else if (!a->output || a->top) print_top(p, sym, a->top ? a->top : DEFAULT_TOP, when);
    fflush(stdout);
    symbols_free(sym);
    return ok;
}

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) { interrupted = sig; }

static int of_pid(const struct profile_args *a) {
    if (a->watch) {
        struct sigaction sa = {.sa_handler = on_interrupt};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
    }
    unsigned long long start = stats_started(a->pid);
    for (unsigned round = 0;; round++) {
        struct profile p;
        char why[512];
        if (!profile_of_pid(a->pid, &p, why, sizeof why)) {
            bool gone = round > 0 && stats_gone(a->pid, start);
            fprintf(stderr, "strata: %d: %s\n", a->pid, gone ? "exited" : why);
            return gone ? 0 : 1;
        }
        char when[32] = "";
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        snprintf(when, sizeof when, " at %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
        bool ok = emit(a, &p, when);
        profile_free(&p);
        if (!a->watch) return ok ? 0 : 1;
        struct timespec ts = {(time_t)a->watch, 0};
        while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        if (interrupted) return 0;
        printf("\n");
    }
}

static int of_command(struct profile_args *a) {
    char dir[PATH_MAX], path[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/strata-profile-XXXXXX", cli_tmpdir());
    if (!mkdtemp(dir)) {
        fprintf(stderr, "strata: cannot make a temporary directory %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/profile", dir);
    char rate[48] = "";
    if (a->rate >= 0) snprintf(rate, sizeof rate, "profile_rate=%ld,", a->rate);
    size_t n = strlen(path) + (a->options ? strlen(a->options) : 0) + 80;
    char *options = cli_alloc(n);
    snprintf(options, n, "%s%s%sprofile_dump=%s", a->options ? a->options : "", a->options ? "," : "", rate, path);
    struct diag_run run;
    int status = diag_run_with(a->cmd, cli_library(), NULL, options, false, &run);
    free(options);
    if (run.ran) {
        struct profile p;
        if (access(path, F_OK) != 0)
            fprintf(stderr, "strata: profile: %s (pid %d) left no profile (killed, or not running on strata)\n",
                    a->cmd[0], (int)run.pid);
        else if (profile_of_file(path, &p)) {
            if (p.pid <= 0) p.pid = (int)run.pid;
            emit(a, &p, " at exit"); /* the exit status stays the command's */
            profile_free(&p);
        }
    }
    diag_run_cleanup(&run);
    unlink(path);
    rmdir(dir);
    return status;
}

int cmd_profile(int argc, char **argv) {
    struct profile_args a = {0};
    parse_args(argc, argv, &a);
    int status = 1;
    if (a.pid > 0) {
        status = of_pid(&a);
    } else if (a.cmd) {
        status = of_command(&a);
    } else if (a.from) {
        struct profile p;
        if (profile_of_file(a.from, &p)) {
            status = emit(&a, &p, "") ? 0 : 1;
            profile_free(&p);
        }
    } else {
        struct profile old, new;
        if (profile_of_file(a.diff_old, &old)) {
            if (profile_of_file(a.diff_new, &new)) {
                print_diff(&old, &new, a.top ? a.top : DEFAULT_TOP);
                status = 0;
                profile_free(&new);
            }
            profile_free(&old);
        }
    }
    return status;
}
