/*
 * pidmap.c — packet identifier -> flow state, for the QoS state machines.
 *
 * A client of the benchmark may have a few in-flight messages or tens of
 * thousands; a 65536-entry array per client would cost 64 KiB x thousands of
 * clients, so this is a small open-addressing table that grows by doubling
 * (load <= 1/2) and deletes by backward shifting (no tombstones, so lookups
 * stay short however long the connection lives).
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

static uint32_t slot(const tm_pidmap *m, uint16_t pid)
{
    return ((uint32_t)pid * 40503u) & (m->cap - 1);   /* Fibonacci-style spread */
}

uint8_t tm_pidmap_get(const tm_pidmap *m, uint16_t pid)
{
    if (!m->cap || !pid)
        return TM_ID_FREE;
    for (uint32_t i = slot(m, pid);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == pid)
            return m->vals[i];
        if (m->keys[i] == 0)
            return TM_ID_FREE;
    }
}

static int grow(tm_pidmap *m)
{
    uint32_t ncap = m->cap ? m->cap * 2 : 16;
    uint16_t *nk = calloc(ncap, sizeof *nk);
    uint8_t *nv = calloc(ncap, 1);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -1;
    }
    tm_pidmap old = *m;
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    m->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            tm_pidmap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
    return 0;
}

int tm_pidmap_put(tm_pidmap *m, uint16_t pid, uint8_t state)
{
    if (!pid)
        return -1;
    if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
        return -1;
    for (uint32_t i = slot(m, pid);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == pid) {
            m->vals[i] = state;
            return 0;
        }
        if (m->keys[i] == 0) {
            m->keys[i] = pid;
            m->vals[i] = state;
            m->n++;
            return 0;
        }
    }
}

void tm_pidmap_del(tm_pidmap *m, uint16_t pid)
{
    if (!m->cap || !pid)
        return;
    uint32_t mask = m->cap - 1, i = slot(m, pid);
    while (m->keys[i] != pid) {
        if (m->keys[i] == 0)
            return;
        i = (i + 1) & mask;
    }
    /* Backward-shift: pull later members of the probe run into the hole when
     * the hole lies on their path from home slot to current slot. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        uint32_t home = slot(m, m->keys[j]);
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->keys[hole] = m->keys[j];
            m->vals[hole] = m->vals[j];
            hole = j;
        }
    }
    m->keys[hole] = 0;
    m->vals[hole] = 0;
    m->n--;
}

void tm_pidmap_clear(tm_pidmap *m)
{
    if (m->cap) {
        memset(m->keys, 0, m->cap * sizeof *m->keys);
        memset(m->vals, 0, m->cap);
    }
    m->n = 0;
}

void tm_pidmap_free(tm_pidmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
