/*
 * wasi_mem.c — memcpy, memmove and memset as single bulk-memory instructions
 * (memory.copy, memory.fill), linked into the module ahead of wasi-libc (guest side;
 * compiled only for wasm32-wasi, and only with -mbulk-memory).
 *
 * Debian's wasi-libc (2022-05) builds musl's portable C loops for these (word at a
 * time at best). Code compiled with -mbulk-memory already turns its own
 * __builtin_memcpy calls into memory.copy, but calls that reach the library — from
 * wasi-libc itself, from objects built without bulk memory, and every call whose size
 * is not known to the compiler — land here. The runtime executes memory.copy and
 * memory.fill as one bounds check plus the host's memmove/memset (wasm2c:
 * memory_copy/memory_fill; WAMR the same), i.e. the host libc's vectorised copy.
 *
 * Semantics: memory.copy is memmove (overlap allowed), so memmove needs nothing more.
 * An out-of-range copy traps before writing anything — C leaves that undefined.
 * Because these definitions come first on the link line, wasm-ld never pulls
 * memcpy.o, memmove.o or memset.o out of libc.a (no duplicate symbols).
 */
#ifdef __wasi__
#ifndef __wasm_bulk_memory__
#error "wasi_mem.c must be compiled with -mbulk-memory (it would call itself otherwise)"
#endif
#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    __builtin_memcpy(dst, src, n);
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    __builtin_memmove(dst, src, n);
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    __builtin_memset(dst, c, n);
    return dst;
}
#endif
