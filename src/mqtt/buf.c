/*
 * buf.c — tm_buf, the growable output buffer every encoder appends to.
 *
 * Invariants: len <= cap; data is NULL only while cap == 0. Capacity doubles on
 * growth so that appending n bytes one at a time costs O(n). Once an allocation
 * fails (or a caller asks us to encode something the protocol cannot carry, such
 * as a string longer than 65535 bytes) `oom` is set and every later append is a
 * no-op: encoders need not check each call, the caller checks the flag once.
 */
#include <stdlib.h>
#include <string.h>

#include "mqtt/mqtt_int.h"

void tm_buf_init(tm_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void tm_buf_free(tm_buf *b)
{
    free(b->data);
    tm_buf_init(b);
}

bool tm_buf_reserve(tm_buf *b, size_t extra)
{
    if (b->oom) return false;
    if (extra > TM_BUF_MAX - b->len) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : TM_BUF_MIN;
    while (cap < need) {
        if (cap > TM_BUF_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = (uint32_t)cap & TM_BUF_MAX;
    return true;
}

void tm_buf_put(tm_buf *b, const void *p, size_t n)
{
    if (n == 0 || !tm_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void tm_buf_u8(tm_buf *b, uint8_t v)
{
    tm_buf_put(b, &v, 1);
}

void tm_buf_u16(tm_buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
    tm_buf_put(b, x, 2);
}

void tm_buf_u32(tm_buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
    tm_buf_put(b, x, 4);
}

void tm_buf_vbi(tm_buf *b, uint32_t v)
{
    uint8_t x[4];
    size_t n = 0;
    if (v > TM_MAX_VBI) { /* not representable: an encoding error, reported via oom */
        b->oom = true;
        return;
    }
    do {
        uint8_t d = v & 0x7F;
        v >>= 7;
        if (v) d |= 0x80;
        x[n++] = d;
    } while (v);
    tm_buf_put(b, x, n);
}

void tm_buf_str(tm_buf *b, tm_str s)
{
    if (s.len > 0xFFFF) {
        b->oom = true;
        return;
    }
    tm_buf_u16(b, (uint16_t)s.len);
    tm_buf_put(b, s.p, s.len);
}

void tm_buf_consume(tm_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
