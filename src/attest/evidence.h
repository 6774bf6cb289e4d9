/*
 * evidence.h — evidence formats and the session binding value of attested TLS.
 *
 * Owns: the registry of evidence format ids (attested-tls.md, "Evidence
 * formats"), their names, and the one function that computes the 64-byte
 * report_data every format carries:
 *
 *   report_data = SHA-512(label || 0x00 || nonce[32] || binder || server_key_share || spki_hash[32])
 *
 * (protocol v2; `binder` is HKDF-Expand-Label(server_handshake_traffic_secret,
 * "tmqtt atls binder", "", Hash.length), derived by the TLS layer, atls.c)
 *
 * Both the attesting side (to ask a provider for evidence) and the verifying
 * side (to recompute and compare) call tm_atls_binding(); there is no other
 * place where the binding is computed. Pure computation: no I/O, builds for
 * wasm32-wasi unchanged.
 */
#ifndef TM_ATTEST_EVIDENCE_H
#define TM_ATTEST_EVIDENCE_H
#include <stddef.h>
#include <stdint.h>

/* Wire ids of evidence formats (uint16 in AttestationRequest/Evidence). */
#define TM_FMT_SIM      0x0001
#define TM_FMT_SGX_DCAP 0x0002
#define TM_FMT_TDX_DCAP 0x0003
#define TM_FMT_SEV_SNP  0x0004
/* Key-attested formats (attested-tls.md "+key"): a KeyAttestedEvidence around
 * the platform format's evidence, which binds an attestation key; one
 * signature by that key per handshake. Id = platform id | TM_FMT_KEY_FLAG. */
#define TM_FMT_KEY_FLAG     0x0100
#define TM_FMT_SIM_KEY      0x0101
#define TM_FMT_SGX_DCAP_KEY 0x0102
#define TM_FMT_TDX_DCAP_KEY 0x0103
#define TM_FMT_SEV_SNP_KEY  0x0104

#define TM_REPORT_DATA_LEN 64
#define TM_ATLS_NONCE_LEN 32
#define TM_ATLS_LABEL_SERVER "tmqtt-atls-v2 server"
#define TM_ATLS_LABEL_CLIENT "tmqtt-atls-v2 client"
#define TM_ATLS_BINDER_MIN 32            /* SHA-256 suites */
#define TM_ATLS_BINDER_MAX 64            /* room for any TLS 1.3 hash */

typedef enum { TM_ATLS_SERVER = 0, TM_ATLS_CLIENT = 1 } tm_atls_role;

/* "sim", "sgx-dcap", "tdx-dcap", "sev-snp", "sim+key", ...; NULL for an unknown id. */
const char *tm_format_name(uint16_t format);
/* Name -> id; 0 on success, -1 for an unknown name. */
int tm_format_from_name(const char *name, uint16_t *format);
/* 1 for the +key formats (0x0101..0x0104). */
int tm_format_is_keyatt(uint16_t format);
/* The platform format inside a +key format (0x0102 -> 0x0002); a platform
 * format is returned unchanged. */
uint16_t tm_format_platform(uint16_t format);
/* All formats names, comma-separated, for messages. */
#define TM_FORMAT_NAMES "sim, sgx-dcap, tdx-dcap, sev-snp, sim+key, sgx-dcap+key, tdx-dcap+key, sev-snp+key"

/*
 * Computes report_data for `role` (selects the label). `binder` is this
 * handshake's key-schedule binder (Hash.length of the negotiated suite,
 * TM_ATLS_BINDER_MIN..MAX bytes); `key_share` is the server's encoded (EC)DHE
 * public key of this handshake (must be non-empty); `spki_hash` is SHA-256 of
 * the attesting side's certificate SPKI, or NULL for "authenticates with a PSK
 * only" (32 zero bytes). Returns 0, or -1 on bad arguments / crypto failure.
 */
int tm_atls_binding(tm_atls_role role, const uint8_t nonce[TM_ATLS_NONCE_LEN],
                    const uint8_t *binder, size_t binder_len,
                    const uint8_t *key_share, size_t key_share_len,
                    const uint8_t *spki_hash, uint8_t out[TM_REPORT_DATA_LEN]);
#endif
