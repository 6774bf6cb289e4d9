/*
 * test_atls.c — attested TLS 1.3, protocol v2 (src/attest/atls.c) end to end
 * in memory: real OpenSSL handshakes over BIO pairs (no sockets), certificates
 * made in process, the sim provider with keys made in a scratch directory.
 *
 * Tools of the trade:
 *  - the extension test hook (tm_atls_set_test_hook) captures or tampers with
 *    our extension bytes before OpenSSL encrypts them (replay, re-binding, bit
 *    flips, wrong formats, malformed bytes);
 *  - a key-log recorder installed on every context BEFORE the extension is
 *    registered (so the extension's own keylog callback must chain to it)
 *    keeps each handshake's server_handshake_traffic_secret, from which the
 *    test derives the binder independently of atls.c (OpenSSL's TLS13-KDF);
 *  - an attacker's proxy built from raw OpenSSL custom extensions (no tmqtt
 *    code) that forwards the victim's request and relays the genuine evidence:
 *    a TLS terminator with its own certificate, and the intra-handshake relay
 *    that holds the attester's certificate key and ephemeral key share. The
 *    latter is obtained with a deterministic RAND_METHOD (deprecated in
 *    OpenSSL 3 but still honoured by RAND_bytes_ex / RAND_priv_bytes_ex when
 *    it is not RAND_OpenSSL()), under which the genuine server and the proxy
 *    draw the same server random and the same X25519 key.
 * Every rejection is checked for its own reason.
 */
/* RAND_set_rand_method / RAND_METHOD: the test-only deterministic RAND. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/atls.h"
#include "attest/evidence.h"
#include "attest/verify.h"
#include "test_pki.h"
#include "tm_test.h"

/* ---- fixtures ------------------------------------------------------------ */

static char g_dir[256];
static char g_simkey[300], g_simkey2[300];
static char g_spki_hex[65], g_spki2_hex[65];
static const char *MEAS = "1111111111111111111111111111111111111111111111111111111111111111";
static const char *MEAS2 = "2222222222222222222222222222222222222222222222222222222222222222";
static EVP_PKEY *g_cakey, *g_srvkey, *g_srvkey2, *g_clikey;
static X509 *g_ca, *g_srvcert, *g_srvcert2, *g_clicert;

static EVP_PKEY *p256(void) { return EVP_EC_gen("P-256"); }

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void setup_once(void)
{
    if (g_dir[0])
        return;
    snprintf(g_dir, sizeof g_dir, "/tmp/tm_atls_test.XXXXXX");
    if (!mkdtemp(g_dir))
        abort();
    snprintf(g_simkey, sizeof g_simkey, "%s/sim.pem", g_dir);
    snprintf(g_simkey2, sizeof g_simkey2, "%s/sim2.pem", g_dir);
    uint8_t h[32];
    char err[256];
    if (tm_sim_keygen(g_simkey, h, err, sizeof err) < 0)
        abort();
    hex(h, 32, g_spki_hex);
    if (tm_sim_keygen(g_simkey2, h, err, sizeof err) < 0)
        abort();
    hex(h, 32, g_spki2_hex);
    g_cakey = p256();
    g_ca = tm_test_mkcert("tmqtt test CA", g_cakey, NULL, NULL, true);
    g_srvkey = p256();
    g_srvcert = tm_test_mkcert("localhost", g_srvkey, g_ca, g_cakey, false);
    g_srvkey2 = p256();
    g_srvcert2 = tm_test_mkcert("localhost", g_srvkey2, g_ca, g_cakey, false);
    g_clikey = p256();
    g_clicert = tm_test_mkcert("client-1", g_clikey, g_ca, g_cakey, false);
}

static void cleanup(void)
{
    char p[400];
    static const char *files[] = {"sim.pem", "sim2.pem", "client.policy", "server.policy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, files[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

static int has(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        return 1;
    fprintf(stderr, "  expected \"%s\" in \"%s\"\n", needle, hay);
    return 0;
}

static int encoded_tmp_key(SSL *s, bool own, uint8_t *out, size_t cap, size_t *len)
{
    EVP_PKEY *k = NULL;
    unsigned char *p = NULL;
    *len = 0;
    if (!(own ? SSL_get_tmp_key(s, &k) : SSL_get_peer_tmp_key(s, &k)))
        return -1;
    size_t n = EVP_PKEY_get1_encoded_public_key(k, &p);
    EVP_PKEY_free(k);
    if (n == 0 || n > cap) {
        OPENSSL_free(p);
        return -1;
    }
    memcpy(out, p, n);
    *len = n;
    OPENSSL_free(p);
    return 0;
}

static void spki_sha256(X509 *x, uint8_t out[32])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
}

/* The report_data rules, written out here independently of evidence.c. */
static void rule_v2_label(const char *label, const uint8_t nonce[32], const uint8_t *binder,
                          size_t blen, const uint8_t *share, size_t slen, const uint8_t *spki,
                          uint8_t out[64])
{
    static const uint8_t zero[32];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha512(), NULL);
    EVP_DigestUpdate(m, label, strlen(label) + 1);   /* with the 0x00 */
    EVP_DigestUpdate(m, nonce, 32);
    EVP_DigestUpdate(m, binder, blen);
    EVP_DigestUpdate(m, share, slen);
    EVP_DigestUpdate(m, spki ? spki : zero, 32);
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
}

static void rule_v2(const uint8_t nonce[32], const uint8_t *binder, size_t blen,
                    const uint8_t *share, size_t slen, const uint8_t *spki, uint8_t out[64])
{
    rule_v2_label("tmqtt-atls-v2 server", nonce, binder, blen, share, slen, spki, out);
}

static void rule_v1(const uint8_t nonce[32], const uint8_t *share, size_t slen,
                    const uint8_t *spki, uint8_t out[64])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha512(), NULL);
    EVP_DigestUpdate(m, "tmqtt-atls-v1 server", 21);
    EVP_DigestUpdate(m, nonce, 32);
    EVP_DigestUpdate(m, share, slen);
    EVP_DigestUpdate(m, spki, 32);
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
}

/* Genuine sim evidence over `rd` from platform key `key` with measurement `meas`. */
static size_t sim_evidence_by(const char *key, const char *meas, const uint8_t rd[64], uint8_t *out,
                              size_t cap)
{
    char opts[600], err[200];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s", key, meas);
    tm_provider *prov = tm_provider_open("sim", opts, err, sizeof err);
    size_t n = 0;
    if (!prov || tm_provider_collect(prov, TM_FMT_SIM, rd, out, cap, &n, err, sizeof err) != 0)
        n = 0;
    tm_provider_close(prov);
    return n;
}

/* ... from the attester's platform key g_simkey. */
static size_t sim_evidence(const uint8_t rd[64], uint8_t *out, size_t cap)
{
    return sim_evidence_by(g_simkey, MEAS, rd, out, cap);
}

/* ---- key-log recorder and an independent binder ---------------------------- */

typedef struct klrec {
    const SSL *ssl;
    int lines;
    uint8_t shts[64];
    size_t shts_len;
    const EVP_MD *md;
} klrec;
static klrec KL[16];
static unsigned n_kl;

static void kl_reset(void) { memset(KL, 0, sizeof KL), n_kl = 0; }

static klrec *kl_find(const SSL *s)
{
    for (unsigned i = 0; i < n_kl; i++)
        if (KL[i].ssl == s)
            return &KL[i];
    return NULL;
}

static void rec_keylog(const SSL *s, const char *line)
{
    klrec *r = kl_find(s);
    if (!r && n_kl < sizeof KL / sizeof KL[0]) {
        r = &KL[n_kl++];
        r->ssl = s;
    }
    if (!r)
        return;
    r->lines++;
    static const char shts[] = "SERVER_HANDSHAKE_TRAFFIC_SECRET ";
    if (strncmp(line, shts, sizeof shts - 1))
        return;
    const char *sec = strchr(line + sizeof shts - 1, ' ');
    if (!sec)
        return;
    sec++;
    r->shts_len = strlen(sec) / 2;
    if (r->shts_len > sizeof r->shts)
        r->shts_len = 0;
    unhex(sec, r->shts, r->shts_len);
    r->md = SSL_CIPHER_get_handshake_digest(SSL_get_pending_cipher(s));
}

/* HKDF-Expand-Label(shts, "tmqtt atls binder", "", Hash.length) with OpenSSL's
 * own TLS 1.3 KDF, from the secret the recorder saw for `s`. 0 when unknown. */
static size_t kdf_binder(const SSL *s, uint8_t out[64])
{
    klrec *r = kl_find(s);
    if (!r || !r->shts_len || !r->md)
        return 0;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL);
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(r->md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, r->shts, r->shts_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, "tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, "tmqtt atls binder", 17),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, "", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = (size_t)EVP_MD_get_size(r->md);
    if (!k || EVP_KDF_derive(k, out, n, p) <= 0)
        n = 0;
    EVP_KDF_CTX_free(k);
    EVP_KDF_free(kdf);
    return n;
}

/* ---- a deterministic RAND (test_relay_intra_handshake) ---------------------- */

static unsigned long det_ctr;
static int det_bytes(unsigned char *buf, int num)
{
    while (num > 0) {
        uint8_t in[16] = "tm-det-rand", h[32];
        memcpy(in + 8, &det_ctr, sizeof det_ctr);
        det_ctr++;
        SHA256(in, sizeof in, h);
        int n = num < 32 ? num : 32;
        memcpy(buf, h, (size_t)n);
        buf += n;
        num -= n;
    }
    return 1;
}
static int det_status(void) { return 1; }
static const RAND_METHOD det_rand = {NULL, det_bytes, NULL, NULL, det_bytes, det_status};

/* From here until det_off(), every OpenSSL random byte comes from the same
 * stream: two servers that process alike ClientHellos under det_on() pick the
 * same server random and the same ephemeral key share. */
static void det_on(void)
{
    det_ctr = 0;
    RAND_set_rand_method(&det_rand);
}
static void det_off(void) { RAND_set_rand_method(NULL); }

/* ---- pairs ---------------------------------------------------------------- */

typedef struct server_spec {
    const char *provider;      /* NULL: no attestation */
    const char *opts;          /* NULL: key=g_simkey,measurement=MEAS */
    const char *formats;
    bool require_client;
    const char *client_policy_text;
    bool second_cert;
    uint32_t key_lifetime;     /* +key formats */
    bool key_worker;
    void (*ctx_fn)(SSL_CTX *); /* after the extension is registered */
} server_spec;

typedef struct client_spec {
    bool attest;               /* arm the request (setup hook) */
    bool require;
    const char *policy_text;   /* NULL: trust g_simkey, measurement MEAS */
    const char *formats;
    const char *provider;      /* own evidence (mutual) */
    const char *provider_opts;
    const char *own_formats;   /* mutual: what the client may answer with */
    bool cert;                 /* present a client certificate */
    void (*ctx_fn)(SSL_CTX *); /* after the extension is registered */
    void (*ssl_fn)(SSL *);     /* after the setup hook */
} client_spec;

static char *write_tmp(const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static SSL_CTX *server_ctx(const server_spec *s, tm_atls_server **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx, s->second_cert ? g_srvcert2 : g_srvcert);
    SSL_CTX_use_PrivateKey(ctx, s->second_cert ? g_srvkey2 : g_srvkey);
    SSL_CTX_set_keylog_callback(ctx, rec_keylog);   /* the extension must chain to it */
    *out = NULL;
    if (s->require_client) {
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), g_ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (s->provider || s->require_client) {
        char opts[600];
        snprintf(opts, sizeof opts, "key=%s,measurement=%s", g_simkey, MEAS);
        char pol[800] = "";
        if (s->require_client)
            snprintf(pol, sizeof pol, "%s",
                     write_tmp("client.policy", s->client_policy_text ? s->client_policy_text : ""));
        tm_atls_server_opts o = {.provider = s->provider,
                                 .provider_opts = s->opts ? s->opts : opts,
                                 .formats = s->formats,
                                 .key_lifetime = s->key_lifetime,
                                 .key_worker = s->key_worker,
                                 .require_client = s->require_client,
                                 .client_policy = s->require_client ? pol : NULL};
        char err[300] = "";
        tm_atls_server *srv = tm_atls_server_new(&o, err, sizeof err);
        if (!srv) {
            fprintf(stderr, "server: %s\n", err);
            SSL_CTX_free(ctx);
            return NULL;
        }
        TM_CHECK_EQ(tm_atls_server_ctx_init(ctx, srv, err, sizeof err), 0);
        *out = srv;
    }
    if (s->ctx_fn)
        s->ctx_fn(ctx);
    return ctx;
}

/* A client context (and configuration when attesting) as the tools build it. */
static SSL_CTX *client_ctx(const client_spec *cs, tm_atls_client **cli)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), g_ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_keylog_callback(ctx, rec_keylog);   /* like SSLKEYLOGFILE in src/client/tls.c */
    if (cs->cert) {
        SSL_CTX_use_certificate(ctx, g_clicert);
        SSL_CTX_use_PrivateKey(ctx, g_clikey);
    }
    *cli = NULL;
    char err[300] = "";
    if (cs->attest || cs->provider) {
        char dflt[400];
        snprintf(dflt, sizeof dflt, "sim_trusted_key %s\nsim_measurement %s\n", g_spki_hex, MEAS);
        char pol[400];
        snprintf(pol, sizeof pol, "%s",
                 write_tmp("server.policy", cs->policy_text ? cs->policy_text : dflt));
        tm_atls_client_opts o = {.require = cs->require, .policy_file = pol,
                                 .formats = cs->formats, .provider = cs->provider,
                                 .provider_opts = cs->provider_opts,
                                 .own_formats = cs->own_formats};
        *cli = tm_atls_client_new(&o, err, sizeof err);
        if (!*cli) {
            fprintf(stderr, "client: %s\n", err);
            SSL_CTX_free(ctx);
            return NULL;
        }
        TM_CHECK_EQ(tm_atls_client_ctx_init(ctx, err, sizeof err), 0);
    }
    if (cs->ctx_fn)
        cs->ctx_fn(ctx);
    return ctx;
}

typedef struct result {
    int client_hs, server_hs;       /* 1 done, -1 failed */
    int verify;                     /* tm_atls_client_verify, 1 when not run */
    char verify_err[600];
    char server_reason[400];
    char client_reason[400];
    int server_sent;
    int client_result;              /* server's view of client evidence */
    tm_claims claims;               /* server's claims as seen by the client */
    int have_claims;
    tm_claims client_claims;
} result;

/* A live pair, so that tests can run handshakes step by step. */
typedef struct pair {
    SSL_CTX *sctx, *cctx;
    tm_atls_server *srv;
    tm_atls_client *cli;
    SSL *s, *c;
    int cdone, sdone;
} pair;

/* Connects client `c` and server `s` with an in-memory BIO pair. */
static void wire(SSL *c, SSL *s)
{
    BIO *a, *b;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(c, a, a);
    SSL_set_bio(s, b, b);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
}

static int pair_open(pair *p, const server_spec *ss, const client_spec *cs)
{
    memset(p, 0, sizeof *p);
    kl_reset();
    p->sctx = server_ctx(ss, &p->srv);
    p->cctx = client_ctx(cs, &p->cli);
    if (!p->sctx || !p->cctx)
        return -1;
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    wire(p->c, p->s);
    SSL_set1_host(p->c, "localhost");
    char err[300] = "";
    if (cs->attest && tm_atls_client_setup(p->cctx, p->c, p->cli, err, sizeof err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    if (cs->ssl_fn)
        cs->ssl_fn(p->c);
    return 0;
}

static int step(SSL *ssl, int *done)
{
    if (*done)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = 1;
        return 1;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    *done = -1;
    ERR_clear_error();
    return -1;
}

/* Runs two endpoints until both finished or one failed. */
static void drive(SSL *c, int *cdone, SSL *s, int *sdone)
{
    for (int i = 0; i < 50 && !(*cdone && *sdone); i++) {
        step(c, cdone);
        step(s, sdone);
        if (*cdone < 0 || *sdone < 0) {
            /* let the alert reach the other side */
            step(c, cdone);
            step(s, sdone);
            break;
        }
    }
}

static void pair_handshake(pair *p) { drive(p->c, &p->cdone, p->s, &p->sdone); }

static void pair_results(pair *p, result *r, const client_spec *cs)
{
    memset(r, 0, sizeof *r);
    r->client_hs = p->cdone;
    r->server_hs = p->sdone;
    r->verify = 1;
    if (p->cdone == 1 && cs->attest)
        r->verify = tm_atls_client_verify(p->c, p->cli, r->verify_err, sizeof r->verify_err);
    snprintf(r->server_reason, sizeof r->server_reason, "%s", tm_atls_reason(p->s));
    snprintf(r->client_reason, sizeof r->client_reason, "%s", tm_atls_reason(p->c));
    r->server_sent = tm_atls_server_sent(p->s, NULL);
    r->client_result = tm_atls_server_client_result(p->s, &r->client_claims);
    if (getenv("TM_ATLS_VERBOSE"))
        fprintf(stderr, "  [hs c=%d s=%d verify=%d] verify: %s | client: %s | server: %s\n",
                r->client_hs, r->server_hs, r->verify, r->verify_err, r->client_reason,
                r->server_reason);
    const tm_claims *c = tm_atls_peer_claims(p->c);
    if (c) {
        r->claims = *c;
        r->have_claims = 1;
    }
}

static void pair_run(pair *p, result *r, const client_spec *cs)
{
    pair_handshake(p);
    pair_results(p, r, cs);
}

static void pair_close(pair *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    SSL_CTX_free(p->cctx);
    SSL_CTX_free(p->sctx);
    tm_atls_server_free(p->srv);
    tm_atls_client_free(p->cli);
}

/* New connection objects on the same contexts (for a second handshake). */
static void pair_renew(pair *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    p->c = SSL_new(p->cctx);
    p->s = SSL_new(p->sctx);
    wire(p->c, p->s);
    SSL_set1_host(p->c, "localhost");
    p->cdone = p->sdone = 0;
}

static int run(const server_spec *ss, const client_spec *cs, result *r)
{
    pair p;
    if (pair_open(&p, ss, cs) < 0) {
        pair_close(&p);
        return -1;
    }
    pair_run(&p, r, cs);
    pair_close(&p);
    return 0;
}

/* ---- the test hook: capture and tamper ----------------------------------- */

enum { H_NONE, H_CAPTURE_EE, H_REPLACE_EE, H_FLIP_EE, H_FORMAT_EE, H_TRUNC_EE, H_TRUNC_CH,
       H_CAPTURE_CH, H_REBIND_EE, H_V1_EE, H_VERSION_CH, H_KEYATT_EE };
static struct {
    int mode;
    unsigned target;              /* the context the *_EE modes act on (default EE) */
    uint8_t buf[65536];
    size_t len;
    size_t flip_at;
    bool flipped;                 /* H_FLIP_EE: the last answer had a bit flipped */
    uint16_t format;
    uint8_t nonce[32];            /* the last request's nonce (every mode) */
    uint8_t cr_nonce[32];         /* the last CertificateRequest's nonce */
    /* re-binding */
    const uint8_t *share;         /* NULL: the server's own */
    size_t share_len;
    const uint8_t *spki;          /* NULL: no certificate (32 zero bytes) */
    /* H_KEYATT_EE: forged key-attested evidence (see keyatt_forge) */
    uint64_t not_after;
    bool other_key;               /* the platform evidence binds another key */
    bool key_client;              /* the client's evidence (mutual) */
} H;

static void keyatt_forge(SSL *ssl, uint8_t *buf, size_t *len, size_t cap);

/* Genuine evidence in place of the server's, over other binding inputs:
 * H.share / H.spki with this handshake's nonce and binder (H_REBIND_EE), or
 * the v1 rule over this handshake's nonce, key share and H.spki (H_V1_EE). */
static void rebind(SSL *ssl, uint8_t *buf, size_t *len, size_t cap)
{
    uint8_t own[200], binder[64], rd[64];
    size_t own_len = 0, blen = kdf_binder(ssl, binder);
    encoded_tmp_key(ssl, true, own, sizeof own, &own_len);
    const uint8_t *sh = H.share ? H.share : own;
    size_t shl = H.share ? H.share_len : own_len;
    if (H.mode == H_V1_EE)
        rule_v1(H.nonce, sh, shl, H.spki, rd);
    else
        rule_v2(H.nonce, binder, blen, sh, shl, H.spki, rd);
    size_t n = sim_evidence(rd, buf + 5, cap - 5);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    *len = 5 + n;
}

static void hook(SSL *ssl, unsigned context, uint8_t *buf, size_t *len, size_t cap, void *arg)
{
    if (context == SSL_EXT_CLIENT_HELLO) {
        memcpy(H.nonce, buf + 1, 32);
        if (H.mode == H_TRUNC_CH)
            *len -= 1;
        else if (H.mode == H_VERSION_CH)
            buf[0] = 1;   /* a v1 request */
        return;
    }
    if (context == SSL_EXT_TLS1_3_CERTIFICATE_REQUEST)
        memcpy(H.cr_nonce, buf + 1, 32);
    if (context != H.target)
        return;
    switch (H.mode) {
    case H_CAPTURE_EE:
        memcpy(H.buf, buf, *len);
        H.len = *len;
        break;
    case H_REPLACE_EE:
        memcpy(buf, H.buf, H.len);
        *len = H.len;
        break;
    case H_FLIP_EE:
        /* (signatures are fresh in every handshake: their DER length, and so the
         * answer's, varies by a byte or two from the captured one) */
        H.flipped = H.flip_at < *len;
        if (H.flipped)
            buf[H.flip_at] ^= 0x01;
        break;
    case H_FORMAT_EE:
        buf[1] = (uint8_t)(H.format >> 8);
        buf[2] = (uint8_t)H.format;
        break;
    case H_TRUNC_EE:
        *len -= 1;
        break;
    case H_REBIND_EE:
    case H_V1_EE:
        rebind(ssl, buf, len, cap);
        break;
    case H_KEYATT_EE:
        keyatt_forge(ssl, buf, len, cap);
        break;
    default:
        break;
    }
}

static void hook_on(int mode)
{
    H.mode = mode;
    H.target = SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS;
    tm_atls_set_test_hook(hook, NULL);
}

static void hook_off(void)
{
    tm_atls_set_test_hook(NULL, NULL);
    H.mode = H_NONE;
    H.share = NULL;
    H.spki = NULL;
    H.other_key = false;
    H.key_client = false;
}

static const server_spec SIM = {.provider = "sim"};
static const client_spec ATTEST = {.attest = true, .require = true};

/* ---- codec and binder derivation ------------------------------------------ */

static void test_codec(void)
{
    tm_atls_request r, d;
    memset(&r, 0, sizeof r);
    r.version = TM_ATLS_VERSION;
    TM_CHECK_EQ(TM_ATLS_VERSION, 2);
    for (int i = 0; i < 32; i++)
        r.nonce[i] = (uint8_t)i;
    r.formats[0] = TM_FMT_SIM;
    r.formats[1] = TM_FMT_SGX_DCAP;
    r.n_formats = 2;
    uint8_t b[300];
    size_t n = tm_atls_request_encode(&r, b, sizeof b);
    TM_CHECK_EQ(n, 1 + 32 + 1 + 4);
    TM_CHECK_EQ(b[0], 2);
    TM_CHECK_EQ(b[33], 4);
    TM_CHECK_EQ(tm_atls_request_decode(b, n, &d), TM_ATLS_DEC_OK);
    TM_CHECK_EQ(d.n_formats, 2);
    TM_CHECK_EQ(d.formats[1], TM_FMT_SGX_DCAP);
    TM_CHECK_MEM(d.nonce, r.nonce, 32);
    TM_CHECK_EQ(tm_atls_request_decode(b, n - 1, &d), TM_ATLS_DEC_MALFORMED);   /* short */
    b[n] = 0;
    TM_CHECK_EQ(tm_atls_request_decode(b, n + 1, &d), TM_ATLS_DEC_MALFORMED);   /* trailing */
    b[33] = 3;
    TM_CHECK_EQ(tm_atls_request_decode(b, n - 1, &d), TM_ATLS_DEC_MALFORMED);   /* odd */
    b[33] = 0;
    TM_CHECK_EQ(tm_atls_request_decode(b, 34, &d), TM_ATLS_DEC_MALFORMED);      /* empty */
    b[33] = 4;
    b[0] = 1;   /* v1: well-formed, but a version we no longer speak */
    TM_CHECK_EQ(tm_atls_request_decode(b, n, &d), TM_ATLS_DEC_VERSION);
    r.n_formats = 0;
    TM_CHECK_EQ(tm_atls_request_encode(&r, b, sizeof b), 0);

    uint8_t ev[3] = {9, 8, 7}, e[16];
    tm_atls_answer a;
    n = tm_atls_answer_encode(TM_FMT_SIM, ev, 3, e, sizeof e);
    TM_CHECK_EQ(n, 8);
    TM_CHECK_EQ(e[0], 2);
    TM_CHECK_EQ(tm_atls_answer_decode(e, n, &a), TM_ATLS_DEC_OK);
    TM_CHECK_EQ(a.format, TM_FMT_SIM);
    TM_CHECK_EQ(a.evidence_len, 3);
    TM_CHECK_MEM(a.evidence, ev, 3);
    e[0] = 1;
    TM_CHECK_EQ(tm_atls_answer_decode(e, n, &a), TM_ATLS_DEC_VERSION);
    e[0] = 2;
    TM_CHECK_EQ(tm_atls_answer_decode(e, n - 1, &a), TM_ATLS_DEC_MALFORMED);
    TM_CHECK_EQ(tm_atls_answer_decode(e, 5, &a), TM_ATLS_DEC_MALFORMED);
    e[4] = 0;
    TM_CHECK_EQ(tm_atls_answer_decode(e, 5, &a), TM_ATLS_DEC_MALFORMED);        /* empty */
    TM_CHECK_EQ(tm_atls_answer_encode(TM_FMT_SIM, ev, 0, e, sizeof e), 0);
    TM_CHECK_EQ(tm_atls_answer_encode(TM_FMT_SIM, ev, 3, e, 7), 0);
}

static void test_expand_label_kat(void)
{
    /* RFC 8448 section 3 (simple 1-RTT handshake): the server handshake traffic
     * secret and the handshake write key and iv expanded from it */
    uint8_t shts[32], key[16], iv[12], out[48];
    unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38", shts, 32);
    unhex("3fce516009c21727d0f2e4e86ee403bc", key, 16);
    unhex("5d313eb2671276ee13000b30", iv, 12);
    TM_CHECK_EQ(tm_atls_expand_label(EVP_sha256(), shts, 32, "key", out, 16), 0);
    TM_CHECK_MEM(out, key, 16);
    TM_CHECK_EQ(tm_atls_expand_label(EVP_sha256(), shts, 32, "iv", out, 12), 0);
    TM_CHECK_MEM(out, iv, 12);
    /* the binder: Hash.length bytes; SHA-256 needs a 32-byte secret, SHA-384 48 */
    size_t n = 0;
    TM_CHECK_EQ(tm_atls_binder(EVP_sha256(), shts, 32, out, &n), 0);
    TM_CHECK_EQ(n, 32);
    uint8_t again[48];
    TM_CHECK_EQ(tm_atls_expand_label(EVP_sha256(), shts, 32, "tmqtt atls binder", again, 32), 0);
    TM_CHECK_MEM(out, again, 32);
    TM_CHECK(tm_atls_binder(EVP_sha256(), shts, 31, out, &n) < 0);
    TM_CHECK(tm_atls_binder(EVP_sha384(), shts, 32, out, &n) < 0);
    TM_CHECK(tm_atls_expand_label(EVP_sha256(), shts, 32, "", out, 16) < 0);
}

/* ---- server attestation --------------------------------------------------- */

static void test_sim_ok(void)
{
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.server_sent, 1);
    TM_CHECK_EQ(r.have_claims, 1);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM);
    TM_CHECK_EQ(r.claims.measurement[0], 0x11);
    TM_CHECK_EQ(r.claims.debug, 0);
    if (r.verify)
        fprintf(stderr, "  %s\n", r.verify_err);
}

static void suites_sha384(SSL_CTX *ctx) { SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384"); }
static void suites_sha256(SSL_CTX *ctx) { SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256"); }

/* The evidence covers exactly SHA-512(label || 0x00 || nonce || binder ||
 * server key share || spki hash), with the binder derived from this
 * handshake's server_handshake_traffic_secret by OpenSSL's own TLS 1.3 KDF,
 * for SHA-256 and SHA-384 suites; both sides saw the same secret. */
static void test_binder_is_the_key_schedule(void)
{
    void (*suites[])(SSL_CTX *) = {suites_sha256, suites_sha384};
    for (int i = 0; i < 2; i++) {
        client_spec cs = ATTEST;
        cs.ctx_fn = suites[i];
        pair p;
        result r;
        hook_on(H_NONE);   /* the hook notes the nonce of the request */
        TM_CHECK_EQ(pair_open(&p, &SIM, &cs), 0);
        pair_handshake(&p);
        TM_CHECK_EQ(tm_atls_binder_held(p.c), i ? 48 : 32);
        pair_results(&p, &r, &cs);
        TM_CHECK_EQ(r.verify, 0);
        klrec *kc = kl_find(p.c), *ks = kl_find(p.s);
        TM_CHECK(kc && ks && kc->shts_len == (i ? 48u : 32u));
        if (kc && ks)
            TM_CHECK(kc->shts_len == ks->shts_len && !memcmp(kc->shts, ks->shts, kc->shts_len));
        uint8_t binder[64], share[200], spki[32], want[64];
        size_t blen = kdf_binder(p.c, binder), slen = 0;
        TM_CHECK_EQ(blen, i ? 48 : 32);
        TM_CHECK_EQ(encoded_tmp_key(p.c, false, share, sizeof share, &slen), 0);
        spki_sha256(g_srvcert, spki);
        rule_v2(H.nonce, binder, blen, share, slen, spki, want);
        TM_CHECK(r.have_claims && !memcmp(r.claims.report_data, want, 64));
        pair_close(&p);
        hook_off();
    }
}

static void test_no_request_no_evidence(void)
{
    client_spec plain = {0};
    result r;
    TM_CHECK_EQ(run(&SIM, &plain, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK_EQ(r.have_claims, 0);
    /* a client that registered the extension but does not ask: same */
    client_spec reg = {.provider = "none"};
    TM_CHECK_EQ(run(&SIM, &reg, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
}

static void test_missing_answer(void)
{
    server_spec none = {0};
    result r;
    TM_CHECK_EQ(run(&none, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "server sent no attestation evidence"));
    /* not required: accepted without claims */
    client_spec opt = {.attest = true};
    TM_CHECK_EQ(run(&none, &opt, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.have_claims, 0);
}

static void test_unsupported_format(void)
{
    /* client asks only for sgx-dcap: the sim server omits the answer */
    client_spec sgx = {.attest = true, .require = true, .formats = "sgx-dcap"};
    result r;
    TM_CHECK_EQ(run(&SIM, &sgx, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "cannot produce any of the formats requested (sgx-dcap)"));
    /* server answers in a format that was not offered: illegal_parameter */
    hook_on(H_FORMAT_EE);
    H.format = TM_FMT_TDX_DCAP;
    client_spec simonly = {.attest = true, .require = true, .formats = "sim"};
    TM_CHECK_EQ(run(&SIM, &simonly, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "server sent evidence in format 0x0003 (tdx-dcap) which was "
                                  "not offered"));
    hook_off();
}

static void test_malformed(void)
{
    result r;
    hook_on(H_TRUNC_CH);   /* request one byte short: decode_error at the server */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.server_reason, "malformed AttestationRequest in ClientHello"));
    hook_on(H_TRUNC_EE);   /* answer one byte short: illegal_parameter at the client */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "malformed AttestationEvidence from the server"));
    hook_off();
}

static void test_v1_request_no_answer(void)
{
    /* protocol v1 is gone: a v1 request is well-formed but gets no answer */
    result r;
    hook_on(H_VERSION_CH);
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "server sent no attestation evidence"));
    /* control: the same hook without the version change is answered */
    hook_on(H_NONE);
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.server_sent, 1);
    /* a v1 answer to our v2 request: illegal_parameter */
    hook_on(H_CAPTURE_EE);
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    H.buf[0] = 1;
    H.mode = H_REPLACE_EE;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "server AttestationEvidence has unsupported version 1"));
    hook_off();
}

static void test_replay(void)
{
    /* one client configuration, two handshakes: the second gets the first's
     * evidence (a fresh nonce and key schedule make it stale) */
    result r;
    pair p;
    char err[200];
    hook_on(H_CAPTURE_EE);
    TM_CHECK_EQ(pair_open(&p, &SIM, &ATTEST), 0);
    pair_run(&p, &r, &ATTEST);
    TM_CHECK_EQ(r.verify, 0);
    pair_renew(&p);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), 0);
    H.mode = H_REPLACE_EE;
    pair_run(&p, &r, &ATTEST);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): evidence replayed from an "
                               "earlier handshake of this client"));
    TM_CHECK_EQ(r.have_claims, 0);
    pair_close(&p);
    hook_off();
}

/* ---- relays: an attacker's proxy between the victim and the genuine TEE ---- */

/* The proxy P is the attacker's own code: plain OpenSSL with a raw custom
 * extension 0xFFA0 on its two contexts (no tmqtt code). Its server side (ps)
 * reads the victim's request from the ClientHello and, before answering, runs
 * its own handshake with the genuine attesting server B from its client side
 * (pc): the victim's request bytes unchanged (same nonce), its own key share.
 * Then it answers the victim with B's genuine AttestationEvidence.
 *  (a) terminating relay: ps has its own certificate, which the victim trusts;
 *  (b) intra-handshake relay: ps holds B's certificate key and, through the
 *      deterministic RAND, B's ephemeral key share: nonce, server key share
 *      and certificate seen by the victim are exactly those B bound. */
typedef struct relay {
    bool intra;
    SSL_CTX *vctx, *psctx, *pcctx, *bctx;
    tm_atls_server *bsrv;
    tm_atls_client *vcli;
    SSL *v, *ps, *pc, *b;
    int vdone, psdone, pcdone, bdone;
    uint8_t req[600];
    size_t req_len;
    uint8_t ans[65536];
    size_t ans_len;
} relay;

static int relay_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out,
                     size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    relay *r = arg;
    if (context == SSL_EXT_CLIENT_HELLO && r->req_len) {
        *out = r->req;   /* P's ClientHello to B: the victim's request */
        *outlen = r->req_len;
        return 1;
    }
    if (context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS && r->ans_len) {
        *out = r->ans;   /* P's EncryptedExtensions to the victim: B's evidence */
        *outlen = r->ans_len;
        return 1;
    }
    return 0;
}

static int relay_parse(SSL *s, unsigned int type, unsigned int context, const unsigned char *in,
                       size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    relay *r = arg;
    if (context == SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS && inlen <= sizeof r->ans) {
        memcpy(r->ans, in, inlen);
        r->ans_len = inlen;
    }
    return 1;
}

/* ps's ClientHello callback: the whole upstream leg happens here. */
static int relay_hello(SSL *s, int *al, void *arg)
{
    relay *r = arg;
    const unsigned char *ext;
    size_t len;
    if (SSL_client_hello_get0_ext(s, TM_ATLS_EXT_TYPE, &ext, &len) == 1 && len <= sizeof r->req) {
        memcpy(r->req, ext, len);
        r->req_len = len;
    }
    step(r->pc, &r->pcdone);   /* P's ClientHello: the victim's nonce, P's own key share */
    if (r->intra)
        det_on();
    step(r->b, &r->bdone);     /* B: ServerHello .. Finished, evidence in EncryptedExtensions */
    if (r->intra)
        det_off();
    drive(r->pc, &r->pcdone, r->b, &r->bdone);
    if (r->intra)
        det_on();              /* ps's ServerHello: B's server random and key share */
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int relay_open(relay *r, bool intra)
{
    memset(r, 0, sizeof *r);
    kl_reset();
    r->intra = intra;
    r->vctx = client_ctx(&ATTEST, &r->vcli);
    r->bctx = server_ctx(&SIM, &r->bsrv);
    r->psctx = SSL_CTX_new(TLS_server_method());
    r->pcctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_use_certificate(r->psctx, intra ? g_srvcert : g_srvcert2);
    SSL_CTX_use_PrivateKey(r->psctx, intra ? g_srvkey : g_srvkey2);
    unsigned ctxs = SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS;
    SSL_CTX_add_custom_ext(r->psctx, TM_ATLS_EXT_TYPE, ctxs, relay_add, NULL, r, relay_parse, r);
    SSL_CTX_add_custom_ext(r->pcctx, TM_ATLS_EXT_TYPE, ctxs, relay_add, NULL, r, relay_parse, r);
    SSL_CTX_set_client_hello_cb(r->psctx, relay_hello, r);
    SSL_CTX_set_keylog_callback(r->psctx, rec_keylog);
    SSL_CTX_set_keylog_callback(r->pcctx, rec_keylog);
    if (!r->vctx || !r->bctx)
        return -1;
    r->v = SSL_new(r->vctx);
    r->ps = SSL_new(r->psctx);
    r->pc = SSL_new(r->pcctx);
    r->b = SSL_new(r->bctx);
    wire(r->v, r->ps);
    wire(r->pc, r->b);
    SSL_set1_host(r->v, "localhost");
    char err[200];
    return tm_atls_client_setup(r->vctx, r->v, r->vcli, err, sizeof err);
}

static void relay_run(relay *r, result *res)
{
    step(r->v, &r->vdone);     /* the victim's ClientHello */
    step(r->ps, &r->psdone);   /* P reads it, runs the upstream leg, answers */
    det_off();
    drive(r->v, &r->vdone, r->ps, &r->psdone);
    memset(res, 0, sizeof *res);
    res->client_hs = r->vdone;
    res->verify = 1;
    if (r->vdone == 1)
        res->verify = tm_atls_client_verify(r->v, r->vcli, res->verify_err, sizeof res->verify_err);
    res->server_sent = tm_atls_server_sent(r->b, NULL);
    res->have_claims = tm_atls_peer_claims(r->v) != NULL;
    if (getenv("TM_ATLS_VERBOSE"))
        fprintf(stderr, "  [relay v=%d ps=%d pc=%d b=%d] %s\n", r->vdone, r->psdone, r->pcdone,
                r->bdone, res->verify_err);
}

static void relay_close(relay *r)
{
    SSL_free(r->v);
    SSL_free(r->ps);
    SSL_free(r->pc);
    SSL_free(r->b);
    SSL_CTX_free(r->vctx);
    SSL_CTX_free(r->psctx);
    SSL_CTX_free(r->pcctx);
    SSL_CTX_free(r->bctx);
    tm_atls_server_free(r->bsrv);
    tm_atls_client_free(r->vcli);
}

/* What the relayed evidence is bound to, as far as a verifier can check it. */
typedef struct relay_view {
    uint8_t nonce[32];
    uint8_t b_share[200], v_share[200];   /* B's own / the one the victim saw */
    size_t b_share_len, v_share_len;
    uint8_t binder_b[64], binder_v[64];   /* P-B handshake / victim-P handshake */
    size_t binder_b_len, binder_v_len;
    uint8_t spki_b[32], spki_v[32];       /* B's certificate / the victim's peer's */
    const uint8_t *ev;
    size_t ev_len;
    uint16_t format;
} relay_view;

static void relay_inspect(relay *r, relay_view *w)
{
    memset(w, 0, sizeof *w);
    tm_atls_request req;
    TM_CHECK_EQ(tm_atls_request_decode(r->req, r->req_len, &req), TM_ATLS_DEC_OK);
    memcpy(w->nonce, req.nonce, 32);
    TM_CHECK_MEM(w->nonce, H.nonce, 32);   /* B was asked with the victim's nonce */
    TM_CHECK_EQ(encoded_tmp_key(r->b, true, w->b_share, sizeof w->b_share, &w->b_share_len), 0);
    TM_CHECK_EQ(encoded_tmp_key(r->v, false, w->v_share, sizeof w->v_share, &w->v_share_len), 0);
    w->binder_b_len = kdf_binder(r->pc, w->binder_b);
    w->binder_v_len = kdf_binder(r->v, w->binder_v);
    TM_CHECK(w->binder_b_len >= 32 && w->binder_v_len == w->binder_b_len);
    uint8_t check[64];
    TM_CHECK(kdf_binder(r->b, check) == w->binder_b_len &&
             !memcmp(check, w->binder_b, w->binder_b_len));
    spki_sha256(g_srvcert, w->spki_b);
    X509 *peer = SSL_get0_peer_certificate(r->v);
    if (peer)
        spki_sha256(peer, w->spki_v);
    tm_atls_answer a;
    TM_CHECK_EQ(tm_atls_answer_decode(r->ans, r->ans_len, &a), TM_ATLS_DEC_OK);
    w->ev = a.evidence;
    w->ev_len = a.evidence_len;
    w->format = a.format;
}

/* tm_verify of the relayed evidence, bound with the victim's nonce and the
 * given binder, key share and certificate, under the victim's policy. */
static int appraise_v2(relay *r, const relay_view *w, const uint8_t *binder, size_t blen,
                       const uint8_t *share, size_t slen, const uint8_t *spki)
{
    char why[300];
    tm_claims c;
    uint8_t rd[64];
    rule_v2(w->nonce, binder, blen, share, slen, spki, rd);
    return tm_verify(w->format, w->ev, w->ev_len, rd, tm_atls_client_policy(r->vcli), time(NULL),
                     &c, why, sizeof why);
}

/* Opens and runs a relay; the upstream leg worked, B sent genuine evidence,
 * P relayed it, the victim's TLS handshake with P succeeded and its
 * attestation was refused with `why`. */
static void relay_refused(relay *r, bool intra, const char *why, result *res, relay_view *w)
{
    TM_CHECK_EQ(relay_open(r, intra), 0);
    relay_run(r, res);
    TM_CHECK(r->pcdone == 1 && r->bdone == 1);
    TM_CHECK_EQ(res->server_sent, 1);
    TM_CHECK(r->req_len > 0 && r->ans_len > 0);
    TM_CHECK_EQ(res->client_hs, 1);
    TM_CHECK_EQ(res->verify, -1);
    TM_CHECK(has(res->verify_err, why));
    TM_CHECK_EQ(res->have_claims, 0);
    relay_inspect(r, w);
}

static const char *RELAYED = "attestation refused (binding): genuine evidence from a TEE this "
                             "policy accepts, but not made for this handshake: it does not cover "
                             "this handshake's key-schedule binder";

static void test_relay_terminating(void)
{
    /* (a) P terminates the victim's TLS with its own certificate (which the
     * victim trusts) and opens its own TLS to B: the key share differs (v1
     * refused this already), and so do the certificate and the binder. */
    relay r;
    result res;
    relay_view w;
    hook_on(H_NONE);
    relay_refused(&r, false, RELAYED, &res, &w);
    TM_CHECK(w.b_share_len != w.v_share_len || memcmp(w.b_share, w.v_share, w.b_share_len));
    TM_CHECK(memcmp(w.spki_b, w.spki_v, 32) != 0);
    /* genuine for P's handshake with B, and for nothing the victim saw */
    TM_CHECK_EQ(appraise_v2(&r, &w, w.binder_b, w.binder_b_len, w.b_share, w.b_share_len, w.spki_b),
                TM_VERIFY_OK);
    TM_CHECK_EQ(appraise_v2(&r, &w, w.binder_v, w.binder_v_len, w.v_share, w.v_share_len, w.spki_v),
                TM_VERIFY_EBINDING);
    relay_close(&r);
    hook_off();
}

static void test_relay_intra_handshake(void)
{
    /* (b) P holds B's certificate key and B's ephemeral key share (keys
     * extracted from a TEE, here the deterministic RAND) and forwards the
     * request with a key share of its own: nonce, server key share and
     * certificate the victim sees are exactly those B bound (so v1 would have
     * accepted), and only the key-schedule binder differs. */
    relay r;
    result res;
    relay_view w;
    hook_on(H_NONE);
    relay_refused(&r, true, RELAYED, &res, &w);
    /* the v1 inputs match: same nonce (checked by relay_inspect), same server
     * key share (B's, P's, the victim's view), same certificate */
    uint8_t ps_share[200];
    size_t ps_len = 0;
    TM_CHECK_EQ(encoded_tmp_key(r.ps, true, ps_share, sizeof ps_share, &ps_len), 0);
    TM_CHECK(w.b_share_len > 0 && w.b_share_len == w.v_share_len && w.v_share_len == ps_len);
    TM_CHECK_MEM(w.b_share, w.v_share, w.b_share_len);
    TM_CHECK_MEM(w.b_share, ps_share, ps_len);
    TM_CHECK_MEM(w.spki_b, w.spki_v, 32);
    /* ... P's key share towards B was its own ... */
    uint8_t pc_share[200], v_own[200];
    size_t pc_len = 0, v_own_len = 0;
    TM_CHECK_EQ(encoded_tmp_key(r.b, false, pc_share, sizeof pc_share, &pc_len), 0);
    TM_CHECK_EQ(encoded_tmp_key(r.ps, false, v_own, sizeof v_own, &v_own_len), 0);
    TM_CHECK(pc_len != v_own_len || memcmp(pc_share, v_own, pc_len));
    /* ... and only the binder differs: the evidence appraises with B's binder
     * and the victim's own nonce, key share and certificate, not with the
     * victim's binder */
    TM_CHECK(memcmp(w.binder_b, w.binder_v, w.binder_b_len) != 0);
    TM_CHECK_EQ(appraise_v2(&r, &w, w.binder_b, w.binder_b_len, w.v_share, w.v_share_len, w.spki_v),
                TM_VERIFY_OK);
    TM_CHECK_EQ(appraise_v2(&r, &w, w.binder_v, w.binder_v_len, w.v_share, w.v_share_len, w.spki_v),
                TM_VERIFY_EBINDING);
    relay_close(&r);
    hook_off();
}

static void test_relay_intra_handshake_v1_evidence(void)
{
    /* The same relay of evidence made under the v1 rule (a v1 attester): the
     * victim recomputes the v1 binding from its own nonce, key share and
     * certificate, finds that it matches, and says so; a v1 verifier would
     * have accepted exactly this evidence. */
    relay r;
    result res;
    relay_view w;
    uint8_t spki[32];
    spki_sha256(g_srvcert, spki);
    hook_on(H_V1_EE);
    H.spki = spki;
    relay_refused(&r, true, "attestation refused (binding): evidence carries the v1 binding: "
                            "nonce, server key share and certificate match this handshake but "
                            "it covers no key-schedule binder", &res, &w);
    uint8_t rd[64];
    char why[300];
    tm_claims c;
    rule_v1(w.nonce, w.v_share, w.v_share_len, w.spki_v, rd);   /* what v1 checked */
    TM_CHECK_EQ(tm_verify(w.format, w.ev, w.ev_len, rd, tm_atls_client_policy(r.vcli), time(NULL),
                          &c, why, sizeof why), TM_VERIFY_OK);
    relay_close(&r);
    hook_off();
}

static void test_rebound_evidence(void)
{
    /* genuine TEE evidence over this handshake's nonce and binder, but another
     * certificate / no certificate / another key share */
    uint8_t other[32], mine[32];
    spki_sha256(g_srvcert2, other);
    spki_sha256(g_srvcert, mine);
    result r;
    hook_on(H_REBIND_EE);
    /* control: re-made over this handshake's own inputs it is accepted, so the
     * test's binder (OpenSSL's TLS13-KDF on the logged secret) is the real one */
    H.spki = mine;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    H.spki = other;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): genuine evidence"));
    H.spki = NULL;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): evidence bound to no certificate "
                               "(PSK) but the server presented one"));
    uint8_t fake[65];
    fake[0] = 4;
    RAND_bytes(fake + 1, 64);
    H.share = fake;
    H.share_len = sizeof fake;
    H.spki = mine;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): genuine evidence"));
    hook_off();
}

static void test_bit_flips(void)
{
    /* flip one bit at many places of the answer; every one must be refused */
    hook_on(H_CAPTURE_EE);
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    size_t total = H.len;
    TM_CHECK(total > 100);
    int refused = 0, tried = 0;
    for (size_t at = 0; at < total; at += (at < 140 ? 3 : 11)) {
        H.mode = H_FLIP_EE;
        H.flip_at = at;
        TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
        if (!H.flipped)
            continue;   /* this handshake's answer was shorter than the captured one */
        tried++;
        if (r.client_hs != 1 || r.verify != 0)
            refused++;
        else
            fprintf(stderr, "  flip at %zu accepted!\n", at);
        TM_CHECK_EQ(r.have_claims, 0);
    }
    TM_CHECK_EQ(refused, tried);
    /* specific reasons: report_data area -> binding, and the evidence is not
     * genuine on its own; measurement -> signature */
    H.mode = H_FLIP_EE;
    H.flip_at = 5 + 8 + 32 + 4 + 8 + 10;   /* inside report_data */
    run(&SIM, &ATTEST, &r);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): evidence covers no binding of "
                               "this handshake and is not genuine on its own either (signature"));
    H.flip_at = 5 + 8 + 2;                 /* inside the measurement */
    run(&SIM, &ATTEST, &r);
    TM_CHECK(has(r.verify_err, "attestation refused (signature)"));
    hook_off();
}

static void test_policy_refusals(void)
{
    /* every policy pins the platform key and the measurement explicitly */
    result r;
    char pol[400];
    /* untrusted sim key */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki2_hex, MEAS);
    client_spec c1 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&SIM, &c1, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (untrusted)"));
    /* default policy: refused (sim is no TEE, nothing is pinned) */
    client_spec c0 = {.attest = true, .require = true, .policy_text = "# default\n"};
    TM_CHECK_EQ(run(&SIM, &c0, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK_EQ(r.have_claims, 0);
    /* measurement not in policy */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki_hex, MEAS2);
    client_spec c2 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&SIM, &c2, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (policy)"));
    /* debug refused */
    char opts[600];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s,debug=true", g_simkey, MEAS);
    server_spec dbg = {.provider = "sim", .opts = opts};
    TM_CHECK_EQ(run(&dbg, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "debug"));
    /* ... unless allowed */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\nallow_debug true\n",
             g_spki_hex, MEAS);
    client_spec c3 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&dbg, &c3, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.debug, 1);
}

/* the caller lowered the minimum again after the setup hook */
static void allow_tls12(SSL *s) { SSL_set_min_proto_version(s, TLS1_2_VERSION); }

static void test_tls12_never(void)
{
    /* a server limited to TLS 1.2 never sees nor answers the extension; a
     * client that requires attestation refuses to go below 1.3 */
    pair p;
    result r;
    TM_CHECK_EQ(pair_open(&p, &SIM, &ATTEST), 0);
    SSL_set_max_proto_version(p.s, TLS1_2_VERSION);
    pair_run(&p, &r, &ATTEST);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK_EQ(r.server_sent, 0);
    pair_close(&p);
    client_spec plain = {0};
    TM_CHECK_EQ(pair_open(&p, &SIM, &plain), 0);
    SSL_set_max_proto_version(p.s, TLS1_2_VERSION);
    pair_run(&p, &r, &plain);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
    pair_close(&p);
    /* a caller that forced TLS 1.2 back on: the verify hook still refuses */
    client_spec low = ATTEST;
    low.ssl_fn = allow_tls12;
    TM_CHECK_EQ(pair_open(&p, &SIM, &low), 0);
    SSL_set_max_proto_version(p.s, TLS1_2_VERSION);
    pair_run(&p, &r, &low);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation needs TLS 1.3, the server negotiated TLSv1.2"));
    pair_close(&p);
}

static void test_hook_misuse(void)
{
    char err[300] = "";
    client_spec plain = {0};
    pair p;
    TM_CHECK_EQ(pair_open(&p, &SIM, &plain), 0);
    tm_atls_client *cc = tm_atls_client_new(&(tm_atls_client_opts){.require = true}, err,
                                            sizeof err);
    TM_CHECK(cc != NULL);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, NULL, err, sizeof err), -1);
    TM_CHECK(has(err, "attestation: no client configuration"));
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, cc, err, sizeof err), -1);
    TM_CHECK(has(err, "the extension was not registered on this SSL_CTX before the connection "
                      "was created"));
    TM_CHECK_EQ(tm_atls_client_verify(p.c, cc, err, sizeof err), -1);
    TM_CHECK(has(err, "attestation: setup hook did not run for this connection"));
    tm_atls_client_free(cc);
    pair_close(&p);
}

/* A server that is not tmqtt: it puts the extension in its own Certificate. */
static int rogue_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out,
                     size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    static const unsigned char junk[] = {2, 0, 1, 0, 1, 0};
    if (context != SSL_EXT_TLS1_3_CERTIFICATE || chainidx != 0)
        return 0;
    *out = junk;
    *outlen = sizeof junk;
    return 1;
}
static int rogue_parse(SSL *s, unsigned int type, unsigned int context, const unsigned char *in,
                       size_t inlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    return 1;
}
static void rogue_server(SSL_CTX *c)
{
    SSL_CTX_add_custom_ext(c, TM_ATLS_EXT_TYPE, SSL_EXT_TLS1_3_ONLY | SSL_EXT_CLIENT_HELLO |
                                                    SSL_EXT_TLS1_3_CERTIFICATE,
                           rogue_add, NULL, NULL, rogue_parse, NULL);
}

static void test_extension_in_wrong_message(void)
{
    server_spec rogue = {.ctx_fn = rogue_server};
    result r;
    TM_CHECK_EQ(run(&rogue, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "attestation extension in the server's Certificate"));
}

/* ---- resumption and key exchange ---------------------------------------------- */

static int g_tickets;
static void count_tickets(int write_p, int version, int content_type, const void *buf,
                          size_t len, SSL *ssl, void *arg)
{
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
        ((const uint8_t *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
        g_tickets++;
}
/* count NewSessionTicket messages; accept tickets even where the setup hook
 * said SSL_OP_NO_TICKET, so that what is counted is the server's decision */
static void ssl_count_tickets(SSL *s)
{
    SSL_clear_options(s, SSL_OP_NO_TICKET);
    SSL_set_msg_callback(s, count_tickets);
}

static void drain(SSL *c)
{
    uint8_t b[16];
    for (int i = 0; i < 4; i++)
        SSL_read(c, b, sizeof b);   /* processes post-handshake messages; no data follows */
    ERR_clear_error();
}

static int tickets(const server_spec *ss, const client_spec *cs, int *verify)
{
    pair p;
    result r;
    g_tickets = 0;
    if (pair_open(&p, ss, cs) < 0) {
        pair_close(&p);
        return -1;
    }
    pair_run(&p, &r, cs);
    drain(p.c);
    *verify = r.verify;
    pair_close(&p);
    return g_tickets;
}

static void test_no_tickets_with_evidence(void)
{
    int v = 0;
    client_spec plain = {.ssl_fn = ssl_count_tickets};
    TM_CHECK_EQ(tickets(&SIM, &plain, &v), 2);           /* control: OpenSSL's default */
    client_spec att = ATTEST;
    att.ssl_fn = ssl_count_tickets;
    TM_CHECK_EQ(tickets(&SIM, &att, &v), 0);             /* evidence sent: none */
    TM_CHECK_EQ(v, 0);
    /* asked, but no evidence sent (format it cannot produce): tickets as usual */
    client_spec sgx = {.attest = true, .formats = "sgx-dcap", .ssl_fn = ssl_count_tickets};
    TM_CHECK_EQ(tickets(&SIM, &sgx, &v), 2);
    /* client evidence required: none */
    char cpol[400], copts[600];
    snprintf(cpol, sizeof cpol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki2_hex, MEAS2);
    snprintf(copts, sizeof copts, "key=%s,measurement=%s", g_simkey2, MEAS2);
    server_spec mutual = {.require_client = true, .client_policy_text = cpol};
    client_spec mc = {.provider = "sim", .provider_opts = copts, .cert = true,
                      .ssl_fn = ssl_count_tickets};
    TM_CHECK_EQ(tickets(&mutual, &mc, &v), 0);
}

static void test_no_resumption_offered(void)
{
    pair p;
    result r;
    char err[300] = "";
    client_spec reg = {.provider = "none"};   /* extension registered, plain handshake */
    TM_CHECK_EQ(pair_open(&p, &SIM, &reg), 0);
    pair_run(&p, &r, &reg);
    drain(p.c);
    SSL_SESSION *sess = SSL_get1_session(p.c);
    TM_CHECK(sess && SSL_SESSION_is_resumable(sess));
    SSL_shutdown(p.c);   /* (freed without it, OpenSSL marks the session not resumable) */
    /* control: a plain client resumes with it */
    pair_renew(&p);
    SSL_set_session(p.c, sess);
    pair_handshake(&p);
    TM_CHECK_EQ(p.cdone, 1);
    TM_CHECK_EQ(SSL_session_reused(p.c), 1);
    /* an attesting client refuses to offer it */
    pair_renew(&p);
    SSL_set_session(p.c, sess);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), -1);
    TM_CHECK(has(err, "attested connections never resume"));
    /* and never asks for tickets, never offers psk_ke */
    pair_renew(&p);
    SSL_set_options(p.c, SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_clear_options(p.c, SSL_OP_NO_TICKET);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), 0);
    TM_CHECK(SSL_get_options(p.c) & SSL_OP_NO_TICKET);
    TM_CHECK(!(SSL_get_options(p.c) & SSL_OP_ALLOW_NO_DHE_KEX));
    SSL_SESSION_free(sess);
    pair_close(&p);
}

/* An external PSK (TLS 1.3) for both sides. With no group in common and
 * SSL_OP_ALLOW_NO_DHE_KEX on both, OpenSSL falls back to psk_ke: no (EC)DHE. */
static const unsigned char PSK[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static SSL_SESSION *psk_session(SSL *s)
{
    static const unsigned char aes128gcm[] = {0x13, 0x01};
    SSL_SESSION *ss = SSL_SESSION_new();
    SSL_SESSION_set1_master_key(ss, PSK, sizeof PSK);
    SSL_SESSION_set_cipher(ss, SSL_CIPHER_find(s, aes128gcm));
    SSL_SESSION_set_protocol_version(ss, TLS1_3_VERSION);
    return ss;
}

static int psk_use(SSL *s, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                   SSL_SESSION **sess)
{
    *id = (const unsigned char *)"id1";
    *idlen = 3;
    *sess = psk_session(s);
    return 1;
}

static int psk_find(SSL *s, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    *sess = idlen == 3 && !memcmp(id, "id1", 3) ? psk_session(s) : NULL;
    return 1;
}

static void srv_psk(SSL_CTX *c) { SSL_CTX_set_psk_find_session_callback(c, psk_find); }
static void srv_psk_ke(SSL_CTX *c)
{
    srv_psk(c);
    SSL_CTX_set_options(c, SSL_OP_ALLOW_NO_DHE_KEX);
    SSL_CTX_set1_groups_list(c, "X25519");
}
/* (the PSK's hash must be the suite's: offer the SHA-256 suite only) */
static void cli_psk(SSL *s)
{
    SSL_set_psk_use_session_callback(s, psk_use);
    SSL_set_ciphersuites(s, "TLS_AES_128_GCM_SHA256");
}
static void cli_psk_other_group(SSL *s)
{
    cli_psk(s);
    SSL_set1_groups_list(s, "P-256");
}
/* a client that offers psk_ke although it asks for attestation */
static void cli_psk_ke(SSL *s)
{
    cli_psk_other_group(s);
    SSL_set_options(s, SSL_OP_ALLOW_NO_DHE_KEX);
}

static void test_psk(void)
{
    result r;
    pair p;
    /* external PSK with (EC)DHE: attested, bound to no certificate */
    server_spec sp = {.provider = "sim", .ctx_fn = srv_psk};
    client_spec cp = ATTEST;
    cp.ssl_fn = cli_psk;
    hook_on(H_NONE);
    TM_CHECK_EQ(pair_open(&p, &sp, &cp), 0);
    pair_run(&p, &r, &cp);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK(SSL_get0_peer_certificate(p.c) == NULL);
    uint8_t binder[64], share[200], want[64];
    size_t slen = 0, blen = kdf_binder(p.c, binder);
    encoded_tmp_key(p.c, false, share, sizeof share, &slen);
    rule_v2(H.nonce, binder, blen, share, slen, NULL, want);
    TM_CHECK(r.have_claims && !memcmp(r.claims.report_data, want, 64));
    pair_close(&p);
    hook_off();

    /* control: this setup really ends in psk_ke (no server key share) */
    server_spec ke = {.provider = "sim", .ctx_fn = srv_psk_ke};
    client_spec plain = {.ssl_fn = cli_psk_ke};
    TM_CHECK_EQ(pair_open(&p, &ke, &plain), 0);
    pair_handshake(&p);
    TM_CHECK_EQ(p.cdone, 1);
    EVP_PKEY *k = NULL;
    TM_CHECK_EQ(SSL_get_peer_tmp_key(p.c, &k), 0);
    EVP_PKEY_free(k);
    pair_close(&p);
    /* attestation requested on psk_ke: the server refuses */
    client_spec att_ke = ATTEST;
    att_ke.ssl_fn = cli_psk_ke;
    TM_CHECK_EQ(run(&ke, &att_ke, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.server_reason, "attestation requested on a handshake without (EC)DHE key "
                                  "share (psk_ke only): refused"));
    /* ... and so does the client when the server does not attest at all */
    server_spec ke_none = {.ctx_fn = srv_psk_ke};
    TM_CHECK_EQ(run(&ke_none, &att_ke, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "handshake without (EC)DHE key exchange (psk_ke only): it cannot "
                               "be attested"));
    /* a client as the setup hook leaves it never gets there: no psk_ke offered */
    client_spec att = ATTEST;
    att.ssl_fn = cli_psk_other_group;
    TM_CHECK_EQ(run(&ke, &att, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK_EQ(r.server_sent, 0);
}

/* ---- key logging and the binder's lifetime ------------------------------------------ */

static int g_user_lines;
static SSL_CTX_keylog_cb_func g_user_prev;
static void user_keylog(const SSL *s, const char *line) { g_user_lines++; }
static void user_keylog_chained(const SSL *s, const char *line)
{
    g_user_lines++;
    if (g_user_prev)
        g_user_prev(s, line);
}
static void user_after_replacing(SSL_CTX *c) { SSL_CTX_set_keylog_callback(c, user_keylog); }
static void user_after_chaining(SSL_CTX *c)
{
    g_user_prev = SSL_CTX_get_keylog_callback(c);
    SSL_CTX_set_keylog_callback(c, user_keylog_chained);
}
static void register_twice(SSL_CTX *c)
{
    char err[200];
    TM_CHECK_EQ(tm_atls_client_ctx_init(c, err, sizeof err), 0);
}

static void test_keylog_chaining(void)
{
    pair p;
    result r;
    /* installed before the extension (as src/client/tls.c does for
     * SSLKEYLOGFILE): sees all five TLS 1.3 lines exactly once, even when the
     * extension is registered twice */
    client_spec twice = ATTEST;
    twice.ctx_fn = register_twice;
    TM_CHECK_EQ(pair_open(&p, &SIM, &twice), 0);
    pair_run(&p, &r, &twice);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK(kl_find(p.c) && kl_find(p.c)->lines == 5);
    TM_CHECK(kl_find(p.s) && kl_find(p.s)->lines == 5);
    pair_close(&p);
    /* installed after, chaining to what it found: both work */
    client_spec chain = ATTEST;
    chain.ctx_fn = user_after_chaining;
    g_user_lines = 0;
    TM_CHECK_EQ(run(&SIM, &chain, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(g_user_lines, 5);
    /* installed after, replacing ours: attestation fails closed, with a reason */
    client_spec repl = ATTEST;
    repl.ctx_fn = user_after_replacing;
    g_user_lines = 0;
    TM_CHECK_EQ(run(&SIM, &repl, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(g_user_lines > 0);
    TM_CHECK(has(r.client_reason, "no key-schedule binder for this handshake"));
    server_spec srepl = {.provider = "sim", .ctx_fn = user_after_replacing};
    TM_CHECK_EQ(run(&srepl, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK(has(r.server_reason, "no key-schedule binder for this handshake"));
}

static void test_binder_lifetime(void)
{
    pair p;
    result r;
    char err[300] = "";
    TM_CHECK_EQ(pair_open(&p, &SIM, &ATTEST), 0);
    pair_handshake(&p);
    TM_CHECK_EQ(tm_atls_binder_held(p.s), 0);    /* server: wiped once the evidence was made */
    /* client: kept until the evidence is checked (OpenSSL's default suite
     * preference picks TLS_AES_256_GCM_SHA384: Hash.length 48) */
    TM_CHECK_EQ(tm_atls_binder_held(p.c), 48);
    pair_results(&p, &r, &ATTEST);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(tm_atls_binder_held(p.c), 0);
    TM_CHECK_EQ(tm_atls_client_verify(p.c, p.cli, err, sizeof err), -1);
    TM_CHECK(has(err, "already used and wiped"));
    pair_close(&p);
    /* a client that asks nothing: its server never keeps a binder */
    client_spec plain = {0};
    TM_CHECK_EQ(pair_open(&p, &SIM, &plain), 0);
    pair_handshake(&p);
    TM_CHECK(p.cdone == 1 && tm_atls_binder_held(p.s) == 0 && !tm_atls_reason(p.s)[0]);
    pair_close(&p);
}

/* ---- mutual attestation ------------------------------------------------------ */

static void test_mutual(void)
{
    char cpol[400], copts[600];
    snprintf(cpol, sizeof cpol, "sim_trusted_key %s\nsim_measurement %s\nmeasurement_set sensors %s\n",
             g_spki2_hex, MEAS2, MEAS2);
    snprintf(copts, sizeof copts, "key=%s,measurement=%s", g_simkey2, MEAS2);
    server_spec ss = {.provider = "sim", .require_client = true, .client_policy_text = cpol};
    client_spec cs = {.attest = true, .require = true, .provider = "sim", .provider_opts = copts,
                      .cert = true};
    result r;
    pair p;
    hook_on(H_NONE);   /* notes the CertificateRequest's nonce */
    TM_CHECK_EQ(pair_open(&p, &ss, &cs), 0);
    pair_handshake(&p);
    TM_CHECK_EQ(tm_atls_binder_held(p.s), 0);   /* wiped after the client's evidence */
    pair_results(&p, &r, &cs);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.client_result, 1);
    TM_CHECK_EQ(r.client_claims.format, TM_FMT_SIM);
    TM_CHECK_EQ(r.client_claims.measurement[0], 0x22);
    if (r.client_result != 1)
        fprintf(stderr, "  server: %s\n", r.server_reason);
    /* the client's evidence covers the client label, the server's nonce, the
     * same binder, the server's key share and the client certificate */
    uint8_t binder[64], share[200], spki[32], want[64];
    size_t slen = 0, blen = kdf_binder(p.s, binder);
    TM_CHECK(blen >= 32 && kdf_binder(p.c, want) == blen && !memcmp(binder, want, blen));
    encoded_tmp_key(p.s, true, share, sizeof share, &slen);
    spki_sha256(g_clicert, spki);
    rule_v2_label("tmqtt-atls-v2 client", H.cr_nonce, binder, blen, share, slen, spki, want);
    TM_CHECK_MEM(r.client_claims.report_data, want, 64);
    pair_close(&p);
    hook_off();

    /* client without evidence: the TLS handshake ends, nothing to keep */
    client_spec noev = {.attest = true, .require = true, .cert = true};
    TM_CHECK_EQ(run(&ss, &noev, &r), 0);
    TM_CHECK_EQ(r.client_result, 0);

    /* wrongly measured client: access_denied during the handshake */
    char bad[600];
    snprintf(bad, sizeof bad, "key=%s,measurement=%s", g_simkey2, MEAS);
    client_spec wrong = cs;
    wrong.provider_opts = bad;
    TM_CHECK_EQ(run(&ss, &wrong, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "client attestation refused (policy)"));

    /* untrusted client platform key */
    snprintf(bad, sizeof bad, "key=%s,measurement=%s", g_simkey, MEAS2);
    wrong.provider_opts = bad;
    TM_CHECK_EQ(run(&ss, &wrong, &r), 0);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "client attestation refused (untrusted)"));
}

static void test_mutual_malformed(void)
{
    char cpol[400], copts[600];
    snprintf(cpol, sizeof cpol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki2_hex, MEAS2);
    snprintf(copts, sizeof copts, "key=%s,measurement=%s", g_simkey2, MEAS2);
    server_spec ss = {.provider = "sim", .require_client = true, .client_policy_text = cpol};
    client_spec cs = {.attest = true, .require = true, .provider = "sim", .provider_opts = copts,
                      .cert = true};
    result r;
    /* the server's request one byte short: decode_error at the client */
    hook_on(H_TRUNC_EE);
    H.target = SSL_EXT_TLS1_3_CERTIFICATE_REQUEST;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "malformed AttestationRequest in CertificateRequest"));
    /* the client's answer one byte short: decode_error at the server */
    H.target = SSL_EXT_TLS1_3_CERTIFICATE;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "malformed client AttestationEvidence"));
    /* in a format the server did not ask for */
    H.mode = H_FORMAT_EE;
    H.format = 0x0105;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "client evidence in format 0x0105 which was not requested"));
    /* one bit of report_data flipped: the binding check at the server */
    H.mode = H_FLIP_EE;
    H.flip_at = 5 + 8 + 32 + 4 + 8 + 10;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "client attestation refused (binding)"));
    hook_off();
}


/* ---- key-attested evidence (+key formats) ------------------------------------ */

static const server_spec SIMKEY = {.provider = "sim", .formats = "sim+key,sim"};
static const client_spec ATTEST_KEY = {.attest = true, .require = true, .formats = "sim+key"};

/* The key binding, written out here independently of keyatt.c. */
static void rule_key(const uint8_t *spki, size_t n, uint64_t not_after, uint8_t out[64])
{
    uint8_t na[8];
    for (int i = 0; i < 8; i++)
        na[i] = (uint8_t)(not_after >> (56 - 8 * i));
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha512(), NULL);
    EVP_DigestUpdate(m, "tmqtt-atls-v2 key", 18);   /* with the 0x00 */
    EVP_DigestUpdate(m, spki, n);
    EVP_DigestUpdate(m, na, 8);
    EVP_DigestFinal_ex(m, out, NULL);
    EVP_MD_CTX_free(m);
}

static size_t der_spki(EVP_PKEY *k, uint8_t *out, size_t cap)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    size_t r = n > 0 && (size_t)n <= cap ? (size_t)n : 0;
    if (r)
        memcpy(out, der, r);
    OPENSSL_free(der);
    return r;
}

/* KeyAttestedEvidence written by the test: platform evidence from the trusted
 * sim key over the key binding of (spki, not_after), the attestation key's
 * signature over `rd`. `bound` is the SPKI the platform evidence binds. */
static size_t keyatt_make(EVP_PKEY *key, const uint8_t *bound, size_t bound_len, uint64_t not_after,
                          const uint8_t rd[64], uint8_t *out, size_t cap)
{
    uint8_t spki[200], kb[64], plat[4096], sig[80];
    size_t sl = der_spki(key, spki, sizeof spki), siglen = sizeof sig;
    rule_key(bound ? bound : spki, bound ? bound_len : sl, not_after, kb);
    size_t pl = H.key_client ? sim_evidence_by(g_simkey2, MEAS2, kb, plat, sizeof plat)
                             : sim_evidence(kb, plat, sizeof plat);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key);
    EVP_DigestSign(m, sig, &siglen, rd, 64);
    EVP_MD_CTX_free(m);
    size_t n = 2 + pl + 2 + sl + 8 + 2 + siglen;
    if (!pl || !sl || n > cap)
        return 0;
    uint8_t *p = out;
    *p++ = (uint8_t)(pl >> 8), *p++ = (uint8_t)pl, memcpy(p, plat, pl), p += pl;
    *p++ = (uint8_t)(sl >> 8), *p++ = (uint8_t)sl, memcpy(p, spki, sl), p += sl;
    for (int i = 7; i >= 0; i--)
        *p++ = (uint8_t)(not_after >> (8 * i));
    *p++ = (uint8_t)(siglen >> 8), *p++ = (uint8_t)siglen, memcpy(p, sig, siglen);
    return n;
}

/* H_KEYATT_EE: replaces the answer with forged +key evidence over this
 * handshake's true session binding (server's, or with H.key_client the
 * client's in its Certificate), key valid until H.not_after. */
static void keyatt_forge(SSL *ssl, uint8_t *buf, size_t *len, size_t cap)
{
    uint8_t share[200], binder[64], rd[64], spki[32];
    size_t slen = 0, blen = kdf_binder(ssl, binder);
    if (H.key_client) {
        encoded_tmp_key(ssl, false, share, sizeof share, &slen);
        spki_sha256(g_clicert, spki);
        rule_v2_label("tmqtt-atls-v2 client", H.cr_nonce, binder, blen, share, slen, spki, rd);
    } else {
        encoded_tmp_key(ssl, true, share, sizeof share, &slen);
        spki_sha256(g_srvcert, spki);
        rule_v2(H.nonce, binder, blen, share, slen, spki, rd);
    }
    EVP_PKEY *k = p256(), *other = H.other_key ? p256() : NULL;
    uint8_t ospki[200];
    size_t ol = other ? der_spki(other, ospki, sizeof ospki) : 0;
    size_t n = keyatt_make(k, other ? ospki : NULL, ol, H.not_after, rd, buf + 5, cap - 5);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    buf[1] = (uint8_t)(TM_FMT_SIM_KEY >> 8);
    buf[2] = (uint8_t)TM_FMT_SIM_KEY;
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    *len = 5 + n;
}

static void test_keyatt_ok(void)
{
    pair p;
    result r;
    hook_on(H_CAPTURE_EE);
    TM_CHECK_EQ(pair_open(&p, &SIMKEY, &ATTEST_KEY), 0);
    pair_run(&p, &r, &ATTEST_KEY);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.have_claims, 1);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM_KEY);
    TM_CHECK(has(r.claims.format_name, "sim+key"));
    TM_CHECK_EQ(r.claims.key_attested, 1);
    TM_CHECK_EQ(r.claims.measurement[0], 0x11);
    uint64_t now = (uint64_t)time(NULL);
    TM_CHECK(r.claims.key_not_after > now + 3500 && r.claims.key_not_after <= now + 3600);
    /* the wire: version 2, format 0x0101, KeyAttestedEvidence whose platform
     * evidence carries the key binding and whose key signed this handshake's
     * binding, both recomputed here */
    TM_CHECK(H.len > 5 && H.buf[1] == 0x01 && H.buf[2] == 0x01);
    const uint8_t *e = H.buf + 5;
    size_t pl = (size_t)e[0] << 8 | e[1];
    const uint8_t *spki = e + 2 + pl + 2;
    size_t sl = (size_t)e[2 + pl] << 8 | e[3 + pl];
    uint64_t na = 0;
    for (int i = 0; i < 8; i++)
        na = na << 8 | spki[sl + (size_t)i];
    TM_CHECK_EQ(na, r.claims.key_not_after);
    uint8_t kb[64];
    rule_key(spki, sl, na, kb);
    TM_CHECK_MEM(r.claims.report_data, kb, 64);
    uint8_t binder[64], share[200], cert[32], want[64];
    size_t blen = kdf_binder(p.c, binder), shl = 0;
    encoded_tmp_key(p.c, false, share, sizeof share, &shl);
    spki_sha256(g_srvcert, cert);
    rule_v2(H.nonce, binder, blen, share, shl, cert, want);
    const uint8_t *sig = spki + sl + 8 + 2;
    size_t sigl = (size_t)spki[sl + 8] << 8 | spki[sl + 9];
    const unsigned char *q = spki;
    EVP_PKEY *ak = d2i_PUBKEY(NULL, &q, (long)sl);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    TM_CHECK(ak && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, ak) == 1 &&
             EVP_DigestVerify(m, sig, sigl, want, 64) == 1);
    EVP_MD_CTX_free(m);
    EVP_PKEY_free(ak);
    uint8_t first_key[32];
    memcpy(first_key, r.claims.key_sha256, 32);
    /* a second handshake: the same attestation key, a new signature */
    pair_renew(&p);
    char err[200];
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), 0);
    H.mode = H_NONE;
    pair_run(&p, &r, &ATTEST_KEY);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_MEM(r.claims.key_sha256, first_key, 32);
    pair_close(&p);
    hook_off();
    /* the text and JSON claims say so */
    char buf[4096];
    tm_claims_text(&r.claims, buf, sizeof buf);
    TM_CHECK(has(buf, "format: sim+key\n") && has(buf, "key_attested: true\n") &&
             has(buf, "key_not_after: ") && has(buf, "attestation_key_sha256: "));
    tm_claims_json(&r.claims, buf, sizeof buf);
    TM_CHECK(has(buf, "\"format\":\"sim+key\"") && has(buf, "\"key_attested\":true"));
}

/* The broker answers the first format of the client's list it can produce. */
static void test_keyatt_choice(void)
{
    result r;
    client_spec direct_first = {.attest = true, .require = true, .formats = "sim,sim+key"};
    TM_CHECK_EQ(run(&SIMKEY, &direct_first, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM);
    TM_CHECK_EQ(r.claims.key_attested, 0);
    client_spec key_first = {.attest = true, .require = true, .formats = "sim+key,sim"};
    TM_CHECK_EQ(run(&SIMKEY, &key_first, &r), 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM_KEY);
    /* the default list asks for +key before the direct format */
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM_KEY);
    /* a listener without +key in attestation_formats answers the direct format ... */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM);
    /* ... and nothing to a client that wants +key only */
    TM_CHECK_EQ(run(&SIM, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK(has(r.verify_err, "cannot produce any of the formats requested (sim+key)"));
    /* +key only: a client asking for the direct format gets nothing */
    server_spec keyonly = {.provider = "sim", .formats = "sim+key"};
    client_spec simonly = {.attest = true, .require = true, .formats = "sim"};
    TM_CHECK_EQ(run(&keyonly, &simonly, &r), 0);
    TM_CHECK_EQ(r.server_sent, 0);
    /* a format the provider cannot produce is refused at configuration time */
    char err[300] = "", opts[600];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s", g_simkey, MEAS);
    tm_atls_server_opts bad = {.provider = "sim", .provider_opts = opts, .formats = "sgx-dcap+key"};
    TM_CHECK(tm_atls_server_new(&bad, err, sizeof err) == NULL);
    TM_CHECK(has(err, "produces none of the attestation_formats 'sgx-dcap+key'"));
    bad.formats = "sim+kee";
    TM_CHECK(tm_atls_server_new(&bad, err, sizeof err) == NULL);
    TM_CHECK(has(err, "unknown evidence format 'sim+kee'"));
}

static void test_keyatt_rejections(void)
{
    result r;
    uint64_t now = (uint64_t)time(NULL);
    hook_on(H_KEYATT_EE);
    /* control: the test's own +key evidence over this handshake is accepted,
     * so each refusal below is about the one thing changed */
    H.not_after = now + 600;
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.key_not_after, now + 600);
    /* expired key */
    H.not_after = now - 5;
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (key): sim+key: attestation key expired at"));
    TM_CHECK_EQ(r.have_claims, 0);
    /* valid for longer than the policy's maximum (default 86400 s) */
    H.not_after = now + 2 * 86400;
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "longer than the policy's max_key_lifetime (86400 s)"));
    /* the platform evidence binds another key */
    H.not_after = now + 600;
    H.other_key = true;
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (key): sim+key: the platform evidence does "
                               "not bind this attestation key"));
    H.other_key = false;
    /* a signature over another handshake: genuine evidence from an earlier one */
    pair p;
    char err[200];
    hook_on(H_CAPTURE_EE);
    TM_CHECK_EQ(pair_open(&p, &SIMKEY, &ATTEST_KEY), 0);
    pair_run(&p, &r, &ATTEST_KEY);
    TM_CHECK_EQ(r.verify, 0);
    pair_renew(&p);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), 0);
    H.mode = H_REPLACE_EE;
    pair_run(&p, &r, &ATTEST_KEY);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): evidence replayed from an earlier "
                               "handshake of this client"));
    pair_close(&p);
    /* ... and from another client's handshake: genuine, not for this one */
    H.mode = H_REPLACE_EE;
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "attestation refused (binding): genuine evidence from a TEE this "
                               "policy accepts, but not made for this handshake"));
    /* one flipped bit anywhere: refused */
    hook_on(H_CAPTURE_EE);
    TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
    size_t total = H.len;
    int tried = 0, refused = 0;
    for (size_t at = 0; at < total; at += 7) {
        H.mode = H_FLIP_EE;
        H.flip_at = at;
        TM_CHECK_EQ(run(&SIMKEY, &ATTEST_KEY, &r), 0);
        if (!H.flipped)
            continue;   /* this handshake's answer was shorter than the captured one */
        tried++;
        if (r.client_hs != 1 || r.verify != 0)
            refused++;
        else
            fprintf(stderr, "  flip at %zu of %zu accepted!\n", at, total);
    }
    TM_CHECK(tried > 50);
    TM_CHECK_EQ(refused, tried);
    hook_off();
    /* a genuine key of the broker (lifetime 3600 s) under a policy that
     * allows 600 s at most */
    char pol[400];
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\nmax_key_lifetime 600\n",
             g_spki_hex, MEAS);
    client_spec strict = {.attest = true, .require = true, .formats = "sim+key", .policy_text = pol};
    TM_CHECK_EQ(run(&SIMKEY, &strict, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "longer than the policy's max_key_lifetime (600 s)"));
    /* ... and a broker whose keys live 300 s passes it */
    server_spec short_keys = SIMKEY;
    short_keys.key_lifetime = 300;
    TM_CHECK_EQ(run(&short_keys, &strict, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    /* untrusted platform key inside: as for the direct format */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki2_hex, MEAS);
    client_spec untrusted = {.attest = true, .require = true, .formats = "sim+key",
                             .policy_text = pol};
    TM_CHECK_EQ(run(&SIMKEY, &untrusted, &r), 0);
    TM_CHECK(has(r.verify_err, "attestation refused (untrusted)"));
    /* measurement not pinned: the refusal names the +key format */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\n", g_spki_hex);
    client_spec nopin = {.attest = true, .require = true, .formats = "sim+key", .policy_text = pol};
    TM_CHECK_EQ(run(&SIMKEY, &nopin, &r), 0);
    TM_CHECK(has(r.verify_err, "no measurement pinned for sim+key evidence"));
    /* a policy that accepts the direct format only refuses +key */
    snprintf(pol, sizeof pol, "format sim\nsim_trusted_key %s\nsim_measurement %s\n", g_spki_hex,
             MEAS);
    client_spec directpol = {.attest = true, .require = true, .formats = "sim+key",
                             .policy_text = pol};
    TM_CHECK_EQ(run(&SIMKEY, &directpol, &r), 0);
    TM_CHECK(has(r.verify_err, "evidence format sim+key is not accepted by policy"));
}

static void test_keyatt_mutual(void)
{
    char cpol[400], copts[600];
    snprintf(cpol, sizeof cpol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki2_hex, MEAS2);
    snprintf(copts, sizeof copts, "key=%s,measurement=%s", g_simkey2, MEAS2);
    server_spec ss = {.provider = "sim", .formats = "sim+key", .require_client = true,
                      .client_policy_text = cpol};
    client_spec cs = {.attest = true, .require = true, .formats = "sim+key", .provider = "sim",
                      .provider_opts = copts, .own_formats = "sim+key,sim", .cert = true};
    pair p;
    result r;
    hook_on(H_NONE);
    TM_CHECK_EQ(pair_open(&p, &ss, &cs), 0);
    pair_run(&p, &r, &cs);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM_KEY);
    TM_CHECK_EQ(r.client_result, 1);
    TM_CHECK_EQ(r.client_claims.format, TM_FMT_SIM_KEY);
    TM_CHECK_EQ(r.client_claims.key_attested, 1);
    TM_CHECK_EQ(r.client_claims.measurement[0], 0x22);
    uint8_t ckey[32];
    memcpy(ckey, r.client_claims.key_sha256, 32);
    /* the client keeps its attestation key for its next handshake */
    char err[200];
    pair_renew(&p);
    TM_CHECK_EQ(tm_atls_client_setup(p.cctx, p.c, p.cli, err, sizeof err), 0);
    pair_run(&p, &r, &cs);
    TM_CHECK_EQ(r.client_result, 1);
    TM_CHECK_MEM(r.client_claims.key_sha256, ckey, 32);
    pair_close(&p);
    /* a client whose own formats are direct only answers sim */
    client_spec direct = cs;
    direct.own_formats = NULL;
    TM_CHECK_EQ(run(&ss, &direct, &r), 0);
    TM_CHECK_EQ(r.client_result, 1);
    TM_CHECK_EQ(r.client_claims.format, TM_FMT_SIM);
    /* the broker refuses an expired client key during the handshake */
    hook_on(H_KEYATT_EE);
    H.target = SSL_EXT_TLS1_3_CERTIFICATE;
    H.key_client = true;
    H.not_after = (uint64_t)time(NULL) - 1;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_result, -1);
    TM_CHECK(has(r.server_reason, "client attestation refused (key): sim+key: attestation key "
                                  "expired"));
    /* control: the same forgery with a valid key is accepted */
    H.not_after = (uint64_t)time(NULL) + 600;
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.client_result, 1);
    hook_off();
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A key rotation makes its quote in a worker thread with the provider lent:
 * meanwhile a handshake that needs a direct quote is paused in the
 * client-hello callback (never a second quote on the loop, never a
 * concurrent use of the provider), a +key handshake goes on with the current
 * key, and the paused one completes once the new key is adopted. */
static void test_keyatt_rotation_pauses_direct(void)
{
    char opts[600];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s,latency_ms=400", g_simkey, MEAS);
    server_spec ss = {.provider = "sim", .opts = opts, .formats = "sim+key,sim",
                      .key_worker = true};
    client_spec direct = {.attest = true, .require = true, .formats = "sim"};
    pair p, q;
    result r;
    TM_CHECK_EQ(pair_open(&p, &ss, &direct), 0);
    tm_atls_server *srv = p.srv;
    uint64_t first = 0;
    {
        /* the key in use now: from a +key handshake on the same server */
        client_spec kc = ATTEST_KEY;
        tm_atls_client *cli = NULL;
        SSL_CTX *cctx = client_ctx(&kc, &cli);
        SSL *c = SSL_new(cctx), *s = SSL_new(p.sctx);
        wire(c, s);
        SSL_set1_host(c, "localhost");
        char err[200];
        TM_CHECK_EQ(tm_atls_client_setup(cctx, c, cli, err, sizeof err), 0);
        int cd = 0, sd = 0;
        drive(c, &cd, s, &sd);
        TM_CHECK_EQ(tm_atls_client_verify(c, cli, err, sizeof err), 0);
        const tm_claims *cl = tm_atls_peer_claims(c);
        first = cl ? cl->key_not_after : 0;
        SSL_free(c);
        SSL_free(s);
        SSL_CTX_free(cctx);
        tm_atls_client_free(cli);
    }
    TM_CHECK(first > 0);
    /* three quarters of the lifetime later: the rotation starts in the worker */
    char note[300];
    time_t later = time(NULL) + 2800;
    TM_CHECK_EQ(tm_atls_server_tick(srv, later, note, sizeof note), 2);
    TM_CHECK(has(note, "rotating the sim attestation key"));
    /* the direct handshake pauses at the server's ClientHello */
    step(p.c, &p.cdone);
    ERR_clear_error();
    int sr = SSL_do_handshake(p.s);
    TM_CHECK_EQ(SSL_get_error(p.s, sr), SSL_ERROR_WANT_CLIENT_HELLO_CB);
    TM_CHECK_EQ(tm_atls_server_sent(p.s, NULL), 0);
    /* (where the pause happens, the handshake secret does not exist yet: no key-log
     * line, no binder; a quote could not be started here, only waited for) */
    klrec *kr = kl_find(p.s);
    TM_CHECK(!kr || kr->shts_len == 0);
    TM_CHECK_EQ(tm_atls_binder_held(p.s), 0);
    /* a +key handshake meanwhile is served with the current key */
    client_spec kc = ATTEST_KEY;
    TM_CHECK_EQ(pair_open(&q, &SIMKEY, &kc), 0);   /* (only its client side is used) */
    SSL_free(q.s);
    q.s = SSL_new(p.sctx);
    SSL_free(q.c);
    q.c = SSL_new(q.cctx);
    wire(q.c, q.s);
    SSL_set1_host(q.c, "localhost");
    char err[200];
    TM_CHECK_EQ(tm_atls_client_setup(q.cctx, q.c, q.cli, err, sizeof err), 0);
    pair_run(&q, &r, &kc);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.key_not_after, first);
    pair_close(&q);
    /* until the worker is done, the direct one stays paused */
    int64_t deadline = mono_ms() + 10000;
    int t = 0;
    while ((t = tm_atls_server_tick(srv, later, note, sizeof note)) == 0 && mono_ms() < deadline) {
        sr = SSL_do_handshake(p.s);
        TM_CHECK_EQ(SSL_get_error(p.s, sr), SSL_ERROR_WANT_CLIENT_HELLO_CB);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);   /* pacing only: progress is the worker's */
    }
    TM_CHECK_EQ(t, 1);
    TM_CHECK(has(note, "new sim attestation key"));
    /* the provider is back: the paused handshake completes with a direct quote */
    pair_run(&p, &r, &direct);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.format, TM_FMT_SIM);
    pair_close(&p);
}

static void test_claims_print(void)
{
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    char buf[4096];
    tm_claims_json(&r.claims, buf, sizeof buf);
    TM_CHECK(has(buf, "\"sim\""));
    TM_CHECK(has(buf, "1111111111"));
}

static void test_all_done(void) { cleanup(); }

static void init(void) { setup_once(); }

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_codec), TM_CASE(test_expand_label_kat),
             TM_CASE(test_sim_ok), TM_CASE(test_binder_is_the_key_schedule),
             TM_CASE(test_no_request_no_evidence), TM_CASE(test_missing_answer),
             TM_CASE(test_unsupported_format), TM_CASE(test_malformed),
             TM_CASE(test_v1_request_no_answer), TM_CASE(test_replay),
             TM_CASE(test_relay_terminating), TM_CASE(test_relay_intra_handshake),
             TM_CASE(test_relay_intra_handshake_v1_evidence), TM_CASE(test_rebound_evidence),
             TM_CASE(test_bit_flips), TM_CASE(test_policy_refusals), TM_CASE(test_tls12_never),
             TM_CASE(test_hook_misuse), TM_CASE(test_extension_in_wrong_message),
             TM_CASE(test_no_tickets_with_evidence), TM_CASE(test_no_resumption_offered),
             TM_CASE(test_psk), TM_CASE(test_keylog_chaining), TM_CASE(test_binder_lifetime),
             TM_CASE(test_mutual), TM_CASE(test_mutual_malformed), TM_CASE(test_keyatt_ok),
             TM_CASE(test_keyatt_choice), TM_CASE(test_keyatt_rejections),
             TM_CASE(test_keyatt_mutual), TM_CASE(test_keyatt_rotation_pauses_direct),
             TM_CASE(test_claims_print),
             TM_CASE(test_all_done))
