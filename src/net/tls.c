/*
 * tls.c — TLS contexts for both roles (tls.h): what a listener's or a
 * client's options mean to OpenSSL, written once.
 *
 * Per-context state that OpenSSL callbacks need (the PSK table or key, the
 * key-log stream, "insecure") hangs off the SSL_CTX as ex_data and is freed
 * with it, so a context outlives its builder and every connection made from
 * it keeps it alive. The TLS stream layer itself is in stream_tls.c.
 *
 * Server contexts whose connections move to our own record layer after the
 * handshake (docs/tls-record-layer.md) issue no session tickets (OpenSSL
 * would send them under the application keys, which the record layer
 * must be the first to use) and capture the two application traffic
 * secrets of generation 0 through the key-log callback. keylog_cb is the
 * only key-log callback tls.c installs; it is installed before the attested
 * TLS extension registers its own, which chains to it, so the binder, the
 * capture and the key log file all see every line. The secrets live in the
 * SSL's ex_data until stream_tls.c takes them at the end of the handshake
 * (tm_tls_take_secrets), and are cleansed then or when the SSL is freed.
 */
#include "net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "attest/atls.h"
#include "attest/hex.h"
#include "net/tls_int.h"
#include "net/tls_record.h"

#define TM_PSK_MAX 64   /* bytes of key; mosquitto accepts up to 64 too */

typedef struct psk_entry {
    char *identity;
    uint8_t key[TM_PSK_MAX];
    size_t len;
} psk_entry;

/* Per SSL_CTX, either role. */
typedef struct ctx_data {
    psk_entry *psk;              /* server: the psk_file; client: one entry */
    size_t n_psk;
    FILE *keylog;
    bool insecure;
    bool subject_identity;       /* server: use_subject_as_username */
    bool want_identity;          /* server: the identity is used (tm_stream_tls_identity) */
    bool own_records;            /* server: our record layer after TLS 1.3 handshakes */
} ctx_data;

/* Server, own record layer: the application traffic secrets of generation 0
 * as the key log gave them, until the handshake's end. */
typedef struct traffic_secrets {
    uint8_t client[TM_TLSREC_MAX_SECRET], server[TM_TLSREC_MAX_SECRET];
    uint8_t client_len, server_len;
} traffic_secrets;

static int ctxdata_idx = -1;     /* SSL_CTX ex_data: ctx_data */
int tm_tls_pskid_idx = -1;       /* SSL ex_data: matched PSK identity (strdup) */
static int secrets_idx = -1;     /* SSL ex_data: traffic_secrets */
static unsigned long ssl_frees;  /* SSL objects freed (the ex_data free callback) */

static void ctxdata_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    ctx_data *d = ptr;
    if (!d)
        return;
    for (size_t i = 0; i < d->n_psk; i++) {
        free(d->psk[i].identity);
        OPENSSL_cleanse(d->psk[i].key, sizeof d->psk[i].key);
    }
    free(d->psk);
    if (d->keylog)
        fclose(d->keylog);
    free(d);
}

static void pskid_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp)
{
    free(ptr);
}

/* Called for every SSL freed once the index exists (OpenSSL calls free
 * callbacks whether or not the SSL holds data under the index). */
static void secrets_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    ssl_frees++;
    if (ptr)
        OPENSSL_clear_free(ptr, sizeof(traffic_secrets));
}

unsigned long tm_tls_ssl_freed(void) { return ssl_frees; }

static ctx_data *ctxdata(const SSL_CTX *ctx)
{
    return ctxdata_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ctxdata_idx);
}

void tm_tls_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown OpenSSL error");
    ERR_clear_error();
}

int tm_tls_parse_version(const char *s, int default_version, int *out)
{
    if (!s || !*s)
        *out = default_version;
    else if (!strcasecmp(s, "tlsv1.3") || !strcmp(s, "1.3"))
        *out = TLS1_3_VERSION;
    else if (!strcasecmp(s, "tlsv1.2") || !strcmp(s, "1.2"))
        *out = TLS1_2_VERSION;
    else if (!strcasecmp(s, "tlsv1.1") || !strcmp(s, "1.1"))
        *out = TLS1_1_VERSION;
    else
        return -1;
    return 0;
}

/* A new context with its ex_data attached; NULL when out of memory. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, ctx_data **out)
{
    if (ctxdata_idx < 0)
        ctxdata_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctxdata_free);
    if (tm_tls_pskid_idx < 0)
        tm_tls_pskid_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, pskid_free);
    if (secrets_idx < 0)
        secrets_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, secrets_free);
    SSL_CTX *ctx = ctxdata_idx >= 0 && tm_tls_pskid_idx >= 0 && secrets_idx >= 0
                       ? SSL_CTX_new(method)
                       : NULL;
    ctx_data *d = calloc(1, sizeof *d);
    if (!ctx || !d || !SSL_CTX_set_ex_data(ctx, ctxdata_idx, d)) {
        SSL_CTX_free(ctx);
        free(d);
        return NULL;
    }
    /* Buffers only while a record is in flight: an idle connection holds none. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    *out = d;
    return ctx;
}

static int set_ciphers(SSL_CTX *ctx, const char *ciphers, const char *suites, char *err,
                       size_t errcap)
{
    if (ciphers && *ciphers && !SSL_CTX_set_cipher_list(ctx, ciphers)) {
        snprintf(err, errcap, "cipher list '%s': no usable cipher", ciphers);
        return -1;
    }
    if (suites && *suites && !SSL_CTX_set_ciphersuites(ctx, suites)) {
        snprintf(err, errcap, "TLS 1.3 cipher suites '%s': no usable suite", suites);
        return -1;
    }
    return 0;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                         size_t errcap)
{
    char why[256];
    bool have_cert = cert && *cert, have_key = key && *key;
    if (have_cert != have_key) {
        snprintf(err, errcap, have_cert ? "certificate %s needs a key file"
                                        : "key file %s needs a certificate",
                 have_cert ? cert : key);
        return -1;
    }
    if (!have_cert)
        return 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tm_tls_errstr(why, sizeof why);
        snprintf(err, errcap, "certificate %s: %s", cert, why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tm_tls_errstr(why, sizeof why);
        snprintf(err, errcap, "key %s: %s", key, why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errcap, "key %s does not match certificate %s", key, cert);
        return -1;
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *cafile, const char *capath, char *err,
                   size_t errcap)
{
    const char *cf = cafile && *cafile ? cafile : NULL;
    const char *cp = capath && *capath ? capath : NULL;
    if (!cf && !cp)
        return 0;
    if (!SSL_CTX_load_verify_locations(ctx, cf, cp)) {
        char why[256];
        tm_tls_errstr(why, sizeof why);
        snprintf(err, errcap, "cannot load CA from %s: %.200s", cf ? cf : cp, why);
        return -1;
    }
    return 1;
}

/* crlfile: client certificates are checked against the CRL of their issuer
 * (Mosquitto's X509_V_FLAG_CRL_CHECK: the leaf certificate). */
static int load_crl(SSL_CTX *ctx, const char *crlfile, char *err, size_t errcap)
{
    if (!crlfile || !*crlfile)
        return 0;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lu = st ? X509_STORE_add_lookup(st, X509_LOOKUP_file()) : NULL;
    if (!lu || X509_load_crl_file(lu, crlfile, X509_FILETYPE_PEM) < 1) {
        char why[256];
        tm_tls_errstr(why, sizeof why);
        snprintf(err, errcap, "crlfile %s: %s", crlfile, why);
        return -1;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    return 0;
}

/* dhparamfile: DH parameters for the DHE suites of TLS 1.2 (without them
 * those suites are not offered). */
static int load_dh(SSL_CTX *ctx, const char *path, char *err, size_t errcap)
{
    if (!path || !*path)
        return 0;
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *dh = bio ? PEM_read_bio_Parameters(bio, NULL) : NULL;
    BIO_free(bio);
    if (dh && EVP_PKEY_is_a(dh, "DH") != 1 && EVP_PKEY_is_a(dh, "DHX") != 1) {
        EVP_PKEY_free(dh);
        ERR_clear_error();
        snprintf(err, errcap, "dhparamfile %s: not DH parameters", path);
        return -1;
    }
    if (!dh || SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
        char why[256];
        tm_tls_errstr(why, sizeof why);
        EVP_PKEY_free(dh);
        snprintf(err, errcap, "dhparamfile %s: %s", path, why);
        return -1;
    }
    return 0;
}

bool tm_tls_ctx_subject_identity(const SSL_CTX *ctx)
{
    ctx_data *d = ctxdata(ctx);
    return d && d->subject_identity;
}

/* One PSK: identity and hex key, as a psk_file line or the client's options. */
static int psk_parse(const char *identity, const char *hex, psk_entry *e, char *err,
                     size_t errcap)
{
    size_t hl = strlen(hex), len = 0;
    if (hl == 0 || hl % 2 || hl / 2 > TM_PSK_MAX ||
        !OPENSSL_hexstr2buf_ex(e->key, sizeof e->key, &len, hex, '\0')) {
        ERR_clear_error();
        snprintf(err, errcap, "the key must be an even number of hexadecimal digits, at most "
                 "%d bytes", TM_PSK_MAX);
        return -1;
    }
    e->len = len;
    e->identity = strdup(identity);
    if (!e->identity) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    return 0;
}

static int psk_add(ctx_data *d, const psk_entry *e)
{
    psk_entry *grown = realloc(d->psk, (d->n_psk + 1) * sizeof *grown);
    if (!grown)
        return -1;
    d->psk = grown;
    d->psk[d->n_psk++] = *e;
    return 0;
}

/* psk_file: "identity:hexkey" per line, '#' comments, blank lines ignored. */
static int psk_load(const char *path, ctx_data *d, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "psk_file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024], why[200];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        while (l && strchr("\r\n \t", line[l - 1]))
            line[--l] = 0;
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#')
            continue;
        char *colon = strrchr(p, ':');
        if (!colon || colon == p || !colon[1]) {
            snprintf(err, errcap, "%s:%d: expected identity:hexkey", path, ln);
            rc = -1;
            break;
        }
        *colon = 0;
        psk_entry e;
        memset(&e, 0, sizeof e);
        if (psk_parse(p, colon + 1, &e, why, sizeof why) < 0) {
            snprintf(err, errcap, "%s:%d: %s", path, ln, why);
            rc = -1;
        } else if (psk_add(d, &e) < 0) {
            free(e.identity);
            snprintf(err, errcap, "out of memory");
            rc = -1;
        }
        OPENSSL_cleanse(e.key, sizeof e.key);
    }
    fclose(f);
    if (rc == 0 && d->n_psk == 0) {
        snprintf(err, errcap, "psk_file %s holds no identity:key line", path);
        rc = -1;
    }
    return rc;
}

static const psk_entry *psk_find(SSL *ssl, const unsigned char *id, size_t idlen)
{
    ctx_data *d = ctxdata(SSL_get_SSL_CTX(ssl));
    for (size_t i = 0; d && i < d->n_psk; i++)
        if (strlen(d->psk[i].identity) == idlen && !memcmp(d->psk[i].identity, id, idlen))
            return &d->psk[i];
    return NULL;
}

/* Keeps the matched identity for use_identity_as_username (replacing one
 * from a first ClientHello after HelloRetryRequest). */
static void remember_identity(SSL *ssl, const char *id)
{
    char *old = SSL_get_ex_data(ssl, tm_tls_pskid_idx);
    SSL_set_ex_data(ssl, tm_tls_pskid_idx, NULL);
    free(old);
    char *copy = strdup(id);
    if (copy && !SSL_set_ex_data(ssl, tm_tls_pskid_idx, copy))
        free(copy);
}

/* TLS 1.3 external PSK: a session whose cipher uses SHA-256, as the
 * mosquitto and OpenSSL clients assume for a bare PSK. Unknown identity:
 * no session, the handshake continues (certificate, if we have one). */
static int psk_find_session_cb(SSL *ssl, const unsigned char *identity, size_t identity_len,
                               SSL_SESSION **sess)
{
    *sess = NULL;
    const psk_entry *e = psk_find(ssl, identity, identity_len);
    if (!e)
        return 1;
    static const unsigned char aes128gcmsha256[] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcmsha256);
    SSL_SESSION *s = SSL_SESSION_new();
    if (!cipher || !s || !SSL_SESSION_set1_master_key(s, e->key, e->len) ||
        !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return 0;
    }
    remember_identity(ssl, e->identity);
    *sess = s;
    return 1;
}

/* TLS 1.2 PSK cipher suites (psk_hint is sent in ServerKeyExchange). */
static unsigned psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                              unsigned max_psk_len)
{
    const psk_entry *e = identity ? psk_find(ssl, (const unsigned char *)identity,
                                             strlen(identity)) : NULL;
    if (!e || e->len > max_psk_len)
        return 0;
    memcpy(psk, e->key, e->len);
    remember_identity(ssl, e->identity);
    return (unsigned)e->len;
}

static unsigned psk_client_cb(SSL *ssl, const char *hint, char *identity,
                              unsigned max_identity_len, unsigned char *psk,
                              unsigned max_psk_len)
{
    ctx_data *d = ctxdata(SSL_get_SSL_CTX(ssl));
    if (!d || d->n_psk != 1 || d->psk[0].len > max_psk_len ||
        strlen(d->psk[0].identity) + 1 > max_identity_len)
        return 0;
    strcpy(identity, d->psk[0].identity);
    memcpy(psk, d->psk[0].key, d->psk[0].len);
    return (unsigned)d->psk[0].len;
}

#define KL_CTS0 "CLIENT_TRAFFIC_SECRET_0 "
#define KL_STS0 "SERVER_TRAFFIC_SECRET_0 "

/* Keeps a "CLIENT_TRAFFIC_SECRET_0 <client random> <secret>" line's secret
 * (or the server's) for the record layer. Lines of another handshake
 * (client random differs) or of an unexpected shape are ignored: the
 * takeover then does not happen. */
static void capture_secret(SSL *ssl, const char *line)
{
    bool client = strncmp(line, KL_CTS0, sizeof KL_CTS0 - 1) == 0;
    if (!client && strncmp(line, KL_STS0, sizeof KL_STS0 - 1) != 0)
        return;
    const char *p = line + sizeof KL_CTS0 - 1;   /* both labels are 24 bytes */
    size_t pl = strlen(p);
    uint8_t cr[32], want[32], secret[TM_TLSREC_MAX_SECRET];
    long sl;
    if (pl < 65 || p[64] != ' ' || tm_hex_decode(p, 64, cr, sizeof cr) != 32 ||
        SSL_get_client_random(ssl, want, sizeof want) != sizeof want ||
        CRYPTO_memcmp(cr, want, sizeof want) != 0 ||
        (sl = tm_hex_decode(p + 65, pl - 65, secret, sizeof secret)) <= 0)
        return;
    traffic_secrets *ts = SSL_get_ex_data(ssl, secrets_idx);
    if (!ts && (ts = OPENSSL_zalloc(sizeof *ts)) && !SSL_set_ex_data(ssl, secrets_idx, ts)) {
        OPENSSL_free(ts);
        ts = NULL;
    }
    if (ts) {
        memcpy(client ? ts->client : ts->server, secret, (size_t)sl);
        *(client ? &ts->client_len : &ts->server_len) = (uint8_t)sl;
    }
    OPENSSL_cleanse(secret, sizeof secret);
}

/* Every key log line of tls.c's contexts: the record layer's capture
 * (server contexts with own_records), then the key log file. */
static void keylog_cb(const SSL *ssl, const char *line)
{
    ctx_data *d = ctxdata(SSL_get_SSL_CTX(ssl));
    if (d && d->own_records && SSL_is_server(ssl))
        capture_secret((SSL *)ssl, line);   /* only our ex_data on it is written */
    if (d && d->keylog) {
        fprintf(d->keylog, "%s\n", line);
        fflush(d->keylog);   /* tshark may read it while we run */
    }
}

int tm_tls_take_secrets(SSL *ssl, uint8_t *client, uint8_t *server, size_t *len)
{
    traffic_secrets *ts = secrets_idx < 0 ? NULL : SSL_get_ex_data(ssl, secrets_idx);
    if (!ts)
        return -1;
    int rc = ts->client_len && ts->client_len == ts->server_len ? 0 : -1;
    if (rc == 0) {
        memcpy(client, ts->client, ts->client_len);
        memcpy(server, ts->server, ts->server_len);
        *len = ts->client_len;
    }
    SSL_set_ex_data(ssl, secrets_idx, NULL);
    OPENSSL_clear_free(ts, sizeof *ts);
    return rc;
}

bool tm_tls_ctx_own_records(const SSL_CTX *ctx)
{
    ctx_data *d = ctxdata(ctx);
    return d && d->own_records;
}

bool tm_tls_ctx_wants_identity(const SSL_CTX *ctx)
{
    ctx_data *d = ctxdata(ctx);
    return d && d->want_identity;
}

/* NSS key log to `file`, else $SSLKEYLOGFILE when set. */
static int keylog_open(SSL_CTX *ctx, ctx_data *d, const char *file, char *err, size_t errcap)
{
    const char *kl = file && *file ? file : getenv("SSLKEYLOGFILE");
    if (!kl || !*kl)
        return 0;
    d->keylog = fopen(kl, "a");
    if (!d->keylog) {
        snprintf(err, errcap, "cannot open key log file %s: %s", kl, strerror(errno));
        return -1;
    }
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    return 0;
}

/* ---- server role ------------------------------------------------------------ */

static bool set(const char *s) { return s && *s; }

static int server_verify_mode(SSL_CTX *ctx, const tm_tls_server_opts *o, bool have_ca,
                              char *err, size_t errcap)
{
    bool want_cert = o->require_certificate || o->require_client_attestation ||
                     (o->want_identity && !set(o->psk_file));
    if (want_cert && !have_ca) {
        snprintf(err, errcap, "%s needs cafile or capath to verify client certificates",
                 o->require_client_attestation ? "require_client_attestation"
                                               : "require_certificate");
        return -1;
    }
    if (want_cert && !set(o->certfile)) {
        snprintf(err, errcap, "client certificates need a server certificate (certfile)");
        return -1;
    }
    if (want_cert)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (have_ca && set(o->certfile))
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);   /* optional client certificate */
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (have_ca && set(o->cafile)) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->cafile);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    return 0;
}

static int server_psk(SSL_CTX *ctx, ctx_data *d, const tm_tls_server_opts *o, char *err,
                      size_t errcap)
{
    if (!set(o->psk_file))
        return 0;
    if (psk_load(o->psk_file, d, err, errcap) < 0)
        return -1;
    SSL_CTX_set_psk_find_session_callback(ctx, psk_find_session_cb);
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    if (set(o->psk_hint) && !SSL_CTX_use_psk_identity_hint(ctx, o->psk_hint)) {
        snprintf(err, errcap, "psk_hint too long");
        return -1;
    }
    /* TLS 1.2 needs PSK suites offered; TLS 1.3 uses the suites as they are. */
    if (!set(o->ciphers))
        SSL_CTX_set_cipher_list(ctx, set(o->certfile) ? "DEFAULT:PSK" : "PSK:ECDHE-PSK:DHE-PSK");
    return 0;
}

static int server_attest(tm_tls_server *s, const tm_tls_server_opts *o, char *err,
                         size_t errcap)
{
    bool attest = (set(o->attest_provider) && strcmp(o->attest_provider, "none")) ||
                  o->require_client_attestation;
    if (!attest)
        return 0;
    tm_atls_server_opts ao = {
        .provider = o->attest_provider,
        .provider_opts = o->attest_provider_opts,
        .formats = o->attest_formats,
        .key_lifetime = o->attest_key_lifetime,
        .key_worker = true,   /* rotation quotes never on the event loop (native) */
        .require_client = o->require_client_attestation,
        .client_policy = o->client_attestation_policy,
    };
    s->atls = tm_atls_server_new(&ao, err, errcap);
    if (!s->atls || tm_atls_server_ctx_init(s->ctx, s->atls, err, errcap) < 0)
        return -1;
    return 0;
}

tm_tls_server *tm_tls_server_new(const tm_tls_server_opts *o, char *err, size_t errcap)
{
    tm_tls_server *s = calloc(1, sizeof *s);
    ctx_data *d = NULL;
    if (!s || !(s->ctx = ctx_new(TLS_server_method(), &d))) {
        free(s);
        snprintf(err, errcap, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX *ctx = s->ctx;
    d->subject_identity = o->identity_subject;
    d->want_identity = o->want_identity || o->identity_subject;
    /* MQTT has its own DISCONNECT: a TCP close without close_notify is an
     * ordinary end of connection, not an error worth logging */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!o->openssl_records) {
        /* our record layer after TLS 1.3 handshakes: no tickets (they would
         * be OpenSSL's records under the application keys), the secrets
         * from the key log (before the attestation extension chains to it) */
        d->own_records = true;
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    }
    int minv, have_ca;
    if (tm_tls_parse_version(o->min_version, TLS1_2_VERSION, &minv) < 0) {
        snprintf(err, errcap, "tls_version '%s': use tlsv1.2 or tlsv1.3", o->min_version);
        goto fail;
    }
    /* Client attestation rides on TLS 1.3 messages (CertificateRequest). */
    if (o->require_client_attestation)
        minv = TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, minv);
    if (set_ciphers(ctx, o->ciphers, o->ciphersuites, err, errcap) < 0 ||
        load_cert_key(ctx, o->certfile, o->keyfile, err, errcap) < 0 ||
        (have_ca = load_ca(ctx, o->cafile, o->capath, err, errcap)) < 0 ||
        load_crl(ctx, o->crlfile, err, errcap) < 0 || load_dh(ctx, o->dhparamfile, err, errcap) < 0 ||
        server_verify_mode(ctx, o, have_ca, err, errcap) < 0 ||
        server_psk(ctx, d, o, err, errcap) < 0 || server_attest(s, o, err, errcap) < 0)
        goto fail;
    return s;
fail:
    tm_tls_server_free(s);
    ERR_clear_error();
    return NULL;
}

void tm_tls_server_free(tm_tls_server *s)
{
    if (!s)
        return;
    SSL_CTX_free(s->ctx);
    tm_atls_server_free(s->atls);
    free(s);
}

bool tm_tls_server_attesting(const tm_tls_server *s) { return s && s->atls; }

int tm_tls_server_refresh(tm_tls_server *s, char *err, size_t errcap)
{
    return s && s->atls ? tm_atls_server_refresh(s->atls, err, errcap) : 0;
}

int tm_tls_server_warnings(const tm_tls_server *s, char *buf, size_t cap)
{
    const tm_policy *p = s && s->atls ? tm_atls_server_client_policy(s->atls) : NULL;
    if (cap)
        buf[0] = 0;
    return p ? tm_policy_warnings(p, buf, cap) : 0;
}

int tm_tls_server_tick(tm_tls_server *s, char *note, size_t notecap)
{
    return s && s->atls ? tm_atls_server_tick(s->atls, time(NULL), note, notecap) : 0;
}

/* ---- client role ------------------------------------------------------------- */

bool tm_tls_ctx_insecure(const SSL_CTX *ctx)
{
    ctx_data *d = ctxdata(ctx);
    return d && d->insecure;
}

static int client_psk(SSL_CTX *ctx, ctx_data *d, const tm_tls_opts *o, char *err, size_t errcap)
{
    if (!set(o->psk_hex)) {
        if (set(o->psk_identity)) {
            snprintf(err, errcap, "--psk-identity needs --psk");
            return -1;
        }
        return 0;
    }
    if (!set(o->psk_identity)) {
        snprintf(err, errcap, "--psk needs --psk-identity");
        return -1;
    }
    char why[200];
    psk_entry e;
    memset(&e, 0, sizeof e);
    if (psk_parse(o->psk_identity, o->psk_hex, &e, why, sizeof why) < 0) {
        snprintf(err, errcap, "PSK: %s", why);
        return -1;
    }
    if (psk_add(d, &e) < 0) {
        free(e.identity);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    OPENSSL_cleanse(e.key, sizeof e.key);
    SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
    /* TLS 1.2 needs PSK cipher suites offered; TLS 1.3 uses the callback's
     * key with a SHA-256 suite, which is in the default list. */
    if (!set(o->ciphers))
        SSL_CTX_set_cipher_list(ctx, "PSK:ECDHE-PSK:DHE-PSK:DEFAULT");
    return 0;
}

SSL_CTX *tm_tls_ctx_new(const tm_tls_opts *o, char *err, size_t errcap)
{
    char why[256] = "";
    ctx_data *d = NULL;
    SSL_CTX *ctx = ctx_new(TLS_client_method(), &d);
    if (!ctx) {
        snprintf(err, errcap, "TLS: out of memory");
        return NULL;
    }
    d->insecure = o->insecure;
    int minv, maxv = 0, have_ca;
    if (tm_tls_parse_version(o->min_version, TLS1_2_VERSION, &minv) < 0 ||
        tm_tls_parse_version(o->max_version, 0, &maxv) < 0) {
        snprintf(why, sizeof why, "unknown TLS version '%s' (use tlsv1.2 or tlsv1.3)",
                 tm_tls_parse_version(o->min_version, 0, &minv) < 0 ? o->min_version
                                                                    : o->max_version);
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, minv);
    if (maxv)
        SSL_CTX_set_max_proto_version(ctx, maxv);
    if (set_ciphers(ctx, o->ciphers, o->ciphersuites, why, sizeof why) < 0 ||
        (have_ca = load_ca(ctx, o->cafile, o->capath, why, sizeof why)) < 0 ||
        load_cert_key(ctx, o->certfile, o->keyfile, why, sizeof why) < 0 ||
        client_psk(ctx, d, o, why, sizeof why) < 0 ||
        keylog_open(ctx, d, o->keylog_file, why, sizeof why) < 0)
        goto fail;
    if (!have_ca && !o->insecure)
        SSL_CTX_set_default_verify_paths(ctx);
    /* PSK-only handshakes carry no certificate, so VERIFY_PEER is harmless
     * there; with certificates it is what makes TLS mean anything. */
    SSL_CTX_set_verify(ctx, (have_ca || !o->insecure) ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return ctx;
fail:
    snprintf(err, errcap, "TLS: %s", why);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}
