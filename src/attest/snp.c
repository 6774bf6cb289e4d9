/*
 * snp.c — AMD SEV-SNP attestation reports (`sev-snp`, 0x0004).
 *
 * Owns: parsing the ATTESTATION_REPORT layout (SEV-SNP ABI, 0x4A0 bytes,
 * little-endian) into claims for display. Appraisal (VCEK certificate chain
 * to the AMD root, ECDSA P-384 signature, TCB) is NOT implemented: tm_verify
 * refuses sev-snp evidence with a clear reason rather than accepting anything
 * it cannot check. The binding is still compared first, so a wrong nonce is
 * reported as such.
 */
#include "attest/attest_int.h"

#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#define SNP_REPORT_LEN 0x4A0

static int snp_parse(const uint8_t *b, size_t n, tm_claims *c, char *reason, size_t cap)
{
    if (n < SNP_REPORT_LEN) {
        tm_reasonf(reason, cap, "sev-snp: report truncated (%zu of %d bytes)", n, SNP_REPORT_LEN);
        return TM_VERIFY_EMALFORMED;
    }
    uint32_t ver = tm_rd32le(b);
    if (ver < 2 || ver > 5) {
        tm_reasonf(reason, cap, "sev-snp: unsupported report version %u", (unsigned)ver);
        return TM_VERIFY_EMALFORMED;
    }
    memcpy(c->report_data, b + 0x50, 64);
    memcpy(c->measurement, b + 0x90, 48);
    c->measurement_len = 48;
    uint64_t policy = 0;
    for (int i = 7; i >= 0; i--) policy = policy << 8 | b[8 + i];
    c->debug = (int)((policy >> 19) & 1); /* POLICY.DEBUG */
    return 0;
}

int tm_verify_snp(const uint8_t *ev, size_t len, const uint8_t *expected, const tm_policy *p,
                  time_t at, tm_claims *c, char *reason, size_t cap)
{
    int rc = snp_parse(ev, len, c, reason, cap);
    if (rc) return rc;
    if (expected && CRYPTO_memcmp(c->report_data, expected, 64) != 0) {
        tm_reasonf(reason, cap, "report_data does not match the session binding");
        return TM_VERIFY_EBINDING;
    }
    tm_reasonf(reason, cap, "sev-snp appraisal not implemented (VCEK chain and report signature are not verified)");
    return TM_VERIFY_EUNSUPPORTED;
}

int tm_describe_snp(const uint8_t *ev, size_t len, char *buf, size_t cap)
{
    tm_claims c;
    memset(&c, 0, sizeof c);
    int rc = snp_parse(ev, len, &c, buf, cap);
    if (rc) return rc;
    char m[97], rd[129];
    tm_hex_encode(c.measurement, 48, m);
    tm_hex_encode(c.report_data, 64, rd);
    snprintf(buf, cap, "format: sev-snp\nversion: %u\nguest_svn: %u\nvmpl: %u\nmeasurement: %s\n"
             "report_data: %s\ndebug: %s\n",
             (unsigned)tm_rd32le(ev), (unsigned)tm_rd32le(ev + 4), (unsigned)tm_rd32le(ev + 0x30), m, rd,
             c.debug ? "true" : "false");
    return 0;
}
