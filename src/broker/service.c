/*
 * service.c — the broker as a network service: the configuration's
 * listeners on the connection layer (src/net/netsrv.h), the engine
 * (broker.h) driven by it, the clock, signals and SIGHUP reload.
 *
 * One thread, one event loop. Each iteration: wait for readiness; the
 * connection layer reads and hands every byte to the engine; connections
 * that ended by themselves are reported to the engine; then the engine's
 * output leaves, one write per connection whatever the number of packets;
 * then the timers run when due; then what was released is freed.
 *
 * This file is the only place where the engine and the network meet.
 */
#include "broker/service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/atls_peer.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "net/netsrv.h"

typedef struct service {
    tm_config *cfg;
    tm_loop *loop;
    tm_netsrv *net;
    tm_broker *b;
    int64_t next_tick;
} service;

static volatile sig_atomic_t g_stop, g_reload;   /* set by signal handlers only */

/* ---- the configuration as the connection layer wants it -------------------- */

typedef struct tls_opts {
    tm_tls_server_opts o;
    char provider_opts[1024];
} tls_opts;

static bool is_tls(const tm_listener_cfg *lc) { return lc->certfile || lc->psk_file; }

static int make_tls_opts(const tm_listener_cfg *lc, tls_opts *t, char *err, size_t errcap)
{
    memset(t, 0, sizeof *t);
    size_t o = 0;
    for (uint32_t i = 0; i < lc->n_attestation_opts; i++) {
        int w = snprintf(t->provider_opts + o, sizeof t->provider_opts - o, "%s%s", i ? "," : "",
                         lc->attestation_opts[i]);
        if (w < 0 || (size_t)w >= sizeof t->provider_opts - o) {
            snprintf(err, errcap, "attestation_opt: options too long");
            return -1;
        }
        o += (size_t)w;
    }
    t->o = (tm_tls_server_opts){
        .certfile = lc->certfile,
        .keyfile = lc->keyfile,
        .cafile = lc->cafile,
        .capath = lc->capath,
        .require_certificate = lc->require_certificate,
        .want_identity = lc->use_identity_as_username,
        .psk_file = lc->psk_file,
        .psk_hint = lc->psk_hint,
        .min_version = lc->tls_version,
        .ciphers = lc->ciphers,
        .ciphersuites = lc->ciphers_tls13,
        .attest_provider = lc->attestation_provider,
        .attest_provider_opts = t->provider_opts,
        .attest_formats = lc->attestation_formats,
        .attest_key_lifetime = lc->attestation_key_lifetime,
        .require_client_attestation = lc->require_client_attestation,
        .client_attestation_policy = lc->client_attestation_policy,
    };
    return 0;
}

/* ---- the connection layer's callbacks ---------------------------------------- */

static void *on_open(void *ud, tm_nconn *nc)
{
    service *s = ud;
    const tm_listener_cfg *lc = tm_nconn_cookie(nc);
    tm_conn_info info = {
        .listener = lc,
        .peer = tm_nconn_peer(nc),
        .tls = tm_nconn_is_tls(nc),
        .identity = lc->use_identity_as_username ? tm_nconn_identity(nc) : NULL,
        .attestation = tm_nconn_attestation(nc),
        .io = nc,
    };
    return tm_broker_open(s->b, &info, tm_net_now_ms());
}

static void on_input(void *ud, void *up, const uint8_t *p, size_t n)
{
    service *s = ud;
    tm_broker_input(s->b, up, p, n, tm_net_now_ms());
}

static void on_closed(void *ud, void *up, const char *why)
{
    service *s = ud;
    tm_broker_closed(s->b, up, why, tm_net_now_ms());
}

static void on_log(void *ud, int level, const char *peer, const char *msg)
{
    int l = level == TM_NET_WARN ? TM_LOG_WARN : level == TM_NET_NOTICE ? TM_LOG_NOTICE
                                                                        : TM_LOG_INFO;
    if (!strncmp(peer, "listener ", 9))
        tm_log(l, "%s: %s", peer, msg);   /* the listener's own events (key rotation) */
    else
        tm_log(l, "connection %s: %s", peer, msg);
}

/* The engine's output to the transports: one send per connection. */
static void flush(service *s)
{
    tm_conn *c;
    while ((c = tm_broker_next_output(s->b))) {
        tm_nconn *nc = tm_conn_io(c);
        size_t n;
        const uint8_t *p = tm_conn_output(c, &n);
        if (n)
            tm_nconn_send(nc, p, n);
        tm_conn_output_done(c, tm_nconn_backlog(nc));
        if (tm_conn_closing(c)) {
            tm_nconn_close(nc);
            tm_broker_release(s->b, c);
        }
    }
}

/* ---- signals and reload ----------------------------------------------------------- */

#ifndef __wasi__
static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_stop = 1;
}
#endif

static void reload(service *s)
{
    char err[512] = "";
    if (tm_broker_reload_auth(s->b, err, sizeof err) < 0) {
        tm_log(TM_LOG_ERR, "reload failed, keeping the old passwords and ACLs: %s", err);
        return;
    }
    for (uint32_t i = 0; i < s->cfg->n_listeners; i++) {
        const tm_listener_cfg *lc = &s->cfg->listeners[i];
        tls_opts t;
        if (!is_tls(lc))
            continue;
        if (make_tls_opts(lc, &t, err, sizeof err) < 0 ||
            tm_netsrv_reload_tls(s->net, (int)i, &t.o, err, sizeof err) < 0)
            tm_log(TM_LOG_ERR, "listener %u: reload failed: %s", lc->port, err);
    }
    tm_log(TM_LOG_NOTICE, "reloaded password file and ACLs");
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static int start(service *s, char *err, size_t errcap)
{
    s->loop = tm_loop_new();
    if (!s->loop) {
        snprintf(err, errcap, "cannot create the event loop: %s", strerror(errno));
        return -1;
    }
    s->b = tm_broker_new(s->cfg, tm_net_now_ms(), err, errcap);
    if (!s->b)
        return -1;
    tm_netsrv_handler h = {.ud = s, .open = on_open, .input = on_input, .closed = on_closed,
                           .log = on_log};
    s->net = tm_netsrv_new(s->loop, &h, s->cfg->handshake_timeout_ms);
    if (!s->net) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->cfg->n_listeners; i++) {
        tm_listener_cfg *lc = &s->cfg->listeners[i];
        tls_opts t;
        char lerr[400] = "";
        tm_nlistener_opts o = {.host = lc->host, .port = lc->port,
                               .max_connections = lc->max_connections, .cookie = lc};
        if (is_tls(lc)) {
            if (make_tls_opts(lc, &t, lerr, sizeof lerr) < 0)
                goto bad;
            o.tls = &t.o;
        }
        if (tm_netsrv_listen(s->net, &o, lerr, sizeof lerr) < 0)
            goto bad;
        tm_log(TM_LOG_NOTICE, "listening on %s port %u (%s)", lc->host ? lc->host : "*",
               (unsigned)tm_netsrv_port(s->net, (int)i), tm_netsrv_kind(s->net, (int)i));
        continue;
    bad:
        if (o.tls || is_tls(lc))
            snprintf(err, errcap, "%s:%d: listener %u: %s", lc->file ? lc->file : "-", lc->line,
                     lc->port, lerr);
        else
            snprintf(err, errcap, "%s", lerr);
        return -1;
    }
#ifndef __wasi__
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* belt and braces: every send is MSG_NOSIGNAL already */
#endif
    return 0;
}

static int run(service *s)
{
    tm_log(TM_LOG_NOTICE, "tmqtt broker running (event loop: %s)", tm_loop_backend());
    s->next_tick = tm_net_now_ms();
    while (!g_stop) {
        /* queued handshakes first (oldest first), within their budget */
        int queued = tm_netsrv_run_queued(s->net);
        int64_t now = tm_net_now_ms();
        int timeout = (int)(s->next_tick - now);
        if (timeout < 0)
            timeout = 0;
        if (queued >= 0 && queued < timeout)
            timeout = queued;
        if (tm_loop_run_once(s->loop, timeout) < 0) {
            tm_log(TM_LOG_ERR, "event loop: %s", strerror(errno));
            return -1;
        }
        tm_netsrv_reap(s->net);
        flush(s);
        now = tm_net_now_ms();
        if (now >= s->next_tick) {
            s->next_tick = tm_broker_tick(s->b, now);
            tm_netsrv_tick(s->net, now);
            tm_netsrv_reap(s->net);
            flush(s);
        }
        tm_broker_bury(s->b);
        if (g_reload) {
            g_reload = 0;
            reload(s);
            flush(s);
        }
    }
    tm_log(TM_LOG_NOTICE, "shutting down");
    return 0;
}

int tm_service_run(tm_config *cfg, char *err, size_t errcap)
{
    service s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    int rc = start(&s, err, errcap);
    if (rc == 0 && run(&s) < 0)
        rc = 1;
    else if (rc < 0)
        rc = 2;
    /* the engine first: it may still hold output for the transports */
    tm_broker_free(s.b);
    tm_netsrv_free(s.net);
    tm_loop_free(s.loop);
    return rc;
}
