# The security corpus (tests/security, SECURITY.md): small programs that misuse the heap, run under
# glibc, strata (default and secure mode) and the peer allocators.
#
#   make test-security    every case under every allocator: caught/total per category, and every
#                         verdict in build/security/results.txt
#
# The cases misuse memory on purpose: -O0 -fno-builtin keep every access and call, and the
# compiler's own misuse warnings are silenced (they are the point of the program).

SEC_CFLAGS   := -std=gnu11 -g -O0 -fno-builtin -U_FORTIFY_SOURCE -fno-stack-protector -Wall -Wextra \
                -Wno-free-nonheap-object -Wno-use-after-free -Wno-array-bounds -Wno-stringop-overflow \
                -Wno-alloc-size-larger-than -Wno-unknown-warning-option
SEC_CXXFLAGS := -std=gnu++17 -g -O0 -fno-builtin -U_FORTIFY_SOURCE -fno-stack-protector -Wall -Wextra \
                -Wno-mismatched-new-delete
SEC_CASES    := $(patsubst tests/security/%.c,build/security/%,$(filter-out tests/security/runner.c,$(wildcard tests/security/*.c))) \
                $(patsubst tests/security/%.cc,build/security/%,$(wildcard tests/security/*.cc))

build/security/%: tests/security/%.c tests/security/case.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(SEC_CFLAGS) $< -o $@
build/security/%: tests/security/%.cc tests/security/case.h
	@mkdir -p $(dir $@)
	@echo "  CXX     $@"
	@$(CXX) $(SEC_CXXFLAGS) $< -o $@
build/security/runner: tests/security/runner.c tests/security/corpus.h
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -O1 $(WARN) $< -o $@

security-build: lib/libstrata.so $(SEC_CASES) build/security/runner

.PHONY: test-security security-build
test-security: security-build bench-peers
	@build/security/runner $(if $(SEC_ONLY),--only $(SEC_ONLY)) $(if $(V),-v)

# make test: the regression test runs the corpus under strata
build/tests/programs/security: $(SEC_CASES)

# the runner is checked by make check-warnings with the library
SEC_CHECKED  := tests/security/runner.c
