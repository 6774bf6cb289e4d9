/*
 * keyatt.c — key-attested evidence: the KeyAttestedEvidence codec, the key
 * binding value, appraisal of the +key formats and the cache of appraised
 * platform evidence (keyatt.h, verify.h).
 *
 * Appraisal order (tm_verify_keyatt), each step with its own error class:
 *   1. parse (malformed); the key is a P-256 public key (key);
 *   2. the key's signature over the session binding value (binding): the
 *      check that ties the evidence to this handshake, first, as for every
 *      format;
 *   3. not_after still ahead of the appraisal time, and not further ahead
 *      than the policy's max_key_lifetime (key);
 *   4. the platform evidence, appraised as its own format under the same
 *      policy with the key binding as expected report data; a report_data
 *      that is not this key's binding is refused as "binds another key" (key).
 * Step 4 is what the cache skips for evidence it has seen appraise; steps 1-3
 * run every time.
 */
#include "attest/keyatt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/attest_int.h"
#include "attest/policy.h"

/* ---- codec ------------------------------------------------------------------ */

static size_t rd16(const uint8_t *p) { return (size_t)p[0] << 8 | p[1]; }

/* One opaque<1..2^16-1> at *off. 0 ok, -1 when it does not fit. */
static int take(const uint8_t *in, size_t len, size_t *off, const uint8_t **p, size_t *n)
{
    if (len - *off < 2)
        return -1;
    *n = rd16(in + *off);
    *off += 2;
    if (*n == 0 || *n > len - *off)
        return -1;
    *p = in + *off;
    *off += *n;
    return 0;
}

int tm_keyatt_decode(const uint8_t *in, size_t len, tm_keyatt_ev *e, char *reason, size_t cap)
{
    memset(e, 0, sizeof *e);
    size_t off = 0;
    if (!in) {
        tm_reasonf(reason, cap, "key-attested: no evidence");
        return TM_VERIFY_EMALFORMED;
    }
    if (take(in, len, &off, &e->platform, &e->platform_len) < 0) {
        tm_reasonf(reason, cap, "key-attested: platform_evidence does not fit (%zu bytes)", len);
        return TM_VERIFY_EMALFORMED;
    }
    if (take(in, len, &off, &e->spki, &e->spki_len) < 0) {
        tm_reasonf(reason, cap, "key-attested: key_spki does not fit");
        return TM_VERIFY_EMALFORMED;
    }
    if (len - off < 8) {
        tm_reasonf(reason, cap, "key-attested: truncated before not_after");
        return TM_VERIFY_EMALFORMED;
    }
    for (int i = 0; i < 8; i++)
        e->not_after = e->not_after << 8 | in[off + (size_t)i];
    off += 8;
    if (take(in, len, &off, &e->sig, &e->sig_len) < 0) {
        tm_reasonf(reason, cap, "key-attested: signature does not fit");
        return TM_VERIFY_EMALFORMED;
    }
    if (off != len) {
        tm_reasonf(reason, cap, "key-attested: %zu trailing bytes after the signature", len - off);
        return TM_VERIFY_EMALFORMED;
    }
    return TM_VERIFY_OK;
}

static uint8_t *put(uint8_t *p, const uint8_t *v, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, v, n);
    return p + 2 + n;
}

size_t tm_keyatt_encode(const tm_keyatt_ev *e, uint8_t *out, size_t cap, size_t *need)
{
    if (!e || !e->platform || !e->spki || !e->sig || !e->platform_len || !e->spki_len ||
        !e->sig_len || e->platform_len > 0xFFFF || e->spki_len > 0xFFFF || e->sig_len > 0xFFFF)
        return 0;
    size_t n = 2 + e->platform_len + 2 + e->spki_len + 8 + 2 + e->sig_len;
    if (need)
        *need = n;
    if (!out || n > cap)
        return 0;
    uint8_t *p = put(out, e->platform, e->platform_len);
    p = put(p, e->spki, e->spki_len);
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(e->not_after >> (8 * i));
    put(p, e->sig, e->sig_len);
    return n;
}

int tm_keyatt_key_binding(const uint8_t *spki, size_t spki_len, uint64_t not_after,
                          uint8_t out[64])
{
    static const char label[] = TM_KEYATT_LABEL;
    uint8_t na[8];
    unsigned int n = 0;
    if (!spki || !spki_len || !out)
        return -1;
    for (int i = 0; i < 8; i++)
        na[i] = (uint8_t)(not_after >> (56 - 8 * i));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(md, label, sizeof label) == 1 &&   /* with its 0x00 */
             EVP_DigestUpdate(md, spki, spki_len) == 1 && EVP_DigestUpdate(md, na, 8) == 1 &&
             EVP_DigestFinal_ex(md, out, &n) == 1 && n == 64;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* DER of a P-256 SubjectPublicKeyInfo with an uncompressed point, up to the
 * point's 64 bytes of x || y: SEQUENCE { SEQUENCE { id-ecPublicKey,
 * prime256v1 }, BIT STRING { 0x04 ... } }. What OpenSSL writes for our keys. */
static const uint8_t p256_spki_prefix[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};

/* The attestation key of decoded evidence, or NULL when it is not P-256.
 * The common encoding is built from its point directly: OpenSSL 3.0's generic
 * decoder (d2i_PUBKEY) costs more than the signature check itself. */
static EVP_PKEY *ev_key(const tm_keyatt_ev *e)
{
    if (e->spki_len == sizeof p256_spki_prefix + 64 &&
        !memcmp(e->spki, p256_spki_prefix, sizeof p256_spki_prefix))
        return tm_p256_from_raw(e->spki + sizeof p256_spki_prefix);
    const unsigned char *q = e->spki;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &q, (long)e->spki_len);
    if (!k || q != e->spki + e->spki_len || !tm_is_p256(k)) {
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

int tm_keyatt_signature_covers(const uint8_t *ev, size_t len, const uint8_t rd[64])
{
    tm_keyatt_ev e;
    if (!rd || tm_keyatt_decode(ev, len, &e, NULL, 0) != TM_VERIFY_OK)
        return 0;
    EVP_PKEY *k = ev_key(&e);
    int ok = k && tm_ecdsa_verify_der(k, rd, 64, e.sig, e.sig_len);
    EVP_PKEY_free(k);
    return ok;
}

/* ---- cache of appraised platform evidence ------------------------------------ */

#define CACHE_SLOTS 8

typedef struct cache_entry {
    uint8_t id[32];              /* SHA-256(format || platform || spki || not_after) */
    tm_policy *policy;           /* a reference; NULL: free slot */
    time_t from, until;          /* appraisal times it serves */
    EVP_PKEY *key;               /* the attestation key, parsed (a reference) */
    tm_claims claims;            /* the platform's claims (format fields set by the caller) */
} cache_entry;

struct tm_verify_cache {
    cache_entry e[CACHE_SLOTS];
    unsigned next;               /* round-robin victim */
    unsigned long hits;
};

tm_verify_cache *tm_verify_cache_new(void) { return calloc(1, sizeof(tm_verify_cache)); }

unsigned long tm_verify_cache_hits(const tm_verify_cache *c) { return c ? c->hits : 0; }

void tm_verify_cache_free(tm_verify_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        tm_policy_free(c->e[i].policy);
        EVP_PKEY_free(c->e[i].key);
    }
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static int cache_id(uint16_t format, const tm_keyatt_ev *e, uint8_t out[32])
{
    uint8_t hdr[2 + 8];
    hdr[0] = (uint8_t)(format >> 8);
    hdr[1] = (uint8_t)format;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(e->not_after >> (56 - 8 * i));
    uint8_t lens[4] = {(uint8_t)(e->platform_len >> 8), (uint8_t)e->platform_len,
                       (uint8_t)(e->spki_len >> 8), (uint8_t)e->spki_len};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, hdr, sizeof hdr) == 1 &&
             EVP_DigestUpdate(md, lens, sizeof lens) == 1 &&
             EVP_DigestUpdate(md, e->platform, e->platform_len) == 1 &&
             EVP_DigestUpdate(md, e->spki, e->spki_len) == 1 &&
             EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static const cache_entry *cache_find(const tm_verify_cache *c, const uint8_t id[32],
                                     const tm_policy *p, time_t at)
{
    for (int i = 0; c && i < CACHE_SLOTS; i++) {
        const cache_entry *e = &c->e[i];
        if (e->policy == p && at >= e->from && at < e->until && !memcmp(e->id, id, 32))
            return e;
    }
    return NULL;
}

static void cache_put(tm_verify_cache *c, const uint8_t id[32], const tm_policy *p, time_t at,
                      uint64_t not_after, EVP_PKEY *key, const tm_claims *claims)
{
    if (!c || !EVP_PKEY_up_ref(key))
        return;
    cache_entry *e = &c->e[c->next++ % CACHE_SLOTS];
    tm_policy_free(e->policy);
    EVP_PKEY_free(e->key);
    e->key = key;
    memcpy(e->id, id, 32);
    /* the policy is not changed through this reference: it only pins the pointer */
    e->policy = tm_policy_ref((tm_policy *)p);
    e->from = at;
    e->until = at + TM_VERIFY_CACHE_TTL;
    if ((uint64_t)e->until > not_after)
        e->until = (time_t)not_after;
    e->claims = *claims;
}

/* ---- appraisal ------------------------------------------------------------------ */

int tm_verify_keyatt(tm_verify_cache *cache, uint16_t format, const uint8_t *ev, size_t len,
                     const uint8_t *expected, const tm_policy *policy, time_t at, tm_claims *claims,
                     char *reason, size_t cap)
{
    const uint16_t pf = tm_format_platform(format);
    const char *name = tm_format_name(format);
    tm_keyatt_ev e;
    int rc = tm_keyatt_decode(ev, len, &e, reason, cap);
    if (rc)
        return rc;
    claims->key_attested = 1;
    claims->key_not_after = e.not_after;
    if (EVP_Digest(e.spki, e.spki_len, claims->key_sha256, NULL, EVP_sha256(), NULL) != 1) {
        tm_reasonf(reason, cap, "%s: hashing the attestation key failed", name);
        return TM_VERIFY_EINTERNAL;
    }
    /* the same evidence appraised before: its parsed key and platform claims */
    uint8_t id[32];
    int have_id = cache && cache_id(format, &e, id) == 0;
    const cache_entry *hit = have_id ? cache_find(cache, id, policy, at) : NULL;
    EVP_PKEY *key = hit ? hit->key : ev_key(&e);
    if (!key) {
        tm_reasonf(reason, cap, "%s: key_spki is not a P-256 public key", name);
        return TM_VERIFY_EKEY;
    }
    /* 2. the session binding: what this attestation key signed */
    int sig_ok = !expected || TM_SIG_OK(tm_ecdsa_verify_der(key, expected, 64, e.sig, e.sig_len));
    if (!sig_ok) {
        tm_reasonf(reason, cap, "%s: the attestation key's signature does not cover this "
                   "handshake's binding value (made for another handshake, or tampered)", name);
        rc = TM_VERIFY_EBINDING;
        goto out;
    }
    /* 3. the key's validity */
    char t1[32], t2[32];
    tm_time_format((time_t)(e.not_after > INT64_MAX ? INT64_MAX : e.not_after), t1, sizeof t1);
    tm_time_format(at, t2, sizeof t2);
    uint64_t now = at < 0 ? 0 : (uint64_t)at;
    if (e.not_after <= now) {
        tm_reasonf(reason, cap, "%s: attestation key expired at %s (appraisal time %s)", name, t1,
                   t2);
        rc = TM_VERIFY_EKEY;
        goto out;
    }
    uint32_t maxl = tm_policy_max_key_lifetime(policy);
    if (e.not_after - now > maxl) {
        tm_reasonf(reason, cap, "%s: attestation key valid until %s, %llu s after the appraisal "
                   "time: longer than the policy's max_key_lifetime (%u s)", name, t1,
                   (unsigned long long)(e.not_after - now), (unsigned)maxl);
        rc = TM_VERIFY_EKEY;
        goto out;
    }
    /* 4. the platform evidence binds this key (appraised once per cache lifetime) */
    tm_claims keep = *claims;    /* format, name and key fields set above */
    if (hit) {
        *claims = hit->claims;
        cache->hits++;
    } else {
        uint8_t kb[64];
        if (tm_keyatt_key_binding(e.spki, e.spki_len, e.not_after, kb) < 0) {
            tm_reasonf(reason, cap, "%s: cannot compute the key binding", name);
            rc = TM_VERIFY_EINTERNAL;
            goto out;
        }
        char why[400] = "";
        rc = tm_verify_platform(pf, e.platform, e.platform_len, kb, policy, at, claims, why,
                                sizeof why);
        if (rc == TM_VERIFY_EBINDING) {
            tm_reasonf(reason, cap, "%s: the platform evidence does not bind this attestation key "
                       "(its report data is not the key binding of key_spki and not_after)", name);
            rc = TM_VERIFY_EKEY;
        } else if (rc) {
            tm_reasonf(reason, cap, "%s", why);
        }
    }
    claims->format = keep.format;
    memcpy(claims->format_name, keep.format_name, sizeof claims->format_name);
    claims->key_attested = 1;
    claims->key_not_after = keep.key_not_after;
    memcpy(claims->key_sha256, keep.key_sha256, 32);
    claims->appraised_at = at;
    if (rc == TM_VERIFY_OK && !hit && have_id)
        cache_put(cache, id, policy, at, e.not_after, key, claims);
out:
    if (!hit)
        EVP_PKEY_free(key);
    return rc;
}

int tm_describe_keyatt(uint16_t format, const uint8_t *ev, size_t len, char *buf, size_t cap)
{
    tm_keyatt_ev e;
    int rc = tm_keyatt_decode(ev, len, &e, buf, cap);
    if (rc)
        return rc;
    uint8_t kh[32];
    char khx[65] = "?", t[32];
    if (EVP_Digest(e.spki, e.spki_len, kh, NULL, EVP_sha256(), NULL) == 1)
        tm_hex_encode(kh, 32, khx);
    tm_time_format((time_t)(e.not_after > INT64_MAX ? INT64_MAX : e.not_after), t, sizeof t);
    tm_sbuf s = {buf, cap, 0};
    tm_sb_printf(&s, "format: %s\nattestation_key_sha256: %s\nkey_not_after: %s (%llu)\n"
                 "key_signature: %zu bytes\nplatform_evidence: %zu bytes\n",
                 tm_format_name(format) ? tm_format_name(format) : "?", khx, t,
                 (unsigned long long)e.not_after, e.sig_len, e.platform_len);
    size_t used = s.n < cap ? s.n : cap;
    if (cap - used < 2)
        return TM_VERIFY_OK;
    rc = tm_evidence_describe(tm_format_platform(format), e.platform, e.platform_len, buf + used,
                              cap - used);
    if (rc) {
        /* keep the reason readable: it replaces the platform part */
        char why[300];
        snprintf(why, sizeof why, "%s", buf + used);
        tm_reasonf(buf, cap, "%s: platform evidence: %s", tm_format_name(format), why);
    }
    return rc;
}
