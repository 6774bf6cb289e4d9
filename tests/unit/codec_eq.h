/*
 * codec_eq.h — deep equality of decoded MQTT structs, shared by the codec unit
 * tests and the decode fuzzer's round-trip check. Slices compare by presence
 * (p == NULL or not) and content, never by address, because a round trip
 * decodes from a different buffer. User properties compare pair by pair through
 * the iterator, since the raw region may legally differ (interleaved properties
 * are dropped on re-encoding).
 */
#ifndef TM_CODEC_EQ_H
#define TM_CODEC_EQ_H
#include <string.h>

#include "mqtt/mqtt.h"

static inline int tm_eq_str(tm_str a, tm_str b)
{
    if ((a.p == NULL) != (b.p == NULL)) return 0;
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Content only: an absent and an empty slice are the same. */
static inline int tm_eq_bytes(tm_str a, tm_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static inline int tm_eq_props(const tm_props *a, const tm_props *b)
{
    if (a->present != b->present) return 0;
#define EQN(f) if (a->f != b->f) return 0
#define EQS(f) if (!tm_eq_str(a->f, b->f)) return 0
    EQN(payload_format); EQN(message_expiry); EQS(content_type); EQS(response_topic);
    EQS(correlation_data); EQN(n_sub_ids); EQN(session_expiry); EQS(assigned_client_id);
    EQN(server_keep_alive); EQS(auth_method); EQS(auth_data); EQN(request_problem_info);
    EQN(will_delay); EQN(request_response_info); EQS(response_info);
    EQS(server_reference); EQS(reason_string); EQN(receive_max); EQN(topic_alias_max);
    EQN(topic_alias); EQN(max_qos); EQN(retain_available); EQN(max_packet_size);
    EQN(wildcard_sub_available); EQN(sub_id_available); EQN(shared_sub_available);
    EQN(n_user);
#undef EQN
#undef EQS
    for (uint32_t i = 0; i < a->n_sub_ids && i < TM_MAX_SUB_IDS; i++)
        if (a->sub_ids[i] != b->sub_ids[i]) return 0;
    uint32_t pa = 0, pb = 0;
    tm_str ka, va, kb, vb;
    for (;;) {
        int ha = tm_props_user_next(a, &pa, &ka, &va);
        int hb = tm_props_user_next(b, &pb, &kb, &vb);
        if (ha != hb) return 0;
        if (!ha) break;
        if (!tm_eq_bytes(ka, kb) || !tm_eq_bytes(va, vb)) return 0;
    }
    return 1;
}

static inline int tm_eq_connect(const tm_connect *a, const tm_connect *b)
{
    return a->version == b->version && a->bridge == b->bridge &&
           tm_eq_str(a->protocol_name, b->protocol_name) &&
           a->clean_start == b->clean_start && a->will == b->will &&
           a->will_qos == b->will_qos && a->will_retain == b->will_retain &&
           a->keep_alive == b->keep_alive && tm_eq_props(&a->props, &b->props) &&
           tm_eq_str(a->client_id, b->client_id) &&
           tm_eq_props(&a->will_props, &b->will_props) &&
           tm_eq_str(a->will_topic, b->will_topic) &&
           tm_eq_str(a->will_payload, b->will_payload) &&
           tm_eq_str(a->username, b->username) && tm_eq_str(a->password, b->password);
}

static inline int tm_eq_connack(const tm_connack *a, const tm_connack *b)
{
    return a->session_present == b->session_present && a->code == b->code &&
           tm_eq_props(&a->props, &b->props);
}

static inline int tm_eq_publish(const tm_publish *a, const tm_publish *b)
{
    return a->qos == b->qos && a->dup == b->dup && a->retain == b->retain &&
           tm_eq_str(a->topic, b->topic) && a->packet_id == b->packet_id &&
           tm_eq_props(&a->props, &b->props) && tm_eq_bytes(a->payload, b->payload);
}

static inline int tm_eq_ack(const tm_ack *a, const tm_ack *b)
{
    return a->type == b->type && a->packet_id == b->packet_id && a->reason == b->reason &&
           tm_eq_props(&a->props, &b->props);
}

static inline int tm_eq_subscribe(const tm_subscribe *a, const tm_subscribe *b)
{
    if (a->packet_id != b->packet_id || a->count != b->count ||
        a->unsubscribe != b->unsubscribe || !tm_eq_props(&a->props, &b->props))
        return 0;
    uint32_t pa = 0, pb = 0;
    tm_str fa, fb;
    tm_subopts oa, ob;
    for (;;) {
        int ha = tm_sub_next(a, &pa, &fa, &oa), hb = tm_sub_next(b, &pb, &fb, &ob);
        if (ha != hb) return 0;
        if (!ha) return 1;
        if (!tm_eq_bytes(fa, fb) || oa.qos != ob.qos || oa.no_local != ob.no_local ||
            oa.retain_as_published != ob.retain_as_published ||
            oa.retain_handling != ob.retain_handling)
            return 0;
    }
}

static inline int tm_eq_suback(const tm_suback *a, const tm_suback *b)
{
    return a->packet_id == b->packet_id && tm_eq_props(&a->props, &b->props) &&
           tm_eq_bytes(a->codes, b->codes);
}

static inline int tm_eq_disconnect(const tm_disconnect *a, const tm_disconnect *b)
{
    return a->reason == b->reason && tm_eq_props(&a->props, &b->props);
}
#endif
