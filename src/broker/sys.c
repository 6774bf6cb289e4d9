/*
 * sys.c — $SYS/broker/... statistics, published (retained) every
 * sys_interval seconds with Mosquitto's topic names so that existing
 * dashboards keep working; and the broker's own messages (log lines).
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/version.h"

static void pub(tm_broker *b, const char *topic, const char *value)
{
    tm_str t = {(const uint8_t *)topic, (uint32_t)strlen(topic)};
    tm_str v = {(const uint8_t *)value, (uint32_t)strlen(value)};
    tm_msg *m = tm_msg_new(t, v, 0, true, NULL, 0, b->now);
    if (!m)
        return;
    tm_route(b, m, true);
    tm_msg_unref(m);
}

static void pubu(tm_broker *b, const char *topic, unsigned long long v)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", v);
    pub(b, topic, s);
}

void tm_sys_publish(tm_broker *b)
{
    char s[64];
    pub(b, "$SYS/broker/version", "tmqtt version " TMQTT_VERSION);
    snprintf(s, sizeof s, "%lld seconds", (long long)((b->now - b->start_ms) / 1000));
    pub(b, "$SYS/broker/uptime", s);
    pubu(b, "$SYS/broker/clients/connected", b->st.clients_connected);
    pubu(b, "$SYS/broker/clients/active", b->st.clients_connected);
    pubu(b, "$SYS/broker/clients/total", b->sessions.n);
    pubu(b, "$SYS/broker/clients/disconnected", b->sessions.n - b->st.clients_connected);
    pubu(b, "$SYS/broker/clients/maximum", b->st.clients_max);
    pubu(b, "$SYS/broker/messages/received", b->st.msgs_received);
    pubu(b, "$SYS/broker/messages/sent", b->st.msgs_sent);
    pubu(b, "$SYS/broker/publish/messages/received", b->st.pub_received);
    pubu(b, "$SYS/broker/publish/messages/sent", b->st.pub_sent);
    pubu(b, "$SYS/broker/publish/messages/dropped", b->st.pub_dropped);
    pubu(b, "$SYS/broker/bytes/received", b->io.bytes_received);
    pubu(b, "$SYS/broker/bytes/sent", b->io.bytes_sent);
    pubu(b, "$SYS/broker/subscriptions/count", b->n_subscriptions);
    pubu(b, "$SYS/broker/retained messages/count", b->n_retained);
}

void tm_broker_publish(tm_broker *b, const char *topic, const void *payload, size_t len,
                       uint8_t qos, int64_t now)
{
    b->now = now;
    tm_str t = {(const uint8_t *)topic, (uint32_t)strlen(topic)};
    tm_str v = {payload, (uint32_t)len};
    tm_msg *m = tm_msg_new(t, v, qos, false, NULL, 0, now);
    if (!m)
        return;
    tm_route(b, m, false);
    tm_msg_unref(m);
}
