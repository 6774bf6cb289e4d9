/*
 * wasi_event.h — the `tmqtt_event` import: readiness sets kept by the host's kernel
 * (epoll on Linux), for a module's event loop (guest side: src/net/loop_poll.c; host
 * side: src/runtime/event.c). The constants are the ABI and are shared by both sides.
 *
 * WASI preview 1 has only poll_oneoff, which takes the whole interest set on every
 * call and whose wasi-libc poll() wrapper reports readiness in array order. A broker
 * that polls its connections in a fixed order serves them in lock-step and sends
 * smaller batches than one served in the order its connections became ready
 * (docs/benchmarks.md, "Readiness order"); and every call costs O(connections).
 * With this import a module registers descriptors once and gets back only the ready
 * ones, in the order the kernel queued them — what a native broker gets from epoll.
 *
 *   create(handle_out) -> errno             a new, empty set; EMFILE past
 *                                           TM_EVENT_SETS sets
 *   ctl(handle, op, fd, events) -> errno    op ADD / MOD / DEL of the module's own
 *                                           descriptor fd with events READ | WRITE
 *                                           (0 = registered, only HANGUP/ERROR
 *                                           reported); EBADF for an fd the module
 *                                           does not hold; EEXIST / ENOENT as epoll
 *   wait(handle, out, max, timeout_ms, n_out) -> errno
 *                                           waits up to timeout_ms (-1: no limit;
 *                                           the value is a signed 32-bit number) and
 *                                           writes up to max records {u32 fd,
 *                                           u32 flags} (8 bytes each) at out, and
 *                                           their number at n_out; an interrupted
 *                                           wait returns 0 records
 *   destroy(handle) -> errno
 *
 * A registration refers to the host descriptor behind fd at the time of ctl; after
 * fd_close the kernel forgets it (as epoll forgets a closed descriptor), and after
 * fd_renumber the module must register again.
 *
 * Call only when the host announced the import (platform/wasi_host.h); on a host
 * without it the first call traps.
 */
#ifndef TM_PLATFORM_WASI_EVENT_H
#define TM_PLATFORM_WASI_EVENT_H

#define TM_EVENT_ADD 1u
#define TM_EVENT_MOD 2u
#define TM_EVENT_DEL 3u

#define TM_EVENT_READ 1u      /* readable, or the peer shut its side down */
#define TM_EVENT_WRITE 2u
#define TM_EVENT_HANGUP 4u    /* reported whether asked for or not */
#define TM_EVENT_ERROR 8u     /* likewise */

#define TM_EVENT_RECORD 8u    /* bytes per record written by wait */
#define TM_EVENT_MAX 256u     /* records per wait, at most */

#ifdef __wasi__
#include <stdint.h>

#define TM_EVENT_IMPORT(name) __attribute__((import_module("tmqtt_event"), import_name(name)))

typedef struct tm_event_rec {
    uint32_t fd;
    uint32_t flags;
} tm_event_rec;

uint32_t tm_event_create(uint32_t *handle_out) TM_EVENT_IMPORT("create");
uint32_t tm_event_ctl(uint32_t handle, uint32_t op, uint32_t fd, uint32_t events)
    TM_EVENT_IMPORT("ctl");
uint32_t tm_event_wait(uint32_t handle, tm_event_rec *out, uint32_t max, int32_t timeout_ms,
                       uint32_t *n_out) TM_EVENT_IMPORT("wait");
uint32_t tm_event_destroy(uint32_t handle) TM_EVENT_IMPORT("destroy");

#endif
#endif
