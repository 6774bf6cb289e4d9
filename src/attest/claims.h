/*
 * claims.h — what a successful appraisal tells the application.
 *
 * Owns: the tm_claims record filled by tm_verify() (verify.h) and its text and
 * JSON printers. A plain struct on purpose: the TLS layer copies it into the
 * connection, the broker logs it and matches ACL rules against it. Only the
 * fields of the appraised format are meaningful; `has_*` flags say which.
 * Invariants: tcb_status is always a NUL-terminated string, "not evaluated"
 * when no collateral was used and "n/a" for formats without a TCB (sim);
 * snp_product is a NUL-terminated product name or "".
 * Key-attested evidence (+key formats) yields the claims of its platform
 * evidence plus key_attested, the attestation key's hash and its expiry;
 * report_data is then what the platform evidence carries: the key binding
 * (SHA-512("tmqtt-atls-v2 key" || 0x00 || key_spki || be64 not_after)),
 * not the session binding, which the key signed.
 */
#ifndef TM_ATTEST_CLAIMS_H
#define TM_ATTEST_CLAIMS_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TM_TCB_NOT_EVALUATED "not evaluated"

/* SEV-SNP TCB_VERSION decoded (SEV-SNP ABI; Turin adds the FMC SPL). */
typedef struct {
    uint8_t bootloader, tee, snp, microcode, fmc;
    int has_fmc;                     /* Turin layout */
} tm_snp_tcb;

typedef struct tm_claims {
    uint16_t format;                 /* TM_FMT_* */
    char format_name[16];
    /* The primary measurement: MRENCLAVE (sgx), MRTD (tdx), MEASUREMENT (snp),
     * measurement (sim). */
    uint8_t measurement[48];
    size_t measurement_len;          /* 32 or 48 */

    int has_sgx;                     /* mrenclave/mrsigner valid */
    uint8_t mrenclave[32], mrsigner[32];

    int has_tdx;                     /* TD report fields valid */
    uint8_t mrtd[48], rtmr[4][48], mrseam[48], mrsignerseam[48];
    uint8_t mrconfigid[48], mrowner[48], mrownerconfig[48];
    uint64_t xfam, tdattributes, seam_attributes; /* little-endian fields as numbers */
    uint8_t tee_tcb_svn[16];
    int tdx_report_v15;              /* quote v5 body type 3 (TD report 1.5): next two valid */
    uint8_t tee_tcb_svn2[16], mrservicetd[48];
    uint16_t quote_version;          /* sgx/tdx: 3, 4 or 5 */

    int has_snp;                     /* SEV-SNP report fields valid */
    uint32_t snp_version, guest_svn, vmpl;
    uint64_t snp_policy;             /* guest policy */
    uint8_t snp_measurement[48], host_data[32], id_key_digest[48], author_key_digest[48];
    uint8_t chip_id[64];
    uint64_t reported_tcb_raw;
    tm_snp_tcb reported_tcb;
    char snp_product[16];            /* Milan, Genoa, Turin (from the VCEK) */
    int snp_signing_key;             /* 0 VCEK, 1 VLEK, 7 none */

    int has_sim;
    uint8_t sim_measurement[32];
    uint8_t sim_platform_key_sha256[32];
    uint64_t sim_timestamp;

    /* Platform identity (sgx/tdx: from the PCK certificate's SGX extension). */
    int has_pck;                     /* ppid, pce_id, fmspc valid */
    uint8_t ppid[16], pce_id[2];
    int has_platform_instance_id;    /* present in Platform CA-issued PCK certs only */
    uint8_t platform_instance_id[16];
    char fmspc[13];                  /* hex */

    uint16_t product_id;             /* ISVPRODID (sgx); 0 otherwise */
    uint16_t security_version;       /* ISVSVN (sgx), GUEST_SVN (snp, low 16 bits); 0 otherwise */
    int debug;                       /* 1 when the TEE runs in debug mode */
    int tcb_evaluated;               /* 1 when collateral decided tcb_status */
    char tcb_status[48];
    /* Warning: DCAP evidence accepted WITHOUT collateral because the policy says
     * allow_missing_collateral true (nobody checked the quoting enclave is Intel's). */
    int collateral_missing_allowed;
    /* Warning: accepted without any measurement pin (allow_any_measurement true). */
    int any_measurement_allowed;
    time_t appraised_at;
    uint8_t report_data[64];

    /* Key-attested evidence (format sim+key, sgx-dcap+key, ...). */
    int key_attested;
    uint8_t key_sha256[32];          /* SHA-256 of the attestation key's DER SPKI */
    uint64_t key_not_after;          /* end of the key's validity, seconds since the epoch */
} tm_claims;

/* Multi-line "key: value" text. Returns the length that would have been
 * written (like snprintf); output is always NUL-terminated when cap > 0. */
size_t tm_claims_text(const tm_claims *c, char *buf, size_t cap);
/* One JSON object, no trailing newline; same return convention. */
size_t tm_claims_json(const tm_claims *c, char *buf, size_t cap);
#endif
