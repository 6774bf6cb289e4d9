/*
 * msg.c — messages: one allocation holding the header, the topic, the payload
 * and the forwardable properties, shared by reference between every queue and
 * retained slot that holds it. Immutable after tm_msg_new.
 */
#include <stdlib.h>
#include <string.h>

#include "attest/atls_peer.h"
#include "broker/broker_int.h"

/* Properties a broker passes on from PUBLISH to subscribers (MQTT 5 3.3.2.3). */
#define TM_FWD_MASK                                                                       \
    (TM_PBIT(TM_P_PAYLOAD_FORMAT) | TM_PBIT(TM_P_MESSAGE_EXPIRY) |                       \
     TM_PBIT(TM_P_CONTENT_TYPE) | TM_PBIT(TM_P_RESPONSE_TOPIC) |                         \
     TM_PBIT(TM_P_CORRELATION_DATA) | TM_PBIT(TM_P_USER_PROPERTY))

static uint8_t *copy_slice(uint8_t *dst, tm_str *s)
{
    if (!s->p)
        return dst;
    memcpy(dst, s->p, s->len);
    s->p = dst;
    return dst + s->len;
}

tm_msg *tm_msg_new(tm_str topic, tm_str payload, uint8_t qos, bool retain,
                   const tm_props *props, uint64_t origin, int64_t now_ms)
{
    tm_props pr;
    memset(&pr, 0, sizeof pr);
    if (props) {
        pr.present = props->present & TM_FWD_MASK;
        pr.payload_format = props->payload_format;
        pr.message_expiry = props->message_expiry;
        pr.content_type = props->content_type;
        pr.response_topic = props->response_topic;
        pr.correlation_data = props->correlation_data;
        pr.user = props->user;
        pr.n_user = props->n_user;
    }
    size_t extra = (size_t)topic.len + payload.len + pr.content_type.len +
                   pr.response_topic.len + pr.correlation_data.len + pr.user.len + 1;
    tm_msg *m = malloc(sizeof *m + extra);
    if (!m)
        return NULL;
    m->refs = 1;
    m->qos = qos;
    m->retain = retain;
    m->created_ms = now_ms;
    m->origin = origin;
    m->disk_id = 0;
    m->disk_gen = 0;
    uint8_t *d = (uint8_t *)(m + 1);
    m->topic = topic;
    d = copy_slice(d, &m->topic);
    m->payload = payload;
    if (!m->payload.p)
        m->payload.p = d;   /* empty payload: a valid, empty slice */
    d = copy_slice(d, &m->payload);
    d = copy_slice(d, &pr.content_type);
    d = copy_slice(d, &pr.response_topic);
    d = copy_slice(d, &pr.correlation_data);
    copy_slice(d, &pr.user);
    m->props = pr;
    m->src_client = NULL;
    m->src_user = NULL;
    m->src_attest = NULL;
    return m;
}

void tm_msg_set_source(tm_msg *m, tm_str client_id, const char *username,
                       struct tm_atls_peer *attest)
{
    size_t ul = username ? strlen(username) + 1 : 0;
    char *s = malloc((size_t)client_id.len + 1 + ul);
    if (!s)
        return;   /* out of memory: no source, so check_retain_source cannot check it */
    memcpy(s, client_id.p, client_id.len);
    s[client_id.len] = 0;
    if (username)
        memcpy(s + client_id.len + 1, username, ul);
    m->src_client = s;
    m->src_user = username ? s + client_id.len + 1 : NULL;
    m->src_attest = tm_atls_peer_ref(attest);
}

tm_msg *tm_msg_ref(tm_msg *m)
{
    m->refs++;
    return m;
}

void tm_msg_unref(tm_msg *m)
{
    if (m && --m->refs == 0) {
        free(m->src_client);
        tm_atls_peer_unref(m->src_attest);
        free(m);
    }
}

bool tm_msg_alive(const tm_msg *m, int64_t now_ms, uint32_t *remaining)
{
    if (!(m->props.present & TM_PBIT(TM_P_MESSAGE_EXPIRY))) {
        if (remaining)
            *remaining = 0;
        return true;
    }
    int64_t elapsed = (now_ms - m->created_ms) / 1000;
    if (elapsed >= (int64_t)m->props.message_expiry)
        return false;
    if (remaining)
        *remaining = m->props.message_expiry - (uint32_t)elapsed;
    return true;
}

void tm_msg_props(const tm_msg *m, int64_t now_ms, tm_props *out)
{
    *out = m->props;
    uint32_t rem;
    if ((m->props.present & TM_PBIT(TM_P_MESSAGE_EXPIRY)) && tm_msg_alive(m, now_ms, &rem))
        out->message_expiry = rem;
    out->n_sub_ids = 0;
}
