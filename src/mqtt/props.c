/*
 * props.c — MQTT 5 properties (spec 2.2.2): decoding a property block into
 * tm_props, encoding tm_props back, and iterating user properties.
 *
 * Decoding rules: an unknown identifier (or one not encoded in a single byte,
 * which would be a non-minimal VBI for every known id) is a malformed packet; a
 * known identifier not allowed in this packet, a repeated identifier (except
 * user properties, and subscription identifiers in server-to-client PUBLISH),
 * or an out-of-range value is a protocol error; a topic alias of 0 is "topic
 * alias invalid"; ill-formed UTF-8 is malformed.
 *
 * User properties are not copied: tm_props.user is the raw region of the packet
 * from the first user property to the end of the last one, in on-wire form
 * (0x26, u16 len, key, u16 len, value)*, so that the broker forwards them with a
 * single copy. A sender may legally interleave other properties between user
 * properties; the region then contains those too, and the iterator and the
 * encoder skip them (they were decoded into their own fields). The encoder
 * copies the region with one memcpy whenever it holds only user properties.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

enum { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VBI, PT_STR, PT_BIN, PT_PAIR };

static const uint8_t ptype[TM_P_MAX_ID + 1] = {
    [TM_P_PAYLOAD_FORMAT] = PT_BYTE,       [TM_P_MESSAGE_EXPIRY] = PT_U32,
    [TM_P_CONTENT_TYPE] = PT_STR,          [TM_P_RESPONSE_TOPIC] = PT_STR,
    [TM_P_CORRELATION_DATA] = PT_BIN,      [TM_P_SUB_ID] = PT_VBI,
    [TM_P_SESSION_EXPIRY] = PT_U32,        [TM_P_ASSIGNED_CLIENT_ID] = PT_STR,
    [TM_P_SERVER_KEEP_ALIVE] = PT_U16,     [TM_P_AUTH_METHOD] = PT_STR,
    [TM_P_AUTH_DATA] = PT_BIN,             [TM_P_REQUEST_PROBLEM_INFO] = PT_BYTE,
    [TM_P_WILL_DELAY] = PT_U32,            [TM_P_REQUEST_RESPONSE_INFO] = PT_BYTE,
    [TM_P_RESPONSE_INFO] = PT_STR,         [TM_P_SERVER_REFERENCE] = PT_STR,
    [TM_P_REASON_STRING] = PT_STR,         [TM_P_RECEIVE_MAX] = PT_U16,
    [TM_P_TOPIC_ALIAS_MAX] = PT_U16,       [TM_P_TOPIC_ALIAS] = PT_U16,
    [TM_P_MAX_QOS] = PT_BYTE,              [TM_P_RETAIN_AVAILABLE] = PT_BYTE,
    [TM_P_USER_PROPERTY] = PT_PAIR,        [TM_P_MAX_PACKET_SIZE] = PT_U32,
    [TM_P_WILDCARD_SUB_AVAILABLE] = PT_BYTE, [TM_P_SUB_ID_AVAILABLE] = PT_BYTE,
    [TM_P_SHARED_SUB_AVAILABLE] = PT_BYTE,
};

/* Field accessors by id; only called for ids of the matching type. */
static tm_str *str_field(tm_props *pr, unsigned id)
{
    switch (id) {
    case TM_P_CONTENT_TYPE: return &pr->content_type;
    case TM_P_RESPONSE_TOPIC: return &pr->response_topic;
    case TM_P_CORRELATION_DATA: return &pr->correlation_data;
    case TM_P_ASSIGNED_CLIENT_ID: return &pr->assigned_client_id;
    case TM_P_AUTH_METHOD: return &pr->auth_method;
    case TM_P_AUTH_DATA: return &pr->auth_data;
    case TM_P_RESPONSE_INFO: return &pr->response_info;
    case TM_P_SERVER_REFERENCE: return &pr->server_reference;
    default: return &pr->reason_string;   /* TM_P_REASON_STRING */
    }
}

static void num_set(tm_props *pr, unsigned id, uint32_t v)
{
    switch (id) {
    case TM_P_PAYLOAD_FORMAT: pr->payload_format = (uint8_t)v; break;
    case TM_P_MESSAGE_EXPIRY: pr->message_expiry = v; break;
    case TM_P_SESSION_EXPIRY: pr->session_expiry = v; break;
    case TM_P_SERVER_KEEP_ALIVE: pr->server_keep_alive = (uint16_t)v; break;
    case TM_P_REQUEST_PROBLEM_INFO: pr->request_problem_info = (uint8_t)v; break;
    case TM_P_WILL_DELAY: pr->will_delay = v; break;
    case TM_P_REQUEST_RESPONSE_INFO: pr->request_response_info = (uint8_t)v; break;
    case TM_P_RECEIVE_MAX: pr->receive_max = (uint16_t)v; break;
    case TM_P_TOPIC_ALIAS_MAX: pr->topic_alias_max = (uint16_t)v; break;
    case TM_P_TOPIC_ALIAS: pr->topic_alias = (uint16_t)v; break;
    case TM_P_MAX_QOS: pr->max_qos = (uint8_t)v; break;
    case TM_P_RETAIN_AVAILABLE: pr->retain_available = (uint8_t)v; break;
    case TM_P_MAX_PACKET_SIZE: pr->max_packet_size = v; break;
    case TM_P_WILDCARD_SUB_AVAILABLE: pr->wildcard_sub_available = (uint8_t)v; break;
    case TM_P_SUB_ID_AVAILABLE: pr->sub_id_available = (uint8_t)v; break;
    case TM_P_SHARED_SUB_AVAILABLE: pr->shared_sub_available = (uint8_t)v; break;
    default: break;
    }
}

static uint32_t num_get(const tm_props *pr, unsigned id)
{
    switch (id) {
    case TM_P_PAYLOAD_FORMAT: return pr->payload_format;
    case TM_P_MESSAGE_EXPIRY: return pr->message_expiry;
    case TM_P_SESSION_EXPIRY: return pr->session_expiry;
    case TM_P_SERVER_KEEP_ALIVE: return pr->server_keep_alive;
    case TM_P_REQUEST_PROBLEM_INFO: return pr->request_problem_info;
    case TM_P_WILL_DELAY: return pr->will_delay;
    case TM_P_REQUEST_RESPONSE_INFO: return pr->request_response_info;
    case TM_P_RECEIVE_MAX: return pr->receive_max;
    case TM_P_TOPIC_ALIAS_MAX: return pr->topic_alias_max;
    case TM_P_TOPIC_ALIAS: return pr->topic_alias;
    case TM_P_MAX_QOS: return pr->max_qos;
    case TM_P_RETAIN_AVAILABLE: return pr->retain_available;
    case TM_P_MAX_PACKET_SIZE: return pr->max_packet_size;
    case TM_P_WILDCARD_SUB_AVAILABLE: return pr->wildcard_sub_available;
    case TM_P_SUB_ID_AVAILABLE: return pr->sub_id_available;
    case TM_P_SHARED_SUB_AVAILABLE: return pr->shared_sub_available;
    default: return 0;
    }
}

/* Value rules beyond the data type (spec 3.x property descriptions). */
static tm_rc check_num(unsigned id, uint32_t v)
{
    switch (id) {
    case TM_P_PAYLOAD_FORMAT: case TM_P_REQUEST_PROBLEM_INFO:
    case TM_P_REQUEST_RESPONSE_INFO: case TM_P_MAX_QOS: case TM_P_RETAIN_AVAILABLE:
    case TM_P_WILDCARD_SUB_AVAILABLE: case TM_P_SUB_ID_AVAILABLE:
    case TM_P_SHARED_SUB_AVAILABLE:
        return v > 1 ? TM_RC_PROTOCOL_ERROR : TM_RC_SUCCESS;
    case TM_P_RECEIVE_MAX: case TM_P_MAX_PACKET_SIZE:
        return v == 0 ? TM_RC_PROTOCOL_ERROR : TM_RC_SUCCESS;
    case TM_P_TOPIC_ALIAS:
        return v == 0 ? TM_RC_TOPIC_ALIAS_INVALID : TM_RC_SUCCESS;
    default:
        return TM_RC_SUCCESS;
    }
}

tm_rc tm_props_decode(tm_rd *r, tm_props *pr, uint64_t allowed, bool multi_sub_id)
{
    uint32_t plen;
    memset(pr, 0, sizeof *pr);
    if (!tm_rd_vbi(r, &plen) || plen > tm_rd_left(r)) return TM_RC_MALFORMED;
    tm_rd q = tm_rd_make(r->p + r->pos, plen);
    r->pos += plen;
    size_t ubeg = 0, uend = 0;

    while (tm_rd_left(&q)) {
        size_t at = q.pos;
        uint8_t id;
        tm_rc rc;
        (void)tm_rd_u8(&q, &id);
        if (id > TM_P_MAX_ID || ptype[id] == PT_NONE) return TM_RC_MALFORMED;
        if (!(allowed & TM_PBIT(id))) return TM_RC_PROTOCOL_ERROR;
        if ((pr->present & TM_PBIT(id)) && id != TM_P_USER_PROPERTY &&
            !(id == TM_P_SUB_ID && multi_sub_id))
            return TM_RC_PROTOCOL_ERROR;
        pr->present |= TM_PBIT(id);

        switch (ptype[id]) {
        case PT_BYTE: {
            uint8_t v;
            if (!tm_rd_u8(&q, &v)) return TM_RC_MALFORMED;
            if ((rc = check_num(id, v)) != TM_RC_SUCCESS) return rc;
            num_set(pr, id, v);
            break;
        }
        case PT_U16: {
            uint16_t v;
            if (!tm_rd_u16(&q, &v)) return TM_RC_MALFORMED;
            if ((rc = check_num(id, v)) != TM_RC_SUCCESS) return rc;
            num_set(pr, id, v);
            break;
        }
        case PT_U32: {
            uint32_t v;
            if (!tm_rd_u32(&q, &v)) return TM_RC_MALFORMED;
            if ((rc = check_num(id, v)) != TM_RC_SUCCESS) return rc;
            num_set(pr, id, v);
            break;
        }
        case PT_VBI: {                       /* subscription identifier */
            uint32_t v;
            if (!tm_rd_vbi(&q, &v)) return TM_RC_MALFORMED;
            if (v == 0) return TM_RC_PROTOCOL_ERROR;
            /* More than TM_MAX_SUB_IDS matching subscriptions: keep the first
             * ones; the extra identifiers are only informative to the client. */
            if (pr->n_sub_ids < TM_MAX_SUB_IDS) pr->sub_ids[pr->n_sub_ids++] = v;
            break;
        }
        case PT_STR: {
            tm_str *s = str_field(pr, id);
            if ((rc = tm_rd_utf8(&q, s)) != TM_RC_SUCCESS) return rc;
            if (id == TM_P_RESPONSE_TOPIC && !tm_topic_name_valid(s->p, s->len))
                return TM_RC_PROTOCOL_ERROR;
            break;
        }
        case PT_BIN:
            if (!tm_rd_bin(&q, str_field(pr, id))) return TM_RC_MALFORMED;
            break;
        case PT_PAIR: {
            tm_str k, v;
            if ((rc = tm_rd_utf8(&q, &k)) != TM_RC_SUCCESS) return rc;
            if ((rc = tm_rd_utf8(&q, &v)) != TM_RC_SUCCESS) return rc;
            if (pr->n_user++ == 0) ubeg = at;
            uend = q.pos;
            break;
        }
        }
    }
    if (pr->n_user) {
        pr->user.p = q.p + ubeg;
        pr->user.len = (uint32_t)(uend - ubeg);
    }
    /* Authentication data only makes sense with a method (spec 3.1.2.11.10). */
    if ((pr->present & TM_PBIT(TM_P_AUTH_DATA)) && !(pr->present & TM_PBIT(TM_P_AUTH_METHOD)))
        return TM_RC_PROTOCOL_ERROR;
    return TM_RC_SUCCESS;
}

/* Skip one non-user property of the raw user region; false if not well formed. */
static bool skip_prop(tm_rd *q, uint8_t id)
{
    tm_str s;
    uint32_t v;
    if (id > TM_P_MAX_ID) return false;
    switch (ptype[id]) {
    case PT_BYTE: if (tm_rd_left(q) < 1) return false; q->pos += 1; return true;
    case PT_U16: if (tm_rd_left(q) < 2) return false; q->pos += 2; return true;
    case PT_U32: if (tm_rd_left(q) < 4) return false; q->pos += 4; return true;
    case PT_VBI: return tm_rd_vbi(q, &v);
    case PT_STR: case PT_BIN: return tm_rd_bin(q, &s);
    default: return false;
    }
}

bool tm_props_user_next(const tm_props *pr, uint32_t *pos, tm_str *key, tm_str *val)
{
    if (!pr->user.p) return false;
    tm_rd q = tm_rd_make(pr->user.p, pr->user.len);
    q.pos = *pos;
    if (q.pos > q.len) return false;
    for (;;) {
        uint8_t id;
        if (!tm_rd_u8(&q, &id)) return false;
        if (id == TM_P_USER_PROPERTY) {
            if (!tm_rd_bin(&q, key) || !tm_rd_bin(&q, val)) return false;
            *pos = (uint32_t)q.pos;
            return true;
        }
        if (!skip_prop(&q, id)) return false;
    }
}

/* True when the raw user region holds nothing but user properties. */
static bool user_region_pure(const tm_props *pr)
{
    tm_rd q = tm_rd_make(pr->user.p, pr->user.len);
    while (tm_rd_left(&q)) {
        uint8_t id;
        tm_str k, v;
        (void)tm_rd_u8(&q, &id);
        if (id != TM_P_USER_PROPERTY || !tm_rd_bin(&q, &k) || !tm_rd_bin(&q, &v))
            return false;
    }
    return true;
}

/* One walk serves both size computation (b == NULL) and encoding. It visits
 * only the properties that are there (the set bits of `present`, plus user
 * properties and subscription identifiers, which have their own fields), in
 * ascending id order: a delivery without properties costs one test, not a walk
 * over every id (this ran for every PUBLISH sent, twice). */
static size_t props_emit(tm_buf *b, const tm_props *pr)
{
    size_t n = 0;
    uint64_t todo = pr->present & ~(TM_PBIT(TM_P_USER_PROPERTY) | TM_PBIT(TM_P_SUB_ID));
    if (pr->user.p && pr->user.len)
        todo |= TM_PBIT(TM_P_USER_PROPERTY);
    if (pr->n_sub_ids || (pr->present & TM_PBIT(TM_P_SUB_ID)))
        todo |= TM_PBIT(TM_P_SUB_ID);
    todo &= (TM_PBIT(TM_P_MAX_ID + 1) - 1) & ~TM_PBIT(0);
    while (todo) {
        unsigned id = (unsigned)__builtin_ctzll(todo);
        todo &= todo - 1;
        uint8_t t = ptype[id];
        if (t == PT_NONE) continue;
        if (t == PT_PAIR) {
            if (user_region_pure(pr)) {
                n += pr->user.len;
                if (b) tm_buf_put(b, pr->user.p, pr->user.len);
            } else {
                uint32_t pos = 0;
                tm_str k, v;
                while (tm_props_user_next(pr, &pos, &k, &v)) {
                    n += 5u + k.len + v.len;
                    if (b) {
                        tm_buf_u8(b, TM_P_USER_PROPERTY);
                        tm_buf_str(b, k);
                        tm_buf_str(b, v);
                    }
                }
            }
            continue;
        }
        if (t == PT_VBI) {
            uint32_t cnt = pr->n_sub_ids;
            if (cnt > TM_MAX_SUB_IDS) cnt = TM_MAX_SUB_IDS;
            if (cnt == 0) cnt = 1;   /* present without n_sub_ids: sub_ids[0] */
            for (uint32_t i = 0; i < cnt; i++) {
                n += 1 + tm_vbi_size(pr->sub_ids[i]);
                if (b) {
                    tm_buf_u8(b, (uint8_t)id);
                    tm_buf_vbi(b, pr->sub_ids[i]);
                }
            }
            continue;
        }
        n += 1;
        if (b) tm_buf_u8(b, (uint8_t)id);
        switch (t) {
        case PT_BYTE:
            n += 1;
            if (b) tm_buf_u8(b, (uint8_t)num_get(pr, id));
            break;
        case PT_U16:
            n += 2;
            if (b) tm_buf_u16(b, (uint16_t)num_get(pr, id));
            break;
        case PT_U32:
            n += 4;
            if (b) tm_buf_u32(b, num_get(pr, id));
            break;
        default: { /* PT_STR, PT_BIN */
            tm_str s = *str_field((tm_props *)pr, id);
            n += 2u + s.len;
            if (b) tm_buf_str(b, s);
            break;
        }
        }
    }
    return n;
}

size_t tm_props_size(const tm_props *pr)
{
    return props_emit(NULL, pr);
}

void tm_props_encode(tm_buf *b, const tm_props *pr)
{
    size_t n = props_emit(NULL, pr);
    if (n > TM_MAX_VBI) {
        b->oom = true;
        return;
    }
    tm_buf_vbi(b, (uint32_t)n);
    props_emit(b, pr);
}

size_t tm_props_block_size(uint8_t version, const tm_props *pr)
{
    if (!tm_is_v5(version)) return 0;
    size_t n = pr ? tm_props_size(pr) : 0;
    return tm_vbi_size((uint32_t)(n > TM_MAX_VBI ? TM_MAX_VBI : n)) + n;
}

void tm_props_put(tm_buf *b, uint8_t version, const tm_props *pr)
{
    if (!tm_is_v5(version)) return;
    if (!pr) {
        tm_buf_u8(b, 0);
        return;
    }
    tm_props_encode(b, pr);
}
