/*
 * loop_table.h — the registration table shared by the loop backends: a dense
 * array indexed by fd, so that lookup on dispatch is one array access.
 * Private to src/net/loop_*.c.
 */
#ifndef TM_LOOP_TABLE_H
#define TM_LOOP_TABLE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/loop.h"

typedef struct tm_loop_reg {
    tm_loop_cb cb;      /* NULL: not registered */
    void *ud;
    unsigned events;
    unsigned slot;      /* backend-private (poll: index in the pollfd array) */
} tm_loop_reg;

typedef struct tm_loop_table {
    tm_loop_reg *regs;
    int cap;
} tm_loop_table;

static inline int tm_loop_table_grow(tm_loop_table *t, int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fd < t->cap)
        return 0;
    int ncap = t->cap ? t->cap : 64;
    while (ncap <= fd)
        ncap *= 2;
    tm_loop_reg *n = realloc(t->regs, (size_t)ncap * sizeof *n);
    if (!n) {
        errno = ENOMEM;
        return -1;
    }
    memset(n + t->cap, 0, (size_t)(ncap - t->cap) * sizeof *n);
    t->regs = n;
    t->cap = ncap;
    return 0;
}

static inline tm_loop_reg *tm_loop_table_get(const tm_loop_table *t, int fd)
{
    if (fd < 0 || fd >= t->cap || !t->regs[fd].cb)
        return NULL;
    return &t->regs[fd];
}

#endif
