/*
 * test_client.c — the client state machine against a scripted fake server.
 *
 * The client runs on a tm_loop over one end of a socketpair; the test plays
 * the server on the other end with packets built by the codec, and checks the
 * bytes the client sends and the callbacks it makes. No broker, no network.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "tm_test.h"

/* ---- recorded callbacks --------------------------------------------------- */

static struct {
    int connects, messages, done, subacks, unsubacks, disconnects;
    uint8_t connack_code, disc_reason;
    bool session_present;
    uint16_t done_pids[64];
    uint8_t done_reasons[64];
    char last_topic[128], last_payload[256];
    uint8_t last_qos;
    bool last_retain, last_dup;
    uint8_t codes[16];
    uint32_t ncodes;
    char disc_error[400];
    bool free_on_message;
    uint32_t n_user;
} rec;

static void cb_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *p)
{
    rec.connects++;
    rec.connack_code = code;
    rec.session_present = sp;
}

static void cb_message(tm_client *c, void *ud, const tm_client_msg *m)
{
    rec.messages++;
    snprintf(rec.last_topic, sizeof rec.last_topic, "%.*s", (int)m->topic.len,
             (const char *)m->topic.p);
    snprintf(rec.last_payload, sizeof rec.last_payload, "%.*s", (int)m->payload.len,
             (const char *)m->payload.p);
    rec.last_qos = m->qos;
    rec.last_retain = m->retain;
    rec.last_dup = m->dup;
    rec.n_user = m->props->n_user;
    if (rec.free_on_message)
        tm_client_free(c);
}

static void cb_done(tm_client *c, void *ud, uint16_t pid, uint8_t reason)
{
    if (rec.done < 64) {
        rec.done_pids[rec.done] = pid;
        rec.done_reasons[rec.done] = reason;
    }
    rec.done++;
}

static void cb_suback(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                      const tm_props *p)
{
    rec.subacks++;
    rec.ncodes = n;
    memcpy(rec.codes, codes, n < 16 ? n : 16);
}

static void cb_unsuback(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                        const tm_props *p)
{
    rec.unsubacks++;
}

static void cb_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    rec.disconnects++;
    rec.disc_reason = reason;
    snprintf(rec.disc_error, sizeof rec.disc_error, "%s", error ? error : "");
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct {
    tm_loop *loop;
    tm_client *c;
    int peer;
    uint8_t version;
    uint8_t buf[1 << 16];
    size_t len;
    tm_frame f;           /* last packet read by the peer */
    const uint8_t *body;
} fx;

static void opts_default(tm_client_opts *o, uint8_t version)
{
    tm_client_opts_init(o);
    o->version = version;
    o->client_id = "cid";
    o->keep_alive = 30;
    o->cbs.on_connect = cb_connect;
    o->cbs.on_message = cb_message;
    o->cbs.on_publish_done = cb_done;
    o->cbs.on_subscribe = cb_suback;
    o->cbs.on_unsubscribe = cb_unsuback;
    o->cbs.on_disconnect = cb_disconnect;
}

static bool fx_start(fx *x, const tm_client_opts *o)
{
    memset(&rec, 0, sizeof rec);
    x->len = 0;
    x->version = o->version ? o->version : 4;
    x->loop = tm_loop_new();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return false;
    char err[256];
    x->c = tm_client_new(x->loop, o, err, sizeof err);
    if (!x->c) {
        fprintf(stderr, "tm_client_new: %s\n", err);
        return false;
    }
    x->peer = sv[1];
    return tm_client_connect_fd(x->c, sv[0]) == 0;
}

static void fx_end(fx *x)
{
    if (x->c)
        tm_client_free(x->c);
    close(x->peer);
    tm_loop_free(x->loop);
}

/* Let the client run: a few non-blocking loop iterations. */
static void pump(fx *x)
{
    /* socketpair data is ready at once: stop at the first idle iteration. */
    for (int i = 0; i < 20; i++)
        if (tm_loop_run_once(x->loop, 2) <= 0)
            break;
}

/* Read one whole packet sent by the client. false on timeout/EOF. */
static bool peer_read(fx *x)
{
    /* Drop the previous packet. */
    if (x->body) {
        size_t used = x->f.header_len + x->f.remaining;
        memmove(x->buf, x->buf + used, x->len - used);
        x->len -= used;
        x->body = NULL;
    }
    for (int tries = 0; tries < 100; tries++) {
        tm_frame f;
        tm_rc rc = tm_frame_parse(x->buf, x->len, 0, &f);
        if (rc == TM_RC_SUCCESS && x->len >= f.header_len + f.remaining) {
            x->f = f;
            x->body = x->buf + f.header_len;
            return true;
        }
        if (rc != TM_RC_SUCCESS && rc != TM_RC_NEED_MORE)
            return false;
        pump(x);
        struct pollfd p = {.fd = x->peer, .events = POLLIN};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = read(x->peer, x->buf + x->len, sizeof x->buf - x->len);
            if (n <= 0)
                return false;
            x->len += (size_t)n;
        }
    }
    return false;
}

/* Is there nothing more from the client right now? */
static bool peer_quiet(fx *x)
{
    pump(x);
    if (x->body && x->len > x->f.header_len + x->f.remaining)
        return false;
    if (!x->body && x->len)
        return false;
    struct pollfd p = {.fd = x->peer, .events = POLLIN};
    return poll(&p, 1, 20) == 0;
}

static void peer_send(fx *x, const tm_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(x->peer, b->data + off, b->len - off);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
    pump(x);
}

static void peer_send_raw(fx *x, const void *p, size_t n)
{
    tm_buf b = {(uint8_t *)p, n, n, false};
    peer_send(x, &b);
}

static void peer_connack(fx *x, uint8_t code, const tm_props *props)
{
    tm_connack ca;
    memset(&ca, 0, sizeof ca);
    ca.code = code;
    if (props)
        ca.props = *props;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connack(&b, x->version, &ca);
    peer_send(x, &b);
    tm_buf_free(&b);
}

static void peer_ack(fx *x, uint8_t type, uint16_t pid, uint8_t reason)
{
    tm_ack a;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.packet_id = pid;
    a.reason = reason;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_ack(&b, x->version, &a);
    peer_send(x, &b);
    tm_buf_free(&b);
}

static void peer_publish(fx *x, const char *topic, const char *payload, uint8_t qos,
                         uint16_t pid, bool dup)
{
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.qos = qos;
    p.dup = dup;
    p.topic.p = (const uint8_t *)topic;
    p.topic.len = (uint32_t)strlen(topic);
    p.payload.p = (const uint8_t *)payload;
    p.payload.len = (uint32_t)strlen(payload);
    p.packet_id = pid;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, x->version, &p);
    peer_send(x, &b);
    tm_buf_free(&b);
}

/* Start, read CONNECT, answer CONNACK. */
static bool fx_connected(fx *x, const tm_client_opts *o, const tm_props *connack_props)
{
    if (!fx_start(x, o) || !peer_read(x) || x->f.type != TM_CONNECT)
        return false;
    peer_connack(x, 0, connack_props);
    return tm_client_get_state(x->c) == TM_CS_CONNECTED && rec.connects == 1;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_connect_v311(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    o.username = "user";
    o.password = "pw";
    o.will_topic = "will/t";
    o.will_payload = "bye";
    o.will_payload_len = 3;
    o.will_qos = 1;
    o.will_retain = true;
    TM_CHECK(fx_start(&x, &o));
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_MQTT_CONNECTING);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_CONNECT);
    tm_connect cn;
    TM_CHECK_EQ(tm_decode_connect(x.body, x.f.remaining, &cn), TM_RC_SUCCESS);
    TM_CHECK_EQ(cn.version, 4);
    TM_CHECK(cn.clean_start);
    TM_CHECK_EQ(cn.keep_alive, 30);
    TM_CHECK(cn.client_id.len == 3 && !memcmp(cn.client_id.p, "cid", 3));
    TM_CHECK(cn.username.len == 4 && !memcmp(cn.username.p, "user", 4));
    TM_CHECK(cn.password.len == 2 && !memcmp(cn.password.p, "pw", 2));
    TM_CHECK(cn.will && cn.will_qos == 1 && cn.will_retain);
    TM_CHECK(cn.will_topic.len == 6 && !memcmp(cn.will_topic.p, "will/t", 6));
    TM_CHECK(cn.will_payload.len == 3 && !memcmp(cn.will_payload.p, "bye", 3));
    /* Exact bytes of the fixed header + variable header start. */
    static const uint8_t head[] = {0x10, 0x00, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xEE, 0x00, 30};
    TM_CHECK_EQ(x.buf[0], head[0]);
    TM_CHECK_MEM(x.body, head + 2, sizeof head - 2);
    TM_CHECK(peer_quiet(&x));   /* nothing before CONNACK */
    peer_connack(&x, 0, NULL);
    TM_CHECK_EQ(rec.connects, 1);
    TM_CHECK_EQ(rec.connack_code, 0);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CONNECTED);
    TM_CHECK_EQ(tm_client_server(x.c)->receive_max, 65535);
    fx_end(&x);
}

static void test_connect_refused(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_start(&x, &o));
    TM_CHECK(peer_read(&x));
    peer_connack(&x, TM_V3_NOT_AUTHORIZED, NULL);
    TM_CHECK_EQ(rec.connects, 1);
    TM_CHECK_EQ(rec.connack_code, 5);
    TM_CHECK_EQ(rec.disconnects, 1);
    TM_CHECK(strstr(rec.disc_error, "not authorized") != NULL);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
    TM_CHECK_EQ(tm_client_publish(x.c, "t", "x", 1, 0, false, NULL), -1);
    fx_end(&x);
}

static void test_connect_v5_props(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    o.client_id = "";
    o.session_expiry = 3600;
    o.receive_max = 7;
    o.max_packet_size = 100000;
    tm_buf ub;
    tm_buf_init(&ub);
    tm_user_prop_add(&ub, "k1", "v1");
    tm_user_prop_add(&ub, "k2", "v2");
    tm_props cp;
    memset(&cp, 0, sizeof cp);
    tm_props_set_user(&cp, &ub);
    o.connect_props = &cp;
    TM_CHECK(fx_start(&x, &o));
    tm_buf_free(&ub);   /* the CONNECT was encoded in tm_client_new */
    TM_CHECK(peer_read(&x));
    tm_connect cn;
    TM_CHECK_EQ(tm_decode_connect(x.body, x.f.remaining, &cn), TM_RC_SUCCESS);
    TM_CHECK_EQ(cn.version, 5);
    TM_CHECK_EQ(cn.client_id.len, 0);
    TM_CHECK_EQ(cn.props.session_expiry, 3600);
    TM_CHECK_EQ(cn.props.receive_max, 7);
    TM_CHECK_EQ(cn.props.max_packet_size, 100000);
    TM_CHECK_EQ(cn.props.n_user, 2);
    tm_props ap;
    memset(&ap, 0, sizeof ap);
    ap.present = TM_PBIT(TM_P_ASSIGNED_CLIENT_ID) | TM_PBIT(TM_P_RECEIVE_MAX) |
                 TM_PBIT(TM_P_SERVER_KEEP_ALIVE) | TM_PBIT(TM_P_MAX_QOS) |
                 TM_PBIT(TM_P_MAX_PACKET_SIZE);
    ap.assigned_client_id.p = (const uint8_t *)"auto-123";
    ap.assigned_client_id.len = 8;
    ap.receive_max = 3;
    ap.server_keep_alive = 10;
    ap.max_qos = 1;
    ap.max_packet_size = 64;
    peer_connack(&x, 0, &ap);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CONNECTED);
    const tm_client_server_info *si = tm_client_server(x.c);
    TM_CHECK(!strcmp(si->assigned_client_id, "auto-123"));
    TM_CHECK_EQ(si->receive_max, 3);
    TM_CHECK_EQ(si->keep_alive, 10);
    TM_CHECK_EQ(si->max_qos, 1);
    /* Honoured: QoS above the maximum and packets above the size are refused. */
    TM_CHECK_EQ(tm_client_publish(x.c, "t", "x", 1, 2, false, NULL), -1);
    TM_CHECK(strstr(tm_client_error(x.c), "QoS") != NULL);
    char big[100] = {0};
    TM_CHECK_EQ(tm_client_publish(x.c, "t", big, sizeof big, 0, false, NULL), -1);
    TM_CHECK(strstr(tm_client_error(x.c), "maximum packet size") != NULL);
    TM_CHECK_EQ(tm_client_publish(x.c, "t", "x", 1, 1, false, NULL), 1);
    fx_end(&x);
}

static void test_qos1_out(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_connected(&x, &o, NULL));
    int pid = tm_client_publish(x.c, "a/b", "hello", 5, 1, true, NULL);
    TM_CHECK(pid > 0);
    TM_CHECK_EQ(tm_client_inflight(x.c), 1);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBLISH);
    tm_publish p;
    TM_CHECK_EQ(tm_decode_publish(x.body, x.f.remaining, x.f.flags, 4, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.qos, 1);
    TM_CHECK(p.retain);
    TM_CHECK_EQ(p.packet_id, pid);
    TM_CHECK(p.payload.len == 5 && !memcmp(p.payload.p, "hello", 5));
    TM_CHECK_EQ(rec.done, 0);
    peer_ack(&x, TM_PUBACK, (uint16_t)pid, 0);
    TM_CHECK_EQ(rec.done, 1);
    TM_CHECK_EQ(rec.done_pids[0], pid);
    TM_CHECK_EQ(tm_client_inflight(x.c), 0);
    /* A duplicate PUBACK is ignored. */
    peer_ack(&x, TM_PUBACK, (uint16_t)pid, 0);
    TM_CHECK_EQ(rec.done, 1);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CONNECTED);
    fx_end(&x);
}

static void test_qos2_out(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    TM_CHECK(fx_connected(&x, &o, NULL));
    int pid = tm_client_publish(x.c, "q2", "x", 1, 2, false, NULL);
    TM_CHECK(pid > 0);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBLISH);
    TM_CHECK_EQ((x.f.flags >> 1) & 3, 2);
    peer_ack(&x, TM_PUBREC, (uint16_t)pid, 0);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBREL);
    TM_CHECK_EQ(x.f.flags, 2);
    tm_ack a;
    TM_CHECK_EQ(tm_decode_ack(TM_PUBREL, x.body, x.f.remaining, x.f.flags, 5, &a), TM_RC_SUCCESS);
    TM_CHECK_EQ(a.packet_id, pid);
    TM_CHECK_EQ(rec.done, 0);
    peer_ack(&x, TM_PUBCOMP, (uint16_t)pid, 0);
    TM_CHECK_EQ(rec.done, 1);
    TM_CHECK_EQ(tm_client_inflight(x.c), 0);
    /* A refused QoS 2 (PUBREC with an error) ends the flow without PUBREL. */
    pid = tm_client_publish(x.c, "q2", "x", 1, 2, false, NULL);
    TM_CHECK(peer_read(&x));
    peer_ack(&x, TM_PUBREC, (uint16_t)pid, TM_RC_NOT_AUTHORIZED);
    TM_CHECK_EQ(rec.done, 2);
    TM_CHECK_EQ(rec.done_reasons[1], TM_RC_NOT_AUTHORIZED);
    TM_CHECK(peer_quiet(&x));
    fx_end(&x);
}

static void test_qos_in(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_connected(&x, &o, NULL));
    peer_publish(&x, "in/0", "zero", 0, 0, false);
    TM_CHECK_EQ(rec.messages, 1);
    TM_CHECK(!strcmp(rec.last_topic, "in/0") && !strcmp(rec.last_payload, "zero"));
    TM_CHECK(peer_quiet(&x));   /* no ack for QoS 0 */

    peer_publish(&x, "in/1", "one", 1, 77, false);
    TM_CHECK_EQ(rec.messages, 2);
    TM_CHECK_EQ(rec.last_qos, 1);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBACK);
    TM_CHECK(x.f.remaining == 2 && x.body[0] == 0 && x.body[1] == 77);

    peer_publish(&x, "in/2", "two", 2, 78, false);
    TM_CHECK_EQ(rec.messages, 3);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBREC);
    TM_CHECK(x.body[1] == 78);
    /* Retransmission before PUBREL: acknowledged again, not delivered again. */
    peer_publish(&x, "in/2", "two", 2, 78, true);
    TM_CHECK_EQ(rec.messages, 3);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBREC);
    peer_ack(&x, TM_PUBREL, 78, 0);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBCOMP);
    TM_CHECK(x.body[1] == 78);
    /* After PUBCOMP the id is free: a new message with it is delivered. */
    peer_publish(&x, "in/2", "again", 2, 78, false);
    TM_CHECK_EQ(rec.messages, 4);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBREC);
    fx_end(&x);
}

static void test_receive_max_window(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    tm_props ap;
    memset(&ap, 0, sizeof ap);
    ap.present = TM_PBIT(TM_P_RECEIVE_MAX);
    ap.receive_max = 2;
    TM_CHECK(fx_connected(&x, &o, &ap));
    int pids[5];
    for (int i = 0; i < 5; i++) {
        char pl[8];
        snprintf(pl, sizeof pl, "m%d", i);
        pids[i] = tm_client_publish(x.c, "w", pl, strlen(pl), 1, false, NULL);
        TM_CHECK(pids[i] > 0);
    }
    TM_CHECK_EQ(tm_client_inflight(x.c), 2);
    TM_CHECK_EQ(tm_client_queued(x.c), 3);
    TM_CHECK(peer_read(&x));
    TM_CHECK(peer_read(&x));
    TM_CHECK(peer_quiet(&x));   /* the third waits for a slot */
    peer_ack(&x, TM_PUBACK, (uint16_t)pids[0], 0);
    TM_CHECK(peer_read(&x));
    tm_publish p;
    TM_CHECK_EQ(tm_decode_publish(x.body, x.f.remaining, x.f.flags, 5, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.packet_id, pids[2]);
    TM_CHECK(p.payload.len == 2 && !memcmp(p.payload.p, "m2", 2));
    TM_CHECK(peer_quiet(&x));
    for (int i = 1; i < 5; i++) {
        peer_ack(&x, TM_PUBACK, (uint16_t)pids[i], 0);
        if (i + 2 < 5)
            TM_CHECK(peer_read(&x));
    }
    TM_CHECK_EQ(rec.done, 5);
    TM_CHECK_EQ(tm_client_inflight(x.c), 0);
    TM_CHECK_EQ(tm_client_queued(x.c), 0);
    fx_end(&x);
}

static void test_keepalive(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    o.keep_alive = 1;
    TM_CHECK(fx_connected(&x, &o, NULL));
    uint64_t now = tm_client_now_ms();
    int t = tm_client_tick(x.c, now);
    TM_CHECK(t >= 0 && t <= 1000);
    TM_CHECK(peer_quiet(&x));
    tm_client_tick(x.c, now + 1100);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PINGREQ);
    TM_CHECK_EQ(x.f.remaining, 0);
    static const uint8_t pingresp[] = {0xD0, 0x00};
    peer_send_raw(&x, pingresp, sizeof pingresp);
    tm_client_tick(x.c, now + 1500);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CONNECTED);
    /* Next ping, left unanswered: the client gives up after the keep alive. */
    tm_client_tick(x.c, now + 3000);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PINGREQ);
    tm_client_tick(x.c, now + 4100);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
    TM_CHECK_EQ(rec.disconnects, 1);
    TM_CHECK(strstr(rec.disc_error, "PINGRESP") != NULL);
    fx_end(&x);
}

static void test_subscribe(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    TM_CHECK(fx_connected(&x, &o, NULL));
    const char *filters[] = {"a/+", "b/#"};
    tm_subopts so[2] = {{.qos = 1}, {.qos = 2, .no_local = true, .retain_handling = 2}};
    tm_props sp;
    memset(&sp, 0, sizeof sp);
    sp.present = TM_PBIT(TM_P_SUB_ID);
    sp.sub_ids[0] = 42;
    sp.n_sub_ids = 1;
    int pid = tm_client_subscribe(x.c, filters, so, 2, &sp);
    TM_CHECK(pid > 0);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_SUBSCRIBE);
    tm_subscribe s;
    TM_CHECK_EQ(tm_decode_subscribe(x.body, x.f.remaining, x.f.flags, 5, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(s.count, 2);
    TM_CHECK_EQ(s.packet_id, pid);
    TM_CHECK_EQ(s.props.sub_ids[0], 42);
    uint32_t pos = 0;
    tm_str f;
    tm_subopts got;
    TM_CHECK(tm_sub_next(&s, &pos, &f, &got));
    TM_CHECK(f.len == 3 && !memcmp(f.p, "a/+", 3) && got.qos == 1);
    TM_CHECK(tm_sub_next(&s, &pos, &f, &got));
    TM_CHECK(got.qos == 2 && got.no_local && got.retain_handling == 2);
    tm_buf b;
    tm_buf_init(&b);
    uint8_t codes[2] = {1, TM_RC_NOT_AUTHORIZED};
    tm_encode_suback(&b, 5, TM_SUBACK, (uint16_t)pid, NULL, codes, 2);
    peer_send(&x, &b);
    b.len = 0;
    TM_CHECK_EQ(rec.subacks, 1);
    TM_CHECK_EQ(rec.ncodes, 2);
    TM_CHECK(rec.codes[0] == 1 && rec.codes[1] == TM_RC_NOT_AUTHORIZED);
    /* Unsubscribe. */
    pid = tm_client_unsubscribe(x.c, filters, 1, NULL);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_UNSUBSCRIBE);
    uint8_t ucode = 0;
    tm_encode_suback(&b, 5, TM_UNSUBACK, (uint16_t)pid, NULL, &ucode, 1);
    peer_send(&x, &b);
    tm_buf_free(&b);
    TM_CHECK_EQ(rec.unsubacks, 1);
    /* Invalid filters are refused locally. */
    const char *bad[] = {"a/#/b"};
    TM_CHECK_EQ(tm_client_subscribe(x.c, bad, so, 1, NULL), -1);
    fx_end(&x);
}

static void test_server_disconnect_v5(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    TM_CHECK(fx_connected(&x, &o, NULL));
    tm_disconnect d;
    memset(&d, 0, sizeof d);
    d.reason = TM_RC_SERVER_SHUTTING_DOWN;
    d.props.present = TM_PBIT(TM_P_REASON_STRING);
    d.props.reason_string.p = (const uint8_t *)"maintenance";
    d.props.reason_string.len = 11;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_disconnect(&b, 5, &d);
    peer_send(&x, &b);
    tm_buf_free(&b);
    TM_CHECK_EQ(rec.disconnects, 1);
    TM_CHECK_EQ(rec.disc_reason, TM_RC_SERVER_SHUTTING_DOWN);
    TM_CHECK(strstr(rec.disc_error, "maintenance") != NULL);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
    fx_end(&x);
}

static void test_client_disconnect(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    TM_CHECK(fx_connected(&x, &o, NULL));
    tm_props dp;
    memset(&dp, 0, sizeof dp);
    dp.present = TM_PBIT(TM_P_SESSION_EXPIRY);
    dp.session_expiry = 60;
    TM_CHECK_EQ(tm_client_disconnect(x.c, TM_RC_DISCONNECT_WITH_WILL, &dp), 0);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_DISCONNECT);
    tm_disconnect d;
    TM_CHECK_EQ(tm_decode_disconnect(x.body, x.f.remaining, 5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.reason, TM_RC_DISCONNECT_WITH_WILL);
    TM_CHECK_EQ(d.props.session_expiry, 60);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
    TM_CHECK_EQ(rec.disconnects, 1);
    TM_CHECK(rec.disc_error[0] == 0);   /* normal: no error */
    fx_end(&x);
}

/* Each malformed or misplaced packet closes the connection with a reason. */
static void test_malformed(void)
{
    static const struct {
        const char *what;
        uint8_t bytes[12];
        size_t len;
        bool before_connack;
    } cases[] = {
        {"bad VBI", {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 6, false},
        {"type 0", {0x00, 0x00}, 2, false},
        {"PUBLISH QoS 3", {0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, 7, false},
        {"PUBLISH topic overflows", {0x30, 0x03, 0x00, 0x09, 'a'}, 5, false},
        {"PUBLISH wildcard topic", {0x30, 0x04, 0x00, 0x01, '#', 'x'}, 6, false},
        {"SUBACK unknown id", {0x90, 0x03, 0x12, 0x34, 0x00}, 5, false},
        {"second CONNACK", {0x20, 0x02, 0x00, 0x00}, 4, false},
        {"server sends CONNECT", {0x10, 0x00}, 2, false},
        {"server sends SUBSCRIBE", {0x82, 0x00}, 2, false},
        {"PUBREL bad flags", {0x60, 0x02, 0x00, 0x01}, 4, false},
        {"PINGRESP with body", {0xD0, 0x01, 0x00}, 3, false},
        {"PUBLISH before CONNACK", {0x30, 0x03, 0x00, 0x01, 'a'}, 5, true},
        {"short CONNACK", {0x20, 0x01, 0x00}, 3, true},
        {"v3 DISCONNECT from server", {0xE0, 0x00}, 2, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx x = {0};
        tm_client_opts o;
        opts_default(&o, TM_V311);
        if (cases[i].before_connack) {
            TM_CHECK(fx_start(&x, &o));
            TM_CHECK(peer_read(&x));
        } else {
            TM_CHECK(fx_connected(&x, &o, NULL));
        }
        peer_send_raw(&x, cases[i].bytes, cases[i].len);
        if (tm_client_get_state(x.c) != TM_CS_CLOSED || rec.disconnects != 1 ||
            !rec.disc_error[0])
            fprintf(stderr, "malformed case '%s' not rejected\n", cases[i].what);
        TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
        TM_CHECK_EQ(rec.disconnects, 1);
        TM_CHECK(rec.disc_error[0] != 0);
        TM_CHECK_EQ(rec.messages, 0);
        fx_end(&x);
    }
}

/* Random garbage after the CONNACK must never crash (run under ASan). */
static void test_garbage(void)
{
    srand(12345);
    for (int round = 0; round < 200; round++) {
        fx x = {0};
        tm_client_opts o;
        opts_default(&o, round % 2 ? TM_V5 : TM_V311);
        if (!fx_connected(&x, &o, NULL)) {
            TM_CHECK(0);
            fx_end(&x);
            continue;
        }
        uint8_t junk[64];
        size_t n = 1 + (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        /* Bias toward plausible headers so decoders get exercised. */
        junk[0] = (uint8_t)((1 + rand() % 15) << 4 | (rand() % 16));
        if (n > 1)
            junk[1] = (uint8_t)(n - 2);
        peer_send_raw(&x, junk, n);
        tm_client_publish(x.c, "still/alive", "?", 1, 1, false, NULL);
        pump(&x);
        fx_end(&x);
    }
    TM_CHECK(1);
}

static void test_free_in_callback(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_connected(&x, &o, NULL));
    rec.free_on_message = true;
    /* Two messages in one read: the second must not be touched after free. */
    tm_buf b;
    tm_buf_init(&b);
    for (int i = 0; i < 2; i++) {
        tm_publish p;
        memset(&p, 0, sizeof p);
        p.qos = 1;
        p.packet_id = (uint16_t)(i + 1);
        p.topic.p = (const uint8_t *)"t";
        p.topic.len = 1;
        tm_encode_publish(&b, 4, &p);
    }
    peer_send(&x, &b);
    tm_buf_free(&b);
    TM_CHECK_EQ(rec.messages, 1);
    x.c = NULL;   /* freed by the callback */
    fx_end(&x);
}

static void test_batching(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_connected(&x, &o, NULL));
    for (int i = 0; i < 50; i++)
        tm_client_publish(x.c, "burst", "0123456789", 10, 0, false, NULL);
    /* Nothing written yet: the bytes wait for the loop... */
    TM_CHECK(tm_client_out_pending(x.c) > 0);
    /* ...and leave together in one write during one iteration. */
    tm_loop_run_once(x.loop, 100);
    TM_CHECK_EQ(tm_client_out_pending(x.c), 0);
    uint8_t buf[4096];
    ssize_t n = read(x.peer, buf, sizeof buf);
    TM_CHECK_EQ(n, 50 * 19);   /* 2 header + 7 topic + 10 payload */
    fx_end(&x);
}

static void test_topic_alias_in(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V5);
    o.topic_alias_max = 4;
    TM_CHECK(fx_connected(&x, &o, NULL));
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.topic.p = (const uint8_t *)"long/topic/name";
    p.topic.len = 15;
    p.props.present = TM_PBIT(TM_P_TOPIC_ALIAS);
    p.props.topic_alias = 3;
    p.payload.p = (const uint8_t *)"1";
    p.payload.len = 1;
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, 5, &p);
    p.topic.len = 0;
    p.topic.p = (const uint8_t *)"";
    tm_encode_publish(&b, 5, &p);
    peer_send(&x, &b);
    TM_CHECK_EQ(rec.messages, 2);
    TM_CHECK(!strcmp(rec.last_topic, "long/topic/name"));
    b.len = 0;
    p.props.topic_alias = 5;   /* above our maximum */
    tm_encode_publish(&b, 5, &p);
    peer_send(&x, &b);
    tm_buf_free(&b);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CLOSED);
    TM_CHECK_EQ(rec.disc_reason, TM_RC_TOPIC_ALIAS_INVALID);
    fx_end(&x);
}

/* Packets cut at every byte boundary, and one larger than the read chunk,
 * reassemble correctly (the partial-packet path through c->in). */
static void test_split_packets(void)
{
    fx x = {0};
    tm_client_opts o;
    opts_default(&o, TM_V311);
    TM_CHECK(fx_connected(&x, &o, NULL));
    tm_buf b;
    tm_buf_init(&b);
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.topic.p = (const uint8_t *)"split";
    p.topic.len = 5;
    p.payload.p = (const uint8_t *)"abcdef";
    p.payload.len = 6;
    tm_encode_publish(&b, 4, &p);
    tm_encode_publish(&b, 4, &p);
    for (size_t i = 0; i < b.len; i++)
        peer_send_raw(&x, b.data + i, 1);
    TM_CHECK_EQ(rec.messages, 2);
    TM_CHECK(!strcmp(rec.last_payload, "abcdef"));
    /* 200 KB payload, written in 3 uneven pieces. */
    size_t big = 200000;
    uint8_t *pl = malloc(big);
    for (size_t i = 0; i < big; i++)
        pl[i] = (uint8_t)('a' + i % 26);
    p.payload.p = pl;
    p.payload.len = (uint32_t)big;
    p.qos = 1;
    p.packet_id = 9;
    b.len = 0;
    tm_encode_publish(&b, 4, &p);
    tm_buf part = {b.data, 3, 3, false};
    peer_send(&x, &part);
    part.data = b.data + 3;
    part.len = part.cap = 70000;
    peer_send(&x, &part);
    part.data = b.data + 70003;
    part.len = part.cap = b.len - 70003;
    peer_send(&x, &part);
    for (int i = 0; i < 20 && rec.messages < 3; i++)
        pump(&x);
    TM_CHECK_EQ(rec.messages, 3);
    TM_CHECK(peer_read(&x));
    TM_CHECK_EQ(x.f.type, TM_PUBACK);
    TM_CHECK_EQ(tm_client_get_state(x.c), TM_CS_CONNECTED);
    free(pl);
    tm_buf_free(&b);
    fx_end(&x);
}

TM_TEST_MAIN(TM_CASE(test_connect_v311), TM_CASE(test_connect_refused),
             TM_CASE(test_connect_v5_props), TM_CASE(test_qos1_out), TM_CASE(test_qos2_out),
             TM_CASE(test_qos_in), TM_CASE(test_receive_max_window), TM_CASE(test_keepalive),
             TM_CASE(test_subscribe), TM_CASE(test_server_disconnect_v5),
             TM_CASE(test_client_disconnect), TM_CASE(test_malformed), TM_CASE(test_garbage),
             TM_CASE(test_free_in_callback), TM_CASE(test_batching),
             TM_CASE(test_topic_alias_in), TM_CASE(test_split_packets))
