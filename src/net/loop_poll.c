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
 */
#include <poll.h>

#include "net/loop_table.h"

struct tm_loop {
    tm_loop_table t;
    struct pollfd *pfd;
    int n, cap;
    int *ready;       /* snapshot of fds with events, for safe dispatch */
    short *revents;
};

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

tm_loop *tm_loop_new(void) { return calloc(1, sizeof(tm_loop)); }

void tm_loop_free(tm_loop *l)
{
    if (!l)
        return;
    free(l->t.regs);
    free(l->pfd);
    free(l->ready);
    free(l->revents);
    free(l);
}

int tm_loop_add(tm_loop *l, int fd, unsigned events, tm_loop_cb cb, void *ud)
{
    if (tm_loop_table_grow(&l->t, fd) < 0)
        return -1;
    if (l->t.regs[fd].cb) {
        errno = EEXIST;
        return -1;
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
    l->pfd[l->n] = pfd_of(fd, events);
    l->t.regs[fd] = (tm_loop_reg){.cb = cb, .ud = ud, .events = events, .slot = (unsigned)l->n};
    l->n++;
    return 0;
}

int tm_loop_mod(tm_loop *l, int fd, unsigned events)
{
    tm_loop_reg *r = tm_loop_table_get(&l->t, fd);
    if (!r)
        return errno = ENOENT, -1;
    r->events = events;
    l->pfd[r->slot] = pfd_of(fd, events);
    return 0;
}

void tm_loop_del(tm_loop *l, int fd)
{
    tm_loop_reg *r = tm_loop_table_get(&l->t, fd);
    if (!r)
        return;
    unsigned slot = r->slot;
    l->n--;
    if ((int)slot != l->n) {
        l->pfd[slot] = l->pfd[l->n];
        l->t.regs[slot_fd(&l->pfd[slot])].slot = slot;
    }
    memset(r, 0, sizeof *r);
}

unsigned tm_loop_events(const tm_loop *l, int fd)
{
    tm_loop_reg *r = tm_loop_table_get(&l->t, fd);
    return r ? r->events : 0;
}

int tm_loop_run_once(tm_loop *l, int timeout_ms)
{
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
        tm_loop_reg *r = tm_loop_table_get(&l->t, fd);
        if (!r)
            continue;
        short e = l->revents[i];
        unsigned ready = 0;
        if (e & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            ready |= TM_EV_READ;
        if (e & (POLLOUT | POLLHUP | POLLERR))
            ready |= TM_EV_WRITE;
        ready &= r->events;
        if (!ready && (e & (POLLHUP | POLLERR | POLLNVAL)))
            ready = TM_EV_READ;
        if (!ready)
            continue;
        r->cb(l, fd, ready, r->ud);
        calls++;
    }
    return calls;
}

const char *tm_loop_backend(void) { return "poll"; }
