/*
 * test_attest_tcb.c — the collateral logic behind the signatures: TCB level
 * selection (SGX and TDX components, PCESVN), the TDX module identity
 * (MRSIGNERSEAM, SEAM attributes, module TCB levels), the QE identity, and
 * status convergence, on edited copies of the real TDX collateral.
 *
 * Edited collateral no longer verifies, so this test is built like the
 * fuzzer, with its own copy of the attestation sources compiled with
 * TM_FUZZ_BYPASS_SIGNATURES (tests/unit/attest.cmake): every signature check
 * passes and what is left is the logic under test. The unmodified collateral
 * must still give the README's outcome (UpToDate), so the bypass hides
 * nothing else.
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include "attest/policy.h"
#include "attest/verify.h"

#define MRTD "mrtd 91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7\n"
#define ALL_STATUSES                                                                                        \
    "tcb_status UpToDate\ntcb_status OutOfDate\ntcb_status ConfigurationNeeded\ntcb_status Revoked\n"       \
    "tcb_status OutOfDateConfigurationNeeded\ntcb_status SWHardeningNeeded\n"
#define Z96 "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

static unsigned char *tdx, *tdxc;
static size_t tdx_len, tdxc_len;

/* Collateral with `from` replaced by `to` (nth occurrence, 0-based; -1: all). */
static char *edit(const char *base, const char *from, const char *to, int nth)
{
    size_t fl = strlen(from), tl = strlen(to), n = strlen(base);
    char *out = malloc(n * 2 + 64);
    size_t o = 0;
    int k = 0, done = 0;
    for (const char *p = base; *p;) {
        if (!strncmp(p, from, fl) && (nth < 0 || k++ == nth)) {
            memcpy(out + o, to, tl);
            o += tl;
            p += fl;
            done = 1;
            continue;
        }
        if (!strncmp(p, from, fl)) {
            memcpy(out + o, p, fl);
            o += fl;
            p += fl;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = 0;
    if (!done) {
        fprintf(stderr, "  pattern not found: %s\n", from);
        free(out);
        return NULL;
    }
    return out;
}

static int appraise(const char *coll, const char *policy, tm_claims *c, char *r, size_t cap)
{
    tm_policy *p = tm_policy_new();
    char err[256];
    if (tm_policy_parse(p, policy, strlen(policy), "t", err, sizeof err)) fprintf(stderr, "  %s\n", err);
    tm_policy_set_collateral(p, TM_FMT_TDX_DCAP, (const uint8_t *)coll, strlen(coll));
    int rc = tm_verify(TM_FMT_TDX_DCAP, tdx, tdx_len, NULL, p, ta_time(2025, 6, 20), c, r, cap);
    tm_policy_free(p);
    return rc;
}

static char *base(void)
{
    if (!tdx) {
        tdx = ta_data("tdx/quote.bin", &tdx_len);
        tdxc = ta_data("tdx/collateral.json", &tdxc_len);
    }
    if (!tdx || !tdxc) return NULL;
    char *b = malloc(tdxc_len + 1);
    memcpy(b, tdxc, tdxc_len);
    b[tdxc_len] = 0;
    return b;
}

/* The TD report's TEE_TCB_SVN is 06 01 03 ...: module SVN 6, major version 1
 * (TDX_01), late microcode 3. The first TCB level wants tdx components
 * 5,0,2 (the first two are skipped for major version > 0) and PCESVN 11; the
 * second is the same with PCESVN 5 and says OutOfDate. */
static void tdx_levels(void)
{
    char *b = base();
    if (!b) { TM_CHECK(0); return; }
    tm_claims c;
    char r[512];
    const char *pol = MRTD ALL_STATUSES;
    TM_CHECK_EQ(appraise(b, pol, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(!strcmp(c.tcb_status, "UpToDate"));
    static const char late[] = "{\\\"svn\\\":2,\\\"category\\\":\\\"OS/VMM\\\",\\\"type\\\":\\\"TDX Late Microcode Update\\\"}";
    static const char late4[] = "{\\\"svn\\\":4,\\\"category\\\":\\\"OS/VMM\\\",\\\"type\\\":\\\"TDX Late Microcode Update\\\"}";
    struct { const char *from, *to; int nth; int rc; const char *status_or_reason; const char *from2, *to2; } cases[] = {
        /* first level wants late microcode 4 > 3: the second level (OutOfDate) matches */
        {late, late4, 0, TM_VERIFY_OK, "OutOfDate", NULL, NULL},
        /* both levels want it: no level */
        {late, late4, -1, TM_VERIFY_ETCB, "tdx: collateral: no TCB level of TCB info matches this platform", NULL, NULL},
        /* components 0 and 1 are the module's SVN/version: ignored for major version 1 */
        {"{\\\"svn\\\":5,\\\"category\\\":\\\"OS/VMM\\\",\\\"type\\\":\\\"TDX Module\\\"}",
         "{\\\"svn\\\":9,\\\"category\\\":\\\"OS/VMM\\\",\\\"type\\\":\\\"TDX Module\\\"}", -1, TM_VERIFY_OK, "UpToDate", NULL, NULL},
        /* PCESVN of the first level above the platform's 11 */
        {"\\\"pcesvn\\\":11", "\\\"pcesvn\\\":12", 0, TM_VERIFY_OK, "OutOfDate", NULL, NULL},
        /* module identity TDX_01: TCB level by module SVN 6 */
        {"\\\"tcb\\\":{\\\"isvsvn\\\":4}", "\\\"tcb\\\":{\\\"isvsvn\\\":7}", 0, TM_VERIFY_OK, "OutOfDate", NULL, NULL},
        {"\\\"tcb\\\":{\\\"isvsvn\\\":4}", "\\\"tcb\\\":{\\\"isvsvn\\\":7}", 0, TM_VERIFY_ETCB,
         "tdx: collateral: no TCB level of TDX module identity TDX_01 for module SVN 6", "\\\"isvsvn\\\":2}",
         "\\\"isvsvn\\\":7}"},
        {"\\\"id\\\":\\\"TDX_01\\\"", "\\\"id\\\":\\\"TDX_02\\\"", 0, TM_VERIFY_ETCB,
         "tdx: collateral: TDX module identity TDX_01 not found in TCB info", NULL, NULL},
        {"TDX_01\\\",\\\"mrsigner\\\":\\\"0", "TDX_01\\\",\\\"mrsigner\\\":\\\"1", 0, TM_VERIFY_ETCB,
         "tdx: collateral: MRSIGNERSEAM does not match TDX module identity TDX_01", NULL, NULL},
        {"TDX_01\\\",\\\"mrsigner\\\":\\\"" Z96 "\\\",\\\"attributes\\\":\\\"0",
         "TDX_01\\\",\\\"mrsigner\\\":\\\"" Z96 "\\\",\\\"attributes\\\":\\\"1", 0, TM_VERIFY_ETCB,
         "tdx: collateral: SEAM attributes do not match TDX module identity TDX_01", NULL, NULL},
        /* FMSPC and id of the TCB info */
        {"\\\"fmspc\\\":\\\"B0C06F000000\\\"", "\\\"fmspc\\\":\\\"B0C06F000001\\\"", 0, TM_VERIFY_ETCB,
         "FMSPC of the PCK certificate (b0c06f000000) does not match TCB info (b0c06f000001)", NULL, NULL},
        {"{\\\"id\\\":\\\"TDX\\\"", "{\\\"id\\\":\\\"SGX\\\"", 0, TM_VERIFY_ECOLLATERAL,
         "tdx: collateral: TCB info is for SGX, not TDX", NULL, NULL},
        /* QE identity: the quoting enclave's MRSIGNER and ISVSVN */
        {"\\\"mrsigner\\\":\\\"DC9E2A7C", "\\\"mrsigner\\\":\\\"DC9E2A7D", 0, TM_VERIFY_ETCB,
         "tdx: collateral: QE identity: MRSIGNER of the quoting enclave does not match", NULL, NULL},
        {"\\\"id\\\":\\\"TD_QE\\\"", "\\\"id\\\":\\\"QE\\\"", 0, TM_VERIFY_ECOLLATERAL,
         "QE identity is for QE, not TD_QE", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = edit(b, cases[i].from, cases[i].to, cases[i].nth);
        if (e && cases[i].from2) {
            char *e2 = edit(e, cases[i].from2, cases[i].to2, 0);
            free(e);
            e = e2;
        }
        if (!e) { TM_CHECK(0); continue; }
        int rc = appraise(e, pol, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu: %d %s\n", i, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        if (rc == TM_VERIFY_OK) {
            if (strcmp(c.tcb_status, cases[i].status_or_reason))
                fprintf(stderr, "  case %zu: status %s, want %s\n", i, c.tcb_status, cases[i].status_or_reason);
            TM_CHECK(!strcmp(c.tcb_status, cases[i].status_or_reason));
        } else {
            TM_CHECK(ta_has(r, cases[i].status_or_reason));
        }
        free(e);
    }
    /* An OutOfDate module downgrades an UpToDate platform, and the default
     * status list (UpToDate) then refuses it. */
    char *e = edit(b, "\\\"tcb\\\":{\\\"isvsvn\\\":4}", "\\\"tcb\\\":{\\\"isvsvn\\\":7}", 0);
    if (e) {
        TM_CHECK_EQ(appraise(e, MRTD, &c, r, sizeof r), TM_VERIFY_ETCB);
        TM_CHECK(ta_has(r, "tdx: TCB status OutOfDate not accepted by policy (accepted: UpToDate)"));
        free(e);
    }
    /* a ConfigurationNeeded platform with an OutOfDate module converges to
     * OutOfDateConfigurationNeeded */
    char *e1 = edit(b, "}]},\\\"tcbDate\\\":\\\"2024-03-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"UpToDate\\\"",
                    "}]},\\\"tcbDate\\\":\\\"2024-03-13T00:00:00Z\\\",\\\"tcbStatus\\\":\\\"ConfigurationNeeded\\\"", 0);
    char *e2 = e1 ? edit(e1, "\\\"tcb\\\":{\\\"isvsvn\\\":4}", "\\\"tcb\\\":{\\\"isvsvn\\\":7}", 0) : NULL;
    TM_CHECK(e2 != NULL);
    if (e2) {
        TM_CHECK_EQ(appraise(e2, pol, &c, r, sizeof r), TM_VERIFY_OK);
        if (strcmp(c.tcb_status, "OutOfDateConfigurationNeeded")) fprintf(stderr, "  status %s\n", c.tcb_status);
        TM_CHECK(!strcmp(c.tcb_status, "OutOfDateConfigurationNeeded"));
    }
    free(e1);
    free(e2);
    free(b);
}

TM_TEST_MAIN(TM_CASE(tdx_levels))
