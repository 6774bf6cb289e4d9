/*
 * disconnect.c — DISCONNECT (both directions) and AUTH (MQTT 5 only).
 *
 * MQTT 5 lets both packets shrink to nothing when the reason is success with no
 * properties; DISCONNECT may also carry a reason without a property block
 * (remaining length 1). AUTH with any content must name its authentication
 * method (spec 3.15.2.2.2), so its one-byte form is rejected. The encoders pick
 * the shortest valid form.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

static const uint8_t disconnect_codes[] = {
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90,
    0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F,
    0xA0, 0xA1, 0xA2
};
static const uint8_t auth_codes[] = { 0x00, 0x18, 0x19 };

tm_rc tm_decode_disconnect(const uint8_t *body, size_t len, uint8_t version,
                           tm_disconnect *out)
{
    tm_rd r = tm_rd_make(body, len);
    memset(out, 0, sizeof *out);
    if (!tm_is_v5(version)) return len ? TM_RC_MALFORMED : TM_RC_SUCCESS;
    if (len == 0) return TM_RC_SUCCESS;
    (void)tm_rd_u8(&r, &out->reason);
    if (!tm_code_in(out->reason, disconnect_codes, sizeof disconnect_codes))
        return TM_RC_PROTOCOL_ERROR;
    if (len == 1) return TM_RC_SUCCESS;
    tm_rc rc = tm_props_decode(&r, &out->props, TM_PS_DISCONNECT, false);
    if (rc != TM_RC_SUCCESS) return rc;
    return tm_rd_left(&r) ? TM_RC_MALFORMED : TM_RC_SUCCESS;
}

void tm_encode_disconnect(tm_buf *b, uint8_t version, const tm_disconnect *d)
{
    size_t psize = tm_is_v5(version) ? tm_props_size(&d->props) : 0;
    if (!tm_is_v5(version) || (d->reason == 0 && psize == 0)) {
        tm_put_header(b, TM_DISCONNECT << 4, 0);
    } else if (psize == 0) {
        tm_put_header(b, TM_DISCONNECT << 4, 1);
        tm_buf_u8(b, d->reason);
    } else {
        tm_put_header(b, TM_DISCONNECT << 4, 1 + tm_props_block_size(version, &d->props));
        tm_buf_u8(b, d->reason);
        tm_props_put(b, version, &d->props);
    }
}

tm_rc tm_decode_auth(const uint8_t *body, size_t len, tm_disconnect *out)
{
    tm_rd r = tm_rd_make(body, len);
    memset(out, 0, sizeof *out);
    if (len == 0) return TM_RC_SUCCESS;
    (void)tm_rd_u8(&r, &out->reason);
    if (!tm_code_in(out->reason, auth_codes, sizeof auth_codes)) return TM_RC_PROTOCOL_ERROR;
    if (len == 1) return TM_RC_PROTOCOL_ERROR;           /* no authentication method */
    tm_rc rc = tm_props_decode(&r, &out->props, TM_PS_AUTH, false);
    if (rc != TM_RC_SUCCESS) return rc;
    if (tm_rd_left(&r)) return TM_RC_MALFORMED;
    if (!(out->props.present & TM_PBIT(TM_P_AUTH_METHOD))) return TM_RC_PROTOCOL_ERROR;
    return TM_RC_SUCCESS;
}

void tm_encode_auth(tm_buf *b, const tm_disconnect *a)
{
    size_t psize = tm_props_size(&a->props);
    if (a->reason == 0 && psize == 0) {
        tm_put_header(b, TM_AUTH << 4, 0);
        return;
    }
    tm_put_header(b, TM_AUTH << 4, 1 + tm_props_block_size(TM_V5, &a->props));
    tm_buf_u8(b, a->reason);
    tm_props_put(b, TM_V5, &a->props);
}
