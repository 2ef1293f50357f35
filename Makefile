# strata — build, test, install.
#
#   make                 lib/libstrata.{so,a}, lib/libstrata-api.{so,a}, bin/strata
#   make demo            run a real program on strata and show that strata served it
#   make test            every test (release and debug builds), ending "N passed, N failed"
#   make test-security   the security corpus under strata, glibc and the peers (SECURITY.md)
#   make test-tsan       the cross-thread protocols under ThreadSanitizer (tests/tsan.mk; in make test)
#   make install         PREFIX=/usr/local DESTDIR=
#   make debug           build/debug: assertions and -fsanitize=undefined
#   make examples        build/examples/memlog (see examples/memlog/README.md)
#   make fuzz            fuzz the allocation API for FUZZ_TIME seconds (tests/fuzz/fuzz.mk)

CC      ?= cc
CXX     ?= c++
PREFIX  ?= /usr/local
DESTDIR ?=
OPT     ?= -O2
WERROR  ?=
# strataConfig.cmake finds the installed files from where it lies: keep it at PREFIX/lib/cmake/strata
CMAKEDIR = $(PREFIX)/lib/cmake/strata

VERSION := $(shell sed -n 's/^\#define STRATA_VERSION_STRING "\(.*\)"/\1/p' include/strata.h)

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter $(if $(WERROR),-Werror)
LIBFLAGS  := -std=gnu11 -g $(OPT) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
             -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
             -fno-semantic-interposition -Iinclude -Isrc $(WARN)
DEBUGFLAGS := -std=gnu11 -g -O1 -fPIC -fvisibility=hidden -ftls-model=initial-exec \
             -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
             -DSTRATA_DEBUG -fsanitize=undefined -fno-sanitize-recover=undefined \
             -Iinclude -Isrc $(WARN)

# src/api/memops.c (the guarded memcpy and friends) goes into libstrata-secure.so alone
LIB_SRC  := $(filter-out src/api/api.c src/api/memops.c src/diag/%,$(wildcard src/*/*.c))
DIAG_SRC := $(wildcard src/diag/*.c)
LIB_HDR  := $(wildcard src/*.h src/*/*.h include/*.h)

REL_OBJ       := $(patsubst src/%.c,build/rel/%.o,$(LIB_SRC))
DBG_OBJ       := $(patsubst src/%.c,build/debug/%.o,$(LIB_SRC))
DIAG_OBJ      := $(patsubst src/%.c,build/rel/%.o,$(DIAG_SRC))
SECURE_OBJ    := $(patsubst src/%.c,build/secure/%.o,$(LIB_SRC))
UNCHECKED_OBJ := $(patsubst src/%.c,build/unchecked/%.o,$(LIB_SRC))

.PHONY: all debug test demo install uninstall clean check-warnings
all: lib/libstrata.so lib/libstrata.a lib/libstrata-api.so lib/libstrata-api.a lib/libstrata-diag.so lib/libstrata-secure.so bin/strata \
     build/examples/memlog

# ---- objects: one compile rule for every build variant ----
# Each object gets its dependency file beside it (build/rel/heap/heap.o: build/rel/heap/heap.d, -MMD)
# and is rebuilt when its source or a header it includes changes; -MP keeps a removed or moved
# header from stopping the build.
DEPFLAGS := -MMD -MP

# $(call cc_rule,OBJECT,SOURCE,COMPILER,FLAGS): OBJECT and SOURCE are files or patterns.
define cc_rule
$(1): $(2)
	@mkdir -p $$(dir $$@)
	@echo "  CC      $$@"
	@$(3) $(4) $$(DEPFLAGS) -c $$< -o $$@
endef

# $(call variant,DIR,COMPILER,FLAGS[,LIBONLY]): a build variant. DIR/X/Y.o from src/X/Y.c with
# FLAGS LIBONLY, and from src/api/api.c, with FLAGS: DIR/api/override.o (malloc and free replaced)
# and DIR/api/prefixed.o (the strata_ functions only). Its dependency files are read back in.
# (libstrata-diag.so's entry points are src/diag/entry.c, one of the diagnostic layer's sources.)
define variant
$(call cc_rule,$(1)/%.o,src/%.c,$(2),$(3) $(4))
$(call cc_rule,$(1)/api/override.o,src/api/api.c,$(2),$(3) -DSTRATA_OVERRIDE)
$(call cc_rule,$(1)/api/prefixed.o,src/api/api.c,$(2),$(3))
-include $(wildcard $(1)/*/*.d)
endef

# build/rel: lib/libstrata.{so,a}, libstrata-api.{so,a}, libstrata-diag.so
$(eval $(call variant,build/rel,$$(CC),$$(LIBFLAGS)))
# build/debug: assertions and -fsanitize=undefined (make debug)
$(eval $(call variant,build/debug,$$(CC),$$(DEBUGFLAGS)))
# build/secure: libstrata-secure.so (STRATA_SECURE_DEFAULT for the library's sources, not api.c)
$(eval $(call variant,build/secure,$$(CC),$$(LIBFLAGS) -DSTRATA_HARDEN=2,-DSTRATA_SECURE_DEFAULT))
# build/unchecked: the default build with its cheap checks compiled out (make bench-harden)
$(eval $(call variant,build/unchecked,$$(CC),$$(LIBFLAGS) -DSTRATA_HARDEN=0))

lib/libstrata.so: $(REL_OBJ) build/rel/api/override.o
	@mkdir -p lib
	@echo "  CC      $@"
	@$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata.so -Wl,-z,now -o $@ $^ -lpthread
lib/libstrata.a: $(REL_OBJ) build/rel/api/override.o
	@mkdir -p lib
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $^
# libstrata-secure.so: the same library with secure mode on unless STRATA_OPTIONS says secure=0,
# its free-list links encoded (STRATA_HARDEN=2), and the guarded memcpy, memmove, memset and
# mempcpy (src/api/memops.c); --wrap sends strata's own calls of them to the C library's,
# unchecked (MEMOPS_WRAP)
MEMOPS_WRAP := -Wl,--wrap=memcpy,--wrap=memmove,--wrap=memset,--wrap=mempcpy
lib/libstrata-secure.so: $(SECURE_OBJ) build/secure/api/override.o build/secure/api/memops.o
	@mkdir -p lib
	@echo "  CC      $@"
	@$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata-secure.so -Wl,-z,now $(MEMOPS_WRAP) \
	    -o $@ $^ -lpthread
# libstrata-diag.so: the same core with the diagnostic layer in front (strata leaks, guard, report)
lib/libstrata-diag.so: $(REL_OBJ) $(DIAG_OBJ)
	@mkdir -p lib
	@echo "  CC      $@"
	@$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata-diag.so -Wl,-z,now -o $@ $^ -lpthread
lib/libstrata-api.so: $(REL_OBJ) build/rel/api/prefixed.o
	@mkdir -p lib
	@echo "  CC      $@"
	@$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata-api.so -Wl,-z,now -o $@ $^ -lpthread
lib/libstrata-api.a: $(REL_OBJ) build/rel/api/prefixed.o
	@mkdir -p lib
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $^

# The default build with its cheap checks compiled out (STRATA_HARDEN=0): for make bench-harden
# only, to measure what the checks cost. Never installed.
build/unchecked/lib/libstrata.so: $(UNCHECKED_OBJ) build/unchecked/api/override.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -shared -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata.so -Wl,-z,now -o $@ $^ -lpthread

debug: build/debug/lib/libstrata.so
build/debug/lib/libstrata.so: $(DBG_OBJ) build/debug/api/override.o
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) -shared -fsanitize=undefined -static-libgcc -Wl,--exclude-libs,ALL -Wl,-soname,libstrata.so -o $@ $^ -lpthread

# The command prints heap statistics with the library's own printer (strata stats PID).
TOOLS_C   := $(wildcard tools/*.c)
TOOLS_H   := $(wildcard tools/*.h) src/support/record.h
TOOLS_LIB := src/support/report.c src/support/fmt.c
bin/strata: $(TOOLS_C) $(TOOLS_LIB) $(TOOLS_H) $(LIB_HDR)
	@mkdir -p bin
	@echo "  CC      $@"
	@$(CC) -std=gnu11 -g $(OPT) $(WARN) -Iinclude -Isrc \
	    -DSTRATA_LIBDIR='"$(PREFIX)/lib"' -o $@ $(TOOLS_C) $(TOOLS_LIB)

# ---- install ----
# The manual: strata(1), strata(3), strata-options(7) (man/; tests/man.sh checks them).
MANDIR ?= $(PREFIX)/share/man
MAN_PAGES := man/strata.1 man/strata.3 man/strata-options.7
install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 lib/libstrata.so lib/libstrata-api.so lib/libstrata-diag.so lib/libstrata-secure.so \
	    $(DESTDIR)$(PREFIX)/lib/
	install -m 644 lib/libstrata.a lib/libstrata-api.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/strata.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 bin/strata $(DESTDIR)$(PREFIX)/bin/
	for pc in strata strata-api; do \
	  sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' -e "s|@LIB@|$$pc|g" \
	      strata.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/$$pc.pc; done
	install -d $(DESTDIR)$(CMAKEDIR)
	for f in strataConfig strataConfigVersion; do \
	  sed -e 's|@VERSION@|$(VERSION)|g' -e "s|@SIZEOF_VOID_P@|$$(echo __SIZEOF_POINTER__ | $(CC) -E -P -x c - | tail -n 1)|g" \
	      cmake/$$f.cmake.in > $(DESTDIR)$(CMAKEDIR)/$$f.cmake; done
	for page in $(MAN_PAGES); do \
	  install -d $(DESTDIR)$(MANDIR)/man$${page##*.} && install -m 644 $$page $(DESTDIR)$(MANDIR)/man$${page##*.}/; done
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libstrata.so $(DESTDIR)$(PREFIX)/lib/libstrata-api.so \
	    $(DESTDIR)$(PREFIX)/lib/libstrata-diag.so $(DESTDIR)$(PREFIX)/lib/libstrata-secure.so \
	    $(DESTDIR)$(PREFIX)/lib/libstrata.a $(DESTDIR)$(PREFIX)/lib/libstrata-api.a \
	    $(DESTDIR)$(PREFIX)/include/strata.h $(DESTDIR)$(PREFIX)/bin/strata \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/strata.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/strata-api.pc
	rm -f $(DESTDIR)$(CMAKEDIR)/strataConfig.cmake $(DESTDIR)$(CMAKEDIR)/strataConfigVersion.cmake
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true
	for page in $(MAN_PAGES); do rm -f $(DESTDIR)$(MANDIR)/man$${page##*.}/$${page#man/}; done

# ---- demo: a real program on strata ----
# python3 is resolved to the interpreter itself first (version-manager shims would otherwise
# start several shell processes on strata too).
PYTHON := $(shell python3 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)
demo: all
	@echo '$$ bin/strata run -v -- python3 -c "..."'
	@bin/strata run -v -- $(PYTHON) -c 'import collections; w = collections.Counter(str(i % 1000) for i in range(300000)); print("python3 counted", sum(w.values()), "words,", len(w), "distinct")'
	@echo '$$ seq 200000 | bin/strata run -v -- sort -n -r | head -n 3'
	@seq 200000 | bin/strata run -v -- sort -n -r | head -n 3

# ---- the build must be warning-free under gcc and clang ----
COMPILERS ?= gcc clang
check-warnings:
	@for cc in $(COMPILERS); do \
	  command -v $$cc >/dev/null || { echo "missing compiler: $$cc"; exit 1; }; \
	  for f in $(LIB_SRC) $(DIAG_SRC) src/api/api.c src/api/memops.c; do \
	    $$cc $(LIBFLAGS) -Werror -c $$f -o /dev/null || exit 1; done; \
	  $$cc $(LIBFLAGS) -Werror -DSTRATA_OVERRIDE -c src/api/api.c -o /dev/null || exit 1; \
	  for f in $(TOOLS_C) $(TOOLS_LIB); do \
	    $$cc -std=gnu11 $(OPT) $(WARN) -Werror -Iinclude -Isrc -c $$f -o /dev/null || exit 1; done; \
	  for f in $(SEC_CHECKED); do \
	    $$cc -std=gnu11 -O1 $(WARN) -Werror -c $$f -o /dev/null || exit 1; done; \
	  for f in $(EXAMPLES_C) bench/memlog.c bench/soak.c; do \
	    $$cc $(EXAMPLES_CFLAGS) -Werror -Iexamples/memlog -c $$f -o /dev/null || exit 1; done; \
	  for f in $(FUZZ_C); do \
	    $$cc -std=gnu11 $(OPT) $(WARN) -Werror -Iinclude -c $$f -o /dev/null || exit 1; done; \
	  for f in bench/driver.c bench/diag.c bench/memcopy.c $(wildcard bench/workloads/*.c); do \
	    $$cc $(BENCH_CFLAGS) $(WARN) -Werror -c $$f -o /dev/null || exit 1; done; \
	  echo "$$cc: no warnings"; \
	done

include examples/examples.mk
include tests/tests.mk
include tests/arm64.mk
include tests/tsan.mk
include tests/fuzz/fuzz.mk
include bench/bench.mk

clean:
	rm -rf build lib bin
