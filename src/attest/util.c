/*
 * util.c — small helpers for the attestation library: reasons, hex, UTC time
 * conversion and ECDSA verification (P-256 raw/DER, P-384 little-endian r/s
 * for SEV-SNP) through OpenSSL 3's EVP API.
 *
 * Hex goes through OpenSSL (OPENSSL_hexstr2buf_ex / OPENSSL_buf2hexstr_ex),
 * UTC conversion through libc's timegm / gmtime_r (UTC only: no time zone
 * machinery is involved; glibc and wasi-libc both have them).
 */
#include "attest/attest_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

void tm_reasonf(char *reason, size_t cap, const char *fmt, ...)
{
    if (!reason || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
}

void tm_sb_printf(tm_sbuf *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->n < s->cap ? s->cap - s->n : 0;
    int w = vsnprintf(room ? s->b + s->n : NULL, room, fmt, ap);
    va_end(ap);
    if (w > 0) s->n += (size_t)w;
}

void tm_sb_hex(tm_sbuf *s, const uint8_t *p, size_t n)
{
    char h[2 * 64 + 1];
    while (n) {
        size_t k = n > 64 ? 64 : n;
        tm_hex_encode(p, k, h);
        tm_sb_printf(s, "%s", h);
        p += k;
        n -= k;
    }
}

long tm_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t cap)
{
    /* OpenSSL wants a NUL-terminated string: copy bounded slices */
    char buf[2 * 256 + 1];
    char *tmp = hexlen < sizeof buf ? buf : malloc(hexlen + 1);
    size_t got = 0;
    if (!tmp || hexlen % 2 || hexlen / 2 > cap) {
        if (tmp && tmp != buf) free(tmp);
        return -1;
    }
    memcpy(tmp, hex, hexlen);
    tmp[hexlen] = 0;
    int ok = hexlen == 0 || OPENSSL_hexstr2buf_ex(out, cap, &got, tmp, '\0') == 1;
    if (tmp != buf) free(tmp);
    ERR_clear_error();
    return ok ? (long)got : -1;
}

void tm_hex_encode(const uint8_t *in, size_t n, char *out)
{
    size_t len = 0;
    out[0] = 0;
    if (n == 0 || OPENSSL_buf2hexstr_ex(out, 2 * n + 1, &len, in, n, '\0') != 1)
        return;
    for (size_t i = 0; out[i]; i++)   /* OpenSSL writes upper case; ours is lower */
        out[i] = (char)tolower((unsigned char)out[i]);
}

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

int tm_time_parse(const char *s, time_t *out)
{
    int Y, M, D, h, mi, sec;
    if (strlen(s) < 20) return -1;
    if (digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return -1;
        while (*p >= '0' && *p <= '9') p++;
    }
    if ((*p != 'Z' && *p != 'z') || p[1] != 0) return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                    .tm_min = mi, .tm_sec = sec};
    *out = timegm(&tm);   /* UTC: no time zone involved */
    return 0;
}

int tm_verify_parse_time(const char *iso, time_t *out) { return iso ? tm_time_parse(iso, out) : -1; }

void tm_time_format(time_t t, char *out, size_t cap)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "(time out of range)");
        return;
    }
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

EVP_PKEY *tm_p256_from_raw(const uint8_t xy[64])
{
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!bld || !ctx) goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!params || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int tm_is_ec_curve(EVP_PKEY *key, const char *curve)
{
    char name[64];
    size_t n = 0;
    if (!key || !EVP_PKEY_is_a(key, "EC")) return 0;
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &n))
        return 0;
    return strcmp(name, curve) == 0;
}

int tm_is_p256(EVP_PKEY *key) { return tm_is_ec_curve(key, "prime256v1") || tm_is_ec_curve(key, "P-256"); }

static int ecdsa_verify_md(EVP_PKEY *key, const EVP_MD *mdt, const uint8_t *msg, size_t n, const uint8_t *sig,
                           size_t siglen)
{
    if (!key || !sig || siglen == 0) return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestVerifyInit(md, NULL, mdt, NULL, key) == 1 &&
             EVP_DigestVerify(md, sig, siglen, msg, n) == 1;
    EVP_MD_CTX_free(md);
    return ok ? 1 : 0;
}

int tm_ecdsa_verify_der(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen)
{
    return ecdsa_verify_md(key, EVP_sha256(), msg, n, sig, siglen);
}

int tm_ecdsa_verify_rs(EVP_PKEY *key, const EVP_MD *md, const uint8_t *msg, size_t len, const uint8_t *rb,
                       const uint8_t *sb, size_t n, int le)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = le ? BN_lebin2bn(rb, (int)n, NULL) : BN_bin2bn(rb, (int)n, NULL);
    BIGNUM *s = le ? BN_lebin2bn(sb, (int)n, NULL) : BN_bin2bn(sb, (int)n, NULL);
    unsigned char *der = NULL;
    int ok = 0, dl;
    if (!es || !r || !s) { BN_free(r); BN_free(s); goto out; }
    if (!ECDSA_SIG_set0(es, r, s)) { BN_free(r); BN_free(s); goto out; }
    dl = i2d_ECDSA_SIG(es, &der);
    if (dl > 0) ok = ecdsa_verify_md(key, md, msg, len, der, (size_t)dl);
out:
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

int tm_ecdsa_verify_raw(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t rs[64])
{
    return tm_ecdsa_verify_rs(key, EVP_sha256(), msg, n, rs, rs + 32, 32, 0);
}
