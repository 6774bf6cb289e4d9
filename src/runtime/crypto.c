/*
 * crypto.c — the `tmqtt_crypto` import module: AEAD record protection done by the host
 * (native OpenSSL, AES-NI and vector code) for a module whose own OpenSSL is portable
 * C. The module's side is an OpenSSL provider (src/platform/wasi_crypto_prov.c) that
 * TLS fetches in place of the built-in AES-GCM and ChaCha20-Poly1305.
 *
 *   aead_new(alg, key_ptr, key_len, handle_out_ptr) -> errno
 *       alg 1 AES-128-GCM (16-byte key), 2 AES-256-GCM (32), 3 ChaCha20-Poly1305 (32);
 *       writes a u64 handle. EINVAL for an unknown alg or a wrong key length, ENFILE
 *       when the instance holds the maximum number of contexts.
 *   aead_seal(handle, nonce, nonce_len, aad, aad_len, in, len, out, tag, tag_len) -> errno
 *   aead_open(handle, nonce, nonce_len, aad, aad_len, in, len, tag, tag_len, out) -> errno
 *       one whole message per call; nonce_len 12, tag_len 16; `out` is `in` (in place)
 *       or does not overlap it (EINVAL otherwise). open: EBADMSG when the tag does not
 *       verify, and then the len bytes at `out` are zeroed.
 *   aead_free(handle) -> errno
 *
 * Invariants (the sandbox rules of host.h apply to every argument):
 *   - every (pointer, length) is checked against the current memory size before use;
 *     OpenSSL then reads and writes linear memory directly (no copy): the memory cannot
 *     grow or move during the call (one thread, no callback into the module);
 *   - a handle is (random 32-bit tag << 32) | (slot index + 1); it is valid only while
 *     its slot holds a context with the same tag. A freed, stale (slot reused) or
 *     invented handle is EBADF — never another context — so a use-after-free in the
 *     module cannot encrypt with some other connection's key by accident, and guessing
 *     a live handle takes ~2^32 tries per slot. Slots live in host memory the module
 *     cannot address; the expanded keys never go back into linear memory;
 *   - the number of live contexts is capped (TM_CRYPTO_PER_FD per allowed descriptor),
 *     so a module cannot exhaust host memory through this import;
 *   - keys cross from linear memory into host memory once, at aead_new; both are in the
 *     same process, inside the same TEE (docs/wasm-runtime.md, "Record crypto").
 *
 * With --omit-import tmqtt_crypto every entry traps as WAMR does for an unlinked import,
 * and TMQTT_HOST_IMPORTS does not list the module, so the module never calls it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "runtime/crypto.h"
#include "runtime/host.h"
#include "runtime/host_imports.h"

#define TM_CRYPTO_NONCE 12
#define TM_CRYPTO_TAG 16
#define TM_CRYPTO_MAX_LEN (1u << 30) /* OpenSSL takes int lengths; TLS records are 16 KiB */

typedef struct {
    EVP_CIPHER_CTX *ctx; /* NULL = free */
    uint32_t tag;        /* upper half of the handle; 0 never used */
} slot;

struct tm_crypto {
    slot *slots;
    uint32_t nslots, cap, max;
    uint32_t *free_idx; /* stack of free slot indices below nslots */
    uint32_t nfree;
    uint32_t live;
    EVP_CIPHER *ciphers[4];
    uint64_t nnew, nseal, nopen, nbad;
};

static const struct {
    const char *name;
    uint32_t keylen;
} g_algs[4] = {{NULL, 0}, {"AES-128-GCM", 16}, {"AES-256-GCM", 32}, {"ChaCha20-Poly1305", 32}};

tm_crypto *tm_crypto_new(uint32_t max_contexts, char *err, size_t errlen)
{
    tm_crypto *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->max = max_contexts;
    for (int a = 1; a < 4; a++) {
        c->ciphers[a] = EVP_CIPHER_fetch(NULL, g_algs[a].name, NULL);
        if (!c->ciphers[a]) {
            snprintf(err, errlen, "host OpenSSL has no %s", g_algs[a].name);
            tm_crypto_free(c);
            return NULL;
        }
    }
    return c;
}

void tm_crypto_free(tm_crypto *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < c->nslots; i++) EVP_CIPHER_CTX_free(c->slots[i].ctx);
    for (int a = 1; a < 4; a++) EVP_CIPHER_free(c->ciphers[a]);
    free(c->slots);
    free(c->free_idx);
    free(c);
}

void tm_crypto_stats(const tm_crypto *c, char *out, size_t outlen)
{
    snprintf(out, outlen, "%llu contexts created, %u live, %llu seals, %llu opens, %llu bad handles",
             (unsigned long long)c->nnew, c->live, (unsigned long long)c->nseal,
             (unsigned long long)c->nopen, (unsigned long long)c->nbad);
}

static EVP_CIPHER_CTX *lookup(tm_crypto *c, uint64_t handle)
{
    uint32_t idx = (uint32_t)handle - 1, tag = (uint32_t)(handle >> 32);
    if ((uint32_t)handle == 0 || idx >= c->nslots || !c->slots[idx].ctx || c->slots[idx].tag != tag) {
        c->nbad++;
        return NULL;
    }
    return c->slots[idx].ctx;
}

/* A slot index for a new context, growing the table when no freed slot is left. */
static int take_slot(tm_crypto *c, uint32_t *idx)
{
    if (c->nfree) {
        *idx = c->free_idx[--c->nfree];
        return 0;
    }
    if (c->nslots == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : 64;
        slot *ns = realloc(c->slots, ncap * sizeof *ns);
        if (!ns) return -1;
        c->slots = ns;
        uint32_t *nf = realloc(c->free_idx, ncap * sizeof *nf);
        if (!nf) return -1;
        c->free_idx = nf;
        c->cap = ncap;
    }
    c->slots[c->nslots].ctx = NULL;
    *idx = c->nslots++;
    return 0;
}

#define CRYPTO_ENTRY(h, field)                                                     \
    tm_host *h = TM_HOST_OF(ctx);                                                  \
    if (h->omit & TM_IMPORT_CRYPTO) tm_trap_unlinked(h, "tmqtt_crypto", field);    \
    if (!h->crypto) return TM_ENOSYS

u32 TM_CRYPTO(aead_new)(TM_CRYPTO_CTX, u32 alg, u32 key, u32 key_len, u32 handle_out)
{
    CRYPTO_ENTRY(h, "aead_new");
    tm_crypto *c = h->crypto;
    if (alg < 1 || alg > 3 || key_len != g_algs[alg].keylen) return TM_EINVAL;
    if (!tm_mem_ok(h, key, key_len) || !tm_mem_ok(h, handle_out, 8)) return TM_EFAULT;
    if (c->live >= c->max) {
        fprintf(stderr, "tmqtt-wasm: tmqtt_crypto: %u contexts live, the limit; refusing another\n", c->live);
        return TM_ENFILE;
    }
    uint32_t idx, tag = 0;
    while (tag == 0)
        if (RAND_bytes((unsigned char *)&tag, sizeof tag) != 1) return TM_EIO;
    EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
    if (!e) return TM_ENOMEM;
    if (!EVP_CipherInit_ex2(e, c->ciphers[alg], tm_mem(h, key), NULL, 1, NULL)) {
        EVP_CIPHER_CTX_free(e);
        return TM_EIO;
    }
    if (take_slot(c, &idx) != 0) {
        EVP_CIPHER_CTX_free(e);
        return TM_ENOMEM;
    }
    c->slots[idx].ctx = e;
    c->slots[idx].tag = tag;
    c->live++;
    c->nnew++;
    tm_st64(h, handle_out, (uint64_t)tag << 32 | (idx + 1));
    TM_TRACE(h, "tmqtt_crypto: aead_new(%s) -> slot %u", g_algs[alg].name, idx);
    return TM_ESUCCESS;
}

u32 TM_CRYPTO(aead_free)(TM_CRYPTO_CTX, u64 handle)
{
    CRYPTO_ENTRY(h, "aead_free");
    tm_crypto *c = h->crypto;
    if (!lookup(c, handle)) return TM_EBADF;
    uint32_t idx = (uint32_t)handle - 1;
    EVP_CIPHER_CTX_free(c->slots[idx].ctx); /* cleanses the key schedule */
    c->slots[idx].ctx = NULL;
    c->slots[idx].tag = 0;
    c->free_idx[c->nfree++] = idx;
    c->live--;
    return TM_ESUCCESS;
}

/* Range checks shared by seal and open: every region inside linear memory, lengths
 * within what OpenSSL takes, `out` equal to `in` or disjoint from it. */
static uint16_t check_msg(const tm_host *h, u32 nonce, u32 nonce_len, u32 aad, u32 aad_len, u32 in,
                          u32 len, u32 out, u32 tag, u32 tag_len)
{
    if (nonce_len != TM_CRYPTO_NONCE || tag_len != TM_CRYPTO_TAG) return TM_EINVAL;
    if (len > TM_CRYPTO_MAX_LEN || aad_len > TM_CRYPTO_MAX_LEN) return TM_EINVAL;
    if (!tm_mem_ok(h, nonce, nonce_len) || !tm_mem_ok(h, aad, aad_len) || !tm_mem_ok(h, in, len) ||
        !tm_mem_ok(h, out, len) || !tm_mem_ok(h, tag, tag_len))
        return TM_EFAULT;
    if (in != out && len && (uint64_t)in < (uint64_t)out + len && (uint64_t)out < (uint64_t)in + len)
        return TM_EINVAL;
    return TM_ESUCCESS;
}

/* One whole message through context e, in the direction `enc`: every range already
 * checked. Returns a WASI errno; EBADMSG when opening and the tag does not verify. */
static uint16_t run_aead(tm_host *h, EVP_CIPHER_CTX *e, int enc, u32 nonce, u32 aad, u32 aad_len, u32 in,
                         u32 len, u32 out, unsigned char tag[TM_CRYPTO_TAG])
{
    int n = 0, f = 0;
    if (!EVP_CipherInit_ex(e, NULL, NULL, NULL, tm_mem(h, nonce), enc) ||
        (!enc && EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_SET_TAG, TM_CRYPTO_TAG, tag) <= 0) ||
        (aad_len && !EVP_CipherUpdate(e, NULL, &n, tm_mem(h, aad), (int)aad_len)) ||
        (len && !EVP_CipherUpdate(e, tm_mem(h, out), &n, tm_mem(h, in), (int)len)))
        return TM_EIO;
    if (!EVP_CipherFinal_ex(e, tm_mem(h, out) + (len ? n : 0), &f)) {
        if (enc) return TM_EIO;
        memset(tm_mem(h, out), 0, len); /* never hand out unauthenticated plaintext */
        return TM_EBADMSG;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, TM_CRYPTO_TAG, tag) <= 0) return TM_EIO;
    return TM_ESUCCESS;
}

/* seal (enc 1) and open (enc 0): checks, then one message; the tag goes through a
 * host buffer (open: copied first, since `out` may overlap it). */
static u32 seal_open(TM_CRYPTO_CTX, const char *field, int enc, u64 handle, u32 nonce, u32 nonce_len, u32 aad,
                     u32 aad_len, u32 in, u32 len, u32 out, u32 tag, u32 tag_len)
{
    CRYPTO_ENTRY(h, field);
    EVP_CIPHER_CTX *e = lookup(h->crypto, handle);
    if (!e) return TM_EBADF;
    uint16_t r = check_msg(h, nonce, nonce_len, aad, aad_len, in, len, out, tag, tag_len);
    if (r) return r;
    unsigned char t[TM_CRYPTO_TAG];
    if (!enc) memcpy(t, tm_mem(h, tag), TM_CRYPTO_TAG);
    r = run_aead(h, e, enc, nonce, aad, aad_len, in, len, out, t);
    if (r) return r;
    if (enc) memcpy(tm_mem(h, tag), t, TM_CRYPTO_TAG);
    if (enc) h->crypto->nseal++;
    else h->crypto->nopen++;
    return TM_ESUCCESS;
}

u32 TM_CRYPTO(aead_seal)(TM_CRYPTO_CTX, u64 handle, u32 nonce, u32 nonce_len, u32 aad, u32 aad_len, u32 in,
                         u32 len, u32 out, u32 tag, u32 tag_len)
{
    return seal_open(ctx, "aead_seal", 1, handle, nonce, nonce_len, aad, aad_len, in, len, out, tag, tag_len);
}

u32 TM_CRYPTO(aead_open)(TM_CRYPTO_CTX, u64 handle, u32 nonce, u32 nonce_len, u32 aad, u32 aad_len, u32 in,
                         u32 len, u32 tag, u32 tag_len, u32 out)
{
    return seal_open(ctx, "aead_open", 0, handle, nonce, nonce_len, aad, aad_len, in, len, out, tag, tag_len);
}
