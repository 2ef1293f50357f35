# make test-arm64: libstrata and its unit and API tests built for aarch64 with Debian's cross
# compiler (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross; g++-aarch64-linux-gnu for the C++ test)
# and run under qemu-user, through tests/runner, ending "N passed, N failed". Each test runs at the
# kernel's page size and again with strata believing in 64 KiB pages (arm64 kernels have 4, 16 or
# 64 KiB ones). .ci/run installs the packages when they are missing.
#
#   build/arm64/...            the library's objects, lib/ (all four libraries) and bin/strata
#   build/arm64/tests/NAME     a test program for aarch64
#   build/tests/arm64/NAME     a script that runs it under qemu (what the runner runs; the name
#                              it reports is arm64/NAME, and arm64-64k/NAME at 64 KiB)

ARM64_CC   ?= aarch64-linux-gnu-gcc
ARM64_CXX  ?= aarch64-linux-gnu-g++
ARM64_ROOT ?= /usr/aarch64-linux-gnu
QEMU_ARM64 ?= qemu-aarch64

A64 := build/arm64
A64_OBJ := $(patsubst src/%.c,$(A64)/%.o,$(LIB_SRC))
$(eval $(call variant,$(A64),$$(ARM64_CC),$$(LIBFLAGS)))

A64_SO_FLAGS := -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-z,now
$(A64)/lib/libstrata.so: $(A64_OBJ) $(A64)/api/override.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(A64_SO_FLAGS) -Wl,-soname,libstrata.so -o $@ $^ -lpthread
$(A64)/lib/libstrata-api.so: $(A64_OBJ) $(A64)/api/prefixed.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(A64_SO_FLAGS) -Wl,-soname,libstrata-api.so -o $@ $^ -lpthread

# the rest of strata for aarch64, built to show it builds: the diagnostic and secure libraries
# and the command (their tests need a machine that runs arm64 programs natively)
A64_SECURE_OBJ := $(patsubst src/%.c,$(A64)/secure/%.o,$(LIB_SRC))
A64_DIAG_OBJ   := $(patsubst src/%.c,$(A64)/%.o,$(DIAG_SRC))
$(eval $(call variant,$(A64)/secure,$$(ARM64_CC),$$(LIBFLAGS) -DSTRATA_HARDEN=2,-DSTRATA_SECURE_DEFAULT))
$(A64)/lib/libstrata-secure.so: $(A64_SECURE_OBJ) $(A64)/secure/api/override.o $(A64)/secure/api/memops.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(A64_SO_FLAGS) $(MEMOPS_WRAP) -Wl,-soname,libstrata-secure.so -o $@ $^ -lpthread
$(A64)/lib/libstrata-diag.so: $(A64_OBJ) $(A64_DIAG_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(A64_SO_FLAGS) -Wl,-soname,libstrata-diag.so -o $@ $^ -lpthread
$(A64)/bin/strata: $(TOOLS_C) $(TOOLS_LIB) $(TOOLS_H) $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) -std=gnu11 -g $(OPT) $(WARN) -Iinclude -Isrc -DSTRATA_LIBDIR='"$(PREFIX)/lib"' -o $@ \
	    $(TOOLS_C) $(TOOLS_LIB)
A64_ALL := $(A64)/lib/libstrata.so $(A64)/lib/libstrata-api.so $(A64)/lib/libstrata-secure.so \
           $(A64)/lib/libstrata-diag.so $(A64)/bin/strata

# the C++ test only where the cross C++ compiler is
A64_HAVE_CXX := $(shell command -v $(ARM64_CXX) 2>/dev/null)
A64_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_C)) $(patsubst tests/api/%.c,%,$(UNIT_API)) \
             $(if $(A64_HAVE_CXX),$(patsubst tests/unit/%.cc,%,$(UNIT_CXX)))
A64_TESTS := $(addprefix $(A64)/tests/,$(A64_NAMES))
A64_RUN   := $(addprefix build/tests/arm64/,$(A64_NAMES)) $(addprefix build/tests/arm64-64k/,$(A64_NAMES))
A64_LINK  = -L$(A64)/lib -l$(1) -Wl,-rpath,$(CURDIR)/$(A64)/lib -ldl

$(A64)/tests/%: tests/unit/%.c tests/harness.h tests/stress.h $(A64)/lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(TEST_CFLAGS) $< -o $@ $(call A64_LINK,strata)
$(A64)/tests/%: tests/unit/%.cc tests/harness.h tests/stress.h $(A64)/lib/libstrata.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CXX) $(TEST_CXXFLAGS) $< -o $@ $(call A64_LINK,strata)
$(A64)/tests/%: tests/api/%.c tests/harness.h $(A64)/lib/libstrata-api.so
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(ARM64_CC) $(TEST_CFLAGS) $< -o $@ $(call A64_LINK,strata-api)

# The scripts the runner runs: the test under qemu, and the emulator named for the tests that
# execute themselves again (tests/harness.h, th_exec_self).
A64_EMU = $(QEMU_ARM64) -L $(ARM64_ROOT)
define a64_script
	@mkdir -p $(dir $@)
	@printf '#!/bin/sh\nexport STRATA_TEST_EMULATOR="%s"%s\nexec %s "%s" "$$@"\n' '$(A64_EMU)' '$(1)' \
	    '$(A64_EMU)' '$(CURDIR)/$<' > $@
	@chmod +x $@
endef
build/tests/arm64/%: $(A64)/tests/% tests/arm64.mk
	$(call a64_script,)
build/tests/arm64-64k/%: $(A64)/tests/% tests/arm64.mk
	$(call a64_script, STRATA_TEST_PAGE_SIZE=65536)

.SECONDARY: $(A64_TESTS) # made on the way to their scripts, kept
.PHONY: test-arm64 arm64-tools
arm64-tools:
	@for t in $(ARM64_CC) $(QEMU_ARM64); do command -v $$t >/dev/null || { \
	  echo "make test-arm64 needs $$t: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user (.ci/run does)"; \
	  exit 1; }; done
	@[ -d $(ARM64_ROOT)/lib ] || { echo "make test-arm64 needs the arm64 C library in $(ARM64_ROOT): apt-get install libc6-dev-arm64-cross"; exit 1; }

test-arm64: arm64-tools build/tests/runner
	@$(MAKE) --no-print-directory $(A64_ALL) $(A64_RUN)
	@build/tests/runner $(A64_RUN)
