/*
 * subscribe.c — SUBSCRIBE, UNSUBSCRIBE (client to server) and SUBACK, UNSUBACK
 * (server to client), both directions.
 *
 * The decoders validate every entry once (length fits, well-formed UTF-8, the
 * options byte's reserved bits, QoS 3 and retain handling 3) and keep the list
 * as a raw region, so tm_sub_next can walk it later without any failure path.
 * Topic filter syntax is deliberately not checked here: the broker answers a bad
 * filter with SUBACK 0x8F for that entry and carries on with the others.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

static tm_rc decode_list(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                         bool unsub, tm_subscribe *out)
{
    tm_rd r = tm_rd_make(body, len);
    tm_rc rc;
    memset(out, 0, sizeof *out);
    out->unsubscribe = unsub;
    if (flags != 2) return TM_RC_MALFORMED;
    if (!tm_rd_u16(&r, &out->packet_id)) return TM_RC_MALFORMED;
    if (out->packet_id == 0) return tm_bad(version);
    if (tm_is_v5(version)) {
        rc = tm_props_decode(&r, &out->props, unsub ? TM_PS_UNSUBSCRIBE : TM_PS_SUBSCRIBE,
                             false);
        if (rc != TM_RC_SUCCESS) return rc;
    }
    out->topics.p = body + r.pos;
    out->topics.len = (uint32_t)tm_rd_left(&r);
    while (tm_rd_left(&r)) {
        tm_str f;
        if ((rc = tm_rd_utf8(&r, &f)) != TM_RC_SUCCESS) return rc;
        if (!unsub) {
            uint8_t o;
            if (!tm_rd_u8(&r, &o)) return TM_RC_MALFORMED;
            if ((o & 3) == 3) return TM_RC_MALFORMED;
            if (tm_is_v5(version)) {
                if ((o & 0xC0) || ((o >> 4) & 3) == 3) return TM_RC_MALFORMED;
            } else if (o & 0xFC) {
                return TM_RC_MALFORMED;
            }
        }
        out->count++;
    }
    /* The payload must hold at least one entry (3.8.3-2, 3.10.3-2). */
    if (out->count == 0) return TM_RC_PROTOCOL_ERROR;
    return TM_RC_SUCCESS;
}

tm_rc tm_decode_subscribe(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                          tm_subscribe *out)
{
    return decode_list(body, len, flags, version, false, out);
}

tm_rc tm_decode_unsubscribe(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                            tm_subscribe *out)
{
    return decode_list(body, len, flags, version, true, out);
}

bool tm_sub_next(const tm_subscribe *s, uint32_t *pos, tm_str *filter, tm_subopts *opts)
{
    tm_rd r = tm_rd_make(s->topics.p, s->topics.len);
    uint8_t o = 0;
    if (!s->topics.p || *pos >= s->topics.len) return false;
    r.pos = *pos;
    if (!tm_rd_bin(&r, filter)) return false;
    if (!s->unsubscribe && !tm_rd_u8(&r, &o)) return false;
    if (opts) {
        opts->qos = o & 3;
        opts->no_local = (o >> 2) & 1;
        opts->retain_as_published = (o >> 3) & 1;
        opts->retain_handling = (o >> 4) & 3;
    }
    *pos = (uint32_t)r.pos;
    return true;
}

static uint8_t opts_byte(uint8_t version, const tm_subopts *o)
{
    if (!o) return 0;
    if (!tm_is_v5(version)) return o->qos & 3;
    return (uint8_t)((o->qos & 3) | (o->no_local ? 4 : 0) | (o->retain_as_published ? 8 : 0) |
                     ((o->retain_handling & 3) << 4));
}

void tm_encode_subscribe(tm_buf *b, uint8_t version, uint16_t packet_id,
                         const tm_props *props, const tm_str *filters,
                         const tm_subopts *opts, uint32_t n)
{
    size_t rem = 2 + tm_props_block_size(version, props);
    for (uint32_t i = 0; i < n; i++) rem += 3 + (size_t)filters[i].len;
    tm_put_header(b, (TM_SUBSCRIBE << 4) | 2, rem);
    tm_buf_u16(b, packet_id);
    tm_props_put(b, version, props);
    for (uint32_t i = 0; i < n; i++) {
        tm_buf_str(b, filters[i]);
        tm_buf_u8(b, opts_byte(version, opts ? &opts[i] : NULL));
    }
}

void tm_encode_unsubscribe(tm_buf *b, uint8_t version, uint16_t packet_id,
                           const tm_props *props, const tm_str *filters, uint32_t n)
{
    size_t rem = 2 + tm_props_block_size(version, props);
    for (uint32_t i = 0; i < n; i++) rem += 2 + (size_t)filters[i].len;
    tm_put_header(b, (TM_UNSUBSCRIBE << 4) | 2, rem);
    tm_buf_u16(b, packet_id);
    tm_props_put(b, version, props);
    for (uint32_t i = 0; i < n; i++) tm_buf_str(b, filters[i]);
}

static const uint8_t suback_v3[] = { 0x00, 0x01, 0x02, 0x80 };
static const uint8_t suback_v5[] = { 0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91,
                                     0x97, 0x9E, 0xA1, 0xA2 };
static const uint8_t unsuback_v5[] = { 0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91 };

tm_rc tm_decode_suback(uint8_t type, const uint8_t *body, size_t len, uint8_t version,
                       tm_suback *out)
{
    tm_rd r = tm_rd_make(body, len);
    const uint8_t *set;
    size_t nset;
    memset(out, 0, sizeof *out);
    if (type != TM_SUBACK && type != TM_UNSUBACK) return TM_RC_MALFORMED;
    if (!tm_rd_u16(&r, &out->packet_id)) return TM_RC_MALFORMED;
    if (out->packet_id == 0) return tm_bad(version);
    if (tm_is_v5(version)) {
        tm_rc rc = tm_props_decode(&r, &out->props, TM_PS_ACK, false);
        if (rc != TM_RC_SUCCESS) return rc;
    }
    out->codes.p = body + r.pos;
    out->codes.len = (uint32_t)tm_rd_left(&r);
    if (type == TM_UNSUBACK && !tm_is_v5(version))  /* 3.x UNSUBACK has no payload */
        return out->codes.len ? TM_RC_MALFORMED : TM_RC_SUCCESS;
    if (out->codes.len == 0) return tm_bad(version);
    if (type == TM_SUBACK) {
        set = tm_is_v5(version) ? suback_v5 : suback_v3;
        nset = tm_is_v5(version) ? sizeof suback_v5 : sizeof suback_v3;
    } else {
        set = unsuback_v5;
        nset = sizeof unsuback_v5;
    }
    for (uint32_t i = 0; i < out->codes.len; i++)
        if (!tm_code_in(out->codes.p[i], set, nset)) return tm_bad(version);
    return TM_RC_SUCCESS;
}

void tm_encode_suback(tm_buf *b, uint8_t version, uint8_t type, uint16_t packet_id,
                      const tm_props *props, const uint8_t *codes, uint32_t n)
{
    if (type == TM_UNSUBACK && !tm_is_v5(version)) n = 0;
    size_t rem = 2 + tm_props_block_size(version, props) + n;
    tm_put_header(b, (uint8_t)(type << 4), rem);
    tm_buf_u16(b, packet_id);
    tm_props_put(b, version, props);
    tm_buf_put(b, codes, n);
}
