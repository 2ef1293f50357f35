# The security corpus (tests/security, SECURITY.md): small programs that misuse the heap, run under
# glibc, strata (default and secure mode) and the peer allocators.
#
#   make test-security    every case under every allocator: caught/total per category, and every
#                         verdict in build/security/results.txt
#
# Besides Debian's peers (bench-peers installs them), the hardened allocators people deploy, each
# a column where its library is found (a note says so where not), preloaded with its defaults:
#   SEC_HARDENED_MALLOC   GrapheneOS hardened_malloc ($(PEERS_DIR)/libhardened_malloc.so)
#   SEC_MIMALLOC_SECURE   mimalloc 3's secure build ($(PEERS_DIR)/libmimalloc3-secure.so)
#   SEC_SCUDO             LLVM's scudo from Debian's clang runtime (libclang-rt-NN-dev): a
#                         libclang_rt.scudo_standalone-x86_64.so under /usr/lib/llvm-*/lib/clang/*/lib/linux
#                         or /usr/lib/clang/*/lib/linux, else the older libclang_rt.scudo-x86_64.so
#                         there; the column is scudo-standalone or scudo after the one used
# PEERS_DIR is ../shared/peers beside the project (its README.md says how they were built). Any of
# them can be set on the command line, e.g. make test-security SEC_SCUDO=/path/to/libscudo.so;
# an empty one skips its column.
#
# The cases misuse memory on purpose: -O0 -fno-builtin keep every access and call, and the
# compiler's own misuse warnings are silenced (they are the point of the program).

SEC_CFLAGS   := -std=gnu11 -g -O0 -fno-builtin -U_FORTIFY_SOURCE -fno-stack-protector -Wall -Wextra \
                -Wno-free-nonheap-object -Wno-use-after-free -Wno-array-bounds -Wno-stringop-overflow \
                -Wno-alloc-size-larger-than -Wno-unknown-warning-option
SEC_CXXFLAGS := -std=gnu++17 -g -O0 -fno-builtin -U_FORTIFY_SOURCE -fno-stack-protector -Wall -Wextra \
                -Wno-mismatched-new-delete

PEERS_DIR           ?= $(abspath $(CURDIR)/../shared/peers)
SEC_HARDENED_MALLOC ?= $(PEERS_DIR)/libhardened_malloc.so
SEC_MIMALLOC_SECURE ?= $(PEERS_DIR)/libmimalloc3-secure.so
SEC_SCUDO_DIRS      := /usr/lib/llvm-*/lib/clang/*/lib/linux /usr/lib/clang/*/lib/linux
SEC_SCUDO           ?= $(lastword $(sort $(wildcard $(addsuffix /libclang_rt.scudo-x86_64.so,$(SEC_SCUDO_DIRS))))) \
                       $(lastword $(sort $(wildcard $(addsuffix /libclang_rt.scudo_standalone-x86_64.so,$(SEC_SCUDO_DIRS)))))
SEC_SCUDO_LIB       := $(lastword $(SEC_SCUDO))
SEC_SCUDO_NAME      := $(if $(findstring scudo_standalone,$(notdir $(SEC_SCUDO_LIB))),scudo-standalone,scudo)
SEC_PEERS           := --peer 'hardened_malloc=$(SEC_HARDENED_MALLOC)' \
                       --peer 'mimalloc3-secure=$(SEC_MIMALLOC_SECURE)' \
                       --peer '$(SEC_SCUDO_NAME)=$(SEC_SCUDO_LIB)'

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
	@build/security/runner $(SEC_PEERS) $(if $(SEC_ONLY),--only $(SEC_ONLY)) $(if $(V),-v)

# make test: the regression test runs the corpus under strata
build/tests/programs/security: $(SEC_CASES) tests/security/corpus.h

# the runner is checked by make check-warnings with the library
SEC_CHECKED  := tests/security/runner.c
