/*
 * bridge.c — the engine's side of bridges (docs/bridges.md): this broker as a
 * client of another one, with Mosquitto's configuration and meaning.
 *
 * A bridge is a local session (its local_clientid) plus, while the remote
 * broker is reachable, one outgoing connection in "bridge mode". The session
 * exists from start-up (tm_broker_bridges_start) and is subscribed, with
 * no-local and retain-as-published, to the local side of every `out`/`both`
 * topic: what is published locally while the bridge is down is queued for it
 * like for any offline persistent client (and is durable with persistence).
 * The connection is a tm_conn whose roles are reversed at the edges only: it
 * sends CONNECT, SUBSCRIBE and PINGREQ and reads CONNACK, SUBACK and
 * PINGRESP; PUBLISH and the QoS acknowledgements flow exactly as with a
 * client, so QoS 1 and 2 state (in-flight deliveries, incoming QoS 2 packet
 * ids) lives in the session and continues across reconnections.
 *
 * Topics are mapped at the edges: a delivery to the remote broker leaves
 * under the remote prefix (tm_send_publish), a PUBLISH from it arrives under
 * the local prefix (tm_handle_publish), by the first configured topic that
 * matches. Loops: the local session's subscriptions are no-local, so what the
 * bridge brought in never goes back out on it; on the remote broker, MQTT 5
 * subscriptions are no-local too, and 3.1/3.1.1 bridges announce themselves
 * (try_private: protocol level | 0x80) so that a Mosquitto or tmqtt remote
 * applies the same rule.
 *
 * The driver (service.c) owns the transport: it connects, reconnects with
 * back-off and calls tm_broker_open_bridge once TCP (and TLS, with attested
 * TLS when configured) is up; everything from CONNECT on is here.
 *
 * Invariants: a bridge has at most one connection (br->conn); its session is
 * never attached to any other connection (CONNECT with its client id is
 * refused) and never expires.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

typedef struct tm_bridge {
    tm_listener_cfg lcfg;        /* what the engine reads from a "listener"; first */
    const tm_bridge_cfg *cfg;
    tm_session *sess;
    tm_conn *conn;               /* NULL while down */
    char **local_f, **remote_f;  /* per topic: prefix + pattern */
    char *notify;                /* the notification topic */
    int64_t next_ping_ms;
    int64_t ping_sent_ms;        /* 0: no PINGREQ outstanding */
    uint16_t keepalive;          /* the remote may lower ours (MQTT 5 server keep alive) */
    bool up;                     /* CONNACK accepted */
    uint32_t connects;           /* CONNACKs accepted so far */
} tm_bridge;

static tm_bridge *bridge_of(const tm_conn *c) { return (tm_bridge *)tm_conn_lcfg(c); }

static tm_str S(const char *s) { return (tm_str){(const uint8_t *)s, (uint32_t)strlen(s)}; }

static bool dir_has(const tm_bridge_topic *t, bool out)
{
    return t->dir & (out ? TM_BRIDGE_OUT : TM_BRIDGE_IN);
}

static char *joined(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* ---- start-up: the local sessions ------------------------------------------- */

typedef struct retained_ctx {
    tm_broker *b;
    tm_session *s;
    uint8_t qos;
} retained_ctx;

static void queue_retained(tm_msg *m, void *ud)
{
    retained_ctx *r = ud;
    if (tm_msg_alive(m, r->b->now, NULL))
        tm_deliver(r->b, r->s, m, r->qos, true, NULL, 0);
}

static bool configured_filter(const tm_bridge *br, const char *filter)
{
    for (uint32_t i = 0; i < br->cfg->n_topics; i++)
        if (dir_has(&br->cfg->topics[i], true) && strcmp(br->local_f[i], filter) == 0)
            return true;
    return false;
}

static int start_one(tm_broker *b, tm_bridge *br, char *err, size_t errcap)
{
    const tm_bridge_cfg *bc = br->cfg;
    uint32_t n = bc->n_topics;
    br->lcfg.max_qos = -1;
    br->lcfg.max_topic_alias = bc->version == TM_V5 ? bc->max_topic_alias : 0;
    br->lcfg.allow_anonymous = -1;
    br->lcfg.max_connections = -1;
    br->lcfg.allow_zero_length_clientid = -1;
    br->keepalive = bc->keepalive;
    br->local_f = calloc(n, sizeof *br->local_f);
    br->remote_f = calloc(n, sizeof *br->remote_f);
    if (!br->local_f || !br->remote_f)
        goto oom;
    for (uint32_t i = 0; i < n; i++) {
        const tm_bridge_topic *t = &bc->topics[i];
        if (!(br->local_f[i] = joined(t->local_prefix, t->pattern)) ||
            !(br->remote_f[i] = joined(t->remote_prefix, t->pattern)))
            goto oom;
    }
    if (bc->notification_topic)
        br->notify = strdup(bc->notification_topic);
    else if ((br->notify = malloc(strlen(bc->remote_clientid) + 40)))
        sprintf(br->notify, "$SYS/broker/connection/%s/state", bc->remote_clientid);
    if (!br->notify)
        goto oom;

    tm_str cid = S(bc->local_clientid);
    tm_session *s = tm_sess_find(b, cid);
    if (s && (s->conn || bc->local_clean)) {
        /* local_cleansession: nothing of the last run's queue is kept */
        if (s->conn)
            tm_conn_end(s->conn, "the client id is a bridge's local client id");
        if ((s = tm_sess_find(b, cid)))
            tm_sess_free(b, s);
        s = NULL;
    }
    bool fresh = !s;
    if (!s && !(s = tm_sess_new(b, cid)))
        goto oom;
    br->sess = s;
    s->bridge = true;
    s->no_journal = bc->local_clean;
    s->version = bc->version;
    s->expiry = UINT32_MAX;
    s->expire_at_ms = INT64_MAX;
    free(s->username);
    s->username = bc->local_username ? strdup(bc->local_username) : NULL;
    if (bc->local_username && !s->username)
        goto oom;
    tm_jr_sess(b, s);
    /* subscriptions of an earlier configuration that this one no longer has */
    for (uint32_t i = 0; i < tm_sess_nsubs(s);) {
        if (configured_filter(br, s->subs->e[i].filter)) {
            i++;
            continue;
        }
        tm_log(TM_LOG_NOTICE, "bridge %s: no longer forwarding '%s'", bc->name,
               s->subs->e[i].filter);
        if (tm_sess_unsubscribe(b, s, S(s->subs->e[i].filter)) != TM_RC_SUCCESS)
            i++;
    }
    for (uint32_t i = 0; i < n; i++) {
        const tm_bridge_topic *t = &bc->topics[i];
        if (!dir_has(t, true))
            continue;
        tm_subopts o = {.qos = t->qos, .no_local = true, .retain_as_published = true,
                        .retain_handling = 1};
        bool existed = false;
        tm_rc rc = tm_sess_subscribe(b, s, S(br->local_f[i]), &o, 0, &existed);
        if (rc != TM_RC_SUCCESS) {
            snprintf(err, errcap, "bridge %s: cannot subscribe to '%s' locally: %s", bc->name,
                     br->local_f[i], tm_rc_name(rc));
            return -1;
        }
        /* the remote broker learns the retained state of what it is given */
        if (!existed && bc->outgoing_retain) {
            retained_ctx r = {b, s, t->qos};
            tm_trie_retained_each(b, S(br->local_f[i]), queue_retained, &r);
        }
    }
    tm_log(TM_LOG_INFO, "bridge %s: local session '%s' %s (%u queued)", bc->name,
           bc->local_clientid, fresh ? "created" : "resumed", tm_sess_queued(s));
    return 0;
oom:
    snprintf(err, errcap, "bridge %s: out of memory", bc->name);
    return -1;
}

int tm_broker_bridges_start(tm_broker *b, int64_t now, char *err, size_t errcap)
{
    b->now = now;
    const tm_config *cfg = b->cfg;
    if (!cfg->n_bridges || b->bridges)
        return 0;
    b->bridges = calloc(cfg->n_bridges, sizeof *b->bridges);
    if (!b->bridges) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    b->n_bridges = cfg->n_bridges;
    for (uint32_t i = 0; i < cfg->n_bridges; i++) {
        b->bridges[i].cfg = &cfg->bridges[i];
        if (start_one(b, &b->bridges[i], err, errcap) < 0)
            return -1;
    }
    return 0;
}

void tm_bridges_free(tm_broker *b)
{
    for (uint32_t i = 0; i < b->n_bridges; i++) {
        tm_bridge *br = &b->bridges[i];
        for (uint32_t k = 0; br->local_f && k < br->cfg->n_topics; k++)
            free(br->local_f[k]);
        for (uint32_t k = 0; br->remote_f && k < br->cfg->n_topics; k++)
            free(br->remote_f[k]);
        free(br->local_f);
        free(br->remote_f);
        free(br->notify);
    }
    free(b->bridges);
    b->bridges = NULL;
    b->n_bridges = 0;
}

uint32_t tm_broker_bridge_connects(const tm_broker *b, uint32_t i)
{
    return i < b->n_bridges ? b->bridges[i].connects : 0;
}

tm_bridge_state tm_broker_bridge_state(const tm_broker *b, uint32_t i)
{
    if (i >= b->n_bridges || !b->bridges[i].conn)
        return TM_BRIDGE_DOWN;
    return b->bridges[i].up ? TM_BRIDGE_UP : TM_BRIDGE_CONNECTING;
}

/* ---- the connection ------------------------------------------------------------ */

tm_conn *tm_broker_open_bridge(tm_broker *b, uint32_t i, const tm_conn_info *info, int64_t now)
{
    if (i >= b->n_bridges || b->bridges[i].conn) {
        free(info->identity);
        return NULL;
    }
    tm_bridge *br = &b->bridges[i];
    const tm_bridge_cfg *bc = br->cfg;
    tm_conn_info ci = *info;
    ci.listener = &br->lcfg;
    tm_conn *c = tm_broker_open(b, &ci, now);
    if (!c)
        return NULL;
    c->is_bridge = true;
    c->version = bc->version;
    br->conn = c;
    br->up = false;
    br->ping_sent_ms = 0;
    br->keepalive = bc->keepalive;

    tm_connect cn;
    memset(&cn, 0, sizeof cn);
    cn.version = bc->version;
    cn.bridge = bc->try_private && bc->version != TM_V5;
    cn.clean_start = bc->cleansession;
    cn.keep_alive = bc->keepalive;
    cn.client_id = S(bc->remote_clientid);
    if (bc->remote_username)
        cn.username = S(bc->remote_username);
    if (bc->remote_password)
        cn.password = S(bc->remote_password);
    if (bc->notifications && !bc->notifications_local_only) {
        cn.will = true;
        cn.will_qos = 1;
        cn.will_retain = true;
        cn.will_topic = S(br->notify);
        cn.will_payload = S("0");
    }
    if (bc->version == TM_V5) {
        tm_props *p = &cn.props;
        /* a remote session that outlives the connection, unless cleansession */
        p->session_expiry = bc->cleansession ? 0
                            : bc->session_expiry ? bc->session_expiry : UINT32_MAX;
        if (p->session_expiry)
            p->present |= TM_PBIT(TM_P_SESSION_EXPIRY);
        if (bc->receive_max) {
            p->receive_max = bc->receive_max;
            p->present |= TM_PBIT(TM_P_RECEIVE_MAX);
        }
        if (bc->max_packet_size) {
            p->max_packet_size = bc->max_packet_size;
            p->present |= TM_PBIT(TM_P_MAX_PACKET_SIZE);
        }
        if (bc->max_topic_alias) {
            p->topic_alias_max = bc->max_topic_alias;
            p->present |= TM_PBIT(TM_P_TOPIC_ALIAS_MAX);
        }
    }
    tm_encode_connect(&c->out, &cn);
    tm_conn_mark_dirty(c);
    tm_log(TM_LOG_INFO, "bridge %s: connecting to %s as '%s' (MQTT %s%s)", bc->name, tm_conn_peer(c),
           bc->remote_clientid, bc->version == TM_V5 ? "5.0" : bc->version == TM_V311 ? "3.1.1"
                                                                                   : "3.1",
           cn.bridge ? ", announced as a bridge" : "");
    return c;
}

/* A retained notification of the bridge's state, published locally. */
static void notify_local(tm_broker *b, tm_bridge *br, const char *state)
{
    if (!br->cfg->notifications)
        return;
    tm_msg *m = tm_msg_new(S(br->notify), S(state), 1, true, NULL, 0, b->now);
    if (!m)
        return;
    tm_route(b, m, true);
    tm_msg_unref(m);
}

static const char *v3_refusal(uint8_t code)
{
    static const char *const names[] = {
        "accepted", "unacceptable protocol version", "identifier rejected",
        "server unavailable", "bad user name or password", "not authorized"};
    return code < 6 ? names[code] : "unknown return code";
}

static tm_rc on_connack(tm_conn *c, const uint8_t *body, size_t len)
{
    tm_broker *b = tm_conn_b(c);
    tm_bridge *br = bridge_of(c);
    const tm_bridge_cfg *bc = br->cfg;
    tm_connack ca;
    tm_rc rc = tm_decode_connack(body, len, bc->version, &ca);
    if (rc != TM_RC_SUCCESS)
        return rc;
    if (ca.code != 0) {
        char why[160];
        snprintf(why, sizeof why, "the remote broker refused the connection: %s",
                 bc->version == TM_V5 ? tm_rc_name(ca.code) : v3_refusal(ca.code));
        if (bc->version != TM_V5 && ca.code == 1 && bc->try_private)
            snprintf(why + strlen(why), sizeof why - strlen(why),
                     " (it may not accept bridges' protocol levels: try_private false)");
        tm_log(TM_LOG_WARN, "bridge %s: %s", bc->name, why);
        tm_conn_end(c, why);
        return TM_RC_SUCCESS;
    }
    tm_session *s = br->sess;
    br->up = true;
    br->connects++;
    c->state = TM_CS_CONNECTED;
    c->sess = s;
    s->conn = c;
    c->keep_alive = 0;   /* our side: PINGREQ (tm_bridge_tick), not the server's rule */
    c->recv_max = 65535;
    c->alias_max_out = 0;
    if (bc->version == TM_V5) {
        if (ca.props.present & TM_PBIT(TM_P_RECEIVE_MAX))
            c->recv_max = ca.props.receive_max;
        if (ca.props.present & TM_PBIT(TM_P_MAX_PACKET_SIZE))
            c->max_out_packet = ca.props.max_packet_size;
        if (ca.props.present & TM_PBIT(TM_P_SERVER_KEEP_ALIVE))
            br->keepalive = ca.props.server_keep_alive;
    }
    b->st.clients_connected++;
    if (b->st.clients_connected > b->st.clients_max)
        b->st.clients_max = b->st.clients_connected;
    tm_log(TM_LOG_NOTICE, "bridge %s: connected to %s (remote session %s)", bc->name, tm_conn_peer(c),
           ca.session_present ? "resumed" : "new");

    /* what the remote broker sends us, and what it must no longer keep */
    tm_str in[256], stale[256];
    tm_subopts opts[256];
    uint32_t n_in = 0, n_stale = 0;
    for (uint32_t i = 0; i < bc->n_topics && n_in < 256; i++) {
        const tm_bridge_topic *t = &bc->topics[i];
        if (dir_has(t, false)) {
            in[n_in] = S(br->remote_f[i]);
            opts[n_in++] = (tm_subopts){.qos = t->qos, .no_local = true,
                                        .retain_as_published = true};
        } else if (bc->attempt_unsubscribe && !bc->cleansession && n_stale < 256) {
            stale[n_stale++] = S(br->remote_f[i]);
        }
    }
    if (n_stale)
        tm_encode_unsubscribe(&c->out, bc->version, tm_sess_next_pid(s), NULL, stale, n_stale);
    if (n_in)
        tm_encode_subscribe(&c->out, bc->version, tm_sess_next_pid(s), NULL, in, opts, n_in);
    if (bc->notifications && !bc->notifications_local_only) {
        tm_publish p;
        memset(&p, 0, sizeof p);
        p.topic = S(br->notify);
        p.payload = S("1");
        p.qos = 1;
        p.retain = true;
        p.packet_id = tm_sess_next_pid(s);
        tm_encode_publish(&c->out, bc->version, &p);
    }
    tm_conn_mark_dirty(c);
    notify_local(b, br, "1");
    br->next_ping_ms = b->now + (int64_t)br->keepalive * 1000;
    /* what waited while the bridge was down, and what was in flight */
    tm_outq_resend(b, s);
    tm_outq_pump(b, s);
    return TM_RC_SUCCESS;
}

static tm_rc on_suback(tm_conn *c, uint8_t type, const uint8_t *body, size_t len)
{
    tm_bridge *br = bridge_of(c);
    const tm_bridge_cfg *bc = br->cfg;
    tm_suback sa;
    tm_rc rc = tm_decode_suback(type, body, len, bc->version, &sa);
    if (rc != TM_RC_SUCCESS || type != TM_SUBACK)
        return rc;
    /* one code per `in`/`both` topic, in configuration order */
    uint32_t k = 0;
    for (uint32_t i = 0; i < bc->n_topics && k < sa.codes.len; i++) {
        if (!dir_has(&bc->topics[i], false))
            continue;
        uint8_t code = sa.codes.p[k++];
        if (code >= 0x80)
            tm_log(TM_LOG_WARN, "bridge %s: the remote broker refused the subscription to "
                   "'%s': %s", bc->name, br->remote_f[i],
                   bc->version == TM_V5 ? tm_rc_name(code) : "failure");
        else if (code < bc->topics[i].qos)
            tm_log(TM_LOG_NOTICE, "bridge %s: the remote broker granted QoS %u for '%s' "
                   "(asked %u)", bc->name, code, br->remote_f[i], bc->topics[i].qos);
    }
    return TM_RC_SUCCESS;
}

static tm_rc bridge_packet(tm_conn *c, const tm_frame *f, const uint8_t *body);

bool tm_bridge_dispatch(tm_conn *c, const tm_frame *f, const uint8_t *body, tm_rc *rc)
{
    /* once connected, PUBLISH and the QoS acknowledgements are the engine's,
     * exactly as with a client */
    if (c->state == TM_CS_CONNECTED && f->type >= TM_PUBLISH && f->type <= TM_PUBCOMP)
        return false;
    *rc = bridge_packet(c, f, body);
    return true;
}

static tm_rc bridge_packet(tm_conn *c, const tm_frame *f, const uint8_t *body)
{
    tm_bridge *br = bridge_of(c);
    if (c->state == TM_CS_NEW)
        return f->type == TM_CONNACK ? on_connack(c, body, f->remaining)
                                     : TM_RC_PROTOCOL_ERROR;
    switch (f->type) {
    case TM_SUBACK:
    case TM_UNSUBACK:
        return on_suback(c, f->type, body, f->remaining);
    case TM_PINGRESP:
        if (f->remaining)
            return TM_RC_MALFORMED;
        br->ping_sent_ms = 0;
        return TM_RC_SUCCESS;
    case TM_DISCONNECT: {
        tm_disconnect d;
        tm_rc rc = tm_decode_disconnect(body, f->remaining, c->version, &d);
        if (rc != TM_RC_SUCCESS)
            return rc;
        char why[120];
        snprintf(why, sizeof why, "the remote broker disconnected: %s", tm_rc_name(d.reason));
        tm_log(TM_LOG_WARN, "bridge %s: %s", br->cfg->name, why);
        tm_conn_end(c, why);
        return TM_RC_SUCCESS;
    }
    default:
        return TM_RC_PROTOCOL_ERROR;   /* a client-to-server packet from a server */
    }
}

void tm_bridge_ended(tm_conn *c)
{
    tm_bridge *br = bridge_of(c);
    if (br->conn != c)
        return;
    br->conn = NULL;
    if (br->up)
        notify_local(tm_conn_b(c), br, "0");
    br->up = false;
    br->ping_sent_ms = 0;
}

void tm_bridge_tick(tm_broker *b, int64_t now)
{
    for (uint32_t i = 0; i < b->n_bridges; i++) {
        tm_bridge *br = &b->bridges[i];
        tm_conn *c = br->conn;
        if (!c || !br->up || !br->keepalive || c->state != TM_CS_CONNECTED)
            continue;
        if (br->ping_sent_ms && now - br->ping_sent_ms >= (int64_t)br->keepalive * 1000) {
            tm_conn_fail(c, TM_RC_KEEP_ALIVE_TIMEOUT, "no PINGRESP from the remote broker");
            continue;
        }
        if (now >= br->next_ping_ms && !br->ping_sent_ms) {
            tm_encode_simple(&c->out, TM_PINGREQ);
            tm_conn_mark_dirty(c);
            br->ping_sent_ms = now;
            br->next_ping_ms = now + (int64_t)br->keepalive * 1000;
        }
    }
}

/* ---- topics across the bridge --------------------------------------------------- */

bool tm_bridge_outgoing_retain(const tm_conn *c) { return bridge_of(c)->cfg->outgoing_retain; }

bool tm_bridge_trusted(const tm_conn *c) { return !bridge_of(c)->cfg->local_username; }

bool tm_bridge_notice(tm_str topic)
{
    static const char f[] = "$SYS/broker/connection/+/state";
    return tm_topic_match((const uint8_t *)f, sizeof f - 1, topic.p, topic.len);
}

bool tm_bridge_map(const tm_conn *c, bool out, tm_str topic, tm_str *mapped, char **buf)
{
    const tm_bridge *br = bridge_of(c);
    const tm_bridge_cfg *bc = br->cfg;
    *buf = NULL;
    for (uint32_t i = 0; i < bc->n_topics; i++) {
        const tm_bridge_topic *t = &bc->topics[i];
        const char *filter = out ? br->local_f[i] : br->remote_f[i];
        if (!dir_has(t, out) ||
            !tm_topic_match((const uint8_t *)filter, strlen(filter), topic.p, topic.len))
            continue;
        const char *from = out ? t->local_prefix : t->remote_prefix;
        const char *to = out ? t->remote_prefix : t->local_prefix;
        size_t fl = strlen(from), tl = strlen(to);
        tm_str rest = {(const uint8_t *)"", 0};
        if (topic.len >= fl)
            rest = (tm_str){topic.p + fl, (uint32_t)(topic.len - fl)};
        else if (tl && to[tl - 1] == '/')
            tl--;   /* "a/#" matched "a": the prefix's parent level itself */
        char *s = malloc(tl + rest.len + 1);
        if (!s)
            return false;
        memcpy(s, to, tl);
        if (rest.len)
            memcpy(s + tl, rest.p, rest.len);
        s[tl + rest.len] = 0;
        if (tl + rest.len == 0) {
            free(s);
            return false;
        }
        *buf = s;
        *mapped = (tm_str){(const uint8_t *)s, (uint32_t)(tl + rest.len)};
        return true;
    }
    return false;
}
