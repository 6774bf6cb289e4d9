/*
 * seal.h — the key the store is sealed under, and authenticated encryption
 * of its frames (docs/persistence.md, "Sealing").
 *
 * A key source (tm_seal) yields one 256-bit root key that only the same TEE
 * program can obtain again:
 *   gramine-mrenclave [ROOT]  Gramine's sealing key bound to this enclave's
 *                             MRENCLAVE (ROOT/keys/_sgx_mrenclave, ROOT
 *                             defaults to /dev/attestation)
 *   gramine-mrsigner [ROOT]   ... bound to its signer (survives upgrades)
 *   snp [DEVICE]              an SEV-SNP key derived by the AMD secure
 *                             processor from the VCEK, bound to the launch
 *                             measurement (/dev/sev-guest)
 *   keyfile PATH              a 32-byte key file (created on first use, mode
 *                             0600): development, `sim`, and platforms with no
 *                             sealing (TDX: the operator provides the key,
 *                             e.g. from a key broker after attestation)
 *   host                      WebAssembly: the runtime host holds the key and
 *                             does the sealing; the module never sees it
 * Each store file gets its own key, HKDF-SHA256(root, salt = file id, info =
 * "tmqtt store v1" || store id), so nonces (the frame sequence numbers) are
 * never reused under one key even when a file is rewritten.
 */
#ifndef TM_BROKER_SEAL_H
#define TM_BROKER_SEAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_seal tm_seal;
typedef struct tm_seal_file tm_seal_file;

#define TM_SEAL_TAG 16

/* NULL with a reason when the spec is bad or the key cannot be obtained. */
tm_seal *tm_seal_open(const char *spec, char *err, size_t errcap);
void tm_seal_close(tm_seal *s);
/* What the store header records ("keyfile", "gramine-mrenclave", ...), so a
 * store sealed one way is not mistaken for damage when opened another way. */
const char *tm_seal_mode(const tm_seal *s);

tm_seal_file *tm_seal_file_new(tm_seal *s, const uint8_t store_id[16],
                               const uint8_t file_id[16], char *err, size_t errcap);
void tm_seal_file_free(tm_seal_file *f);
/* AES-256-GCM in place, nonce = 0^32 || seq. 0, or -1 (decrypt: the frame is
 * not authentic — wrong key, damaged, moved, replayed). */
int tm_seal_encrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, uint8_t tag[TM_SEAL_TAG]);
int tm_seal_decrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, const uint8_t tag[TM_SEAL_TAG]);

#endif
