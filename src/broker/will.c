/*
 * will.c — will messages: published when a connection ends without a normal
 * DISCONNECT (or with reason 0x04), after the will delay interval if there is
 * one; cancelled when the session reconnects within the delay; published at
 * once when the session ends first (MQTT 5 3.1.3.2.2).
 */
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

static void unlist(tm_broker *b, tm_session *s)
{
    if (!s->will_listed)
        return;
    if (s->will_prev)
        s->will_prev->will_next = s->will_next;
    else
        b->wills = s->will_next;
    if (s->will_next)
        s->will_next->will_prev = s->will_prev;
    s->will_next = s->will_prev = NULL;
    s->will_listed = false;
}

void tm_will_trigger(tm_broker *b, tm_conn *c)
{
    tm_msg *will = c->will;
    c->will = NULL;
    if (!will)
        return;
    if (c->will_suppressed) {
        tm_msg_unref(will);
        return;
    }
    tm_session *s = c->sess;
    if (c->will_delay == 0 || !s || s->expiry == 0) {
        publish_will(b, will, c->client_id, c->username, c->attest);
        tm_msg_unref(will);
        return;
    }
    /* Delayed: the session holds it until the delay passes or it ends. */
    tm_msg_unref(s->will);
    s->will = will;
    s->will_delay = c->will_delay;
    s->will_at_ms = b->now + (int64_t)c->will_delay * 1000;
    if (!s->will_listed) {
        s->will_next = b->wills;
        s->will_prev = NULL;
        if (b->wills)
            b->wills->will_prev = s;
        b->wills = s;
        s->will_listed = true;
    }
    tm_jr_will(b, s);
}

void tm_will_restore(tm_broker *b, tm_session *s, tm_msg *will, uint32_t delay, int64_t at_ms)
{
    s->will = tm_msg_ref(will);
    s->will_delay = delay;
    s->will_at_ms = at_ms;
    s->will_next = b->wills;
    s->will_prev = NULL;
    if (b->wills)
        b->wills->will_prev = s;
    b->wills = s;
    s->will_listed = true;
}

void tm_will_cancel(tm_broker *b, tm_session *s)
{
    bool had = s->will != NULL;
    unlist(b, s);
    tm_msg_unref(s->will);
    s->will = NULL;
    if (had)
        tm_jr_will(b, s);
}

void tm_will_fire_session(tm_broker *b, tm_session *s)
{
    tm_msg *will = s->will;
    unlist(b, s);
    s->will = NULL;
    if (will)
        tm_jr_will(b, s);
    if (will) {
        publish_will(b, will, s->client_id, s->username, s->attest);
        tm_msg_unref(will);
    }
}

void tm_will_tick(tm_broker *b, int64_t now_ms)
{
    tm_session *s = b->wills;
    while (s) {
        tm_session *next = s->will_next;
        if (s->will_at_ms <= now_ms)
            tm_will_fire_session(b, s);
        s = next;
    }
}
