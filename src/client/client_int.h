/*
 * client_int.h — internals shared by the files of src/client (not for users).
 *
 * Layout of the library, one room per concern:
 *   client.c      lifecycle, connect, socket/TLS I/O, output batching, timers
 *   handle.c      what happens on each packet received from the server
 *   send.c        operations that produce packets (publish, subscribe, ...)
 *   pidmap.c      small packet-identifier -> state hash used for QoS flows
 *   atls_client.c the attested-TLS hooks for tools (setup/verify)
 *   props.c       user-property helpers
 *   sync.c        the blocking layer
 *
 * Invariants:
 *  - c->fd >= 0 exactly when state is TCP_CONNECTING..DISCONNECTING; c->st
 *    (src/net/stream.h, owning the fd) exists from the end of the TCP connect.
 *  - every outgoing QoS>0 PUBLISH has one entry in c->out_ids; entries in
 *    state OUT_QUEUED have their bytes in the c->qhead list, the others count
 *    in c->ninflight, and ninflight <= window once the CONNACK is in.
 *  - c->in holds unparsed bytes only; slices handed to callbacks point into
 *    it, so nothing reads into c->in while a callback runs (c->dispatching).
 */
#ifndef TM_CLIENT_INT_H
#define TM_CLIENT_INT_H

#include <stdio.h>

#include "client/client.h"
#include "net/stream.h"

/* ---- packet id map ---------------------------------------------------- */

enum {
    TM_ID_FREE = 0,
    TM_OUT_QUEUED,        /* PUBLISH waiting for window space */
    TM_OUT_WAIT_PUBACK,   /* QoS 1 sent */
    TM_OUT_WAIT_PUBREC,   /* QoS 2 sent */
    TM_OUT_WAIT_PUBCOMP,  /* QoS 2, PUBREL sent */
    TM_OUT_WAIT_SUBACK,
    TM_OUT_WAIT_UNSUBACK,
    TM_IN_WAIT_PUBREL     /* incoming QoS 2: PUBREC sent */
};

/* Open addressing, linear probing, key 0 = empty (0 is never a packet id). */
typedef struct tm_pidmap {
    uint16_t *keys;
    uint8_t *vals;
    uint32_t cap, n;
} tm_pidmap;

uint8_t tm_pidmap_get(const tm_pidmap *m, uint16_t pid);
int tm_pidmap_put(tm_pidmap *m, uint16_t pid, uint8_t state);  /* -1 on OOM */
void tm_pidmap_del(tm_pidmap *m, uint16_t pid);
void tm_pidmap_clear(tm_pidmap *m);
void tm_pidmap_free(tm_pidmap *m);

/* ---- the client ------------------------------------------------------- */

typedef struct tm_qpkt {
    struct tm_qpkt *next;
    uint16_t pid;
    uint8_t qos;
    size_t len;
    uint8_t data[];
} tm_qpkt;

struct tm_sync;

struct tm_client {
    tm_loop *loop;
    int fd;
    tm_client_state state;
    uint8_t version;

    char *host;
    uint16_t port;
    char *sni;                 /* NULL: none */
    bool host_is_ip;

    SSL_CTX *ctx;              /* NULL without TLS; one reference held */
    tm_stream *st;             /* the transport stack once TCP is connected */
    bool tls_insecure;
    bool stream_read_wants_write;
    tm_tls_setup_fn tls_setup;
    tm_tls_verify_fn tls_verify;
    void *tls_arg;

    tm_buf connect_pkt;        /* encoded once in tm_client_new */
    uint16_t keep_alive_req;
    uint16_t max_inflight;
    uint32_t connect_timeout_ms;
    uint32_t max_packet_in;    /* what we accept, 0 = unlimited */
    uint16_t receive_max_in;   /* what we advertised */
    uint16_t topic_alias_max_in;
    tm_str *aliases;           /* [topic_alias_max_in + 1], owned copies */

    tm_client_server_info srv;
    uint16_t window;           /* outgoing QoS>0 in-flight limit */

    tm_buf in, out;
    tm_pidmap out_ids, in_ids;
    tm_qpkt *qhead, *qtail;
    uint32_t nqueued, ninflight, nin_qos2;
    uint16_t next_pid;

    uint64_t last_tx, ping_sent, deadline;
    bool ping_out;
    unsigned want_events;      /* interest currently registered */

    tm_client_cbs cbs;
    void *ud;
    FILE *trace;
    char err[320];
    uint8_t disc_reason;
    bool disc_is_error;        /* DISCONNECTING because of an error in c->err */

    uint32_t gen;              /* connection attempt counter */
    int depth;                 /* >0 while inside on_io / callbacks */
    bool dispatching;          /* slices into c->in are live */
    bool free_pending;

    struct tm_sync *sync;      /* sync.c state when created by tm_sync_connect */
    tm_loop *own_loop;         /* freed with the client (sync layer) */
};

/* client.c */
void tm_client_set_error(tm_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Close the connection and report on_disconnect(reason, error). error NULL:
 * normal close. A no-op when already closed. */
void tm_client_close(tm_client *c, uint8_t reason, const char *error);
/* Protocol violation by the server: v5 DISCONNECT with `reason`, then close. */
void tm_client_fail(tm_client *c, uint8_t reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* depth-- and free the client if a callback asked for it. true: freed. */
bool tm_client_leave(tm_client *c);
/* One write of c->out (no reentrancy bookkeeping: for use inside the lib). */
int tm_client_flush_out(tm_client *c);
/* Output was appended: make sure it gets written this loop iteration. */
void tm_client_want_write(tm_client *c);
void tm_client_trace(tm_client *c, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* handle.c: one whole packet (frame + body inside c->in). */
void tm_client_handle(tm_client *c, const tm_frame *f, const uint8_t *body);

/* send.c */
void tm_client_send_queued(tm_client *c);   /* move queue into the window */
void tm_client_send_ack(tm_client *c, uint8_t type, uint16_t pid, uint8_t reason);
void tm_client_free_queue(tm_client *c);

/* sync.c: called by tm_client_free */
void tm_sync_release(tm_client *c);

#endif
