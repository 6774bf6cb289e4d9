/*
 * test_attest_json.c — the collateral JSON parser: accepts what RFC 8259
 * allows, rejects the rest without crashing, bounds nesting and decodes
 * escapes exactly (signatures are computed over the decoded bytes).
 */
#include "tm_test.h"

#include <stdlib.h>
#include "attest/json.h"

static int parses(const char *s)
{
    tm_json j;
    char err[128];
    int rc = tm_json_parse(&j, s, strlen(s), err, sizeof err);
    if (rc == 0) tm_json_free(&j);
    return rc == 0;
}

static void accepts_valid(void)
{
    const char *ok[] = {"{}", "[]", "0", "-1.5e+3", "\"x\"", "true", "null", " { \"a\" : [1, 2, {\"b\": null}] } ",
                        "[[[[[]]]]]", "{\"a\":\"\\u00e9\\ud83d\\ude00\\n\"}", "[-0, 0.5, 1E9]"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!parses(ok[i])) fprintf(stderr, "  rejected: %s\n", ok[i]);
        TM_CHECK(parses(ok[i]));
    }
}

static void rejects_invalid(void)
{
    const char *bad[] = {"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[01]", "[1.]", "[.5]",
                         "[1e]", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\x01\"", "tru", "nul", "[1] x", "{\"a\":}",
                         "[,1]", "[1 2]", "{\"a\":1 \"b\":2}", "-", "[\"a\":1]", "{\"a\",1}", "]", "[}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i])) fprintf(stderr, "  accepted: %s\n", bad[i]);
        TM_CHECK(!parses(bad[i]));
    }
}

static void depth_bomb(void)
{
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = 0;
    tm_json j;
    char err[128];
    TM_CHECK(tm_json_parse(&j, s, 2 * n, err, sizeof err) != 0);
    TM_CHECK(strstr(err, "nesting too deep") != NULL);
    /* exactly the limit is fine */
    memset(s, '[', TM_JSON_MAX_DEPTH);
    memset(s + TM_JSON_MAX_DEPTH, ']', TM_JSON_MAX_DEPTH);
    TM_CHECK(tm_json_parse(&j, s, 2 * TM_JSON_MAX_DEPTH, err, sizeof err) == 0);
    tm_json_free(&j);
    TM_CHECK(tm_json_parse(&j, s, 2 * TM_JSON_MAX_DEPTH + 2, err, sizeof err) != 0);
    free(s);
}

static void accessors(void)
{
    const char *s = "{\"id\":\"SGX\",\"n\":-42,\"big\":99999999999999999999,\"f\":1.5,"
                    "\"arr\":[{\"svn\":1},{\"svn\":2},{\"svn\":3}],\"esc\":\"a\\\"b\\\\c\\/\\u0041\",\"last\":true}";
    tm_json j;
    char err[128], buf[64];
    TM_CHECK(tm_json_parse(&j, s, strlen(s), err, sizeof err) == 0);
    long long v;
    TM_CHECK(tm_json_str(&j, tm_json_get(&j, 0, "id"), buf, sizeof buf) == 3 && !strcmp(buf, "SGX"));
    TM_CHECK(tm_json_int(&j, tm_json_get(&j, 0, "n"), &v) == 0 && v == -42);
    TM_CHECK(tm_json_int(&j, tm_json_get(&j, 0, "big"), &v) != 0);
    TM_CHECK(tm_json_int(&j, tm_json_get(&j, 0, "f"), &v) != 0);
    int arr = tm_json_get(&j, 0, "arr");
    TM_CHECK(tm_json_int(&j, tm_json_get(&j, tm_json_at(&j, arr, 2), "svn"), &v) == 0 && v == 3);
    TM_CHECK(tm_json_at(&j, arr, 3) == -1);
    TM_CHECK(tm_json_at(&j, arr, -1) == -1);
    TM_CHECK(tm_json_str(&j, tm_json_get(&j, 0, "esc"), buf, sizeof buf) == 7 && !strcmp(buf, "a\"b\\c/A"));
    TM_CHECK(tm_json_get(&j, 0, "last") > 0 && j.tok[tm_json_get(&j, 0, "last")].type == TM_JSON_TRUE);
    TM_CHECK(tm_json_get(&j, 0, "missing") == -1);
    TM_CHECK(tm_json_get(&j, arr, "svn") == -1);             /* not an object */
    TM_CHECK(tm_json_str(&j, tm_json_get(&j, 0, "id"), buf, 3) == -1); /* does not fit */
    size_t l;
    char *d = tm_json_strdup(&j, tm_json_get(&j, 0, "esc"), &l);
    TM_CHECK(d && l == 7);
    free(d);
    tm_json_free(&j);
    /* lone surrogates decode to an error, not garbage */
    const char *sur = "[\"\\ud800x\"]";
    TM_CHECK(tm_json_parse(&j, sur, strlen(sur), err, sizeof err) == 0);
    TM_CHECK(tm_json_str(&j, 1, buf, sizeof buf) == -1);
    tm_json_free(&j);
}

static void never_reads_past_len(void)
{
    /* Parse every prefix of a document from a heap copy without terminator. */
    const char *s = "{\"a\":[1,2,{\"b\":\"c\\u0041\"}],\"d\":true}";
    size_t n = strlen(s);
    int ok = 0;
    for (size_t k = 0; k <= n; k++) {
        char *c = malloc(k ? k : 1);
        memcpy(c, s, k);
        tm_json j;
        char err[64];
        if (tm_json_parse(&j, c, k, err, sizeof err) == 0) { ok++; tm_json_free(&j); }
        free(c);
    }
    TM_CHECK_EQ(ok, 1);
}

TM_TEST_MAIN(TM_CASE(accepts_valid), TM_CASE(rejects_invalid), TM_CASE(depth_bomb), TM_CASE(accessors),
             TM_CASE(never_reads_past_len))
