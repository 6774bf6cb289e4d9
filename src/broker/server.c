/*
 * server.c — listeners, connections and the main loop.
 *
 * One thread, one event loop. Each loop iteration: wait for readiness,
 * read and dispatch every complete packet of every readable connection
 * (output is only appended to buffers), then flush every connection that
 * got output — one write() per connection per iteration, whatever the number
 * of packets — then run the timers (keep alive, session expiry, delayed
 * wills, $SYS) when due.
 *
 * Connections are never freed in the middle of an iteration: tm_conn_close
 * unregisters and closes the socket at once but frees the struct after the
 * flush, so pointers held by callers and the dirty list stay valid.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/server.h"
#include "broker/transport.h"
#include "net/sock.h"
#ifdef __wasi__
#include "platform/wasi_socket.h" /* MSG_NOSIGNAL (0: the runtime never raises SIGPIPE) */
#endif

#define TM_READ_CHUNK 65536
#define TM_TICK_MS 250

struct tm_listener {
    tm_listener *next;
    tm_broker *b;
    tm_listener_cfg *cfg;
    int fd;
    uint32_t n_conns;
    const tm_transport *tr;   /* NULL: plain TCP */
    void *tstate;
};

static tm_conn *g_graveyard;

int64_t tm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const tm_listener_cfg *tm_listener_config(const tm_listener *l) { return l->cfg; }

/* ---- transport (plain TCP unless the listener has one) ---------------- */

static long conn_read(tm_conn *c, void *buf, size_t n, unsigned *want)
{
    if (c->lst->tr)
        return c->lst->tr->read(c, buf, n, want);
    ssize_t r = read(c->fd, buf, n);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *want = TM_EV_READ;
            return -2;
        }
        return -1;
    }
    return (long)r;
}

static long conn_write(tm_conn *c, const void *buf, size_t n, unsigned *want)
{
    if (c->lst->tr)
        return c->lst->tr->write(c, buf, n, want);
    ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            *want = TM_EV_WRITE;
            return -2;
        }
        return -1;
    }
    return (long)r;
}

char *tm_server_tls_identity(tm_conn *c)
{
    if (c->lst->tr && c->lst->tr->identity)
        return c->lst->tr->identity(c);
    return NULL;
}

bool tm_server_attest_ok(tm_conn *c)
{
    if (!c->lst->cfg->require_client_attestation)
        return true;
    return c->lst->tr && c->lst->tr->attested && c->lst->tr->attested(c) == 1;
}


/* ---- output ----------------------------------------------------------- */

size_t tm_conn_backlog(const tm_conn *c) { return c->out.len - c->out_pos; }

void tm_conn_mark_dirty(tm_conn *c)
{
    c->out_recent = true;
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = c->b->dirty;
        c->b->dirty = c;
    }
}

void tm_conn_send(tm_conn *c, const void *p, size_t n)
{
    tm_buf_put(&c->out, p, n);
    tm_conn_mark_dirty(c);
}

static void conn_io_cb(tm_loop *loop, int fd, unsigned events, void *ud);

/* Write as much as the socket takes. Returns -1 when the connection died. */
static int conn_flush(tm_conn *c)
{
    tm_broker *b = c->b;
    if (c->fd < 0)
        return -1;
    if (c->out.oom) {
        tm_conn_close(c, "out of memory for output");
        return -1;
    }
    while (c->out_pos < c->out.len) {
        unsigned want = 0;
        long n = conn_write(c, c->out.data + c->out_pos, c->out.len - c->out_pos, &want);
        if (n > 0) {
            c->out_pos += (size_t)n;
            b->st.bytes_sent += (uint64_t)n;
            continue;
        }
        if (n == -2) {
            unsigned ev = TM_EV_READ | want;
            if (c->state == TM_CS_CLOSING)
                ev = want;
            tm_loop_mod(b->loop, c->fd, ev);
            /* keep the buffer compact so it does not grow without bound */
            if (c->out_pos > 65536 && c->out_pos * 2 > c->out.len) {
                tm_buf_consume(&c->out, c->out_pos);
                c->out_pos = 0;
            }
            return 0;
        }
        tm_conn_close(c, n == 0 ? "connection closed while writing" : "write error");
        return -1;
    }
    c->out.len = 0;
    c->out_pos = 0;
    if (c->out.cap > 1u << 20) {   /* give back memory after a burst */
        tm_buf_free(&c->out);
        tm_buf_init(&c->out);
    }
    if (c->state == TM_CS_CLOSING) {
        tm_conn_close(c, NULL);
        return -1;
    }
    if (tm_loop_events(b->loop, c->fd) != TM_EV_READ)
        tm_loop_mod(b->loop, c->fd, TM_EV_READ);
    return 0;
}

static void flush_dirty(tm_broker *b)
{
    while (b->dirty) {
        tm_conn *c = b->dirty;
        b->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (c->fd >= 0)
            conn_flush(c);
    }
}

/* ---- closing ------------------------------------------------------------ */

void tm_conn_close(tm_conn *c, const char *why)
{
    tm_broker *b = c->b;
    if (c->fd < 0)
        return;
    bool was_connected = c->state == TM_CS_CONNECTED ||
                         (c->state == TM_CS_CLOSING && c->sess);
    if (why && c->client_id && b->cfg->connection_messages)
        tm_log(TM_LOG_NOTICE, "client '%s' (%s) closed: %s", c->client_id, c->peer, why);
    else if (why && tm_log_enabled(TM_LOG_INFO))
        tm_log(TM_LOG_INFO, "connection %s closed: %s", c->peer, why);
    tm_loop_del(b->loop, c->fd);
    if (c->lst->tr && c->lst->tr->conn_free)
        c->lst->tr->conn_free(c);
    close(c->fd);
    c->fd = -1;
    c->lst->n_conns--;
    if (was_connected && b->st.clients_connected)
        b->st.clients_connected--;
    if (c->sess) {
        tm_will_trigger(b, c);
        tm_session *s = c->sess;
        c->sess = NULL;
        if (s->conn == c)
            tm_sess_detach(b, s);
    }
    tm_msg_unref(c->will);
    c->will = NULL;
    c->state = TM_CS_CLOSING;
    /* unlink from the list of live connections; freed after this iteration */
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->n_conns--;
    c->next = g_graveyard;
    g_graveyard = c;
}

void tm_server_end_conn(tm_conn *c, const char *why)
{
    /* best effort: push out what is queued (e.g. DISCONNECT 0x8E) first */
    if (c->fd >= 0 && tm_conn_backlog(c)) {
        unsigned want;
        conn_write(c, c->out.data + c->out_pos, tm_conn_backlog(c), &want);
    }
    tm_conn_close(c, why);
}

static void conn_free(tm_conn *c)
{
    tm_buf_free(&c->in);
    tm_buf_free(&c->out);
    free(c->client_id);
    free(c->username);
    if (c->alias_in) {
        for (uint32_t i = 0; i <= c->b->cfg->max_topic_alias; i++)
            free((void *)c->alias_in[i].p);
        free(c->alias_in);
    }
    uint32_t i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&c->alias_out, &i)))
        free((void *)e->key);
    tm_map_free(&c->alias_out);
    free(c);
}

static void bury(void)
{
    while (g_graveyard) {
        tm_conn *c = g_graveyard;
        g_graveyard = c->next;
        conn_free(c);
    }
}

void tm_conn_fail(tm_conn *c, uint8_t rc, const char *why)
{
    if (c->fd < 0)
        return;
    tm_log(TM_LOG_NOTICE, "client '%s' (%s): %s: %s — closing the connection",
           c->client_id ? c->client_id : "?", c->peer, why, tm_rc_name(rc));
    if (c->version == TM_V5 && c->state == TM_CS_CONNECTED && rc >= 0x80) {
        tm_disconnect d;
        memset(&d, 0, sizeof d);
        d.reason = rc;
        tm_encode_disconnect(&c->out, TM_V5, &d);
        c->state = TM_CS_CLOSING;
        tm_conn_mark_dirty(c);
        return;
    }
    tm_conn_close(c, NULL);
}

/* ---- input -------------------------------------------------------------- */

static tm_rc dispatch(tm_conn *c, const tm_frame *f, const uint8_t *body)
{
    if (c->state == TM_CS_NEW) {
        if (f->type != TM_CONNECT)
            return TM_RC_PROTOCOL_ERROR;
        return tm_handle_connect(c, body, f->remaining);
    }
    switch (f->type) {
    case TM_PUBLISH:
        return tm_handle_publish(c, f->flags, body, f->remaining);
    case TM_PUBACK:
    case TM_PUBREC:
    case TM_PUBREL:
    case TM_PUBCOMP:
        return tm_handle_ack(c, f->type, f->flags, body, f->remaining);
    case TM_SUBSCRIBE:
        return tm_handle_subscribe(c, f->flags, body, f->remaining);
    case TM_UNSUBSCRIBE:
        return tm_handle_unsubscribe(c, f->flags, body, f->remaining);
    case TM_PINGREQ:
        return tm_handle_pingreq(c, f->flags, f->remaining);
    case TM_DISCONNECT:
        return tm_handle_disconnect(c, body, f->remaining);
    case TM_AUTH:
        if (c->version != TM_V5)
            return TM_RC_MALFORMED;
        return tm_handle_auth(c, body, f->remaining);
    case TM_CONNECT:
        return TM_RC_PROTOCOL_ERROR;   /* second CONNECT */
    default:
        return TM_RC_PROTOCOL_ERROR;   /* server-to-client packet from a client */
    }
}

/* Dispatch every complete packet in data[0..len). Returns the bytes consumed;
 * stops early when the connection is failing or closing. */
static size_t process_frames(tm_conn *c, const uint8_t *data, size_t len)
{
    tm_broker *b = c->b;
    uint32_t max = b->cfg->max_packet_size ? b->cfg->max_packet_size : 268435460u;
    size_t off = 0;
    while (c->fd >= 0 && (c->state == TM_CS_NEW || c->state == TM_CS_CONNECTED) && off < len) {
        tm_frame f;
        tm_rc rc = tm_frame_parse(data + off, len - off, max, &f);
        if (rc == TM_RC_NEED_MORE)
            break;
        if (rc != TM_RC_SUCCESS) {
            tm_conn_fail(c, (uint8_t)rc, "bad packet header");
            return off;
        }
        size_t total = (size_t)f.header_len + f.remaining;
        if (len - off < total)
            break;
        b->st.msgs_received++;
        c->last_rx_ms = tm_now_ms();
        rc = dispatch(c, &f, data + off + f.header_len);
        off += total;
        if (c->state == TM_CS_CLOSING)
            tm_conn_mark_dirty(c);   /* the flush closes it once output is out */
        if (rc != TM_RC_SUCCESS) {
            char why[64];
            snprintf(why, sizeof why, "bad %s", tm_ptype_name(f.type));
            tm_conn_fail(c, (uint8_t)rc, why);
            return off;
        }
    }
    return off;
}

/* One read buffer for the whole broker (single-threaded): complete packets are
 * dispatched straight from it, and only the tail of a packet cut by a read
 * boundary is kept in the connection's own buffer. An idle connection thus
 * holds no input memory at all. */
static uint8_t g_rbuf[TM_READ_CHUNK];

static void conn_readable(tm_conn *c)
{
    tm_broker *b = c->b;
    /* Read until a short read: a TLS transport may hold decrypted bytes that
     * no socket readiness would announce again. The cap keeps one busy
     * publisher from starving the others for long. */
    for (int round = 0; round < 64 && c->fd >= 0; round++) {
        unsigned want = 0;
        long n = conn_read(c, g_rbuf, sizeof g_rbuf, &want);
        if (n == -2) {
            if (want & TM_EV_WRITE)
                tm_loop_mod(b->loop, c->fd, TM_EV_READ | TM_EV_WRITE);
            break;
        }
        if (n <= 0) {
            tm_conn_close(c, n == 0 ? "connection closed by peer" : "read error");
            return;
        }
        b->st.bytes_received += (uint64_t)n;
        if (c->in.len) {
            /* completing a packet that an earlier read cut */
            tm_buf_put(&c->in, g_rbuf, (size_t)n);
            if (c->in.oom) {
                tm_conn_close(c, "out of memory for input");
                return;
            }
            size_t used = process_frames(c, c->in.data, c->in.len);
            if (c->fd < 0)
                return;
            tm_buf_consume(&c->in, used);
        } else {
            size_t used = process_frames(c, g_rbuf, (size_t)n);
            if (c->fd < 0)
                return;
            if (used < (size_t)n && (c->state == TM_CS_NEW || c->state == TM_CS_CONNECTED)) {
                tm_buf_put(&c->in, g_rbuf + used, (size_t)n - used);
                if (c->in.oom) {
                    tm_conn_close(c, "out of memory for input");
                    return;
                }
            }
        }
        if (c->in.len == 0 && c->in.cap) {
            tm_buf_free(&c->in);
            tm_buf_init(&c->in);
        }
        if ((size_t)n < sizeof g_rbuf)
            break;
    }
}

static void conn_io_cb(tm_loop *loop, int fd, unsigned events, void *ud)
{
    tm_conn *c = ud;
    (void)loop;
    (void)fd;
    if (c->fd < 0)
        return;
    if (c->lst->tr && c->state == TM_CS_AUTH) {
        /* TLS handshake in progress (TM_CS_AUTH doubles as "handshaking") */
        unsigned want = 0;
        char err[256] = "";
        int r = c->lst->tr->handshake(c, &want, err, sizeof err);
        if (r < 0) {
            tm_log(TM_LOG_NOTICE, "connection %s: TLS handshake failed: %s", c->peer, err);
            tm_conn_close(c, NULL);
            return;
        }
        if (r == 0) {
            tm_loop_mod(c->b->loop, c->fd, want ? want : TM_EV_READ);
            return;
        }
        c->state = TM_CS_NEW;
        tm_loop_mod(c->b->loop, c->fd, TM_EV_READ);
        events |= TM_EV_READ;   /* application data may already be buffered */
    }
    if (events & TM_EV_WRITE)
        conn_flush(c);
    if (c->fd >= 0 && (events & TM_EV_READ) && c->state != TM_CS_CLOSING)
        conn_readable(c);
}

/* ---- accepting ------------------------------------------------------- */

static void accept_cb(tm_loop *loop, int fd, unsigned events, void *ud)
{
    tm_listener *l = ud;
    tm_broker *b = l->b;
    (void)events;
    for (int i = 0; i < 64; i++) {
        int cfd = accept(fd, NULL, NULL);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                tm_log(TM_LOG_WARN, "accept on port %u: %s", l->cfg->port, strerror(errno));
            return;
        }
        char peer[sizeof ((tm_conn *)0)->peer];
        tm_sock_peer_name(cfd, peer, sizeof peer);
        if (l->cfg->max_connections >= 0 && l->n_conns >= (uint32_t)l->cfg->max_connections) {
            tm_log(TM_LOG_NOTICE, "connection from %s refused: max_connections (%d) reached",
                   peer, l->cfg->max_connections);
            close(cfd);
            continue;
        }
        tm_sock_nonblock(cfd);
        tm_sock_nodelay(cfd);
        tm_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(cfd);
            continue;
        }
        c->fd = cfd;
        c->b = b;
        c->lst = l;
        tm_buf_init(&c->in);
        tm_buf_init(&c->out);
        tm_map_init(&c->alias_out);
        memcpy(c->peer, peer, sizeof c->peer);
        c->last_rx_ms = c->connected_ms = tm_now_ms();
        c->state = TM_CS_NEW;
        if (l->tr) {
            char err[256] = "";
            if (l->tr->conn_new(l->tstate, c, cfd, err, sizeof err) < 0) {
                tm_log(TM_LOG_WARN, "connection from %s: %s", peer, err);
                close(cfd);
                free(c);
                continue;
            }
            c->state = TM_CS_AUTH;   /* handshaking */
        }
        if (tm_loop_add(loop, cfd, TM_EV_READ, conn_io_cb, c) < 0) {
            if (l->tr && l->tr->conn_free)
                l->tr->conn_free(c);
            close(cfd);
            free(c);
            continue;
        }
        l->n_conns++;
        c->next = b->conns;
        if (b->conns)
            b->conns->prev = c;
        b->conns = c;
        b->n_conns++;
        b->st.clients_total_ever++;
        tm_log(TM_LOG_DEBUG, "new connection from %s on port %u", peer, l->cfg->port);
    }
}

/* ---- timers ------------------------------------------------------------- */

static void tick(tm_broker *b, int64_t now)
{
    for (tm_conn *c = b->conns, *next; c; c = next) {
        next = c->next;
        /* an output buffer unused for a whole tick goes back to the allocator:
         * idle connections hold no buffers */
        if (!c->out_recent && c->out.len == 0 && c->out.cap) {
            tm_buf_free(&c->out);
            tm_buf_init(&c->out);
            c->out_pos = 0;
        }
        c->out_recent = false;
        if (c->state == TM_CS_CONNECTED && c->keep_alive &&
            now - c->last_rx_ms > (int64_t)c->keep_alive * 1500) {
            tm_conn_fail(c, TM_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
            if (c->fd >= 0 && c->state == TM_CS_CLOSING)
                continue;   /* DISCONNECT queued; flushed below */
        } else if ((c->state == TM_CS_NEW || c->state == TM_CS_AUTH) &&
                   now - c->connected_ms > (int64_t)b->cfg->handshake_timeout_ms) {
            tm_conn_close(c, "no CONNECT in time");
        }
    }
    tm_will_tick(b, now);
    tm_sess_expire(b, now);
    if (b->cfg->sys_interval && now >= b->next_sys_ms) {
        tm_sys_publish(b);
        b->next_sys_ms = now + (int64_t)b->cfg->sys_interval * 1000;
    }
}

/* ---- signals ------------------------------------------------------------ */

static tm_broker *g_broker;

#ifndef __wasi__
static void on_signal(int sig)
{
    if (!g_broker)
        return;
    if (sig == SIGHUP)
        g_broker->reload = 1;
    else
        g_broker->stop = 1;
}
#endif

static void reload(tm_broker *b)
{
    char err[512] = "";
    struct tm_auth *a = NULL;
    if (b->cfg->password_file || b->cfg->acl_file) {
        a = tm_auth_load(b->cfg, err, sizeof err);
        if (!a) {
            tm_log(TM_LOG_ERR, "reload failed, keeping the old passwords and ACLs: %s", err);
            return;
        }
    }
    tm_auth_free(b->auth);
    b->auth = a;
    if (b->auth) {
        uint32_t i = 0, dropped = 0;
        tm_map_ent *e;
        while ((e = tm_map_next(&b->sessions, &i)))
            dropped += tm_outq_acl_sweep(b, e->val);
        if (dropped)
            tm_log(TM_LOG_NOTICE, "reload: %u queued message(s) dropped: the new ACL denies "
                   "their subscribers read access", dropped);
    }
    for (tm_listener *l = b->listeners; l; l = l->next) {
        if (l->tr && l->tr->listener_reload &&
            l->tr->listener_reload(l->tstate, l->cfg, err, sizeof err) < 0)
            tm_log(TM_LOG_ERR, "listener %u: reload failed: %s", l->cfg->port, err);
    }
    tm_log(TM_LOG_NOTICE, "reloaded password file and ACLs");
}

/* ---- lifecycle ---------------------------------------------------------- */

int tm_broker_init(tm_broker *b, tm_config *cfg, char *err, size_t errcap)
{
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    tm_map_init(&b->sessions);
    tm_map_init(&b->nodes);
    tm_buf_init(&b->scratch);
    b->start_ms = tm_now_ms();
    b->start_wall = time(NULL);
    b->loop = tm_loop_new();
    if (!b->loop) {
        snprintf(err, errcap, "cannot create the event loop: %s", strerror(errno));
        return -1;
    }
    if (cfg->password_file || cfg->acl_file) {
        b->auth = tm_auth_load(cfg, err, errcap);
        if (!b->auth)
            return -1;
    }
    for (uint32_t i = 0; i < cfg->n_listeners; i++) {
        tm_listener_cfg *lc = &cfg->listeners[i];
        tm_listener *l = calloc(1, sizeof *l);
        if (!l) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        l->b = b;
        l->cfg = lc;
        l->fd = -1;
        l->next = b->listeners;
        b->listeners = l;
        if (lc->certfile || lc->psk_file) {
            l->tr = &tm_tls_transport;
            char terr[400] = "";
            if (l->tr->listener_new(lc, &l->tstate, terr, sizeof terr) < 0) {
                snprintf(err, errcap, "%s:%d: listener %u: %s", lc->file ? lc->file : "-",
                         lc->line, lc->port, terr);
                return -1;
            }
        }
        char serr[256];
        l->fd = tm_sock_listen(lc->host, lc->port, 1024, serr, sizeof serr);
        if (l->fd < 0) {
            snprintf(err, errcap, "%s", serr);
            return -1;
        }
        if (tm_loop_add(b->loop, l->fd, TM_EV_READ, accept_cb, l) < 0) {
            snprintf(err, errcap, "event loop: %s", strerror(errno));
            return -1;
        }
        tm_log(TM_LOG_NOTICE, "listening on %s port %u (%s)", lc->host ? lc->host : "*",
               (unsigned)tm_sock_local_port(l->fd), l->tr ? l->tr->name : "mqtt");
    }
    b->next_tick_ms = b->start_ms + TM_TICK_MS;
    b->next_sys_ms = b->start_ms;
    g_broker = b;
#ifndef __wasi__
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
#endif
    return 0;
}

int tm_broker_run(tm_broker *b)
{
    tm_log(TM_LOG_NOTICE, "tmqtt broker running (event loop: %s)", tm_loop_backend());
    while (!b->stop) {
        int64_t now = tm_now_ms();
        int timeout = (int)(b->next_tick_ms - now);
        if (timeout < 0)
            timeout = 0;
        if (b->dirty)
            timeout = 0;
        if (tm_loop_run_once(b->loop, timeout) < 0) {
            tm_log(TM_LOG_ERR, "event loop: %s", strerror(errno));
            return -1;
        }
        flush_dirty(b);
        now = tm_now_ms();
        if (now >= b->next_tick_ms) {
            tick(b, now);
            flush_dirty(b);
            b->next_tick_ms = now + TM_TICK_MS;
        }
        bury();
        if (b->reload) {
            b->reload = 0;
            reload(b);
        }
    }
    tm_log(TM_LOG_NOTICE, "shutting down");
    return 0;
}

void tm_broker_free(tm_broker *b)
{
    /* Connections: close without wills (the broker, not the client, ends them). */
    while (b->conns) {
        tm_conn *c = b->conns;
        c->will_suppressed = true;
        flush_dirty(b);
        tm_conn_close(c, NULL);
    }
    bury();
    /* Sessions */
    for (;;) {
        uint32_t i = 0;
        tm_map_ent *e = tm_map_next(&b->sessions, &i);
        if (!e)
            break;
        tm_session *s = e->val;
        tm_msg_unref(s->will);
        s->will = NULL;
        tm_sess_free(b, s);
    }
    tm_map_free(&b->sessions);
    tm_trie_free(b);
    for (tm_listener *l = b->listeners, *n; l; l = n) {
        n = l->next;
        if (l->fd >= 0)
            close(l->fd);
        if (l->tr && l->tr->listener_free)
            l->tr->listener_free(l->tstate);
        free(l);
    }
    tm_auth_free(b->auth);
    free(b->matches);
    tm_buf_free(&b->scratch);
    tm_loop_free(b->loop);
    g_broker = NULL;
}
