/*
 * memops.c — the guarded copies of libstrata-secure.so: memcpy, memmove, memset and mempcpy
 * (and __mempcpy) replace the C library's. In secure mode each checks, before copying, that the
 * bytes it writes — and for the copies the bytes it reads — stay within the block they start in
 * (secure/bounds.c: O(1), as snmalloc's guarded memcpy does): an overflow or underflow by
 * memcpy aborts at the copy itself, even in a block that is never freed. Otherwise, and for
 * addresses outside strata's memory, they are the C library's.
 *
 * Only libstrata-secure.so carries this file (the Makefile links it there alone). In
 * lib/libstrata.so every memcpy of the program would go through strata first, a test and a jump
 * more, in default mode for nothing (12 instructions a call under callgrind: SECURITY.md, "What
 * the checks cost"); secure=1 on libstrata.so therefore leaves copies unchecked.
 *
 * The C library's own code is reached through its fortified entry points, __memcpy_chk and the
 * rest, given no bound: the same code behind a bounds compare, and symbols the dynamic linker
 * binds at load time like any other. So they work before main, in constructors, inside dlsym and in
 * signal handlers: no dlsym(RTLD_NEXT) to call first (it may allocate, and is not
 * async-signal-safe), and no IFUNC resolver of our own (it would run before the options that
 * say whether secure mode is on are read). __memcpy_chk itself is not replaced.
 *
 * strata's own calls of these functions (zeroing a freed block, realloc's copy) must not be
 * checked, as they write free blocks and tails on purpose, nor pay for the test: the library is
 * linked with --wrap for each name, which sends every call of the other objects to __wrap_NAME
 * here, straight to the C library. The bodies below call nothing the compiler could turn back
 * into a call of memcpy or memset.
 */
#undef _FORTIFY_SOURCE /* string.h would define memcpy and the rest itself */
#include <string.h>

#include "../secure/secure.h"

/* The C library's implementations. Each call goes through OPAQUE, an address the compiler cannot
 * see through: it knows __memcpy_chk with no bound to be memcpy and would call memcpy instead —
 * this file's (clang does, even under another name). */
void *sx_libc_memcpy(void *dst, const void *src, size_t n, size_t room) __asm__("__memcpy_chk");
void *sx_libc_memmove(void *dst, const void *src, size_t n, size_t room) __asm__("__memmove_chk");
void *sx_libc_memset(void *dst, int c, size_t n, size_t room) __asm__("__memset_chk");
void *sx_libc_mempcpy(void *dst, const void *src, size_t n, size_t room) __asm__("__mempcpy_chk");
#define OPAQUE(f)                          \
    ({                                     \
        __typeof(f) *f_ = &(f);            \
        __asm__("" : "+r"(f_));            \
        f_;                                \
    })
#define NO_BOUND SIZE_MAX

void *mempcpy(void *restrict dst, const void *restrict src, size_t n); /* string.h: _GNU_SOURCE only */
void *__mempcpy(void *restrict dst, const void *restrict src, size_t n);

/* Secure mode's path, out of line: the other path is a test and a jump to the C library's, with
 * nothing saved on the stack first. */
sx_noinline static void *memcpy_checked(void *dst, const void *src, size_t n, const char *fn) {
    if (n) sx_secure_check_copy(dst, src, n, fn);
    return OPAQUE(sx_libc_memcpy)(dst, src, n, NO_BOUND);
}
sx_noinline static void *memmove_checked(void *dst, const void *src, size_t n) {
    if (n) sx_secure_check_copy(dst, src, n, "memmove");
    return OPAQUE(sx_libc_memmove)(dst, src, n, NO_BOUND);
}
sx_noinline static void *memset_checked(void *dst, int c, size_t n) {
    if (n) sx_secure_check_range(dst, n, true, "memset");
    return OPAQUE(sx_libc_memset)(dst, c, n, NO_BOUND);
}
sx_noinline static void *mempcpy_checked(void *dst, const void *src, size_t n, const char *fn) {
    if (n) sx_secure_check_copy(dst, src, n, fn);
    return OPAQUE(sx_libc_mempcpy)(dst, src, n, NO_BOUND);
}

sx_public void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    if (sx_unlikely(sx_secure_on)) return memcpy_checked(dst, src, n, "memcpy");
    return OPAQUE(sx_libc_memcpy)(dst, src, n, NO_BOUND);
}

sx_public void *memmove(void *dst, const void *src, size_t n) {
    if (sx_unlikely(sx_secure_on)) return memmove_checked(dst, src, n);
    return OPAQUE(sx_libc_memmove)(dst, src, n, NO_BOUND);
}

sx_public void *memset(void *dst, int c, size_t n) {
    if (sx_unlikely(sx_secure_on)) return memset_checked(dst, c, n);
    return OPAQUE(sx_libc_memset)(dst, c, n, NO_BOUND);
}

sx_public void *mempcpy(void *restrict dst, const void *restrict src, size_t n) {
    if (sx_unlikely(sx_secure_on)) return mempcpy_checked(dst, src, n, "mempcpy");
    return OPAQUE(sx_libc_mempcpy)(dst, src, n, NO_BOUND);
}

/* glibc's other name for it, which older headers and some of GNU's programs call */
sx_public void *__mempcpy(void *restrict dst, const void *restrict src, size_t n) {
    if (sx_unlikely(sx_secure_on)) return mempcpy_checked(dst, src, n, "__mempcpy");
    return OPAQUE(sx_libc_mempcpy)(dst, src, n, NO_BOUND);
}

/* strata's own calls (the link's --wrap=NAME): the C library's, unchecked. */
void *__wrap_memcpy(void *restrict dst, const void *restrict src, size_t n);
void *__wrap_memmove(void *dst, const void *src, size_t n);
void *__wrap_memset(void *dst, int c, size_t n);
void *__wrap_mempcpy(void *restrict dst, const void *restrict src, size_t n);
void *__wrap_memcpy(void *restrict dst, const void *restrict src, size_t n) {
    return OPAQUE(sx_libc_memcpy)(dst, src, n, NO_BOUND);
}
void *__wrap_memmove(void *dst, const void *src, size_t n) {
    return OPAQUE(sx_libc_memmove)(dst, src, n, NO_BOUND);
}
void *__wrap_memset(void *dst, int c, size_t n) { return OPAQUE(sx_libc_memset)(dst, c, n, NO_BOUND); }
void *__wrap_mempcpy(void *restrict dst, const void *restrict src, size_t n) {
    return OPAQUE(sx_libc_mempcpy)(dst, src, n, NO_BOUND);
}
