/*
 * client.c — the client's lifecycle and its I/O: options, the CONNECT packet,
 * non-blocking TCP connect, then the transport stack of src/net (TCP, TLS),
 * reading and framing, batched writing, keep-alive and timeouts, close.
 *
 * Output batching: every operation appends to c->out and asks for write
 * interest; the bytes leave in one stream write at the end of the
 * current event callback or on the next writable event, so a burst of
 * operations costs one system call per loop iteration. Write interest is
 * dropped as soon as the buffer is empty (the loop is level-triggered).
 *
 * Reentrancy: user callbacks run inside on_io with c->depth > 0; a
 * tm_client_free() there only marks the client, and on_io frees it on the way
 * out. After every callback the dispatcher re-checks the state, because the
 * callback may have disconnected.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "client/client_int.h"
#include "net/sock.h"

#define TM_READ_CHUNK 16384
#define TM_READ_ROUNDS 8       /* reads per event before yielding to others */

static void on_io(tm_loop *loop, int fd, unsigned events, void *ud);

/* ---- small helpers ---------------------------------------------------- */

uint64_t tm_client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tm_client_set_error(tm_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

void tm_client_trace(tm_client *c, const char *dir, const char *fmt, ...)
{
    if (!c->trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->trace, "tmqtt %s ", dir);
    vfprintf(c->trace, fmt, ap);
    fputc('\n', c->trace);
    fflush(c->trace);
    va_end(ap);
}

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool is_numeric_host(const char *h)
{
    unsigned char tmp[16];
    char b[64];
    size_t n = strlen(h);
    if (inet_pton(AF_INET, h, tmp) == 1)
        return true;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']' && n - 2 < sizeof b) {
        memcpy(b, h + 1, n - 2);
        b[n - 2] = 0;
        h = b;
    }
    return inet_pton(AF_INET6, h, tmp) == 1;
}

void tm_client_opts_init(tm_client_opts *o)
{
    memset(o, 0, sizeof *o);
    o->port = 1883;
    o->version = TM_V311;
    o->clean_start = true;
    o->keep_alive = 60;
}

static tm_str cstr(const char *s)
{
    tm_str r = {(const uint8_t *)s, s ? (uint32_t)strlen(s) : 0};
    return r;
}

/* ---- construction ----------------------------------------------------- */

tm_client *tm_client_new(tm_loop *loop, const tm_client_opts *o, char *err, size_t errcap)
{
    uint8_t v = o->version ? o->version : TM_V311;
    if (v != TM_V31 && v != TM_V311 && v != TM_V5) {
        snprintf(err, errcap, "unsupported MQTT protocol version %u", v);
        return NULL;
    }
    if (!loop) {
        snprintf(err, errcap, "no event loop");
        return NULL;
    }
    const char *id = o->client_id ? o->client_id : "";
    if (strlen(id) > 65535 || !tm_utf8_valid((const uint8_t *)id, strlen(id))) {
        snprintf(err, errcap, "client id is not valid UTF-8 or too long");
        return NULL;
    }
    if (!*id && v != TM_V5 && !o->clean_start) {
        snprintf(err, errcap, "an empty client id needs a clean session in MQTT 3.1.1");
        return NULL;
    }
    if (o->password && !o->username && v != TM_V5) {
        snprintf(err, errcap, "a password needs a username in MQTT 3.1.1");
        return NULL;
    }
    if (o->will_topic) {
        size_t wl = strlen(o->will_topic);
        if (!tm_utf8_valid((const uint8_t *)o->will_topic, wl) ||
            !tm_topic_name_valid((const uint8_t *)o->will_topic, wl)) {
            snprintf(err, errcap, "invalid will topic '%s'", o->will_topic);
            return NULL;
        }
        if (o->will_qos > 2) {
            snprintf(err, errcap, "will QoS must be 0, 1 or 2");
            return NULL;
        }
    }

    tm_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->fd = -1;
    c->state = TM_CS_IDLE;
    c->version = v;
    c->cbs = o->cbs;
    c->ud = o->ud;
    c->keep_alive_req = o->keep_alive;
    c->max_inflight = o->max_inflight ? o->max_inflight : 65535;
    c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    c->receive_max_in = (v == TM_V5 && o->receive_max) ? o->receive_max : 65535;
    c->max_packet_in = v == TM_V5 ? o->max_packet_size : 0;
    c->topic_alias_max_in = v == TM_V5 ? o->topic_alias_max : 0;
    c->tls_setup = o->tls_setup;
    c->tls_verify = o->tls_verify;
    c->tls_arg = o->tls_arg;
    c->trace = o->trace;
    c->next_pid = 0;
    tm_buf_init(&c->in);
    tm_buf_init(&c->out);
    tm_buf_init(&c->connect_pkt);

    const char *host = o->host && *o->host ? o->host : "127.0.0.1";
    c->host = dupstr(host);
    c->host_is_ip = is_numeric_host(host) || !strcmp(host, "localhost");
    if (o->sni && *o->sni)
        c->sni = dupstr(o->sni);
    else if (!is_numeric_host(host))
        c->sni = dupstr(host);

    bool tls = o->ssl_ctx || o->tls.enable || (o->tls.cafile && *o->tls.cafile) ||
               (o->tls.capath && *o->tls.capath) || (o->tls.psk_hex && *o->tls.psk_hex) ||
               (o->tls.certfile && *o->tls.certfile) || o->tls.insecure;
    c->port = o->port ? o->port : (tls ? 8883 : 1883);
    if (o->ssl_ctx) {
        SSL_CTX_up_ref(o->ssl_ctx);
        c->ctx = o->ssl_ctx;
    } else if (tls) {
        c->ctx = tm_tls_ctx_new(&o->tls, err, errcap);
        if (!c->ctx)
            goto fail;
    }
    if (c->ctx)
        c->tls_insecure = o->tls.insecure || tm_tls_ctx_insecure(c->ctx);

    if (c->topic_alias_max_in) {
        c->aliases = calloc((size_t)c->topic_alias_max_in + 1, sizeof *c->aliases);
        if (!c->aliases) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
    }

    /* The CONNECT packet never changes between attempts: encode it now, so
     * that no pointer in the options has to outlive this call. */
    tm_connect cn;
    memset(&cn, 0, sizeof cn);
    cn.version = v;
    cn.protocol_name = cstr(v == TM_V31 ? "MQIsdp" : "MQTT");
    cn.clean_start = o->clean_start;
    cn.keep_alive = o->keep_alive;
    cn.client_id = cstr(id);
    if (v == TM_V5) {
        if (o->connect_props)
            cn.props = *o->connect_props;
        if (o->session_expiry) {
            cn.props.present |= TM_PBIT(TM_P_SESSION_EXPIRY);
            cn.props.session_expiry = o->session_expiry;
        }
        if (o->receive_max) {
            cn.props.present |= TM_PBIT(TM_P_RECEIVE_MAX);
            cn.props.receive_max = o->receive_max;
        }
        if (o->max_packet_size) {
            cn.props.present |= TM_PBIT(TM_P_MAX_PACKET_SIZE);
            cn.props.max_packet_size = o->max_packet_size;
        }
        if (o->topic_alias_max) {
            cn.props.present |= TM_PBIT(TM_P_TOPIC_ALIAS_MAX);
            cn.props.topic_alias_max = o->topic_alias_max;
        }
        if (o->connect_props && (o->connect_props->present & TM_PBIT(TM_P_RECEIVE_MAX)))
            c->receive_max_in = o->connect_props->receive_max;
        if (o->connect_props && (o->connect_props->present & TM_PBIT(TM_P_MAX_PACKET_SIZE)))
            c->max_packet_in = o->connect_props->max_packet_size;
    }
    if (o->will_topic) {
        cn.will = true;
        cn.will_qos = o->will_qos;
        cn.will_retain = o->will_retain;
        cn.will_topic = cstr(o->will_topic);
        cn.will_payload.p = o->will_payload ? o->will_payload : (const uint8_t *)"";
        cn.will_payload.len = (uint32_t)o->will_payload_len;
        if (v == TM_V5 && o->will_props)
            cn.will_props = *o->will_props;
    }
    if (o->username)
        cn.username = cstr(o->username);
    if (o->password) {
        cn.password.p = (const uint8_t *)o->password;
        cn.password.len = (uint32_t)(o->password_len ? o->password_len : strlen(o->password));
    }
    tm_encode_connect(&c->connect_pkt, &cn);
    if (c->connect_pkt.oom || !c->host) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    return c;
fail:
    tm_client_free(c);
    return NULL;
}

static void reset_session_state(tm_client *c)
{
    tm_client_free_queue(c);
    tm_pidmap_clear(&c->out_ids);
    tm_pidmap_clear(&c->in_ids);
    c->ninflight = c->nin_qos2 = 0;
    c->in.len = 0;
    c->out.len = 0;
    c->ping_out = false;
    c->stream_read_wants_write = false;
    if (c->aliases)
        for (uint32_t i = 0; i <= c->topic_alias_max_in; i++) {
            free((void *)c->aliases[i].p);
            c->aliases[i].p = NULL;
            c->aliases[i].len = 0;
        }
}

/* Unregisters and closes the connection's socket (through its stream). */
static void drop_socket(tm_client *c)
{
    if (c->fd >= 0)
        tm_loop_del(c->loop, c->fd);
    if (c->st)
        tm_stream_free(c->st);
    else if (c->fd >= 0)
        close(c->fd);
    c->st = NULL;
    c->fd = -1;
}

static void really_free(tm_client *c)
{
    drop_socket(c);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    reset_session_state(c);
    tm_pidmap_free(&c->out_ids);
    tm_pidmap_free(&c->in_ids);
    tm_buf_free(&c->in);
    tm_buf_free(&c->out);
    tm_buf_free(&c->connect_pkt);
    free(c->aliases);
    free(c->host);
    free(c->sni);
    tm_sync_release(c);
    if (c->own_loop)
        tm_loop_free(c->own_loop);
    free(c);
}

bool tm_client_leave(tm_client *c)
{
    c->depth--;
    if (c->depth == 0 && c->free_pending) {
        really_free(c);
        return true;
    }
    return false;
}

void tm_client_free(tm_client *c)
{
    if (!c)
        return;
    if (c->depth > 0) {
        /* Inside one of our callbacks: stop all further callbacks and let
         * on_io free the client when the stack unwinds. */
        c->free_pending = true;
        memset(&c->cbs, 0, sizeof c->cbs);
        return;
    }
    really_free(c);
}

/* ---- loop interest ---------------------------------------------------- */

static void set_events(tm_client *c, unsigned ev)
{
    if (c->fd < 0 || c->want_events == ev)
        return;
    if (tm_loop_mod(c->loop, c->fd, ev) == 0)
        c->want_events = ev;
}

void tm_client_want_write(tm_client *c)
{
    if (c->fd >= 0 && c->state != TM_CS_CLOSED)
        set_events(c, c->want_events | TM_EV_WRITE);
}

/* ---- close ------------------------------------------------------------- */

void tm_client_close(tm_client *c, uint8_t reason, const char *error)
{
    if (c->state == TM_CS_CLOSED || c->state == TM_CS_IDLE)
        return;
    if (error && error != c->err)
        snprintf(c->err, sizeof c->err, "%s", error);
    tm_client_trace(c, "--", "closed: %s", error ? error : "normal disconnection");
    if (c->st && !error) {
        unsigned want;
        tm_stream_shutdown(c->st, &want);   /* best effort close_notify */
    }
    drop_socket(c);
    c->want_events = 0;
    c->state = TM_CS_CLOSED;
    c->disc_reason = reason;
    reset_session_state(c);
    if (c->cbs.on_disconnect) {
        c->depth++;
        c->cbs.on_disconnect(c, c->ud, reason, error ? c->err : NULL);
        c->depth--;
    }
}

void tm_client_fail(tm_client *c, uint8_t reason, const char *fmt, ...)
{
    char msg[sizeof c->err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->version == TM_V5 && c->state >= TM_CS_MQTT_CONNECTING &&
        c->state <= TM_CS_CONNECTED && reason >= 0x80) {
        /* Tell the server why before hanging up (best effort, one write). */
        tm_disconnect d;
        memset(&d, 0, sizeof d);
        d.reason = reason;
        tm_encode_disconnect(&c->out, c->version, &d);
        tm_client_trace(c, "->", "DISCONNECT (%s)", tm_rc_name(reason));
        c->state = TM_CS_DISCONNECTING;
        c->disc_reason = reason;
        c->disc_is_error = true;
        snprintf(c->err, sizeof c->err, "%s", msg);
        tm_client_flush_out(c);
    }
    tm_client_close(c, reason, msg);
}

/* ---- connect ----------------------------------------------------------- */

static void send_connect(tm_client *c)
{
    c->state = TM_CS_MQTT_CONNECTING;
    tm_buf_put(&c->out, c->connect_pkt.data, c->connect_pkt.len);
    tm_client_trace(c, "->", "CONNECT (v%u, %zu bytes)", c->version, (size_t)c->connect_pkt.len);
    tm_client_flush_out(c);
}

static void tls_step(tm_client *c);

static void start_tls(tm_client *c)
{
    char why[256] = "";
    c->state = TM_CS_TLS_HANDSHAKE;
    tm_tls_client_hooks hooks = {.setup = c->tls_setup, .verify = c->tls_verify,
                                 .arg = c->tls_arg};
    /* the name the certificate must carry: the SNI name, else the address */
    const char *expect = c->tls_insecure ? NULL : c->sni ? c->sni : c->host;
    tm_stream *tls = tm_stream_tls_client(c->ctx, c->st, c->sni, expect, &hooks, why,
                                          sizeof why);
    if (!tls) {
        tm_client_close(c, TM_RC_UNSPECIFIED, why);
        return;
    }
    c->st = tls;
    set_events(c, TM_EV_READ | TM_EV_WRITE);
    tls_step(c);
}

static void tls_step(tm_client *c)
{
    unsigned want = 0;
    int r = tm_stream_handshake(c->st, &want);
    if (r == 1) {
        SSL *ssl = tm_client_ssl(c);
        tm_client_trace(c, "--", "TLS handshake done: %s %s", SSL_get_version(ssl),
                        SSL_get_cipher_name(ssl));
        set_events(c, TM_EV_READ);
        send_connect(c);
        return;
    }
    if (r == 0) {
        set_events(c, want == TM_EV_WRITE ? TM_EV_READ | TM_EV_WRITE : TM_EV_READ);
        return;
    }
    const char *why = tm_stream_error(c->st);
    char msg[300];
    if (!strncmp(why, "TLS peer rejected", 17))
        snprintf(msg, sizeof msg, "%s", why);
    else
        snprintf(msg, sizeof msg, "TLS handshake with %s port %u failed: %s", c->host,
                 (unsigned)c->port, strncmp(why, "TLS handshake: ", 15) ? why : why + 15);
    tm_client_close(c, TM_RC_UNSPECIFIED, msg);
}

static void connected_tcp(tm_client *c)
{
    c->st = tm_stream_tcp(c->fd);
    if (!c->st) {            /* the fd is closed with it */
        tm_loop_del(c->loop, c->fd);
        c->fd = -1;
        tm_client_close(c, TM_RC_UNSPECIFIED, "out of memory");
        return;
    }
    if (c->ctx)
        start_tls(c);
    else {
        set_events(c, TM_EV_READ);
        send_connect(c);
    }
}

static int begin(tm_client *c, int fd)
{
    if (c->state != TM_CS_IDLE && c->state != TM_CS_CLOSED) {
        tm_client_set_error(c, "already connecting or connected");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    reset_session_state(c);
    c->gen++;
    c->err[0] = 0;
    c->disc_is_error = false;
    c->srv.receive_max = 65535;
    c->srv.max_packet_size = 0;
    c->srv.topic_alias_max = 0;
    c->srv.keep_alive = c->keep_alive_req;
    c->srv.max_qos = 2;
    c->srv.retain_available = true;
    c->srv.assigned_client_id[0] = 0;
    c->window = c->max_inflight;
    c->deadline = tm_client_now_ms() + c->connect_timeout_ms;
    return 0;
}

int tm_client_connect(tm_client *c)
{
    if (begin(c, -1) < 0)
        return -1;
    char why[200];
    int fd = tm_sock_connect(c->host, c->port, 1, why, sizeof why);
    if (fd < 0) {
        tm_client_set_error(c, "%s", why);
        c->state = TM_CS_CLOSED;
        return -1;
    }
    c->fd = fd;
    c->state = TM_CS_TCP_CONNECTING;
    if (tm_loop_add(c->loop, fd, TM_EV_WRITE, on_io, c) < 0) {
        tm_client_set_error(c, "event loop: %s", strerror(errno));
        close(fd);
        c->fd = -1;
        c->state = TM_CS_CLOSED;
        return -1;
    }
    c->want_events = TM_EV_WRITE;
    tm_client_trace(c, "--", "connecting to %s port %u", c->host, (unsigned)c->port);
    return 0;
}

int tm_client_connect_fd(tm_client *c, int fd)
{
    if (begin(c, fd) < 0)
        return -1;
    tm_sock_nonblock(fd);
    c->fd = fd;
    c->state = TM_CS_TCP_CONNECTING;
    if (tm_loop_add(c->loop, fd, TM_EV_READ, on_io, c) < 0) {
        tm_client_set_error(c, "event loop: %s", strerror(errno));
        close(fd);
        c->fd = -1;
        c->state = TM_CS_CLOSED;
        return -1;
    }
    c->want_events = TM_EV_READ;
    c->depth++;
    connected_tcp(c);
    c->depth--;
    if (c->depth == 0 && c->free_pending) {
        really_free(c);
        return -1;
    }
    return c->state == TM_CS_CLOSED ? -1 : 0;
}

/* ---- writing ----------------------------------------------------------- */

int tm_client_flush(tm_client *c)
{
    c->depth++;
    int r = tm_client_flush_out(c);
    c->depth--;
    if (c->depth == 0 && c->free_pending) {
        really_free(c);
        return -1;
    }
    return r;
}

int tm_client_flush_out(tm_client *c)
{
    if (c->fd < 0 || c->state == TM_CS_TCP_CONNECTING || c->state == TM_CS_TLS_HANDSHAKE)
        return c->state == TM_CS_CLOSED ? -1 : 0;
    if (c->out.oom) {
        tm_client_close(c, TM_RC_UNSPECIFIED, "out of memory");
        return -1;
    }
    if (c->out.len) {
        unsigned want = 0;   /* READ is always watched; WRITE while output waits */
        long n = tm_stream_write(c->st, c->out.data, c->out.len, &want);
        if (n == -2) {
            n = 0;
        } else if (n < 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "write to %s port %u failed: %s", c->host,
                     (unsigned)c->port, tm_stream_error(c->st));
            tm_client_close(c, TM_RC_UNSPECIFIED, msg);
            return -1;
        }
        if (n > 0) {
            tm_buf_consume(&c->out, (size_t)n);
            /* Never move backwards: tick() may run on a caller's clock ahead of ours. */
            uint64_t t = tm_client_now_ms();
            if (t > c->last_tx)
                c->last_tx = t;
        }
    }
    if (c->out.len == 0) {
        if (c->state == TM_CS_DISCONNECTING) {
            tm_client_close(c, c->disc_reason, c->disc_is_error ? c->err : NULL);
            return c->disc_is_error ? -1 : 0;
        }
        set_events(c, TM_EV_READ | (c->stream_read_wants_write ? TM_EV_WRITE : 0));
    } else {
        set_events(c, TM_EV_READ | TM_EV_WRITE);
    }
    return 0;
}

/* ---- reading ----------------------------------------------------------- */

/* Frame and dispatch every complete packet in data[0..len). Returns the bytes
 * consumed, or -1 when the connection was closed (or restarted by a callback)
 * and the caller must stop touching its buffers. */
static ssize_t process_input(tm_client *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    uint32_t gen = c->gen;   /* a callback may close and reconnect */
    c->dispatching = true;
    while (c->state == TM_CS_MQTT_CONNECTING || c->state == TM_CS_CONNECTED) {
        tm_frame f;
        tm_rc rc = tm_frame_parse(data + off, len - off, c->max_packet_in, &f);
        if (rc == TM_RC_NEED_MORE)
            break;
        if (rc != TM_RC_SUCCESS) {
            c->dispatching = false;
            tm_client_fail(c, (uint8_t)rc, "bad packet header from server: %s", tm_rc_name(rc));
            return -1;
        }
        size_t total = (size_t)f.header_len + f.remaining;
        if (len - off < total)
            break;
        tm_client_handle(c, &f, data + off + f.header_len);
        off += total;
        if (c->free_pending || c->gen != gen)
            break;
    }
    c->dispatching = false;
    if (c->gen != gen || c->free_pending ||
        (c->state != TM_CS_MQTT_CONNECTING && c->state != TM_CS_CONNECTED))
        return -1;
    return (ssize_t)off;
}

/* Read into dst[0..room). Returns bytes read, 0 when nothing more now, -1
 * when the connection closed. */
static ssize_t read_some(tm_client *c, uint8_t *dst, size_t room)
{
    unsigned want = 0;
    c->stream_read_wants_write = false;
    long n = tm_stream_read(c->st, dst, room, &want);
    if (n > 0)
        return n;
    if (n == -2) {
        if (want & TM_EV_WRITE) {
            c->stream_read_wants_write = true;
            set_events(c, TM_EV_READ | TM_EV_WRITE);
        }
        return 0;
    }
    char msg[300];
    if (n == 0)
        snprintf(msg, sizeof msg, "connection closed by server");
    else
        snprintf(msg, sizeof msg, "read from %s port %u failed: %s", c->host,
                 (unsigned)c->port, tm_stream_error(c->st));
    tm_client_close(c, TM_RC_UNSPECIFIED, msg);
    return -1;
}

/* Memory: an idle client keeps no receive buffer. Whole packets are
 * dispatched straight from a stack buffer; only the tail of a packet that is
 * still arriving is kept in c->in (and released once consumed, if large), so
 * ten thousand benchmark connections do not each pin 16 KiB. */
static void do_read(tm_client *c)
{
    uint8_t stack[TM_READ_CHUNK];
    for (int i = 0; i < TM_READ_ROUNDS; i++) {
        bool direct = c->in.len == 0;
        uint8_t *dst = stack;
        size_t room = sizeof stack;
        if (!direct) {
            if (!tm_buf_reserve(&c->in, TM_READ_CHUNK)) {
                tm_client_close(c, TM_RC_UNSPECIFIED, "out of memory");
                return;
            }
            dst = c->in.data + c->in.len;
            room = c->in.cap - c->in.len;
        }
        ssize_t n = read_some(c, dst, room);
        if (n <= 0)
            return;
        ssize_t used;
        if (direct) {
            used = process_input(c, stack, (size_t)n);
            if (used < 0)
                return;
            if (used < n) {
                tm_buf_put(&c->in, stack + used, (size_t)(n - used));
                if (c->in.oom) {
                    tm_client_close(c, TM_RC_UNSPECIFIED, "out of memory");
                    return;
                }
            }
        } else {
            c->in.len += (size_t)n;
            used = process_input(c, c->in.data, c->in.len);
            if (used < 0)
                return;
            tm_buf_consume(&c->in, (size_t)used);
            if (c->in.len == 0 && c->in.cap > 4 * TM_READ_CHUNK)
                tm_buf_free(&c->in);   /* a big message passed: give it back */
        }
        /* a short read means the transport had no more (TLS reads drain
         * every record that arrived) */
        if ((size_t)n < room)
            return;
    }
}

static void on_io(tm_loop *loop, int fd, unsigned events, void *ud)
{
    tm_client *c = ud;
    c->depth++;
    switch (c->state) {
    case TM_CS_TCP_CONNECTING: {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            char msg[200];
            snprintf(msg, sizeof msg, "connect to %s port %u failed: %s", c->host,
                     (unsigned)c->port, strerror(soerr));
            tm_client_close(c, TM_RC_UNSPECIFIED, msg);
        } else {
            connected_tcp(c);
        }
        break;
    }
    case TM_CS_TLS_HANDSHAKE:
        tls_step(c);
        break;
    case TM_CS_MQTT_CONNECTING:
    case TM_CS_CONNECTED:
    case TM_CS_DISCONNECTING:
        if (((events & TM_EV_READ) || ((events & TM_EV_WRITE) && c->stream_read_wants_write)) &&
            !c->dispatching) {
            if (c->state == TM_CS_DISCONNECTING) {
                /* Still drain input so the peer's EOF/errors are noticed,
                 * but deliver nothing more. */
                uint8_t sink[4096];
                unsigned want;
                long n = tm_stream_read(c->st, sink, sizeof sink, &want);
                if (n == 0 || n == -1)
                    tm_client_close(c, c->disc_reason, c->disc_is_error ? c->err : NULL);
            } else {
                do_read(c);
            }
        }
        if (c->state != TM_CS_CLOSED && !c->free_pending)
            tm_client_flush_out(c);   /* the one write of this iteration */
        break;
    default:
        break;
    }
    c->depth--;
    if (c->depth == 0 && c->free_pending)
        really_free(c);
}

/* ---- timers ------------------------------------------------------------ */

int tm_client_tick(tm_client *c, uint64_t now)
{
    switch (c->state) {
    case TM_CS_TCP_CONNECTING:
    case TM_CS_TLS_HANDSHAKE:
    case TM_CS_MQTT_CONNECTING:
    case TM_CS_DISCONNECTING:
        if (now >= c->deadline) {
            char msg[160];
            snprintf(msg, sizeof msg, "timed out %s %s port %u",
                     c->state == TM_CS_DISCONNECTING ? "disconnecting from" :
                     c->state == TM_CS_MQTT_CONNECTING ? "waiting for CONNACK from" :
                     c->state == TM_CS_TLS_HANDSHAKE ? "in the TLS handshake with" :
                                                        "connecting to",
                     c->host, (unsigned)c->port);
            c->depth++;
            bool graceful = c->state == TM_CS_DISCONNECTING && !c->disc_is_error;
            tm_client_close(c, graceful ? c->disc_reason : TM_RC_UNSPECIFIED,
                            graceful ? NULL : msg);
            c->depth--;
            if (c->depth == 0 && c->free_pending)
                really_free(c);
            return -1;
        }
        return (int)(c->deadline - now);
    case TM_CS_CONNECTED: {
        uint64_t ka = (uint64_t)c->srv.keep_alive * 1000u;
        if (!ka)
            return -1;
        if (c->ping_out) {
            if (now >= c->ping_sent + ka) {
                c->depth++;
                tm_client_fail(c, TM_RC_KEEP_ALIVE_TIMEOUT,
                               "no PINGRESP from the server within the keep alive (%us)",
                               (unsigned)c->srv.keep_alive);
                c->depth--;
                if (c->depth == 0 && c->free_pending)
                    really_free(c);
                return -1;
            }
        } else if (now >= c->last_tx + ka) {
            tm_encode_simple(&c->out, TM_PINGREQ);
            tm_client_trace(c, "->", "PINGREQ");
            c->ping_out = true;
            c->ping_sent = now;
            c->last_tx = now;  /* the ping counts as traffic even before it leaves */
            tm_client_want_write(c);
        }
        uint64_t next = c->ping_out ? c->ping_sent + ka : c->last_tx + ka;
        return next > now ? (int)(next - now) : 0;
    }
    default:
        return -1;
    }
}

/* ---- accessors ----------------------------------------------------------- */

tm_client_state tm_client_get_state(const tm_client *c) { return c->state; }
const char *tm_client_error(const tm_client *c) { return c->err; }
int tm_client_fd(const tm_client *c) { return c->fd; }
SSL *tm_client_ssl(const tm_client *c)
{
    return c->st ? tm_stream_tls_ssl(tm_stream_find(c->st, "tls")) : NULL;
}
void *tm_client_userdata(const tm_client *c) { return c->ud; }
uint8_t tm_client_version(const tm_client *c) { return c->version; }
const tm_client_server_info *tm_client_server(const tm_client *c) { return &c->srv; }
uint32_t tm_client_inflight(const tm_client *c) { return c->ninflight; }
uint32_t tm_client_queued(const tm_client *c) { return c->nqueued; }
size_t tm_client_out_pending(const tm_client *c) { return c->out.len; }
void tm_client_set_trace(tm_client *c, void *file) { c->trace = file; }

const char *tm_client_state_name(tm_client_state s)
{
    static const char *const names[] = {"idle", "tcp-connecting", "tls-handshake",
                                        "mqtt-connecting", "connected", "disconnecting",
                                        "closed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}
