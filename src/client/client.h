/*
 * client.h — the tmqtt MQTT 3.1.1 / 5.0 client library.
 *
 * Two layers:
 *
 *  1. An event-driven, non-blocking core (tm_client_*). A client lives on a
 *     caller's tm_loop; thousands of clients can share one loop (tmqtt-bench).
 *     Operations never block: they append encoded packets to a per-connection
 *     output buffer and the buffer is written once per loop iteration (at the
 *     end of the client's event callback, or when the socket becomes writable),
 *     so a burst of publishes costs one write(2)/SSL_write. tm_client_flush()
 *     writes immediately for callers that schedule sends precisely.
 *     The loop has no timers: the owner calls tm_client_tick() (keep-alive,
 *     connect timeout) at least as often as the value it returns.
 *
 *  2. A blocking convenience layer (tm_sync_*, sync.c) for the tools and tests,
 *     built on a private tm_loop per client.
 *
 * Ownership: every pointer in tm_client_opts is only read during
 * tm_client_new() (strings are copied, the CONNECT packet is encoded there),
 * except `ssl_ctx` (reference-counted with SSL_CTX_up_ref) and the user data
 * pointers. Slices handed to callbacks (tm_client_msg, tm_props) point into the
 * receive buffer and are valid only during the callback.
 *
 * Callbacks may call any tm_client_* function on the same client, including
 * tm_client_disconnect() and tm_client_free() (the free is deferred until the
 * callback returns).
 *
 * Errors are values: functions return -1 and tm_client_error() says why.
 * Malformed input from the server closes the connection (on_disconnect with a
 * reason code and a message); it never crashes the process.
 */
#ifndef TM_CLIENT_H
#define TM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "mqtt/mqtt.h"
#include "net/loop.h"
#include "net/tls.h"

typedef struct tm_client tm_client;

/* ---- TLS --------------------------------------------------------------- */

/* Options (tm_tls_opts), tm_tls_ctx_new and the setup/verify hook types come
 * from the connection layer (net/tls.h): one TLS set-up for the broker and
 * the clients. `tls.enable` asks for TLS with default options. */

/* ---- callbacks --------------------------------------------------------- */

typedef struct tm_client_msg {
    tm_str topic;              /* resolved from a topic alias when one was used */
    tm_str payload;
    uint8_t qos;
    bool retain, dup;
    uint16_t packet_id;        /* 0 for QoS 0 */
    const tm_props *props;     /* v5 properties (all zero for 3.1.1) */
} tm_client_msg;

typedef struct tm_client_cbs {
    /* CONNACK received. code: v5 reason code or v3 return code (0 = accepted).
     * When code != 0 the connection is closed right after this call. */
    void (*on_connect)(tm_client *c, void *ud, uint8_t code, bool session_present,
                       const tm_props *props);
    /* Application message from the server. For QoS 2 it is delivered once, when
     * the PUBLISH arrives (PUBREC is sent; PUBCOMP on PUBREL). */
    void (*on_message)(tm_client *c, void *ud, const tm_client_msg *m);
    /* Outgoing QoS 1 acknowledged (PUBACK) or QoS 2 completed (PUBCOMP), or
     * aborted by an error reason code in PUBACK/PUBREC (reason >= 0x80). */
    void (*on_publish_done)(tm_client *c, void *ud, uint16_t packet_id, uint8_t reason);
    /* SUBACK: one code per filter (granted QoS or v5 reason code). */
    void (*on_subscribe)(tm_client *c, void *ud, uint16_t packet_id, const uint8_t *codes,
                         uint32_t n, const tm_props *props);
    /* UNSUBACK: v5 codes; 3.1.1 has none (n == 0). */
    void (*on_unsubscribe)(tm_client *c, void *ud, uint16_t packet_id, const uint8_t *codes,
                           uint32_t n, const tm_props *props);
    /* The connection is closed (once per tm_client_connect). reason: the v5
     * reason code of a server DISCONNECT, of our own DISCONNECT, or the code
     * that describes the local error (e.g. 0x81 malformed); error: NULL on a
     * normal disconnection we asked for, otherwise a human-readable reason. */
    void (*on_disconnect)(tm_client *c, void *ud, uint8_t reason, const char *error);
} tm_client_cbs;

/* ---- options ----------------------------------------------------------- */

typedef struct tm_client_opts {
    const char *host;          /* numeric address or "localhost"; default 127.0.0.1 */
    uint16_t port;             /* default 1883 (8883 when TLS) */
    const char *client_id;     /* NULL or "": empty id (server assigns one in v5) */
    uint8_t version;           /* TM_V311 (4, default), TM_V5 (5), TM_V31 (3) */
    bool clean_start;          /* default true */
    uint16_t keep_alive;       /* seconds, 0 = off; default 60 */
    uint32_t session_expiry;   /* v5 CONNECT property (sent when != 0) */
    const char *username;
    const char *password;      /* NUL-terminated; see password_len for binary */
    size_t password_len;       /* 0: strlen(password) */
    /* Will: set will_topic to enable. */
    const char *will_topic;
    const void *will_payload;
    size_t will_payload_len;
    uint8_t will_qos;
    bool will_retain;
    const tm_props *will_props;      /* v5 will properties, may be NULL */
    uint16_t receive_max;      /* v5: our receive maximum (0 = not sent: 65535) */
    uint32_t max_packet_size;  /* v5: largest packet we accept (0 = no limit) */
    uint16_t topic_alias_max;  /* v5: aliases the server may use towards us */
    const tm_props *connect_props;   /* more v5 CONNECT properties (user props...) */
    /* Outgoing QoS>0 window when the server sets none (3.1.1): default 65535. */
    uint16_t max_inflight;
    uint32_t connect_timeout_ms;     /* TCP+TLS+CONNACK; default 10000, 0 = default */

    /* TLS: a shared context (not owned; up-ref'd), or options to build one. */
    SSL_CTX *ssl_ctx;
    tm_tls_opts tls;
    const char *sni;           /* server name for SNI + host check; default: host
                                  when it is a name (not a numeric address) */
    tm_tls_setup_fn tls_setup;
    tm_tls_verify_fn tls_verify;
    void *tls_arg;

    tm_client_cbs cbs;
    void *ud;                  /* passed to every callback */
    void *trace;               /* FILE * for a packet trace (tools' -d), NULL = off */
} tm_client_opts;

/* Fill defaults (everything zero except port 1883, version 4, clean_start,
 * keep_alive 60). */
void tm_client_opts_init(tm_client_opts *o);

/* ---- lifecycle --------------------------------------------------------- */

typedef enum tm_client_state {
    TM_CS_IDLE,            /* created, not connecting */
    TM_CS_TCP_CONNECTING,
    TM_CS_TLS_HANDSHAKE,
    TM_CS_MQTT_CONNECTING, /* CONNECT sent, waiting for CONNACK */
    TM_CS_CONNECTED,
    TM_CS_DISCONNECTING,   /* DISCONNECT queued; closes when written */
    TM_CS_CLOSED
} tm_client_state;

/* NULL with a reason in err when the options are invalid or TLS setup fails. */
tm_client *tm_client_new(tm_loop *loop, const tm_client_opts *o, char *err, size_t errcap);
/* Closes the connection without DISCONNECT (no callbacks) and frees. */
void tm_client_free(tm_client *c);

/* Start: non-blocking TCP connect, TLS handshake if configured, CONNECT.
 * 0 = started (progress via callbacks), -1 = failed immediately. */
int tm_client_connect(tm_client *c);
/* Same over an already connected socket (tests: socketpair). Takes the fd. */
int tm_client_connect_fd(tm_client *c, int fd);

/* Graceful: queue DISCONNECT (v5: reason and, if props != NULL, properties
 * such as session expiry) and close once written. */
int tm_client_disconnect(tm_client *c, uint8_t reason, const tm_props *props);

/* Keep-alive and timeouts. now_ms: tm_client_now_ms() clock. Returns the
 * milliseconds until the client next needs a tick (-1: none). */
int tm_client_tick(tm_client *c, uint64_t now_ms);
uint64_t tm_client_now_ms(void);      /* CLOCK_MONOTONIC in milliseconds */

/* Write the output buffer now (one write). 0, or -1 if the connection failed. */
int tm_client_flush(tm_client *c);

/* ---- operations (CONNECTED state only) --------------------------------- */

/* Returns the packet id (QoS 1/2: 1..65535), 0 for QoS 0, -1 on error (not
 * connected, invalid topic, QoS above the server maximum, packet larger than
 * the server's maximum packet size, out of packet ids). Beyond the server's
 * receive maximum the packet is queued and sent as acknowledgements arrive. */
int tm_client_publish(tm_client *c, const char *topic, const void *payload, size_t len,
                      uint8_t qos, bool retain, const tm_props *props);
/* Same with a topic slice (no NUL needed). */
int tm_client_publish_str(tm_client *c, tm_str topic, const void *payload, size_t len,
                          uint8_t qos, bool retain, const tm_props *props);

/* filters[i] with opts[i] (qos, no_local, retain_as_published, retain_handling).
 * v5 subscription identifier: props->sub_ids[0] with TM_PBIT(TM_P_SUB_ID).
 * Returns the packet id or -1. */
int tm_client_subscribe(tm_client *c, const char *const *filters, const tm_subopts *opts,
                        uint32_t n, const tm_props *props);
int tm_client_unsubscribe(tm_client *c, const char *const *filters, uint32_t n,
                          const tm_props *props);

/* ---- accessors --------------------------------------------------------- */

tm_client_state tm_client_get_state(const tm_client *c);
const char *tm_client_state_name(tm_client_state s);
const char *tm_client_error(const tm_client *c);  /* last error, "" if none */
int tm_client_fd(const tm_client *c);             /* -1 when not connected */
SSL *tm_client_ssl(const tm_client *c);           /* NULL without TLS */
void *tm_client_userdata(const tm_client *c);
uint8_t tm_client_version(const tm_client *c);

/* What the server told us in CONNACK (v5), with 3.1.1 defaults otherwise. */
typedef struct tm_client_server_info {
    uint16_t receive_max;        /* our outgoing window (min with max_inflight) */
    uint32_t max_packet_size;    /* 0 = no limit */
    uint16_t topic_alias_max;
    uint16_t keep_alive;         /* effective keep alive (server keep alive wins) */
    uint8_t max_qos;             /* 2 unless the server said otherwise */
    bool retain_available;
    char assigned_client_id[256];
} tm_client_server_info;
const tm_client_server_info *tm_client_server(const tm_client *c);

uint32_t tm_client_inflight(const tm_client *c);  /* outgoing QoS>0 unacknowledged */
uint32_t tm_client_queued(const tm_client *c);    /* waiting for window space */
size_t tm_client_out_pending(const tm_client *c); /* bytes not yet written */

/* Debug trace of every packet sent/received to this stream (NULL = off). */
void tm_client_set_trace(tm_client *c, void *file /* FILE * */);

/* ---- v5 property helpers ----------------------------------------------- */

/* User properties are stored raw in tm_props.user. Build them in a tm_buf,
 * then point a tm_props at it with tm_props_set_user (the buffer must outlive
 * the props' use). */
void tm_user_prop_add(tm_buf *raw, const char *key, const char *val);
void tm_props_set_user(tm_props *pr, const tm_buf *raw);
/* Counts pairs in a raw user-property region (0 if malformed). */
uint32_t tm_user_prop_count(const uint8_t *p, size_t len);

/* ---- blocking layer (sync.c) -------------------------------------------- */

/* A received message owned by the caller (tm_sync_msg_free). Strings are
 * NUL-terminated copies; props slices point into the same allocation. */
typedef struct tm_sync_msg {
    char *topic;
    uint8_t *payload;
    size_t payload_len;
    uint8_t qos;
    bool retain, dup;
    uint16_t packet_id;          /* 0 for QoS 0 */
    tm_props props;
    struct tm_sync_msg *next;    /* internal queue link */
} tm_sync_msg;
void tm_sync_msg_free(tm_sync_msg *m);

/* Create a client on its own private loop, connect and wait for CONNACK.
 * opts->cbs.on_message, if set, is called instead of queueing messages for
 * tm_sync_wait_message; other callbacks in opts are called too.
 * 0: *out is connected. -1: err says why (including a refused CONNACK). */
int tm_sync_connect(const tm_client_opts *opts, int timeout_ms, tm_client **out,
                    char *err, size_t errcap);
/* Publish and, for QoS>0, wait for PUBACK/PUBCOMP. Returns 0 or -1 (err). */
int tm_sync_publish(tm_client *c, const char *topic, const void *payload, size_t len,
                    uint8_t qos, bool retain, const tm_props *props, int timeout_ms,
                    char *err, size_t errcap);
/* Subscribe and wait for SUBACK; codes_out (n bytes, may be NULL) gets the codes.
 * Returns 0 when every filter was granted, 1 when some were refused, -1 on error. */
int tm_sync_subscribe(tm_client *c, const char *const *filters, const tm_subopts *opts,
                      uint32_t n, const tm_props *props, uint8_t *codes_out,
                      int timeout_ms, char *err, size_t errcap);
int tm_sync_unsubscribe(tm_client *c, const char *const *filters, uint32_t n,
                        const tm_props *props, int timeout_ms, char *err, size_t errcap);
/* Wait for the next message. 1: *out set; 0: timeout; -1: connection lost (err).
 * timeout_ms -1 waits forever. */
int tm_sync_wait_message(tm_client *c, int timeout_ms, tm_sync_msg **out,
                         char *err, size_t errcap);
/* Run the private loop until pred(c, arg) returns true or the timeout passes.
 * Returns 1 (pred true), 0 (timeout), -1 (connection closed). */
int tm_sync_run_until(tm_client *c, bool (*pred)(tm_client *, void *), void *arg,
                      int timeout_ms);
/* Send DISCONNECT, wait until written (or timeout), close and free the client. */
void tm_sync_disconnect(tm_client *c, uint8_t reason, const tm_props *props, int timeout_ms);

#endif
