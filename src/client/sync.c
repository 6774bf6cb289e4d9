/*
 * sync.c — the blocking convenience layer for tools and tests.
 *
 * Each synchronous client owns a private tm_loop (c->own_loop) and a small
 * state block (c->sync): the queue of received messages and the outcome of
 * the one operation being waited for. Every tm_sync_* call runs that loop
 * until its condition holds, a timeout passes or the connection closes; the
 * client's keep-alive is ticked while waiting, so a subscriber blocked in
 * tm_sync_wait_message keeps its connection alive.
 *
 * Messages are deep-copied (topic, payload and every property slice) into one
 * allocation, because slices handed to callbacks die with the receive buffer.
 *
 * Not reentrant: do not call tm_sync_* from inside a callback of the same client.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

typedef struct tm_sync {
    tm_client_cbs user;          /* the caller's callbacks (optional) */
    tm_sync_msg *qhead, *qtail;
    bool connack, closed;
    uint8_t connack_code;
    uint16_t wait_pid;           /* operation being waited for */
    bool wait_done;
    uint8_t wait_reason;
    uint8_t *codes;              /* SUBACK/UNSUBACK codes out */
    uint32_t ncodes;
    char closed_err[320];
} tm_sync;

/* ---- message copies ------------------------------------------------------ */

static size_t str_need(tm_str s) { return s.p ? s.len + 1 : 0; }

static void str_copy(tm_str *s, uint8_t **at)
{
    if (!s->p)
        return;
    memcpy(*at, s->p, s->len);
    (*at)[s->len] = 0;
    s->p = *at;
    *at += s->len + 1;
}

static tm_sync_msg *msg_copy(const tm_client_msg *m)
{
    tm_props pr;
    if (m->props)
        pr = *m->props;
    else
        memset(&pr, 0, sizeof pr);
    size_t need = sizeof(tm_sync_msg) + m->topic.len + 1 + m->payload.len + 1 +
                  str_need(pr.content_type) + str_need(pr.response_topic) +
                  str_need(pr.correlation_data) + str_need(pr.user) + str_need(pr.reason_string);
    tm_sync_msg *c = malloc(need);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    uint8_t *at = (uint8_t *)(c + 1);
    c->topic = (char *)at;
    memcpy(at, m->topic.p, m->topic.len);
    at[m->topic.len] = 0;
    at += m->topic.len + 1;
    c->payload = at;
    if (m->payload.len)
        memcpy(at, m->payload.p, m->payload.len);
    at[m->payload.len] = 0;   /* handy for printing text payloads */
    at += m->payload.len + 1;
    c->payload_len = m->payload.len;
    c->qos = m->qos;
    c->retain = m->retain;
    c->dup = m->dup;
    c->packet_id = m->packet_id;
    str_copy(&pr.content_type, &at);
    str_copy(&pr.response_topic, &at);
    str_copy(&pr.correlation_data, &at);
    str_copy(&pr.user, &at);
    str_copy(&pr.reason_string, &at);
    /* Slices the client API never exposes on PUBLISH are cleared rather than
     * left pointing at freed memory. */
    memset(&pr.assigned_client_id, 0, sizeof pr.assigned_client_id);
    memset(&pr.auth_method, 0, sizeof pr.auth_method);
    memset(&pr.auth_data, 0, sizeof pr.auth_data);
    memset(&pr.response_info, 0, sizeof pr.response_info);
    memset(&pr.server_reference, 0, sizeof pr.server_reference);
    c->props = pr;
    return c;
}

void tm_sync_msg_free(tm_sync_msg *m)
{
    free(m);
}

/* ---- callbacks ------------------------------------------------------------ */

static tm_sync *S(tm_client *c) { return c->sync; }

static void s_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *p)
{
    S(c)->connack = true;
    S(c)->connack_code = code;
    if (S(c)->user.on_connect)
        S(c)->user.on_connect(c, ud, code, sp, p);
}

static void s_message(tm_client *c, void *ud, const tm_client_msg *m)
{
    tm_sync *s = S(c);
    if (s->user.on_message) {
        s->user.on_message(c, ud, m);
        return;
    }
    tm_sync_msg *copy = msg_copy(m);
    if (!copy)
        return;   /* out of memory: drop (QoS>0 is still acknowledged) */
    if (s->qtail)
        s->qtail->next = copy;
    else
        s->qhead = copy;
    s->qtail = copy;
}

static void s_pubdone(tm_client *c, void *ud, uint16_t pid, uint8_t reason)
{
    tm_sync *s = S(c);
    if (pid == s->wait_pid) {
        s->wait_done = true;
        s->wait_reason = reason;
    }
    if (s->user.on_publish_done)
        s->user.on_publish_done(c, ud, pid, reason);
}

static void s_suback(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                     const tm_props *p)
{
    tm_sync *s = S(c);
    if (pid == s->wait_pid) {
        s->wait_done = true;
        if (s->codes)
            memcpy(s->codes, codes, n < s->ncodes ? n : s->ncodes);
        s->ncodes = n;
    }
    if (s->user.on_subscribe)
        s->user.on_subscribe(c, ud, pid, codes, n, p);
}

static void s_unsuback(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                       const tm_props *p)
{
    tm_sync *s = S(c);
    if (pid == s->wait_pid) {
        s->wait_done = true;
        if (s->codes)
            memcpy(s->codes, codes, n < s->ncodes ? n : s->ncodes);
        s->ncodes = n;
    }
    if (s->user.on_unsubscribe)
        s->user.on_unsubscribe(c, ud, pid, codes, n, p);
}

static void s_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    tm_sync *s = S(c);
    s->closed = true;
    snprintf(s->closed_err, sizeof s->closed_err, "%s", error ? error : "disconnected");
    if (s->user.on_disconnect)
        s->user.on_disconnect(c, ud, reason, error);
}

void tm_sync_release(tm_client *c)
{
    tm_sync *s = c->sync;
    if (!s)
        return;
    tm_sync_msg *m = s->qhead;
    while (m) {
        tm_sync_msg *n = m->next;
        free(m);
        m = n;
    }
    free(s);
    c->sync = NULL;
}

/* ---- running ------------------------------------------------------------------ */

int tm_sync_run_until(tm_client *c, bool (*pred)(tm_client *, void *), void *arg,
                      int timeout_ms)
{
    if (!c->own_loop)
        return -1;
    uint64_t start = tm_client_now_ms();
    for (;;) {
        if (pred && pred(c, arg))
            return 1;
        if (c->state == TM_CS_CLOSED || c->state == TM_CS_IDLE)
            return -1;
        uint64_t now = tm_client_now_ms();
        int wait = -1;
        if (timeout_ms >= 0) {
            if (now - start >= (uint64_t)timeout_ms)
                return 0;
            wait = (int)((uint64_t)timeout_ms - (now - start));
        }
        int t = tm_client_tick(c, now);
        if (c->state == TM_CS_CLOSED)
            continue;
        if (t >= 0 && (wait < 0 || t < wait))
            wait = t;
        /* Operations appended output since the last iteration: write now
         * rather than waiting for the loop to report writability. */
        if (c->out.len) {
            tm_client_flush_out(c);
            if (c->state == TM_CS_CLOSED || (pred && pred(c, arg)))
                continue;
        }
        if (tm_loop_run_once(c->own_loop, wait) < 0)
            return -1;
    }
}

/* The tm_sync_* calls only make sense on clients made by tm_sync_connect. */
#define NEED_SYNC(c, err, cap)                                                 \
    do {                                                                       \
        if (!(c) || !(c)->sync) {                                              \
            seterr(err, cap, "%s", "not a synchronous client (tm_sync_connect)"); \
            return -1;                                                         \
        }                                                                      \
    } while (0)

static bool p_connack(tm_client *c, void *a) { return S(c)->connack; }
static bool p_done(tm_client *c, void *a) { return S(c)->wait_done; }
static bool p_msg(tm_client *c, void *a) { return S(c)->qhead != NULL; }
static bool p_out_empty(tm_client *c, void *a) { return c->out.len == 0; }

static void seterr(char *err, size_t cap, const char *fmt, const char *arg)
{
    if (err && cap)
        snprintf(err, cap, fmt, arg);
}

int tm_sync_connect(const tm_client_opts *opts, int timeout_ms, tm_client **out, char *err,
                    size_t errcap)
{
    *out = NULL;
    tm_loop *loop = tm_loop_new();
    tm_sync *s = calloc(1, sizeof *s);
    if (!loop || !s) {
        tm_loop_free(loop);
        free(s);
        seterr(err, errcap, "%s", "out of memory");
        return -1;
    }
    tm_client_opts o = *opts;
    s->user = opts->cbs;
    o.cbs.on_connect = s_connect;
    o.cbs.on_message = s_message;
    o.cbs.on_publish_done = s_pubdone;
    o.cbs.on_subscribe = s_suback;
    o.cbs.on_unsubscribe = s_unsuback;
    o.cbs.on_disconnect = s_disconnect;
    if (timeout_ms > 0 && !o.connect_timeout_ms)
        o.connect_timeout_ms = (uint32_t)timeout_ms;
    tm_client *c = tm_client_new(loop, &o, err, errcap);
    if (!c) {
        tm_loop_free(loop);
        free(s);
        return -1;
    }
    c->own_loop = loop;
    c->sync = s;
    if (tm_client_connect(c) < 0) {
        seterr(err, errcap, "%s", c->err);
        tm_client_free(c);
        return -1;
    }
    int r = tm_sync_run_until(c, p_connack, NULL, timeout_ms);
    if (r == 1 && s->connack_code == 0 && c->state == TM_CS_CONNECTED) {
        *out = c;
        return 0;
    }
    if (r == 0)
        seterr(err, errcap, "timed out connecting to %s", c->host);
    else
        seterr(err, errcap, "%s", c->err[0] ? c->err : s->closed_err);
    tm_client_free(c);
    return -1;
}

static int closed_err(tm_client *c, char *err, size_t cap)
{
    seterr(err, cap, "%s", c->err[0] ? c->err : "connection closed");
    return -1;
}

int tm_sync_publish(tm_client *c, const char *topic, const void *payload, size_t len,
                    uint8_t qos, bool retain, const tm_props *props, int timeout_ms,
                    char *err, size_t errcap)
{
    NEED_SYNC(c, err, errcap);
    tm_sync *s = S(c);
    int pid = tm_client_publish(c, topic, payload, len, qos, retain, props);
    if (pid < 0) {
        seterr(err, errcap, "%s", c->err);
        return -1;
    }
    if (qos == 0) {
        /* Make sure it leaves before returning (tools exit right after). */
        int r = tm_sync_run_until(c, p_out_empty, NULL, timeout_ms);
        if (r == 1)
            return 0;
        return r == 0 ? (seterr(err, errcap, "%s", "timed out sending PUBLISH"), -1)
                      : closed_err(c, err, errcap);
    }
    s->wait_pid = (uint16_t)pid;
    s->wait_done = false;
    int r = tm_sync_run_until(c, p_done, NULL, timeout_ms);
    s->wait_pid = 0;
    if (r == 0) {
        seterr(err, errcap, "%s", qos == 1 ? "timed out waiting for PUBACK"
                                           : "timed out waiting for PUBCOMP");
        return -1;
    }
    if (r < 0)
        return closed_err(c, err, errcap);
    if (s->wait_reason >= 0x80) {
        seterr(err, errcap, "publish refused by the server: %s", tm_rc_name(s->wait_reason));
        return -1;
    }
    return 0;
}

static int sync_sub(tm_client *c, bool unsub, const char *const *filters,
                    const tm_subopts *opts, uint32_t n, const tm_props *props,
                    uint8_t *codes_out, int timeout_ms, char *err, size_t errcap)
{
    NEED_SYNC(c, err, errcap);
    tm_sync *s = S(c);
    uint8_t local[64];
    int pid = unsub ? tm_client_unsubscribe(c, filters, n, props)
                    : tm_client_subscribe(c, filters, opts, n, props);
    if (pid < 0) {
        seterr(err, errcap, "%s", c->err);
        return -1;
    }
    s->wait_pid = (uint16_t)pid;
    s->wait_done = false;
    s->codes = codes_out ? codes_out : local;
    s->ncodes = codes_out ? n : (n < sizeof local ? n : sizeof local);
    uint32_t cap = s->ncodes;
    int r = tm_sync_run_until(c, p_done, NULL, timeout_ms);
    s->wait_pid = 0;
    s->codes = NULL;
    if (r == 0) {
        seterr(err, errcap, "%s", unsub ? "timed out waiting for UNSUBACK"
                                        : "timed out waiting for SUBACK");
        return -1;
    }
    if (r < 0)
        return closed_err(c, err, errcap);
    if (unsub && c->version != TM_V5)
        return 0;
    if (s->ncodes != n) {
        seterr(err, errcap, "%s", "server answered with the wrong number of codes");
        return -1;
    }
    const uint8_t *codes = codes_out ? codes_out : local;
    for (uint32_t i = 0; i < n && i < cap; i++)
        if (codes[i] >= 0x80) {
            if (err && errcap)
                snprintf(err, errcap, "%s '%s' refused: %s", unsub ? "unsubscribe" : "subscription",
                         filters[i], tm_rc_name(codes[i]));
            return 1;
        }
    return 0;
}

int tm_sync_subscribe(tm_client *c, const char *const *filters, const tm_subopts *opts,
                      uint32_t n, const tm_props *props, uint8_t *codes_out, int timeout_ms,
                      char *err, size_t errcap)
{
    return sync_sub(c, false, filters, opts, n, props, codes_out, timeout_ms, err, errcap);
}

int tm_sync_unsubscribe(tm_client *c, const char *const *filters, uint32_t n,
                        const tm_props *props, int timeout_ms, char *err, size_t errcap)
{
    return sync_sub(c, true, filters, NULL, n, props, NULL, timeout_ms, err, errcap);
}

int tm_sync_wait_message(tm_client *c, int timeout_ms, tm_sync_msg **out, char *err,
                         size_t errcap)
{
    *out = NULL;
    NEED_SYNC(c, err, errcap);
    tm_sync *s = S(c);
    int r = s->qhead ? 1 : tm_sync_run_until(c, p_msg, NULL, timeout_ms);
    if (r == 1 || s->qhead) {
        tm_sync_msg *m = s->qhead;
        s->qhead = m->next;
        if (!s->qhead)
            s->qtail = NULL;
        m->next = NULL;
        *out = m;
        return 1;
    }
    if (r == 0)
        return 0;
    return closed_err(c, err, errcap);
}

void tm_sync_disconnect(tm_client *c, uint8_t reason, const tm_props *props, int timeout_ms)
{
    if (!c)
        return;
    if (c->state == TM_CS_CONNECTED && tm_client_disconnect(c, reason, props) == 0)
        tm_sync_run_until(c, NULL, NULL, timeout_ms);
    tm_client_free(c);
}
