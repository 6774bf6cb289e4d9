/*
 * atls.c — attested TLS 1.3, protocol v2 (attested-tls.md) on stock OpenSSL 3.
 *
 * Owns: the AttestationRequest / AttestationEvidence codecs, the single
 * SSL_CTX_add_custom_ext registration (ClientHello, EncryptedExtensions,
 * CertificateRequest, Certificate; TLS 1.3 only) used by both roles, the
 * keylog callback that turns OpenSSL's SERVER_HANDSHAKE_TRAFFIC_SECRET line
 * into the key-schedule binder, the per-SSL state those callbacks share, and
 * the client- and server-side appraisal that turns evidence into tm_claims.
 *
 * Flow (server attestation): client setup hook draws a nonce -> ClientHello
 * add callback sends the request -> server ClientHello parse callback stores
 * it -> (both sides) the keylog callback receives the server handshake
 * traffic secret, derives the binder and wipes the secret -> server
 * EncryptedExtensions add callback binds (nonce, binder, own key share from
 * SSL_get_tmp_key, SPKI of its certificate), asks the provider and turns
 * session tickets off -> client EE parse callback checks syntax, stores the
 * evidence and the server key share (SSL_get_peer_tmp_key) -> after the
 * handshake, when the certificate is known, the client's verify hook
 * recomputes the binding and calls tm_verify.
 * Mutual: server CertificateRequest add callback sends its own request ->
 * client CR parse stores it -> client Certificate add callback (leaf entry)
 * answers with the same binder -> server Certificate parse callback appraises
 * at once (the leaf certificate is handed to the callback) and fails the
 * handshake with access_denied on refusal.
 *
 * Invariants: add callbacks return 0 (send nothing) in every context where the
 * spec sends nothing; every buffer handed to OpenSSL is malloc'd here and
 * freed by ext_free; peer bytes are only read through the bounds-checked
 * decoders; a claim is exposed only after tm_verify returned OK. The traffic
 * secret never leaves the keylog callback's stack (cleansed before it
 * returns); the binder derived from it is kept in the SSL's ex_data only until
 * the evidence that needs it was produced or checked, then cleansed (and on
 * free). Connections on which evidence was sent or required issue no session
 * tickets; an attesting client offers no resumption PSK.
 */
#include "attest/atls.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "attest/attest_int.h"
#include "attest/evidence.h"
#include "attest/keyatt.h"
#include "attest/keyring.h"
#include "attest/verify.h"

#define ATLS_CONTEXTS                                                                     \
    (SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS |  \
     SSL_EXT_TLS1_3_CERTIFICATE_REQUEST | SSL_EXT_TLS1_3_CERTIFICATE)
#define ATLS_OUT_CAP 65535
#define ATLS_RECENT 8
#define ATLS_MAX_OWN 16          /* formats one side may produce */

/* What a verifier asks for by default, most preferred first: for each real
 * TEE the key-attested format (one signature per handshake) before the direct
 * one (a quote for this nonce); sim last. Filtered by the policy. */
static const uint16_t default_request[] = {
    TM_FMT_SGX_DCAP_KEY, TM_FMT_TDX_DCAP_KEY, TM_FMT_SEV_SNP_KEY, TM_FMT_SGX_DCAP,
    TM_FMT_TDX_DCAP,     TM_FMT_SEV_SNP,      TM_FMT_SIM_KEY,     TM_FMT_SIM,
};
#define N_DEFAULT_REQUEST (sizeof default_request / sizeof default_request[0])

/* ---- codecs ------------------------------------------------------------- */

size_t tm_atls_request_encode(const tm_atls_request *r, uint8_t *out, size_t cap)
{
    if (!r || r->n_formats == 0 || r->n_formats > TM_ATLS_MAX_FORMATS)
        return 0;
    size_t n = 1 + 32 + 1 + 2 * r->n_formats;
    if (n > cap)
        return 0;
    out[0] = r->version;
    memcpy(out + 1, r->nonce, 32);
    out[33] = (uint8_t)(2 * r->n_formats);
    for (size_t i = 0; i < r->n_formats; i++) {
        out[34 + 2 * i] = (uint8_t)(r->formats[i] >> 8);
        out[35 + 2 * i] = (uint8_t)r->formats[i];
    }
    return n;
}

int tm_atls_request_decode(const uint8_t *in, size_t len, tm_atls_request *r)
{
    memset(r, 0, sizeof *r);
    if (!in || len < 1 + 32 + 1)
        return TM_ATLS_DEC_MALFORMED;
    size_t fl = in[33];
    /* formats<2..2^8-2>: non-empty, whole uint16s, nothing after the list */
    if (fl < 2 || fl % 2 || 34 + fl != len)
        return TM_ATLS_DEC_MALFORMED;
    r->version = in[0];
    if (r->version != TM_ATLS_VERSION)
        return TM_ATLS_DEC_VERSION;
    memcpy(r->nonce, in + 1, 32);
    r->n_formats = fl / 2;
    for (size_t i = 0; i < r->n_formats; i++)
        r->formats[i] = (uint16_t)(in[34 + 2 * i] << 8 | in[35 + 2 * i]);
    return TM_ATLS_DEC_OK;
}

size_t tm_atls_answer_encode(uint16_t format, const uint8_t *evidence, size_t len, uint8_t *out,
                             size_t cap)
{
    if (!evidence || len == 0 || len > TM_ATLS_MAX_EVIDENCE || 5 + len > cap)
        return 0;
    out[0] = TM_ATLS_VERSION;
    out[1] = (uint8_t)(format >> 8);
    out[2] = (uint8_t)format;
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    memcpy(out + 5, evidence, len);
    return 5 + len;
}

int tm_atls_answer_decode(const uint8_t *in, size_t len, tm_atls_answer *a)
{
    memset(a, 0, sizeof *a);
    if (!in || len < 5 + 1)
        return TM_ATLS_DEC_MALFORMED;
    size_t el = (size_t)in[3] << 8 | in[4];
    if (el == 0 || 5 + el != len)
        return TM_ATLS_DEC_MALFORMED;
    a->version = in[0];
    a->format = (uint16_t)(in[1] << 8 | in[2]);
    a->evidence = in + 5;
    a->evidence_len = el;
    return a->version == TM_ATLS_VERSION ? TM_ATLS_DEC_OK : TM_ATLS_DEC_VERSION;
}

int tm_atls_spki_hash(X509 *x, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
    if (n <= 0)
        return -1;
    SHA256(der, (size_t)n, out);
    OPENSSL_free(der);
    return 0;
}

int tm_atls_encoded_key(EVP_PKEY *k, uint8_t **out, size_t *len)
{
    unsigned char *p = NULL;
    size_t n = k ? EVP_PKEY_get1_encoded_public_key(k, &p) : 0;
    if (n == 0 || !p)
        return -1;
    *out = malloc(n);
    if (!*out) {
        OPENSSL_free(p);
        return -1;
    }
    memcpy(*out, p, n);
    *len = n;
    OPENSSL_free(p);
    return 0;
}

int tm_atls_expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
                         const char *label, uint8_t *out, size_t out_len)
{
    /* struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel,
     * label = "tls13 " + label, context = "" (RFC 8446 section 7.1) */
    static const char prefix[] = "tls13 ";
    size_t ll = label ? strlen(label) : 0;
    uint8_t info[2 + 1 + 255 + 1];
    if (!md || !secret || secret_len == 0 || secret_len > INT32_MAX || !out || out_len == 0 ||
        out_len > 0xFFFF || ll == 0 || sizeof prefix - 1 + ll > 255)
        return -1;
    size_t n = 0;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(sizeof prefix - 1 + ll);
    memcpy(info + n, prefix, sizeof prefix - 1);
    n += sizeof prefix - 1;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;   /* empty context */
    size_t got = out_len;
    EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    int ok = k && EVP_PKEY_derive_init(k) > 0 && EVP_PKEY_CTX_set_hkdf_md(k, md) > 0 &&
             EVP_PKEY_CTX_set_hkdf_mode(k, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) > 0 &&
             EVP_PKEY_CTX_set1_hkdf_key(k, secret, (int)secret_len) > 0 &&
             EVP_PKEY_CTX_add1_hkdf_info(k, info, (int)n) > 0 &&
             EVP_PKEY_derive(k, out, &got) > 0 && got == out_len;
    EVP_PKEY_CTX_free(k);
    return ok ? 0 : -1;
}

int tm_atls_binder(const EVP_MD *md, const uint8_t *shts, size_t shts_len, uint8_t *out,
                   size_t *out_len)
{
    int hl = md ? EVP_MD_get_size(md) : 0;
    if (hl < TM_ATLS_BINDER_MIN || hl > TM_ATLS_BINDER_MAX || shts_len != (size_t)hl)
        return -1;
    if (tm_atls_expand_label(md, shts, shts_len, TM_ATLS_BINDER_LABEL, out, (size_t)hl) < 0)
        return -1;
    *out_len = (size_t)hl;
    return 0;
}

/* ---- configuration objects ------------------------------------------------ */

static int parse_formats(const char *list, uint16_t *out, size_t cap, size_t *n, char *err,
                         size_t errcap)
{
    *n = 0;
    const char *s = list;
    while (s && *s) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s)
            break;
        size_t l = strcspn(s, ", ");
        char name[32];
        if (l >= sizeof name) {
            snprintf(err, errcap, "unknown evidence format '%.*s'", (int)l, s);
            return -1;
        }
        memcpy(name, s, l);
        name[l] = 0;
        uint16_t f;
        if (tm_format_from_name(name, &f) < 0) {
            snprintf(err, errcap, "unknown evidence format '%s' (" TM_FORMAT_NAMES ")", name);
            return -1;
        }
        if (*n < cap)
            out[(*n)++] = f;
        s += l;
    }
    return 0;
}

/* What one side can answer with: a provider for direct formats, and a
 * keyring (attestation key) for the +key format of its platform. */
typedef struct producer {
    tm_provider *provider;       /* NULL: never answers */
    uint16_t formats[ATLS_MAX_OWN];   /* what we may send, provider order */
    size_t n_formats;
    tm_keyring *ring;            /* made when a +key format is allowed */
    uint32_t key_lifetime;
} producer;

struct tm_atls_server {
    int refs;
    producer own;
    bool require_client;
    tm_policy *client_policy;
    tm_verify_cache *cache;      /* client +key evidence appraised (mutual) */
};

struct tm_atls_client {
    int refs;
    bool require;
    tm_policy *policy;
    uint16_t formats[ATLS_MAX_OWN];
    size_t n_formats;
    FILE *show;
    bool show_json;
    producer own;                /* own evidence for mutual attestation */
    tm_verify_cache *cache;      /* the server's +key evidence appraised */
    /* bindings of recent handshakes, to name a replay when we see one */
    uint8_t recent[ATLS_RECENT][64];
    unsigned n_recent;
};

/* Fills p->formats with what `prov` can produce, restricted to `list` (names,
 * NULL: every direct format of the provider; +key formats only when listed),
 * and makes the keyring when a +key format is allowed (the first key: one
 * quote now). `what` names the setting in messages. */
static int producer_init(producer *p, tm_provider *prov, const char *list, uint32_t key_lifetime,
                         bool worker, const char *what, char *err, size_t errcap)
{
    p->provider = prov;
    p->key_lifetime = key_lifetime;
    uint16_t pf[8];
    size_t np = tm_provider_formats(prov, pf, 8);
    if (np > 8)
        np = 8;
    uint16_t want[ATLS_MAX_OWN];
    size_t nw = 0;
    if (list && *list && parse_formats(list, want, ATLS_MAX_OWN, &nw, err, errcap) < 0)
        return -1;
    uint16_t key_platform = 0;
    for (size_t i = 0; i < np; i++)
        for (int key = 0; key < 2; key++) {
            uint16_t f = key ? (uint16_t)(pf[i] | TM_FMT_KEY_FLAG) : pf[i];
            bool ok = nw == 0 && !key;
            for (size_t k = 0; k < nw; k++)
                ok |= want[k] == f;
            if (!ok || p->n_formats == ATLS_MAX_OWN)
                continue;
            p->formats[p->n_formats++] = f;
            if (key && !key_platform)
                key_platform = pf[i];
        }
    if (p->n_formats == 0) {
        snprintf(err, errcap, "attestation_provider %s produces none of the %s '%s'",
                 tm_provider_name(prov), what, list ? list : "");
        return -1;
    }
    if (key_platform) {
        tm_keyring_opts ko = {.provider = prov, .format = key_platform,
                              .lifetime_s = key_lifetime, .worker = worker};
        char kerr[300] = "";
        p->ring = tm_keyring_new(&ko, time(NULL), kerr, sizeof kerr);
        if (!p->ring) {
            snprintf(err, errcap, "%s+key: %s", tm_format_name(key_platform), kerr);
            return -1;
        }
    }
    return 0;
}

static void producer_free(producer *p)
{
    tm_keyring_free(p->ring);   /* joins a running rotation before the provider goes */
    tm_provider_close(p->provider);
    memset(p, 0, sizeof *p);
}

tm_atls_server *tm_atls_server_new(const tm_atls_server_opts *o, char *err, size_t errcap)
{
    tm_atls_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    s->refs = 1;
    s->require_client = o->require_client;
    const char *pname = o->provider && *o->provider ? o->provider : "none";
    if (strcmp(pname, "none")) {
        char perr[256] = "";
        tm_provider *prov = tm_provider_open(pname, o->provider_opts, perr, sizeof perr);
        if (!prov) {
            snprintf(err, errcap, "attestation_provider %s: %s", pname, perr);
            goto fail;
        }
        if (producer_init(&s->own, prov, o->formats, o->key_lifetime, o->key_worker,
                          "attestation_formats", err, errcap) < 0) {
            if (!s->own.provider)
                tm_provider_close(prov);
            goto fail;
        }
    }
    if (s->require_client) {
        if (!(s->cache = tm_verify_cache_new())) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        s->client_policy = tm_policy_new();
        if (!s->client_policy) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        if (o->client_policy && *o->client_policy) {
            char perr[512] = "";
            if (tm_policy_load(s->client_policy, o->client_policy, perr, sizeof perr) < 0) {
                snprintf(err, errcap, "client_attestation_policy: %s", perr);
                goto fail;
            }
        }
    }
    return s;
fail:
    tm_atls_server_free(s);
    return NULL;
}

void tm_atls_server_free(tm_atls_server *s)
{
    if (!s || --s->refs > 0)
        return;
    producer_free(&s->own);
    tm_policy_free(s->client_policy);
    tm_verify_cache_free(s->cache);
    free(s);
}

tm_atls_server *tm_atls_server_ref(tm_atls_server *s)
{
    if (s)
        s->refs++;
    return s;
}

int tm_atls_server_refresh(tm_atls_server *s, char *err, size_t errcap)
{
    if (!s || !s->client_policy)
        return 0;
    return tm_policy_refresh(&s->client_policy, err, errcap);
}

const tm_policy *tm_atls_server_client_policy(const tm_atls_server *s)
{
    return s ? s->client_policy : NULL;
}

bool tm_atls_server_requires_client(const tm_atls_server *s)
{
    return s && s->require_client;
}

int tm_atls_server_tick(tm_atls_server *s, time_t now, char *note, size_t notecap)
{
    if (note && notecap)
        note[0] = 0;
    return s && s->own.ring ? tm_keyring_tick(s->own.ring, now, note, notecap) : 0;
}

tm_atls_client *tm_atls_client_new(const tm_atls_client_opts *o, char *err, size_t errcap)
{
    tm_atls_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->require = o->require;
    c->show = o->show;
    c->show_json = o->show_json;
    c->policy = tm_policy_new();
    if (!c->policy) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    if (o->policy_file && *o->policy_file) {
        char perr[512] = "";
        if (tm_policy_load(c->policy, o->policy_file, perr, sizeof perr) < 0) {
            snprintf(err, errcap, "attestation policy: %s", perr);
            goto fail;
        }
    }
    if (!(c->cache = tm_verify_cache_new())) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    if (o->formats && *o->formats) {
        if (parse_formats(o->formats, c->formats, ATLS_MAX_OWN, &c->n_formats, err, errcap) < 0)
            goto fail;
    } else {
        /* Real TEEs first; sim last (the default policy refuses it anyway). */
        for (size_t i = 0; i < N_DEFAULT_REQUEST; i++)
            if (tm_policy_format_allowed(c->policy, default_request[i]))
                c->formats[c->n_formats++] = default_request[i];
    }
    if (c->n_formats == 0) {
        snprintf(err, errcap, "no evidence format left to request (check --attest-format and the "
                              "policy's format lines)");
        goto fail;
    }
    if (o->provider && *o->provider && strcmp(o->provider, "none")) {
        char perr[256] = "";
        tm_provider *prov = tm_provider_open(o->provider, o->provider_opts, perr, sizeof perr);
        if (!prov) {
            snprintf(err, errcap, "attestation provider %s: %s", o->provider, perr);
            goto fail;
        }
        /* a client rotates its key synchronously (keyring.h) */
        if (producer_init(&c->own, prov, o->own_formats, o->key_lifetime, false,
                          "own attestation formats", err, errcap) < 0) {
            if (!c->own.provider)
                tm_provider_close(prov);
            goto fail;
        }
    }
    return c;
fail:
    tm_atls_client_free(c);
    return NULL;
}

void tm_atls_client_free(tm_atls_client *c)
{
    if (!c || --c->refs > 0)
        return;
    tm_policy_free(c->policy);
    producer_free(&c->own);
    tm_verify_cache_free(c->cache);
    free(c);
}

tm_policy *tm_atls_client_policy(tm_atls_client *c) { return c ? c->policy : NULL; }

/* ---- per-connection state ---------------------------------------------------- */

typedef struct atls_conn {
    tm_atls_client *ccfg;        /* client role: configuration (one reference) */
    /* client role: our request and the server's answer */
    uint8_t nonce[32];
    bool request_sent;
    bool answered;
    uint16_t format;
    uint8_t *evidence;
    size_t evidence_len;
    uint8_t *peer_share;         /* server key share seen in EncryptedExtensions */
    size_t peer_share_len;
    /* client role: the server's request in CertificateRequest */
    bool cr_received;
    tm_atls_request cr;
    /* server role */
    bool ch_request;
    tm_atls_request ch;
    bool evidence_sent;
    uint16_t sent_format;
    bool cr_sent;
    uint8_t cr_nonce[32];
    uint8_t *own_share;          /* our key share, captured when sending CR */
    size_t own_share_len;
    int client_result;           /* 1 ok, -1 refused, 0 nothing received */
    /* both roles: this handshake's key-schedule binder (keylog callback) */
    uint8_t binder[TM_ATLS_BINDER_MAX];
    size_t binder_len;           /* 0: not derived, or wiped after use */
    bool binder_used;            /* wiped after use (vs never derived) */
    char binder_err[160];        /* why it could not be derived */
    /* both roles */
    bool appraised;              /* claims valid */
    tm_claims claims;
    char reason[320];
} atls_conn;

static int ssl_idx = -1, ctx_idx = -1, kl_idx = -1;
static tm_atls_test_hook_fn test_hook;
static void *test_hook_arg;

void tm_atls_set_test_hook(tm_atls_test_hook_fn fn, void *arg)
{
    test_hook = fn;
    test_hook_arg = arg;
}

static void conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    atls_conn *st = ptr;
    if (!st)
        return;
    tm_atls_client_free(st->ccfg);
    free(st->evidence);
    free(st->peer_share);
    free(st->own_share);
    OPENSSL_cleanse(st, sizeof *st);   /* the binder with the rest */
    free(st);
}

/* SSL_CTX ex_data: the keylog callback that was installed before ours. */
typedef struct keylog_chain {
    SSL_CTX_keylog_cb_func prev;
} keylog_chain;

static void kl_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp)
{
    free(ptr);
}

static void ctx_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                        void *argp)
{
    tm_atls_server_free(ptr);
}

static int init_indexes(void)
{
    /* The broker is single-threaded and every entry point that registers the
     * extension calls this first, before any handshake. */
    if (ssl_idx < 0)
        ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free_cb);
    if (ctx_idx < 0)
        ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_free_cb);
    if (kl_idx < 0)
        kl_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, kl_free_cb);
    return ssl_idx >= 0 && ctx_idx >= 0 && kl_idx >= 0 ? 0 : -1;
}

static atls_conn *conn_get(const SSL *s)
{
    return ssl_idx < 0 ? NULL : SSL_get_ex_data(s, ssl_idx);
}

static atls_conn *conn_make(SSL *s)
{
    atls_conn *st = conn_get(s);
    if (st)
        return st;
    if (ssl_idx < 0 || !(st = calloc(1, sizeof *st)))
        return NULL;
    if (!SSL_set_ex_data(s, ssl_idx, st)) {
        free(st);
        return NULL;
    }
    return st;
}

static void reasonf(atls_conn *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reasonf(atls_conn *st, const char *fmt, ...)
{
    if (!st)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->reason, sizeof st->reason, fmt, ap);
    va_end(ap);
}

const tm_atls_server *tm_atls_server_of(const SSL *ssl)
{
    return ctx_idx < 0 ? NULL : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
}

const char *tm_atls_reason(const SSL *ssl)
{
    atls_conn *st = conn_get(ssl);
    return st ? st->reason : "";
}

size_t tm_atls_binder_held(const SSL *ssl)
{
    atls_conn *st = conn_get(ssl);
    return st ? st->binder_len : 0;
}

const tm_claims *tm_atls_peer_claims(const SSL *ssl)
{
    atls_conn *st = conn_get(ssl);
    return st && st->appraised ? &st->claims : NULL;
}

int tm_atls_server_client_result(const SSL *ssl, tm_claims *out)
{
    atls_conn *st = conn_get(ssl);
    if (!st)
        return 0;
    if (st->client_result == 1 && out)
        *out = st->claims;
    return st->client_result;
}

int tm_atls_server_sent(const SSL *ssl, uint16_t *format)
{
    atls_conn *st = conn_get(ssl);
    if (!st || !st->evidence_sent)
        return 0;
    if (format)
        *format = st->sent_format;
    return 1;
}

static void format_list(const uint16_t *f, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        const char *nm = tm_format_name(f[i]);
        int w = nm ? snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", nm)
                   : snprintf(buf + o, cap - o, "%s0x%04x", i ? ", " : "", f[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
}

/* ---- the key-schedule binder (keylog callback) -------------------------------- */

#define KL_SHTS "SERVER_HANDSHAKE_TRAFFIC_SECRET "

static void binder_wipe(atls_conn *st)
{
    OPENSSL_cleanse(st->binder, sizeof st->binder);
    if (st->binder_len)
        st->binder_used = true;
    st->binder_len = 0;
}

/* 0 when st->binder holds this handshake's binder, else -1 with the reason
 * (and an internal_error alert when `al` is given). */
static int binder_ready(atls_conn *st, int *al)
{
    if (st->binder_len)
        return 0;
    if (st->binder_err[0])
        reasonf(st, "no key-schedule binder for this handshake: %s", st->binder_err);
    else if (st->binder_used)
        reasonf(st, "the key-schedule binder of this handshake was already used and wiped");
    else
        reasonf(st, "no key-schedule binder for this handshake: OpenSSL never passed the server "
                    "handshake traffic secret to the attestation keylog callback (a keylog "
                    "callback installed after the extension must chain to the previous one)");
    if (al)
        *al = SSL_AD_INTERNAL_ERROR;
    return -1;
}

/* The state of a connection that will need the binder, else NULL. A listener
 * that requires client evidence needs it even when the ClientHello asked for
 * nothing (the keylog line precedes the CertificateRequest callback). */
static atls_conn *binder_wanted(SSL *s)
{
    atls_conn *st = conn_get(s);
    if (!SSL_is_server(s))
        return st && st->ccfg ? st : NULL;
    const tm_atls_server *srv = tm_atls_server_of(s);
    if (!srv)
        return NULL;
    if (srv->require_client)
        return conn_make(s);
    return st && st->ch_request && srv->own.provider ? st : NULL;
}

/* `p` is "<client_random hex> <secret hex>" of the SERVER_HANDSHAKE_TRAFFIC_SECRET
 * line. Derives the binder with the hash of the negotiated suite; the secret
 * itself is cleansed before returning. */
static void take_secret(SSL *s, atls_conn *st, const char *p)
{
    const SSL_CIPHER *c = SSL_get_pending_cipher(s);
    if (!c)
        c = SSL_get_current_cipher(s);
    const EVP_MD *md = c ? SSL_CIPHER_get_handshake_digest(c) : NULL;
    int hl = md ? EVP_MD_get_size(md) : 0;
    uint8_t cr[32], want[32], secret[TM_ATLS_BINDER_MAX];
    size_t pl = strlen(p);
    binder_wipe(st);
    st->binder_used = false;
    st->binder_err[0] = 0;
    if (hl < TM_ATLS_BINDER_MIN || hl > TM_ATLS_BINDER_MAX) {
        snprintf(st->binder_err, sizeof st->binder_err,
                 "the negotiated cipher suite has no usable handshake hash");
    } else if (pl != 64 + 1 + 2 * (size_t)hl || p[64] != ' ' ||
               tm_hex_decode(p, 64, cr, sizeof cr) != 32 ||
               tm_hex_decode(p + 65, 2 * (size_t)hl, secret, sizeof secret) != hl) {
        snprintf(st->binder_err, sizeof st->binder_err,
                 "unexpected SERVER_HANDSHAKE_TRAFFIC_SECRET key log line from OpenSSL");
    } else if (SSL_get_client_random(s, want, sizeof want) != sizeof want ||
               CRYPTO_memcmp(cr, want, sizeof want) != 0) {
        snprintf(st->binder_err, sizeof st->binder_err,
                 "the key log line names another handshake (client random differs)");
    } else if (tm_atls_binder(md, secret, (size_t)hl, st->binder, &st->binder_len) < 0) {
        st->binder_len = 0;
        snprintf(st->binder_err, sizeof st->binder_err,
                 "HKDF-Expand-Label of the handshake traffic secret failed");
    }
    OPENSSL_cleanse(secret, sizeof secret);
}

static void atls_keylog(const SSL *ssl, const char *line)
{
    if (strncmp(line, KL_SHTS, sizeof KL_SHTS - 1) == 0) {
        /* OpenSSL hands keylog callbacks the SSL it is driving as const;
         * only our own ex_data on it is written. */
        SSL *s = (SSL *)ssl;
        atls_conn *st = binder_wanted(s);
        if (st)
            take_secret(s, st, line + sizeof KL_SHTS - 1);
    }
    /* the user's own key logging (SSLKEYLOGFILE) sees every line, ours included */
    keylog_chain *kc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), kl_idx);
    if (kc && kc->prev)
        kc->prev(ssl, line);
}

/* Installs atls_keylog on `ctx`, keeping the callback found there (if any) to
 * call after ours. Once per context, so that we never chain to ourselves. */
static int keylog_install(SSL_CTX *ctx, char *err, size_t errcap)
{
    if (SSL_CTX_get_ex_data(ctx, kl_idx))
        return 0;
    keylog_chain *kc = calloc(1, sizeof *kc);
    if (!kc || !SSL_CTX_set_ex_data(ctx, kl_idx, kc)) {
        free(kc);
        snprintf(err, errcap, "cannot attach the key log chain to the TLS context");
        return -1;
    }
    SSL_CTX_keylog_cb_func cur = SSL_CTX_get_keylog_callback(ctx);
    kc->prev = cur == atls_keylog ? NULL : cur;
    SSL_CTX_set_keylog_callback(ctx, atls_keylog);
    return 0;
}

/* ---- building what we send ---------------------------------------------------- */

/* Hands `buf` (ATLS_OUT_CAP bytes, n used) to OpenSSL after the test hook. */
static int emit(SSL *s, unsigned context, uint8_t *buf, size_t n, const unsigned char **out,
                size_t *outlen)
{
    if (test_hook)
        test_hook(s, context, buf, &n, ATLS_OUT_CAP, test_hook_arg);
    if (n == 0) {
        free(buf);
        return 0;
    }
    *out = buf;
    *outlen = n;
    return 1;
}

/* The format to answer `req` with: the requester's preference wins among
 * what `p` may produce. A +key format counts only while the attestation key
 * is valid (a failed rotation is not transient); a direct format counts even
 * while the provider is lent to a key rotation (that is: wait). 0: none. */
static uint16_t choose_format(const producer *p, const tm_atls_request *req, time_t now)
{
    for (size_t i = 0; i < req->n_formats; i++)
        for (size_t k = 0; k < p->n_formats; k++)
            if (req->formats[i] == p->formats[k] &&
                (!tm_format_is_keyatt(p->formats[k]) || tm_keyring_usable(p->ring, now)))
                return p->formats[k];
    return 0;
}

/* 1 when answering `req` now would need the provider while it is lent. */
static bool must_wait(const producer *p, const tm_atls_request *req, time_t now)
{
    uint16_t f = choose_format(p, req, now);
    return f && !tm_format_is_keyatt(f) && tm_provider_lent(p->provider);
}

/* Evidence over the binding for `role` (with this handshake's binder), into a
 * fresh ATLS_OUT_CAP buffer as an AttestationEvidence body. 1 built, 0 no
 * usable format, -1 error (reason set). */
static int build_answer(atls_conn *st, producer *p, const tm_atls_request *req, tm_atls_role role,
                        const uint8_t *share, size_t share_len, const uint8_t *spki_hash,
                        uint8_t **buf, size_t *n, uint16_t *chosen)
{
    time_t now = time(NULL);
    uint16_t fmt = choose_format(p, req, now);
    if (!fmt)
        return 0;
    if (must_wait(p, req, now)) {
        /* the client-hello callback holds such handshakes back; without it
         * (a client's own evidence) the provider is never lent */
        reasonf(st, "attestation provider %s is busy with a key rotation",
                tm_provider_name(p->provider));
        return -1;
    }
    if (binder_ready(st, NULL) < 0)
        return -1;
    uint8_t rd[TM_REPORT_DATA_LEN];
    if (tm_atls_binding(role, req->nonce, st->binder, st->binder_len, share, share_len, spki_hash,
                        rd) < 0) {
        reasonf(st, "cannot compute the attestation binding");
        return -1;
    }
    uint8_t *b = malloc(ATLS_OUT_CAP);
    if (!b) {
        reasonf(st, "out of memory");
        return -1;
    }
    size_t evlen = 0;
    char perr[200] = "";
    int rc = tm_format_is_keyatt(fmt)
                 ? tm_keyring_evidence(p->ring, now, rd, b + 5, TM_ATLS_MAX_EVIDENCE, &evlen, perr,
                                       sizeof perr)
                 : tm_provider_collect(p->provider, fmt, rd, b + 5, TM_ATLS_MAX_EVIDENCE, &evlen,
                                       perr, sizeof perr);
    if (rc != TM_PROV_OK || evlen == 0 || evlen > TM_ATLS_MAX_EVIDENCE) {
        reasonf(st, "attestation provider %s failed for %s: %s", tm_provider_name(p->provider),
                tm_format_name(fmt), rc == TM_PROV_ESPACE ? "evidence larger than 65530 bytes" : perr);
        free(b);
        return -1;
    }
    b[0] = TM_ATLS_VERSION;
    b[1] = (uint8_t)(fmt >> 8);
    b[2] = (uint8_t)fmt;
    b[3] = (uint8_t)(evlen >> 8);
    b[4] = (uint8_t)evlen;
    *buf = b;
    *n = 5 + evlen;
    *chosen = fmt;
    return 1;
}

/* Our own (server) or the peer's (client) ephemeral key share, encoded. */
static int key_share(SSL *s, bool own, uint8_t **out, size_t *len)
{
    EVP_PKEY *k = NULL;
    long ok = own ? SSL_get_tmp_key(s, &k) : SSL_get_peer_tmp_key(s, &k);
    if (!ok || !k)
        return -1;
    int r = tm_atls_encoded_key(k, out, len);
    EVP_PKEY_free(k);
    return r;
}

static int server_add(SSL *s, tm_atls_server *srv, atls_conn *st, unsigned context,
                      const unsigned char **out, size_t *outlen, int *al)
{
    if (context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS) {
        if (!st->ch_request || !srv || !srv->own.provider)
            return 0;
        uint8_t *share = NULL, *buf = NULL;
        size_t share_len = 0, n = 0;
        if (key_share(s, true, &share, &share_len) < 0) {
            /* psk_ke without (EC)DHE: nothing to bind the evidence to */
            reasonf(st, "attestation requested on a handshake without (EC)DHE key share "
                        "(psk_ke only): refused");
            *al = SSL_AD_HANDSHAKE_FAILURE;
            return -1;
        }
        uint8_t spki[32];
        const uint8_t *sp = NULL;
        X509 *cert = SSL_session_reused(s) ? NULL : SSL_get_certificate(s);
        if (cert) {
            if (tm_atls_spki_hash(cert, spki) < 0) {
                free(share);
                reasonf(st, "cannot hash the certificate's public key");
                *al = SSL_AD_INTERNAL_ERROR;
                return -1;
            }
            sp = spki;
        }
        uint16_t fmt = 0;
        int r = build_answer(st, &srv->own, &st->ch, TM_ATLS_SERVER, share, share_len, sp, &buf,
                             &n, &fmt);
        free(share);
        if (!srv->require_client)
            binder_wipe(st);   /* nothing else of this handshake needs it */
        if (r < 0) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        if (r == 0)
            return 0;   /* none of the client's formats: omit, the client decides */
        st->evidence_sent = true;
        st->sent_format = fmt;
        /* evidence is per handshake: a resumed session would carry no proof.
         * (OpenSSL reads num_tickets after the client's Finished, so setting
         * it here takes effect for this connection.) */
        SSL_set_num_tickets(s, 0);
        return emit(s, context, buf, n, out, outlen);
    }
    if (context == SSL_EXT_TLS1_3_CERTIFICATE_REQUEST) {
        if (!srv || !srv->require_client)
            return 0;
        tm_atls_request req;
        memset(&req, 0, sizeof req);
        req.version = TM_ATLS_VERSION;
        if (RAND_bytes(req.nonce, sizeof req.nonce) != 1) {
            reasonf(st, "no randomness for the attestation nonce");
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        /* every format our verifier knows and the policy accepts, +key first */
        for (size_t i = 0; i < N_DEFAULT_REQUEST; i++)
            if (tm_policy_format_allowed(srv->client_policy, default_request[i]))
                req.formats[req.n_formats++] = default_request[i];
        free(st->own_share);
        st->own_share = NULL;
        if (req.n_formats == 0 || key_share(s, true, &st->own_share, &st->own_share_len) < 0) {
            reasonf(st, req.n_formats ? "client attestation needs an (EC)DHE handshake"
                                      : "client_attestation_policy accepts no format");
            *al = SSL_AD_HANDSHAKE_FAILURE;
            return -1;
        }
        uint8_t *buf = malloc(ATLS_OUT_CAP);
        if (!buf) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        size_t n = tm_atls_request_encode(&req, buf, ATLS_OUT_CAP);
        memcpy(st->cr_nonce, req.nonce, 32);
        st->cr_sent = true;
        SSL_set_num_tickets(s, 0);   /* client evidence required: no resumption */
        st->cr = req;   /* what we offered, for the format check on the answer */
        return emit(s, context, buf, n, out, outlen);
    }
    return 0;   /* our own Certificate, ClientHello (not ours to send): nothing */
}

static int client_add(SSL *s, atls_conn *st, unsigned context, X509 *x, size_t chainidx,
                      const unsigned char **out, size_t *outlen, int *al)
{
    if (!st || !st->ccfg)
        return 0;   /* a plain client sharing the context: no request */
    tm_atls_client *cc = st->ccfg;
    if (context == SSL_EXT_CLIENT_HELLO) {
        tm_atls_request req;
        memset(&req, 0, sizeof req);
        req.version = TM_ATLS_VERSION;
        memcpy(req.nonce, st->nonce, 32);
        req.n_formats = cc->n_formats;
        memcpy(req.formats, cc->formats, cc->n_formats * sizeof req.formats[0]);
        uint8_t *buf = malloc(ATLS_OUT_CAP);
        if (!buf) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        size_t n = tm_atls_request_encode(&req, buf, ATLS_OUT_CAP);
        st->request_sent = true;
        return emit(s, context, buf, n, out, outlen);
    }
    if (context == SSL_EXT_TLS1_3_CERTIFICATE) {
        /* our Certificate: answer the server's request in the leaf entry only */
        if (!st->cr_received || chainidx != 0 || !x || !cc->own.provider)
            return 0;
        uint8_t *share = NULL, *buf = NULL;
        size_t share_len = 0, n = 0;
        uint8_t spki[32];
        if (key_share(s, false, &share, &share_len) < 0 || tm_atls_spki_hash(x, spki) < 0) {
            free(share);
            reasonf(st, "cannot bind client evidence: no server key share or certificate key");
            *al = SSL_AD_HANDSHAKE_FAILURE;
            return -1;
        }
        uint16_t fmt = 0;
        if (cc->own.ring) {
            /* a client has no worker: a due rotation is made here, one quote */
            char note[300] = "";
            tm_keyring_tick(cc->own.ring, time(NULL), note, sizeof note);
        }
        int r = build_answer(st, &cc->own, &st->cr, TM_ATLS_CLIENT, share, share_len, spki, &buf,
                             &n, &fmt);
        free(share);
        if (r < 0) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        if (r == 0)
            return 0;
        return emit(s, context, buf, n, out, outlen);
    }
    return 0;
}

static int ext_add(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char **out,
                   size_t *outlen, X509 *x, size_t chainidx, int *al, void *add_arg)
{
    if (SSL_is_server(s)) {
        atls_conn *st = conn_make(s);
        if (!st) {
            *al = SSL_AD_INTERNAL_ERROR;
            return -1;
        }
        return server_add(s, add_arg, st, context, out, outlen, al);
    }
    return client_add(s, conn_get(s), context, x, chainidx, out, outlen, al);
}

static void ext_free(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char *out,
                     void *add_arg)
{
    free((void *)out);
}

/* ---- parsing what we receive ------------------------------------------------ */

static bool offered(const uint16_t *f, size_t n, uint16_t fmt)
{
    for (size_t i = 0; i < n; i++)
        if (f[i] == fmt)
            return true;
    return false;
}

static int server_parse(SSL *s, tm_atls_server *srv, atls_conn *st, unsigned context,
                        const unsigned char *in, size_t inlen, X509 *x, size_t chainidx, int *al)
{
    if (context == SSL_EXT_CLIENT_HELLO) {
        int r = tm_atls_request_decode(in, inlen, &st->ch);
        if (r == TM_ATLS_DEC_MALFORMED) {
            reasonf(st, "malformed AttestationRequest in ClientHello (%zu bytes)", inlen);
            *al = SSL_AD_DECODE_ERROR;
            return 0;
        }
        /* a future version we do not speak: answer nothing, as for unknown formats */
        st->ch_request = r == TM_ATLS_DEC_OK;
        return 1;
    }
    if (context == SSL_EXT_TLS1_3_CERTIFICATE) {
        if (!st->cr_sent) {
            reasonf(st, "client sent attestation evidence that was not requested");
            *al = SSL_AD_UNSUPPORTED_EXTENSION;
            return 0;
        }
        if (chainidx != 0 || !x) {
            reasonf(st, "client attestation evidence outside the leaf certificate entry");
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        tm_atls_answer a;
        int r = tm_atls_answer_decode(in, inlen, &a);
        if (r != TM_ATLS_DEC_OK) {
            reasonf(st, "malformed client AttestationEvidence (%zu bytes)", inlen);
            st->client_result = -1;
            *al = r == TM_ATLS_DEC_MALFORMED ? SSL_AD_DECODE_ERROR : SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        if (!offered(st->cr.formats, st->cr.n_formats, a.format)) {
            reasonf(st, "client evidence in format 0x%04x which was not requested", a.format);
            st->client_result = -1;
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        if (binder_ready(st, al) < 0) {
            st->client_result = -1;
            return 0;
        }
        uint8_t spki[32], rd[TM_REPORT_DATA_LEN];
        int br = !st->own_share || tm_atls_spki_hash(x, spki) < 0
                     ? -1
                     : tm_atls_binding(TM_ATLS_CLIENT, st->cr_nonce, st->binder, st->binder_len,
                                       st->own_share, st->own_share_len, spki, rd);
        binder_wipe(st);   /* the last use of this handshake's binder on our side */
        if (br < 0) {
            reasonf(st, "cannot compute the client attestation binding");
            st->client_result = -1;
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        char why[256] = "";
        int vr = tm_verify_cached(srv ? srv->cache : NULL, a.format, a.evidence, a.evidence_len, rd,
                                  srv ? srv->client_policy : NULL, time(NULL), &st->claims, why,
                                  sizeof why);
        if (vr != TM_VERIFY_OK) {
            reasonf(st, "client attestation refused (%s): %s", tm_verify_strerror(vr), why);
            st->client_result = -1;
            *al = SSL_AD_ACCESS_DENIED;
            return 0;
        }
        st->appraised = true;
        st->client_result = 1;
        return 1;
    }
    reasonf(st, "attestation extension in an unexpected message");
    *al = SSL_AD_UNSUPPORTED_EXTENSION;
    return 0;
}

static int client_parse(SSL *s, atls_conn *st, unsigned context, const unsigned char *in,
                        size_t inlen, size_t chainidx, int *al)
{
    if (context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS) {
        if (!st || !st->request_sent) {
            reasonf(st, "server sent attestation evidence that was not requested");
            *al = SSL_AD_UNSUPPORTED_EXTENSION;
            return 0;
        }
        tm_atls_answer a;
        int r = tm_atls_answer_decode(in, inlen, &a);
        if (r != TM_ATLS_DEC_OK) {
            reasonf(st, r == TM_ATLS_DEC_VERSION
                            ? "server AttestationEvidence has unsupported version %u"
                            : "malformed AttestationEvidence from the server (%u)",
                    r == TM_ATLS_DEC_VERSION ? a.version : (unsigned)inlen);
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        if (!offered(st->ccfg->formats, st->ccfg->n_formats, a.format)) {
            reasonf(st, "server sent evidence in format 0x%04x (%s) which was not offered",
                    a.format, tm_format_name(a.format) ? tm_format_name(a.format) : "unknown");
            *al = SSL_AD_ILLEGAL_PARAMETER;
            return 0;
        }
        free(st->peer_share);
        st->peer_share = NULL;
        if (key_share(s, false, &st->peer_share, &st->peer_share_len) < 0) {
            reasonf(st, "server answered attestation on a handshake without (EC)DHE (psk_ke)");
            *al = SSL_AD_HANDSHAKE_FAILURE;
            return 0;
        }
        if (binder_ready(st, al) < 0)
            return 0;
        free(st->evidence);
        st->evidence = malloc(a.evidence_len);
        if (!st->evidence) {
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        memcpy(st->evidence, a.evidence, a.evidence_len);
        st->evidence_len = a.evidence_len;
        st->format = a.format;
        st->answered = true;
        return 1;
    }
    if (context == SSL_EXT_TLS1_3_CERTIFICATE_REQUEST) {
        if (!st) /* not an attesting client: note nothing, answer nothing */
            return 1;
        int r = tm_atls_request_decode(in, inlen, &st->cr);
        if (r == TM_ATLS_DEC_MALFORMED) {
            reasonf(st, "malformed AttestationRequest in CertificateRequest");
            *al = SSL_AD_DECODE_ERROR;
            return 0;
        }
        st->cr_received = r == TM_ATLS_DEC_OK;
        return 1;
    }
    /* the server's Certificate never carries our extension */
    reasonf(st, "attestation extension in the server's Certificate");
    *al = SSL_AD_UNSUPPORTED_EXTENSION;
    return 0;
}

static int ext_parse(SSL *s, unsigned int ext_type, unsigned int context, const unsigned char *in,
                     size_t inlen, X509 *x, size_t chainidx, int *al, void *parse_arg)
{
    if (SSL_is_server(s)) {
        atls_conn *st = conn_make(s);
        if (!st) {
            *al = SSL_AD_INTERNAL_ERROR;
            return 0;
        }
        return server_parse(s, parse_arg, st, context, in, inlen, x, chainidx, al);
    }
    return client_parse(s, conn_get(s), context, in, inlen, chainidx, al);
}

/* Client-hello callback (servers with a keyring): while a key rotation holds
 * the provider, a handshake whose answer would be a direct quote is paused
 * (SSL_CLIENT_HELLO_RETRY); OpenSSL calls us again when the transport calls
 * SSL_do_handshake again, and the handshake goes on once the provider is
 * back. Everything else passes at once. The request is read from the raw
 * extension (its parse callback has not run yet); a malformed one is left to
 * that callback, which refuses it. */
static int client_hello_cb(SSL *s, int *al, void *arg)
{
    tm_atls_server *srv = arg;
    if (!srv || !tm_provider_lent(srv->own.provider))
        return SSL_CLIENT_HELLO_SUCCESS;
    const unsigned char *in = NULL;
    size_t inlen = 0;
    tm_atls_request req;
    if (!SSL_client_hello_get0_ext(s, TM_ATLS_EXT_TYPE, &in, &inlen) ||
        tm_atls_request_decode(in, inlen, &req) != TM_ATLS_DEC_OK)
        return SSL_CLIENT_HELLO_SUCCESS;
    return must_wait(&srv->own, &req, time(NULL)) ? SSL_CLIENT_HELLO_RETRY
                                                  : SSL_CLIENT_HELLO_SUCCESS;
}

/* ---- registration ------------------------------------------------------------- */

int tm_atls_server_ctx_init(SSL_CTX *ctx, tm_atls_server *srv, char *err, size_t errcap)
{
    if (init_indexes() < 0) {
        snprintf(err, errcap, "cannot allocate OpenSSL ex_data indexes");
        return -1;
    }
    if (keylog_install(ctx, err, errcap) < 0)
        return -1;
    if (!SSL_CTX_add_custom_ext(ctx, TM_ATLS_EXT_TYPE, ATLS_CONTEXTS, ext_add, ext_free, srv,
                                ext_parse, srv)) {
        snprintf(err, errcap, "cannot register the attestation TLS extension");
        return -1;
    }
    srv->refs++;
    if (!SSL_CTX_set_ex_data(ctx, ctx_idx, srv)) {
        srv->refs--;
        snprintf(err, errcap, "cannot attach attestation state to the TLS context");
        return -1;
    }
    if (srv->own.ring)
        SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, srv);
    return 0;
}

int tm_atls_client_ctx_init(SSL_CTX *ctx, char *err, size_t errcap)
{
    if (init_indexes() < 0) {
        snprintf(err, errcap, "cannot allocate OpenSSL ex_data indexes");
        return -1;
    }
    if (keylog_install(ctx, err, errcap) < 0)
        return -1;
    if (SSL_CTX_has_client_custom_ext(ctx, TM_ATLS_EXT_TYPE))
        return 0;
    if (!SSL_CTX_add_custom_ext(ctx, TM_ATLS_EXT_TYPE, ATLS_CONTEXTS, ext_add, ext_free, NULL,
                                ext_parse, NULL)) {
        snprintf(err, errcap, "cannot register the attestation TLS extension");
        return -1;
    }
    /* Attestation is defined for TLS 1.3 only (attested-tls.md). */
    if (SSL_CTX_get_min_proto_version(ctx) < TLS1_3_VERSION)
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    return 0;
}

/* ---- client hooks --------------------------------------------------------------- */

int tm_atls_client_setup(SSL_CTX *ctx, SSL *ssl, void *arg, char *err, size_t errcap)
{
    tm_atls_client *cc = arg;
    if (!cc) {
        snprintf(err, errcap, "attestation: no client configuration");
        return -1;
    }
    if (ssl_idx < 0 || !SSL_CTX_has_client_custom_ext(ctx, TM_ATLS_EXT_TYPE)) {
        snprintf(err, errcap, "attestation: the extension was not registered on this SSL_CTX "
                              "before the connection was created (call tm_atls_client_ctx_init)");
        return -1;
    }
    if (SSL_get0_session(ssl)) {
        /* evidence is per handshake: a resumed session would carry no proof,
         * so an attesting client offers no resumption PSK */
        snprintf(err, errcap, "attestation: this connection was set up to resume a TLS session; "
                              "attested connections never resume (evidence is per handshake)");
        return -1;
    }
    atls_conn *st = conn_make(ssl);
    if (!st) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (RAND_bytes(st->nonce, sizeof st->nonce) != 1) {
        snprintf(err, errcap, "attestation: no randomness for the nonce");
        return -1;
    }
    if (SSL_get_min_proto_version(ssl) < TLS1_3_VERSION)
        SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
    /* no tickets to resume with later; offer psk_dhe_ke only (a psk_ke
     * handshake has no (EC)DHE key share to bind the evidence to) */
    SSL_set_options(ssl, SSL_OP_NO_TICKET);
    SSL_clear_options(ssl, SSL_OP_ALLOW_NO_DHE_KEX);
    if (!st->ccfg) {
        cc->refs++;
        st->ccfg = cc;
    }
    return 0;
}

static void remember_binding(tm_atls_client *cc, const uint8_t rd[64])
{
    memcpy(cc->recent[cc->n_recent % ATLS_RECENT], rd, 64);
    cc->n_recent++;
}

/* The protocol v1 binding, SHA-512("tmqtt-atls-v1 server" || 0x00 || nonce ||
 * server_key_share || spki_hash): no key-schedule binder. Never accepted; only
 * computed to name evidence made under the v1 rule when we see it. */
static int binding_v1(const uint8_t nonce[32], const uint8_t *share, size_t share_len,
                      const uint8_t spki[32], uint8_t out[64])
{
    static const char label[] = "tmqtt-atls-v1 server";
    unsigned int n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(md, label, sizeof label) == 1 &&   /* with its 0x00 */
             EVP_DigestUpdate(md, nonce, 32) == 1 &&
             EVP_DigestUpdate(md, share, share_len) == 1 &&
             EVP_DigestUpdate(md, spki, 32) == 1 && EVP_DigestFinal_ex(md, out, &n) == 1 &&
             n == 64;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

/* Does the evidence carry binding value `rd`? Direct formats: its report
 * data (`got`) equals it; +key: its attestation key signed it. */
static bool covers(const atls_conn *st, const uint8_t got[64], const uint8_t rd[64])
{
    if (tm_format_is_keyatt(st->format))
        return tm_keyatt_signature_covers(st->evidence, st->evidence_len, rd);
    return CRYPTO_memcmp(got, rd, 64) == 0;
}

/* The binding did not match: say what we can tell about why. A hash cannot
 * say which input differed, so we test the hypotheses whose inputs we know,
 * and otherwise say whether the evidence is genuine on its own (then it was
 * made for another handshake: a relay) or not (tampered or forged). */
static void explain_binding(tm_atls_client *cc, atls_conn *st, const uint8_t got[64],
                            const uint8_t *spki, char *out, size_t cap)
{
    static const uint8_t zero[32];
    unsigned n = cc->n_recent < ATLS_RECENT ? cc->n_recent : ATLS_RECENT;
    for (unsigned i = 0; i < n; i++)
        if (covers(st, got, cc->recent[i])) {
            snprintf(out, cap, "evidence replayed from an earlier handshake of this client (it "
                               "covers that handshake's nonce and key-schedule binder)");
            return;
        }
    uint8_t alt[64];
    if (spki && tm_atls_binding(TM_ATLS_SERVER, st->nonce, st->binder, st->binder_len,
                                st->peer_share, st->peer_share_len, NULL, alt) == 0 &&
        covers(st, got, alt)) {
        snprintf(out, cap, "evidence bound to no certificate (PSK) but the server presented one");
        return;
    }
    if (binding_v1(st->nonce, st->peer_share, st->peer_share_len, spki ? spki : zero, alt) == 0 &&
        covers(st, got, alt)) {
        snprintf(out, cap, "evidence carries the v1 binding: nonce, server key share and "
                           "certificate match this handshake but it covers no key-schedule "
                           "binder (a v1 attester, or one relayed into this handshake by a "
                           "machine holding its keys); v2 refuses it");
        return;
    }
    tm_claims scratch;
    char why[200] = "";
    int vr = tm_verify(st->format, st->evidence, st->evidence_len, NULL, cc->policy, time(NULL),
                       &scratch, why, sizeof why);
    OPENSSL_cleanse(&scratch, sizeof scratch);
    if (vr == TM_VERIFY_OK)
        snprintf(out, cap, "genuine evidence from a TEE this policy accepts, but not made for this "
                           "handshake: it does not cover this handshake's key-schedule binder "
                           "together with its nonce, server key share and certificate (what a "
                           "machine in the middle relaying evidence produces; the hash does not "
                           "tell which input differs)");
    else
        snprintf(out, cap, "evidence covers no binding of this handshake and is not genuine on "
                           "its own either (%s: %s): tampered or forged", tm_verify_strerror(vr),
                 why);
}

static int client_verify(tm_atls_client *cc, SSL *ssl, atls_conn *st, char *err, size_t errcap)
{
    char offered_s[128];
    format_list(cc->formats, cc->n_formats, offered_s, sizeof offered_s);
    if (SSL_version(ssl) < TLS1_3_VERSION) {
        snprintf(err, errcap, "attestation needs TLS 1.3, the server negotiated %s",
                 SSL_get_version(ssl));
        return cc->require ? -1 : 0;
    }
    if (!st->request_sent) {
        snprintf(err, errcap, "attestation request was not sent (extension not registered)");
        return -1;
    }
    if (!st->answered) {
        if (!cc->require)
            return 0;
        EVP_PKEY *k = NULL;
        if (!SSL_get_peer_tmp_key(ssl, &k)) {
            snprintf(err, errcap, "handshake without (EC)DHE key exchange (psk_ke only): it "
                                  "cannot be attested");
            return -1;
        }
        EVP_PKEY_free(k);
        snprintf(err, errcap, "server sent no attestation evidence: it does not support attested "
                 "TLS (v2) or cannot produce any of the formats requested (%s)", offered_s);
        return -1;
    }
    if (binder_ready(st, NULL) < 0) {
        snprintf(err, errcap, "attestation: %s", st->reason);
        return -1;
    }
    uint8_t spki[32];
    const uint8_t *sp = NULL;
    X509 *peer = SSL_session_reused(ssl) ? NULL : SSL_get0_peer_certificate(ssl);
    if (peer) {
        if (tm_atls_spki_hash(peer, spki) < 0) {
            snprintf(err, errcap, "attestation: cannot hash the server certificate key");
            return -1;
        }
        sp = spki;
    }
    uint8_t rd[TM_REPORT_DATA_LEN];
    if (tm_atls_binding(TM_ATLS_SERVER, st->nonce, st->binder, st->binder_len, st->peer_share,
                        st->peer_share_len, sp, rd) < 0) {
        snprintf(err, errcap, "attestation: cannot compute the binding");
        return -1;
    }
    char why[256] = "";
    int vr = tm_verify_cached(cc->cache, st->format, st->evidence, st->evidence_len, rd, cc->policy,
                              time(NULL), &st->claims, why, sizeof why);
    if (vr == TM_VERIFY_EBINDING) {
        char ex[400];
        explain_binding(cc, st, st->claims.report_data, sp, ex, sizeof ex);
        snprintf(err, errcap, "attestation refused (binding): %s", ex);
        return -1;
    }
    remember_binding(cc, rd);
    if (vr != TM_VERIFY_OK) {
        snprintf(err, errcap, "attestation refused (%s): %s", tm_verify_strerror(vr), why);
        return -1;
    }
    st->appraised = true;
    if (cc->show) {
        char buf[4096];
        if (cc->show_json)
            tm_claims_json(&st->claims, buf, sizeof buf);
        else
            tm_claims_text(&st->claims, buf, sizeof buf);
        fprintf(cc->show, "%s%s", buf, cc->show_json || !strchr(buf, '\n') ? "\n" : "");
        fflush(cc->show);
    }
    return 0;
}

int tm_atls_client_verify(SSL *ssl, void *arg, char *err, size_t errcap)
{
    tm_atls_client *cc = arg;
    atls_conn *st = conn_get(ssl);
    if (!cc || !st || !st->ccfg) {
        snprintf(err, errcap, "attestation: setup hook did not run for this connection");
        return -1;
    }
    int r = client_verify(cc, ssl, st, err, errcap);
    binder_wipe(st);   /* evidence checked (and our own, if any, sent): no further use */
    return r;
}
