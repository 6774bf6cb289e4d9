/*
 * map.h — an open-addressing hash map from byte strings to pointers.
 *
 * Keys are not copied and not pointed to: every value keeps its key inside
 * itself, at the same offset in every value of one map (the offset is taken
 * from the first tm_map_put: key - val), so an entry is 16 bytes (value,
 * key length, hash) — the session map has one per client. Used for client
 * id -> session, (parent, level) -> topic node, journal ids -> sessions and
 * messages, and per-connection topic aliases. Linear probing with backward-shift deletion, so there are no
 * tombstones and lookups stay short. The hash is keyed with a per-process
 * secret, because the keys are chosen by clients (hash flooding).
 */
#ifndef TM_MAP_H
#define TM_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_map_ent {
    void *val;        /* NULL: a free slot */
    uint32_t klen;
    uint32_t hash;
} tm_map_ent;

typedef struct tm_map {
    tm_map_ent *e;
    uint32_t cap;     /* power of two, or 0 */
    uint32_t n;
    size_t key_off;   /* where a value's key is: (char *)val + key_off */
} tm_map;

/* The keyed hash of every map (SipHash-1-3 under a per-process secret). */
uint32_t tm_hash(const void *p, size_t n);
/* SipHash-c-d of data under key (little-endian words), for the tests. */
uint64_t tm_siphash(const uint64_t key[2], const void *data, size_t n, int c_rounds,
                    int d_rounds);
/* Replaces the per-process secret (tests only: fixed keys, reproducible order). */
void tm_hash_set_key(const uint8_t key[16]);
void tm_map_init(tm_map *m);
void tm_map_free(tm_map *m);
void *tm_map_get(const tm_map *m, const void *key, uint32_t klen);
/* Insert or replace. key must lie inside val, at the offset of the map's
 * other keys (val != NULL). Returns 0, or -1 on allocation failure. */
int tm_map_put(tm_map *m, const void *key, uint32_t klen, void *val);
/* The key of an entry (tm_map_next). */
static inline const void *tm_map_key(const tm_map *m, const tm_map_ent *e)
{
    return (const char *)e->val + m->key_off;
}
void *tm_map_del(tm_map *m, const void *key, uint32_t klen);
/* Iterate: *i starts at 0; returns NULL at the end. Do not modify while iterating. */
tm_map_ent *tm_map_next(const tm_map *m, uint32_t *i);

#endif
