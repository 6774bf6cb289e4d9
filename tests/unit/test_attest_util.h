/*
 * test_attest_util.h — helpers shared by the test_attest_*.c unit tests:
 * reading test data (TM_TESTDATA_DIR, set by tests/unit/attest.cmake, points
 * at shared/testdata), scratch files, and building SEV-SNP certificate
 * tables (the configfs-tsm auxblob layout) from certificates.
 */
#ifndef TEST_ATTEST_UTIL_H
#define TEST_ATTEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef TM_TESTDATA_DIR
#define TM_TESTDATA_DIR "../shared/testdata"
#endif

static inline unsigned char *ta_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline unsigned char *ta_data(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TM_TESTDATA_DIR, rel);
    return ta_slurp(path, len);
}

static inline time_t ta_time(int y, int m, int d)
{
    struct tm t;
    memset(&t, 0, sizeof t);
    t.tm_year = y - 1900;
    t.tm_mon = m - 1;
    t.tm_mday = d;
    return timegm(&t);
}

/* DER of the idx-th certificate (0-based) of a PEM file under testdata, or NULL. */
static inline unsigned char *ta_pem_der(const char *rel, int idx, size_t *len)
{
    size_t n;
    unsigned char *pem = ta_data(rel, &n), *out = NULL;
    BIO *bio = pem ? BIO_new_mem_buf(pem, (int)n) : NULL;
    X509 *x = NULL;
    for (int i = 0; bio && i <= idx; i++) {
        X509_free(x);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    }
    unsigned char *der = NULL;
    int dl = x ? i2d_X509(x, &der) : -1;
    if (dl > 0 && (out = malloc((size_t)dl)) != NULL) {
        memcpy(out, der, (size_t)dl);
        *len = (size_t)dl;
    }
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    free(pem);
    return out;
}

/* SEV-SNP certificate table GUIDs (RFC 4122 byte order, as snp.c expects). */
static const unsigned char TA_GUID_VCEK[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                               0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
static const unsigned char TA_GUID_VLEK[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                               0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
static const unsigned char TA_GUID_ASK[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                              0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};
static const unsigned char TA_GUID_ARK[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                              0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};

typedef struct {
    const unsigned char *guid;
    const unsigned char *der;
    size_t len;
} ta_cert;

/* The configfs-tsm auxblob layout: n entries {guid, u32 offset, u32 length}
 * (little-endian, offsets from the table start), an all-zero entry, then
 * the certificates in order. `pad` zero bytes at the end. malloc'd. */
static inline unsigned char *ta_snp_table(const ta_cert *c, int n, size_t pad, size_t *len)
{
    size_t hdr = (size_t)(n + 1) * 24, total = hdr + pad;
    for (int i = 0; i < n; i++) total += c[i].len;
    unsigned char *t = calloc(1, total);
    if (!t) return NULL;
    size_t off = hdr;
    for (int i = 0; i < n; i++) {
        unsigned char *e = t + (size_t)i * 24;
        memcpy(e, c[i].guid, 16);
        for (int k = 0; k < 4; k++) {
            e[16 + k] = (unsigned char)(off >> (8 * k));
            e[20 + k] = (unsigned char)(c[i].len >> (8 * k));
        }
        memcpy(t + off, c[i].der, c[i].len);
        off += c[i].len;
    }
    *len = total;
    return t;
}

/* report || table, malloc'd. */
static inline unsigned char *ta_concat(const unsigned char *a, size_t an, const unsigned char *b, size_t bn,
                                       size_t *len)
{
    unsigned char *o = malloc(an + bn + 1);
    if (!o) return NULL;
    memcpy(o, a, an);
    if (bn) memcpy(o + an, b, bn);
    *len = an + bn;
    return o;
}

/* Writes bytes to dir/name. 0 ok. */
static inline int ta_write(const char *dir, const char *name, const void *data, size_t len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static inline int ta_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "  reason '%s' lacks '%s'\n", hay, needle);
        return 0;
    }
    return 1;
}
#endif
