/*
 * stats.h — a running process's statistics file (the memfd named "strata" that libstrata shares,
 * format in src/support/statfile.h), found and checked from outside: strata stats PID reads its
 * counters, strata profile PID (and strata report PID) its heap profile.
 */
#ifndef STRATA_TOOLS_STATS_H
#define STRATA_TOOLS_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "support/support.h"

struct stats_file {
    int fd; /* read-only, close it */
    sx_share_header hd;
};

/* Open PID's statistics file: 0, or -1 with a one-line reason in why ("no such process", "not
 * running on strata (no live statistics)", "cannot read /proc/PID/fd: ..."). */
int stats_open(int pid, struct stats_file *out, char *why, size_t cap);

/* Read the header of a statistics file, ordered against what it publishes (see stats.c); false on
 * a read error (errno). */
bool stats_header(int fd, sx_share_header *hd);

/* Sum what an open statistics file holds into a snapshot for sx_report_print (what only the
 * process can know left out: s->walked is false). False on a read error (errno). */
bool stats_snapshot(const struct stats_file *f, int pid, sx_snapshot *s);

/* When PID started (clock ticks after boot); 0 when there is no such process or it has exited. */
unsigned long long stats_started(int pid);
/* Has the process that started at `start` (stats_started) exited since? */
bool stats_gone(int pid, unsigned long long start);

/* s is a PID as the command line may give one (digits); false if not. */
bool stats_is_pid(const char *s);

#endif
