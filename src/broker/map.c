/*
 * map.c — see map.h. FNV-1a hashing; load factor kept under 3/4.
 */
#include "broker/map.h"

#include <stdlib.h>
#include <string.h>

uint32_t tm_hash(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

void tm_map_init(tm_map *m) { memset(m, 0, sizeof *m); }

void tm_map_free(tm_map *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

static tm_map_ent *find(const tm_map *m, const void *key, uint32_t klen, uint32_t h)
{
    if (!m->cap)
        return NULL;
    uint32_t mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        tm_map_ent *e = &m->e[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

void *tm_map_get(const tm_map *m, const void *key, uint32_t klen)
{
    tm_map_ent *e = find(m, key, klen, tm_hash(key, klen));
    return e ? e->val : NULL;
}

static void place(tm_map *m, tm_map_ent ent)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = ent.hash & mask;
    while (m->e[i].key)
        i = (i + 1) & mask;
    m->e[i] = ent;
}

static int grow(tm_map *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 16;
    tm_map_ent *old = m->e;
    uint32_t ocap = m->cap;
    m->e = calloc(ncap, sizeof *m->e);
    if (!m->e) {
        m->e = old;
        return -1;
    }
    m->cap = ncap;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i].key)
            place(m, old[i]);
    free(old);
    return 0;
}

int tm_map_put(tm_map *m, const void *key, uint32_t klen, void *val)
{
    uint32_t h = tm_hash(key, klen);
    tm_map_ent *e = find(m, key, klen, h);
    if (e) {
        e->key = key;
        e->val = val;
        return 0;
    }
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    place(m, (tm_map_ent){.key = key, .klen = klen, .hash = h, .val = val});
    m->n++;
    return 0;
}

void *tm_map_del(tm_map *m, const void *key, uint32_t klen)
{
    uint32_t h = tm_hash(key, klen);
    tm_map_ent *e = find(m, key, klen, h);
    if (!e)
        return NULL;
    void *val = e->val;
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)(e - m->e);
    /* backward-shift deletion */
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (!m->e[j].key)
            break;
        uint32_t home = m->e[j].hash & mask;
        /* can entry j move to i? only if i lies cyclically in [home, j) */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->e[i] = m->e[j];
            i = j;
        }
    }
    memset(&m->e[i], 0, sizeof m->e[i]);
    m->n--;
    return val;
}

tm_map_ent *tm_map_next(const tm_map *m, uint32_t *i)
{
    while (*i < m->cap) {
        tm_map_ent *e = &m->e[(*i)++];
        if (e->key)
            return e;
    }
    return NULL;
}
