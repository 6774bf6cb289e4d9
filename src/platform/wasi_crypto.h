/*
 * wasi_crypto.h — the `tmqtt_crypto` import, as seen by a module (guest side), and the
 * OpenSSL provider built on it (wasi_crypto_prov.c).
 *
 * The host (tmqtt-wasm, src/runtime/crypto.c) keeps AEAD contexts in its own memory and
 * runs them with its native OpenSSL; the module refers to them by opaque 64-bit
 * handles. Return values are WASI errno values (0 = success). One whole message per
 * seal/open; nonce 12 bytes, tag 16 bytes; `out` equal to `in` or disjoint from it.
 * open returns EBADMSG (and zeroes `out`) when the tag does not verify.
 *
 * Only call these when the host announced the import (platform/wasi_host.h): on a host
 * without it the first call traps. tm_wasi_crypto_provider() reports what the
 * provider registration (a constructor, before main) decided.
 */
#ifndef TM_PLATFORM_WASI_CRYPTO_H
#define TM_PLATFORM_WASI_CRYPTO_H
#ifdef __wasi__
#include <stdint.h>

#define TM_CRYPTO_AES_128_GCM 1u
#define TM_CRYPTO_AES_256_GCM 2u
#define TM_CRYPTO_CHACHA20_POLY1305 3u

#define TM_CRYPTO_IMPORT(name) __attribute__((import_module("tmqtt_crypto"), import_name(name)))

uint32_t tm_crypto_aead_new(uint32_t alg, const uint8_t *key, uint32_t key_len, uint64_t *handle_out)
    TM_CRYPTO_IMPORT("aead_new");
uint32_t tm_crypto_aead_seal(uint64_t handle, const uint8_t *nonce, uint32_t nonce_len, const uint8_t *aad,
                             uint32_t aad_len, const uint8_t *in, uint32_t len, uint8_t *out, uint8_t *tag,
                             uint32_t tag_len) TM_CRYPTO_IMPORT("aead_seal");
uint32_t tm_crypto_aead_open(uint64_t handle, const uint8_t *nonce, uint32_t nonce_len, const uint8_t *aad,
                             uint32_t aad_len, const uint8_t *in, uint32_t len, const uint8_t *tag,
                             uint32_t tag_len, uint8_t *out) TM_CRYPTO_IMPORT("aead_open");
uint32_t tm_crypto_aead_free(uint64_t handle) TM_CRYPTO_IMPORT("aead_free");

/* Name of the OpenSSL provider that TLS record protection uses in this module:
 * "tmqtt-host" when the host's AEAD is in use, otherwise "default"; *why explains a
 * fallback (import not announced, self-test failed, ...) or is "" when in use. */
const char *tm_wasi_crypto_provider(const char **why);

#endif
#endif
