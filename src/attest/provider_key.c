/*
 * provider_key.c — attestation keys made by a provider (provider.h,
 * tm_prov_key) and the keyring that keeps one valid and rotates it
 * (keyring.h).
 *
 * A key made here (every native provider) is a P-256 EVP_PKEY in this
 * process's memory, which is the TEE's memory when the broker runs in one
 * (Gramine enclave, TDX / SEV-SNP guest): the same place as the TLS private
 * key. The wasi provider (provider_wasi.c) keeps its keys in the runtime host
 * instead, through its key_new / key_sign / key_free operations: the module
 * holds a handle and the public parts only.
 *
 * The file is named provider_* because it needs a provider: builds of the
 * verifier alone (test_attest_tcb) leave provider*.c out.
 *
 * Keyring invariants: `cur` is never NULL after tm_keyring_new succeeded; at
 * most one rotation job exists; while it runs, the worker thread owns
 * job->result and the lent provider, the owner thread only reads job->done
 * (atomic); the job is joined before anything it touches is freed.
 */
#include "attest/keyring.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#if !defined(__wasi__)
#include <pthread.h>
#define TM_KEYRING_THREADS 1
#endif

#include "attest/attest_int.h"
#include "attest/keyatt.h"
#include "attest/provider_int.h"

/* room left for the platform evidence inside one AttestationEvidence, whose
 * evidence is at most 65530 bytes (atls.h, TM_ATLS_MAX_EVIDENCE): the rest
 * of KeyAttestedEvidence, with room for any P-256 SPKI encoding */
#define KEY_EV_OVERHEAD (2 + 2 + 8 + 2 + TM_PROV_KEY_SIG_MAX + 256)
#define MAX_PLATFORM_EV (65530 - KEY_EV_OVERHEAD)

/* ---- one key ------------------------------------------------------------------ */

static int copy_out(uint8_t **dst, size_t *dlen, const uint8_t *src, size_t n)
{
    *dst = malloc(n ? n : 1);
    if (!*dst)
        return -1;
    memcpy(*dst, src, n);
    *dlen = n;
    return 0;
}

/* In-process key: generate, then one quote over its key binding. */
static int local_key_new(tm_provider *p, tm_prov_key *k, char *err, size_t errcap)
{
    k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *der = NULL;
    int dl = k->pkey ? i2d_PUBKEY(k->pkey, &der) : -1;
    if (dl <= 0) {
        tm_reasonf(err, errcap, "attestation key: P-256 key generation failed");
        return -1;
    }
    int rc = copy_out(&k->spki, &k->spki_len, der, (size_t)dl);
    OPENSSL_free(der);
    uint8_t kb[64];
    if (rc < 0 || tm_keyatt_key_binding(k->spki, k->spki_len, k->not_after, kb) < 0) {
        tm_reasonf(err, errcap, "attestation key: out of memory");
        return -1;
    }
    uint8_t *ev = malloc(MAX_PLATFORM_EV);
    size_t n = 0;
    char perr[256] = "";
    rc = ev ? tm_provider_collect(p, k->format, kb, ev, MAX_PLATFORM_EV, &n, perr, sizeof perr)
            : TM_PROV_EINTERNAL;
    if (rc == TM_PROV_OK && copy_out(&k->evidence, &k->evidence_len, ev, n) < 0)
        rc = TM_PROV_EINTERNAL;
    free(ev);
    if (rc != TM_PROV_OK) {
        tm_reasonf(err, errcap, "attestation key: the %s quote binding it failed: %s",
                   tm_format_name(k->format) ? tm_format_name(k->format) : "platform",
                   rc == TM_PROV_ESPACE ? "evidence too large" : perr[0] ? perr : "out of memory");
        return -1;
    }
    return 0;
}

tm_prov_key *tm_provider_key_new(tm_provider *p, uint16_t format, uint64_t not_after, char *err,
                                 size_t errcap)
{
    if (!p || !format || tm_format_is_keyatt(format)) {
        tm_reasonf(err, errcap, "attestation key: bad arguments");
        return NULL;
    }
    tm_prov_key *k = calloc(1, sizeof *k);
    if (!k) {
        tm_reasonf(err, errcap, "out of memory");
        return NULL;
    }
    k->prov = p;
    k->format = format;
    k->not_after = not_after;
    int rc = p->ops->key_new ? p->ops->key_new(p, k, err, errcap) : local_key_new(p, k, err, errcap);
    if (rc < 0) {
        tm_prov_key_free(k);
        return NULL;
    }
    return k;
}

uint16_t tm_prov_key_format(const tm_prov_key *k) { return k ? k->format : 0; }
uint64_t tm_prov_key_not_after(const tm_prov_key *k) { return k ? k->not_after : 0; }

const uint8_t *tm_prov_key_spki(const tm_prov_key *k, size_t *len)
{
    *len = k ? k->spki_len : 0;
    return k ? k->spki : NULL;
}

const uint8_t *tm_prov_key_evidence(const tm_prov_key *k, size_t *len)
{
    *len = k ? k->evidence_len : 0;
    return k ? k->evidence : NULL;
}

int tm_prov_key_sign(tm_prov_key *k, const uint8_t rd[64], uint8_t *sig, size_t cap, size_t *len,
                     char *err, size_t errcap)
{
    if (!k || !rd || !sig || !len) {
        tm_reasonf(err, errcap, "attestation key: bad arguments");
        return -1;
    }
    if (!k->pkey)
        return k->prov->ops->key_sign ? k->prov->ops->key_sign(k, rd, sig, cap, len, err, errcap)
                                      : -1;
    size_t n = cap;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(md, sig, &n, rd, 64) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        tm_reasonf(err, errcap, "attestation key: signing failed");
        return -1;
    }
    *len = n;
    return 0;
}

int tm_prov_key_evidence_over(tm_prov_key *k, const uint8_t rd[64], uint8_t *out, size_t cap,
                              size_t *len, char *err, size_t errcap)
{
    uint8_t sig[TM_PROV_KEY_SIG_MAX + 8];
    size_t sl = 0, need = 0;
    if (!k || tm_prov_key_sign(k, rd, sig, sizeof sig, &sl, err, errcap) < 0)
        return TM_PROV_EINTERNAL;
    tm_keyatt_ev e = {.platform = k->evidence, .platform_len = k->evidence_len,
                      .spki = k->spki, .spki_len = k->spki_len, .not_after = k->not_after,
                      .sig = sig, .sig_len = sl};
    size_t n = tm_keyatt_encode(&e, out, cap, &need);
    if (n == 0) {
        *len = need;
        tm_reasonf(err, errcap, "key-attested evidence needs %zu bytes", need);
        return need > cap ? TM_PROV_ESPACE : TM_PROV_EINTERNAL;
    }
    *len = n;
    return TM_PROV_OK;
}

void tm_prov_key_free(tm_prov_key *k)
{
    if (!k)
        return;
    if (k->handle && k->prov && k->prov->ops->key_free)
        k->prov->ops->key_free(k);
    EVP_PKEY_free(k->pkey);
    free(k->spki);
    free(k->evidence);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

/* ---- the keyring ------------------------------------------------------------------ */

typedef struct job {
    tm_provider *prov;
    uint16_t format;
    uint64_t not_after;
    tm_prov_key *result;         /* written by the worker before `done` */
    char err[256];
    atomic_bool done;
#ifdef TM_KEYRING_THREADS
    pthread_t th;
#endif
} job;

struct tm_keyring {
    tm_provider *prov;
    uint16_t format;
    uint32_t lifetime;
    bool worker;
    tm_prov_key *cur;
    job *job;                    /* a rotation in a worker, or NULL */
    time_t retry_at;             /* after a failed rotation: not before */
};

static uint32_t margin(const tm_keyring *r)
{
    uint32_t m = r->lifetime / 10;
    return m > 10 ? 10 : m;
}

tm_keyring *tm_keyring_new(const tm_keyring_opts *o, time_t now, char *err, size_t errcap)
{
    tm_keyring *r = calloc(1, sizeof *r);
    if (!r || !o || !o->provider) {
        free(r);
        tm_reasonf(err, errcap, r ? "keyring: no provider" : "out of memory");
        return NULL;
    }
    r->prov = o->provider;
    r->format = o->format;
    r->lifetime = o->lifetime_s ? o->lifetime_s : TM_KEYRING_DEFAULT_LIFETIME;
    if (r->lifetime < TM_KEYRING_MIN_LIFETIME)
        r->lifetime = TM_KEYRING_MIN_LIFETIME;
#ifdef TM_KEYRING_THREADS
    r->worker = o->worker;
#endif
    r->cur = tm_provider_key_new(r->prov, r->format, (uint64_t)now + r->lifetime, err, errcap);
    if (!r->cur) {
        free(r);
        return NULL;
    }
    return r;
}

static void job_free(job *j)
{
    if (!j)
        return;
    tm_prov_key_free(j->result);
    free(j);
}

void tm_keyring_free(tm_keyring *r)
{
    if (!r)
        return;
#ifdef TM_KEYRING_THREADS
    if (r->job) {
        pthread_join(r->job->th, NULL);   /* at most one quote */
        tm_provider_return(r->prov);
    }
#endif
    job_free(r->job);
    tm_prov_key_free(r->cur);
    free(r);
}

int tm_keyring_usable(const tm_keyring *r, time_t now)
{
    return r && r->cur && now >= 0 && r->cur->not_after > (uint64_t)now + margin(r);
}

int tm_keyring_evidence(tm_keyring *r, time_t now, const uint8_t rd[64], uint8_t *out,
                        size_t cap, size_t *len, char *err, size_t errcap)
{
    if (!tm_keyring_usable(r, now)) {
        tm_reasonf(err, errcap, "no valid attestation key (the last rotation failed)");
        return TM_PROV_EFORMAT;
    }
    return tm_prov_key_evidence_over(r->cur, rd, out, cap, len, err, errcap);
}

int tm_keyring_busy(const tm_keyring *r) { return r && r->job != NULL; }
uint64_t tm_keyring_not_after(const tm_keyring *r) { return r && r->cur ? r->cur->not_after : 0; }
uint32_t tm_keyring_lifetime(const tm_keyring *r) { return r ? r->lifetime : 0; }

static void adopt(tm_keyring *r, tm_prov_key *k, char *note, size_t notecap)
{
    tm_prov_key_free(r->cur);
    r->cur = k;
    r->retry_at = 0;
    uint8_t h[32];
    char hx[17] = "?", t[32];
    if (EVP_Digest(k->spki, k->spki_len, h, NULL, EVP_sha256(), NULL) == 1)
        tm_hex_encode(h, 8, hx);
    tm_time_format((time_t)k->not_after, t, sizeof t);
    tm_reasonf(note, notecap, "new %s attestation key %s..., valid until %s",
               tm_format_name(k->format), hx, t);
}

static void failed(tm_keyring *r, time_t now, const char *why, char *note, size_t notecap)
{
    uint32_t back = r->lifetime / 8;
    r->retry_at = now + (back > 60 ? 60 : back ? back : 1);
    char t[32];
    tm_time_format((time_t)r->cur->not_after, t, sizeof t);
    tm_reasonf(note, notecap, "attestation key rotation failed (retrying; the current key ends %s): %s",
               t, why);
}

#ifdef TM_KEYRING_THREADS
static void *worker_main(void *arg)
{
    job *j = arg;
    j->result = tm_provider_key_new(j->prov, j->format, j->not_after, j->err, sizeof j->err);
    atomic_store(&j->done, true);
    return NULL;
}

/* 1 started, 0 not now (provider lent elsewhere), -1 no thread */
static int start_worker(tm_keyring *r, uint64_t not_after)
{
    if (!tm_provider_lend(r->prov))
        return 0;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        tm_provider_return(r->prov);
        return -1;
    }
    j->prov = r->prov;
    j->format = r->format;
    j->not_after = not_after;
    atomic_init(&j->done, false);
    if (pthread_create(&j->th, NULL, worker_main, j) != 0) {
        free(j);
        tm_provider_return(r->prov);
        return -1;
    }
    r->job = j;
    return 1;
}
#endif

int tm_keyring_tick(tm_keyring *r, time_t now, char *note, size_t notecap)
{
    if (!r)
        return 0;
#ifdef TM_KEYRING_THREADS
    if (r->job) {
        if (!atomic_load(&r->job->done))
            return 0;
        pthread_join(r->job->th, NULL);
        tm_provider_return(r->prov);
        job *j = r->job;
        r->job = NULL;
        int rc;
        if (j->result) {
            adopt(r, j->result, note, notecap);
            j->result = NULL;
            rc = 1;
        } else {
            failed(r, now, j->err, note, notecap);
            rc = -1;
        }
        job_free(j);
        return rc;
    }
#endif
    /* renew when a quarter of the lifetime is left */
    uint64_t renew_at = r->cur->not_after - r->lifetime / 4;
    if (now < 0 || (uint64_t)now < renew_at || now < r->retry_at)
        return 0;
    uint64_t not_after = (uint64_t)now + r->lifetime;
#ifdef TM_KEYRING_THREADS
    if (r->worker) {
        int s = start_worker(r, not_after);
        if (s == 1) {
            tm_reasonf(note, notecap, "rotating the %s attestation key (its quote in a worker thread)",
                       tm_format_name(r->format));
            return 2;
        }
        if (s == 0)
            return 0;   /* someone else has the provider: next tick */
        /* no thread: make it here, like a build without threads */
    }
#endif
    char why[256] = "";
    tm_prov_key *k = tm_provider_key_new(r->prov, r->format, not_after, why, sizeof why);
    if (!k) {
        failed(r, now, why, note, notecap);
        return -1;
    }
    adopt(r, k, note, notecap);
    return 1;
}
