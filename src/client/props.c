/*
 * props.c — helpers to build v5 user properties for the codec's tm_props,
 * whose user properties are one raw region of (0x26, key, value) entries so
 * that the broker can forward them with one copy. Callers build that region
 * in a tm_buf and point the props at it.
 */
#include <string.h>

#include "client/client_int.h"

void tm_user_prop_add(tm_buf *raw, const char *key, const char *val)
{
    tm_str k = {(const uint8_t *)key, (uint32_t)strlen(key)};
    tm_str v = {(const uint8_t *)val, (uint32_t)strlen(val)};
    tm_buf_u8(raw, TM_P_USER_PROPERTY);
    tm_buf_str(raw, k);
    tm_buf_str(raw, v);
}

uint32_t tm_user_prop_count(const uint8_t *p, size_t len)
{
    uint32_t n = 0;
    size_t i = 0;
    while (i < len) {
        if (p[i] != TM_P_USER_PROPERTY)
            return 0;
        i++;
        for (int s = 0; s < 2; s++) {
            if (len - i < 2)
                return 0;
            size_t l = (size_t)p[i] << 8 | p[i + 1];
            if (len - i - 2 < l)
                return 0;
            i += 2 + l;
        }
        n++;
    }
    return n;
}

void tm_props_set_user(tm_props *pr, const tm_buf *raw)
{
    pr->user.p = raw->data;
    pr->user.len = (uint32_t)raw->len;
    pr->n_user = tm_user_prop_count(raw->data, raw->len);
    if (pr->n_user)
        pr->present |= TM_PBIT(TM_P_USER_PROPERTY);
    else
        pr->present &= ~TM_PBIT(TM_P_USER_PROPERTY);
}
