/*
 * claims.h — what a successful appraisal tells the application.
 *
 * Owns: the tm_claims record filled by tm_verify() (verify.h) and its text and
 * JSON printers. A plain struct on purpose: the TLS layer copies it into the
 * connection, the broker logs it and matches ACL rules against it. Only the
 * fields of the appraised format are meaningful; `has_*` flags say which.
 * Invariant: tcb_status is always a NUL-terminated string, "not evaluated"
 * when no collateral was used and "n/a" for formats without a TCB (sim).
 */
#ifndef TM_ATTEST_CLAIMS_H
#define TM_ATTEST_CLAIMS_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TM_TCB_NOT_EVALUATED "not evaluated"

typedef struct tm_claims {
    uint16_t format;                 /* TM_FMT_* */
    char format_name[16];
    /* The primary measurement: MRENCLAVE (sgx), MRTD (tdx), measurement (sim). */
    uint8_t measurement[48];
    size_t measurement_len;          /* 32 or 48 */
    int has_sgx;                     /* mrenclave/mrsigner valid */
    uint8_t mrenclave[32], mrsigner[32];
    int has_tdx;                     /* mrtd/rtmr/mrseam valid */
    uint8_t mrtd[48], rtmr[4][48], mrseam[48];
    uint8_t tee_tcb_svn[16];
    int has_sim;
    uint8_t sim_measurement[32];
    uint8_t sim_platform_key_sha256[32];
    uint64_t sim_timestamp;
    uint16_t product_id;             /* ISVPRODID (sgx); 0 otherwise */
    uint16_t security_version;       /* ISVSVN (sgx); 0 otherwise (see tee_tcb_svn) */
    int debug;                       /* 1 when the TEE runs in debug mode */
    int tcb_evaluated;               /* 1 when collateral decided tcb_status */
    char tcb_status[48];
    char fmspc[13];                  /* hex, sgx/tdx with PCK extension */
    time_t appraised_at;
    uint8_t report_data[64];
} tm_claims;

/* Multi-line "key: value" text. Returns the length that would have been
 * written (like snprintf); output is always NUL-terminated when cap > 0. */
size_t tm_claims_text(const tm_claims *c, char *buf, size_t cap);
/* One JSON object, no trailing newline; same return convention. */
size_t tm_claims_json(const tm_claims *c, char *buf, size_t cap);
#endif
