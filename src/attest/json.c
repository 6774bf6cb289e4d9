/*
 * json.c — strict, non-recursive JSON tokenizer (see json.h).
 *
 * The parser is a loop over a state machine with an explicit container stack;
 * depth is bounded so that "[[[[..." cannot exhaust anything. Each token's
 * `next` field lets accessors skip whole subtrees in O(1), so lookups never
 * recurse either.
 */
#include "attest/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void jerr(char *err, size_t cap, size_t off, const char *what)
{
    if (err && cap) snprintf(err, cap, "JSON: %s at byte %zu", what, off);
}

static int push_tok(tm_json *j, unsigned char type, size_t start)
{
    if (j->ntok == j->cap) {
        if (j->cap >= TM_JSON_MAX_TOKENS) return -1;
        int ncap = j->cap ? j->cap * 2 : 64;
        tm_json_tok *n = realloc(j->tok, (size_t)ncap * sizeof *n);
        if (!n) return -1;
        j->tok = n;
        j->cap = ncap;
    }
    tm_json_tok *t = &j->tok[j->ntok];
    t->type = type;
    t->start = start;
    t->end = start;
    t->size = 0;
    t->next = j->ntok + 1;
    return j->ntok++;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Scans a string starting after the opening quote; returns offset of the
 * closing quote or (size_t)-1. Validates escapes and control characters. */
static size_t scan_string(const char *s, size_t len, size_t i)
{
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') return i;
        if (c < 0x20) return (size_t)-1;
        if (c == '\\') {
            if (++i >= len) return (size_t)-1;
            switch (s[i]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i++;
                break;
            case 'u':
                if (len - i < 5) return (size_t)-1;
                for (int k = 1; k <= 4; k++)
                    if (hexval((unsigned char)s[i + k]) < 0) return (size_t)-1;
                i += 5;
                break;
            default:
                return (size_t)-1;
            }
            continue;
        }
        i++;
    }
    return (size_t)-1;
}

static size_t scan_number(const char *s, size_t len, size_t i)
{
    size_t st = i;
    if (i < len && s[i] == '-') i++;
    if (i >= len) return (size_t)-1;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') { while (i < len && s[i] >= '0' && s[i] <= '9') i++; }
    else return (size_t)-1;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9') return (size_t)-1;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || s[i] < '0' || s[i] > '9') return (size_t)-1;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i > st ? i : (size_t)-1;
}

enum { S_VALUE, S_VALUE_OR_END, S_KEY, S_KEY_OR_END, S_COLON, S_COMMA_OR_END, S_DONE };

int tm_json_parse(tm_json *j, const char *s, size_t len, char *err, size_t errcap)
{
    memset(j, 0, sizeof *j);
    j->text = s;
    j->len = len;
    int stack[TM_JSON_MAX_DEPTH];
    int sp = 0, state = S_VALUE;
    size_t i = 0;
    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        if (state == S_DONE) {
            if (i != len) { jerr(err, errcap, i, "trailing data"); goto fail; }
            if (j->ntok == 0) { jerr(err, errcap, i, "empty document"); goto fail; }
            return 0;
        }
        if (i >= len) { jerr(err, errcap, i, "unexpected end of input"); goto fail; }
        char c = s[i];
        int close = 0;
        switch (state) {
        case S_VALUE_OR_END:
            if (c == ']') { close = 1; break; }
            /* fall through */
        case S_VALUE: {
            if (sp > 0 && j->tok[stack[sp - 1]].type == TM_JSON_ARRAY) j->tok[stack[sp - 1]].size++;
            int t;
            if (c == '{' || c == '[') {
                if (sp == TM_JSON_MAX_DEPTH) { jerr(err, errcap, i, "nesting too deep"); goto fail; }
                t = push_tok(j, c == '{' ? TM_JSON_OBJECT : TM_JSON_ARRAY, i);
                if (t < 0) { jerr(err, errcap, i, "too many tokens"); goto fail; }
                stack[sp++] = t;
                state = c == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
                i++;
                continue;
            }
            size_t e;
            unsigned char type;
            if (c == '"') {
                e = scan_string(s, len, i + 1);
                if (e == (size_t)-1) { jerr(err, errcap, i, "bad string"); goto fail; }
                t = push_tok(j, TM_JSON_STRING, i + 1);
                if (t < 0) { jerr(err, errcap, i, "too many tokens"); goto fail; }
                j->tok[t].end = e;
                i = e + 1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                e = scan_number(s, len, i);
                if (e == (size_t)-1) { jerr(err, errcap, i, "bad number"); goto fail; }
                t = push_tok(j, TM_JSON_NUMBER, i);
                if (t < 0) { jerr(err, errcap, i, "too many tokens"); goto fail; }
                j->tok[t].end = e;
                i = e;
            } else {
                const char *lit;
                if (c == 't') { lit = "true"; type = TM_JSON_TRUE; }
                else if (c == 'f') { lit = "false"; type = TM_JSON_FALSE; }
                else if (c == 'n') { lit = "null"; type = TM_JSON_NULL; }
                else { jerr(err, errcap, i, "unexpected character"); goto fail; }
                size_t l = strlen(lit);
                if (len - i < l || memcmp(s + i, lit, l) != 0) { jerr(err, errcap, i, "bad literal"); goto fail; }
                t = push_tok(j, type, i);
                if (t < 0) { jerr(err, errcap, i, "too many tokens"); goto fail; }
                j->tok[t].end = i + l;
                i += l;
            }
            state = sp ? S_COMMA_OR_END : S_DONE;
            continue;
        }
        case S_KEY_OR_END:
            if (c == '}') { close = 1; break; }
            /* fall through */
        case S_KEY: {
            if (c != '"') { jerr(err, errcap, i, "expected object key"); goto fail; }
            size_t e = scan_string(s, len, i + 1);
            if (e == (size_t)-1) { jerr(err, errcap, i, "bad string"); goto fail; }
            int t = push_tok(j, TM_JSON_STRING, i + 1);
            if (t < 0) { jerr(err, errcap, i, "too many tokens"); goto fail; }
            j->tok[t].end = e;
            j->tok[stack[sp - 1]].size++;
            i = e + 1;
            state = S_COLON;
            continue;
        }
        case S_COLON:
            if (c != ':') { jerr(err, errcap, i, "expected ':'"); goto fail; }
            i++;
            state = S_VALUE;
            continue;
        case S_COMMA_OR_END: {
            unsigned char pt = j->tok[stack[sp - 1]].type;
            if (c == ',') { i++; state = pt == TM_JSON_OBJECT ? S_KEY : S_VALUE; continue; }
            if ((c == '}' && pt == TM_JSON_OBJECT) || (c == ']' && pt == TM_JSON_ARRAY)) { close = 1; break; }
            jerr(err, errcap, i, "expected ',' or end of container");
            goto fail;
        }
        }
        if (close) {
            int t = stack[--sp];
            j->tok[t].end = i + 1;
            j->tok[t].next = j->ntok;
            i++;
            state = sp ? S_COMMA_OR_END : S_DONE;
        }
    }
fail:
    tm_json_free(j);
    return -1;
}

void tm_json_free(tm_json *j)
{
    free(j->tok);
    j->tok = NULL;
    j->ntok = j->cap = 0;
}

static int key_eq(const tm_json *j, int t, const char *key)
{
    /* Keys we look up are plain ASCII; compare raw bytes (no escapes). */
    size_t kl = strlen(key);
    const tm_json_tok *k = &j->tok[t];
    return k->type == TM_JSON_STRING && k->end - k->start == kl &&
           memcmp(j->text + k->start, key, kl) == 0;
}

int tm_json_get(const tm_json *j, int obj, const char *key)
{
    if (obj < 0 || obj >= j->ntok || j->tok[obj].type != TM_JSON_OBJECT) return -1;
    int i = obj + 1;
    for (int n = 0; n < j->tok[obj].size; n++) {
        int v = i + 1;
        if (key_eq(j, i, key)) return v;
        i = j->tok[v].next;
    }
    return -1;
}

int tm_json_at(const tm_json *j, int arr, int idx)
{
    if (arr < 0 || arr >= j->ntok || j->tok[arr].type != TM_JSON_ARRAY) return -1;
    if (idx < 0 || idx >= j->tok[arr].size) return -1;
    int i = arr + 1;
    while (idx-- > 0) i = j->tok[i].next;
    return i;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *p)
{
    return (uint32_t)(hexval((unsigned char)p[0]) << 12 | hexval((unsigned char)p[1]) << 8 |
                      hexval((unsigned char)p[2]) << 4 | hexval((unsigned char)p[3]));
}

long tm_json_str(const tm_json *j, int t, char *out, size_t cap)
{
    if (t < 0 || t >= j->ntok || j->tok[t].type != TM_JSON_STRING || cap == 0) return -1;
    const char *s = j->text;
    size_t i = j->tok[t].start, e = j->tok[t].end, o = 0;
    while (i < e) {
        char tmp[4];
        size_t n;
        if (s[i] != '\\') { tmp[0] = s[i++]; n = 1; }
        else {
            char c = s[i + 1]; /* validated by scan_string */
            i += 2;
            switch (c) {
            case 'b': tmp[0] = '\b'; n = 1; break;
            case 'f': tmp[0] = '\f'; n = 1; break;
            case 'n': tmp[0] = '\n'; n = 1; break;
            case 'r': tmp[0] = '\r'; n = 1; break;
            case 't': tmp[0] = '\t'; n = 1; break;
            case 'u': {
                uint32_t cp = hex4(s + i);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (e - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return -1;
                    uint32_t lo = hex4(s + i + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
                n = put_utf8(tmp, cp);
                break;
            }
            default: tmp[0] = c; n = 1; break;
            }
        }
        if (o + n >= cap) return -1;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = 0;
    return (long)o;
}

char *tm_json_strdup(const tm_json *j, int t, size_t *outlen)
{
    if (t < 0 || t >= j->ntok || j->tok[t].type != TM_JSON_STRING) return NULL;
    size_t cap = j->tok[t].end - j->tok[t].start + 1; /* decoding never grows */
    char *o = malloc(cap);
    if (!o) return NULL;
    long n = tm_json_str(j, t, o, cap);
    if (n < 0) { free(o); return NULL; }
    if (outlen) *outlen = (size_t)n;
    return o;
}

int tm_json_int(const tm_json *j, int t, long long *v)
{
    if (t < 0 || t >= j->ntok || j->tok[t].type != TM_JSON_NUMBER) return -1;
    const char *s = j->text;
    size_t i = j->tok[t].start, e = j->tok[t].end;
    int neg = 0;
    if (s[i] == '-') { neg = 1; i++; }
    unsigned long long acc = 0;
    if (i >= e) return -1;
    for (; i < e; i++) {
        if (s[i] < '0' || s[i] > '9') return -1; /* fraction or exponent */
        if (acc > (0x7FFFFFFFFFFFFFFFULL - (unsigned)(s[i] - '0')) / 10) return -1;
        acc = acc * 10 + (unsigned)(s[i] - '0');
    }
    *v = neg ? -(long long)acc : (long long)acc;
    return 0;
}
