/*
 * ws_http.c — request heads and the WebSocket listener's answer to them
 * (ws_http.h). Pure: no I/O, no allocation; SHA-1 and base64 from OpenSSL.
 *
 * The parser walks the head once it is complete (CRLF CRLF seen); before
 * that it only checks that what arrived can still begin a request line, so
 * an MQTT CONNECT or a TLS ClientHello sent to a WebSocket port is refused
 * at its first byte instead of when the deadline passes.
 */
#include "net/ws_http.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int bad(tm_http_req *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return -1;
}

/* RFC 9110 tchar */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value characters: VCHAR, SP, HTAB, obs-text */
static bool is_vchar(uint8_t c) { return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f); }

static bool ieq(tm_slice s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = s.p[i], b = lit[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

static bool eq(tm_slice s, const char *lit) { return s.n == strlen(lit) && !memcmp(s.p, lit, s.n); }

/* The end of the head (index just past CRLF CRLF) within buf[0..len), or 0. */
static size_t head_end(const uint8_t *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* The line starting at *pos, without its CRLF; -1 for a bare CR or LF. */
static int next_line(const uint8_t *b, size_t end, size_t *pos, tm_slice *line)
{
    size_t s = *pos, i = s;
    while (i < end && b[i] != '\r' && b[i] != '\n')
        i++;
    if (i + 1 >= end || b[i] != '\r' || b[i + 1] != '\n')
        return -1;
    line->p = (const char *)b + s;
    line->n = i - s;
    *pos = i + 2;
    return 0;
}

static int parse_request_line(tm_http_req *r, tm_slice l)
{
    const uint8_t *p = (const uint8_t *)l.p;
    size_t i = 0;
    while (i < l.n && is_tchar(p[i]))
        i++;
    if (i == 0 || i > 16 || i >= l.n || p[i] != ' ')
        return bad(r, 400, "malformed request line (method)");
    r->method = (tm_slice){l.p, i};
    size_t t = ++i;
    while (i < l.n && p[i] > 0x20 && p[i] < 0x7f)
        i++;
    if (i == t || i >= l.n || p[i] != ' ')
        return bad(r, 400, "malformed request line (target)");
    r->target = (tm_slice){l.p + t, i - t};
    if (r->target.p[0] != '/')
        return bad(r, 400, "request target is not a path (origin-form only)");
    tm_slice ver = {l.p + i + 1, l.n - i - 1};
    if (ver.n != 8 || memcmp(ver.p, "HTTP/", 5) || ver.p[5] < '0' || ver.p[5] > '9' ||
        ver.p[6] != '.' || ver.p[7] < '0' || ver.p[7] > '9')
        return bad(r, 400, "malformed request line (version)");
    if (!eq(ver, "HTTP/1.1"))
        return bad(r, 505, "only HTTP/1.1 is served");
    return 0;
}

static int parse_field(tm_http_req *r, tm_slice l)
{
    const uint8_t *p = (const uint8_t *)l.p;
    if (l.n && (p[0] == ' ' || p[0] == '\t'))
        return bad(r, 400, "obsolete line folding in header");
    size_t i = 0;
    while (i < l.n && is_tchar(p[i]))
        i++;
    if (i == 0 || i >= l.n || p[i] != ':')
        return bad(r, 400, "malformed header field name");
    if (r->n_fields == TM_HTTP_MAX_FIELDS)
        return bad(r, 431, "too many header fields");
    size_t vs = i + 1, ve = l.n;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    for (size_t k = vs; k < ve; k++)
        if (!is_vchar(p[k]))
            return bad(r, 400, "invalid character in header field value");
    r->name[r->n_fields] = (tm_slice){l.p, i};
    r->value[r->n_fields] = (tm_slice){l.p + vs, ve - vs};
    r->n_fields++;
    return 0;
}

int tm_http_parse(const uint8_t *buf, size_t len, size_t max, tm_http_req *r)
{
    memset(r, 0, sizeof *r);
    /* what arrived so far must be able to begin a request line */
    for (size_t i = 0; i < len && buf[i] != ' '; i++)
        if (!is_tchar(buf[i]) || i >= 16)
            return bad(r, 400, "not an HTTP request");
    size_t end = head_end(buf, len < max ? len : max);
    if (!end)
        return len >= max ? bad(r, 431, "request head larger than websockets_headers_size") : 0;
    size_t pos = 0;
    tm_slice line;
    if (next_line(buf, end, &pos, &line) < 0)
        return bad(r, 400, "bare CR or LF in request line");
    if (parse_request_line(r, line) < 0)
        return -1;
    for (;;) {
        if (next_line(buf, end, &pos, &line) < 0)
            return bad(r, 400, "bare CR or LF in header");
        if (line.n == 0)
            break;
        if (parse_field(r, line) < 0)
            return -1;
    }
    r->head_len = end;
    return 1;
}

const tm_slice *tm_http_field(const tm_http_req *r, const char *name)
{
    for (unsigned i = 0; i < r->n_fields; i++)
        if (ieq(r->name[i], name))
            return &r->value[i];
    return NULL;
}

static unsigned field_count(const tm_http_req *r, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_fields; i++)
        n += ieq(r->name[i], name);
    return n;
}

bool tm_http_has_token(const tm_http_req *r, const char *name, const char *token)
{
    for (unsigned i = 0; i < r->n_fields; i++) {
        if (!ieq(r->name[i], name))
            continue;
        tm_slice v = r->value[i];
        size_t s = 0;
        while (s <= v.n) {
            size_t e = s;
            while (e < v.n && v.p[e] != ',')
                e++;
            size_t a = s, b = e;
            while (a < b && (v.p[a] == ' ' || v.p[a] == '\t'))
                a++;
            while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
                b--;
            if (ieq((tm_slice){v.p + a, b - a}, token))
                return true;
            s = e + 1;
        }
    }
    return false;
}

const char *tm_http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* ---- the answer ------------------------------------------------------------------ */

static int refuse(tm_ws_verdict *v, int status, const char *fmt, const tm_slice *arg)
{
    v->kind = TM_WS_REFUSE;
    v->status = status;
    if (arg) {
        /* quote at most 64 bytes of what the client sent, printable only */
        char q[65];
        size_t n = arg->n < 64 ? arg->n : 64;
        for (size_t i = 0; i < n; i++)
            q[i] = arg->p[i] >= 0x20 && arg->p[i] < 0x7f ? arg->p[i] : '?';
        q[n] = 0;
        snprintf(v->why, sizeof v->why, fmt, q);
    } else {
        snprintf(v->why, sizeof v->why, "%s", fmt);
    }
    return 0;
}

/* Sec-WebSocket-Key: base64 of exactly 16 bytes (RFC 6455 4.1). */
static bool valid_key(const tm_slice *k)
{
    if (!k || k->n != 24 || k->p[22] != '=' || k->p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char c = k->p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

static int accept_value(const tm_slice *key, char out[32])
{
    char in[24 + sizeof WS_GUID];
    memcpy(in, key->p, 24);
    memcpy(in + 24, WS_GUID, sizeof WS_GUID - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(in, 24 + sizeof WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20);   /* 28 characters + NUL */
    return 0;
}

static bool origin_allowed(const tm_http_req *r, const tm_ws_opts *o)
{
    if (!o->n_origins)
        return true;
    const tm_slice *org = tm_http_field(r, "Origin");
    if (!org)
        return false;
    for (size_t i = 0; i < o->n_origins; i++)
        if (ieq(*org, o->origins[i]))
            return true;
    return false;
}

static int evaluate(const tm_http_req *r, const tm_ws_opts *o, tm_ws_verdict *v)
{
    static const char *const single[] = {"Host", "Upgrade", "Sec-WebSocket-Key",
                                         "Sec-WebSocket-Version", "Origin", "Content-Length"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++)
        if (field_count(r, single[i]) > 1) {
            refuse(v, 400, "header field repeated", NULL);
            snprintf(v->why, sizeof v->why, "header field %s repeated", single[i]);
            return 0;
        }
    if (!tm_http_field(r, "Host"))
        return refuse(v, 400, "no Host header field", NULL);
    const tm_slice *cl = tm_http_field(r, "Content-Length");
    if (tm_http_field(r, "Transfer-Encoding") || (cl && !eq(*cl, "0")))
        return refuse(v, 400, "request with a body", NULL);
    bool upgrade = tm_http_field(r, "Upgrade") || tm_http_has_token(r, "Connection", "upgrade");
    if (!eq(r->method, "GET"))
        return refuse(v, 405, "method %s not allowed (GET only)", &r->method);
    if (!upgrade) {
        if (!o->http_dir)
            return refuse(v, 404, "plain HTTP request and no http_dir on this listener", NULL);
        v->kind = TM_WS_FILE;
        v->status = 200;
        size_t n = 0;
        while (n < r->target.n && r->target.p[n] != '?' && r->target.p[n] != '#')
            n++;
        v->path = (tm_slice){r->target.p, n};
        return 0;
    }
    if (!tm_http_has_token(r, "Upgrade", "websocket"))
        return refuse(v, 400, "Upgrade is not websocket", NULL);
    if (!tm_http_has_token(r, "Connection", "upgrade"))
        return refuse(v, 400, "Connection does not include upgrade", NULL);
    const tm_slice *ver = tm_http_field(r, "Sec-WebSocket-Version");
    if (!ver || !eq(*ver, "13"))
        return refuse(v, 426, "unsupported Sec-WebSocket-Version (13 only)", NULL);
    const tm_slice *key = tm_http_field(r, "Sec-WebSocket-Key");
    if (!valid_key(key))
        return refuse(v, 400, "missing or malformed Sec-WebSocket-Key", NULL);
    if (!origin_allowed(r, o)) {
        const tm_slice *org = tm_http_field(r, "Origin");
        if (org)
            return refuse(v, 403, "origin '%s' not in websockets_origin", org);
        return refuse(v, 403, "no Origin and websockets_origin is set", NULL);
    }
    if (tm_http_has_token(r, "Sec-WebSocket-Protocol", "mqtt"))
        v->subprotocol = "mqtt";
    else if (tm_http_has_token(r, "Sec-WebSocket-Protocol", "mqttv3.1"))
        v->subprotocol = "mqttv3.1";
    else
        return refuse(v, 400, "client offers no MQTT subprotocol (mqtt, mqttv3.1)", NULL);
    if (accept_value(key, v->accept) < 0)
        return refuse(v, 500, "SHA-1 unavailable", NULL);
    v->kind = TM_WS_UPGRADE;
    v->status = 101;
    return 0;
}

void tm_ws_evaluate(const tm_http_req *r, const tm_ws_opts *o, tm_ws_verdict *v)
{
    memset(v, 0, sizeof *v);
    evaluate(r, o, v);
}
