/*
 * bridge_link.c — the transport side of bridges (docs/bridges.md): for each
 * configured bridge, the outgoing connection to the remote broker — TCP, TLS
 * (certificates or PSK) and attested TLS when configured — its reconnection
 * after every failure or loss, with back-off, and the choice of address.
 *
 * Per bridge, one state:
 *   WAITING     no connection; the next attempt is at `next_ms`
 *   CONNECTING  netsrv is connecting (TCP, TLS handshake and its appraisal)
 *   ENGINE      the engine has the connection (bridge.c: CONNECT, CONNACK...)
 * A failure before the engine, or the engine's connection ending (the remote
 * broker closed, refused CONNECT, missed PINGRESPs), goes back to WAITING.
 *
 * Back-off: restart_timeout BASE CAP, as Mosquitto 2: each wait is drawn at
 * random between BASE and three times the previous one, at most CAP (a
 * constant when BASE = CAP); it starts again from BASE once a connection
 * reached CONNACK. Addresses: without round_robin the first address is the
 * primary, a failure moves to the next and a connection that had come up
 * starts again from the primary; with round_robin every new attempt takes the
 * next address.
 *
 * Names are resolved when connecting, blocking the loop while the resolver
 * works (numeric addresses avoid it).
 */
#include "broker/bridge_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "attest/atls.h"
#include "broker/log.h"

enum { L_WAITING, L_CONNECTING, L_ENGINE };

typedef struct link {
    tm_bridge_links *set;
    uint32_t index;              /* the bridge's index in the configuration */
    const tm_bridge_cfg *cfg;
    SSL_CTX *tls;                /* NULL: plain TCP */
    tm_atls_client *atls;        /* NULL: no attested TLS */
    tm_tls_client_hooks hooks;
    int state;
    int64_t next_ms;
    uint32_t wait_ms;            /* the last back-off */
    uint32_t addr;               /* the address of the current / next attempt */
    bool was_up;                 /* the current connection reached CONNACK */
    tm_conn *conn;               /* the engine's, while L_ENGINE */
    uint32_t connects;           /* the engine's count when it got `conn` */
    char why[240];               /* how the transport of that connection ended */
} link;

struct tm_bridge_links {
    tm_netsrv *net;
    link *l;
    uint32_t n;
};

static uint32_t rand_between(uint32_t lo, uint32_t hi)
{
    uint32_t r = 0;
    if (hi <= lo || RAND_bytes((unsigned char *)&r, sizeof r) != 1)
        return lo;
    return lo + r % (hi - lo + 1);
}

static int make_tls(link *k, char *err, size_t errcap)
{
    const tm_bridge_cfg *bc = k->cfg;
    if (!(bc->cafile || bc->capath || bc->use_os_certs || bc->psk))
        return 0;
    bool attest = bc->attestation_policy ||
                  (bc->attestation_provider && strcmp(bc->attestation_provider, "none") != 0);
    tm_tls_opts o = {
        .enable = true,
        .cafile = bc->cafile,
        .capath = bc->capath,
        .certfile = bc->certfile,
        .keyfile = bc->keyfile,
        .psk_hex = bc->psk,
        .psk_identity = bc->psk_identity,
        .min_version = attest ? "tlsv1.3" : bc->tls_version,
        .insecure = bc->insecure,
    };
    char why[400];
    if (bc->insecure)
        tm_log(TM_LOG_WARN, "bridge %s: bridge_insecure: the remote broker's name is not "
               "checked against its certificate (a certificate of the same CA for any name "
               "is accepted)", bc->name);
    if (!(k->tls = tm_tls_ctx_new(&o, why, sizeof why))) {
        snprintf(err, errcap, "bridge %s: %s", bc->name, why);
        return -1;
    }
    if (bc->alpn) {
        size_t l = strlen(bc->alpn);
        unsigned char proto[256];
        if (l > 255) {
            snprintf(err, errcap, "bridge %s: bridge_alpn longer than 255 bytes", bc->name);
            return -1;
        }
        proto[0] = (unsigned char)l;
        memcpy(proto + 1, bc->alpn, l);
        if (SSL_CTX_set_alpn_protos(k->tls, proto, (unsigned)l + 1) != 0) {
            snprintf(err, errcap, "bridge %s: bridge_alpn: out of memory", bc->name);
            return -1;
        }
    }
    if (!attest)
        return 0;
    /* appraise the remote broker (bridge_attestation_policy), answer its
     * request for ours (bridge_attestation_provider), or both */
    tm_atls_client_opts ao = {
        .require = bc->attestation_policy != NULL,
        .policy_file = bc->attestation_policy,
        .provider = bc->attestation_provider,
        .provider_opts = bc->attestation_provider_opts,
    };
    if (!(k->atls = tm_atls_client_new(&ao, why, sizeof why)) ||
        tm_atls_client_ctx_init(k->tls, why, sizeof why) < 0) {
        snprintf(err, errcap, "bridge %s: attestation: %s", bc->name, why);
        return -1;
    }
    k->hooks = (tm_tls_client_hooks){.setup = tm_atls_client_setup,
                                     .verify = tm_atls_client_verify, .arg = k->atls};
    return 0;
}

tm_bridge_links *tm_bridge_links_new(const tm_config *cfg, tm_netsrv *net, int64_t now,
                                     char *err, size_t errcap)
{
    tm_bridge_links *set = calloc(1, sizeof *set);
    if (!set || (cfg->n_bridges && !(set->l = calloc(cfg->n_bridges, sizeof *set->l)))) {
        free(set);
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    set->net = net;
    set->n = cfg->n_bridges;
    for (uint32_t i = 0; i < set->n; i++) {
        link *k = &set->l[i];
        k->set = set;
        k->index = i;
        k->cfg = &cfg->bridges[i];
        k->state = L_WAITING;
        k->next_ms = now;   /* the first attempt at once */
        if (make_tls(k, err, errcap) < 0) {
            tm_bridge_links_free(set);
            return NULL;
        }
        if (k->atls)
            tm_log(TM_LOG_NOTICE, "bridge %s: attested TLS: %s the remote broker, %s", k->cfg->name,
                   k->cfg->attestation_policy ? "appraising" : "not appraising",
                   k->cfg->attestation_provider &&
                           strcmp(k->cfg->attestation_provider, "none") != 0
                       ? "our evidence when it asks"
                       : "no evidence of ours");
    }
    return set;
}

void tm_bridge_links_free(tm_bridge_links *set)
{
    if (!set)
        return;
    for (uint32_t i = 0; i < set->n; i++) {
        SSL_CTX_free(set->l[i].tls);
        tm_atls_client_free(set->l[i].atls);
    }
    free(set->l);
    free(set);
}

bool tm_bridge_links_owns(const tm_bridge_links *set, const void *cookie)
{
    return set && set->n && (const link *)cookie >= set->l &&
           (const link *)cookie < set->l + set->n;
}

static bool numeric(const char *h)
{
    return strspn(h, "0123456789.") == strlen(h) || strchr(h, ':');
}

static void start(link *k, int64_t now)
{
    const tm_bridge_cfg *bc = k->cfg;
    const tm_bridge_addr *a = &bc->addrs[k->addr % bc->n_addrs];
    tm_nconnect_opts o = {
        .host = a->host,
        .port = a->port,
        .tls = k->tls,
        .sni = k->tls && !numeric(a->host) ? a->host : NULL,
        .expect = k->tls && !bc->insecure && !bc->psk ? a->host : NULL,
        .hooks = k->atls ? &k->hooks : NULL,
        .cookie = k,
    };
    char err[400] = "";
    k->was_up = false;
    if (tm_netsrv_connect(k->set->net, &o, err, sizeof err) == 0) {
        k->state = L_CONNECTING;
        return;
    }
    tm_bridge_links_failed(k->set, k, err, now);
}

/* Back to waiting: the next address and the next back-off. */
static void retry(link *k, int64_t now, const char *why)
{
    const tm_bridge_cfg *bc = k->cfg;
    const tm_bridge_addr *a = &bc->addrs[k->addr % bc->n_addrs];
    uint32_t base = bc->restart_base * 1000, cap = bc->restart_cap * 1000;
    if (k->was_up) {
        k->wait_ms = base;
        if (!bc->round_robin)
            k->addr = 0;   /* the primary first again */
        else
            k->addr++;
    } else {
        uint32_t hi = k->wait_ms ? k->wait_ms * 3 : base;
        k->wait_ms = rand_between(base, hi < cap ? hi : cap);
        k->addr++;
    }
    k->state = L_WAITING;
    k->next_ms = now + k->wait_ms;
    if (why)
        tm_log(TM_LOG_WARN, "bridge %s: %s:%u: %s; next attempt in %.1f s (%s:%u)", bc->name,
               a->host, (unsigned)a->port, why, k->wait_ms / 1000.0,
               bc->addrs[k->addr % bc->n_addrs].host,
               (unsigned)bc->addrs[k->addr % bc->n_addrs].port);
    else
        tm_log(TM_LOG_NOTICE, "bridge %s: disconnected%s%s; next attempt in %.1f s", bc->name,
               k->why[0] ? ": " : "", k->why, k->wait_ms / 1000.0);
}

void tm_bridge_links_failed(tm_bridge_links *set, void *cookie, const char *why, int64_t now)
{
    (void)set;
    link *k = cookie;
    retry(k, now, why);
}

tm_conn *tm_bridge_links_open(tm_bridge_links *set, tm_broker *b, tm_nconn *nc, int64_t now)
{
    (void)set;
    link *k = tm_nconn_cookie(nc);
    tm_conn_info info = {
        .tls = tm_nconn_is_tls(nc),
        .io = nc,
    };
    tm_conn *c = tm_broker_open_bridge(b, k->index, &info, now);
    if (!c) {
        retry(k, now, "out of memory for the connection");
        return NULL;
    }
    k->state = L_ENGINE;
    k->conn = c;
    k->connects = tm_broker_bridge_connects(b, k->index);
    k->why[0] = 0;
    return c;
}

void tm_bridge_links_closed(tm_bridge_links *set, const void *up, const char *why)
{
    for (uint32_t i = 0; set && i < set->n; i++)
        if (set->l[i].state == L_ENGINE && set->l[i].conn == up)
            snprintf(set->l[i].why, sizeof set->l[i].why, "%s", why);
}

int64_t tm_bridge_links_tick(tm_bridge_links *set, tm_broker *b, int64_t now)
{
    int64_t next = INT64_MAX;
    for (uint32_t i = 0; set && i < set->n; i++) {
        link *k = &set->l[i];
        if (k->state == L_ENGINE) {
            tm_bridge_state st = tm_broker_bridge_state(b, k->index);
            if (tm_broker_bridge_connects(b, k->index) != k->connects)
                k->was_up = true;   /* even if it went down since the last tick */
            if (st == TM_BRIDGE_DOWN) {
                char why[400];
                snprintf(why, sizeof why, "the connection ended before CONNACK%s%s%s",
                         k->why[0] ? ": " : "", k->why,
                         k->atls && strstr(k->why, "alert access denied")
                             ? " (the remote broker refused our evidence)"
                             : "");
                k->conn = NULL;
                retry(k, now, k->was_up ? NULL : why);
            }
        }
        if (k->state == L_WAITING && now >= k->next_ms)
            start(k, now);
        if (k->state == L_WAITING && k->next_ms < next)
            next = k->next_ms;
    }
    return next;
}
