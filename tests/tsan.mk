# make test-tsan: strata's cross-thread protocols checked against the C11 memory model by
# ThreadSanitizer (tests/tsan/cross_thread.c says what it runs), through tests/runner, ending
# "N passed, N failed". TSan has a malloc of its own, so the test uses libstrata-api (the strata_
# functions beside it), built with -fsanitize=thread in build/tsan:
#
#   build/tsan/...                    the library's objects and lib/libstrata-api.so, -fsanitize=thread
#   build/tsan/tests/cross_thread     the test program
#   build/tests/tsan/cross_thread     what the runner runs: tests/tsan/run.sh, the program without
#                                     STRATA_OPTIONS and under each of TSAN_RUNS (reports in
#                                     build/tsan/tests/cross_thread.log), or one "skip" line where
#                                     TSAN_CC has no working ThreadSanitizer (compiled and run once
#                                     to see)
#
# About 30 s on two cores (each run about 7 s), the build a few more: part of `make test`.
#
# The release build's optimisation and orders: nothing is built with assertions, whose own atomic
# loads would add happens-before edges that hide a missing one.

TSAN_CC ?= $(CC)
TS := build/tsan
TS_OBJ := $(patsubst src/%.c,$(TS)/%.o,$(LIB_SRC))
# gcc warns that TSan does not model atomic_thread_fence (the profile's seqlock, read by another
# process, has one); clang has no such warning, nor the option
TSAN_NOWARN := $(if $(shell $(TSAN_CC) -Q --help=warnings 2>/dev/null | grep -w -- -Wtsan),-Wno-tsan)
TSAN_FLAGS = $(LIBFLAGS) -fsanitize=thread $(TSAN_NOWARN)
$(eval $(call variant,$(TS),$$(TSAN_CC),$$(TSAN_FLAGS)))

$(TS)/lib/libstrata-api.so: $(TS_OBJ) $(TS)/api/prefixed.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(TSAN_CC) -shared -fsanitize=thread -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata-api.so \
	    -o $@ $^ -lpthread
$(TS)/tests/cross_thread: tests/tsan/cross_thread.c tests/harness.h tests/stress.h $(TS)/lib/libstrata-api.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(TSAN_CC) -fsanitize=thread $(TEST_CFLAGS) $< -o $@ -L$(TS)/lib -lstrata-api \
	    -Wl,-rpath,$(CURDIR)/$(TS)/lib -ldl

# Each run: the heap profile sampling often (its profile heap's blocks are freed by everyone),
# stats=1 (every malloc takes the slow path, which reads every heap's counters), secure mode
# (quarantines, checked frees).
TSAN_RUNS ?= profile_rate=64k stats=1,profile_rate=0 secure=1
$(TS)/probe.ok: tests/tsan.mk
	@mkdir -p $(dir $@)
	@if printf 'int main(void) { return 0; }\n' | $(TSAN_CC) -fsanitize=thread -x c - -o $(TS)/probe \
	    2>/dev/null && $(TS)/probe; then echo yes; else echo no; fi > $@
build/tests/tsan/cross_thread: $(TS)/probe.ok tests/tsan.mk $(if $(filter yes,$(shell cat $(TS)/probe.ok 2>/dev/null)),$(TS)/tests/cross_thread)
	@mkdir -p $(dir $@)
	@if [ "$$(cat $(TS)/probe.ok)" = yes ]; then \
	  $(MAKE) --no-print-directory $(TS)/tests/cross_thread && \
	  printf '#!/bin/sh\nexec %s %s %s\n' '$(CURDIR)/tests/tsan/run.sh' '$(CURDIR)/$(TS)/tests/cross_thread' \
	      '$(TSAN_RUNS)' > $@; \
	else \
	  printf '#!/bin/sh\necho "skip cross_thread: %s cannot build or run a program with -fsanitize=thread"\n' \
	      '$(TSAN_CC)' > $@; \
	fi
	@chmod +x $@

.PHONY: test-tsan
test-tsan: build/tests/runner build/tests/tsan/cross_thread
	@build/tests/runner build/tests/tsan/cross_thread
