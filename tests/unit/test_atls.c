/*
 * test_atls.c — attested TLS 1.3 (src/attest/atls.c) end to end in memory:
 * real OpenSSL handshakes over BIO pairs (no sockets), certificates made in
 * process, the sim provider with a key made in a scratch directory. The
 * extension test hook (tm_atls_set_test_hook) lets each test capture or
 * tamper with the extension bytes before OpenSSL encrypts them, which is how
 * replay, relay, re-binding, bit flips, wrong formats and malformed bytes
 * are produced. Every rejection is checked for its own reason.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/atls.h"
#include "attest/evidence.h"
#include "attest/verify.h"
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

static X509 *mkcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, bool ca)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(rand() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ca) {
        e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, ikey ? ikey : key, EVP_sha256());
    return x;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
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
    g_ca = mkcert("tmqtt test CA", g_cakey, NULL, NULL, true);
    g_srvkey = p256();
    g_srvcert = mkcert("localhost", g_srvkey, g_ca, g_cakey, false);
    g_srvkey2 = p256();
    g_srvcert2 = mkcert("localhost", g_srvkey2, g_ca, g_cakey, false);
    g_clikey = p256();
    g_clicert = mkcert("client-1", g_clikey, g_ca, g_cakey, false);
}

static void cleanup(void)
{
    unlink(g_simkey);
    unlink(g_simkey2);
    rmdir(g_dir);
}

typedef struct server_spec {
    const char *provider;      /* NULL: no attestation */
    const char *opts;          /* NULL: key=g_simkey,measurement=MEAS */
    const char *formats;
    bool require_client;
    const char *client_policy_text;
    bool second_cert;
} server_spec;

typedef struct client_spec {
    bool attest;               /* arm the request (setup hook) */
    bool require;
    const char *policy_text;   /* NULL: trust g_simkey, measurement MEAS */
    const char *formats;
    const char *provider;      /* own evidence (mutual) */
    const char *provider_opts;
    bool cert;                 /* present a client certificate */
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
    return ctx;
}

typedef struct result {
    int client_hs, server_hs;       /* 1 done, -1 failed */
    int verify;                     /* tm_atls_client_verify, 1 when not run */
    char verify_err[400];
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

static int pair_open(pair *p, const server_spec *ss, const client_spec *cs)
{
    memset(p, 0, sizeof *p);
    p->sctx = server_ctx(ss, &p->srv);
    if (!p->sctx)
        return -1;
    p->cctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(p->cctx), g_ca);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
    if (cs->cert) {
        SSL_CTX_use_certificate(p->cctx, g_clicert);
        SSL_CTX_use_PrivateKey(p->cctx, g_clikey);
    }
    char err[300] = "";
    if (cs->attest || cs->provider) {
        char pol[400];
        snprintf(pol, sizeof pol, "%s",
                 write_tmp("server.policy",
                           cs->policy_text ? cs->policy_text : ""));
        char dflt[400];
        if (!cs->policy_text) {
            snprintf(dflt, sizeof dflt, "sim_trusted_key %s\nsim_measurement %s\n", g_spki_hex,
                     MEAS);
            snprintf(pol, sizeof pol, "%s", write_tmp("server.policy", dflt));
        }
        tm_atls_client_opts o = {.require = cs->require, .policy_file = pol,
                                 .formats = cs->formats, .provider = cs->provider,
                                 .provider_opts = cs->provider_opts};
        p->cli = tm_atls_client_new(&o, err, sizeof err);
        if (!p->cli) {
            fprintf(stderr, "client: %s\n", err);
            return -1;
        }
        TM_CHECK_EQ(tm_atls_client_ctx_init(p->cctx, err, sizeof err), 0);
    }
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    BIO *a, *b;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(p->c, a, a);
    SSL_set_bio(p->s, b, b);
    SSL_set_connect_state(p->c);
    SSL_set_accept_state(p->s);
    SSL_set1_host(p->c, "localhost");
    if (cs->attest && tm_atls_client_setup(p->cctx, p->c, p->cli, err, sizeof err) < 0) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
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

static void pair_run(pair *p, result *r, const client_spec *cs)
{
    for (int i = 0; i < 50 && !(p->cdone && p->sdone); i++) {
        step(p->c, &p->cdone);
        step(p->s, &p->sdone);
        if (p->cdone < 0 || p->sdone < 0) {
            /* let the alert reach the other side */
            step(p->c, &p->cdone);
            step(p->s, &p->sdone);
            break;
        }
    }
    /* TLS 1.3: the server finishes after reading the client's Finished */
    for (int i = 0; i < 5 && p->cdone == 1 && !p->sdone; i++)
        step(p->s, &p->sdone);
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

static void pair_close(pair *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    SSL_CTX_free(p->cctx);
    SSL_CTX_free(p->sctx);
    tm_atls_server_free(p->srv);
    tm_atls_client_free(p->cli);
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

static int has(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        return 1;
    fprintf(stderr, "  expected \"%s\" in \"%s\"\n", needle, hay);
    return 0;
}

/* ---- the test hook: capture and tamper ----------------------------------- */

enum { H_NONE, H_CAPTURE_EE, H_REPLACE_EE, H_FLIP_EE, H_FORMAT_EE, H_TRUNC_EE, H_TRUNC_CH,
       H_CAPTURE_CH, H_SET_CH_NONCE, H_REBIND_EE, H_VERSION_CH };
static struct {
    int mode;
    uint8_t buf[65536];
    size_t len;
    size_t flip_at;
    uint16_t format;
    uint8_t nonce[32];
    /* re-binding */
    const uint8_t *share;
    size_t share_len;
    const uint8_t *spki;
} H;

static void hook(SSL *ssl, unsigned context, uint8_t *buf, size_t *len, size_t cap, void *arg)
{
    if (context == SSL_EXT_CLIENT_HELLO) {
        if (H.mode == H_CAPTURE_CH) {
            memcpy(H.nonce, buf + 1, 32);
        } else if (H.mode == H_SET_CH_NONCE) {
            memcpy(buf + 1, H.nonce, 32);
        } else if (H.mode == H_TRUNC_CH) {
            *len -= 1;
        } else if (H.mode == H_VERSION_CH) {
            buf[0] = 2;
        }
        if (H.mode == H_REBIND_EE)
            memcpy(H.nonce, buf + 1, 32);
        return;
    }
    if (context != SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS)
        return;
    switch (H.mode) {
    case H_CAPTURE_EE:
    case H_SET_CH_NONCE:
        memcpy(H.buf, buf, *len);
        H.len = *len;
        break;
    case H_REPLACE_EE:
        memcpy(buf, H.buf, H.len);
        *len = H.len;
        break;
    case H_FLIP_EE:
        if (H.flip_at < *len)
            buf[H.flip_at] ^= 0x01;
        break;
    case H_FORMAT_EE:
        buf[1] = (uint8_t)(H.format >> 8);
        buf[2] = (uint8_t)H.format;
        break;
    case H_TRUNC_EE:
        *len -= 1;
        break;
    case H_REBIND_EE: {
        /* genuine TEE evidence, but over other binding inputs */
        uint8_t rd[64];
        char err[200];
        tm_provider *prov;
        char opts[600];
        snprintf(opts, sizeof opts, "key=%s,measurement=%s", g_simkey, MEAS);
        prov = tm_provider_open("sim", opts, err, sizeof err);
        EVP_PKEY *k = NULL;
        uint8_t *own = NULL;
        size_t own_len = 0;
        SSL_get_tmp_key(ssl, &k);
        tm_atls_encoded_key(k, &own, &own_len);
        EVP_PKEY_free(k);
        tm_atls_binding(TM_ATLS_SERVER, H.nonce, H.share ? H.share : own,
                        H.share ? H.share_len : own_len, H.spki, rd);
        size_t n = 0;
        tm_provider_collect(prov, TM_FMT_SIM, rd, buf + 5, cap - 5, &n, err, sizeof err);
        buf[3] = (uint8_t)(n >> 8);
        buf[4] = (uint8_t)n;
        *len = 5 + n;
        free(own);
        tm_provider_close(prov);
        break;
    }
    default:
        break;
    }
}

static const server_spec SIM = {.provider = "sim"};
static const client_spec ATTEST = {.attest = true, .require = true};

/* ---- codec --------------------------------------------------------------- */

static void test_codec(void)
{
    tm_atls_request r, d;
    memset(&r, 0, sizeof r);
    r.version = 1;
    for (int i = 0; i < 32; i++)
        r.nonce[i] = (uint8_t)i;
    r.formats[0] = TM_FMT_SIM;
    r.formats[1] = TM_FMT_SGX_DCAP;
    r.n_formats = 2;
    uint8_t b[300];
    size_t n = tm_atls_request_encode(&r, b, sizeof b);
    TM_CHECK_EQ(n, 1 + 32 + 1 + 4);
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
    b[0] = 2;
    TM_CHECK_EQ(tm_atls_request_decode(b, n, &d), TM_ATLS_DEC_VERSION);
    r.n_formats = 0;
    TM_CHECK_EQ(tm_atls_request_encode(&r, b, sizeof b), 0);

    uint8_t ev[3] = {9, 8, 7}, e[16];
    tm_atls_answer a;
    n = tm_atls_answer_encode(TM_FMT_SIM, ev, 3, e, sizeof e);
    TM_CHECK_EQ(n, 8);
    TM_CHECK_EQ(tm_atls_answer_decode(e, n, &a), TM_ATLS_DEC_OK);
    TM_CHECK_EQ(a.format, TM_FMT_SIM);
    TM_CHECK_EQ(a.evidence_len, 3);
    TM_CHECK_MEM(a.evidence, ev, 3);
    TM_CHECK_EQ(tm_atls_answer_decode(e, n - 1, &a), TM_ATLS_DEC_MALFORMED);
    TM_CHECK_EQ(tm_atls_answer_decode(e, 5, &a), TM_ATLS_DEC_MALFORMED);
    e[4] = 0;
    TM_CHECK_EQ(tm_atls_answer_decode(e, 5, &a), TM_ATLS_DEC_MALFORMED);        /* empty */
    TM_CHECK_EQ(tm_atls_answer_encode(TM_FMT_SIM, ev, 0, e, sizeof e), 0);
    TM_CHECK_EQ(tm_atls_answer_encode(TM_FMT_SIM, ev, 3, e, 7), 0);
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
    TM_CHECK(has(r.verify_err, "sent no attestation evidence"));
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
    TM_CHECK(has(r.verify_err, "sent no attestation evidence"));
    TM_CHECK(has(r.verify_err, "sgx-dcap"));
    /* server answers in a format that was not offered: illegal_parameter */
    tm_atls_set_test_hook(hook, NULL);
    H.mode = H_FORMAT_EE;
    H.format = TM_FMT_TDX_DCAP;
    client_spec simonly = {.attest = true, .require = true, .formats = "sim"};
    TM_CHECK_EQ(run(&SIM, &simonly, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "not offered"));
    tm_atls_set_test_hook(NULL, NULL);
}

static void test_malformed(void)
{
    result r;
    tm_atls_set_test_hook(hook, NULL);
    H.mode = H_TRUNC_CH;   /* request one byte short: decode_error at the server */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.server_hs, -1);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.server_reason, "malformed AttestationRequest"));
    H.mode = H_TRUNC_EE;   /* answer one byte short: illegal_parameter at the client */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, -1);
    TM_CHECK(has(r.client_reason, "malformed AttestationEvidence"));
    H.mode = H_VERSION_CH; /* a future request version: no answer, no abort */
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_sent, 0);
    TM_CHECK_EQ(r.verify, -1);
    tm_atls_set_test_hook(NULL, NULL);
}

static void test_replay(void)
{
    /* one client configuration, two handshakes: the second gets the first's
     * evidence (a fresh nonce and key share make it stale) */
    result r;
    pair p;
    tm_atls_set_test_hook(hook, NULL);
    H.mode = H_CAPTURE_EE;
    TM_CHECK_EQ(pair_open(&p, &SIM, &ATTEST), 0);
    pair_run(&p, &r, &ATTEST);
    TM_CHECK_EQ(r.verify, 0);
    /* second handshake on the same client configuration */
    tm_atls_client *cli = p.cli;
    p.cli = NULL;
    pair_close(&p);
    pair q;
    TM_CHECK_EQ(pair_open(&q, &SIM, &(client_spec){0}), 0);
    SSL_free(q.c);
    q.cli = cli;
    SSL_CTX *cctx = q.cctx;
    char err[200];
    tm_atls_client_ctx_init(cctx, err, sizeof err);
    q.c = SSL_new(cctx);
    BIO *a, *b;
    BIO_new_bio_pair(&a, 0, &b, 0);
    SSL_set_bio(q.c, a, a);
    SSL_free(q.s);
    q.s = SSL_new(q.sctx);
    SSL_set_bio(q.s, b, b);
    SSL_set_connect_state(q.c);
    SSL_set_accept_state(q.s);
    tm_atls_client_setup(cctx, q.c, cli, err, sizeof err);
    H.mode = H_REPLACE_EE;
    pair_run(&q, &r, &ATTEST);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "replayed"));
    TM_CHECK_EQ(r.have_claims, 0);
    pair_close(&q);
    tm_atls_set_test_hook(NULL, NULL);
}

static void test_relay(void)
{
    /* A machine in the middle holding the server's certificate (a TLS
     * terminator) forwards the victim's request, nonce included, to the
     * genuine TEE in a second handshake and relays its evidence back. Nonce
     * and certificate match; the key share cannot. */
    pair victim, relay;
    result r;
    tm_atls_set_test_hook(hook, NULL);
    TM_CHECK_EQ(pair_open(&victim, &SIM, &ATTEST), 0);
    H.mode = H_CAPTURE_CH;
    step(victim.c, &victim.cdone);          /* victim's ClientHello: nonce captured */
    H.mode = H_SET_CH_NONCE;                /* proxy asks the real server with it */
    H.len = 0;
    TM_CHECK_EQ(pair_open(&relay, &SIM, &ATTEST), 0);
    pair_run(&relay, &r, &ATTEST);
    TM_CHECK_EQ(relay.sdone, 1);
    TM_CHECK(H.len > 0);
    pair_close(&relay);
    H.mode = H_REPLACE_EE;                  /* proxy's answer to the victim */
    pair_run(&victim, &r, &ATTEST);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "binding"));
    TM_CHECK(has(r.verify_err, "server key share"));
    TM_CHECK_EQ(r.have_claims, 0);
    pair_close(&victim);
    tm_atls_set_test_hook(NULL, NULL);
}

static void test_other_certificate(void)
{
    /* genuine evidence over this nonce and key share, but another certificate */
    uint8_t other[32];
    tm_atls_spki_hash(g_srvcert2, other);
    tm_atls_set_test_hook(hook, NULL);
    H.mode = H_REBIND_EE;
    H.share = NULL;
    H.spki = other;
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "binding"));
    /* control: the same hook with our own certificate is accepted */
    uint8_t mine[32];
    tm_atls_spki_hash(g_srvcert, mine);
    H.spki = mine;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    /* bound to no certificate while one was presented */
    H.spki = NULL;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "bound to no certificate"));
    /* another key share (what a relay produces), built directly */
    uint8_t fake[65];
    fake[0] = 4;
    RAND_bytes(fake + 1, 64);
    H.share = fake;
    H.share_len = sizeof fake;
    H.spki = mine;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "binding"));
    tm_atls_set_test_hook(NULL, NULL);
    H.share = NULL;
}

static void test_bit_flips(void)
{
    /* flip one bit at many places of the answer; every one must be refused */
    tm_atls_set_test_hook(hook, NULL);
    H.mode = H_CAPTURE_EE;
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    size_t total = H.len;
    TM_CHECK(total > 100);
    int refused = 0, tried = 0;
    for (size_t at = 0; at < total; at += (at < 140 ? 3 : 11)) {
        H.mode = H_FLIP_EE;
        H.flip_at = at;
        TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
        tried++;
        if (r.client_hs != 1 || r.verify != 0)
            refused++;
        else
            fprintf(stderr, "  flip at %zu accepted!\n", at);
        TM_CHECK_EQ(r.have_claims, 0);
    }
    TM_CHECK_EQ(refused, tried);
    /* specific reasons: report_data area -> binding; signature -> signature */
    H.mode = H_FLIP_EE;
    H.flip_at = 5 + 8 + 32 + 4 + 8 + 10;   /* inside report_data */
    run(&SIM, &ATTEST, &r);
    TM_CHECK(has(r.verify_err, "binding"));
    H.flip_at = 5 + 8 + 2;                 /* inside the measurement */
    run(&SIM, &ATTEST, &r);
    TM_CHECK(has(r.verify_err, "signature"));
    tm_atls_set_test_hook(NULL, NULL);
}

static void test_policy_refusals(void)
{
    result r;
    char pol[400];
    /* untrusted sim key */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\n", g_spki2_hex);
    client_spec c1 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&SIM, &c1, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "untrusted"));
    /* default policy: sim is not a real TEE */
    client_spec c0 = {.attest = true, .require = true, .policy_text = "# default\n"};
    TM_CHECK_EQ(run(&SIM, &c0, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "refused"));
    /* measurement not in policy */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\n", g_spki_hex, MEAS2);
    client_spec c2 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&SIM, &c2, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "policy"));
    /* debug refused */
    char opts[600];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s,debug=true", g_simkey, MEAS);
    server_spec dbg = {.provider = "sim", .opts = opts};
    TM_CHECK_EQ(run(&dbg, &ATTEST, &r), 0);
    TM_CHECK_EQ(r.verify, -1);
    TM_CHECK(has(r.verify_err, "debug"));
    /* ... unless allowed */
    snprintf(pol, sizeof pol, "sim_trusted_key %s\nsim_measurement %s\nallow_debug true\n", g_spki_hex, MEAS);
    client_spec c3 = {.attest = true, .require = true, .policy_text = pol};
    TM_CHECK_EQ(run(&dbg, &c3, &r), 0);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.claims.debug, 1);
}

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
    TM_CHECK_EQ(run(&ss, &cs, &r), 0);
    TM_CHECK_EQ(r.client_hs, 1);
    TM_CHECK_EQ(r.server_hs, 1);
    TM_CHECK_EQ(r.verify, 0);
    TM_CHECK_EQ(r.client_result, 1);
    TM_CHECK_EQ(r.client_claims.format, TM_FMT_SIM);
    TM_CHECK_EQ(r.client_claims.measurement[0], 0x22);
    if (r.client_result != 1)
        fprintf(stderr, "  server: %s\n", r.server_reason);

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
    TM_CHECK(has(r.server_reason, "untrusted"));
}

static void test_claims_print(void)
{
    tm_claims c;
    memset(&c, 0, sizeof c);
    result r;
    TM_CHECK_EQ(run(&SIM, &ATTEST, &r), 0);
    char buf[4096];
    tm_claims_json(&r.claims, buf, sizeof buf);
    TM_CHECK(has(buf, "\"sim\""));
    TM_CHECK(has(buf, "1111111111"));
}

static void test_all_done(void) { cleanup(); }

static void init(void) { setup_once(); }

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_codec), TM_CASE(test_sim_ok),
             TM_CASE(test_no_request_no_evidence), TM_CASE(test_missing_answer),
             TM_CASE(test_unsupported_format), TM_CASE(test_malformed), TM_CASE(test_replay),
             TM_CASE(test_relay), TM_CASE(test_other_certificate), TM_CASE(test_bit_flips),
             TM_CASE(test_policy_refusals), TM_CASE(test_tls12_never), TM_CASE(test_mutual),
             TM_CASE(test_claims_print), TM_CASE(test_all_done))
