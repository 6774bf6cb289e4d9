/*
 * tools_common.c — option parsing and connection set-up shared by tmqtt-pub
 * and tmqtt-sub. Flags follow mosquitto_pub / mosquitto_sub so that scripts
 * can switch tools by changing the program name; where mosquitto has a flag
 * we do not implement, we say so instead of ignoring it.
 *
 * Invariant: after tm_tools_parse returns 0, t->copt is complete except for
 * the host (resolved in tm_tools_connect) and the attestation hooks.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "tools/tools_common.h"

void tm_tools_err(const tm_tool *t, const char *fmt, ...)
{
    if (t->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: Error: ", t->prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(const tm_tool *t)
{
    bool pub = t->kind == TM_TOOL_PUB;
    printf("%s — %s\n\n", t->prog,
           pub ? "publish MQTT messages (flags as mosquitto_pub)"
               : "subscribe to MQTT topics and print messages (flags as mosquitto_sub)");
    if (pub)
        printf("Usage: %s [-h host] [-p port] -t topic {-m message | -f file | -s | -l | -n}\n"
               "          [-q qos] [-r] [--repeat N] [--repeat-delay seconds]\n", t->prog);
    else
        printf("Usage: %s [-h host] [-p port] {-t filter ...} [-U filter ...] [-q qos]\n"
               "          [-C count] [-W seconds] [-v] [-N] [-R] [--retained-only] [-E]\n"
               "          [-F format | --json] [--nl] [--rap] [--retain-handling 0|1|2]\n", t->prog);
    printf("          [-i id] [-I id_prefix] [-c] [-k keepalive] [-x session_expiry]\n"
           "          [-u username [-P password]] [-V 5|311|31|mqttv5|mqttv311|mqttv31]\n"
           "          [--will-topic t [--will-payload p] [--will-qos q] [--will-retain]]\n"
           "          [--cafile f | --capath d] [--cert f --key f] [--insecure]\n"
           "          [--psk hex --psk-identity id] [--tls-version tlsv1.2|tlsv1.3]\n"
           "          [--ciphers list] [--ciphersuites list] [--tls] [--keylog file]\n"
           "          [--attest] [--attest-policy file] [--attest-show] [--attest-format name]\n"
           "          [--attest-provider sim|gramine|tsm] [--attest-provider-opt k=v,...]\n"
           "          [-D command identifier value [value]] [-d] [--quiet] [--help]\n\n"
           " -D: MQTT v5 properties. command: connect, publish, subscribe, unsubscribe,\n"
           "     disconnect, will. identifier: user-property (key value), content-type,\n"
           "     message-expiry-interval, response-topic, correlation-data,\n"
           "     payload-format-indicator, session-expiry-interval, receive-maximum,\n"
           "     maximum-packet-size, topic-alias-maximum, topic-alias,\n"
           "     subscription-identifier, request-problem-information,\n"
           "     request-response-information, will-delay-interval.\n");
    if (!pub)
        printf(" -F: %%t topic, %%p payload, %%q qos, %%r retain, %%l length, %%m message id,\n"
               "     %%I ISO-8601 time, %%U unix time, %%j JSON, %%x/%%X hex payload,\n"
               "     %%C content type, %%D correlation data, %%E expiry, %%F payload format,\n"
               "     %%P user properties, %%R response topic, %%S subscription ids, %%%%;\n"
               "     \\n \\t \\\\ escapes. -F json is the same as --json.\n"
               " Exit status: 0 ok, 1 error, 27 timeout (-W).\n");
    printf(" Environment: SSLKEYLOGFILE writes TLS secrets in NSS key log format.\n");
}

/* ---- value parsing ----------------------------------------------------------- */

static int parse_ulong(tm_tool *t, const char *opt, const char *s, unsigned long max,
                       unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > max || s[0] == '-') {
        tm_tools_err(t, "%s: '%s' is not a number in 0..%lu", opt, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

static uint8_t *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return NULL;
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap > 268435455 ? NULL : realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(b);
                return NULL;
            }
            break;
        }
    }
    *len = n;
    return b;
}

/* ---- -D properties -------------------------------------------------------------- */

enum { C_CONNECT = 1, C_PUBLISH = 2, C_SUBSCRIBE = 4, C_UNSUBSCRIBE = 8, C_DISCONNECT = 16,
       C_WILL = 32 };

typedef struct {
    const char *name;
    uint8_t id;
    char kind;         /* b byte, h u16, w u32, v vbi, s string, d binary, p pair */
    unsigned allowed;  /* C_* */
} prop_def;

static const prop_def prop_defs[] = {
    {"payload-format-indicator", TM_P_PAYLOAD_FORMAT, 'b', C_PUBLISH | C_WILL},
    {"message-expiry-interval", TM_P_MESSAGE_EXPIRY, 'w', C_PUBLISH | C_WILL},
    {"content-type", TM_P_CONTENT_TYPE, 's', C_PUBLISH | C_WILL},
    {"response-topic", TM_P_RESPONSE_TOPIC, 's', C_PUBLISH | C_WILL},
    {"correlation-data", TM_P_CORRELATION_DATA, 'd', C_PUBLISH | C_WILL},
    {"subscription-identifier", TM_P_SUB_ID, 'v', C_SUBSCRIBE},
    {"session-expiry-interval", TM_P_SESSION_EXPIRY, 'w', C_CONNECT | C_DISCONNECT},
    {"request-problem-information", TM_P_REQUEST_PROBLEM_INFO, 'b', C_CONNECT},
    {"request-response-information", TM_P_REQUEST_RESPONSE_INFO, 'b', C_CONNECT},
    {"will-delay-interval", TM_P_WILL_DELAY, 'w', C_WILL},
    {"receive-maximum", TM_P_RECEIVE_MAX, 'h', C_CONNECT},
    {"topic-alias-maximum", TM_P_TOPIC_ALIAS_MAX, 'h', C_CONNECT},
    {"topic-alias", TM_P_TOPIC_ALIAS, 'h', C_PUBLISH},
    {"maximum-packet-size", TM_P_MAX_PACKET_SIZE, 'w', C_CONNECT},
    {"user-property", TM_P_USER_PROPERTY, 'p',
     C_CONNECT | C_PUBLISH | C_SUBSCRIBE | C_UNSUBSCRIBE | C_DISCONNECT | C_WILL},
};

static tm_tool_props *cmd_props(tm_tool *t, const char *cmd, unsigned *bit)
{
    static const struct { const char *n; unsigned b; } cmds[] = {
        {"connect", C_CONNECT}, {"publish", C_PUBLISH}, {"subscribe", C_SUBSCRIBE},
        {"unsubscribe", C_UNSUBSCRIBE}, {"disconnect", C_DISCONNECT}, {"will", C_WILL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcasecmp(cmd, cmds[i].n)) {
            *bit = cmds[i].b;
            switch (cmds[i].b) {
            case C_CONNECT: return &t->p_connect;
            case C_PUBLISH: return &t->p_publish;
            case C_SUBSCRIBE: return &t->p_subscribe;
            case C_UNSUBSCRIBE: return &t->p_unsubscribe;
            case C_DISCONNECT: return &t->p_disconnect;
            default: return &t->p_will;
            }
        }
    return NULL;
}

/* -D command identifier value [value]; *used = argv entries consumed. */
static int parse_prop(tm_tool *t, int argc, char **argv, int i, int *used)
{
    if (i + 3 >= argc) {
        tm_tools_err(t, "-D needs a command, an identifier and a value");
        return -1;
    }
    unsigned bit;
    tm_tool_props *tp = cmd_props(t, argv[i + 1], &bit);
    if (!tp) {
        tm_tools_err(t, "-D: unknown command '%s'", argv[i + 1]);
        return -1;
    }
    if (t->kind == TM_TOOL_PUB && (bit & (C_SUBSCRIBE | C_UNSUBSCRIBE))) {
        tm_tools_err(t, "-D %s is not used by %s", argv[i + 1], t->prog);
        return -1;
    }
    if (t->kind == TM_TOOL_SUB && bit == C_PUBLISH) {
        tm_tools_err(t, "-D publish is not used by %s", t->prog);
        return -1;
    }
    const prop_def *d = NULL;
    for (size_t k = 0; k < sizeof prop_defs / sizeof prop_defs[0]; k++)
        if (!strcasecmp(argv[i + 2], prop_defs[k].name))
            d = &prop_defs[k];
    if (!d) {
        tm_tools_err(t, "-D: unknown or unsupported property '%s'", argv[i + 2]);
        return -1;
    }
    if (!(d->allowed & bit)) {
        tm_tools_err(t, "-D: property '%s' is not allowed on %s", d->name, argv[i + 1]);
        return -1;
    }
    const char *v = argv[i + 3];
    tm_props *p = &tp->props;
    unsigned long n = 0;
    *used = 4;
    switch (d->kind) {
    case 'b':
        if (parse_ulong(t, d->name, v, 1, &n) < 0)
            return -1;
        break;
    case 'h':
        if (parse_ulong(t, d->name, v, 65535, &n) < 0)
            return -1;
        break;
    case 'w':
        if (parse_ulong(t, d->name, v, 4294967295ul, &n) < 0)
            return -1;
        break;
    case 'v':
        if (parse_ulong(t, d->name, v, TM_MAX_VBI, &n) < 0 || n == 0) {
            if (n == 0)
                tm_tools_err(t, "subscription-identifier must be 1..%u", TM_MAX_VBI);
            return -1;
        }
        break;
    default:
        break;
    }
    if (d->kind != 'p' && (p->present & TM_PBIT(d->id))) {
        tm_tools_err(t, "-D %s %s given twice", argv[i + 1], d->name);
        return -1;
    }
    p->present |= TM_PBIT(d->id);
    tm_str s = {(const uint8_t *)v, (uint32_t)strlen(v)};
    switch (d->id) {
    case TM_P_PAYLOAD_FORMAT: p->payload_format = (uint8_t)n; break;
    case TM_P_MESSAGE_EXPIRY: p->message_expiry = (uint32_t)n; break;
    case TM_P_CONTENT_TYPE: p->content_type = s; break;
    case TM_P_RESPONSE_TOPIC:
        if (!tm_topic_name_valid(s.p, s.len)) {
            tm_tools_err(t, "invalid response topic '%s'", v);
            return -1;
        }
        p->response_topic = s;
        break;
    case TM_P_CORRELATION_DATA: p->correlation_data = s; break;
    case TM_P_SUB_ID: p->sub_ids[0] = (uint32_t)n; p->n_sub_ids = 1; break;
    case TM_P_SESSION_EXPIRY:
        p->session_expiry = (uint32_t)n;
        if (bit == C_CONNECT) {
            t->copt.session_expiry = (uint32_t)n;
            t->session_expiry_set = true;
            p->present &= ~TM_PBIT(TM_P_SESSION_EXPIRY);   /* sent via copt */
        }
        break;
    case TM_P_REQUEST_PROBLEM_INFO: p->request_problem_info = (uint8_t)n; break;
    case TM_P_REQUEST_RESPONSE_INFO: p->request_response_info = (uint8_t)n; break;
    case TM_P_WILL_DELAY: p->will_delay = (uint32_t)n; break;
    case TM_P_RECEIVE_MAX:
        if (n == 0) {
            tm_tools_err(t, "receive-maximum must be 1..65535");
            return -1;
        }
        p->receive_max = (uint16_t)n;
        break;
    case TM_P_TOPIC_ALIAS_MAX: p->topic_alias_max = (uint16_t)n; break;
    case TM_P_TOPIC_ALIAS:
        if (n == 0) {
            tm_tools_err(t, "topic-alias must be 1..65535");
            return -1;
        }
        p->topic_alias = (uint16_t)n;
        break;
    case TM_P_MAX_PACKET_SIZE:
        if (n == 0) {
            tm_tools_err(t, "maximum-packet-size must be at least 1");
            return -1;
        }
        p->max_packet_size = (uint32_t)n;
        break;
    case TM_P_USER_PROPERTY:
        if (i + 4 >= argc) {
            tm_tools_err(t, "-D %s user-property needs a key and a value", argv[i + 1]);
            return -1;
        }
        tm_user_prop_add(&tp->user, v, argv[i + 4]);
        *used = 5;
        break;
    }
    return 0;
}

static int parse_version(tm_tool *t, const char *v)
{
    if (!strcmp(v, "5") || !strcasecmp(v, "mqttv5"))
        t->copt.version = TM_V5;
    else if (!strcmp(v, "311") || !strcasecmp(v, "mqttv311"))
        t->copt.version = TM_V311;
    else if (!strcmp(v, "31") || !strcasecmp(v, "mqttv31"))
        t->copt.version = TM_V31;
    else {
        tm_tools_err(t, "unknown protocol version '%s' (5, 311, 31, mqttv5, mqttv311, mqttv31)", v);
        return -1;
    }
    return 0;
}

static int set_msg(tm_tool *t, tm_msg_mode m)
{
    if (t->msg_mode != TM_MSG_NONE) {
        tm_tools_err(t, "only one of -m, -f, -s, -l, -n may be given");
        return -1;
    }
    t->msg_mode = m;
    return 0;
}

int tm_tools_parse(tm_tool *t, tm_tool_kind kind, int argc, char **argv)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    const char *slash = argv[0] ? strrchr(argv[0], '/') : NULL;
    t->prog = slash ? slash + 1 : (argv[0] ? argv[0] : "tmqtt");
    tm_client_opts_init(&t->copt);
    t->copt.port = 0;   /* 1883, or 8883 with TLS, chosen by the library */
    t->repeat = 1;
    tm_buf_init(&t->p_connect.user);
    tm_buf_init(&t->p_publish.user);
    tm_buf_init(&t->p_subscribe.user);
    tm_buf_init(&t->p_unsubscribe.user);
    tm_buf_init(&t->p_disconnect.user);
    tm_buf_init(&t->p_will.user);
    const char *id_prefix = NULL;
    bool clean_off = false;
    const char *will_payload = NULL;
    unsigned long n;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* Options that take no value. */
        if (!strcmp(a, "--help")) {
            usage(t);
            return 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
            t->debug = true;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            t->quiet = true;
            continue;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--disable-clean-session")) {
            clean_off = true;
            continue;
        } else if (!strcmp(a, "--insecure")) {
            t->copt.tls.insecure = true;
            continue;
        } else if (!strcmp(a, "--tls")) {
            t->tls_requested = true;
            continue;
        } else if (!strcmp(a, "--will-retain")) {
            t->copt.will_retain = true;
            continue;
        } else if (!strcmp(a, "--attest")) {
            t->attest.enable = true;
            continue;
        } else if (!strcmp(a, "--attest-show")) {
            t->attest.show = true;
            continue;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-r") || !strcmp(a, "--retain"))) {
            t->retain = true;
            continue;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-s") || !strcmp(a, "--stdin-file"))) {
            if (set_msg(t, TM_MSG_STDIN) < 0)
                return -1;
            continue;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-l") || !strcmp(a, "--stdin-line"))) {
            if (set_msg(t, TM_MSG_LINES) < 0)
                return -1;
            continue;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-n") || !strcmp(a, "--null-message"))) {
            if (set_msg(t, TM_MSG_NULL) < 0)
                return -1;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-v")) {
            t->verbose = true;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-N")) {
            t->no_eol = true;
            continue;
        } else if (kind == TM_TOOL_SUB && (!strcmp(a, "-R") || !strcmp(a, "--no-stale"))) {
            t->no_stale = true;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "--retained-only")) {
            t->retained_only = true;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-E")) {
            t->exit_after_sub = true;
            continue;
        } else if (kind == TM_TOOL_SUB && (!strcmp(a, "--json") || !strcmp(a, "-j"))) {
            t->json = true;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "--nl")) {
            t->no_local = true;
            continue;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "--rap")) {
            t->retain_as_published = true;
            continue;
        } else if (!strcmp(a, "-D") || !strcmp(a, "--property")) {
            int used;
            if (parse_prop(t, argc, argv, i, &used) < 0)
                return -1;
            i += used - 1;
            continue;
        }

        /* Options with one value. */
        if (i + 1 >= argc || a[0] != '-') {
            if (a[0] != '-')
                tm_tools_err(t, "unexpected argument '%s' (see --help)", a);
            else
                tm_tools_err(t, "option %s needs a value (see --help)", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-h") || !strcmp(a, "--host")) {
            t->host_arg = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--port")) {
            if (parse_ulong(t, a, v, 65535, &n) < 0 || n == 0) {
                if (n == 0)
                    tm_tools_err(t, "port must be 1..65535");
                return -1;
            }
            t->copt.port = (uint16_t)n;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--id")) {
            t->copt.client_id = v;
        } else if (!strcmp(a, "-I") || !strcmp(a, "--id-prefix")) {
            id_prefix = v;
        } else if (!strcmp(a, "-k") || !strcmp(a, "--keepalive")) {
            if (parse_ulong(t, a, v, 65535, &n) < 0)
                return -1;
            t->copt.keep_alive = (uint16_t)n;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--qos")) {
            if (parse_ulong(t, a, v, 2, &n) < 0)
                return -1;
            t->qos = (int)n;
        } else if (!strcmp(a, "-u") || !strcmp(a, "--username")) {
            t->copt.username = v;
        } else if (!strcmp(a, "-P") || !strcmp(a, "--pw")) {
            t->copt.password = v;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--protocol-version")) {
            if (parse_version(t, v) < 0)
                return -1;
        } else if (!strcmp(a, "-x") || !strcmp(a, "--session-expiry-interval")) {
            if (!strcmp(v, "-1") || !strcmp(v, "∞"))
                n = 4294967295ul;
            else if (parse_ulong(t, a, v, 4294967295ul, &n) < 0)
                return -1;
            t->copt.session_expiry = (uint32_t)n;
            t->session_expiry_set = true;
        } else if (!strcmp(a, "--will-topic")) {
            t->copt.will_topic = v;
        } else if (!strcmp(a, "--will-payload")) {
            will_payload = v;
        } else if (!strcmp(a, "--will-qos")) {
            if (parse_ulong(t, a, v, 2, &n) < 0)
                return -1;
            t->copt.will_qos = (uint8_t)n;
        } else if (!strcmp(a, "--cafile")) {
            t->copt.tls.cafile = v;
        } else if (!strcmp(a, "--capath")) {
            t->copt.tls.capath = v;
        } else if (!strcmp(a, "--cert")) {
            t->copt.tls.certfile = v;
        } else if (!strcmp(a, "--key")) {
            t->copt.tls.keyfile = v;
        } else if (!strcmp(a, "--psk")) {
            t->copt.tls.psk_hex = v;
        } else if (!strcmp(a, "--psk-identity")) {
            t->copt.tls.psk_identity = v;
        } else if (!strcmp(a, "--tls-version")) {
            if (strcasecmp(v, "tlsv1.3") && strcasecmp(v, "tlsv1.2")) {
                tm_tools_err(t, "--tls-version: use tlsv1.3 or tlsv1.2");
                return -1;
            }
            /* As in mosquitto: exactly this version. */
            t->copt.tls.min_version = v;
            t->copt.tls.max_version = v;
        } else if (!strcmp(a, "--ciphers")) {
            t->copt.tls.ciphers = v;
        } else if (!strcmp(a, "--ciphersuites") || !strcmp(a, "--tls13-ciphers")) {
            t->copt.tls.ciphersuites = v;
        } else if (!strcmp(a, "--keylog")) {
            t->copt.tls.keylog_file = v;
        } else if (!strcmp(a, "--sni")) {
            t->copt.sni = v;
        } else if (!strcmp(a, "--attest-policy")) {
            t->attest.policy = v;
        } else if (!strcmp(a, "--attest-format")) {
            t->attest.format = v;
        } else if (!strcmp(a, "--attest-provider")) {
            t->attest.provider = v;
        } else if (!strcmp(a, "--attest-provider-opt")) {
            t->attest.provider_opts = v;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-t") || !strcmp(a, "--topic"))) {
            if (t->topic) {
                tm_tools_err(t, "only one -t topic may be given");
                return -1;
            }
            t->topic = v;
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-m") || !strcmp(a, "--message"))) {
            if (set_msg(t, TM_MSG_ARG) < 0)
                return -1;
            t->message = (const uint8_t *)v;
            t->message_len = strlen(v);
        } else if (kind == TM_TOOL_PUB && (!strcmp(a, "-f") || !strcmp(a, "--file"))) {
            if (set_msg(t, TM_MSG_FILE) < 0)
                return -1;
            FILE *f = fopen(v, "rb");
            if (!f) {
                tm_tools_err(t, "cannot open %s: %s", v, strerror(errno));
                return -1;
            }
            t->owned = read_all(f, &t->message_len);
            fclose(f);
            if (!t->owned) {
                tm_tools_err(t, "cannot read %s", v);
                return -1;
            }
            t->message = t->owned;
        } else if (kind == TM_TOOL_PUB && !strcmp(a, "--repeat")) {
            if (parse_ulong(t, a, v, 1000000000ul, &n) < 0 || n == 0) {
                if (n == 0)
                    tm_tools_err(t, "--repeat must be at least 1");
                return -1;
            }
            t->repeat = (long)n;
        } else if (kind == TM_TOOL_PUB && !strcmp(a, "--repeat-delay")) {
            char *end;
            t->repeat_delay = strtod(v, &end);
            if (*end || t->repeat_delay < 0) {
                tm_tools_err(t, "--repeat-delay: '%s' is not a number of seconds", v);
                return -1;
            }
        } else if (kind == TM_TOOL_SUB && (!strcmp(a, "-t") || !strcmp(a, "--topic"))) {
            if (t->nfilters == TM_TOOL_MAX_TOPICS) {
                tm_tools_err(t, "too many -t filters (max %d)", TM_TOOL_MAX_TOPICS);
                return -1;
            }
            t->filters[t->nfilters++] = v;
        } else if (kind == TM_TOOL_SUB && (!strcmp(a, "-U") || !strcmp(a, "--unsubscribe"))) {
            if (t->nunsub == TM_TOOL_MAX_TOPICS) {
                tm_tools_err(t, "too many -U filters (max %d)", TM_TOOL_MAX_TOPICS);
                return -1;
            }
            t->unsub[t->nunsub++] = v;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-C")) {
            if (parse_ulong(t, a, v, 1000000000ul, &n) < 0 || n == 0) {
                if (n == 0)
                    tm_tools_err(t, "-C must be at least 1");
                return -1;
            }
            t->count = (long)n;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-W")) {
            if (parse_ulong(t, a, v, 86400ul * 365, &n) < 0 || n == 0) {
                if (n == 0)
                    tm_tools_err(t, "-W must be at least 1 second");
                return -1;
            }
            t->timeout_s = (long)n;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "-F")) {
            if (!strcasecmp(v, "json"))
                t->json = true;
            else
                t->format = v;
        } else if (kind == TM_TOOL_SUB && !strcmp(a, "--retain-handling")) {
            if (parse_ulong(t, a, v, 2, &n) < 0)
                return -1;
            t->retain_handling = (int)n;
        } else {
            tm_tools_err(t, "unknown option %s (see --help)", a);
            return -1;
        }
    }

    /* Cross-checks. */
    if (kind == TM_TOOL_PUB) {
        if (!t->topic) {
            tm_tools_err(t, "a topic is needed (-t)");
            return -1;
        }
        if (t->msg_mode == TM_MSG_NONE) {
            tm_tools_err(t, "a message is needed (-m, -f, -s, -l or -n)");
            return -1;
        }
        if (t->msg_mode == TM_MSG_STDIN) {
            t->owned = read_all(stdin, &t->message_len);
            if (!t->owned) {
                tm_tools_err(t, "cannot read stdin");
                return -1;
            }
            t->message = t->owned;
        }
    } else if (t->nfilters == 0 && t->nunsub == 0) {
        tm_tools_err(t, "at least one topic filter is needed (-t or -U)");
        return -1;
    }
    if (id_prefix) {
        snprintf(t->id_buf, sizeof t->id_buf, "%s%d", id_prefix, (int)getpid());
        t->copt.client_id = t->id_buf;
    } else if (!t->copt.client_id) {
        snprintf(t->id_buf, sizeof t->id_buf, "%s-%d",
                 kind == TM_TOOL_PUB ? "tmqtt-pub" : "tmqtt-sub", (int)getpid());
        t->copt.client_id = t->id_buf;
    }
    t->copt.clean_start = !clean_off;
    if (clean_off && t->copt.version == TM_V5 && !t->session_expiry_set)
        t->copt.session_expiry = 4294967295u;   /* mosquitto: -c means "keep it" */
    if (t->copt.version != TM_V5 &&
        (t->session_expiry_set || t->p_connect.props.present || t->p_connect.user.len ||
         t->p_publish.props.present || t->p_publish.user.len || t->p_subscribe.props.present ||
         t->p_subscribe.user.len || t->p_will.props.present || t->p_will.user.len ||
         t->p_disconnect.props.present || t->p_disconnect.user.len)) {
        tm_tools_err(t, "properties (-D, -x) need MQTT v5 (-V 5)");
        return -1;
    }
    if (t->copt.password && !t->copt.username && t->copt.version != TM_V5) {
        tm_tools_err(t, "a password (-P) needs a username (-u) before MQTT v5");
        return -1;
    }
    if (t->copt.will_topic) {
        if (will_payload) {
            t->copt.will_payload = will_payload;
            t->copt.will_payload_len = strlen(will_payload);
        }
    } else if (will_payload || t->copt.will_qos || t->copt.will_retain) {
        tm_tools_err(t, "will options need --will-topic");
        return -1;
    }
    if (kind == TM_TOOL_PUB && t->topic &&
        !(t->p_publish.props.present & TM_PBIT(TM_P_TOPIC_ALIAS) && !*t->topic) &&
        (!tm_utf8_valid((const uint8_t *)t->topic, strlen(t->topic)) ||
         !tm_topic_name_valid((const uint8_t *)t->topic, strlen(t->topic)))) {
        tm_tools_err(t, "invalid publish topic '%s' (no wildcards, not empty)", t->topic);
        return -1;
    }
    for (int k = 0; k < t->nfilters; k++)
        if (!tm_topic_filter_valid((const uint8_t *)t->filters[k], strlen(t->filters[k]))) {
            tm_tools_err(t, "invalid subscription topic filter '%s'", t->filters[k]);
            return -1;
        }
    if (t->tls_requested)
        t->copt.tls.enable = true;
    if (t->attest.enable || t->attest.policy || t->attest.show || t->attest.format ||
        t->attest.provider)
        t->copt.tls.enable = true;   /* attestation rides on TLS 1.3 */
    t->attest.json = t->json;

    /* Point the option structs at the property sets. */
    tm_tool_props *all[] = {&t->p_connect, &t->p_publish, &t->p_subscribe, &t->p_unsubscribe,
                            &t->p_disconnect, &t->p_will};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k]->user.len)
            tm_props_set_user(&all[k]->props, &all[k]->user);
    if (t->copt.version == TM_V5) {
        t->copt.connect_props = &t->p_connect.props;
        t->copt.will_props = &t->p_will.props;
        if (t->p_connect.props.present & TM_PBIT(TM_P_RECEIVE_MAX))
            t->copt.receive_max = t->p_connect.props.receive_max;
        if (t->p_connect.props.present & TM_PBIT(TM_P_MAX_PACKET_SIZE))
            t->copt.max_packet_size = t->p_connect.props.max_packet_size;
        if (t->p_connect.props.present & TM_PBIT(TM_P_TOPIC_ALIAS_MAX))
            t->copt.topic_alias_max = t->p_connect.props.topic_alias_max;
    }
    if (t->debug)
        t->copt.trace = stderr;
    return 0;
}

void tm_tools_free(tm_tool *t)
{
    free(t->owned);
    t->owned = NULL;
    tm_buf_free(&t->p_connect.user);
    tm_buf_free(&t->p_publish.user);
    tm_buf_free(&t->p_subscribe.user);
    tm_buf_free(&t->p_unsubscribe.user);
    tm_buf_free(&t->p_disconnect.user);
    tm_buf_free(&t->p_will.user);
}

/* The library takes numeric addresses only (the WASI build has no resolver);
 * the tools resolve names here and keep the name for SNI and the certificate
 * host check. */
static int resolve(tm_tool *t)
{
    const char *h = t->host_arg && *t->host_arg ? t->host_arg : "localhost";
    unsigned char tmp[16];
    if (!strcmp(h, "localhost") || inet_pton(AF_INET, h, tmp) == 1 ||
        inet_pton(AF_INET6, h, tmp) == 1) {
        snprintf(t->host, sizeof t->host, "%s", h);
        t->copt.host = t->host;
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0 || !res) {
        tm_tools_err(t, "cannot resolve host '%s': %s", h, gai_strerror(rc));
        return -1;
    }
    void *addr = res->ai_family == AF_INET
                     ? (void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                     : (void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    inet_ntop(res->ai_family, addr, t->host, sizeof t->host);
    freeaddrinfo(res);
    t->copt.host = t->host;
    if (!t->copt.sni)
        t->copt.sni = h;
    return 0;
}

int tm_tools_connect(tm_tool *t, tm_client **out)
{
    char err[512];
    if (resolve(t) < 0)
        return -1;
    if (t->attest.enable || t->attest.policy || t->attest.show || t->attest.format ||
        t->attest.provider) {
        if (tm_tools_attest_setup(&t->attest, &t->copt, err, sizeof err) < 0) {
            tm_tools_err(t, "%s", err);
            return -1;
        }
    }
    if (tm_sync_connect(&t->copt, TM_TOOL_TIMEOUT_MS, out, err, sizeof err) < 0) {
        tm_tools_err(t, "%s", err);
        return -1;
    }
    return 0;
}

/* ======================================================================
 * ATTESTATION HOOK — attested TLS 1.3 (src/attest/atls.h, docs/attested-tls.md).
 * Any --attest* flag requests evidence and requires it: the server's answer
 * is appraised under --attest-policy (none: an empty policy, which accepts nothing) after
 * the handshake and before CONNECT. --attest-format restricts the formats
 * requested. --attest-show prints the claims on stdout (JSON when the tool
 * prints JSON: sub -F json / --json). For mutual attestation the client's own
 * evidence comes from $TMQTT_ATTEST_PROVIDER (sim, gramine, tsm) with options
 * --attest-provider NAME and --attest-provider-opt "key=PATH,measurement=HEX"
 * (environment fallback: $TMQTT_ATTEST_PROVIDER, $TMQTT_ATTEST_PROVIDER_OPTS).
 * ====================================================================== */
#include "client/atls_client.h"

static tm_atls_client *tools_atls;
static SSL_CTX *tools_atls_ctx;   /* the context attach built, if it did */

static void tools_atls_cleanup(void)
{
    SSL_CTX_free(tools_atls_ctx);
    tools_atls_ctx = NULL;
    tm_atls_client_free(tools_atls);
    tools_atls = NULL;
}

int tm_tools_attest_setup(const tm_tool_attest *a, tm_client_opts *o, char *err,
                          size_t errcap)
{
    tm_atls_client_opts ao = {
        .require = true,
        .policy_file = a->policy,
        .formats = a->format,
        .show = a->show ? stdout : NULL,
        .show_json = a->json,
        .provider = a->provider ? a->provider : getenv("TMQTT_ATTEST_PROVIDER"),
        .provider_opts = a->provider_opts ? a->provider_opts
                                          : getenv("TMQTT_ATTEST_PROVIDER_OPTS"),
    };
    if (!tools_atls) {
        tools_atls = tm_atls_client_new(&ao, err, errcap);
        if (!tools_atls)
            return -1;
    }
    static bool registered;
    bool had_ctx = o->ssl_ctx != NULL;
    int rc = tm_atls_client_attach(o, tools_atls, err, errcap);
    if (rc == 0 && !had_ctx && !tools_atls_ctx)
        tools_atls_ctx = o->ssl_ctx;
    if (!registered) {
        /* registered after OpenSSL's own exit handler (the context exists
         * now), so it runs before OPENSSL_cleanup frees the ex_data machinery */
        registered = true;
        atexit(tools_atls_cleanup);
    }
    return rc;
}
