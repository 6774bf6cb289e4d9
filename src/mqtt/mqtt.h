/*
 * mqtt.h — the MQTT 3.1.1 / 5.0 packet codec. Pure: no I/O, no allocation.
 *
 * Decoders take the bytes of one whole packet body (everything after the fixed
 * header) and fill a struct whose strings and binaries are slices (tm_str) that
 * point INTO the caller's buffer: zero copy, valid as long as that buffer is.
 * Encoders append to a caller-owned growable byte buffer (tm_buf).
 *
 * Every decoder returns a tm_rc: TM_RC_SUCCESS (0) or the MQTT 5 reason code that
 * the broker should send / log (0x81 malformed packet, 0x82 protocol error, 0x84
 * unsupported protocol version, 0x85 client identifier not valid, 0x95 packet too
 * large ...). The same codes are used for 3.1.1 connections, where the caller
 * simply closes the connection.
 *
 * Invariants: a decoder never reads outside [body, body+len); it never trusts a
 * length field; on error the output struct is unspecified.
 */
#ifndef TM_MQTT_H
#define TM_MQTT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---- protocol constants ------------------------------------------------ */

enum tm_ptype {
    TM_CONNECT = 1, TM_CONNACK = 2, TM_PUBLISH = 3, TM_PUBACK = 4, TM_PUBREC = 5,
    TM_PUBREL = 6, TM_PUBCOMP = 7, TM_SUBSCRIBE = 8, TM_SUBACK = 9,
    TM_UNSUBSCRIBE = 10, TM_UNSUBACK = 11, TM_PINGREQ = 12, TM_PINGRESP = 13,
    TM_DISCONNECT = 14, TM_AUTH = 15
};

enum tm_version { TM_V31 = 3, TM_V311 = 4, TM_V5 = 5 };

/* MQTT 5 reason codes (subset names follow the specification). */
typedef enum tm_rc {
    TM_RC_SUCCESS = 0x00,               /* also: normal disconnection, granted QoS 0 */
    TM_RC_GRANTED_QOS1 = 0x01,
    TM_RC_GRANTED_QOS2 = 0x02,
    TM_RC_DISCONNECT_WITH_WILL = 0x04,
    TM_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    TM_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    TM_RC_CONTINUE_AUTH = 0x18,
    TM_RC_REAUTHENTICATE = 0x19,
    TM_RC_UNSPECIFIED = 0x80,
    TM_RC_MALFORMED = 0x81,
    TM_RC_PROTOCOL_ERROR = 0x82,
    TM_RC_IMPL_SPECIFIC = 0x83,
    TM_RC_UNSUPPORTED_VERSION = 0x84,
    TM_RC_CLIENT_ID_INVALID = 0x85,
    TM_RC_BAD_USER_OR_PASSWORD = 0x86,
    TM_RC_NOT_AUTHORIZED = 0x87,
    TM_RC_SERVER_UNAVAILABLE = 0x88,
    TM_RC_SERVER_BUSY = 0x89,
    TM_RC_BANNED = 0x8A,
    TM_RC_SERVER_SHUTTING_DOWN = 0x8B,
    TM_RC_BAD_AUTH_METHOD = 0x8C,
    TM_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    TM_RC_SESSION_TAKEN_OVER = 0x8E,
    TM_RC_TOPIC_FILTER_INVALID = 0x8F,
    TM_RC_TOPIC_NAME_INVALID = 0x90,
    TM_RC_PACKET_ID_IN_USE = 0x91,
    TM_RC_PACKET_ID_NOT_FOUND = 0x92,
    TM_RC_RECEIVE_MAX_EXCEEDED = 0x93,
    TM_RC_TOPIC_ALIAS_INVALID = 0x94,
    TM_RC_PACKET_TOO_LARGE = 0x95,
    TM_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    TM_RC_QUOTA_EXCEEDED = 0x97,
    TM_RC_ADMINISTRATIVE_ACTION = 0x98,
    TM_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    TM_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    TM_RC_QOS_NOT_SUPPORTED = 0x9B,
    TM_RC_USE_ANOTHER_SERVER = 0x9C,
    TM_RC_SERVER_MOVED = 0x9D,
    TM_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
    TM_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    TM_RC_MAX_CONNECT_TIME = 0xA0,
    TM_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
    TM_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
    /* not reason codes on the wire: codec-internal results */
    TM_RC_NEED_MORE = 0x100             /* tm_frame_parse: incomplete header */
} tm_rc;

/* MQTT 3.1.1 CONNACK return codes. */
enum tm_connack_v3 {
    TM_V3_ACCEPTED = 0, TM_V3_BAD_VERSION = 1, TM_V3_ID_REJECTED = 2,
    TM_V3_SERVER_UNAVAILABLE = 3, TM_V3_BAD_USER_PASS = 4, TM_V3_NOT_AUTHORIZED = 5
};

/* Property identifiers. */
enum tm_prop_id {
    TM_P_PAYLOAD_FORMAT = 0x01, TM_P_MESSAGE_EXPIRY = 0x02, TM_P_CONTENT_TYPE = 0x03,
    TM_P_RESPONSE_TOPIC = 0x08, TM_P_CORRELATION_DATA = 0x09, TM_P_SUB_ID = 0x0B,
    TM_P_SESSION_EXPIRY = 0x11, TM_P_ASSIGNED_CLIENT_ID = 0x12,
    TM_P_SERVER_KEEP_ALIVE = 0x13, TM_P_AUTH_METHOD = 0x15, TM_P_AUTH_DATA = 0x16,
    TM_P_REQUEST_PROBLEM_INFO = 0x17, TM_P_WILL_DELAY = 0x18,
    TM_P_REQUEST_RESPONSE_INFO = 0x19, TM_P_RESPONSE_INFO = 0x1A,
    TM_P_SERVER_REFERENCE = 0x1C, TM_P_REASON_STRING = 0x1F,
    TM_P_RECEIVE_MAX = 0x21, TM_P_TOPIC_ALIAS_MAX = 0x22, TM_P_TOPIC_ALIAS = 0x23,
    TM_P_MAX_QOS = 0x24, TM_P_RETAIN_AVAILABLE = 0x25, TM_P_USER_PROPERTY = 0x26,
    TM_P_MAX_PACKET_SIZE = 0x27, TM_P_WILDCARD_SUB_AVAILABLE = 0x28,
    TM_P_SUB_ID_AVAILABLE = 0x29, TM_P_SHARED_SUB_AVAILABLE = 0x2A
};

#define TM_MAX_VBI 268435455u          /* largest variable byte integer */
#define TM_MAX_SUB_IDS 32              /* subscription identifiers carried per PUBLISH */

/* ---- slices and buffers ------------------------------------------------ */

/* A byte slice. p == NULL means "absent" (distinct from present and empty). */
typedef struct tm_str {
    const uint8_t *p;
    uint32_t len;
} tm_str;

/* Growable output buffer. Memory is managed with realloc/free; on allocation
 * failure `oom` is set and further appends are ignored (check once at the end).
 * 16 bytes: every connection holds a few of them, so they are kept small; a
 * buffer holds at most TM_BUF_MAX bytes (more than any packet, batch or
 * snapshot the project builds), beyond which it reports oom. */
#define TM_BUF_MAX 0x7fffffffu
#define TM_BUF_MIN 64u           /* the capacity of a buffer's first allocation */
typedef struct tm_buf {
    uint8_t *data;
    uint32_t len;
    uint32_t cap : 31;
    uint32_t oom : 1;
} tm_buf;

void tm_buf_init(tm_buf *b);
void tm_buf_free(tm_buf *b);
bool tm_buf_reserve(tm_buf *b, size_t extra);
void tm_buf_put(tm_buf *b, const void *p, size_t n);
void tm_buf_u8(tm_buf *b, uint8_t v);
void tm_buf_u16(tm_buf *b, uint16_t v);
void tm_buf_u32(tm_buf *b, uint32_t v);
void tm_buf_vbi(tm_buf *b, uint32_t v);
void tm_buf_str(tm_buf *b, tm_str s);         /* uint16 length prefix + bytes */
void tm_buf_consume(tm_buf *b, size_t n);     /* drop n bytes from the front */

/* ---- primitives -------------------------------------------------------- */

/* Decode a variable byte integer at p[0..avail). Returns TM_RC_SUCCESS and sets
 * *val and *used, TM_RC_NEED_MORE if avail is too short, TM_RC_MALFORMED if
 * more than 4 bytes or a non-minimal encoding beyond 4 bytes. */
tm_rc tm_vbi_decode(const uint8_t *p, size_t avail, uint32_t *val, size_t *used);
size_t tm_vbi_size(uint32_t v);              /* 1..4 */

/* UTF-8 rules of MQTT (spec 1.5.4): well-formed UTF-8, no U+0000, no surrogates,
 * no overlong forms. Control characters U+0001..U+001F and U+007F..U+009F are
 * allowed (the spec only says SHOULD NOT), non-characters allowed. */
bool tm_utf8_valid(const uint8_t *p, size_t len);

/* ---- fixed header ------------------------------------------------------ */

typedef struct tm_frame {
    uint8_t type;          /* enum tm_ptype */
    uint8_t flags;         /* low nibble of byte 0 */
    uint32_t remaining;    /* remaining length */
    uint32_t header_len;   /* 2..5 */
} tm_frame;

/* Parse the fixed header at buf[0..avail). TM_RC_NEED_MORE when incomplete;
 * TM_RC_MALFORMED for a bad VBI, type 0, or reserved flag bits that do not
 * match the packet type (PUBLISH flags are checked by tm_decode_publish);
 * TM_RC_PACKET_TOO_LARGE when header_len + remaining > max_packet (0 = no limit).
 * Completeness of the body is the caller's business (header_len + remaining). */
tm_rc tm_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_packet, tm_frame *f);

/* ---- properties -------------------------------------------------------- */

/* Bit for property `id` in tm_props.present. */
#define TM_PBIT(id) (1ull << (id))

typedef struct tm_props {
    uint64_t present;                /* TM_PBIT(id) for each property seen */
    uint8_t payload_format;
    uint32_t message_expiry;
    tm_str content_type;
    tm_str response_topic;
    tm_str correlation_data;
    uint32_t sub_ids[TM_MAX_SUB_IDS];/* SUBSCRIBE: one; server PUBLISH: several */
    uint32_t n_sub_ids;
    uint32_t session_expiry;
    tm_str assigned_client_id;
    uint16_t server_keep_alive;
    tm_str auth_method;
    tm_str auth_data;
    uint8_t request_problem_info;
    uint32_t will_delay;
    uint8_t request_response_info;
    tm_str response_info;
    tm_str server_reference;
    tm_str reason_string;
    uint16_t receive_max;
    uint16_t topic_alias_max;
    uint16_t topic_alias;
    uint8_t max_qos;
    uint8_t retain_available;
    uint32_t max_packet_size;
    uint8_t wildcard_sub_available;
    uint8_t sub_id_available;
    uint8_t shared_sub_available;
    /* User properties: `user` is the raw region holding all user-property
     * entries (each: 0x26, key string, value string), in order, so that the
     * broker can forward them with one copy; n_user counts the pairs. */
    tm_str user;
    uint32_t n_user;
} tm_props;

/* Iterate user properties: *pos starts at 0; returns false at the end. */
bool tm_props_user_next(const tm_props *pr, uint32_t *pos, tm_str *key, tm_str *val);

/* Encode a property block (VBI length + properties) of every property whose bit
 * is set in pr->present, in ascending id order; user properties are copied from
 * pr->user (raw region) when pr->n_user > 0. */
void tm_props_encode(tm_buf *b, const tm_props *pr);
size_t tm_props_size(const tm_props *pr);    /* bytes of the block without the VBI */

/* ---- packets ----------------------------------------------------------- */

typedef struct tm_connect {
    uint8_t version;             /* 3, 4 or 5 */
    bool bridge;                 /* level | 0x80 (3.1, 3.1.1): a bridge (try_private) */
    tm_str protocol_name;        /* "MQTT" or "MQIsdp" */
    bool clean_start;
    bool will;
    uint8_t will_qos;
    bool will_retain;
    uint16_t keep_alive;
    tm_props props;
    tm_str client_id;            /* may be empty (len 0, p != NULL) */
    tm_props will_props;
    tm_str will_topic;
    tm_str will_payload;
    tm_str username;             /* p == NULL when absent */
    tm_str password;
} tm_connect;

typedef struct tm_connack {
    bool session_present;
    uint8_t code;                /* v5 reason code or v3 return code */
    tm_props props;
} tm_connack;

typedef struct tm_publish {
    uint8_t qos;
    bool dup, retain;
    tm_str topic;                /* may be empty in v5 when a topic alias is used */
    uint16_t packet_id;          /* 0 for QoS 0 */
    tm_props props;
    tm_str payload;
} tm_publish;

/* PUBACK, PUBREC, PUBREL, PUBCOMP */
typedef struct tm_ack {
    uint8_t type;
    uint16_t packet_id;
    uint8_t reason;              /* TM_RC_SUCCESS when omitted */
    tm_props props;
} tm_ack;

/* Subscription options byte, decoded. */
typedef struct tm_subopts {
    uint8_t qos;                 /* maximum QoS */
    bool no_local;
    bool retain_as_published;
    uint8_t retain_handling;     /* 0, 1 or 2 */
} tm_subopts;

/* SUBSCRIBE / UNSUBSCRIBE: the list of filters is walked with tm_sub_next over
 * the raw region `topics` (UNSUBSCRIBE entries have no options byte). The decoder
 * has already validated every entry, so iteration cannot fail. */
typedef struct tm_subscribe {
    uint16_t packet_id;
    tm_props props;
    tm_str topics;
    uint32_t count;
    bool unsubscribe;
} tm_subscribe;

bool tm_sub_next(const tm_subscribe *s, uint32_t *pos, tm_str *filter, tm_subopts *opts);

/* SUBACK / UNSUBACK (used by clients). */
typedef struct tm_suback {
    uint16_t packet_id;
    tm_props props;
    tm_str codes;                /* one reason code byte per filter */
} tm_suback;

/* DISCONNECT and AUTH */
typedef struct tm_disconnect {
    uint8_t reason;
    tm_props props;
} tm_disconnect;

/* Decoders. `body`/`len` are the packet body; `flags` the fixed-header nibble;
 * `version` the session's protocol version (ignored by tm_decode_connect). */
tm_rc tm_decode_connect(const uint8_t *body, size_t len, tm_connect *out);
tm_rc tm_decode_connack(const uint8_t *body, size_t len, uint8_t version, tm_connack *out);
tm_rc tm_decode_publish(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                        tm_publish *out);
tm_rc tm_decode_ack(uint8_t type, const uint8_t *body, size_t len, uint8_t flags,
                    uint8_t version, tm_ack *out);
tm_rc tm_decode_subscribe(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                          tm_subscribe *out);
tm_rc tm_decode_unsubscribe(const uint8_t *body, size_t len, uint8_t flags, uint8_t version,
                            tm_subscribe *out);
tm_rc tm_decode_suback(uint8_t type, const uint8_t *body, size_t len, uint8_t version,
                       tm_suback *out);
tm_rc tm_decode_disconnect(const uint8_t *body, size_t len, uint8_t version,
                           tm_disconnect *out);
tm_rc tm_decode_auth(const uint8_t *body, size_t len, tm_disconnect *out);

/* Encoders: append one whole packet (fixed header included) to b. Properties are
 * written only when version == TM_V5. */
void tm_encode_connect(tm_buf *b, const tm_connect *c);
void tm_encode_connack(tm_buf *b, uint8_t version, const tm_connack *c);
void tm_encode_publish(tm_buf *b, uint8_t version, const tm_publish *p);
void tm_encode_ack(tm_buf *b, uint8_t version, const tm_ack *a);
void tm_encode_subscribe(tm_buf *b, uint8_t version, uint16_t packet_id,
                         const tm_props *props, const tm_str *filters,
                         const tm_subopts *opts, uint32_t n);
void tm_encode_unsubscribe(tm_buf *b, uint8_t version, uint16_t packet_id,
                           const tm_props *props, const tm_str *filters, uint32_t n);
void tm_encode_suback(tm_buf *b, uint8_t version, uint8_t type /* SUBACK|UNSUBACK */,
                      uint16_t packet_id, const tm_props *props,
                      const uint8_t *codes, uint32_t n);
void tm_encode_simple(tm_buf *b, uint8_t type);  /* PINGREQ, PINGRESP, v3 DISCONNECT */
void tm_encode_disconnect(tm_buf *b, uint8_t version, const tm_disconnect *d);
void tm_encode_auth(tm_buf *b, const tm_disconnect *a);

/* Size in bytes of the whole PUBLISH packet tm_encode_publish would write. */
size_t tm_publish_size(uint8_t version, const tm_publish *p);

/* ---- topics ------------------------------------------------------------ */

/* Topic name: valid UTF-8 (caller checks), length >= 1, no '+' or '#'. */
bool tm_topic_name_valid(const uint8_t *p, size_t len);
/* Topic filter: length >= 1, '#' only as the whole last level, '+' only as a whole
 * level. Shared filters ($share/group/filter) are split by tm_topic_split_shared. */
bool tm_topic_filter_valid(const uint8_t *p, size_t len);
/* Does filter match name? Implements the '$' rule: a filter starting with a
 * wildcard does not match a name starting with '$'. */
bool tm_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name, size_t nlen);
/* "$share/group/filter": returns true and sets group and filter when the filter
 * is a well-formed shared subscription; false when it is not shared. *bad is set
 * when it starts with "$share/" but is malformed (empty group, '+'/'#' in group,
 * missing filter). */
bool tm_topic_split_shared(tm_str full, tm_str *group, tm_str *filter, bool *bad);

const char *tm_rc_name(unsigned rc);        /* "malformed packet", ... */
const char *tm_ptype_name(unsigned type);   /* "PUBLISH", ... */

#endif
