/*
 * event.c — the `tmqtt_event` import module: readiness sets for the module's event
 * loop, each one a host epoll descriptor (ABI: src/platform/wasi_event.h).
 *
 * What crosses the boundary: guest descriptor numbers and readiness bits, nothing
 * else. A registration is checked against the guest's descriptor table (tm_fd_get),
 * so a module can only watch descriptors it holds; the host descriptor number never
 * reaches the module (epoll's data field carries the guest's). Every guest address
 * is range-checked before use; a bad handle is EBADF, never a host fault. Sets are
 * few (TM_EVENT_SETS) and closed at exit.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "platform/wasi_event.h"
#include "runtime/host.h"
#include "runtime/host_imports.h"
#include "runtime/wasi_abi.h"

/* --omit-import tmqtt_event: every function traps, as an unlinked import does */
#define OMITTED(field)                                                                  \
    if (h->omit & TM_IMPORT_EVENT)                                                      \
    tm_trap_unlinked(h, "tmqtt_event", field)

void tm_event_init(tm_host *h)
{
    for (int i = 0; i < TM_EVENT_SETS; i++)
        h->event_sets[i] = -1;
}

void tm_event_fini(tm_host *h)
{
    for (int i = 0; i < TM_EVENT_SETS; i++) {
        if (h->event_sets[i] >= 0)
            close(h->event_sets[i]);
        h->event_sets[i] = -1;
    }
}

static int set_of(const tm_host *h, u32 handle)
{
    return handle < TM_EVENT_SETS ? h->event_sets[handle] : -1;
}

u32 TM_EVENT(create)(TM_EVENT_CTX, u32 handle_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("create");
    if (!tm_mem_ok(h, handle_out, 4))
        return TM_EFAULT;
    u32 slot = 0;
    while (slot < TM_EVENT_SETS && h->event_sets[slot] >= 0)
        slot++;
    if (slot == TM_EVENT_SETS)
        return TM_EMFILE;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return tm_errno_from_host(errno);
    h->event_sets[slot] = ep;
    tm_st32(h, handle_out, slot);
    TM_TRACE(h, "tmqtt_event: create -> set %u", slot);
    return TM_ESUCCESS;
}

u32 TM_EVENT(ctl)(TM_EVENT_CTX, u32 handle, u32 op, u32 fd, u32 events)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("ctl");
    int ep = set_of(h, handle);
    if (ep < 0)
        return TM_EBADF;
    tm_fd *f = tm_fd_get(h, fd);
    if (!f || f->kind == TM_FD_DIR || f->kind == TM_FD_PREOPEN)
        return TM_EBADF;
    if (events & ~(TM_EVENT_READ | TM_EVENT_WRITE))
        return TM_EINVAL;
    int eop = op == TM_EVENT_ADD ? EPOLL_CTL_ADD
            : op == TM_EVENT_MOD ? EPOLL_CTL_MOD
            : op == TM_EVENT_DEL ? EPOLL_CTL_DEL : -1;
    if (eop < 0)
        return TM_EINVAL;
    struct epoll_event ev = {.events = 0, .data.u64 = fd};
    if (events & TM_EVENT_READ)
        ev.events |= EPOLLIN | EPOLLRDHUP;
    if (events & TM_EVENT_WRITE)
        ev.events |= EPOLLOUT;
    if (epoll_ctl(ep, eop, f->host, &ev) < 0)
        return tm_errno_from_host(errno);
    return TM_ESUCCESS;
}

u32 TM_EVENT(wait)(TM_EVENT_CTX, u32 handle, u32 out, u32 max, u32 timeout_ms, u32 n_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("wait");
    int ep = set_of(h, handle);
    if (ep < 0)
        return TM_EBADF;
    if (max == 0 || max > TM_EVENT_MAX)
        return TM_EINVAL;
    if (!tm_mem_ok(h, out, (uint64_t)max * TM_EVENT_RECORD) || !tm_mem_ok(h, n_out, 4))
        return TM_EFAULT;
    struct epoll_event evs[TM_EVENT_MAX];
    int n = epoll_wait(ep, evs, (int)max, (int)timeout_ms);
    if (n < 0) {
        if (errno != EINTR)
            return tm_errno_from_host(errno);
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events, flags = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            flags |= TM_EVENT_READ;
        if (e & EPOLLOUT)
            flags |= TM_EVENT_WRITE;
        if (e & EPOLLHUP)
            flags |= TM_EVENT_HANGUP;
        if (e & EPOLLERR)
            flags |= TM_EVENT_ERROR;
        tm_st32(h, out + (u32)i * TM_EVENT_RECORD, (uint32_t)evs[i].data.u64);
        tm_st32(h, out + (u32)i * TM_EVENT_RECORD + 4, flags);
    }
    tm_st32(h, n_out, (uint32_t)n);
    return TM_ESUCCESS;
}

u32 TM_EVENT(destroy)(TM_EVENT_CTX, u32 handle)
{
    tm_host *h = TM_HOST_OF(ctx);
    OMITTED("destroy");
    int ep = set_of(h, handle);
    if (ep < 0)
        return TM_EBADF;
    close(ep);
    h->event_sets[handle] = -1;
    TM_TRACE(h, "tmqtt_event: destroy set %u", handle);
    return TM_ESUCCESS;
}
