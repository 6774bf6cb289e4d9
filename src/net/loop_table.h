/*
 * loop_table.h — the registration table shared by the loop backends: dense
 * arrays indexed by fd, so that lookup on dispatch is one array access.
 * Private to src/net/loop_*.c.
 *
 * Kept small, because a broker for devices has one entry per idle connection
 * (and the arrays are as long as the highest fd, rounded up to a power of
 * two): per fd a user-data pointer and one byte saying whether it is
 * registered, for which events, and with which callback — an index into the
 * loop's few distinct callbacks (a loop has a handful: accept, connection,
 * client), so that the function pointer is not repeated in every entry.
 * 9 bytes per fd instead of 24, and the arrays grow by a quarter.
 */
#ifndef TM_LOOP_TABLE_H
#define TM_LOOP_TABLE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/loop.h"

#define TM_LOOP_CBS 63           /* distinct callbacks per loop (6 bits) */

typedef struct tm_loop_table {
    void **ud;
    uint8_t *meta;               /* 0: not registered; else events | (cb index + 1) << 2 */
    int cap;
    int n_cbs;
    tm_loop_cb cbs[TM_LOOP_CBS];
} tm_loop_table;

static inline void tm_loop_table_free(tm_loop_table *t)
{
    free(t->ud);
    free(t->meta);
}

static inline int tm_loop_table_grow(tm_loop_table *t, int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fd < t->cap)
        return 0;
    /* by a quarter, in whole 1024s past the first: the arrays stay within 25 %
     * of the highest fd (the kernel hands out the lowest free one) rather than
     * up to twice it, and growing stays amortised O(1) */
    int ncap = t->cap ? t->cap : 64;
    while (ncap <= fd)
        ncap = ncap < 1024 ? ncap * 2 : (ncap + ncap / 4 + 1023) / 1024 * 1024;
    void **ud = realloc(t->ud, (size_t)ncap * sizeof *ud);
    if (ud)
        t->ud = ud;
    uint8_t *meta = ud ? realloc(t->meta, (size_t)ncap) : NULL;
    if (!meta) {
        errno = ENOMEM;
        return -1;
    }
    t->meta = meta;
    memset(t->ud + t->cap, 0, (size_t)(ncap - t->cap) * sizeof *t->ud);
    memset(t->meta + t->cap, 0, (size_t)(ncap - t->cap));
    t->cap = ncap;
    return 0;
}

static inline bool tm_loop_table_has(const tm_loop_table *t, int fd)
{
    return fd >= 0 && fd < t->cap && t->meta[fd];
}

/* Registers fd (grown already). -1 (errno ENOSPC) when the loop already has
 * TM_LOOP_CBS other callbacks. */
static inline int tm_loop_table_set(tm_loop_table *t, int fd, unsigned events, tm_loop_cb cb,
                                    void *ud)
{
    int i = 0;
    while (i < t->n_cbs && t->cbs[i] != cb)
        i++;
    if (i == t->n_cbs) {
        if (t->n_cbs == TM_LOOP_CBS) {
            errno = ENOSPC;
            return -1;
        }
        t->cbs[t->n_cbs++] = cb;
    }
    t->ud[fd] = ud;
    t->meta[fd] = (uint8_t)((events & 3u) | (unsigned)(i + 1) << 2);
    return 0;
}

static inline unsigned tm_loop_table_events(const tm_loop_table *t, int fd)
{
    return tm_loop_table_has(t, fd) ? t->meta[fd] & 3u : 0;
}

static inline void tm_loop_table_set_events(tm_loop_table *t, int fd, unsigned events)
{
    t->meta[fd] = (uint8_t)((t->meta[fd] & ~3u) | (events & 3u));
}

static inline void tm_loop_table_clear(tm_loop_table *t, int fd)
{
    t->meta[fd] = 0;
    t->ud[fd] = NULL;
}

static inline void tm_loop_table_each(tm_loop_table *t, tm_loop_cb cb,
                                      void (*fn)(void *ud, void *arg), void *arg)
{
    for (int fd = 0; fd < t->cap; fd++)
        if (t->meta[fd] && t->cbs[(t->meta[fd] >> 2) - 1] == cb)
            fn(t->ud[fd], arg);
}

/* Calls fd's callback (registered: tm_loop_table_has). */
static inline void tm_loop_table_call(tm_loop_table *t, tm_loop *l, int fd, unsigned ready)
{
    t->cbs[(t->meta[fd] >> 2) - 1](l, fd, ready, t->ud[fd]);
}

#endif
