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

#endif
#endif
