/*
 * test_codec.c — unit tests of the MQTT codec (src/mqtt): primitives (tm_buf,
 * VBI, UTF-8), the fixed header, properties, and every packet type, as encode ->
 * decode round trips in 3.1.1 and 5 plus hand-made malformed packets, each
 * checked for its exact reason code.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_eq.h"
#include "mqtt/mqtt.h"
#include "tm_test.h"

/* ---- helpers ------------------------------------------------------------ */

static tm_str S(const char *s)
{
    tm_str r = { (const uint8_t *)s, (uint32_t)strlen(s) };
    return r;
}

static tm_str B(const void *p, size_t n)
{
    tm_str r = { (const uint8_t *)p, (uint32_t)n };
    return r;
}

static int str_is(tm_str s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Parse hex ("10 0c 00 04" — spaces ignored) into out; returns the length. */
static size_t hex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        char t[3] = { h[0], h[1], 0 };
        out[n++] = (uint8_t)strtoul(t, NULL, 16);
        h += 2;
    }
    return n;
}

/* Parse the fixed header of a whole encoded packet in b and check it is complete. */
static const uint8_t *frame_of(const tm_buf *b, tm_frame *f)
{
    TM_CHECK(!b->oom);
    tm_rc rc = tm_frame_parse(b->data, b->len, 0, f);
    TM_CHECK_EQ(rc, TM_RC_SUCCESS);
    if (rc != TM_RC_SUCCESS) return NULL;
    TM_CHECK_EQ(f->header_len + f->remaining, b->len);
    return b->data + f->header_len;
}

/* Raw user-property region for two pairs, on-wire form. */
static const uint8_t user2[] = { 0x26, 0, 1, 'k', 0, 2, 'v', '1',
                                 0x26, 0, 2, 'k', '2', 0, 0 };

static void set_user2(tm_props *p)
{
    p->user = B(user2, sizeof user2);
    p->n_user = 2;
    p->present |= TM_PBIT(TM_P_USER_PROPERTY);
}

/* ---- primitives --------------------------------------------------------- */

static void test_buf(void)
{
    tm_buf b;
    tm_buf_init(&b);
    for (int i = 0; i < 1000; i++) tm_buf_u8(&b, (uint8_t)i);
    TM_CHECK_EQ(b.len, 1000);
    TM_CHECK(b.cap >= 1000);
    TM_CHECK_EQ(b.data[999], (uint8_t)999);
    tm_buf_consume(&b, 998);
    TM_CHECK_EQ(b.len, 2);
    TM_CHECK_EQ(b.data[0], (uint8_t)998);
    tm_buf_u16(&b, 0x1234);
    tm_buf_u32(&b, 0xA1B2C3D4);
    const uint8_t want[] = { 0xE6, 0xE7, 0x12, 0x34, 0xA1, 0xB2, 0xC3, 0xD4 };
    TM_CHECK_EQ(b.len, sizeof want);
    TM_CHECK_MEM(b.data, want, sizeof want);
    tm_buf_consume(&b, 100);
    TM_CHECK_EQ(b.len, 0);
    tm_buf_str(&b, S("ab"));
    TM_CHECK_EQ(b.len, 4);
    TM_CHECK(!b.oom);
    /* Unencodable values are reported through oom, not written. */
    tm_str big = { b.data, 70000 };
    tm_buf_str(&b, big);
    TM_CHECK(b.oom);
    size_t len = b.len;
    tm_buf_u8(&b, 1);
    TM_CHECK_EQ(b.len, len);
    tm_buf_free(&b);
    TM_CHECK(b.data == NULL && b.len == 0 && !b.oom);
    tm_buf_vbi(&b, TM_MAX_VBI + 1);
    TM_CHECK(b.oom);
    tm_buf_free(&b);
}

static void test_vbi(void)
{
    static const struct { uint32_t v; size_t n; } cases[] = {
        { 0, 1 }, { 127, 1 }, { 128, 2 }, { 16383, 2 }, { 16384, 3 },
        { 2097151, 3 }, { 2097152, 4 }, { 268435455, 4 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_buf b;
        tm_buf_init(&b);
        tm_buf_vbi(&b, cases[i].v);
        TM_CHECK_EQ(b.len, cases[i].n);
        TM_CHECK_EQ(tm_vbi_size(cases[i].v), cases[i].n);
        uint32_t v = 1;
        size_t used = 0;
        TM_CHECK_EQ(tm_vbi_decode(b.data, b.len, &v, &used), TM_RC_SUCCESS);
        TM_CHECK_EQ(v, cases[i].v);
        TM_CHECK_EQ(used, cases[i].n);
        /* every truncation asks for more */
        for (size_t k = 0; k < b.len; k++)
            TM_CHECK_EQ(tm_vbi_decode(b.data, k, &v, &used), TM_RC_NEED_MORE);
        tm_buf_free(&b);
    }
    uint8_t x[8];
    uint32_t v;
    size_t used;
    /* spec examples */
    hex("ff ff ff 7f", x);
    TM_CHECK_EQ(tm_vbi_decode(x, 4, &v, &used), TM_RC_SUCCESS);
    TM_CHECK_EQ(v, 268435455);
    hex("80 80 80 01", x);
    TM_CHECK_EQ(tm_vbi_decode(x, 4, &v, &used), TM_RC_SUCCESS);
    TM_CHECK_EQ(v, 2097152);
    /* a fifth byte is never valid, even before it arrives */
    hex("ff ff ff ff 01", x);
    TM_CHECK_EQ(tm_vbi_decode(x, 5, &v, &used), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_vbi_decode(x, 4, &v, &used), TM_RC_MALFORMED);
    hex("80 80 80 80 00", x);
    TM_CHECK_EQ(tm_vbi_decode(x, 5, &v, &used), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_vbi_decode(x, 0, &v, &used), TM_RC_NEED_MORE);
}

static void test_utf8(void)
{
#define U(s, ok) TM_CHECK_EQ(tm_utf8_valid((const uint8_t *)(s), sizeof(s) - 1), (ok))
    U("", 1);
    U("hello/world", 1);
    U("\x01\x1f\x7f", 1);                  /* control characters: allowed */
    U("\xc2\x80\xc2\x9f", 1);              /* C1 controls: allowed */
    U("\xc3\xa9t\xc3\xa9", 1);             /* été */
    U("\xe2\x82\xac", 1);                  /* U+20AC */
    U("\xef\xbf\xbf", 1);                  /* U+FFFF non-character: allowed */
    U("\xef\xbb\xbf", 1);                  /* U+FEFF BOM: allowed */
    U("\xf0\x90\x80\x80", 1);              /* U+10000 */
    U("\xf4\x8f\xbf\xbf", 1);              /* U+10FFFF, the maximum */
    U("\xed\x9f\xbf", 1);                  /* U+D7FF, just below surrogates */
    U("\xee\x80\x80", 1);                  /* U+E000, just above */
    TM_CHECK(!tm_utf8_valid((const uint8_t *)"a\0b", 3));   /* U+0000 */
    U("\xc0\x80", 0);                      /* overlong U+0000 */
    U("\xc1\xbf", 0);                      /* overlong 2-byte */
    U("\xe0\x80\xaf", 0);                  /* overlong '/' */
    U("\xe0\x9f\xbf", 0);                  /* overlong 3-byte */
    U("\xf0\x8f\xbf\xbf", 0);              /* overlong 4-byte */
    U("\xed\xa0\x80", 0);                  /* U+D800 */
    U("\xed\xbf\xbf", 0);                  /* U+DFFF */
    U("\xed\xb0\x80", 0);                  /* U+DC00 */
    U("\xf4\x90\x80\x80", 0);              /* U+110000 */
    U("\xf5\x80\x80\x80", 0);
    U("\xff", 0);
    U("\xfe", 0);
    U("\x80", 0);                          /* lone continuation */
    U("a\xbf", 0);
    U("\xc3", 0);                          /* truncated sequences */
    U("\xe2\x82", 0);
    U("\xf0\x90\x80", 0);
    U("\xc3\x28", 0);                      /* bad continuation */
    U("\xe2\x28\xa1", 0);
    U("\xf0\x90\x28\xbc", 0);
#undef U
}

/* ---- fixed header ------------------------------------------------------- */

static void test_frame(void)
{
    uint8_t x[8] = { 0 };
    tm_frame f;
    TM_CHECK_EQ(tm_frame_parse(x, 0, 0, &f), TM_RC_NEED_MORE);
    hex("30", x);
    TM_CHECK_EQ(tm_frame_parse(x, 1, 0, &f), TM_RC_NEED_MORE);
    hex("30 80", x);
    TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), TM_RC_NEED_MORE);
    hex("3d 80 01", x);                   /* PUBLISH: any flags pass the header */
    TM_CHECK_EQ(tm_frame_parse(x, 3, 0, &f), TM_RC_SUCCESS);
    TM_CHECK_EQ(f.type, TM_PUBLISH);
    TM_CHECK_EQ(f.flags, 0xd);
    TM_CHECK_EQ(f.remaining, 128);
    TM_CHECK_EQ(f.header_len, 3);
    hex("36 00", x);                      /* QoS 3 is the decoder's to reject */
    TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), TM_RC_SUCCESS);
    hex("00 00", x);
    TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), TM_RC_MALFORMED);
    hex("00", x);                         /* rejected before the length arrives */
    TM_CHECK_EQ(tm_frame_parse(x, 1, 0, &f), TM_RC_MALFORMED);
    hex("ff ff ff ff ff 01", x);
    TM_CHECK_EQ(tm_frame_parse(x, 6, 0, &f), TM_RC_MALFORMED);
    hex("30 ff ff ff ff 01", x);
    TM_CHECK_EQ(tm_frame_parse(x, 6, 0, &f), TM_RC_MALFORMED);
    /* reserved flags per type */
    static const struct { uint8_t b0; tm_rc rc; } fl[] = {
        { 0x10, TM_RC_SUCCESS }, { 0x11, TM_RC_MALFORMED }, { 0x20, TM_RC_SUCCESS },
        { 0x28, TM_RC_MALFORMED }, { 0x40, TM_RC_SUCCESS }, { 0x42, TM_RC_MALFORMED },
        { 0x50, TM_RC_SUCCESS }, { 0x52, TM_RC_MALFORMED }, { 0x62, TM_RC_SUCCESS },
        { 0x60, TM_RC_MALFORMED }, { 0x63, TM_RC_MALFORMED }, { 0x70, TM_RC_SUCCESS },
        { 0x82, TM_RC_SUCCESS }, { 0x80, TM_RC_MALFORMED }, { 0x83, TM_RC_MALFORMED },
        { 0x90, TM_RC_SUCCESS }, { 0x92, TM_RC_MALFORMED }, { 0xa2, TM_RC_SUCCESS },
        { 0xa0, TM_RC_MALFORMED }, { 0xb0, TM_RC_SUCCESS }, { 0xb2, TM_RC_MALFORMED },
        { 0xc0, TM_RC_SUCCESS }, { 0xc1, TM_RC_MALFORMED }, { 0xd0, TM_RC_SUCCESS },
        { 0xe0, TM_RC_SUCCESS }, { 0xe4, TM_RC_MALFORMED }, { 0xf0, TM_RC_SUCCESS },
        { 0xf8, TM_RC_MALFORMED },
    };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        x[0] = fl[i].b0;
        x[1] = 0;
        TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), fl[i].rc);
    }
    hex("c0 01", x);                      /* PINGREQ must be empty */
    TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), TM_RC_MALFORMED);
    hex("d0 01", x);
    TM_CHECK_EQ(tm_frame_parse(x, 2, 0, &f), TM_RC_MALFORMED);
    /* max packet size counts the whole packet */
    hex("30 7f", x);
    TM_CHECK_EQ(tm_frame_parse(x, 2, 129, &f), TM_RC_SUCCESS);
    TM_CHECK_EQ(tm_frame_parse(x, 2, 128, &f), TM_RC_PACKET_TOO_LARGE);
    hex("30 ff ff ff 7f", x);
    TM_CHECK_EQ(tm_frame_parse(x, 5, 0, &f), TM_RC_SUCCESS);
    TM_CHECK_EQ(f.remaining, TM_MAX_VBI);
    TM_CHECK_EQ(f.header_len, 5);
    TM_CHECK_EQ(tm_frame_parse(x, 5, 0xFFFFFFFFu, &f), TM_RC_SUCCESS);
    TM_CHECK_EQ(tm_frame_parse(x, 5, TM_MAX_VBI + 4, &f), TM_RC_PACKET_TOO_LARGE);

    /* simple packets */
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_simple(&b, TM_PINGREQ);
    tm_encode_simple(&b, TM_PINGRESP);
    tm_encode_simple(&b, TM_DISCONNECT);
    const uint8_t want[] = { 0xc0, 0, 0xd0, 0, 0xe0, 0 };
    TM_CHECK_EQ(b.len, sizeof want);
    TM_CHECK_MEM(b.data, want, sizeof want);
    tm_buf_free(&b);
}

/* Remaining lengths at each VBI boundary, via PUBLISH, with tm_publish_size. */
static void test_remaining_boundaries(void)
{
    static const uint32_t rems[] = { 127, 128, 16383, 16384, 2097151, 2097152 };
    uint8_t *payload = calloc(1, 2097152);
    TM_CHECK(payload != NULL);
    if (!payload) return;
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        for (size_t i = 0; i < sizeof rems / sizeof rems[0]; i++) {
            tm_publish p;
            memset(&p, 0, sizeof p);
            p.topic = S("t");
            /* topic 3 bytes (+1 empty property block in v5) */
            size_t fixed = 3 + (v ? 1 : 0);
            p.payload = B(payload, rems[i] - fixed);
            tm_buf b;
            tm_buf_init(&b);
            tm_encode_publish(&b, ver, &p);
            TM_CHECK_EQ(b.len, tm_publish_size(ver, &p));
            tm_frame f;
            const uint8_t *body = frame_of(&b, &f);
            TM_CHECK_EQ(f.remaining, rems[i]);
            TM_CHECK_EQ(f.header_len, 1 + tm_vbi_size(rems[i]));
            tm_publish d;
            if (body) {
                TM_CHECK_EQ(tm_decode_publish(body, f.remaining, f.flags, ver, &d),
                            TM_RC_SUCCESS);
                TM_CHECK_EQ(d.payload.len, rems[i] - fixed);
            }
            tm_buf_free(&b);
        }
    }
    free(payload);
}

/* ---- properties --------------------------------------------------------- */

static void test_props_encode_order(void)
{
    tm_props p;
    memset(&p, 0, sizeof p);
    p.present = TM_PBIT(TM_P_TOPIC_ALIAS) | TM_PBIT(TM_P_PAYLOAD_FORMAT) |
                TM_PBIT(TM_P_MESSAGE_EXPIRY);
    p.topic_alias = 7;
    p.payload_format = 1;
    p.message_expiry = 0x01020304;
    set_user2(&p);
    tm_buf b;
    tm_buf_init(&b);
    tm_props_encode(&b, &p);
    uint8_t want[64];
    size_t n = hex("1b 01 01 02 01 02 03 04 23 00 07", want);
    memcpy(want + n, user2, sizeof user2);
    n += sizeof user2;
    want[0] = (uint8_t)(n - 1);
    TM_CHECK_EQ(b.len, n);
    TM_CHECK_MEM(b.data, want, n);
    TM_CHECK_EQ(tm_props_size(&p), n - 1);
    tm_buf_free(&b);

    /* only ids 1..0x2A (the highest) are emitted, whatever else `present` holds; a
     * subscription identifier marked present without n_sub_ids is sub_ids[0];
     * an unset id between set ones stays out */
    tm_props q;
    memset(&q, 0, sizeof q);
    q.present = TM_PBIT(0) | TM_PBIT(63) | TM_PBIT(0x2B) | TM_PBIT(TM_P_SUB_ID) |
                TM_PBIT(TM_P_SHARED_SUB_AVAILABLE);
    q.sub_ids[0] = 5;
    q.shared_sub_available = 1;
    tm_buf_init(&b);
    tm_props_encode(&b, &q);
    n = hex("04 0b 05 2a 01", want);
    TM_CHECK_EQ(b.len, n);
    TM_CHECK_MEM(b.data, want, n);
    tm_buf_free(&b);

    /* user iteration over the raw region */
    uint32_t pos = 0;
    tm_str k, v;
    TM_CHECK(tm_props_user_next(&p, &pos, &k, &v));
    TM_CHECK(str_is(k, "k") && str_is(v, "v1"));
    TM_CHECK(tm_props_user_next(&p, &pos, &k, &v));
    TM_CHECK(str_is(k, "k2") && v.len == 0 && v.p != NULL);
    TM_CHECK(!tm_props_user_next(&p, &pos, &k, &v));
    tm_props empty;
    memset(&empty, 0, sizeof empty);
    pos = 0;
    TM_CHECK(!tm_props_user_next(&empty, &pos, &k, &v));
    TM_CHECK_EQ(tm_props_size(&empty), 0);
}

/* A PUBLISH whose user properties are interleaved with other properties: the
 * region spans them, the iterator skips them, re-encoding drops them. */
static void test_props_user_interleaved(void)
{
    uint8_t pkt[64];
    size_t n = hex("00 01 74"                 /* topic "t" */
                   "0f"                        /* properties: 15 bytes */
                   "26 00 01 61 00 01 62"      /* a=b */
                   "01 01"                     /* payload format 1 */
                   "26 00 01 63 00 00"         /* c= */
                   "70",                       /* payload "p" */
                   pkt);
    tm_publish d;
    TM_CHECK_EQ(tm_decode_publish(pkt, n, 0, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.props.n_user, 2);
    TM_CHECK_EQ(d.props.payload_format, 1);
    TM_CHECK_EQ(d.props.user.len, 15);
    TM_CHECK(d.props.user.p == pkt + 4);
    uint32_t pos = 0;
    tm_str k, v;
    TM_CHECK(tm_props_user_next(&d.props, &pos, &k, &v) && str_is(k, "a") && str_is(v, "b"));
    TM_CHECK(tm_props_user_next(&d.props, &pos, &k, &v) && str_is(k, "c") && v.len == 0);
    TM_CHECK(!tm_props_user_next(&d.props, &pos, &k, &v));
    TM_CHECK_EQ(tm_props_size(&d.props), 15);   /* 13 user bytes + payload format */
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, TM_V5, &d);
    TM_CHECK_EQ(b.len, tm_publish_size(TM_V5, &d));
    tm_frame f;
    const uint8_t *body = frame_of(&b, &f);
    tm_publish d2;
    if (body) {
        TM_CHECK_EQ(tm_decode_publish(body, f.remaining, f.flags, TM_V5, &d2), TM_RC_SUCCESS);
        TM_CHECK(tm_eq_publish(&d, &d2));
        TM_CHECK_EQ(d2.props.user.len, 13);   /* now contiguous */
    }
    tm_buf_free(&b);
}

/* ---- CONNECT / CONNACK -------------------------------------------------- */

static void fill_connect_props(tm_props *p, tm_props *w)
{
    memset(p, 0, sizeof *p);
    memset(w, 0, sizeof *w);
    p->present = TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_RECEIVE_MAX) |
                 TM_PBIT(TM_P_MAX_PACKET_SIZE) | TM_PBIT(TM_P_TOPIC_ALIAS_MAX) |
                 TM_PBIT(TM_P_REQUEST_RESPONSE_INFO) | TM_PBIT(TM_P_REQUEST_PROBLEM_INFO) |
                 TM_PBIT(TM_P_AUTH_METHOD) | TM_PBIT(TM_P_AUTH_DATA);
    p->session_expiry = 0xFFFFFFFF;
    p->receive_max = 20;
    p->max_packet_size = 1 << 20;
    p->topic_alias_max = 10;
    p->request_response_info = 1;
    p->request_problem_info = 0;
    p->auth_method = S("SCRAM-SHA-1");
    p->auth_data = B("\x00\x01\x02", 3);
    set_user2(p);
    w->present = TM_PBIT(TM_P_WILL_DELAY) | TM_PBIT(TM_P_PAYLOAD_FORMAT) |
                 TM_PBIT(TM_P_MESSAGE_EXPIRY) | TM_PBIT(TM_P_CONTENT_TYPE) |
                 TM_PBIT(TM_P_RESPONSE_TOPIC) | TM_PBIT(TM_P_CORRELATION_DATA);
    w->will_delay = 30;
    w->payload_format = 1;
    w->message_expiry = 3600;
    w->content_type = S("text/plain");
    w->response_topic = S("reply/here");
    w->correlation_data = B("\xde\xad", 2);
    set_user2(w);
}

static void connect_roundtrip(const tm_connect *c)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connect(&b, c);
    tm_frame f;
    const uint8_t *body = frame_of(&b, &f);
    TM_CHECK_EQ(f.type, TM_CONNECT);
    tm_connect d;
    if (body) {
        TM_CHECK_EQ(tm_decode_connect(body, f.remaining, &d), TM_RC_SUCCESS);
        tm_connect want = *c;
        if (!want.protocol_name.p) want.protocol_name = S(c->version == 3 ? "MQIsdp" : "MQTT");
        if (c->version != TM_V5) {
            memset(&want.props, 0, sizeof want.props);
            memset(&want.will_props, 0, sizeof want.will_props);
        }
        TM_CHECK(tm_eq_connect(&want, &d));
    }
    tm_buf_free(&b);
}

static void test_connect_roundtrip(void)
{
    tm_connect c;
    for (uint8_t ver = 3; ver <= 5; ver++) {
        memset(&c, 0, sizeof c);
        c.version = ver;
        c.clean_start = true;
        c.keep_alive = 60;
        c.client_id = S("");
        connect_roundtrip(&c);
        if (ver != TM_V5) {   /* a bridge's CONNECT (try_private) */
            c.bridge = true;
            connect_roundtrip(&c);
            c.bridge = false;
        }

        c.client_id = S("client-\xc3\xa9");
        c.will = true;
        c.will_qos = 2;
        c.will_retain = true;
        c.will_topic = S("last/will");
        c.will_payload = B("bye\0x", 5);
        c.username = S("user");
        c.password = B("p\0ss", 4);
        c.keep_alive = 0xFFFF;
        if (ver == TM_V5) fill_connect_props(&c.props, &c.will_props);
        connect_roundtrip(&c);

        c.will = false;
        c.will_qos = 0;
        c.will_retain = false;
        c.will_topic.p = c.will_payload.p = NULL;
        c.will_topic.len = c.will_payload.len = 0;
        memset(&c.will_props, 0, sizeof c.will_props);
        c.password.p = NULL;
        c.password.len = 0;
        connect_roundtrip(&c);
    }
    /* v5: password without user name is allowed */
    memset(&c, 0, sizeof c);
    c.version = TM_V5;
    c.client_id = S("x");
    c.password = S("secret");
    connect_roundtrip(&c);
    /* empty password present is distinct from absent */
    c.username = S("");
    c.password = S("");
    connect_roundtrip(&c);

    /* byte-exact 3.1.1 CONNECT from the spec's layout */
    memset(&c, 0, sizeof c);
    c.version = TM_V311;
    c.clean_start = true;
    c.keep_alive = 10;
    c.client_id = S("ab");
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_connect(&b, &c);
    uint8_t want[32];
    size_t n = hex("10 0e 00 04 4d 51 54 54 04 02 00 0a 00 02 61 62", want);
    TM_CHECK_EQ(b.len, n);
    TM_CHECK_MEM(b.data, want, n);
    tm_buf_free(&b);
}

/* Decode a CONNECT body given as hex. */
static tm_rc connect_hex(const char *h, tm_connect *c)
{
    static uint8_t x[256];   /* decoded slices point here after return */
    size_t n = hex(h, x);
    return tm_decode_connect(x, n, c);
}

static void test_connect_malformed(void)
{
    tm_connect c;
    /* minimal good ones */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c 0000", &c), TM_RC_SUCCESS);
    TM_CHECK(c.client_id.p != NULL && c.client_id.len == 0);
    TM_CHECK(c.username.p == NULL && c.password.p == NULL);
    TM_CHECK_EQ(c.keep_alive, 60);
    TM_CHECK_EQ(connect_hex("00 06 4d5149736470 03 02 003c 0001 61", &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(c.version, 3);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 05 02 003c 00 0000", &c), TM_RC_SUCCESS);
    TM_CHECK(!c.bridge);
    /* a bridge's level (try_private): 3.1.1 and 3.1 with the top bit, not 5 */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 84 02 003c 0000", &c), TM_RC_SUCCESS);
    TM_CHECK(c.bridge && c.version == TM_V311);
    TM_CHECK_EQ(connect_hex("00 06 4d5149736470 83 02 003c 0001 61", &c), TM_RC_SUCCESS);
    TM_CHECK(c.bridge && c.version == TM_V31);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 85 02 003c 00 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 83 02 003c 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    /* versions */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 03 02 003c 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(c.version, 3);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 06 02 003c 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(connect_hex("00 06 4d5149736470 04 02 003c 0000", &c),
                TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(connect_hex("00 04 4d515458 04 02 003c 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(connect_hex("00 04 6d717474 04 02 003c 0000", &c), TM_RC_UNSUPPORTED_VERSION);
    TM_CHECK_EQ(connect_hex("00 04 4d5154", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("", &c), TM_RC_MALFORMED);
    /* flags */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 03 003c 0000", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 0a 003c 0000", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 22 003c 0000", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 1e 003c 0000 0001 74 0000", &c),
                TM_RC_MALFORMED);          /* will QoS 3 */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 36 003c 0000 0001 74 0000", &c),
                TM_RC_SUCCESS);            /* will QoS 2 + retain */
    TM_CHECK(c.will && c.will_qos == 2 && c.will_retain);
    /* password without user name: 3.1.1 malformed, 5 fine */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 42 003c 0000 0002 7070", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 06 4d5149736470 03 42 003c 0000 0002 7070", &c),
                TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 05 42 003c 00 0000 0002 7070", &c), TM_RC_SUCCESS);
    TM_CHECK(c.username.p == NULL && c.password.len == 2);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 c2 003c 0000 0001 75 0002 7070", &c),
                TM_RC_SUCCESS);
    TM_CHECK(str_is(c.username, "u"));
    /* UTF-8 */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c 0002 c0 80", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c 0001 00", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 82 003c 0000 0003 eda080", &c),
                TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 06 003c 0000 0001 ff 0000", &c),
                TM_RC_MALFORMED);          /* will topic */
    /* will topic must be a topic name */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 06 003c 0000 0001 23 0000", &c),
                TM_RC_TOPIC_NAME_INVALID);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 06 003c 0000 0000 0000", &c),
                TM_RC_TOPIC_NAME_INVALID);
    /* truncation and leftovers */
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c 0005 61", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 00", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 02 003c 0000 00", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 82 003c 0000", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 04 06 003c 0000 0001 74", &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex("00 04 4d515454 05 02 003c", &c), TM_RC_MALFORMED);
    /* v5 properties */
#define P5(props) "00 04 4d515454 05 02 003c " props " 0000"
    TM_CHECK_EQ(connect_hex(P5("05 11 00000010"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(c.props.session_expiry, 16);
    TM_CHECK(c.props.present == TM_PBIT(TM_P_SESSION_EXPIRY));
    TM_CHECK_EQ(connect_hex(P5("03 21 0000"), &c), TM_RC_PROTOCOL_ERROR);    /* recv max 0 */
    TM_CHECK_EQ(connect_hex(P5("05 27 00000000"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(P5("02 19 02"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(P5("02 17 02"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(P5("04 17 01 19 01"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(connect_hex(P5("03 16 00 00"), &c), TM_RC_PROTOCOL_ERROR);   /* data, no method */
    TM_CHECK_EQ(connect_hex(P5("07 16 0000 15 0001 61"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(connect_hex(P5("0a 11 00000001 11 00000002"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(P5("03 23 0001"), &c), TM_RC_PROTOCOL_ERROR);    /* not allowed */
    TM_CHECK_EQ(connect_hex(P5("02 01 00"), &c), TM_RC_PROTOCOL_ERROR);      /* will-only */
    TM_CHECK_EQ(connect_hex(P5("02 05 00"), &c), TM_RC_MALFORMED);           /* unknown */
    TM_CHECK_EQ(connect_hex(P5("02 00 00"), &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex(P5("03 a6 00 00"), &c), TM_RC_MALFORMED);        /* 2-byte id */
    TM_CHECK_EQ(connect_hex(P5("09 26 0001 61 0001 62 26 00"), &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex(P5("0d 26 0001 61 0001 62 26 0001 61 0000"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(c.props.n_user, 2);
    TM_CHECK_EQ(connect_hex(P5("06 26 0001 ff 0000"), &c), TM_RC_MALFORMED);  /* bad UTF-8 */
    TM_CHECK_EQ(connect_hex(P5("05 15 0002 c080"), &c), TM_RC_MALFORMED);
    TM_CHECK_EQ(connect_hex(P5("04 11 000000"), &c), TM_RC_MALFORMED);       /* short value */
    TM_CHECK_EQ(connect_hex(P5("20 11 00000010"), &c), TM_RC_MALFORMED);     /* length > body */
    TM_CHECK_EQ(connect_hex(P5("ff ff ff ff 7f"), &c), TM_RC_MALFORMED);
#undef P5
    /* will properties */
#define W5(wprops) "00 04 4d515454 05 06 003c 00 0000 " wprops " 0001 74 0000"
    TM_CHECK_EQ(connect_hex(W5("00"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(connect_hex(W5("05 18 0000000a"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(c.will_props.will_delay, 10);
    TM_CHECK_EQ(connect_hex(W5("02 01 02"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(W5("04 01 01 01 01"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(W5("04 08 0001 23"), &c), TM_RC_PROTOCOL_ERROR);  /* resp topic # */
    TM_CHECK_EQ(connect_hex(W5("03 08 0000"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(W5("04 08 0001 61"), &c), TM_RC_SUCCESS);
    TM_CHECK_EQ(connect_hex(W5("05 11 00000001"), &c), TM_RC_PROTOCOL_ERROR); /* session exp */
    TM_CHECK_EQ(connect_hex(W5("03 23 0001"), &c), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(connect_hex(W5("02 01 01"), &c), TM_RC_SUCCESS);  /* payload UTF-8: broker's */
#undef W5
}

static void test_connack(void)
{
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        tm_connack c, d;
        memset(&c, 0, sizeof c);
        c.session_present = true;
        c.code = 0;
        if (v) {
            tm_props *p = &c.props;
            p->present = TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_ASSIGNED_CLIENT_ID) |
                         TM_PBIT(TM_P_SERVER_KEEP_ALIVE) | TM_PBIT(TM_P_AUTH_METHOD) |
                         TM_PBIT(TM_P_AUTH_DATA) | TM_PBIT(TM_P_RESPONSE_INFO) |
                         TM_PBIT(TM_P_SERVER_REFERENCE) | TM_PBIT(TM_P_REASON_STRING) |
                         TM_PBIT(TM_P_RECEIVE_MAX) | TM_PBIT(TM_P_TOPIC_ALIAS_MAX) |
                         TM_PBIT(TM_P_MAX_QOS) | TM_PBIT(TM_P_RETAIN_AVAILABLE) |
                         TM_PBIT(TM_P_MAX_PACKET_SIZE) | TM_PBIT(TM_P_WILDCARD_SUB_AVAILABLE) |
                         TM_PBIT(TM_P_SUB_ID_AVAILABLE) | TM_PBIT(TM_P_SHARED_SUB_AVAILABLE);
            p->session_expiry = 100;
            p->assigned_client_id = S("auto-1234");
            p->server_keep_alive = 30;
            p->auth_method = S("m");
            p->auth_data = S("");
            p->response_info = S("resp/");
            p->server_reference = S("other:1883");
            p->reason_string = S("welcome");
            p->receive_max = 65535;
            p->topic_alias_max = 100;
            p->max_qos = 1;
            p->retain_available = 0;
            p->max_packet_size = 268435460;
            p->wildcard_sub_available = 1;
            p->sub_id_available = 0;
            p->shared_sub_available = 1;
            set_user2(p);
        }
        tm_buf b;
        tm_buf_init(&b);
        tm_encode_connack(&b, ver, &c);
        tm_frame f;
        const uint8_t *body = frame_of(&b, &f);
        TM_CHECK_EQ(f.type, TM_CONNACK);
        if (body) {
            TM_CHECK_EQ(tm_decode_connack(body, f.remaining, ver, &d), TM_RC_SUCCESS);
            TM_CHECK(tm_eq_connack(&c, &d));
        }
        if (!v) {
            const uint8_t want[] = { 0x20, 2, 1, 0 };
            TM_CHECK_EQ(b.len, 4);
            TM_CHECK_MEM(b.data, want, 4);
        }
        tm_buf_free(&b);
    }
    uint8_t x[32];
    tm_connack d;
    size_t n;
    n = hex("00 05", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.code, TM_V3_NOT_AUTHORIZED);
    n = hex("00 06", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("02 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("01 05", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("00 00 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("00 84 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.code, TM_RC_UNSUPPORTED_VERSION);
    n = hex("00 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_MALFORMED);
    n = hex("00 01 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("01 87 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("00 00 02 24 02", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);  /* max QoS 2 */
    n = hex("00 00 02 25 05", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("00 00 03 21 00 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("00 00 02 17 01", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);  /* CONNECT-only */
    n = hex("00 00 00 00", x);
    TM_CHECK_EQ(tm_decode_connack(x, n, TM_V5, &d), TM_RC_MALFORMED);
}

/* ---- PUBLISH ------------------------------------------------------------ */

static void publish_roundtrip(uint8_t ver, const tm_publish *p)
{
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, ver, p);
    TM_CHECK_EQ(b.len, tm_publish_size(ver, p));
    tm_frame f;
    const uint8_t *body = frame_of(&b, &f);
    TM_CHECK_EQ(f.type, TM_PUBLISH);
    tm_publish d;
    if (body) {
        TM_CHECK_EQ(tm_decode_publish(body, f.remaining, f.flags, ver, &d), TM_RC_SUCCESS);
        tm_publish want = *p;
        if (ver != TM_V5) memset(&want.props, 0, sizeof want.props);
        TM_CHECK(tm_eq_publish(&want, &d));
    }
    tm_buf_free(&b);
}

static void test_publish_roundtrip(void)
{
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        for (uint8_t qos = 0; qos < 3; qos++) {
            tm_publish p;
            memset(&p, 0, sizeof p);
            p.qos = qos;
            p.dup = qos > 0;
            p.retain = qos == 1;
            p.topic = S("a/b/\xc3\xa9");
            p.packet_id = qos ? 0xBEEF : 0;
            p.payload = B("\x00hello", 6);
            publish_roundtrip(ver, &p);
            p.payload = B("", 0);
            publish_roundtrip(ver, &p);
            p.payload.p = NULL;
            publish_roundtrip(ver, &p);
            if (v) {
                p.props.present = TM_PBIT(TM_P_PAYLOAD_FORMAT) | TM_PBIT(TM_P_MESSAGE_EXPIRY) |
                                  TM_PBIT(TM_P_CONTENT_TYPE) | TM_PBIT(TM_P_RESPONSE_TOPIC) |
                                  TM_PBIT(TM_P_CORRELATION_DATA) | TM_PBIT(TM_P_TOPIC_ALIAS) |
                                  TM_PBIT(TM_P_SUB_ID);
                p.props.payload_format = 1;
                p.props.message_expiry = 99;
                p.props.content_type = S("application/json");
                p.props.response_topic = S("r/1");
                p.props.correlation_data = B("\x01\x02", 2);
                p.props.topic_alias = 5;
                p.props.n_sub_ids = 3;
                p.props.sub_ids[0] = 1;
                p.props.sub_ids[1] = 268435455;
                p.props.sub_ids[2] = 128;
                set_user2(&p.props);
                p.payload = S("{}");
                publish_roundtrip(ver, &p);
                /* alias-only publish with an empty topic */
                p.topic = S("");
                publish_roundtrip(ver, &p);
            }
        }
    }
    /* byte-exact QoS 1 v3 */
    tm_publish p;
    memset(&p, 0, sizeof p);
    p.qos = 1;
    p.retain = true;
    p.topic = S("t");
    p.packet_id = 10;
    p.payload = S("x");
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_publish(&b, TM_V311, &p);
    uint8_t want[16];
    size_t n = hex("33 06 0001 74 000a 78", want);
    TM_CHECK_EQ(b.len, n);
    TM_CHECK_MEM(b.data, want, n);
    tm_buf_free(&b);
    /* too many subscription identifiers: the first TM_MAX_SUB_IDS are kept */
    tm_buf_init(&b);
    tm_buf_put(&b, "\x00\x01t", 3);
    tm_buf_u8(&b, 2 * (TM_MAX_SUB_IDS + 2));
    for (int i = 0; i < TM_MAX_SUB_IDS + 2; i++) {
        tm_buf_u8(&b, TM_P_SUB_ID);
        tm_buf_u8(&b, (uint8_t)(i + 1));
    }
    tm_publish d;
    TM_CHECK_EQ(tm_decode_publish(b.data, b.len, 0, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.props.n_sub_ids, TM_MAX_SUB_IDS);
    TM_CHECK_EQ(d.props.sub_ids[TM_MAX_SUB_IDS - 1], TM_MAX_SUB_IDS);
    tm_buf_free(&b);
}

static tm_rc publish_hex(const char *h, uint8_t flags, uint8_t ver, tm_publish *p)
{
    static uint8_t x[256];   /* decoded slices point here after return */
    size_t n = hex(h, x);
    return tm_decode_publish(x, n, flags, ver, p);
}

static void test_publish_malformed(void)
{
    tm_publish p;
    TM_CHECK_EQ(publish_hex("0001 74 6869", 0, TM_V311, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.payload.len, 2);
    TM_CHECK_EQ(publish_hex("0001 74 00 6869", 0, TM_V5, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(publish_hex("0001 74", 0, TM_V311, &p), TM_RC_SUCCESS);
    TM_CHECK(p.payload.len == 0);
    /* QoS 3 */
    TM_CHECK_EQ(publish_hex("0001 74 0001", 6, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 0001 00", 6, TM_V5, &p), TM_RC_MALFORMED);
    /* DUP on QoS 0 */
    TM_CHECK_EQ(publish_hex("0001 74", 8, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 00", 8, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 0001", 0xb, TM_V311, &p), TM_RC_SUCCESS);
    TM_CHECK(p.dup && p.qos == 1 && p.retain && p.packet_id == 1);
    /* packet id 0 */
    TM_CHECK_EQ(publish_hex("0001 74 0000", 2, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 0000 00", 4, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 00", 2, TM_V311, &p), TM_RC_MALFORMED);
    /* topic */
    TM_CHECK_EQ(publish_hex("0003 612f23", 0, TM_V311, &p), TM_RC_TOPIC_NAME_INVALID);
    TM_CHECK_EQ(publish_hex("0003 612f2b 00", 0, TM_V5, &p), TM_RC_TOPIC_NAME_INVALID);
    TM_CHECK_EQ(publish_hex("0001 2b", 0, TM_V311, &p), TM_RC_TOPIC_NAME_INVALID);
    TM_CHECK_EQ(publish_hex("0002 c0af", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0003 61 00 62", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0005 6162", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("00", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0004 24535953", 0, TM_V311, &p), TM_RC_SUCCESS);   /* $SYS ok */
    /* empty topic */
    TM_CHECK_EQ(publish_hex("0000 6869", 0, TM_V311, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0000 00 6869", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0000 03 230001 6869", 0, TM_V5, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.props.topic_alias, 1);
    TM_CHECK(p.topic.p != NULL && p.topic.len == 0);
    /* properties */
    TM_CHECK_EQ(publish_hex("0001 74 03 230000", 0, TM_V5, &p), TM_RC_TOPIC_ALIAS_INVALID);
    TM_CHECK_EQ(publish_hex("0001 74 02 0b00", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 04 0b01 0b02", 0, TM_V5, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.props.n_sub_ids, 2);
    TM_CHECK_EQ(publish_hex("0001 74 05 0bffffff7f", 0, TM_V5, &p), TM_RC_SUCCESS);
    TM_CHECK_EQ(p.props.sub_ids[0], TM_MAX_VBI);
    TM_CHECK_EQ(publish_hex("0001 74 06 0bffffffff01", 0, TM_V5, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 02 0b80", 0, TM_V5, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 04 0101 0100", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 02 0102", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 06 230001 230002", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 05 1100000001", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 04 08 0001 2b", 0, TM_V5, &p), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(publish_hex("0001 74 03 09 0000", 0, TM_V5, &p), TM_RC_SUCCESS);
    TM_CHECK(p.props.correlation_data.p != NULL && p.props.correlation_data.len == 0);
    TM_CHECK_EQ(publish_hex("0001 74 05 03 0002 c0af", 0, TM_V5, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74 09 03", 0, TM_V5, &p), TM_RC_MALFORMED);
    TM_CHECK_EQ(publish_hex("0001 74", 0, TM_V5, &p), TM_RC_MALFORMED);   /* no prop len */
}

/* ---- acks --------------------------------------------------------------- */

static void test_ack_roundtrip(void)
{
    static const uint8_t types[] = { TM_PUBACK, TM_PUBREC, TM_PUBREL, TM_PUBCOMP };
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        for (size_t t = 0; t < 4; t++) {
            for (int form = 0; form < (v ? 3 : 1); form++) {
                tm_ack a, d;
                memset(&a, 0, sizeof a);
                a.type = types[t];
                a.packet_id = 0x1234;
                size_t want_rem = 2;
                if (form >= 1) {
                    a.reason = (types[t] == TM_PUBREL || types[t] == TM_PUBCOMP) ? 0x92 : 0x10;
                    want_rem = 3;
                }
                if (form == 2) {
                    a.props.present = TM_PBIT(TM_P_REASON_STRING);
                    a.props.reason_string = S("why");
                    set_user2(&a.props);
                    want_rem = 4 + 6 + sizeof user2;
                }
                tm_buf b;
                tm_buf_init(&b);
                tm_encode_ack(&b, ver, &a);
                tm_frame f;
                const uint8_t *body = frame_of(&b, &f);
                TM_CHECK_EQ(f.type, types[t]);
                TM_CHECK_EQ(f.remaining, want_rem);
                if (body) {
                    TM_CHECK_EQ(tm_decode_ack(f.type, body, f.remaining, f.flags, ver, &d),
                                TM_RC_SUCCESS);
                    TM_CHECK(tm_eq_ack(&a, &d));
                }
                tm_buf_free(&b);
            }
        }
    }
}

static void test_ack_malformed(void)
{
    uint8_t x[32];
    tm_ack a;
    size_t n;
    n = hex("0001", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V311, &a), TM_RC_SUCCESS);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBREL, x, n, 2, TM_V311, &a), TM_RC_SUCCESS);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBREL, x, n, 0, TM_V311, &a), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 2, TM_V311, &a), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, 1, 0, TM_V311, &a), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, 1, 0, TM_V5, &a), TM_RC_MALFORMED);
    n = hex("0000", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V311, &a), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 00", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V311, &a), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_SUCCESS);
    n = hex("0001 99", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBREC, x, n, 0, TM_V5, &a), TM_RC_SUCCESS);
    TM_CHECK_EQ(a.reason, TM_RC_PAYLOAD_FORMAT_INVALID);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBREL, x, n, 2, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 92", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBCOMP, x, n, 0, TM_V5, &a), TM_RC_SUCCESS);
    n = hex("0001 01", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 00 00", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_SUCCESS);
    n = hex("0001 00 00 00", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_MALFORMED);
    n = hex("0001 00 05 1100000001", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 00 04 1f 0001 61", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_SUCCESS);
    TM_CHECK(str_is(a.props.reason_string, "a"));
    n = hex("0001 00 08 1f 0001 61 1f 0001 62", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 00 05 1f 0001 61", x);
    TM_CHECK_EQ(tm_decode_ack(TM_PUBACK, x, n, 0, TM_V5, &a), TM_RC_MALFORMED);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE / SUBACK / UNSUBACK ------------------------ */

static void test_subscribe_roundtrip(void)
{
    tm_str filters[3] = { S("a/+/c"), S("$share/g/x/#"), S("\xc3\xa9") };
    tm_subopts opts[3] = {
        { 0, false, false, 0 }, { 1, true, true, 1 }, { 2, false, true, 2 },
    };
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        tm_props props;
        memset(&props, 0, sizeof props);
        if (v) {
            props.present = TM_PBIT(TM_P_SUB_ID);
            props.n_sub_ids = 1;
            props.sub_ids[0] = 268435455;
            set_user2(&props);
        }
        for (int unsub = 0; unsub < 2; unsub++) {
            tm_buf b;
            tm_buf_init(&b);
            if (unsub) {
                props.present &= ~TM_PBIT(TM_P_SUB_ID);
                props.n_sub_ids = 0;
                tm_encode_unsubscribe(&b, ver, 7, &props, filters, 3);
            } else {
                tm_encode_subscribe(&b, ver, 7, &props, filters, opts, 3);
            }
            tm_frame f;
            const uint8_t *body = frame_of(&b, &f);
            TM_CHECK_EQ(f.type, unsub ? TM_UNSUBSCRIBE : TM_SUBSCRIBE);
            TM_CHECK_EQ(f.flags, 2);
            tm_subscribe s;
            if (!body) continue;
            tm_rc rc = unsub ? tm_decode_unsubscribe(body, f.remaining, f.flags, ver, &s)
                             : tm_decode_subscribe(body, f.remaining, f.flags, ver, &s);
            TM_CHECK_EQ(rc, TM_RC_SUCCESS);
            TM_CHECK_EQ(s.packet_id, 7);
            TM_CHECK_EQ(s.count, 3);
            TM_CHECK_EQ(s.unsubscribe, unsub);
            TM_CHECK(tm_eq_props(&props, &s.props));
            uint32_t pos = 0;
            tm_str fl;
            tm_subopts o;
            for (int i = 0; i < 3; i++) {
                memset(&o, 0xAA, sizeof o);
                TM_CHECK(tm_sub_next(&s, &pos, &fl, &o));
                TM_CHECK(tm_eq_bytes(fl, filters[i]));
                if (unsub) {
                    TM_CHECK(o.qos == 0 && !o.no_local && !o.retain_as_published &&
                             o.retain_handling == 0);
                } else {
                    TM_CHECK_EQ(o.qos, opts[i].qos);
                    TM_CHECK_EQ(o.no_local, v ? opts[i].no_local : 0);
                    TM_CHECK_EQ(o.retain_as_published, v ? opts[i].retain_as_published : 0);
                    TM_CHECK_EQ(o.retain_handling, v ? opts[i].retain_handling : 0);
                }
            }
            TM_CHECK(!tm_sub_next(&s, &pos, &fl, &o));
            tm_buf_free(&b);
        }
    }
}

static tm_rc sub_hex(const char *h, uint8_t ver, bool unsub, tm_subscribe *s)
{
    static uint8_t x[256];   /* decoded slices point here after return */
    size_t n = hex(h, x);
    return unsub ? tm_decode_unsubscribe(x, n, 2, ver, s) : tm_decode_subscribe(x, n, 2, ver, s);
}

static void test_subscribe_malformed(void)
{
    tm_subscribe s;
    uint8_t x[16];
    size_t n = hex("0001 0001 61 00", x);
    TM_CHECK_EQ(tm_decode_subscribe(x, n, 0, TM_V311, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_unsubscribe(x, n, 0, TM_V311, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0001 61 01", TM_V311, false, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(sub_hex("0001", TM_V311, false, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 00", TM_V5, false, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001", TM_V311, true, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 00", TM_V5, true, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0000 0001 61 00", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0000 00 0001 61 00", TM_V5, false, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("00", TM_V311, false, &s), TM_RC_MALFORMED);
    /* UTF-8 is checked, filter syntax is not */
    TM_CHECK_EQ(sub_hex("0001 0002 c0af 00", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0002 c0af", TM_V311, true, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0005 612f232f62 00", TM_V311, false, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(sub_hex("0001 0000 00", TM_V311, false, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(sub_hex("0001 0003 61", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0001 61", TM_V311, false, &s), TM_RC_MALFORMED);  /* no opts */
    /* options byte */
    TM_CHECK_EQ(sub_hex("0001 0001 61 03", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0001 61 04", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 0001 61 80", TM_V311, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 2e", TM_V5, false, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 03", TM_V5, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 30", TM_V5, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 40", TM_V5, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 80", TM_V5, false, &s), TM_RC_MALFORMED);
    TM_CHECK_EQ(sub_hex("0001 00 0001 61 00 0001 62 03", TM_V5, false, &s), TM_RC_MALFORMED);
    /* v5 properties */
    TM_CHECK_EQ(sub_hex("0001 02 0b01 0001 61 00", TM_V5, false, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(s.props.sub_ids[0], 1);
    TM_CHECK_EQ(s.props.n_sub_ids, 1);
    TM_CHECK_EQ(sub_hex("0001 02 0b00 0001 61 00", TM_V5, false, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 04 0b01 0b02 0001 61 00", TM_V5, false, &s),
                TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 02 0b01 0001 61", TM_V5, true, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 03 1f 0000 0001 61 00", TM_V5, false, &s), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(sub_hex("0001 05 26 0000 0000 0001 61", TM_V5, true, &s), TM_RC_SUCCESS);
    TM_CHECK_EQ(s.props.n_user, 1);
}

static void test_suback(void)
{
    const uint8_t codes[] = { 0x00, 0x01, 0x02, 0x80 };
    for (int v = 0; v < 2; v++) {
        uint8_t ver = v ? TM_V5 : TM_V311;
        for (int un = 0; un < 2; un++) {
            uint8_t type = un ? TM_UNSUBACK : TM_SUBACK;
            const uint8_t ucodes[] = { 0x00, 0x11, 0x80, 0x8F };
            tm_props props;
            memset(&props, 0, sizeof props);
            if (v) {
                props.present = TM_PBIT(TM_P_REASON_STRING);
                props.reason_string = S("ok");
                set_user2(&props);
            }
            tm_buf b;
            tm_buf_init(&b);
            tm_encode_suback(&b, ver, type, 99, &props, un ? ucodes : codes, 4);
            tm_frame f;
            const uint8_t *body = frame_of(&b, &f);
            TM_CHECK_EQ(f.type, type);
            tm_suback d;
            if (body) {
                TM_CHECK_EQ(tm_decode_suback(type, body, f.remaining, ver, &d), TM_RC_SUCCESS);
                TM_CHECK_EQ(d.packet_id, 99);
                TM_CHECK(tm_eq_props(&props, &d.props));
                if (un && !v) {
                    TM_CHECK_EQ(d.codes.len, 0);
                    TM_CHECK_EQ(f.remaining, 2);
                } else {
                    TM_CHECK(tm_eq_bytes(d.codes, B(un ? ucodes : codes, 4)));
                }
            }
            tm_buf_free(&b);
        }
    }
    /* NULL props in v5 means an empty block */
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_suback(&b, TM_V5, TM_SUBACK, 1, NULL, codes, 1);
    uint8_t want[8];
    size_t n = hex("90 04 0001 00 00", want);
    TM_CHECK_EQ(b.len, n);
    TM_CHECK_MEM(b.data, want, n);
    tm_buf_free(&b);

    uint8_t x[16];
    tm_suback d;
    n = hex("0001 03", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("0001 8f", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("0001 00 8f a2 9e", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.codes.len, 3);
    n = hex("0001 00 11", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    TM_CHECK_EQ(tm_decode_suback(TM_UNSUBACK, x, n, TM_V5, &d), TM_RC_SUCCESS);
    n = hex("0001", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V311, &d), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_suback(TM_UNSUBACK, x, n, TM_V311, &d), TM_RC_SUCCESS);
    n = hex("0001 00", x);
    TM_CHECK_EQ(tm_decode_suback(TM_UNSUBACK, x, n, TM_V311, &d), TM_RC_MALFORMED);
    TM_CHECK_EQ(tm_decode_suback(TM_UNSUBACK, x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("0001 02 1f00", x);
    TM_CHECK_EQ(tm_decode_suback(TM_SUBACK, x, n, TM_V5, &d), TM_RC_MALFORMED);
}

/* ---- DISCONNECT / AUTH -------------------------------------------------- */

static void test_disconnect_auth(void)
{
    for (int form = 0; form < 3; form++) {
        tm_disconnect d, e;
        memset(&d, 0, sizeof d);
        size_t want_rem = 0;
        if (form >= 1) {
            d.reason = TM_RC_DISCONNECT_WITH_WILL;
            want_rem = 1;
        }
        if (form == 2) {
            d.props.present = TM_PBIT(TM_P_SESSION_EXPIRY) | TM_PBIT(TM_P_REASON_STRING) |
                              TM_PBIT(TM_P_SERVER_REFERENCE);
            d.props.session_expiry = 0;
            d.props.reason_string = S("bye");
            d.props.server_reference = S("");
            set_user2(&d.props);
            want_rem = 2 + 5 + 6 + 3 + sizeof user2;
        }
        for (int v = 0; v < 2; v++) {
            uint8_t ver = v ? TM_V5 : TM_V311;
            tm_buf b;
            tm_buf_init(&b);
            tm_encode_disconnect(&b, ver, &d);
            tm_frame f;
            const uint8_t *body = frame_of(&b, &f);
            TM_CHECK_EQ(f.type, TM_DISCONNECT);
            TM_CHECK_EQ(f.remaining, v ? want_rem : 0);
            if (body) {
                TM_CHECK_EQ(tm_decode_disconnect(body, f.remaining, ver, &e), TM_RC_SUCCESS);
                if (v) TM_CHECK(tm_eq_disconnect(&d, &e));
                else TM_CHECK_EQ(e.reason, 0);
            }
            tm_buf_free(&b);
        }
    }
    uint8_t x[32];
    tm_disconnect d;
    size_t n;
    TM_CHECK_EQ(tm_decode_disconnect(x, 0, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(tm_decode_disconnect(x, 0, TM_V311, &d), TM_RC_SUCCESS);
    n = hex("00", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V311, &d), TM_RC_MALFORMED);
    n = hex("8e", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V5, &d), TM_RC_SUCCESS);
    TM_CHECK_EQ(d.reason, TM_RC_SESSION_TAKEN_OVER);
    n = hex("05", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);
    n = hex("00 03 1f 00", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V5, &d), TM_RC_MALFORMED);
    n = hex("00 00 00", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V5, &d), TM_RC_MALFORMED);
    n = hex("00 02 2401", x);
    TM_CHECK_EQ(tm_decode_disconnect(x, n, TM_V5, &d), TM_RC_PROTOCOL_ERROR);

    /* AUTH */
    tm_disconnect a, e;
    memset(&a, 0, sizeof a);
    tm_buf b;
    tm_buf_init(&b);
    tm_encode_auth(&b, &a);
    TM_CHECK_EQ(b.len, 2);
    a.reason = TM_RC_CONTINUE_AUTH;
    a.props.present = TM_PBIT(TM_P_AUTH_METHOD) | TM_PBIT(TM_P_AUTH_DATA) |
                      TM_PBIT(TM_P_REASON_STRING);
    a.props.auth_method = S("SCRAM-SHA-256");
    a.props.auth_data = B("\x00\xff", 2);
    a.props.reason_string = S("more");
    set_user2(&a.props);
    tm_buf_consume(&b, b.len);
    tm_encode_auth(&b, &a);
    tm_frame f;
    const uint8_t *body = frame_of(&b, &f);
    TM_CHECK_EQ(f.type, TM_AUTH);
    if (body) {
        TM_CHECK_EQ(tm_decode_auth(body, f.remaining, &e), TM_RC_SUCCESS);
        TM_CHECK(tm_eq_disconnect(&a, &e));
    }
    tm_buf_free(&b);
    TM_CHECK_EQ(tm_decode_auth(x, 0, &e), TM_RC_SUCCESS);
    n = hex("18", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_PROTOCOL_ERROR);
    n = hex("18 00", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_PROTOCOL_ERROR);
    n = hex("19 04 15 0001 6d", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_SUCCESS);
    n = hex("01 04 15 0001 6d", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_PROTOCOL_ERROR);
    n = hex("18 03 16 0000", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_PROTOCOL_ERROR);
    n = hex("18 04 15 0001 6d 00", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_MALFORMED);
    n = hex("18 09 15 0001 6d 11 00000001", x);
    TM_CHECK_EQ(tm_decode_auth(x, n, &e), TM_RC_PROTOCOL_ERROR);
}

static void test_names(void)
{
    TM_CHECK(strcmp(tm_rc_name(TM_RC_MALFORMED), "malformed packet") == 0);
    TM_CHECK(strcmp(tm_rc_name(TM_RC_SUCCESS), "success") == 0);
    TM_CHECK(tm_rc_name(0x7F) != NULL);
    TM_CHECK(tm_rc_name(TM_RC_NEED_MORE) != NULL);
    TM_CHECK(strcmp(tm_ptype_name(TM_PUBLISH), "PUBLISH") == 0);
    TM_CHECK(strcmp(tm_ptype_name(TM_AUTH), "AUTH") == 0);
    TM_CHECK(tm_ptype_name(99) != NULL);
    for (unsigned i = 0; i < 0x200; i++) TM_CHECK(tm_rc_name(i) != NULL);
}

TM_TEST_MAIN(TM_CASE(test_buf), TM_CASE(test_vbi), TM_CASE(test_utf8), TM_CASE(test_frame),
             TM_CASE(test_remaining_boundaries), TM_CASE(test_props_encode_order),
             TM_CASE(test_props_user_interleaved), TM_CASE(test_connect_roundtrip),
             TM_CASE(test_connect_malformed), TM_CASE(test_connack),
             TM_CASE(test_publish_roundtrip), TM_CASE(test_publish_malformed),
             TM_CASE(test_ack_roundtrip), TM_CASE(test_ack_malformed),
             TM_CASE(test_subscribe_roundtrip), TM_CASE(test_subscribe_malformed),
             TM_CASE(test_suback), TM_CASE(test_disconnect_auth), TM_CASE(test_names))
