/*
 * test_attest_policy.c — policy files: every key, every error reported as
 * file:line, relative paths, collateral loading, named measurement sets.
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <unistd.h>
#include "attest/evidence.h"
#include "attest/policy.h"

static int parse_err(const char *text, char *err, size_t cap)
{
    tm_policy *p = tm_policy_new();
    int rc = tm_policy_parse(p, text, strlen(text), "p.conf", err, cap);
    tm_policy_free(p);
    return rc;
}

static void errors_have_file_and_line(void)
{
    char err[512];
    struct { const char *text, *want; } cases[] = {
        {"# comment\n\nbogus 1\n", "p.conf:3: unknown key 'bogus'"},
        {"format sgx\n", "p.conf:1: format: unknown evidence format 'sgx'"},
        {"mrenclave 1234\n", "p.conf:1: mrenclave: expected 64 hex digits"},
        {"mrtd 00\n", "p.conf:1: mrtd: expected 96 hex digits"},
        {"isv_prodid -1\n", "isv_prodid: expected a number"},
        {"min_isvsvn 70000\n", "min_isvsvn: expected a number"},
        {"allow_debug yes\n", "allow_debug: expected true or false"},
        {"tcb_status UpToDat\n", "tcb_status: unknown status 'UpToDat'"},
        {"collateral sim /x\n", "collateral: expected 'sgx-dcap PATH'"},
        {"collateral sgx-dcap /nonexistent/c.json\n", "p.conf:1: collateral: cannot open /nonexistent/c.json"},
        {"sim_trusted_key /nonexistent.pem\n", "sim_trusted_key: cannot open"},
        {"measurement_set onlyname\n", "measurement_set: expected 'NAME HEX'"},
        {"measurement_set a mrsigner:" "00\n", "measurement_set: expected 64 or 96"},
        {"format\n", "p.conf:1: format: missing value"},
        {"\n\n\n  mrsigner   zz\n", "p.conf:4: mrsigner"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse_err(cases[i].text, err, sizeof err);
        TM_CHECK(rc != 0);
        TM_CHECK(ta_has(err, cases[i].want));
    }
    TM_CHECK(parse_err("  # only comments\n\t\nformat sim # trailing comment\n", err, sizeof err) == 0);
}

static void formats_and_statuses(void)
{
    tm_policy *p = tm_policy_new();
    char err[256];
    TM_CHECK(tm_policy_format_allowed(p, TM_FMT_SIM) && tm_policy_format_allowed(p, TM_FMT_TDX_DCAP));
    TM_CHECK(!tm_policy_format_allowed(p, 0) && !tm_policy_format_allowed(p, 99));
    TM_CHECK(tm_policy_tcb_status_ok(p, "UpToDate") && !tm_policy_tcb_status_ok(p, "OutOfDate"));
    const char *t = "format tdx-dcap\ntcb_status SWHardeningNeeded\ntcb_status OutOfDate\ntcb_status OutOfDate\n";
    TM_CHECK(tm_policy_parse(p, t, strlen(t), "x", err, sizeof err) == 0);
    TM_CHECK(!tm_policy_format_allowed(p, TM_FMT_SIM) && tm_policy_format_allowed(p, TM_FMT_TDX_DCAP));
    TM_CHECK(!tm_policy_tcb_status_ok(p, "UpToDate") && tm_policy_tcb_status_ok(p, "OutOfDate"));
    char buf[128];
    tm_policy_tcb_statuses(p, buf, sizeof buf);
    TM_CHECK(!strcmp(buf, "SWHardeningNeeded,OutOfDate"));
    TM_CHECK(tm_policy_require_collateral(p) == 0);
    tm_policy_free(p);
}

static void load_with_relative_paths(void)
{
    char dir[] = "/tmp/tm-attest-pol-XXXXXX";
    TM_CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/coll.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"x\":1}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/pol.conf", dir);
    f = fopen(path, "w");
    fputs("collateral tdx-dcap coll.json\nsim_trusted_key "
          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nrequire_collateral true\n", f);
    fclose(f);
    tm_policy *p = tm_policy_new();
    char err[512];
    TM_CHECK(tm_policy_load(p, path, err, sizeof err) == 0);
    size_t len = 0;
    const uint8_t *c = tm_policy_collateral(p, TM_FMT_TDX_DCAP, &len);
    TM_CHECK(c && len == 7 && !memcmp(c, "{\"x\":1}", 7));
    TM_CHECK(tm_policy_collateral(p, TM_FMT_SGX_DCAP, &len) == NULL);
    uint8_t h[32];
    for (int i = 0; i < 32; i++) h[i] = (uint8_t)(((i % 16) << 4) | (i % 16));
    TM_CHECK(tm_policy_sim_key_trusted(p, h) == 1);
    h[0] ^= 1;
    TM_CHECK(tm_policy_sim_key_trusted(p, h) == 0);
    TM_CHECK(tm_policy_require_collateral(p) == 1);
    tm_policy_free(p);
    p = tm_policy_new();
    TM_CHECK(tm_policy_load(p, "/nonexistent/pol.conf", err, sizeof err) != 0);
    TM_CHECK(ta_has(err, "cannot open /nonexistent/pol.conf"));
    tm_policy_free(p);
    snprintf(path, sizeof path, "%s/coll.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/pol.conf", dir);
    unlink(path);
    rmdir(dir);
}

static void measurement_sets(void)
{
    tm_policy *p = tm_policy_new();
    char err[256];
    const char *t =
        "measurement_set sensors aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "measurement_set sensors bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n"
        "measurement_set vendor mrsigner:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\n"
        "measurement_set tds dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n";
    TM_CHECK(tm_policy_parse(p, t, strlen(t), "x", err, sizeof err) == 0);
    tm_claims c;
    memset(&c, 0, sizeof c);
    c.has_sgx = 1;
    memset(c.measurement, 0xbb, 32);
    c.measurement_len = 32;
    memset(c.mrsigner, 0xcc, 32);
    TM_CHECK(tm_policy_in_set(p, "sensors", &c) == 1);
    TM_CHECK(tm_policy_in_set(p, "vendor", &c) == 1);
    TM_CHECK(tm_policy_in_set(p, "tds", &c) == 0);
    TM_CHECK(tm_policy_in_set(p, "nosuch", &c) == 0);
    memset(c.measurement, 0xdd, 48);
    c.measurement_len = 48;
    c.has_sgx = 0;
    c.has_tdx = 1;
    TM_CHECK(tm_policy_in_set(p, "tds", &c) == 1);
    TM_CHECK(tm_policy_in_set(p, "sensors", &c) == 0);
    TM_CHECK(tm_policy_in_set(p, "vendor", &c) == 0); /* mrsigner entries only match SGX */
    TM_CHECK(tm_policy_in_set(NULL, "tds", &c) == 0);
    tm_policy_free(p);
}

TM_TEST_MAIN(TM_CASE(errors_have_file_and_line), TM_CASE(formats_and_statuses), TM_CASE(load_with_relative_paths),
             TM_CASE(measurement_sets))
