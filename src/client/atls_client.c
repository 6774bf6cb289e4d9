/*
 * atls_client.c — wires attested TLS (src/attest/atls.c) into the client
 * library: builds or adopts the SSL_CTX, registers the extension on it
 * before any connection exists (OpenSSL copies custom extensions into each
 * SSL at SSL_new), and installs the setup/verify hooks. No protocol logic.
 */
#include "client/atls_client.h"

#include <stdio.h>

int tm_atls_client_attach(tm_client_opts *o, tm_atls_client *cc, char *err, size_t errcap)
{
    if (!o || !cc) {
        snprintf(err, errcap, "attestation: bad arguments");
        return -1;
    }
    if (!o->ssl_ctx) {
        tm_tls_opts t = o->tls;
        t.enable = true;
        t.min_version = "tlsv1.3";   /* attestation is TLS 1.3 only */
        o->ssl_ctx = tm_tls_ctx_new(&t, err, errcap);
        if (!o->ssl_ctx)
            return -1;
    }
    if (tm_atls_client_ctx_init(o->ssl_ctx, err, errcap) < 0)
        return -1;
    o->tls.enable = true;
    o->tls.min_version = "tlsv1.3";
    o->tls_setup = tm_atls_client_setup;
    o->tls_verify = tm_atls_client_verify;
    o->tls_arg = cc;
    return 0;
}

const tm_claims *tm_atls_client_claims(const tm_client *c)
{
    SSL *ssl = c ? tm_client_ssl(c) : NULL;
    return ssl ? tm_atls_peer_claims(ssl) : NULL;
}
