/*
 * stream.c — the layer-independent part of the transport stack (stream.h)
 * and its bottom layer, TCP.
 *
 * TCP reads with read() and sends with send(MSG_NOSIGNAL), so a peer that
 * vanished is an EPIPE error, never a SIGPIPE that would end the process.
 * Its shutdown half-closes the socket (SHUT_WR): the peer reads EOF after
 * the last byte, which is what a graceful close needs.
 */
#include "net/stream.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/loop.h"
#ifdef __wasi__
#include "platform/wasi_socket.h"
/* wasi-libc's send() takes no flags; the WASI host never raises SIGPIPE for
 * the module (a host that does is the host's bug, see docs/wasm-runtime.md) */
#define TM_SEND_FLAGS 0
#else
#define TM_SEND_FLAGS MSG_NOSIGNAL
#endif

#define TM_STREAM_REASON_MAX 200

/* A reason when there is no memory for the real one (never freed). */
static char oom_reason[] = "out of memory";

static void free_reason(tm_stream *s)
{
    if (s->err != oom_reason)
        free(s->err);
    s->err = NULL;
}

/* Reasons are cut at TM_STREAM_REASON_MAX - 1 bytes (some quote the peer). */
static void set_reason(tm_stream *s, const char *fmt, va_list ap)
{
    char buf[TM_STREAM_REASON_MAX];
    vsnprintf(buf, sizeof buf, fmt, ap);
    char *r = strdup(buf);
    free_reason(s);
    s->err = r ? r : oom_reason;
}

void tm_stream_fail(tm_stream *s, const char *fmt, ...)
{
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    set_reason(s, fmt, ap);
    va_end(ap);
}

void tm_stream_note(tm_stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(s, fmt, ap);
    va_end(ap);
}

int tm_stream_handshake(tm_stream *s, unsigned *want) { return s->ops->handshake(s, want); }

long tm_stream_read(tm_stream *s, void *buf, size_t n, unsigned *want)
{
    return s->ops->read(s, buf, n, want);
}

long tm_stream_write(tm_stream *s, const void *buf, size_t n, unsigned *want)
{
    if (s->failed)
        return -1;
    return s->ops->write(s, buf, n, want);
}

int tm_stream_shutdown(tm_stream *s, unsigned *want) { return s->ops->shutdown(s, want); }

bool tm_stream_pending(const tm_stream *s) { return s->ops->pending && s->ops->pending(s); }

const char *tm_stream_error(const tm_stream *s)
{
    for (; s; s = s->below)
        if (s->err && s->err[0])
            return s->err;
    return "";
}

tm_stream *tm_stream_find(tm_stream *s, const char *name)
{
    for (; s; s = s->below)
        if (strcmp(s->ops->name, name) == 0)
            return s;
    return NULL;
}

void tm_stream_free(tm_stream *s)
{
    int fd = s ? s->fd : -1;
    while (s) {
        tm_stream *below = s->below;
        free_reason(s);
        s->ops->free(s);
        s = below;
    }
    if (fd >= 0)
        close(fd);
}

/* ---- TCP -------------------------------------------------------------------- */

static int tcp_handshake(tm_stream *s, unsigned *want) { return 1; }

static long tcp_read(tm_stream *s, void *buf, size_t n, unsigned *want)
{
    ssize_t r = read(s->fd, buf, n);
    if (r >= 0)
        return (long)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = TM_EV_READ;
        return -2;
    }
    tm_stream_fail(s, "read: %s", strerror(errno));
    return -1;
}

static long tcp_write(tm_stream *s, const void *buf, size_t n, unsigned *want)
{
    ssize_t r = send(s->fd, buf, n, TM_SEND_FLAGS);
    if (r >= 0)
        return (long)r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = TM_EV_WRITE;
        return -2;
    }
    tm_stream_fail(s, "write: %s", strerror(errno));
    return -1;
}

static int tcp_shutdown(tm_stream *s, unsigned *want)
{
    if (s->failed)
        return -1;
    if (shutdown(s->fd, SHUT_WR) < 0) {
        tm_stream_fail(s, "shutdown: %s", strerror(errno));
        return -1;
    }
    return 1;
}

static void tcp_free(tm_stream *s)
{
    if (!s->embedded)            /* else the memory is the caller's */
        free(s);
}

static const tm_stream_ops tcp_ops = {
    .name = "tcp",
    .handshake = tcp_handshake,
    .read = tcp_read,
    .write = tcp_write,
    .shutdown = tcp_shutdown,
    .free = tcp_free,
};

void tm_stream_tcp_init(tm_stream *s, int fd)
{
    memset(s, 0, sizeof *s);
    s->ops = &tcp_ops;
    s->fd = fd;
    s->embedded = true;
}

tm_stream *tm_stream_tcp(int fd)
{
    tm_stream *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return NULL;
    }
    s->ops = &tcp_ops;
    s->fd = fd;
    return s;
}
