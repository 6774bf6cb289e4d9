/*
 * keyatt.h — key-attested evidence (attested-tls.md, "+key formats").
 *
 * A TEE makes an attestation key (P-256) in its own memory and obtains ONE
 * platform quote whose report data binds it:
 *
 *   key_binding = SHA-512("tmqtt-atls-v2 key" || 0x00 || key_spki || uint64 not_after)
 *
 * Each handshake's evidence is then one signature by that key over the
 * session binding value (evidence.h, tm_atls_binding), sent as
 *
 *   struct {
 *       opaque platform_evidence<1..2^16-1>;   the platform format's evidence
 *       opaque key_spki<1..2^16-1>;            DER SPKI of the key (P-256)
 *       uint64 not_after;                      seconds since the epoch
 *       opaque signature<1..2^16-1>;           ECDSA P-256/SHA-256 (DER) over the binding
 *   } KeyAttestedEvidence;                      (big-endian, no trailing bytes)
 *
 * Owns: that codec, the key-binding value, and the verifier's view (called by
 * tm_verify for the +key format ids, see verify.h for the order of checks).
 * Pure computation, no I/O: builds for wasm32-wasi. Where keys are made and
 * rotated is keyring.h.
 *
 * Invariants: the decoder accepts exactly one encoding (every length checked,
 * no trailing bytes), so that encode(decode(x)) == x; pointers of a decoded
 * value point into the caller's buffer.
 */
#ifndef TM_ATTEST_KEYATT_H
#define TM_ATTEST_KEYATT_H
#include <stddef.h>
#include <stdint.h>

#define TM_KEYATT_LABEL "tmqtt-atls-v2 key"

typedef struct tm_keyatt_ev {
    const uint8_t *platform;
    size_t platform_len;
    const uint8_t *spki;
    size_t spki_len;
    uint64_t not_after;
    const uint8_t *sig;
    size_t sig_len;
} tm_keyatt_ev;

/* 0 (TM_VERIFY_OK), or TM_VERIFY_EMALFORMED with a reason. */
int tm_keyatt_decode(const uint8_t *in, size_t len, tm_keyatt_ev *e, char *reason, size_t cap);
/* Bytes written, or 0 when a field is empty or longer than 65535 bytes or cap
 * is short (the size needed is then in *need when need is non-NULL). */
size_t tm_keyatt_encode(const tm_keyatt_ev *e, uint8_t *out, size_t cap, size_t *need);
/* The report data the platform evidence must carry. 0, or -1 on bad arguments. */
int tm_keyatt_key_binding(const uint8_t *spki, size_t spki_len, uint64_t not_after,
                          uint8_t out[64]);
/* 1 when `ev` is KeyAttestedEvidence whose signature verifies over `rd` with
 * its own key, else 0. Checks nothing else: for diagnostics (which binding
 * did the key sign?), never for acceptance. */
int tm_keyatt_signature_covers(const uint8_t *ev, size_t len, const uint8_t rd[64]);

#endif
