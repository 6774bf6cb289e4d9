/*
 * config.c — reads mosquitto.conf-style files: one `key value...` per line,
 * `#` comments, blank lines ignored. Keys that belong to a listener apply to
 * the most recent `listener` line (or to the default listener defined by
 * `port`/`bind_address` before any `listener`).
 */
#include "broker/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log.h"

void tm_config_defaults(tm_config *c)
{
    memset(c, 0, sizeof *c);
    c->allow_anonymous = false;
    c->max_inflight = 20;
    c->max_queued = 1000;
    c->max_queued_bytes = 64u << 20;
    c->max_topic_alias = 10;
    c->max_qos = 2;
    c->retain_available = true;
    c->log_level = TM_LOG_NOTICE;
    c->connection_messages = true;
    c->handshake_timeout_ms = 10000;
    c->sys_interval = 10;
}

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

tm_listener_cfg *tm_config_add_listener(tm_config *c, const char *host, uint16_t port)
{
    tm_listener_cfg *n = realloc(c->listeners, (c->n_listeners + 1) * sizeof *n);
    if (!n)
        return NULL;
    c->listeners = n;
    tm_listener_cfg *l = &n[c->n_listeners++];
    memset(l, 0, sizeof *l);
    l->host = dupstr(host);
    l->port = port;
    l->allow_anonymous = -1;
    l->max_connections = -1;
    return l;
}

static void listener_free(tm_listener_cfg *l)
{
    free(l->host);
    free(l->certfile);
    free(l->keyfile);
    free(l->cafile);
    free(l->capath);
    free(l->psk_file);
    free(l->psk_hint);
    free(l->tls_version);
    free(l->ciphers);
    free(l->ciphers_tls13);
    free(l->attestation_provider);
    free(l->attestation_formats);
    for (uint32_t i = 0; i < l->n_attestation_opts; i++)
        free(l->attestation_opts[i]);
    free(l->attestation_opts);
    free(l->client_attestation_policy);
    free(l->file);
}

void tm_config_free(tm_config *c)
{
    for (uint32_t i = 0; i < c->n_listeners; i++)
        listener_free(&c->listeners[i]);
    free(c->listeners);
    free(c->path);
    free(c->password_file);
    free(c->acl_file);
    free(c->persistence_location);
    free(c->log_file);
    memset(c, 0, sizeof *c);
}

/* ---- value parsers: each returns 0 or -1 with a reason -------------------- */

typedef struct parse_ctx {
    const char *file;
    int line;
    char *err;
    size_t errcap;
} parse_ctx;

static int fail(parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parse_ctx *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errcap, "%s:%d: %s", p->file, p->line, msg);
    return -1;
}

static int parse_bool(parse_ctx *p, const char *key, const char *v, bool *out)
{
    if (v && strcmp(v, "true") == 0)
        *out = true;
    else if (v && strcmp(v, "false") == 0)
        *out = false;
    else
        return fail(p, "%s: expected 'true' or 'false', got '%s'", key, v ? v : "");
    return 0;
}

static int parse_u64(parse_ctx *p, const char *key, const char *v, uint64_t max, uint64_t *out)
{
    if (!v || !*v)
        return fail(p, "%s: missing value", key);
    char *end;
    errno = 0;
    if (*v == '-')
        return fail(p, "%s: '%s' is negative", key, v);
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end)
        return fail(p, "%s: '%s' is not a number", key, v);
    if (x > max)
        return fail(p, "%s: %s is out of range (maximum %llu)", key, v, (unsigned long long)max);
    *out = x;
    return 0;
}

static int parse_u32(parse_ctx *p, const char *key, const char *v, uint32_t max, uint32_t *out)
{
    uint64_t x;
    if (parse_u64(p, key, v, max, &x) < 0)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int set_str(parse_ctx *p, const char *key, const char *v, char **out)
{
    if (!v || !*v)
        return fail(p, "%s: missing value", key);
    free(*out);
    *out = strdup(v);
    return *out ? 0 : fail(p, "out of memory");
}

/* Split a line into at most 4 whitespace-separated words; the last word keeps
 * the rest of the line (paths with spaces). */
static int split(char *line, char **w, int max)
{
    int n = 0;
    char *s = line;
    while (n < max) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (n == max - 1) {
            w[n++] = s;
            char *e = s + strlen(s);
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = 0;
            break;
        }
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = 0;
    }
    return n;
}

static tm_listener_cfg *cur_listener(tm_config *c, parse_ctx *p, const char *key)
{
    if (c->n_listeners == 0) {
        /* mosquitto: listener options before any `listener` apply to the
         * default listener (port 1883) */
        tm_listener_cfg *l = tm_config_add_listener(c, NULL, 1883);
        if (l) {
            l->file = strdup(p->file);
            l->line = p->line;
        }
        return l;
    }
    return &c->listeners[c->n_listeners - 1];
}

static int handle_line(tm_config *c, parse_ctx *p, char **w, int n)
{
    const char *k = w[0];
    const char *v = n > 1 ? w[1] : NULL;
    tm_listener_cfg *l;
    uint32_t u;

    if (strcmp(k, "listener") == 0) {
        if (n < 2)
            return fail(p, "listener: missing port");
        if (parse_u32(p, k, w[1], 65535, &u) < 0)
            return -1;
        if (n > 3)
            return fail(p, "listener: too many values (expected 'listener PORT [ADDRESS]')");
        l = tm_config_add_listener(c, n > 2 ? w[2] : NULL, (uint16_t)u);
        if (!l)
            return fail(p, "out of memory");
        l->file = strdup(p->file);
        l->line = p->line;
        return 0;
    }
    if (n < 2)
        return fail(p, "%s: missing value", k);
    if (n > 2 && strcmp(k, "attestation_opt") != 0 && strcmp(k, "log_dest") != 0)
        return fail(p, "%s: too many values", k);

    if (strcmp(k, "port") == 0) {
        if (parse_u32(p, k, v, 65535, &u) < 0)
            return -1;
        l = cur_listener(c, p, k);
        l->port = (uint16_t)u;
        return 0;
    }
    if (strcmp(k, "bind_address") == 0) {
        l = cur_listener(c, p, k);
        return set_str(p, k, v, &l->host);
    }
    if (strcmp(k, "allow_anonymous") == 0) {
        bool b;
        if (parse_bool(p, k, v, &b) < 0)
            return -1;
        /* Recorded per listener; without per_listener_settings the last
         * value becomes global at the end of parsing, as in mosquitto. */
        if (c->n_listeners > 0)
            c->listeners[c->n_listeners - 1].allow_anonymous = b;
        else
            c->allow_anonymous = b;
        c->allow_anonymous_set = true;
        c->last_anon = b;
        return 0;
    }
    if (strcmp(k, "per_listener_settings") == 0)
        return parse_bool(p, k, v, &c->per_listener_settings);
    if (strcmp(k, "password_file") == 0) {
        c->password_file_line = p->line;
        return set_str(p, k, v, &c->password_file);
    }
    if (strcmp(k, "acl_file") == 0) {
        c->acl_file_line = p->line;
        return set_str(p, k, v, &c->acl_file);
    }
    if (strcmp(k, "max_connections") == 0) {
        l = cur_listener(c, p, k);
        if (strcmp(v, "-1") == 0) {
            l->max_connections = -1;
            return 0;
        }
        if (parse_u32(p, k, v, INT_MAX, &u) < 0)
            return -1;
        l->max_connections = (int)u;
        return 0;
    }
    if (strcmp(k, "max_packet_size") == 0) {
        if (parse_u32(p, k, v, 268435460u, &u) < 0)
            return -1;
        if (u != 0 && u < 20)
            return fail(p, "%s: %u is too small (minimum 20 bytes)", k, u);
        c->max_packet_size = u;
        return 0;
    }
    if (strcmp(k, "message_size_limit") == 0) {
        /* Mosquitto's meaning: a limit on PUBLISH payloads (and will payloads),
         * any value; the packets themselves are limited by max_packet_size. */
        if (parse_u32(p, k, v, 268435455u, &c->message_size_limit) < 0)
            return -1;
        if (c->message_size_limit)
            tm_log(TM_LOG_NOTICE, "%s:%d: message_size_limit %u: PUBLISH payloads larger than "
                   "%u bytes are dropped (QoS 1/2 flows completed, MQTT 5 clients told 0x95), "
                   "and a CONNECT whose will payload is larger is refused; CONNECT and the "
                   "other packets are not limited by it (see max_packet_size)",
                   p->file, p->line, c->message_size_limit, c->message_size_limit);
        return 0;
    }
    if (strcmp(k, "max_inflight_messages") == 0) {
        if (parse_u32(p, k, v, 65535, &u) < 0)
            return -1;
        c->max_inflight = (uint16_t)(u ? u : 65535);
        return 0;
    }
    if (strcmp(k, "max_queued_messages") == 0)
        return parse_u32(p, k, v, UINT32_MAX, &c->max_queued);
    if (strcmp(k, "max_queued_bytes") == 0)
        return parse_u64(p, k, v, UINT64_MAX, &c->max_queued_bytes);
    if (strcmp(k, "max_keepalive") == 0) {
        if (parse_u32(p, k, v, 65535, &u) < 0)
            return -1;
        c->max_keepalive = (uint16_t)u;
        return 0;
    }
    if (strcmp(k, "max_topic_alias") == 0) {
        if (parse_u32(p, k, v, 65535, &u) < 0)
            return -1;
        c->max_topic_alias = (uint16_t)u;
        return 0;
    }
    if (strcmp(k, "max_qos") == 0 || strcmp(k, "maximum_qos") == 0)
        return parse_u32(p, k, v, 2, &c->max_qos);
    if (strcmp(k, "retain_available") == 0)
        return parse_bool(p, k, v, &c->retain_available);
    if (strcmp(k, "queue_qos0_messages") == 0)
        return parse_bool(p, k, v, &c->queue_qos0);
    if (strcmp(k, "persistence") == 0)
        return parse_bool(p, k, v, &c->persistence);
    if (strcmp(k, "persistence_location") == 0)
        return set_str(p, k, v, &c->persistence_location);
    if (strcmp(k, "persistent_client_expiration") == 0) {
        /* mosquitto syntax: N followed by h, d, w, m or y */
        char *end;
        errno = 0;
        unsigned long x = strtoul(v, &end, 10);
        unsigned long mult = 0;
        if (errno || end == v || end[0] == 0 || end[1] != 0)
            return fail(p, "%s: expected a number followed by h, d, w, m or y", k);
        switch (*end) {
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        case 'w': mult = 7 * 86400; break;
        case 'm': mult = 30 * 86400; break;
        case 'y': mult = 365 * 86400; break;
        default: return fail(p, "%s: unknown unit '%c' (use h, d, w, m or y)", k, *end);
        }
        if (x > UINT32_MAX / mult)
            return fail(p, "%s: too large", k);
        c->persistent_client_expiration = (uint32_t)(x * mult);
        return 0;
    }
    if (strcmp(k, "sys_interval") == 0)
        return parse_u32(p, k, v, 86400, &c->sys_interval);
    if (strcmp(k, "log_dest") == 0) {
        if (strcmp(v, "stdout") == 0)
            c->log_stdout = true;
        else if (strcmp(v, "stderr") == 0)
            c->log_stdout = false;
        else if (strcmp(v, "none") == 0)
            c->log_level = -1;
        else if (strcmp(v, "file") == 0) {
            if (n < 3)
                return fail(p, "log_dest file: missing path");
            return set_str(p, k, w[2], &c->log_file);
        } else if (strcmp(v, "syslog") == 0 || strcmp(v, "topic") == 0)
            return fail(p, "log_dest: '%s' is not supported (use stdout, stderr, file or none)", v);
        else
            return fail(p, "log_dest: unknown destination '%s'", v);
        return 0;
    }
    if (strcmp(k, "log_type") == 0) {
        if (strcmp(v, "debug") == 0 || strcmp(v, "all") == 0)
            c->log_level = TM_LOG_DEBUG;
        else if (strcmp(v, "information") == 0 || strcmp(v, "subscribe") == 0 ||
                 strcmp(v, "unsubscribe") == 0) {
            if (c->log_level < TM_LOG_INFO)
                c->log_level = TM_LOG_INFO;
        } else if (strcmp(v, "error") && strcmp(v, "warning") && strcmp(v, "notice") &&
                   strcmp(v, "none") && strcmp(v, "websockets"))
            return fail(p, "log_type: unknown type '%s'", v);
        return 0;
    }
    if (strcmp(k, "connection_messages") == 0)
        return parse_bool(p, k, v, &c->connection_messages);
    if (strcmp(k, "handshake_timeout") == 0) {
        if (parse_u32(p, k, v, 3600, &u) < 0)
            return -1;
        c->handshake_timeout_ms = u * 1000;
        return 0;
    }
    if (strcmp(k, "protocol") == 0) {
        if (strcmp(v, "mqtt") != 0)
            return fail(p, "protocol: only 'mqtt' is supported (got '%s')", v);
        return 0;
    }
    if (strcmp(k, "socket_domain") == 0) {
        if (strcmp(v, "ipv4") && strcmp(v, "ipv6"))
            return fail(p, "socket_domain: expected ipv4 or ipv6");
        return 0;
    }
    if (strcmp(k, "set_tcp_nodelay") == 0) {
        bool b;
        return parse_bool(p, k, v, &b);
    }
    if (strcmp(k, "connection") == 0)
        return fail(p, "connection: bridges are not implemented in this version of tmqtt");

    /* TLS and attestation: per listener */
    struct { const char *key; size_t off; } strs[] = {
        {"certfile", offsetof(tm_listener_cfg, certfile)},
        {"keyfile", offsetof(tm_listener_cfg, keyfile)},
        {"cafile", offsetof(tm_listener_cfg, cafile)},
        {"capath", offsetof(tm_listener_cfg, capath)},
        {"psk_file", offsetof(tm_listener_cfg, psk_file)},
        {"psk_hint", offsetof(tm_listener_cfg, psk_hint)},
        {"ciphers", offsetof(tm_listener_cfg, ciphers)},
        {"ciphers_tls1.3", offsetof(tm_listener_cfg, ciphers_tls13)},
        {"attestation_formats", offsetof(tm_listener_cfg, attestation_formats)},
        {"client_attestation_policy", offsetof(tm_listener_cfg, client_attestation_policy)},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strcmp(k, strs[i].key) == 0) {
            l = cur_listener(c, p, k);
            return set_str(p, k, v, (char **)((char *)l + strs[i].off));
        }
    }
    if (strcmp(k, "tls_version") == 0) {
        if (strcmp(v, "tlsv1.2") && strcmp(v, "tlsv1.3"))
            return fail(p, "tls_version: expected tlsv1.2 or tlsv1.3, got '%s'", v);
        l = cur_listener(c, p, k);
        return set_str(p, k, v, &l->tls_version);
    }
    if (strcmp(k, "attestation_provider") == 0) {
        if (strcmp(v, "none") && strcmp(v, "sim") && strcmp(v, "gramine") && strcmp(v, "tsm"))
            return fail(p, "attestation_provider: expected none, sim, gramine or tsm, got '%s'", v);
        l = cur_listener(c, p, k);
        return set_str(p, k, v, &l->attestation_provider);
    }
    if (strcmp(k, "attestation_opt") == 0) {
        /* attestation_opt key=value */
        if (!strchr(v, '='))
            return fail(p, "attestation_opt: expected key=value");
        l = cur_listener(c, p, k);
        char **o = realloc(l->attestation_opts, (l->n_attestation_opts + 1) * sizeof *o);
        if (!o)
            return fail(p, "out of memory");
        l->attestation_opts = o;
        o[l->n_attestation_opts++] = strdup(v);
        return 0;
    }
    if (strcmp(k, "require_certificate") == 0) {
        l = cur_listener(c, p, k);
        return parse_bool(p, k, v, &l->require_certificate);
    }
    if (strcmp(k, "use_identity_as_username") == 0) {
        l = cur_listener(c, p, k);
        return parse_bool(p, k, v, &l->use_identity_as_username);
    }
    if (strcmp(k, "require_client_attestation") == 0) {
        l = cur_listener(c, p, k);
        return parse_bool(p, k, v, &l->require_client_attestation);
    }
    return fail(p, "unknown configuration key '%s'", k);
}

int tm_config_load(tm_config *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    free(c->path);
    c->path = strdup(path);
    parse_ctx p = {.file = path, .err = err, .errcap = errcap};
    char line[4096];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        p.line++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = fail(&p, "line too long");
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        char *w[4];
        int n = split(s, w, 4);
        if (handle_line(c, &p, w, n) < 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && !c->per_listener_settings && c->allow_anonymous_set) {
        c->allow_anonymous = c->last_anon;
        for (uint32_t i = 0; i < c->n_listeners; i++)
            c->listeners[i].allow_anonymous = -1;
    }
    if (rc == 0) {
        for (uint32_t i = 0; i < c->n_listeners; i++) {
            tm_listener_cfg *l = &c->listeners[i];
            p.line = l->line;
            if ((l->certfile != NULL) != (l->keyfile != NULL)) {
                rc = fail(&p, "listener %u: certfile and keyfile must be given together", l->port);
                break;
            }
            if (l->require_client_attestation && !l->certfile) {
                rc = fail(&p, "listener %u: require_client_attestation needs a TLS listener "
                              "(certfile/keyfile)", l->port);
                break;
            }
            if (l->require_client_attestation && !l->client_attestation_policy) {
                rc = fail(&p, "listener %u: require_client_attestation needs "
                              "client_attestation_policy", l->port);
                break;
            }
        }
    }
    return rc;
}
