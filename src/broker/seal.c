/*
 * seal.c — key sources and frame encryption for the store (seal.h), native
 * build. The WebAssembly module uses seal_wasi.c instead: there the runtime
 * host holds the key.
 *
 * The root key never leaves this file: it is read (or derived by the TEE),
 * expanded into a per-file AES-256-GCM key with HKDF, and wiped.
 */
#include "broker/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#if defined(__linux__) && __has_include(<linux/sev-guest.h>)
#include <linux/sev-guest.h>
#define TM_HAVE_SNP 1
#endif

struct tm_seal {
    uint8_t root[32];
    char mode[24];
};

struct tm_seal_file {
    EVP_CIPHER_CTX *ctx;
    uint8_t key[32];
};

static int read_exact(const char *path, uint8_t *out, size_t n, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    ssize_t r = read(fd, out, n);
    close(fd);
    if (r != (ssize_t)n) {
        snprintf(err, errcap, "%s: expected %zu bytes of key", path, n);
        return -1;
    }
    return 0;
}

/* keyfile PATH: 32 random bytes, created 0600 on first use. */
static int key_file(const char *path, uint8_t root[32], char *err, size_t errcap)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (st.st_mode & 077) {
            snprintf(err, errcap, "%s: the store key must not be readable by group or others "
                     "(mode %o; chmod 600)", path, (unsigned)(st.st_mode & 0777));
            return -1;
        }
        return read_exact(path, root, 32, err, errcap);
    }
    if (errno != ENOENT) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (RAND_priv_bytes(root, 32) != 1) {
        snprintf(err, errcap, "no randomness for a new store key");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, root, 32) != 32 || fsync(fd) != 0) {
        snprintf(err, errcap, "%s: cannot create the store key: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Gramine: a 128-bit sealing key, expanded to 256 bits below by HKDF. */
static int gramine_key(const char *root_dir, const char *which, uint8_t root[32], char *err,
                       size_t errcap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/keys/%s", root_dir ? root_dir : "/dev/attestation", which);
    memset(root, 0, 32);
    return read_exact(path, root, 16, err, errcap);
}

static int snp_key(const char *device, uint8_t root[32], char *err, size_t errcap)
{
#ifdef TM_HAVE_SNP
    const char *dev = device ? device : "/dev/sev-guest";
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s (an SEV-SNP guest with the sev-guest driver is needed)",
                 dev, strerror(errno));
        return -1;
    }
    struct snp_derived_key_req req;
    struct snp_derived_key_resp resp;
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    req.root_key_select = 0;          /* VCEK */
    req.guest_field_select = 1u << 3; /* mix in the launch MEASUREMENT */
    struct snp_guest_request_ioctl io;
    memset(&io, 0, sizeof io);
    io.msg_version = 1;
    io.req_data = (uint64_t)(uintptr_t)&req;
    io.resp_data = (uint64_t)(uintptr_t)&resp;
    int r = ioctl(fd, SNP_GET_DERIVED_KEY, &io);
    close(fd);
    /* MSG_KEY_RSP: status u32, reserved 28 bytes, then the 32-byte key */
    uint32_t status = (uint32_t)resp.data[0] | (uint32_t)resp.data[1] << 8;
    if (r != 0 || status != 0) {
        snprintf(err, errcap, "%s: SNP_GET_DERIVED_KEY failed (%s, status %u)", dev,
                 r ? strerror(errno) : "firmware", status);
        return -1;
    }
    memcpy(root, resp.data + 32, 32);
    OPENSSL_cleanse(&resp, sizeof resp);
    return 0;
#else
    (void)device;
    (void)root;
    snprintf(err, errcap, "snp: this build has no SEV-SNP guest support");
    return -1;
#endif
}

tm_seal *tm_seal_open(const char *spec, char *err, size_t errcap)
{
    char kind[32] = "", arg[400] = "";
    if (!spec || sscanf(spec, "%31s %399[^\n]", kind, arg) < 1) {
        snprintf(err, errcap, "persistence_seal: empty");
        return NULL;
    }
    tm_seal *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    int rc;
    if (!strcmp(kind, "keyfile") && arg[0])
        rc = key_file(arg, s->root, err, errcap);
    else if (!strcmp(kind, "gramine-mrenclave"))
        rc = gramine_key(arg[0] ? arg : NULL, "_sgx_mrenclave", s->root, err, errcap);
    else if (!strcmp(kind, "gramine-mrsigner"))
        rc = gramine_key(arg[0] ? arg : NULL, "_sgx_mrsigner", s->root, err, errcap);
    else if (!strcmp(kind, "snp"))
        rc = snp_key(arg[0] ? arg : NULL, s->root, err, errcap);
    else {
        snprintf(err, errcap, "persistence_seal: '%s' is not a key source (keyfile PATH, "
                 "gramine-mrenclave, gramine-mrsigner, snp)", spec);
        rc = -1;
    }
    if (rc < 0) {
        tm_seal_close(s);
        return NULL;
    }
    snprintf(s->mode, sizeof s->mode, "%.23s", kind);
    return s;
}

void tm_seal_close(tm_seal *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

const char *tm_seal_mode(const tm_seal *s) { return s->mode; }

tm_seal_file *tm_seal_file_new(tm_seal *s, const uint8_t store_id[16],
                               const uint8_t file_id[16], char *err, size_t errcap)
{
    tm_seal_file *f = calloc(1, sizeof *f);
    uint8_t info[14 + 16];
    memcpy(info, "tmqtt store v1", 14);
    memcpy(info + 14, store_id, 16);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, s->root, sizeof s->root),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)file_id, 16),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
        OSSL_PARAM_construct_end(),
    };
    bool ok = f && kctx && EVP_KDF_derive(kctx, f->key, sizeof f->key, params) == 1 &&
              (f->ctx = EVP_CIPHER_CTX_new()) != NULL;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (!ok) {
        snprintf(err, errcap, "cannot derive the store file key");
        tm_seal_file_free(f);
        return NULL;
    }
    return f;
}

void tm_seal_file_free(tm_seal_file *f)
{
    if (!f)
        return;
    EVP_CIPHER_CTX_free(f->ctx);
    OPENSSL_cleanse(f, sizeof *f);
    free(f);
}

static void nonce_of(uint64_t seq, uint8_t iv[12])
{
    memset(iv, 0, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

/* One AEAD pass; len may exceed INT_MAX, so the update goes in chunks. */
static int gcm(tm_seal_file *f, int enc, uint64_t seq, const uint8_t *aad, size_t aadlen,
               uint8_t *buf, size_t len, uint8_t *tag)
{
    uint8_t iv[12];
    nonce_of(seq, iv);
    int outl;
    if (EVP_CipherInit_ex(f->ctx, EVP_aes_256_gcm(), NULL, f->key, iv, enc) != 1 ||
        EVP_CipherUpdate(f->ctx, NULL, &outl, aad, (int)aadlen) != 1)
        return -1;
    for (size_t off = 0; off < len;) {
        int n = len - off > (1u << 30) ? 1 << 30 : (int)(len - off);
        if (EVP_CipherUpdate(f->ctx, buf + off, &outl, buf + off, n) != 1)
            return -1;
        off += (size_t)n;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(f->ctx, EVP_CTRL_GCM_SET_TAG, TM_SEAL_TAG, tag) != 1)
        return -1;
    uint8_t fin[16];
    if (EVP_CipherFinal_ex(f->ctx, fin, &outl) != 1)
        return -1;
    if (enc && EVP_CIPHER_CTX_ctrl(f->ctx, EVP_CTRL_GCM_GET_TAG, TM_SEAL_TAG, tag) != 1)
        return -1;
    return 0;
}

int tm_seal_encrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, uint8_t tag[TM_SEAL_TAG])
{
    return gcm(f, 1, seq, aad, aadlen, buf, len, tag);
}

int tm_seal_decrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, const uint8_t tag[TM_SEAL_TAG])
{
    uint8_t t[TM_SEAL_TAG];
    memcpy(t, tag, sizeof t);
    return gcm(f, 0, seq, aad, aadlen, buf, len, t);
}
