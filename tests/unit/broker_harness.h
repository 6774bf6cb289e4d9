/*
 * broker_harness.h — drives the broker engine (broker.h) from a unit test as
 * a network driver would, without sockets: fake connections, packets built
 * with the codec, the engine's output collected per connection, time moved
 * by the test. With persistence on, every iteration's journal batch is kept
 * (tc_batches) so a test can restore it into another broker.
 */
#ifndef TM_BROKER_HARNESS_H
#define TM_BROKER_HARNESS_H
#include <stdlib.h>
#include <string.h>

#include "attest/atls_peer.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "mqtt/mqtt.h"
#include "tm_test.h"

/* ---- harness ---------------------------------------------------------------- */

typedef struct tc {
    tm_conn *c;
    uint8_t v;
    tm_buf rx;                   /* what the broker sent, not yet read */
    bool closed;                 /* the broker closed it */
    bool gone;                   /* closed by either side */
    struct tm_atls_peer *attest; /* handed to the next open */
} tc;

static tm_config cfg;
static tm_listener_cfg *lcfg;
static tm_broker *B;
static int64_t now;
static tc *clients[16];
static int n_clients;
static tm_buf batches[4096];   /* journal batches, one per iteration (persistence on) */
static int n_batches;

static inline void setup_cfg(void)
{
    tm_config_free(&cfg);
    tm_config_defaults(&cfg);
    cfg.allow_anonymous = true;
    cfg.sys_interval = 0;
    cfg.connection_messages = false;
    lcfg = tm_config_add_listener(&cfg, "127.0.0.1", 1883);
}

static inline const char *name_of_io(const void *io) { return io; }

static inline void start(void)
{
    char err[256] = "";
    now = 1000000;
    B = tm_broker_new(&cfg, now, err, sizeof err);
    if (!B)
        fprintf(stderr, "tm_broker_new: %s\n", err);
    TM_CHECK(B != NULL);
    if (B)
        tm_broker_set_driver(B, &(tm_conn_driver){.peer = name_of_io});
}

static tc *find(tm_conn *c)
{
    for (int i = 0; i < n_clients; i++)
        if (clients[i]->c == c)
            return clients[i];
    return NULL;
}

/* Collect the engine's output, as the driver would: the journal first. */
static inline void pump(void)
{
    size_t jl;
    const uint8_t *j = tm_broker_journal(B, &jl);
    if (jl && n_batches < 4096) {
        tm_buf_init(&batches[n_batches]);
        tm_buf_put(&batches[n_batches++], j, jl);
    }
    tm_broker_journal_done(B);
    tm_conn *c;
    while ((c = tm_broker_next_output(B))) {
        tc *t = find(c);
        size_t n;
        const uint8_t *p = tm_conn_output_early(c, &n);
        if (t)
            tm_buf_put(&t->rx, p, n);
        p = tm_conn_output(c, &n);
        if (t)
            tm_buf_put(&t->rx, p, n);
        tm_conn_output_done(c);
        if (tm_conn_closing(c)) {
            tm_broker_release(B, c);
            if (t) {
                t->closed = t->gone = true;
                t->c = NULL;
            }
        }
    }
    tm_broker_bury(B);
}

static inline void stop(void)
{
    tm_broker_free(B);
    B = NULL;
    for (int i = 0; i < n_batches; i++)
        tm_buf_free(&batches[i]);
    n_batches = 0;
    for (int i = 0; i < n_clients; i++) {
        tm_buf_free(&clients[i]->rx);
        tm_atls_peer_unref(clients[i]->attest);
        free(clients[i]);
    }
    n_clients = 0;
    setup_cfg();
}

static tc *open_conn(uint8_t v, struct tm_atls_peer *attest)
{
    tc *t = calloc(1, sizeof *t);
    t->v = v;
    tm_buf_init(&t->rx);
    /* the "driver's handle" is the peer's name itself (see name_of_io) */
    tm_conn_info info = {.listener = lcfg, .io = (void *)"test:1", .attestation = attest};
    t->c = tm_broker_open(B, &info, now);
    clients[n_clients++] = t;
    return t;
}

static inline void send_bytes(tc *t, const tm_buf *b)
{
    TM_CHECK(t->c != NULL);
    if (!t->c)
        return;
    tm_broker_input(B, t->c, b->data, b->len, now);
    pump();
}

/* Peer vanished (no DISCONNECT). */
static inline void drop(tc *t)
{
    if (!t->c)
        return;
    tm_broker_closed(B, t->c, "test: peer gone", now);
    t->c = NULL;
    t->gone = true;
    pump();
}

static inline void advance(int64_t ms)
{
    int64_t until = now + ms;
    while (now < until) {
        now += 250 < until - now ? 250 : until - now;
        tm_broker_tick(B, now);
        pump();
    }
}

/* The next packet the broker sent to t: type, or 0 when none. */
typedef struct pkt {
    uint8_t type, flags;
    uint8_t body[4096];
    size_t len;
} pkt;

static inline int next_pkt(tc *t, pkt *p)
{
    tm_frame f;
    if (tm_frame_parse(t->rx.data, t->rx.len, 0, &f) != TM_RC_SUCCESS)
        return 0;
    size_t total = (size_t)f.header_len + f.remaining;
    if (total > t->rx.len || f.remaining > sizeof p->body)
        return 0;
    p->type = f.type;
    p->flags = f.flags;
    p->len = f.remaining;
    memcpy(p->body, t->rx.data + f.header_len, f.remaining);
    tm_buf_consume(&t->rx, total);
    return p->type;
}

static tm_str S(const char *s) { return (tm_str){(const uint8_t *)s, (uint32_t)strlen(s)}; }

/* ---- client actions ------------------------------------------------------------ */

typedef struct conn_opts {
    bool clean;
    uint16_t keep_alive;
    uint32_t expiry;
    uint16_t receive_max;
    uint32_t max_packet;
    const char *will_topic, *will_payload;
    uint8_t will_qos;
    uint32_t will_delay;
    const char *username;
} conn_opts;

static inline uint8_t do_connect(tc *t, const char *id, const conn_opts *o, bool *present)
{
    tm_connect cn;
    memset(&cn, 0, sizeof cn);
    cn.version = t->v;
    cn.protocol_name = S(t->v == TM_V31 ? "MQIsdp" : "MQTT");
    cn.clean_start = o->clean;
    cn.keep_alive = o->keep_alive;
    cn.client_id = S(id);
    if (t->v == TM_V5) {
        if (o->expiry) {
            cn.props.present |= TM_PBIT(TM_P_SESSION_EXPIRY);
            cn.props.session_expiry = o->expiry;
        }
        if (o->receive_max) {
            cn.props.present |= TM_PBIT(TM_P_RECEIVE_MAX);
            cn.props.receive_max = o->receive_max;
        }
        if (o->max_packet) {
            cn.props.present |= TM_PBIT(TM_P_MAX_PACKET_SIZE);
            cn.props.max_packet_size = o->max_packet;
        }
    }
    if (o->will_topic) {
        cn.will = true;
        cn.will_qos = o->will_qos;
        cn.will_topic = S(o->will_topic);
        cn.will_payload = S(o->will_payload);
        if (o->will_delay) {
            cn.will_props.present |= TM_PBIT(TM_P_WILL_DELAY);
            cn.will_props.will_delay = o->will_delay;
        }
    }
    if (o->username)
        cn.username = S(o->username);
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connect(&b, &cn);
    send_bytes(t, &b);
    tm_buf_free(&b);
    pkt p;
    if (next_pkt(t, &p) != TM_CONNACK)
        return 0xFF;
    tm_connack ca;
    TM_CHECK_EQ(tm_decode_connack(p.body, p.len, t->v, &ca), TM_RC_SUCCESS);
    if (present)
        *present = ca.session_present;
    return ca.code;
}

static tc *connected(uint8_t v, const char *id, const conn_opts *o)
{
    static const conn_opts dflt = {.clean = true};
    tc *t = open_conn(v, NULL);
    TM_CHECK_EQ(do_connect(t, id, o ? o : &dflt, NULL), 0);
    return t;
}

static inline void subscribe(tc *t, const char *filter, uint8_t qos)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_str f = S(filter);
    tm_subopts so = {.qos = qos};
    tm_encode_subscribe(&b, t->v, 1, NULL, &f, &so, 1);
    send_bytes(t, &b);
    tm_buf_free(&b);
    pkt p;
    TM_CHECK_EQ(next_pkt(t, &p), TM_SUBACK);
}

static inline void publish_ex(tc *t, const char *topic, const char *payload, uint8_t qos,
                              uint16_t pid, bool dup, bool retain)
{
    tm_publish pb;
    memset(&pb, 0, sizeof pb);
    pb.topic = S(topic);
    pb.payload = S(payload);
    pb.qos = qos;
    pb.packet_id = pid;
    pb.dup = dup;
    pb.retain = retain;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, t->v, &pb);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

static inline void publish(tc *t, const char *topic, const char *payload, uint8_t qos, uint16_t pid)
{
    publish_ex(t, topic, payload, qos, pid, false, false);
}

static inline void ack(tc *t, uint8_t type, uint16_t pid)
{
    tm_ack a = {.type = type, .packet_id = pid};
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_ack(&b, t->v, &a);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

static inline void disconnect(tc *t)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_disconnect d = {0};
    tm_encode_disconnect(&b, t->v, &d);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

/* The next PUBLISH to t, decoded (payload copied into buf). 0 when none. */
static inline int got_publish(tc *t, char *payload, size_t cap, tm_publish *out)
{
    pkt p;
    if (next_pkt(t, &p) != TM_PUBLISH)
        return 0;
    tm_publish pb;
    if (tm_decode_publish(p.body, p.len, p.flags, t->v, &pb) != TM_RC_SUCCESS)
        return 0;
    size_t n = pb.payload.len < cap - 1 ? pb.payload.len : cap - 1;
    memcpy(payload, pb.payload.p, n);
    payload[n] = 0;
    if (out)
        *out = pb;
    return 1;
}

static inline int expect_publish(tc *t, const char *want)
{
    char buf[256];
    tm_publish pb;
    if (!got_publish(t, buf, sizeof buf, &pb))
        return 0;
    if (strcmp(buf, want)) {
        fprintf(stderr, "got '%s', expected '%s'\n", buf, want);
        return 0;
    }
    return pb.packet_id ? pb.packet_id : 1;
}

#endif
