/*
 * map.c — see map.h. Load factor kept under 3/4.
 *
 * Hashing: keys are chosen by clients (client ids, topic levels), so the hash
 * is keyed with a secret drawn from the system's entropy source when the
 * first map is used: SipHash-1-3 (Aumasson & Bernstein; the variant Rust and
 * Python use for the same purpose). Without the key an attacker cannot
 * predict which levels collide, so they cannot turn a lookup into a linear
 * scan. OpenSSL has SipHash only behind EVP_MAC, which allocates a context
 * per call — far too slow for one call per topic level — so these twenty
 * lines are ours; tests/unit/test_map.c checks them against OpenSSL's.
 */
#include "broker/map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __wasi__
#include <sys/random.h>
#endif

static uint64_t g_key[2];          /* set once; never changes afterwards */
static int g_key_set;

void tm_hash_set_key(const uint8_t key[16])
{
    memcpy(g_key, key, 16);
    g_key_set = 1;
}

static void key_init(void)
{
    uint8_t k[16];
    if (getentropy(k, sizeof k) != 0) {
        /* no entropy source: still a hash, but say nothing can be promised */
        memset(k, 0x5a, sizeof k);
    }
    tm_hash_set_key(k);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);              \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                 \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                 \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);              \
    } while (0)

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t tm_siphash(const uint64_t key[2], const void *data, size_t n, int c_rounds,
                    int d_rounds)
{
    const uint8_t *p = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64(p + i);
        v3 ^= m;
        for (int r = 0; r < c_rounds; r++)
            SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t i = whole; i < n; i++)
        last |= (uint64_t)p[i] << (8 * (i - whole));
    v3 ^= last;
    for (int r = 0; r < c_rounds; r++)
        SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    for (int r = 0; r < d_rounds; r++)
        SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t tm_hash(const void *p, size_t n)
{
    if (!g_key_set)
        key_init();
    uint32_t h = (uint32_t)tm_siphash(g_key, p, n, 1, 3);
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
        if (!e->val)
            return NULL;
        if (e->hash == h && e->klen == klen && memcmp(tm_map_key(m, e), key, klen) == 0)
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
    while (m->e[i].val)
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
        if (old[i].val)
            place(m, old[i]);
    free(old);
    return 0;
}

int tm_map_put(tm_map *m, const void *key, uint32_t klen, void *val)
{
    size_t off = (size_t)((const char *)key - (const char *)val);
    if (m->n == 0)
        m->key_off = off;
    assert(val && off == m->key_off);   /* the caller's contract (map.h) */
    uint32_t h = tm_hash(key, klen);
    tm_map_ent *e = find(m, key, klen, h);
    if (e) {
        e->val = val;
        return 0;
    }
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    place(m, (tm_map_ent){.val = val, .klen = klen, .hash = h});
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
        if (!m->e[j].val)
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
        if (e->val)
            return e;
    }
    return NULL;
}
