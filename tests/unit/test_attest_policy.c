/*
 * test_attest_policy.c — policy files: every key, every error reported as
 * file:line, relative paths, collateral loading, fail-closed defaults,
 * warnings, named measurement sets (old and typed entries), reference
 * counting and tm_policy_refresh().
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <sys/stat.h>
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
        {"rtmr2 00\n", "p.conf:1: rtmr2: expected 96 hex digits"},
        {"td_attributes 0x1\n", "td_attributes: expected 16 hex digits"},
        {"snp_measurement 00\n", "snp_measurement: expected 96 hex digits"},
        {"snp_chip_id 00\n", "snp_chip_id: expected 128 hex digits"},
        {"ppid 00\n", "ppid: expected 32 hex digits"},
        {"snp_min_guest_svn -1\n", "snp_min_guest_svn: expected a number"},
        {"snp_max_vmpl 4\n", "snp_max_vmpl: expected a number 0..3"},
        {"snp_min_tcb snp\n", "snp_min_tcb: expected"},
        {"allow_any_measurement yes\n", "allow_any_measurement: expected true or false"},
        {"require_collateral false\n", "require_collateral: only 'true'"},
        {"collateral_dir /nonexistent/d\n", "p.conf:1: collateral_dir: cannot open directory /nonexistent/d"},
        {"snp_vcek /nonexistent.der\n", "snp_vcek: cannot open /nonexistent.der"},
        {"measurement_set s tdx:mrenclave=00\n", "measurement_set: 'mrenclave' is not a tdx field"},
        {"measurement_set s tdx:mrtd=00\n", "measurement_set: mrtd: expected 96 hex digits"},
        {"measurement_set s arm:x=00\n", "measurement_set: unknown format 'arm'"},
        {"measurement_set s sgx:\n", "measurement_set: expected 'NAME HEX'"},
        {"measurement_set s sim:measurement=" "1111111111111111111111111111111111111111111111111111111111111111,"
         "measurement=1111111111111111111111111111111111111111111111111111111111111111\n", "given twice"},
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
    TM_CHECK(tm_policy_allow_missing_collateral(p) == 0);
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
          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nallow_missing_collateral true\n", f);
    fclose(f);
    tm_policy *p = tm_policy_new();
    char err[512];
    TM_CHECK(tm_policy_load(p, path, err, sizeof err) == 0);
    size_t len = 0;
    const uint8_t *c = tm_policy_collateral(p, TM_FMT_TDX_DCAP, NULL, &len);
    TM_CHECK(c && len == 7 && !memcmp(c, "{\"x\":1}", 7));
    c = tm_policy_collateral(p, TM_FMT_TDX_DCAP, "b0c06f000000", &len); /* explicit: any FMSPC */
    TM_CHECK(c && len == 7);
    TM_CHECK(tm_policy_collateral(p, TM_FMT_SGX_DCAP, NULL, &len) == NULL);
    uint8_t h[32];
    for (int i = 0; i < 32; i++) h[i] = (uint8_t)(((i % 16) << 4) | (i % 16));
    TM_CHECK(tm_policy_sim_key_trusted(p, h) == 1);
    h[0] ^= 1;
    TM_CHECK(tm_policy_sim_key_trusted(p, h) == 0);
    TM_CHECK(tm_policy_allow_missing_collateral(p) == 1);
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

/* measurement_set NAME FORMAT:field=HEX,...: all fields must match, and only
 * evidence of that format. */
static void typed_sets(void)
{
    tm_policy *p = tm_policy_new();
    char err[512];
    char t[2048], h[8][100];
    const char fill[8] = {'a', 'b', 'c', '1', '2', 'd', '3', '4'};
    const int digits[8] = {96, 96, 96, 64, 64, 96, 64, 64};
    for (int i = 0; i < 8; i++) {
        memset(h[i], fill[i], (size_t)digits[i]);
        h[i][digits[i]] = 0;
    }
    snprintf(t, sizeof t,
             "measurement_set tds tdx:mrtd=%s,rtmr0=%s\n"
             "measurement_set tds tdx:mrtd=%s\n"
             "measurement_set apps sgx:mrenclave=%s\n"
             "measurement_set vendor sgx:mrsigner=%s\n"
             "measurement_set vms snp:measurement=%s,host_data=%s\n"
             "measurement_set dev sim:measurement=%s\n",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
    TM_CHECK(tm_policy_parse(p, t, strlen(t), "x", err, sizeof err) == 0);
    tm_claims c;
    memset(&c, 0, sizeof c);
    c.has_tdx = 1;
    memset(c.mrtd, 0xaa, 48);
    memset(c.rtmr[0], 0xbb, 48);
    TM_CHECK(tm_policy_in_set(p, "tds", &c) == 1);
    c.rtmr[0][3] = 0;                     /* first entry: one field differs */
    TM_CHECK(tm_policy_in_set(p, "tds", &c) == 0);
    memset(c.mrtd, 0xcc, 48);             /* second entry: MRTD alone */
    TM_CHECK(tm_policy_in_set(p, "tds", &c) == 1);
    TM_CHECK(tm_policy_in_set(p, "apps", &c) == 0);
    memset(&c, 0, sizeof c);
    c.has_sgx = 1;
    memset(c.mrenclave, 0x11, 32);
    memset(c.mrsigner, 0x22, 32);
    TM_CHECK(tm_policy_in_set(p, "apps", &c) == 1 && tm_policy_in_set(p, "vendor", &c) == 1);
    c.mrsigner[0] = 0;
    TM_CHECK(tm_policy_in_set(p, "vendor", &c) == 0);
    memset(&c, 0, sizeof c);
    c.has_snp = 1;
    memset(c.snp_measurement, 0xdd, 48);
    memset(c.host_data, 0x33, 32);
    TM_CHECK(tm_policy_in_set(p, "vms", &c) == 1);
    c.host_data[31] = 0;
    TM_CHECK(tm_policy_in_set(p, "vms", &c) == 0);
    /* a sim measurement equal to an SGX MRENCLAVE value is not in the SGX set */
    memset(&c, 0, sizeof c);
    c.has_sim = 1;
    memset(c.sim_measurement, 0x11, 32);
    TM_CHECK(tm_policy_in_set(p, "apps", &c) == 0);
    memset(c.sim_measurement, 0x44, 32);
    TM_CHECK(tm_policy_in_set(p, "dev", &c) == 1);
    tm_policy_free(p);
}

/* An empty policy accepts nothing; each widening setting is a warning. */
static void fail_closed_defaults(void)
{
    tm_policy *p = tm_policy_new();
    char r[512], w[2048];
    tm_claims c;
    memset(&c, 0, sizeof c);
    c.has_sim = 1;
    snprintf(c.format_name, sizeof c.format_name, "sim");
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "policy: no measurement pinned for sim evidence (pin one of: sim_measurement; or say "
                       "allow_any_measurement true)"));
    TM_CHECK_EQ(tm_policy_warnings(p, w, sizeof w), 0);
    TM_CHECK(w[0] == 0);
    const char *t = "allow_any_measurement true\nallow_missing_collateral true\nallow_debug true\n";
    TM_CHECK(tm_policy_parse(p, t, strlen(t), "x", r, sizeof r) == 0);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0);
    TM_CHECK(c.any_measurement_allowed == 1);
    TM_CHECK_EQ(tm_policy_warnings(p, w, sizeof w), 3);
    TM_CHECK(ta_has(w, "warning: allow_any_measurement true") && ta_has(w, "warning: allow_debug true"));
    /* a pin of the format: no longer "any" */
    TM_CHECK(tm_policy_set(p, "sim_measurement", "5555555555555555555555555555555555555555555555555555555555555555", r,
                           sizeof r) == 0);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "policy: sim measurement 0000"));
    memset(c.sim_measurement, 0x55, 32);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0);
    TM_CHECK(c.any_measurement_allowed == 0);
    /* tm_policy_ref: the last free releases */
    TM_CHECK(tm_policy_ref(p) == p);
    tm_policy_free(p);
    TM_CHECK(tm_policy_check_claims(p, &c, r, sizeof r) == 0); /* still alive */
    tm_policy_free(p);
    tm_policy_free(NULL);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    FILE *f = fopen(tmp, "w");
    TM_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
    TM_CHECK(rename(tmp, path) == 0); /* atomic, as the fetch tool writes */
}

/* tm_policy_refresh: 0 while nothing changed, 1 with the new content when the
 * policy file, a collateral file or the cache directory changed, -1 (old
 * policy kept) when the new file is broken. */
static void refresh(void)
{
    char dir[] = "/tmp/tm-attest-refresh-XXXXXX";
    TM_CHECK(mkdtemp(dir) != NULL);
    char cache[600], path[700], err[1024];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    TM_CHECK(mkdir(cache, 0700) == 0);
    write_file(cache, "sgx-00a067110000.json", "{\"v\":1}");
    write_file(dir, "p.policy", "allow_any_measurement true\ncollateral_dir cache\n");
    snprintf(path, sizeof path, "%s/p.policy", dir);
    tm_policy *p = tm_policy_new();
    TM_CHECK(tm_policy_load(p, path, err, sizeof err) == 0);
    size_t len = 0;
    const uint8_t *c = tm_policy_collateral(p, TM_FMT_SGX_DCAP, "00a067110000", &len);
    TM_CHECK(c && len == 7 && c[5] == '1');
    tm_policy *before = p;
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 0);
    TM_CHECK(p == before);
    /* another holder keeps the old policy alive across the swap */
    tm_policy *held = tm_policy_ref(p);
    /* the fetch tool replaces a collateral file */
    write_file(cache, "sgx-00a067110000.json", "{\"v\":22}");
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 1);
    TM_CHECK(p != held);
    c = tm_policy_collateral(p, TM_FMT_SGX_DCAP, "00a067110000", &len);
    TM_CHECK(c && len == 8 && c[5] == '2');
    c = tm_policy_collateral(held, TM_FMT_SGX_DCAP, "00a067110000", &len);
    TM_CHECK(c && len == 7);
    tm_policy_free(held);
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 0);
    /* a new FMSPC appears in the directory */
    write_file(cache, "tdx-b0c06f000000.json", "{}");
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 1);
    TM_CHECK(tm_policy_collateral(p, TM_FMT_TDX_DCAP, "b0c06f000000", &len) != NULL);
    /* the policy file itself changes */
    write_file(dir, "p.policy", "allow_any_measurement true\ncollateral_dir cache\nformat sgx-dcap\n");
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 1);
    TM_CHECK(!tm_policy_format_allowed(p, TM_FMT_TDX_DCAP));
    /* a broken policy file: error, the old policy stays in place */
    before = p;
    write_file(dir, "p.policy", "allow_any_measurement maybe\n");
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), -1);
    TM_CHECK(ta_has(err, "p.policy:1: allow_any_measurement: expected true or false"));
    TM_CHECK(p == before && tm_policy_collateral(p, TM_FMT_SGX_DCAP, "00a067110000", &len) != NULL);
    /* fixed again */
    write_file(dir, "p.policy", "allow_any_measurement true\n");
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 1);
    TM_CHECK(tm_policy_collateral(p, TM_FMT_SGX_DCAP, "00a067110000", &len) == NULL);
    tm_policy_free(p);
    /* a policy not loaded from a file has nothing to refresh */
    p = tm_policy_new();
    TM_CHECK_EQ(tm_policy_refresh(&p, err, sizeof err), 0);
    tm_policy_free(p);
    const char *names[] = {"cache/sgx-00a067110000.json", "cache/tdx-b0c06f000000.json", "p.policy"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(cache);
    rmdir(dir);
}

TM_TEST_MAIN(TM_CASE(errors_have_file_and_line), TM_CASE(formats_and_statuses), TM_CASE(load_with_relative_paths),
             TM_CASE(measurement_sets), TM_CASE(typed_sets), TM_CASE(fail_closed_defaults), TM_CASE(refresh))
