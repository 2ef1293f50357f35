/*
 * pprof.h — writing a heap profile in pprof's format (profile.proto, gzip-compressed), which
 * `go tool pprof` and the pprof web UI open. Built in memory: sample types, mappings, locations
 * with their function and line, samples; then written once.
 */
#ifndef STRATA_TOOLS_PPROF_H
#define STRATA_TOOLS_PPROF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pprof;

/* A profile with `n` values per sample, value i of type types[i] in units[i] (e.g. "inuse_space",
 * "bytes"). */
struct pprof *pprof_new(const char *const *types, const char *const *units, int n);
void pprof_free(struct pprof *p);

/* A loaded object: [lo, hi) mapped from `file` at `offset`; build_id as hex, or NULL. Ids from 1. */
uint64_t pprof_mapping(struct pprof *p, uint64_t lo, uint64_t hi, uint64_t offset, const char *file,
                       const char *build_id);
/* An address in mapping `mapping` (0: none), with its function, source file and line when known
 * (NULL, 0: not). The same address gives the same id. */
uint64_t pprof_location(struct pprof *p, uint64_t addr, uint64_t mapping, const char *function,
                        const char *source, int64_t line);
/* A sample: its stack as location ids, innermost first, and its n values. */
void pprof_sample(struct pprof *p, const uint64_t *locations, int depth, const int64_t *values);
/* Sampling period (e.g. "space", "bytes", 524288) and which type pprof shows first. */
void pprof_period(struct pprof *p, const char *type, const char *unit, int64_t period);
void pprof_default_type(struct pprof *p, const char *type);

/* The profile, gzip-compressed, to f. False on a write error. */
bool pprof_write(struct pprof *p, FILE *f);

#endif
