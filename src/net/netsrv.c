/*
 * netsrv.c — listeners and accepted connections (netsrv.h).
 *
 * States of a connection:
 *   CONNECTING outgoing only: the TCP connect is in progress, under the
 *              handshake deadline
 *   HANDSHAKE  transport handshake running (TLS, the WebSocket upgrade), under
 *              the handshake deadline
 *   OPEN       the upper layer owns it: input is delivered, output sent
 *   CLOSING    the upper layer let go: the rest of the output leaves, then
 *              the transport is shut down for writing
 *   DRAINING   input is read and discarded until the peer closes or the
 *              drain deadline passes
 *   DEAD       socket closed; waiting for tm_netsrv_reap to report and free
 * Connections are freed only in tm_netsrv_reap, so pointers the upper layer
 * and the loop hold stay valid for the whole iteration in which one ends.
 *
 * Handshake scheduling (a reconnect storm must not starve open connections):
 * handshake steps are the expensive part of accepting (key exchange,
 * signatures, and on attesting listeners a platform quote of tens of
 * milliseconds), so each loop iteration gives them a budget of
 * TM_HS_BUDGET_NS. A step that starts within the budget runs to its end
 * (OpenSSL cannot stop inside one, so an iteration holds at most the budget
 * plus one step: one quote at most); past the budget, handshakes that become
 * ready wait in a FIFO with their socket events off (so that level-triggered
 * readiness of thousands of them cannot crowd open connections out of the
 * event batch) and tm_netsrv_run_queued, called at the start of each
 * iteration, steps them in arrival order. Handshakes the TLS layer paused
 * (TM_TLS_WANT_RETRY: the attestation provider is busy) wait in the same
 * FIFO. Open connections are never queued.
 */
#include "net/netsrv.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/sock.h"
#include "net/stream.h"
#include "net/tls.h"
#ifdef __wasi__
#include "platform/wasi_socket.h"
#endif

#define TM_READ_CHUNK 65536
#define TM_READ_ROUNDS 64        /* per readiness event: one busy peer cannot starve others */
#define TM_DRAIN_MS 2000
#define TM_DRAIN_MAX (64u << 20)
#define TM_HS_BUDGET_NS 5000000LL    /* handshake work per loop iteration (see top) */
#define TM_ATTEST_TICK_MS 1000       /* attestation key rotation checks */
#define TM_PEER_MAX 48               /* "[v6 address]:port" and its NUL */

enum { NC_CONNECTING, NC_HANDSHAKE, NC_OPEN, NC_CLOSING, NC_DRAINING, NC_DEAD };
_Static_assert(TM_DRAIN_MAX + (uint64_t)TM_READ_CHUNK < UINT32_MAX, "tm_nconn.drained holds a drain");

typedef struct nlistener {
    tm_netsrv *srv;
    int fd;
    uint16_t port;
    int max_connections;
    uint32_t n_conns;
    tm_tls_server *tls;          /* NULL: plain TCP */
    bool websockets;             /* a WebSocket layer on top (ws.h) */
    tm_ws_opts ws;
    void *cookie;
    /* an outgoing connection has one of its own (freed with it) */
    struct outgoing *out;
} nlistener;

/* What an outgoing connection needs until its transport is up. */
typedef struct outgoing {
    SSL_CTX *tls;                /* a reference; NULL: plain TCP */
    char *sni, *expect;
    tm_tls_client_hooks hooks;
    bool opened;                 /* open() was called: no failed() then */
} outgoing;

/* Kept small: a broker for devices holds one per idle connection. The TCP
 * layer of the stack lives inside it and the peer's name is sized to fit, so
 * an accepted connection is one allocation; fields that no state uses at the
 * same time share memory. Open connections are on no list of ours: the loop's
 * registrations are the set of connections (tm_netsrv_free walks them), and
 * only connections with a deadline are in srv->timed. */
struct tm_nconn {
    nlistener *lst;              /* its listener (lst->srv: the server) */
    tm_stream *st;               /* the top of the stack; NULL once dead */
    void *up;                    /* the upper layer's connection while it owns it */
    union {
        uint8_t *pend;           /* output the socket did not take yet */
        char *why;               /* DEAD: how it ended, for closed() (a copy: the
                                  * reason often lives in the stream, freed then) */
    };
    union {
        /* HANDSHAKE: the handshake FIFO while queued (NULL otherwise);
         * DEAD: hs_next links the connections to reap */
        struct {
            tm_nconn *hs_next, *hs_prev;
        };
        /* OPEN, CLOSING: pend's length and what of it was written (a
         * connection leaves HANDSHAKE unqueued: both then read 0) */
        struct {
            size_t pend_len, pend_pos;
        };
        /* DRAINING (entered with nothing pending): bytes discarded */
        uint32_t drained;
    };
    uint32_t deadline;           /* handshake or drain: the low 32 bits of
                                  * tm_net_now_ms() then (see past()); 0: none */
    uint32_t tidx : 27;          /* 1 + its index in srv->timed, 0: not there */
    uint32_t state : 3;          /* NC_* */
    bool queued : 1;
    bool retry : 1;              /* last step paused by the TLS layer */
    tm_stream tcp;               /* the bottom layer (tm_stream_tcp_init) */
    char peer[];                 /* "addr:port", at most TM_PEER_MAX with its NUL */
};

struct tm_netsrv {
    tm_loop *loop;
    tm_netsrv_handler h;
    uint32_t handshake_ms;
    nlistener **lst;
    int n_lst;
    tm_nconn **timed;            /* connections with a deadline (see tm_nconn.tidx) */
    uint32_t n_timed, cap_timed;
    tm_nconn *reap;              /* ended this iteration */
    tm_nconn *hs_head, *hs_tail; /* handshakes waiting for budget (see top) */
    int64_t hs_used_ns;          /* handshake work in this iteration */
    int64_t next_attest_tick;
    tm_netsrv_stats st;
    bool freeing;                /* tm_netsrv_free: no callbacks */
    uint8_t rbuf[TM_READ_CHUNK]; /* one read buffer for every connection */
};

int64_t tm_net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadlines are at most TM_MAX_WAIT_MS ahead, so 32 bits of milliseconds
 * compare correctly across a wrap (every 49.7 days). */
#define TM_MAX_WAIT_MS 0x3fffffffu
static uint32_t deadline_in(uint32_t ms)
{
    uint32_t d = (uint32_t)tm_net_now_ms() + (ms < TM_MAX_WAIT_MS ? ms : TM_MAX_WAIT_MS);
    return d ? d : 1;            /* 0 means none */
}

static bool past(uint32_t deadline, int64_t now)
{
    return deadline && (int32_t)((uint32_t)now - deadline) >= 0;
}

/* c gets a deadline ms from now and joins the timed set (tm_netsrv_tick
 * looks at these only, not at every open connection). -1: out of memory. */
static int timed_set(tm_nconn *c, uint32_t ms)
{
    tm_netsrv *s = c->lst->srv;
    if (!c->tidx) {
        if (s->n_timed == s->cap_timed) {
            uint32_t nc = s->cap_timed ? s->cap_timed * 2 : 64;
            tm_nconn **g = nc < (1u << 27) ? realloc(s->timed, nc * sizeof *g) : NULL;
            if (!g)
                return -1;
            s->timed = g;
            s->cap_timed = nc;
        }
        s->timed[s->n_timed++] = c;
        c->tidx = s->n_timed;
    }
    c->deadline = deadline_in(ms);
    return 0;
}

static void timed_clear(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    c->deadline = 0;
    if (!c->tidx)
        return;
    tm_nconn *last = s->timed[--s->n_timed];
    s->timed[c->tidx - 1] = last;
    last->tidx = c->tidx;
    c->tidx = 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void conn_io(tm_loop *loop, int fd, unsigned events, void *ud);
static void log_policy_warnings(tm_netsrv *s, struct nlistener *l);

/* ---- the handshake FIFO (see top) --------------------------------------------- */

static void hs_unlink(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    if (!c->queued)
        return;
    if (c->hs_prev)
        c->hs_prev->hs_next = c->hs_next;
    else
        s->hs_head = c->hs_next;
    if (c->hs_next)
        c->hs_next->hs_prev = c->hs_prev;
    else
        s->hs_tail = c->hs_prev;
    c->hs_next = c->hs_prev = NULL;
    c->queued = false;
}

static void set_events(tm_nconn *c, unsigned ev);

static void hs_enqueue(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    if (c->queued)
        return;
    set_events(c, 0);            /* no readiness while it waits its turn */
    c->queued = true;
    c->hs_prev = s->hs_tail;
    c->hs_next = NULL;
    if (s->hs_tail)
        s->hs_tail->hs_next = c;
    else
        s->hs_head = c;
    s->hs_tail = c;
}

/* ---- ending ----------------------------------------------------------------- */

/* The socket closes now; the struct is freed (and the upper layer told,
 * when it still owns the connection) in tm_netsrv_reap. */
static void conn_end(tm_nconn *c, const char *why)
{
    if (c->state == NC_DEAD)
        return;
    tm_netsrv *s = c->lst->srv;
    if ((c->state == NC_HANDSHAKE || c->state == NC_CONNECTING) && why && s->h.log &&
        !c->lst->out)
        s->h.log(s->h.ud, TM_NET_NOTICE, c->peer, why);
    char *copy = why ? strdup(why) : NULL;
    hs_unlink(c);
    free(c->pend);               /* nothing more is sent; why takes its place */
    c->pend_len = c->pend_pos = 0;
    c->why = copy;
    tm_loop_del(s->loop, c->st->fd);
    tm_stream_free(c->st);
    c->st = NULL;
    timed_clear(c);
    c->state = NC_DEAD;
    c->lst->n_conns--;
    c->hs_next = s->reap;
    s->reap = c;
}

static void conn_free(tm_nconn *c)
{
    outgoing *o = c->lst->out;
    if (o) {
        SSL_CTX_free(o->tls);
        free(o->sni);
        free(o->expect);
        free(o);
        free(c->lst);
    }
    free(c->state == NC_DEAD ? c->why : (char *)c->pend);
    free(c);
}

void tm_netsrv_reap(tm_netsrv *s)
{
    while (s->reap) {
        tm_nconn *c = s->reap;
        s->reap = c->hs_next;
        if (c->up && s->h.closed)
            s->h.closed(s->h.ud, c->up, c->why ? c->why : "connection closed");
        else if (c->lst->out && !c->lst->out->opened && s->h.failed && !s->freeing)
            s->h.failed(s->h.ud, c->lst->cookie, c->why ? c->why : "connection failed");
        conn_free(c);
    }
}

/* ---- output ------------------------------------------------------------------ */

static void set_events(tm_nconn *c, unsigned ev)
{
    if (tm_loop_events(c->lst->srv->loop, c->st->fd) != ev)
        tm_loop_mod(c->lst->srv->loop, c->st->fd, ev);
}

static void drain_start(tm_nconn *c);

/* Writes pending output. -1 when the connection ended. */
static int flush_pending(tm_nconn *c)
{
    while (c->pend_pos < c->pend_len) {
        unsigned want = 0;
        long n = tm_stream_write(c->st, c->pend + c->pend_pos, c->pend_len - c->pend_pos, &want);
        if (n > 0) {
            c->pend_pos += (size_t)n;
            c->lst->srv->st.bytes_sent += (uint64_t)n;
            continue;
        }
        if (n == -2) {
            set_events(c, (c->state == NC_OPEN ? TM_EV_READ : 0) | want);
            return 0;
        }
        conn_end(c, tm_stream_error(c->st)[0] ? tm_stream_error(c->st) : "write error");
        return -1;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_len = c->pend_pos = 0;
    if (c->state == NC_CLOSING) {
        drain_start(c);
        return c->state == NC_DEAD ? -1 : 0;
    }
    set_events(c, TM_EV_READ);
    return 0;
}

static int keep(tm_nconn *c, const uint8_t *p, size_t n)
{
    size_t have = c->pend_len - c->pend_pos;
    uint8_t *np = malloc(have + n);
    if (!np) {
        conn_end(c, "out of memory for output");
        return -1;
    }
    memcpy(np, c->pend + c->pend_pos, have);
    memcpy(np + have, p, n);
    free(c->pend);
    c->pend = np;
    c->pend_pos = 0;
    c->pend_len = have + n;
    return 0;
}

int tm_nconn_send(tm_nconn *c, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (c->state != NC_OPEN)
        return -1;
    if (c->pend_len > c->pend_pos)   /* keep the order: behind what waits */
        return keep(c, p, n);
    while (n) {
        unsigned want = 0;
        long w = tm_stream_write(c->st, p, n, &want);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            c->lst->srv->st.bytes_sent += (uint64_t)w;
            continue;
        }
        if (w == -2) {
            if (keep(c, p, n) < 0)
                return -1;
            set_events(c, TM_EV_READ | want);
            return 0;
        }
        conn_end(c, tm_stream_error(c->st)[0] ? tm_stream_error(c->st) : "write error");
        return -1;
    }
    return 0;
}

size_t tm_nconn_backlog(const tm_nconn *c) { return c->pend_len - c->pend_pos; }

/* ---- graceful close -------------------------------------------------------------- */

static void drain_start(tm_nconn *c)
{
    unsigned want = 0;
    int r = tm_stream_shutdown(c->st, &want);
    if (r == 0) {               /* close_notify waits for the socket */
        c->state = NC_CLOSING;
        set_events(c, want);
        return;
    }
    if (r < 0) {
        conn_end(c, NULL);
        return;
    }
    c->state = NC_DRAINING;
    c->drained = 0;
    if (timed_set(c, TM_DRAIN_MS) < 0) {
        conn_end(c, NULL);
        return;
    }
    set_events(c, TM_EV_READ);
}

void tm_nconn_close(tm_nconn *c)
{
    c->up = NULL;                /* no callback from now on */
    if (c->state == NC_DEAD || c->state == NC_CLOSING || c->state == NC_DRAINING)
        return;
    c->state = NC_CLOSING;
    if (c->st->failed) {
        conn_end(c, NULL);
        return;
    }
    if (timed_set(c, TM_DRAIN_MS) < 0) {   /* for the output, too */
        conn_end(c, NULL);
        return;
    }
    flush_pending(c);
}

static void drain(tm_nconn *c)
{
    for (;;) {
        unsigned want = 0;
        long n = tm_stream_read(c->st, c->lst->srv->rbuf, sizeof c->lst->srv->rbuf, &want);
        if (n == -2) {
            set_events(c, want);
            return;
        }
        uint32_t total = c->drained + (uint32_t)(n > 0 ? n : 0);
        if (n <= 0 || total > TM_DRAIN_MAX) {
            conn_end(c, NULL);
            return;
        }
        c->drained = total;
    }
}

/* ---- input ------------------------------------------------------------------------ */

static void conn_read(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    for (int round = 0; round < TM_READ_ROUNDS && c->state == NC_OPEN; round++) {
        unsigned want = 0;
        long n = tm_stream_read(c->st, s->rbuf, sizeof s->rbuf, &want);
        if (n == -2) {
            if (want & TM_EV_WRITE)
                set_events(c, TM_EV_READ | TM_EV_WRITE);
            return;
        }
        if (n <= 0) {
            conn_end(c, n == 0 ? "connection closed by peer"
                               : (tm_stream_error(c->st)[0] ? tm_stream_error(c->st)
                                                            : "read error"));
            return;
        }
        s->st.bytes_received += (uint64_t)n;
        s->h.input(s->h.ud, c->up, s->rbuf, (size_t)n);
        /* a transport may hold decrypted bytes no readiness would announce */
        if ((size_t)n < sizeof s->rbuf && (c->state != NC_OPEN || !tm_stream_pending(c->st)))
            return;
    }
}

static void opened(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    assert(!c->queued);          /* the union's pend_len/pend_pos read 0 from here on */
    const char *note = tm_stream_tls_attest_note(tm_stream_find(c->st, "tls"));
    if (note[0] && s->h.log)
        s->h.log(s->h.ud, TM_NET_INFO, c->peer, note);
    c->state = NC_OPEN;
    timed_clear(c);
    set_events(c, TM_EV_READ);
    if (c->lst->out)
        c->lst->out->opened = true;
    c->up = s->h.open(s->h.ud, c);
    if (!c->up)
        conn_end(c, NULL);
}

/* One handshake step, charged to this iteration's budget. */
static void handshake(tm_nconn *c)
{
    unsigned want = 0;
    int64_t t0 = now_ns();
    int r = tm_stream_handshake(c->st, &want);
    c->lst->srv->hs_used_ns += now_ns() - t0;
    c->retry = false;
    if (r < 0) {
        conn_end(c, tm_stream_error(c->st));
        return;
    }
    if (r == 0) {
        if (want & TM_TLS_WANT_RETRY) {
            c->retry = true;     /* paused by the TLS layer: try again later */
            hs_enqueue(c);
            return;
        }
        set_events(c, want ? want : TM_EV_READ);
        return;
    }
    opened(c);
    if (c->state == NC_OPEN)
        conn_read(c);            /* application data may already be buffered */
}

/* A handshake became ready: step it now, or queue it behind the others when
 * some wait or this iteration's budget is spent. */
static void handshake_ready(tm_nconn *c)
{
    tm_netsrv *s = c->lst->srv;
    if (c->queued)
        return;
    if (s->hs_head || s->hs_used_ns >= TM_HS_BUDGET_NS) {
        hs_enqueue(c);
        return;
    }
    handshake(c);
}

int tm_netsrv_run_queued(tm_netsrv *s)
{
    s->hs_used_ns = 0;
    size_t n = 0;
    for (tm_nconn *c = s->hs_head; c; c = c->hs_next)
        n++;
    bool progress = false;
    while (n-- && s->hs_head && s->hs_used_ns < TM_HS_BUDGET_NS) {
        tm_nconn *c = s->hs_head;
        hs_unlink(c);
        handshake(c);
        progress |= !c->retry;
    }
    if (!s->hs_head)
        return -1;
    /* only paused ones left: they wait for a provider, not for us */
    return progress ? 0 : 1;
}

static void connected(tm_nconn *c);

static void conn_io(tm_loop *loop, int fd, unsigned events, void *ud)
{
    tm_nconn *c = ud;
    switch (c->state) {
    case NC_CONNECTING:
        connected(c);
        break;
    case NC_HANDSHAKE:
        handshake_ready(c);
        break;
    case NC_OPEN:
        if ((events & TM_EV_WRITE) && flush_pending(c) < 0)
            break;
        if ((events & TM_EV_READ) && c->state == NC_OPEN)
            conn_read(c);
        break;
    case NC_CLOSING:
        if (c->pend_len > c->pend_pos)
            flush_pending(c);
        else
            drain_start(c);
        break;
    case NC_DRAINING:
        drain(c);
        break;
    default:
        break;
    }
}

/* ---- accepting ----------------------------------------------------------------------- */

/* The stack over c's own TCP layer; NULL (the socket closed) on failure. */
static tm_stream *make_stack(nlistener *l, tm_nconn *c, int fd, char *err, size_t errcap)
{
    tm_stream *tcp = &c->tcp;
    tm_stream_tcp_init(tcp, fd);
    tm_stream *top = tcp;
    if (l->tls && !(top = tm_stream_tls_server(l->tls, tcp, err, errcap))) {
        tm_stream_free(tcp);
        return NULL;
    }
    if (l->websockets) {
        tm_stream *ws = tm_stream_ws_server(&l->ws, top, err, errcap);
        if (!ws)
            tm_stream_free(top);
        top = ws;
    }
    return top;
}

static void accept_one(nlistener *l, int cfd)
{
    tm_netsrv *s = l->srv;
    char peer[TM_PEER_MAX], err[256] = "";
    tm_sock_peer_name(cfd, peer, sizeof peer);
    if (l->max_connections >= 0 && l->n_conns >= (uint32_t)l->max_connections) {
        if (s->h.log) {
            snprintf(err, sizeof err, "connection refused: max_connections (%d) reached",
                     l->max_connections);
            s->h.log(s->h.ud, TM_NET_NOTICE, peer, err);
        }
        close(cfd);
        return;
    }
    tm_sock_nonblock(cfd);
    tm_sock_nodelay(cfd);
    size_t peer_len = strlen(peer) + 1;
    tm_nconn *c = calloc(1, sizeof *c + peer_len);
    tm_stream *st = c ? make_stack(l, c, cfd, err, sizeof err) : NULL;
    if (!st) {
        if (!c)
            close(cfd);
        else if (s->h.log)
            s->h.log(s->h.ud, TM_NET_WARN, peer, err);
        free(c);
        return;
    }
    c->lst = l;
    c->st = st;
    memcpy(c->peer, peer, peer_len);
    c->state = NC_HANDSHAKE;
    if (tm_loop_add(s->loop, cfd, TM_EV_READ, conn_io, c) < 0) {
        tm_stream_free(st);
        free(c);
        return;
    }
    l->n_conns++;
    s->st.accepted++;
    if (timed_set(c, s->handshake_ms) < 0) {
        conn_end(c, "out of memory");
        return;
    }
    handshake_ready(c);          /* plain TCP is ready at once; bytes that came with it
                                  * (frames behind a WebSocket upgrade) are read then */
}

static void accept_cb(tm_loop *loop, int fd, unsigned events, void *ud)
{
    nlistener *l = ud;
    for (int i = 0; i < 64; i++) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0)
            return;
        accept_one(l, cfd);
    }
}

/* ---- connecting ---------------------------------------------------------------------- */

/* The TCP connect completed (or failed): the TLS client layer, its handshake. */
static void connected(tm_nconn *c)
{
    int fd = c->st->fd, soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        char why[160];
        snprintf(why, sizeof why, "connect: %s", strerror(soerr));
        conn_end(c, why);
        return;
    }
    outgoing *o = c->lst->out;
    if (o->tls) {
        char err[300] = "";
        tm_stream *tls = tm_stream_tls_client(o->tls, c->st, o->sni, o->expect, &o->hooks, err,
                                              sizeof err);
        if (!tls) {
            conn_end(c, err);
            return;
        }
        c->st = tls;
    }
    c->state = NC_HANDSHAKE;
    handshake(c);
}

int tm_netsrv_connect(tm_netsrv *s, const tm_nconnect_opts *o, char *err, size_t errcap)
{
    char addr[64];
    if (tm_sock_resolve(o->host, addr, sizeof addr, err, errcap) < 0)
        return -1;
    char peer[TM_PEER_MAX];
    snprintf(peer, sizeof peer, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr,
             (unsigned)o->port);
    size_t peer_len = strlen(peer) + 1;
    nlistener *l = calloc(1, sizeof *l);
    outgoing *og = calloc(1, sizeof *og);
    tm_nconn *c = calloc(1, sizeof *c + peer_len);
    if (!l || !og || !c || (o->sni && !(og->sni = strdup(o->sni))) ||
        (o->expect && !(og->expect = strdup(o->expect)))) {
        if (og) {
            free(og->sni);
            free(og->expect);
        }
        free(l);
        free(og);
        free(c);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    l->srv = s;
    l->fd = -1;
    l->max_connections = -1;
    l->cookie = o->cookie;
    l->out = og;
    if (o->tls && SSL_CTX_up_ref(o->tls))
        og->tls = o->tls;
    if (o->hooks)
        og->hooks = *o->hooks;
    c->lst = l;
    int fd = tm_sock_connect(addr, o->port, 1, err, errcap);
    if (fd >= 0)
        tm_stream_tcp_init(&c->tcp, fd);
    if (fd < 0 || tm_loop_add(s->loop, fd, TM_EV_WRITE, conn_io, c) < 0) {
        if (fd >= 0) {
            snprintf(err, errcap, "event loop: %s", strerror(errno));
            tm_stream_free(&c->tcp);
        }
        conn_free(c);
        return -1;
    }
    c->st = &c->tcp;
    memcpy(c->peer, peer, peer_len);
    c->state = NC_CONNECTING;
    l->n_conns = 1;
    if (timed_set(c, s->handshake_ms) < 0)
        conn_end(c, "out of memory");   /* reported as failed() from the reap */
    return 0;
}

/* ---- the server ---------------------------------------------------------------------- */

tm_netsrv *tm_netsrv_new(tm_loop *loop, const tm_netsrv_handler *h, uint32_t handshake_ms)
{
    tm_netsrv *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->h = *h;
    s->handshake_ms = handshake_ms ? handshake_ms : 10000;
    return s;
}

int tm_netsrv_listen(tm_netsrv *s, const tm_nlistener_opts *o, char *err, size_t errcap)
{
    nlistener **grown = realloc(s->lst, (size_t)(s->n_lst + 1) * sizeof *grown);
    nlistener *l = grown ? calloc(1, sizeof *l) : NULL;
    if (grown)
        s->lst = grown;
    if (!l) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    l->srv = s;
    l->max_connections = o->max_connections;
    l->cookie = o->cookie;
    if (o->ws) {
        l->websockets = true;
        l->ws = *o->ws;
    }
    if (o->tls && !(l->tls = tm_tls_server_new(o->tls, err, errcap))) {
        free(l);
        return -1;
    }
    l->fd = tm_sock_listen(o->host, o->port, 1024, err, errcap);
    if (l->fd < 0 || tm_loop_add(s->loop, l->fd, TM_EV_READ, accept_cb, l) < 0) {
        if (l->fd >= 0) {
            snprintf(err, errcap, "event loop: %s", strerror(errno));
            close(l->fd);
        }
        tm_tls_server_free(l->tls);
        free(l);
        return -1;
    }
    l->port = tm_sock_local_port(l->fd);
    s->lst[s->n_lst] = l;
    log_policy_warnings(s, l);
    return s->n_lst++;
}

uint16_t tm_netsrv_port(const tm_netsrv *s, int i) { return s->lst[i]->port; }

const char *tm_netsrv_kind(const tm_netsrv *s, int i)
{
    if (s->lst[i]->websockets)
        return s->lst[i]->tls ? "wss" : "ws";
    return s->lst[i]->tls ? "tls" : "mqtt";
}

int tm_netsrv_reload_tls(tm_netsrv *s, int i, const tm_tls_server_opts *o, char *err,
                         size_t errcap)
{
    nlistener *l = s->lst[i];
    if (!l->tls)
        return 0;
    tm_tls_server *fresh = tm_tls_server_new(o, err, errcap);
    if (!fresh)
        return -1;   /* keep serving with what we had */
    /* live connections keep their own references to the old context */
    tm_tls_server_free(l->tls);
    l->tls = fresh;
    log_policy_warnings(s, l);
    return 0;
}

/* Attestation timers of every TLS listener (key rotation), once a second. */
static void attest_tick(tm_netsrv *s, int64_t now)
{
    if (now < s->next_attest_tick)
        return;
    s->next_attest_tick = now + TM_ATTEST_TICK_MS;
    for (int i = 0; i < s->n_lst; i++) {
        char note[400] = "";
        int r = tm_tls_server_tick(s->lst[i]->tls, note, sizeof note);
        if (r && note[0] && s->h.log) {
            char where[32];
            snprintf(where, sizeof where, "listener :%u", (unsigned)s->lst[i]->port);
            s->h.log(s->h.ud, r < 0 ? TM_NET_WARN : TM_NET_INFO, where, note);
        }
    }
}

void tm_netsrv_tick(tm_netsrv *s, int64_t now)
{
    attest_tick(s, now);
    /* backwards: ending one moves the last into its place, already seen */
    for (uint32_t i = s->n_timed; i-- > 0;) {
        if (i >= s->n_timed)
            continue;
        tm_nconn *c = s->timed[i];
        if (!past(c->deadline, now))
            continue;
        if (c->state == NC_CONNECTING)
            conn_end(c, "no TCP connection in time");
        else if (c->state == NC_HANDSHAKE)
            conn_end(c, "no transport handshake in time");
        else if (c->state == NC_CLOSING || c->state == NC_DRAINING)
            conn_end(c, NULL);
    }
}

const tm_netsrv_stats *tm_netsrv_stats_get(const tm_netsrv *s) { return &s->st; }

static void log_policy_warnings(tm_netsrv *s, nlistener *l)
{
    char buf[2048], where[32];
    if (!s->h.log || tm_tls_server_warnings(l->tls, buf, sizeof buf) <= 0)
        return;
    snprintf(where, sizeof where, "listener port %u", (unsigned)l->port);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        s->h.log(s->h.ud, TM_NET_WARN, where, line);
}

void tm_netsrv_refresh_attestation(tm_netsrv *s)
{
    for (int i = 0; i < s->n_lst; i++) {
        nlistener *l = s->lst[i];
        char err[400] = "", where[32];
        int r = tm_tls_server_refresh(l->tls, err, sizeof err);
        if (r == 0 || !s->h.log)
            continue;
        snprintf(where, sizeof where, "listener port %u", (unsigned)l->port);
        if (r > 0) {
            s->h.log(s->h.ud, TM_NET_NOTICE, where,
                     "client attestation policy re-read (its file or collateral changed)");
            log_policy_warnings(s, l);
        } else {
            s->h.log(s->h.ud, TM_NET_WARN, where, err);
        }
    }
}

static void end_quietly(void *ud, void *arg)
{
    (void)arg;
    tm_nconn *c = ud;
    c->up = NULL;
    conn_end(c, NULL);
}

void tm_netsrv_free(tm_netsrv *s)
{
    if (!s)
        return;
    s->freeing = true;
    tm_loop_each(s->loop, conn_io, end_quietly, NULL);
    tm_netsrv_reap(s);
    free(s->timed);
    for (int i = 0; i < s->n_lst; i++) {
        tm_loop_del(s->loop, s->lst[i]->fd);
        close(s->lst[i]->fd);
        tm_tls_server_free(s->lst[i]->tls);
        free(s->lst[i]);
    }
    free(s->lst);
    free(s);
}

/* ---- connection accessors ------------------------------------------------------------- */

const char *tm_nconn_peer(const tm_nconn *c) { return c->peer; }
void *tm_nconn_cookie(const tm_nconn *c) { return c->lst->cookie; }
bool tm_nconn_is_tls(const tm_nconn *c) { return c->st && tm_stream_find(c->st, "tls"); }

char *tm_nconn_identity(const tm_nconn *c)
{
    return c->st ? tm_stream_tls_identity(tm_stream_find(c->st, "tls")) : NULL;
}

struct tm_atls_peer *tm_nconn_attestation(const tm_nconn *c)
{
    return c->st ? tm_stream_tls_attestation(tm_stream_find(c->st, "tls")) : NULL;
}
