/*
 * provider_sim.c — the simulated TEE provider: signs SimReports with a local
 * P-256 "platform" key.
 *
 * Owns the platform key file (created with O_EXCL and mode 0600 on first use,
 * PKCS#8 PEM) and the measurement: SHA-256 of the running program image
 * (/proc/self/exe), of a file named by `measurement_file` (the Wasm runtime
 * passes the .wasm module it runs), or an explicit `measurement` hex value.
 * The measurement is computed once at open: it describes the program, not
 * the moment. Never secure: anyone with the key file can forge reports, which
 * is why verifiers refuse sim unless their policy trusts this exact key.
 */
#include "attest/attest_int.h"
#include "attest/provider_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

typedef struct {
    EVP_PKEY *key;
    uint8_t measurement[32];
    uint32_t flags;
} sim_state;

static int hash_file(const char *path, uint8_t out[32])
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    uint8_t buf[16384];
    size_t r;
    while (ok && (r = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(md, buf, r) == 1;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    fclose(f);
    return ok ? 0 : -1;
}

static EVP_PKEY *load_key(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tm_reasonf(err, cap, "sim: cannot open key %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ERR_clear_error();
    if (!k || !tm_is_p256(k)) {
        EVP_PKEY_free(k);
        tm_reasonf(err, cap, "sim: %s is not a P-256 private key (PEM)", path);
        return NULL;
    }
    return k;
}

static EVP_PKEY *load_or_create(const char *path, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        if (errno == EEXIST) return load_key(path, err, cap);
        tm_reasonf(err, cap, "sim: cannot create key %s: %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pl = 0;
    int ok = k && mem && PEM_write_bio_PKCS8PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL) == 1 &&
             (pl = BIO_get_mem_data(mem, &pem)) > 0;
    for (long off = 0; ok && off < pl;) {
        ssize_t w = write(fd, pem + off, (size_t)(pl - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        else off += w;
    }
    if (close(fd) != 0) ok = 0;
    BIO_free(mem);
    if (!ok) {
        unlink(path); /* never leave a half-written key that a later run would trust */
        EVP_PKEY_free(k);
        tm_reasonf(err, cap, "sim: cannot write key %s", path);
        return NULL;
    }
    return k;
}

int tm_sim_keygen(const char *path, uint8_t *spki_sha256, char *err, size_t errcap)
{
    EVP_PKEY *k = load_or_create(path, err, errcap);
    if (!k) return -1;
    int rc = 0;
    if (spki_sha256) {
        unsigned char *der = NULL;
        int dl = i2d_PUBKEY(k, &der);
        if (dl <= 0 || EVP_Digest(der, (size_t)dl, spki_sha256, NULL, EVP_sha256(), NULL) != 1) rc = -1;
        OPENSSL_free(der);
    }
    EVP_PKEY_free(k);
    return rc;
}

static int sim_open(tm_provider *p, const tm_prov_opt *o, int n, char *err, size_t cap)
{
    const char *key = tm_prov_opt_get(o, n, "key");
    const char *mhex = tm_prov_opt_get(o, n, "measurement");
    const char *mfile = tm_prov_opt_get(o, n, "measurement_file");
    const char *debug = tm_prov_opt_get(o, n, "debug");
    sim_state *s = calloc(1, sizeof *s);
    if (!s) { tm_reasonf(err, cap, "out of memory"); return -1; }
    if (debug && strcmp(debug, "true") && strcmp(debug, "false") && strcmp(debug, "1") && strcmp(debug, "0")) {
        tm_reasonf(err, cap, "sim: debug must be true or false");
        goto fail;
    }
    s->flags = debug && (!strcmp(debug, "true") || !strcmp(debug, "1")) ? 1u : 0u;
    if (mhex && mfile) {
        tm_reasonf(err, cap, "sim: give measurement or measurement_file, not both");
        goto fail;
    }
    if (mhex) {
        if (strlen(mhex) != 64 || tm_hex_decode(mhex, 64, s->measurement, 32) != 32) {
            tm_reasonf(err, cap, "sim: measurement must be 64 hex digits");
            goto fail;
        }
    } else {
        const char *path = mfile ? mfile : "/proc/self/exe";
        if (hash_file(path, s->measurement)) {
            tm_reasonf(err, cap, "sim: cannot hash %s to measure the program (%s)%s", path, strerror(errno),
                       mfile ? "" : "; pass measurement= or measurement_file=");
            goto fail;
        }
    }
    s->key = load_or_create(key ? key : "tmqtt-sim-key.pem", err, cap);
    if (!s->key) goto fail;
    p->state = s;
    return 0;
fail:
    free(s);
    return -1;
}

static void sim_close(tm_provider *p)
{
    sim_state *s = p->state;
    if (s) EVP_PKEY_free(s->key);
    free(s);
}

static size_t sim_formats(const tm_provider *p, uint16_t *out, size_t cap)
{
    if (cap) out[0] = TM_FMT_SIM;
    return 1;
}

static int sim_collect(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                       size_t *len, char *err, size_t errcap)
{
    sim_state *s = p->state;
    if (format != TM_FMT_SIM) {
        tm_reasonf(err, errcap, "sim: cannot produce %s evidence", tm_format_name(format) ? tm_format_name(format) : "unknown");
        return TM_PROV_EFORMAT;
    }
    int rc = tm_sim_build(s->key, s->measurement, s->flags, (uint64_t)time(NULL), rd, out, cap, len);
    if (rc == -2) {
        tm_reasonf(err, errcap, "sim: output buffer too small (%zu bytes needed)", *len);
        return TM_PROV_ESPACE;
    }
    if (rc) {
        tm_reasonf(err, errcap, "sim: signing failed");
        return TM_PROV_EINTERNAL;
    }
    return TM_PROV_OK;
}

static const char *const sim_keys[] = {"key", "measurement", "measurement_file", "debug", NULL};
const tm_provider_ops tm_provider_sim_ops = {.name = "sim", .keys = sim_keys, .open = sim_open,
                                            .close = sim_close, .formats = sim_formats,
                                            .collect = sim_collect};
