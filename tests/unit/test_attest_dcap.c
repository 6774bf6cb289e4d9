/*
 * test_attest_dcap.c — SGX and TDX DCAP appraisal against the real quotes and
 * collateral in shared/testdata, reaching exactly the outcomes listed in
 * shared/testdata/README.md, refusing every tampered copy with the reason of
 * the check that catches it, and the fail-closed policy rules: collateral
 * required, a measurement pin required, TD report pins, platform pins,
 * collateral chosen by FMSPC from a cache directory, quote v5 bodies.
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <unistd.h>

#include "attest/policy.h"
#include "attest/verify.h"

static unsigned char *sgx, *tdx, *sgxc, *tdxc;
static size_t sgx_len, tdx_len, sgxc_len, tdxc_len;
static time_t june; /* 2025-06-20T00:00:00Z, inside every validity window */

static void load(void)
{
    if (sgx) return;
    sgx = ta_data("sgx/quote.bin", &sgx_len);
    tdx = ta_data("tdx/quote.bin", &tdx_len);
    sgxc = ta_data("sgx/collateral.json", &sgxc_len);
    tdxc = ta_data("tdx/collateral.json", &tdxc_len);
    june = ta_time(2025, 6, 20);
}

static tm_policy *pol(const char *text, uint16_t fmt, const unsigned char *coll, size_t clen)
{
    tm_policy *p = tm_policy_new();
    char err[512];
    if (text && tm_policy_parse(p, text, strlen(text), "test", err, sizeof err)) fprintf(stderr, "%s\n", err);
    if (coll) tm_policy_set_collateral(p, fmt, coll, clen);
    return p;
}

#define SGX_SIGNER "mrsigner 815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6\n"
#define TDX_MRTD                                                                                            \
    "mrtd 91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7\n"
#define SGX_STATUSES "tcb_status UpToDate\ntcb_status ConfigurationAndSWHardeningNeeded\n"

/* Policies that accept the untampered sample quotes at `june`: so that a
 * refusal of a tampered copy can only come from the tampering. */
static tm_policy *sgx_ok, *tdx_ok;

static void accepting(void)
{
    if (sgx_ok) return;
    load();
    sgx_ok = pol(SGX_SIGNER SGX_STATUSES, TM_FMT_SGX_DCAP, sgxc, sgxc_len);
    tdx_ok = pol(TDX_MRTD, TM_FMT_TDX_DCAP, tdxc, tdxc_len);
}

static int run(uint16_t fmt, const unsigned char *q, size_t n, const tm_policy *p, time_t at, tm_claims *c,
               char *reason, size_t cap)
{
    return tm_verify(fmt, q, n, NULL, p, at, c, reason, cap);
}

static void sgx_june_with_collateral(void)
{
    load();
    TM_CHECK(sgx && sgxc);
    if (!sgx || !sgxc) return;
    tm_policy *p = pol(SGX_SIGNER SGX_STATUSES, TM_FMT_SGX_DCAP, sgxc, sgxc_len);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, "ConfigurationAndSWHardeningNeeded") == 0);
    TM_CHECK(c.tcb_evaluated == 1);
    TM_CHECK(c.has_sgx && !c.debug);
    TM_CHECK(strcmp(c.fmspc, "00a067110000") == 0);
    TM_CHECK(strcmp(c.format_name, "sgx-dcap") == 0);
    TM_CHECK(c.has_pck && !c.has_platform_instance_id && c.pce_id[0] == 0 && c.pce_id[1] == 0);
    TM_CHECK(c.ppid[0] == 0xd0 && c.ppid[15] == 0xdf && !c.collateral_missing_allowed);
    tm_policy_free(p);
    /* The default status list is UpToDate only. */
    p = pol(SGX_SIGNER, TM_FMT_SGX_DCAP, sgxc, sgxc_len);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_ETCB);
    TM_CHECK(ta_has(r, "TCB status ConfigurationAndSWHardeningNeeded not accepted by policy"));
    tm_policy_free(p);
}

static void tdx_june_with_collateral(void)
{
    load();
    if (!tdx || !tdxc) { TM_CHECK(0); return; }
    tm_policy *p = pol(TDX_MRTD, TM_FMT_TDX_DCAP, tdxc, tdxc_len);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, "UpToDate") == 0);
    TM_CHECK(c.has_tdx && !c.debug && c.measurement_len == 48);
    TM_CHECK(c.mrtd[0] == 0x91 && c.mrtd[47] == 0xb7);
    TM_CHECK(c.xfam == 0x602e7 && c.tdattributes == 0x10000000 && c.quote_version == 4 && !c.tdx_report_v15);
    TM_CHECK(c.rtmr[0][0] == 0x44 && c.rtmr[2][47] == 0x32);
    TM_CHECK(c.has_platform_instance_id && c.platform_instance_id[0] == 0x07 && !strcmp(c.fmspc, "b0c06f000000"));
    tm_policy_free(p);
    /* No pin at all: refused after every other check passed. */
    p = pol(NULL, TM_FMT_TDX_DCAP, tdxc, tdxc_len);
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, p, june, &c, r, sizeof r), TM_VERIFY_EPOLICY);
    TM_CHECK(ta_has(r, "policy: no measurement pinned for tdx-dcap evidence (pin one of: mrtd, rtmr0, rtmr1, "
                       "rtmr2, rtmr3; or say allow_any_measurement true)"));
    tm_policy_free(p);
}

static void sgx_today_expired(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    tm_policy *p = pol("tcb_status ConfigurationAndSWHardeningNeeded\n", TM_FMT_SGX_DCAP, sgxc, sgxc_len);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, time(NULL), &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "TCB info expired (nextUpdate 2025-07-19T10:56:11Z)"));
    /* and before issueDate */
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, ta_time(2025, 6, 1), &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "TCB info not yet valid"));
    tm_policy_free(p);
}

static void without_collateral(void)
{
    load();
    if (!sgx || !tdx) { TM_CHECK(0); return; }
    tm_claims c;
    char r[512];
    /* Default (NULL = empty policy): collateral is required. */
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, time(NULL), &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "sgx: no collateral for FMSPC 00a067110000 (the policy names no collateral): the quoting "
                       "enclave cannot be checked to be Intel's"));
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, NULL, june, &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "tdx: no collateral for FMSPC b0c06f000000"));
    tm_policy *p = pol(SGX_SIGNER "require_collateral true\n", 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "no collateral"));
    tm_policy_free(p);
    /* The explicit opt-out: accepted, with the warning in the reason and claims. */
    p = pol(SGX_SIGNER "allow_missing_collateral true\n", 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(ta_has(r, "WARNING: no collateral, accepted because the policy says allow_missing_collateral true"));
    TM_CHECK(strcmp(c.tcb_status, TM_TCB_NOT_EVALUATED) == 0 && c.tcb_evaluated == 0);
    TM_CHECK(c.collateral_missing_allowed == 1);
    char buf[4096];
    tm_claims_json(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "\"collateral_missing_allowed\":true"));
    tm_claims_text(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "warning: no collateral (allow_missing_collateral)"));
    TM_CHECK_EQ(tm_policy_warnings(p, buf, sizeof buf), 1);
    TM_CHECK(ta_has(buf, "allow_missing_collateral true: DCAP quotes without collateral are accepted"));
    tm_policy_free(p);
    /* require_collateral false no longer exists: it would widen silently */
    p = tm_policy_new();
    TM_CHECK(tm_policy_set(p, "require_collateral", "false", r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "say allow_missing_collateral true"));
    tm_policy_free(p);
}

static void wrong_time(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, ta_time(2031, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "sgx: PCK certificate chain: 'Intel SGX PCK Certificate' is not valid at 2031-01-01"));
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, ta_time(2023, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "is not valid at 2023-01-01"));
}

static int flip_run(const unsigned char *q, size_t n, size_t off, int bit, char *r, size_t cap)
{
    accepting();
    unsigned char *t = malloc(n);
    memcpy(t, q, n);
    t[off] ^= (unsigned char)(1u << bit);
    tm_claims c;
    int rc = tm_verify(TM_FMT_SGX_DCAP, t, n, NULL, sgx_ok, june, &c, r, cap);
    free(t);
    return rc;
}

/* SGX v3 layout: header 0..48, body 48..432, sig_len 432, ISV sig 436..500,
 * attestation key 500..564, QE report 564..948, QE sig 948..1012, auth len
 * 1012, auth data 1014..1046, cert type 1046, cert len 1048, PEM 1052.. */
static void tamper_parts(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    char r[512];
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 0, 0, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "sgx: quote header: version 2, expected 3"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 2, 0, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "attestation key type 3"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 4, 7, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "TEE type"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 20, 1, r, sizeof r), TM_VERIFY_ESIGNATURE); /* header, signed */
    TM_CHECK(ta_has(r, "sgx: quote signature does not verify with the attestation key"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 48 + 64, 3, r, sizeof r), TM_VERIFY_ESIGNATURE); /* MRENCLAVE */
    TM_CHECK(ta_has(r, "sgx: quote signature does not verify"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 440, 0, r, sizeof r), TM_VERIFY_ESIGNATURE); /* quote signature */
    TM_CHECK(ta_has(r, "sgx: quote signature does not verify"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 520, 0, r, sizeof r), TM_VERIFY_ESIGNATURE); /* attestation key */
    TM_CHECK(ta_has(r, "QE report_data does not bind the attestation key"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 564 + 100, 5, r, sizeof r), TM_VERIFY_ESIGNATURE); /* QE report */
    TM_CHECK(ta_has(r, "sgx: QE report signature does not verify with the PCK certificate key"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 960, 2, r, sizeof r), TM_VERIFY_ESIGNATURE); /* QE report signature */
    TM_CHECK(ta_has(r, "QE report signature does not verify"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 1020, 2, r, sizeof r), TM_VERIFY_ESIGNATURE); /* QE auth data */
    TM_CHECK(ta_has(r, "QE report_data does not bind"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 1046, 0, r, sizeof r), TM_VERIFY_EMALFORMED); /* cert type */
    TM_CHECK(ta_has(r, "certification data type 4, expected 5"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 1048, 0, r, sizeof r), TM_VERIFY_EMALFORMED); /* cert length */
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 432, 0, r, sizeof r), TM_VERIFY_EMALFORMED); /* signature length */
    /* PEM chain: inside the leaf's base64 */
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 1052 + 500, 0, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "sgx: PCK certificate chain"));
    /* PEM chain: the final newline (decoders would ignore it) and the NUL padding */
    TM_CHECK_EQ(flip_run(sgx, sgx_len, sgx_len - 2, 0, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "not in canonical form"));
    TM_CHECK_EQ(flip_run(sgx, sgx_len, sgx_len - 1, 0, r, sizeof r), TM_VERIFY_ECHAIN);
}

/* One flipped bit anywhere in the SGX quote is refused. */
static void tamper_every_byte(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    char r[512];
    int accepted = 0;
    TM_CHECK_EQ(flip_run(sgx, sgx_len, 0, 8, r, sizeof r), TM_VERIFY_OK); /* bit 8 of a byte: no change */
    for (size_t off = 0; off < sgx_len; off++) {
        int rc = flip_run(sgx, sgx_len, off, (int)(off % 8), r, sizeof r);
        if (rc == TM_VERIFY_OK) {
            fprintf(stderr, "  flip at %zu accepted\n", off);
            accepted++;
        }
    }
    TM_CHECK_EQ(accepted, 0);
}

static void truncations(void)
{
    load();
    if (!sgx || !tdx) { TM_CHECK(0); return; }
    char r[512];
    tm_claims c;
    accepting();
    for (size_t n = 0; n < sgx_len; n += (n < 1100 ? 1 : 37)) {
        int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, n, NULL, sgx_ok, june, &c, r, sizeof r);
        if (rc != TM_VERIFY_EMALFORMED) fprintf(stderr, "  sgx truncated to %zu: %d %s\n", n, rc, r);
        TM_CHECK(rc == TM_VERIFY_EMALFORMED);
    }
    int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, 100, NULL, NULL, june, &c, r, sizeof r);
    TM_CHECK(rc == TM_VERIFY_EMALFORMED && ta_has(r, "quote truncated"));
    /* TDX: the padding after the signature data may go, nothing else. */
    for (size_t n = 0; n < tdx_len; n += (n < 1300 ? 3 : 41)) {
        rc = tm_verify(TM_FMT_TDX_DCAP, tdx, n, NULL, tdx_ok, june, &c, r, sizeof r);
        TM_CHECK(rc == (n >= 4936 ? TM_VERIFY_OK : TM_VERIFY_EMALFORMED));
    }
    /* Non-zero trailing bytes are refused. */
    unsigned char *t = malloc(tdx_len);
    memcpy(t, tdx, tdx_len);
    t[tdx_len - 1] = 1;
    rc = tm_verify(TM_FMT_TDX_DCAP, t, tdx_len, NULL, tdx_ok, june, &c, r, sizeof r);
    TM_CHECK(rc == TM_VERIFY_EMALFORMED && ta_has(r, "non-zero bytes after"));
    free(t);
}

static void tdx_tamper(void)
{
    load();
    if (!tdx) { TM_CHECK(0); return; }
    char r[512];
    tm_claims c;
    accepting();
    unsigned char *t = malloc(tdx_len);
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, tdx, tdx_len, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_OK);
    size_t offs[] = {30, 48 + 136, 48 + 520, 640, 710, 770 + 10, 770 + 390, 770 + 460, 1400, 3000};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(t, tdx, tdx_len);
        t[offs[i]] ^= 0x10;
        int rc = tm_verify(TM_FMT_TDX_DCAP, t, tdx_len, NULL, tdx_ok, june, &c, r, sizeof r);
        if (rc == TM_VERIFY_OK) fprintf(stderr, "  tdx flip at %zu accepted\n", offs[i]);
        TM_CHECK(rc != TM_VERIFY_OK);
        TM_CHECK(strncmp(r, "tdx: ", 5) == 0);
    }
    /* SGX quote offered as TDX and vice versa */
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, sgx, sgx_len, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "tdx: quote header: version 3, expected 4 or 5"));
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, tdx, tdx_len, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    free(t);
}

static void binding(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    unsigned char rd[64];
    memcpy(rd, sgx + 48 + 320, 64);
    tm_claims c;
    char r[512];
    accepting();
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, rd, sgx_ok, june, &c, r, sizeof r), TM_VERIFY_OK);
    rd[63] ^= 1;
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, rd, sgx_ok, june, &c, r, sizeof r), TM_VERIFY_EBINDING);
    TM_CHECK(ta_has(r, "report_data does not match the session binding"));
}

static void policy_rules(void)
{
    load();
    if (!sgx) { TM_CHECK(0); return; }
    tm_claims c;
    char r[512];
    struct { const char *text; int rc; const char *why; } cases[] = {
        {"mrenclave 33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\n", TM_VERIFY_OK, "ok"},
        {"mrenclave 00d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\n", TM_VERIFY_EPOLICY,
         "policy: MRENCLAVE 33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb is not allowed"},
        {"mrsigner 815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6\n", TM_VERIFY_OK, "ok"},
        {"mrsigner 005f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6\n", TM_VERIFY_EPOLICY,
         "policy: MRSIGNER"},
        {SGX_SIGNER "isv_prodid 1\n", TM_VERIFY_EPOLICY, "policy: ISVPRODID 0, expected 1"},
        {SGX_SIGNER "isv_prodid 0\nmin_isvsvn 0\n", TM_VERIFY_OK, "ok"},
        {SGX_SIGNER "min_isvsvn 2\n", TM_VERIFY_EPOLICY, "policy: ISVSVN 0 below the minimum 2"},
        {"format tdx-dcap\n", TM_VERIFY_EFORMAT, "evidence format sgx-dcap is not accepted by policy"},
        {SGX_SIGNER "format sgx-dcap\nformat tdx-dcap\n", TM_VERIFY_OK, "ok"},
        /* a pin of another format does not count */
        {TDX_MRTD, TM_VERIFY_EPOLICY, "no measurement pinned for sgx-dcap evidence (pin one of: mrenclave, mrsigner;"},
        {"", TM_VERIFY_EPOLICY, "policy: no measurement pinned for sgx-dcap"},
        {"allow_any_measurement true\n", TM_VERIFY_OK, "ok"},
        /* platform pins from the PCK certificate */
        {SGX_SIGNER "ppid d04ec06d4e6d92dc90d0ad3cf5ee2ddf\n", TM_VERIFY_OK, "ok"},
        {SGX_SIGNER "ppid 004ec06d4e6d92dc90d0ad3cf5ee2ddf\n", TM_VERIFY_EPOLICY,
         "policy: platform PPID d04ec06d4e6d92dc90d0ad3cf5ee2ddf is not allowed (not among the policy's ppid lines)"},
        {SGX_SIGNER "fmspc 00a067110000\npce_id 0000\n", TM_VERIFY_OK, "ok"},
        {SGX_SIGNER "fmspc 00a067110001\n", TM_VERIFY_EPOLICY, "policy: platform FMSPC 00a067110000 is not allowed"},
        {SGX_SIGNER "pce_id 0001\n", TM_VERIFY_EPOLICY, "policy: platform PCE id 0000 is not allowed"},
        {SGX_SIGNER "platform_instance_id 07828474603e7019dc930775ffe8cdd2\n", TM_VERIFY_EPOLICY,
         "the evidence carries no platform instance id, and the policy pins it (platform_instance_id)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%s" SGX_STATUSES, cases[i].text);
        tm_policy *p = pol(text, TM_FMT_SGX_DCAP, sgxc, sgxc_len);
        int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu: rc %d (%s)\n", i, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
        tm_policy_free(p);
    }
    /* debug attribute: flip ATTRIBUTES.DEBUG in a copy: signature then fails,
     * so exercise the rule on claims directly. */
    tm_policy *p = pol("allow_any_measurement true\n", 0, NULL, 0);
    memset(&c, 0, sizeof c);
    c.has_sgx = 1;
    c.debug = 1;
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "debug-mode TEE refused"));
    tm_policy_set(p, "allow_debug", "true", r, sizeof r);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0);
    tm_policy_free(p);
}

static char *coll_replace(const unsigned char *coll, size_t n, const char *from, const char *to, size_t *outlen)
{
    char *s = malloc(n + 1);
    memcpy(s, coll, n);
    s[n] = 0;
    char *at = strstr(s, from);
    if (!at) { free(s); return NULL; }
    size_t fl = strlen(from), tl = strlen(to);
    char *o = malloc(n - fl + tl + 1);
    size_t pre = (size_t)(at - s);
    memcpy(o, s, pre);
    memcpy(o + pre, to, tl);
    memcpy(o + pre + tl, at + fl, n - pre - fl + 1);
    *outlen = n - fl + tl;
    free(s);
    return o;
}

static void collateral_tamper(void)
{
    load();
    if (!sgx || !sgxc) { TM_CHECK(0); return; }
    struct { const char *from, *to, *why; int rc; } cases[] = {
        {"\"tcbEvaluationDataNumber\\\":17", "\"tcbEvaluationDataNumber\\\":18", "TCB info signature does not verify",
         TM_VERIFY_ECOLLATERAL},
        {"\"tcb_info_signature\": \"9a", "\"tcb_info_signature\": \"8a", "TCB info signature does not verify",
         TM_VERIFY_ECOLLATERAL},
        {"\"isvprodid\\\":1", "\"isvprodid\\\":2", "QE identity signature does not verify", TM_VERIFY_ECOLLATERAL},
        {"\"qe_identity_signature\": \"f1", "\"qe_identity_signature\": \"f2", "QE identity signature does not verify",
         TM_VERIFY_ECOLLATERAL},
        {"\"pck_crl\": \"3082012a", "\"pck_crl\": \"3082012b", "PCK CRL", TM_VERIFY_ECOLLATERAL},
        {"\"root_ca_crl\": \"30820120", "\"root_ca_crl\": \"30820121", "root CA CRL", TM_VERIFY_ECOLLATERAL},
        {"\"tcb_info\"", "\"tcb_inf0\"", "missing or invalid field 'tcb_info'", TM_VERIFY_ECOLLATERAL},
        {"{", "[", "collateral: JSON", TM_VERIFY_ECOLLATERAL},
    };
    tm_claims c;
    char r[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t l;
        char *m = coll_replace(sgxc, sgxc_len, cases[i].from, cases[i].to, &l);
        if (!m) { fprintf(stderr, "  case %zu: pattern not found\n", i); TM_CHECK(0); continue; }
        tm_policy *p = pol("tcb_status ConfigurationAndSWHardeningNeeded\n", TM_FMT_SGX_DCAP, (unsigned char *)m, l);
        int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu: rc %d (%s)\n", i, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
        tm_policy_free(p);
        free(m);
    }
    /* TDX collateral for the SGX quote */
    tm_policy *p = pol("tcb_status ConfigurationAndSWHardeningNeeded\n", TM_FMT_SGX_DCAP, tdxc, tdxc_len);
    int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, p, june, &c, r, sizeof r);
    TM_CHECK(rc != TM_VERIFY_OK);
    TM_CHECK(ta_has(r, "TCB info is for TDX, not SGX"));
    tm_policy_free(p);
    /* Truncated collateral never crashes */
    for (size_t n = 0; n < sgxc_len; n += 97) {
        p = pol(NULL, TM_FMT_SGX_DCAP, sgxc, n);
        TM_CHECK(tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, p, june, &c, r, sizeof r) == TM_VERIFY_ECOLLATERAL);
        tm_policy_free(p);
    }
}

static void guess_and_describe(void)
{
    load();
    if (!sgx || !tdx) { TM_CHECK(0); return; }
    TM_CHECK_EQ(tm_evidence_guess_format(sgx, sgx_len), TM_FMT_SGX_DCAP);
    TM_CHECK_EQ(tm_evidence_guess_format(tdx, tdx_len), TM_FMT_TDX_DCAP);
    TM_CHECK_EQ(tm_evidence_guess_format((const unsigned char *)"hello", 5), 0);
    char buf[16384];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SGX_DCAP, sgx, sgx_len, buf, sizeof buf), 0);
    TM_CHECK(ta_has(buf, "pck_fmspc: 00a067110000"));
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_TDX_DCAP, tdx, tdx_len, buf, sizeof buf), 0);
    TM_CHECK(ta_has(buf, "Intel SGX PCK Platform CA"));
    char small[40];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_TDX_DCAP, tdx, tdx_len, small, sizeof small), 0);
    TM_CHECK(strlen(small) < sizeof small);
    /* an SNP-looking header is not a DCAP quote (attestation key type 0) */
    unsigned char snp[0x4A0];
    memset(snp, 0, sizeof snp);
    snp[0] = 3;
    snp[0x34] = 1;
    TM_CHECK_EQ(tm_evidence_guess_format(snp, sizeof snp), TM_FMT_SEV_SNP);
    tm_claims c;
    char r[256];
    TM_CHECK_EQ(tm_verify(0x0009, snp, 100, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EFORMAT);
    TM_CHECK(ta_has(r, "unsupported evidence format 0x0009"));
}

/* Every TD report field the policy can pin, with the sample quote's values
 * and with a changed one. */
static void tdx_pins(void)
{
    load();
    if (!tdx || !tdxc) { TM_CHECK(0); return; }
    static const char z96[] = "000000000000000000000000000000000000000000000000"
                              "000000000000000000000000000000000000000000000000";
    static const char one96[] = "010000000000000000000000000000000000000000000000"
                                "000000000000000000000000000000000000000000000000";
    struct { const char *key, *value; int rc; const char *why; } cases[] = {
        {"rtmr0", "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
         TM_VERIFY_OK, "ok"},
        {"rtmr0", "00c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
         TM_VERIFY_EPOLICY, "policy: RTMR0 44c0197b"},
        {"rtmr1", "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
         TM_VERIFY_OK, "ok"},
        {"rtmr1", one96, TM_VERIFY_EPOLICY, "policy: RTMR1 0084452c"},
        {"rtmr2", "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
         TM_VERIFY_OK, "ok"},
        {"rtmr2", one96, TM_VERIFY_EPOLICY, "policy: RTMR2 d833feef"},
        {"rtmr3", z96, TM_VERIFY_OK, "ok"},
        {"rtmr3", one96, TM_VERIFY_EPOLICY, "policy: RTMR3 0000"},
        {"mrconfigid", z96, TM_VERIFY_OK, "ok"},
        {"mrconfigid", one96, TM_VERIFY_EPOLICY, "policy: MRCONFIGID 0000"},
        {"mrowner", z96, TM_VERIFY_OK, "ok"},
        {"mrowner", one96, TM_VERIFY_EPOLICY, "policy: MROWNER 0000"},
        {"mrownerconfig", z96, TM_VERIFY_OK, "ok"},
        {"mrownerconfig", one96, TM_VERIFY_EPOLICY, "policy: MROWNERCONFIG 0000"},
        {"xfam", "0x00000000000602e7", TM_VERIFY_OK, "ok"},
        {"xfam", "00000000000602e6", TM_VERIFY_EPOLICY, "policy: XFAM 00000000000602e7 is not allowed"},
        {"td_attributes", "0x0000000010000000", TM_VERIFY_OK, "ok"},
        {"td_attributes", "0000000050000000", TM_VERIFY_EPOLICY, "policy: TDATTRIBUTES 0000000010000000"},
        {"ppid", "811dca2a26b952e85bb6448b097ba4fd", TM_VERIFY_OK, "ok"},
        {"ppid", "011dca2a26b952e85bb6448b097ba4fd", TM_VERIFY_EPOLICY, "policy: platform PPID 811dca2a"},
        {"platform_instance_id", "07828474603e7019dc930775ffe8cdd2", TM_VERIFY_OK, "ok"},
        {"platform_instance_id", "00828474603e7019dc930775ffe8cdd2", TM_VERIFY_EPOLICY,
         "policy: platform instance id 07828474"},
        {"fmspc", "b0c06f000000", TM_VERIFY_OK, "ok"},
        /* only MRTD/RTMRs are measurements; MROWNER alone is chosen by the host */
        {"mrowner", z96, TM_VERIFY_EPOLICY, "no measurement pinned for tdx-dcap"},
        {"require_sept_ve_disable", "false", TM_VERIFY_OK, "ok"},
    };
    tm_claims c;
    char r[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[600];
        /* the last-but-one case goes without MRTD */
        snprintf(text, sizeof text, "%s%s %s\n", i + 2 == sizeof cases / sizeof cases[0] ? "" : TDX_MRTD,
                 cases[i].key, cases[i].value);
        tm_policy *p = pol(text, TM_FMT_TDX_DCAP, tdxc, tdxc_len);
        int rc = run(TM_FMT_TDX_DCAP, tdx, tdx_len, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu (%s): %d %s\n", i, cases[i].key, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
        tm_policy_free(p);
    }
    /* SEPT_VE_DISABLE and DEBUG: the sample has SEPT_VE_DISABLE set and DEBUG
     * clear; a changed TDATTRIBUTES fails the quote signature, so the rules are
     * exercised on claims. */
    accepting();
    tm_policy *p = pol(TDX_MRTD, 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_OK);
    c.tdattributes &= ~(1ull << 28);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "policy: TDATTRIBUTES.SEPT_VE_DISABLE is not set"));
    TM_CHECK(tm_policy_set(p, "require_sept_ve_disable", "false", r, sizeof r) == 0);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0);
    c.tdattributes |= 1;
    c.debug = 1;
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "debug-mode TEE refused"));
    TM_CHECK(tm_policy_set(p, "allow_debug", "true", r, sizeof r) == 0);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0);
    char w[1024];
    TM_CHECK_EQ(tm_policy_warnings(p, w, sizeof w), 2);
    TM_CHECK(ta_has(w, "require_sept_ve_disable false"));
    tm_policy_free(p);
    /* a bad value is an error, not a silently ignored pin */
    p = tm_policy_new();
    TM_CHECK(tm_policy_set(p, "xfam", "602e7", r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "xfam: expected 16 hex digits"));
    TM_CHECK(tm_policy_set(p, "rtmr4", z96, r, sizeof r) != 0);
    tm_policy_free(p);
}

/* Collateral from a cache directory, chosen by the quote's FMSPC. */
static void collateral_dir(void)
{
    load();
    if (!sgx || !sgxc || !tdx || !tdxc) { TM_CHECK(0); return; }
    char dir[] = "/tmp/tm-attest-coll-XXXXXX";
    TM_CHECK(mkdtemp(dir) != NULL);
    TM_CHECK(ta_write(dir, "sgx-00a067110000.json", sgxc, sgxc_len) == 0);
    TM_CHECK(ta_write(dir, "tdx-b0c06f000000.json", tdxc, tdxc_len) == 0);
    TM_CHECK(ta_write(dir, ".sgx-00a067110000.json.tmp", "partial", 7) == 0); /* a writer's temp file */
    TM_CHECK(ta_write(dir, "notes.txt", "x", 1) == 0);
    char text[600];
    snprintf(text, sizeof text, SGX_SIGNER TDX_MRTD SGX_STATUSES "collateral_dir %s\n", dir);
    tm_policy *p = pol(text, 0, NULL, 0);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(!strcmp(c.tcb_status, "ConfigurationAndSWHardeningNeeded"));
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(!strcmp(c.tcb_status, "UpToDate"));
    size_t l;
    TM_CHECK(tm_policy_collateral(p, TM_FMT_SGX_DCAP, "00a067110000", &l) && l == sgxc_len);
    TM_CHECK(tm_policy_collateral(p, TM_FMT_SGX_DCAP, "b0c06f000000", &l) == NULL);
    TM_CHECK(tm_policy_collateral(p, TM_FMT_TDX_DCAP, "00a067110000", &l) == NULL);
    tm_policy_free(p);
    /* a file for another FMSPC does not cover this quote */
    char from[1100], to[1100];
    snprintf(from, sizeof from, "%s/sgx-00a067110000.json", dir);
    snprintf(to, sizeof to, "%s/sgx-00a067110001.json", dir);
    TM_CHECK(rename(from, to) == 0);
    p = pol(text, 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_ECOLLATERAL);
    TM_CHECK(ta_has(r, "no collateral for FMSPC 00a067110000 (the policy's collateral does not cover it)"));
    tm_policy_free(p);
    /* ... but an explicit `collateral sgx-dcap FILE` applies to any FMSPC */
    char text2[2400];
    snprintf(text2, sizeof text2, "%scollateral sgx-dcap %s\n", text, to);
    p = pol(text2, 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(p);
    /* the FMSPC-specific file wins over the explicit one */
    snprintf(text2, sizeof text2, "%scollateral sgx-dcap %s/tdx-b0c06f000000.json\n", text, dir);
    TM_CHECK(rename(to, from) == 0);
    p = pol(text2, 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(p);
    /* names that look like ours but are not: an error, not a silent miss */
    TM_CHECK(ta_write(dir, "sgx-00A067110000.json", sgxc, sgxc_len) == 0);
    p = tm_policy_new();
    TM_CHECK(tm_policy_parse(p, text, strlen(text), "p", r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "sgx-00A067110000.json: collateral file names are sgx-<fmspc>.json or tdx-<fmspc>.json"));
    tm_policy_free(p);
    p = tm_policy_new();
    TM_CHECK(tm_policy_set(p, "collateral_dir", "/nonexistent/dir", r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "collateral_dir: cannot open directory /nonexistent/dir"));
    tm_policy_free(p);
    const char *names[] = {"sgx-00a067110000.json", "tdx-b0c06f000000.json", ".sgx-00a067110000.json.tmp",
                           "notes.txt", "sgx-00A067110000.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(from, sizeof from, "%s/%s", dir, names[i]);
        unlink(from);
    }
    rmdir(dir);
}

/* Quote v5: a body descriptor before the TD report; type 2 (TD 1.0) and
 * type 3 (TD 1.5, + TEE_TCB_SVN2 and MRSERVICETD). Built from the v4 sample,
 * so the quote signature cannot verify: parsing is what is tested, and that
 * the signature covers the descriptor. */
static unsigned char *make_v5(uint16_t type, size_t *len)
{
    size_t body = type == 3 ? 648 : 584, extra = 6 + (body - 584);
    unsigned char *q = calloc(1, tdx_len + extra);
    memcpy(q, tdx, 48);
    q[0] = 5;
    q[48] = (unsigned char)type;
    q[50] = (unsigned char)body;
    q[51] = (unsigned char)(body >> 8);
    memcpy(q + 54, tdx + 48, 584);
    if (type == 3) {
        memset(q + 54 + 584, 0x22, 16);     /* TEE_TCB_SVN2 */
        memset(q + 54 + 600, 0x33, 48);     /* MRSERVICETD */
    }
    memcpy(q + 54 + body, tdx + 48 + 584, tdx_len - 48 - 584);
    *len = tdx_len + extra;
    return q;
}

static void quote_v5(void)
{
    load();
    if (!tdx) { TM_CHECK(0); return; }
    accepting();
    tm_claims c;
    char r[512], buf[16384];
    size_t n;
    unsigned char *q = make_v5(2, &n);
    TM_CHECK_EQ(tm_evidence_guess_format(q, n), TM_FMT_TDX_DCAP);
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, q, n, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_ESIGNATURE);
    TM_CHECK(ta_has(r, "tdx: quote signature does not verify with the attestation key"));
    TM_CHECK(c.quote_version == 5 && c.has_tdx && !c.tdx_report_v15 && c.mrtd[0] == 0x91);
    free(q);
    q = make_v5(3, &n);
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, q, n, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_ESIGNATURE);
    TM_CHECK(c.tdx_report_v15 && c.tee_tcb_svn2[0] == 0x22 && c.mrservicetd[47] == 0x33 && c.mrtd[0] == 0x91);
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_TDX_DCAP, q, n, buf, sizeof buf), 0);
    TM_CHECK(ta_has(buf, "body_type: 3 (TD report 1.5)"));
    TM_CHECK(ta_has(buf, "tee_tcb_svn2: 22222222222222222222222222222222"));
    TM_CHECK(ta_has(buf, "mrservicetd: 3333"));
    tm_claims_json(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "\"mrservicetd\":\"3333"));
    /* unknown body type, wrong size, truncated descriptor */
    q[48] = 1;
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, q, n, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "tdx: quote v5 body type 1, expected 2 (TD report 1.0) or 3 (TD report 1.5)"));
    q[48] = 3;
    q[50] = 0x49;
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, q, n, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "tdx: quote v5 body size 585, expected 648 for body type 3"));
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, q, 52, NULL, tdx_ok, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "quote truncated in body descriptor"));
    free(q);
}

TM_TEST_MAIN(TM_CASE(sgx_june_with_collateral), TM_CASE(tdx_june_with_collateral), TM_CASE(sgx_today_expired),
             TM_CASE(without_collateral), TM_CASE(wrong_time), TM_CASE(tamper_parts), TM_CASE(tamper_every_byte),
             TM_CASE(truncations), TM_CASE(tdx_tamper), TM_CASE(binding), TM_CASE(policy_rules),
             TM_CASE(collateral_tamper), TM_CASE(guess_and_describe), TM_CASE(tdx_pins), TM_CASE(collateral_dir),
             TM_CASE(quote_v5))
