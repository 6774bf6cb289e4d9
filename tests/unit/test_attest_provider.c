/*
 * test_attest_provider.c — the gramine and tsm providers against fake
 * directory trees (plain files standing in for /dev/attestation and
 * configfs-tsm), and the none provider.
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); return; }
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

static size_t get(const char *dir, const char *name, unsigned char *buf, size_t cap)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void gramine_fake(void)
{
    char root[] = "/tmp/tm-attest-gramine-XXXXXX";
    TM_CHECK(mkdtemp(root) != NULL);
    size_t qlen;
    unsigned char *quote = ta_data("sgx/quote.bin", &qlen);
    if (!quote) { TM_CHECK(0); return; }
    put(root, "user_report_data", "", 0);
    put(root, "quote", quote, qlen);
    put(root, "attestation_type", "dcap\n", 5);
    char opts[128], err[256];
    snprintf(opts, sizeof opts, "root=%s", root);
    tm_provider *p = tm_provider_open("gramine", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    if (!p) { fprintf(stderr, "  %s\n", err); free(quote); return; }
    uint16_t f[2];
    TM_CHECK_EQ(tm_provider_formats(p, f, 2), 1);
    TM_CHECK_EQ(f[0], TM_FMT_SGX_DCAP);
    unsigned char rd[64], out[8192], got[128];
    for (int i = 0; i < 64; i++) rd[i] = (unsigned char)(i * 3);
    size_t len = 0;
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SGX_DCAP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_OK);
    TM_CHECK(len == qlen && memcmp(out, quote, qlen) == 0);
    TM_CHECK(get(root, "user_report_data", got, sizeof got) == 64 && memcmp(got, rd, 64) == 0);
    /* The collected quote appraises (report_data is the fake's, so no binding;
     * its collateral has expired by now, so the test accepts its absence). */
    tm_claims c;
    char r[512];
    tm_policy *pol = tm_policy_new();
    const char *pt = "mrsigner 815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6\n"
                     "allow_missing_collateral true\n";
    TM_CHECK(tm_policy_parse(pol, pt, strlen(pt), "p", r, sizeof r) == 0);
    TM_CHECK_EQ(tm_verify(TM_FMT_SGX_DCAP, out, len, NULL, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(pol);
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SGX_DCAP, rd, out, 100, &len, err, sizeof err), TM_PROV_ESPACE);
    TM_CHECK(len == qlen);
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_TDX_DCAP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_EFORMAT);
    tm_provider_close(p);
    /* a non-quote file is refused */
    put(root, "quote", "garbage", 7);
    p = tm_provider_open("gramine", opts, err, sizeof err);
    TM_CHECK(p && tm_provider_collect(p, TM_FMT_SGX_DCAP, rd, out, sizeof out, &len, err, sizeof err) == TM_PROV_EIO);
    TM_CHECK(ta_has(err, "is not an SGX DCAP v3 quote"));
    tm_provider_close(p);
    /* EPID is another format */
    put(root, "attestation_type", "epid\n", 5);
    TM_CHECK(tm_provider_open("gramine", opts, err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "attestation_type is 'epid'"));
    /* missing root */
    TM_CHECK(tm_provider_open("gramine", "root=/nonexistent/attestation", err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "is not available"));
    char path[512];
    const char *names[] = {"user_report_data", "quote", "attestation_type"};
    for (int i = 0; i < 3; i++) { snprintf(path, sizeof path, "%s/%s", root, names[i]); unlink(path); }
    rmdir(root);
    free(quote);
}

static void tsm_fake(void)
{
    char root[] = "/tmp/tm-attest-tsm-XXXXXX";
    TM_CHECK(mkdtemp(root) != NULL);
    size_t qlen;
    unsigned char *quote = ta_data("tdx/quote.bin", &qlen);
    if (!quote) { TM_CHECK(0); return; }
    /* A fixed entry pre-populated as configfs would after the write. */
    char entry[300];
    snprintf(entry, sizeof entry, "%s/fixed", root);
    TM_CHECK(mkdir(entry, 0700) == 0);
    put(entry, "inblob", "", 0);
    put(entry, "outblob", quote, qlen);
    put(entry, "provider", "tdx_guest\n", 10);
    put(entry, "generation", "3\n", 2);
    char opts[400], err[512];
    snprintf(opts, sizeof opts, "root=%s,entry=fixed", root);
    tm_provider *p = tm_provider_open("tsm", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    if (!p) { fprintf(stderr, "  %s\n", err); free(quote); return; }
    uint16_t f[2];
    TM_CHECK_EQ(tm_provider_formats(p, f, 2), 1);
    TM_CHECK_EQ(f[0], TM_FMT_TDX_DCAP);
    unsigned char rd[64], out[8192], got[128];
    memset(rd, 0x5a, 64);
    size_t len = 0;
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_TDX_DCAP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_OK);
    TM_CHECK(len == qlen && memcmp(out, quote, qlen) == 0);
    TM_CHECK(get(entry, "inblob", got, sizeof got) == 64 && memcmp(got, rd, 64) == 0);
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SEV_SNP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_EFORMAT);
    TM_CHECK(ta_has(err, "produces tdx-dcap evidence, not sev-snp"));
    /* the pre-existing entry is not ours: it stays */
    struct stat st;
    TM_CHECK(stat(entry, &st) == 0);
    tm_provider_close(p);
    /* sev_guest maps to sev-snp */
    put(entry, "provider", "sev_guest\n", 10);
    p = tm_provider_open("tsm", opts, err, sizeof err);
    TM_CHECK(p && tm_provider_formats(p, f, 2) == 1 && f[0] == TM_FMT_SEV_SNP);
    tm_provider_close(p);
    put(entry, "provider", "arm_cca\n", 8);
    TM_CHECK(tm_provider_open("tsm", opts, err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "unsupported provider 'arm_cca'"));
    /* missing outblob */
    put(entry, "provider", "tdx_guest\n", 10);
    p = tm_provider_open("tsm", opts, err, sizeof err);
    char path[512];
    snprintf(path, sizeof path, "%s/outblob", entry);
    unlink(path);
    TM_CHECK(p && tm_provider_collect(p, TM_FMT_TDX_DCAP, rd, out, sizeof out, &len, err, sizeof err) == TM_PROV_EIO);
    TM_CHECK(ta_has(err, "cannot read"));
    tm_provider_close(p);
    const char *names[] = {"inblob", "provider", "generation"};
    for (int i = 0; i < 3; i++) { snprintf(path, sizeof path, "%s/%s", entry, names[i]); unlink(path); }
    rmdir(entry);
    /* Fresh entries: an empty tree (no kernel behind it) fails, and the
     * provider removes the directory it created. */
    snprintf(opts, sizeof opts, "root=%s", root);
    TM_CHECK(tm_provider_open("tsm", opts, err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "tsm: cannot read"));
    TM_CHECK_EQ(count_entries(root), 0);
    TM_CHECK(tm_provider_open("tsm", "root=/nonexistent/tsm", err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "is configfs-tsm available"));
    TM_CHECK(tm_provider_open("tsm", "root=/tmp,entry=../x", err, sizeof err) == NULL);
    rmdir(root);
    free(quote);
}

/* SEV-SNP through configfs-tsm: outblob (the report) followed by auxblob
 * (the certificate table) is the evidence, and it appraises. */
static void tsm_snp_fake(void)
{
    char root[] = "/tmp/tm-attest-tsm-snp-XXXXXX";
    TM_CHECK(mkdtemp(root) != NULL);
    size_t rl = 0, vl = 0;
    unsigned char *report = ta_data("snp/report_milan.bin", &rl), *vcek = ta_data("snp/vcek_milan.der", &vl);
    if (!report || !vcek) { TM_CHECK(0); free(report); free(vcek); return; }
    ta_cert certs[] = {{TA_GUID_VCEK, vcek, vl}};
    size_t tl = 0;
    unsigned char *table = ta_snp_table(certs, 1, 0, &tl);
    char entry[300];
    snprintf(entry, sizeof entry, "%s/fixed", root);
    TM_CHECK(mkdir(entry, 0700) == 0);
    put(entry, "inblob", "", 0);
    put(entry, "outblob", report, rl);
    put(entry, "auxblob", table, tl);
    put(entry, "provider", "sev_guest\n", 10);
    put(entry, "generation", "1\n", 2);
    char opts[400], err[512];
    snprintf(opts, sizeof opts, "root=%s,entry=fixed", root);
    tm_provider *p = tm_provider_open("tsm", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    unsigned char rd[64], out[16384];
    memset(rd, 0x11, 64);
    size_t len = 0;
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SEV_SNP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_OK);
    TM_CHECK(len == rl + tl && !memcmp(out, report, rl) && !memcmp(out + rl, table, tl));
    tm_policy *pol = tm_policy_new();
    const char *pt = "snp_measurement 7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c"
                     "60bd95b9c480cd81841f\n";
    char r[512];
    TM_CHECK(tm_policy_parse(pol, pt, strlen(pt), "p", r, sizeof r) == 0);
    tm_claims c;
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, out, len, NULL, pol, ta_time(2025, 6, 20), &c, r, sizeof r), TM_VERIFY_OK);
    /* too small a buffer counts the auxblob too */
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SEV_SNP, rd, out, rl + 10, &len, err, sizeof err), TM_PROV_ESPACE);
    TM_CHECK(len == rl + tl);
    /* without auxblob: the report alone (the verifier then needs a cached VCEK) */
    char path[400];
    snprintf(path, sizeof path, "%s/auxblob", entry);
    unlink(path);
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SEV_SNP, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_OK);
    TM_CHECK(len == rl);
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, out, len, NULL, pol, ta_time(2025, 6, 20), &c, r, sizeof r),
                TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "no VCEK for CHIP_ID"));
    tm_policy_free(pol);
    tm_provider_close(p);
    const char *names[] = {"inblob", "outblob", "provider", "generation"};
    for (int i = 0; i < 4; i++) { snprintf(path, sizeof path, "%s/%s", entry, names[i]); unlink(path); }
    rmdir(entry);
    rmdir(root);
    free(table);
    free(report);
    free(vcek);
}

static void none_provider(void)
{
    char err[128];
    tm_provider *p = tm_provider_open("none", NULL, err, sizeof err);
    TM_CHECK(p != NULL);
    if (!p) return;
    uint16_t f[2];
    TM_CHECK_EQ(tm_provider_formats(p, f, 2), 0);
    unsigned char rd[64] = {0}, out[16];
    size_t len;
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SIM, rd, out, sizeof out, &len, err, sizeof err), TM_PROV_EFORMAT);
    TM_CHECK(!strcmp(tm_provider_name(p), "none"));
    tm_provider_close(p);
    TM_CHECK(tm_provider_open("none", "x=1", err, sizeof err) == NULL);
    TM_CHECK(tm_provider_open("sim", "noequals", err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "is not key=value"));
}

TM_TEST_MAIN(TM_CASE(gramine_fake), TM_CASE(tsm_fake), TM_CASE(tsm_snp_fake), TM_CASE(none_provider))
