/*
 * ws_http.h — the HTTP/1.1 side of a WebSocket listener, sans I/O: a strict
 * parser for one request head (request line + header fields, no body), and
 * the decision what to answer it with (RFC 6455 upgrade to the MQTT
 * subprotocol, a static file from http_dir, or an error status).
 *
 * Why our own parser: the listener only ever needs one request head without a
 * body, so the parser is a request line and header lines with hard limits
 * (docs/websockets.md says why no library was taken). It is strict on
 * purpose: CRLF line ends only, no obsolete line folding, token characters in
 * methods and field names, HTTP/1.1 only, one Host / Upgrade / key / version
 * / Origin, a size limit on the whole head and on the number of fields. What
 * it accepts is a subset of what RFC 9112 allows, never more.
 *
 * Everything here is pure: bytes in, a struct out, no allocation. Slices
 * point into the caller's buffer, which must outlive them.
 */
#ifndef TM_NET_WS_HTTP_H
#define TM_NET_WS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TM_HTTP_MAX_FIELDS 48

typedef struct tm_slice {
    const char *p;
    size_t n;
} tm_slice;

typedef struct tm_http_req {
    tm_slice method, target;
    tm_slice name[TM_HTTP_MAX_FIELDS], value[TM_HTTP_MAX_FIELDS];
    unsigned n_fields;
    size_t head_len;             /* bytes of the head, final CRLF CRLF included */
    int status;                  /* on error: the HTTP status to answer with */
    const char *why;             /* on error: why, for the log */
} tm_http_req;

/* Parses the request head at the start of buf[0..len). `max` bounds the head.
 * Returns 1 when complete (r->head_len says where the head ends; bytes after
 * it are the next protocol's), 0 when more bytes are needed, -1 when the
 * bytes cannot be a valid request head (r->status: 400, 431 or 505). */
int tm_http_parse(const uint8_t *buf, size_t len, size_t max, tm_http_req *r);

/* The value of the single field `name` (case-insensitive); NULL when absent. */
const tm_slice *tm_http_field(const tm_http_req *r, const char *name);
/* Does any field `name` hold `token` in its comma-separated list
 * (case-insensitive, optional whitespace around elements)? */
bool tm_http_has_token(const tm_http_req *r, const char *name, const char *token);

/* ---- what a WebSocket listener answers ---------------------------------------- */

typedef struct tm_ws_opts {
    const char *http_dir;        /* NULL: no static files */
    const char *const *origins;  /* allowed Origin values; none: any origin */
    size_t n_origins;
    size_t headers_max;          /* request head limit in bytes (0: 4096) */
} tm_ws_opts;

enum { TM_WS_UPGRADE = 1, TM_WS_FILE, TM_WS_REFUSE };

typedef struct tm_ws_verdict {
    int kind;                    /* TM_WS_UPGRADE, TM_WS_FILE, TM_WS_REFUSE */
    int status;                  /* 101, or the HTTP status of a refusal */
    const char *subprotocol;     /* "mqtt" or "mqttv3.1" */
    char accept[32];             /* Sec-WebSocket-Accept value */
    tm_slice path;               /* TM_WS_FILE: the request target's path */
    char why[200];               /* TM_WS_REFUSE: for the log */
} tm_ws_verdict;

/* Decides the answer to a parsed request. Pure except for SHA-1 (OpenSSL). */
void tm_ws_evaluate(const tm_http_req *r, const tm_ws_opts *o, tm_ws_verdict *v);

/* The reason phrase of a status this module produces. */
const char *tm_http_reason(int status);

#endif
