/*
 * broker.h — the broker engine, sans I/O: bytes and time in, bytes out.
 *
 * The engine is the whole of MQTT: sessions, subscriptions, retained
 * messages, wills, QoS flows, authentication and ACLs, $SYS. It never touches
 * a socket, a clock or a signal. Whoever drives it (service.c over the
 * network, the unit tests and the fuzz target directly) tells it:
 *   - that a transport connection is ready for MQTT      tm_broker_open
 *   - what bytes arrived on it                           tm_broker_input
 *   - that it ended by itself (peer closed, error)       tm_broker_closed
 *   - what time it is, when a timer is due               tm_broker_tick
 * and collects what the engine wants sent, one connection at a time
 * (tm_broker_next_output), closing the transport when the engine asks
 * (tm_conn_closing) and then telling it so (tm_broker_release).
 *
 * Every call takes the current monotonic time in milliseconds; the engine has
 * no clock of its own, so a test or a fuzzer controls time completely.
 *
 * Lifetimes: a tm_conn is valid from tm_broker_open until the driver calls
 * tm_broker_closed or tm_broker_release for it; the engine frees it at the
 * next tm_broker_bury, never in the middle of a call.
 */
#ifndef TM_BROKER_H
#define TM_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

typedef struct tm_broker tm_broker;
typedef struct tm_conn tm_conn;
struct tm_atls_peer;

/* What the transport knows about a new connection. */
typedef struct tm_conn_info {
    const tm_listener_cfg *listener;    /* outlives the connection */
    bool tls;
    char *identity;                     /* use_identity_as_username; ownership passes */
    struct tm_atls_peer *attestation;   /* appraised client claims; reference passes */
    void *io;                           /* the driver's handle, see tm_conn_io; its
                                         * peer's name: tm_broker_set_peer_name */
} tm_conn_info;

typedef struct tm_broker_io_stats {
    uint64_t bytes_received, bytes_sent;
} tm_broker_io_stats;

/* A broker for `cfg` (which must outlive it), or NULL with a reason (password
 * or ACL file unreadable, out of memory). */
tm_broker *tm_broker_new(const tm_config *cfg, int64_t now, char *err, size_t errcap);
/* Ends every connection (no wills: the broker, not the clients, stops them)
 * and frees everything. */
void tm_broker_free(tm_broker *b);

/* What the engine asks the driver about a connection, from tm_conn_info.io,
 * instead of keeping copies (a broker for devices holds one connection record
 * per idle device). Either may be NULL, as may io. */
typedef struct tm_conn_driver {
    /* the peer's name for log lines ("addr:port"), living as long as the
     * connection; without it "-" */
    const char *(*peer)(const void *io);
    /* bytes the transport accepted and has not written yet (for
     * max_queued_bytes); without it 0 */
    size_t (*backlog)(const void *io);
} tm_conn_driver;
void tm_broker_set_driver(tm_broker *b, const tm_conn_driver *d);   /* copied */
tm_conn *tm_broker_open(tm_broker *b, const tm_conn_info *info, int64_t now);
void tm_broker_input(tm_broker *b, tm_conn *c, const uint8_t *p, size_t n, int64_t now);
/* The transport ended without the engine asking (why: for the log). */
void tm_broker_closed(tm_broker *b, tm_conn *c, const char *why, int64_t now);
/* Timers: keep alive, CONNECT deadline, delayed wills, session expiry, $SYS,
 * idle buffers. Returns when it wants to be called next. */
int64_t tm_broker_tick(tm_broker *b, int64_t now);

/* Output: the next connection with bytes to send or a close to perform, or
 * NULL. Take its bytes with tm_conn_output, then tm_conn_output_done. */
tm_conn *tm_broker_next_output(tm_broker *b);
/* With persistence the output of an iteration is in two parts. The early part
 * (QoS 0/1 deliveries to subscribers, which acknowledge nothing and may be
 * repeated) may be sent before the journal commit; the rest (every
 * acknowledgement, QoS 2 deliveries, CONNACK, SUBACK, ...) only after it. The
 * early part always precedes the rest on the wire. Without persistence
 * everything is in tm_conn_output. */
const uint8_t *tm_conn_output_early(tm_conn *c, size_t *len);
const uint8_t *tm_conn_output(tm_conn *c, size_t *len);
void tm_conn_output_early_done(tm_conn *c);
void tm_conn_output_done(tm_conn *c);
/* After the output: the engine is done with this connection; close the
 * transport (gracefully) and call tm_broker_release. */
bool tm_conn_closing(const tm_conn *c);
void *tm_conn_io(const tm_conn *c);     /* tm_conn_info.io */
void tm_broker_release(tm_broker *b, tm_conn *c);
/* Frees connections released or closed since the last call. */
void tm_broker_bury(tm_broker *b);

/* ---- bridges (bridge.c, docs/bridges.md) ------------------------------------- */

/* After restoring, before connections: the local session of every configured
 * bridge, subscribed to the local topics it forwards (so that what is
 * published while the bridge is down waits for it). 0, or -1 with a reason. */
int tm_broker_bridges_start(tm_broker *b, int64_t now, char *err, size_t errcap);
/* The engine side of bridge i's new outgoing connection, once its transport
 * is up: CONNECT is queued at once. info->listener is ignored. NULL when out
 * of memory or the bridge already has a connection. */
tm_conn *tm_broker_open_bridge(tm_broker *b, uint32_t i, const tm_conn_info *info, int64_t now);
typedef enum { TM_BRIDGE_DOWN, TM_BRIDGE_CONNECTING, TM_BRIDGE_UP } tm_bridge_state;
tm_bridge_state tm_broker_bridge_state(const tm_broker *b, uint32_t i);
/* How many connections of bridge i reached CONNACK (however briefly). */
uint32_t tm_broker_bridge_connects(const tm_broker *b, uint32_t i);

/* SIGHUP: re-read the password file and the ACL (queued messages the new ACL
 * denies are dropped). On error the old ones stay, and -1 with a reason. */
int tm_broker_reload_auth(tm_broker *b, char *err, size_t errcap);
/* ---- persistence (journal.c, docs/persistence.md) ---------------------------- */

/* Turns the journal on: from now on every change to durable state is a record. */
void tm_broker_journal_enable(tm_broker *b, bool enable);
/* This iteration's records, to be made durable BEFORE any output of the
 * iteration is sent (acknowledgements included); then tm_broker_journal_done. */
const uint8_t *tm_broker_journal(tm_broker *b, size_t *len);
bool tm_broker_journal_failed(const tm_broker *b);   /* out of memory: records lost */
void tm_broker_journal_done(tm_broker *b);
/* The whole durable state as records, for compaction: handed to `emit` in
 * pieces of about TM_SNAPSHOT_PIECE bytes, each a batch of whole records that
 * tm_broker_restore takes in order. The journal must be empty (just
 * committed). false: out of memory, or `emit` returned false (the rest was
 * not produced). When the snapshot did not become the store after all,
 * tm_broker_snapshot_failed before the next commit. */
#define TM_SNAPSHOT_PIECE (8u << 20)
typedef bool (*tm_snapshot_fn)(void *ud, const uint8_t *piece, size_t len);
bool tm_broker_snapshot(tm_broker *b, int64_t now, tm_snapshot_fn emit, void *ud);
void tm_broker_snapshot_failed(tm_broker *b);
/* Restoring into a fresh broker, before any connection: each batch in order
 * (0, or -1 with a reason: the batch was not applied completely), then
 * tm_broker_restore_done once. */
int tm_broker_restore(tm_broker *b, const uint8_t *batch, size_t len, int64_t now, char *why,
                      size_t cap);
void tm_broker_restore_done(tm_broker *b, int64_t now);
/* The durable state as sorted text lines (retained messages, then sessions
 * with their subscriptions, queues, incoming QoS 2 ids and wills), appended
 * to out: what tmqtt-db prints, and what the tests compare. */
struct tm_buf;
void tm_broker_dump(tm_broker *b, struct tm_buf *out);

/* A message from the broker itself (log lines for `log_dest topic`), routed
 * like a client's PUBLISH, never retained. Call between other engine calls,
 * never from inside one (e.g. not from a log line the engine is writing). */
void tm_broker_publish(tm_broker *b, const char *topic, const void *payload, size_t len,
                       uint8_t qos, int64_t now);
/* Byte counters kept by the driver, for $SYS. */
tm_broker_io_stats *tm_broker_io(tm_broker *b);
uint32_t tm_broker_connections(const tm_broker *b);

#endif
