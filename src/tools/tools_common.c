/*
 * tools_common.c — option parsing and connection set-up shared by tmqtt-pub
 * and tmqtt-sub. Flags follow mosquitto_pub / mosquitto_sub so that scripts
 * can switch tools by changing the program name; where mosquitto has a flag
 * we do not implement, we say so instead of ignoring it.
 *
 * Options are one table (tool_opts: long name, short letter, which tool,
 * and either the field it sets or the function that checks it), turned into
 * getopt_long's arguments for the tool at hand. -D is the one option with
 * several words (COMMAND IDENTIFIER VALUE [VALUE]): getopt hands over COMMAND,
 * parse_prop consumes the rest by advancing optind.
 *
 * Invariant: after tm_tools_parse returns 0, t->copt is complete except for
 * the host (resolved in tm_tools_connect) and the attestation hooks.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "net/sock.h"
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


/* Stores the value v (number n) of property d, given on -D for command `bit`. */
static int store_prop(tm_tool *t, tm_props *p, const prop_def *d, unsigned bit, const char *v,
                      unsigned long n)
{
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
    case TM_P_SUB_ID:
        p->sub_ids[0] = (uint32_t)n;
        p->n_sub_ids = 1;
        break;
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
    case TM_P_RECEIVE_MAX: p->receive_max = (uint16_t)n; break;
    case TM_P_TOPIC_ALIAS: p->topic_alias = (uint16_t)n; break;
    case TM_P_MAX_PACKET_SIZE: p->max_packet_size = (uint32_t)n; break;
    case TM_P_TOPIC_ALIAS_MAX: p->topic_alias_max = (uint16_t)n; break;
    default: break;
    }
    return 0;
}

/* The property definition of IDENT for -D CMD, checked against the tool and the
 * command; NULL after an error message. */
static const prop_def *find_prop(tm_tool *t, const char *cmd, const char *ident,
                                 tm_tool_props **tp, unsigned *bit)
{
    *tp = cmd_props(t, cmd, bit);
    if (!*tp) {
        tm_tools_err(t, "-D: unknown command '%s'", cmd);
        return NULL;
    }
    if ((t->kind == TM_TOOL_PUB && (*bit & (C_SUBSCRIBE | C_UNSUBSCRIBE))) ||
        (t->kind == TM_TOOL_SUB && *bit == C_PUBLISH)) {
        tm_tools_err(t, "-D %s is not used by %s", cmd, t->prog);
        return NULL;
    }
    const prop_def *d = NULL;
    for (size_t k = 0; k < sizeof prop_defs / sizeof prop_defs[0]; k++)
        if (!strcasecmp(ident, prop_defs[k].name))
            d = &prop_defs[k];
    if (!d) {
        tm_tools_err(t, "-D: unknown or unsupported property '%s'", ident);
        return NULL;
    }
    if (!(d->allowed & *bit)) {
        tm_tools_err(t, "-D: property '%s' is not allowed on %s", d->name, cmd);
        return NULL;
    }
    return d;
}

/* -D COMMAND IDENTIFIER VALUE [VALUE2]: getopt gives COMMAND; the words after it
 * are argv[*next], argv[*next + 1] (and + 2 for user-property), which are
 * consumed by advancing *next. */
static int parse_prop(tm_tool *t, const char *cmd, int argc, char **argv, int *next)
{
    int i = *next;
    if (i + 1 >= argc) {
        tm_tools_err(t, "-D needs a command, an identifier and a value");
        return -1;
    }
    const char *v = argv[i + 1];
    tm_tool_props *tp;
    unsigned bit;
    const prop_def *d = find_prop(t, cmd, argv[i], &tp, &bit);
    if (!d)
        return -1;
    tm_props *p = &tp->props;
    *next = i + 2;
    if (d->kind == 'p') {   /* user-property KEY VALUE: may repeat */
        if (i + 2 >= argc) {
            tm_tools_err(t, "-D %s user-property needs a key and a value", cmd);
            return -1;
        }
        tm_user_prop_add(&tp->user, v, argv[i + 2]);
        p->present |= TM_PBIT(d->id);
        *next = i + 3;
        return 0;
    }
    unsigned long n = 0;
    static const unsigned long max_of[] = {['b'] = 1, ['h'] = 65535, ['w'] = 4294967295ul,
                                           ['v'] = TM_MAX_VBI};
    if (strchr("bhwv", d->kind) && parse_ulong(t, d->name, v, max_of[(int)d->kind], &n) < 0)
        return -1;
    bool nonzero = d->id == TM_P_SUB_ID || d->id == TM_P_RECEIVE_MAX ||
                   d->id == TM_P_TOPIC_ALIAS || d->id == TM_P_MAX_PACKET_SIZE;
    if (nonzero && n == 0) {
        tm_tools_err(t, "%s must be at least 1", d->name);
        return -1;
    }
    if (p->present & TM_PBIT(d->id)) {
        tm_tools_err(t, "-D %s %s given twice", cmd, d->name);
        return -1;
    }
    p->present |= TM_PBIT(d->id);
    return store_prop(t, p, d, bit, v, n);
}

/* ---- the option engine (shared with tmqtt-bench) ------------------------------- */

const char *tm_opt_name(const tm_optdef *o, char *buf, size_t cap)
{
    if (o->lng)
        snprintf(buf, cap, "--%s", o->lng);
    else
        snprintf(buf, cap, "-%c", o->shrt);
    return buf;
}

static void opt_err(const tm_optparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void opt_err(const tm_optparse *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->err(p->ctx, msg);
}

/* Stores v in an unsigned integer field of `size` bytes. */
static void store_uint(char *field, unsigned char size, unsigned long v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;
    uint64_t u64 = v;
    const void *src = size == 1 ? (const void *)&u8 : size == 2 ? (const void *)&u16
                    : size == 4 ? (const void *)&u32 : (const void *)&u64;
    memcpy(field, src, size);
}

/* Flags, strings and numbers go straight into the target; the rest to fn. */
static int apply_opt(const tm_optparse *p, const tm_optdef *o, const char *arg)
{
    char *field = (char *)p->target + o->off, name[48], *end;
    tm_opt_name(o, name, sizeof name);
    errno = 0;
    switch (o->type) {
    case TM_OPT_FLAG: *(bool *)field = true; return 0;
    case TM_OPT_STR: *(const char **)field = arg; return 0;
    case TM_OPT_UINT: {
        unsigned long v = strtoul(arg, &end, 10);
        if (!*arg || *end || errno || arg[0] == '-' || (double)v < o->min || (double)v > o->max) {
            opt_err(p, "%s: '%s' is not a whole number in %.0f..%.0f", name, arg, o->min, o->max);
            return -1;
        }
        store_uint(field, o->size, v);
        return 0;
    }
    case TM_OPT_DBL: {
        double v = strtod(arg, &end);
        if (!*arg || *end || errno || !(v >= o->min) || v > o->max || (o->above_min && v == o->min)) {
            opt_err(p, "%s: '%s' is not a number in %c%g, %g]", name, arg,
                    o->above_min ? '(' : '[', o->min, o->max);
            return -1;
        }
        memcpy(field, &v, sizeof v);
        return 0;
    }
    default: return o->fn(p->ctx, o, arg);
    }
}

/* getopt_long's view of the table for one program: short letters map to
 * themselves, long-only options to 256 + their index in the table. */
typedef struct getopt_spec {
    char shorts[2 + 2 * TM_OPT_MAX + 1];
    struct option longs[TM_OPT_MAX + 1];
} getopt_spec;

static void build_getopt(const tm_optparse *p, getopt_spec *g)
{
    size_t ns = 0, nl = 0;
    g->shorts[ns++] = '+';   /* no permutation: there are no positional arguments */
    g->shorts[ns++] = ':';   /* a missing value is reported as ':' */
    for (size_t i = 0; i < p->ndefs && i < TM_OPT_MAX; i++) {
        const tm_optdef *o = &p->defs[i];
        if (!(o->kinds & p->kind))
            continue;
        bool arg = o->type != TM_OPT_FLAG && o->type != TM_OPT_FN;
        if (o->shrt) {
            g->shorts[ns++] = (char)o->shrt;
            if (arg)
                g->shorts[ns++] = ':';
        }
        if (o->lng)
            g->longs[nl++] = (struct option){o->lng, arg ? required_argument : no_argument, NULL,
                                             o->shrt ? o->shrt : 256 + (int)i};
    }
    g->shorts[ns] = 0;
    g->longs[nl] = (struct option){0, 0, 0, 0};
}

static const tm_optdef *find_opt(const tm_optparse *p, int c)
{
    if (c >= 256)
        return (size_t)(c - 256) < p->ndefs ? &p->defs[c - 256] : NULL;
    for (size_t i = 0; i < p->ndefs; i++)
        if (p->defs[i].shrt == c && (p->defs[i].kinds & p->kind))
            return &p->defs[i];
    return NULL;
}

int tm_opts_parse(const tm_optparse *p)
{
    getopt_spec g;
    build_getopt(p, &g);
    optind = 0;   /* full re-initialisation: a program may parse twice */
    opterr = 0;   /* our own messages */
    int ch;
    while ((ch = getopt_long(p->argc, p->argv, g.shorts, g.longs, NULL)) != -1) {
        /* The word getopt stopped at: "--name[=v]" or "-x" (or a cluster "-vx"). */
        const char *bad = p->argv[optind - 1];
        char shown[8];
        if (strncmp(bad, "--", 2) && optopt > 0 && optopt < 256) {
            snprintf(shown, sizeof shown, "-%c", optopt);
            bad = shown;
        }
        if (ch == ':') {
            opt_err(p, "option %s needs a value (see --help)", bad);
            return -1;
        }
        const tm_optdef *o = ch == '?' ? NULL : find_opt(p, ch);
        if (!o) {
            opt_err(p, "unknown option %s (see --help)", bad);
            return -1;
        }
        int r = apply_opt(p, o, optarg);
        if (r != 0)
            return r;
    }
    if (optind < p->argc) {
        opt_err(p, "unexpected argument '%s' (see --help)", p->argv[optind]);
        return -1;
    }
    return 0;
}

/* ---- the options of tmqtt-pub and tmqtt-sub ---------------------------------------- */

/* State that only matters while parsing. */
typedef struct parse_ctx {
    tm_tool *t;
    int argc;
    char **argv;
    const char *id_prefix;
    const char *will_payload;
    bool clean_off;
} parse_ctx;

enum { K_PUB = 1u << TM_TOOL_PUB, K_SUB = 1u << TM_TOOL_SUB, K_ALL = K_PUB | K_SUB };

#define FLAG(l, s, k, f) TM_OPTDEF_FLAG(tm_tool, l, s, k, f)
#define STR(l, s, k, f) TM_OPTDEF_STR(tm_tool, l, s, k, f)
#define NUM(l, s, k, f, lo, hi) TM_OPTDEF_UINT(tm_tool, l, s, k, f, lo, hi)
#define FN0(l, s, k, fn) TM_OPTDEF_FN(l, s, k, fn)
#define FN1(l, s, k, fn) TM_OPTDEF_FNARG(l, s, k, fn)

static void tool_err(void *ctx, const char *msg)
{
    tm_tools_err(((parse_ctx *)ctx)->t, "%s", msg);
}

static int o_help(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o, (void)arg;
    usage(((parse_ctx *)ctx)->t);
    return 1;
}

static int o_clean_off(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o, (void)arg;
    ((parse_ctx *)ctx)->clean_off = true;
    return 0;
}

static int o_msg_mode(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)arg;
    return set_msg(((parse_ctx *)ctx)->t, o->shrt == 's' ? TM_MSG_STDIN
                                          : o->shrt == 'l' ? TM_MSG_LINES : TM_MSG_NULL);
}

static int o_property(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    parse_ctx *c = ctx;
    return parse_prop(c->t, arg, c->argc, c->argv, &optind);
}

static int o_id_prefix(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    ((parse_ctx *)ctx)->id_prefix = arg;
    return 0;
}

static int o_will_payload(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    ((parse_ctx *)ctx)->will_payload = arg;
    return 0;
}

static int o_version(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    return parse_version(((parse_ctx *)ctx)->t, arg);
}

static int o_session_expiry(void *ctx, const tm_optdef *o, const char *arg)
{
    tm_tool *t = ((parse_ctx *)ctx)->t;
    unsigned long n = 4294967295ul;
    if (strcmp(arg, "-1") && strcmp(arg, "∞") && parse_ulong(t, o->lng, arg, n, &n) < 0)
        return -1;
    t->copt.session_expiry = (uint32_t)n;
    t->session_expiry_set = true;
    return 0;
}

static int o_tls_version(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    tm_tool *t = ((parse_ctx *)ctx)->t;
    if (strcasecmp(arg, "tlsv1.3") && strcasecmp(arg, "tlsv1.2")) {
        tm_tools_err(t, "--tls-version: use tlsv1.3 or tlsv1.2");
        return -1;
    }
    /* As in mosquitto: exactly this version. */
    t->copt.tls.min_version = arg;
    t->copt.tls.max_version = arg;
    return 0;
}

static int o_pub_topic(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    tm_tool *t = ((parse_ctx *)ctx)->t;
    if (t->topic) {
        tm_tools_err(t, "only one -t topic may be given");
        return -1;
    }
    t->topic = arg;
    return 0;
}

static int o_message(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    tm_tool *t = ((parse_ctx *)ctx)->t;
    if (set_msg(t, TM_MSG_ARG) < 0)
        return -1;
    t->message = (const uint8_t *)arg;
    t->message_len = strlen(arg);
    return 0;
}

static int o_file(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    tm_tool *t = ((parse_ctx *)ctx)->t;
    if (set_msg(t, TM_MSG_FILE) < 0)
        return -1;
    FILE *f = fopen(arg, "rb");
    if (!f) {
        tm_tools_err(t, "cannot open %s: %s", arg, strerror(errno));
        return -1;
    }
    t->owned = read_all(f, &t->message_len);
    fclose(f);
    if (!t->owned) {
        tm_tools_err(t, "cannot read %s", arg);
        return -1;
    }
    t->message = t->owned;
    return 0;
}

/* -t and -U for tmqtt-sub: up to TM_TOOL_MAX_TOPICS each. */
static int o_filter(void *ctx, const tm_optdef *o, const char *arg)
{
    tm_tool *t = ((parse_ctx *)ctx)->t;
    bool unsub = o->shrt == 'U';
    int *n = unsub ? &t->nunsub : &t->nfilters;
    if (*n == TM_TOOL_MAX_TOPICS) {
        tm_tools_err(t, "too many -%c filters (max %d)", o->shrt, TM_TOOL_MAX_TOPICS);
        return -1;
    }
    (unsub ? t->unsub : t->filters)[(*n)++] = arg;
    return 0;
}

static int o_format(void *ctx, const tm_optdef *o, const char *arg)
{
    (void)o;
    tm_tool *t = ((parse_ctx *)ctx)->t;
    if (!strcasecmp(arg, "json"))
        t->json = true;
    else
        t->format = arg;
    return 0;
}

/* Every flag of tmqtt-pub and tmqtt-sub, with mosquitto_pub/_sub's spelling. */
static const tm_optdef tool_opts[] = {
    FN0("help", 0, K_ALL, o_help),
    FLAG("debug", 'd', K_ALL, debug),
    FLAG("quiet", 0, K_ALL, quiet),
    FN0("disable-clean-session", 'c', K_ALL, o_clean_off),
    FLAG("insecure", 0, K_ALL, copt.tls.insecure),
    FLAG("tls", 0, K_ALL, tls_requested),
    FLAG("will-retain", 0, K_ALL, copt.will_retain),
    FLAG("attest", 0, K_ALL, attest.enable),
    FLAG("attest-show", 0, K_ALL, attest.show),
    FN1("property", 'D', K_ALL, o_property),
    STR("host", 'h', K_ALL, host_arg),
    NUM("port", 'p', K_ALL, copt.port, 1, 65535),
    STR("id", 'i', K_ALL, copt.client_id),
    FN1("id-prefix", 'I', K_ALL, o_id_prefix),
    NUM("keepalive", 'k', K_ALL, copt.keep_alive, 0, 65535),
    NUM("qos", 'q', K_ALL, qos, 0, 2),
    STR("username", 'u', K_ALL, copt.username),
    STR("pw", 'P', K_ALL, copt.password),
    FN1("protocol-version", 'V', K_ALL, o_version),
    FN1("session-expiry-interval", 'x', K_ALL, o_session_expiry),
    STR("will-topic", 0, K_ALL, copt.will_topic),
    FN1("will-payload", 0, K_ALL, o_will_payload),
    NUM("will-qos", 0, K_ALL, copt.will_qos, 0, 2),
    STR("cafile", 0, K_ALL, copt.tls.cafile),
    STR("capath", 0, K_ALL, copt.tls.capath),
    STR("cert", 0, K_ALL, copt.tls.certfile),
    STR("key", 0, K_ALL, copt.tls.keyfile),
    STR("psk", 0, K_ALL, copt.tls.psk_hex),
    STR("psk-identity", 0, K_ALL, copt.tls.psk_identity),
    FN1("tls-version", 0, K_ALL, o_tls_version),
    STR("ciphers", 0, K_ALL, copt.tls.ciphers),
    STR("ciphersuites", 0, K_ALL, copt.tls.ciphersuites),
    STR("tls13-ciphers", 0, K_ALL, copt.tls.ciphersuites),
    STR("keylog", 0, K_ALL, copt.tls.keylog_file),
    STR("sni", 0, K_ALL, copt.sni),
    STR("attest-policy", 0, K_ALL, attest.policy),
    STR("attest-format", 0, K_ALL, attest.format),
    STR("attest-provider", 0, K_ALL, attest.provider),
    STR("attest-provider-opt", 0, K_ALL, attest.provider_opts),
    /* tmqtt-pub */
    FLAG("retain", 'r', K_PUB, retain),
    FN0("stdin-file", 's', K_PUB, o_msg_mode),
    FN0("stdin-line", 'l', K_PUB, o_msg_mode),
    FN0("null-message", 'n', K_PUB, o_msg_mode),
    FN1("topic", 't', K_PUB, o_pub_topic),
    FN1("message", 'm', K_PUB, o_message),
    FN1("file", 'f', K_PUB, o_file),
    NUM("repeat", 0, K_PUB, repeat, 1, 1000000000),
    TM_OPTDEF_DBL(tm_tool, "repeat-delay", 0, K_PUB, repeat_delay, 0, 1e9, false),
    /* tmqtt-sub */
    FLAG("verbose", 'v', K_SUB, verbose),
    FLAG(NULL, 'N', K_SUB, no_eol),
    FLAG("no-stale", 'R', K_SUB, no_stale),
    FLAG("retained-only", 0, K_SUB, retained_only),
    FLAG(NULL, 'E', K_SUB, exit_after_sub),
    FLAG("json", 'j', K_SUB, json),
    FLAG("nl", 0, K_SUB, no_local),
    FLAG("rap", 0, K_SUB, retain_as_published),
    FN1("topic", 't', K_SUB, o_filter),
    FN1("unsubscribe", 'U', K_SUB, o_filter),
    NUM(NULL, 'C', K_SUB, count, 1, 1000000000),
    NUM(NULL, 'W', K_SUB, timeout_s, 1, 86400 * 365),
    FN1(NULL, 'F', K_SUB, o_format),
    NUM("retain-handling", 0, K_SUB, retain_handling, 0, 2),
};

/* ---- after the options: defaults and cross-checks --------------------------------- */

static int finish_message(tm_tool *t)
{
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
    return 0;
}

static bool any_props(const tm_tool *t)
{
    const tm_tool_props *all[] = {&t->p_connect, &t->p_publish, &t->p_subscribe,
                                  &t->p_unsubscribe, &t->p_disconnect, &t->p_will};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k]->props.present || all[k]->user.len)
            return true;
    return false;
}

static int finish_session(parse_ctx *c)
{
    tm_tool *t = c->t;
    if (c->id_prefix) {
        snprintf(t->id_buf, sizeof t->id_buf, "%s%d", c->id_prefix, (int)getpid());
        t->copt.client_id = t->id_buf;
    } else if (!t->copt.client_id) {
        snprintf(t->id_buf, sizeof t->id_buf, "%s-%d",
                 t->kind == TM_TOOL_PUB ? "tmqtt-pub" : "tmqtt-sub", (int)getpid());
        t->copt.client_id = t->id_buf;
    }
    t->copt.clean_start = !c->clean_off;
    if (c->clean_off && t->copt.version == TM_V5 && !t->session_expiry_set)
        t->copt.session_expiry = 4294967295u;   /* mosquitto: -c means "keep it" */
    if (t->copt.version != TM_V5 && (t->session_expiry_set || any_props(t))) {
        tm_tools_err(t, "properties (-D, -x) need MQTT v5 (-V 5)");
        return -1;
    }
    if (t->copt.password && !t->copt.username && t->copt.version != TM_V5) {
        tm_tools_err(t, "a password (-P) needs a username (-u) before MQTT v5");
        return -1;
    }
    if (t->copt.will_topic) {
        if (c->will_payload) {
            t->copt.will_payload = c->will_payload;
            t->copt.will_payload_len = strlen(c->will_payload);
        }
    } else if (c->will_payload || t->copt.will_qos || t->copt.will_retain) {
        tm_tools_err(t, "will options need --will-topic");
        return -1;
    }
    return 0;
}

static int check_topics(tm_tool *t)
{
    if (t->kind == TM_TOOL_PUB && t->topic &&
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
    return 0;
}

/* Point the option structs at the property sets; TLS on when asked for. */
static void link_options(tm_tool *t)
{
    if (t->tls_requested)
        t->copt.tls.enable = true;
    if (t->attest.enable || t->attest.policy || t->attest.show || t->attest.format ||
        t->attest.provider)
        t->copt.tls.enable = true;   /* attestation rides on TLS 1.3 */
    t->attest.json = t->json;
    tm_tool_props *all[] = {&t->p_connect, &t->p_publish, &t->p_subscribe, &t->p_unsubscribe,
                            &t->p_disconnect, &t->p_will};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (all[k]->user.len)
            tm_props_set_user(&all[k]->props, &all[k]->user);
    if (t->copt.version == TM_V5) {
        const tm_props *cp = &t->p_connect.props;
        t->copt.connect_props = cp;
        t->copt.will_props = &t->p_will.props;
        if (cp->present & TM_PBIT(TM_P_RECEIVE_MAX))
            t->copt.receive_max = cp->receive_max;
        if (cp->present & TM_PBIT(TM_P_MAX_PACKET_SIZE))
            t->copt.max_packet_size = cp->max_packet_size;
        if (cp->present & TM_PBIT(TM_P_TOPIC_ALIAS_MAX))
            t->copt.topic_alias_max = cp->topic_alias_max;
    }
    if (t->debug)
        t->copt.trace = stderr;
}

static void tool_init(tm_tool *t, tm_tool_kind kind, const char *argv0)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    t->prog = slash ? slash + 1 : (argv0 ? argv0 : "tmqtt");
    tm_client_opts_init(&t->copt);
    t->copt.port = 0;   /* 1883, or 8883 with TLS, chosen by the library */
    t->repeat = 1;
    tm_buf_init(&t->p_connect.user);
    tm_buf_init(&t->p_publish.user);
    tm_buf_init(&t->p_subscribe.user);
    tm_buf_init(&t->p_unsubscribe.user);
    tm_buf_init(&t->p_disconnect.user);
    tm_buf_init(&t->p_will.user);
}

int tm_tools_parse(tm_tool *t, tm_tool_kind kind, int argc, char **argv)
{
    tool_init(t, kind, argc > 0 ? argv[0] : NULL);
    parse_ctx c = {.t = t, .argc = argc, .argv = argv};
    tm_optparse p = {.defs = tool_opts, .ndefs = sizeof tool_opts / sizeof tool_opts[0],
                     .kind = 1u << kind, .target = t, .ctx = &c, .err = tool_err,
                     .argc = argc, .argv = argv};
    int r = tm_opts_parse(&p);
    if (r != 0)
        return r;
    if (kind == TM_TOOL_PUB && finish_message(t) < 0)
        return -1;
    if (kind == TM_TOOL_SUB && t->nfilters == 0 && t->nunsub == 0) {
        tm_tools_err(t, "at least one topic filter is needed (-t or -U)");
        return -1;
    }
    if (finish_session(&c) < 0 || check_topics(t) < 0)
        return -1;
    link_options(t);
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

/* The library takes numeric addresses; the tools resolve names here and keep
 * the name for SNI and the certificate host check. */
static int resolve(tm_tool *t)
{
    const char *h = t->host_arg && *t->host_arg ? t->host_arg : "localhost";
    char err[300];
    if (tm_sock_resolve(h, t->host, sizeof t->host, err, sizeof err) < 0) {
        tm_tools_err(t, "%s", err);
        return -1;
    }
    t->copt.host = t->host;
    if (!t->copt.sni && strcmp(h, t->host) != 0)
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
