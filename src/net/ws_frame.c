/*
 * ws_frame.c — RFC 6455 frame decoding in place and frame headers
 * (ws_frame.h). Pure: no I/O, no allocation.
 *
 * Invariant of tm_wsf_decode: *out <= *in at every step, so unmasking a byte
 * from buf[*in] to buf[*out] never overwrites a byte not yet read.
 */
#include "net/ws_frame.h"

#include <string.h>

void tm_wsf_init(tm_wsf_dec *d)
{
    memset(d, 0, sizeof *d);
    d->in_header = true;
}

bool tm_wsf_valid_close_code(uint16_t c)
{
    if (c >= 3000 && c <= 4999)
        return true;   /* registered and private use */
    return c >= 1000 && c <= 1014 && c != 1004 && c != 1005 && c != 1006;
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += len;
    }
    return true;
}

static int error(tm_wsf_dec *d, uint16_t code, const char *why)
{
    d->err_code = code;
    d->why = why;
    return TM_WSF_ERROR;
}

/* Bytes the header needs in total, given what has been collected. */
static size_t header_need(const tm_wsf_dec *d)
{
    if (d->hlen < 2)
        return 2;
    uint8_t l7 = d->hdr[1] & 0x7F;
    size_t ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
    return 2 + ext + (d->hdr[1] & 0x80 ? 4 : 0);   /* unmasked: refused at once */
}

/* The header is complete: check it and start the payload. */
static int header_done(tm_wsf_dec *d)
{
    uint8_t b0 = d->hdr[0], b1 = d->hdr[1], l7 = b1 & 0x7F;
    d->fin = b0 & 0x80;
    d->opcode = b0 & 0x0F;
    if (b0 & 0x70)
        return error(d, 1002, "reserved bits set (no extension was negotiated)");
    if (!(b1 & 0x80))
        return error(d, 1002, "unmasked frame from the client");
    const uint8_t *m = d->hdr + 2;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)m[0] << 8 | m[1];
        if (len < 126)
            return error(d, 1002, "frame length not minimally encoded");
        m += 2;
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | m[i];
        if (len >> 63)
            return error(d, 1002, "frame length has its most significant bit set");
        if (len <= 0xFFFF)
            return error(d, 1002, "frame length not minimally encoded");
        m += 8;
    }
    memcpy(d->mask, m, 4);
    d->mpos = 0;
    d->left = len;
    switch (d->opcode) {
    case TM_WS_OP_CLOSE:
    case TM_WS_OP_PING:
    case TM_WS_OP_PONG:
        if (!d->fin)
            return error(d, 1002, "fragmented control frame");
        if (len > 125)
            return error(d, 1002, "control frame longer than 125 bytes");
        d->ctl_len = 0;
        break;
    case TM_WS_OP_TEXT:
        return error(d, 1003, "text frame (MQTT travels in binary frames only)");
    case TM_WS_OP_BINARY:
        if (d->in_message)
            return error(d, 1002, "new data frame inside a fragmented message");
        d->in_message = !d->fin;
        break;
    case TM_WS_OP_CONT:
        if (!d->in_message)
            return error(d, 1002, "continuation frame outside a fragmented message");
        d->in_message = !d->fin;
        break;
    default:
        return error(d, 1002, "unknown opcode");
    }
    d->in_header = false;
    d->hlen = 0;
    return TM_WSF_MORE;
}

/* A control frame's payload is complete. */
static int control_done(tm_wsf_dec *d)
{
    d->in_header = true;
    if (d->opcode == TM_WS_OP_PING)
        return TM_WSF_PING;
    if (d->opcode == TM_WS_OP_PONG)
        return TM_WSF_PONG;
    if (d->ctl_len == 1)
        return error(d, 1002, "close frame with a one-byte payload");
    d->close_code = 1005;
    if (d->ctl_len >= 2) {
        d->close_code = (uint16_t)(d->ctl[0] << 8 | d->ctl[1]);
        if (!tm_wsf_valid_close_code(d->close_code))
            return error(d, 1002, "close frame with an invalid status code");
        if (!valid_utf8(d->ctl + 2, d->ctl_len - 2u))
            return error(d, 1007, "close frame reason is not UTF-8");
    }
    return TM_WSF_CLOSE;
}

static void unmask(tm_wsf_dec *d, uint8_t *dst, const uint8_t *src, size_t n)
{
    uint8_t k = d->mpos;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] ^ d->mask[(k + i) & 3];
    d->mpos = (uint8_t)((k + n) & 3);
}

int tm_wsf_decode(tm_wsf_dec *d, uint8_t *buf, size_t n, size_t *in, size_t *out)
{
    size_t i = *in, o = *out;
    int ev = TM_WSF_MORE;
    while (i < n && ev == TM_WSF_MORE) {
        if (d->in_header) {
            size_t need = header_need(d);
            while (d->hlen < need && i < n) {
                d->hdr[d->hlen++] = buf[i++];
                need = header_need(d);
            }
            if (d->hlen < need)
                break;
            ev = header_done(d);
            if (ev == TM_WSF_MORE && d->left == 0 && d->opcode >= TM_WS_OP_CLOSE)
                ev = control_done(d);
            else if (ev == TM_WSF_MORE && d->left == 0)
                d->in_header = true;   /* empty data frame */
            continue;
        }
        size_t m = n - i;
        if (m > d->left)
            m = (size_t)d->left;
        if (d->opcode >= TM_WS_OP_CLOSE) {
            unmask(d, d->ctl + d->ctl_len, buf + i, m);
            d->ctl_len = (uint8_t)(d->ctl_len + m);
        } else {
            unmask(d, buf + o, buf + i, m);   /* o <= i: forward, in place */
            o += m;
        }
        i += m;
        d->left -= m;
        if (d->left == 0) {
            if (d->opcode >= TM_WS_OP_CLOSE)
                ev = control_done(d);
            else
                d->in_header = true;
        }
    }
    *in = i;
    *out = o;
    return ev;
}

size_t tm_wsf_header(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
