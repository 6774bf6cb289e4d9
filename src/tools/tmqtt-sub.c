/*
 * tmqtt-sub — subscribe to topic filters and print the messages that arrive,
 * as mosquitto_sub does: payload per line, -v "topic payload", -F format
 * strings, or one JSON object per line (--json / -F json). Stops after -C
 * messages, after -W seconds (exit 27), after the subscription with -E, at
 * the first non-retained message with --retained-only, or on SIGINT/SIGTERM
 * (graceful DISCONNECT, exit 0).
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "tools/tools_common.h"

#define EXIT_TIMEOUT 27

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* ---- output helpers -------------------------------------------------------- */

/* Hex of a payload (%x lower case as mosquitto_sub, %X upper case), by
 * OpenSSL's encoder, which writes upper case, in 4 KiB slices. */
static void put_hex(const uint8_t *p, size_t n, bool upper)
{
    char buf[2 * 4096 + 1];
    while (n > 0) {
        size_t k = n < 4096 ? n : 4096, len = 0;
        if (!OPENSSL_buf2hexstr_ex(buf, sizeof buf, &len, p, (long)k, '\0') || len == 0)
            return;   /* cannot happen: the buffer fits 4096 bytes */
        if (!upper)
            for (size_t i = 0; i + 1 < len; i++)
                buf[i] = (char)tolower((unsigned char)buf[i]);
        fwrite(buf, 1, len - 1, stdout);   /* len counts the NUL */
        p += k;
        n -= k;
    }
}

static void put_json_str(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        switch (ch) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                printf("\\u%04x", ch);
            else
                putchar(ch);
        }
    }
    putchar('"');
}

static void put_time_iso(bool utc)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    if (utc)
        gmtime_r(&ts.tv_sec, &tm);
    else
        localtime_r(&ts.tv_sec, &tm);
    char b[64];
    strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    printf("%s.%06ld", b, ts.tv_nsec / 1000);
    if (utc)
        putchar('Z');
    else {
        strftime(b, sizeof b, "%z", &tm);
        fputs(b, stdout);
    }
}

static void put_user_props(const tm_props *p, bool json)
{
    uint32_t pos = 0;
    tm_str k, v;
    bool first = true;
    if (json)
        putchar('[');
    while (tm_props_user_next(p, &pos, &k, &v)) {
        if (!first)
            putchar(json ? ',' : ' ');
        first = false;
        if (json) {
            putchar('{');
            put_json_str(k.p, k.len);
            putchar(':');
            put_json_str(v.p, v.len);
            putchar('}');
        } else {
            printf("%.*s:%.*s", (int)k.len, (const char *)k.p, (int)v.len, (const char *)v.p);
        }
    }
    if (json)
        putchar(']');
}

static void print_json(const tm_sync_msg *m)
{
    const tm_props *p = &m->props;
    fputs("{\"tst\":\"", stdout);
    put_time_iso(true);
    fputs("\",\"topic\":", stdout);
    put_json_str((const uint8_t *)m->topic, strlen(m->topic));
    printf(",\"qos\":%u,\"retain\":%d,\"payloadlen\":%zu", m->qos, m->retain ? 1 : 0,
           m->payload_len);
    if (tm_utf8_valid(m->payload, m->payload_len)) {
        fputs(",\"payload\":", stdout);
        put_json_str(m->payload, m->payload_len);
    } else {
        fputs(",\"payload_hex\":\"", stdout);
        put_hex(m->payload, m->payload_len, false);
        putchar('"');
    }
    bool any = p->present || p->n_user || p->n_sub_ids;
    if (any) {
        fputs(",\"properties\":{", stdout);
        const char *sep = "";
        if (p->present & TM_PBIT(TM_P_PAYLOAD_FORMAT)) {
            printf("%s\"payload-format-indicator\":%u", sep, p->payload_format);
            sep = ",";
        }
        if (p->present & TM_PBIT(TM_P_MESSAGE_EXPIRY)) {
            printf("%s\"message-expiry-interval\":%u", sep, p->message_expiry);
            sep = ",";
        }
        if (p->content_type.p) {
            printf("%s\"content-type\":", sep);
            put_json_str(p->content_type.p, p->content_type.len);
            sep = ",";
        }
        if (p->response_topic.p) {
            printf("%s\"response-topic\":", sep);
            put_json_str(p->response_topic.p, p->response_topic.len);
            sep = ",";
        }
        if (p->correlation_data.p) {
            printf("%s\"correlation-data\":", sep);
            if (tm_utf8_valid(p->correlation_data.p, p->correlation_data.len))
                put_json_str(p->correlation_data.p, p->correlation_data.len);
            else {
                putchar('"');
                put_hex(p->correlation_data.p, p->correlation_data.len, false);
                putchar('"');
            }
            sep = ",";
        }
        if (p->n_sub_ids) {
            printf("%s\"subscription-identifier\":[", sep);
            for (uint32_t i = 0; i < p->n_sub_ids; i++)
                printf("%s%u", i ? "," : "", p->sub_ids[i]);
            putchar(']');
            sep = ",";
        }
        if (p->n_user) {
            printf("%s\"user-properties\":", sep);
            put_user_props(p, true);
        }
        putchar('}');
    }
    putchar('}');
}

/* mosquitto_sub -F subset; see --help. */
static void print_format(const char *f, const tm_sync_msg *m)
{
    const tm_props *p = &m->props;
    for (; *f; f++) {
        if (*f == '\\' && f[1]) {
            f++;
            putchar(*f == 'n' ? '\n' : *f == 't' ? '\t' : *f == 'r' ? '\r' :
                    *f == '0' ? '\0' : *f);
            continue;
        }
        if (*f != '%' || !f[1]) {
            putchar(*f);
            continue;
        }
        switch (*++f) {
        case '%': putchar('%'); break;
        case 't': fputs(m->topic, stdout); break;
        case 'p': fwrite(m->payload, 1, m->payload_len, stdout); break;
        case 'q': printf("%u", m->qos); break;
        case 'r': printf("%d", m->retain ? 1 : 0); break;
        case 'l': printf("%zu", m->payload_len); break;
        case 'm': printf("%u", m->packet_id); break;
        case 'x': put_hex(m->payload, m->payload_len, false); break;
        case 'X': put_hex(m->payload, m->payload_len, true); break;
        case 'I': put_time_iso(false); break;
        case 'U': {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            printf("%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
            break;
        }
        case 'j': case 'J': print_json(m); break;
        case 'C':
            if (p->content_type.p)
                fwrite(p->content_type.p, 1, p->content_type.len, stdout);
            break;
        case 'D':
            if (p->correlation_data.p)
                fwrite(p->correlation_data.p, 1, p->correlation_data.len, stdout);
            break;
        case 'E':
            if (p->present & TM_PBIT(TM_P_MESSAGE_EXPIRY))
                printf("%u", p->message_expiry);
            break;
        case 'F':
            if (p->present & TM_PBIT(TM_P_PAYLOAD_FORMAT))
                printf("%u", p->payload_format);
            break;
        case 'P': put_user_props(p, false); break;
        case 'R':
            if (p->response_topic.p)
                fwrite(p->response_topic.p, 1, p->response_topic.len, stdout);
            break;
        case 'S':
            for (uint32_t i = 0; i < p->n_sub_ids; i++)
                printf("%s%u", i ? "," : "", p->sub_ids[i]);
            break;
        default:
            putchar('%');
            putchar(*f);
            break;
        }
    }
}

static void print_msg(const tm_tool *t, const tm_sync_msg *m)
{
    if (t->json)
        print_json(m);
    else if (t->format)
        print_format(t->format, m);
    else {
        if (t->verbose)
            printf("%s ", m->topic);
        fwrite(m->payload, 1, m->payload_len, stdout);
    }
    if (!t->no_eol)
        putchar('\n');
    fflush(stdout);
}

/* Subscribes to every -t filter, then removes every -U filter. 0, or -1 after
 * an error message (a refused filter is only fatal when it is the only one). */
static int subscribe_all(tm_tool *t, tm_client *c)
{
    char err[512];
    bool v5 = t->copt.version == TM_V5;
    if (t->nfilters) {
        tm_subopts opts[TM_TOOL_MAX_TOPICS];
        uint8_t codes[TM_TOOL_MAX_TOPICS];
        for (int i = 0; i < t->nfilters; i++) {
            opts[i].qos = (uint8_t)t->qos;
            opts[i].no_local = t->no_local;
            opts[i].retain_as_published = t->retain_as_published;
            opts[i].retain_handling = (uint8_t)t->retain_handling;
        }
        int s = tm_sync_subscribe(c, t->filters, opts, (uint32_t)t->nfilters,
                                  v5 ? &t->p_subscribe.props : NULL, codes, TM_TOOL_TIMEOUT_MS,
                                  err, sizeof err);
        if (s < 0) {
            tm_tools_err(t, "subscribe failed: %s", err);
            return -1;
        }
        for (int i = 0; i < t->nfilters; i++)
            if (codes[i] >= 0x80)
                tm_tools_err(t, "subscription to '%s' refused: %s", t->filters[i],
                             tm_rc_name(codes[i]));
        if (s > 0 && t->nfilters == 1)
            return -1;
    }
    if (t->nunsub &&
        tm_sync_unsubscribe(c, t->unsub, (uint32_t)t->nunsub, v5 ? &t->p_unsubscribe.props : NULL,
                            TM_TOOL_TIMEOUT_MS, err, sizeof err) < 0) {
        tm_tools_err(t, "unsubscribe failed: %s", err);
        return -1;
    }
    return 0;
}

/* Prints messages until -C, -W (EXIT_TIMEOUT), --retained-only, a signal or an
 * error. Returns the exit status. */
static int receive(tm_tool *t, tm_client *c, uint64_t start)
{
    char err[512];
    long received = 0;
    while (!stop) {
        int slice = 250;   /* wake regularly to notice signals and -W */
        if (t->timeout_s) {
            uint64_t end = start + (uint64_t)t->timeout_s * 1000u, now = tm_client_now_ms();
            if (now >= end)
                return EXIT_TIMEOUT;
            if (end - now < (uint64_t)slice)
                slice = (int)(end - now);
        }
        tm_sync_msg *m;
        int w = tm_sync_wait_message(c, slice, &m, err, sizeof err);
        if (w < 0) {
            tm_tools_err(t, "%s", err);
            return 1;
        }
        if (w == 0)
            continue;
        bool last = t->retained_only && !m->retain;
        if (!last && !(t->no_stale && m->retain)) {
            print_msg(t, m);
            received++;
        }
        tm_sync_msg_free(m);
        if (last || (t->count && received >= t->count))
            break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tm_tool t;
    int r = tm_tools_parse(&t, TM_TOOL_SUB, argc, argv);
    if (r != 0) {
        tm_tools_free(&t);
        return r > 0 ? 0 : 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    uint64_t start = tm_client_now_ms();
    tm_client *c;
    if (tm_tools_connect(&t, &c) < 0) {
        tm_tools_free(&t);
        return 1;
    }
    int rc = subscribe_all(&t, c) < 0 ? 1 : 0;
    if (rc == 0 && !t.exit_after_sub && t.nfilters)
        rc = receive(&t, c, start);
    if (tm_client_get_state(c) == TM_CS_CONNECTED)
        tm_sync_disconnect(c, 0, t.copt.version == TM_V5 ? &t.p_disconnect.props : NULL,
                           TM_TOOL_TIMEOUT_MS);
    else
        tm_client_free(c);
    tm_tools_free(&t);
    return rc;
}
