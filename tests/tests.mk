# Tests: `make test` builds the library (release and debug), the test programs, and runs them all
# through tests/runner, which ends with "N passed, N failed".
#
#   tests/unit/*.c      linked with libstrata (malloc replaced): run against the release build and
#                       against the debug build (assertions, -fsanitize=undefined)
#   tests/unit/*.cc     the same, in C++
#   tests/api/*.c       linked with libstrata-api (strata_ functions beside glibc's malloc)
#   tests/programs/*.c  real programs (python3, gcc, git, sort, ...) preloaded with libstrata
#   tests/planted/*.c   programs with known leaks and heap bugs, for strata leaks, guard and report
#   tests/*.sh          build checks
#   tests/tsan/*.c      linked with libstrata-api built with -fsanitize=thread: the cross-thread
#                       protocols against the C11 memory model (tests/tsan.mk, make test-tsan)

TEST_CFLAGS   := -std=gnu11 -g -O1 -fno-builtin -Wall -Wextra -Wno-unused-parameter -Wno-alloc-size-larger-than -Iinclude -Itests -pthread
TEST_CXXFLAGS := -std=gnu++17 -g -O1 -fno-builtin -Wall -Wextra -Iinclude -Itests -pthread

UNIT_C   := $(wildcard tests/unit/*.c)
UNIT_CXX := $(wildcard tests/unit/*.cc)
UNIT_API := $(wildcard tests/api/*.c)
PROG     := $(filter-out tests/programs/broken_alloc.c,$(wildcard tests/programs/*.c))

REL_TESTS := $(patsubst tests/unit/%.c,build/tests/rel/%,$(UNIT_C)) \
             $(patsubst tests/unit/%.cc,build/tests/rel/%,$(UNIT_CXX)) \
             $(patsubst tests/api/%.c,build/tests/rel/%,$(UNIT_API))
DBG_TESTS := $(patsubst tests/unit/%.c,build/tests/debug/%,$(UNIT_C)) \
             $(patsubst tests/unit/%.cc,build/tests/debug/%,$(UNIT_CXX))
PRG_TESTS := $(patsubst tests/programs/%.c,build/tests/programs/%,$(PROG))
PLANTED   := $(patsubst tests/planted/%.c,build/tests/planted/%,$(wildcard tests/planted/*.c))

REL_LINK := -Llib -lstrata -Wl,-rpath,$(CURDIR)/lib -ldl
DBG_LINK := -fsanitize=undefined -Lbuild/debug/lib -lstrata -Wl,-rpath,$(CURDIR)/build/debug/lib -ldl

build/tests/rel/%: tests/unit/%.c tests/harness.h tests/stress.h lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $< -o $@ $(REL_LINK)
build/tests/rel/%: tests/unit/%.cc tests/harness.h tests/stress.h lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CXX) $(TEST_CXXFLAGS) $< -o $@ $(REL_LINK)
build/tests/rel/%: tests/api/%.c tests/harness.h lib/libstrata-api.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $< -o $@ -Llib -lstrata-api -Wl,-rpath,$(CURDIR)/lib -ldl
build/tests/debug/%: tests/unit/%.c tests/harness.h tests/stress.h build/debug/lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) $< -o $@ $(DBG_LINK)
build/tests/debug/%: tests/unit/%.cc tests/harness.h tests/stress.h build/debug/lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CXX) $(TEST_CXXFLAGS) $< -o $@ $(DBG_LINK)
build/tests/planted/%: tests/planted/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -g -O0 -fno-builtin -fno-omit-frame-pointer -Wno-free-nonheap-object -pthread $< -o $@
build/tests/programs/%: tests/programs/%.c tests/harness.h tests/job.h lib/libstrata.so bin/strata $(PLANTED)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -DSTRATA_ROOT='"$(CURDIR)"' $< -o $@
build/tests/programs/libbroken.so: tests/programs/broken_alloc.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -O1 -fPIC -shared $< -o $@
build/tests/programs/bench: bench-build build/tests/programs/libbroken.so
build/tests/programs/secure_units: $(REL_TESTS)
build/tests/programs/memops: lib/libstrata-secure.so
build/tests/runner: tests/runner.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -O1 -Wall -Wextra $< -o $@

TSAN_TESTS    := build/tests/tsan/cross_thread
TEST_PROGRAMS := $(REL_TESTS) $(DBG_TESTS) $(PRG_TESTS) $(TSAN_TESTS) $(wildcard tests/*.sh)

test: all build/tests/runner $(REL_TESTS) $(DBG_TESTS) $(PRG_TESTS) $(PLANTED) $(TSAN_TESTS)
	@build/tests/runner $(TEST_PROGRAMS)

# One test program, e.g. `make test-one T=rel/test_malloc`.
test-one: all build/tests/runner build/tests/$(T)
	@build/tests/runner build/tests/$(T)

include tests/security/security.mk
