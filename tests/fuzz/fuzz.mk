# Fuzzing the allocation API (tests/fuzz/README.md).
#
#   make fuzz                  both fuzz targets, FUZZ_TIME seconds in all (default 60), split
#                              between them; new inputs merged into tests/fuzz/corpus/, crashes
#                              in build/fuzz/crashes/
#   make fuzz FUZZ_TIME=1800   the long run
#   make fuzz FUZZ_TIME=0 FUZZ_MINIMIZE=1   no fuzzing: rebuild the corpus as its smallest covering set
#   make fuzz-build            only build the targets (clang with libFuzzer)
#
# The fuzz targets are built by clang: the library objects as in the debug build (assertions,
# -fsanitize=undefined) plus AddressSanitizer and libFuzzer's coverage, linked with the strata_
# entry points only (api.c without STRATA_OVERRIDE), so the fuzzer's own malloc is not strata's.
# make test needs none of it: build/tests/fuzz/replay runs the corpus through the same harness,
# built by $(CC) against the debug objects (fuzz/replay) and against libstrata-api.a (fuzz/replay_rel),
# and in secure mode (fuzz/replay_secure).

FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_SAN  ?= address,undefined
FUZZ_C    := tests/fuzz/fuzz.c tests/fuzz/entry.c tests/fuzz/replay.c
FUZZ_LIBFLAGS := $(filter-out -fsanitize=undefined,$(DEBUGFLAGS)) -fsanitize=$(FUZZ_SAN),fuzzer-no-link
FUZZ_CFLAGS   := -std=gnu11 -g -O2 -Iinclude $(WARN) -pthread -fno-sanitize-recover=undefined
FUZZ_OBJ  := $(patsubst src/%.c,build/fuzz/obj/%.o,$(LIB_SRC)) build/fuzz/obj/api/prefixed.o

# the library's objects: the Makefile's compile rule, a build variant of its own
$(eval $(call variant,build/fuzz/obj,$$(FUZZ_CC),$$(FUZZ_LIBFLAGS)))
build/fuzz/fuzz-single build/fuzz/fuzz-threads: build/fuzz/fuzz-%: tests/fuzz/entry.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	@echo "  CC      $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=$(FUZZ_SAN),fuzzer -DFZ_THREADED=$(if $(filter threads,$*),1,0) \
	    tests/fuzz/entry.c tests/fuzz/fuzz.c $(FUZZ_OBJ) -o $@

.PHONY: fuzz fuzz-build
fuzz-build: build/fuzz/fuzz-single build/fuzz/fuzz-threads
fuzz:
	@tests/fuzz/run.sh $(FUZZ_TIME)

# ---- the corpus in make test, without libFuzzer ----
# (build/debug/api/prefixed.o: the debug variant's, in the Makefile)
REPLAY_FLAGS := $(TEST_CFLAGS) -DFZ_CORPUS='"$(CURDIR)/tests/fuzz/corpus"'
build/tests/fuzz/replay: tests/fuzz/replay.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(DBG_OBJ) build/debug/api/prefixed.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(REPLAY_FLAGS) -fsanitize=undefined -fno-sanitize-recover=undefined \
	    tests/fuzz/replay.c tests/fuzz/fuzz.c $(DBG_OBJ) build/debug/api/prefixed.o -o $@
build/tests/fuzz/replay_rel: tests/fuzz/replay.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h lib/libstrata-api.a
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(REPLAY_FLAGS) tests/fuzz/replay.c tests/fuzz/fuzz.c lib/libstrata-api.a -o $@

build/tests/fuzz/replay_secure: tests/fuzz/replay.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h lib/libstrata-api.a
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(REPLAY_FLAGS) -DFZ_SECURE tests/fuzz/replay.c tests/fuzz/fuzz.c lib/libstrata-api.a -o $@

FUZZ_TESTS := build/tests/fuzz/replay build/tests/fuzz/replay_rel build/tests/fuzz/replay_secure
TEST_PROGRAMS += $(FUZZ_TESTS)
test: $(FUZZ_TESTS)
