/*
 * collateral_pcs.h — the pure half of `tmqtt-attest collateral fetch`: Intel
 * PCS API v4 responses in, a collateral cache file out (docs/collateral.md).
 *
 * Owns: reading what a PCCS-compatible service sends (signed TCB info / QE
 * identity bodies, URL-encoded issuer-chain headers, CRL bodies in DER, PEM or
 * hex), checking it (structure, dates, signatures chained to the pinned Intel
 * SGX Root CA), the FMSPC and PCK CA type of a quote, and the cache file: its
 * JSON text (the layout of shared/testdata/sgx/collateral.json) and the dates
 * that the rollback rule compares.
 *
 * Invariants: no I/O and no global state (a libFuzzer target calls every
 * function here on arbitrary bytes); every function bounds-checks its input
 * and reports failure as a value with a human-readable reason; nothing
 * returned points at freed memory (spans point into the caller's buffer,
 * anything else is malloc'd and documented as the caller's to free).
 */
#ifndef TM_ATTEST_COLLATERAL_PCS_H
#define TM_ATTEST_COLLATERAL_PCS_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Largest response body / header value accepted from a service. */
#define TM_PCS_MAX_BODY (8u << 20)
#define TM_PCS_MAX_HEADER (64u << 10)

/* The two signed documents. */
enum tm_pcs_doc { TM_PCS_TCB_INFO = 1, TM_PCS_QE_IDENTITY = 2 };
/* The PCK CA that issued a platform's PCK certificate (selects the PCK CRL). */
enum tm_pcs_ca { TM_PCS_CA_PROCESSOR = 1, TM_PCS_CA_PLATFORM = 2 };

/* "processor" / "platform" (the PCS `ca=` value); NULL for other values. */
const char *tm_pcs_ca_name(int ca);
/* "processor" / "platform" -> enum; 0 for anything else. */
int tm_pcs_ca_from_name(const char *name);

/*
 * If `line` (one raw HTTP header line, with or without CRLF) is header `name`
 * (case-insensitive), sets *value and *vlen to its value with surrounding blanks
 * and the line end removed, and returns 1; else 0.
 */
int tm_pcs_header_match(const char *line, size_t len, const char *name, const char **value,
                        size_t *vlen);

/*
 * Percent-decodes a header value (PCS sends issuer chains as URL-encoded PEM).
 * Returns a malloc'd NUL-terminated string (*outlen its length), or NULL with a
 * reason for a bad escape, an encoded NUL or an empty value. '+' stays '+'
 * (base64 uses it; PCS encodes spaces as %20).
 */
char *tm_pcs_url_decode(const char *in, size_t n, size_t *outlen, char *reason, size_t cap);

/*
 * Body of GET .../tcb (`{"tcbInfo":{...},"signature":"hex"}`) or
 * .../qe/identity (`{"enclaveIdentity":{...},"signature":"hex"}`).
 * `doc` points into `body`: the exact bytes of the signed value, which is what
 * the signature covers and what the cache stores.
 */
typedef struct {
    const char *doc;
    size_t doc_len;
    uint8_t sig[64];  /* ECDSA P-256 r||s */
} tm_pcs_signed_body;
int tm_pcs_parse_signed_body(int doc, const char *body, size_t len, tm_pcs_signed_body *out,
                             char *reason, size_t cap);

/*
 * Structure of a signed document for `format` (TM_FMT_SGX_DCAP/TDX_DCAP):
 * TCB info: id SGX/TDX, version 2 (SGX only) or 3, fmspc equal to `fmspc`,
 * pceId, non-empty tcbLevels; QE identity: id QE/TD_QE, version 2, mrsigner,
 * isvprodid, non-empty tcbLevels. Both: issueDate < nextUpdate. Also checks
 * that `at` lies in [issueDate, nextUpdate). Dates are returned on success.
 */
typedef struct {
    time_t issue_date, next_update;
} tm_pcs_dates;
int tm_pcs_check_doc(int doc, uint16_t format, const uint8_t fmspc[6], const char *text, size_t len,
                     time_t at, tm_pcs_dates *dates, char *reason, size_t cap);

/*
 * A CRL body: DER, PEM, or hex text of DER (PCCS's root CA CRL), surrounding
 * white space allowed for the text forms. On success *der is a malloc'd copy
 * of the DER (exactly one CRL, nothing after it).
 */
int tm_pcs_parse_crl(const uint8_t *body, size_t len, uint8_t **der, size_t *derlen, char *reason,
                     size_t cap);

/*
 * Signature of a signed document: `chain_pem` must be exactly two certificates,
 * signing certificate then the Intel SGX Root CA with the pinned key; the chain
 * verifies at `at` and the signing key verifies `sig` over the document bytes.
 */
int tm_pcs_verify_doc(const char *doc, size_t len, const uint8_t sig[64], const char *chain_pem,
                      size_t chain_len, time_t at, const char *what, char *reason, size_t cap);

/*
 * A CRL: with chain_pem == NULL it must be signed by the pinned root (the root
 * CA CRL); otherwise chain_pem is issuer then root (as for documents), the
 * issuer's subject must be the CRL's issuer, and when `ca` is non-zero the
 * issuer must be that PCK CA. thisUpdate <= at < nextUpdate.
 */
int tm_pcs_verify_crl(const uint8_t *der, size_t len, const char *chain_pem, size_t chain_len, int ca,
                      time_t at, const char *what, char *reason, size_t cap);

/*
 * From a DCAP quote (SGX v3 or TDX v4, certification data type 5): its format,
 * the FMSPC of its PCK certificate (SGX extension 1.2.840.113741.1.13.1, item
 * .4) and the PCK CA type (from the intermediate CA's common name). Nothing
 * here is verified: the FMSPC only chooses what to fetch, and what is fetched
 * is verified on its own.
 */
int tm_pcs_quote_info(const uint8_t *quote, size_t len, uint16_t *format, uint8_t fmspc[6], int *ca,
                      char *reason, size_t cap);

/* The nine string fields of a cache file (collateral JSON). */
typedef struct {
    const char *tcb_info;          /* raw signed JSON text */
    size_t tcb_info_len;
    const uint8_t *tcb_info_sig;   /* 64 bytes */
    const char *tcb_info_chain;    /* PEM */
    const char *qe_identity;
    size_t qe_identity_len;
    const uint8_t *qe_identity_sig;
    const char *qe_identity_chain;
    const uint8_t *pck_crl;        /* DER */
    size_t pck_crl_len;
    const char *pck_crl_chain;
    const uint8_t *root_ca_crl;    /* DER */
    size_t root_ca_crl_len;
} tm_pcs_collateral;

/* The cache file's JSON text (malloc'd, NUL-terminated), or NULL (no memory). */
char *tm_pcs_cache_json(const tm_pcs_collateral *c, size_t *len);

/* Cache file name for format and FMSPC: "sgx-00a067110000.json". */
int tm_pcs_cache_name(uint16_t format, const uint8_t fmspc[6], char *out, size_t cap);

/*
 * Dates that the rollback rule compares, read from a cache file's text (no
 * signature is checked: the file is ours, the dates say what it replaces).
 */
typedef struct {
    time_t tcb_issue, qe_issue, pck_crl_this, root_crl_this;
} tm_pcs_cache_dates;
int tm_pcs_read_cache_dates(const char *json, size_t len, tm_pcs_cache_dates *d, char *reason,
                            size_t cap);

/*
 * Rollback rule: 0 when every date of `fresh` is at least the cached one
 * (equal is accepted, so fetching twice is harmless); -1 with a reason naming
 * the first item that would go back in time.
 */
int tm_pcs_rollback_check(const tm_pcs_cache_dates *cached, const tm_pcs_cache_dates *fresh,
                          char *reason, size_t cap);
#endif
