/*
 * attest_int.h — internals shared by the verifier and provider files of
 * src/attest. Not part of the library's contract: other modules include
 * evidence.h, claims.h, policy.h, verify.h and provider.h only.
 *
 * Invariants: all byte readers are bounds-checked by their callers (parsers
 * check lengths before reading); ECDSA helpers return 1 only for a signature
 * that verifies, 0 for any failure, so that an OpenSSL error can never be
 * mistaken for success.
 */
#ifndef TM_ATTEST_INT_H
#define TM_ATTEST_INT_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/evp.h>
#include "attest/hex.h"
#include "attest/verify.h"

#if defined(__GNUC__)
#define TM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TM_PRINTF(a, b)
#endif

/*
 * Fuzz and test builds only: lets the fuzzer (tests/fuzz/attest.cmake) and
 * the TCB-logic unit test (tests/unit/attest.cmake, test_attest_tcb) past the
 * signature checks into the collateral, TCB and policy code; both compile
 * their own copy of these sources with the two macros. A library build never
 * defines it; the #error keeps it from being switched on by accident.
 */
#if defined(TM_FUZZ_BYPASS_SIGNATURES)
#if !defined(FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION)
#error "TM_FUZZ_BYPASS_SIGNATURES is for fuzz targets only"
#endif
#define TM_SIG_OK(ok) ((void)(ok), 1)
#else
#define TM_SIG_OK(ok) (ok)
#endif

/* snprintf into reason when it is non-NULL. */
void tm_reasonf(char *reason, size_t cap, const char *fmt, ...) TM_PRINTF(3, 4);
/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> time_t (UTC). 0 ok, -1 malformed. */
int tm_time_parse(const char *s, time_t *out);
/* time_t -> "YYYY-MM-DDTHH:MM:SSZ" (UTC), out >= 32 bytes. */
void tm_time_format(time_t t, char *out, size_t cap);

/* Appending printf into a caller's buffer: output always NUL-terminated
 * (when cap > 0), n counts what would have been written (like snprintf). */
typedef struct {
    char *b;
    size_t cap, n;
} tm_sbuf;
void tm_sb_printf(tm_sbuf *s, const char *fmt, ...) TM_PRINTF(2, 3);
void tm_sb_hex(tm_sbuf *s, const uint8_t *p, size_t n);
/* The evidence fields of claims as "key: value" lines (no verdict fields:
 * shared by tm_claims_text and the describe functions). */
void tm_claims_fields(tm_sbuf *s, const tm_claims *c);

static inline uint16_t tm_rd16le(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t tm_rd32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t tm_rd16be(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint64_t tm_rd64le(const uint8_t *p)
{
    return (uint64_t)tm_rd32le(p) | (uint64_t)tm_rd32le(p + 4) << 32;
}

/* EC P-256 public key from raw x||y (64 bytes). NULL on failure. */
EVP_PKEY *tm_p256_from_raw(const uint8_t xy[64]);
/* ECDSA/SHA-256 verification; raw r||s (64 bytes) or DER signature. */
int tm_ecdsa_verify_raw(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t rs[64]);
int tm_ecdsa_verify_der(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen);
/* 1 when `key` is an EC key on P-256 / on the named curve. */
int tm_is_p256(EVP_PKEY *key);
int tm_is_ec_curve(EVP_PKEY *key, const char *curve);
/* ECDSA verification with `md` of a signature given as r and s, each `n`
 * bytes, big-endian (le = 0) or little-endian (le = 1). 1 only when valid. */
int tm_ecdsa_verify_rs(EVP_PKEY *key, const EVP_MD *md, const uint8_t *msg, size_t len, const uint8_t *r,
                       const uint8_t *s, size_t n, int le);

/* --- sim (SimReport, attested-tls.md) --- */
#define TM_SIM_MAGIC "TMQSIM01"
#define TM_SIM_FIXED_LEN (8 + 32 + 4 + 8 + 64) /* magic..report_data */
typedef struct {
    const uint8_t *measurement;  /* 32 */
    uint32_t flags;
    uint64_t timestamp;
    const uint8_t *report_data;  /* 64 */
    const uint8_t *spki;
    size_t spki_len;
    const uint8_t *sig;
    size_t sig_len;
    size_t signed_len;           /* bytes covered by the signature */
} tm_sim_report;
int tm_sim_parse(const uint8_t *b, size_t n, tm_sim_report *r, char *reason, size_t cap);
/* Builds and signs a SimReport with `key` (P-256). 0 ok; -1 error; -2 when
 * cap is too small (*len then holds the size needed). */
int tm_sim_build(EVP_PKEY *key, const uint8_t measurement[32], uint32_t flags, uint64_t ts,
                 const uint8_t report_data[64], uint8_t *out, size_t cap, size_t *len);

int tm_verify_sim(const uint8_t *ev, size_t len, const uint8_t *expected, const tm_policy *p,
                  time_t at, tm_claims *c, char *reason, size_t cap);
int tm_verify_dcap(uint16_t format, const uint8_t *ev, size_t len, const uint8_t *expected,
                   const tm_policy *p, time_t at, tm_claims *c, char *reason, size_t cap);
int tm_describe_dcap(uint16_t format, const uint8_t *ev, size_t len, char *buf, size_t cap);
int tm_describe_snp(const uint8_t *ev, size_t len, char *buf, size_t cap);
int tm_verify_snp(const uint8_t *ev, size_t len, const uint8_t *expected, const tm_policy *p,
                  time_t at, tm_claims *c, char *reason, size_t cap);
/* The verifier of a platform format (sim, sgx-dcap, tdx-dcap, sev-snp). */
int tm_verify_platform(uint16_t format, const uint8_t *ev, size_t len, const uint8_t *expected,
                       const tm_policy *policy, time_t at, tm_claims *claims, char *reason, size_t cap);
/* +key formats (keyatt.c); claims->format/format_name are already set. */
int tm_verify_keyatt(tm_verify_cache *cache, uint16_t format, const uint8_t *ev, size_t len,
                     const uint8_t *expected, const tm_policy *policy, time_t at, tm_claims *claims,
                     char *reason, size_t cap);
int tm_describe_keyatt(uint16_t format, const uint8_t *ev, size_t len, char *buf, size_t cap);
#endif
