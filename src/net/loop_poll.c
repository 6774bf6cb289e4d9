/*
 * loop_poll.c — tm_loop on poll(): the WASI backend (wasi-libc turns poll()
 * into one poll_oneoff call) and the portable fallback.
 *
 * The pollfd array is kept dense: each registration remembers its slot, and a
 * deletion moves the last entry into the hole. Dispatch walks a snapshot of
 * the ready fds, re-checking each registration, so callbacks may change the
 * table freely.
 *
 * A registration that wants no events (a handshake parked in netsrv's queue)
 * keeps its slot with the fd stored as ~fd: poll() ignores negative fds, and
 * wasi-libc's poll() fails with ENOSYS on an entry with no events at all.
 *
 * On WASI, when the host announces the `tmqtt_event` import (tmqtt-wasm does;
 * platform/wasi_event.h), the loop keeps its registrations in a host readiness
 * set instead and has the ready ones reported in the order the kernel queued
 * them, as loop_epoll.c does natively: poll() hands back readiness in array
 * order, which serves connections in lock-step (smaller batches, fewer
 * messages per write; docs/benchmarks.md "Readiness order"), and costs
 * O(registrations) per call. Without the import (WAMR) it is poll() as above.
 */
#include <poll.h>

#include "net/loop_table.h"
#ifdef __wasi__
#include "platform/wasi_event.h"
#include "platform/wasi_host.h"
#endif

struct tm_loop {
    tm_loop_table t;
    unsigned *slot;   /* per fd: its index in pfd (as long as t's arrays) */
    int slot_cap;
    struct pollfd *pfd;
    int n, cap;
    int *ready;       /* snapshot of fds with events, for safe dispatch */
    short *revents;
#ifdef __wasi__
    int set;          /* host readiness set (tmqtt_event), or -1: poll() */
    tm_event_rec rec[TM_EVENT_MAX];
#endif
};

#ifdef __wasi__
static const char *g_backend = "poll";

static uint32_t to_host(unsigned events)
{
    return (events & TM_EV_READ ? TM_EVENT_READ : 0) | (events & TM_EV_WRITE ? TM_EVENT_WRITE : 0);
}

/* The host's answer as errno; wasi-libc's errno values are WASI's. */
static int host_ctl(tm_loop *l, uint32_t op, int fd, unsigned events)
{
    uint32_t e = tm_event_ctl((uint32_t)l->set, op, (uint32_t)fd, to_host(events));
    if (e)
        return errno = (int)e, -1;
    return 0;
}
#endif

static short to_poll(unsigned events)
{
    short e = 0;
    if (events & TM_EV_READ)
        e |= POLLIN;
    if (events & TM_EV_WRITE)
        e |= POLLOUT;
    return e;
}

/* The pollfd entry of fd wanting `events`; slot_fd() reads the fd back. */
static struct pollfd pfd_of(int fd, unsigned events)
{
    short e = to_poll(events);
    return (struct pollfd){.fd = e ? fd : ~fd, .events = e};
}

static int slot_fd(const struct pollfd *p) { return p->fd < 0 ? ~p->fd : p->fd; }

tm_loop *tm_loop_new(void)
{
    tm_loop *l = calloc(1, sizeof(tm_loop));
#ifdef __wasi__
    uint32_t h;
    if (l)
        l->set = -1;
    if (l && tm_host_import("tmqtt_event") == TM_HOST_IMPORT_PRESENT && tm_event_create(&h) == 0) {
        l->set = (int)h;
        g_backend = "host readiness set (tmqtt_event)";
    }
#endif
    return l;
}

void tm_loop_free(tm_loop *l)
{
    if (!l)
        return;
#ifdef __wasi__
    if (l->set >= 0)
        tm_event_destroy((uint32_t)l->set);
#endif
    tm_loop_table_free(&l->t);
    free(l->slot);
    free(l->pfd);
    free(l->ready);
    free(l->revents);
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
#ifdef __wasi__
    if (l->set >= 0) {
        if (tm_loop_table_set(&l->t, fd, events, cb, ud) < 0)
            return -1;
        if (host_ctl(l, TM_EVENT_ADD, fd, events) < 0) {
            int saved = errno;
            tm_loop_table_clear(&l->t, fd);
            return errno = saved, -1;
        }
        return 0;
    }
#endif
    if (l->slot_cap < l->t.cap) {
        unsigned *sl = realloc(l->slot, (size_t)l->t.cap * sizeof *sl);
        if (!sl)
            return errno = ENOMEM, -1;
        l->slot = sl;
        l->slot_cap = l->t.cap;
    }
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 64;
        struct pollfd *p = realloc(l->pfd, (size_t)ncap * sizeof *p);
        if (!p)
            return errno = ENOMEM, -1;
        l->pfd = p;
        int *r = realloc(l->ready, (size_t)ncap * sizeof *r);
        if (!r)
            return errno = ENOMEM, -1;
        l->ready = r;
        short *rv = realloc(l->revents, (size_t)ncap * sizeof *rv);
        if (!rv)
            return errno = ENOMEM, -1;
        l->revents = rv;
        l->cap = ncap;
    }
    if (tm_loop_table_set(&l->t, fd, events, cb, ud) < 0)
        return -1;
    l->pfd[l->n] = pfd_of(fd, events);
    l->slot[fd] = (unsigned)l->n;
    l->n++;
    return 0;
}

int tm_loop_mod(tm_loop *l, int fd, unsigned events)
{
    if (!tm_loop_table_has(&l->t, fd))
        return errno = ENOENT, -1;
#ifdef __wasi__
    if (l->set >= 0) {
        if (tm_loop_table_events(&l->t, fd) != events && host_ctl(l, TM_EVENT_MOD, fd, events) < 0)
            return -1;
        tm_loop_table_set_events(&l->t, fd, events);
        return 0;
    }
#endif
    tm_loop_table_set_events(&l->t, fd, events);
    l->pfd[l->slot[fd]] = pfd_of(fd, events);
    return 0;
}

void tm_loop_del(tm_loop *l, int fd)
{
    if (!tm_loop_table_has(&l->t, fd))
        return;
#ifdef __wasi__
    if (l->set >= 0) {
        host_ctl(l, TM_EVENT_DEL, fd, 0);   /* fails harmlessly when fd is closed already */
        tm_loop_table_clear(&l->t, fd);
        return;
    }
#endif
    unsigned slot = l->slot[fd];
    l->n--;
    if ((int)slot != l->n) {
        l->pfd[slot] = l->pfd[l->n];
        l->slot[slot_fd(&l->pfd[slot])] = slot;
    }
    tm_loop_table_clear(&l->t, fd);
}

unsigned tm_loop_events(const tm_loop *l, int fd)
{
    return tm_loop_table_events(&l->t, fd);
}

#ifdef __wasi__
/* One round on the host's readiness set; the mapping is loop_epoll.c's. */
static int run_host_set(tm_loop *l, int timeout_ms)
{
    uint32_t n = 0;
    uint32_t e = tm_event_wait((uint32_t)l->set, l->rec, TM_EVENT_MAX, timeout_ms, &n);
    if (e)
        return errno = (int)e, -1;
    int calls = 0;
    for (uint32_t i = 0; i < n && i < TM_EVENT_MAX; i++) {
        int fd = (int)l->rec[i].fd;
        uint32_t f = l->rec[i].flags;
        if (!tm_loop_table_has(&l->t, fd))
            continue; /* deleted by an earlier callback in this round */
        unsigned interest = tm_loop_table_events(&l->t, fd);
        unsigned ready = 0;
        if (f & (TM_EVENT_READ | TM_EVENT_HANGUP | TM_EVENT_ERROR))
            ready |= TM_EV_READ;
        if (f & (TM_EVENT_WRITE | TM_EVENT_HANGUP | TM_EVENT_ERROR))
            ready |= TM_EV_WRITE;
        ready &= interest ? interest : ready;
        if (!ready)
            continue;
        tm_loop_table_call(&l->t, l, fd, ready);
        calls++;
    }
    return calls;
}
#endif

int tm_loop_run_once(tm_loop *l, int timeout_ms)
{
#ifdef __wasi__
    if (l->set >= 0)
        return run_host_set(l, timeout_ms);
#endif
    int n = poll(l->pfd, (nfds_t)l->n, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    int k = 0;
    for (int i = 0; i < l->n && k < n; i++) {
        if (l->pfd[i].revents) {
            l->ready[k] = l->pfd[i].fd;
            l->revents[k] = l->pfd[i].revents;
            k++;
        }
    }
    int calls = 0;
    for (int i = 0; i < k; i++) {
        int fd = l->ready[i];
        if (!tm_loop_table_has(&l->t, fd))
            continue;
        short e = l->revents[i];
        unsigned ready = 0;
        if (e & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            ready |= TM_EV_READ;
        if (e & (POLLOUT | POLLHUP | POLLERR))
            ready |= TM_EV_WRITE;
        ready &= tm_loop_table_events(&l->t, fd);
        if (!ready && (e & (POLLHUP | POLLERR | POLLNVAL)))
            ready = TM_EV_READ;
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

#ifdef __wasi__
const char *tm_loop_backend(void) { return g_backend; }
#else
const char *tm_loop_backend(void) { return "poll"; }
#endif
