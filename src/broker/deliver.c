/*
 * deliver.c — from one published message to every subscriber's socket.
 *
 * tm_route matches the topic once, then hands each matching session one
 * delivery. QoS 0 goes straight to the connection's output buffer; QoS 1/2
 * go through the session's queue (tm_outq), whose front part is the in-flight
 * window (bounded by the client's receive maximum and max_inflight_messages).
 *
 * Speed: during one fan-out the PUBLISH bytes are encoded once per distinct
 * outgoing form (protocol version, QoS, retain flag) and copied to each
 * connection, patching only the packet identifier. Forms that differ per
 * subscriber (subscription identifiers, topic aliases, DUP) are encoded
 * individually. The payload itself lives once, in the tm_msg.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

/* ---- encode cache for one fan-out (b->forms) ---------------------------- */

static uint8_t form_key(uint8_t version, uint8_t qos, bool retain)
{
    return (uint8_t)((version == TM_V5 ? 1 : version == TM_V311 ? 2 : 0) * 6 + qos * 2 +
                     (retain ? 1 : 0));
}

static void encode_publish(tm_broker *b, tm_buf *out, uint8_t version, tm_msg *m, uint8_t qos,
                           bool retain, bool dup, uint16_t pid, const uint32_t *subids,
                           uint8_t n_subids, tm_str topic, uint16_t alias)
{
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.qos = qos;
    p.retain = retain;
    p.dup = dup;
    p.topic = topic;
    p.packet_id = pid;
    p.payload = m->payload;
    if (version == TM_V5) {
        tm_msg_props(m, b->now, &p.props);
        for (uint8_t i = 0; i < n_subids && i < TM_MAX_SUB_IDS; i++)
            p.props.sub_ids[p.props.n_sub_ids++] = subids[i];
        if (p.props.n_sub_ids)
            p.props.present |= TM_PBIT(TM_P_SUB_ID);
        if (alias) {
            p.props.topic_alias = alias;
            p.props.present |= TM_PBIT(TM_P_TOPIC_ALIAS);
        }
    }
    tm_encode_publish(out, version, &p);
}

/* Outgoing topic alias for this topic on c: 0 when none is used. Sets
 * *send_topic to false when the alias is already known to the client. */
static uint16_t out_alias(tm_conn *c, tm_str topic, bool *send_topic)
{
    *send_topic = true;
    if (!c->alias_max_out || c->version != TM_V5)
        return 0;
    tm_conn_alias *al = tm_conn_alias_get(c);
    if (!al)
        return 0;
    const tm_alias_out *known = tm_map_get(&al->out, topic.p, topic.len);
    if (known) {
        *send_topic = false;
        return known->alias;
    }
    if (al->out_next >= c->alias_max_out)
        return 0;
    tm_alias_out *a = malloc(sizeof *a + topic.len + 1);
    if (!a)
        return 0;
    memcpy(a->topic, topic.p, topic.len);
    a->alias = ++al->out_next;
    if (tm_map_put(&al->out, a->topic, topic.len, a) < 0) {
        free(a);
        al->out_next--;
        return 0;
    }
    return a->alias;
}

static bool send_as(tm_broker *b, tm_conn *c, tm_msg *m, tm_str full, uint8_t qos,
                    bool retain, bool dup, uint16_t pid, const uint32_t *subids,
                    uint8_t n_subids);

bool tm_send_publish(tm_broker *b, tm_conn *c, tm_msg *m, uint8_t qos, bool retain, bool dup,
                     uint16_t pid, const uint32_t *subids, uint8_t n_subids)
{
    if (!c->is_bridge)
        return send_as(b, c, m, m->topic, qos, retain, dup, pid, subids, n_subids);
    /* a bridge: the remote broker's name for the topic (a delivery no bridge
     * topic maps is not sent, as with a mount point) */
    tm_str remote;
    char *buf;
    if (!tm_bridge_map(c, true, m->topic, &remote, &buf))
        return false;
    bool sent = send_as(b, c, m, remote, qos, retain && tm_bridge_outgoing_retain(c), dup, pid,
                        subids, n_subids);
    free(buf);
    return sent;
}

/* `full`: the topic as this connection names it (m->topic unless bridged). */
static bool send_as(tm_broker *b, tm_conn *c, tm_msg *m, tm_str full, uint8_t qos,
                    bool retain, bool dup, uint16_t pid, const uint32_t *subids,
                    uint8_t n_subids)
{
    const char *mp = tm_conn_lcfg(c)->mount_point;
    if (mp) {
        /* mount_point: the client sees the topic without its listener's prefix;
         * a topic outside it (never matched by its mounted filters) is not sent */
        size_t ml = strlen(mp);
        if (full.len <= ml || memcmp(full.p, mp, ml) != 0)
            return false;
        full = (tm_str){full.p + ml, (uint32_t)(full.len - ml)};
    }
    bool send_topic;
    uint16_t alias = out_alias(c, full, &send_topic);
    tm_str topic = send_topic ? full : (tm_str){(const uint8_t *)"", 0};
    /* With persistence, a QoS 0/1 delivery acknowledges nothing and may be
     * repeated after a crash, so it need not wait for the journal commit —
     * as long as nothing that must wait precedes it on this connection. */
    tm_buf *out = &c->out;
    if (b->jr.on && qos < 2 && c->out.len == 0 && tm_conn_ext_get(c))
        out = &c->ext->out_early;   /* (without memory for it: after the commit) */
    size_t before = out->len;
    bool uncached = dup || n_subids || alias || mp || c->is_bridge ||
                    (c->version == TM_V5 && (m->props.present & TM_PBIT(TM_P_MESSAGE_EXPIRY))) ||
                    !b->forms.active;
    if (uncached) {
        encode_publish(b, out, c->version, m, qos, retain, dup, pid, subids, n_subids,
                       topic, alias);
    } else {
        tm_form_cache *fc = &b->forms;
        if (fc->msg != m) {
            for (int i = 0; i < TM_FORMS; i++)
                fc->f[i].used = false;
            fc->msg = m;
        }
        uint8_t key = form_key(c->version, qos, retain);
        int slot = -1;
        for (int i = 0; i < TM_FORMS; i++) {
            if (fc->f[i].used && fc->f[i].key == key) {
                slot = i;
                break;
            }
            if (!fc->f[i].used && slot < 0)
                slot = i;
        }
        if (slot < 0) {
            encode_publish(b, out, c->version, m, qos, retain, false, pid, NULL, 0, topic, 0);
        } else {
            tm_buf *fb = &fc->f[slot].buf;
            if (!fc->f[slot].used) {
                fb->len = 0;
                encode_publish(b, fb, c->version, m, qos, retain, false, 0, NULL, 0, topic, 0);
                fc->f[slot].used = !fb->oom;
                fc->f[slot].key = key;
                if (qos) {
                    tm_frame fr;
                    tm_frame_parse(fb->data, fb->len, 0, &fr);
                    fc->f[slot].pid_off = fr.header_len + 2 + m->topic.len;
                }
            }
            tm_buf_put(out, fb->data, fb->len);
            if (qos && !out->oom) {
                uint8_t *pp = out->data + before + fc->f[slot].pid_off;
                pp[0] = (uint8_t)(pid >> 8);
                pp[1] = (uint8_t)pid;
            }
        }
    }
    size_t n = out->len - before;
    if (c->max_out_packet && n > c->max_out_packet) {
        /* MQTT 5 3.1.2.25: a packet larger than the client's maximum is
         * discarded without sending, as if it had been delivered */
        out->len = before;
        b->st.pub_dropped++;
        if (tm_log_enabled(TM_LOG_DEBUG))
            tm_log(TM_LOG_DEBUG, "client '%s': PUBLISH of %zu bytes dropped (its maximum "
                   "packet size is %u)", tm_conn_client_id(c) ? tm_conn_client_id(c) : "?", n,
                   c->max_out_packet);
        return false;
    }
    b->st.msgs_sent++;
    b->st.pub_sent++;
    tm_conn_mark_dirty(c);
    return true;
}

/* ---- the session queue -------------------------------------------------- */

static tm_out *q_at(tm_outq *q, uint32_t i) { return tm_outq_at(q, i); }

static tm_out *q_push(tm_outq *q)
{
    if (q->count == q->cap) {
        uint32_t nc = q->cap ? q->cap * 2 : 8;
        tm_out *ne = malloc(nc * sizeof *ne);
        if (!ne)
            return NULL;
        for (uint32_t i = 0; i < q->count; i++)
            ne[i] = *q_at(q, i);
        free(q->e);
        q->e = ne;
        q->cap = nc;
        q->head = 0;
    }
    tm_out *o = tm_outq_at(q, q->count);
    q->count++;
    memset(o, 0, sizeof *o);
    return o;
}

static void q_pop_done(tm_outq *q)
{
    while (q->sent && q_at(q, 0)->state == TM_OUT_DONE) {
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        q->sent--;
    }
}

void tm_outq_free(tm_outq *q)
{
    if (!q)
        return;
    for (uint32_t i = 0; i < q->count; i++)
        tm_msg_unref(q_at(q, i)->msg);
    free(q->e);
    free(q);
}

/* The session's queue, made on first use (an idle session has none); NULL
 * when out of memory. */
static tm_outq *sess_q(tm_session *s)
{
    if (!s->q)
        s->q = calloc(1, sizeof *s->q);
    return s->q;
}

static uint32_t window(tm_broker *b, tm_conn *c)
{
    uint32_t w = b->cfg->max_inflight;
    if (c->recv_max && c->recv_max < w)
        w = c->recv_max;
    return w ? w : 1;
}

/* Room for one more QoS 1/2 message in flight: the count window, and
 * max_inflight_bytes (a message larger than it still goes alone). */
static bool has_room(const tm_broker *b, const tm_outq *q, uint32_t w)
{
    uint64_t maxb = b->cfg->max_inflight_bytes;
    return q->inflight < w && (!maxb || q->inflight_bytes < maxb);
}

/* An in-flight entry's flow ended (acknowledged or discarded). */
static void finish_inflight(tm_outq *q, tm_out *o)
{
    tm_msg_unref(o->msg);
    o->msg = NULL;
    o->state = TM_OUT_DONE;
    q->inflight--;
    q->inflight_bytes -= o->bytes;
    o->bytes = 0;
}

static void send_pubrel(tm_conn *c, uint16_t pid, uint8_t reason)
{
    tm_ack a = {.type = TM_PUBREL, .packet_id = pid, .reason = reason};
    tm_encode_ack(&c->out, c->version, &a);
    tm_conn_mark_dirty(c);
}

void tm_outq_pump(tm_broker *b, tm_session *s)
{
    tm_conn *c = s->conn;
    tm_outq *q = s->q;
    if (!c || c->state != TM_CS_CONNECTED || !q)
        return;
    uint32_t w = window(b, c);
    int64_t now = b->now;
    while (q->sent < q->count && (has_room(b, q, w) || q_at(q, q->sent)->qos == 0)) {
        tm_out *o = q_at(q, q->sent);
        q->sent++;
        if (!tm_msg_alive(o->msg, now, NULL)) {
            tm_jr_q_done(b, s, o);
            tm_msg_unref(o->msg);
            o->msg = NULL;
            o->state = TM_OUT_DONE;
            continue;
        }
        if (o->qos == 0) {
            tm_send_publish(b, c, o->msg, 0, o->retain, false, 0, o->subids, o->n_subids);
            tm_msg_unref(o->msg);
            o->msg = NULL;
            o->state = TM_OUT_DONE;
            continue;
        }
        o->pid = tm_sess_next_pid(s);
        if (!tm_send_publish(b, c, o->msg, o->qos, o->retain, false, o->pid, o->subids,
                             o->n_subids)) {
            /* too large for this client: discarded as if its flow had completed
             * (MQTT-3.1.2-25), so it holds no slot of the in-flight window */
            tm_jr_q_done(b, s, o);
            tm_msg_unref(o->msg);
            o->msg = NULL;
            o->state = TM_OUT_DONE;
            continue;
        }
        o->state = o->qos == 1 ? TM_OUT_WAIT_ACK : TM_OUT_WAIT_REC;
        o->bytes = o->msg->payload.len;
        q->inflight++;
        tm_jr_q_sent(b, s, o);
        q->inflight_bytes += o->bytes;
    }
    q_pop_done(q);
}

void tm_outq_resend(tm_broker *b, tm_session *s)
{
    tm_conn *c = s->conn;
    tm_outq *q = s->q;
    for (uint32_t i = 0; q && i < q->sent; i++) {
        tm_out *o = q_at(q, i);
        if (o->state == TM_OUT_WAIT_ACK || o->state == TM_OUT_WAIT_REC) {
            if (!tm_send_publish(b, c, o->msg, o->qos, o->retain, true, o->pid, o->subids,
                                 o->n_subids)) {
                /* the resumed connection allows smaller packets than the one that
                 * received it first: discarded, its slot freed */
                tm_jr_q_done(b, s, o);
                finish_inflight(q, o);
            }
        } else if (o->state == TM_OUT_WAIT_COMP) {
            send_pubrel(c, o->pid, 0);
        }
    }
    if (q)
        q_pop_done(q);
}

bool tm_outq_ack(tm_broker *b, tm_session *s, uint16_t pid, uint8_t type, uint8_t reason)
{
    tm_outq *q = s->q;           /* o != NULL below means q != NULL */
    tm_out *o = NULL;
    for (uint32_t i = 0; q && i < q->sent; i++) {
        tm_out *x = q_at(q, i);
        if (x->state != TM_OUT_DONE && x->pid == pid) {
            o = x;
            break;
        }
    }
    bool ok = false;
    if (type == TM_PUBACK && o && o->state == TM_OUT_WAIT_ACK) {
        ok = true;
    } else if (type == TM_PUBREC && o && o->state == TM_OUT_WAIT_REC) {
        if (reason >= 0x80) {
            finish_inflight(q, o);
            tm_jr_q_done(b, s, o);
        } else {
            tm_msg_unref(o->msg);
            o->msg = NULL;
            o->state = TM_OUT_WAIT_COMP;
            tm_jr_q_rec(b, s, o);
            send_pubrel(s->conn, pid, 0);
        }
        q_pop_done(q);
        tm_outq_pump(b, s);
        return true;
    } else if (type == TM_PUBREC && o && o->state == TM_OUT_WAIT_COMP) {
        send_pubrel(s->conn, pid, 0);   /* our PUBREL was lost: send it again */
        return true;
    } else if (type == TM_PUBREC && s->conn && s->conn->version == TM_V5) {
        send_pubrel(s->conn, pid, TM_RC_PACKET_ID_NOT_FOUND);
        return true;
    } else if (type == TM_PUBCOMP && o && o->state == TM_OUT_WAIT_COMP) {
        ok = true;
    }
    if (!ok)
        return false;
    tm_jr_q_done(b, s, o);
    finish_inflight(q, o);
    q_pop_done(q);
    tm_outq_pump(b, s);
    return true;
}

/* ---- restoring (journal.c) ---------------------------------------------------- */

int tm_outq_restore(tm_session *s, tm_msg *m, uint32_t qseq, uint8_t qos, bool retain,
                    const uint32_t *subids, uint8_t n_subids)
{
    tm_outq *q = sess_q(s);
    tm_out *o = q ? q_push(q) : NULL;
    if (!o)
        return -1;
    o->msg = m ? tm_msg_ref(m) : NULL;
    o->qseq = qseq;
    o->qos = qos;
    o->retain = retain;
    o->journaled = true;
    o->state = TM_OUT_PENDING;
    o->n_subids = n_subids;
    if (n_subids)
        memcpy(o->subids, subids, n_subids * sizeof *subids);
    return 0;
}

int tm_outq_restore_state(tm_session *s, tm_out *o, uint8_t state, uint16_t pid)
{
    tm_outq *q = s->q;           /* o is one of its entries */
    uint32_t idx = (uint32_t)((o - q->e + q->cap - q->head) & (q->cap - 1));
    if (o->state == TM_OUT_PENDING) {
        if (state == TM_OUT_DONE && idx != q->sent) {
            /* dropped from the middle of the queue (ACL reload): close the gap */
            tm_msg_unref(o->msg);
            for (uint32_t i = idx; i + 1 < q->count; i++)
                *q_at(q, i) = *q_at(q, i + 1);
            q->count--;
            return 0;
        }
        if (idx != q->sent)
            return -1;   /* messages leave the queue in order */
        q->sent++;
        if (state != TM_OUT_DONE)
            q->inflight++;
    } else if (state == TM_OUT_DONE) {
        q->inflight--;
    }
    o->state = state;
    o->pid = pid;
    if (state == TM_OUT_DONE || state == TM_OUT_WAIT_COMP) {
        tm_msg_unref(o->msg);
        o->msg = NULL;
    }
    q_pop_done(q);
    return 0;
}

void tm_outq_restore_finish(tm_session *s)
{
    tm_outq *q = s->q;
    uint16_t top = 0;
    if (!q) {
        s->next_pid = 1;
        return;
    }
    for (uint32_t i = 0; i < q->sent; i++)
        if (q_at(q, i)->state != TM_OUT_DONE && q_at(q, i)->pid > top)
            top = q_at(q, i)->pid;
    s->next_pid = (uint16_t)(top == 65535 ? 1 : top + 1);
    /* an entry whose message was lost cannot be sent: drop it (never happens for
     * a consistent journal; the entry would otherwise block the queue) */
    for (uint32_t i = q->sent; i < q->count;) {
        if (q_at(q, i)->msg) {
            i++;
            continue;
        }
        for (uint32_t k = i; k + 1 < q->count; k++)
            *q_at(q, k) = *q_at(q, k + 1);
        q->count--;
    }
}

/* After an ACL reload: drop the queued (not yet sent) messages the session may
 * no longer read. Messages already in flight keep their flow, as the spec
 * requires. ACLs change only on reload, so this keeps "checked at delivery"
 * true without a second check per message on the hot path. */
uint32_t tm_outq_acl_sweep(tm_broker *b, tm_session *s)
{
    tm_outq *q = s->q;
    if (!q)
        return 0;
    uint32_t keep = q->sent, dropped = 0;
    for (uint32_t i = q->sent; i < q->count; i++) {
        tm_out *o = q_at(q, i);
        if (!o->msg || tm_acl_allowed(b->auth, s->username, s->client_id,
                                      tm_sess_attest(s), o->msg->topic,
                                      TM_ACC_READ)) {
            if (keep != i)
                *q_at(q, keep) = *o;
            keep++;
            continue;
        }
        tm_jr_q_done(b, s, o);
        tm_msg_unref(o->msg);
        dropped++;
    }
    q->count = keep;
    return dropped;
}

/* ---- one delivery ---------------------------------------------------- */

void tm_deliver(tm_broker *b, tm_session *s, tm_msg *m, uint8_t qos, bool retain,
                const uint32_t *subids, uint8_t n_subids)
{
    tm_conn *c = s->conn;
    bool online = c && c->state == TM_CS_CONNECTED;
    if (qos > m->qos && !b->cfg->upgrade_outgoing_qos)
        qos = m->qos;   /* MQTT's rule; upgrade_outgoing_qos: the subscription's QoS */
    if (qos == 0 && online && tm_sess_queued(s) == 0) {
        if (b->cfg->max_queued_bytes && tm_conn_backlog(c) > b->cfg->max_queued_bytes) {
            b->st.pub_dropped++;   /* slow consumer: QoS 0 may be lost */
            s->drop_noted = true;
            return;
        }
        tm_send_publish(b, c, m, 0, retain, false, 0, subids, n_subids);
        return;
    }
    if (qos == 0 && !online && !b->cfg->queue_qos0)
        return;
    uint32_t queued = tm_sess_queued(s);
    if (b->cfg->max_queued && queued >= b->cfg->max_queued) {
        b->st.pub_dropped++;
        if (!s->drop_noted || tm_log_enabled(TM_LOG_DEBUG))
            tm_log(TM_LOG_NOTICE, "client '%s': queue full (max_queued_messages %u), "
                   "dropping messages", s->client_id, b->cfg->max_queued);
        s->drop_noted = true;
        return;
    }
    tm_outq *q = sess_q(s);
    tm_out *o = q ? q_push(q) : NULL;
    if (!o) {
        b->st.pub_dropped++;
        return;
    }
    o->msg = tm_msg_ref(m);
    o->qos = qos;
    o->retain = retain;
    o->state = TM_OUT_PENDING;
    o->qseq = q->next_qseq++;
    o->n_subids = n_subids > TM_OUT_SUBIDS ? TM_OUT_SUBIDS : n_subids;
    if (o->n_subids)
        memcpy(o->subids, subids, o->n_subids * sizeof *subids);
    tm_jr_q_add(b, s, o);
    if (online)
        tm_outq_pump(b, s);
}

void tm_route(tm_broker *b, tm_msg *m, bool set_retained)
{
    if (set_retained && m->retain) {
        tm_msg *r = m->payload.len ? m : NULL;
        tm_trie_retain(b, m->topic, r);
        tm_jr_retain(b, m->topic, r);
    }
    tm_trie_match(b, m->topic, m->origin);
    b->forms.active = true;
    b->forms.msg = NULL;
    for (uint32_t i = 0; i < b->n_matches; i++) {
        tm_match *mt = &b->matches[i];
        tm_session *s = mt->sess;
        if (b->auth && !tm_acl_allowed(b->auth, s->username, s->client_id, tm_sess_attest(s), m->topic,
                                       TM_ACC_READ))
            continue;
        bool retain = mt->retain_as_published ? m->retain : false;
        tm_deliver(b, s, m, mt->qos, retain, mt->subids, mt->n_subids);
    }
    b->forms.active = false;
    b->forms.msg = NULL;
}
