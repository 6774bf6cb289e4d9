/*
 * tls_int.h — what tls.c (contexts) and stream_tls.c (the TLS layer) share.
 */
#ifndef TM_NET_TLS_INT_H
#define TM_NET_TLS_INT_H

#include <openssl/ssl.h>

#include "attest/atls.h"

struct tm_tls_server {
    SSL_CTX *ctx;
    tm_atls_server *atls;        /* NULL without attestation */
};

/* SSL ex_data index of the PSK identity a server handshake matched. */
extern int tm_tls_pskid_idx;

/* use_subject_as_username: the identity is the certificate's whole subject. */
bool tm_tls_ctx_subject_identity(const SSL_CTX *ctx);
/* use_identity_as_username or use_subject_as_username: the identity is used. */
bool tm_tls_ctx_wants_identity(const SSL_CTX *ctx);
/* Server connections of this context move to our record layer after a TLS
 * 1.3 handshake (tm_tls_server_opts.openssl_records not set). */
bool tm_tls_ctx_own_records(const SSL_CTX *ctx);
/* The application traffic secrets of generation 0 the key log gave for this
 * server handshake: copied out (client's, server's, *len bytes each, at most
 * TM_TLSREC_MAX_SECRET), 0; -1 when not both were captured. Either way
 * they are cleansed from the SSL. */
int tm_tls_take_secrets(SSL *ssl, uint8_t *client, uint8_t *server, size_t *len);
/* SSL objects freed so far in this process (for tests: the takeover frees one). */
unsigned long tm_tls_ssl_freed(void);

#endif
