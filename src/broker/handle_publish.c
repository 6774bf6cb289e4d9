/*
 * handle_publish.c — what happens on PUBLISH from a client: topic aliases,
 * the $-topic rule, payload format check, ACL, QoS 1 / QoS 2 receiver state
 * machines (QoS 2 "method B": the message is routed on PUBLISH and its packet
 * id remembered until PUBREL, so a retransmission is not routed twice).
 *
 * mount_point: a listener's clients live under its prefix. Their topics
 * (PUBLISH, SUBSCRIBE, the will) get the prefix here, before ACL checks, and
 * lose it on the way out (deliver.c), as in Mosquitto.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

char *tm_mount(const tm_conn *c, tm_str topic, tm_str *out)
{
    const char *mp = tm_conn_lcfg(c)->mount_point;
    if (!mp)
        return NULL;
    size_t ml = strlen(mp);
    char *buf = malloc(ml + topic.len + 1);
    if (!buf)
        return NULL;
    memcpy(buf, mp, ml);
    if (topic.len)
        memcpy(buf + ml, topic.p, topic.len);
    buf[ml + topic.len] = 0;
    *out = (tm_str){(const uint8_t *)buf, (uint32_t)(ml + topic.len)};
    return buf;
}

static void send_ack(tm_conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    tm_ack a;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.packet_id = pid;
    a.reason = c->version == TM_V5 ? reason : 0;
    tm_encode_ack(&c->out, c->version, &a);
    tm_conn_mark_dirty(c);
}

/* Acknowledge a QoS 1/2 PUBLISH that is refused with `reason` (v5) or
 * silently dropped (v3, which has no way to say no). */
static tm_rc refuse_publish(tm_conn *c, const tm_publish *p, uint8_t reason, const char *why)
{
    tm_log(TM_LOG_INFO, "client '%s': PUBLISH to '%.*s' refused: %s", tm_conn_client_id(c),
           (int)p->topic.len, (const char *)p->topic.p, why);
    if (p->qos == 1)
        send_ack(c, TM_PUBACK, p->packet_id, reason);
    else if (p->qos == 2)
        send_ack(c, TM_PUBREC, p->packet_id, reason);
    return TM_RC_SUCCESS;
}

static tm_rc publish_checked(tm_conn *c, tm_publish *pp);

tm_rc tm_handle_publish(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len)
{
    tm_broker *b = tm_conn_b(c);
    tm_session *s = c->sess;
    tm_publish p;
    tm_rc rc = tm_decode_publish(body, len, flags, c->version, &p);
    if (rc != TM_RC_SUCCESS)
        return rc;
    b->st.pub_received++;
    /* subscription identifiers travel only from server to client */
    if (p.props.present & TM_PBIT(TM_P_SUB_ID))
        return TM_RC_PROTOCOL_ERROR;

    if (p.qos > tm_config_max_qos(b->cfg, tm_conn_lcfg(c)))
        return TM_RC_QOS_NOT_SUPPORTED;
    if (p.retain && !b->cfg->retain_available)
        return TM_RC_RETAIN_NOT_SUPPORTED;

    /* Topic alias (client -> broker). */
    if (c->version == TM_V5 && (p.props.present & TM_PBIT(TM_P_TOPIC_ALIAS))) {
        uint16_t a = p.props.topic_alias;
        uint32_t max_alias = tm_config_max_topic_alias(b->cfg, tm_conn_lcfg(c));
        if (a == 0 || a > max_alias)
            return TM_RC_TOPIC_ALIAS_INVALID;
        tm_conn_alias *al = tm_conn_alias_get(c);
        if (al && !al->in)   /* allocated on first use: most clients never use aliases */
            al->in = calloc((size_t)max_alias + 1, sizeof *al->in);
        if (!al || !al->in)
            return TM_RC_UNSPECIFIED;
        if (p.topic.len) {
            tm_str *slot = &al->in[a];
            uint8_t *copy = malloc(p.topic.len);
            if (!copy)
                return TM_RC_UNSPECIFIED;
            memcpy(copy, p.topic.p, p.topic.len);
            free((void *)slot->p);
            *slot = (tm_str){copy, p.topic.len};
        } else {
            if (!al->in[a].p)
                return TM_RC_PROTOCOL_ERROR;   /* alias never set */
            p.topic = al->in[a];
        }
        p.props.present &= ~TM_PBIT(TM_P_TOPIC_ALIAS);
    } else if (p.topic.len == 0) {
        return TM_RC_PROTOCOL_ERROR;
    }

    /* QoS 2 retransmission: already routed, answer PUBREC again. */
    if (p.qos == 2 && tm_sess_qos2_has(s, p.packet_id)) {
        send_ack(c, TM_PUBREC, p.packet_id, TM_RC_SUCCESS);
        return TM_RC_SUCCESS;
    }

    if (p.topic.p[0] == '$' && !c->is_bridge && !tm_bridge_notice(p.topic))
        return refuse_publish(c, &p, TM_RC_NOT_AUTHORIZED,
                              "clients may not publish to $-topics");
    if (c->version == TM_V5 && (p.props.present & TM_PBIT(TM_P_PAYLOAD_FORMAT)) &&
        p.props.payload_format == 1 && !tm_utf8_valid(p.payload.p, p.payload.len)) {
        if (p.qos == 0)
            return TM_RC_PAYLOAD_FORMAT_INVALID;
        return refuse_publish(c, &p, TM_RC_PAYLOAD_FORMAT_INVALID,
                              "payload is not UTF-8 as its format indicator says");
    }
    if (b->cfg->message_size_limit && p.payload.len > b->cfg->message_size_limit)
        return refuse_publish(c, &p, TM_RC_PACKET_TOO_LARGE,
                              "payload larger than message_size_limit");
    char *mounted = NULL;
    if (c->is_bridge) {
        /* from the remote broker: our name for the topic */
        if (!tm_bridge_map(c, false, p.topic, &p.topic, &mounted)) {
            tm_log(TM_LOG_DEBUG, "bridge '%s': PUBLISH to '%.*s' matches no `in` topic: "
                   "dropped", tm_conn_client_id(c), (int)p.topic.len, (const char *)p.topic.p);
            if (p.qos)
                send_ack(c, p.qos == 1 ? TM_PUBACK : TM_PUBREC, p.packet_id, TM_RC_SUCCESS);
            return TM_RC_SUCCESS;
        }
    } else if (tm_conn_lcfg(c)->mount_point && !(mounted = tm_mount(c, p.topic, &p.topic))) {
        return TM_RC_UNSPECIFIED;
    }
    tm_rc rc2 = publish_checked(c, &p);
    free(mounted);
    return rc2;
}

/* The rest of a PUBLISH, once its topic is the one the broker uses (mounted). */
static tm_rc publish_checked(tm_conn *c, tm_publish *pp)
{
    tm_broker *b = tm_conn_b(c);
    tm_session *s = c->sess;
    tm_publish p = *pp;
    if (b->auth && !(c->is_bridge && tm_bridge_trusted(c)) &&
        !tm_acl_allowed(b->auth, tm_conn_username(c), tm_conn_client_id(c), tm_conn_attest(c), p.topic,
                        TM_ACC_WRITE))
        return refuse_publish(c, &p, TM_RC_NOT_AUTHORIZED, "denied by ACL");

    if (p.qos == 2) {
        uint16_t recv_max = b->cfg->max_inflight;
        if (c->version == TM_V5 && tm_sess_qos2_count(s) >= recv_max)
            return TM_RC_RECEIVE_MAX_EXCEEDED;
        if (!tm_sess_qos2_add(s, p.packet_id))
            return TM_RC_UNSPECIFIED;
        tm_jr_q2(b, s, p.packet_id, true);
    }

    tm_msg *m = tm_msg_new(p.topic, p.payload, p.qos, p.retain,
                           c->version == TM_V5 ? &p.props : NULL, s->id, b->now);
    if (!m)
        return TM_RC_UNSPECIFIED;
    if (p.retain && p.payload.len && b->cfg->check_retain_source)
        tm_msg_set_source(m, (tm_str){(const uint8_t *)tm_conn_client_id(c),
                                      (uint32_t)strlen(tm_conn_client_id(c))},
                          tm_conn_username(c), tm_conn_attest(c));
    tm_route(b, m, true);
    uint32_t matched = b->n_matches;
    tm_msg_unref(m);

    uint8_t reason = matched ? TM_RC_SUCCESS : TM_RC_NO_MATCHING_SUBSCRIBERS;
    if (p.qos == 1)
        send_ack(c, TM_PUBACK, p.packet_id, reason);
    else if (p.qos == 2)
        send_ack(c, TM_PUBREC, p.packet_id, reason);
    return TM_RC_SUCCESS;
}
