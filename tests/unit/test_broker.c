/*
 * test_broker.c — the broker engine driven directly, without sockets: what a
 * client sends goes in with tm_broker_input, what the engine answers comes
 * out of tm_broker_next_output, and time is whatever the test says it is.
 *
 * Covers the paths where the engine decides on its own (takeover, wills and
 * their delay, session expiry, keep alive, the CONNECT deadline, flow
 * control windows, ACLs on every path including a delayed Will with
 * attested claims) — the ones an integration test can only reach by waiting.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/atls.h"
#include "attest/atls_peer.h"
#include "attest/evidence.h"
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

static void setup_cfg(void)
{
    tm_config_free(&cfg);
    tm_config_defaults(&cfg);
    cfg.allow_anonymous = true;
    cfg.sys_interval = 0;
    cfg.connection_messages = false;
    lcfg = tm_config_add_listener(&cfg, "127.0.0.1", 1883);
}

static void start(void)
{
    char err[256] = "";
    now = 1000000;
    B = tm_broker_new(&cfg, now, err, sizeof err);
    if (!B)
        fprintf(stderr, "tm_broker_new: %s\n", err);
    TM_CHECK(B != NULL);
}

static tc *find(tm_conn *c)
{
    for (int i = 0; i < n_clients; i++)
        if (clients[i]->c == c)
            return clients[i];
    return NULL;
}

/* Collect the engine's output, as the driver would. */
static void pump(void)
{
    tm_conn *c;
    while ((c = tm_broker_next_output(B))) {
        tc *t = find(c);
        size_t n;
        const uint8_t *p = tm_conn_output(c, &n);
        if (t)
            tm_buf_put(&t->rx, p, n);
        tm_conn_output_done(c, 0);
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

static void stop(void)
{
    tm_broker_free(B);
    B = NULL;
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
    tm_conn_info info = {.listener = lcfg, .peer = "test:1", .attestation = attest};
    t->c = tm_broker_open(B, &info, now);
    clients[n_clients++] = t;
    return t;
}

static void send_bytes(tc *t, const tm_buf *b)
{
    TM_CHECK(t->c != NULL);
    if (!t->c)
        return;
    tm_broker_input(B, t->c, b->data, b->len, now);
    pump();
}

/* Peer vanished (no DISCONNECT). */
static void drop(tc *t)
{
    if (!t->c)
        return;
    tm_broker_closed(B, t->c, "test: peer gone", now);
    t->c = NULL;
    t->gone = true;
    pump();
}

static void advance(int64_t ms)
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

static int next_pkt(tc *t, pkt *p)
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

static uint8_t do_connect(tc *t, const char *id, const conn_opts *o, bool *present)
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

static void subscribe(tc *t, const char *filter, uint8_t qos)
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

static void publish(tc *t, const char *topic, const char *payload, uint8_t qos, uint16_t pid)
{
    tm_publish pb;
    memset(&pb, 0, sizeof pb);
    pb.topic = S(topic);
    pb.payload = S(payload);
    pb.qos = qos;
    pb.packet_id = pid;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, t->v, &pb);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

static void ack(tc *t, uint8_t type, uint16_t pid)
{
    tm_ack a = {.type = type, .packet_id = pid};
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_ack(&b, t->v, &a);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

static void disconnect(tc *t)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_disconnect d = {0};
    tm_encode_disconnect(&b, t->v, &d);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

/* The next PUBLISH to t, decoded (payload copied into buf). 0 when none. */
static int got_publish(tc *t, char *payload, size_t cap, tm_publish *out)
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

static int expect_publish(tc *t, const char *want)
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

/* ---- tests ------------------------------------------------------------------------- */

static void test_connect_and_resume(void)
{
    start();
    conn_opts o = {.clean = false};
    tc *a = open_conn(TM_V311, NULL);
    bool present = true;
    TM_CHECK_EQ(do_connect(a, "dev1", &o, &present), 0);
    TM_CHECK(!present);
    disconnect(a);
    TM_CHECK(a->closed);
    tc *b = open_conn(TM_V311, NULL);
    TM_CHECK_EQ(do_connect(b, "dev1", &o, &present), 0);
    TM_CHECK(present);
    TM_CHECK_EQ(tm_broker_connections(B), 1);
    stop();
}

static void test_qos_flows(void)
{
    start();
    tc *sub = connected(TM_V5, "sub", NULL);
    tc *pub = connected(TM_V5, "pub", NULL);
    subscribe(sub, "t/#", 2);
    publish(pub, "t/1", "zero", 0, 0);
    TM_CHECK(expect_publish(sub, "zero"));
    publish(pub, "t/1", "one", 1, 7);
    pkt p;
    TM_CHECK_EQ(next_pkt(pub, &p), TM_PUBACK);
    int pid = expect_publish(sub, "one");
    TM_CHECK(pid > 0);
    ack(sub, TM_PUBACK, (uint16_t)pid);
    /* QoS 2: routed on PUBLISH, a retransmission before PUBREL is not routed twice */
    publish(pub, "t/2", "two", 2, 9);
    TM_CHECK_EQ(next_pkt(pub, &p), TM_PUBREC);
    publish(pub, "t/2", "two", 2, 9);
    TM_CHECK_EQ(next_pkt(pub, &p), TM_PUBREC);
    ack(pub, TM_PUBREL, 9);
    TM_CHECK_EQ(next_pkt(pub, &p), TM_PUBCOMP);
    pid = expect_publish(sub, "two");
    TM_CHECK(pid > 0);
    TM_CHECK_EQ(next_pkt(sub, &p), 0);   /* once only */
    ack(sub, TM_PUBREC, (uint16_t)pid);
    TM_CHECK_EQ(next_pkt(sub, &p), TM_PUBREL);
    ack(sub, TM_PUBCOMP, (uint16_t)pid);
    TM_CHECK_EQ(next_pkt(sub, &p), 0);
    stop();
}

static void test_receive_maximum_window(void)
{
    start();
    conn_opts o = {.clean = true, .receive_max = 2};
    tc *sub = connected(TM_V5, "sub", &o);
    tc *pub = connected(TM_V5, "pub", NULL);
    subscribe(sub, "w", 1);
    for (int i = 0; i < 4; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        publish(pub, "w", m, 1, (uint16_t)(i + 1));
    }
    int p0 = expect_publish(sub, "m0"), p1 = expect_publish(sub, "m1");
    pkt p;
    TM_CHECK_EQ(next_pkt(sub, &p), 0);   /* the window is full */
    ack(sub, TM_PUBACK, (uint16_t)p0);
    TM_CHECK(expect_publish(sub, "m2"));
    TM_CHECK_EQ(next_pkt(sub, &p), 0);
    ack(sub, TM_PUBACK, (uint16_t)p1);
    TM_CHECK(expect_publish(sub, "m3"));
    stop();
}

static void test_oversized_skipped(void)
{
    start();
    conn_opts o = {.clean = true, .max_packet = 20, .receive_max = 1};
    tc *sub = connected(TM_V5, "sub", &o);
    tc *pub = connected(TM_V5, "pub", NULL);
    subscribe(sub, "a", 1);
    publish(pub, "a", "this payload is far too large", 1, 1);
    publish(pub, "a", "ok", 1, 2);
    TM_CHECK(expect_publish(sub, "ok"));
    stop();
}

static void test_takeover(void)
{
    start();
    tc *old = connected(TM_V5, "same", NULL);
    tc *neu = connected(TM_V5, "same", NULL);
    pkt p;
    TM_CHECK_EQ(next_pkt(old, &p), TM_DISCONNECT);
    TM_CHECK_EQ(p.body[0], TM_RC_SESSION_TAKEN_OVER);
    TM_CHECK(old->closed);
    TM_CHECK(!neu->closed);
    TM_CHECK_EQ(tm_broker_connections(B), 1);
    stop();
}

static void test_will_on_abnormal_close_only(void)
{
    start();
    tc *w = connected(TM_V5, "watcher", NULL);
    subscribe(w, "wills/#", 0);
    conn_opts o = {.clean = true, .will_topic = "wills/a", .will_payload = "a died"};
    tc *a = connected(TM_V5, "a", &o);
    drop(a);
    TM_CHECK(expect_publish(w, "a died"));
    o.will_payload = "b died";
    o.will_topic = "wills/b";
    tc *b = connected(TM_V5, "b", &o);
    disconnect(b);   /* normal DISCONNECT: no will */
    pkt p;
    TM_CHECK_EQ(next_pkt(w, &p), 0);
    stop();
}

static void test_delayed_will_and_cancel(void)
{
    start();
    tc *w = connected(TM_V5, "watcher", NULL);
    subscribe(w, "wills/#", 0);
    conn_opts o = {.clean = false, .expiry = 300, .will_topic = "wills/d",
                   .will_payload = "late", .will_delay = 5};
    tc *d = connected(TM_V5, "d", &o);
    drop(d);
    pkt p;
    advance(4000);
    TM_CHECK_EQ(next_pkt(w, &p), 0);   /* not yet */
    advance(1500);
    TM_CHECK(expect_publish(w, "late"));
    /* again, but the client comes back within the delay: cancelled */
    tc *d2 = connected(TM_V5, "d", &o);
    drop(d2);
    advance(2000);
    tc *d3 = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(d3, "d", &o, NULL), 0);
    advance(10000);
    TM_CHECK_EQ(next_pkt(w, &p), 0);
    stop();
}

static void test_session_expiry_and_queue(void)
{
    start();
    conn_opts o = {.clean = false, .expiry = 10};
    tc *s = connected(TM_V5, "s", &o);
    subscribe(s, "q", 1);
    disconnect(s);
    tc *pub = connected(TM_V5, "pub", NULL);
    publish(pub, "q", "queued", 1, 1);
    advance(5000);
    bool present = false;
    tc *s2 = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(s2, "s", &o, &present), 0);
    TM_CHECK(present);
    TM_CHECK(expect_publish(s2, "queued"));
    disconnect(s2);
    advance(11000);   /* past the expiry: the session is gone */
    tc *s3 = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(s3, "s", &o, &present), 0);
    TM_CHECK(!present);
    stop();
}

static void test_keep_alive_and_connect_deadline(void)
{
    start();
    conn_opts o = {.clean = true, .keep_alive = 2};
    tc *k = connected(TM_V5, "k", &o);
    advance(2900);
    TM_CHECK(!k->closed);
    advance(500);   /* 1.5 x keep alive passed without a packet */
    pkt p;
    TM_CHECK_EQ(next_pkt(k, &p), TM_DISCONNECT);
    TM_CHECK_EQ(p.body[0], TM_RC_KEEP_ALIVE_TIMEOUT);
    TM_CHECK(k->closed);
    tc *silent = open_conn(TM_V311, NULL);   /* never sends CONNECT */
    advance(cfg.handshake_timeout_ms + 500);
    TM_CHECK(silent->closed);
    stop();
}

static void test_protocol_error_disconnects(void)
{
    start();
    tc *t = connected(TM_V5, "t", NULL);
    tm_buf b;
    tm_buf_init(&b);
    tm_buf_u8(&b, 0x20);   /* a CONNACK from a client */
    tm_buf_u8(&b, 0x03);
    tm_buf_u8(&b, 0);
    tm_buf_u8(&b, 0);
    tm_buf_u8(&b, 0);
    send_bytes(t, &b);
    tm_buf_free(&b);
    pkt p;
    TM_CHECK_EQ(next_pkt(t, &p), TM_DISCONNECT);
    TM_CHECK_EQ(p.body[0], TM_RC_PROTOCOL_ERROR);
    TM_CHECK(t->closed);
    stop();
}

/* ---- ACLs ------------------------------------------------------------------------------ */

static char tmpdir[64];

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    TM_CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_acl_publish_and_reload(void)
{
    static char acl[128];
    write_file("acl", "user alice\ntopic read news/#\nuser ed\ntopic write news/#\n", acl,
               sizeof acl);
    cfg.acl_file = strdup(acl);
    start();
    conn_opts o = {.clean = false, .username = "alice"};
    tc *alice = connected(TM_V311, "alice", &o);
    subscribe(alice, "news/#", 1);
    publish(alice, "news/x", "alice may not write", 0, 0);
    pkt p;
    TM_CHECK_EQ(next_pkt(alice, &p), 0);
    tc *ed = connected(TM_V311, "ed", &(conn_opts){.clean = true, .username = "ed"});
    publish(ed, "news/x", "live", 0, 0);
    TM_CHECK(expect_publish(alice, "live"));
    disconnect(alice);
    publish(ed, "news/x", "queued", 1, 3);   /* queued while alice may read */
    write_file("acl", "user alice\ntopic read other/#\nuser ed\ntopic write news/#\n", acl,
               sizeof acl);
    char err[256];
    TM_CHECK_EQ(tm_broker_reload_auth(B, err, sizeof err), 0);
    tc *back = open_conn(TM_V311, NULL);
    bool present = false;
    TM_CHECK_EQ(do_connect(back, "alice", &o, &present), 0);
    TM_CHECK(present);
    TM_CHECK_EQ(next_pkt(back, &p), 0);   /* dropped at reload */
    stop();
}

/* A delayed Will is checked against the claims of the connection that set it:
 * the `attested` block that denies it must still apply after the connection
 * is gone. */
static void test_delayed_will_keeps_attested_claims(void)
{
    static char acl[128], pol[128];
    uint8_t meas[32];
    memset(meas, 0xAB, sizeof meas);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", meas[i]);
    char poltext[256];
    snprintf(poltext, sizeof poltext, "measurement_set sensors %s\n", hex);
    write_file("client.policy", poltext, pol, sizeof pol);
    write_file("acl", "topic readwrite #\n\nattested sensors\ntopic deny alarms/#\n", acl,
               sizeof acl);
    cfg.acl_file = strdup(acl);
    start();
    char err[256] = "";
    tm_atls_server_opts so = {.require_client = true, .client_policy = pol};
    tm_atls_server *srv = tm_atls_server_new(&so, err, sizeof err);
    TM_CHECK(srv != NULL);
    if (!srv) {
        fprintf(stderr, "tm_atls_server_new: %s\n", err);
        stop();
        return;
    }
    tm_claims claims;
    memset(&claims, 0, sizeof claims);
    claims.format = TM_FMT_SIM;
    snprintf(claims.format_name, sizeof claims.format_name, "sim");
    memcpy(claims.measurement, meas, 32);
    claims.measurement_len = 32;
    claims.has_sim = 1;
    memcpy(claims.sim_measurement, meas, 32);
    tc *w = connected(TM_V5, "watcher", NULL);
    subscribe(w, "alarms/#", 0);
    conn_opts o = {.clean = false, .expiry = 60, .will_topic = "alarms/s",
                   .will_payload = "forbidden", .will_delay = 2};
    tc *s = open_conn(TM_V5, tm_atls_peer_new(&claims, srv));
    TM_CHECK_EQ(do_connect(s, "sensor", &o, NULL), 0);
    publish(s, "alarms/s", "direct", 0, 0);   /* denied while connected */
    pkt p;
    TM_CHECK_EQ(next_pkt(w, &p), 0);
    drop(s);
    advance(3000);
    TM_CHECK_EQ(next_pkt(w, &p), 0);   /* the delayed Will is denied too */
    /* the same Will from a connection without claims goes out */
    tc *plain = connected(TM_V5, "plain", &(conn_opts){.clean = true, .will_topic = "alarms/p",
                                                     .will_payload = "allowed"});
    drop(plain);
    TM_CHECK(expect_publish(w, "allowed"));
    tm_atls_server_free(srv);
    stop();
}

static void test_all_done(void)
{
    tm_config_free(&cfg);
    char path[128];
    snprintf(path, sizeof path, "%s/acl", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/client.policy", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

static void init(void)
{
    tm_log_set_level(TM_LOG_ERR);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tmqtt-test-broker-XXXXXX");
    TM_CHECK(mkdtemp(tmpdir) != NULL);
    tm_config_defaults(&cfg);
    setup_cfg();
}

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_connect_and_resume), TM_CASE(test_qos_flows),
             TM_CASE(test_receive_maximum_window), TM_CASE(test_oversized_skipped),
             TM_CASE(test_takeover), TM_CASE(test_will_on_abnormal_close_only),
             TM_CASE(test_delayed_will_and_cancel), TM_CASE(test_session_expiry_and_queue),
             TM_CASE(test_keep_alive_and_connect_deadline),
             TM_CASE(test_protocol_error_disconnects),
             TM_CASE(test_acl_publish_and_reload),
             TM_CASE(test_delayed_will_keeps_attested_claims), TM_CASE(test_all_done))
