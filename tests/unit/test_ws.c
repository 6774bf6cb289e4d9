/*
 * test_ws.c — the WebSocket layer (src/net/stream_ws.c) over a scripted lower layer
 * that takes a few bytes at a time and says "would block" every other call, as a
 * loaded TLS connection does. Checks what the layer promises its callers: the
 * upgrade answer (RFC 6455's own example key), data written through short writes and
 * retries arriving as exact binary frames, frames read back split anywhere with a
 * ping between them, close frames both ways, and a malformed frame failing the
 * stream with a reason and a close frame 1002. Also the bottom layer the
 * connection manager embeds in its connection record (tm_stream_tcp_init): its
 * reasons, and that freeing the stack closes the socket but not the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"
#include "net/ws.h"
#include "net/ws_frame.h"
#include "tm_test.h"

typedef struct fake {
    tm_stream s;
    const uint8_t *in;
    size_t in_len, in_pos, rchunk;
    uint8_t out[1 << 18];
    size_t out_len, wchunk;
    unsigned calls;
} fake;

static long fake_read(tm_stream *s, void *buf, size_t n, unsigned *want)
{
    fake *f = (fake *)s;
    if (f->in_pos == f->in_len || (++f->calls & 1)) {
        *want = TM_EV_READ;
        return -2;
    }
    size_t k = f->in_len - f->in_pos;
    if (k > f->rchunk)
        k = f->rchunk;
    if (k > n)
        k = n;
    memcpy(buf, f->in + f->in_pos, k);
    f->in_pos += k;
    return (long)k;
}

static long fake_write(tm_stream *s, const void *buf, size_t n, unsigned *want)
{
    fake *f = (fake *)s;
    if (++f->calls & 1) {
        *want = TM_EV_WRITE;
        return -2;
    }
    size_t k = n < f->wchunk ? n : f->wchunk;
    memcpy(f->out + f->out_len, buf, k);
    f->out_len += k;
    return (long)k;
}

static int fake_hs(tm_stream *s, unsigned *want) { return 1; }
static int fake_shutdown(tm_stream *s, unsigned *want) { return 1; }
static void fake_free(tm_stream *s) { (void)s; }

static const tm_stream_ops fake_ops = {"fake", fake_hs, fake_read, fake_write, fake_shutdown,
                                       NULL, fake_free};

static const char REQ[] = "GET /mqtt HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n";

static tm_ws_opts opts;

/* A WebSocket layer over f, its handshake run to the end: 1 or -1. */
static int handshake(fake *f, tm_stream **w)
{
    char err[100];
    *w = tm_stream_ws_server(&opts, &f->s, err, sizeof err);
    int r = 0;
    for (int i = 0; i < 10000 && r == 0; i++) {
        unsigned want = 0;
        r = tm_stream_handshake(*w, &want);
    }
    return r;
}

/* A WebSocket layer over f, upgraded. f->in must hold REQ first. */
static tm_stream *upgraded(fake *f)
{
    f->s.ops = &fake_ops;
    f->s.fd = -1;
    tm_stream *w;
    TM_CHECK_EQ(handshake(f, &w), 1);
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\n";
    TM_CHECK(f->out_len > strlen(ok) && !memcmp(f->out, ok, strlen(ok)));
    TM_CHECK(memmem(f->out, f->out_len, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 51));
    TM_CHECK(memmem(f->out, f->out_len, "Sec-WebSocket-Protocol: mqtt\r\n", 30));
    f->out_len = 0;
    return w;
}

static size_t mask_frame(uint8_t *o, uint8_t op, bool fin, const uint8_t *p, size_t n)
{
    size_t h = tm_wsf_header(o, op, fin, n);
    o[1] |= 0x80;
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(o + h, key, 4);
    for (size_t i = 0; i < n; i++)
        o[h + 4 + i] = p[i] ^ key[i & 3];
    return h + 4 + n;
}

/* Reads server frames from buf: concatenated binary payloads into data; returns
 * the number of frames, -1 when a frame is malformed. *close gets a close code. */
static int server_frames(const uint8_t *b, size_t n, uint8_t *data, size_t *dlen, int *close)
{
    int frames = 0;
    *dlen = 0;
    for (size_t i = 0; i < n; frames++) {
        if (n - i < 2 || (b[i + 1] & 0x80) || !(b[i] & 0x80))
            return -1;
        uint64_t len = b[i + 1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            len = (uint64_t)b[i + 2] << 8 | b[i + 3];
            h = 4;
        } else if (len == 127) {
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | b[i + 2 + k];
            h = 10;
        }
        if (i + h + len > n)
            return -1;
        if ((b[i] & 0x0f) == TM_WS_OP_BINARY) {
            memcpy(data + *dlen, b + i + h, len);
            *dlen += len;
        } else if ((b[i] & 0x0f) == TM_WS_OP_CLOSE) {
            *close = len >= 2 ? b[i + h] << 8 | b[i + h + 1] : 1005;
        }
        i += h + len;
    }
    return frames;
}

static void test_upgrade_and_writes_through_short_writes(void)
{
    static fake f;
    memset(&f, 0, sizeof f);
    f.in = (const uint8_t *)REQ;
    f.in_len = strlen(REQ);
    f.rchunk = 5;
    f.wchunk = 3;
    tm_stream *w = upgraded(&f);
    static uint8_t msg[70000 + 200 + 10], got[sizeof msg];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7);
    size_t sizes[3] = {10, 200, 70000}, at = 0;
    for (int m = 0; m < 3; m++) {
        size_t done = 0;
        f.wchunk = m == 2 ? 4093 : 3;
        while (done < sizes[m]) {   /* the caller's contract: same bytes again */
            unsigned want = 0;
            long r = tm_stream_write(w, msg + at + done, sizes[m] - done, &want);
            TM_CHECK(r > 0 || (r == -2 && want == TM_EV_WRITE));
            if (r > 0)
                done += (size_t)r;
        }
        at += sizes[m];
    }
    size_t glen;
    int close = 0;
    TM_CHECK_EQ(server_frames(f.out, f.out_len, got, &glen, &close), 3);
    TM_CHECK_EQ(glen, sizeof msg);
    TM_CHECK_MEM(got, msg, sizeof msg);
    tm_stream_free(w);
}

static void test_reads_split_frames_ping_and_close(void)
{
    static fake f;
    memset(&f, 0, sizeof f);
    static uint8_t in[4096];
    size_t n = strlen(REQ);
    memcpy(in, REQ, n);
    const uint8_t connect[] = {0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0};
    n += mask_frame(in + n, TM_WS_OP_BINARY, false, connect, 5);
    n += mask_frame(in + n, TM_WS_OP_PING, true, (const uint8_t *)"hi", 2);
    n += mask_frame(in + n, TM_WS_OP_CONT, true, connect + 5, sizeof connect - 5);
    const uint8_t bye[] = {0x03, 0xe8, 'o', 'k'};
    n += mask_frame(in + n, TM_WS_OP_CLOSE, true, bye, sizeof bye);
    f.in = in;
    f.in_len = n;
    f.rchunk = 3;
    f.wchunk = 1000;
    tm_stream *w = upgraded(&f);
    uint8_t data[256];
    size_t got = 0;
    long r = 1;
    for (int i = 0; i < 10000 && r != 0 && r != -1; i++) {
        unsigned want = 0;
        r = tm_stream_read(w, data + got, sizeof data - got, &want);
        if (r > 0)
            got += (size_t)r;
    }
    TM_CHECK_EQ(r, 0);                     /* the close frame ends the stream */
    TM_CHECK_EQ(got, sizeof connect);
    TM_CHECK_MEM(data, connect, sizeof connect);
    /* a pong with the ping's payload, then the close echoed */
    TM_CHECK(f.out_len >= 4 && f.out[0] == 0x8a && f.out[1] == 2 && !memcmp(f.out + 2, "hi", 2));
    TM_CHECK(f.out_len == 8 && f.out[4] == 0x88 && f.out[5] == 2 && f.out[6] == 0x03 &&
             f.out[7] == 0xe8);
    tm_stream_free(w);
}

static void test_malformed_frame_fails_with_1002(void)
{
    static fake f;
    memset(&f, 0, sizeof f);
    static uint8_t in[1024];
    size_t n = strlen(REQ);
    memcpy(in, REQ, n);
    in[n++] = 0x82;   /* unmasked binary frame */
    in[n++] = 0x02;
    in[n++] = 0xc0;
    in[n++] = 0x00;
    f.in = in;
    f.in_len = n;
    f.rchunk = 64;
    f.wchunk = 64;
    tm_stream *w = upgraded(&f);
    uint8_t data[64];
    long r = -2;
    for (int i = 0; i < 100 && r == -2; i++) {
        unsigned want = 0;
        r = tm_stream_read(w, data, sizeof data, &want);
    }
    TM_CHECK_EQ(r, -1);
    TM_CHECK(strstr(tm_stream_error(w), "unmasked frame") != NULL);
    /* the close frame went out when the lower layer took it (every other call) */
    size_t glen;
    int close = 0;
    uint8_t sink[64];
    server_frames(f.out, f.out_len, sink, &glen, &close);
    TM_CHECK(close == 1002 || f.out_len == 0);
    tm_stream_free(w);
}

static void test_upgrade_refused_fails_handshake(void)
{
    static fake f;
    memset(&f, 0, sizeof f);
    const char *req = "GET /mqtt HTTP/1.0\r\nHost: x\r\n\r\n";
    f.s.ops = &fake_ops;
    f.s.fd = -1;
    f.in = (const uint8_t *)req;
    f.in_len = strlen(req);
    f.rchunk = 7;
    f.wchunk = 11;
    tm_stream *w;
    TM_CHECK_EQ(handshake(&f, &w), -1);
    TM_CHECK(f.out_len > 12 && !memcmp(f.out, "HTTP/1.1 505", 12));
    TM_CHECK(strstr(tm_stream_error(w), "505") != NULL);
    tm_stream_free(w);
}

/* An embedded TCP layer (on the stack here: freeing it would be an ASan error)
 * reports a write to a vanished peer with a reason, keeps reasons bounded, and
 * its free closes the socket. */
static void test_tcp_embedded_reason_and_free(void)
{
    int sv[2];
    TM_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct {
        tm_stream tcp;
        char after[8];
    } rec;
    memcpy(rec.after, "intact!", 8);
    tm_stream_tcp_init(&rec.tcp, sv[0]);
    TM_CHECK(tm_stream_error(&rec.tcp)[0] == 0);
    close(sv[1]);
    unsigned want = 0;
    TM_CHECK_EQ(tm_stream_write(&rec.tcp, "x", 1, &want), -1);
    TM_CHECK(rec.tcp.failed);
    TM_CHECK(strncmp(tm_stream_error(&rec.tcp), "write: ", 7) == 0);
    TM_CHECK_EQ(tm_stream_write(&rec.tcp, "x", 1, &want), -1);   /* never again */
    char longer[500];
    memset(longer, 'r', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    tm_stream_fail(&rec.tcp, "%s", longer);   /* replaces the reason, bounded */
    TM_CHECK_EQ(strlen(tm_stream_error(&rec.tcp)), 199);
    tm_stream_free(&rec.tcp);
    errno = 0;
    TM_CHECK(fcntl(sv[0], F_GETFD) == -1 && errno == EBADF);
    TM_CHECK(!memcmp(rec.after, "intact!", 8));
}

TM_TEST_MAIN(TM_CASE(test_tcp_embedded_reason_and_free),
             TM_CASE(test_upgrade_and_writes_through_short_writes),
             TM_CASE(test_reads_split_frames_ping_and_close),
             TM_CASE(test_malformed_frame_fails_with_1002),
             TM_CASE(test_upgrade_refused_fails_handshake))
