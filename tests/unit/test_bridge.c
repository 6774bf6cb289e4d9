/*
 * test_bridge.c — the engine's side of bridges (src/broker/bridge.c) and
 * their configuration keys, driven like the network would: the test plays
 * the remote broker on the bridge's connection (reads its CONNECT,
 * SUBSCRIBE, PUBLISH; answers CONNACK, SUBACK, PUBLISH, acks) and local
 * clients on the broker.
 *
 * What must hold: Mosquitto's topic mapping (direction, QoS, prefixes), the
 * queue kept while the bridge is down, QoS 1/2 continued across reconnects
 * (in-flight resent with DUP, an incoming QoS 2 not routed twice), no echo
 * of bridged messages (no-local, try_private), notifications, keep alive,
 * the bridge's client id reserved, and configuration errors with reasons.
 */
#include <stdio.h>
#include <unistd.h>

#include "broker_harness.h"

static char conf_path[64];

/* Loads the test configuration: `text` after the harness defaults. 0 or -1
 * with the parser's reason in err. */
static int load(const char *text, char *err, size_t cap)
{
    setup_cfg();
    snprintf(conf_path, sizeof conf_path, "/tmp/tmqtt-test-bridge-%d.conf", (int)getpid());
    FILE *f = fopen(conf_path, "w");
    TM_CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    int rc = tm_config_load(&cfg, conf_path, err, cap);
    unlink(conf_path);
    return rc;
}

static const char *BRIDGE_CONF =
    "connection edge\n"
    "address 127.0.0.1:1884 [::1]:1885 cloud.example\n"
    "topic sensors/# out 1 site1/ cloud/site1/\n"
    "topic cmd/# in 2 local/ remote/\n"
    "topic both/# both 1\n"
    "topic \"\" in 0 status/x remote/status\n"
    "remote_clientid edge1\n"
    "local_clientid local.edge1\n"
    "keepalive_interval 10\n";

/* The remote broker's end of the bridge connection. */
static tc *remote;

static void open_bridge(void)
{
    remote = calloc(1, sizeof *remote);
    remote->v = TM_V311;
    tm_buf_init(&remote->rx);
    tm_conn_info info = {.io = (void *)"remote:1883"};
    remote->c = tm_broker_open_bridge(B, 0, &info, now);
    TM_CHECK(remote->c != NULL);
    clients[n_clients++] = remote;
    pump();
}

static void send_pkt_connack(tc *t, bool present, uint8_t code)
{
    tm_connack ca;
    memset(&ca, 0, sizeof ca);
    ca.session_present = present;
    ca.code = code;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connack(&b, t->v, &ca);
    send_bytes(t, &b);
    tm_buf_free(&b);
}

/* The next PUBLISH to t with its topic and payload copied out. */
typedef struct pubm {
    char topic[128], payload[128];
    uint8_t qos;
    bool retain, dup;
    uint16_t pid;
} pubm;

static bool next_publish(tc *t, pubm *m)
{
    pkt p;
    if (next_pkt(t, &p) != TM_PUBLISH)
        return false;
    tm_publish pb;
    if (tm_decode_publish(p.body, p.len, p.flags, t->v, &pb) != TM_RC_SUCCESS)
        return false;
    snprintf(m->topic, sizeof m->topic, "%.*s", (int)pb.topic.len, (const char *)pb.topic.p);
    snprintf(m->payload, sizeof m->payload, "%.*s", (int)pb.payload.len,
             (const char *)pb.payload.p);
    m->qos = pb.qos;
    m->retain = pb.retain;
    m->dup = pb.dup;
    m->pid = pb.packet_id;
    return true;
}

static void remote_publish(const char *topic, const char *payload, uint8_t qos, uint16_t pid,
                           bool dup)
{
    publish_ex(remote, topic, payload, qos, pid, dup, false);
}

/* The bridge's CONNECT, checked, then CONNACK; returns after the SUBSCRIBE. */
static void handshake(bool present)
{
    pkt p;
    TM_CHECK_EQ(next_pkt(remote, &p), TM_CONNECT);
    tm_connect cn;
    TM_CHECK_EQ(tm_decode_connect(p.body, p.len, &cn), TM_RC_SUCCESS);
    TM_CHECK(cn.bridge);   /* try_private: level 0x84 */
    TM_CHECK_EQ(cn.version, TM_V311);
    TM_CHECK(!cn.clean_start);
    TM_CHECK_EQ(cn.keep_alive, 10);
    TM_CHECK(cn.client_id.len == 5 && !memcmp(cn.client_id.p, "edge1", 5));
    TM_CHECK(cn.will && cn.will_retain && cn.will_qos == 1);
    TM_CHECK(cn.will_topic.len == strlen("$SYS/broker/connection/edge1/state"));
    TM_CHECK(tm_broker_bridge_state(B, 0) == TM_BRIDGE_CONNECTING);
    send_pkt_connack(remote, present, 0);
    TM_CHECK(tm_broker_bridge_state(B, 0) == TM_BRIDGE_UP);
    /* bridge_attempt_unsubscribe: the remote must not keep an `out` topic */
    TM_CHECK_EQ(next_pkt(remote, &p), TM_UNSUBSCRIBE);
    tm_subscribe uns;
    TM_CHECK_EQ(tm_decode_unsubscribe(p.body, p.len, p.flags, TM_V311, &uns), TM_RC_SUCCESS);
    TM_CHECK_EQ(uns.count, 1);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_SUBSCRIBE);
    tm_subscribe sub;
    TM_CHECK_EQ(tm_decode_subscribe(p.body, p.len, p.flags, TM_V311, &sub), TM_RC_SUCCESS);
    TM_CHECK_EQ(sub.count, 3);
    const char *want[] = {"remote/cmd/#", "both/#", "remote/status"};
    const uint8_t wq[] = {2, 1, 0};
    uint32_t pos = 0;
    tm_str f;
    tm_subopts o;
    for (int i = 0; i < 3 && tm_sub_next(&sub, &pos, &f, &o); i++) {
        TM_CHECK(f.len == strlen(want[i]) && !memcmp(f.p, want[i], f.len));
        TM_CHECK_EQ(o.qos, wq[i]);
    }
    /* its notification to the remote broker */
    pubm m;
    TM_CHECK(next_publish(remote, &m));
    TM_CHECK(!strcmp(m.topic, "$SYS/broker/connection/edge1/state") && !strcmp(m.payload, "1"));
    TM_CHECK(m.retain);
    ack(remote, TM_PUBACK, m.pid);
}

static void init(void) { setup_cfg(); }

static void test_config(void)
{
    char err[512];
    TM_CHECK_EQ(load(BRIDGE_CONF, err, sizeof err), 0);
    TM_CHECK_EQ(cfg.n_bridges, 1);
    tm_bridge_cfg *br = &cfg.bridges[0];
    TM_CHECK_EQ(br->n_addrs, 3);
    TM_CHECK(!strcmp(br->addrs[1].host, "::1") && br->addrs[1].port == 1885);
    TM_CHECK(!strcmp(br->addrs[2].host, "cloud.example") && br->addrs[2].port == 1883);
    TM_CHECK_EQ(br->n_topics, 4);
    TM_CHECK(br->topics[3].pattern[0] == 0 && !strcmp(br->topics[3].local_prefix, "status/x"));
    TM_CHECK_EQ(br->topics[1].dir, TM_BRIDGE_IN);
    TM_CHECK_EQ(br->topics[1].qos, 2);
    TM_CHECK(br->try_private && br->notifications && !br->cleansession);
    TM_CHECK_EQ(br->restart_base, 5);
    /* errors, each with its reason */
    struct {
        const char *text, *why;
    } bad[] = {
        {"address 127.0.0.1\n", "before any `connection"},
        {"connection a\ntopic x\n", "no address"},
        {"connection a\naddress h\n", "no topic"},
        {"connection a\naddress h\ntopic x sideways\n", "expected out, in or both"},
        {"connection a\naddress h\ntopic x out 3\n", "expected 0, 1 or 2"},
        {"connection a\naddress h\ntopic x out 1 a/+/ b/\n", "may not contain"},
        {"connection a\naddress h\ntopic \"\" out 1 \"\" \"\"\n", "needs a prefix"},
        {"connection a\naddress h:0\ntopic x\n", "port 0"},
        {"connection a\naddress h\ntopic x\nconnection a\n", "a second bridge"},
        {"connection a b\n", "too many values"},
        {"connection a\naddress h\ntopic x\nstart_type lazy\n", "not implemented"},
        {"connection a\naddress h\ntopic x\nbridge_psk abc\n", "even number"},
        {"connection a\naddress h\ntopic x\nbridge_attestation_policy p.json\n",
         "needs TLS 1.3"},
        {"connection a\naddress h\ntopic x\nbridge_certfile c.pem\n", "together"},
        {"connection a\naddress h\ntopic x\nbridge_receive_maximum 10\n", "mqttv50"},
        {"connection a\naddress h\ntopic x\nrestart_timeout 30 5\n", "BASE <= CAP"},
        {"connection a\naddress h\ntopic x\nbridge_bind_address 10.0.0.1\n", "not implemented"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = load(bad[i].text, err, sizeof err);
        if (rc == 0 || !strstr(err, bad[i].why))
            fprintf(stderr, "case %zu: rc %d, '%s' (want '%s')\n", i, rc, err, bad[i].why);
        TM_CHECK(rc < 0 && strstr(err, bad[i].why));
    }
    setup_cfg();
}

/* Messages both ways with the mapping; the queue kept while down. */
static void test_mapping_and_queue(void)
{
    char err[512];
    TM_CHECK_EQ(load(BRIDGE_CONF, err, sizeof err), 0);
    start();
    TM_CHECK_EQ(tm_broker_bridges_start(B, now, err, sizeof err), 0);
    tc *local = connected(TM_V5, "local-sub", NULL);
    subscribe(local, "local/cmd/#", 2);
    subscribe(local, "status/x", 0);
    subscribe(local, "both/#", 1);
    tc *pub = connected(TM_V311, "local-pub", NULL);
    /* published before the bridge has ever connected: queued for it */
    publish(pub, "site1/sensors/t1", "early", 1, 1);
    publish(pub, "elsewhere/t", "not bridged", 1, 2);
    open_bridge();
    handshake(false);
    pubm m;
    TM_CHECK(next_publish(remote, &m));
    TM_CHECK(!strcmp(m.topic, "cloud/site1/sensors/t1") && !strcmp(m.payload, "early"));
    TM_CHECK_EQ(m.qos, 1);
    ack(remote, TM_PUBACK, m.pid);
    TM_CHECK(!next_publish(remote, &m));
    /* in: QoS 2 from the remote broker, delivered under the local prefix */
    remote_publish("remote/cmd/open", "door", 2, 7, false);
    pkt p;
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBREC);
    TM_CHECK(next_publish(local, &m));
    TM_CHECK(!strcmp(m.topic, "local/cmd/open") && !strcmp(m.payload, "door"));
    TM_CHECK_EQ(m.qos, 2);
    ack(local, TM_PUBREC, m.pid);
    TM_CHECK_EQ(next_pkt(local, &p), TM_PUBREL);
    ack(local, TM_PUBCOMP, m.pid);
    ack(remote, TM_PUBREL, 7);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBCOMP);
    /* an empty pattern: the prefixes are the whole topic */
    remote_publish("remote/status", "ok", 0, 0, false);
    TM_CHECK(next_publish(local, &m));

    TM_CHECK(!strcmp(m.topic, "status/x"));
    /* both: in, delivered locally, and not sent back (no-local) */
    remote_publish("both/a", "from remote", 1, 8, false);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBACK);
    TM_CHECK(next_publish(local, &m));
    TM_CHECK(!strcmp(m.topic, "both/a"));
    ack(local, TM_PUBACK, m.pid);
    TM_CHECK(!next_publish(remote, &m));
    /* both: out, from a local client */
    publish(pub, "both/b", "from local", 1, 3);
    TM_CHECK(next_publish(remote, &m));
    TM_CHECK(!strcmp(m.topic, "both/b"));
    ack(remote, TM_PUBACK, m.pid);
    /* a topic no `in` topic maps is acknowledged and dropped */
    remote_publish("remote/other", "x", 1, 9, false);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBACK);
    /* down: the local notification says so, and what is published waits */
    drop(remote);
    TM_CHECK(tm_broker_bridge_state(B, 0) == TM_BRIDGE_DOWN);
    tc *watch = connected(TM_V311, "watcher", NULL);
    subscribe(watch, "$SYS/broker/connection/#", 0);
    TM_CHECK(next_publish(watch, &m));
    TM_CHECK(!strcmp(m.payload, "0") && m.retain);
    publish(pub, "site1/sensors/t2", "while down", 1, 4);
    open_bridge();
    handshake(true);
    TM_CHECK(next_publish(remote, &m));
    TM_CHECK(!strcmp(m.topic, "cloud/site1/sensors/t2") && !strcmp(m.payload, "while down"));
    TM_CHECK(next_publish(watch, &m));
    TM_CHECK(!strcmp(m.payload, "1"));
    stop();
}

/* QoS 1 in flight is resent with DUP after a reconnect; an incoming QoS 2
 * whose PUBREL was lost is not routed twice. */
static void test_qos_across_reconnects(void)
{
    char err[512];
    TM_CHECK_EQ(load(BRIDGE_CONF, err, sizeof err), 0);
    start();
    TM_CHECK_EQ(tm_broker_bridges_start(B, now, err, sizeof err), 0);
    tc *local = connected(TM_V311, "local-sub", NULL);
    subscribe(local, "local/cmd/#", 2);
    tc *pub = connected(TM_V311, "local-pub", NULL);
    open_bridge();
    handshake(false);
    publish(pub, "site1/sensors/a", "one", 1, 1);
    pubm m;
    TM_CHECK(next_publish(remote, &m));
    uint16_t pid = m.pid;
    remote_publish("remote/cmd/x", "once", 2, 33, false);
    pkt p;
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBREC);
    TM_CHECK(next_publish(local, &m));
    ack(local, TM_PUBREC, m.pid);
    drop(remote);   /* neither the PUBACK nor the PUBREL arrived */
    open_bridge();
    handshake(true);
    TM_CHECK(next_publish(remote, &m));
    TM_CHECK(m.dup && m.pid == pid && !strcmp(m.payload, "one"));
    remote_publish("remote/cmd/x", "once", 2, 33, true);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PUBREC);
    int copies = 0;
    while (next_pkt(local, &p))
        copies += p.type == TM_PUBLISH;
    TM_CHECK_EQ(copies, 0);
    stop();
}

static void test_keepalive_and_refusal(void)
{
    char err[512];
    TM_CHECK_EQ(load(BRIDGE_CONF, err, sizeof err), 0);
    start();
    TM_CHECK_EQ(tm_broker_bridges_start(B, now, err, sizeof err), 0);
    open_bridge();
    handshake(false);
    advance(10000);
    pkt p;
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PINGREQ);
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_simple(&b, TM_PINGRESP);
    send_bytes(remote, &b);
    advance(10000);
    TM_CHECK_EQ(next_pkt(remote, &p), TM_PINGREQ);
    advance(10500);   /* no PINGRESP this time */
    TM_CHECK(remote->closed);
    TM_CHECK(tm_broker_bridge_state(B, 0) == TM_BRIDGE_DOWN);
    /* refused by the remote broker: closed, down */
    open_bridge();
    TM_CHECK_EQ(next_pkt(remote, &p), TM_CONNECT);
    send_pkt_connack(remote, false, 5);
    TM_CHECK(remote->closed);
    TM_CHECK(tm_broker_bridge_state(B, 0) == TM_BRIDGE_DOWN);
    /* a client cannot take the bridge's local session */
    tc *thief = open_conn(TM_V311, NULL);
    TM_CHECK_EQ(do_connect(thief, "local.edge1", &(conn_opts){.clean = false}, NULL), 2);
    tm_buf_free(&b);
    stop();
}

/* This broker as the remote of a 3.1.1 bridge that says so (try_private):
 * what it publishes does not come back to it, retain flags as published;
 * its notification topic is accepted, other $-topics are not. */
static void test_remote_side_of_a_bridge(void)
{
    start();
    tc *br = open_conn(TM_V311, NULL);
    tm_connect cn;
    memset(&cn, 0, sizeof cn);
    cn.version = TM_V311;
    cn.bridge = true;
    cn.keep_alive = 60;
    cn.client_id = S("other.bridge");
    cn.will = true;
    cn.will_retain = true;
    cn.will_qos = 1;
    cn.will_topic = S("$SYS/broker/connection/other.bridge/state");
    cn.will_payload = S("0");
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connect(&b, &cn);
    send_bytes(br, &b);
    pkt p;
    TM_CHECK_EQ(next_pkt(br, &p), TM_CONNACK);
    subscribe(br, "shared/#", 1);
    tc *other = connected(TM_V311, "plain", NULL);
    subscribe(other, "shared/#", 1);
    publish(br, "shared/x", "from the bridge", 1, 1);
    TM_CHECK_EQ(next_pkt(br, &p), TM_PUBACK);
    TM_CHECK_EQ(next_pkt(br, &p), 0);   /* not echoed */
    pubm m;
    TM_CHECK(next_publish(other, &m));
    ack(other, TM_PUBACK, m.pid);
    /* retain as published: a live retained message keeps its flag */
    publish_ex(other, "shared/r", "r", 1, 5, false, true);
    TM_CHECK(next_publish(br, &m));
    TM_CHECK(m.retain);
    /* notifications: the one $-topic a client may publish to */
    publish(br, "$SYS/broker/connection/other.bridge/state", "1", 1, 2);
    TM_CHECK_EQ(next_pkt(br, &p), TM_PUBACK);
    tc *w = open_conn(TM_V5, NULL);
    TM_CHECK_EQ(do_connect(w, "willer", &(conn_opts){.clean = true, .will_topic = "$SYS/x",
                                                     .will_payload = "forged"}, NULL),
                TM_RC_NOT_AUTHORIZED);
    tm_buf_free(&b);
    stop();
}

static void done(void) { tm_config_free(&cfg); }

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_config), TM_CASE(test_mapping_and_queue),
             TM_CASE(test_qos_across_reconnects), TM_CASE(test_keepalive_and_refusal),
             TM_CASE(test_remote_side_of_a_bridge), TM_CASE(done))
