/*
 * fuzz_keyatt.c — libFuzzer target for key-attested evidence (keyatt.h): the
 * KeyAttestedEvidence parser and the appraisal of the +key formats, the bytes
 * a peer controls inside an AttestationEvidence of format 0x0101..0x0104.
 *
 * Input: byte 0 picks the +key format (0x0101 + (b & 3)) and whether the
 * appraisal goes through a cache (b & 4); the rest is the evidence.
 * Properties: no crash or sanitizer report; evidence that decodes re-encodes
 * to exactly the same bytes; appraisal with a binding the input cannot have
 * signed (a fixed value no seed covers) under a policy that trusts no sim
 * platform key and pins nothing is never accepted, with or without the cache
 * (appraised twice, so that a cache hit is exercised); describing and format
 * guessing never fail unsafely. The appraisal time is taken 1000 s before the
 * evidence's own not_after when it decodes, so that offline appraisal (no
 * binding) gets past the key's validity into the platform evidence.
 *
 * Built with -DTM_FUZZ_REPLAY (plain gcc build) it is a program replaying
 * corpus files and directories given on the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/evidence.h"
#include "attest/keyatt.h"
#include "attest/verify.h"

#define REQUIRE(c)                                                               \
    do {                                                                         \
        if (!(c)) {                                                              \
            fprintf(stderr, "fuzz_keyatt: %s:%d: %s\n", __FILE__, __LINE__, #c);  \
            abort();                                                             \
        }                                                                        \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t fmt = (uint16_t)(TM_FMT_SIM_KEY + (data[0] & 3));
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    static uint8_t out[1 << 17];
    tm_keyatt_ev e;
    char why[512];
    time_t at = 1900000000;
    if (tm_keyatt_decode(b, n, &e, why, sizeof why) == TM_VERIFY_OK) {
        if (e.not_after > 1000 && e.not_after < (1ull << 40))
            at = (time_t)(e.not_after - 1000);
        REQUIRE(e.platform_len && e.spki_len && e.sig_len);
        size_t need = 0, m = tm_keyatt_encode(&e, out, sizeof out, &need);
        REQUIRE(m == n && need == n && memcmp(out, b, n) == 0);
    }
    uint8_t rd[64];
    memset(rd, 0xA5, sizeof rd);
    tm_verify_cache *cache = (data[0] & 4) ? tm_verify_cache_new() : NULL;
    for (int round = 0; round < 2; round++) {
        tm_claims c;
        int v = tm_verify_cached(cache, fmt, b, n, rd, NULL, at, &c, why, sizeof why);
        REQUIRE(v != TM_VERIFY_OK);
        v = tm_verify_cached(cache, fmt, b, n, NULL, NULL, at, &c, why, sizeof why);
        REQUIRE(v != TM_VERIFY_OK);   /* the empty policy trusts nothing */
    }
    tm_verify_cache_free(cache);
    static char text[1 << 16];
    tm_evidence_describe(fmt, b, n, text, sizeof text);
    uint16_t g = tm_evidence_guess_format(b, n);
    REQUIRE(g == 0 || tm_format_name(g) != NULL);
    (void)tm_keyatt_signature_covers(b, n, rd);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include "fuzz_replay.h"
#endif
