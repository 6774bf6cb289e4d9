/*
 * frame.c — the fixed header (spec 2.1): packet type, the flag nibble, and the
 * remaining length, both directions.
 *
 * The parser validates what can be validated from the header alone, so that the
 * connection layer can drop a bad stream before buffering a body for it: type 0,
 * reserved flag bits (SUBSCRIBE, UNSUBSCRIBE and PUBREL must carry 0x2, every
 * other type but PUBLISH 0x0), a remaining length over 4 bytes, a non-empty
 * PINGREQ/PINGRESP, and the configured maximum packet size. Type-specific body
 * checks belong to the decoders.
 */
#include "mqtt/mqtt_int.h"

tm_rc tm_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_packet, tm_frame *f)
{
    if (avail < 1) return TM_RC_NEED_MORE;
    uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0F;
    if (type == 0) return TM_RC_MALFORMED;
    if (type != TM_PUBLISH) {
        uint8_t want = (type == TM_SUBSCRIBE || type == TM_UNSUBSCRIBE || type == TM_PUBREL)
                           ? 0x2 : 0x0;
        if (flags != want) return TM_RC_MALFORMED;
    }
    uint32_t rem;
    size_t used;
    tm_rc rc = tm_vbi_decode(buf + 1, avail - 1, &rem, &used);
    if (rc != TM_RC_SUCCESS) return rc;
    if ((type == TM_PINGREQ || type == TM_PINGRESP) && rem != 0) return TM_RC_MALFORMED;
    if (max_packet && (uint64_t)rem + 1 + used > max_packet) return TM_RC_PACKET_TOO_LARGE;
    f->type = type;
    f->flags = flags;
    f->remaining = rem;
    f->header_len = (uint32_t)(1 + used);
    return TM_RC_SUCCESS;
}

void tm_put_header(tm_buf *b, uint8_t byte0, size_t remaining)
{
    if (remaining > TM_MAX_VBI) {
        b->oom = true;
        return;
    }
    tm_buf_reserve(b, 1 + tm_vbi_size((uint32_t)remaining) + remaining);
    tm_buf_u8(b, byte0);
    tm_buf_vbi(b, (uint32_t)remaining);
}

void tm_encode_simple(tm_buf *b, uint8_t type)
{
    uint8_t flags = (type == TM_SUBSCRIBE || type == TM_UNSUBSCRIBE || type == TM_PUBREL) ? 2 : 0;
    tm_put_header(b, (uint8_t)((type << 4) | flags), 0);
}
