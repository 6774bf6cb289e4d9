/*
 * tls.h — TLS for both roles, on OpenSSL 3: building contexts once per
 * listener (server) or per set of client options, and the TLS layer of the
 * transport stack (stream.h) over a socket.
 *
 * One set-up for both roles: protocol versions, cipher lists, certificates
 * and keys, trust anchors, pre-shared keys (TLS 1.3 external PSK and TLS 1.2
 * PSK suites) and NSS key logging are configured by the same code whichever
 * side uses them. The attested TLS extension (src/attest/atls.h) is
 * registered here for listeners that have an attestation provider or
 * require client attestation; clients add it through tm_tls_client_hooks.
 *
 * Lifetimes: a tm_tls_server is one listener generation. A reload builds a
 * complete new one and swaps it in only when everything loaded, so a bad
 * file leaves the listener as it was; connections keep a reference to the
 * SSL_CTX they were made from, so nothing is freed under them.
 */
#ifndef TM_NET_TLS_H
#define TM_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "net/stream.h"

struct tm_atls_peer;

/* ---- server role ------------------------------------------------------------ */

typedef struct tm_tls_server_opts {
    const char *certfile, *keyfile;
    const char *cafile, *capath;     /* to verify client certificates */
    bool require_certificate;
    bool want_identity;              /* use_identity_as_username: ask for a certificate */
    const char *psk_file;            /* "identity:hexkey" lines */
    const char *psk_hint;
    const char *min_version;         /* "tlsv1.2" (default) | "tlsv1.3" */
    const char *ciphers, *ciphersuites;
    const char *crlfile;             /* client certificates are checked against this CRL */
    const char *dhparamfile;         /* DH parameters: enables DHE suites (TLS 1.2) */
    bool identity_subject;           /* identity = the certificate's whole subject (RFC 2253) */
    /* attested TLS */
    const char *attest_provider;     /* NULL / "none": never answer */
    const char *attest_provider_opts;
    const char *attest_formats;
    uint32_t attest_key_lifetime;    /* +key formats: seconds per attestation key (0: 3600) */
    bool require_client_attestation;
    const char *client_attestation_policy;
    /* tls_record_layer openssl: connections stay on OpenSSL's record layer.
     * By default a TLS 1.3 connection with an AES-GCM or ChaCha20-Poly1305
     * suite moves to ours once its handshake is complete and its SSL is
     * freed (docs/tls-record-layer.md); such contexts issue no session
     * tickets. */
    bool openssl_records;
} tm_tls_server_opts;

typedef struct tm_tls_server tm_tls_server;

tm_tls_server *tm_tls_server_new(const tm_tls_server_opts *o, char *err, size_t errcap);
void tm_tls_server_free(tm_tls_server *s);
bool tm_tls_server_attesting(const tm_tls_server *s);   /* sends or requires evidence */
/* Picks up a changed client attestation policy or newer collateral:
 * 1 replaced, 0 unchanged, -1 with a reason (the old one stays). */
int tm_tls_server_refresh(tm_tls_server *s, char *err, size_t errcap);
/* The client policy's widening settings, one "warning: ..." line each; the
 * number of lines. */
int tm_tls_server_warnings(const tm_tls_server *s, char *buf, size_t cap);
/* Timers of the attestation layer (rotation of the +key attestation key).
 * Call every few seconds at most. 0 nothing to say, otherwise a line for the
 * log in note (-1: something failed). */
int tm_tls_server_tick(tm_tls_server *s, char *note, size_t notecap);

/* The TLS layer for an accepted connection, on top of `below` (TCP). NULL
 * with a reason; `below` is then untouched. */
tm_stream *tm_stream_tls_server(tm_tls_server *srv, tm_stream *below, char *err, size_t errcap);

/* After the server handshake: the peer's identity for use_identity_as_username
 * (the PSK identity, else the verified certificate's common name, or its
 * whole subject "CN=..,O=.." with identity_subject; malloc'd, NULL when none), and its appraised attestation (a new reference, NULL when
 * the client did not attest). */
char *tm_stream_tls_identity(tm_stream *tls);
struct tm_atls_peer *tm_stream_tls_attestation(tm_stream *tls);
/* One line saying what attestation happened in the handshake, for logs ("" none;
 * valid until the next call). */
const char *tm_stream_tls_attest_note(tm_stream *tls);
/* Who protects the records now: "openssl", "tmqtt" (the server's own record
 * layer took over after the handshake), NULL for a layer that is not TLS. */
const char *tm_stream_tls_record_layer(tm_stream *tls);
/* Bytes our record layer holds in buffers now (a partial record, decrypted
 * bytes not yet read, ciphertext not yet sent): 0 while idle. 0 on OpenSSL. */
size_t tm_stream_tls_buffered(tm_stream *tls);

/* ---- client role ------------------------------------------------------------- */

typedef struct tm_tls_opts {
    bool enable;                     /* implied by cafile/capath/psk/certfile/insecure */
    const char *cafile, *capath;     /* trust anchors; none = system default */
    const char *certfile, *keyfile;  /* client certificate */
    const char *psk_hex;             /* PSK (TLS 1.3 external PSK / TLS 1.2 PSK suites) */
    const char *psk_identity;
    const char *min_version;         /* "tlsv1.2" (default) or "tlsv1.3"; NULL = tlsv1.2 */
    const char *max_version;         /* NULL = none */
    const char *ciphers;             /* TLS <= 1.2 cipher list (OpenSSL syntax) */
    const char *ciphersuites;        /* TLS 1.3 suites, e.g. "TLS_AES_128_GCM_SHA256" */
    const char *keylog_file;         /* NSS key log; NULL: $SSLKEYLOGFILE if set */
    /* insecure: do not check the server's host name; when neither cafile nor
     * capath is given, do not verify the certificate chain at all either. */
    bool insecure;
} tm_tls_opts;

/* Builds a client context; NULL with a reason. Shared by any number of
 * connections (reference-counted by OpenSSL). */
SSL_CTX *tm_tls_ctx_new(const tm_tls_opts *o, char *err, size_t errcap);
bool tm_tls_ctx_insecure(const SSL_CTX *ctx);

/* Called once per connection before the handshake starts (the place to add
 * TLS extensions), and after it completed (the place to appraise the peer).
 * Both return 0, or -1 with a reason. */
typedef int (*tm_tls_setup_fn)(SSL_CTX *ctx, SSL *ssl, void *arg, char *err, size_t errcap);
typedef int (*tm_tls_verify_fn)(SSL *ssl, void *arg, char *err, size_t errcap);
typedef struct tm_tls_client_hooks {
    tm_tls_setup_fn setup;
    tm_tls_verify_fn verify;
    void *arg;
} tm_tls_client_hooks;

/* The client TLS layer on top of `below`. `sni` (may be NULL) is sent as the
 * server name; `expect` is what the certificate must name: a host name
 * (checked as one when it equals `sni`) or a numeric address (checked
 * against the IP SANs); NULL checks no name. Hooks may be NULL. NULL with a
 * reason. */
tm_stream *tm_stream_tls_client(SSL_CTX *ctx, tm_stream *below, const char *sni,
                                const char *expect, const tm_tls_client_hooks *hooks, char *err,
                                size_t errcap);

/* The SSL object of a TLS layer (NULL for other layers, and for a server
 * connection after our record layer took over: it is freed then). */
SSL *tm_stream_tls_ssl(tm_stream *tls);

/* The stream's handshake wants neither readiness but a later retry: OpenSSL
 * paused it in the client-hello callback (the attestation layer waits for
 * its provider, atls.h). Set in *want next to 0 by the server TLS layer. */
#define TM_TLS_WANT_RETRY 0x100u

/* ---- shared helpers ---------------------------------------------------------------- */

/* "tlsv1.2" / "tlsv1.3" (also "1.2", "1.3"); NULL or "" = default_version. 0 or -1. */
int tm_tls_parse_version(const char *s, int default_version, int *out);
/* The first queued OpenSSL error as text (queue cleared). */
void tm_tls_errstr(char *buf, size_t cap);

#endif
