/*
 * handle.c — what the client does with each packet the server sends.
 *
 * The rules (MQTT 3.1.1 §4.3, MQTT 5.0 §4.3, §4.9):
 *  - CONNACK only while connecting; anything else before it is a protocol error.
 *  - Incoming QoS 1: deliver, then PUBACK. QoS 2: deliver on PUBLISH and send
 *    PUBREC, remember the id until PUBREL (a duplicate PUBLISH with the same id
 *    is acknowledged again but not delivered twice), PUBCOMP on PUBREL.
 *  - Outgoing: PUBACK ends QoS 1; PUBREC -> PUBREL -> PUBCOMP ends QoS 2; a
 *    v5 reason >= 0x80 in PUBACK/PUBREC ends the flow as failed. Every end
 *    frees one slot of the window and lets a queued PUBLISH go.
 *  - Anything malformed or out of place closes the connection (v5: with a
 *    DISCONNECT carrying the reason). The server is untrusted input.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

/* Keep a callback from freeing the client under our feet: the dispatcher
 * checks c->free_pending and c->state after each packet. */
#define CALLBACK(c, fn, ...)                                                   \
    do {                                                                       \
        if ((c)->cbs.fn) {                                                     \
            (c)->depth++;                                                      \
            (c)->cbs.fn((c), (c)->ud, __VA_ARGS__);                            \
            (c)->depth--;                                                      \
        }                                                                      \
    } while (0)

static const char *reason_text(const tm_props *p, char *buf, size_t cap)
{
    if (p->reason_string.p && p->reason_string.len)
        snprintf(buf, cap, " (%.*s)", (int)p->reason_string.len,
                 (const char *)p->reason_string.p);
    else
        buf[0] = 0;
    return buf;
}

static void handle_connack(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    tm_connack ca;
    tm_rc rc = tm_decode_connack(body, f->remaining, c->version, &ca);
    if (rc != TM_RC_SUCCESS) {
        tm_client_fail(c, (uint8_t)rc, "malformed CONNACK: %s", tm_rc_name(rc));
        return;
    }
    if (c->state != TM_CS_MQTT_CONNECTING) {
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "unexpected second CONNACK");
        return;
    }
    tm_client_trace(c, "<-", "CONNACK (sp%d, rc%u)", ca.session_present, ca.code);
    if (ca.code != 0) {
        char why[300], rs[280];
        if (c->version == TM_V5)
            snprintf(why, sizeof why, "connection refused: %s%s", tm_rc_name(ca.code),
                     reason_text(&ca.props, rs, sizeof rs));
        else {
            static const char *const v3[] = {"accepted", "unacceptable protocol version",
                                             "identifier rejected", "server unavailable",
                                             "bad user name or password", "not authorized"};
            snprintf(why, sizeof why, "connection refused: %s",
                     ca.code < 6 ? v3[ca.code] : "unknown return code");
        }
        tm_client_set_error(c, "%s", why);
        CALLBACK(c, on_connect, ca.code, ca.session_present, &ca.props);
        /* A refused CONNACK is followed by the server closing; we close first. */
        uint8_t reason = c->version == TM_V5 ? ca.code : TM_RC_UNSPECIFIED;
        tm_client_close(c, reason, why);
        return;
    }
    c->state = TM_CS_CONNECTED;
    if (c->version == TM_V5) {
        const tm_props *p = &ca.props;
        if (p->present & TM_PBIT(TM_P_RECEIVE_MAX))
            c->srv.receive_max = p->receive_max;
        if (p->present & TM_PBIT(TM_P_MAX_PACKET_SIZE))
            c->srv.max_packet_size = p->max_packet_size;
        if (p->present & TM_PBIT(TM_P_TOPIC_ALIAS_MAX))
            c->srv.topic_alias_max = p->topic_alias_max;
        if (p->present & TM_PBIT(TM_P_SERVER_KEEP_ALIVE))
            c->srv.keep_alive = p->server_keep_alive;
        if (p->present & TM_PBIT(TM_P_MAX_QOS))
            c->srv.max_qos = p->max_qos;
        if (p->present & TM_PBIT(TM_P_RETAIN_AVAILABLE))
            c->srv.retain_available = p->retain_available != 0;
        if (p->assigned_client_id.p) {
            size_t n = p->assigned_client_id.len;
            if (n >= sizeof c->srv.assigned_client_id)
                n = sizeof c->srv.assigned_client_id - 1;
            memcpy(c->srv.assigned_client_id, p->assigned_client_id.p, n);
            c->srv.assigned_client_id[n] = 0;
        }
    }
    c->window = c->srv.receive_max < c->max_inflight ? c->srv.receive_max : c->max_inflight;
    if (c->window == 0)
        c->window = 1;
    CALLBACK(c, on_connect, 0, ca.session_present, &ca.props);
    if (c->state == TM_CS_CONNECTED)
        tm_client_send_queued(c);
}

/* v5 topic aliases the server uses towards us (only if we allowed some). */
static int resolve_alias(tm_client *c, tm_publish *p)
{
    if (!(p->props.present & TM_PBIT(TM_P_TOPIC_ALIAS))) {
        if (p->topic.len == 0) {
            tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "PUBLISH without topic or alias");
            return -1;
        }
        return 0;
    }
    uint16_t a = p->props.topic_alias;
    if (a == 0 || a > c->topic_alias_max_in) {
        tm_client_fail(c, TM_RC_TOPIC_ALIAS_INVALID, "server used topic alias %u (maximum %u)",
                       (unsigned)a, (unsigned)c->topic_alias_max_in);
        return -1;
    }
    if (p->topic.len) {
        uint8_t *copy = malloc(p->topic.len);
        if (!copy) {
            tm_client_fail(c, TM_RC_UNSPECIFIED, "out of memory");
            return -1;
        }
        memcpy(copy, p->topic.p, p->topic.len);
        free((void *)c->aliases[a].p);
        c->aliases[a].p = copy;
        c->aliases[a].len = p->topic.len;
    } else if (!c->aliases[a].p) {
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "server used unknown topic alias %u",
                       (unsigned)a);
        return -1;
    } else {
        p->topic = c->aliases[a];
    }
    return 0;
}

static void handle_publish(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    tm_publish p;
    tm_rc rc = tm_decode_publish(body, f->remaining, f->flags, c->version, &p);
    if (rc != TM_RC_SUCCESS) {
        tm_client_fail(c, (uint8_t)rc, "malformed PUBLISH: %s", tm_rc_name(rc));
        return;
    }
    if (c->version == TM_V5 && resolve_alias(c, &p) < 0)
        return;
    tm_client_trace(c, "<-", "PUBLISH (d%d, q%u, r%d, m%u, '%.*s', ... (%u bytes))", p.dup,
                    p.qos, p.retain, p.packet_id, (int)p.topic.len, (const char *)p.topic.p,
                    p.payload.len);
    if (p.qos == 2) {
        if (tm_pidmap_get(&c->in_ids, p.packet_id) == TM_IN_WAIT_PUBREL) {
            /* Retransmission of a message we already delivered. */
            tm_client_send_ack(c, TM_PUBREC, p.packet_id, 0);
            return;
        }
        if (c->nin_qos2 >= c->receive_max_in) {
            tm_client_fail(c, TM_RC_RECEIVE_MAX_EXCEEDED,
                           "server exceeded our receive maximum (%u)",
                           (unsigned)c->receive_max_in);
            return;
        }
        if (tm_pidmap_put(&c->in_ids, p.packet_id, TM_IN_WAIT_PUBREL) < 0) {
            tm_client_fail(c, TM_RC_UNSPECIFIED, "out of memory");
            return;
        }
        c->nin_qos2++;
    }
    tm_client_msg m = {.topic = p.topic, .payload = p.payload, .qos = p.qos,
                       .retain = p.retain, .dup = p.dup, .packet_id = p.packet_id,
                       .props = &p.props};
    CALLBACK(c, on_message, &m);
    if (c->state != TM_CS_CONNECTED)
        return;   /* the callback disconnected: the server will redeliver */
    if (p.qos == 1)
        tm_client_send_ack(c, TM_PUBACK, p.packet_id, 0);
    else if (p.qos == 2)
        tm_client_send_ack(c, TM_PUBREC, p.packet_id, 0);
}

static void flow_done(tm_client *c, uint16_t pid, uint8_t reason)
{
    tm_pidmap_del(&c->out_ids, pid);
    if (c->ninflight)
        c->ninflight--;
    CALLBACK(c, on_publish_done, pid, reason);
    if (c->state == TM_CS_CONNECTED)
        tm_client_send_queued(c);
}

static void handle_ack(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    tm_ack a;
    tm_rc rc = tm_decode_ack(f->type, body, f->remaining, f->flags, c->version, &a);
    if (rc != TM_RC_SUCCESS) {
        tm_client_fail(c, (uint8_t)rc, "malformed %s: %s", tm_ptype_name(f->type),
                       tm_rc_name(rc));
        return;
    }
    uint8_t st = tm_pidmap_get(&c->out_ids, a.packet_id);
    tm_client_trace(c, "<-", "%s (m%u, rc%u)", tm_ptype_name(a.type), a.packet_id, a.reason);
    switch (a.type) {
    case TM_PUBACK:
        if (st == TM_OUT_WAIT_PUBACK)
            flow_done(c, a.packet_id, a.reason);
        /* An unknown id is ignored: it can be a late duplicate. */
        break;
    case TM_PUBREC:
        if (st == TM_OUT_WAIT_PUBREC && a.reason >= 0x80) {
            flow_done(c, a.packet_id, a.reason);
        } else if (st == TM_OUT_WAIT_PUBREC || st == TM_OUT_WAIT_PUBCOMP) {
            tm_pidmap_put(&c->out_ids, a.packet_id, TM_OUT_WAIT_PUBCOMP);
            tm_client_send_ack(c, TM_PUBREL, a.packet_id, 0);
        } else if (a.reason < 0x80) {
            /* Not ours: release it so the server can forget it (§4.3.3). */
            tm_client_send_ack(c, TM_PUBREL, a.packet_id, TM_RC_PACKET_ID_NOT_FOUND);
        }
        break;
    case TM_PUBCOMP:
        if (st == TM_OUT_WAIT_PUBCOMP)
            flow_done(c, a.packet_id, a.reason);
        break;
    case TM_PUBREL:
        if (tm_pidmap_get(&c->in_ids, a.packet_id) == TM_IN_WAIT_PUBREL) {
            tm_pidmap_del(&c->in_ids, a.packet_id);
            if (c->nin_qos2)
                c->nin_qos2--;
            tm_client_send_ack(c, TM_PUBCOMP, a.packet_id, 0);
        } else {
            tm_client_send_ack(c, TM_PUBCOMP, a.packet_id, TM_RC_PACKET_ID_NOT_FOUND);
        }
        break;
    default:
        break;
    }
}

static void handle_suback(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    tm_suback s;
    tm_rc rc = tm_decode_suback(f->type, body, f->remaining, c->version, &s);
    if (rc != TM_RC_SUCCESS) {
        tm_client_fail(c, (uint8_t)rc, "malformed %s: %s", tm_ptype_name(f->type),
                       tm_rc_name(rc));
        return;
    }
    uint8_t want = f->type == TM_SUBACK ? TM_OUT_WAIT_SUBACK : TM_OUT_WAIT_UNSUBACK;
    tm_client_trace(c, "<-", "%s (m%u, %u codes)", tm_ptype_name(f->type), s.packet_id,
                    s.codes.len);
    if (tm_pidmap_get(&c->out_ids, s.packet_id) != want) {
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "%s for unknown packet id %u",
                       tm_ptype_name(f->type), (unsigned)s.packet_id);
        return;
    }
    tm_pidmap_del(&c->out_ids, s.packet_id);
    if (f->type == TM_SUBACK)
        CALLBACK(c, on_subscribe, s.packet_id, s.codes.p, s.codes.len, &s.props);
    else
        CALLBACK(c, on_unsubscribe, s.packet_id, s.codes.p, s.codes.len, &s.props);
}

static void handle_disconnect(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    if (c->version != TM_V5) {
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "server sent DISCONNECT (not allowed in 3.1.1)");
        return;
    }
    tm_disconnect d;
    tm_rc rc = tm_decode_disconnect(body, f->remaining, c->version, &d);
    if (rc != TM_RC_SUCCESS) {
        tm_client_fail(c, (uint8_t)rc, "malformed DISCONNECT: %s", tm_rc_name(rc));
        return;
    }
    char msg[300], rs[280];
    snprintf(msg, sizeof msg, "server disconnected: %s%s", tm_rc_name(d.reason),
             reason_text(&d.props, rs, sizeof rs));
    tm_client_trace(c, "<-", "DISCONNECT (%s)", tm_rc_name(d.reason));
    tm_client_close(c, d.reason, msg);
}

void tm_client_handle(tm_client *c, const tm_frame *f, const uint8_t *body)
{
    if (c->state == TM_CS_MQTT_CONNECTING && f->type != TM_CONNACK &&
        !(f->type == TM_DISCONNECT && c->version == TM_V5)) {
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "expected CONNACK, got %s",
                       tm_ptype_name(f->type));
        return;
    }
    switch (f->type) {
    case TM_CONNACK:
        handle_connack(c, f, body);
        break;
    case TM_PUBLISH:
        handle_publish(c, f, body);
        break;
    case TM_PUBACK:
    case TM_PUBREC:
    case TM_PUBREL:
    case TM_PUBCOMP:
        handle_ack(c, f, body);
        break;
    case TM_SUBACK:
    case TM_UNSUBACK:
        handle_suback(c, f, body);
        break;
    case TM_PINGRESP:
        if (f->remaining != 0) {
            tm_client_fail(c, TM_RC_MALFORMED, "malformed PINGRESP");
            return;
        }
        tm_client_trace(c, "<-", "PINGRESP");
        c->ping_out = false;
        break;
    case TM_DISCONNECT:
        handle_disconnect(c, f, body);
        break;
    default:
        tm_client_fail(c, TM_RC_PROTOCOL_ERROR, "server sent %s, which only clients send",
                       tm_ptype_name(f->type));
        break;
    }
}
