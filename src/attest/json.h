/*
 * json.h — a small, strict JSON tokenizer for attestation collateral.
 *
 * Owns: turning untrusted JSON text into a flat array of tokens (jsmn style)
 * and a handful of accessors. Invariants: the parser never recurses (an
 * explicit stack bounded by TM_JSON_MAX_DEPTH), never reads outside
 * [text, text+len), rejects anything RFC 8259 does not allow (trailing commas,
 * control characters in strings, bad escapes, lone surrogates, leading zeros,
 * trailing garbage), and caps the token count so hostile input cannot make it
 * allocate without bound. Tokens point into the caller's text; the text must
 * outlive the tm_json.
 */
#ifndef TM_ATTEST_JSON_H
#define TM_ATTEST_JSON_H
#include <stddef.h>

#define TM_JSON_MAX_DEPTH 32
#define TM_JSON_MAX_TOKENS (1 << 20)

enum tm_json_type { TM_JSON_OBJECT = 1, TM_JSON_ARRAY, TM_JSON_STRING,
                    TM_JSON_NUMBER, TM_JSON_TRUE, TM_JSON_FALSE, TM_JSON_NULL };

typedef struct {
    unsigned char type;  /* enum tm_json_type */
    size_t start, end;   /* byte span; for strings, inside the quotes */
    int size;            /* objects: key/value pairs; arrays: elements */
    int next;            /* index of the token after this whole subtree */
} tm_json_tok;

typedef struct {
    const char *text;
    size_t len;
    tm_json_tok *tok;
    int ntok, cap;
} tm_json;

/* Parses text; 0 on success (token 0 is the root), -1 with a reason. */
int tm_json_parse(tm_json *j, const char *text, size_t len, char *err, size_t errcap);
void tm_json_free(tm_json *j);

/* Value token of `key` in object token `obj`, or -1 (also when obj is not an object). */
int tm_json_get(const tm_json *j, int obj, const char *key);
/* Element `idx` of array token `arr`, or -1. */
int tm_json_at(const tm_json *j, int arr, int idx);
/* Decodes a string token (escapes resolved, UTF-8) into out, NUL-terminated.
 * Returns the decoded length, or -1 if not a string or it does not fit. */
long tm_json_str(const tm_json *j, int t, char *out, size_t cap);
/* Decoded string into a fresh malloc'd buffer (NUL-terminated), or NULL. */
char *tm_json_strdup(const tm_json *j, int t, size_t *outlen);
/* Integer value of a number token without fraction/exponent; 0 ok, -1 otherwise. */
int tm_json_int(const tm_json *j, int t, long long *v);
#endif
