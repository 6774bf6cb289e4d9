/*
 * test_attest_dcap.c — SGX and TDX DCAP appraisal against the real quotes and
 * collateral in shared/testdata, reaching exactly the outcomes listed in
 * shared/testdata/README.md, and refusing every tampered copy with the reason
 * of the check that catches it.
 */
#include "tm_test.h"
#include "test_attest_util.h"

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
    tm_policy *p = pol("tcb_status UpToDate\ntcb_status ConfigurationAndSWHardeningNeeded\n", TM_FMT_SGX_DCAP,
                       sgxc, sgxc_len);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, "ConfigurationAndSWHardeningNeeded") == 0);
    TM_CHECK(c.tcb_evaluated == 1);
    TM_CHECK(c.has_sgx && !c.debug);
    TM_CHECK(strcmp(c.fmspc, "00a067110000") == 0);
    TM_CHECK(strcmp(c.format_name, "sgx-dcap") == 0);
    tm_policy_free(p);
    /* The default policy accepts UpToDate only. */
    p = pol(NULL, TM_FMT_SGX_DCAP, sgxc, sgxc_len);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_ETCB);
    TM_CHECK(ta_has(r, "TCB status ConfigurationAndSWHardeningNeeded not accepted by policy"));
    tm_policy_free(p);
}

static void tdx_june_with_collateral(void)
{
    load();
    if (!tdx || !tdxc) { TM_CHECK(0); return; }
    tm_policy *p = pol(NULL, TM_FMT_TDX_DCAP, tdxc, tdxc_len);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, "UpToDate") == 0);
    TM_CHECK(c.has_tdx && !c.debug && c.measurement_len == 48);
    TM_CHECK(c.mrtd[0] == 0x91 && c.mrtd[47] == 0xb7);
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
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, TM_TCB_NOT_EVALUATED) == 0 && c.tcb_evaluated == 0);
    TM_CHECK(ta_has(r, "not evaluated"));
    TM_CHECK_EQ(run(TM_FMT_TDX_DCAP, tdx, tdx_len, NULL, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(strcmp(c.tcb_status, TM_TCB_NOT_EVALUATED) == 0);
    tm_policy *p = pol("require_collateral true\n", 0, NULL, 0);
    TM_CHECK_EQ(run(TM_FMT_SGX_DCAP, sgx, sgx_len, p, june, &c, r, sizeof r), TM_VERIFY_ETCB);
    TM_CHECK(ta_has(r, "no collateral"));
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
    unsigned char *t = malloc(n);
    memcpy(t, q, n);
    t[off] ^= (unsigned char)(1u << bit);
    tm_claims c;
    int rc = tm_verify(TM_FMT_SGX_DCAP, t, n, NULL, NULL, june, &c, r, cap);
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
    for (size_t n = 0; n < sgx_len; n += (n < 1100 ? 1 : 37)) {
        int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, n, NULL, NULL, june, &c, r, sizeof r);
        if (rc != TM_VERIFY_EMALFORMED) fprintf(stderr, "  sgx truncated to %zu: %d %s\n", n, rc, r);
        TM_CHECK(rc == TM_VERIFY_EMALFORMED);
    }
    int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, 100, NULL, NULL, june, &c, r, sizeof r);
    TM_CHECK(rc == TM_VERIFY_EMALFORMED && ta_has(r, "quote truncated"));
    /* TDX: the padding after the signature data may go, nothing else. */
    for (size_t n = 0; n < tdx_len; n += (n < 1300 ? 3 : 41)) {
        rc = tm_verify(TM_FMT_TDX_DCAP, tdx, n, NULL, NULL, june, &c, r, sizeof r);
        TM_CHECK(rc == (n >= 4936 ? TM_VERIFY_OK : TM_VERIFY_EMALFORMED));
    }
    /* Non-zero trailing bytes are refused. */
    unsigned char *t = malloc(tdx_len);
    memcpy(t, tdx, tdx_len);
    t[tdx_len - 1] = 1;
    rc = tm_verify(TM_FMT_TDX_DCAP, t, tdx_len, NULL, NULL, june, &c, r, sizeof r);
    TM_CHECK(rc == TM_VERIFY_EMALFORMED && ta_has(r, "non-zero bytes after"));
    free(t);
}

static void tdx_tamper(void)
{
    load();
    if (!tdx) { TM_CHECK(0); return; }
    char r[512];
    tm_claims c;
    unsigned char *t = malloc(tdx_len);
    size_t offs[] = {30, 48 + 136, 48 + 520, 640, 710, 770 + 10, 770 + 390, 770 + 460, 1400, 3000};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(t, tdx, tdx_len);
        t[offs[i]] ^= 0x10;
        int rc = tm_verify(TM_FMT_TDX_DCAP, t, tdx_len, NULL, NULL, june, &c, r, sizeof r);
        if (rc == TM_VERIFY_OK) fprintf(stderr, "  tdx flip at %zu accepted\n", offs[i]);
        TM_CHECK(rc != TM_VERIFY_OK);
        TM_CHECK(strncmp(r, "tdx: ", 5) == 0);
    }
    /* SGX quote offered as TDX and vice versa */
    TM_CHECK_EQ(tm_verify(TM_FMT_TDX_DCAP, sgx, sgx_len, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "tdx: quote header: version 3, expected 4"));
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
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, rd, NULL, june, &c, r, sizeof r), TM_VERIFY_OK);
    rd[63] ^= 1;
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, rd, NULL, june, &c, r, sizeof r), TM_VERIFY_EBINDING);
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
        {"isv_prodid 1\n", TM_VERIFY_EPOLICY, "policy: ISVPRODID 0, expected 1"},
        {"isv_prodid 0\nmin_isvsvn 0\n", TM_VERIFY_OK, "ok"},
        {"min_isvsvn 2\n", TM_VERIFY_EPOLICY, "policy: ISVSVN 0 below the minimum 2"},
        {"format tdx-dcap\n", TM_VERIFY_EFORMAT, "evidence format sgx-dcap is not accepted by policy"},
        {"format sgx-dcap\nformat tdx-dcap\n", TM_VERIFY_OK, "ok"},
        {"mrtd 91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7\n",
         TM_VERIFY_EPOLICY, "no measurement rule for sgx-dcap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_policy *p = pol(cases[i].text, 0, NULL, 0);
        int rc = tm_verify(TM_FMT_SGX_DCAP, sgx, sgx_len, NULL, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu: rc %d (%s)\n", i, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
        tm_policy_free(p);
    }
    /* debug attribute: flip ATTRIBUTES.DEBUG in a copy: signature then fails,
     * so exercise the rule on claims directly. */
    tm_policy *p = pol(NULL, 0, NULL, 0);
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
    /* sev-snp: parse only, appraisal refused clearly */
    unsigned char snp[0x4A0];
    memset(snp, 0, sizeof snp);
    snp[0] = 2;
    tm_claims c;
    char r[256];
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, snp, sizeof snp, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EUNSUPPORTED);
    TM_CHECK(ta_has(r, "sev-snp appraisal not implemented"));
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, snp, 100, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK_EQ(tm_verify(0x0009, snp, 100, NULL, NULL, june, &c, r, sizeof r), TM_VERIFY_EFORMAT);
    TM_CHECK(ta_has(r, "unsupported evidence format 0x0009"));
}

TM_TEST_MAIN(TM_CASE(sgx_june_with_collateral), TM_CASE(tdx_june_with_collateral), TM_CASE(sgx_today_expired),
             TM_CASE(without_collateral), TM_CASE(wrong_time), TM_CASE(tamper_parts), TM_CASE(tamper_every_byte),
             TM_CASE(truncations), TM_CASE(tdx_tamper), TM_CASE(binding), TM_CASE(policy_rules),
             TM_CASE(collateral_tamper), TM_CASE(guess_and_describe))
