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
 *
 * Start-up order, as Mosquitto's: the pid file is written, the listeners
 * are bound and their TLS keys, the password file and the ACL are read;
 * only then does the process give up root (`user`). A SIGHUP re-reads the
 * password file, the ACL and the certificates as that user, and reopens the
 * log file.
 *
 * `log_dest topic`: log lines are queued by a log sink and published on
 * $SYS/broker/log/... between loop iterations, never from inside an engine
 * call (a line logged while routing must not route re-entrantly).
 */
#include "broker/service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef __wasi__
#include <arpa/inet.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#endif
#include <unistd.h>

#include "attest/atls_peer.h"
#include "broker/bridge_link.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "broker/seal.h"
#include "broker/store.h"
#include "mqtt/mqtt.h"
#include "net/netsrv.h"

#define LOG_QUEUE_MAX 256   /* log lines waiting for $SYS/broker/log; more are dropped */

typedef struct service {
    tm_config *cfg;
    tm_loop *loop;
    tm_netsrv *net;
    tm_broker *b;
    tm_bridge_links *links;      /* bridges' outgoing connections */
    int64_t next_tick;
    int64_t next_refresh;        /* client attestation policies and collateral */
    tm_seal *seal;               /* persistence: the key source */
    tm_store *store;
    bool unsynced;               /* persistence_sync_interval: frames not yet synced */
    int64_t next_sync;
    bool failed;                 /* the store failed: stop, acknowledge nothing more */
    tm_conn **held;              /* flush: connections whose output waits for the commit */
    uint32_t cap_held;
    struct { int type; char *msg; } logq[LOG_QUEUE_MAX];
    uint32_t n_logq, logq_dropped;
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

/* The Mosquitto TLS keys tls.h has besides make_tls_opts' (CRL, DH), and
 * the global tls_record_layer. */
static void tls_extra(const tm_config *cfg, const tm_listener_cfg *lc, tls_opts *t)
{
    t->o.openssl_records = cfg->tls_record_layer && !strcmp(cfg->tls_record_layer, "openssl");
    t->o.crlfile = lc->crlfile;
    t->o.dhparamfile = lc->dhparamfile;
    t->o.identity_subject = lc->use_subject_as_username;
    if (lc->use_subject_as_username)
        t->o.want_identity = true;
}

/* ---- the connection layer's callbacks ---------------------------------------- */

static const char *io_peer(const void *io) { return tm_nconn_peer(io); }
static size_t io_backlog(const void *io) { return tm_nconn_backlog(io); }

static void *on_open(void *ud, tm_nconn *nc)
{
    service *s = ud;
    if (tm_bridge_links_owns(s->links, tm_nconn_cookie(nc)))
        return tm_bridge_links_open(s->links, s->b, nc, tm_net_now_ms());
    const tm_listener_cfg *lc = tm_nconn_cookie(nc);
    tm_conn_info info = {
        .listener = lc,
        .tls = tm_nconn_is_tls(nc),
        .identity = lc->use_identity_as_username || lc->use_subject_as_username
                        ? tm_nconn_identity(nc)
                        : NULL,
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
    tm_bridge_links_closed(s->links, up, why);
    tm_broker_closed(s->b, up, why, tm_net_now_ms());
}

static void on_failed(void *ud, void *cookie, const char *why)
{
    service *s = ud;
    tm_bridge_links_failed(s->links, cookie, why, tm_net_now_ms());
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

typedef struct piece_ctx {
    tm_store *store;
    char err[300];
} piece_ctx;

static bool snapshot_piece(void *ud, const uint8_t *p, size_t n)
{
    piece_ctx *c = ud;
    return tm_store_rewrite_add(c->store, p, n, c->err, sizeof c->err) == 0;
}

/* The store rewritten from a snapshot, in pieces; on failure the old file
 * stays the store and commits continue into it. */
static void compact(service *s)
{
    piece_ctx c = {.store = s->store};
    uint64_t before = tm_store_size(s->store);
    bool ok = tm_store_rewrite_begin(s->store, c.err, sizeof c.err) == 0;
    if (ok && !tm_broker_snapshot(s->b, tm_net_now_ms(), snapshot_piece, &c)) {
        ok = false;
        if (!c.err[0])
            snprintf(c.err, sizeof c.err, "out of memory for the snapshot");
    }
    if (ok && tm_store_rewrite_commit(s->store, c.err, sizeof c.err) < 0)
        ok = false;
    if (ok) {
        tm_log(TM_LOG_INFO, "persistence: store compacted from %llu to %llu bytes",
               (unsigned long long)before, (unsigned long long)tm_store_size(s->store));
        return;
    }
    tm_store_rewrite_abort(s->store);
    tm_broker_snapshot_failed(s->b);
    tm_log(TM_LOG_WARN, "persistence: compaction failed (%s); the store keeps growing",
           c.err);
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
        tm_conn_output_done(c);
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
        if (make_tls_opts(lc, &t, err, sizeof err) < 0)
            goto bad;
        tls_extra(s->cfg, lc, &t);
        if (tm_netsrv_reload_tls(s->net, (int)i, &t.o, err, sizeof err) < 0)
            goto bad;
        continue;
    bad:
        tm_log(TM_LOG_ERR, "listener %u: reload failed: %s", lc->port, err);
    }
    if ((s->cfg->log_dest & TM_LOGD_FILE) && tm_log_reopen(s->cfg->log_file) < 0)
        tm_log(TM_LOG_WARN, "log_dest file %s: cannot reopen (%s); still writing to the old "
               "file", s->cfg->log_file, strerror(errno));
    tm_log(TM_LOG_NOTICE, "reloaded password file and ACLs");
}

/* ---- running as a service: interface, pid file, user, log topic ------------------- */

/* bind_interface: the interface's address, as Mosquitto binds it (its first
 * IPv4 address, else its first IPv6 address that is not link-local). */
static int interface_address(const char *ifname, char *out, size_t cap, char *err,
                             size_t errcap)
{
#ifdef __wasi__
    (void)out, (void)cap;
    snprintf(err, errcap, "bind_interface %s: WASI has no network interfaces to ask", ifname);
    return -1;
#else
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0) {
        snprintf(err, errcap, "bind_interface %s: %s", ifname, strerror(errno));
        return -1;
    }
    bool found = false, any = false;
    for (int family = AF_INET; !found && family; family = family == AF_INET ? AF_INET6 : 0) {
        for (i = ifs; i && !found; i = i->ifa_next) {
            if (strcmp(i->ifa_name, ifname) != 0)
                continue;
            any = true;
            if (!i->ifa_addr || i->ifa_addr->sa_family != family)
                continue;
            const void *a = family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
            if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a))
                continue;
            found = inet_ntop(family, a, out, (socklen_t)cap) != NULL;
        }
    }
    freeifaddrs(ifs);
    if (!found)
        snprintf(err, errcap, any ? "bind_interface %s: the interface has no usable address"
                                  : "bind_interface %s: no such network interface", ifname);
    return found ? 0 : -1;
#endif
}

static int write_pid_file(const char *path, char *err, size_t errcap)
{
#ifdef __wasi__
    snprintf(err, errcap, "pid_file %s: WASI has no process ids", path);
    return -1;
#else
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        snprintf(err, errcap, "pid_file %s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
#endif
}

/* `user`: started as root, become that user (default "tmqtt") once the
 * listeners are bound and the keys, passwords and ACLs are read. Fails
 * closed: without the user, a root broker does not run unless the
 * configuration says `user root`. Without root it has no effect, as in
 * Mosquitto. */
static int drop_privileges(const tm_config *cfg, char *err, size_t errcap)
{
#ifdef __wasi__
    (void)cfg, (void)err, (void)errcap;
    return 0;   /* WASI has no users: the host runtime runs as whom it runs */
#else
    if (geteuid() != 0)
        return 0;
    const char *name = cfg->user ? cfg->user : "tmqtt";
    if (strcmp(name, "root") == 0) {
        tm_log(TM_LOG_WARN, "running as root because the configuration says `user root`: "
               "a flaw in the broker would then be a flaw with root's rights; prefer a user "
               "of its own (the Debian package creates 'tmqtt')");
        return 0;
    }
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        if (cfg->user)
            snprintf(err, errcap, "user %s: no such user%s%s", name, errno ? ": " : "",
                     errno ? strerror(errno) : "");
        else
            snprintf(err, errcap, "started as root, and the user 'tmqtt' to run as does not "
                     "exist: create it (adduser --system --group tmqtt; the Debian package "
                     "does), name another with `user NAME`, or write `user root` to stay root "
                     "(not recommended)");
        return -1;
    }
    if (pw->pw_uid == 0) {
        tm_log(TM_LOG_WARN, "user %s has uid 0: running as root", name);
        return 0;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        snprintf(err, errcap, "user %s: cannot switch to uid %u gid %u: %s", name,
                 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        snprintf(err, errcap, "user %s: root could be regained after the switch", name);
        return -1;
    }
    tm_log(TM_LOG_NOTICE, "running as user %s (uid %u, gid %u)", name, (unsigned)pw->pw_uid,
           (unsigned)pw->pw_gid);
    return 0;
#endif
}

/* log_dest topic: queued here, published by drain_log between iterations. */
static void log_sink(void *ud, int type, const char *msg)
{
    service *s = ud;
    char *copy;
    if (s->n_logq == LOG_QUEUE_MAX || !(copy = strdup(msg))) {
        s->logq_dropped++;
        return;
    }
    s->logq[s->n_logq].type = type;
    s->logq[s->n_logq++].msg = copy;
}

static void drain_log(service *s)
{
    static const char *const topics[TM_LOG_NTYPES] = {
        [TM_LOG_ERR] = "E", [TM_LOG_WARN] = "W", [TM_LOG_NOTICE] = "N", [TM_LOG_INFO] = "I",
        [TM_LOG_SUBSCRIBE] = "M/subscribe", [TM_LOG_UNSUBSCRIBE] = "M/unsubscribe",
        [TM_LOG_WEBSOCKETS] = "WS",
    };
    /* lines logged while publishing go to the other destinations only */
    tm_log_set_sink(NULL, NULL);
    int64_t now = tm_net_now_ms();
    for (uint32_t i = 0; i < s->n_logq; i++) {
        char topic[64];
        const char *t = topics[s->logq[i].type];
        snprintf(topic, sizeof topic, "$SYS/broker/log/%s", t ? t : "I");
        tm_broker_publish(s->b, topic, s->logq[i].msg, strlen(s->logq[i].msg), 2, now);
        free(s->logq[i].msg);
    }
    s->n_logq = 0;
    if (s->logq_dropped) {
        tm_log(TM_LOG_WARN, "log_dest topic: %u log line(s) not published (more than %u in one "
               "loop iteration)", s->logq_dropped, LOG_QUEUE_MAX);
        s->logq_dropped = 0;
    }
    tm_log_set_sink(log_sink, s);
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
    tm_broker_set_driver(s->b, &(tm_conn_driver){.peer = io_peer, .backlog = io_backlog});
    if (s->cfg->persistence && open_store(s, err, errcap) < 0)
        return -1;
    tm_netsrv_handler h = {.ud = s, .open = on_open, .input = on_input, .closed = on_closed,
                           .log = on_log, .failed = on_failed};
    s->net = tm_netsrv_new(s->loop, &h, s->cfg->handshake_timeout_ms);
    if (!s->net) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    if (s->cfg->tls_record_layer && !strcmp(s->cfg->tls_record_layer, "openssl"))
        tm_log(TM_LOG_NOTICE, "tls_record_layer openssl: TLS 1.3 connections stay on OpenSSL's "
               "record layer after the handshake (more memory per connection; "
               "docs/tls-record-layer.md)");
    for (uint32_t i = 0; i < s->cfg->n_listeners; i++) {
        tm_listener_cfg *lc = &s->cfg->listeners[i];
        tls_opts t;
        char lerr[400] = "";
        char ifaddr[64];
        tm_nlistener_opts o = {.host = lc->host, .port = lc->port,
                               .max_connections = lc->max_connections, .cookie = lc};
        if (lc->bind_interface) {
            if (interface_address(lc->bind_interface, ifaddr, sizeof ifaddr, lerr,
                                  sizeof lerr) < 0) {
                snprintf(err, errcap, "%s:%d: listener %u: %s", lc->file ? lc->file : "-",
                         lc->line, lc->port, lerr);
                return -1;
            }
            o.host = ifaddr;
        }
        /* copied by the listener; the strings stay in the configuration */
        tm_ws_opts ws = {.http_dir = lc->http_dir,
                         .origins = (const char *const *)lc->ws_origins,
                         .n_origins = lc->n_ws_origins,
                         .headers_max = s->cfg->websockets_headers_size};
        if (lc->websockets)
            o.ws = &ws;
        if (is_tls(lc)) {
            if (make_tls_opts(lc, &t, lerr, sizeof lerr) < 0)
                goto bad;
            tls_extra(s->cfg, lc, &t);
            o.tls = &t.o;
        }
        if (tm_netsrv_listen(s->net, &o, lerr, sizeof lerr) < 0)
            goto bad;
        tm_log(TM_LOG_NOTICE, "listening on %s port %u (%s)", o.host ? o.host : "*",
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
    /* bridges: their local sessions now (after the store's restore), their
     * connections from the first loop iteration on (after the privilege drop) */
    if (tm_broker_bridges_start(s->b, tm_net_now_ms(), err, errcap) < 0)
        return -1;
    if (s->cfg->n_bridges &&
        !(s->links = tm_bridge_links_new(s->cfg, s->net, tm_net_now_ms(), err, errcap)))
        return -1;
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
            int64_t nb = tm_bridge_links_tick(s->links, s->b, now);
            if (nb < s->next_tick)
                s->next_tick = nb;
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
        if (s->n_logq) {
            drain_log(s);
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
    bool pid_written = false;
    int rc = 0;
    if (cfg->pid_file) {
        rc = write_pid_file(cfg->pid_file, err, errcap);
        pid_written = rc == 0;
    }
    if (rc == 0)
        rc = start(&s, err, errcap);
    if (rc == 0)
        rc = drop_privileges(cfg, err, errcap);
    if (rc == 0 && (cfg->log_dest & TM_LOGD_TOPIC))
        tm_log_set_sink(log_sink, &s);
    if (rc == 0 && run(&s) < 0)
        rc = 1;
    else if (rc < 0)
        rc = 2;
    tm_log_set_sink(NULL, NULL);
    for (uint32_t i = 0; i < s.n_logq; i++)
        free(s.logq[i].msg);
    if (pid_written && unlink(cfg->pid_file) < 0 && errno != ENOENT)
        tm_log(TM_LOG_NOTICE, "pid_file %s: not removed: %s", cfg->pid_file, strerror(errno));
    /* the engine first: it may still hold output for the transports */
    tm_broker_free(s.b);
    tm_netsrv_free(s.net);
    tm_bridge_links_free(s.links);
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
