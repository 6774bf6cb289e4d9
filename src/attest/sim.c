/*
 * sim.c — the simulated TEE evidence format (`sim`, 0x0001): SimReport
 * encoding, parsing and appraisal.
 *
 * Layout (attested-tls.md), big-endian integers:
 *   magic[8] "TMQSIM01" | measurement[32] | flags u32 | timestamp u64 |
 *   report_data[64] | u16 spki_len | spki | u16 sig_len | sig
 * The ECDSA P-256/SHA-256 DER signature covers every byte from magic through
 * the platform SPKI *including* its 2-byte length prefix, and nothing after
 * it (not the signature's own length prefix). No trailing bytes are allowed,
 * so a report has exactly one valid encoding to flip bits in.
 *
 * Appraisal order: parse -> constant-time binding -> key is P-256 ->
 * signature -> key trusted by policy -> measurement/debug policy. A valid
 * signature by an untrusted key is still refused: sim is never a real TEE.
 */
#include "attest/attest_int.h"

#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

int tm_sim_parse(const uint8_t *b, size_t n, tm_sim_report *r, char *reason, size_t cap)
{
    memset(r, 0, sizeof *r);
    if (n < TM_SIM_FIXED_LEN + 2) {
        tm_reasonf(reason, cap, "sim: report truncated (%zu bytes)", n);
        return TM_VERIFY_EMALFORMED;
    }
    if (memcmp(b, TM_SIM_MAGIC, 8) != 0) {
        tm_reasonf(reason, cap, "sim: bad magic (not a TMQSIM01 report)");
        return TM_VERIFY_EMALFORMED;
    }
    r->measurement = b + 8;
    r->flags = (uint32_t)b[40] << 24 | (uint32_t)b[41] << 16 | (uint32_t)b[42] << 8 | b[43];
    r->timestamp = 0;
    for (int i = 0; i < 8; i++) r->timestamp = r->timestamp << 8 | b[44 + i];
    r->report_data = b + 52;
    size_t off = TM_SIM_FIXED_LEN;
    r->spki_len = tm_rd16be(b + off);
    off += 2;
    if (r->spki_len == 0 || r->spki_len > n - off) {
        tm_reasonf(reason, cap, "sim: platform_spki length %zu exceeds the report", r->spki_len);
        return TM_VERIFY_EMALFORMED;
    }
    r->spki = b + off;
    off += r->spki_len;
    r->signed_len = off;
    if (n - off < 2) {
        tm_reasonf(reason, cap, "sim: report truncated before the signature");
        return TM_VERIFY_EMALFORMED;
    }
    r->sig_len = tm_rd16be(b + off);
    off += 2;
    if (r->sig_len == 0 || r->sig_len > n - off) {
        tm_reasonf(reason, cap, "sim: signature length %zu exceeds the report", r->sig_len);
        return TM_VERIFY_EMALFORMED;
    }
    r->sig = b + off;
    off += r->sig_len;
    if (off != n) {
        tm_reasonf(reason, cap, "sim: %zu trailing bytes after the signature", n - off);
        return TM_VERIFY_EMALFORMED;
    }
    return 0;
}

int tm_sim_build(EVP_PKEY *key, const uint8_t measurement[32], uint32_t flags, uint64_t ts,
                 const uint8_t report_data[64], uint8_t *out, size_t cap, size_t *len)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    int rc = -1;
    if (spki_len <= 0 || spki_len > 0xFFFF) goto out;
    size_t sigmax = (size_t)EVP_PKEY_get_size(key);
    size_t need_max = TM_SIM_FIXED_LEN + 2 + (size_t)spki_len + 2 + sigmax;
    if (!out || cap < need_max) {
        *len = need_max;
        rc = -2;
        goto out;
    }
    uint8_t *p = out;
    memcpy(p, TM_SIM_MAGIC, 8); p += 8;
    memcpy(p, measurement, 32); p += 32;
    for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(flags >> (8 * i));
    for (int i = 7; i >= 0; i--) *p++ = (uint8_t)(ts >> (8 * i));
    memcpy(p, report_data, 64); p += 64;
    *p++ = (uint8_t)(spki_len >> 8);
    *p++ = (uint8_t)spki_len;
    memcpy(p, spki, (size_t)spki_len); p += spki_len;
    size_t signed_len = (size_t)(p - out);
    size_t siglen = sigmax;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(md, p + 2, &siglen, out, signed_len) == 1;
    EVP_MD_CTX_free(md);
    if (!ok || siglen == 0 || siglen > 0xFFFF) goto out;
    p[0] = (uint8_t)(siglen >> 8);
    p[1] = (uint8_t)siglen;
    *len = signed_len + 2 + siglen;
    rc = 0;
out:
    OPENSSL_free(spki);
    return rc;
}

int tm_verify_sim(const uint8_t *ev, size_t len, const uint8_t *expected, const tm_policy *p,
                  time_t at, tm_claims *c, char *reason, size_t cap)
{
    tm_sim_report r;
    int rc = tm_sim_parse(ev, len, &r, reason, cap);
    if (rc) return rc;
    c->has_sim = 1;
    memcpy(c->sim_measurement, r.measurement, 32);
    memcpy(c->measurement, r.measurement, 32);
    c->measurement_len = 32;
    c->debug = (int)(r.flags & 1);
    c->sim_timestamp = r.timestamp;
    memcpy(c->report_data, r.report_data, 64);
    snprintf(c->tcb_status, sizeof c->tcb_status, "n/a");
    if (EVP_Digest(r.spki, r.spki_len, c->sim_platform_key_sha256, NULL, EVP_sha256(), NULL) != 1) {
        tm_reasonf(reason, cap, "sim: hashing the platform key failed");
        return TM_VERIFY_EINTERNAL;
    }
    if (expected && CRYPTO_memcmp(r.report_data, expected, 64) != 0) {
        tm_reasonf(reason, cap, "report_data does not match the session binding");
        return TM_VERIFY_EBINDING;
    }
    const unsigned char *q = r.spki;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &q, (long)r.spki_len);
    if (!key || q != r.spki + r.spki_len || !tm_is_p256(key)) {
        EVP_PKEY_free(key);
        tm_reasonf(reason, cap, "sim: platform_spki is not a P-256 public key");
        return TM_VERIFY_EMALFORMED;
    }
    int ok = tm_ecdsa_verify_der(key, ev, r.signed_len, r.sig, r.sig_len);
    EVP_PKEY_free(key);
    if (!ok) {
        tm_reasonf(reason, cap, "sim: report signature does not verify with the platform key");
        return TM_VERIFY_ESIGNATURE;
    }
    if (!tm_policy_sim_key_trusted(p, c->sim_platform_key_sha256)) {
        char h[65];
        tm_hex_encode(c->sim_platform_key_sha256, 32, h);
        tm_reasonf(reason, cap,
                   "sim: platform key not trusted by policy (sim is not a real TEE; a test setup "
                   "trusts it with sim_trusted_key %s)", h);
        return TM_VERIFY_EUNTRUSTED;
    }
    if (tm_policy_check_claims(p, c, reason, cap) != 0) return TM_VERIFY_EPOLICY;
    return TM_VERIFY_OK;
}
