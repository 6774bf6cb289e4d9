/*
 * wasi_ra.h — the `tmqtt_ra` attestation import, as seen by a module (guest side).
 *
 * The runtime (tmqtt-wasm --attest sim|gramine|tsm|none) answers with the provider it
 * was started with; the module never sees keys or TEE files. Return values are WASI
 * errno values (0 = success):
 *   tm_ra_formats: writes the supported evidence format ids as big-endian uint16
 *     (most preferred first) and their total byte length to *out_len; ENOBUFS with
 *     *out_len = bytes needed when out_cap is too small. Zero formats = no TEE.
 *   tm_ra_collect_evidence: evidence of `format` over 64 bytes of report data;
 *     ENOBUFS with *out_len = bytes needed, ENOTSUP for a format the provider cannot
 *     produce, EIO when the TEE interface failed (the runtime logs why).
 *   tm_ra_key_new / key_public / key_sign / key_free: an attestation key of the +key
 *     formats (docs/attested-tls.md), made and kept by the host with one quote of
 *     `format` over its key binding; the module holds a handle, reads the public parts
 *     (what 0: DER SPKI, 1: platform evidence) and asks for signatures over 64 bytes.
 *     The private key never enters the module's memory.
 */
#ifndef TM_PLATFORM_WASI_RA_H
#define TM_PLATFORM_WASI_RA_H
#ifdef __wasi__
#include <stdint.h>

uint32_t tm_ra_formats(uint8_t *out, uint32_t out_cap, uint32_t *out_len)
    __attribute__((import_module("tmqtt_ra"), import_name("formats")));
uint32_t tm_ra_collect_evidence(uint32_t format, const uint8_t report_data[64], uint8_t *out,
                                uint32_t out_cap, uint32_t *out_len)
    __attribute__((import_module("tmqtt_ra"), import_name("collect_evidence")));
uint32_t tm_ra_key_new(uint32_t format, uint64_t not_after, uint32_t *handle)
    __attribute__((import_module("tmqtt_ra"), import_name("key_new")));
uint32_t tm_ra_key_public(uint32_t handle, uint32_t what, uint8_t *out, uint32_t out_cap,
                          uint32_t *out_len)
    __attribute__((import_module("tmqtt_ra"), import_name("key_public")));
uint32_t tm_ra_key_sign(uint32_t handle, const uint8_t report_data[64], uint8_t *sig,
                        uint32_t sig_cap, uint32_t *sig_len)
    __attribute__((import_module("tmqtt_ra"), import_name("key_sign")));
uint32_t tm_ra_key_free(uint32_t handle)
    __attribute__((import_module("tmqtt_ra"), import_name("key_free")));

#endif
#endif
