/*
 * loop_epoll.c — tm_loop on Linux epoll (level-triggered).
 *
 * Level-triggered keeps the callers simple: a connection that stops reading
 * because its output is congested is woken again when it re-enables reading.
 */
#include <sys/epoll.h>
#include <unistd.h>

#include "net/loop_table.h"

#define TM_EPOLL_BATCH 256

struct tm_loop {
    int epfd;
    tm_loop_table t;
    struct epoll_event ev[TM_EPOLL_BATCH];
};

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & TM_EV_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & TM_EV_WRITE)
        e |= EPOLLOUT;
    return e;
}

tm_loop *tm_loop_new(void)
{
    tm_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void tm_loop_free(tm_loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    tm_loop_table_free(&l->t);
    free(l);
}

int tm_loop_add(tm_loop *l, int fd, unsigned events, tm_loop_cb cb, void *ud)
{
    if (tm_loop_table_grow(&l->t, fd) < 0)
        return -1;
    if (tm_loop_table_has(&l->t, fd)) {
        errno = EEXIST;
        return -1;
    }
    struct epoll_event e = {.events = to_epoll(events), .data.fd = fd};
    if (tm_loop_table_set(&l->t, fd, events, cb, ud) < 0)
        return -1;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        int saved = errno;
        tm_loop_table_clear(&l->t, fd);
        errno = saved;
        return -1;
    }
    return 0;
}

int tm_loop_mod(tm_loop *l, int fd, unsigned events)
{
    if (!tm_loop_table_has(&l->t, fd)) {
        errno = ENOENT;
        return -1;
    }
    if (tm_loop_table_events(&l->t, fd) == events)
        return 0;
    struct epoll_event e = {.events = to_epoll(events), .data.fd = fd};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &e) < 0)
        return -1;
    tm_loop_table_set_events(&l->t, fd, events);
    return 0;
}

void tm_loop_del(tm_loop *l, int fd)
{
    if (!tm_loop_table_has(&l->t, fd))
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    tm_loop_table_clear(&l->t, fd);
}

unsigned tm_loop_events(const tm_loop *l, int fd)
{
    return tm_loop_table_events(&l->t, fd);
}

int tm_loop_run_once(tm_loop *l, int timeout_ms)
{
    int n = epoll_wait(l->epfd, l->ev, TM_EPOLL_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int calls = 0;
    for (int i = 0; i < n; i++) {
        int fd = l->ev[i].data.fd;
        if (!tm_loop_table_has(&l->t, fd))
            continue; /* deleted by an earlier callback in this round */
        unsigned interest = tm_loop_table_events(&l->t, fd);
        uint32_t e = l->ev[i].events;
        unsigned ready = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            ready |= TM_EV_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ready |= TM_EV_WRITE;
        ready &= interest ? interest : ready;
        if (!ready && (e & (EPOLLHUP | EPOLLERR)))
            ready = TM_EV_READ; /* an error is always worth a callback */
        if (!ready)
            continue;
        tm_loop_table_call(&l->t, l, fd, ready);
        calls++;
    }
    return calls;
}

void tm_loop_each(tm_loop *l, tm_loop_cb cb, void (*fn)(void *ud, void *arg), void *arg)
{
    tm_loop_table_each(&l->t, cb, fn, arg);
}

const char *tm_loop_backend(void) { return "epoll"; }
