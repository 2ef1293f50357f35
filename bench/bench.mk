# Benchmarks: strata against glibc, jemalloc, tcmalloc and mimalloc (see BENCHMARKS.md).
#
#   make bench                 every workload, 5 interleaved runs each; table, CSV and chart in
#                              bench/results/latest.*, and the table into BENCHMARKS.md
#   make bench QUICK=1         reduced workloads, 3 runs: a look in under two minutes (quick.*)
#   make bench-instr           instructions per allocation call (callgrind), single-thread workloads
#   make bench-scaling MAX_THREADS=16   the multi-thread workloads at 1, 2, 4 ... MAX_THREADS, with
#                              each allocator's speed-up from 1 to 2 threads (and to MAX_THREADS);
#                              QUICK=1: reduced workloads, into bench/results/quick-scaling.*
#   make bench-suite-scaling   the public suite's larson and xmalloc (SUITE, ../shared/suite, its
#                              run.py) with 1 and 2 threads: each allocator's speed-up, strata/peer
#                              (SUITE_PASSES alternating passes, 3; about 100 s a pass with five
#                              columns: larson and xmalloc run 5 s each)
#   make bench-hugepages       strata with and without huge pages on a large random-access heap
#   make bench-harden          what the default build's checks cost (against the same build with
#                              them compiled out) and what secure mode costs, every workload
#   make bench-diag            strata leaks and guard (libstrata-diag.so) against valgrind and
#                              heaptrack on perl, python3, sort, cfrac, espresso, mixed: time, memory
#   make bench-memlog          examples/memlog: records/s against fprintf+fflush and a mutex buffer
#   make bench-guardcost       what a guard page per block costs the kernel (strata guard's floor)
#   make bench-oom             out of memory three ways (RLIMIT_AS, vm.max_map_count, RLIMIT_DATA):
#                              blocks before NULL, errno, and recovery, per entry point
#   make bench-explicit        strata_pool, strata_cache and strata_pages against malloc/free,
#                              posix_memalign and mmap (RUNS=N interleaved runs, default 5)
#   make soak                  bench/soak.c, a server-shaped program, for SOAK_TIME seconds (600) on
#                              SOAK_LIB (lib/libstrata.so; SOAK_LIB= for glibc's malloc): a line
#                              every SOAK_INTERVAL seconds (60), then whether RSS/live crept (exit 1)
#                              (SOAK_THREADS workers, 4; SOAK_CYCLE seconds, 120 or a fifth of the run)
#
# PEERS="NAME=LIB ..." adds allocators of your own to bench, bench-instr, bench-scaling,
# bench-suite-scaling, bench-hugepages and bench-harden: LIB preloaded, a column called NAME with strata/NAME ratios
# (bench-harden: strata/NAME and secure/NAME; bench-hugepages: a row timed against strata's, like
# glibc's), at most six of them, each library's path at the end of each report. E.g.
#   make bench PEERS="mimalloc3=/work/shared/peers/libmimalloc3.so snmalloc=/work/shared/peers/libsnmallocshim.so"
#   make bench-harden PEERS="mimalloc3-secure=/work/shared/peers/libmimalloc3-secure.so"
# (NAME: letters, digits and ._+-; the driver gets each as --peer NAME=LIB.) Without PEERS the
# columns are strata, glibc and Debian's jemalloc, tcmalloc and mimalloc.

BENCH_CFLAGS := -std=gnu11 -g -O2 -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free -Wall -Wextra -pthread
BENCH_WORK   := $(patsubst bench/workloads/%.c,build/bench/%,$(wildcard bench/workloads/*.c))
MAX_THREADS  ?= 16
BENCH_RUNS   ?=
PEERS        ?=
STRATA_AS    ?=
BENCH_PEERS  := $(foreach p,$(PEERS),--peer $(p)) $(foreach p,$(STRATA_AS),--strata-as $(p))

build/bench/%: bench/workloads/%.c bench/workload.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@
build/bench/driver: bench/driver.c bench/report.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@ -lm
build/bench/diag: bench/diag.c bench/report.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@ -lm
build/bench/libbump.so: bench/bump.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -O2 -fPIC -shared $< -o $@

bench-build: lib/libstrata.so $(BENCH_WORK) build/bench/driver build/bench/libbump.so

# what the guarded copies of libstrata-secure.so cost (bench/memcopy.c says how it is run)
build/bench/memcopy: bench/memcopy.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) -fno-builtin $< -o $@

build/bench/explicit: bench/explicit.c include/strata.h lib/libstrata-api.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) -Iinclude $< -o $@ -Llib -lstrata-api -Wl,-rpath,$(CURDIR)/lib

# make bench-guardcost: what a page of its own per block costs the kernel, each way (the floor
# under strata guard and the sampled guard)
build/bench/guardcost: bench/guardcost.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@
bench-guardcost: build/bench/guardcost
	@build/bench/guardcost

# make bench-oom: every entry point run out of memory three ways, and back (a table, not a timing)
build/bench/oom: bench/oom.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@
bench-oom: build/bench/oom lib/libstrata.so
	@LD_PRELOAD=$(CURDIR)/lib/libstrata.so build/bench/oom

.PHONY: bench-suite-scaling bench-guardcost bench-oom bench bench-build bench-instr bench-scaling bench-hugepages bench-peers bench-diag bench-harden bench-memlog bench-explicit soak
bench-peers:
	@bench/install-peers.sh

bench: bench-build bench-peers
	@build/bench/driver --publish BENCHMARKS.md $(if $(QUICK),--quick) $(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) $(BENCH_PEERS)

bench-instr: bench-build bench-peers
	@command -v valgrind >/dev/null || { echo "bench-instr needs valgrind"; exit 1; }
	@build/bench/driver --publish BENCHMARKS.md --instr $(BENCH_PEERS)

bench-scaling: bench-build bench-peers
	@build/bench/driver --publish BENCHMARKS.md --scaling $(MAX_THREADS) $(if $(QUICK),--quick) $(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) $(BENCH_PEERS)

# the suite's own runner, the columns of make bench: strata, glibc, Debian's peers where installed
SUITE        ?= ../shared/suite
SUITE_PASSES ?= 3
DEBIAN_PEERS := jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
                tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
                mimalloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
bench-suite-scaling: lib/libstrata.so bench-peers
	@bench/suite-scaling.sh --publish BENCHMARKS.md $(SUITE) $(SUITE_PASSES) bench/results/suite-scaling.md \
	    strata=$(CURDIR)/lib/libstrata.so glibc= \
	    $(foreach p,$(DEBIAN_PEERS),$(if $(wildcard $(word 2,$(subst =, ,$(p)))),$(p))) $(PEERS)

bench-hugepages: bench-build
	@build/bench/driver --publish BENCHMARKS.md --hugepages $(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) $(BENCH_PEERS)

bench-harden: bench-build build/unchecked/lib/libstrata.so $(wildcard lib/libstrata-secure.so)
	@build/bench/driver --publish BENCHMARKS.md --harden build/unchecked/lib/libstrata.so $(if $(BENCH_RUNS),--runs $(BENCH_RUNS)) $(BENCH_PEERS)

bench-diag: lib/libstrata-diag.so build/bench/diag build/bench/cfrac build/bench/espresso build/bench/mixed
	@command -v valgrind >/dev/null && command -v heaptrack >/dev/null || bench/install-peers.sh valgrind heaptrack
	@build/bench/diag --publish BENCHMARKS.md $(if $(BENCH_RUNS),--runs $(BENCH_RUNS))

build/bench/memlog: bench/memlog.c $(MEMLOG_LIB) examples/memlog/memlog.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -g -O2 -Wall -Wextra -pthread -Iexamples/memlog $< $(MEMLOG_LIB) -o $@

bench-memlog: build/bench/memlog
	@build/bench/memlog $(if $(BENCH_RUNS),--runs $(BENCH_RUNS))
bench-explicit: build/bench/explicit
	@build/bench/explicit $(if $(RUNS),--runs $(RUNS))

# The soak test: not part of make test (it runs for minutes). The program itself is not linked
# with strata; SOAK_LIB is preloaded, so any allocator can run it.
SOAK_TIME     ?= 600
SOAK_INTERVAL ?= 60
SOAK_THREADS  ?= 4
SOAK_CYCLE    ?=
SOAK_LIB      ?= lib/libstrata.so
build/bench/soak: bench/soak.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(BENCH_CFLAGS) $< -o $@
soak: build/bench/soak $(SOAK_LIB)
	@env LD_PRELOAD=$(if $(SOAK_LIB),$(abspath $(SOAK_LIB))) build/bench/soak -t $(SOAK_TIME) \
	    -i $(SOAK_INTERVAL) -w $(SOAK_THREADS) $(if $(SOAK_CYCLE),-c $(SOAK_CYCLE))
