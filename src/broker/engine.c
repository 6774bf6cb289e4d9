/*
 * engine.c — the broker engine's entry points (broker.h): connections come
 * and go, bytes come in and are dispatched packet by packet, time moves on,
 * output goes out through one place.
 *
 * Output: every handler appends to its connection's `out` buffer and marks
 * the connection dirty; the driver collects dirty connections once per loop
 * iteration (tm_broker_next_output), so a burst of packets to one client is
 * one write whatever its length.
 *
 * Ending a connection: tm_conn_end does everything MQTT needs at once (the
 * will, the session detached, the counts) and leaves the connection on the
 * output list marked closing; the driver sends what is queued (a CONNACK
 * with a refusal, a DISCONNECT with a reason), closes the transport
 * gracefully and releases the connection. Connections are freed only by
 * tm_broker_bury, between iterations, so pointers held anywhere during an
 * iteration (the output list, a fan-out in progress, a takeover) stay valid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/atls_peer.h"
#include "attest/hex.h"
#include "broker/broker_int.h"

#define TM_TICK_MS 250

/* ---- output ------------------------------------------------------------ */

size_t tm_conn_backlog(const tm_conn *c)
{
    const tm_conn_driver *d = &tm_conn_b(c)->driver;
    size_t io = c->io && d->backlog ? d->backlog(c->io) : 0;
    return c->out.len + (c->ext ? c->ext->out_early.len : 0) + io;
}

tm_conn_ext *tm_conn_ext_get(tm_conn *c)
{
    if (!c->ext && (c->ext = calloc(1, sizeof *c->ext))) {
        tm_buf_init(&c->ext->in);
        tm_buf_init(&c->ext->out_early);
    }
    return c->ext;
}

static const tm_buf no_buf;   /* a connection without ext has no early output */

static const tm_buf *out_early(const tm_conn *c) { return c->ext ? &c->ext->out_early : &no_buf; }

void tm_conn_mark_dirty(tm_conn *c)
{
    c->out_recent = true;
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = tm_conn_b(c)->dirty;
        tm_conn_b(c)->dirty = c;
    }
}

void tm_conn_send(tm_conn *c, const void *p, size_t n)
{
    tm_buf_put(&c->out, p, n);
    tm_conn_mark_dirty(c);
}

tm_conn *tm_broker_next_output(tm_broker *b)
{
    while (b->dirty) {
        tm_conn *c = b->dirty;
        b->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (c->gone)
            continue;
        if (c->out.oom || out_early(c)->oom)
            tm_conn_end(c, "out of memory for output");
        if (c->out.len || out_early(c)->len || c->state == TM_CS_CLOSING)
            return c;
    }
    return NULL;
}

const uint8_t *tm_conn_output_early(tm_conn *c, size_t *len)
{
    const tm_buf *e = out_early(c);
    *len = e->oom ? 0 : e->len;
    return e->data;
}

/* A buffer that never grew held a few small packets (a CONNACK, a SUBACK, a
 * PINGRESP): it goes back to the allocator at once, before the next
 * connection's allocations, instead of staying until the next tick and
 * leaving, once freed, a hole between long-lived connection records that
 * nothing else fits (about 80 bytes per idle connection). Buffers that grew
 * belong to busy connections and stay until a tick without output. */
static void release_small(tm_buf *b)
{
    if (b->len == 0 && b->cap == TM_BUF_MIN) {
        tm_buf_free(b);
        tm_buf_init(b);
    }
}

void tm_conn_output_early_done(tm_conn *c)
{
    if (!c->ext)
        return;
    tm_conn_b(c)->io.bytes_sent += c->ext->out_early.len;
    c->ext->out_early.len = 0;
    release_small(&c->ext->out_early);
}

const uint8_t *tm_conn_output(tm_conn *c, size_t *len)
{
    *len = c->out.oom ? 0 : c->out.len;
    return c->out.data;
}

void tm_conn_output_done(tm_conn *c)
{
    tm_conn_output_early_done(c);
    tm_conn_b(c)->io.bytes_sent += c->out.len;
    c->out.len = 0;
    if (c->out.cap > 1u << 20) {   /* give back memory after a burst */
        tm_buf_free(&c->out);
        tm_buf_init(&c->out);
    }
    release_small(&c->out);
}

bool tm_conn_closing(const tm_conn *c) { return c->state == TM_CS_CLOSING; }

void *tm_conn_io(const tm_conn *c) { return c->io; }

void tm_broker_set_driver(tm_broker *b, const tm_conn_driver *d) { b->driver = *d; }

const char *tm_conn_peer(const tm_conn *c)
{
    const tm_conn_driver *d = &tm_conn_b(c)->driver;
    const char *p = c->io && d->peer ? d->peer(c->io) : NULL;
    return p ? p : "-";
}

/* ---- ending ------------------------------------------------------------- */

void tm_conn_end(tm_conn *c, const char *why)
{
    tm_broker *b = tm_conn_b(c);
    if (c->ended)
        return;
    c->ended = true;
    bool was_connected = c->sess != NULL;
    if (why && tm_conn_client_id(c) && b->cfg->connection_messages)
        tm_log(TM_LOG_NOTICE, "client '%s' (%s) closed: %s", tm_conn_client_id(c), tm_conn_peer(c), why);
    else if (why && tm_log_enabled(TM_LOG_INFO))
        tm_log(TM_LOG_INFO, "connection %s closed: %s", tm_conn_peer(c), why);
    if (was_connected && b->st.clients_connected)
        b->st.clients_connected--;
    if (c->sess) {
        tm_will_trigger(b, c);
        tm_session *s = c->sess;
        c->sess = NULL;
        if (s->conn == c)
            tm_sess_detach(b, s);
    }
    if (c->ext) {
        tm_msg_unref(c->ext->will);
        c->ext->will = NULL;
    }
    if (c->is_bridge)
        tm_bridge_ended(c);
    c->state = TM_CS_CLOSING;
    tm_conn_mark_dirty(c);
}

void tm_conn_fail(tm_conn *c, uint8_t rc, const char *why)
{
    if (c->ended)
        return;
    tm_log(TM_LOG_NOTICE, "client '%s' (%s): %s: %s — closing the connection",
           tm_conn_client_id(c) ? tm_conn_client_id(c) : "?", tm_conn_peer(c), why, tm_rc_name(rc));
    if (c->version == TM_V5 && c->state == TM_CS_CONNECTED && rc >= 0x80) {
        tm_disconnect d;
        memset(&d, 0, sizeof d);
        d.reason = rc;
        tm_encode_disconnect(&c->out, TM_V5, &d);
    }
    tm_conn_end(c, NULL);
}

static void unlink_conn(tm_broker *b, tm_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->n_conns--;
    c->gone = true;
    c->prev = NULL;
    c->next = b->graveyard;
    b->graveyard = c;
}

void tm_broker_closed(tm_broker *b, tm_conn *c, const char *why, int64_t now)
{
    if (c->gone)
        return;
    b->now = now;
    tm_conn_end(c, why);
    unlink_conn(b, c);
}

void tm_broker_release(tm_broker *b, tm_conn *c)
{
    if (c->gone)
        return;
    tm_conn_end(c, NULL);
    unlink_conn(b, c);
}

tm_conn_alias *tm_conn_alias_get(tm_conn *c)
{
    tm_conn_ext *x = tm_conn_ext_get(c);
    return x ? &x->alias : NULL;
}

static void conn_free(tm_conn *c)
{
    tm_buf_free(&c->out);
    tm_conn_ext *x = c->ext;
    if (x) {
        tm_buf_free(&x->in);
        tm_buf_free(&x->out_early);
        free(x->identity);
        tm_atls_peer_unref(x->attest);
        tm_msg_unref(x->will);
        tm_conn_alias *a = &x->alias;
        if (a->in) {
            for (uint32_t i = 0; i <= tm_config_max_topic_alias(tm_conn_b(c)->cfg, tm_conn_lcfg(c)); i++)
                free((void *)a->in[i].p);
            free(a->in);
        }
        uint32_t i = 0;
        tm_map_ent *e;
        while ((e = tm_map_next(&a->out, &i)))
            free(e->val);
        tm_map_free(&a->out);
        free(x);
    }
    free(c);
}

void tm_broker_bury(tm_broker *b)
{
    /* a gone connection may still be on the output list */
    while (tm_broker_next_output(b))
        ;
    while (b->graveyard) {
        tm_conn *c = b->graveyard;
        b->graveyard = c->next;
        conn_free(c);
    }
}

/* ---- input -------------------------------------------------------------- */

static tm_rc dispatch(tm_conn *c, const tm_frame *f, const uint8_t *body)
{
    tm_rc brc;
    if (c->is_bridge && tm_bridge_dispatch(c, f, body, &brc))
        return brc;
    if (c->state == TM_CS_NEW) {
        if (f->type != TM_CONNECT)
            return TM_RC_PROTOCOL_ERROR;
        return tm_handle_connect(c, body, f->remaining);
    }
    switch (f->type) {
    case TM_PUBLISH:
        return tm_handle_publish(c, f->flags, body, f->remaining);
    case TM_PUBACK:
    case TM_PUBREC:
    case TM_PUBREL:
    case TM_PUBCOMP:
        return tm_handle_ack(c, f->type, f->flags, body, f->remaining);
    case TM_SUBSCRIBE:
        return tm_handle_subscribe(c, f->flags, body, f->remaining);
    case TM_UNSUBSCRIBE:
        return tm_handle_unsubscribe(c, f->flags, body, f->remaining);
    case TM_PINGREQ:
        return tm_handle_pingreq(c, f->flags, f->remaining);
    case TM_DISCONNECT:
        return tm_handle_disconnect(c, body, f->remaining);
    case TM_AUTH:
        if (c->version != TM_V5)
            return TM_RC_MALFORMED;
        return tm_handle_auth(c, body, f->remaining);
    case TM_CONNECT:
        return TM_RC_PROTOCOL_ERROR;   /* second CONNECT */
    default:
        return TM_RC_PROTOCOL_ERROR;   /* server-to-client packet from a client */
    }
}

/* Dispatch every complete packet in data[0..len). Returns the bytes consumed;
 * stops early when the connection is failing or closing. */
static size_t process_frames(tm_conn *c, const uint8_t *data, size_t len)
{
    tm_broker *b = tm_conn_b(c);
    uint32_t max = b->cfg->max_packet_size ? b->cfg->max_packet_size : 268435460u;
    size_t off = 0;
    while (c->state != TM_CS_CLOSING && off < len) {
        tm_frame f;
        tm_rc rc = tm_frame_parse(data + off, len - off, max, &f);
        if (rc == TM_RC_NEED_MORE)
            break;
        if (rc != TM_RC_SUCCESS) {
            tm_conn_fail(c, (uint8_t)rc, "bad packet header");
            return off;
        }
        size_t total = (size_t)f.header_len + f.remaining;
        if (len - off < total)
            break;
        b->st.msgs_received++;
        if (c->state == TM_CS_CONNECTED)   /* before: the CONNECT deadline's start */
            c->last_rx_ms = (uint32_t)b->now;
        rc = dispatch(c, &f, data + off + f.header_len);
        off += total;
        if (rc != TM_RC_SUCCESS) {
            char why[64];
            snprintf(why, sizeof why, "bad %s", tm_ptype_name(f.type));
            tm_conn_fail(c, (uint8_t)rc, why);
            return off;
        }
        if (c->state == TM_CS_CLOSING)   /* a refusal or a DISCONNECT */
            tm_conn_end(c, NULL);
    }
    return off;
}

/* Complete packets are dispatched straight from the caller's buffer; only the
 * tail of a packet cut by a read boundary is kept in the connection's own
 * buffer, so an idle connection holds no input memory. */
void tm_broker_input(tm_broker *b, tm_conn *c, const uint8_t *p, size_t n, int64_t now)
{
    b->now = now;
    b->io.bytes_received += n;
    if (c->state == TM_CS_CLOSING)
        return;   /* the engine is done with it: what comes now is dropped */
    tm_buf *in = c->ext ? &c->ext->in : NULL;
    if (in && in->len) {
        tm_buf_put(in, p, n);
        if (in->oom) {
            tm_conn_end(c, "out of memory for input");
            return;
        }
        size_t used = process_frames(c, in->data, in->len);
        tm_buf_consume(in, used);
    } else {
        size_t used = process_frames(c, p, n);
        if (used < n && c->state != TM_CS_CLOSING) {
            tm_conn_ext *x = tm_conn_ext_get(c);
            in = x ? &x->in : NULL;
            if (in)
                tm_buf_put(in, p + used, n - used);
            if (!in || in->oom) {
                tm_conn_end(c, "out of memory for input");
                return;
            }
        }
    }
    if (in && (c->state == TM_CS_CLOSING || (in->len == 0 && in->cap))) {
        tm_buf_free(in);
        tm_buf_init(in);
    }
}

/* ---- connections ------------------------------------------------------------ */

/* The home of connections of listener configuration lcfg (made on first use). */
static const tm_conn_home *home_of(tm_broker *b, const tm_listener_cfg *lcfg)
{
    tm_conn_home *h = b->homes;
    while (h && h->lcfg != lcfg)
        h = h->next;
    if (!h && (h = calloc(1, sizeof *h))) {
        h->b = b;
        h->lcfg = lcfg;
        h->next = b->homes;
        b->homes = h;
    }
    return h;
}

tm_conn *tm_broker_open(tm_broker *b, const tm_conn_info *info, int64_t now)
{
    b->now = now;
    const tm_conn_home *home = home_of(b, info->listener);
    tm_conn *c = home ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        free(info->identity);
        tm_atls_peer_unref(info->attestation);
        return NULL;
    }
    c->home = home;
    c->tls = info->tls;
    c->io = info->io;
    tm_buf_init(&c->out);
    if (info->identity || info->attestation) {
        if (!tm_conn_ext_get(c)) {
            free(c);
            free(info->identity);
            tm_atls_peer_unref(info->attestation);
            return NULL;
        }
        c->ext->identity = info->identity;
        c->ext->attest = info->attestation;
    }
    c->last_rx_ms = (uint32_t)now;
    c->state = TM_CS_NEW;
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->n_conns++;
    b->st.clients_total_ever++;
    if (tm_conn_attest(c) && tm_log_enabled(TM_LOG_NOTICE)) {
        const tm_claims *cl = tm_atls_peer_get_claims(tm_conn_attest(c));
        char meas[97];
        tm_hex_encode(cl->measurement, cl->measurement_len < 48 ? cl->measurement_len : 48, meas);
        tm_log(TM_LOG_NOTICE, "connection %s: client attestation accepted (%s, measurement %s%s)",
               tm_conn_peer(c), cl->format_name, meas, cl->debug ? ", debug" : "");
    }
    tm_log(TM_LOG_DEBUG, "new connection from %s", tm_conn_peer(c));
    return c;
}

uint32_t tm_broker_connections(const tm_broker *b) { return b->n_conns; }

tm_broker_io_stats *tm_broker_io(tm_broker *b) { return &b->io; }

/* ---- timers ------------------------------------------------------------- */

int64_t tm_broker_tick(tm_broker *b, int64_t now)
{
    b->now = now;
    if (now < b->next_tick_ms)
        return b->next_tick_ms;
    for (tm_conn *c = b->conns, *next; c; c = next) {
        next = c->next;
        /* an output buffer unused for a whole tick goes back to the allocator:
         * idle connections hold no buffers */
        if (!c->out_recent && c->out.len == 0 && c->out.cap) {
            tm_buf_free(&c->out);
            tm_buf_init(&c->out);
        }
        if (!c->out_recent && c->ext && c->ext->out_early.len == 0 && c->ext->out_early.cap) {
            tm_buf_free(&c->ext->out_early);
            tm_buf_init(&c->ext->out_early);
        }
        c->out_recent = false;
        if (c->state == TM_CS_CONNECTED && c->keep_alive &&
            tm_conn_idle_ms(c, now) > (uint32_t)c->keep_alive * 1500)
            tm_conn_fail(c, TM_RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
        else if (c->state == TM_CS_NEW &&
                 tm_conn_idle_ms(c, now) > b->cfg->handshake_timeout_ms)
            tm_conn_end(c, c->is_bridge ? "no CONNACK in time" : "no CONNECT in time");
    }
    tm_bridge_tick(b, now);
    tm_will_tick(b, now);
    tm_sess_expire(b, now);
    if (b->cfg->sys_interval && now >= b->next_sys_ms) {
        tm_sys_publish(b);
        b->next_sys_ms = now + (int64_t)b->cfg->sys_interval * 1000;
    }
    b->next_tick_ms = now + TM_TICK_MS;
    return b->next_tick_ms;
}

/* ---- configuration ------------------------------------------------------ */

int tm_broker_reload_auth(tm_broker *b, char *err, size_t errcap)
{
    struct tm_auth *a = NULL;
    if (b->cfg->password_file || b->cfg->acl_file) {
        a = tm_auth_load(b->cfg, err, errcap);
        if (!a)
            return -1;
    }
    tm_auth_free(b->auth);
    b->auth = a;
    if (b->auth) {
        uint32_t i = 0, dropped = 0;
        tm_map_ent *e;
        while ((e = tm_map_next(&b->sessions, &i)))
            dropped += tm_outq_acl_sweep(b, e->val);
        if (dropped)
            tm_log(TM_LOG_NOTICE, "reload: %u queued message(s) dropped: the new ACL denies "
                   "their subscribers read access", dropped);
    }
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

tm_broker *tm_broker_new(const tm_config *cfg, int64_t now, char *err, size_t errcap)
{
    tm_broker *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    b->cfg = cfg;
    b->now = now;
    tm_map_init(&b->sessions);
    tm_map_init(&b->nodes);
    tm_buf_init(&b->scratch);
    for (int i = 0; i < TM_FORMS; i++)
        tm_buf_init(&b->forms.f[i].buf);
    tm_buf_init(&b->jr.buf);
    tm_map_init(&b->jr.by_sid);
    tm_map_init(&b->jr.by_mid);
    b->start_ms = now;
    b->start_wall = time(NULL);
    if ((cfg->password_file || cfg->acl_file) && !(b->auth = tm_auth_load(cfg, err, errcap))) {
        tm_broker_free(b);
        return NULL;
    }
    b->next_tick_ms = now + TM_TICK_MS;
    b->next_sys_ms = now;
    return b;
}

void tm_broker_free(tm_broker *b)
{
    if (!b)
        return;
    /* Shutting down is not an end of sessions: nothing more goes to the journal. */
    b->jr.on = false;
    /* Connections: ended without wills (the broker, not the client, ends them). */
    while (b->conns) {
        tm_conn *c = b->conns;
        c->will_suppressed = true;
        tm_broker_release(b, c);
    }
    tm_broker_bury(b);
    /* Sessions */
    for (;;) {
        uint32_t i = 0;
        tm_map_ent *e = tm_map_next(&b->sessions, &i);
        if (!e)
            break;
        tm_session *s = e->val;
        tm_will_discard(s);
        tm_sess_free(b, s);
    }
    tm_map_free(&b->sessions);
    tm_trie_free(b);
    tm_auth_free(b->auth);
    free(b->matches);
    tm_buf_free(&b->scratch);
    for (int i = 0; i < TM_FORMS; i++)
        tm_buf_free(&b->forms.f[i].buf);
    tm_buf_free(&b->jr.buf);
    tm_map_free(&b->jr.by_sid);
    tm_map_free(&b->jr.by_mid);
    tm_bridges_free(b);
    while (b->homes) {
        tm_conn_home *h = b->homes;
        b->homes = h->next;
        free(h);
    }
    free(b);
}
