/*
 * config.c — reads mosquitto.conf-style files: one `key value...` per line,
 * `#` comments, blank lines ignored. Keys that belong to a listener apply to
 * the most recent `listener` line (or to the default listener defined by
 * `port`/`bind_address` before any `listener`).
 */
#include "broker/config.h"

#include <errno.h>
#include <stddef.h>
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

/* ---- keys with their own rules ---------------------------------------------- */

typedef int (*key_fn)(tm_config *c, parse_ctx *p, char **w, int n);

static int k_listener(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 65535, &u) < 0)
        return -1;
    tm_listener_cfg *l = tm_config_add_listener(c, n > 2 ? w[2] : NULL, (uint16_t)u);
    if (!l)
        return fail(p, "out of memory");
    l->file = strdup(p->file);
    l->line = p->line;
    return 0;
}

static int k_port(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 65535, &u) < 0)
        return -1;
    cur_listener(c, p, w[0])->port = (uint16_t)u;
    return 0;
}

static int k_allow_anonymous(tm_config *c, parse_ctx *p, char **w, int n)
{
    bool b;
    if (parse_bool(p, w[0], w[1], &b) < 0)
        return -1;
    /* Recorded per listener; without per_listener_settings the last value
     * becomes global at the end of parsing, as in mosquitto. */
    if (c->n_listeners > 0)
        c->listeners[c->n_listeners - 1].allow_anonymous = b;
    else
        c->allow_anonymous = b;
    c->allow_anonymous_set = true;
    c->last_anon = b;
    return 0;
}

static int k_password_file(tm_config *c, parse_ctx *p, char **w, int n)
{
    c->password_file_line = p->line;
    return set_str(p, w[0], w[1], &c->password_file);
}

static int k_acl_file(tm_config *c, parse_ctx *p, char **w, int n)
{
    c->acl_file_line = p->line;
    return set_str(p, w[0], w[1], &c->acl_file);
}

static int k_max_connections(tm_config *c, parse_ctx *p, char **w, int n)
{
    tm_listener_cfg *l = cur_listener(c, p, w[0]);
    uint32_t u;
    if (strcmp(w[1], "-1") == 0) {
        l->max_connections = -1;
        return 0;
    }
    if (parse_u32(p, w[0], w[1], INT_MAX, &u) < 0)
        return -1;
    l->max_connections = (int)u;
    return 0;
}

static int k_max_packet_size(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 268435460u, &u) < 0)
        return -1;
    if (u != 0 && u < 20)
        return fail(p, "%s: %u is too small (minimum 20 bytes)", w[0], u);
    c->max_packet_size = u;
    return 0;
}

static int k_message_size_limit(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* Mosquitto's meaning: a limit on PUBLISH payloads (and will payloads),
     * any value; the packets themselves are limited by max_packet_size. */
    if (parse_u32(p, w[0], w[1], 268435455u, &c->message_size_limit) < 0)
        return -1;
    if (c->message_size_limit)
        tm_log(TM_LOG_NOTICE, "%s:%d: message_size_limit %u: PUBLISH payloads larger than "
               "%u bytes are dropped (QoS 1/2 flows completed, MQTT 5 clients told 0x95), "
               "and a CONNECT whose will payload is larger is refused; CONNECT and the "
               "other packets are not limited by it (see max_packet_size)",
               p->file, p->line, c->message_size_limit, c->message_size_limit);
    return 0;
}

static int k_max_inflight(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 65535, &u) < 0)
        return -1;
    c->max_inflight = (uint16_t)(u ? u : 65535);
    return 0;
}

static int k_persistent_client_expiration(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* mosquitto syntax: N followed by h, d, w, m or y */
    const char *k = w[0], *v = w[1];
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

static int k_log_dest(tm_config *c, parse_ctx *p, char **w, int n)
{
    const char *v = w[1];
    if (strcmp(v, "stdout") == 0)
        c->log_stdout = true;
    else if (strcmp(v, "stderr") == 0)
        c->log_stdout = false;
    else if (strcmp(v, "none") == 0)
        c->log_level = -1;
    else if (strcmp(v, "file") == 0)
        return n < 3 ? fail(p, "log_dest file: missing path") : set_str(p, w[0], w[2], &c->log_file);
    else if (strcmp(v, "syslog") == 0 || strcmp(v, "topic") == 0)
        return fail(p, "log_dest: '%s' is not supported (use stdout, stderr, file or none)", v);
    else
        return fail(p, "log_dest: unknown destination '%s'", v);
    return 0;
}

static int k_log_type(tm_config *c, parse_ctx *p, char **w, int n)
{
    const char *v = w[1];
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

static int k_handshake_timeout(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 3600, &u) < 0)
        return -1;
    c->handshake_timeout_ms = u * 1000;
    return 0;
}

static int k_protocol(tm_config *c, parse_ctx *p, char **w, int n)
{
    if (strcmp(w[1], "mqtt") != 0)
        return fail(p, "protocol: only 'mqtt' is supported (got '%s')", w[1]);
    return 0;
}

static int k_attestation_opt(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* attestation_opt key=value (the value may contain spaces) */
    if (!strchr(w[1], '='))
        return fail(p, "attestation_opt: expected key=value");
    tm_listener_cfg *l = cur_listener(c, p, w[0]);
    char **o = realloc(l->attestation_opts, (l->n_attestation_opts + 1) * sizeof *o);
    if (!o)
        return fail(p, "out of memory");
    l->attestation_opts = o;
    char *joined = malloc(strlen(w[1]) + (n > 2 ? strlen(w[2]) + 1 : 0) + 1);
    if (!joined)
        return fail(p, "out of memory");
    strcpy(joined, w[1]);
    if (n > 2) {
        strcat(joined, " ");
        strcat(joined, w[2]);
    }
    o[l->n_attestation_opts++] = joined;
    return 0;
}

static int k_attestation_key_lifetime(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* seconds per attestation key of the +key formats (docs/attested-tls.md) */
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 604800, &u) < 0)
        return -1;
    if (u < 10)
        return fail(p, "%s: at least 10 seconds (a quote per key)", w[0]);
    cur_listener(c, p, w[0])->attestation_key_lifetime = u;
    return 0;
}

/* ---- the table of keys --------------------------------------------------------- */

/* How a key's value is stored. */
enum kind {
    K_BOOL,      /* bool */
    K_U16,       /* uint16_t, 0..max */
    K_U32,       /* uint32_t, 0..max */
    K_U64,       /* uint64_t, 0..max */
    K_STR,       /* char *, any non-empty value */
    K_CHOICE,    /* char *, one of `choices` ("a|b|c") */
    K_ACCEPT,    /* validated against `choices` and ignored (see `why`) */
    K_FN,        /* its own function */
    K_REFUSE,    /* known, refused with `why` */
};

typedef struct key_def {
    const char *name;
    uint8_t kind;
    bool listener;           /* stored in the current listener, else global */
    uint8_t max_words;       /* words on the line, key included (0: 2) */
    size_t off;              /* offset in tm_config or tm_listener_cfg */
    uint64_t max;
    const char *choices;
    key_fn fn;
    const char *why;
} key_def;

#define G(f) offsetof(tm_config, f)
#define L(f) offsetof(tm_listener_cfg, f)

static const key_def keys[] = {
    /* listeners */
    {"listener", K_FN, .max_words = 3, .fn = k_listener},
    {"port", K_FN, .fn = k_port},
    {"bind_address", K_STR, true, .off = L(host)},
    {"max_connections", K_FN, .fn = k_max_connections},
    {"protocol", K_FN, .fn = k_protocol},
    {"socket_domain", K_ACCEPT, .choices = "ipv4|ipv6",
     .why = "the listener's address decides the family"},
    {"set_tcp_nodelay", K_ACCEPT, .choices = "true|false",
     .why = "tmqtt always sets TCP_NODELAY and batches its writes per loop iteration"},
    /* authentication and authorisation */
    {"allow_anonymous", K_FN, .fn = k_allow_anonymous},
    {"per_listener_settings", K_BOOL, .off = G(per_listener_settings)},
    {"password_file", K_FN, .fn = k_password_file},
    {"acl_file", K_FN, .fn = k_acl_file},
    /* limits */
    {"max_packet_size", K_FN, .fn = k_max_packet_size},
    {"message_size_limit", K_FN, .fn = k_message_size_limit},
    {"max_inflight_messages", K_FN, .fn = k_max_inflight},
    {"max_queued_messages", K_U32, .off = G(max_queued), .max = UINT32_MAX},
    {"max_queued_bytes", K_U64, .off = G(max_queued_bytes), .max = UINT64_MAX},
    {"max_keepalive", K_U16, .off = G(max_keepalive), .max = 65535},
    {"max_topic_alias", K_U16, .off = G(max_topic_alias), .max = 65535},
    {"max_qos", K_U32, .off = G(max_qos), .max = 2},
    {"maximum_qos", K_U32, .off = G(max_qos), .max = 2},
    {"retain_available", K_BOOL, .off = G(retain_available)},
    {"queue_qos0_messages", K_BOOL, .off = G(queue_qos0)},
    {"handshake_timeout", K_FN, .fn = k_handshake_timeout},
    /* sessions and persistence */
    {"persistence", K_BOOL, .off = G(persistence)},
    {"persistence_location", K_STR, .off = G(persistence_location)},
    {"persistent_client_expiration", K_FN, .fn = k_persistent_client_expiration},
    /* logging and $SYS */
    {"sys_interval", K_U32, .off = G(sys_interval), .max = 86400},
    {"log_dest", K_FN, .max_words = 3, .fn = k_log_dest},
    {"log_type", K_FN, .fn = k_log_type},
    {"connection_messages", K_BOOL, .off = G(connection_messages)},
    /* TLS, per listener */
    {"certfile", K_STR, true, .off = L(certfile)},
    {"keyfile", K_STR, true, .off = L(keyfile)},
    {"cafile", K_STR, true, .off = L(cafile)},
    {"capath", K_STR, true, .off = L(capath)},
    {"psk_file", K_STR, true, .off = L(psk_file)},
    {"psk_hint", K_STR, true, .off = L(psk_hint)},
    {"ciphers", K_STR, true, .off = L(ciphers)},
    {"ciphers_tls1.3", K_STR, true, .off = L(ciphers_tls13)},
    {"tls_version", K_CHOICE, true, .off = L(tls_version), .choices = "tlsv1.2|tlsv1.3"},
    {"require_certificate", K_BOOL, true, .off = L(require_certificate)},
    {"use_identity_as_username", K_BOOL, true, .off = L(use_identity_as_username)},
    /* attested TLS, per listener */
    {"attestation_provider", K_CHOICE, true, .off = L(attestation_provider),
     .choices = "none|sim|gramine|tsm"},
    {"attestation_formats", K_STR, true, .off = L(attestation_formats)},
    {"attestation_opt", K_FN, .max_words = 3, .fn = k_attestation_opt},
    {"attestation_key_lifetime", K_FN, .fn = k_attestation_key_lifetime},
    {"require_client_attestation", K_BOOL, true, .off = L(require_client_attestation)},
    {"client_attestation_policy", K_STR, true, .off = L(client_attestation_policy)},
    /* bridges */
    {"connection", K_REFUSE, .why = "bridges are not implemented in this version of tmqtt"},
};

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Is v one of "a|b|c"? */
static bool one_of(const char *v, const char *choices)
{
    size_t l = strlen(v);
    for (const char *s = choices; *s;) {
        size_t n = strcspn(s, "|");
        if (n == l && strncmp(s, v, n) == 0)
            return true;
        s += n + (s[n] == '|');
    }
    return false;
}

static int handle_line(tm_config *c, parse_ctx *p, char **w, int n)
{
    const key_def *k = find_key(w[0]);
    if (!k)
        return fail(p, "unknown configuration key '%s'", w[0]);
    if (k->kind == K_REFUSE)
        return fail(p, "%s: %s", k->name, k->why);
    if (n < 2)
        return fail(p, "%s: missing value", k->name);
    if (n > (k->max_words ? k->max_words : 2))
        return fail(p, "%s: too many values", k->name);
    if (k->kind == K_FN)
        return k->fn(c, p, w, n);
    const char *v = w[1];
    char *base = k->listener ? (char *)cur_listener(c, p, k->name) : (char *)c;
    if (!base)
        return fail(p, "out of memory");
    void *field = base + k->off;
    uint64_t x;
    switch (k->kind) {
    case K_BOOL:
        return parse_bool(p, k->name, v, field);
    case K_U16:
        if (parse_u64(p, k->name, v, k->max, &x) < 0)
            return -1;
        *(uint16_t *)field = (uint16_t)x;
        return 0;
    case K_U32:
        if (parse_u64(p, k->name, v, k->max, &x) < 0)
            return -1;
        *(uint32_t *)field = (uint32_t)x;
        return 0;
    case K_U64:
        return parse_u64(p, k->name, v, k->max, field);
    case K_CHOICE:
    case K_ACCEPT:
        if (!one_of(v, k->choices))
            return fail(p, "%s: expected one of %s, got '%s'", k->name, k->choices, v);
        if (k->kind == K_ACCEPT)
            return 0;
        return set_str(p, k->name, v, field);
    default:
        return set_str(p, k->name, v, field);
    }
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
