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
#include <unistd.h>

#include "attest/atls.h"
#include "attest/evidence.h"

#include "broker/broker_int.h"   /* test_idle_connection_holds_no_buffers */
#include "broker_harness.h"

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

/* What an idle connection holds: after its CONNACK (and after a few small
 * packets) no output or input buffer, and no rare state (tm_conn_ext) at
 * all; a connection that received a
 * burst keeps its grown buffer until a tick passes without output. */
static void test_idle_connection_holds_no_buffers(void)
{
    start();
    tc *idle = connected(TM_V5, "idle", NULL);
    TM_CHECK(idle->c && idle->c->out.cap == 0);
    TM_CHECK(idle->c && idle->c->ext == NULL);   /* no rare state: no input, no Will */
    tc *sub = connected(TM_V311, "sub", NULL);
    subscribe(sub, "t", 0);
    TM_CHECK(sub->c && sub->c->out.cap == 0);   /* the SUBACK is gone too */
    tc *pub = connected(TM_V311, "pub", NULL);
    char payload[200];
    memset(payload, 'p', sizeof payload - 1);
    payload[sizeof payload - 1] = 0;
    tm_publish pb;
    memset(&pb, 0, sizeof pb);
    pb.topic = S("t");
    pb.payload = S(payload);
    tm_buf burst;
    tm_buf_init(&burst);
    for (int i = 0; i < 8; i++)
        tm_encode_publish(&burst, TM_V311, &pb);
    send_bytes(pub, &burst);     /* one iteration: 8 deliveries to sub */
    tm_buf_free(&burst);
    TM_CHECK(sub->c && sub->c->out.cap > TM_BUF_MIN);   /* busy: kept for now */
    advance(600);                /* ticks without output */
    TM_CHECK(sub->c && sub->c->out.cap == 0);
    int got = 0;
    while (expect_publish(sub, payload))
        got++;
    TM_CHECK_EQ(got, 8);
    /* a packet cut by a read boundary: its head waits in the rare state's
     * input buffer, which is released once the packet is complete */
    tm_buf cut;
    tm_buf_init(&cut);
    tm_encode_publish(&cut, TM_V311, &pb);
    tm_broker_input(B, pub->c, cut.data, 10, now);
    pump();
    TM_CHECK(pub->c && pub->c->ext && pub->c->ext->in.len == 10);
    tm_broker_input(B, pub->c, cut.data + 10, cut.len - 10, now);
    pump();
    TM_CHECK(pub->c && pub->c->ext && pub->c->ext->in.cap == 0);
    TM_CHECK(expect_publish(sub, payload));
    tm_buf_free(&cut);
    stop();
}

/* The fan-out's per-publish stamp wraps: a session that was never matched
 * (stamp 0) must still receive the publish whose stamp wrapped to 0. */
static void test_match_stamp_wraps(void)
{
    start();
    tc *sub = connected(TM_V311, "sub", NULL);
    subscribe(sub, "t", 0);
    tc *pub = connected(TM_V311, "pub", NULL);
    B->match_stamp = UINT32_MAX;
    publish(pub, "t", "after the wrap", 0, 0);
    TM_CHECK(expect_publish(sub, "after the wrap"));
    publish(pub, "t", "and the next", 0, 0);
    TM_CHECK(expect_publish(sub, "and the next"));
    stop();
}

/* Connections remember the low 32 bits of the clock: keep alive and the
 * CONNECT deadline hold across the moment those wrap. */
static void test_keep_alive_across_clock_wrap(void)
{
    start();
    now = (1LL << 33) - 1000;    /* the low 32 bits wrap 1 s from now */
    conn_opts o = {.clean = true, .keep_alive = 2};
    tc *k = connected(TM_V5, "k", &o);
    tc *silent = open_conn(TM_V311, NULL);
    advance(2900);
    TM_CHECK(!k->closed && !silent->closed);
    advance(500);
    TM_CHECK(k->closed);
    advance(cfg.handshake_timeout_ms);
    TM_CHECK(silent->closed);
    stop();
}

/* max_queued_bytes counts what the transport still holds, asked from the
 * driver (tm_conn_driver.backlog): a QoS 0 message to a subscriber whose
 * transport is saturated is dropped, and delivered once it is not. */
static size_t fake_backlog;
static size_t backlog_of(const void *io)
{
    return strcmp(io, "slow:1") == 0 ? fake_backlog : 0;
}

static void test_transport_backlog_from_driver(void)
{
    cfg.max_queued_bytes = 1000;
    start();
    tm_broker_set_driver(B, &(tm_conn_driver){.peer = name_of_io, .backlog = backlog_of});
    tc *sub = open_conn(TM_V311, NULL);
    sub->c->io = (void *)"slow:1";   /* the harness's handle names the peer */
    TM_CHECK_EQ(do_connect(sub, "slow", &(conn_opts){.clean = true}, NULL), 0);
    subscribe(sub, "t", 0);
    tc *pub = connected(TM_V311, "pub", NULL);
    fake_backlog = 5000;
    publish(pub, "t", "dropped", 0, 0);
    TM_CHECK(!expect_publish(sub, "dropped"));
    fake_backlog = 0;
    publish(pub, "t", "delivered", 0, 0);
    TM_CHECK(expect_publish(sub, "delivered"));
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
             TM_CASE(test_delayed_will_keeps_attested_claims),
             TM_CASE(test_idle_connection_holds_no_buffers), TM_CASE(test_match_stamp_wraps),
             TM_CASE(test_keep_alive_across_clock_wrap),
             TM_CASE(test_transport_backlog_from_driver),
             TM_CASE(test_all_done))
