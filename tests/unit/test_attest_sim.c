/*
 * test_attest_sim.c — the session binding (known-answer vectors computed
 * independently with Python's hashlib), and the sim format end to end:
 * provider -> evidence -> verifier, every rejection with its own reason,
 * every single-bit flip and every truncation refused.
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <sys/stat.h>
#include <unistd.h>
#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"

static char dir[256];

static void mkscratch(void)
{
    if (dir[0]) return;
    snprintf(dir, sizeof dir, "/tmp/tm-attest-sim-XXXXXX");
    if (!mkdtemp(dir)) perror("mkdtemp");
}

static void hex(const char *h, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
}

static void binding_kat(void)
{
    unsigned char nonce[32], ks[65], spki[32], out[64], want[64], binder[32];
    for (int i = 0; i < 32; i++) nonce[i] = (unsigned char)i;
    ks[0] = 4;
    for (int i = 0; i < 64; i++) ks[1 + i] = (unsigned char)(64 + i);
    memset(spki, 0xaa, 32);
    memset(binder, 0xbb, 32);
    /* protocol v2: SHA-512(label || 0x00 || nonce || binder || key share || spki hash) */
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, nonce, binder, 32, ks, sizeof ks, spki, out) == 0);
    hex("f2ad6f929b18107fa320f7e0cf01e2ce7cf5d1ecd907499b5323f5a2b32ebdee"
        "eb204759abc6d8bfe898c77a096908d14a0032ca8221523a5624fcc806592541", want, 64);
    TM_CHECK_MEM(out, want, 64);
    TM_CHECK(tm_atls_binding(TM_ATLS_CLIENT, nonce, binder, 32, ks, sizeof ks, NULL, out) == 0);
    hex("61bdcc8f0ec5fc64a959b5a0f4753953393c089ea46ed7bcc373cf36e6886f3f"
        "968f70d1768a639c30eec1389a6ed9fa87b0ce3b725187ea51b905fac83a9c73", want, 64);
    TM_CHECK_MEM(out, want, 64);
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, nonce, binder, 32, ks, 0, NULL, out) != 0);
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, NULL, binder, 32, ks, 1, NULL, out) != 0);
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, nonce, NULL, 32, ks, 1, NULL, out) != 0);
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, nonce, binder, 16, ks, 1, NULL, out) != 0);
    uint16_t f;
    TM_CHECK(tm_format_from_name("tdx-dcap", &f) == 0 && f == TM_FMT_TDX_DCAP);
    TM_CHECK(tm_format_from_name("tdx", &f) != 0);
    TM_CHECK(!strcmp(tm_format_name(TM_FMT_SIM), "sim") && tm_format_name(7) == NULL);
}

static const char *meas = "1111111111111111111111111111111111111111111111111111111111111111";
#define PIN_MEAS "sim_measurement 1111111111111111111111111111111111111111111111111111111111111111\n"

static tm_provider *open_sim(const char *extra, char *keyhash_hex)
{
    mkscratch();
    char opts[1024], err[512], key[300];
    snprintf(key, sizeof key, "%s/platform.pem", dir);
    snprintf(opts, sizeof opts, "key=%s%s", key, extra);
    tm_provider *p = tm_provider_open("sim", opts, err, sizeof err);
    if (!p) fprintf(stderr, "  %s\n", err);
    if (keyhash_hex) {
        unsigned char h[32];
        TM_CHECK(tm_sim_keygen(key, h, err, sizeof err) == 0);
        for (int i = 0; i < 32; i++) sprintf(keyhash_hex + 2 * i, "%02x", h[i]);
    }
    return p;
}

static size_t collect(tm_provider *p, const unsigned char rd[64], unsigned char *out, size_t cap)
{
    size_t len = 0;
    char err[256];
    int rc = tm_provider_collect(p, TM_FMT_SIM, rd, out, cap, &len, err, sizeof err);
    if (rc) fprintf(stderr, "  collect: %s\n", err);
    return rc ? 0 : len;
}

static tm_policy *trusting(const char *keyhash, const char *more)
{
    tm_policy *p = tm_policy_new();
    char err[256];
    TM_CHECK(tm_policy_set(p, "sim_trusted_key", keyhash, err, sizeof err) == 0);
    if (more) TM_CHECK(tm_policy_parse(p, more, strlen(more), "more", err, sizeof err) == 0);
    return p;
}

static void sim_roundtrip(void)
{
    char kh[65];
    char m[80];
    snprintf(m, sizeof m, ",measurement=%s", meas);
    tm_provider *p = open_sim(m, kh);
    TM_CHECK(p != NULL);
    if (!p) return;
    struct stat st;
    char key[300];
    snprintf(key, sizeof key, "%s/platform.pem", dir);
    TM_CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    uint16_t fmts[4];
    TM_CHECK_EQ(tm_provider_formats(p, fmts, 4), 1);
    TM_CHECK_EQ(fmts[0], TM_FMT_SIM);
    unsigned char nonce[32] = {1}, binder[32] = {5}, ks[65] = {4, 9}, rd[64], ev[1024];
    TM_CHECK(tm_atls_binding(TM_ATLS_SERVER, nonce, binder, sizeof binder, ks, sizeof ks, NULL, rd) == 0);
    size_t n = collect(p, rd, ev, sizeof ev);
    TM_CHECK(n > 150);
    tm_policy *pol = trusting(kh, PIN_MEAS);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(c.has_sim && c.measurement_len == 32 && c.sim_measurement[0] == 0x11 && !c.debug);
    TM_CHECK(!strcmp(c.format_name, "sim"));
    char json[2048];
    TM_CHECK(tm_claims_json(&c, json, sizeof json) < sizeof json);
    TM_CHECK(ta_has(json, "\"format\":\"sim\""));
    TM_CHECK(ta_has(json, meas));
    /* wrong nonce (replay) */
    unsigned char other[64];
    nonce[0] = 2;
    tm_atls_binding(TM_ATLS_SERVER, nonce, binder, sizeof binder, ks, sizeof ks, NULL, other);
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, other, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EBINDING);
    TM_CHECK(ta_has(r, "report_data does not match the session binding"));
    /* bound to another key share (relay) */
    nonce[0] = 1;
    ks[1] = 10;
    tm_atls_binding(TM_ATLS_SERVER, nonce, binder, sizeof binder, ks, sizeof ks, NULL, other);
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, other, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EBINDING);
    /* bound to another certificate */
    unsigned char spki[32] = {7};
    ks[1] = 9;
    tm_atls_binding(TM_ATLS_SERVER, nonce, binder, sizeof binder, ks, sizeof ks, spki, other);
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, other, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EBINDING);
    /* client label is a different binding */
    tm_atls_binding(TM_ATLS_CLIENT, nonce, binder, sizeof binder, ks, sizeof ks, NULL, other);
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, other, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EBINDING);
    /* untrusted key: default policy */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, NULL, time(NULL), &c, r, sizeof r), TM_VERIFY_EUNTRUSTED);
    TM_CHECK(ta_has(r, "sim: platform key not trusted by policy (sim is not a real TEE"));
    tm_policy_free(pol);
    /* measurement policy */
    pol = trusting(kh, "sim_measurement 2222222222222222222222222222222222222222222222222222222222222222\n");
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EPOLICY);
    TM_CHECK(ta_has(r, "policy: sim measurement 1111"));
    tm_policy_free(pol);
    pol = trusting(kh, "sim_measurement 1111111111111111111111111111111111111111111111111111111111111111\n"
                       "measurement_set admins 1111111111111111111111111111111111111111111111111111111111111111\n"
                       "format sim\n");
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(tm_policy_in_set(pol, "admins", &c) == 1);
    TM_CHECK(tm_policy_in_set(pol, "others", &c) == 0);
    tm_policy_free(pol);
    /* too small a buffer says how much is needed */
    size_t len = 0;
    char err[256];
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SIM, rd, ev, 10, &len, err, sizeof err), TM_PROV_ESPACE);
    TM_CHECK(len > 10);
    TM_CHECK_EQ(tm_provider_collect(p, TM_FMT_SGX_DCAP, rd, ev, sizeof ev, &len, err, sizeof err), TM_PROV_EFORMAT);
    tm_provider_close(p);
}

static void sim_debug_and_measure_self(void)
{
    char kh[65];
    tm_provider *p = open_sim(",debug=true", kh); /* measures /proc/self/exe */
    TM_CHECK(p != NULL);
    if (!p) return;
    unsigned char rd[64] = {5}, ev[1024];
    size_t n = collect(p, rd, ev, sizeof ev);
    tm_policy *pol = trusting(kh, "allow_any_measurement true\n"); /* the test binary's own hash */
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EPOLICY);
    TM_CHECK(ta_has(r, "debug-mode TEE refused"));
    TM_CHECK(c.debug == 1);
    static const unsigned char zero[32];
    TM_CHECK(memcmp(c.sim_measurement, zero, 32) != 0);
    tm_policy_set(pol, "allow_debug", "true", r, sizeof r);
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(pol);
    tm_provider_close(p);
    /* measurement_file: the measurement is SHA-256 of that file */
    char f[300], opt[400];
    snprintf(f, sizeof f, "%s/module.wasm", dir);
    FILE *fp = fopen(f, "wb");
    fputs("abc", fp);
    fclose(fp);
    snprintf(opt, sizeof opt, ",measurement_file=%s", f);
    p = open_sim(opt, NULL);
    TM_CHECK(p != NULL);
    if (!p) return;
    n = collect(p, rd, ev, sizeof ev);
    TM_CHECK(n > 0);
    /* SHA-256("abc") = ba7816bf... */
    TM_CHECK(n > 40 && ev[8] == 0xba && ev[9] == 0x78 && ev[10] == 0x16 && ev[11] == 0xbf);
    tm_provider_close(p);
    char err[256];
    TM_CHECK(tm_provider_open("sim", "measurement=xyz", err, sizeof err) == NULL);
    TM_CHECK(tm_provider_open("sim", "colour=blue", err, sizeof err) == NULL);
    TM_CHECK(ta_has(err, "unknown option 'colour'"));
    TM_CHECK(tm_provider_open("sim", "measurement_file=/nonexistent/x", err, sizeof err) == NULL);
    TM_CHECK(tm_provider_open("nope", NULL, err, sizeof err) == NULL);
}

static void sim_every_bit_and_truncation(void)
{
    char kh[65], m[80];
    snprintf(m, sizeof m, ",measurement=%s", meas);
    tm_provider *p = open_sim(m, kh);
    if (!p) { TM_CHECK(0); return; }
    unsigned char rd[64] = {9}, ev[1024], t[1024];
    size_t n = collect(p, rd, ev, sizeof ev);
    tm_provider_close(p);
    tm_policy *pol = trusting(kh, PIN_MEAS);
    tm_claims c;
    char r[512];
    int accepted = 0, sigfail = 0;
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, NULL, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(t, ev, n);
        t[i / 8] ^= (unsigned char)(1u << (i % 8));
        /* without the expected binding, so the signature/trust checks are what catch it */
        int rc = tm_verify(TM_FMT_SIM, t, n, NULL, pol, time(NULL), &c, r, sizeof r);
        if (rc == TM_VERIFY_OK) { accepted++; fprintf(stderr, "  bit %zu accepted\n", i); }
        if (rc == TM_VERIFY_ESIGNATURE) sigfail++;
    }
    TM_CHECK_EQ(accepted, 0);
    TM_CHECK(sigfail > 0);
    memcpy(t, ev, n);
    t[60] ^= 1; /* inside report_data */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, t, n, NULL, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_ESIGNATURE);
    TM_CHECK(ta_has(r, "sim: report signature does not verify with the platform key"));
    for (size_t k = 0; k < n; k++) {
        int rc = tm_verify(TM_FMT_SIM, ev, k, rd, pol, time(NULL), &c, r, sizeof r);
        TM_CHECK(rc == TM_VERIFY_EMALFORMED);
    }
    memcpy(t, ev, n);
    t[n] = 0;
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, t, n + 1, rd, pol, time(NULL), &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "trailing bytes"));
    tm_policy_free(pol);
}

static void keygen_existing_and_bad(void)
{
    mkscratch();
    char path[300], err[256];
    unsigned char h1[32], h2[32];
    snprintf(path, sizeof path, "%s/k2.pem", dir);
    TM_CHECK(tm_sim_keygen(path, h1, err, sizeof err) == 0);
    TM_CHECK(tm_sim_keygen(path, h2, err, sizeof err) == 0);
    TM_CHECK_MEM(h1, h2, 32); /* created once, then reused */
    snprintf(path, sizeof path, "%s/garbage.pem", dir);
    FILE *f = fopen(path, "w");
    fputs("not a key\n", f);
    fclose(f);
    TM_CHECK(tm_sim_keygen(path, h1, err, sizeof err) != 0);
    TM_CHECK(ta_has(err, "not a P-256 private key"));
    /* the policy accepts the PEM key file itself, and the public half */
    snprintf(path, sizeof path, "%s/k2.pem", dir);
    tm_policy *p = tm_policy_new();
    TM_CHECK(tm_policy_set(p, "sim_trusted_key", path, err, sizeof err) == 0);
    TM_CHECK(tm_policy_sim_key_trusted(p, h2) == 1);
    tm_policy_free(p);
}

static void cleanup(void)
{
    const char *names[] = {"platform.pem", "module.wasm", "k2.pem", "garbage.pem"};
    char path[400];
    for (size_t i = 0; dir[0] && i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    if (dir[0]) TM_CHECK(rmdir(dir) == 0);
}

TM_TEST_MAIN(TM_CASE(binding_kat), TM_CASE(sim_roundtrip), TM_CASE(sim_debug_and_measure_self),
             TM_CASE(sim_every_bit_and_truncation), TM_CASE(keygen_existing_and_bad), TM_CASE(cleanup))
