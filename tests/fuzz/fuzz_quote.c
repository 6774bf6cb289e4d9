/*
 * fuzz_quote.c — fuzz target for everything in src/attest that reads
 * untrusted bytes on the DCAP path: the quote parser and verifier (SGX, TDX
 * v4/v5), the sim report parser, the SEV-SNP parser, the collateral JSON
 * parser and its appraisal (TCB info, QE identity, CRLs, TCB levels, TDX
 * module identities), and the policy parser. Every input goes through all of
 * them, so the seeds (real quotes and collateral from shared/testdata) are
 * useful to each:
 *
 *   - as evidence of every format under an empty policy (parsers, early checks);
 *   - as an SGX/TDX quote under a policy that carries the real collateral and
 *     accepts any measurement and TCB status (the path to the end);
 *   - as collateral JSON for the real SGX and TDX sample quotes.
 *
 * The libFuzzer build (tests/fuzz/attest.cmake) compiles the attestation
 * sources with TM_FUZZ_BYPASS_SIGNATURES: signature checks always pass, so
 * mutated quotes and collateral reach the collateral and TCB-level code that
 * signatures would otherwise guard (attest_int.h). Built with
 * -DTM_FUZZ_REPLAY (non-clang builds) it is a plain program over the normal
 * library that replays files and directories given on the command line, so
 * the same inputs run in every ctest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/json.h"
#include "attest/policy.h"
#include "attest/verify.h"
#include "fuzz_util.h"


static const time_t at = 1750377600; /* 2025-06-20T00:00:00Z */
static uint8_t *sgx_quote, *tdx_quote;
static size_t sgx_len, tdx_len;
static tm_policy *accept_all; /* real collateral, any measurement, any TCB status */

static const char statuses[] = "allow_any_measurement true\nallow_debug true\nrequire_sept_ve_disable false\n"
                               "tcb_status UpToDate\ntcb_status SWHardeningNeeded\ntcb_status ConfigurationNeeded\n"
                               "tcb_status ConfigurationAndSWHardeningNeeded\ntcb_status OutOfDate\n"
                               "tcb_status OutOfDateConfigurationNeeded\ntcb_status Revoked\n";

static void init(void)
{
    static int done;
    if (done) return;
    done = 1;
    sgx_quote = tm_fuzz_testdata("sgx/quote.bin", &sgx_len);
    tdx_quote = tm_fuzz_testdata("tdx/quote.bin", &tdx_len);
    size_t sl = 0, tl = 0;
    uint8_t *sc = tm_fuzz_testdata("sgx/collateral.json", &sl), *tc = tm_fuzz_testdata("tdx/collateral.json", &tl);
    char err[256];
    accept_all = tm_policy_new();
    if (accept_all) {
        tm_policy_parse(accept_all, statuses, strlen(statuses), "fuzz", err, sizeof err);
        if (sc) tm_policy_set_collateral(accept_all, TM_FMT_SGX_DCAP, sc, sl);
        if (tc) tm_policy_set_collateral(accept_all, TM_FMT_TDX_DCAP, tc, tl);
    }
    free(sc);
    free(tc);
    if (!sgx_quote || !tdx_quote || !sc || !tc)
        fprintf(stderr, "fuzz_quote: sample quotes/collateral not found under %s; those modes are off\n",
                TM_FUZZ_TESTDATA);
}

static void walk_json(const tm_json *j)
{
    /* Exercise the accessors on every token. */
    char buf[64];
    long long v;
    for (int i = 0; i < j->ntok; i++) {
        tm_json_str(j, i, buf, sizeof buf);
        tm_json_int(j, i, &v);
        tm_json_get(j, i, "tcbLevels");
        tm_json_at(j, i, 1);
        free(tm_json_strdup(j, i, NULL));
    }
}

/* Policy text may name files; device and proc files could block or be
 * endless, so inputs naming them are not parsed as policies. */
static int names_special_files(const uint8_t *d, size_t n)
{
    static const char *bad[] = {"/dev", "/proc", "/sys"};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        size_t l = strlen(bad[b]);
        for (size_t i = 0; i + l <= n; i++)
            if (memcmp(d + i, bad[b], l) == 0) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t fmts[] = {TM_FMT_SIM, TM_FMT_SGX_DCAP, TM_FMT_TDX_DCAP, TM_FMT_SEV_SNP};
    char reason[512], desc[8192];
    tm_claims c;
    init();
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        tm_verify(fmts[i], data, size, NULL, NULL, at, &c, reason, sizeof reason);
        tm_claims_text(&c, desc, sizeof desc);
        tm_claims_json(&c, desc, sizeof desc);
        tm_evidence_describe(fmts[i], data, size, desc, sizeof desc);
    }
    tm_evidence_guess_format(data, size);
    /* the input as a quote, to the end of the appraisal */
    if (accept_all) {
        tm_verify(TM_FMT_SGX_DCAP, data, size, NULL, accept_all, at, &c, reason, sizeof reason);
        tm_verify(TM_FMT_TDX_DCAP, data, size, NULL, accept_all, at, &c, reason, sizeof reason);
        tm_claims_text(&c, desc, sizeof desc);
    }

    tm_json j;
    char err[256];
    if (tm_json_parse(&j, (const char *)data, size, err, sizeof err) == 0) {
        walk_json(&j);
        tm_json_free(&j);
    }

    /* the input as collateral for the real quotes */
    tm_policy *p = tm_policy_new();
    if (p) {
        tm_policy_parse(p, statuses, strlen(statuses), "fuzz", err, sizeof err);
        tm_policy_set_collateral(p, TM_FMT_SGX_DCAP, data, size);
        tm_policy_set_collateral(p, TM_FMT_TDX_DCAP, data, size);
        if (sgx_quote) tm_verify(TM_FMT_SGX_DCAP, sgx_quote, sgx_len, NULL, p, at, &c, reason, sizeof reason);
        if (tdx_quote) tm_verify(TM_FMT_TDX_DCAP, tdx_quote, tdx_len, NULL, p, at, &c, reason, sizeof reason);
        tm_policy_free(p);
    }

    /* the input as policy text */
    if (!names_special_files(data, size) && (p = tm_policy_new()) != NULL) {
        tm_policy_parse(p, (const char *)data, size, "fuzz", err, sizeof err);
        tm_policy_warnings(p, desc, sizeof desc);
        tm_policy_in_set(p, "s", &c);
        tm_policy_check_claims(p, &c, reason, sizeof reason);
        tm_policy_free(p);
    }
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#define TM_FUZZ_EXTRA_INPUTS                                                                             \
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"a\":\"\\ud800\"}", "TMQSIM01",        \
     "format sim\nmrenclave zz\n", "\x03\x00\x02\x00",                                                \
     "measurement_set s tdx:mrtd=00,rtmr0=11\nsnp_min_tcb snp=1,fmc=2\n"}
#include "fuzz_replay.h"
#endif
