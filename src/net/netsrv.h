/*
 * netsrv.h — the server side of the connection layer: listeners, accepted
 * connections and their transport stacks, knowing nothing of MQTT.
 *
 * What it does for the layer above (the broker's I/O glue):
 *   - accepts on each listener (per-listener connection limit), builds the
 *     transport stack (TCP, TLS, WebSockets over either), runs the handshake under a deadline;
 *   - once the transport is ready calls open(); then hands every byte read to
 *     input(), reading from one shared buffer (an idle connection holds no
 *     input memory);
 *   - sends what the upper layer gives it with one write, keeping only what
 *     the socket did not take, and writes that as the socket allows;
 *   - closes gracefully on request: the rest of the output, then TLS
 *     close_notify and a TCP half-close, then reads and discards until the
 *     peer closes or a short deadline passes — so a client still sending
 *     reads the DISCONNECT it was sent instead of a reset;
 *   - reports connections that ended by themselves (peer closed, error) with
 *     closed(), but only from tm_netsrv_reap(), never from inside another
 *     call, so the layer above never sees a connection vanish mid-dispatch.
 *
 * Handshakes share a time budget per loop iteration and wait in a FIFO past
 * it (netsrv.c explains why): call tm_netsrv_run_queued at the start of every
 * iteration and never wait longer in the loop than it says.
 *
 * A connection is the upper layer's from open() until it calls
 * tm_nconn_close() or receives closed(); after either, it must not touch it.
 * Outgoing connections (tm_netsrv_connect) follow the same path once their
 * TCP connect completes. Single-threaded, driven by the loop (loop.h).
 */
#ifndef TM_NET_NETSRV_H
#define TM_NET_NETSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "net/tls.h"
#include "net/ws.h"

typedef struct tm_netsrv tm_netsrv;
typedef struct tm_nconn tm_nconn;

enum { TM_NET_INFO, TM_NET_NOTICE, TM_NET_WARN };

typedef struct tm_netsrv_handler {
    void *ud;
    /* The transport is ready. Returns the upper layer's connection, or NULL
     * to refuse it (closed at once). */
    void *(*open)(void *ud, tm_nconn *c);
    /* Bytes arrived. The upper layer may call tm_nconn_close from here. */
    void (*input)(void *ud, void *up, const uint8_t *p, size_t n);
    /* The connection ended without the upper layer asking (why says how). */
    void (*closed)(void *ud, void *up, const char *why);
    /* Something an operator may want in the log (refused connections, failed
     * handshakes, evidence sent), with the peer's address. May be NULL. */
    void (*log)(void *ud, int level, const char *peer, const char *msg);
    /* An outgoing connection (tm_netsrv_connect) ended before open(): the
     * connect, the TLS handshake or its deadline failed. May be NULL. */
    void (*failed)(void *ud, void *cookie, const char *why);
} tm_netsrv_handler;

typedef struct tm_nlistener_opts {
    const char *host;                /* NULL / "": every address */
    uint16_t port;
    int max_connections;             /* -1: no limit */
    const tm_tls_server_opts *tls;   /* NULL: plain TCP */
    const tm_ws_opts *ws;            /* NULL: MQTT directly on the transport; else
                                      * WebSockets over it (copied; the strings
                                      * it points to must outlive the server) */
    void *cookie;                    /* the upper layer's, see tm_nconn_cookie */
} tm_nlistener_opts;

typedef struct tm_netsrv_stats {
    uint64_t bytes_received, bytes_sent, accepted;
} tm_netsrv_stats;

tm_netsrv *tm_netsrv_new(tm_loop *loop, const tm_netsrv_handler *h, uint32_t handshake_ms);
/* Closes every connection (no callbacks) and listener. */
void tm_netsrv_free(tm_netsrv *s);
/* Opens a listener. Returns its index (0, 1, ...) or -1 with a reason. */
int tm_netsrv_listen(tm_netsrv *s, const tm_nlistener_opts *o, char *err, size_t errcap);
/* The port a listener is bound to (its configured port, or the one the
 * kernel chose for port 0). */
uint16_t tm_netsrv_port(const tm_netsrv *s, int listener);
const char *tm_netsrv_kind(const tm_netsrv *s, int listener);   /* "mqtt", "tls", "ws", "wss" */
/* Rebuilds a listener's TLS context (SIGHUP). On error the old one stays. */
int tm_netsrv_reload_tls(tm_netsrv *s, int listener, const tm_tls_server_opts *o, char *err,
                         size_t errcap);
/* End of a loop iteration: report connections that ended (closed()), free
 * what is finished. */
void tm_netsrv_reap(tm_netsrv *s);
/* Timers: handshake deadlines, graceful-close drains, and the TLS listeners'
 * attestation timers (key rotation, logged through log()). Call at least
 * every few hundred milliseconds. */
void tm_netsrv_tick(tm_netsrv *s, int64_t now_ms);
/* Start of a loop iteration: steps queued handshakes, oldest first, within
 * this iteration's handshake budget. Returns the longest the loop may then
 * wait for events: -1 (no limit: none queued), 0 (more are queued), 1 (only
 * handshakes paused by the TLS layer remain: poll them again soon). */
int tm_netsrv_run_queued(tm_netsrv *s);
const tm_netsrv_stats *tm_netsrv_stats_get(const tm_netsrv *s);
/* Re-reads client attestation policies whose files or collateral changed
 * (logged through the handler); cheap when nothing changed. */
void tm_netsrv_refresh_attestation(tm_netsrv *s);

/* An outgoing connection (a bridge to another broker). */
typedef struct tm_nconnect_opts {
    const char *host;                /* a name or a numeric address */
    uint16_t port;
    SSL_CTX *tls;                    /* NULL: plain TCP; else a TLS client context
                                      * (the connection keeps a reference) */
    const char *sni;                 /* server name to send, NULL: none */
    const char *expect;              /* what the certificate must name, NULL: no
                                      * name check (see tm_stream_tls_client) */
    const tm_tls_client_hooks *hooks;   /* attested TLS; may be NULL */
    void *cookie;                    /* tm_nconn_cookie, and failed()'s argument */
} tm_nconnect_opts;

/* Starts connecting: the name is resolved (blocking: a numeric address avoids
 * it), the TCP connect runs without blocking, then the TLS handshake, all
 * under the handshake deadline; then open() as for an accepted connection,
 * or failed() (from tm_netsrv_reap) with the reason. 0, or -1 with a reason
 * when it could not even start (nothing is reported then). */
int tm_netsrv_connect(tm_netsrv *s, const tm_nconnect_opts *o, char *err, size_t errcap);

/* ---- one connection ----------------------------------------------------------- */

/* Sends what the socket takes now and keeps the rest. 0, or -1 when the
 * connection is failing (the upper layer hears of it through closed()). */
int tm_nconn_send(tm_nconn *c, const void *p, size_t n);
/* Bytes accepted by tm_nconn_send and not yet written. */
size_t tm_nconn_backlog(const tm_nconn *c);
/* The upper layer is done with c: the rest of the output is sent, then the
 * connection is closed gracefully (see above). No callback follows. */
void tm_nconn_close(tm_nconn *c);
const char *tm_nconn_peer(const tm_nconn *c);   /* "addr:port" */
void *tm_nconn_cookie(const tm_nconn *c);       /* its listener's cookie */
bool tm_nconn_is_tls(const tm_nconn *c);
/* The identity for use_identity_as_username (malloc'd) or NULL. */
char *tm_nconn_identity(const tm_nconn *c);
/* The client's appraised attestation (a new reference) or NULL. */
struct tm_atls_peer *tm_nconn_attestation(const tm_nconn *c);

int64_t tm_net_now_ms(void);   /* CLOCK_MONOTONIC in milliseconds */

#endif
