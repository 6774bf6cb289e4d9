/*
 * stream.h — one connection's transport stack: how its bytes move.
 *
 * A stream is a layer: TCP at the bottom (a socket), TLS over TCP (server or
 * client role, OpenSSL on the same socket), and later WebSockets over either.
 * The broker's connection manager (netsrv.c) and the client library drive
 * every connection through this one interface, so plain TCP is a transport
 * like the others, not an absence of one.
 *
 * Return conventions, shared by every layer:
 *   handshake: 1 done, 0 in progress (*want = TM_EV_READ / TM_EV_WRITE), -1 failed
 *   read:      >0 bytes, 0 peer closed, -1 error, -2 would block (*want set)
 *   write:     >0 bytes, -1 error, -2 would block (*want set)
 *   shutdown:  1 done, 0 in progress (*want set), -1 nothing more can be sent
 * Errors carry a reason in the stream (tm_stream_error). After a fatal error
 * a layer never writes again (no TLS close_notify after a fatal alert, no
 * send on a reset socket): shutdown then only closes quietly. Sends never
 * raise SIGPIPE (MSG_NOSIGNAL), whatever the host's signal disposition.
 *
 * Ownership: the top layer owns the ones below; tm_stream_free frees the
 * whole stack and closes the socket. A bottom layer made with
 * tm_stream_tcp_init lives in its owner's memory (netsrv's connection record)
 * and is not freed. A layer's failure reason is allocated when it fails (NULL
 * before), so an idle connection holds no room for one.
 */
#ifndef TM_NET_STREAM_H
#define TM_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tm_stream tm_stream;

typedef struct tm_stream_ops {
    const char *name;            /* "tcp", "tls", "ws" */
    int (*handshake)(tm_stream *s, unsigned *want);
    long (*read)(tm_stream *s, void *buf, size_t n, unsigned *want);
    long (*write)(tm_stream *s, const void *buf, size_t n, unsigned *want);
    int (*shutdown)(tm_stream *s, unsigned *want);
    /* true when bytes are buffered inside the layer that no socket readiness
     * will announce (decrypted TLS records, a WebSocket frame's rest) */
    bool (*pending)(const tm_stream *s);
    void (*free)(tm_stream *s);  /* this layer only; the caller frees below */
} tm_stream_ops;

struct tm_stream {
    const tm_stream_ops *ops;
    tm_stream *below;            /* NULL for the bottom (TCP) layer */
    int fd;                      /* the socket, shared by the whole stack */
    bool failed;                 /* a fatal error was seen: never write again */
    bool embedded;               /* in its owner's memory: freeing leaves it alone */
    char *err;                   /* why it failed, for logs: NULL until something
                                  * went wrong (allocated then, so that an idle
                                  * connection holds no room for a reason) */
};

/* TCP over a connected, non-blocking socket (takes ownership of fd). NULL
 * only when out of memory (the fd is then closed). */
tm_stream *tm_stream_tcp(int fd);
/* The same layer in memory the caller provides (inside its own connection
 * record: an idle connection then costs one allocation less). Freeing the
 * stack closes the socket and leaves that memory alone. */
void tm_stream_tcp_init(tm_stream *s, int fd);

int tm_stream_handshake(tm_stream *s, unsigned *want);
long tm_stream_read(tm_stream *s, void *buf, size_t n, unsigned *want);
long tm_stream_write(tm_stream *s, const void *buf, size_t n, unsigned *want);
int tm_stream_shutdown(tm_stream *s, unsigned *want);
bool tm_stream_pending(const tm_stream *s);
/* The reason of the last failure of any layer ("" when none). */
const char *tm_stream_error(const tm_stream *s);
/* The TLS layer of the stack, or NULL (for identity and attestation). */
tm_stream *tm_stream_find(tm_stream *s, const char *name);
/* Frees every layer and closes the socket. NULL is a no-op. */
void tm_stream_free(tm_stream *s);

/* For layer implementations: record a fatal error. */
void tm_stream_fail(tm_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For layer implementations: record what happened (the reason tm_stream_error
 * reports) without failing the stream. Without memory the reason is "out of
 * memory". */
void tm_stream_note(tm_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
