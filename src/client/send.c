/*
 * send.c — operations that produce packets: PUBLISH (with the outgoing QoS
 * window and its queue), SUBSCRIBE, UNSUBSCRIBE, DISCONNECT and the acks.
 *
 * The window: at most c->window QoS>0 PUBLISH packets are unacknowledged
 * (the server's receive maximum, or our max_inflight for 3.1.1). Beyond it a
 * PUBLISH is encoded once into a tm_qpkt and queued, and leaves in order as
 * acknowledgements free slots. Packet ids are allocated when the operation is
 * called (so callers learn them at once) and never reused while in use.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

static int not_connected(tm_client *c)
{
    tm_client_set_error(c, "not connected (state %s)", tm_client_state_name(c->state));
    return -1;
}

static int alloc_pid(tm_client *c)
{
    if (c->out_ids.n >= 65535) {
        tm_client_set_error(c, "all 65535 packet ids are in use");
        return -1;
    }
    for (;;) {
        c->next_pid = (uint16_t)(c->next_pid + 1);
        if (c->next_pid == 0)
            c->next_pid = 1;
        if (tm_pidmap_get(&c->out_ids, c->next_pid) == TM_ID_FREE)
            return c->next_pid;
    }
}

void tm_client_send_ack(tm_client *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    tm_ack a;
    memset(&a, 0, sizeof a);
    a.type = type;
    a.packet_id = pid;
    a.reason = reason;
    tm_encode_ack(&c->out, c->version, &a);
    tm_client_trace(c, "->", "%s (m%u, rc%u)", tm_ptype_name(type), pid, reason);
    tm_client_want_write(c);
}

void tm_client_free_queue(tm_client *c)
{
    tm_qpkt *q = c->qhead;
    while (q) {
        tm_qpkt *n = q->next;
        free(q);
        q = n;
    }
    c->qhead = c->qtail = NULL;
    c->nqueued = 0;
}

void tm_client_send_queued(tm_client *c)
{
    bool any = false;
    while (c->qhead && c->ninflight < c->window) {
        tm_qpkt *q = c->qhead;
        c->qhead = q->next;
        if (!c->qhead)
            c->qtail = NULL;
        c->nqueued--;
        tm_buf_put(&c->out, q->data, q->len);
        tm_pidmap_put(&c->out_ids, q->pid, q->qos == 1 ? TM_OUT_WAIT_PUBACK : TM_OUT_WAIT_PUBREC);
        c->ninflight++;
        tm_client_trace(c, "->", "PUBLISH (q%u, m%u, from queue)", q->qos, q->pid);
        free(q);
        any = true;
    }
    if (any)
        tm_client_want_write(c);
}

int tm_client_publish_str(tm_client *c, tm_str topic, const void *payload, size_t len,
                          uint8_t qos, bool retain, const tm_props *props)
{
    if (c->state != TM_CS_CONNECTED)
        return not_connected(c);
    if (qos > 2) {
        tm_client_set_error(c, "QoS must be 0, 1 or 2");
        return -1;
    }
    if (qos > c->srv.max_qos) {
        tm_client_set_error(c, "the server supports QoS up to %u only", c->srv.max_qos);
        return -1;
    }
    if (retain && !c->srv.retain_available) {
        tm_client_set_error(c, "the server does not support retained messages");
        return -1;
    }
    bool alias = props && (props->present & TM_PBIT(TM_P_TOPIC_ALIAS));
    if (!(alias && topic.len == 0) &&
        (!tm_utf8_valid(topic.p, topic.len) || !tm_topic_name_valid(topic.p, topic.len))) {
        tm_client_set_error(c, "invalid topic name '%.*s'", (int)topic.len,
                             topic.p ? (const char *)topic.p : "");
        return -1;
    }
    if (alias && (props->topic_alias == 0 || props->topic_alias > c->srv.topic_alias_max)) {
        tm_client_set_error(c, "topic alias %u exceeds the server's maximum %u",
                             (unsigned)props->topic_alias, (unsigned)c->srv.topic_alias_max);
        return -1;
    }
    if (len > TM_MAX_VBI) {
        tm_client_set_error(c, "payload too large");
        return -1;
    }
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.qos = qos;
    p.retain = retain;
    p.topic = topic;
    p.payload.p = payload ? payload : (const uint8_t *)"";
    p.payload.len = (uint32_t)len;
    if (props && c->version == TM_V5)
        p.props = *props;
    size_t size = tm_publish_size(c->version, &p);
    if (size > (size_t)TM_MAX_VBI + 5 ||
        (c->srv.max_packet_size && size > c->srv.max_packet_size)) {
        tm_client_set_error(c, "PUBLISH of %zu bytes exceeds the server's maximum packet size %u",
                             size, c->srv.max_packet_size);
        return -1;
    }
    int pid = 0;
    if (qos > 0) {
        pid = alloc_pid(c);
        if (pid < 0)
            return -1;
        p.packet_id = (uint16_t)pid;
    }
    if (qos == 0 || (c->ninflight < c->window && !c->qhead)) {
        tm_encode_publish(&c->out, c->version, &p);
        if (c->out.oom) {
            tm_client_set_error(c, "out of memory");
            return -1;
        }
        if (qos > 0) {
            if (tm_pidmap_put(&c->out_ids, p.packet_id,
                              qos == 1 ? TM_OUT_WAIT_PUBACK : TM_OUT_WAIT_PUBREC) < 0) {
                tm_client_set_error(c, "out of memory");
                return -1;
            }
            c->ninflight++;
        }
        tm_client_trace(c, "->", "PUBLISH (d0, q%u, r%d, m%d, '%.*s', ... (%zu bytes))", qos,
                        retain, pid, (int)topic.len, (const char *)topic.p, len);
        tm_client_want_write(c);
        return pid;
    }
    /* Window full: encode once, queue. */
    tm_buf tmp;
    tm_buf_init(&tmp);
    tm_encode_publish(&tmp, c->version, &p);
    tm_qpkt *q = tmp.oom ? NULL : malloc(sizeof *q + tmp.len);
    if (!q || tm_pidmap_put(&c->out_ids, p.packet_id, TM_OUT_QUEUED) < 0) {
        free(q);
        tm_buf_free(&tmp);
        tm_client_set_error(c, "out of memory");
        return -1;
    }
    memcpy(q->data, tmp.data, tmp.len);
    size = tmp.len;
    tm_buf_free(&tmp);
    q->next = NULL;
    q->pid = p.packet_id;
    q->qos = qos;
    q->len = size;
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    c->nqueued++;
    return pid;
}

int tm_client_publish(tm_client *c, const char *topic, const void *payload, size_t len,
                      uint8_t qos, bool retain, const tm_props *props)
{
    tm_str t = {(const uint8_t *)(topic ? topic : ""), topic ? (uint32_t)strlen(topic) : 0};
    return tm_client_publish_str(c, t, payload, len, qos, retain, props);
}

static int sub_common(tm_client *c, bool unsub, const char *const *filters,
                      const tm_subopts *opts, uint32_t n, const tm_props *props)
{
    if (c->state != TM_CS_CONNECTED)
        return not_connected(c);
    if (n == 0 || n > 4096) {
        tm_client_set_error(c, "need 1..4096 topic filters");
        return -1;
    }
    tm_str *fs = malloc(n * sizeof *fs);
    if (!fs) {
        tm_client_set_error(c, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t l = filters[i] ? strlen(filters[i]) : 0;
        if (!l || l > 65535 || !tm_utf8_valid((const uint8_t *)filters[i], l) ||
            !tm_topic_filter_valid((const uint8_t *)filters[i], l)) {
            tm_client_set_error(c, "invalid topic filter '%s'", filters[i] ? filters[i] : "");
            free(fs);
            return -1;
        }
        if (!unsub && opts[i].qos > 2) {
            tm_client_set_error(c, "QoS must be 0, 1 or 2");
            free(fs);
            return -1;
        }
        fs[i].p = (const uint8_t *)filters[i];
        fs[i].len = (uint32_t)l;
    }
    int pid = alloc_pid(c);
    if (pid < 0) {
        free(fs);
        return -1;
    }
    tm_props none;
    memset(&none, 0, sizeof none);
    const tm_props *pr = props && c->version == TM_V5 ? props : &none;
    if (unsub)
        tm_encode_unsubscribe(&c->out, c->version, (uint16_t)pid, pr, fs, n);
    else
        tm_encode_subscribe(&c->out, c->version, (uint16_t)pid, pr, fs, opts, n);
    free(fs);
    if (c->out.oom ||
        tm_pidmap_put(&c->out_ids, (uint16_t)pid,
                      unsub ? TM_OUT_WAIT_UNSUBACK : TM_OUT_WAIT_SUBACK) < 0) {
        tm_client_set_error(c, "out of memory");
        return -1;
    }
    tm_client_trace(c, "->", "%s (m%d, %u filters, first '%s')", unsub ? "UNSUBSCRIBE" : "SUBSCRIBE",
                    pid, n, filters[0]);
    tm_client_want_write(c);
    return pid;
}

int tm_client_subscribe(tm_client *c, const char *const *filters, const tm_subopts *opts,
                        uint32_t n, const tm_props *props)
{
    if (!opts) {
        tm_client_set_error(c, "subscribe needs options");
        return -1;
    }
    return sub_common(c, false, filters, opts, n, props);
}

int tm_client_unsubscribe(tm_client *c, const char *const *filters, uint32_t n,
                          const tm_props *props)
{
    return sub_common(c, true, filters, NULL, n, props);
}

int tm_client_disconnect(tm_client *c, uint8_t reason, const tm_props *props)
{
    if (c->state == TM_CS_TCP_CONNECTING || c->state == TM_CS_TLS_HANDSHAKE ||
        c->state == TM_CS_MQTT_CONNECTING) {
        /* Nothing to say politely yet: just hang up. */
        c->depth++;
        tm_client_close(c, reason, NULL);
        tm_client_leave(c);
        return 0;
    }
    if (c->state != TM_CS_CONNECTED)
        return not_connected(c);
    if (c->version == TM_V5) {
        tm_disconnect d;
        memset(&d, 0, sizeof d);
        d.reason = reason;
        if (props)
            d.props = *props;
        tm_encode_disconnect(&c->out, c->version, &d);
    } else {
        tm_encode_simple(&c->out, TM_DISCONNECT);
    }
    tm_client_trace(c, "->", "DISCONNECT (rc%u)", reason);
    c->state = TM_CS_DISCONNECTING;
    c->disc_reason = reason;
    c->disc_is_error = false;
    c->deadline = tm_client_now_ms() + 5000;
    tm_client_want_write(c);
    return 0;
}
