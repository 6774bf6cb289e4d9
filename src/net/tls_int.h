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

#endif
