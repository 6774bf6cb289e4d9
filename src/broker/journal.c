/*
 * journal.c — the engine's durable state changes, as records, and the way
 * back from records to state (docs/persistence.md).
 *
 * The engine stays sans-I/O: every change to durable state appends a record
 * to b->jr.buf (sessions with a non-zero expiry and what hangs off them,
 * retained messages, messages those refer to). The driver takes the records
 * of one loop iteration as one batch (tm_broker_journal) and makes them
 * durable before any output of that iteration leaves — so an acknowledgement
 * is never sent for a state change that is not on stable storage. Restoring
 * applies batches in order to an empty broker (tm_broker_restore); a
 * snapshot (tm_broker_snapshot) emits the whole durable state as records,
 * which is how the store compacts itself. Both directions use the same
 * record code, so a snapshot restores to the state it was taken from
 * (tests/unit/test_journal.c checks that).
 *
 * Records (all integers big-endian; str = u16 length + bytes):
 *   MSG     id u64, created wall ms i64, origin u64, PUBLISH packet (v5) u32+bytes
 *   SESS    sid u64, client id str, version u8, expiry u32, offline-since wall ms
 *           i64 (0 = online), username flag u8 + str
 *   END     sid                               session ended
 *   SUB     sid, filter str, options u8, subscription id u32
 *   UNSUB   sid, filter str
 *   QADD    sid, qseq u32, msg id, qos u8, retain u8, n u8 + n subscription ids
 *   QSENT   sid, qseq, packet id u16, state u8 (wait PUBACK | wait PUBREC)
 *   QREC    sid, qseq                         PUBREC received: wait PUBCOMP
 *   QDONE   sid, qseq                         acknowledged, expired or dropped
 *   Q2ADD / Q2DEL  sid, packet id             incoming QoS 2 awaiting PUBREL
 *   RET     topic str, msg id (0: cleared)
 *   WILL    sid, msg id (0: none), delay u32, fire-at wall ms i64
 * A message record is written once per store file ("generation") before the
 * first record that refers to it; a snapshot starts a new generation.
 * Untrusted on the way back: every read is bounds-checked, every reference
 * must resolve, and a batch that does not parse is refused with a reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

enum {
    R_MSG = 1, R_SESS, R_END, R_SUB, R_UNSUB, R_QADD, R_QSENT, R_QREC, R_QDONE,
    R_Q2ADD, R_Q2DEL, R_RET, R_WILL
};

/* ---- writing ------------------------------------------------------------------ */

static int64_t wall_ms(const tm_broker *b)
{
    return (int64_t)b->start_wall * 1000 + (b->now - b->start_ms);
}

static void u8(tm_broker *b, uint8_t v) { tm_buf_u8(&b->jr.buf, v); }
static void u16(tm_broker *b, uint16_t v) { tm_buf_u16(&b->jr.buf, v); }
static void u32(tm_broker *b, uint32_t v) { tm_buf_u32(&b->jr.buf, v); }
static void u64(tm_broker *b, uint64_t v)
{
    tm_buf_u32(&b->jr.buf, (uint32_t)(v >> 32));
    tm_buf_u32(&b->jr.buf, (uint32_t)v);
}
static void str(tm_broker *b, const void *p, size_t n)
{
    u16(b, (uint16_t)n);
    tm_buf_put(&b->jr.buf, p, n);
}
static void cstr(tm_broker *b, const char *s) { str(b, s, strlen(s)); }

static bool on(const tm_broker *b) { return b->jr.on; }
static bool durable(const tm_broker *b, const tm_session *s) { return b->jr.on && s->journaled; }

void tm_jr_msg(tm_broker *b, tm_msg *m)
{
    if (!on(b) || (m->disk_id && m->disk_gen == b->jr.gen))
        return;
    if (!m->disk_id)
        m->disk_id = ++b->jr.next_msg_id;
    m->disk_gen = b->jr.gen;
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.qos = m->qos;
    p.retain = m->retain;
    p.topic = m->topic;
    p.payload = m->payload;
    p.packet_id = m->qos ? 1 : 0;
    p.props = m->props;   /* the original expiry: the creation time says how much is left */
    b->scratch.len = 0;
    tm_encode_publish(&b->scratch, TM_V5, &p);
    u8(b, R_MSG);
    u64(b, m->disk_id);
    u64(b, (uint64_t)(wall_ms(b) - (b->now - m->created_ms)));
    u64(b, m->origin);
    u32(b, (uint32_t)b->scratch.len);
    tm_buf_put(&b->jr.buf, b->scratch.data, b->scratch.len);
}

void tm_jr_sess(tm_broker *b, tm_session *s)
{
    if (!on(b))
        return;
    if (s->expiry == 0 || s->no_journal) {
        if (s->journaled)
            tm_jr_sess_end(b, s);
        return;
    }
    s->journaled = true;
    u8(b, R_SESS);
    u64(b, s->id);
    cstr(b, s->client_id);
    u8(b, s->version);
    u32(b, s->expiry);
    u64(b, s->conn ? 0 : (uint64_t)wall_ms(b));
    u8(b, s->username != NULL);
    cstr(b, s->username ? s->username : "");
}

void tm_jr_sess_end(tm_broker *b, tm_session *s)
{
    if (!durable(b, s))
        return;
    u8(b, R_END);
    u64(b, s->id);
    s->journaled = false;
}

static uint8_t pack_opts(const tm_subopts *o)
{
    return (uint8_t)(o->qos | (o->no_local ? 4 : 0) | (o->retain_as_published ? 8 : 0) |
                     (o->retain_handling << 4));
}

void tm_jr_sub(tm_broker *b, tm_session *s, const tm_sess_sub *ss)
{
    if (!durable(b, s))
        return;
    u8(b, R_SUB);
    u64(b, s->id);
    cstr(b, ss->filter);
    u8(b, pack_opts(&ss->opts));
    u32(b, ss->subid);
}

void tm_jr_unsub(tm_broker *b, tm_session *s, const char *filter)
{
    if (!durable(b, s))
        return;
    u8(b, R_UNSUB);
    u64(b, s->id);
    cstr(b, filter);
}

void tm_jr_q_add(tm_broker *b, tm_session *s, tm_out *o)
{
    if (!durable(b, s) || o->qos == 0)
        return;   /* QoS 0 is never durable */
    o->journaled = true;
    tm_jr_msg(b, o->msg);
    u8(b, R_QADD);
    u64(b, s->id);
    u32(b, o->qseq);
    u64(b, o->msg->disk_id);
    u8(b, o->qos);
    u8(b, o->retain);
    u8(b, o->n_subids);
    for (uint8_t i = 0; i < o->n_subids; i++)
        u32(b, o->subids[i]);
}

static void q_rec(tm_broker *b, tm_session *s, const tm_out *o, uint8_t type)
{
    if (!durable(b, s) || !o->journaled)
        return;
    u8(b, type);
    u64(b, s->id);
    u32(b, o->qseq);
    if (type == R_QSENT) {
        u16(b, o->pid);
        u8(b, o->state);
    }
}

void tm_jr_q_sent(tm_broker *b, tm_session *s, const tm_out *o) { q_rec(b, s, o, R_QSENT); }
void tm_jr_q_rec(tm_broker *b, tm_session *s, const tm_out *o) { q_rec(b, s, o, R_QREC); }
void tm_jr_q_done(tm_broker *b, tm_session *s, const tm_out *o) { q_rec(b, s, o, R_QDONE); }

void tm_jr_q2(tm_broker *b, tm_session *s, uint16_t pid, bool add)
{
    if (!durable(b, s))
        return;
    u8(b, add ? R_Q2ADD : R_Q2DEL);
    u64(b, s->id);
    u16(b, pid);
}

void tm_jr_retain(tm_broker *b, tm_str topic, tm_msg *m)
{
    if (!on(b) || (topic.len && topic.p[0] == '$'))
        return;   /* $SYS is the broker's own, regenerated */
    if (m)
        tm_jr_msg(b, m);
    u8(b, R_RET);
    str(b, topic.p, topic.len);
    u64(b, m ? m->disk_id : 0);
}

void tm_jr_will(tm_broker *b, tm_session *s)
{
    if (!durable(b, s))
        return;
    tm_dwill *w = tm_sess_will(s);
    if (w)
        tm_jr_msg(b, w->msg);
    u8(b, R_WILL);
    u64(b, s->id);
    u64(b, w ? w->msg->disk_id : 0);
    u32(b, w ? w->delay : 0);
    u64(b, (uint64_t)(wall_ms(b) + (w ? w->at_ms - b->now : 0)));
}

/* ---- the driver's side ---------------------------------------------------------- */

void tm_broker_journal_enable(tm_broker *b, bool enable) { b->jr.on = enable; }

const uint8_t *tm_broker_journal(tm_broker *b, size_t *len)
{
    *len = b->jr.buf.oom ? 0 : b->jr.buf.len;
    return b->jr.buf.data;
}

bool tm_broker_journal_failed(const tm_broker *b) { return b->jr.buf.oom; }

void tm_broker_journal_done(tm_broker *b)
{
    b->jr.buf.len = 0;
    if (b->jr.buf.cap > (8u << 20)) {
        tm_buf_free(&b->jr.buf);
        tm_buf_init(&b->jr.buf);
    }
}

/* A piece of the snapshot to the caller once the buffer holds enough
 * (called between records only: every piece is a batch of whole records). */
static void spill(tm_broker *b, bool last)
{
    if (b->jr.buf.oom || b->jr.emit_failed)
        return;
    if (b->jr.buf.len < (last ? 1u : TM_SNAPSHOT_PIECE))
        return;
    if (!b->jr.emit(b->jr.emit_ud, b->jr.buf.data, b->jr.buf.len))
        b->jr.emit_failed = true;
    b->jr.buf.len = 0;
}

static void snapshot_session(tm_broker *b, tm_session *s)
{
    tm_jr_sess(b, s);
    for (uint32_t i = 0; i < tm_sess_nsubs(s); i++)
        tm_jr_sub(b, s, &s->subs->e[i]);
    tm_outq *q = s->q;
    for (uint32_t i = 0; q && i < q->count; i++) {
        tm_out *o = tm_outq_at(q, i);
        if (o->state == TM_OUT_DONE || o->qos == 0)
            continue;
        if (o->state == TM_OUT_WAIT_COMP) {
            /* the message is gone: its queue entry is its packet id alone */
            o->journaled = true;
            u8(b, R_QADD);
            u64(b, s->id);
            u32(b, o->qseq);
            u64(b, 0);
            u8(b, o->qos);
            u8(b, o->retain);
            u8(b, 0);
            u8(b, R_QSENT);
            u64(b, s->id);
            u32(b, o->qseq);
            u16(b, o->pid);
            u8(b, TM_OUT_WAIT_REC);
            q_rec(b, s, o, R_QREC);
            continue;
        }
        tm_jr_q_add(b, s, o);
        if (o->state == TM_OUT_WAIT_ACK || o->state == TM_OUT_WAIT_REC)
            q_rec(b, s, o, R_QSENT);
        spill(b, false);
    }
    for (uint32_t i = 0; i < tm_sess_qos2_count(s); i++)
        tm_jr_q2(b, s, s->qos2->ids[i], true);
    if (tm_sess_will(s))
        tm_jr_will(b, s);
}

static void snapshot_retained(tm_msg *m, void *ud)
{
    tm_jr_retain(ud, m->topic, m);
    spill(ud, false);
}

bool tm_broker_snapshot(tm_broker *b, int64_t now, tm_snapshot_fn emit, void *ud)
{
    b->now = now;
    if (!b->jr.on)
        return true;
    b->jr.buf.len = 0;
    b->jr.emit = emit;
    b->jr.emit_ud = ud;
    b->jr.emit_failed = false;
    b->jr.gen++;
    tm_trie_retained_all(b, snapshot_retained, b);
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->sessions, &i))) {
        tm_session *s = e->val;
        s->journaled = false;
        if (s->expiry && !s->no_journal)
            snapshot_session(b, s);
        spill(b, false);
    }
    spill(b, true);
    bool ok = !b->jr.buf.oom && !b->jr.emit_failed;
    b->jr.emit = NULL;
    tm_broker_journal_done(b);
    return ok;
}

void tm_broker_snapshot_failed(tm_broker *b)
{
    /* the messages the snapshot wrote are marked as written in a generation
     * that never became the store: a new generation writes them again where
     * they are next referenced */
    b->jr.gen++;
}

/* ---- reading back ------------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    bool bad;
} rd;

static bool need(rd *r, size_t k)
{
    if (r->bad || r->n - r->pos < k) {
        r->bad = true;
        return false;
    }
    return true;
}
static uint8_t g8(rd *r) { return need(r, 1) ? r->p[r->pos++] : 0; }
static uint16_t g16(rd *r)
{
    if (!need(r, 2))
        return 0;
    uint16_t v = (uint16_t)(r->p[r->pos] << 8 | r->p[r->pos + 1]);
    r->pos += 2;
    return v;
}
static uint32_t g32(rd *r)
{
    uint32_t hi = g16(r);
    return hi << 16 | g16(r);
}
static uint64_t g64(rd *r)
{
    uint64_t hi = g32(r);
    return hi << 32 | g32(r);
}
static tm_str gstr(rd *r)
{
    uint16_t n = g16(r);
    tm_str s = {NULL, 0};
    if (need(r, n)) {
        s.p = r->p + r->pos;
        s.len = n;
        r->pos += n;
    }
    return s;
}

static tm_session *sess_by_id(tm_broker *b, uint64_t sid)
{
    return tm_map_get(&b->jr.by_sid, &sid, sizeof sid);
}

static tm_msg *msg_by_id(tm_broker *b, uint64_t id)
{
    return tm_map_get(&b->jr.by_mid, &id, sizeof id);
}

#define FAIL(...)                                                       \
    do {                                                                \
        snprintf(why, cap, __VA_ARGS__);                                \
        return -1;                                                      \
    } while (0)

static int restore_msg(tm_broker *b, rd *r, char *why, size_t cap)
{
    uint64_t id = g64(r);
    int64_t created_wall = (int64_t)g64(r);
    uint64_t origin = g64(r);
    uint32_t len = g32(r);
    if (!need(r, len) || id == 0)
        FAIL("message record truncated");
    const uint8_t *pk = r->p + r->pos;
    r->pos += len;
    tm_frame f;
    tm_publish p;
    if (tm_frame_parse(pk, len, 0, &f) != TM_RC_SUCCESS || f.type != TM_PUBLISH ||
        (size_t)f.header_len + f.remaining != len ||
        tm_decode_publish(pk + f.header_len, f.remaining, f.flags, TM_V5, &p) != TM_RC_SUCCESS)
        FAIL("message %llu: not a valid PUBLISH", (unsigned long long)id);
    int64_t created = b->now - (wall_ms(b) - created_wall);
    tm_msg *m = tm_msg_new(p.topic, p.payload, p.qos, p.retain, &p.props, origin, created);
    if (!m)
        FAIL("out of memory");
    m->disk_id = id;
    m->disk_gen = b->jr.gen;
    tm_msg *old = tm_map_del(&b->jr.by_mid, &id, sizeof id);
    tm_msg_unref(old);
    if (tm_map_put(&b->jr.by_mid, &m->disk_id, sizeof m->disk_id, m) < 0) {
        tm_msg_unref(m);
        FAIL("out of memory");
    }
    if (id > b->jr.next_msg_id)
        b->jr.next_msg_id = id;
    return 0;
}

static int restore_sess(tm_broker *b, rd *r, char *why, size_t cap)
{
    uint64_t sid = g64(r);
    tm_str cid = gstr(r);
    uint8_t version = g8(r);
    uint32_t expiry = g32(r);
    int64_t offline = (int64_t)g64(r);
    uint8_t has_user = g8(r);
    tm_str user = gstr(r);
    if (r->bad || sid == 0 || expiry == 0 || (version < 3 || version > 5))
        FAIL("session record malformed");
    tm_session *s = sess_by_id(b, sid);
    if (!s) {
        if (tm_sess_find(b, cid))
            FAIL("session %llu: client id already belongs to another session",
                 (unsigned long long)sid);
        s = tm_sess_new(b, cid);
        if (!s)
            FAIL("out of memory");
        s->id = sid;
        if (sid > b->next_sess_id)
            b->next_sess_id = sid;
        if (tm_map_put(&b->jr.by_sid, &s->id, sizeof s->id, s) < 0)
            FAIL("out of memory");
    } else if (strlen(s->client_id) != cid.len || memcmp(s->client_id, cid.p, cid.len)) {
        FAIL("session %llu: client id changed", (unsigned long long)sid);
    }
    s->version = version;
    s->expiry = expiry;
    s->journaled = true;
    free(s->username);
    s->username = has_user ? strndup((const char *)user.p, user.len) : NULL;
    /* offline since `offline` (or since the crash, when it was online) */
    int64_t since = offline ? offline : wall_ms(b);
    s->expire_at_ms = since;   /* wall clock until tm_broker_restore_done */
    return 0;
}

static tm_out *entry_by_qseq(tm_session *s, uint32_t qseq)
{
    tm_outq *q = s->q;
    if (!q)
        return NULL;
    /* the usual case: the first entry not sent yet, or one near the head */
    if (q->sent < q->count && tm_outq_at(q, q->sent)->qseq == qseq)
        return tm_outq_at(q, q->sent);
    for (uint32_t i = 0; i < q->count; i++) {
        tm_out *o = tm_outq_at(q, i);
        if (o->qseq == qseq && o->state != TM_OUT_DONE)
            return o;
    }
    return NULL;
}

static int restore_queue(tm_broker *b, uint8_t type, rd *r, char *why, size_t cap)
{
    uint64_t sid = g64(r);
    uint32_t qseq = g32(r);
    tm_session *s = sess_by_id(b, sid);
    if (r->bad || !s)
        FAIL("queue record for an unknown session");
    if (type == R_QADD) {
        uint64_t mid = g64(r);
        uint8_t qos = g8(r), retain = g8(r), n = g8(r);
        uint32_t subids[TM_OUT_SUBIDS];
        for (uint8_t i = 0; i < n; i++) {
            uint32_t v = g32(r);
            if (i < TM_OUT_SUBIDS)
                subids[i] = v;
        }
        tm_msg *m = mid ? msg_by_id(b, mid) : NULL;
        if (r->bad || (mid && !m) || qos < 1 || qos > 2)
            FAIL("queued message %llu of session %llu is unknown", (unsigned long long)mid,
                 (unsigned long long)sid);
        if (tm_outq_restore(s, m, qseq, qos, retain != 0, subids,
                            n > TM_OUT_SUBIDS ? TM_OUT_SUBIDS : n) < 0)
            FAIL("out of memory");
        if (qseq >= s->q->next_qseq)   /* made by tm_outq_restore */
            s->q->next_qseq = qseq + 1;
        return 0;
    }
    tm_out *o = entry_by_qseq(s, qseq);
    if (!o)
        FAIL("queue entry %u of session %llu is unknown", qseq, (unsigned long long)sid);
    if (type == R_QSENT) {
        uint16_t pid = g16(r);
        uint8_t state = g8(r);
        if (r->bad || pid == 0 || (state != TM_OUT_WAIT_ACK && state != TM_OUT_WAIT_REC))
            FAIL("queue entry %u: bad in-flight state", qseq);
        return tm_outq_restore_state(s, o, state, pid) < 0 ? (snprintf(why, cap,
               "queue entry %u: sent out of order", qseq), -1) : 0;
    }
    if (type == R_QREC) {
        if (o->state != TM_OUT_WAIT_REC)
            FAIL("queue entry %u: PUBREC for a message not awaiting one", qseq);
        return tm_outq_restore_state(s, o, TM_OUT_WAIT_COMP, o->pid);
    }
    return tm_outq_restore_state(s, o, TM_OUT_DONE, o->pid);
}

static int restore_q2(tm_broker *b, uint8_t type, rd *r, char *why, size_t cap)
{
    tm_session *s = sess_by_id(b, g64(r));
    uint16_t pid = g16(r);
    if (r->bad || !s || pid == 0)
        FAIL("incoming QoS 2 record malformed");
    if (type == R_Q2ADD) {
        if (!tm_sess_qos2_has(s, pid) && !tm_sess_qos2_add(s, pid))
            FAIL("out of memory");
    } else {
        tm_sess_qos2_del(s, pid);
    }
    return 0;
}

static int restore_sub(tm_broker *b, uint8_t type, rd *r, char *why, size_t cap)
{
    tm_session *s = sess_by_id(b, g64(r));
    tm_str filter = gstr(r);
    if (r->bad || !s || filter.len == 0)
        FAIL("subscription record malformed");
    if (type == R_UNSUB) {
        tm_sess_unsubscribe(b, s, filter);
        return 0;
    }
    uint8_t o = g8(r);
    uint32_t subid = g32(r);
    tm_subopts opts = {.qos = o & 3, .no_local = (o & 4) != 0,
                       .retain_as_published = (o & 8) != 0, .retain_handling = (o >> 4) & 3};
    bool existed;
    if (r->bad || opts.qos > 2 || tm_sess_subscribe(b, s, filter, &opts, subid, &existed) !=
                                      TM_RC_SUCCESS)
        FAIL("subscription to '%.*s' cannot be restored", (int)filter.len,
             (const char *)filter.p);
    return 0;
}

static int restore_other(tm_broker *b, uint8_t type, rd *r, char *why, size_t cap)
{
    if (type == R_END) {
        tm_session *s = sess_by_id(b, g64(r));
        if (r->bad || !s)
            FAIL("end of an unknown session");
        tm_map_del(&b->jr.by_sid, &s->id, sizeof s->id);
        tm_will_cancel(b, s);   /* its will was handled when it ended */
        tm_sess_free(b, s);
        return 0;
    }
    if (type == R_RET) {
        tm_str topic = gstr(r);
        uint64_t mid = g64(r);
        tm_msg *m = mid ? msg_by_id(b, mid) : NULL;
        if (r->bad || topic.len == 0 || !tm_topic_name_valid(topic.p, topic.len) ||
            (mid && !m))
            FAIL("retained message record malformed");
        tm_trie_retain(b, topic, m);
        return 0;
    }
    /* R_WILL */
    tm_session *s = sess_by_id(b, g64(r));
    uint64_t mid = g64(r);
    uint32_t delay = g32(r);
    int64_t at_wall = (int64_t)g64(r);
    tm_msg *m = mid ? msg_by_id(b, mid) : NULL;
    if (r->bad || !s || (mid && !m))
        FAIL("will record malformed");
    tm_will_cancel(b, s);
    if (m && !tm_will_restore(b, s, m, delay, b->now + (at_wall - wall_ms(b))))
        FAIL("out of memory");
    return 0;
}

int tm_broker_restore(tm_broker *b, const uint8_t *batch, size_t len, int64_t now, char *why,
                      size_t cap)
{
    b->now = now;
    bool was_on = b->jr.on;
    b->jr.on = false;   /* restoring writes no records */
    rd r = {batch, len, 0, false};
    int rc = 0;
    while (rc == 0 && r.pos < r.n) {
        uint8_t type = g8(&r);
        if (type == R_MSG)
            rc = restore_msg(b, &r, why, cap);
        else if (type == R_SESS)
            rc = restore_sess(b, &r, why, cap);
        else if (type == R_SUB || type == R_UNSUB)
            rc = restore_sub(b, type, &r, why, cap);
        else if (type >= R_QADD && type <= R_QDONE)
            rc = restore_queue(b, type, &r, why, cap);
        else if (type == R_Q2ADD || type == R_Q2DEL)
            rc = restore_q2(b, type, &r, why, cap);
        else if (type == R_END || type == R_RET || type == R_WILL)
            rc = restore_other(b, type, &r, why, cap);
        else {
            snprintf(why, cap, "unknown record type %u at offset %zu", type, r.pos - 1);
            rc = -1;
        }
        if (rc == 0 && r.bad) {
            snprintf(why, cap, "record type %u truncated", type);
            rc = -1;
        }
    }
    b->jr.on = was_on;
    return rc;
}

void tm_broker_restore_done(tm_broker *b, int64_t now)
{
    b->now = now;
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->sessions, &i))) {
        tm_session *s = e->val;
        tm_outq_restore_finish(s);
        /* offline since it was last seen: the expiry runs from then */
        if (s->expiry == UINT32_MAX) {
            s->expire_at_ms = INT64_MAX;
        } else {
            int64_t gone = wall_ms(b) - s->expire_at_ms;
            s->expire_at_ms = now + (int64_t)s->expiry * 1000 - (gone > 0 ? gone : 0);
        }
    }
    /* messages are owned by what refers to them now */
    i = 0;
    while ((e = tm_map_next(&b->jr.by_mid, &i)))
        tm_msg_unref(e->val);
    tm_map_free(&b->jr.by_mid);
    tm_map_free(&b->jr.by_sid);
}

/* ---- a readable dump of the durable state (tests, tmqtt-db) --------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static void add_line(lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(lines *l, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return;
        l->v = nv;
        l->cap = nc;
    }
    char *d = strdup(buf);
    if (d)
        l->v[l->n++] = d;
}

static void emit_lines(lines *l, tm_buf *out)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_str);
    for (size_t i = 0; i < l->n; i++) {
        tm_buf_put(out, l->v[i], strlen(l->v[i]));
        tm_buf_u8(out, '\n');
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void payload_text(const tm_msg *m, char *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < m->payload.len && n + 5 < cap && i < 24; i++) {
        uint8_t ch = m->payload.p[i];
        n += (size_t)snprintf(out + n, cap - n, ch >= 32 && ch < 127 && ch != '"' ? "%c"
                                                                                 : "\\x%02x", ch);
    }
    out[n] = 0;
}

static void dump_retained(tm_msg *m, void *ud)
{
    char p[128];
    payload_text(m, p, sizeof p);
    add_line(ud, "retained %.*s qos=%u %uB \"%s\"", (int)m->topic.len, (const char *)m->topic.p,
             m->qos, m->payload.len, p);
}

static const char *state_name(uint8_t s)
{
    static const char *n[] = {"pending", "wait-puback", "wait-pubrec", "wait-pubcomp", "done"};
    return s < 5 ? n[s] : "?";
}

void tm_broker_dump(tm_broker *b, tm_buf *out)
{
    lines l = {0};
    tm_trie_retained_all(b, dump_retained, &l);
    emit_lines(&l, out);
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->sessions, &i))) {
        tm_session *s = e->val;
        if (!s->expiry)
            continue;
        char head[400];
        snprintf(head, sizeof head, "session %s", s->client_id);
        add_line(&l, "%s v%u expiry=%u user=%s", head, s->version, s->expiry,
                 s->username ? s->username : "-");
        for (uint32_t k = 0; k < tm_sess_nsubs(s); k++) {
            const tm_sess_sub *ss = &s->subs->e[k];
            add_line(&l, "%s sub %s qos=%u nl=%d rap=%d rh=%u id=%u", head, ss->filter,
                     ss->opts.qos, ss->opts.no_local, ss->opts.retain_as_published,
                     ss->opts.retain_handling, ss->subid);
        }
        tm_outq *q = s->q;
        for (uint32_t k = 0, shown = 0; q && k < q->count; k++) {
            tm_out *o = tm_outq_at(q, k);
            if (o->state == TM_OUT_DONE || o->qos == 0)
                continue;
            char p[128] = "";
            if (o->msg)
                payload_text(o->msg, p, sizeof p);
            add_line(&l, "%s queue %06u %s pid=%u qos=%u retain=%d topic=%.*s \"%s\"", head,
                     shown++, state_name(o->state), o->state == TM_OUT_PENDING ? 0 : o->pid,
                     o->qos, o->retain, o->msg ? (int)o->msg->topic.len : 1,
                     o->msg ? (const char *)o->msg->topic.p : "-", p);
        }
        for (uint32_t k = 0; k < tm_sess_qos2_count(s); k++)
            add_line(&l, "%s qos2-in pid=%u", head, s->qos2->ids[k]);
        const tm_dwill *w = tm_sess_will(s);
        if (w)
            add_line(&l, "%s will %.*s delay=%u", head, (int)w->msg->topic.len,
                     (const char *)w->msg->topic.p, w->delay);
    }
    emit_lines(&l, out);
}
