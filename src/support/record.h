/*
 * record.h — the file libstrata-diag.so writes for the `strata` command (leaks, guard, report),
 * and libstrata.so's sampled guard (region/sampled.c) when a sampled block is misused under
 * `strata run`: its process, exe, module, stack and error records.
 *
 * The command runs the program with LD_PRELOAD=libstrata-diag.so and
 * STRATA_OPTIONS=diag=leaks|guard|report,diag_file=PREFIX; each process writes PREFIX.PID when
 * it exits (from a destructor, or from the handler of a fatal signal), the command reads the file
 * of the process it started, symbolizes the addresses and prints (leaks, guard) or draws (report).
 *
 * Text, one record per line, fields separated by one space; numbers are decimal unless written
 * 0x...; a path is the rest of its line. Records may come in any order except the first line;
 * a reader ignores record types it does not know. The last line is "end"; a file without it was
 * cut short (the process died while writing) and is read as far as it goes.
 *
 *   strata-diag 1                        format and version
 *   process PID MODE EXIT                MODE: leaks, guard, report, or sampled (libstrata.so's
 *                                        sampled guard: guard_sample=N); EXIT: exit (destructor ran),
 *                                        signal N (a fatal signal), or abort (strata stopped it)
 *   exe PATH                             the program (/proc/self/exe)
 *   module BIAS LO HI PATH               a loaded ELF object: its code lies in [LO, HI) and an
 *                                        address A is at ELF virtual address A - BIAS (hex, all
 *                                        three); PATH as the loader has it (the exe for "")
 *   stack ID N A1 ... AN                 a call stack, ID >= 1: return addresses (hex), innermost
 *                                        first, the allocator's own frames left out
 *   site ID ALLOCS BYTES FREES           per allocating stack ID: calls and bytes requested over
 *                                        the run, and how many of those blocks were freed
 *   leak ID KIND BLOCKS BYTES ADDR       blocks allocated at stack ID still live at exit; KIND
 *                                        lost (no pointer to them from the roots, even through
 *                                        other blocks) or reachable; ADDR one of them (hex)
 *   sample MS LIVE RSS ALLOCS            over time (ms since start): live bytes requested, the
 *                                        resident set (bytes), allocations so far
 *   size LIMIT ALLOCS BYTES              histogram of request sizes: requests of at most LIMIT
 *                                        bytes (above the previous line's LIMIT)
 *   total KEY VALUE                      keys: allocs frees bytes live live_blocks peak_live
 *                                        tracked (allocations with a stack: all of them unless
 *                                        sampling) sample_bytes depth unguarded (guard mode:
 *                                        blocks served without a guard: the map limit was hit)
 *                                        lost_nostack_blocks, _bytes, reachable_nostack_blocks,
 *                                        _bytes (leaked blocks that have no stack: sampling)
 *   error KIND ADDR ALLOC FREE SIZE OFF ACCESS AT
 *                                        the misuse that stopped the program (at most one):
 *                                        KIND overflow, underflow, use-after-free, double-free,
 *                                        invalid-free, corrupt-tail (bytes past the end written,
 *                                        found on free); ADDR the faulting or freed address; the
 *                                        block's stacks (0: unknown), size and OFF = ADDR - block
 *                                        start (may be negative or past SIZE); ACCESS read, write
 *                                        or free; AT the stack where it happened (the faulting
 *                                        access, or the free), 0: unknown; ADDR in hex
 *   end
 */
#ifndef STRATA_SUPPORT_RECORD_H
#define STRATA_SUPPORT_RECORD_H
#define SX_DIAG_DUMP_VERSION 1
#endif
