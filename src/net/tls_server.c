/*
 * tls_server.c — the broker's TLS transport (transport.h) over OpenSSL 3:
 * server certificates, client certificates, TLS 1.3 external PSK and TLS 1.2
 * PSK from a mosquitto-style psk_file, protocol and cipher limits, SIGHUP
 * reload, and the attested TLS extension (src/attest/atls.h) for listeners
 * with an attestation_provider or require_client_attestation.
 *
 * Invariants: one SSL_CTX per listener generation; a reload builds a
 * complete new context and only then replaces the old one, so a bad file
 * on SIGHUP leaves the listener as it was. Connections hold their own
 * reference to the context they were created with (SSL_new), and the
 * context holds everything its callbacks need (PSK table and attestation
 * configuration as ex_data), so nothing is freed under a live connection.
 * c->tls is the SSL *, c->claims a struct tm_peer_attestation * (atls.h)
 * only when the client's evidence was appraised successfully.
 * Sockets are non-blocking: every OpenSSL call maps WANT_READ/WANT_WRITE to
 * the transport's "would block" convention.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "attest/atls.h"
#include "attest/evidence.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "broker/transport.h"
#include "net/loop.h"

#define TM_PSK_MAX 64   /* bytes of key; mosquitto accepts up to 64 too */

typedef struct psk_entry {
    char *identity;
    uint8_t key[TM_PSK_MAX];
    size_t len;
} psk_entry;

/* Per SSL_CTX: what the PSK callbacks look up. Freed with the context. */
typedef struct ctx_info {
    psk_entry *psk;
    size_t n_psk;
} ctx_info;

typedef struct tls_listener {
    SSL_CTX *ctx;
    tm_atls_server *atls;        /* NULL without attestation */
    bool require_client_attestation;
} tls_listener;

static int ctxinfo_idx = -1;     /* SSL_CTX ex_data: ctx_info */
static int pskid_idx = -1;       /* SSL ex_data: matched PSK identity (strdup) */

static void ctxinfo_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    ctx_info *ci = ptr;
    if (!ci)
        return;
    for (size_t i = 0; i < ci->n_psk; i++) {
        free(ci->psk[i].identity);
        OPENSSL_cleanse(ci->psk[i].key, sizeof ci->psk[i].key);
    }
    free(ci->psk);
    free(ci);
}

static void pskid_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp)
{
    free(ptr);
}

static void ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown OpenSSL error");
    ERR_clear_error();
}

/* ---- PSK ------------------------------------------------------------------ */

static const psk_entry *psk_find(SSL *ssl, const unsigned char *id, size_t idlen)
{
    ctx_info *ci = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctxinfo_idx);
    if (!ci)
        return NULL;
    for (size_t i = 0; i < ci->n_psk; i++)
        if (strlen(ci->psk[i].identity) == idlen && !memcmp(ci->psk[i].identity, id, idlen))
            return &ci->psk[i];
    return NULL;
}

/* Keeps the matched identity for use_identity_as_username (replacing one
 * from a first ClientHello after HelloRetryRequest). */
static void remember_identity(SSL *ssl, const char *id)
{
    char *old = SSL_get_ex_data(ssl, pskid_idx);
    SSL_set_ex_data(ssl, pskid_idx, NULL);
    free(old);
    char *copy = strdup(id);
    if (copy && !SSL_set_ex_data(ssl, pskid_idx, copy))
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
    if (!identity)
        return 0;
    const psk_entry *e = psk_find(ssl, (const unsigned char *)identity, strlen(identity));
    if (!e || e->len > max_psk_len)
        return 0;
    memcpy(psk, e->key, e->len);
    remember_identity(ssl, e->identity);
    return (unsigned)e->len;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* psk_file: "identity:hexkey" per line, '#' comments, blank lines ignored. */
static int psk_load(const char *path, ctx_info *ci, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "psk_file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int ln = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ' ||
                     line[l - 1] == '\t'))
            line[--l] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        char *colon = strrchr(p, ':');
        if (!colon || colon == p || !colon[1]) {
            snprintf(err, errcap, "%s:%d: expected identity:hexkey", path, ln);
            rc = -1;
            break;
        }
        *colon = 0;
        const char *hex = colon + 1;
        size_t hl = strlen(hex);
        if (hl % 2 || hl / 2 > TM_PSK_MAX) {
            snprintf(err, errcap, "%s:%d: key must be an even number of hex digits, at most %d "
                     "bytes", path, ln, TM_PSK_MAX);
            rc = -1;
            break;
        }
        psk_entry e;
        memset(&e, 0, sizeof e);
        for (size_t i = 0; i < hl; i += 2) {
            int hi = hexval((unsigned char)hex[i]), lo = hexval((unsigned char)hex[i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errcap, "%s:%d: key is not hexadecimal", path, ln);
                rc = -1;
                break;
            }
            e.key[i / 2] = (uint8_t)(hi << 4 | lo);
        }
        if (rc < 0)
            break;
        e.len = hl / 2;
        psk_entry *grown = realloc(ci->psk, (ci->n_psk + 1) * sizeof *grown);
        e.identity = strdup(p);
        if (!grown || !e.identity) {
            free(e.identity);
            if (grown)
                ci->psk = grown;
            snprintf(err, errcap, "out of memory");
            rc = -1;
            break;
        }
        ci->psk = grown;
        ci->psk[ci->n_psk++] = e;
    }
    fclose(f);
    if (rc == 0 && ci->n_psk == 0) {
        snprintf(err, errcap, "psk_file %s holds no identity:key line", path);
        rc = -1;
    }
    return rc;
}

/* ---- listener contexts --------------------------------------------------- */

static int parse_version(const char *s, int *out)
{
    if (!s || !*s)
        *out = TLS1_2_VERSION;
    else if (!strcasecmp(s, "tlsv1.3"))
        *out = TLS1_3_VERSION;
    else if (!strcasecmp(s, "tlsv1.2"))
        *out = TLS1_2_VERSION;
    else if (!strcasecmp(s, "tlsv1.1"))
        *out = TLS1_1_VERSION;
    else
        return -1;
    return 0;
}

static void tls_listener_free(tls_listener *l)
{
    if (!l)
        return;
    SSL_CTX_free(l->ctx);
    tm_atls_server_free(l->atls);
    free(l);
}

/* Builds a complete listener context from the configuration. */
static tls_listener *build(const tm_listener_cfg *cfg, char *err, size_t errcap)
{
    char why[256];
    if (ctxinfo_idx < 0)
        ctxinfo_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctxinfo_free);
    if (pskid_idx < 0)
        pskid_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, pskid_free);
    tls_listener *l = calloc(1, sizeof *l);
    ctx_info *ci = calloc(1, sizeof *ci);
    if (!l || !ci || ctxinfo_idx < 0 || pskid_idx < 0) {
        free(l);
        free(ci);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    l->ctx = SSL_CTX_new(TLS_server_method());
    if (!l->ctx || !SSL_CTX_set_ex_data(l->ctx, ctxinfo_idx, ci)) {
        free(ci);
        snprintf(err, errcap, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX *ctx = l->ctx;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* MQTT has its own DISCONNECT: a TCP close without close_notify is an
     * ordinary end of connection, not an error worth logging */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);

    int minv;
    if (parse_version(cfg->tls_version, &minv) < 0) {
        snprintf(err, errcap, "tls_version '%s': use tlsv1.2 or tlsv1.3", cfg->tls_version);
        goto fail;
    }
    /* Client attestation rides on TLS 1.3 messages (CertificateRequest). */
    if (cfg->require_client_attestation)
        minv = TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, minv);

    if (cfg->ciphers && *cfg->ciphers && !SSL_CTX_set_cipher_list(ctx, cfg->ciphers)) {
        snprintf(err, errcap, "ciphers '%s': no usable cipher", cfg->ciphers);
        goto fail;
    }
    if (cfg->ciphers_tls13 && *cfg->ciphers_tls13 &&
        !SSL_CTX_set_ciphersuites(ctx, cfg->ciphers_tls13)) {
        snprintf(err, errcap, "ciphers_tls1.3 '%s': no usable suite", cfg->ciphers_tls13);
        goto fail;
    }

    if (cfg->certfile && *cfg->certfile) {
        if (!cfg->keyfile || !*cfg->keyfile) {
            snprintf(err, errcap, "certfile needs keyfile");
            goto fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "certfile %s: %s", cfg->certfile, why);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "keyfile %s: %s", cfg->keyfile, why);
            goto fail;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errcap, "keyfile %s does not match certfile %s", cfg->keyfile,
                     cfg->certfile);
            goto fail;
        }
    } else if (cfg->keyfile && *cfg->keyfile) {
        snprintf(err, errcap, "keyfile needs certfile");
        goto fail;
    }

    bool have_ca = (cfg->cafile && *cfg->cafile) || (cfg->capath && *cfg->capath);
    if (have_ca) {
        const char *cf = cfg->cafile && *cfg->cafile ? cfg->cafile : NULL;
        const char *cp = cfg->capath && *cfg->capath ? cfg->capath : NULL;
        if (!SSL_CTX_load_verify_locations(ctx, cf, cp)) {
            ssl_errstr(why, sizeof why);
            snprintf(err, errcap, "cannot load CA from %s: %s", cf ? cf : cp, why);
            goto fail;
        }
        if (cf) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cf);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
            ERR_clear_error();
        }
    }
    bool want_cert = cfg->require_certificate || cfg->require_client_attestation ||
                     (cfg->use_identity_as_username && !cfg->psk_file);
    if (want_cert && !have_ca) {
        snprintf(err, errcap, "%s needs cafile or capath to verify client certificates",
                 cfg->require_client_attestation ? "require_client_attestation"
                                                 : "require_certificate");
        goto fail;
    }
    if (want_cert && cfg->certfile)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (have_ca && cfg->certfile)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);   /* optional client certificate */
    else
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (want_cert && !cfg->certfile) {
        snprintf(err, errcap, "client certificates need a server certificate (certfile)");
        goto fail;
    }

    if (cfg->psk_file && *cfg->psk_file) {
        if (psk_load(cfg->psk_file, ci, err, errcap) < 0)
            goto fail;
        SSL_CTX_set_psk_find_session_callback(ctx, psk_find_session_cb);
        SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
        if (cfg->psk_hint && *cfg->psk_hint && !SSL_CTX_use_psk_identity_hint(ctx, cfg->psk_hint)) {
            snprintf(err, errcap, "psk_hint too long");
            goto fail;
        }
        /* TLS 1.2 needs PSK suites offered; TLS 1.3 uses the suites as they are. */
        if (!(cfg->ciphers && *cfg->ciphers))
            SSL_CTX_set_cipher_list(ctx, cfg->certfile ? "DEFAULT:PSK" : "PSK:ECDHE-PSK:DHE-PSK");
    }

    const char *prov = cfg->attestation_provider;
    bool attest = (prov && *prov && strcmp(prov, "none")) || cfg->require_client_attestation;
    if (attest) {
        char opts[1024] = "";
        size_t o = 0;
        for (uint32_t i = 0; i < cfg->n_attestation_opts; i++) {
            int w = snprintf(opts + o, sizeof opts - o, "%s%s", i ? "," : "",
                             cfg->attestation_opts[i]);
            if (w < 0 || (size_t)w >= sizeof opts - o) {
                snprintf(err, errcap, "attestation_opt: options too long");
                goto fail;
            }
            o += (size_t)w;
        }
        tm_atls_server_opts ao = {
            .provider = prov,
            .provider_opts = opts,
            .formats = cfg->attestation_formats,
            .require_client = cfg->require_client_attestation,
            .client_policy = cfg->client_attestation_policy,
        };
        l->atls = tm_atls_server_new(&ao, err, errcap);
        if (!l->atls || tm_atls_server_ctx_init(ctx, l->atls, err, errcap) < 0)
            goto fail;
        l->require_client_attestation = cfg->require_client_attestation;
    }
    return l;
fail:
    tls_listener_free(l);
    ERR_clear_error();
    return NULL;
}

/* ACL `attested SETNAME` blocks (auth.c) ask this whether a connection's
 * claims are in a measurement set of its listener's client policy. */
static bool claims_in_set(const void *claims, const char *set)
{
    const struct tm_peer_attestation *pa = claims;
    return pa && pa->policy && tm_policy_in_set(pa->policy, set, &pa->claims) == 1;
}

static int listener_new(const tm_listener_cfg *cfg, void **state, char *err, size_t errcap)
{
    tm_acl_set_claims_checker(claims_in_set);
    tls_listener *l = build(cfg, err, errcap);
    if (!l)
        return -1;
    *state = l;
    return 0;
}

static void listener_free(void *state) { tls_listener_free(state); }

static int listener_reload(void *state, const tm_listener_cfg *cfg, char *err, size_t errcap)
{
    tls_listener *l = state;
    tls_listener *fresh = build(cfg, err, errcap);
    if (!fresh)
        return -1;   /* keep serving with what we had */
    /* swap contents so the listener's pointer stays valid; live connections
     * keep their own references to the old context */
    tls_listener old = *l;
    *l = *fresh;
    *fresh = old;
    tls_listener_free(fresh);
    return 0;
}

/* ---- connections ------------------------------------------------------------ */

static int conn_new(void *lstate, tm_conn *c, int fd, char *err, size_t errcap)
{
    tls_listener *l = lstate;
    SSL *ssl = SSL_new(l->ctx);
#ifdef __wasi__
    /* OpenSSL for wasm32-wasi is built no-sock (no BIO_s_socket): an fd BIO
     * does the same read()/write() on the socket descriptor. */
    BIO *bio = ssl ? BIO_new_fd(fd, BIO_NOCLOSE) : NULL;
    if (bio)
        SSL_set_bio(ssl, bio, bio);
    if (!ssl || !bio) {
#else
    if (!ssl || !SSL_set_fd(ssl, fd)) {
#endif
        SSL_free(ssl);
        ERR_clear_error();
        snprintf(err, errcap, "cannot create a TLS connection");
        return -1;
    }
    SSL_set_accept_state(ssl);
    c->tls = ssl;
    return 0;
}

static void fail_reason(SSL *ssl, int ret, char *err, size_t errcap)
{
    const char *ar = tm_atls_reason(ssl);
    int e = SSL_get_error(ssl, ret);
    long vr = SSL_get_verify_result(ssl);
    char why[256];
    if (ar && *ar) {
        snprintf(err, errcap, "%s", ar);
        ERR_clear_error();
    } else if (vr != X509_V_OK) {
        snprintf(err, errcap, "client certificate: %s", X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SSL) {
        ssl_errstr(why, sizeof why);
        snprintf(err, errcap, "%s", why);
    } else if (e == SSL_ERROR_SYSCALL) {
        snprintf(err, errcap, "%s", errno ? strerror(errno) : "connection closed by peer");
        ERR_clear_error();
    } else {
        snprintf(err, errcap, "TLS error %d", e);
        ERR_clear_error();
    }
}

static int handshake(tm_conn *c, unsigned *want, char *err, size_t errcap)
{
    SSL *ssl = c->tls;
    ERR_clear_error();
    errno = 0;
    int r = SSL_accept(ssl);
    if (r != 1) {
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            *want = TM_EV_READ;
            return 0;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            *want = TM_EV_WRITE;
            return 0;
        }
        fail_reason(ssl, r, err, errcap);
        return -1;
    }
    uint16_t fmt;
    if (tm_atls_server_sent(ssl, &fmt))
        tm_log(TM_LOG_INFO, "connection %s: sent %s attestation evidence", c->peer,
               tm_format_name(fmt));
    /* the configuration this connection was created with (survives reloads) */
    const tm_atls_server *srv = tm_atls_server_of(ssl);
    if (!srv || !tm_atls_server_requires_client(srv))
        return 1;
    tm_claims claims;
    if (tm_atls_server_client_result(ssl, &claims) != 1) {
        /* TLS 1.3 puts the client's Certificate after our Finished, so a
         * missing answer is only known now: refuse before any MQTT byte */
        snprintf(err, errcap, "client sent no attestation evidence (require_client_attestation)");
        return -1;
    }
    struct tm_peer_attestation *pa = calloc(1, sizeof *pa);
    if (!pa) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    pa->claims = claims;
    pa->policy = tm_atls_server_client_policy(srv);
    c->claims = pa;
    if (tm_log_enabled(TM_LOG_NOTICE)) {
        char meas[97] = "";
        for (size_t i = 0; i < claims.measurement_len && i < 48; i++)
            snprintf(meas + 2 * i, 3, "%02x", claims.measurement[i]);
        tm_log(TM_LOG_NOTICE, "connection %s: client attestation accepted (%s, measurement %s%s)",
               c->peer, claims.format_name, meas, claims.debug ? ", debug" : "");
    }
    return 1;
}

static long tls_read(tm_conn *c, void *buf, size_t n, unsigned *want)
{
    SSL *ssl = c->tls;
    size_t got = 0;
    /* drain whole records while they come, so that nothing decrypted waits
     * inside OpenSSL without the socket being readable */
    while (got < n) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(ssl, (char *)buf + got, (int)(n - got > 1 << 30 ? 1 << 30 : n - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (got)
            break;   /* report what we have; the error comes back next time */
        if (e == SSL_ERROR_WANT_READ) {
            *want = TM_EV_READ;
            return -2;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            *want = TM_EV_WRITE;
            return -2;
        }
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
            return 0;
        ERR_clear_error();
        return -1;
    }
    return (long)got;
}

static long tls_write(tm_conn *c, const void *buf, size_t n, unsigned *want)
{
    if (n == 0)
        return 0;
    ERR_clear_error();
    int r = SSL_write(c->tls, buf, (int)(n > 1 << 30 ? 1 << 30 : n));
    if (r > 0)
        return r;
    int e = SSL_get_error(c->tls, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = TM_EV_READ;
        return -2;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = TM_EV_WRITE;
        return -2;
    }
    ERR_clear_error();
    return -1;
}

static void conn_free(tm_conn *c)
{
    free(c->claims);
    c->claims = NULL;
    if (c->tls) {
        SSL *ssl = c->tls;
        if (SSL_is_init_finished(ssl))
            SSL_shutdown(ssl);   /* best effort close_notify; never blocks */
        SSL_free(ssl);
        ERR_clear_error();
        c->tls = NULL;
    }
}

static char *identity(tm_conn *c)
{
    SSL *ssl = c->tls;
    if (!ssl)
        return NULL;
    const char *psk = pskid_idx >= 0 ? SSL_get_ex_data(ssl, pskid_idx) : NULL;
    if (psk)
        return strdup(psk);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    if (n <= 0)
        return NULL;
    return strdup(cn);
}

static int attested(tm_conn *c)
{
    return c->claims != NULL;
}

const tm_transport tm_tls_transport = {
    .name = "tls",
    .listener_new = listener_new,
    .listener_free = listener_free,
    .conn_new = conn_new,
    .handshake = handshake,
    .read = tls_read,
    .write = tls_write,
    .conn_free = conn_free,
    .identity = identity,
    .attested = attested,
    .listener_reload = listener_reload,
};
