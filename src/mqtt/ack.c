/*
 * ack.c — PUBACK, PUBREC, PUBREL and PUBCOMP, both directions.
 *
 * In 3.x these are exactly a packet identifier. In 5 the reason code and the
 * property block may each be omitted (remaining length 2: success, no
 * properties; 3: reason, no properties), and the encoder uses the shortest form.
 * Only the reason codes the spec lists for each type are accepted.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

static const uint8_t puback_codes[] = { 0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99 };
static const uint8_t pubrel_codes[] = { 0x00, 0x92 };

tm_rc tm_decode_ack(uint8_t type, const uint8_t *body, size_t len, uint8_t flags,
                    uint8_t version, tm_ack *out)
{
    tm_rd r = tm_rd_make(body, len);
    memset(out, 0, sizeof *out);
    out->type = type;
    if (type < TM_PUBACK || type > TM_PUBCOMP) return TM_RC_MALFORMED;
    if (flags != (type == TM_PUBREL ? 2 : 0)) return TM_RC_MALFORMED;
    if (!tm_rd_u16(&r, &out->packet_id)) return TM_RC_MALFORMED;
    if (out->packet_id == 0) return tm_bad(version);
    if (!tm_is_v5(version)) return len == 2 ? TM_RC_SUCCESS : TM_RC_MALFORMED;
    if (len == 2) return TM_RC_SUCCESS;
    (void)tm_rd_u8(&r, &out->reason);
    bool ok = (type == TM_PUBACK || type == TM_PUBREC)
                  ? tm_code_in(out->reason, puback_codes, sizeof puback_codes)
                  : tm_code_in(out->reason, pubrel_codes, sizeof pubrel_codes);
    if (!ok) return TM_RC_PROTOCOL_ERROR;
    if (len == 3) return TM_RC_SUCCESS;
    tm_rc rc = tm_props_decode(&r, &out->props, TM_PS_ACK, false);
    if (rc != TM_RC_SUCCESS) return rc;
    return tm_rd_left(&r) ? TM_RC_MALFORMED : TM_RC_SUCCESS;
}

void tm_encode_ack(tm_buf *b, uint8_t version, const tm_ack *a)
{
    uint8_t b0 = (uint8_t)((a->type << 4) | (a->type == TM_PUBREL ? 2 : 0));
    size_t psize = tm_is_v5(version) ? tm_props_size(&a->props) : 0;
    if (!tm_is_v5(version) || (a->reason == 0 && psize == 0)) {
        tm_put_header(b, b0, 2);
        tm_buf_u16(b, a->packet_id);
    } else if (psize == 0) {
        tm_put_header(b, b0, 3);
        tm_buf_u16(b, a->packet_id);
        tm_buf_u8(b, a->reason);
    } else {
        tm_put_header(b, b0, 3 + tm_props_block_size(version, &a->props));
        tm_buf_u16(b, a->packet_id);
        tm_buf_u8(b, a->reason);
        tm_props_put(b, version, &a->props);
    }
}
