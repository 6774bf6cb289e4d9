/*
 * will.c — will messages: published when a connection ends without a normal
 * DISCONNECT (or with reason 0x04), after the will delay interval if there is
 * one; cancelled when the session reconnects within the delay; published at
 * once when the session ends first (MQTT 5 3.1.3.2.2).
 */
#include <stdlib.h>

#include "broker/broker_int.h"

static void publish_will(tm_broker *b, tm_msg *will, const char *client_id,
                         const char *username, const struct tm_atls_peer *attest)
{
    if (b->auth && !tm_acl_allowed(b->auth, username, client_id, attest, will->topic,
                                   TM_ACC_WRITE)) {
        tm_log(TM_LOG_NOTICE, "client '%s': will to '%.*s' denied by ACL", client_id,
               (int)will->topic.len, (const char *)will->topic.p);
        return;
    }
    tm_log(TM_LOG_INFO, "client '%s': publishing will to '%.*s'", client_id,
           (int)will->topic.len, (const char *)will->topic.p);
    /* Message expiry counts from publication, not from CONNECT. */
    will->created_ms = b->now;
    tm_route(b, will, true);
}

static void unlist(tm_broker *b, tm_dwill *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->wills = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

/* The session's pending Will, listed (made when there is none). */
static tm_dwill *hold(tm_broker *b, tm_session *s, tm_msg *will, uint32_t delay, int64_t at_ms)
{
    tm_sess_rare *r = tm_sess_rare_get(s);
    if (!r)
        return NULL;
    tm_dwill *w = r->will;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return NULL;
        w->sess = s;
        w->next = b->wills;
        if (b->wills)
            b->wills->prev = w;
        b->wills = w;
        r->will = w;
    }
    tm_msg_unref(w->msg);
    w->msg = will;
    w->delay = delay;
    w->at_ms = at_ms;
    return w;
}

/* Takes the session's Will message (NULL when none) and forgets the rest. */
static tm_msg *release(tm_broker *b, tm_session *s)
{
    tm_dwill *w = tm_sess_will(s);
    if (!w)
        return NULL;
    tm_msg *m = w->msg;
    unlist(b, w);
    free(w);
    s->rare->will = NULL;
    return m;
}

void tm_will_trigger(tm_broker *b, tm_conn *c)
{
    tm_msg *will = tm_conn_will(c);
    if (c->ext)
        c->ext->will = NULL;
    if (!will)
        return;
    if (c->will_suppressed) {
        tm_msg_unref(will);
        return;
    }
    tm_session *s = c->sess;
    uint32_t delay = c->ext ? c->ext->will_delay : 0;
    if (delay == 0 || !s || s->expiry == 0 ||
        !hold(b, s, will, delay, b->now + (int64_t)delay * 1000)) {
        /* no delay (or no memory to hold it: sent now rather than lost) */
        publish_will(b, will, tm_conn_client_id(c), tm_conn_username(c), tm_conn_attest(c));
        tm_msg_unref(will);
        return;
    }
    tm_jr_will(b, s);
}

bool tm_will_restore(tm_broker *b, tm_session *s, tm_msg *will, uint32_t delay, int64_t at_ms)
{
    tm_msg_ref(will);
    if (hold(b, s, will, delay, at_ms))
        return true;
    tm_msg_unref(will);
    return false;
}

void tm_will_cancel(tm_broker *b, tm_session *s)
{
    tm_msg *m = release(b, s);
    if (!m)
        return;
    tm_msg_unref(m);
    tm_jr_will(b, s);
}

void tm_will_fire_session(tm_broker *b, tm_session *s)
{
    tm_msg *will = release(b, s);
    if (!will)
        return;
    tm_jr_will(b, s);
    publish_will(b, will, s->client_id, s->username, tm_sess_attest(s));
    tm_msg_unref(will);
}

void tm_will_discard(tm_session *s)
{
    tm_dwill *w = tm_sess_will(s);
    if (w) {
        tm_msg_unref(w->msg);
        w->msg = NULL;
    }
}

void tm_will_tick(tm_broker *b, int64_t now_ms)
{
    tm_dwill *w = b->wills;
    while (w) {
        tm_dwill *next = w->next;
        if (w->at_ms <= now_ms)
            tm_will_fire_session(b, w->sess);
        w = next;
    }
}
