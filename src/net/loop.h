/*
 * loop.h — the event loop interface, in the manner of Redis' ae.c.
 *
 * One small interface, one backend per platform chosen at compile time:
 * loop_epoll.c on Linux, loop_poll.c on WASI (wasi-libc maps poll() to
 * poll_oneoff) and anywhere else. Nothing above this header knows which one
 * runs it.
 *
 * The loop only watches file descriptors; timers are the caller's business
 * (it passes the time until its next deadline to tm_loop_run_once). This keeps
 * the backends trivial and lets the broker keep its own timer structures.
 *
 * Invariants: at most one registration per fd; a callback may add, modify or
 * delete any registration (including its own) while events are dispatched;
 * an fd deleted during a dispatch round gets no further callbacks in it.
 */
#ifndef TM_LOOP_H
#define TM_LOOP_H

enum { TM_EV_READ = 1u, TM_EV_WRITE = 2u };

typedef struct tm_loop tm_loop;

/* `events` is the subset of TM_EV_READ|TM_EV_WRITE that is ready. Errors and
 * hang-ups are reported as readable (and writable when write interest is set),
 * so the callback sees them as EOF or an error from read()/write(). */
typedef void (*tm_loop_cb)(tm_loop *loop, int fd, unsigned events, void *ud);

tm_loop *tm_loop_new(void);
void tm_loop_free(tm_loop *loop);

/* 0 on success, -1 with errno set. */
int tm_loop_add(tm_loop *loop, int fd, unsigned events, tm_loop_cb cb, void *ud);
int tm_loop_mod(tm_loop *loop, int fd, unsigned events);
void tm_loop_del(tm_loop *loop, int fd);
unsigned tm_loop_events(const tm_loop *loop, int fd);   /* current interest */
/* Calls fn(ud, arg) for every registration made with callback cb, in fd
 * order; fn may delete registrations (its own included). */
void tm_loop_each(tm_loop *loop, tm_loop_cb cb, void (*fn)(void *ud, void *arg), void *arg);

/* Wait up to timeout_ms (-1: forever, 0: don't block) and dispatch. Returns the
 * number of callbacks made, or -1 with errno set (EINTR is returned as 0). */
int tm_loop_run_once(tm_loop *loop, int timeout_ms);

const char *tm_loop_backend(void);   /* "epoll" or "poll" */

#endif
