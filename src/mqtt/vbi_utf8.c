/*
 * vbi_utf8.c — the two primitive encodings every MQTT field is built from that
 * need real validation: variable byte integers (spec 1.5.5) and MQTT's UTF-8
 * rules (spec 1.5.4).
 *
 * tm_vbi_decode distinguishes "not enough bytes yet" (NEED_MORE, the stream
 * reader waits) from "can never be valid" (MALFORMED: a fifth byte would be
 * needed). Non-minimal encodings within 4 bytes are accepted, because some
 * clients reserve 4 bytes for the remaining length and patch it afterwards.
 *
 * tm_utf8_valid accepts exactly the well-formed UTF-8 of RFC 3629 minus U+0000:
 * no overlong forms, no encoded surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF, no truncated sequences.
 */
#include "mqtt/mqtt_int.h"

tm_rc tm_vbi_decode(const uint8_t *p, size_t avail, uint32_t *val, size_t *used)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= avail) return TM_RC_NEED_MORE;
        v |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *val = v;
            *used = i + 1;
            return TM_RC_SUCCESS;
        }
    }
    return TM_RC_MALFORMED;
}

size_t tm_vbi_size(uint32_t v)
{
    if (v < 128u) return 1;
    if (v < 16384u) return 2;
    if (v < 2097152u) return 3;
    return 4;
}

bool tm_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0) return false;
            i++;
            continue;
        }
        size_t n;          /* continuation bytes */
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c == 0xE0) {
            n = 2; lo = 0xA0;                 /* no overlong 3-byte forms */
        } else if (c == 0xED) {
            n = 2; hi = 0x9F;                 /* no surrogates */
        } else if (c >= 0xE1 && c <= 0xEF) {
            n = 2;
        } else if (c == 0xF0) {
            n = 3; lo = 0x90;                 /* no overlong 4-byte forms */
        } else if (c >= 0xF1 && c <= 0xF3) {
            n = 3;
        } else if (c == 0xF4) {
            n = 3; hi = 0x8F;                 /* nothing above U+10FFFF */
        } else {
            return false;                     /* 0x80..0xC1, 0xF5..0xFF */
        }
        if (len - i - 1 < n) return false;
        if (p[i + 1] < lo || p[i + 1] > hi) return false;
        for (size_t k = 2; k <= n; k++)
            if ((p[i + k] & 0xC0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}
