# Examples: programs built on what strata is about, each in its own folder with a README.
#
#   make examples        build/examples/memlog (examples/memlog: a lock-free log in a shared mapping)

EXAMPLES_CFLAGS := -std=gnu11 -g $(OPT) $(WARN) -pthread
MEMLOG_LIB      := examples/memlog/memlog.c
MEMLOG_C        := $(MEMLOG_LIB) examples/memlog/main.c
EXAMPLES_C      := $(MEMLOG_C)

.PHONY: examples
examples: build/examples/memlog

build/examples/memlog: $(MEMLOG_C) examples/memlog/memlog.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(EXAMPLES_CFLAGS) -o $@ $(MEMLOG_C)

# The test links the library itself (threads and forked producers) and runs the command.
build/tests/programs/memlog: tests/programs/memlog.c tests/harness.h $(MEMLOG_LIB) examples/memlog/memlog.h build/examples/memlog bin/strata lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(TEST_CFLAGS) -Iexamples/memlog -DSTRATA_ROOT='"$(CURDIR)"' $< $(MEMLOG_LIB) -o $@
