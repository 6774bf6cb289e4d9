/*
 * stream_tls.c — the TLS layer of the transport stack (stream.h), both roles,
 * OpenSSL on the socket of the TCP layer below it.
 *
 * Non-blocking throughout: every OpenSSL call maps WANT_READ / WANT_WRITE to
 * the stream's "would block" convention. Reads drain whole records while
 * they come, so nothing decrypted waits inside OpenSSL unannounced (and
 * `pending` says when something still does).
 *
 * Closing: after a fatal error (an alert, a reset, a syscall failure) the
 * layer never writes again — OpenSSL forbids SSL_shutdown then, and a write
 * on a reset socket is what would raise SIGPIPE in a host that does not
 * ignore it. Otherwise shutdown sends close_notify, then half-closes TCP.
 *
 * Server role, after the handshake: the identity for use_identity_as_username
 * and, on attesting listeners, the appraised client claims (atls_peer.h).
 *
 * The takeover (server role, docs/tls-record-layer.md): when a handshake
 * completes with TLS 1.3, an AES-GCM or ChaCha20-Poly1305 suite, both
 * traffic secrets captured (tls.c) and nothing of the application traffic
 * seen by OpenSSL (no buffered bytes, no ticket or KeyUpdate sent: both
 * sequence numbers are still 0), the layer keeps what the upper layers will
 * ask for (identity only when the listener uses it, the appraised claims,
 * the attestation note), hands the records to tls_record.c and frees the
 * SSL. From then on `ssl` is NULL and `rec` does the reading and writing
 * through the TCP layer below. Otherwise the connection stays on OpenSSL,
 * which releases its buffers while idle (SSL_MODE_RELEASE_BUFFERS).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "attest/atls.h"
#include "attest/atls_peer.h"
#include "attest/evidence.h"
#include "net/loop.h"
#include "net/tls.h"
#include "net/tls_int.h"
#include "net/tls_record.h"

/* Kept small: a server connection holds one for its whole life. */
typedef struct tls_stream {
    tm_stream s;
    SSL *ssl;                    /* NULL after the takeover */
    tm_tlsrec *rec;              /* our record layer after the takeover */
    char *identity;              /* after the takeover, when the listener uses it */
    tm_atls_peer *peer;          /* after the takeover: the client's appraised claims */
    uint16_t sent_format;        /* server: the format of the evidence we sent */
    bool sent_evidence;
    bool server;
    bool done;                   /* handshake completed */
} tls_stream;

typedef struct tls_client_stream {
    tls_stream t;
    tm_tls_client_hooks hooks;
} tls_client_stream;

static tls_stream *T(tm_stream *s) { return (tls_stream *)s; }
static tls_client_stream *C(tls_stream *t) { return (tls_client_stream *)t; }

/* Why the last call failed, in words; marks the layer failed. */
static void fail_ssl(tls_stream *t, int ret, const char *what)
{
    SSL *ssl = t->ssl;
    int e = SSL_get_error(ssl, ret);
    const char *ar = tm_atls_reason(ssl);
    long vr = SSL_get_verify_result(ssl);
    char why[256];
    if (ar && *ar) {
        snprintf(why, sizeof why, "%s", ar);
        ERR_clear_error();
    } else if (!t->done && vr != X509_V_OK) {
        snprintf(why, sizeof why, "%s: %s",
                 t->server ? "client certificate" : "certificate verify failed",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SSL) {
        tm_tls_errstr(why, sizeof why);
    } else if (e == SSL_ERROR_SYSCALL) {
        snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "connection closed by peer");
        ERR_clear_error();
    } else if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, sizeof why, "peer sent close_notify");
    } else {
        snprintf(why, sizeof why, "TLS error %d", e);
        ERR_clear_error();
    }
    tm_stream_fail(&t->s, "%s: %s", what, why);
}

static int want_of(SSL *ssl, int r, unsigned *want)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        *want = TM_EV_READ;
        return 1;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = TM_EV_WRITE;
        return 1;
    }
    if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        /* paused by the attestation layer's client-hello callback: no
         * socket event will resume it, the caller retries (tls.h) */
        *want = TM_TLS_WANT_RETRY;
        return 1;
    }
    return 0;
}

static void note_attestation(tls_stream *t)
{
    t->sent_evidence = tm_atls_server_sent(t->ssl, &t->sent_format) == 1;
}

/* Server: a listener that requires client attestation refuses a handshake
 * without appraised evidence (TLS 1.3 puts the client's Certificate after
 * our Finished, so a missing answer is only known now). */
static int check_client_attestation(tls_stream *t)
{
    const tm_atls_server *srv = tm_atls_server_of(t->ssl);
    if (!srv || !tm_atls_server_requires_client(srv))
        return 0;
    if (tm_atls_server_client_result(t->ssl, NULL) != 1) {
        tm_stream_fail(&t->s, "TLS handshake: client sent no attestation evidence "
                              "(require_client_attestation)");
        return -1;
    }
    return 0;
}

/* The identity for use_identity_as_username / use_subject_as_username:
 * the PSK identity, else the verified certificate's common name or its
 * whole subject (malloc'd; NULL when there is none). */
static char *identity_of(SSL *ssl)
{
    const char *psk = tm_tls_pskid_idx >= 0 ? SSL_get_ex_data(ssl, tm_tls_pskid_idx) : NULL;
    if (psk)
        return strdup(psk);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    if (tm_tls_ctx_subject_identity(SSL_get_SSL_CTX(ssl))) {
        /* Mosquitto's form: "CN=client,OU=Production,O=Server,C=GB" */
        BIO *b = BIO_new(BIO_s_mem());
        char *subject = NULL, *data;
        if (b && X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
            long n = BIO_get_mem_data(b, &data);
            subject = n > 0 ? strndup(data, (size_t)n) : NULL;
        }
        BIO_free(b);
        return subject;
    }
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    return n > 0 ? strdup(cn) : NULL;
}

/* The client's appraised attestation, a new reference (NULL: none). *ok is
 * false when there was one but no memory to keep it. */
static tm_atls_peer *attestation_of(SSL *ssl, bool *ok)
{
    tm_claims claims;
    *ok = true;
    if (tm_atls_server_client_result(ssl, &claims) != 1)
        return NULL;
    /* the configuration this connection was created with (survives reloads) */
    tm_atls_peer *p = tm_atls_peer_new(&claims, (tm_atls_server *)tm_atls_server_of(ssl));
    *ok = p != NULL;
    return p;
}

/* Server, handshake just completed: our record layer replaces OpenSSL's
 * when that is safe (see the top of the file); otherwise nothing changes. */
static void take_over(tls_stream *t)
{
    SSL *ssl = t->ssl;
    uint8_t cs[TM_TLSREC_MAX_SECRET], ss[TM_TLSREC_MAX_SECRET];
    size_t len = 0;
    /* the secrets leave the SSL now, whatever happens next */
    int have = tm_tls_take_secrets(ssl, cs, ss, &len);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    uint16_t suite = c ? SSL_CIPHER_get_protocol_id(c) : 0;
    char why[200];
    tm_tlsrec *rec = NULL;
    /* OpenSSL must not have read or written a record under the application
     * keys: nothing buffered (read_ahead is off), no ticket sent, no
     * KeyUpdate of its own pending */
    if (have == 0 && tm_tls_ctx_own_records(SSL_get_SSL_CTX(ssl)) &&
        SSL_version(ssl) == TLS1_3_VERSION && tm_tlsrec_suite_supported(suite) &&
        !SSL_has_pending(ssl) && SSL_get_num_tickets(ssl) == 0 &&
        SSL_get_key_update_type(ssl) == SSL_KEY_UPDATE_NONE)
        rec = tm_tlsrec_new(suite, cs, ss, len, why, sizeof why);
    OPENSSL_cleanse(cs, sizeof cs);
    OPENSSL_cleanse(ss, sizeof ss);
    if (!rec)
        return;
    bool ok;
    char *identity = tm_tls_ctx_wants_identity(SSL_get_SSL_CTX(ssl)) ? identity_of(ssl) : NULL;
    tm_atls_peer *peer = attestation_of(ssl, &ok);
    if (!ok) {
        free(identity);
        tm_tlsrec_free(rec);
        return;
    }
    t->rec = rec;
    t->identity = identity;
    t->peer = peer;
    t->ssl = NULL;
    SSL_free(ssl);
    ERR_clear_error();
}

static int tls_handshake(tm_stream *s, unsigned *want)
{
    tls_stream *t = T(s);
    if (t->done)
        return 1;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        if (want_of(t->ssl, r, want))
            return 0;
        fail_ssl(t, r, "TLS handshake");
        return -1;
    }
    t->done = true;
    if (t->server) {
        note_attestation(t);
        if (check_client_attestation(t) < 0)
            return -1;
        take_over(t);
        return 1;
    }
    const tm_tls_client_hooks *hooks = &C(t)->hooks;
    char why[256] = "";
    if (hooks->verify && hooks->verify(t->ssl, hooks->arg, why, sizeof why) != 0) {
        tm_stream_fail(s, "TLS peer rejected: %s", why[0] ? why : "refused by hook");
        return -1;
    }
    return 1;
}

/* ---- after the takeover: tls_record.c over the TCP layer ---------------------- */

static long below_read(void *arg, void *buf, size_t n)
{
    unsigned want = 0;
    return tm_stream_read(arg, buf, n, &want);
}

static long below_write(void *arg, const void *buf, size_t n)
{
    unsigned want = 0;
    return tm_stream_write(arg, buf, n, &want);
}

static tm_tlsrec_io below_io(tls_stream *t)
{
    return (tm_tlsrec_io){.read = below_read, .write = below_write, .arg = t->s.below};
}

/* r as tls_record.c returned it; a failure is recorded with its reason:
 * the record layer's (why), or the TCP layer's below (why ""). */
static long rec_result(tls_stream *t, const char *what, long r, const char *why)
{
    const char *below = tm_stream_error(t->s.below);
    if (r == -1)
        tm_stream_fail(&t->s, "%s: %s", what,
                       why[0] ? why : below[0] ? below : "connection failed");
    return r;
}

/* ---- the layer ---------------------------------------------------------------------- */

static long tls_read(tm_stream *s, void *buf, size_t n, unsigned *want)
{
    tls_stream *t = T(s);
    if (t->rec) {
        tm_tlsrec_io io = below_io(t);
        char why[200];
        return rec_result(t, "TLS read", tm_tlsrec_read(t->rec, &io, buf, n, want, why, sizeof why),
                          why);
    }
    size_t got = 0;
    /* drain whole records while they come, so that nothing decrypted waits
     * inside OpenSSL without the socket being readable */
    while (got < n) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(t->ssl, (char *)buf + got, (int)(n - got > 1 << 30 ? 1 << 30 : n - got));
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (got)
            break;   /* report what we have; the error comes back next time */
        if (want_of(t->ssl, r, want))
            return -2;
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
            /* close_notify, or a clean EOF (SSL_OP_IGNORE_UNEXPECTED_EOF): the
             * peer is gone, a close_notify from us would be for nobody */
            ERR_clear_error();
            s->failed = e != SSL_ERROR_ZERO_RETURN;
            return 0;
        }
        fail_ssl(t, r, "TLS read");
        return -1;
    }
    return (long)got;
}

static long tls_write(tm_stream *s, const void *buf, size_t n, unsigned *want)
{
    tls_stream *t = T(s);
    if (t->rec) {
        tm_tlsrec_io io = below_io(t);
        char why[200];
        return rec_result(t, "TLS write",
                          tm_tlsrec_write(t->rec, &io, buf, n, want, why, sizeof why), why);
    }
    if (n == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(t->ssl, buf, (int)(n > 1 << 30 ? 1 << 30 : n));
    if (r > 0)
        return r;
    if (want_of(t->ssl, r, want))
        return -2;
    fail_ssl(t, r, "TLS write");
    return -1;
}

static int tls_shutdown(tm_stream *s, unsigned *want)
{
    tls_stream *t = T(s);
    if (t->rec) {
        /* close_notify unless nothing may be sent, then half-close TCP */
        tm_tlsrec_io io = below_io(t);
        if (!s->failed && tm_tlsrec_shutdown(t->rec, &io, want) == 0)
            return 0;
        return s->below ? tm_stream_shutdown(s->below, want) : 1;
    }
    if (s->failed || !t->done || SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN) {
        /* nothing may be sent: close quietly */
        SSL_set_quiet_shutdown(t->ssl, 1);
        return s->below ? tm_stream_shutdown(s->below, want) : 1;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_shutdown(t->ssl);
    if (r < 0) {
        if (want_of(t->ssl, r, want))
            return 0;
        fail_ssl(t, r, "TLS shutdown");
        return -1;
    }
    /* close_notify is out (r == 0: the peer's is not needed); half-close TCP */
    return s->below ? tm_stream_shutdown(s->below, want) : 1;
}

static bool tls_pending(const tm_stream *s)
{
    const tls_stream *t = (const tls_stream *)s;
    return t->rec ? tm_tlsrec_pending(t->rec) : SSL_pending(t->ssl) > 0;
}

static void tls_free(tm_stream *s)
{
    tls_stream *t = T(s);
    SSL_free(t->ssl);
    ERR_clear_error();
    tm_tlsrec_free(t->rec);
    free(t->identity);
    tm_atls_peer_unref(t->peer);
    free(t);
}

static const tm_stream_ops tls_ops = {
    .name = "tls",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
    .pending = tls_pending,
    .free = tls_free,
};

static tls_stream *tls_new(SSL_CTX *ctx, tm_stream *below, bool server, char *err,
                           size_t errcap)
{
    tls_stream *t = calloc(1, server ? sizeof(tls_stream) : sizeof(tls_client_stream));
    SSL *ssl = t ? SSL_new(ctx) : NULL;
#ifdef __wasi__
    /* OpenSSL for wasm32-wasi is built no-sock (no BIO_s_socket): an fd BIO
     * does the same read()/write() on the socket descriptor. */
    BIO *bio = ssl ? BIO_new_fd(below->fd, BIO_NOCLOSE) : NULL;
    if (bio)
        SSL_set_bio(ssl, bio, bio);
    if (!ssl || !bio) {
#else
    if (!ssl || !SSL_set_fd(ssl, below->fd)) {
#endif
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        snprintf(err, errcap, "cannot create a TLS connection");
        return NULL;
    }
    t->s.ops = &tls_ops;
    t->s.below = below;
    t->s.fd = below->fd;
    t->ssl = ssl;
    t->server = server;
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    return t;
}

tm_stream *tm_stream_tls_server(tm_tls_server *srv, tm_stream *below, char *err, size_t errcap)
{
    tls_stream *t = tls_new(srv->ctx, below, true, err, errcap);
    return t ? &t->s : NULL;
}

/* The name the certificate must carry: a host name (the SNI name), or a
 * numeric address (brackets of an IPv6 literal removed) against its IP SANs. */
static void expect_name(SSL *ssl, const char *expect, const char *sni)
{
    if (sni && !strcmp(expect, sni)) {
        SSL_set1_host(ssl, expect);
        return;
    }
    const char *h = strcmp(expect, "localhost") ? expect : "127.0.0.1";
    char b[64];
    size_t n = strlen(h);
    if (n >= 2 && h[0] == '[' && n - 2 < sizeof b) {
        memcpy(b, h + 1, n - 2);
        b[n - 2] = 0;
        h = b;
    }
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h);
}

tm_stream *tm_stream_tls_client(SSL_CTX *ctx, tm_stream *below, const char *sni,
                                const char *expect, const tm_tls_client_hooks *hooks, char *err,
                                size_t errcap)
{
    tls_stream *t = tls_new(ctx, below, false, err, errcap);
    if (!t)
        return NULL;
    tm_tls_client_hooks *h = &C(t)->hooks;
    if (hooks)
        *h = *hooks;
    if (sni)
        SSL_set_tlsext_host_name(t->ssl, sni);
    if (expect)
        expect_name(t->ssl, expect, sni);
    char why[256] = "";
    if (h->setup && h->setup(ctx, t->ssl, h->arg, why, sizeof why) != 0) {
        snprintf(err, errcap, "TLS setup failed: %s", why[0] ? why : "refused by hook");
        SSL_free(t->ssl);
        free(t);
        return NULL;
    }
    return &t->s;
}

static tls_stream *tls_of(tm_stream *s) { return s && s->ops == &tls_ops ? T(s) : NULL; }

SSL *tm_stream_tls_ssl(tm_stream *s)
{
    tls_stream *t = tls_of(s);
    return t ? t->ssl : NULL;
}

char *tm_stream_tls_identity(tm_stream *s)
{
    tls_stream *t = tls_of(s);
    if (t && t->rec)
        return t->identity ? strdup(t->identity) : NULL;
    return t ? identity_of(t->ssl) : NULL;
}

tm_atls_peer *tm_stream_tls_attestation(tm_stream *s)
{
    tls_stream *t = tls_of(s);
    bool ok;
    if (t && t->rec)
        return tm_atls_peer_ref(t->peer);
    return t ? attestation_of(t->ssl, &ok) : NULL;
}

const char *tm_stream_tls_attest_note(tm_stream *s)
{
    static char note[96];
    tls_stream *t = tls_of(s);
    if (!t || !t->sent_evidence)
        return "";
    const char *name = tm_format_name(t->sent_format);
    snprintf(note, sizeof note, "sent %s attestation evidence", name ? name : "unknown");
    return note;
}

const char *tm_stream_tls_record_layer(tm_stream *s)
{
    tls_stream *t = tls_of(s);
    return !t ? NULL : t->rec ? "tmqtt" : "openssl";
}

size_t tm_stream_tls_buffered(tm_stream *s)
{
    tls_stream *t = tls_of(s);
    return t && t->rec ? tm_tlsrec_buffered(t->rec) : 0;
}
