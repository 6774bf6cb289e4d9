/*
 * connect.c — CONNECT (client to server) and CONNACK (server to client), both
 * directions, MQTT 3.1 ("MQIsdp", level 3), 3.1.1 (level 4) and 5.
 *
 * tm_decode_connect sets out->version as soon as it has read the protocol level,
 * even when it then fails, so that the broker can answer in the right CONNACK
 * format (v3 return code 1 for an unsupported version, v5 0x84). It checks the
 * structure only; policy (empty client ids, credentials, will topic ACLs, the
 * payload format of the will) is the broker's.
 *
 * A protocol level with its top bit set (0x83, 0x84) is a bridge saying what
 * it is, as Mosquitto's bridges do with try_private: `bridge` is set and the
 * version is the level without that bit.
 */
#include <string.h>

#include "mqtt/mqtt_int.h"

static bool str_is(tm_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.p, lit, n) == 0;
}

tm_rc tm_decode_connect(const uint8_t *body, size_t len, tm_connect *out)
{
    tm_rd r = tm_rd_make(body, len);
    uint8_t level, fl;
    tm_rc rc;
    memset(out, 0, sizeof *out);

    if (!tm_rd_bin(&r, &out->protocol_name) || !tm_rd_u8(&r, &level))
        return TM_RC_MALFORMED;
    if ((level == (0x80 | TM_V311) || level == (0x80 | TM_V31))) {
        /* a bridge announcing itself (Mosquitto's try_private) */
        out->bridge = true;
        level &= 0x7f;
    }
    out->version = level;
    if (str_is(out->protocol_name, "MQTT")) {
        if (level != TM_V311 && level != TM_V5) return TM_RC_UNSUPPORTED_VERSION;
    } else if (str_is(out->protocol_name, "MQIsdp")) {
        if (level != TM_V31) return TM_RC_UNSUPPORTED_VERSION;
    } else {
        return TM_RC_UNSUPPORTED_VERSION;
    }
    if (!tm_rd_u8(&r, &fl) || !tm_rd_u16(&r, &out->keep_alive)) return TM_RC_MALFORMED;
    if (fl & 0x01) return TM_RC_MALFORMED;               /* reserved bit */
    out->clean_start = fl & 0x02;
    out->will = fl & 0x04;
    out->will_qos = (fl >> 3) & 3;
    out->will_retain = fl & 0x20;
    bool has_pass = fl & 0x40, has_user = fl & 0x80;
    if (out->will_qos == 3) return TM_RC_MALFORMED;
    if (!out->will && (out->will_qos || out->will_retain)) return TM_RC_MALFORMED;
    if (has_pass && !has_user && !tm_is_v5(level)) return TM_RC_MALFORMED;

    if (tm_is_v5(level) &&
        (rc = tm_props_decode(&r, &out->props, TM_PS_CONNECT, false)) != TM_RC_SUCCESS)
        return rc;
    if ((rc = tm_rd_utf8(&r, &out->client_id)) != TM_RC_SUCCESS) return rc;
    if (out->will) {
        if (tm_is_v5(level) &&
            (rc = tm_props_decode(&r, &out->will_props, TM_PS_WILL, false)) != TM_RC_SUCCESS)
            return rc;
        if ((rc = tm_rd_utf8(&r, &out->will_topic)) != TM_RC_SUCCESS) return rc;
        if (!tm_rd_bin(&r, &out->will_payload)) return TM_RC_MALFORMED;
    }
    if (has_user && (rc = tm_rd_utf8(&r, &out->username)) != TM_RC_SUCCESS) return rc;
    if (has_pass && !tm_rd_bin(&r, &out->password)) return TM_RC_MALFORMED;
    if (tm_rd_left(&r)) return TM_RC_MALFORMED;
    /* A will topic is a topic name; it is well-formed UTF-8 at this point. */
    if (out->will && !tm_topic_name_valid(out->will_topic.p, out->will_topic.len))
        return TM_RC_TOPIC_NAME_INVALID;
    return TM_RC_SUCCESS;
}

void tm_encode_connect(tm_buf *b, const tm_connect *c)
{
    static const uint8_t mqtt[] = "MQTT", mqisdp[] = "MQIsdp";
    tm_str name = c->protocol_name;
    if (!name.p) {
        name.p = c->version == TM_V31 ? mqisdp : mqtt;
        name.len = c->version == TM_V31 ? 6 : 4;
    }
    uint8_t v = c->version;
    uint8_t fl = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->will ? 0x04 : 0) |
                           (c->will ? (c->will_qos & 3) << 3 : 0) |
                           (c->will && c->will_retain ? 0x20 : 0) |
                           (c->password.p ? 0x40 : 0) | (c->username.p ? 0x80 : 0));
    size_t rem = 2 + name.len + 1 + 1 + 2 + tm_props_block_size(v, &c->props) +
                 2 + c->client_id.len;
    if (c->will)
        rem += tm_props_block_size(v, &c->will_props) + 2 + c->will_topic.len + 2 +
               c->will_payload.len;
    if (c->username.p) rem += 2 + c->username.len;
    if (c->password.p) rem += 2 + c->password.len;

    tm_put_header(b, TM_CONNECT << 4, rem);
    tm_buf_str(b, name);
    tm_buf_u8(b, (uint8_t)(v | (c->bridge && v != TM_V5 ? 0x80 : 0)));
    tm_buf_u8(b, fl);
    tm_buf_u16(b, c->keep_alive);
    tm_props_put(b, v, &c->props);
    tm_buf_str(b, c->client_id);
    if (c->will) {
        tm_props_put(b, v, &c->will_props);
        tm_buf_str(b, c->will_topic);
        tm_buf_str(b, c->will_payload);
    }
    if (c->username.p) tm_buf_str(b, c->username);
    if (c->password.p) tm_buf_str(b, c->password);
}

/* CONNACK reason codes of MQTT 5 (spec 3.2.2.2). */
static const uint8_t connack_codes[] = {
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F
};

tm_rc tm_decode_connack(const uint8_t *body, size_t len, uint8_t version, tm_connack *out)
{
    tm_rd r = tm_rd_make(body, len);
    uint8_t fl;
    memset(out, 0, sizeof *out);
    if (!tm_rd_u8(&r, &fl) || !tm_rd_u8(&r, &out->code)) return TM_RC_MALFORMED;
    if (fl & 0xFE) return TM_RC_MALFORMED;               /* reserved flag bits */
    out->session_present = fl & 1;
    if (tm_is_v5(version)) {
        if (!tm_code_in(out->code, connack_codes, sizeof connack_codes))
            return TM_RC_PROTOCOL_ERROR;
        tm_rc rc = tm_props_decode(&r, &out->props, TM_PS_CONNACK, false);
        if (rc != TM_RC_SUCCESS) return rc;
    } else if (out->code > TM_V3_NOT_AUTHORIZED) {
        return TM_RC_MALFORMED;
    }
    if (tm_rd_left(&r)) return TM_RC_MALFORMED;
    /* A refused connection never has a session (3.1.1 3.2.2-4, 5.0 3.2.2-6). */
    if (out->session_present && out->code != 0) return tm_bad(version);
    return TM_RC_SUCCESS;
}

void tm_encode_connack(tm_buf *b, uint8_t version, const tm_connack *c)
{
    size_t rem = 2 + tm_props_block_size(version, &c->props);
    tm_put_header(b, TM_CONNACK << 4, rem);
    tm_buf_u8(b, c->session_present ? 1 : 0);
    tm_buf_u8(b, c->code);
    tm_props_put(b, version, &c->props);
}
