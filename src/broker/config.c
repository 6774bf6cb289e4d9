/*
 * config.c — reads mosquitto.conf-style files: one `key value...` per line,
 * `#` comments, blank lines ignored. Keys that belong to a listener apply to
 * the most recent `listener` line (or to the default listener defined by
 * `port`/`bind_address` before any `listener`).
 *
 * Every key is a row of `keys[]`: how its value is stored, or why it is
 * refused. `include_dir` reads the `*.conf` files of a directory in
 * Mosquitto's order, from the main file only. Checks that need the whole
 * file (per_listener_settings, PSK listeners) run once at the end.
 */
#include "broker/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "broker/log.h"
#include "mqtt/mqtt.h"

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
    c->log_dest = TM_LOGD_STDERR;
    c->log_types = TM_LOG_DEFAULT_TYPES;
    c->log_facility = -1;
    c->log_timestamp = true;
    c->connection_messages = true;
    c->handshake_timeout_ms = 10000;
    c->sys_interval = 10;
    c->attestation_refresh_s = 10;
    c->autosave_interval = 1800;
    c->allow_zero_length_clientid = true;
    c->auto_id_prefix = strdup("auto-");
    c->check_retain_source = true;
    c->last_azlc = -1;
}

uint32_t tm_config_max_qos(const tm_config *c, const tm_listener_cfg *l)
{
    return l && l->max_qos >= 0 ? (uint32_t)l->max_qos : c->max_qos;
}

uint32_t tm_config_max_topic_alias(const tm_config *c, const tm_listener_cfg *l)
{
    return l && l->max_topic_alias >= 0 ? (uint32_t)l->max_topic_alias : c->max_topic_alias;
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
    l->max_qos = -1;
    l->max_topic_alias = -1;
    l->allow_zero_length_clientid = -1;
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
    free(l->mount_point);
    free(l->bind_interface);
    free(l->crlfile);
    free(l->dhparamfile);
    free(l->auto_id_prefix);
    free(l->http_dir);
    for (uint32_t i = 0; i < l->n_ws_origins; i++)
        free(l->ws_origins[i]);
    free(l->ws_origins);
    free(l->file);
}

static void bridge_free(tm_bridge_cfg *br)
{
    free(br->name);
    for (uint32_t i = 0; i < br->n_addrs; i++)
        free(br->addrs[i].host);
    free(br->addrs);
    for (uint32_t i = 0; i < br->n_topics; i++) {
        free(br->topics[i].pattern);
        free(br->topics[i].local_prefix);
        free(br->topics[i].remote_prefix);
    }
    free(br->topics);
    char **strs[] = {&br->local_clientid, &br->remote_clientid, &br->remote_username,
                     &br->remote_password, &br->local_username, &br->notification_topic,
                     &br->cafile, &br->capath, &br->certfile, &br->keyfile, &br->tls_version,
                     &br->psk, &br->psk_identity, &br->alpn, &br->attestation_policy,
                     &br->attestation_provider, &br->attestation_provider_opts, &br->file};
    if (br->remote_password)
        OPENSSL_cleanse(br->remote_password, strlen(br->remote_password));
    if (br->psk)
        OPENSSL_cleanse(br->psk, strlen(br->psk));
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
}

void tm_config_free(tm_config *c)
{
    for (uint32_t i = 0; i < c->n_listeners; i++)
        listener_free(&c->listeners[i]);
    free(c->listeners);
    for (uint32_t i = 0; i < c->n_bridges; i++)
        bridge_free(&c->bridges[i]);
    free(c->bridges);
    free(c->path);
    free(c->password_file);
    free(c->acl_file);
    free(c->persistence_location);
    free(c->persistence_file);
    free(c->persistence_seal);
    free(c->log_file);
    free(c->log_timestamp_format);
    free(c->pid_file);
    free(c->user);
    free(c->auto_id_prefix);
    free(c->last_prefix);
    free(c->clientid_prefixes);
    free(c->psk_file);
    free(c->tls_record_layer);
    memset(c, 0, sizeof *c);
}

/* ---- value parsers: each returns 0 or -1 with a reason -------------------- */

typedef struct parse_ctx {
    const char *file;
    int line;
    char *err;
    size_t errcap;
    const char *rest;            /* the line after the key, for values with spaces */
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
    *out = false;   /* defined on failure too (gcc -O3 cannot tell the callers never read it) */
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
    *out = 0;       /* likewise */
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
    if (n > 2 && strchr(w[2], '/'))
        return fail(p, "listener %s %s: Unix domain socket listeners are not supported (tmqtt's "
                       "listeners are TCP); listen on 127.0.0.1 or ::1 instead", w[1], w[2]);
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
    /* Mosquitto: the first log_dest replaces the default (stderr); later
     * ones add destinations. */
    const char *v = w[1];
    if (!c->log_dest_set)
        c->log_dest = 0;
    c->log_dest_set = true;
    if (strcmp(v, "stdout") == 0)
        c->log_dest |= TM_LOGD_STDOUT;
    else if (strcmp(v, "stderr") == 0)
        c->log_dest |= TM_LOGD_STDERR;
    else if (strcmp(v, "none") == 0)
        c->log_dest = 0;
    else if (strcmp(v, "topic") == 0)
        c->log_dest |= TM_LOGD_TOPIC;
    else if (strcmp(v, "syslog") == 0) {
#ifdef __wasi__
        return fail(p, "log_dest syslog: WASI has no syslog; use stderr, file or topic");
#else
        c->log_dest |= TM_LOGD_SYSLOG;
#endif
    } else if (strcmp(v, "file") == 0) {
        const char *path = p->rest + strlen("file");
        while (*path == ' ' || *path == '\t')
            path++;
        if (!*path)
            return fail(p, "log_dest file: missing path");
        if (c->log_file)
            return fail(p, "log_dest file: only one log file may be given (as in Mosquitto)");
        c->log_dest |= TM_LOGD_FILE;
        return set_str(p, w[0], path, &c->log_file);
    } else if (strcmp(v, "dlt") == 0)
        return fail(p, "log_dest dlt: tmqtt is not built with the automotive Diagnostic Log "
                       "and Trace library; use syslog, file, stderr, stdout or topic");
    else
        return fail(p, "log_dest: unknown destination '%s' (stdout, stderr, file PATH, syslog, "
                       "topic or none)", v);
    if (n > 2)
        return fail(p, "log_dest %s: too many values", v);
    return 0;
}

static int k_log_type(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* Mosquitto: the first log_type replaces the default types, later ones
     * add to them. */
    static const struct { const char *name; uint32_t bits; } types[] = {
        {"error", TM_LOG_BIT(TM_LOG_ERR)},
        {"warning", TM_LOG_BIT(TM_LOG_WARN)},
        {"notice", TM_LOG_BIT(TM_LOG_NOTICE)},
        {"information", TM_LOG_BIT(TM_LOG_INFO)},
        {"debug", TM_LOG_BIT(TM_LOG_DEBUG)},
        {"subscribe", TM_LOG_BIT(TM_LOG_SUBSCRIBE)},
        {"unsubscribe", TM_LOG_BIT(TM_LOG_UNSUBSCRIBE)},
        {"websockets", TM_LOG_BIT(TM_LOG_WEBSOCKETS)},
        {"all", TM_LOG_ALL_TYPES},
        {"none", 0},
    };
    if (!c->log_type_set)
        c->log_types = 0;
    c->log_type_set = true;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(w[1], types[i].name) == 0) {
            if (types[i].bits == 0)
                c->log_types = 0;
            c->log_types |= types[i].bits;
            return 0;
        }
    }
    return fail(p, "log_type: unknown type '%s' (debug, error, warning, notice, information, "
                   "subscribe, unsubscribe, websockets, none, all)", w[1]);
}

static int k_log_facility(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 7, &u) < 0)
        return -1;
    c->log_facility = (int)u;   /* local0..local7 */
    return 0;
}

static int k_log_timestamp_format(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* a strftime(3) format: the rest of the line, spaces included */
    if (strlen(p->rest) > 100)
        return fail(p, "%s: longer than 100 characters", w[0]);
    return set_str(p, w[0], p->rest, &c->log_timestamp_format);
}

/* A key that applies to the current listener with per_listener_settings true
 * and to every listener otherwise (Mosquitto's "security options"). The value
 * is stored on the listener when one is open; at the end of parsing
 * without per_listener_settings the last value becomes the global one. */
static int k_allow_zero_length_clientid(tm_config *c, parse_ctx *p, char **w, int n)
{
    bool b;
    if (parse_bool(p, w[0], w[1], &b) < 0)
        return -1;
    if (c->n_listeners > 0)
        c->listeners[c->n_listeners - 1].allow_zero_length_clientid = b;
    else
        c->allow_zero_length_clientid = b;
    c->last_azlc = b;
    return 0;
}

static int k_auto_id_prefix(tm_config *c, parse_ctx *p, char **w, int n)
{
    if (strlen(w[1]) > 64)
        return fail(p, "%s: longer than 64 characters", w[0]);
    if (set_str(p, w[0], w[1], c->n_listeners > 0 ? &c->listeners[c->n_listeners - 1].auto_id_prefix
                                                   : &c->auto_id_prefix) < 0)
        return -1;
    return set_str(p, w[0], w[1], &c->last_prefix);
}

static int k_psk_file(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* Before any listener: for every listener with a psk_hint (Mosquitto).
     * After a listener line: that listener's own. */
    if (c->n_listeners > 0)
        return set_str(p, w[0], w[1], &c->listeners[c->n_listeners - 1].psk_file);
    c->psk_file_line = p->line;
    return set_str(p, w[0], w[1], &c->psk_file);
}

/* max_qos and max_topic_alias: per listener in Mosquitto 2.0; before any
 * listener line, the value for every listener that does not set its own. */
static int k_max_qos(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 2, &u) < 0)
        return -1;
    if (c->n_listeners > 0)
        c->listeners[c->n_listeners - 1].max_qos = (int)u;
    else
        c->max_qos = u;
    return 0;
}

static int k_max_topic_alias(tm_config *c, parse_ctx *p, char **w, int n)
{
    uint32_t u;
    if (parse_u32(p, w[0], w[1], 65535, &u) < 0)
        return -1;
    if (c->n_listeners > 0)
        c->listeners[c->n_listeners - 1].max_topic_alias = (int)u;
    else
        c->max_topic_alias = (uint16_t)u;
    return 0;
}

static int k_mount_point(tm_config *c, parse_ctx *p, char **w, int n)
{
    const char *v = w[1];
    if (!tm_topic_name_valid((const uint8_t *)v, strlen(v)) || v[0] == '$')
        return fail(p, "mount_point '%s': must be a topic name without wildcards, not a "
                       "$-topic", v);
    return set_str(p, w[0], v, &cur_listener(c, p, w[0])->mount_point);
}

static int k_accept_protocol_versions(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* Mosquitto 2.1: "3, 4, 5" (protocol levels: 3.1, 3.1.1, 5.0) */
    uint8_t mask = 0;
    const char *s = p->rest;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        if ((*s != '3' && *s != '4' && *s != '5') || (s[1] && s[1] != ',' && s[1] != ' ' &&
                                                      s[1] != '\t'))
            return fail(p, "accept_protocol_versions: expected a list of 3, 4 and 5 (MQTT 3.1, "
                           "3.1.1, 5.0), got '%s'", p->rest);
        mask |= (uint8_t)(1u << (*s - '0'));
        s++;
    }
    if (!mask)
        return fail(p, "accept_protocol_versions: empty list");
    cur_listener(c, p, w[0])->protocol_versions = mask;
    return 0;
}

static int k_use_subject_as_username(tm_config *c, parse_ctx *p, char **w, int n)
{
    return parse_bool(p, w[0], w[1], &cur_listener(c, p, w[0])->use_subject_as_username);
}

static int load_file(tm_config *c, const char *path, char *err, size_t errcap);

/* Mosquitto's include_dir order: alphabetical, ignoring case, and for the
 * same letter the upper case first (A.conf, a.conf, B.conf, b.conf). */
static int include_cmp(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (; *x && *y; x++, y++) {
        int lx = tolower(*x), ly = tolower(*y);
        if (lx != ly)
            return lx - ly;
        if (*x != *y)
            return isupper(*x) ? -1 : 1;
    }
    return (int)*x - (int)*y;
}

static int k_include_dir(tm_config *c, parse_ctx *p, char **w, int n)
{
    if (c->include_depth > 0)
        return fail(p, "include_dir is only valid in the main configuration file (as in "
                       "Mosquitto)");
    const char *dir = p->rest;
    DIR *d = opendir(dir);
    if (!d)
        return fail(p, "include_dir %s: %s", dir, strerror(errno));
    struct stat main_st;
    bool have_main = c->path && stat(c->path, &main_st) == 0;
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".conf") != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = fail(p, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[count] = strdup(e->d_name))) {
            rc = fail(p, "out of memory");
            break;
        }
        count++;
    }
    closedir(d);
    if (rc == 0 && count)
        qsort(names, count, sizeof *names, include_cmp);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
            rc = fail(p, "include_dir: path too long");
            break;
        }
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (have_main && st.st_dev == main_st.st_dev && st.st_ino == main_st.st_ino) {
            rc = fail(p, "include_dir %s contains the main configuration file", dir);
            break;
        }
        c->include_depth++;
        rc = load_file(c, path, p->err, p->errcap);
        c->include_depth--;
    }
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
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
    bool ws = strcmp(w[1], "websockets") == 0;
    if (!ws && strcmp(w[1], "mqtt") != 0)
        return fail(p, "protocol: expected mqtt or websockets, got '%s'", w[1]);
    tm_listener_cfg *l = cur_listener(c, p, w[0]);
    if (!l)
        return fail(p, "out of memory");
    l->websockets = ws;
    return 0;
}

static int k_websockets_origin(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* repeatable: each line adds one allowed Origin (scheme://host[:port]) */
    if (!strstr(w[1], "://") || strchr(w[1], ',') || w[1][strlen(w[1]) - 1] == '/')
        return fail(p, "websockets_origin: expected an origin like https://example.com:8443, "
                       "got '%s'", w[1]);
    tm_listener_cfg *l = cur_listener(c, p, w[0]);
    char **o = l ? realloc(l->ws_origins, (l->n_ws_origins + 1) * sizeof *o) : NULL;
    if (!o)
        return fail(p, "out of memory");
    l->ws_origins = o;
    if (!(o[l->n_ws_origins] = strdup(w[1])))
        return fail(p, "out of memory");
    l->n_ws_origins++;
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

/* ---- bridges (docs/bridges.md) ------------------------------------------------ */

static tm_bridge_cfg *cur_bridge(tm_config *c, parse_ctx *p, const char *key)
{
    if (c->n_bridges == 0) {
        fail(p, "%s: a bridge key before any `connection NAME`", key);
        return NULL;
    }
    return &c->bridges[c->n_bridges - 1];
}

static int k_connection(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    for (const char *q = w[1]; *q; q++)
        if (!isalnum((unsigned char)*q) && !strchr("-_.", *q))
            return fail(p, "connection %s: a bridge name is letters, digits, '-', '_' and '.'",
                        w[1]);
    for (uint32_t i = 0; i < c->n_bridges; i++)
        if (strcmp(c->bridges[i].name, w[1]) == 0)
            return fail(p, "connection %s: a second bridge of that name (the first is at %s:%d)",
                        w[1], c->bridges[i].file, c->bridges[i].line);
    tm_bridge_cfg *nb = realloc(c->bridges, (c->n_bridges + 1) * sizeof *nb);
    if (!nb)
        return fail(p, "out of memory");
    c->bridges = nb;
    tm_bridge_cfg *br = &nb[c->n_bridges++];
    memset(br, 0, sizeof *br);
    br->version = TM_V311;
    br->keepalive = 60;
    br->restart_base = 5;
    br->restart_cap = 30;
    br->try_private = true;
    br->notifications = true;
    br->outgoing_retain = true;
    br->attempt_unsubscribe = true;
    br->local_clean = -1;
    br->line = p->line;
    br->name = strdup(w[1]);
    br->file = strdup(p->file);
    return br->name && br->file ? 0 : fail(p, "out of memory");
}

/* The words of p->rest; `""` is an empty word (Mosquitto's way to leave a
 * topic pattern or a prefix empty). At most `max`; -1 when there are more. */
static int words(parse_ctx *p, char *buf, size_t cap, char **w, int max)
{
    snprintf(buf, cap, "%s", p->rest);
    int n = 0;
    char *s = buf;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            return n;
        if (n == max)
            return -1;
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = 0;
        if (strcmp(w[n - 1], "\"\"") == 0)
            w[n - 1][0] = 0;
    }
}

static int k_address(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    char buf[2048], *a[32];
    int na = words(p, buf, sizeof buf, a, 32);
    if (na <= 0)
        return fail(p, "%s: expected HOST[:PORT] ... (at most 32)", w[0]);
    for (int i = 0; i < na; i++) {
        char *host = a[i], *port = NULL;
        if (host[0] == '[') {                   /* [v6 address]:port */
            char *e = strchr(host, ']');
            if (!e || (e[1] && e[1] != ':'))
                return fail(p, "%s: '%s': expected [ADDRESS]:PORT", w[0], a[i]);
            *e = 0;
            host++;
            port = e[1] ? e + 2 : NULL;
        } else if (strchr(host, ':') == strrchr(host, ':') && strchr(host, ':')) {
            port = strchr(host, ':');
            *port++ = 0;
        }
        uint32_t pn = 1883;
        if (!*host)
            return fail(p, "%s: '%s': no host", w[0], a[i]);
        if (port && parse_u32(p, w[0], port, 65535, &pn) < 0)
            return -1;
        if (pn == 0)
            return fail(p, "%s: '%s': port 0", w[0], a[i]);
        tm_bridge_addr *na2 = realloc(br->addrs, (br->n_addrs + 1) * sizeof *na2);
        if (!na2)
            return fail(p, "out of memory");
        br->addrs = na2;
        na2[br->n_addrs] = (tm_bridge_addr){.host = strdup(host), .port = (uint16_t)pn};
        if (!na2[br->n_addrs++].host)
            return fail(p, "out of memory");
    }
    return 0;
}

static bool has_wildcard(const char *s) { return strchr(s, '+') || strchr(s, '#'); }

static int k_topic(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    char buf[2048], *a[6];
    int na = words(p, buf, sizeof buf, a, 5);
    if (na < 1 || na == 4)
        return fail(p, "topic: expected PATTERN [[[out|in|both] QOS] LOCAL_PREFIX REMOTE_PREFIX]");
    tm_bridge_topic t = {.dir = TM_BRIDGE_OUT};
    if (na >= 2) {
        if (strcmp(a[1], "out") == 0)
            t.dir = TM_BRIDGE_OUT;
        else if (strcmp(a[1], "in") == 0)
            t.dir = TM_BRIDGE_IN;
        else if (strcmp(a[1], "both") == 0)
            t.dir = TM_BRIDGE_BOTH;
        else
            return fail(p, "topic %s: direction '%s': expected out, in or both", a[0], a[1]);
    }
    if (na >= 3) {
        if (!a[2][0] || a[2][1] || a[2][0] < '0' || a[2][0] > '2')
            return fail(p, "topic %s: QoS '%s': expected 0, 1 or 2", a[0], a[2]);
        t.qos = (uint8_t)(a[2][0] - '0');
    }
    const char *lp = na == 5 ? a[3] : "", *rp = na == 5 ? a[4] : "";
    if (has_wildcard(lp) || has_wildcard(rp))
        return fail(p, "topic %s: a prefix may not contain + or #", a[0]);
    if (!a[0][0] && !lp[0] && !rp[0])
        return fail(p, "topic: an empty pattern needs a prefix (it is then the whole topic)");
    char full[1200];
    const char *sides[2] = {lp, rp};
    for (int i = 0; i < 2; i++) {
        snprintf(full, sizeof full, "%s%s", sides[i], a[0]);
        if (!tm_topic_filter_valid((const uint8_t *)full, strlen(full)))
            return fail(p, "topic %s: '%s' is not a valid topic filter", a[0], full);
        if (strncmp(full, "$share/", 7) == 0)
            return fail(p, "topic %s: a bridge topic cannot be a shared subscription", a[0]);
    }
    tm_bridge_topic *nt = realloc(br->topics, (br->n_topics + 1) * sizeof *nt);
    if (!nt)
        return fail(p, "out of memory");
    br->topics = nt;
    t.pattern = strdup(a[0]);
    t.local_prefix = strdup(lp);
    t.remote_prefix = strdup(rp);
    nt[br->n_topics++] = t;
    if (!t.pattern || !t.local_prefix || !t.remote_prefix)
        return fail(p, "out of memory");
    return 0;
}

static int k_bridge_protocol_version(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    if (strcmp(w[1], "mqttv31") == 0)
        br->version = TM_V31;
    else if (strcmp(w[1], "mqttv311") == 0)
        br->version = TM_V311;
    else if (strcmp(w[1], "mqttv50") == 0)
        br->version = TM_V5;
    else
        return fail(p, "bridge_protocol_version: expected mqttv31, mqttv311 or mqttv50, got '%s'",
                    w[1]);
    return 0;
}

static int k_restart_timeout(tm_config *c, parse_ctx *p, char **w, int n)
{
    /* restart_timeout BASE [CAP]: one value is a constant delay; two are the
     * range of Mosquitto's randomised exponential back-off */
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    uint32_t base, cap;
    if (parse_u32(p, w[0], w[1], 86400, &base) < 0)
        return -1;
    cap = base;
    if (n > 2 && parse_u32(p, w[0], w[2], 86400, &cap) < 0)
        return -1;
    if (base == 0 || cap < base)
        return fail(p, "restart_timeout: expected BASE [CAP] with 0 < BASE <= CAP (seconds)");
    br->restart_base = base;
    br->restart_cap = cap;
    return 0;
}

static int k_local_cleansession(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    bool v;
    if (!br || parse_bool(p, w[0], w[1], &v) < 0)
        return -1;
    br->local_clean = v;
    return 0;
}

static int k_start_type(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    if (!cur_bridge(c, p, w[0]))
        return -1;
    if (strcmp(w[1], "automatic") == 0)
        return 0;
    if (strcmp(w[1], "lazy") == 0 || strcmp(w[1], "once") == 0)
        return fail(p, "start_type %s: not implemented: tmqtt's bridges start with the broker "
                       "and reconnect after every loss (start_type automatic)", w[1]);
    return fail(p, "start_type: expected automatic, lazy or once, got '%s'", w[1]);
}

static int k_bridge_psk(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    size_t l = strlen(w[1]);
    for (size_t i = 0; i < l; i++)
        if (!isxdigit((unsigned char)w[1][i]))
            return fail(p, "bridge_psk: expected the key in hexadecimal");
    if (l < 2 || l % 2)
        return fail(p, "bridge_psk: expected an even number of hexadecimal digits");
    return set_str(p, w[0], w[1], &br->psk);
}

static int k_bridge_attestation_opt(tm_config *c, parse_ctx *p, char **w, int n)
{
    tm_bridge_cfg *br = cur_bridge(c, p, w[0]);
    if (!br)
        return -1;
    if (n > 2 || !strchr(w[1], '=') || strchr(w[1], ','))
        return fail(p, "bridge_attestation_opt: expected key=value (no spaces or commas)");
    size_t ol = br->attestation_provider_opts ? strlen(br->attestation_provider_opts) : 0;
    char *o = realloc(br->attestation_provider_opts, ol + strlen(w[1]) + 2);
    if (!o)
        return fail(p, "out of memory");
    snprintf(o + ol, strlen(w[1]) + 2, "%s%s", ol ? "," : "", w[1]);
    br->attestation_provider_opts = o;
    return 0;
}

static int k_bridge_require_ocsp(tm_config *c, parse_ctx *p, char **w, int n)
{
    (void)n;
    bool v;
    if (!cur_bridge(c, p, w[0]) || parse_bool(p, w[0], w[1], &v) < 0)
        return -1;
    if (v)
        return fail(p, "bridge_require_ocsp true: not implemented (the remote broker's "
                       "certificate is checked against bridge_cafile/bridge_capath without "
                       "OCSP); leave it false");
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
    bool bridge;             /* stored in the current bridge */
    uint8_t max_words;       /* words on the line, key included (0: 2) */
    size_t off;              /* offset in tm_config or tm_listener_cfg */
    uint64_t max;
    const char *choices;
    key_fn fn;
    const char *why;
} key_def;

#define G(f) offsetof(tm_config, f)
#define L(f) offsetof(tm_listener_cfg, f)
#define B(f) .bridge = true, .off = offsetof(tm_bridge_cfg, f)

/* The reasons shared by families of refused keys. */
#define WHY_LAZY                                                                            \
    "accepted and without effect: it only applies to start_type lazy, which tmqtt does not " \
    "implement"
#define WHY_PLUGIN                                                                          \
    "Mosquitto plugins are not loaded: their ABI (mosquitto_plugin.h, mosquitto_broker.h) " \
    "is Mosquitto's own. Use password_file (mosquitto_passwd or tmqtt-passwd format) and "  \
    "acl_file for authentication and access control, TLS client certificates "             \
    "(require_certificate, use_identity_as_username) or attested TLS "                      \
    "(require_client_attestation, `attested` ACL blocks); see "                             \
    "docs/migrating-from-mosquitto.md"
#define WHY_ENGINE                                                                          \
    "OpenSSL engines are deprecated in OpenSSL 3 and tmqtt does not load them; keep the "   \
    "key in a PEM keyfile"
#define PLUGIN(k) {k, K_REFUSE, .why = WHY_PLUGIN}

/* A name ending in '*' is a prefix (auth_opt_*). */
static const key_def keys[] = {
    /* listeners */
    {"listener", K_FN, .max_words = 3, .fn = k_listener},
    {"port", K_FN, .fn = k_port},
    {"bind_address", K_STR, true, .off = L(host)},
    {"bind_interface", K_STR, true, .off = L(bind_interface)},
    {"max_connections", K_FN, .fn = k_max_connections},
    {"protocol", K_FN, .fn = k_protocol},
    /* WebSockets */
    {"http_dir", K_STR, true, .off = L(http_dir)},
    {"websockets_origin", K_FN, .fn = k_websockets_origin},
    {"websockets_headers_size", K_U32, .off = G(websockets_headers_size), .max = 65536},
    {"websockets_log_level", K_U32, .off = G(websockets_log_level), .max = UINT32_MAX},
    {"socket_domain", K_ACCEPT, .choices = "ipv4|ipv6",
     .why = "the listener's address decides the family"},
    {"set_tcp_nodelay", K_ACCEPT, .choices = "true|false",
     .why = "tmqtt always sets TCP_NODELAY and batches its writes per loop iteration"},
    {"mount_point", K_FN, .fn = k_mount_point},
    {"max_qos", K_FN, .fn = k_max_qos},
    {"maximum_qos", K_FN, .fn = k_max_qos},
    {"max_topic_alias", K_FN, .fn = k_max_topic_alias},
    {"use_username_as_clientid", K_BOOL, true, .off = L(use_username_as_clientid)},
    {"accept_protocol_versions", K_FN, .max_words = 4, .fn = k_accept_protocol_versions},
    /* authentication and authorisation */
    {"allow_anonymous", K_FN, .fn = k_allow_anonymous},
    {"per_listener_settings", K_BOOL, .off = G(per_listener_settings)},
    {"password_file", K_FN, .fn = k_password_file},
    {"acl_file", K_FN, .fn = k_acl_file},
    {"psk_file", K_FN, .fn = k_psk_file},
    {"allow_zero_length_clientid", K_FN, .fn = k_allow_zero_length_clientid},
    {"auto_id_prefix", K_FN, .fn = k_auto_id_prefix},
    {"clientid_prefixes", K_STR, .off = G(clientid_prefixes)},
    {"check_retain_source", K_BOOL, .off = G(check_retain_source)},
    PLUGIN("auth_plugin"),
    PLUGIN("plugin"),
    PLUGIN("auth_opt_*"),
    PLUGIN("plugin_opt_*"),
    PLUGIN("auth_plugin_deny_special_chars"),
    PLUGIN("global_plugin"),
    PLUGIN("global_plugin_opt_*"),
    PLUGIN("plugin_load"),
    PLUGIN("plugin_use"),
    /* limits */
    {"max_packet_size", K_FN, .fn = k_max_packet_size},
    {"message_size_limit", K_FN, .fn = k_message_size_limit},
    {"max_inflight_messages", K_FN, .fn = k_max_inflight},
    {"max_inflight_bytes", K_U64, .off = G(max_inflight_bytes), .max = UINT64_MAX},
    {"max_queued_messages", K_U32, .off = G(max_queued), .max = UINT32_MAX},
    {"max_queued_bytes", K_U64, .off = G(max_queued_bytes), .max = UINT64_MAX},
    {"max_keepalive", K_U16, .off = G(max_keepalive), .max = 65535},
    {"retain_available", K_BOOL, .off = G(retain_available)},
    {"retain_expiry_interval", K_U32, .off = G(retain_expiry_interval), .max = UINT32_MAX},
    {"queue_qos0_messages", K_BOOL, .off = G(queue_qos0)},
    {"upgrade_outgoing_qos", K_BOOL, .off = G(upgrade_outgoing_qos)},
    {"allow_duplicate_messages", K_ACCEPT, .choices = "true|false",
     .why = "tmqtt delivers a message once per client even when several of its "
            "subscriptions match (MQTT's rule), which either value permits"},
    {"memory_limit", K_ACCEPT, .choices = "0",
     .why = "tmqtt does not count its heap allocations, so it cannot enforce a heap limit; "
            "bound memory with max_queued_messages, max_queued_bytes, max_packet_size and "
            "the service manager (systemd MemoryMax=)"},
    {"handshake_timeout", K_FN, .fn = k_handshake_timeout},
    /* sessions and persistence */
    {"persistence", K_BOOL, .off = G(persistence)},
    {"persistence_location", K_STR, .off = G(persistence_location)},
    {"persistence_file", K_STR, .off = G(persistence_file)},
    {"persistence_seal", K_STR, .max_words = 3, .off = G(persistence_seal)},
    {"persistence_sync_interval", K_U32, .off = G(persistence_sync_ms), .max = 60000},
    {"autosave_interval", K_U32, .off = G(autosave_interval), .max = UINT32_MAX},
    {"autosave_on_changes", K_BOOL, .off = G(autosave_on_changes)},
    {"persistent_client_expiration", K_FN, .fn = k_persistent_client_expiration},
    /* logging and $SYS */
    {"sys_interval", K_U32, .off = G(sys_interval), .max = 86400},
    {"log_dest", K_FN, .max_words = 4, .fn = k_log_dest},
    {"log_type", K_FN, .fn = k_log_type},
    {"log_facility", K_FN, .fn = k_log_facility},
    {"log_timestamp", K_BOOL, .off = G(log_timestamp)},
    {"log_timestamp_format", K_FN, .max_words = 4, .fn = k_log_timestamp_format},
    {"connection_messages", K_BOOL, .off = G(connection_messages)},
    /* running as a service */
    {"pid_file", K_STR, .off = G(pid_file)},
    {"user", K_STR, .off = G(user)},
    {"include_dir", K_FN, .max_words = 4, .fn = k_include_dir},
    /* TLS, per listener */
    {"certfile", K_STR, true, .off = L(certfile)},
    {"keyfile", K_STR, true, .off = L(keyfile)},
    {"cafile", K_STR, true, .off = L(cafile)},
    {"capath", K_STR, true, .off = L(capath)},
    {"crlfile", K_STR, true, .off = L(crlfile)},
    {"dhparamfile", K_STR, true, .off = L(dhparamfile)},
    {"psk_hint", K_STR, true, .off = L(psk_hint)},
    {"ciphers", K_STR, true, .off = L(ciphers)},
    {"ciphers_tls1.3", K_STR, true, .off = L(ciphers_tls13)},
    {"tls_version", K_CHOICE, true, .off = L(tls_version), .choices = "tlsv1.2|tlsv1.3",
     .why = "TLS 1.1 is not offered: OpenSSL 3 refuses it at its default security level"},
    {"require_certificate", K_BOOL, true, .off = L(require_certificate)},
    {"use_identity_as_username", K_BOOL, true, .off = L(use_identity_as_username)},
    {"use_subject_as_username", K_FN, .fn = k_use_subject_as_username},
    {"tls_record_layer", K_CHOICE, .off = G(tls_record_layer), .choices = "openssl|tmqtt"},
    {"tls_keyform", K_ACCEPT, .choices = "pem", .why = WHY_ENGINE},
    {"tls_engine", K_REFUSE, .why = WHY_ENGINE},
    {"tls_engine_kpass_sha1", K_REFUSE, .why = WHY_ENGINE},
    /* attested TLS, per listener */
    {"attestation_provider", K_CHOICE, true, .off = L(attestation_provider),
     .choices = "none|sim|gramine|tsm"},
    {"attestation_formats", K_STR, true, .off = L(attestation_formats)},
    {"attestation_opt", K_FN, .max_words = 3, .fn = k_attestation_opt},
    {"attestation_key_lifetime", K_FN, .fn = k_attestation_key_lifetime},
    {"require_client_attestation", K_BOOL, true, .off = L(require_client_attestation)},
    {"attestation_refresh_interval", K_U32, .off = G(attestation_refresh_s), .max = 86400},
    {"client_attestation_policy", K_STR, true, .off = L(client_attestation_policy)},
    /* bridges (issue 11): every key of Mosquitto's bridge section */
    /* bridges (docs/bridges.md) */
    {"connection", K_FN, .fn = k_connection},
    {"address", K_FN, .max_words = 4, .fn = k_address},
    {"addresses", K_FN, .max_words = 4, .fn = k_address},
    {"topic", K_FN, .max_words = 4, .fn = k_topic},
    {"bridge_protocol_version", K_FN, .fn = k_bridge_protocol_version},
    {"round_robin", K_BOOL, B(round_robin)},
    {"cleansession", K_BOOL, B(cleansession)},
    {"local_cleansession", K_FN, .fn = k_local_cleansession},
    {"local_clientid", K_STR, B(local_clientid)},
    {"remote_clientid", K_STR, B(remote_clientid)},
    {"clientid", K_STR, B(remote_clientid)},
    {"remote_username", K_STR, B(remote_username)},
    {"username", K_STR, B(remote_username)},
    {"remote_password", K_STR, B(remote_password)},
    {"password", K_STR, B(remote_password)},
    {"local_username", K_STR, B(local_username)},
    {"local_password", K_ACCEPT, .bridge = true, .choices = "*",
     .why = "the bridge's local side needs no password: it is inside the broker"},
    {"keepalive_interval", K_U16, B(keepalive), .max = 65535},
    {"restart_timeout", K_FN, .max_words = 3, .fn = k_restart_timeout},
    {"try_private", K_BOOL, B(try_private)},
    {"notifications", K_BOOL, B(notifications)},
    {"notifications_local_only", K_BOOL, B(notifications_local_only)},
    {"notification_topic", K_STR, B(notification_topic)},
    {"start_type", K_FN, .fn = k_start_type},
    {"idle_timeout", K_ACCEPT, .bridge = true, .choices = "#", .why = WHY_LAZY},
    {"threshold", K_ACCEPT, .bridge = true, .choices = "#", .why = WHY_LAZY},
    {"bridge_attempt_unsubscribe", K_BOOL, B(attempt_unsubscribe)},
    {"bridge_outgoing_retain", K_BOOL, B(outgoing_retain)},
    {"bridge_max_packet_size", K_U32, B(max_packet_size), .max = 268435460},
    {"bridge_receive_maximum", K_U16, B(receive_max), .max = 65535},
    {"bridge_session_expiry_interval", K_U32, B(session_expiry), .max = UINT32_MAX},
    {"bridge_max_topic_alias", K_U16, B(max_topic_alias), .max = 65535},
    {"bridge_cafile", K_STR, B(cafile)},
    {"bridge_capath", K_STR, B(capath)},
    {"bridge_certfile", K_STR, B(certfile)},
    {"bridge_keyfile", K_STR, B(keyfile)},
    {"bridge_insecure", K_BOOL, B(insecure)},
    {"bridge_tls_use_os_certs", K_BOOL, B(use_os_certs)},
    {"bridge_tls_version", K_CHOICE, B(tls_version), .choices = "tlsv1.2|tlsv1.3"},
    {"bridge_alpn", K_STR, B(alpn)},
    {"bridge_psk", K_FN, .fn = k_bridge_psk},
    {"bridge_identity", K_STR, B(psk_identity)},
    {"bridge_require_ocsp", K_FN, .fn = k_bridge_require_ocsp},
    {"bridge_bind_address", K_REFUSE,
     .why = "not implemented: the bridge connects from the address the routing table picks"},
    {"bridge_attestation_policy", K_STR, B(attestation_policy)},
    {"bridge_attestation_provider", K_CHOICE, B(attestation_provider),
     .choices = "none|sim|gramine|tsm"},
    {"bridge_attestation_opt", K_FN, .fn = k_bridge_attestation_opt},
};

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t l = strlen(keys[i].name);
        if (keys[i].name[l - 1] == '*' && strncmp(keys[i].name, name, l - 1) == 0)
            return &keys[i];
    }
    return NULL;
}

/* Is v one of "a|b|c"? ("*": anything, "#": a decimal number) */
static bool one_of(const char *v, const char *choices)
{
    if (strcmp(choices, "*") == 0)
        return true;
    if (strcmp(choices, "#") == 0)
        return *v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 10;
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
        return fail(p, "%s: %s", w[0], k->why);
    if (n < 2)
        return fail(p, "%s: missing value", k->name);
    if (n > (k->max_words ? k->max_words : 2))
        return fail(p, "%s: too many values", k->name);
    if (k->kind == K_FN)
        return k->fn(c, p, w, n);
    const char *v = w[1];
    char *base = k->listener ? (char *)cur_listener(c, p, k->name)
                 : k->bridge ? (char *)cur_bridge(c, p, k->name) : (char *)c;
    if (!base)
        return k->bridge ? -1 : fail(p, "out of memory");
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
            return fail(p, "%s: expected %s%s, got '%s'%s%s%s", k->name,
                        strchr(k->choices, '|') ? "one of " : "",
                        strcmp(k->choices, "#") ? k->choices : "a number", v,
                        k->why ? " (" : "", k->why ? k->why : "", k->why ? ")" : "");
        if (k->kind == K_ACCEPT)
            return 0;
        return set_str(p, k->name, v, field);
    default:
        if (n > 2) {   /* a value of several words: kept as written */
            char joined[2048];
            snprintf(joined, sizeof joined, "%s %s", w[1], w[2]);
            return set_str(p, k->name, joined, field);
        }
        return set_str(p, k->name, v, field);
    }
}

static int load_file(tm_config *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    parse_ctx p = {.file = path, .err = err, .errcap = errcap};
    char line[4096], rest[4096];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        p.line++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = fail(&p, "line too long");
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
            line[--len] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        /* the text after the key, before split() cuts it into words */
        const char *r = s + strcspn(s, " \t");
        r += strspn(r, " \t");
        memcpy(rest, r, strlen(r) + 1);
        p.rest = rest;
        char *w[4];
        int n = split(s, w, 4);
        if (handle_line(c, &p, w, n) < 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int finish_bridge(tm_config *c, tm_bridge_cfg *br, parse_ctx *p)
{
    p->file = br->file;
    p->line = br->line;
    const char *nm = br->name;
    if (!br->n_addrs)
        return fail(p, "connection %s: no address", nm);
    if (!br->n_topics)
        return fail(p, "connection %s: no topic", nm);
    char host[256] = "tmqtt";
#ifndef __wasi__
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "tmqtt");
    host[sizeof host - 1] = 0;
#endif
    char id[600];
    if (!br->remote_clientid) {   /* Mosquitto's defaults */
        snprintf(id, sizeof id, "%s.%s", host, nm);
        if (!(br->remote_clientid = strdup(id)))
            return fail(p, "out of memory");
    }
    if (!br->local_clientid) {
        snprintf(id, sizeof id, "local.%s.%s", host, nm);
        if (!(br->local_clientid = strdup(id)))
            return fail(p, "out of memory");
    }
    if (br->local_clean < 0)
        br->local_clean = br->cleansession;
    for (tm_bridge_cfg *o = c->bridges; o < br; o++)
        if (strcmp(o->local_clientid, br->local_clientid) == 0)
            return fail(p, "connection %s: local_clientid '%s' is also bridge %s's", nm,
                        br->local_clientid, o->name);
    if ((br->certfile != NULL) != (br->keyfile != NULL))
        return fail(p, "connection %s: bridge_certfile and bridge_keyfile must be given together",
                    nm);
    if ((br->psk != NULL) != (br->psk_identity != NULL))
        return fail(p, "connection %s: bridge_psk and bridge_identity must be given together",
                    nm);
    bool tls = br->cafile || br->capath || br->use_os_certs || br->psk;
    if (br->psk && (br->cafile || br->capath || br->use_os_certs))
        return fail(p, "connection %s: bridge_psk excludes certificate verification "
                       "(bridge_cafile, bridge_capath, bridge_tls_use_os_certs)", nm);
    if (!tls && (br->certfile || br->insecure || br->tls_version || br->alpn))
        return fail(p, "connection %s: TLS options without a way to verify the remote broker: "
                       "give bridge_cafile, bridge_capath or bridge_tls_use_os_certs", nm);
    bool attest = br->attestation_policy ||
                  (br->attestation_provider && strcmp(br->attestation_provider, "none") != 0);
    if (attest && (!tls || br->psk))
        return fail(p, "connection %s: bridge attestation needs TLS 1.3 with certificates "
                       "(bridge_cafile, bridge_capath or bridge_tls_use_os_certs)", nm);
    if (attest && br->tls_version && strcmp(br->tls_version, "tlsv1.3") != 0)
        return fail(p, "connection %s: bridge attestation needs TLS 1.3 (bridge_tls_version "
                       "%s)", nm, br->tls_version);
    if (br->attestation_provider_opts &&
        !(br->attestation_provider && strcmp(br->attestation_provider, "none") != 0))
        return fail(p, "connection %s: bridge_attestation_opt without "
                       "bridge_attestation_provider", nm);
    if (br->version != TM_V5 && (br->receive_max || br->session_expiry || br->max_topic_alias ||
                                 br->max_packet_size))
        return fail(p, "connection %s: bridge_receive_maximum, bridge_session_expiry_interval, "
                       "bridge_max_topic_alias and bridge_max_packet_size need "
                       "bridge_protocol_version mqttv50", nm);
    if (br->keepalive && br->keepalive < 5)
        return fail(p, "connection %s: keepalive_interval below 5 seconds", nm);
    return 0;
}

/* Checks and defaults that need the whole configuration. */
static int finish(tm_config *c, parse_ctx *p)
{
    for (uint32_t i = 0; i < c->n_bridges; i++)
        if (finish_bridge(c, &c->bridges[i], p) < 0)
            return -1;
    if (!c->per_listener_settings) {
        /* the "security options" are global: the last value wins, as in Mosquitto */
        if (c->allow_anonymous_set)
            c->allow_anonymous = c->last_anon;
        if (c->last_azlc >= 0)
            c->allow_zero_length_clientid = c->last_azlc;
        if (c->last_prefix) {
            free(c->auto_id_prefix);
            c->auto_id_prefix = c->last_prefix;
            c->last_prefix = NULL;
        }
        for (uint32_t i = 0; i < c->n_listeners; i++) {
            c->listeners[i].allow_anonymous = -1;
            c->listeners[i].allow_zero_length_clientid = -1;
            free(c->listeners[i].auto_id_prefix);
            c->listeners[i].auto_id_prefix = NULL;
        }
    } else if (c->password_file || c->acl_file) {
        p->line = c->password_file ? c->password_file_line : c->acl_file_line;
        return fail(p, "%s with per_listener_settings true: tmqtt has one password file and "
                       "one ACL file for all listeners (per-listener ones are not implemented), "
                       "so it cannot apply this file to one listener only as Mosquitto would; "
                       "use per_listener_settings false (allow_anonymous, psk_file, "
                       "allow_zero_length_clientid and auto_id_prefix may still differ per "
                       "listener with per_listener_settings true when no password_file or "
                       "acl_file is given)",
                    c->password_file ? "password_file" : "acl_file");
    }
    for (uint32_t i = 0; i < c->n_listeners; i++) {
        tm_listener_cfg *l = &c->listeners[i];
        p->file = l->file ? l->file : p->file;
        p->line = l->line;
        if (l->psk_hint && !l->psk_file) {
            if (!c->psk_file)
                return fail(p, "listener %u: psk_hint needs a psk_file", l->port);
            if (!(l->psk_file = strdup(c->psk_file)))
                return fail(p, "out of memory");
        }
        if ((l->certfile != NULL) != (l->keyfile != NULL))
            return fail(p, "listener %u: certfile and keyfile must be given together", l->port);
        if (!l->websockets && (l->http_dir || l->n_ws_origins))
            return fail(p, "listener %u: %s needs protocol websockets", l->port,
                        l->http_dir ? "http_dir" : "websockets_origin");
        if (l->require_client_attestation && !l->certfile)
            return fail(p, "listener %u: require_client_attestation needs a TLS listener "
                           "(certfile/keyfile)", l->port);
        if (l->require_client_attestation && !l->client_attestation_policy)
            return fail(p, "listener %u: require_client_attestation needs "
                           "client_attestation_policy", l->port);
    }
    return 0;
}

int tm_config_load(tm_config *c, const char *path, char *err, size_t errcap)
{
    free(c->path);
    c->path = strdup(path);
    if (load_file(c, path, err, errcap) < 0)
        return -1;
    parse_ctx p = {.file = path, .err = err, .errcap = errcap};
    return finish(c, &p);
}
