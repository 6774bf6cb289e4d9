/*
 * transport.h — how a listener's connections move bytes: plain TCP or TLS.
 *
 * server.c calls these through the listener's transport; the TLS transport
 * (src/net/tls_server.c) implements them over OpenSSL with non-blocking
 * sockets. Return conventions, shared by both:
 *   handshake: 1 done, 0 in progress (*want = TM_EV_READ/TM_EV_WRITE), -1 failed
 *   read/write: >0 bytes, 0 peer closed (read), -1 error, -2 would block
 *               (*want tells which readiness to wait for)
 */
#ifndef TM_TRANSPORT_H
#define TM_TRANSPORT_H

#include <stddef.h>

#include "broker/config.h"

typedef struct tm_conn tm_conn;

typedef struct tm_transport {
    const char *name;
    /* Per-listener state from its configuration (NULL = none needed). */
    int (*listener_new)(const tm_listener_cfg *cfg, void **state, char *err, size_t errcap);
    void (*listener_free)(void *state);
    /* Per-connection setup after accept(); sets c->tls. */
    int (*conn_new)(void *lstate, tm_conn *c, int fd, char *err, size_t errcap);
    int (*handshake)(tm_conn *c, unsigned *want, char *err, size_t errcap);
    long (*read)(tm_conn *c, void *buf, size_t n, unsigned *want);
    long (*write)(tm_conn *c, const void *buf, size_t n, unsigned *want);
    void (*conn_free)(tm_conn *c);
    /* Identity for use_identity_as_username (malloc'd), or NULL. */
    char *(*identity)(tm_conn *c);
    /* Did the peer pass the attestation the listener requires? */
    int (*attested)(tm_conn *c);
    /* Reload certificates/PSKs (SIGHUP). */
    int (*listener_reload)(void *state, const tm_listener_cfg *cfg, char *err, size_t errcap);
} tm_transport;

/* Provided by src/net/tls_server.c. */
extern const tm_transport tm_tls_transport;

#endif
