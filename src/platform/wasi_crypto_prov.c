/*
 * wasi_crypto_prov.c — an OpenSSL provider, built into the module, whose AES-128-GCM,
 * AES-256-GCM and ChaCha20-Poly1305 run in the WebAssembly host through the
 * `tmqtt_crypto` import (platform/wasi_crypto.h; host side src/runtime/crypto.c).
 * OpenSSL inside the module is portable C with no AES-NI; the host's is native. TLS
 * 1.3 and TLS 1.2 fetch these ciphers for record protection once the provider is
 * preferred; everything else (handshake, key schedule, signatures, hashes) stays in
 * the module's own OpenSSL.
 *
 * Registration (a constructor, before main, so before any SSL_CTX fetches ciphers):
 * only when the host announced `tmqtt_crypto` (platform/wasi_host.h), because on a
 * host without it the first call would trap. Then OSSL_PROVIDER_add_builtin +
 * OSSL_PROVIDER_load of "tmqtt-host" and of "default" (loading any provider
 * explicitly turns off the implicit default), a self-test comparing each host
 * cipher with the module's built-in one (an ABI mix-up in a host fails here, not in
 * a client's handshake), and EVP_set_default_properties("?provider=tmqtt-host"): an
 * optional property, so fetches prefer these three ciphers and find everything else
 * in the default provider. No import, or a failed self-test: the module keeps its
 * built-in ciphers and says why in tm_wasi_crypto_provider().
 *
 * What the provider supports (enough for TLS, and stated so that other callers fail
 * loudly rather than wrongly): per nonce, any number of AAD updates, then at most one
 * data update (the host seals or opens the whole message in one call), then final.
 * Decryption needs the expected tag (16 bytes) before the data. TLS 1.2 record mode
 * (OSSL_CIPHER_PARAM_AEAD_TLS1_AAD / _TLS1_IV_FIXED) follows the default provider's
 * record formats exactly: GCM with an 8-byte explicit nonce from a counter seeded at
 * random, ChaCha20-Poly1305 with the sequence number mixed into the nonce (RFC 7905).
 *
 * Invariants: a context holds at most one host handle and frees it (freectx, a new
 * key); the raw key is kept in the context only to duplicate it (dupctx) and is
 * cleansed on free — the built-in provider keeps an expanded key schedule in the same
 * memory, so this adds no exposure. Decrypted output is released only after the tag
 * verified (the host zeroes it otherwise).
 */
#ifdef __wasi__
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/proverr.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "platform/wasi_crypto.h"
#include "platform/wasi_host.h"

#define HC_NAME "tmqtt-host"
#define HC_IVLEN 12
#define HC_TAGLEN 16
#define HC_TLS_AAD 13     /* EVP_AEAD_TLS1_AAD_LEN */
#define HC_GCM_FIXED 4    /* EVP_GCM_TLS_FIXED_IV_LEN */
#define HC_GCM_EXPLICIT 8 /* EVP_GCM_TLS_EXPLICIT_IV_LEN */
#define HC_MAX_AAD (1u << 20)

typedef struct {
    uint32_t id;
    size_t keylen;
    unsigned mode; /* EVP_CIPH_GCM_MODE, or 0 (stream) for ChaCha20-Poly1305 */
    const char *name;
} hc_alg;

static const hc_alg g_aes128 = {TM_CRYPTO_AES_128_GCM, 16, EVP_CIPH_GCM_MODE, "AES-128-GCM"};
static const hc_alg g_aes256 = {TM_CRYPTO_AES_256_GCM, 32, EVP_CIPH_GCM_MODE, "AES-256-GCM"};
static const hc_alg g_chacha = {TM_CRYPTO_CHACHA20_POLY1305, 32, 0, "ChaCha20-Poly1305"};

typedef struct {
    const hc_alg *alg;
    int enc;
    uint64_t handle; /* 0: no key yet */
    unsigned char key[32];
    unsigned char iv[HC_IVLEN];
    int iv_set;
    unsigned char tag[HC_TAGLEN];
    int tag_set; /* decrypt: expected tag given; encrypt: tag computed */
    int done;    /* the message for this nonce has been processed ... */
    int ok;      /* ... and succeeded (decrypt: the tag verified) */
    unsigned char *aad;
    size_t aad_len, aad_cap;
    /* TLS 1.2 record mode: the next update is one whole record */
    unsigned char tls_aad[HC_TLS_AAD];
    int tls_aad_set;
    size_t tls_payload; /* ChaCha20-Poly1305: the record's plaintext length */
    int iv_gen;         /* GCM encrypt: iv[4..12] counts records */
} hc_ctx;

static int hc_fail(int reason, const char *what)
{
    ERR_raise_data(ERR_LIB_PROV, reason, "%s: %s", HC_NAME, what);
    return 0;
}

static void *hc_new(const hc_alg *alg)
{
    hc_ctx *c = OPENSSL_zalloc(sizeof *c);
    if (c) c->alg = alg;
    return c;
}
static void *hc_new_aes128(void *provctx) { (void)provctx; return hc_new(&g_aes128); }
static void *hc_new_aes256(void *provctx) { (void)provctx; return hc_new(&g_aes256); }
static void *hc_new_chacha(void *provctx) { (void)provctx; return hc_new(&g_chacha); }

static void hc_free(void *vctx)
{
    hc_ctx *c = vctx;
    if (!c) return;
    if (c->handle) tm_crypto_aead_free(c->handle);
    OPENSSL_clear_free(c->aad, c->aad_cap);
    OPENSSL_clear_free(c, sizeof *c);
}

static int hc_set_key(hc_ctx *c, const unsigned char *key, size_t keylen)
{
    if (keylen != c->alg->keylen) return hc_fail(PROV_R_INVALID_KEY_LENGTH, c->alg->name);
    uint64_t h = 0;
    uint32_t rc = tm_crypto_aead_new(c->alg->id, key, (uint32_t)keylen, &h);
    if (rc != 0) {
        ERR_raise_data(ERR_LIB_PROV, PROV_R_CIPHER_OPERATION_FAILED,
                       "%s: the host refused a %s key (errno %u)", HC_NAME, c->alg->name, (unsigned)rc);
        return 0;
    }
    if (c->handle) tm_crypto_aead_free(c->handle);
    c->handle = h;
    memcpy(c->key, key, keylen);
    return 1;
}

static void *hc_dup(void *vctx)
{
    const hc_ctx *src = vctx;
    hc_ctx *c = OPENSSL_memdup(src, sizeof *src);
    if (!c) return NULL;
    c->handle = 0;
    c->aad = NULL;
    c->aad_cap = 0;
    if (src->aad_len) {
        if (!(c->aad = OPENSSL_memdup(src->aad, src->aad_len))) {
            hc_free(c);
            return NULL;
        }
        c->aad_cap = src->aad_len;
    }
    if (src->handle && !hc_set_key(c, src->key, src->alg->keylen)) {
        hc_free(c);
        return NULL;
    }
    return c;
}

static int hc_set_ctx_params(void *vctx, const OSSL_PARAM params[]);

static int hc_init(hc_ctx *c, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                   const OSSL_PARAM params[], int enc)
{
    c->enc = enc;
    c->aad_len = 0;
    c->done = c->ok = c->tag_set = c->tls_aad_set = 0;
    if (key && !hc_set_key(c, key, keylen)) return 0;
    if (iv) {
        if (ivlen != HC_IVLEN) return hc_fail(PROV_R_INVALID_IV_LENGTH, c->alg->name);
        memcpy(c->iv, iv, HC_IVLEN);
        c->iv_set = 1;
        c->iv_gen = 0;
    }
    return hc_set_ctx_params(c, params);
}

static int hc_einit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                    const OSSL_PARAM params[])
{
    return hc_init(vctx, key, keylen, iv, ivlen, params, 1);
}

static int hc_dinit(void *vctx, const unsigned char *key, size_t keylen, const unsigned char *iv, size_t ivlen,
                    const OSSL_PARAM params[])
{
    return hc_init(vctx, key, keylen, iv, ivlen, params, 0);
}

/* Seals or opens one whole message (the AAD gathered so far and in[0..len)) with the
 * current nonce, through the host. */
static int hc_message(hc_ctx *c, unsigned char *out, const unsigned char *in, size_t len)
{
    if (c->done)
        return hc_fail(PROV_R_CIPHER_OPERATION_FAILED, "one data update per nonce (the host AEAD is one-shot)");
    if (!c->handle) return hc_fail(PROV_R_NO_KEY_SET, c->alg->name);
    if (!c->iv_set) return hc_fail(PROV_R_INVALID_IV_LENGTH, "no nonce set");
    if (!c->enc && !c->tag_set) return hc_fail(PROV_R_TAG_NOT_SET, "set the tag before the ciphertext");
    if (len > UINT32_MAX) return hc_fail(PROV_R_INVALID_DATA, "message too long");
    c->done = 1;
    uint32_t rc;
    if (c->enc) {
        rc = tm_crypto_aead_seal(c->handle, c->iv, HC_IVLEN, c->aad, (uint32_t)c->aad_len, in, (uint32_t)len,
                                 out, c->tag, HC_TAGLEN);
        c->tag_set = rc == 0;
    } else {
        rc = tm_crypto_aead_open(c->handle, c->iv, HC_IVLEN, c->aad, (uint32_t)c->aad_len, in, (uint32_t)len,
                                 c->tag, HC_TAGLEN, out);
    }
    c->ok = rc == 0;
    return c->ok;
}

static void ctr64_inc(unsigned char *counter)
{
    for (int i = 7; i >= 0; i--)
        if (++counter[i] != 0) break;
}

/* One TLS 1.2 record, in the default provider's formats (gcm_tls_cipher,
 * chacha20_poly1305_tls_cipher). */
static int hc_tls_record(hc_ctx *c, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in,
                         size_t len)
{
    unsigned char nonce[HC_IVLEN];
    const unsigned char *p = in;
    unsigned char *o = out;
    size_t plen;
    uint32_t rc;

    c->tls_aad_set = 0;
    if (!out || outsize < len || !c->handle || !c->iv_set)
        return hc_fail(PROV_R_CIPHER_OPERATION_FAILED, "TLS record: bad state");
    memcpy(nonce, c->iv, HC_IVLEN);
    if (c->alg->mode == EVP_CIPH_GCM_MODE) {
        if (out != in || len < HC_GCM_EXPLICIT + HC_TAGLEN)
            return hc_fail(PROV_R_CIPHER_OPERATION_FAILED, "TLS record: GCM is in place");
        if (c->enc) {
            if (!c->iv_gen) return hc_fail(PROV_R_CIPHER_OPERATION_FAILED, "TLS record: no fixed IV");
            memcpy(out, c->iv + HC_GCM_FIXED, HC_GCM_EXPLICIT);
            ctr64_inc(c->iv + HC_GCM_FIXED);
        } else {
            memcpy(nonce + HC_GCM_FIXED, in, HC_GCM_EXPLICIT);
        }
        p += HC_GCM_EXPLICIT;
        o += HC_GCM_EXPLICIT;
        plen = len - HC_GCM_EXPLICIT - HC_TAGLEN;
    } else {
        if (len != c->tls_payload + HC_TAGLEN) return hc_fail(PROV_R_INVALID_DATA, "TLS record length");
        for (int i = 0; i < 8; i++) nonce[4 + i] ^= c->tls_aad[i]; /* RFC 7905 */
        plen = c->tls_payload;
    }
    if (c->enc)
        rc = tm_crypto_aead_seal(c->handle, nonce, HC_IVLEN, c->tls_aad, HC_TLS_AAD, p, (uint32_t)plen, o,
                                 o + plen, HC_TAGLEN);
    else
        rc = tm_crypto_aead_open(c->handle, nonce, HC_IVLEN, c->tls_aad, HC_TLS_AAD, p, (uint32_t)plen,
                                 p + plen, HC_TAGLEN, o);
    OPENSSL_cleanse(nonce, sizeof nonce);
    if (rc != 0) return 0;
    *outl = c->enc ? len : plen;
    return 1;
}

static int hc_update(void *vctx, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in,
                     size_t inl)
{
    hc_ctx *c = vctx;
    *outl = 0;
    if (c->tls_aad_set) return hc_tls_record(c, out, outl, outsize, in, inl);
    if (!out) { /* additional authenticated data */
        if (c->done) return hc_fail(PROV_R_INVALID_AAD, "AAD after the data");
        if (inl > HC_MAX_AAD - c->aad_len) return hc_fail(PROV_R_INVALID_AAD, "AAD too long");
        if (c->aad_len + inl > c->aad_cap) {
            size_t cap = c->aad_len + inl < 64 ? 64 : c->aad_len + inl;
            unsigned char *n = OPENSSL_clear_realloc(c->aad, c->aad_cap, cap);
            if (!n) return 0;
            c->aad = n;
            c->aad_cap = cap;
        }
        memcpy(c->aad + c->aad_len, in, inl);
        c->aad_len += inl;
        return 1;
    }
    if (outsize < inl) return hc_fail(PROV_R_OUTPUT_BUFFER_TOO_SMALL, c->alg->name);
    if (!hc_message(c, out, in, inl)) return 0;
    *outl = inl;
    return 1;
}

static int hc_final(void *vctx, unsigned char *out, size_t *outl, size_t outsize)
{
    hc_ctx *c = vctx;
    (void)out;
    (void)outsize;
    *outl = 0;
    if (!c->done) { /* no data: authenticate the AAD alone */
        unsigned char none[1];
        return hc_message(c, none, none, 0);
    }
    return c->ok;
}

static int hc_cipher(void *vctx, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in,
                     size_t inl)
{
    return hc_update(vctx, out, outl, outsize, in, inl);
}

/* -- parameters -------------------------------------------------------------------- */

static int hc_get_params_for(OSSL_PARAM params[], const hc_alg *a)
{
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) && !OSSL_PARAM_set_uint(p, a->mode)) return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) && !OSSL_PARAM_set_size_t(p, a->keylen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) && !OSSL_PARAM_set_size_t(p, HC_IVLEN))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) && !OSSL_PARAM_set_size_t(p, 1)) return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD)) && !OSSL_PARAM_set_int(p, 1)) return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CUSTOM_IV)) && !OSSL_PARAM_set_int(p, 1)) return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_CTS)) && !OSSL_PARAM_set_int(p, 0)) return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK)) && !OSSL_PARAM_set_int(p, 0))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_HAS_RAND_KEY)) && !OSSL_PARAM_set_int(p, 0)) return 0;
    return 1;
}
static int hc_get_params_aes128(OSSL_PARAM params[]) { return hc_get_params_for(params, &g_aes128); }
static int hc_get_params_aes256(OSSL_PARAM params[]) { return hc_get_params_for(params, &g_aes256); }
static int hc_get_params_chacha(OSSL_PARAM params[]) { return hc_get_params_for(params, &g_chacha); }

static const OSSL_PARAM *hc_gettable_params(void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
        OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
        OSSL_PARAM_END};
    (void)provctx;
    return t;
}

static int hc_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    hc_ctx *c = vctx;
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) && !OSSL_PARAM_set_size_t(p, HC_IVLEN))
        return hc_fail(PROV_R_FAILED_TO_SET_PARAMETER, "ivlen");
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) && !OSSL_PARAM_set_size_t(p, c->alg->keylen))
        return hc_fail(PROV_R_FAILED_TO_SET_PARAMETER, "keylen");
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAGLEN)) && !OSSL_PARAM_set_size_t(p, HC_TAGLEN))
        return hc_fail(PROV_R_FAILED_TO_SET_PARAMETER, "taglen");
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD)) &&
        !OSSL_PARAM_set_size_t(p, HC_TAGLEN))
        return hc_fail(PROV_R_FAILED_TO_SET_PARAMETER, "tlsaadpad");
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TAG))) {
        if (!c->enc || !c->tag_set || p->data_size == 0 || p->data_size > HC_TAGLEN ||
            !OSSL_PARAM_set_octet_string(p, c->tag, p->data_size))
            return hc_fail(PROV_R_INVALID_TAG, "no tag to get");
    }
    if (((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IV)) ||
         (p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_UPDATED_IV))) &&
        !OSSL_PARAM_set_octet_string(p, c->iv, HC_IVLEN) && !OSSL_PARAM_set_octet_ptr(p, c->iv, HC_IVLEN))
        return hc_fail(PROV_R_FAILED_TO_SET_PARAMETER, "iv");
    if (OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_AEAD_TLS1_GET_IV_GEN))
        return hc_fail(PROV_R_NOT_SUPPORTED, "tlsivgen");
    return 1;
}

static const OSSL_PARAM *hc_gettable_ctx_params(void *cctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TAGLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD_PAD, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, NULL, 0),
        OSSL_PARAM_END};
    (void)cctx;
    (void)provctx;
    return t;
}

/* OSSL_CIPHER_PARAM_AEAD_TLS1_AAD: the 13-byte TLS 1.2 AAD of the next record, its
 * length field corrected to the plaintext length as the default provider does. */
static int hc_set_tls_aad(hc_ctx *c, const OSSL_PARAM *p)
{
    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != HC_TLS_AAD)
        return hc_fail(PROV_R_INVALID_AAD, "TLS AAD is 13 bytes");
    memcpy(c->tls_aad, p->data, HC_TLS_AAD);
    size_t len = (size_t)c->tls_aad[HC_TLS_AAD - 2] << 8 | c->tls_aad[HC_TLS_AAD - 1];
    if (c->alg->mode == EVP_CIPH_GCM_MODE) {
        if (len < HC_GCM_EXPLICIT) return hc_fail(PROV_R_INVALID_AAD, "TLS record too short");
        len -= HC_GCM_EXPLICIT;
    }
    if (!c->enc) {
        if (len < HC_TAGLEN) return hc_fail(PROV_R_INVALID_AAD, "TLS record too short");
        len -= HC_TAGLEN;
    }
    c->tls_aad[HC_TLS_AAD - 2] = (unsigned char)(len >> 8);
    c->tls_aad[HC_TLS_AAD - 1] = (unsigned char)len;
    c->tls_payload = len;
    c->tls_aad_set = 1;
    return 1;
}

/* OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED: GCM's 4-byte implicit nonce part (the 8-byte
 * record counter starts at random when encrypting), or ChaCha20-Poly1305's 12 bytes. */
static int hc_set_tls_iv_fixed(hc_ctx *c, const OSSL_PARAM *p)
{
    size_t want = c->alg->mode == EVP_CIPH_GCM_MODE ? HC_GCM_FIXED : HC_IVLEN;
    if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != want)
        return hc_fail(PROV_R_INVALID_IV_LENGTH, "TLS fixed IV");
    memcpy(c->iv, p->data, want);
    if (want == HC_GCM_FIXED && c->enc) {
        if (RAND_bytes(c->iv + HC_GCM_FIXED, HC_GCM_EXPLICIT) <= 0) return 0;
        c->iv_gen = 1;
    }
    c->iv_set = 1;
    return 1;
}

static int hc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    hc_ctx *c = vctx;
    const OSSL_PARAM *p;
    size_t sz;
    if (!params) return 1;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_IVLEN)) &&
        (!OSSL_PARAM_get_size_t(p, &sz) || sz != HC_IVLEN))
        return hc_fail(PROV_R_INVALID_IV_LENGTH, "only 12-byte nonces");
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_KEYLEN)) &&
        (!OSSL_PARAM_get_size_t(p, &sz) || sz != c->alg->keylen))
        return hc_fail(PROV_R_INVALID_KEY_LENGTH, c->alg->name);
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TAG))) {
        if (p->data_type != OSSL_PARAM_OCTET_STRING || p->data_size != HC_TAGLEN)
            return hc_fail(PROV_R_INVALID_TAG_LENGTH, "only 16-byte tags");
        if (p->data) { /* NULL data only sets the length */
            if (c->enc) return hc_fail(PROV_R_TAG_NOT_NEEDED, "the tag is computed when encrypting");
            memcpy(c->tag, p->data, HC_TAGLEN);
            c->tag_set = 1;
        }
    }
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_AAD)) && !hc_set_tls_aad(c, p)) return 0;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED)) &&
        !hc_set_tls_iv_fixed(c, p))
        return 0;
    if (OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_AEAD_TLS1_SET_IV_INV))
        return hc_fail(PROV_R_NOT_SUPPORTED, "tlsivinv");
    /* OSSL_CIPHER_PARAM_TLS_VERSION and _TLS_MAC_SIZE (set by TLS 1.2): no MAC in an AEAD. */
    return 1;
}

static const OSSL_PARAM *hc_settable_ctx_params(void *cctx, void *provctx)
{
    static const OSSL_PARAM t[] = {
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_AAD, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TLS1_IV_FIXED, NULL, 0),
        OSSL_PARAM_uint(OSSL_CIPHER_PARAM_TLS_VERSION, NULL),
        OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_TLS_MAC_SIZE, NULL),
        OSSL_PARAM_END};
    (void)cctx;
    (void)provctx;
    return t;
}

/* -- the provider ---------------------------------------------------------------------- */

#define HC_FN(id, f) {id, (void (*)(void))(f)}
#define HC_DISPATCH(sfx)                                                          \
    static const OSSL_DISPATCH hc_fns_##sfx[] = {                                 \
        HC_FN(OSSL_FUNC_CIPHER_NEWCTX, hc_new_##sfx),                             \
        HC_FN(OSSL_FUNC_CIPHER_FREECTX, hc_free),                                 \
        HC_FN(OSSL_FUNC_CIPHER_DUPCTX, hc_dup),                                   \
        HC_FN(OSSL_FUNC_CIPHER_ENCRYPT_INIT, hc_einit),                           \
        HC_FN(OSSL_FUNC_CIPHER_DECRYPT_INIT, hc_dinit),                           \
        HC_FN(OSSL_FUNC_CIPHER_UPDATE, hc_update),                                \
        HC_FN(OSSL_FUNC_CIPHER_FINAL, hc_final),                                  \
        HC_FN(OSSL_FUNC_CIPHER_CIPHER, hc_cipher),                                \
        HC_FN(OSSL_FUNC_CIPHER_GET_PARAMS, hc_get_params_##sfx),                  \
        HC_FN(OSSL_FUNC_CIPHER_GETTABLE_PARAMS, hc_gettable_params),              \
        HC_FN(OSSL_FUNC_CIPHER_GET_CTX_PARAMS, hc_get_ctx_params),                \
        HC_FN(OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, hc_gettable_ctx_params),      \
        HC_FN(OSSL_FUNC_CIPHER_SET_CTX_PARAMS, hc_set_ctx_params),                \
        HC_FN(OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, hc_settable_ctx_params),      \
        {0, NULL}}
HC_DISPATCH(aes128);
HC_DISPATCH(aes256);
HC_DISPATCH(chacha);

#define HC_PROPS "provider=" HC_NAME
static const OSSL_ALGORITHM hc_ciphers[] = {
    {"AES-128-GCM:id-aes128-GCM:2.16.840.1.101.3.4.1.6", HC_PROPS, hc_fns_aes128, "AES-128-GCM in the host"},
    {"AES-256-GCM:id-aes256-GCM:2.16.840.1.101.3.4.1.46", HC_PROPS, hc_fns_aes256, "AES-256-GCM in the host"},
    {"ChaCha20-Poly1305", HC_PROPS, hc_fns_chacha, "ChaCha20-Poly1305 in the host"},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *hc_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_CIPHER ? hc_ciphers : NULL;
}

static const OSSL_DISPATCH hc_provider_fns[] = {HC_FN(OSSL_FUNC_PROVIDER_QUERY_OPERATION, hc_query), {0, NULL}};

static int hc_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                            void **provctx)
{
    (void)in;
    *out = hc_provider_fns;
    *provctx = (void *)handle;
    return 1;
}

/* -- registration ---------------------------------------------------------------------- */

static const char *g_why = "not registered";
static int g_active;

const char *tm_wasi_crypto_provider(const char **why)
{
    if (why) *why = g_active ? "" : g_why;
    return g_active ? HC_NAME : "default";
}

/* One message through cipher `name` of `provider`: returns the output length or -1. */
static int one_shot(const char *name, const char *props, int enc, const unsigned char *key,
                    const unsigned char *iv, const unsigned char *in, int len, unsigned char *out,
                    unsigned char tag[HC_TAGLEN])
{
    static const unsigned char aad[21] = "tmqtt-host self-test";
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, name, props);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, f = 0, ok = ci && c && EVP_CipherInit_ex2(c, ci, key, iv, enc, NULL) &&
                           (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, HC_TAGLEN, tag) > 0) &&
                           EVP_CipherUpdate(c, NULL, &n, aad, sizeof aad) &&
                           EVP_CipherUpdate(c, out, &n, in, len) && EVP_CipherFinal_ex(c, out + n, &f) &&
                           (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, HC_TAGLEN, tag) > 0);
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(ci);
    return ok ? n + f : -1;
}

/* The host's answer against the module's own implementation, both directions, and a
 * forged tag must be refused. */
static int self_test(const char *name, char *why, size_t whylen)
{
    unsigned char key[32], iv[HC_IVLEN], msg[77], a[77], b[77], back[77], ta[HC_TAGLEN], tb[HC_TAGLEN];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (unsigned char)(0x40 + i);
    for (size_t i = 0; i < sizeof iv; i++) iv[i] = (unsigned char)(0xa0 + i);
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)(i * 7);
    const char *host = HC_PROPS, *builtin = "provider=default";
    if (one_shot(name, builtin, 1, key, iv, msg, sizeof msg, a, ta) != (int)sizeof msg ||
        one_shot(name, host, 1, key, iv, msg, sizeof msg, b, tb) != (int)sizeof msg) {
        snprintf(why, whylen, "%s: sealing failed", name);
        return -1;
    }
    if (memcmp(a, b, sizeof a) || memcmp(ta, tb, sizeof ta)) {
        snprintf(why, whylen, "%s: the host's output differs from the built-in cipher", name);
        return -1;
    }
    if (one_shot(name, host, 0, key, iv, b, sizeof b, back, tb) != (int)sizeof msg ||
        memcmp(back, msg, sizeof msg)) {
        snprintf(why, whylen, "%s: opening failed", name);
        return -1;
    }
    tb[3] ^= 1;
    if (one_shot(name, host, 0, key, iv, b, sizeof b, back, tb) != -1) {
        snprintf(why, whylen, "%s: a forged tag was accepted", name);
        return -1;
    }
    ERR_clear_error();
    return 0;
}

__attribute__((constructor)) static void hc_register(void)
{
    static char why[200];
    switch (tm_host_import("tmqtt_crypto")) {
    case TM_HOST_IMPORT_UNKNOWN:
        g_why = "the host did not announce its imports (" TM_HOST_IMPORTS_ENV " unset)";
        return;
    case TM_HOST_IMPORT_ABSENT:
        g_why = "the host does not provide tmqtt_crypto";
        return;
    case TM_HOST_IMPORT_PRESENT:
        break;
    }
    OSSL_PROVIDER *mine = NULL;
    if (!OSSL_PROVIDER_add_builtin(NULL, HC_NAME, hc_provider_init) || !OSSL_PROVIDER_load(NULL, "default") ||
        !(mine = OSSL_PROVIDER_load(NULL, HC_NAME))) {
        snprintf(why, sizeof why, "loading the provider failed");
    } else if (self_test(g_aes128.name, why, sizeof why) == 0 && self_test(g_aes256.name, why, sizeof why) == 0 &&
               self_test(g_chacha.name, why, sizeof why) == 0 &&
               EVP_set_default_properties(NULL, "?" HC_PROPS)) {
        g_active = 1;
        return;
    }
    if (mine) OSSL_PROVIDER_unload(mine);
    ERR_clear_error();
    g_why = why;
    fprintf(stderr, "tmqtt: tmqtt_crypto: %s; TLS records use the module's built-in ciphers\n", why);
}
#endif
