/*
 * atls.h — the attested TLS 1.3 extension (attested-tls.md, type 0xFFA0) on
 * top of stock OpenSSL 3: wire codecs, the one SSL_CTX_add_custom_ext
 * registration shared by both roles, and the per-connection state.
 *
 * Who calls what:
 *   - the broker's TLS transport (src/net/tls_server.c) builds a
 *     tm_atls_server from the listener configuration and calls
 *     tm_atls_server_ctx_init() on each SSL_CTX it makes;
 *   - clients (tools, tests, tmqtt-bench) build a tm_atls_client, register the
 *     extension once per SSL_CTX with tm_atls_client_ctx_init() BEFORE any
 *     SSL_new() on it (OpenSSL copies custom extensions into each SSL when it
 *     is created), and install tm_atls_client_setup / tm_atls_client_verify as
 *     the client library's tls_setup / tls_verify hooks (client.h).
 *
 * Protocol v2: evidence covers a key-schedule binder derived from this
 * handshake's server_handshake_traffic_secret, which both roles obtain from
 * OpenSSL's keylog callback. Registration therefore also installs a keylog
 * callback on the SSL_CTX; it calls whatever callback was installed before
 * (SSLKEYLOGFILE writers keep working). Code that installs its own keylog
 * callback AFTER registration must chain to SSL_CTX_get_keylog_callback(),
 * otherwise attested handshakes fail closed ("no key-schedule binder").
 *
 * Key-attested evidence (+key formats, keyatt.h): a side whose allowed
 * formats include one holds a keyring (keyring.h) with an attestation key
 * quoted once; each handshake then costs one signature. The broker rotates
 * the key in a worker thread (tm_atls_server_tick adopts it); while that
 * worker holds the provider, handshakes whose answer would be a direct quote
 * are paused in OpenSSL's client-hello callback (SSL_CLIENT_HELLO_RETRY, seen
 * by the transport as SSL_ERROR_WANT_CLIENT_HELLO_CB) and resume when the
 * transport calls SSL_do_handshake again: the event loop never waits for a
 * quote it did not ask for. Registration therefore also installs a
 * client-hello callback on server contexts with a keyring.
 *
 * Invariants: per-connection state lives in SSL ex_data and is freed with the
 * SSL; configuration objects are reference counted and each SSL_CTX they are
 * registered on holds a reference, so a connection created before a SIGHUP
 * reload keeps valid configuration until it ends. Claims are only exposed
 * after a successful appraisal. Nothing here aborts on peer input: every
 * malformed or unexpected byte becomes a TLS alert and a reason string.
 * Handshakes that carry evidence never resume and never yield tickets.
 */
#ifndef TM_ATTEST_ATLS_H
#define TM_ATTEST_ATLS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <openssl/ssl.h>

#include "attest/claims.h"
#include "attest/policy.h"
#include "attest/provider.h"

#define TM_ATLS_EXT_TYPE 0xFFA0
#define TM_ATLS_VERSION 2                /* protocol v2: key-schedule binder */
#define TM_ATLS_MAX_FORMATS 127          /* 254 bytes of uint16 */
#define TM_ATLS_MAX_EVIDENCE (65535 - 5) /* version + format + length prefix */

/* ---- wire codecs (pure; fuzzed by tests/fuzz/fuzz_atls.c) --------------- */

typedef struct tm_atls_request {
    uint8_t version;
    uint8_t nonce[32];
    uint16_t formats[TM_ATLS_MAX_FORMATS];
    size_t n_formats;
} tm_atls_request;

typedef struct tm_atls_answer {
    uint8_t version;
    uint16_t format;
    const uint8_t *evidence;             /* points into the decoded buffer */
    size_t evidence_len;
} tm_atls_answer;

enum { TM_ATLS_DEC_OK = 0, TM_ATLS_DEC_MALFORMED = -1, TM_ATLS_DEC_VERSION = -2 };

/* Encoders return the number of bytes written, or 0 when the input is out of
 * range (no formats, too many, empty or oversized evidence) or cap is short. */
size_t tm_atls_request_encode(const tm_atls_request *r, uint8_t *out, size_t cap);
size_t tm_atls_answer_encode(uint16_t format, const uint8_t *evidence, size_t len,
                             uint8_t *out, size_t cap);
/* Decoders: TM_ATLS_DEC_OK, _MALFORMED (lengths, trailing bytes, odd format
 * list) or _VERSION (well-formed but version != TM_ATLS_VERSION, e.g. v1). */
int tm_atls_request_decode(const uint8_t *in, size_t len, tm_atls_request *r);
int tm_atls_answer_decode(const uint8_t *in, size_t len, tm_atls_answer *a);

/* SHA-256 of the DER SubjectPublicKeyInfo of `x`. 0 ok, -1 failure. */
int tm_atls_spki_hash(X509 *x, uint8_t out[32]);
/* The encoded (EC)DHE public key (EVP_PKEY_get1_encoded_public_key), malloc'd. */
int tm_atls_encoded_key(EVP_PKEY *k, uint8_t **out, size_t *len);

/* RFC 8446 section 7.1 HKDF-Expand-Label(secret, label, "", out_len) with `md`
 * (EVP_PKEY_HKDF, expand only; the "tls13 " prefix is added here). 0 / -1. */
int tm_atls_expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
                         const char *label, uint8_t *out, size_t out_len);
/* The v2 binder: HKDF-Expand-Label(server_handshake_traffic_secret,
 * "tmqtt atls binder", "", Hash.length). *out_len = Hash.length. 0 / -1. */
#define TM_ATLS_BINDER_LABEL "tmqtt atls binder"
int tm_atls_binder(const EVP_MD *md, const uint8_t *shts, size_t shts_len, uint8_t *out,
                   size_t *out_len);

/* ---- server role (the broker) ------------------------------------------- */

typedef struct tm_atls_server tm_atls_server;

typedef struct tm_atls_server_opts {
    const char *provider;        /* "sim", "gramine", "tsm", "none"; NULL = none */
    const char *provider_opts;   /* "key=value,key=value" for tm_provider_open */
    const char *formats;         /* comma-separated names restricting what is sent;
                                    NULL: the provider's direct formats. +key formats
                                    (sim+key, ...) only when listed here */
    uint32_t key_lifetime;       /* +key: seconds per attestation key (0: 3600) */
    bool key_worker;             /* +key: rotate in a worker thread (the broker) */
    bool require_client;         /* mutual: ask for and require client evidence */
    const char *client_policy;   /* policy file for client evidence (NULL = default) */
} tm_atls_server_opts;

/* NULL with a reason when the provider cannot be opened, a format name or the
 * policy is bad. The result holds one reference. */
tm_atls_server *tm_atls_server_new(const tm_atls_server_opts *o, char *err, size_t errcap);
void tm_atls_server_free(tm_atls_server *s);   /* drops one reference */
tm_atls_server *tm_atls_server_ref(tm_atls_server *s);   /* one more reference */
const tm_policy *tm_atls_server_client_policy(const tm_atls_server *s);
/* Re-reads the client policy when its file or its collateral changed (newer
 * collateral fetched into a collateral_dir): 1 replaced, 0 unchanged, -1 with
 * a reason (the old policy stays). Handshakes in progress keep working. */
int tm_atls_server_refresh(tm_atls_server *s, char *err, size_t errcap);
bool tm_atls_server_requires_client(const tm_atls_server *s);
/* +key: key rotation (keyring.h); call at least every few seconds from the
 * event loop. Returns what tm_keyring_tick returns (0 nothing, 1 new key, 2
 * rotation started, -1 rotation failed) with a line for the log in note. */
int tm_atls_server_tick(tm_atls_server *s, time_t now, char *note, size_t notecap);
/* The configuration registered on the SSL_CTX this server SSL was made from. */
const tm_atls_server *tm_atls_server_of(const SSL *ssl);
/* Registers the extension on a server SSL_CTX (the ctx takes a reference). */
int tm_atls_server_ctx_init(SSL_CTX *ctx, tm_atls_server *s, char *err, size_t errcap);

/* What the broker keeps about an attested client (c->claims), heap-allocated
 * by tm_atls_peer_attestation() and freed by the transport with free(). The
 * policy belongs to the listener and outlives the connection. */
struct tm_peer_attestation {
    tm_claims claims;
    const tm_policy *policy;
};
/* Server side, after the handshake: 1 client evidence appraised OK (claims
 * copied to *out if non-NULL), 0 none was received, -1 it was refused. */
int tm_atls_server_client_result(const SSL *ssl, tm_claims *out);
/* Server side: 1 when evidence was sent to this client (format in *format). */
int tm_atls_server_sent(const SSL *ssl, uint16_t *format);

/* ---- client role --------------------------------------------------------- */

typedef struct tm_atls_client tm_atls_client;

typedef struct tm_atls_client_opts {
    bool require;                /* abort when the server sends no evidence */
    const char *policy_file;     /* NULL: default policy (refuses sim) */
    const char *formats;         /* comma-separated, most preferred first; NULL:
                                    every format the policy accepts */
    FILE *show;                  /* print the claims here after appraisal */
    bool show_json;
    /* Mutual attestation: our own evidence when the server asks for it. */
    const char *provider;        /* NULL/"none": never answer */
    const char *provider_opts;
    const char *own_formats;     /* what we may answer with (NULL: the provider's
                                    direct formats; list sim+key etc. for +key) */
    uint32_t key_lifetime;       /* +key: seconds per attestation key (0: 3600) */
} tm_atls_client_opts;

tm_atls_client *tm_atls_client_new(const tm_atls_client_opts *o, char *err, size_t errcap);
void tm_atls_client_free(tm_atls_client *c);   /* drops one reference */
/* The policy in use (the client owns it); callers may tm_policy_set on it
 * before the first handshake. */
tm_policy *tm_atls_client_policy(tm_atls_client *c);
/* Registers the extension on a client SSL_CTX. Idempotent; must run before
 * the SSL objects that should carry the request are created. */
int tm_atls_client_ctx_init(SSL_CTX *ctx, char *err, size_t errcap);
/* tls_setup hook (client.h): `arg` is the tm_atls_client. Draws a fresh
 * nonce and arms the request for this SSL; sets TLS 1.3 minimum,
 * SSL_OP_NO_TICKET, clears SSL_OP_ALLOW_NO_DHE_KEX, and refuses an SSL on
 * which a session to resume was set (an attested client offers no PSK). */
int tm_atls_client_setup(SSL_CTX *ctx, SSL *ssl, void *arg, char *err, size_t errcap);
/* tls_verify hook: appraises the server's evidence now that its certificate
 * is known (the EncryptedExtensions callback runs before the Certificate
 * message). 0 accepted (or not required and absent), -1 with the reason. */
int tm_atls_client_verify(SSL *ssl, void *arg, char *err, size_t errcap);

/* Claims of the peer after a successful appraisal (either role), else NULL.
 * Valid as long as the SSL. */
const tm_claims *tm_atls_peer_claims(const SSL *ssl);
/* Why the extension made the handshake fail, if it did ("" otherwise). */
const char *tm_atls_reason(const SSL *ssl);

/* ---- test hook (unit tests only) ----------------------------------------- */

/* Called with every extension body this process is about to send, with room
 * up to `cap`; may rewrite it in place and change *len (0 = send nothing).
 * `context` is the SSL_EXT_* context. NULL to remove. Not thread-safe. */
typedef void (*tm_atls_test_hook_fn)(SSL *ssl, unsigned context, uint8_t *buf, size_t *len,
                                     size_t cap, void *arg);
void tm_atls_set_test_hook(tm_atls_test_hook_fn fn, void *arg);
/* How many bytes of key-schedule binder this SSL still holds: the hash length
 * between the keylog line and the last use, 0 once wiped. For tests. */
size_t tm_atls_binder_held(const SSL *ssl);

#endif
