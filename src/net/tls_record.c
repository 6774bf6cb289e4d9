/*
 * tls_record.c — the TLS 1.3 record layer after the handshake (tls_record.h).
 *
 * Owns: record protection (RFC 8446 section 5: AEAD with nonce = iv XOR
 * sequence number and the record header as additional data), the key
 * schedule's last step (section 7.3: key and iv from a traffic secret,
 * section 7.2: the next traffic secret for KeyUpdate, both HKDF-Expand-Label
 * through OpenSSL's TLS13-KDF), and the post-handshake messages a server
 * must take from a client (KeyUpdate only; section 4.6.3).
 *
 * Invariants:
 *  - `in` is NULL, a partial record (plain == false; its header is checked
 *    as soon as it is complete, so `need` is the record's true size), or
 *    decrypted bytes waiting (plain == true, never empty);
 *  - `out` is NULL or holds unsent ciphertext, whole records except for
 *    what the socket already took of its first one; when a write returned
 *    -2 or a count short of its input, held_plain is the plaintext length of
 *    the last application data record in it, reported written on the retry;
 *  - after F_FAILED nothing is read or sealed any more (only the queued
 *    alert may still leave), after F_SENT_CLOSE nothing more is sealed (TCP
 *    may be half-closed: no KeyUpdate answer, no alert);
 *  - the thread's cipher context for (suite, direction) holds the key of
 *    the connection in `keyed`, or of none; freeing or re-keying a
 *    connection clears its entries (and wipes the key schedule).
 */
#include "net/tls_record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "net/loop.h"

#define HDR 5
#define TAG 16
#define IVLEN 12
#define HS_KEY_UPDATE 24

typedef struct suite_def {
    uint16_t id;
    const char *cipher, *md;
    uint8_t key_len, hash_len;
} suite_def;

static const suite_def suites[] = {
    {0x1301, "AES-128-GCM", "SHA256", 16, 32},
    {0x1302, "AES-256-GCM", "SHA384", 32, 48},
    {0x1303, "ChaCha20-Poly1305", "SHA256", 32, 32},
};
#define N_SUITES (sizeof suites / sizeof suites[0])

enum { RX = 0, TX = 1 };

enum {
    F_CLOSED = 1,       /* close_notify received */
    F_FAILED = 2,       /* a fatal error: nothing more is read or sealed */
    F_SENT_CLOSE = 4,   /* our close_notify is queued or sent */
    F_KU_LAST = 8,      /* `out` ends with our KeyUpdate: another request needs no other */
};

typedef struct inbuf {
    uint32_t len, need, pos;     /* partial: data[0..len) of need; plain: data[pos..len) */
    bool plain;
    uint8_t data[];
} inbuf;

typedef struct outbuf {
    uint32_t len, pos;           /* data[pos..len) not sent yet */
    uint8_t data[];
} outbuf;

struct tm_tlsrec {
    uint64_t seq[2];
    inbuf *in;
    outbuf *out;
    uint32_t held_plain;
    uint8_t suite;               /* index into suites[] */
    uint8_t flags;
    uint8_t hs_len;              /* bytes of a post-handshake message header gathered */
    uint8_t hs[4];
    uint8_t keys[];              /* RX then TX: secret (hash_len), key (key_len), iv */
};

/* ---- per-thread cipher contexts ----------------------------------------------- */

/* A few contexts per suite and direction, each holding one connection's key
 * (least recently used goes first). One context per suite and direction would
 * be re-keyed for nearly every record when records of several connections
 * alternate (a fan-out); in the WebAssembly build a re-key is a new context in
 * the host (tmqtt_crypto: allocation, key schedule, a random handle tag), which
 * made AES-GCM records cost more than ChaCha20's there. A context per
 * connection would cost memory per idle connection; a few per thread do not. */
#define TM_TLSREC_CTXS 16

typedef struct thread_state {
    EVP_CIPHER_CTX *ctx[N_SUITES][2][TM_TLSREC_CTXS];
    const tm_tlsrec *keyed[N_SUITES][2][TM_TLSREC_CTXS];
    uint32_t last_use[N_SUITES][2][TM_TLSREC_CTXS];
    uint32_t clock;
    uint8_t scratch[TM_TLSREC_MAX_PLAIN + TM_TLSREC_OVERHEAD];   /* one sealed record */
} thread_state;

#ifdef __wasi__
#define TM_THREAD_LOCAL   /* the module has one thread */
#else
#define TM_THREAD_LOCAL _Thread_local
#endif
static TM_THREAD_LOCAL thread_state *g_ts;

static thread_state *ts(void)
{
    if (!g_ts)
        g_ts = calloc(1, sizeof *g_ts);
    return g_ts;
}

void tm_tlsrec_thread_cleanup(void)
{
    if (!g_ts)
        return;
    for (size_t i = 0; i < N_SUITES; i++)
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < TM_TLSREC_CTXS; k++)
                EVP_CIPHER_CTX_free(g_ts->ctx[i][d][k]);
    OPENSSL_cleanse(g_ts->scratch, sizeof g_ts->scratch);
    free(g_ts);
    g_ts = NULL;
}

static const suite_def *S(const tm_tlsrec *r) { return &suites[r->suite]; }
static size_t dir_size(const suite_def *s) { return (size_t)s->hash_len + s->key_len + IVLEN; }
static uint8_t *secret_of(tm_tlsrec *r, int d) { return r->keys + (size_t)d * dir_size(S(r)); }
static uint8_t *key_of(tm_tlsrec *r, int d) { return secret_of(r, d) + S(r)->hash_len; }
static uint8_t *iv_of(tm_tlsrec *r, int d) { return key_of(r, d) + S(r)->key_len; }

/* A thread's context for r's suite and direction d, holding r's current key:
 * the one that holds it already, else an unused one, else the least recently
 * used, re-keyed. NULL when out of memory. */
static EVP_CIPHER_CTX *cipher_for(tm_tlsrec *r, int d)
{
    thread_state *t = ts();
    if (!t)
        return NULL;
    EVP_CIPHER_CTX **ctx = t->ctx[r->suite][d];
    const tm_tlsrec **keyed = t->keyed[r->suite][d];
    uint32_t *last = t->last_use[r->suite][d];
    int pick = 0;   /* an unkeyed context if there is one, else the least recently used */
    for (int k = 0; k < TM_TLSREC_CTXS; k++) {
        if (keyed[k] == r) {
            last[k] = ++t->clock;
            return ctx[k];
        }
        if (keyed[pick] && (!keyed[k] || last[k] < last[pick]))
            pick = k;
    }
    if (!ctx[pick]) {
        EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, S(r)->cipher, NULL);
        ctx[pick] = ci ? EVP_CIPHER_CTX_new() : NULL;
        if (ctx[pick] && !EVP_CipherInit_ex2(ctx[pick], ci, NULL, NULL, d == TX, NULL)) {
            EVP_CIPHER_CTX_free(ctx[pick]);
            ctx[pick] = NULL;
        }
        EVP_CIPHER_free(ci);
        if (!ctx[pick])
            return NULL;
    }
    keyed[pick] = NULL;
    if (!EVP_CipherInit_ex2(ctx[pick], NULL, key_of(r, d), NULL, d == TX, NULL))
        return NULL;
    keyed[pick] = r;
    last[pick] = ++t->clock;
    return ctx[pick];
}

/* r's key leaves the thread's contexts for direction d (replaced by zeros). */
static void forget_key(const tm_tlsrec *r, int d)
{
    static const uint8_t zero[32];
    if (!g_ts)
        return;
    for (int k = 0; k < TM_TLSREC_CTXS; k++) {
        if (g_ts->keyed[r->suite][d][k] != r)
            continue;
        g_ts->keyed[r->suite][d][k] = NULL;
        if (!EVP_CipherInit_ex2(g_ts->ctx[r->suite][d][k], NULL, zero, NULL, d == TX, NULL))
            ERR_clear_error();
    }
}

/* ---- key schedule ----------------------------------------------------------------- */

static int suite_index(uint16_t id)
{
    for (size_t i = 0; i < N_SUITES; i++)
        if (suites[i].id == id)
            return (int)i;
    return -1;
}

bool tm_tlsrec_suite_supported(uint16_t suite) { return suite_index(suite) >= 0; }

size_t tm_tlsrec_secret_len(uint16_t suite)
{
    int i = suite_index(suite);
    return i < 0 ? 0 : suites[i].hash_len;
}

/* HKDF-Expand-Label(secret, label, "", outlen) of RFC 8446 section 7.1. */
static int expand(const suite_def *s, const uint8_t *secret, const char *label, uint8_t *out,
                  size_t outlen)
{
    static const char prefix[] = "tls13 ";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_3_KDF, NULL);
    EVP_KDF_CTX *k = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->md, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, s->hash_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
                                          sizeof prefix - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    int ok = k && EVP_KDF_derive(k, out, outlen, p) > 0;
    EVP_KDF_CTX_free(k);
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

/* Direction d from `secret` on: its key and iv, sequence number 0. */
static int install(tm_tlsrec *r, int d, const uint8_t *secret)
{
    const suite_def *s = S(r);
    uint8_t key[32], iv[IVLEN];
    int rc = expand(s, secret, "key", key, s->key_len) == 0 &&
                     expand(s, secret, "iv", iv, IVLEN) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        forget_key(r, d);
        memmove(secret_of(r, d), secret, s->hash_len);
        memcpy(key_of(r, d), key, s->key_len);
        memcpy(iv_of(r, d), iv, IVLEN);
        r->seq[d] = 0;
    }
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(iv, sizeof iv);
    return rc;
}

/* application_traffic_secret_N+1 (RFC 8446 section 7.2) for direction d. */
static int next_key(tm_tlsrec *r, int d)
{
    uint8_t next[TM_TLSREC_MAX_SECRET];
    int rc = expand(S(r), secret_of(r, d), "traffic upd", next, S(r)->hash_len);
    if (rc == 0)
        rc = install(r, d, next);
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

tm_tlsrec *tm_tlsrec_new(uint16_t suite, const uint8_t *rx_secret, const uint8_t *tx_secret,
                         size_t secret_len, char *err, size_t errcap)
{
    int i = suite_index(suite);
    if (i < 0 || secret_len != suites[i].hash_len) {
        snprintf(err, errcap, i < 0 ? "cipher suite 0x%04x is not one of the record layer's"
                                    : "traffic secrets of the wrong length for suite 0x%04x",
                 suite);
        return NULL;
    }
    tm_tlsrec *r = calloc(1, sizeof *r + 2 * dir_size(&suites[i]));
    if (!r) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    r->suite = (uint8_t)i;
    if (install(r, RX, rx_secret) < 0 || install(r, TX, tx_secret) < 0) {
        tm_tlsrec_free(r);
        snprintf(err, errcap, "cannot derive the traffic keys (TLS13-KDF)");
        return NULL;
    }
    return r;
}

void tm_tlsrec_free(tm_tlsrec *r)
{
    if (!r)
        return;
    forget_key(r, RX);
    forget_key(r, TX);
    if (r->in)
        OPENSSL_cleanse(r->in->data, r->in->len);
    free(r->in);
    free(r->out);
    OPENSSL_cleanse(r, sizeof *r + 2 * dir_size(S(r)));
    free(r);
}

/* ---- records ------------------------------------------------------------------------ */

static void nonce_of(tm_tlsrec *r, int d, uint8_t out[IVLEN])
{
    memcpy(out, iv_of(r, d), IVLEN);
    for (int i = 0; i < 8; i++)
        out[IVLEN - 1 - i] ^= (uint8_t)(r->seq[d] >> (8 * i));
}

/* One record of ours (n <= 2^14 bytes of content of `type`) into out, which
 * has room for n + TM_TLSREC_OVERHEAD: its length, or -1. */
static long seal(tm_tlsrec *r, uint8_t type, const void *in, size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *c;
    if (n > TM_TLSREC_MAX_PLAIN || r->seq[TX] == UINT64_MAX || !(c = cipher_for(r, TX)))
        return -1;
    size_t clen = n + 1 + TAG;
    uint8_t nonce[IVLEN];
    nonce_of(r, TX, nonce);
    out[0] = TM_TLS_CT_APPLICATION_DATA;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(clen >> 8);
    out[4] = (uint8_t)clen;
    int l1 = 0, l2 = 1, l3 = 0, l;
#ifdef __wasi__
    /* The content and its type in place, in one update: the WebAssembly build's
     * host cipher provider (platform/wasi_crypto_prov.c) takes one data update
     * per nonce. Natively the content is encrypted straight from `in` (no copy). */
    if (n)
        memmove(out + HDR, in, n);
    out[HDR + n] = type;
    int ok = EVP_CipherInit_ex2(c, NULL, NULL, nonce, 1, NULL) &&
             EVP_CipherUpdate(c, NULL, &l, out, HDR) &&
             EVP_CipherUpdate(c, out + HDR, &l1, out + HDR, (int)n + 1) &&
             EVP_CipherFinal_ex(c, out + HDR + n + 1, &l3);
    l1--;
#else
    int ok = EVP_CipherInit_ex2(c, NULL, NULL, nonce, 1, NULL) &&
             EVP_CipherUpdate(c, NULL, &l, out, HDR) &&
             (n == 0 || EVP_CipherUpdate(c, out + HDR, &l1, in, (int)n)) &&
             EVP_CipherUpdate(c, out + HDR + n, &l2, &type, 1) &&
             EVP_CipherFinal_ex(c, out + HDR + n + 1, &l3);
#endif
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG, out + HDR + n + 1) > 0 &&
         (size_t)l1 == n && l2 == 1 && l3 == 0;
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    r->seq[TX]++;
    return (long)(HDR + clen);
}

/* Room for n more bytes at the end of `out` (what was sent is dropped). */
static uint8_t *out_grow(tm_tlsrec *r, size_t n)
{
    outbuf *o = r->out;
    size_t unsent = o ? o->len - o->pos : 0;
    outbuf *no = malloc(sizeof *no + unsent + n);
    if (!no)
        return NULL;
    if (o)
        memcpy(no->data, o->data + o->pos, unsent);
    no->pos = 0;
    no->len = (uint32_t)unsent;
    free(o);
    r->out = no;
    return no->data + unsent;
}

/* Seals one record of ours at the end of `out`. */
static int queue(tm_tlsrec *r, uint8_t type, const uint8_t *p, size_t n)
{
    uint8_t *dst = out_grow(r, n + TM_TLSREC_OVERHEAD);
    long l = dst ? seal(r, type, p, n, dst) : -1;
    if (l < 0)
        return -1;
    r->out->len += (uint32_t)l;
    r->flags &= ~F_KU_LAST;
    return 0;
}

static int queue_alert(tm_tlsrec *r, uint8_t desc)
{
    /* level: warning for close_notify, fatal for the others (OpenSSL's choice) */
    const uint8_t a[2] = {desc == TM_TLS_AD_CLOSE_NOTIFY ? 1 : 2, desc};
    return queue(r, TM_TLS_CT_ALERT, a, sizeof a);
}

/* A fatal error: the reason in err, `alert` queued (-1: none, the peer's
 * own fatal alert ended it). Returns -1. */
static long fail(tm_tlsrec *r, int alert, char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static long fail(tm_tlsrec *r, int alert, char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    if (!(r->flags & F_FAILED)) {
        /* best effort: the error stands anyway; nothing after our close_notify
         * (TCP may be half-closed already) */
        if (alert >= 0 && !(r->flags & F_SENT_CLOSE))
            queue_alert(r, (uint8_t)alert);
        r->flags |= F_FAILED;
    }
    return -1;
}

/* Sends what waits: 1 all of it (or nothing waited), 0 would block, -1 I/O failed. */
static int flush(tm_tlsrec *r, const tm_tlsrec_io *io)
{
    while (r->out) {
        outbuf *o = r->out;
        long w = io->write(io->arg, o->data + o->pos, o->len - o->pos);
        if (w == -2 || w == 0)
            return 0;
        if (w < 0)
            return -1;
        o->pos += (uint32_t)w;
        if (o->pos == o->len) {
            free(o);
            r->out = NULL;
            r->flags &= ~F_KU_LAST;
        }
    }
    return 1;
}

static const char *outer_type_name(uint8_t t)
{
    switch (t) {
    case TM_TLS_CT_CHANGE_CIPHER_SPEC: return "change_cipher_spec";
    case TM_TLS_CT_ALERT: return "unprotected alert";
    case TM_TLS_CT_HANDSHAKE: return "unprotected handshake";
    default: return "unknown";
    }
}

/* Checks a record header: the ciphertext length, or -1 (fatal). */
static long check_header(tm_tlsrec *r, const uint8_t *h, char *err, size_t errcap)
{
    unsigned version = (unsigned)h[1] << 8 | h[2];
    size_t len = (size_t)h[3] << 8 | h[4];
    if (h[0] != TM_TLS_CT_APPLICATION_DATA)
        return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                    "%s record (type %u) after the handshake (unexpected_message)",
                    outer_type_name(h[0]), h[0]);
    if (version != 0x0303)
        return fail(r, TM_TLS_AD_DECODE_ERROR, err, errcap,
                    "record with legacy_record_version 0x%04x, not 0x0303 (decode_error)",
                    version);
    if (len > TM_TLSREC_MAX_CIPHER)
        return fail(r, TM_TLS_AD_RECORD_OVERFLOW, err, errcap,
                    "record of %zu bytes, more than 2^14 + 256 (record_overflow)", len);
    if (len < TAG)
        return fail(r, TM_TLS_AD_BAD_RECORD_MAC, err, errcap,
                    "record of %zu bytes, too short for its authentication tag "
                    "(bad_record_mac)", len);
    return (long)len;
}

/* Decrypts the record at rec (header and len bytes) in place: its content
 * type, with the content at rec + HDR, *plen bytes; -1 (fatal). */
static int open_record(tm_tlsrec *r, uint8_t *rec, size_t len, size_t *plen, char *err,
                       size_t errcap)
{
    size_t n = len - TAG;
    EVP_CIPHER_CTX *c = r->seq[RX] == UINT64_MAX ? NULL : cipher_for(r, RX);
    if (!c)
        return (int)fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                         "no cipher context for the record (out of memory)");
    uint8_t nonce[IVLEN];
    nonce_of(r, RX, nonce);
    int l1 = 0, l2 = 0, l;
    int ok = EVP_CipherInit_ex2(c, NULL, NULL, nonce, 0, NULL) &&
             EVP_CipherUpdate(c, NULL, &l, rec, HDR) &&
             /* the tag before the data: the host cipher provider wants it so */
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, TAG, rec + HDR + n) > 0 &&
             (n == 0 || EVP_CipherUpdate(c, rec + HDR, &l1, rec + HDR, (int)n)) &&
             EVP_CipherFinal_ex(c, rec + HDR + n, &l2) > 0 && (size_t)l1 == n && l2 == 0;
    if (!ok) {
        ERR_clear_error();
        return (int)fail(r, TM_TLS_AD_BAD_RECORD_MAC, err, errcap,
                         "record %llu failed authentication (bad_record_mac)",
                         (unsigned long long)r->seq[RX]);
    }
    r->seq[RX]++;
    if (n > TM_TLSREC_MAX_PLAIN + 1)
        return (int)fail(r, TM_TLS_AD_RECORD_OVERFLOW, err, errcap,
                         "TLSInnerPlaintext of %zu bytes, more than 2^14 + 1 (record_overflow)",
                         n);
    while (n && rec[HDR + n - 1] == 0)   /* padding (RFC 8446 section 5.4) */
        n--;
    if (n == 0)
        return (int)fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                         "record without a content type (all zeros; unexpected_message)");
    *plen = n - 1;
    return rec[HDR + n - 1];
}

static const char *hs_name(uint8_t t)
{
    switch (t) {
    case 1: return "ClientHello";
    case 4: return "NewSessionTicket";
    case 5: return "EndOfEarlyData";
    case 11: return "Certificate";
    case 13: return "CertificateRequest";
    case 15: return "CertificateVerify";
    case 20: return "Finished";
    default: return "unknown";
    }
}

/* Records sealed under one key before we move to the next on our own:
 * RFC 8446 section 5.5 allows about 2^24.5 full-size records per AES-GCM key
 * (ChaCha20-Poly1305 more); the peer may never ask. */
#define REKEY_AFTER (1ull << 24)
static uint64_t rekey_after = REKEY_AFTER;

void tm_tlsrec_set_rekey_interval(uint64_t records)
{
    rekey_after = records ? records : REKEY_AFTER;
}

/* Our KeyUpdate (update_not_requested) queued under the current key, then
 * the next sending key. */
static int send_key_update(tm_tlsrec *r)
{
    static const uint8_t ku[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
    if (queue(r, TM_TLS_CT_HANDSHAKE, ku, sizeof ku) < 0 || next_key(r, TX) < 0)
        return -1;
    r->flags |= F_KU_LAST;
    return 0;
}

/* RFC 8446 section 4.6.3: the peer's sending key moves on; answer a request
 * with our own KeyUpdate (unless one of ours is still the last thing queued:
 * it precedes any application data we send next, as the request wants). */
static long key_update(tm_tlsrec *r, uint8_t request, char *err, size_t errcap)
{
    if (request > 1)
        return fail(r, TM_TLS_AD_ILLEGAL_PARAMETER, err, errcap,
                    "KeyUpdate with request_update %u (illegal_parameter)", request);
    if (next_key(r, RX) < 0)
        return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                    "cannot derive the peer's next traffic key");
    /* after our close_notify nothing more is sent (TCP may be half-closed) */
    if (request == 1 && !(r->flags & (F_KU_LAST | F_SENT_CLOSE)) && send_key_update(r) < 0)
        return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                    "cannot answer the peer's KeyUpdate");
    return 0;
}

/* The bytes of a handshake record: post-handshake messages, possibly split
 * over several records. A server takes KeyUpdate only (no tickets come
 * from a client; post-handshake authentication is not enabled). */
static long handshake_bytes(tm_tlsrec *r, const uint8_t *p, size_t n, char *err, size_t errcap)
{
    for (size_t i = 0; i < n; i++) {
        if (r->hs_len < 4) {
            r->hs[r->hs_len++] = p[i];
            if (r->hs_len == 1 && p[i] != HS_KEY_UPDATE)
                return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                            "post-handshake %s message (type %u; only KeyUpdate is accepted: "
                            "unexpected_message)", hs_name(p[i]), p[i]);
            if (r->hs_len == 4 && (r->hs[1] || r->hs[2] || r->hs[3] != 1))
                return fail(r, TM_TLS_AD_DECODE_ERROR, err, errcap,
                            "KeyUpdate of %u bytes, not 1 (decode_error)",
                            (unsigned)r->hs[1] << 16 | (unsigned)r->hs[2] << 8 | r->hs[3]);
            continue;
        }
        r->hs_len = 0;
        /* the key changes at a record boundary (RFC 8446 section 5.1) */
        if (i + 1 != n)
            return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                        "KeyUpdate not at the end of its record (unexpected_message)");
        return key_update(r, p[i], err, errcap);
    }
    return 0;
}

/* An opened record's content: application data is left to the caller (its
 * length returned), the rest is handled here (0). -1 fatal. */
static long handle(tm_tlsrec *r, int type, const uint8_t *p, size_t n, char *err, size_t errcap)
{
    if (r->hs_len && type != TM_TLS_CT_HANDSHAKE)
        return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                    "record of type %d inside a split handshake message (unexpected_message)",
                    type);
    switch (type) {
    case TM_TLS_CT_APPLICATION_DATA:
        return (long)n;
    case TM_TLS_CT_ALERT:
        if (n != 2)
            return fail(r, TM_TLS_AD_DECODE_ERROR, err, errcap,
                        "alert record of %zu bytes, not 2 (decode_error)", n);
        if (p[1] == TM_TLS_AD_CLOSE_NOTIFY) {
            r->flags |= F_CLOSED;
            return 0;
        }
        if (p[1] == TM_TLS_AD_USER_CANCELED)   /* a warning; close_notify follows */
            return 0;
        return fail(r, -1, err, errcap, "the peer sent a fatal alert: %s (%u)",
                    SSL_alert_desc_string_long(p[1]), p[1]);
    case TM_TLS_CT_HANDSHAKE:
        if (n == 0)
            return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                        "empty handshake record (unexpected_message)");
        return handshake_bytes(r, p, n, err, errcap);
    default:
        return fail(r, TM_TLS_AD_UNEXPECTED_MESSAGE, err, errcap,
                    "protected record of content type %d after the handshake "
                    "(unexpected_message)", type);
    }
}

/* Keeps the start of a record that did not arrive whole. */
static int stash(tm_tlsrec *r, const uint8_t *p, size_t have, size_t need)
{
    inbuf *in = malloc(sizeof *in + need);
    if (!in)
        return -1;
    memcpy(in->data, p, have);
    in->len = (uint32_t)have;
    in->need = (uint32_t)need;
    in->pos = 0;
    in->plain = false;
    r->in = in;
    return 0;
}

/* Opens the whole records of buf[0..n) in place, their plaintext compacted
 * to buf[0..); a record cut at the end goes to `in`. Plaintext bytes or -1. */
static long open_in_place(tm_tlsrec *r, uint8_t *buf, size_t n, char *err, size_t errcap)
{
    size_t pos = 0, out = 0;
    while (pos < n && !(r->flags & F_CLOSED)) {
        uint8_t *rec = buf + pos;
        size_t avail = n - pos;
        long len = avail >= HDR ? check_header(r, rec, err, errcap) : 0;
        if (len < 0)
            return -1;
        if (avail < HDR || avail < HDR + (size_t)len) {
            if (stash(r, rec, avail, avail < HDR ? HDR : HDR + (size_t)len) < 0)
                return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                            "out of memory for a partial record");
            break;
        }
        size_t plen;
        int type = open_record(r, rec, (size_t)len, &plen, err, errcap);
        long k = type < 0 ? -1 : handle(r, type, rec + HDR, plen, err, errcap);
        if (k < 0)
            return -1;
        memmove(buf + out, rec + HDR, (size_t)k);
        out += (size_t)k;
        pos += HDR + (size_t)len;
    }
    return (long)out;
}

/* Where the rest of a partial record goes, and how much of it is missing
 * (the rest of its header first); 0 when there is none. */
static size_t partial_room(tm_tlsrec *r, uint8_t **dst)
{
    inbuf *in = r->in;
    if (!in || in->plain)
        return 0;
    *dst = in->data + in->len;
    return in->need - in->len;
}

/* k bytes arrived at the partial record: once whole, it is opened and its
 * plaintext given to out (cap bytes), the rest kept. Plaintext bytes or -1. */
static long partial_add(tm_tlsrec *r, size_t k, uint8_t *out, size_t cap, char *err,
                        size_t errcap)
{
    inbuf *in = r->in;
    in->len += (uint32_t)k;
    if (in->len < in->need)
        return 0;
    if (in->need == HDR) {
        long len = check_header(r, in->data, err, errcap);
        if (len < 0)
            return -1;
        inbuf *g = realloc(in, sizeof *in + HDR + (size_t)len);
        if (!g)
            return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                        "out of memory for a partial record");
        r->in = in = g;
        in->need = HDR + (uint32_t)len;
        return 0;   /* len >= TAG: the body is still to come */
    }
    size_t plen;
    int type = open_record(r, in->data, in->need - HDR, &plen, err, errcap);
    long c = type < 0 ? -1 : handle(r, type, in->data + HDR, plen, err, errcap);
    if (c < 0)
        return -1;
    size_t give = (size_t)c < cap ? (size_t)c : cap;
    memcpy(out, in->data + HDR, give);
    if (give < (size_t)c) {
        in->plain = true;
        in->pos = HDR + (uint32_t)give;
        in->len = HDR + (uint32_t)c;
    } else {
        free(in);
        r->in = NULL;
    }
    return (long)give;
}

/* Decrypted bytes kept from an earlier call. */
static size_t take(tm_tlsrec *r, uint8_t *out, size_t cap)
{
    inbuf *in = r->in;
    if (!in || !in->plain)
        return 0;
    size_t k = in->len - in->pos < cap ? in->len - in->pos : cap;
    memcpy(out, in->data + in->pos, k);
    in->pos += (uint32_t)k;
    if (in->pos == in->len) {
        free(in);
        r->in = NULL;
    }
    return k;
}

long tm_tlsrec_read(tm_tlsrec *r, const tm_tlsrec_io *io, void *vbuf, size_t n, unsigned *want,
                    char *err, size_t errcap)
{
    uint8_t *buf = vbuf;
    if (errcap)
        err[0] = 0;
    if (r->flags & F_FAILED) {
        snprintf(err, errcap, "the TLS connection failed earlier");
        return -1;
    }
    /* a KeyUpdate answer may still wait for the socket */
    if (r->out && flush(r, io) < 0)
        return -1;
    size_t got = take(r, buf, n);
    if (got == n || (r->flags & F_CLOSED))
        return (long)got;
    for (;;) {
        uint8_t *dst = NULL;
        size_t need = partial_room(r, &dst);
        size_t ask = need ? need : n - got;
        long k = io->read(io->arg, need ? dst : buf + got, ask);
        if (k == -2) {
            if (got)
                return (long)got;
            *want = TM_EV_READ | (r->out ? TM_EV_WRITE : 0);
            return -2;
        }
        if (k < 0)
            return got ? (long)got : -1;
        if (k == 0) {
            /* end of stream without close_notify; again on the next call */
            if (need && !got)
                return fail(r, -1, err, errcap,
                            "the connection closed in the middle of a TLS record");
            return (long)got;
        }
        long p = need ? partial_add(r, (size_t)k, buf + got, n - got, err, errcap)
                      : open_in_place(r, buf + got, (size_t)k, err, errcap);
        if (p < 0) {
            flush(r, io);   /* the alert, as far as the socket takes it now */
            return -1;
        }
        got += (size_t)p;
        if (r->out && flush(r, io) < 0)
            return got ? (long)got : -1;
        if ((r->flags & F_CLOSED) || got == n)
            return (long)got;
        /* the socket had no more, or too little room is left to be worth a read */
        if (got && ((!need && (size_t)k < ask) || n - got < 64))
            return (long)got;
    }
}

/* ---- writing ------------------------------------------------------------------------- */

long tm_tlsrec_write(tm_tlsrec *r, const tm_tlsrec_io *io, const void *vbuf, size_t n,
                     unsigned *want, char *err, size_t errcap)
{
    const uint8_t *buf = vbuf;
    if (errcap)
        err[0] = 0;
    if (r->flags & (F_FAILED | F_SENT_CLOSE)) {
        snprintf(err, errcap, r->flags & F_FAILED ? "the TLS connection failed earlier"
                                                  : "write after close_notify");
        return -1;
    }
    int f = flush(r, io);
    if (f < 0)
        return -1;
    if (f == 0) {
        *want = TM_EV_WRITE;
        return -2;
    }
    if (n == 0)
        return 0;
    if (r->held_plain) {
        /* the retry of a write whose last record has now left */
        size_t k = r->held_plain;
        if (n < k)
            return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                        "write retried with %zu bytes, fewer than the %zu of the record "
                        "already sent", n, k);
        r->held_plain = 0;
        return (long)k;
    }
    thread_state *t = ts();
    if (!t)
        return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap, "out of memory");
    size_t sent = 0;
    while (sent < n) {
        if (r->seq[TX] >= rekey_after) {
            if (send_key_update(r) < 0)
                return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap,
                            "cannot move to the next sending key");
            int fl = flush(r, io);
            if (fl < 0)
                return sent ? (long)sent : -1;
            if (fl == 0)
                break;   /* the KeyUpdate first; this record on the retry */
        }
        size_t chunk = n - sent < TM_TLSREC_MAX_PLAIN ? n - sent : TM_TLSREC_MAX_PLAIN;
        long c = seal(r, TM_TLS_CT_APPLICATION_DATA, buf + sent, chunk, t->scratch);
        if (c < 0)
            return fail(r, TM_TLS_AD_INTERNAL_ERROR, err, errcap, "cannot seal a record");
        long w = io->write(io->arg, t->scratch, (size_t)c);
        if (w == c) {
            sent += chunk;
            continue;
        }
        if (w == -1)
            return sent ? (long)sent : -1;
        size_t took = w > 0 ? (size_t)w : 0;
        uint8_t *dst = out_grow(r, (size_t)c - took);
        if (!dst)
            return fail(r, -1, err, errcap, "out of memory for output");
        memcpy(dst, t->scratch + took, (size_t)c - took);
        r->out->len += (uint32_t)((size_t)c - took);
        r->flags &= ~F_KU_LAST;
        r->held_plain = (uint32_t)chunk;
        break;
    }
    if (sent)
        return (long)sent;
    *want = TM_EV_WRITE;
    return -2;
}

int tm_tlsrec_shutdown(tm_tlsrec *r, const tm_tlsrec_io *io, unsigned *want)
{
    if (r->flags & F_FAILED)
        return -1;
    if (!(r->flags & F_SENT_CLOSE)) {
        if (queue_alert(r, TM_TLS_AD_CLOSE_NOTIFY) < 0)
            return -1;
        r->flags |= F_SENT_CLOSE;
    }
    int f = flush(r, io);
    if (f == 0)
        *want = TM_EV_WRITE;
    return f;
}

bool tm_tlsrec_pending(const tm_tlsrec *r) { return r->in && r->in->plain; }
bool tm_tlsrec_closed(const tm_tlsrec *r) { return r->flags & F_CLOSED; }
bool tm_tlsrec_failed(const tm_tlsrec *r) { return r->flags & F_FAILED; }

size_t tm_tlsrec_buffered(const tm_tlsrec *r)
{
    return (r->in ? sizeof *r->in + r->in->need : 0) +
           (r->out ? sizeof *r->out + r->out->len : 0);
}
