/*
 * publish.c — PUBLISH, both directions.
 *
 * The decoder enforces the structural rules of spec 3.3: QoS 3 is malformed, DUP
 * on QoS 0 and packet identifier 0 are errors (malformed in 3.x, protocol error
 * in 5), the topic is well-formed UTF-8 without wildcards, and it may be empty
 * only in MQTT 5 together with a Topic Alias property. Subscription identifiers
 * may repeat (a server sends one per matching subscription); a server receiving
 * them from a client must reject the packet itself, because the codec does not
 * know the direction. The payload is everything after the properties.
 *
 * tm_publish_size is computed from the same formula the encoder follows, so the
 * broker can check a client's maximum packet size before encoding.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

tm_rc tm_decode_publish(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                        tm_publish *out)
{
    tm_rd r = tm_rd_make(body, len);
    tm_rc rc;
    memset(out, 0, sizeof *out);
    out->retain = flags & 1;
    out->qos = (flags >> 1) & 3;
    out->dup = flags & 8;
    if (out->qos == 3) return TM_RC_MALFORMED;
    if (out->qos == 0 && out->dup) return tm_bad(version);
    if ((rc = tm_rd_utf8(&r, &out->topic)) != TM_RC_SUCCESS) return rc;
    if (out->qos) {
        if (!tm_rd_u16(&r, &out->packet_id)) return TM_RC_MALFORMED;
        if (out->packet_id == 0) return tm_bad(version);
    }
    if (tm_is_v5(version) &&
        (rc = tm_props_decode(&r, &out->props, TM_PS_PUBLISH, true)) != TM_RC_SUCCESS)
        return rc;
    if (out->topic.len == 0) {
        if (!tm_is_v5(version)) return TM_RC_MALFORMED;
        if (!(out->props.present & TM_PBIT(TM_P_TOPIC_ALIAS))) return TM_RC_PROTOCOL_ERROR;
    } else if (!tm_topic_name_valid(out->topic.p, out->topic.len)) {
        return TM_RC_TOPIC_NAME_INVALID;
    }
    out->payload.p = body + r.pos;
    out->payload.len = (uint32_t)tm_rd_left(&r);
    return TM_RC_SUCCESS;
}

static size_t publish_remaining(uint8_t version, const tm_publish *p)
{
    return 2 + (size_t)p->topic.len + (p->qos ? 2 : 0) +
           tm_props_block_size(version, &p->props) + p->payload.len;
}

size_t tm_publish_size(uint8_t version, const tm_publish *p)
{
    size_t rem = publish_remaining(version, p);
    return 1 + tm_vbi_size((uint32_t)(rem > TM_MAX_VBI ? TM_MAX_VBI : rem)) + rem;
}

void tm_encode_publish(tm_buf *b, uint8_t version, const tm_publish *p)
{
    uint8_t b0 = (uint8_t)((TM_PUBLISH << 4) | (p->dup ? 8 : 0) | ((p->qos & 3) << 1) |
                           (p->retain ? 1 : 0));
    tm_put_header(b, b0, publish_remaining(version, p));
    tm_buf_str(b, p->topic);
    if (p->qos) tm_buf_u16(b, p->packet_id);
    tm_props_put(b, version, &p->props);
    tm_buf_put(b, p->payload.p, p->payload.len);
}
