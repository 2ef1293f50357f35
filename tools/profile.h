/*
 * profile.h — a heap profile (src/support/statfile.h: the sampled stacks and live samples libstrata
 * keeps in its statistics file) read into memory with the process's modules, for strata profile
 * and strata report PID.
 *
 * It comes from a running process (its statistics file and /proc/PID/maps) or from a saved
 * profile: the file libstrata writes at exit with profile_dump=PATH, which `strata profile
 * --save` writes too:
 *
 *   "STRAPDMP"   8 bytes
 *   N            uint64, the profile part's length (0: no sample was taken)
 *   N bytes      the profile part, as in the statistics file
 *   the text of /proc/PID/maps, to the end of the file
 */
#ifndef STRATA_TOOLS_PROFILE_H
#define STRATA_TOOLS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dump.h"
#include "support/support.h"

#define PROFILE_SAVE_MAGIC "STRAPDMP"

/* What one stack of the profile stands for (estimates: samples scaled by their weight). */
struct profile_site {
    uint64_t stack; /* its id in d.stacks */
    double live_bytes, live_objects;   /* inuse_space, inuse_objects */
    double alloc_bytes, alloc_objects; /* since the process started */
};

struct profile_module {
    char *file;        /* as /proc/PID/maps names it */
    uint64_t offset;   /* file offset of the mapping */
    char build_id[80]; /* hex, "" when unknown */
};

struct profile {
    int pid;
    char *program;          /* the executable's path */
    sx_profile_header hd;   /* the profile's header (zero when no sample was taken) */
    unsigned char *part;    /* the profile part as copied; NULL when no sample was taken */
    size_t part_len;
    char *maps;             /* the text of /proc/PID/maps when it was read */
    struct dump d;          /* modules, stacks (innermost first, libstrata's own frames left out) and
                               sites (one per stack: bytes and allocs are its live bytes and objects) */
    struct profile_module *mods; /* one per d.modules */
    struct profile_site *sites;  /* one per d.stacks, in their order */
    size_t n_sites;
    double live_bytes, live_objects; /* the totals */
};

/* PID's profile, now. False with the reason in why, in a few words ("no such process", "not
 * running on strata (no live statistics)", "exited", ...). */
bool profile_of_pid(int pid, struct profile *p, char *why, size_t cap);
/* A saved profile. False after printing one line on stderr. */
bool profile_of_file(const char *path, struct profile *p);
void profile_free(struct profile *p);

#endif
