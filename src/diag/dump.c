/*
 * dump.c — writing down what was recorded, for the `strata` command (format: dump.h).
 *
 * Written once per process: at exit (a destructor: it runs after the program's own exit handlers
 * and destructors, so what they free is not reported) after the leak scan, or when a fatal signal
 * arrives (what was recorded up to then, no scan: the heap may be broken), or when a misuse stops
 * the program. Everything here avoids malloc and stdio: formatting into a static buffer, write(2),
 * and the list of loaded objects read from /proc/self/maps with their ELF headers in memory
 * (dl_iterate_phdr would take the loader's lock, which a crashing thread may hold).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "diag.h"

static const char *const mode_names[] = {"none", "leaks", "guard", "report"};

/* ---- a buffered writer ---- */
static struct {
    int fd;
    size_t len;
    char buf[1 << 16];
} out;

static void flush(void) {
    if (out.len) sx_write(out.fd, out.buf, out.len);
    out.len = 0;
}

__attribute__((format(printf, 1, 2))) static void put(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t n = sx_vfmt(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= sizeof line) n = sizeof line - 1;
    if (out.len + n > sizeof out.buf) flush();
    memcpy(out.buf + out.len, line, n);
    out.len += n;
}

/* ---- the loaded objects ---- */
static void module_line(const sx_module *m, void *arg) {
    (void)arg;
    put("module 0x%lx 0x%lx 0x%lx %s\n", (unsigned long)m->bias, (unsigned long)m->lo,
        (unsigned long)m->hi, m->path);
}

static void put_modules(void) { sx_modules_each(sx_os_page, module_line, NULL); }

/* ---- the records ---- */
static void put_stacks(bool leaks) {
    uint32_t n = sx_stack_count();
    for (uint32_t id = 1; id <= n; id++) {
        const sx_stack *s = sx_stack_get(id);
        if (!s) continue;
        put("stack %u %u", id, s->depth);
        for (uint32_t i = 0; i < s->depth; i++) put(" 0x%lx", (unsigned long)s->frames[i]);
        put("\n");
        uint64_t allocs = atomic_load(&s->allocs);
        if (allocs)
            put("site %u %llu %llu %llu\n", id, (unsigned long long)allocs,
                (unsigned long long)atomic_load(&s->bytes), (unsigned long long)atomic_load(&s->frees));
        if (leaks && s->lost_blocks)
            put("leak %u lost %llu %llu 0x%lx\n", id, (unsigned long long)s->lost_blocks,
                (unsigned long long)s->lost_bytes, (unsigned long)s->lost_addr);
        if (leaks && s->reach_blocks)
            put("leak %u reachable %llu %llu 0x%lx\n", id, (unsigned long long)s->reach_blocks,
                (unsigned long long)s->reach_bytes, (unsigned long)s->reach_addr);
    }
}

static void put_totals(const sx_track_totals *t) {
    size_t ns;
    const sx_sample *s = sx_track_samples(&ns);
    for (size_t i = 0; i < ns; i++)
        put("sample %llu %llu %llu %llu\n", (unsigned long long)s[i].ms, (unsigned long long)s[i].live,
            (unsigned long long)s[i].rss, (unsigned long long)s[i].allocs);
    for (int b = 0; b < 48; b++)
        if (t->size_allocs[b])
            put("size %llu %llu %llu\n", 1ull << b, (unsigned long long)t->size_allocs[b],
                (unsigned long long)t->size_bytes[b]);
    const struct { const char *k; uint64_t v; } kv[] = {
        {"allocs", t->allocs}, {"frees", t->frees}, {"bytes", t->bytes}, {"live", t->live},
        {"live_blocks", t->live_blocks}, {"peak_live", t->peak_live}, {"tracked", t->tracked},
        {"sample_bytes", sx_opt.diag_sample}, {"depth", (uint64_t)sx_opt.diag_depth},
        {"unguarded", sx_guard_unguarded()},
        {"lost_nostack_blocks", sx_scan_nostack[0]}, {"lost_nostack_bytes", sx_scan_nostack[1]},
        {"reachable_nostack_blocks", sx_scan_nostack[2]}, {"reachable_nostack_bytes", sx_scan_nostack[3]},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        put("total %s %llu\n", kv[i].k, (unsigned long long)kv[i].v);
}

static sx_diag_error error;
static bool has_error;

static void put_error(void) {
    if (!has_error) return;
    const sx_diag_error *e = &error;
    put("error %s 0x%lx %u %u %zu %ld %s %u\n", e->kind, (unsigned long)e->addr, e->alloc_stack,
        e->free_stack, e->size, (long)(e->addr - e->block), e->access, e->at_stack);
}

/* Without a file to write to (no diag_file: the library used without the command), one line. */
static void summary_line(bool scanned) {
    if (!scanned) return;
    uint64_t lb = 0, lbytes = 0, rb = 0, rbytes = 0;
    uint32_t n = sx_stack_count();
    for (uint32_t id = 1; id <= n; id++) {
        const sx_stack *s = sx_stack_get(id);
        if (!s) continue;
        lb += s->lost_blocks, lbytes += s->lost_bytes, rb += s->reach_blocks, rbytes += s->reach_bytes;
    }
    sx_message("leaks: %llu bytes in %llu blocks lost, %llu bytes in %llu blocks still reachable "
               "(strata leaks -- CMD shows where they were allocated)",
               (unsigned long long)lbytes, (unsigned long long)lb, (unsigned long long)rbytes,
               (unsigned long long)rb);
}

void sx_dump_write(const char *how, int sig) {
    static _Atomic int done;
    if (sx_diag_mode == SX_DIAG_NONE || atomic_exchange(&done, 1)) return;
    bool at_exit = !strcmp(how, "exit");
    bool leaks = at_exit && sx_diag_mode != SX_DIAG_GUARD;
    if (sx_diag_mode == SX_DIAG_GUARD && !has_error) sx_guard_check_live(at_exit);
    sx_track_sample_now();
    if (at_exit) sx_track_lock_all(); /* at a signal, read as it is: the lock may be held */
    bool scanned = leaks && sx_scan_leaks();
    sx_track_settle();
    sx_track_totals t;
    sx_track_totals_get(&t);
    char path[300];
    if (!sx_opt.diag_file[0]) {
        summary_line(scanned);
    } else if (sx_fmt(path, sizeof path, "%s.%d", sx_opt.diag_file, (int)getpid()) < sizeof path &&
               (out.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0) {
        char exe[512];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        put("strata-diag %d\n", SX_DIAG_DUMP_VERSION);
        if (sig) put("process %d %s signal %d\n", (int)getpid(), mode_names[sx_diag_mode], sig);
        else put("process %d %s %s\n", (int)getpid(), mode_names[sx_diag_mode], how);
        put("exe %s\n", exe);
        put_modules();
        put_stacks(scanned);
        put_totals(&t);
        put_error();
        put("end\n");
        flush();
        close(out.fd);
    } else {
        sx_message("cannot write %s.%d", sx_opt.diag_file, (int)getpid());
    }
    if (at_exit) sx_track_unlock_all();
}

static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

void sx_dump_error(const sx_diag_error *e) {
    error = *e;
    has_error = true;
    size_t end = e->block + e->size, past = e->addr - end, before = e->block - e->addr;
    const char *k = e->kind;
    if (!strcmp(k, "overflow"))
        sx_message("guard: heap overflow: %s at %p, %zu byte%s past the end of the %zu-byte block at %p",
                   e->access, (void *)e->addr, past, plural(past), e->size, (void *)e->block);
    else if (!strcmp(k, "underflow"))
        sx_message("guard: heap underflow: %s at %p, %zu byte%s before the %zu-byte block at %p",
                   e->access, (void *)e->addr, before, plural(before), e->size, (void *)e->block);
    else if (!strcmp(k, "use-after-free"))
        sx_message("guard: use after free: %s at %p, %zu bytes into the %zu-byte block at %p, freed",
                   e->access, (void *)e->addr, (size_t)(e->addr - e->block), e->size, (void *)e->block);
    else if (!strcmp(k, "double-free"))
        sx_message("guard: double free of the %zu-byte block at %p", e->size, (void *)e->block);
    else if (!strcmp(k, "corrupt-tail"))
        sx_message("guard: the %zu-byte block at %p was written %s its bounds (at %p), found %s",
                   e->size, (void *)e->block, e->addr < e->block ? "before" : "past", (void *)e->addr,
                   !strcmp(e->access, "exit") ? "at exit (the block was never freed)" : "on free");
    /* invalid-free: the core says it */
}

/* ---- fatal signals ---- */
static void on_fatal(int sig) {
    sx_dump_write("signal", sig);
    signal(sig, SIG_DFL);
    raise(sig); /* blocked until we return, then fatal */
}

void sx_dump_init(void) {
    sx_dump_pid_changed();
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
            !(old.sa_flags & SA_SIGINFO))
            signal(sigs[i], on_fatal);
    }
}

/* The registers of the exiting program, kept where the leak scan finds them (this library's data
 * is a root): the program's values in callee-saved registers are roots, its frames are above. */
static ucontext_t exit_regs;

/* At exit: the stack is scanned from this frame up (sx_scan_stack_from). Below it lie the
 * record's and the scan's frames, over the stale frames of calls that returned (memcheck sees the
 * same: memory below the stack pointer is not scanned). */
static sx_noinline void dump_from_here(void) {
    getcontext(&exit_regs);
    sx_scan_stack_from = (uintptr_t)__builtin_frame_address(0);
    sx_dump_write("exit", 0);
}

__attribute__((destructor)) static void dump_at_exit(void) { dump_from_here(); }

/* Programs that leave with _exit (dash's exit builtin does) run no destructor: libstrata-diag.so
 * provides _exit and _Exit, writes the file, then ends the process. Not in a child of vfork (or
 * posix_spawn), which shares its parent's memory: its pid is not the one the fork handlers saw. */
static pid_t main_pid;
void sx_dump_pid_changed(void) { main_pid = getpid(); }

static _Noreturn void leave(int status) {
    if (getpid() == main_pid) dump_from_here();
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

void _exit(int status);
void _Exit(int status);
sx_public void _exit(int status) { leave(status); }
sx_public void _Exit(int status) { leave(status); }
