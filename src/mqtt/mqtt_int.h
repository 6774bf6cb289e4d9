/*
 * mqtt_int.h — private to src/mqtt: the bounds-checked reader every decoder uses,
 * the property-block reader, the allowed-property sets per packet, and small
 * helpers shared by the encoders. Nothing here is part of the public contract
 * (mqtt.h); other modules must not include it.
 *
 * Invariant of tm_rd: pos <= len at all times; every read checks the remaining
 * length first and leaves pos unchanged when it fails, so a decoder can never
 * step outside [p, p+len) whatever the length fields in the packet say.
 */
#ifndef TM_MQTT_INT_H
#define TM_MQTT_INT_H

#include "mqtt/mqtt.h"

typedef struct tm_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
} tm_rd;

static inline tm_rd tm_rd_make(const uint8_t *p, size_t len)
{
    tm_rd r = { p, len, 0 };
    return r;
}

static inline size_t tm_rd_left(const tm_rd *r) { return r->len - r->pos; }

static inline bool tm_rd_u8(tm_rd *r, uint8_t *v)
{
    if (tm_rd_left(r) < 1) return false;
    *v = r->p[r->pos++];
    return true;
}

static inline bool tm_rd_u16(tm_rd *r, uint16_t *v)
{
    if (tm_rd_left(r) < 2) return false;
    *v = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return true;
}

static inline bool tm_rd_u32(tm_rd *r, uint32_t *v)
{
    if (tm_rd_left(r) < 4) return false;
    const uint8_t *q = r->p + r->pos;
    *v = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
    r->pos += 4;
    return true;
}

/* Inside a packet body a truncated VBI is simply malformed. */
static inline bool tm_rd_vbi(tm_rd *r, uint32_t *v)
{
    size_t used;
    if (tm_vbi_decode(r->p + r->pos, tm_rd_left(r), v, &used) != TM_RC_SUCCESS) return false;
    r->pos += used;
    return true;
}

/* Two-byte length + bytes. The slice's p is never NULL on success (present). */
static inline bool tm_rd_bin(tm_rd *r, tm_str *s)
{
    uint16_t n;
    if (tm_rd_left(r) < 2) return false;
    n = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
    if (tm_rd_left(r) - 2 < n) return false;
    s->p = r->p + r->pos + 2;
    s->len = n;
    r->pos += 2u + n;
    return true;
}

/* UTF-8 string: TM_RC_MALFORMED when truncated or not valid MQTT UTF-8. */
static inline tm_rc tm_rd_utf8(tm_rd *r, tm_str *s)
{
    if (!tm_rd_bin(r, s)) return TM_RC_MALFORMED;
    if (!tm_utf8_valid(s->p, s->len)) return TM_RC_MALFORMED;
    return TM_RC_SUCCESS;
}

static inline bool tm_is_v5(uint8_t version) { return version == TM_V5; }

/* Violations that MQTT 5 names "protocol error" and 3.1.1 leaves to "close the
 * connection": we report malformed for 3.x and protocol error for 5. */
static inline tm_rc tm_bad(uint8_t version)
{
    return tm_is_v5(version) ? TM_RC_PROTOCOL_ERROR : TM_RC_MALFORMED;
}

#define TM_P_MAX_ID 0x2A

/* Allowed properties per packet (MQTT 5 table 2-4). */
#define TM_PS_CONNECT                                                              \
    (TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_RECEIVE_MAX) |                    \
     TM_PBIT(TM_P_MAX_PACKET_SIZE) | TM_PBIT(TM_P_TOPIC_ALIAS_MAX) |               \
     TM_PBIT(TM_P_REQUEST_RESPONSE_INFO) | TM_PBIT(TM_P_REQUEST_PROBLEM_INFO) |    \
     TM_PBIT(TM_P_USER_PROPERTY) | TM_PBIT(TM_P_AUTH_METHOD) | TM_PBIT(TM_P_AUTH_DATA))
#define TM_PS_WILL                                                                 \
    (TM_PBIT(TM_P_WILL_DELAY) | TM_PBIT(TM_P_PAYLOAD_FORMAT) |                     \
     TM_PBIT(TM_P_MESSAGE_EXPIRY) | TM_PBIT(TM_P_CONTENT_TYPE) |                   \
     TM_PBIT(TM_P_RESPONSE_TOPIC) | TM_PBIT(TM_P_CORRELATION_DATA) |               \
     TM_PBIT(TM_P_USER_PROPERTY))
#define TM_PS_CONNACK                                                              \
    (TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_ASSIGNED_CLIENT_ID) |             \
     TM_PBIT(TM_P_SERVER_KEEP_ALIVE) | TM_PBIT(TM_P_AUTH_METHOD) |                 \
     TM_PBIT(TM_P_AUTH_DATA) | TM_PBIT(TM_P_RESPONSE_INFO) |                       \
     TM_PBIT(TM_P_SERVER_REFERENCE) | TM_PBIT(TM_P_REASON_STRING) |                \
     TM_PBIT(TM_P_RECEIVE_MAX) | TM_PBIT(TM_P_TOPIC_ALIAS_MAX) |                   \
     TM_PBIT(TM_P_MAX_QOS) | TM_PBIT(TM_P_RETAIN_AVAILABLE) |                      \
     TM_PBIT(TM_P_USER_PROPERTY) | TM_PBIT(TM_P_MAX_PACKET_SIZE) |                 \
     TM_PBIT(TM_P_WILDCARD_SUB_AVAILABLE) | TM_PBIT(TM_P_SUB_ID_AVAILABLE) |       \
     TM_PBIT(TM_P_SHARED_SUB_AVAILABLE))
#define TM_PS_PUBLISH                                                              \
    (TM_PBIT(TM_P_PAYLOAD_FORMAT) | TM_PBIT(TM_P_MESSAGE_EXPIRY) |                 \
     TM_PBIT(TM_P_CONTENT_TYPE) | TM_PBIT(TM_P_RESPONSE_TOPIC) |                   \
     TM_PBIT(TM_P_CORRELATION_DATA) | TM_PBIT(TM_P_SUB_ID) |                       \
     TM_PBIT(TM_P_TOPIC_ALIAS) | TM_PBIT(TM_P_USER_PROPERTY))
#define TM_PS_ACK (TM_PBIT(TM_P_REASON_STRING) | TM_PBIT(TM_P_USER_PROPERTY))
#define TM_PS_SUBSCRIBE (TM_PBIT(TM_P_SUB_ID) | TM_PBIT(TM_P_USER_PROPERTY))
#define TM_PS_UNSUBSCRIBE (TM_PBIT(TM_P_USER_PROPERTY))
#define TM_PS_DISCONNECT                                                           \
    (TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_REASON_STRING) |                  \
     TM_PBIT(TM_P_USER_PROPERTY) | TM_PBIT(TM_P_SERVER_REFERENCE))
#define TM_PS_AUTH                                                                 \
    (TM_PBIT(TM_P_AUTH_METHOD) | TM_PBIT(TM_P_AUTH_DATA) |                         \
     TM_PBIT(TM_P_REASON_STRING) | TM_PBIT(TM_P_USER_PROPERTY))

/* Read a property block (VBI length + properties) into *pr (zeroed first).
 * `allowed` is one of the TM_PS_* sets; `multi_sub_id` permits repeated
 * subscription identifiers (server-to-client PUBLISH). */
tm_rc tm_props_decode(tm_rd *r, tm_props *pr, uint64_t allowed, bool multi_sub_id);

/* Bytes of the property block including its VBI length (0 for version < 5). */
size_t tm_props_block_size(uint8_t version, const tm_props *pr);
/* Write the property block when version == 5; a NULL pr writes an empty block. */
void tm_props_put(tm_buf *b, uint8_t version, const tm_props *pr);

/* Fixed header: byte 0 and the remaining length. An unencodable length sets oom. */
void tm_put_header(tm_buf *b, uint8_t byte0, size_t remaining);

/* Is code one of the listed values (list ends at the length given)? */
static inline bool tm_code_in(uint8_t code, const uint8_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == code) return true;
    return false;
}

#endif
