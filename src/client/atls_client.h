/*
 * atls_client.h — attested TLS for users of the client library (tools,
 * tests, tmqtt-bench): one call that turns tm_client_opts into options that
 * request, require and appraise the server's evidence (attested-tls.md).
 *
 * The protocol itself lives in src/attest/atls.h; this file only wires it to
 * the client library's tls_setup / tls_verify hooks and SSL_CTX handling.
 */
#ifndef TM_CLIENT_ATLS_CLIENT_H
#define TM_CLIENT_ATLS_CLIENT_H
#include <stddef.h>

#include "attest/atls.h"
#include "client/client.h"

/*
 * Makes `o` attested: when o->ssl_ctx is NULL, builds it from o->tls (with
 * TLS 1.3 as minimum) and stores it in o->ssl_ctx — the caller then owns that
 * reference (SSL_CTX_free after the last client using it is freed); when the
 * caller passed a shared SSL_CTX it must not have created SSL objects on it
 * yet. Registers the extension on the context and installs
 * tm_atls_client_setup / tm_atls_client_verify with tls_arg = cc (cc must
 * outlive every client using these options). 0 ok, -1 with a reason.
 */
int tm_atls_client_attach(tm_client_opts *o, tm_atls_client *cc, char *err, size_t errcap);

/* Claims of the server after the handshake of client `c`, or NULL. */
const tm_claims *tm_atls_client_claims(const tm_client *c);

#endif
