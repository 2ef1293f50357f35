/*
 * stats.c — heap statistics:
 *
 *   strata stats [-o OPTIONS] [--] CMD ARGS...   run CMD on strata with stats=1, so that at its exit
 *                                                the library prints its heap statistics on stderr
 *   strata stats PID [--watch N]                 the statistics of a running process, from outside,
 *                                                again every N seconds until it exits
 *
 * The first form execs CMD in place (as `run` does), so its exit status is the command's own.
 *
 * The second reads the process's statistics file (src/heap/share.c): a memfd named "strata"
 * that libstrata makes with the process's first heap and writes its counters into as it goes. It
 * is found among /proc/PID/fd (or, when the program has closed that descriptor, through
 * /proc/PID/map_files, which only root may open), checked (layout version, struct sizes, pid) and
 * read without stopping or slowing the process. The table is printed by the library's own printer
 * (src/support/report.c, compiled in), so it reads as malloc_stats() does; what only the process
 * itself can know, by walking its segments, is printed as "-". Being a memfd, the file goes with
 * the process: there is nothing stale to mistake for a live one.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stats.h"
#include "strata.h"

bool stats_is_pid(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

static bool read_text(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        if (len == cap - 1) break;
    }
    close(fd);
    buf[len] = '\0';
    return len > 0;
}

/* ---- the process ---- */

typedef struct {
    char state;                /* from /proc/PID/stat; 0 if there is no such process */
    unsigned long long start;  /* start time, clock ticks after boot */
} proc_info;

static proc_info proc_of(int pid) {
    proc_info p = {0, 0};
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!read_text(path, buf, sizeof buf)) return p;
    const char *s = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    if (!s || s[1] != ' ') return p;
    p.state = s[2];
    /* the state is field 3, the start time field 22 */
    s += 2;
    for (int field = 3; field < 22 && s; field++) {
        s = strchr(s, ' ');
        if (s) s++;
    }
    if (s) p.start = strtoull(s, NULL, 10);
    return p;
}

static bool exited(proc_info p) { return p.state == 0 || p.state == 'Z' || p.state == 'X'; }

unsigned long long stats_started(int pid) {
    proc_info p = proc_of(pid);
    return exited(p) ? 0 : p.start;
}

bool stats_gone(int pid, unsigned long long start) {
    proc_info now = proc_of(pid);
    return exited(now) || now.start != start;
}

/* The pid as the process itself sees it (its own pid namespace): the last of NSpid. */
static int own_pid(int pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if (!read_text(path, buf, sizeof buf)) return pid;
    const char *s = strstr(buf, "\nNSpid:");
    if (!s) return pid;
    s += 7;
    int last = pid;
    for (;;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) break;
        last = (int)v;
        s = end;
    }
    return last;
}

/* Does PID map a file whose name starts with `prefix` (contains it, if range is NULL)? The address
 * range of the first such mapping at file offset 0 goes to range. */
static bool maps_file(int pid, const char *prefix, char *range, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char addr[64], perms[8], offset[32], dev[16];
        unsigned long inode;
        int name_at = 0;
        if (sscanf(line, "%63s %7s %31s %15s %lu %n", addr, perms, offset, dev, &inode, &name_at) < 5 ||
            !name_at)
            continue;
        const char *name = line + name_at;
        if (!range) {
            found = strstr(name, prefix) != NULL;
            continue;
        }
        if (strncmp(name, prefix, strlen(prefix))) continue;
        if (strtoull(offset, NULL, 16) == 0) {
            snprintf(range, cap, "%s", addr);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* ---- its statistics file ---- */

/* The header of a statistics file. The process stores magic, heaps and profile_at with release,
 * each after what it publishes (heap/share.c): the header's other fields, the heaps' counters,
 * profile_bytes. One read of the header may see one of them and not yet what it publishes (the
 * kernel's copy, in pread, orders its loads no more than memcpy does, and arm64 reorders them),
 * so the header is read twice with an acquire fence between: the second read sees at least what
 * the first read's values publish, and the header returned has the first read's three values and
 * the second read's fields. */
bool stats_header(int fd, sx_share_header *hd) {
    sx_share_header first;
    if (pread(fd, &first, sizeof first, 0) != (ssize_t)sizeof first) return false;
    atomic_thread_fence(memory_order_acquire);
    if (pread(fd, hd, sizeof *hd, 0) != (ssize_t)sizeof *hd) return false;
    hd->magic = first.magic;
    atomic_store_explicit(&hd->heaps, atomic_load_explicit(&first.heaps, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&hd->profile_at, atomic_load_explicit(&first.profile_at, memory_order_relaxed),
                          memory_order_relaxed);
    return true;
}

/* An open statistics file that is PID's and that this command can read; 0 if it is, else an
 * error message in why. */
static int check_file(int fd, int pid, struct stats_file *out, char *why, size_t cap) {
    sx_share_header hd;
    if (!stats_header(fd, &hd) || hd.magic != SX_SHARE_MAGIC) {
        snprintf(why, cap, "its statistics file is not one strata wrote");
        return -1;
    }
    if (hd.version != SX_SHARE_VERSION || hd.header_size != sizeof(sx_share_header) ||
        hd.counters_size != sizeof(sx_counters) || hd.heap_counts_size != sizeof(sx_heap_counts) ||
        hd.bins != SX_BINS || hd.direct_slots != SX_DIRECT_SLOTS || hd.region_heaps == 0 ||
        hd.heap_stride < sizeof(sx_heap_counts)) {
        hd.library[sizeof hd.library - 1] = '\0';
        snprintf(why, cap,
                 "runs libstrata %s, whose statistics (format %u) this strata %s (format %u) "
                 "cannot read",
                 hd.library, hd.version, STRATA_VERSION_STRING, SX_SHARE_VERSION);
        return -1;
    }
    if (hd.pid != own_pid(pid)) { /* a child just forked, still holding its parent's */
        snprintf(why, cap, "has only its parent's statistics (it is being forked); try again");
        return -1;
    }
    out->fd = fd;
    out->hd = hd;
    return 0;
}

/* Open PID's statistics file; 0, or -1 with a one-line reason in why. */
int stats_open(int pid, struct stats_file *out, char *why, size_t cap) {
    char path[128];
    proc_info p = proc_of(pid);
    if (p.state == 0) {
        snprintf(why, cap, "no such process");
        return -1;
    }
    if (exited(p)) {
        snprintf(why, cap, "has exited (a zombie): no live statistics");
        return -1;
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *dir = opendir(path);
    if (!dir) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    why[0] = '\0';
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!stats_is_pid(e->d_name)) continue;
        char link[128], target[256];
        snprintf(link, sizeof link, "/proc/%d/fd/%.20s", pid, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = '\0';
        if (strncmp(target, "/memfd:" SX_SHARE_NAME " ", strlen("/memfd:" SX_SHARE_NAME " ")))
            continue;
        int fd = open(link, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(why, cap, "cannot open its statistics file %s: %s", link, strerror(errno));
            continue;
        }
        if (check_file(fd, pid, out, why, cap) == 0) {
            closedir(dir);
            return 0;
        }
        close(fd);
    }
    closedir(dir);
    if (why[0]) return -1;
    /* The program may have closed the descriptor (daemons close them all); the mapping stays. */
    char range[64];
    if (maps_file(pid, "/memfd:" SX_SHARE_NAME " ", range, sizeof range)) {
        snprintf(path, sizeof path, "/proc/%d/map_files/%s", pid, range);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (check_file(fd, pid, out, why, cap) == 0) return 0;
            close(fd);
            return -1;
        }
        snprintf(why, cap,
                 "runs on strata but closed its statistics descriptor; %s can be read by root "
                 "only (%s)",
                 path, strerror(errno));
        return -1;
    }
    if (maps_file(pid, "/libstrata", NULL, 0))
        snprintf(why, cap, "runs libstrata but has no statistics file (no allocation yet, or none "
                           "could be made)");
    else snprintf(why, cap, "not running on strata (no live statistics)");
    return -1;
}

bool stats_snapshot(const struct stats_file *f, int pid, sx_snapshot *s) {
    memset(s, 0, sizeof *s);
    s->pid = pid;
    snprintf(s->version, sizeof s->version, "%.15s", f->hd.library);
    s->walked = false;
    s->stats_option = f->hd.stats_option != 0;
    sx_share_header hd;
    if (!stats_header(f->fd, &hd)) return false;
    struct stat st;
    if (fstat(f->fd, &st) != 0) return false;
    uint32_t heaps = atomic_load(&hd.heaps);
    s->hidden_heaps = atomic_load(&hd.hidden_heaps);
    for (uint32_t i = 0; i < heaps; i++) {
        sx_heap_counts c;
        uint64_t off = (uint64_t)(i / hd.region_heaps) * hd.region_bytes + hd.heaps_at +
                       (uint64_t)(i % hd.region_heaps) * hd.heap_stride;
        if (off + sizeof c > (uint64_t)st.st_size) break; /* its region is not in the file: hidden */
        if (pread(f->fd, &c, sizeof c, (off_t)off) != (ssize_t)sizeof c) return false;
        sx_snapshot_add_heap(s, &c, true);
    }
    sx_snapshot_add_counters(s, &hd.count);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    s->resident = sx_resident_bytes(path, (size_t)sysconf(_SC_PAGESIZE));
    return true;
}

static int stats_of_pid(int pid, long watch) {
    unsigned long long start = proc_of(pid).start;
    for (unsigned round = 0;; round++) {
        struct stats_file f;
        char why[512];
        if (stats_open(pid, &f, why, sizeof why) != 0) {
            if (round > 0 && stats_gone(pid, start)) {
                fprintf(stderr, "strata: %d: exited\n", pid);
                return 0;
            }
            fprintf(stderr, "strata: %d: %s\n", pid, why);
            return 1;
        }
        sx_snapshot s;
        bool ok = stats_snapshot(&f, pid, &s);
        close(f.fd);
        if (!ok) {
            fprintf(stderr, "strata: %d: cannot read its statistics file: %s\n", pid, strerror(errno));
            return 1;
        }
        char title[64];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        snprintf(title, sizeof title, "live, %02d:%02d:%02d", tm.tm_hour, tm.tm_min, tm.tm_sec);
        fflush(stdout);
        sx_report_print(1, &s, title);
        if (!watch) return 0;
        struct timespec ts = {(time_t)watch, 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        if (stats_gone(pid, start)) {
            fprintf(stderr, "strata: %d: exited\n", pid);
            return 0;
        }
        sx_write(1, "\n", 1);
    }
}

/* `strata stats PID [--watch N]`, options before or after the PID. */
static int stats_pid_command(int argc, char **argv) {
    const char *pid_arg = NULL, *watch_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-w") || !strcmp(a, "--watch")) {
            if (++i >= argc) cli_usage("stats: %s needs a number of seconds", a);
            watch_arg = argv[i];
        } else if (!strncmp(a, "--watch=", 8)) {
            watch_arg = a + 8;
        } else if (stats_is_pid(a) && !pid_arg) {
            pid_arg = a;
        } else if (a[0] == '-' && a[1]) {
            cli_unknown_option(a);
        } else {
            cli_usage("stats PID: unexpected '%s' (stats PID [--watch N])", a);
        }
    }
    if (!pid_arg) cli_usage("stats: no PID given (stats PID [--watch N])", NULL);
    long pid = strtol(pid_arg, NULL, 10), watch = 0;
    if (pid <= 0 || pid > INT_MAX || strlen(pid_arg) > 10) cli_usage("stats: '%s' is not a PID", pid_arg);
    if (watch_arg) {
        char *end;
        errno = 0;
        watch = strtol(watch_arg, &end, 10);
        if (errno || end == watch_arg || *end || watch <= 0 || watch > 86400)
            cli_usage("stats: --watch takes a number of seconds (1 to 86400), not '%s'", watch_arg);
    }
    return stats_of_pid((int)pid, watch);
}

int cmd_stats(int argc, char **argv) {
    /* A number where the command would be: a process to read, not a command to run. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) break;
        if (!strcmp(a, "-w") || !strcmp(a, "--watch") || !strncmp(a, "--watch=", 8) ||
            stats_is_pid(a))
            return stats_pid_command(argc, argv);
        if (!strcmp(a, "-o") || !strcmp(a, "--options")) i++;
        else if (a[0] != '-') break;
    }
    int i = cli_command_start(argc, argv, "stats");
    cli_add_options("stats=1");
    cli_exec_on_strata(argv + i);
}
