/*
 * fuzz_ws.c — libFuzzer target for the WebSocket listener's parsers
 * (src/net/ws_http.c, src/net/ws_frame.c), both pure.
 *
 * The first byte chooses:
 *   even  the rest is an HTTP request head: parsed with a limit taken from
 *         the second byte, then judged (with and without an origin list and
 *         http_dir). Checks: a complete head lies inside the input, every
 *         slice lies inside the head, a refusal carries a status and a
 *         reason, an upgrade names a subprotocol and a 28-character accept.
 *   odd   the rest is a byte stream from a client: decoded whole, and again
 *         in chunks whose sizes come from the second byte. Both must yield the
 *         same data bytes and the same sequence of control events and end in
 *         the same way (an in-place decoder that depends on how reads split
 *         the stream would corrupt MQTT packets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ws_frame.h"
#include "net/ws_http.h"

#define REQUIRE(c)                                                           \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "fuzz_ws: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                         \
        }                                                                    \
    } while (0)

static bool inside(tm_slice s, const uint8_t *b, size_t n)
{
    return s.n == 0 || ((const uint8_t *)s.p >= b && (const uint8_t *)s.p + s.n <= b + n);
}

static void http(const uint8_t *b, size_t n, size_t max)
{
    tm_http_req r;
    int p = tm_http_parse(b, n, max, &r);
    if (p < 0) {
        REQUIRE(r.status >= 400 && r.why && *r.why);
        return;
    }
    if (p == 0)
        return;
    REQUIRE(r.head_len >= 4 && r.head_len <= n && r.head_len <= max);
    REQUIRE(inside(r.method, b, r.head_len) && inside(r.target, b, r.head_len));
    REQUIRE(r.target.n && r.target.p[0] == '/');
    for (unsigned i = 0; i < r.n_fields; i++)
        REQUIRE(inside(r.name[i], b, r.head_len) && inside(r.value[i], b, r.head_len));
    static const char *const origins[] = {"https://a.example", "http://localhost:8080"};
    tm_ws_opts o[2] = {{.http_dir = NULL}, {.http_dir = "/srv", .origins = origins, .n_origins = 2}};
    for (int k = 0; k < 2; k++) {
        tm_ws_verdict v;
        tm_ws_evaluate(&r, &o[k], &v);
        if (v.kind == TM_WS_UPGRADE) {
            REQUIRE(v.status == 101 && v.subprotocol && strlen(v.accept) == 28);
        } else if (v.kind == TM_WS_FILE) {
            REQUIRE(o[k].http_dir && inside(v.path, b, r.head_len) && v.path.p[0] == '/');
        } else {
            REQUIRE(v.kind == TM_WS_REFUSE && v.status >= 400 && v.why[0]);
        }
    }
}

typedef struct trace {
    uint8_t data[1 << 16];
    size_t len;
    int events[64];
    int n_events;
    int end;                 /* TM_WSF_ERROR or TM_WSF_CLOSE when it stopped */
    uint16_t code;
} trace;

/* Decodes `n` bytes fed in chunks (chunk == 0: all at once). */
static void decode(const uint8_t *in, size_t n, unsigned chunk, trace *t)
{
    static uint8_t buf[1 << 16];
    tm_wsf_dec d;
    tm_wsf_init(&d);
    memset(t, 0, sizeof *t);
    for (size_t at = 0; at < n && !t->end;) {
        size_t k = chunk ? chunk : n;
        if (k > n - at)
            k = n - at;
        memcpy(buf, in + at, k);
        at += k;
        size_t i = 0, o = 0;
        for (;;) {
            size_t before_i = i, before_o = o;
            int ev = tm_wsf_decode(&d, buf, k, &i, &o);
            REQUIRE(i >= before_i && o >= before_o && o <= i && i <= k);
            if (ev == TM_WSF_MORE) {
                REQUIRE(i == k);
                break;
            }
            if (t->n_events < 64)
                t->events[t->n_events++] = ev;
            if (ev == TM_WSF_ERROR || ev == TM_WSF_CLOSE) {
                t->end = ev;
                t->code = ev == TM_WSF_ERROR ? d.err_code : d.close_code;
                REQUIRE(ev != TM_WSF_ERROR || (d.why && tm_wsf_valid_close_code(d.err_code)));
                break;
            }
            REQUIRE(ev == TM_WSF_PING || ev == TM_WSF_PONG);
            REQUIRE(d.ctl_len <= 125);
        }
        REQUIRE(t->len + o <= sizeof t->data);
        memcpy(t->data + t->len, buf, o);
        t->len += o;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1 << 16) + 2)
        return 0;
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    if (!(data[0] & 1)) {
        http(p, n, 64 + (size_t)data[1] * 32);
        return 0;
    }
    static trace whole, split;
    decode(p, n, 0, &whole);
    decode(p, n, 1 + data[1] % 17, &split);
    REQUIRE(whole.len == split.len && !memcmp(whole.data, split.data, whole.len));
    REQUIRE(whole.n_events == split.n_events &&
            !memcmp(whole.events, split.events, sizeof whole.events));
    REQUIRE(whole.end == split.end && whole.code == split.code);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include "fuzz_replay.h"
#endif
