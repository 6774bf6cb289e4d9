/*
 * test_attest_util.h — helpers shared by the test_attest_*.c unit tests:
 * reading test data (TM_TESTDATA_DIR, set by tests/unit/attest.cmake, points
 * at shared/testdata) and scratch directories.
 */
#ifndef TEST_ATTEST_UTIL_H
#define TEST_ATTEST_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef TM_TESTDATA_DIR
#define TM_TESTDATA_DIR "../shared/testdata"
#endif

static inline unsigned char *ta_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static inline unsigned char *ta_data(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TM_TESTDATA_DIR, rel);
    return ta_slurp(path, len);
}

static inline time_t ta_time(int y, int m, int d)
{
    struct tm t;
    memset(&t, 0, sizeof t);
    t.tm_year = y - 1900;
    t.tm_mon = m - 1;
    t.tm_mday = d;
    return timegm(&t);
}

static inline int ta_has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "  reason '%s' lacks '%s'\n", hay, needle);
        return 0;
    }
    return 1;
}
#endif
