/*
 * stream_ws.c — the WebSocket layer of the transport stack (ws.h).
 *
 * Phases: LOWER (the layer below's handshake: TLS for wss), REQUEST (reading
 * one HTTP request head, at most websockets_headers_size bytes, under the
 * listener's handshake deadline), RESPOND (writing the 101, a file or an
 * error status), OPEN (MQTT bytes in binary frames).
 *
 * Memory: request heads are read into one buffer shared by all connections
 * (a connection copies its bytes only while its head is incomplete), and the
 * response exists only until it is sent. Once open, a connection holds this struct and nothing else while
 * idle: frames are decoded in place in the caller's read buffer
 * (ws_frame.h), data is written as the frame payload directly from the
 * caller's bytes, and only control frames waiting for the socket (a pong, a
 * close) get a small buffer of their own, freed when sent.
 *
 * Writing: each write starts a binary frame covering exactly the bytes it is
 * given (or continues the frame an earlier short write started: a caller
 * that got a short write or -2 writes the same bytes again, as with TLS).
 * The frame header and the first part of the payload leave in one write of
 * the layer below, so a small MQTT packet is one send() or one TLS record.
 * Control frames go out only between data frames.
 *
 * Errors: a malformed frame is answered with a close frame carrying the RFC
 * 6455 status (1002 protocol error, 1003 text frame, 1007 bad UTF-8), then
 * the stream fails with a reason. A close frame from the client is answered
 * with a close frame and reads as end of stream.
 */
#include "net/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/loop.h"
#include "net/ws_frame.h"

#define WS_HEADERS_DEFAULT 4096
#define WS_FILE_MAX (16u << 20)      /* largest file served from http_dir */
#define WS_COMPOSE 16384             /* frame header + payload start, one write */
#define WS_CTL_CAP 256               /* a pong and a close frame */
#define WS_READ_TURNS 64             /* reads of only control frames per call */

enum { WS_LOWER, WS_REQUEST, WS_RESPOND, WS_OPEN };

/* Request heads are read here, one connection at a time (the event loop is
 * single-threaded): no connection holds a head-sized buffer (read_request). */
static uint8_t head_buf[65536];

typedef struct ws_stream {
    tm_stream s;
    const tm_ws_opts *o;
    uint8_t phase;
    bool refused;                /* RESPOND: the handshake ends after the response
                                  * (s.err already says what was answered) */
    bool close_queued, close_received;
    bool more;                   /* the last read below filled the buffer */
    /* handshake only: an incomplete request head, then the response */
    uint8_t *hs;
    size_t hs_len, hs_pos;
    bool hs_shared;              /* hs is head_buf (valid within one call only) */
    /* bytes that came after the request head: the first frames */
    uint8_t *early;
    size_t early_len, early_pos;
    /* reading */
    tm_wsf_dec dec;
    /* writing: the data frame in progress */
    uint8_t ohdr[10];
    uint8_t ohdr_len, ohdr_pos;
    uint64_t frame_left;
    /* control frames waiting to be sent */
    uint8_t *ctl;
    uint16_t ctl_len, ctl_pos;
} ws_stream;

static ws_stream *W(tm_stream *s) { return (ws_stream *)s; }

/* ---- control frames out ------------------------------------------------------ */

static bool in_frame(const ws_stream *w) { return w->frame_left || w->ohdr_pos < w->ohdr_len; }

static void queue_ctl(ws_stream *w, uint8_t op, const uint8_t *p, size_t n)
{
    if (w->close_queued)
        return;   /* nothing follows a close frame */
    if (!w->ctl) {
        w->ctl = malloc(WS_CTL_CAP);
        w->ctl_len = w->ctl_pos = 0;
        if (!w->ctl)
            return;   /* a pong or close is best effort; the connection goes on */
    }
    if (op == TM_WS_OP_PONG && w->ctl_pos == 0 && w->ctl_len)
        w->ctl_len = 0;   /* answer only the most recent ping (RFC 6455 5.5.3) */
    if (w->ctl_len + 2 + n > WS_CTL_CAP)
        return;
    uint8_t *f = w->ctl + w->ctl_len;
    f[0] = (uint8_t)(0x80 | op);
    f[1] = (uint8_t)n;
    memcpy(f + 2, p, n);
    w->ctl_len = (uint16_t)(w->ctl_len + 2 + n);
    if (op == TM_WS_OP_CLOSE)
        w->close_queued = true;
}

static void queue_close(ws_stream *w, uint16_t code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    queue_ctl(w, TM_WS_OP_CLOSE, b, code ? 2 : 0);
}

/* 1 nothing left, 0 would block (*want set), -1 error. Only between frames. */
static int flush_ctl(ws_stream *w, unsigned *want)
{
    while (w->ctl && w->ctl_pos < w->ctl_len) {
        if (in_frame(w))
            return 0;
        unsigned wt = 0;
        long r = tm_stream_write(w->s.below, w->ctl + w->ctl_pos, w->ctl_len - w->ctl_pos, &wt);
        if (r == -2) {
            if (want)
                *want = wt;
            return 0;
        }
        if (r < 0)
            return -1;
        w->ctl_pos = (uint16_t)(w->ctl_pos + r);
    }
    free(w->ctl);
    w->ctl = NULL;
    w->ctl_len = w->ctl_pos = 0;
    return 1;
}

static bool ctl_waiting(const ws_stream *w) { return w->ctl && w->ctl_pos < w->ctl_len; }

/* ---- the HTTP exchange ----------------------------------------------------------- */

static int respond(ws_stream *w, int status, const char *extra, const char *body,
                   size_t body_len, const char *ctype)
{
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Connection: close\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "%s\r\n",
                     status, tm_http_reason(status), ctype, body_len, extra ? extra : "");
    uint8_t *out = malloc((size_t)h + body_len);
    if (!out)
        return -1;
    memcpy(out, head, (size_t)h);
    memcpy(out + h, body, body_len);
    free(w->hs);
    w->hs = out;
    w->hs_len = (size_t)h + body_len;
    w->hs_pos = 0;
    w->refused = true;
    return 0;
}

static int respond_error(ws_stream *w, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tm_http_reason(status));
    const char *extra = status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                      : status == 405 ? "Allow: GET\r\n" : NULL;
    tm_stream_note(&w->s, "WebSocket listener: %d %s: %s", status, tm_http_reason(status), why);
    return respond(w, status, extra, body, (size_t)n, "text/plain; charset=utf-8");
}

static const char *content_type(const char *path)
{
    static const char *const map[][2] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"}, {".json", "application/json"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"}, {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(dot, map[i][0]))
            return map[i][1];
    return "application/octet-stream";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The request path, percent-decoded, as a relative path under http_dir
 * ("index.html" for a directory). -1 when it would leave the directory or
 * names something hidden: "." or ".." segments, a segment starting with a
 * dot, NUL, backslash. */
static int relative_path(tm_slice t, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 1; i < t.n; i++) {
        char c = t.p[i];
        if (c == '%') {
            int hi = i + 2 < t.n ? hexval(t.p[i + 1]) : -1, lo = hi >= 0 ? hexval(t.p[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == 0 || c == '\\' || o + 1 >= cap)
            return -1;
        /* a segment may not start with '.' (covers ".", ".." and hidden files) */
        if (c == '.' && (o == 0 || out[o - 1] == '/'))
            return -1;
        if (c == '/' && (o == 0 || out[o - 1] == '/'))
            return -1;   /* empty segment */
        out[o++] = c;
    }
    const char *idx = "index.html";
    if (o == 0 || out[o - 1] == '/') {
        if (o + strlen(idx) + 1 > cap)
            return -1;
        memcpy(out + o, idx, strlen(idx));
        o += strlen(idx);
    }
    out[o] = 0;
    return 0;
}

/* Opens the file: inside http_dir after resolving symbolic links (natively;
 * WASI has no realpath, and its preopened directories confine it anyway). */
static int open_confined(const char *dir, const char *rel, char *why, size_t whycap)
{
    char full[PATH_MAX];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, rel) >= sizeof full) {
        snprintf(why, whycap, "path too long");
        return -1;
    }
#ifndef __wasi__
    char rdir[PATH_MAX], rfile[PATH_MAX];
    if (!realpath(dir, rdir) || !realpath(full, rfile)) {
        snprintf(why, whycap, "%s", strerror(errno));
        return -1;
    }
    size_t dl = strlen(rdir);
    if (strncmp(rfile, rdir, dl) || (rfile[dl] != '/' && strcmp(rdir, "/"))) {
        snprintf(why, whycap, "resolves outside http_dir");
        return -1;
    }
    int fd = open(rfile, O_RDONLY | O_NOFOLLOW);
#else
    int fd = open(full, O_RDONLY | O_NOFOLLOW);
#endif
    if (fd < 0)
        snprintf(why, whycap, "%s", strerror(errno));
    return fd;
}

static int serve_file(ws_stream *w, tm_slice path)
{
    char rel[1024], why[128];
    char shown[80];
    size_t sn = path.n < sizeof shown - 1 ? path.n : sizeof shown - 1;
    for (size_t i = 0; i < sn; i++)
        shown[i] = path.p[i] > 0x20 && path.p[i] < 0x7f ? path.p[i] : '?';
    shown[sn] = 0;
    if (relative_path(path, rel, sizeof rel) < 0) {
        snprintf(why, sizeof why, "GET %s: path refused (outside http_dir or hidden)", shown);
        return respond_error(w, 404, why);
    }
    int fd = open_confined(w->o->http_dir, rel, why, sizeof why);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        char msg[256];
        snprintf(msg, sizeof msg, "GET %s: %s", shown, fd < 0 ? why : "not a regular file");
        if (fd >= 0)
            close(fd);
        return respond_error(w, 404, msg);
    }
    if ((uint64_t)st.st_size > WS_FILE_MAX) {
        close(fd);
        return respond_error(w, 413, "file larger than 16 MiB");
    }
    size_t size = (size_t)st.st_size;
    char *body = malloc(size ? size : 1);
    size_t got = 0;
    while (body && got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!body || got != size) {
        free(body);
        return respond_error(w, 500, "cannot read the file");
    }
    int rc = respond(w, 200, NULL, body, size, content_type(rel));
    free(body);
    tm_stream_note(&w->s, "HTTP GET %s: 200, %zu bytes from http_dir", shown, size);
    return rc;
}

static int upgrade(ws_stream *w, const tm_ws_verdict *v)
{
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n\r\n",
                     v->accept, v->subprotocol);
    /* sent from the shared buffer in the same handshake call; copied to the heap
     * only when the socket does not take it at once (ws_handshake) */
    memcpy(head_buf, head, (size_t)h);
    free(w->hs);
    w->hs = head_buf;
    w->hs_shared = true;
    w->hs_len = (size_t)h;
    w->hs_pos = 0;
    return 0;
}

/* The request head buf[0..len) is complete (or hopeless): decide and build the
 * response. Bytes behind the head are the client's first frames: kept. */
static int answer(ws_stream *w, const uint8_t *buf, size_t len, const tm_http_req *r, int parsed)
{
    if (parsed < 0)
        return respond_error(w, r->status, r->why);
    if (r->head_len < len) {
        w->early_len = len - r->head_len;
        w->early = malloc(w->early_len);
        if (!w->early)
            return -1;
        memcpy(w->early, buf + r->head_len, w->early_len);
    }
    tm_ws_verdict v;
    tm_ws_evaluate(r, w->o, &v);
    if (v.kind == TM_WS_UPGRADE)
        return upgrade(w, &v);
    if (v.kind == TM_WS_FILE)
        return serve_file(w, v.path);
    return respond_error(w, v.status, v.why);
}

static size_t headers_max(const ws_stream *w)
{
    size_t m = w->o->headers_max ? w->o->headers_max : WS_HEADERS_DEFAULT;
    return m < sizeof head_buf ? m : sizeof head_buf;
}

/* 1 response ready, 0 in progress, -1 failed. The head is read into head_buf; a
 * connection keeps a copy of its bytes (exactly their size) only while its head is
 * incomplete, which a head that arrives in one segment never is. */
static int read_request(ws_stream *w, unsigned *want)
{
    size_t cap = headers_max(w), len = w->hs_len;
    if (len)
        memcpy(head_buf, w->hs, len);
    for (;;) {
        long n = tm_stream_read(w->s.below, head_buf + len, cap - len, want);
        if (n == -2) {
            if (len != w->hs_len) {
                uint8_t *keep = realloc(w->hs, len);
                if (!keep) {
                    tm_stream_fail(&w->s, "out of memory");
                    return -1;
                }
                memcpy(keep, head_buf, len);
                w->hs = keep;
                w->hs_len = len;
            }
            return 0;
        }
        if (n <= 0) {
            tm_stream_fail(&w->s, "WebSocket upgrade: %s",
                           n == 0 ? "connection closed before the request was complete"
                                  : tm_stream_error(w->s.below));
            return -1;
        }
        size_t from = len >= 3 ? len - 3 : 0;
        len += (size_t)n;
        bool end = false;
        for (size_t i = from; i + 3 < len && !end; i++)
            end = !memcmp(head_buf + i, "\r\n\r\n", 4);
        tm_http_req r;
        /* until the head is complete only its first bytes are checked */
        int p = tm_http_parse(head_buf, end || len == cap ? len : (len < 17 ? len : 17), cap, &r);
        if (p == 0 && !end && len < cap)
            continue;
        if (p == 0)
            p = tm_http_parse(head_buf, len, cap, &r);
        free(w->hs);
        w->hs = NULL;
        w->hs_len = 0;
        if (answer(w, head_buf, len, &r, p) < 0) {
            tm_stream_fail(&w->s, "out of memory");
            return -1;
        }
        return 1;
    }
}

static int ws_handshake(tm_stream *s, unsigned *want)
{
    ws_stream *w = W(s);
    if (w->phase == WS_LOWER) {
        int r = tm_stream_handshake(s->below, want);
        if (r != 1)
            return r;
        w->phase = WS_REQUEST;
    }
    if (w->phase == WS_REQUEST) {
        int r = read_request(w, want);
        if (r != 1)
            return r;
        w->phase = WS_RESPOND;
    }
    if (w->phase == WS_RESPOND) {
        while (w->hs_pos < w->hs_len) {
            long n = tm_stream_write(s->below, w->hs + w->hs_pos, w->hs_len - w->hs_pos, want);
            if (n == -2 && w->hs_shared) {
                /* the shared buffer is the next connection's: keep our rest */
                uint8_t *rest = malloc(w->hs_len - w->hs_pos);
                if (!rest) {
                    tm_stream_fail(s, "out of memory");
                    return -1;
                }
                memcpy(rest, w->hs + w->hs_pos, w->hs_len - w->hs_pos);
                w->hs = rest;
                w->hs_len -= w->hs_pos;
                w->hs_pos = 0;
                w->hs_shared = false;
            }
            if (n == -2)
                return 0;
            if (n < 0) {
                tm_stream_fail(s, "WebSocket upgrade: %s", tm_stream_error(s->below));
                return -1;
            }
            w->hs_pos += (size_t)n;
        }
        if (!w->hs_shared)
            free(w->hs);
        w->hs = NULL;
        w->hs_shared = false;
        w->hs_len = w->hs_pos = 0;
        if (w->refused) {
            unsigned ignore = 0;
            tm_stream_shutdown(s->below, &ignore);   /* best effort: the answer is out */
            s->failed = true;   /* s->err says what was answered */
            return -1;
        }
        w->phase = WS_OPEN;
    }
    return 1;
}

/* ---- data ------------------------------------------------------------------------ */

static long ws_read(tm_stream *s, void *vbuf, size_t n, unsigned *want)
{
    ws_stream *w = W(s);
    uint8_t *buf = vbuf;
    if (w->close_received) {
        /* our answering close frame first, then the end of the stream */
        if (ctl_waiting(w) && flush_ctl(w, want) == 0)
            return -2;
        return 0;
    }
    for (int turn = 0; turn < WS_READ_TURNS; turn++) {
        long r;
        if (w->early) {
            size_t k = w->early_len - w->early_pos;
            if (k > n)
                k = n;
            memcpy(buf, w->early + w->early_pos, k);
            w->early_pos += k;
            if (w->early_pos == w->early_len) {
                free(w->early);
                w->early = NULL;
            }
            r = (long)k;
        } else {
            r = tm_stream_read(s->below, buf, n, want);
            w->more = r > 0 && (size_t)r == n;
            if (r == -2 && ctl_waiting(w) && flush_ctl(w, NULL) == 0)
                *want |= TM_EV_WRITE;
            if (r <= 0)
                return r;
        }
        size_t in = 0, out = 0;
        for (;;) {
            int ev = tm_wsf_decode(&w->dec, buf, (size_t)r, &in, &out);
            if (ev == TM_WSF_MORE)
                break;
            if (ev == TM_WSF_PING) {
                queue_ctl(w, TM_WS_OP_PONG, w->dec.ctl, w->dec.ctl_len);
            } else if (ev == TM_WSF_CLOSE) {
                /* echo the status code (none when the client sent none) */
                w->close_received = true;
                queue_close(w, w->dec.close_code == 1005 ? 0 : w->dec.close_code);
                if (!out && ctl_waiting(w) && flush_ctl(w, want) == 0)
                    return -2;      /* the socket is full: come back when writable */
                return (long)out;   /* what came before the close; then end of stream */
            } else if (ev == TM_WSF_ERROR) {
                queue_close(w, w->dec.err_code);
                flush_ctl(w, NULL);
                tm_stream_fail(s, "WebSocket: %s (closed with status %u)", w->dec.why,
                               w->dec.err_code);
                return -1;
            }
        }
        if (ctl_waiting(w))
            flush_ctl(w, NULL);
        if (out)
            return (long)out;
    }
    /* only control frames for a while: come back when the socket says so
     * (writable at once), so that other connections get their turn */
    *want = TM_EV_READ | TM_EV_WRITE;
    return -2;
}

static long ws_write(tm_stream *s, const void *vbuf, size_t n, unsigned *want)
{
    ws_stream *w = W(s);
    const uint8_t *buf = vbuf;
    if (n == 0)
        return 0;
    if (!in_frame(w)) {
        if (w->close_queued) {
            tm_stream_fail(s, "WebSocket: write after the close frame");
            return -1;
        }
        int c = ctl_waiting(w) ? flush_ctl(w, want) : 1;
        if (c == 0)
            return -2;
        if (c < 0)
            return -1;
        w->ohdr_len = (uint8_t)tm_wsf_header(w->ohdr, TM_WS_OP_BINARY, true, n);
        w->ohdr_pos = 0;
        w->frame_left = n;
    }
    for (;;) {
        size_t take = n < w->frame_left ? n : (size_t)w->frame_left;
        size_t hdr = w->ohdr_len - w->ohdr_pos, payload;
        long r;
        if (hdr) {
            uint8_t tmp[WS_COMPOSE];
            size_t p = take < sizeof tmp - hdr ? take : sizeof tmp - hdr;
            memcpy(tmp, w->ohdr + w->ohdr_pos, hdr);
            memcpy(tmp + hdr, buf, p);
            r = tm_stream_write(s->below, tmp, hdr + p, want);
            if (r < 0)
                return r;
            size_t h = (size_t)r < hdr ? (size_t)r : hdr;
            w->ohdr_pos = (uint8_t)(w->ohdr_pos + h);
            payload = (size_t)r - h;
        } else {
            r = tm_stream_write(s->below, buf, take, want);
            if (r < 0)
                return r;
            payload = (size_t)r;
        }
        w->frame_left -= payload;
        if (payload && !in_frame(w) && ctl_waiting(w))
            flush_ctl(w, NULL);   /* a pong or close held back by this frame */
        if (payload)
            return (long)payload;
    }
}

static int ws_shutdown(tm_stream *s, unsigned *want)
{
    ws_stream *w = W(s);
    if (w->phase == WS_OPEN && !s->failed) {
        if (!in_frame(w) && !w->close_queued)
            queue_close(w, 1000);
        int c = ctl_waiting(w) ? flush_ctl(w, want) : 1;
        if (c == 0 && !in_frame(w))
            return 0;
        if (c < 0)
            return -1;
    }
    return tm_stream_shutdown(s->below, want);
}

static bool ws_pending(const tm_stream *s)
{
    const ws_stream *w = (const ws_stream *)s;
    return w->early || w->more || tm_stream_pending(s->below);
}

static void ws_free(tm_stream *s)
{
    ws_stream *w = W(s);
    if (!w->hs_shared)
        free(w->hs);
    free(w->early);
    free(w->ctl);
    free(w);
}

static const tm_stream_ops ws_ops = {
    .name = "ws",
    .handshake = ws_handshake,
    .read = ws_read,
    .write = ws_write,
    .shutdown = ws_shutdown,
    .pending = ws_pending,
    .free = ws_free,
};

tm_stream *tm_stream_ws_server(const tm_ws_opts *o, tm_stream *below, char *err, size_t errcap)
{
    ws_stream *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    w->s.ops = &ws_ops;
    w->s.below = below;
    w->s.fd = below->fd;
    w->o = o;
    tm_wsf_init(&w->dec);
    return &w->s;
}
