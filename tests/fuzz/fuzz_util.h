/*
 * fuzz_util.h — what the attestation fuzz targets share: reading a whole
 * file (seeds, the sample data of shared/testdata) into memory.
 */
#ifndef TM_FUZZ_UTIL_H
#define TM_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TM_FUZZ_TESTDATA
#define TM_FUZZ_TESTDATA "../shared/testdata"
#endif

/* The whole file, malloc'd (NULL when unreadable). */
static inline uint8_t *tm_fuzz_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    uint8_t *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* A file of shared/testdata by its relative name. */
static inline uint8_t *tm_fuzz_testdata(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", TM_FUZZ_TESTDATA, rel);
    return tm_fuzz_read(path, len);
}
#endif
