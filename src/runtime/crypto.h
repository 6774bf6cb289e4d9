/*
 * crypto.h — the host side of the `tmqtt_crypto` import (internal to src/runtime/;
 * the ABI is in crypto.c and docs/wasm-runtime.md).
 *
 * One tm_crypto per instance holds the AEAD contexts the module created, in host
 * memory, behind opaque handles.
 */
#ifndef TM_RUNTIME_CRYPTO_H
#define TM_RUNTIME_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_crypto tm_crypto;

/* Live contexts allowed per descriptor the module may hold (--max-fds): a TLS
 * connection needs two (read and write), a key update replaces them one at a time. */
#define TM_CRYPTO_PER_FD 4

/* NULL with the reason in err when the host's OpenSSL lacks one of the algorithms. */
tm_crypto *tm_crypto_new(uint32_t max_contexts, char *err, size_t errlen);
void tm_crypto_free(tm_crypto *c);
/* One line of counters, for --trace at exit. */
void tm_crypto_stats(const tm_crypto *c, char *out, size_t outlen);

#endif
