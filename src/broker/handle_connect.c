/*
 * handle_connect.c — what happens on CONNECT: protocol and client-id rules,
 * authentication, the will, session takeover, clean start / session expiry,
 * CONNACK with the server's limits, and redelivery of a resumed session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/server.h"

static void send_connack(tm_conn *c, uint8_t version, bool present, uint8_t code,
                         const tm_props *props)
{
    tm_connack ca;
    memset(&ca, 0, sizeof ca);
    ca.session_present = present;
    ca.code = code;
    if (props)
        ca.props = *props;
    tm_encode_connack(&c->out, version, &ca);
    tm_conn_mark_dirty(c);
}

/* Refuse a CONNECT: v5 reason code or its v3 equivalent, then close. */
static tm_rc refuse(tm_conn *c, uint8_t version, uint8_t rc5, uint8_t rc3, const char *why)
{
    if (version == TM_V5)
        send_connack(c, TM_V5, false, rc5, NULL);
    else
        send_connack(c, version, false, rc3, NULL);
    tm_log(TM_LOG_NOTICE, "client %s: connection refused: %s", c->peer, why);
    c->state = TM_CS_CLOSING;
    return TM_RC_SUCCESS;   /* handled: the connection closes after the flush */
}

static char *strdup_slice(tm_str s)
{
    return s.p ? strndup((const char *)s.p, s.len) : NULL;
}

static bool listener_allows_anonymous(tm_conn *c)
{
    const tm_listener_cfg *lc = tm_listener_config(c->lst);
    if (lc->allow_anonymous >= 0)
        return lc->allow_anonymous;
    return c->b->cfg->allow_anonymous;
}

tm_rc tm_handle_connect(tm_conn *c, const uint8_t *body, size_t len)
{
    tm_broker *b = c->b;
    tm_config *cfg = b->cfg;
    tm_connect cn;
    if (c->state != TM_CS_NEW)
        return TM_RC_PROTOCOL_ERROR;   /* a second CONNECT */

    /* Peek at the protocol level so that errors get the right CONNACK form. */
    uint8_t peek_version = 4;
    if (len >= 7 && body[0] == 0 && body[1] == 4 && body[6] == 5)
        peek_version = 5;
    tm_rc rc = tm_decode_connect(body, len, &cn);
    if (rc == TM_RC_UNSUPPORTED_VERSION)
        return refuse(c, peek_version, TM_RC_UNSUPPORTED_VERSION, TM_V3_BAD_VERSION,
                      "unsupported protocol name or version");
    if (rc != TM_RC_SUCCESS) {
        if (peek_version == TM_V5) {
            send_connack(c, TM_V5, false, (uint8_t)rc, NULL);
            c->state = TM_CS_CLOSING;
        }
        tm_log(TM_LOG_NOTICE, "client %s: bad CONNECT: %s", c->peer, tm_rc_name(rc));
        return peek_version == TM_V5 ? TM_RC_SUCCESS : rc;
    }
    uint8_t v = cn.version;
    c->version = v;

    /* Enhanced authentication: no method is configured in this broker. */
    if (v == TM_V5 && (cn.props.present & TM_PBIT(TM_P_AUTH_METHOD)))
        return refuse(c, v, TM_RC_BAD_AUTH_METHOD, TM_V3_NOT_AUTHORIZED,
                      "authentication method not supported");

    /* Client identifier. */
    char assigned[40] = "";
    tm_str cid = cn.client_id;
    if (cid.len == 0) {
        if (v != TM_V5 && (!cn.clean_start || v == TM_V31))
            return refuse(c, v, TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                          "empty client identifier without clean session");
        static uint64_t seq;
        snprintf(assigned, sizeof assigned, "tmqtt-%llx-%llx",
                 (unsigned long long)b->start_wall, (unsigned long long)++seq);
        cid = (tm_str){(const uint8_t *)assigned, (uint32_t)strlen(assigned)};
    }
    if (v == TM_V31 && cid.len > 23)
        return refuse(c, v, TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                      "MQTT 3.1 client identifier longer than 23 characters");

    /* Keep alive limit. */
    uint16_t keep_alive = cn.keep_alive;
    bool server_ka = false;
    if (cfg->max_keepalive && (keep_alive > cfg->max_keepalive || keep_alive == 0)) {
        if (v == TM_V5) {
            keep_alive = cfg->max_keepalive;
            server_ka = true;
        } else if (keep_alive > cfg->max_keepalive) {
            return refuse(c, v, TM_RC_CLIENT_ID_INVALID, TM_V3_ID_REJECTED,
                          "keep alive above max_keepalive");
        }
    }

    /* Authentication. */
    char *username = strdup_slice(cn.username);
    const tm_listener_cfg *lc = tm_listener_config(c->lst);
    if (lc->use_identity_as_username && c->tls) {
        char *id = tm_server_tls_identity(c);
        if (!id) {
            free(username);
            return refuse(c, v, TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                          "no certificate identity to use as username");
        }
        free(username);
        username = id;
    } else if (cn.username.p) {
        int ok = b->auth ? tm_auth_check_password(b->auth, cn.username, cn.password) : -1;
        if (ok == 0) {
            free(username);
            return refuse(c, v, TM_RC_BAD_USER_OR_PASSWORD, TM_V3_BAD_USER_PASS,
                          "bad user name or password");
        }
        if (ok < 0 && !listener_allows_anonymous(c)) {
            free(username);
            return refuse(c, v, TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                          "not authorised (no password file, anonymous access off)");
        }
    } else if (!listener_allows_anonymous(c)) {
        return refuse(c, v, TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                      "anonymous access is not allowed on this listener");
    }
    if (!tm_server_attest_ok(c)) {
        free(username);
        return refuse(c, v, TM_RC_NOT_AUTHORIZED, TM_V3_NOT_AUTHORIZED,
                      "client attestation required");
    }

    /* Will message. */
    tm_msg *will = NULL;
    uint32_t will_delay = 0;
    if (cn.will) {
        if (!tm_topic_name_valid(cn.will_topic.p, cn.will_topic.len)) {
            free(username);
            if (v == TM_V5)
                return refuse(c, v, TM_RC_TOPIC_NAME_INVALID, 0, "invalid will topic");
            return TM_RC_MALFORMED;
        }
        if (v == TM_V5 && cn.will_props.payload_format == 1 &&
            !tm_utf8_valid(cn.will_payload.p, cn.will_payload.len)) {
            free(username);
            return refuse(c, v, TM_RC_PAYLOAD_FORMAT_INVALID, 0,
                          "will payload is not UTF-8 as its format indicator says");
        }
        if (cn.will_qos > cfg->max_qos) {
            free(username);
            return refuse(c, v, TM_RC_QOS_NOT_SUPPORTED, TM_V3_NOT_AUTHORIZED,
                          "will QoS above the maximum QoS");
        }
        if (cn.will_retain && !cfg->retain_available) {
            free(username);
            return refuse(c, v, TM_RC_RETAIN_NOT_SUPPORTED, TM_V3_NOT_AUTHORIZED,
                          "retained will but retain is not available");
        }
        will = tm_msg_new(cn.will_topic, cn.will_payload, cn.will_qos, cn.will_retain,
                          v == TM_V5 ? &cn.will_props : NULL, 0, tm_now_ms());
        if (v == TM_V5)
            will_delay = cn.will_props.will_delay;
    }

    /* Session: take over, resume or start. */
    tm_session *s = tm_sess_find(b, cid);
    if (s && s->conn) {
        tm_conn *old = s->conn;
        tm_log(TM_LOG_NOTICE, "client '%s': session taken over by %s (was %s)",
               s->client_id, c->peer, old->peer);
        if (old->version == TM_V5) {
            tm_disconnect d = {.reason = TM_RC_SESSION_TAKEN_OVER};
            tm_encode_disconnect(&old->out, TM_V5, &d);
        }
        tm_server_end_conn(old, "session taken over");
        s = tm_sess_find(b, cid);   /* the old session may have ended with it */
    }
    bool present = false;
    if (s && cn.clean_start) {
        tm_sess_free(b, s);
        s = NULL;
    }
    if (s) {
        present = true;
        tm_will_cancel(b, s);
    } else {
        s = tm_sess_new(b, cid);
        if (!s) {
            tm_msg_unref(will);
            free(username);
            return refuse(c, v, TM_RC_SERVER_UNAVAILABLE, TM_V3_SERVER_UNAVAILABLE,
                          "out of memory");
        }
    }
    s->version = v;
    if (v == TM_V5)
        s->expiry = cn.props.session_expiry;
    else if (cn.clean_start)
        s->expiry = 0;
    else
        s->expiry = cfg->persistent_client_expiration ? cfg->persistent_client_expiration
                                                       : UINT32_MAX;
    free(s->username);
    s->username = username ? strdup(username) : NULL;
    s->conn = c;
    c->sess = s;
    c->client_id = strdup(s->client_id);
    c->username = username;
    c->keep_alive = keep_alive;
    c->will = will;
    c->will_delay = will_delay;
    c->max_out_packet = 0;
    c->recv_max = 65535;
    if (v == TM_V5) {
        if (cn.props.present & TM_PBIT(TM_P_MAX_PACKET_SIZE))
            c->max_out_packet = cn.props.max_packet_size;
        if (cn.props.present & TM_PBIT(TM_P_RECEIVE_MAX))
            c->recv_max = cn.props.receive_max;
        if (cn.props.present & TM_PBIT(TM_P_TOPIC_ALIAS_MAX))
            c->alias_max_out = cn.props.topic_alias_max;
        c->request_problem_info = !(cn.props.present & TM_PBIT(TM_P_REQUEST_PROBLEM_INFO)) ||
                                  cn.props.request_problem_info;
    }
    c->state = TM_CS_CONNECTED;
    c->connected_ms = tm_now_ms();
    b->st.clients_connected++;
    if (b->st.clients_connected > b->st.clients_max)
        b->st.clients_max = b->st.clients_connected;

    /* CONNACK */
    tm_props p;
    memset(&p, 0, sizeof p);
    if (v == TM_V5) {
        if (assigned[0]) {
            p.assigned_client_id = cid;
            p.present |= TM_PBIT(TM_P_ASSIGNED_CLIENT_ID);
        }
        if (server_ka) {
            p.server_keep_alive = keep_alive;
            p.present |= TM_PBIT(TM_P_SERVER_KEEP_ALIVE);
        }
        if (cfg->max_inflight < 65535) {
            p.receive_max = cfg->max_inflight;
            p.present |= TM_PBIT(TM_P_RECEIVE_MAX);
        }
        if (cfg->max_qos < 2) {
            p.max_qos = (uint8_t)cfg->max_qos;
            p.present |= TM_PBIT(TM_P_MAX_QOS);
        }
        if (!cfg->retain_available) {
            p.retain_available = 0;
            p.present |= TM_PBIT(TM_P_RETAIN_AVAILABLE);
        }
        if (cfg->max_packet_size) {
            p.max_packet_size = cfg->max_packet_size;
            p.present |= TM_PBIT(TM_P_MAX_PACKET_SIZE);
        }
        if (cfg->max_topic_alias) {
            p.topic_alias_max = cfg->max_topic_alias;
            p.present |= TM_PBIT(TM_P_TOPIC_ALIAS_MAX);
        }
    }
    send_connack(c, v, present, TM_RC_SUCCESS, &p);
    if (cfg->connection_messages)
        tm_log(TM_LOG_NOTICE, "client '%s' connected from %s (MQTT %s%s%s, keep alive %u%s)",
               s->client_id, c->peer, v == TM_V5 ? "5.0" : v == TM_V311 ? "3.1.1" : "3.1",
               c->username ? ", user " : "", c->username ? c->username : "",
               (unsigned)keep_alive, present ? ", session resumed" : "");
    if (present) {
        tm_outq_resend(b, s);
        tm_outq_pump(b, s);
    }
    return TM_RC_SUCCESS;
}
