/*
 * handle_connect.c — what happens on CONNECT: protocol and client-id rules,
 * authentication, the will, session takeover, clean start / session expiry,
 * CONNACK with the server's limits, and redelivery of a resumed session.
 *
 * The handler runs in phases over one `pending` record (decode, client id,
 * keep alive, authentication, will, CONNACK size) and only then touches the
 * session table: every refusal goes through refuse(), the one place that
 * frees what earlier phases allocated, and no refused CONNECT can have
 * disturbed an existing session or fired a will.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/atls_peer.h"
#include "broker/broker_int.h"


/* What a CONNECT establishes, gathered before it is applied. */
typedef struct pending {
    tm_connect cn;
    uint8_t v;
    tm_str cid;
    char assigned[112];          /* auto_id_prefix (<= 64) + two hex numbers */
    uint16_t keep_alive;
    bool server_ka;              /* keep alive imposed by the server (v5) */
    char *username;              /* owned until applied */
    tm_msg *will;                /* owned until applied */
    uint32_t will_delay;
} pending;

/* A refusal: 0 when the CONNECT is accepted so far. */
typedef struct refusal {
    uint8_t rc5, rc3;            /* rc3 0: close without a CONNACK in 3.1/3.1.1 */
    const char *why;
} refusal;

#define REFUSE(r5, r3, text) ((refusal){(r5), (r3), (text)})
#define ACCEPT ((refusal){0, 0, NULL})

static void encode_connack(tm_buf *out, uint8_t version, bool present, uint8_t code,
                           const tm_props *props)
{
    tm_connack ca;
    memset(&ca, 0, sizeof ca);
    /* MQTT 3.1 has no session-present flag: that byte is reserved (0) */
    ca.session_present = present && version != TM_V31;
    ca.code = code;
    if (props)
        ca.props = *props;
    tm_encode_connack(out, version, &ca);
}

/* Bytes the CONNACK would take, to honour the client's Maximum Packet Size
 * before anything is decided (MQTT-3.1.2-24). */
static size_t connack_size(tm_broker *b, uint8_t version, uint8_t code, const tm_props *props)
{
    b->scratch.len = 0;
    encode_connack(&b->scratch, version, false, code, props);
    return b->scratch.len;
}

static bool connack_fits(tm_conn *c, uint8_t version, uint8_t code, const tm_props *props)
{
    if (!c->max_out_packet)
        return true;
    size_t n = connack_size(tm_conn_b(c), version, code, props);
    if (n <= c->max_out_packet)
        return true;
    tm_log(TM_LOG_NOTICE, "client %s: its Maximum Packet Size (%u) is smaller than the "
           "CONNACK (%zu bytes): closing without one", tm_conn_peer(c), c->max_out_packet, n);
    return false;
}

/* Refuse a CONNECT: v5 reason code or its v3 equivalent, then close. Frees
 * what the phases so far allocated. */
static tm_rc refuse(tm_conn *c, pending *pc, refusal r)
{
    uint8_t code = pc->v == TM_V5 ? r.rc5 : r.rc3;
    bool send = (pc->v == TM_V5 || r.rc3) && connack_fits(c, pc->v, code, NULL);
    if (send) {
        encode_connack(&c->out, pc->v, false, code, NULL);
        tm_conn_mark_dirty(c);
    }
    tm_log(TM_LOG_NOTICE, "client %s: connection refused: %s", tm_conn_peer(c), r.why);
    free(pc->username);
    pc->username = NULL;
    tm_msg_unref(pc->will);
    pc->will = NULL;
    c->state = TM_CS_CLOSING;
    return TM_RC_SUCCESS;   /* handled: the connection closes after the flush */
}

static char *strdup_slice(tm_str s)
{
    return s.p ? strndup((const char *)s.p, s.len) : NULL;
}

static bool listener_allows_anonymous(tm_conn *c)
{
    if (tm_conn_lcfg(c)->allow_anonymous >= 0)
        return tm_conn_lcfg(c)->allow_anonymous;
    return tm_conn_b(c)->cfg->allow_anonymous;
}

/* ---- phases ----------------------------------------------------------------- */

static refusal check_client_id(tm_conn *c, pending *pc)
{
    tm_broker *b = tm_conn_b(c);
    const tm_config *cfg = b->cfg;
    const tm_listener_cfg *l = tm_conn_lcfg(c);
    pc->cid = pc->cn.client_id;
    if (pc->cid.len == 0) {
        if (pc->v != TM_V5 && (!pc->cn.clean_start || pc->v == TM_V31))
            return REFUSE(TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                          "empty client identifier without clean session");
        bool allow = l->allow_zero_length_clientid >= 0 ? l->allow_zero_length_clientid
                                                        : cfg->allow_zero_length_clientid;
        if (!allow)
            return REFUSE(TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                          "empty client identifier (allow_zero_length_clientid false)");
        const char *prefix = l->auto_id_prefix ? l->auto_id_prefix : cfg->auto_id_prefix;
        snprintf(pc->assigned, sizeof pc->assigned, "%s%llx-%llx", prefix ? prefix : "",
                 (unsigned long long)b->start_wall, (unsigned long long)++b->next_assigned_id);
        pc->cid = (tm_str){(const uint8_t *)pc->assigned, (uint32_t)strlen(pc->assigned)};
    }
    if (pc->v == TM_V31 && pc->cid.len > 23)
        return REFUSE(TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                      "MQTT 3.1 client identifier longer than 23 characters");
    /* Mosquitto's clientid_prefixes: checked after an identifier is assigned */
    size_t pl = cfg->clientid_prefixes ? strlen(cfg->clientid_prefixes) : 0;
    if (pl && (pc->cid.len < pl || memcmp(pc->cid.p, cfg->clientid_prefixes, pl) != 0))
        return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                      "client identifier without the prefix clientid_prefixes requires");
    tm_session *s = tm_sess_find(b, pc->cid);
    if (s && s->bridge)
        return REFUSE(TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                      "the client identifier of one of this broker's bridges");
    return ACCEPT;
}

static refusal check_keep_alive(const tm_config *cfg, pending *pc)
{
    pc->keep_alive = pc->cn.keep_alive;
    if (cfg->max_keepalive && (pc->keep_alive > cfg->max_keepalive || pc->keep_alive == 0)) {
        if (pc->v == TM_V5) {
            pc->keep_alive = cfg->max_keepalive;
            pc->server_ka = true;
        } else if (pc->keep_alive > cfg->max_keepalive) {
            return REFUSE(TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                          "keep alive above max_keepalive");
        }
    }
    return ACCEPT;
}

static refusal authenticate(tm_conn *c, pending *pc)
{
    tm_broker *b = tm_conn_b(c);
    if ((tm_conn_lcfg(c)->use_identity_as_username || tm_conn_lcfg(c)->use_subject_as_username) && c->tls) {
        pc->username = c->ext && c->ext->identity ? strdup(c->ext->identity) : NULL;
        if (!pc->username)
            return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                          "no certificate identity to use as username");
    } else if (pc->cn.username.p) {
        int ok = b->auth ? tm_auth_check_password(b->auth, pc->cn.username, pc->cn.password)
                         : -1;
        if (ok == 0)
            return REFUSE(TM_RC_BAD_USER_OR_PASSWORD, TM_V3_BAD_USER_PASS,
                          "bad user name or password");
        if (ok < 0 && !listener_allows_anonymous(c))
            return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                          "not authorised (no password file, anonymous access off)");
        pc->username = strdup_slice(pc->cn.username);
    } else if (!listener_allows_anonymous(c)) {
        return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                      "anonymous access is not allowed on this listener");
    }
    if (tm_conn_lcfg(c)->require_client_attestation && !tm_conn_attest(c))
        return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED, "client attestation required");
    if (tm_conn_lcfg(c)->use_username_as_clientid) {
        /* Mosquitto: the user name replaces the client id; none: not authorised */
        if (!pc->username)
            return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                          "use_username_as_clientid needs a user name");
        pc->cid = (tm_str){(const uint8_t *)pc->username, (uint32_t)strlen(pc->username)};
    }
    return ACCEPT;
}

static refusal build_will(tm_conn *c, pending *pc)
{
    tm_broker *b = tm_conn_b(c);
    const tm_connect *cn = &pc->cn;
    const tm_config *cfg = b->cfg;
    if (!cn->will)
        return ACCEPT;
    /* v3 has no code for these: the connection is closed without a CONNACK */
    if (!tm_topic_name_valid(cn->will_topic.p, cn->will_topic.len))
        return REFUSE(TM_RC_TOPIC_NAME_INVALID, 0, "invalid will topic");
    /* as for PUBLISH: no $-topic, except a bridge's notification topic */
    if (cn->will_topic.p[0] == '$' && !tm_bridge_notice(cn->will_topic))
        return REFUSE(TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED, "will to a $-topic");
    if (pc->v == TM_V5 && cn->will_props.payload_format == 1 &&
        !tm_utf8_valid(cn->will_payload.p, cn->will_payload.len))
        return REFUSE(TM_RC_PAYLOAD_FORMAT_INVALID, 0,
                      "will payload is not UTF-8 as its format indicator says");
    if (cfg->message_size_limit && cn->will_payload.len > cfg->message_size_limit)
        return REFUSE(TM_RC_PACKET_TOO_LARGE, 0, "will payload larger than message_size_limit");
    if (cn->will_qos > tm_config_max_qos(cfg, tm_conn_lcfg(c)))
        return REFUSE(TM_RC_QOS_NOT_SUPPORTED, TM_V3_NOT_AUTHORIZED,
                      "will QoS above the maximum QoS");
    if (cn->will_retain && !cfg->retain_available)
        return REFUSE(TM_RC_RETAIN_NOT_SUPPORTED, TM_V3_NOT_AUTHORIZED,
                      "retained will but retain is not available");
    tm_str topic = cn->will_topic;
    char *mounted = tm_mount(c, topic, &topic);
    if (tm_conn_lcfg(c)->mount_point && !mounted)
        return REFUSE(TM_RC_SERVER_UNAVAILABLE, TM_V3_SERVER_UNAVAILABLE, "out of memory");
    pc->will = tm_msg_new(topic, cn->will_payload, cn->will_qos, cn->will_retain,
                          pc->v == TM_V5 ? &cn->will_props : NULL, 0, b->now);
    free(mounted);
    /* the connection will hold it in its rare state (allocated now, so that
     * apply() cannot fail) */
    if (!pc->will || !tm_conn_ext_get(c))
        return REFUSE(TM_RC_SERVER_UNAVAILABLE, TM_V3_SERVER_UNAVAILABLE, "out of memory");
    if (cn->will_retain && cfg->check_retain_source)
        tm_msg_set_source(pc->will, pc->cid, pc->username, tm_conn_attest(c));
    if (pc->v == TM_V5)
        pc->will_delay = cn->will_props.will_delay;
    return ACCEPT;
}

/* The server's limits, announced in a v5 CONNACK. */
static void connack_props(const tm_conn *c, const pending *pc, tm_props *p)
{
    const tm_config *cfg = tm_conn_b(c)->cfg;
    uint32_t max_qos = tm_config_max_qos(cfg, tm_conn_lcfg(c));
    uint32_t max_alias = tm_config_max_topic_alias(cfg, tm_conn_lcfg(c));
    memset(p, 0, sizeof *p);
    if (pc->v != TM_V5)
        return;
    if (pc->assigned[0]) {
        p->assigned_client_id = pc->cid;
        p->present |= TM_PBIT(TM_P_ASSIGNED_CLIENT_ID);
    }
    if (pc->server_ka) {
        p->server_keep_alive = pc->keep_alive;
        p->present |= TM_PBIT(TM_P_SERVER_KEEP_ALIVE);
    }
    if (cfg->max_inflight < 65535) {
        p->receive_max = cfg->max_inflight;
        p->present |= TM_PBIT(TM_P_RECEIVE_MAX);
    }
    if (max_qos < 2) {
        p->max_qos = (uint8_t)max_qos;
        p->present |= TM_PBIT(TM_P_MAX_QOS);
    }
    if (!cfg->retain_available) {
        p->retain_available = 0;
        p->present |= TM_PBIT(TM_P_RETAIN_AVAILABLE);
    }
    if (cfg->max_packet_size) {
        p->max_packet_size = cfg->max_packet_size;
        p->present |= TM_PBIT(TM_P_MAX_PACKET_SIZE);
    }
    if (max_alias) {
        p->topic_alias_max = (uint16_t)max_alias;
        p->present |= TM_PBIT(TM_P_TOPIC_ALIAS_MAX);
    }
}

/* Take over, resume or start the session. NULL only when out of memory. */
static tm_session *open_session(tm_conn *c, pending *pc, bool *present)
{
    tm_broker *b = tm_conn_b(c);
    tm_session *s = tm_sess_find(b, pc->cid);
    if (s && s->conn) {
        tm_conn *old = s->conn;
        tm_log(TM_LOG_NOTICE, "client '%s': session taken over by %s (was %s)",
               s->client_id, tm_conn_peer(c), tm_conn_peer(old));
        if (old->version == TM_V5) {
            tm_disconnect d = {.reason = TM_RC_SESSION_TAKEN_OVER};
            tm_encode_disconnect(&old->out, TM_V5, &d);
        }
        tm_conn_end(old, "session taken over");
        s = tm_sess_find(b, pc->cid);   /* the old session may have ended with it */
    }
    *present = false;
    if (s && pc->cn.clean_start) {
        tm_sess_free(b, s);
        s = NULL;
    }
    if (s) {
        *present = true;
        tm_will_cancel(b, s);
        return s;
    }
    return tm_sess_new(b, pc->cid);
}

/* Attach the session to the connection and move the pending state over. */
static void apply(tm_conn *c, pending *pc, tm_session *s)
{
    const tm_config *cfg = tm_conn_b(c)->cfg;
    const tm_connect *cn = &pc->cn;
    c->peer_bridge = cn->bridge;
    s->version = pc->v;
    if (pc->v == TM_V5)
        s->expiry = cn->props.session_expiry;
    else if (cn->clean_start)
        s->expiry = 0;
    else
        s->expiry = cfg->persistent_client_expiration ? cfg->persistent_client_expiration
                                                       : UINT32_MAX;
    free(s->username);
    s->username = pc->username ? strdup(pc->username) : NULL;
    /* the session keeps the claims its Will and queued messages are checked with */
    if (s->rare || tm_conn_attest(c)) {
        tm_sess_rare *r = tm_sess_rare_get(s);
        if (r) {
            tm_atls_peer_unref(r->attest);
            r->attest = tm_atls_peer_ref(tm_conn_attest(c));
        }
    }
    s->conn = c;
    c->sess = s;
    free(pc->username);   /* the session has its copy */
    pc->username = NULL;
    if (c->ext) {
        free(c->ext->identity);    /* used, if at all, as the user name */
        c->ext->identity = NULL;
    }
    c->last_rx_ms = (uint32_t)tm_conn_b(c)->now;
    c->keep_alive = pc->keep_alive;
    if (pc->will) {              /* check_will made c->ext */
        c->ext->will = pc->will;
        c->ext->will_delay = pc->will_delay;
        pc->will = NULL;
    }
    c->recv_max = 65535;
    if (pc->v == TM_V5) {
        if (cn->props.present & TM_PBIT(TM_P_RECEIVE_MAX))
            c->recv_max = cn->props.receive_max;
        if (cn->props.present & TM_PBIT(TM_P_TOPIC_ALIAS_MAX))
            c->alias_max_out = cn->props.topic_alias_max;
        c->request_problem_info = !(cn->props.present & TM_PBIT(TM_P_REQUEST_PROBLEM_INFO)) ||
                                  cn->props.request_problem_info;
    }
}

/* Decode; a malformed CONNECT gets a v5 CONNACK with the reason when the
 * protocol level can be seen, else the connection just closes. */
static tm_rc decode(tm_conn *c, const uint8_t *body, size_t len, pending *pc, bool *handled)
{
    uint8_t peek_version = 4;
    if (len >= 7 && body[0] == 0 && body[1] == 4 && body[6] == 5)
        peek_version = 5;
    pc->v = peek_version;
    *handled = true;
    tm_rc rc = tm_decode_connect(body, len, &pc->cn);
    if (rc == TM_RC_UNSUPPORTED_VERSION)
        return refuse(c, pc, REFUSE(TM_RC_UNSUPPORTED_VERSION, TM_V3_BAD_VERSION,
                                    "unsupported protocol name or version"));
    if (rc != TM_RC_SUCCESS) {
        tm_log(TM_LOG_NOTICE, "client %s: bad CONNECT: %s", tm_conn_peer(c), tm_rc_name(rc));
        if (peek_version != TM_V5)
            return rc;
        return refuse(c, pc, REFUSE((uint8_t)rc, 0, "malformed CONNECT"));
    }
    *handled = false;
    pc->v = pc->cn.version;
    return TM_RC_SUCCESS;
}

tm_rc tm_handle_connect(tm_conn *c, const uint8_t *body, size_t len)
{
    tm_broker *b = tm_conn_b(c);
    if (c->state != TM_CS_NEW)
        return TM_RC_PROTOCOL_ERROR;   /* a second CONNECT */
    pending pc;
    memset(&pc, 0, sizeof pc);
    bool handled;
    tm_rc rc = decode(c, body, len, &pc, &handled);
    if (handled)
        return rc;
    c->version = pc.v;
    if (pc.v == TM_V5 && (pc.cn.props.present & TM_PBIT(TM_P_MAX_PACKET_SIZE)))
        c->max_out_packet = pc.cn.props.max_packet_size;

    /* Enhanced authentication: no method is configured in this broker. */
    refusal r = ACCEPT;
    uint8_t accepted = tm_conn_lcfg(c)->protocol_versions;
    if (accepted && !(accepted & (1u << pc.v)))
        r = REFUSE(TM_RC_UNSUPPORTED_VERSION, TM_V3_BAD_VERSION,
                   "protocol version not in this listener's accept_protocol_versions");
    if (!r.why && pc.v == TM_V5 && (pc.cn.props.present & TM_PBIT(TM_P_AUTH_METHOD)))
        r = REFUSE(TM_RC_BAD_AUTH_METHOD, TM_V3_NOT_AUTHORIZED,
                   "authentication method not supported");
    if (!r.why)
        r = check_client_id(c, &pc);
    if (!r.why)
        r = check_keep_alive(b->cfg, &pc);
    if (!r.why)
        r = authenticate(c, &pc);
    if (!r.why)
        r = build_will(c, &pc);
    if (r.why)
        return refuse(c, &pc, r);

    tm_props props;
    connack_props(c, &pc, &props);
    if (!connack_fits(c, pc.v, TM_RC_SUCCESS, &props)) {
        free(pc.username);
        tm_msg_unref(pc.will);
        c->state = TM_CS_CLOSING;
        return TM_RC_SUCCESS;
    }

    bool present;
    tm_session *s = open_session(c, &pc, &present);
    if (!s)
        return refuse(c, &pc, REFUSE(TM_RC_SERVER_UNAVAILABLE, TM_V3_SERVER_UNAVAILABLE,
                                     "out of memory"));
    apply(c, &pc, s);
    tm_jr_sess(b, s);
    c->state = TM_CS_CONNECTED;
    b->st.clients_connected++;
    if (b->st.clients_connected > b->st.clients_max)
        b->st.clients_max = b->st.clients_connected;

    encode_connack(&c->out, pc.v, present, TM_RC_SUCCESS, &props);
    tm_conn_mark_dirty(c);
    if (b->cfg->connection_messages)
        tm_log(TM_LOG_NOTICE, "client '%s' connected from %s (MQTT %s%s%s, keep alive %u%s)",
               s->client_id, tm_conn_peer(c),
               pc.v == TM_V5 ? "5.0" : pc.v == TM_V311 ? "3.1.1" : "3.1",
               tm_conn_username(c) ? ", user " : "", tm_conn_username(c) ? tm_conn_username(c) : "",
               (unsigned)c->keep_alive, present ? ", session resumed" : "");
    if (present) {
        tm_outq_resend(b, s);
        tm_outq_pump(b, s);
    }
    return TM_RC_SUCCESS;
}
