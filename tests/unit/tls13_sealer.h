/*
 * tls13_sealer.h — a TLS 1.3 record sealer for tests and fuzzing, written
 * independently of src/net/tls_record.c: the peer's records with any
 * TLSInnerPlaintext (content, type and padding as the caller gives them).
 * Keys come from a traffic secret by HKDF-Expand-Label built here over
 * EVP_PKEY HKDF (tls_record.c uses OpenSSL's TLS13-KDF), so a wrong key
 * schedule on either side shows.
 */
#ifndef TM_TLS13_SEALER_H
#define TM_TLS13_SEALER_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

typedef struct tm_test_sealer {
    const EVP_CIPHER *cipher;
    const EVP_MD *md;
    size_t key_len;
    uint8_t secret[48], key[32], iv[12];
    uint64_t seq;
} tm_test_sealer;

/* HKDF-Expand-Label(secret, label, "", n) with the HkdfLabel built here. */
static void tm_test_expand_label(const EVP_MD *md, const uint8_t *secret, const char *label,
                                 uint8_t *out, size_t n)
{
    uint8_t info[64];
    size_t ll = strlen(label), k = 0;
    info[k++] = (uint8_t)(n >> 8);
    info[k++] = (uint8_t)n;
    info[k++] = (uint8_t)(6 + ll);
    memcpy(info + k, "tls13 ", 6);
    k += 6;
    memcpy(info + k, label, ll);
    k += ll;
    info[k++] = 0;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t outlen = n;
    if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_CTX_set_hkdf_md(c, md) <= 0 ||
        EVP_PKEY_CTX_set_hkdf_mode(c, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) <= 0 ||
        EVP_PKEY_CTX_set1_hkdf_key(c, secret, EVP_MD_get_size(md)) <= 0 ||
        EVP_PKEY_CTX_add1_hkdf_info(c, info, (int)k) <= 0 || EVP_PKEY_derive(c, out, &outlen) <= 0)
        abort();
    EVP_PKEY_CTX_free(c);
}

static void tm_test_sealer_keys(tm_test_sealer *s)
{
    tm_test_expand_label(s->md, s->secret, "key", s->key, s->key_len);
    tm_test_expand_label(s->md, s->secret, "iv", s->iv, 12);
    s->seq = 0;
}

/* The sender of suite 0x1301, 0x1302 or 0x1303 from its traffic secret. */
static void tm_test_sealer_init(tm_test_sealer *s, uint16_t suite, const uint8_t *secret)
{
    switch (suite) {
    case 0x1302: s->cipher = EVP_aes_256_gcm(); s->md = EVP_sha384(); s->key_len = 32; break;
    case 0x1303: s->cipher = EVP_chacha20_poly1305(); s->md = EVP_sha256(); s->key_len = 32; break;
    default: s->cipher = EVP_aes_128_gcm(); s->md = EVP_sha256(); s->key_len = 16; break;
    }
    memcpy(s->secret, secret, (size_t)EVP_MD_get_size(s->md));
    tm_test_sealer_keys(s);
}

/* The next generation (after a KeyUpdate). */
static void tm_test_sealer_next(tm_test_sealer *s)
{
    uint8_t next[48];
    size_t hl = (size_t)EVP_MD_get_size(s->md);
    tm_test_expand_label(s->md, s->secret, "traffic upd", next, hl);
    memcpy(s->secret, next, hl);
    tm_test_sealer_keys(s);
}

/* One record whose TLSInnerPlaintext is inner[0..n) into out (n + 21
 * bytes); its length. */
static size_t tm_test_seal(tm_test_sealer *s, const uint8_t *inner, size_t n, uint8_t *out)
{
    uint8_t nonce[12];
    size_t clen = n + 16;
    out[0] = 23;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(clen >> 8);
    out[4] = (uint8_t)clen;
    memcpy(nonce, s->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(s->seq >> (8 * i));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l;
    if (!c || !EVP_EncryptInit_ex2(c, s->cipher, s->key, nonce, NULL) ||
        !EVP_EncryptUpdate(c, NULL, &l, out, 5) ||
        (n && !EVP_EncryptUpdate(c, out + 5, &l, inner, (int)n)) ||
        !EVP_EncryptFinal_ex(c, out + 5 + n, &l) ||
        !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, out + 5 + n))
        abort();
    EVP_CIPHER_CTX_free(c);
    s->seq++;
    return 5 + clen;
}

#endif
