/*
 * test_loop.c — the event loop (src/net/loop.h), built twice: against the
 * platform's backend (epoll here) and against the poll backend (the WASI
 * one). Checks what loop.h promises and what its compact registration table
 * (loop_table.h: one byte of flags and callback index per fd) must keep:
 * interest per fd, the right callback and user data for each of many fds
 * and several callbacks, a registration deleted during a dispatch round
 * getting no callback in it, tm_loop_each visiting exactly one callback's
 * registrations while deleting them, a second registration of an fd refused, and
 * more distinct callbacks than the table can name refused with ENOSPC
 * instead of calling the wrong one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"
#include "tm_test.h"

#define NPAIRS 40

static int sv[NPAIRS][2];
static int calls_a[NPAIRS], calls_b[NPAIRS];
static int pair_del[2] = {-1, -1};   /* armed: the first of these to run deletes the other */

static void cb_a(tm_loop *l, int fd, unsigned ev, void *ud)
{
    int i = (int)(intptr_t)ud;
    TM_CHECK_EQ(fd, sv[i][0]);
    TM_CHECK(ev & TM_EV_READ);
    calls_a[i]++;
    char b[8];
    (void)!read(fd, b, sizeof b);
    if (pair_del[0] >= 0) {
        tm_loop_del(l, fd == pair_del[0] ? pair_del[1] : pair_del[0]);
        pair_del[0] = pair_del[1] = -1;
    }
}

static void cb_b(tm_loop *l, int fd, unsigned ev, void *ud)
{
    int i = (int)(intptr_t)ud;
    TM_CHECK_EQ(fd, sv[i][0]);
    calls_b[i]++;
    char b[8];
    (void)!read(fd, b, sizeof b);
}

static tm_loop *each_loop;
static int each_seen;

static void del_visited(void *ud, void *arg)
{
    int i = (int)(intptr_t)ud;
    TM_CHECK(i % 2 == 1);        /* only cb_b's */
    (*(int *)arg)++;
    tm_loop_del(each_loop, sv[i][0]);
}

static void test_many_fds_two_callbacks(void)
{
    tm_loop *l = tm_loop_new();
    TM_CHECK(l != NULL);
    for (int i = 0; i < NPAIRS; i++) {
        TM_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
        TM_CHECK_EQ(tm_loop_add(l, sv[i][0], TM_EV_READ, i % 2 ? cb_b : cb_a,
                                (void *)(intptr_t)i), 0);
        TM_CHECK_EQ(tm_loop_events(l, sv[i][0]), TM_EV_READ);
    }
    errno = 0;
    TM_CHECK_EQ(tm_loop_add(l, sv[3][0], TM_EV_READ, cb_a, NULL), -1);
    TM_CHECK_EQ(errno, EEXIST);
    for (int i = 0; i < NPAIRS; i++)
        TM_CHECK_EQ(write(sv[i][1], "x", 1), 1);
    int total = 0;
    for (int round = 0; round < 10 && total < NPAIRS; round++)
        total += tm_loop_run_once(l, 1000);
    TM_CHECK_EQ(total, NPAIRS);
    for (int i = 0; i < NPAIRS; i++) {
        TM_CHECK_EQ(calls_a[i], i % 2 ? 0 : 1);
        TM_CHECK_EQ(calls_b[i], i % 2 ? 1 : 0);
    }
    /* write interest on a connected socket: writable at once */
    TM_CHECK_EQ(tm_loop_mod(l, sv[1][0], TM_EV_READ | TM_EV_WRITE), 0);
    TM_CHECK_EQ(tm_loop_events(l, sv[1][0]), TM_EV_READ | TM_EV_WRITE);
    TM_CHECK_EQ(tm_loop_mod(l, sv[1][0], TM_EV_READ), 0);
    TM_CHECK_EQ(tm_loop_events(l, sv[1][0]), TM_EV_READ);
    /* two fds ready in one round; the first callback deletes the other */
    memset(calls_a, 0, sizeof calls_a);
    TM_CHECK_EQ(write(sv[0][1], "x", 1), 1);
    TM_CHECK_EQ(write(sv[2][1], "x", 1), 1);
    pair_del[0] = sv[0][0];
    pair_del[1] = sv[2][0];
    int n = tm_loop_run_once(l, 1000);
    TM_CHECK_EQ(n, 1);
    TM_CHECK_EQ(calls_a[0] + calls_a[2], 1);
    int gone = calls_a[0] ? sv[2][0] : sv[0][0];
    TM_CHECK_EQ(tm_loop_events(l, gone), 0);
    errno = 0;
    TM_CHECK_EQ(tm_loop_mod(l, gone, TM_EV_READ), -1);
    TM_CHECK_EQ(errno, ENOENT);
    /* cb_b's registrations, each deleted as it is visited */
    each_loop = l;
    each_seen = 0;
    tm_loop_each(l, cb_b, del_visited, &each_seen);
    TM_CHECK_EQ(each_seen, NPAIRS / 2);
    for (int i = 0; i < NPAIRS; i++)
        TM_CHECK_EQ(tm_loop_events(l, sv[i][0]) != 0, i % 2 == 0 && sv[i][0] != gone);
    each_seen = 0;
    tm_loop_each(l, cb_b, del_visited, &each_seen);
    TM_CHECK_EQ(each_seen, 0);
    for (int i = 0; i < NPAIRS; i++) {
        tm_loop_del(l, sv[i][0]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    tm_loop_free(l);
}

/* 70 distinct callbacks, generated: the table names 63 per loop. */
static int which_called = -1;
#define CB(n) static void cb##n(tm_loop *l, int fd, unsigned e, void *u) { which_called = n; }
#define CB10(t) CB(t##0) CB(t##1) CB(t##2) CB(t##3) CB(t##4) CB(t##5) CB(t##6) CB(t##7) \
                CB(t##8) CB(t##9)
CB10(1) CB10(2) CB10(3) CB10(4) CB10(5) CB10(6) CB10(7)
#define P(n) cb##n
#define P10(t) P(t##0), P(t##1), P(t##2), P(t##3), P(t##4), P(t##5), P(t##6), P(t##7), \
               P(t##8), P(t##9)
static const tm_loop_cb many[70] = {P10(1), P10(2), P10(3), P10(4), P10(5), P10(6), P10(7)};

static void test_too_many_callbacks_refused(void)
{
    tm_loop *l = tm_loop_new();
    int fds[70][2], added = 0;
    for (int i = 0; i < 70; i++) {
        TM_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]), 0);
        errno = 0;
        int r = tm_loop_add(l, fds[i][0], TM_EV_READ, many[i], NULL);
        if (r == 0)
            added++;
        else
            TM_CHECK_EQ(errno, ENOSPC);
    }
    TM_CHECK_EQ(added, 63);
    /* the last accepted one is called, not a neighbour */
    TM_CHECK_EQ(write(fds[62][1], "x", 1), 1);
    TM_CHECK_EQ(tm_loop_run_once(l, 1000), 1);
    TM_CHECK_EQ(which_called, 62 / 10 * 10 + 10 + 62 % 10);   /* cb72 */
    for (int i = 0; i < 70; i++) {
        tm_loop_del(l, fds[i][0]);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    tm_loop_free(l);
}

static int parked_calls;

static void cb_parked(tm_loop *l, int fd, unsigned ev, void *ud)
{
    (void)l, (void)fd, (void)ev, (void)ud;
    parked_calls++;
}

/* A registration with no interest (a handshake parked by netsrv) is not
 * reported, even when its peer has hung up, and wakes again when it asks for
 * events; the others around it keep their slots. The poll backend hands such
 * an entry to poll() as a negative fd: wasi-libc's poll() fails with ENOSYS
 * on an entry that asks for nothing. */
static void test_parked_registration(void)
{
    tm_loop *l = tm_loop_new();
    int a[2], b[2];
    TM_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    TM_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    TM_CHECK_EQ(tm_loop_add(l, b[0], TM_EV_READ, cb_parked, NULL), 0);
    TM_CHECK_EQ(tm_loop_add(l, a[0], TM_EV_READ, cb_parked, NULL), 0);
    TM_CHECK_EQ(tm_loop_mod(l, a[0], 0), 0);
    TM_CHECK_EQ(tm_loop_events(l, a[0]), 0u);
    close(a[1]);   /* a hang-up on the parked one */
    parked_calls = 0;
    if (!strcmp(tm_loop_backend(), "poll")) {
        TM_CHECK_EQ(tm_loop_run_once(l, 0), 0);
        TM_CHECK_EQ(parked_calls, 0);
    }
    /* the other one still works; deleting it moves the parked one into its slot */
    TM_CHECK_EQ(write(b[1], "x", 1), 1);
    TM_CHECK(tm_loop_run_once(l, 1000) >= 1);
    tm_loop_del(l, b[0]);
    parked_calls = 0;
    TM_CHECK_EQ(tm_loop_mod(l, a[0], TM_EV_READ), 0);
    TM_CHECK_EQ(tm_loop_run_once(l, 1000), 1);
    TM_CHECK_EQ(parked_calls, 1);
    tm_loop_del(l, a[0]);
    close(a[0]);
    close(b[0]);
    close(b[1]);
    tm_loop_free(l);
}

TM_TEST_MAIN(TM_CASE(test_many_fds_two_callbacks), TM_CASE(test_too_many_callbacks_refused),
             TM_CASE(test_parked_registration))
