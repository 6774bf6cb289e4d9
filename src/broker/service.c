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
#include "broker/seal.h"
#include "broker/store.h"
#include "mqtt/mqtt.h"
#include "net/netsrv.h"

typedef struct service {
    tm_config *cfg;
    tm_loop *loop;
    tm_netsrv *net;
    tm_broker *b;
    int64_t next_tick;
    int64_t next_refresh;        /* client attestation policies and collateral */
    tm_seal *seal;               /* persistence: the key source */
    tm_store *store;
    bool unsynced;               /* persistence_sync_interval: frames not yet synced */
    int64_t next_sync;
    bool failed;                 /* the store failed: stop, acknowledge nothing more */
    tm_conn **held;              /* flush: connections whose output waits for the commit */
    uint32_t cap_held;
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
    tm_log(l, "connection %s: %s", peer, msg);
}

/* ---- persistence -------------------------------------------------------------------- */

/* This iteration's journal onto stable storage — before any of its output
 * (acknowledgements included) leaves. On failure nothing more is sent: the
 * broker stops, and recovery finds everything up to the last good frame. */
static bool commit(service *s)
{
    if (!s->store || s->failed)
        return !s->failed;
    size_t n;
    const uint8_t *p = tm_broker_journal(s->b, &n);
    char err[300] = "";
    if (tm_broker_journal_failed(s->b))
        snprintf(err, sizeof err, "out of memory for the journal");
    else if (n && tm_store_commit(s->store, p, n, s->cfg->persistence_sync_ms == 0, err,
                                  sizeof err) == 0)
        s->unsynced = s->cfg->persistence_sync_ms != 0;
    if (err[0]) {
        tm_log(TM_LOG_ERR, "persistence: cannot make the state durable (%s): stopping "
               "without sending what this iteration would have acknowledged", err);
        s->failed = true;
        g_stop = 1;
        return false;
    }
    tm_broker_journal_done(s->b);
    return true;
}

static void compact(service *s)
{
    tm_broker_snapshot(s->b, tm_net_now_ms());
    size_t n;
    const uint8_t *p = tm_broker_journal(s->b, &n);
    char err[300] = "";
    uint64_t before = tm_store_size(s->store);
    if (tm_broker_journal_failed(s->b))
        snprintf(err, sizeof err, "out of memory for the snapshot");
    else if (tm_store_rewrite(s->store, p, n, err, sizeof err) == 0)
        tm_log(TM_LOG_INFO, "persistence: store compacted from %llu to %llu bytes",
               (unsigned long long)before, (unsigned long long)tm_store_size(s->store));
    if (err[0]) {
        /* the old file is intact and still being appended to: keep going */
        tm_log(TM_LOG_WARN, "persistence: compaction failed (%s); the store keeps growing",
               err);
    }
    tm_broker_journal_done(s->b);
}

static int apply_frame(void *ud, const uint8_t *batch, size_t len, char *why, size_t cap)
{
    service *s = ud;
    return tm_broker_restore(s->b, batch, len, tm_net_now_ms(), why, cap);
}

static void store_note(void *ud, int warn, const char *msg)
{
    tm_log(warn ? TM_LOG_WARN : TM_LOG_NOTICE, "persistence: %s", msg);
}

static int open_store(service *s, char *err, size_t errcap)
{
    const tm_config *cfg = s->cfg;
    const char *dir = cfg->persistence_location && *cfg->persistence_location
                          ? cfg->persistence_location : ".";
    const char *file = cfg->persistence_file ? cfg->persistence_file : "tmqtt.db";
    char path[1024], spec[1100], serr[400] = "";
    snprintf(path, sizeof path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", file);
    if (cfg->persistence_seal) {
        snprintf(spec, sizeof spec, "%s", cfg->persistence_seal);
    } else {
        snprintf(spec, sizeof spec, "keyfile %s.key", path);
        tm_log(TM_LOG_WARN, "persistence: no persistence_seal: the store is sealed with a plain "
               "key file (%s.key), not a TEE sealing key; anyone who can read that file can "
               "read the store (docs/persistence.md)", path);
    }
    s->seal = tm_seal_open(spec, serr, sizeof serr);
    if (!s->seal) {
        snprintf(err, errcap, "persistence: %s", serr);
        return -1;
    }
    int64_t t0 = tm_net_now_ms();
    tm_store_report rep;
    s->store = tm_store_open(path, s->seal, apply_frame, store_note, s, &rep, serr, sizeof serr);
    if (!s->store) {
        snprintf(err, errcap, "persistence: %s", serr);
        return -1;
    }
    tm_broker_restore_done(s->b, tm_net_now_ms());
    tm_broker_journal_enable(s->b, true);
    if (rep.damaged || rep.moved_aside)
        compact(s);   /* the recovered state, into a clean file */
    tm_log(TM_LOG_NOTICE, "persistence: store %s (sealed: %s): %s%llu frame(s), %llu bytes "
           "recovered in %lld ms", path, tm_seal_mode(s->seal), rep.created ? "new store, " : "",
           (unsigned long long)rep.frames, (unsigned long long)rep.bytes,
           (long long)(tm_net_now_ms() - t0));
    return 0;
}

/* The engine's output to the transports: one send per connection and part.
 * What may leave early (deliveries that acknowledge nothing) goes first; the
 * rest after the journal commit, so no acknowledgement ever precedes the
 * durability of what it acknowledges. */
static void flush(service *s)
{
    tm_conn *c;
    uint32_t n = 0;
    while ((c = tm_broker_next_output(s->b))) {
        size_t len;
        const uint8_t *p = tm_conn_output_early(c, &len);
        if (len)
            tm_nconn_send(tm_conn_io(c), p, len);
        tm_conn_output_early_done(c);
        if (n == s->cap_held) {
            uint32_t nc = s->cap_held ? s->cap_held * 2 : 64;
            tm_conn **grown = realloc(s->held, nc * sizeof *grown);
            if (!grown) {
                tm_log(TM_LOG_ERR, "out of memory for the output list: stopping");
                s->failed = true;
                g_stop = 1;
                return;
            }
            s->held = grown;
            s->cap_held = nc;
        }
        s->held[n++] = c;
    }
    if (!commit(s))
        return;
    for (uint32_t i = 0; i < n; i++) {
        c = s->held[i];
        tm_nconn *nc = tm_conn_io(c);
        size_t len;
        const uint8_t *p = tm_conn_output(c, &len);
        if (len)
            tm_nconn_send(nc, p, len);
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
    if (s->cfg->persistence && open_store(s, err, errcap) < 0)
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
        int64_t now = tm_net_now_ms();
        int timeout = (int)(s->next_tick - now);
        if (timeout < 0)
            timeout = 0;
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
            /* attesting listeners look for newer collateral (a cache that
             * `tmqtt-attest collateral fetch` refreshes) or an edited policy */
            if (s->unsynced && now >= s->next_sync) {
                char serr[200];
                if (tm_store_sync(s->store, serr, sizeof serr) < 0)
                    tm_log(TM_LOG_ERR, "persistence: %s", serr);
                s->unsynced = false;
                s->next_sync = now + s->cfg->persistence_sync_ms;
            }
            if (s->cfg->attestation_refresh_s && now >= s->next_refresh) {
                tm_netsrv_refresh_attestation(s->net);
                s->next_refresh = now + (int64_t)s->cfg->attestation_refresh_s * 1000;
            }
            tm_netsrv_reap(s->net);
            flush(s);
        }
        tm_broker_bury(s->b);
        if (s->store && !s->failed && tm_store_wants_compaction(s->store))
            compact(s);
        if (g_reload) {
            g_reload = 0;
            reload(s);
            flush(s);
        }
    }
    tm_log(TM_LOG_NOTICE, "shutting down");
    return s->failed ? -1 : 0;
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
    if (s.store && s.unsynced) {
        char serr[200];
        tm_store_sync(s.store, serr, sizeof serr);
    }
    tm_store_close(s.store);
    tm_seal_close(s.seal);
    free(s.held);
    return rc;
}
