/*
 * verify.h — appraise evidence of any format against a policy.
 *
 * Owns: the single entry point every user of attestation calls (the TLS glue,
 * the broker for client attestation, tmqtt-attest). Pure function of its
 * inputs: evidence bytes, the expected binding, a policy (which carries any
 * collateral) and the evaluation time. No file or network I/O, so it builds
 * for wasm32-wasi. Every failing check returns its own error class and a
 * reason naming the check; the report_data binding is compared in constant
 * time before anything else in the evidence is trusted.
 *
 * Key-attested (+key) evidence (keyatt.h) is checked here too: the session
 * binding is the attestation key's signature (checked first), then the key's
 * validity against the policy's max_key_lifetime, then the platform evidence
 * as its own format with the key-binding value as its report_data. A
 * tm_verify_cache remembers platform evidence that appraised, so that a
 * verifier seeing the same attestation key again checks one signature.
 */
#ifndef TM_ATTEST_VERIFY_H
#define TM_ATTEST_VERIFY_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "attest/claims.h"
#include "attest/evidence.h"
#include "attest/policy.h"

enum tm_verify_err {
    TM_VERIFY_OK = 0,
    TM_VERIFY_EFORMAT,      /* unknown format, or not accepted by the policy */
    TM_VERIFY_EMALFORMED,   /* evidence does not parse (truncated, bad lengths, bad header) */
    TM_VERIFY_EBINDING,     /* report_data differs from the session binding */
    TM_VERIFY_ECHAIN,       /* certificate chain: pin, validity, signatures */
    TM_VERIFY_ESIGNATURE,   /* QE report, quote or sim report signature */
    TM_VERIFY_EUNTRUSTED,   /* sim platform key not trusted by the policy */
    TM_VERIFY_ECOLLATERAL,  /* collateral malformed, badly signed, expired or revoked */
    TM_VERIFY_ETCB,         /* TCB level not found or status not accepted */
    TM_VERIFY_EPOLICY,      /* measurement, product id, SVN or debug refused */
    TM_VERIFY_EUNSUPPORTED, /* format known but appraisal not implemented (sev-snp) */
    TM_VERIFY_EINTERNAL,    /* allocation / crypto library failure */
    TM_VERIFY_EKEY,         /* +key: key expired, lifetime beyond the policy's maximum,
                               platform evidence binds another key, key not P-256 */
};

/* Short name of an error class ("binding", "chain", ...). */
const char *tm_verify_strerror(int err);

/*
 * Appraises `evidence` of `format`. `expected_report_data` is the 64-byte
 * binding (evidence.h) or NULL to skip that check (only for offline
 * inspection of files). `policy` may be NULL for the default policy. `at` is
 * the evaluation time for certificate and collateral validity. On return
 * `claims` holds what was parsed (also on failure, for diagnostics — never
 * trust claims from a failed appraisal). Returns TM_VERIFY_OK or an error,
 * with a human-readable reason in `reason`.
 */
int tm_verify(uint16_t format, const uint8_t *evidence, size_t len,
              const uint8_t *expected_report_data, const tm_policy *policy, time_t at,
              tm_claims *claims, char *reason, size_t reasoncap);

/*
 * Positive appraisals of the platform evidence inside +key evidence, kept so
 * that a verifier meeting the same attestation key again (every handshake
 * with one broker, until it rotates its key) checks one signature instead of
 * a whole quote. An entry is keyed by the SHA-256 of (format, platform
 * evidence, key SPKI, not_after) and the policy object it was appraised
 * under (it holds a reference, so that pointer cannot be reused while it is
 * cached); it serves appraisal times from the one it was made at until
 * TM_VERIFY_CACHE_TTL seconds later or the key's not_after, whichever comes
 * first. The signature over the session binding, the key's expiry and the
 * policy's max_key_lifetime are checked on every call. Direct formats are
 * never cached (their evidence differs in every handshake). One thread.
 */
#define TM_VERIFY_CACHE_TTL 60
typedef struct tm_verify_cache tm_verify_cache;
tm_verify_cache *tm_verify_cache_new(void);
void tm_verify_cache_free(tm_verify_cache *c);
/* Appraisals answered from the cache so far (diagnostics, tests). */
unsigned long tm_verify_cache_hits(const tm_verify_cache *c);
/* tm_verify with a cache (NULL: none). */
int tm_verify_cached(tm_verify_cache *cache, uint16_t format, const uint8_t *evidence, size_t len,
                     const uint8_t *expected_report_data, const tm_policy *policy, time_t at,
                     tm_claims *claims, char *reason, size_t reasoncap);

/* Best guess of the format of a file (sim magic, DCAP quote version/TEE type,
 * a KeyAttestedEvidence around one of them); 0 when unknown. For tools only: the TLS layer always knows the format. */
uint16_t tm_evidence_guess_format(const uint8_t *evidence, size_t len);

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) -> time_t, for tools taking --at. 0 ok, -1 bad. */
int tm_verify_parse_time(const char *iso, time_t *out);

/* Human-readable dump of the parsed fields, without verifying anything.
 * Returns 0, or an error class with the parse failure in buf. */
int tm_evidence_describe(uint16_t format, const uint8_t *evidence, size_t len,
                         char *buf, size_t cap);
#endif
