/*
 * test_keyatt.c — key-attested evidence below the TLS layer: the
 * KeyAttestedEvidence codec, attestation keys made by providers, appraisal
 * of the +key formats with the cache of appraised platform evidence, the
 * keyring's rotation (no gap; in a worker thread; failures retried), format
 * guessing and description for tmqtt-attest, and the providers' latency_ms
 * knob (sim, and fake Gramine / configfs-tsm trees).
 * (TLS handshakes with +key evidence are in test_atls.c.)
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/evidence.h"
#include "attest/keyatt.h"
#include "attest/keyring.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"

static char g_dir[] = "/tmp/tm-keyatt-XXXXXX";
static char g_key[300], g_policy_text[400];
static const char *MEAS = "4444444444444444444444444444444444444444444444444444444444444444";

static int has(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        return 1;
    fprintf(stderr, "  expected \"%s\" in \"%s\"\n", needle, hay);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        return;
    }
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static tm_provider *sim(const char *extra)
{
    char opts[700], err[300];
    snprintf(opts, sizeof opts, "key=%s,measurement=%s%s%s", g_key, MEAS, extra ? "," : "",
             extra ? extra : "");
    tm_provider *p = tm_provider_open("sim", opts, err, sizeof err);
    if (!p)
        fprintf(stderr, "  sim: %s\n", err);
    return p;
}

static tm_policy *policy(const char *extra)
{
    char text[600], err[300];
    snprintf(text, sizeof text, "%s%s", g_policy_text, extra ? extra : "");
    tm_policy *p = tm_policy_new();
    if (tm_policy_parse(p, text, strlen(text), "test", err, sizeof err) != 0) {
        fprintf(stderr, "  policy: %s\n", err);
        tm_policy_free(p);
        return NULL;
    }
    return p;
}

static void init(void)
{
    if (!mkdtemp(g_dir))
        abort();
    snprintf(g_key, sizeof g_key, "%s/sim.pem", g_dir);
    uint8_t h[32];
    char err[200], hx[65];
    if (tm_sim_keygen(g_key, h, err, sizeof err) < 0)
        abort();
    for (int i = 0; i < 32; i++)
        sprintf(hx + 2 * i, "%02x", h[i]);
    snprintf(g_policy_text, sizeof g_policy_text, "sim_trusted_key %s\nsim_measurement %s\n", hx,
             MEAS);
}

/* ---- codec ------------------------------------------------------------------ */

static void test_codec(void)
{
    uint8_t plat[300], spki[91], sig[70], buf[1024];
    for (size_t i = 0; i < sizeof plat; i++)
        plat[i] = (uint8_t)i;
    memset(spki, 0x5b, sizeof spki);
    memset(sig, 0x3c, sizeof sig);
    tm_keyatt_ev e = {plat, sizeof plat, spki, sizeof spki, 0x0102030405060708ull, sig, sizeof sig};
    size_t need = 0;
    size_t n = tm_keyatt_encode(&e, buf, sizeof buf, &need);
    TM_CHECK_EQ(n, 2 + 300 + 2 + 91 + 8 + 2 + 70);
    TM_CHECK_EQ(need, n);
    TM_CHECK(buf[0] == 0x01 && buf[1] == 0x2c);   /* 300, big-endian */
    TM_CHECK_EQ(tm_keyatt_encode(&e, buf, n - 1, &need), 0);   /* too short: size needed */
    TM_CHECK_EQ(need, n);
    tm_keyatt_ev d;
    char why[200];
    TM_CHECK_EQ(tm_keyatt_decode(buf, n, &d, why, sizeof why), TM_VERIFY_OK);
    TM_CHECK(d.platform == buf + 2 && d.platform_len == 300 && d.spki_len == 91 &&
             d.not_after == 0x0102030405060708ull && d.sig_len == 70 &&
             !memcmp(d.sig, sig, 70));
    /* every truncation and one trailing byte: malformed, never a crash */
    for (size_t k = 0; k < n; k++)
        TM_CHECK_EQ(tm_keyatt_decode(buf, k, &d, why, sizeof why), TM_VERIFY_EMALFORMED);
    buf[n] = 0;
    TM_CHECK_EQ(tm_keyatt_decode(buf, n + 1, &d, why, sizeof why), TM_VERIFY_EMALFORMED);
    TM_CHECK(has(why, "1 trailing bytes after the signature"));
    /* empty fields are not encodable and not decodable */
    tm_keyatt_ev z = e;
    z.sig_len = 0;
    TM_CHECK_EQ(tm_keyatt_encode(&z, buf, sizeof buf, NULL), 0);
    uint8_t empty[] = {0, 0, 0, 1, 0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xbb};
    TM_CHECK_EQ(tm_keyatt_decode(empty, sizeof empty, &d, why, sizeof why), TM_VERIFY_EMALFORMED);
    TM_CHECK(has(why, "platform_evidence does not fit"));
    /* the key binding: SHA-512 over the label with its NUL, the SPKI and the date */
    uint8_t kb[64], want[64], na[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    TM_CHECK_EQ(tm_keyatt_key_binding(spki, sizeof spki, 0x0102030405060708ull, kb), 0);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_DigestInit_ex(m, EVP_sha512(), NULL);
    EVP_DigestUpdate(m, "tmqtt-atls-v2 key\0", 18);
    EVP_DigestUpdate(m, spki, sizeof spki);
    EVP_DigestUpdate(m, na, 8);
    EVP_DigestFinal_ex(m, want, NULL);
    EVP_MD_CTX_free(m);
    TM_CHECK_MEM(kb, want, 64);
    /* format ids and names */
    uint16_t f;
    TM_CHECK(tm_format_from_name("tdx-dcap+key", &f) == 0 && f == TM_FMT_TDX_DCAP_KEY);
    TM_CHECK_EQ(tm_format_platform(TM_FMT_SEV_SNP_KEY), TM_FMT_SEV_SNP);
    TM_CHECK_EQ(tm_format_platform(TM_FMT_SIM), TM_FMT_SIM);
    TM_CHECK(tm_format_is_keyatt(TM_FMT_SIM_KEY) && !tm_format_is_keyatt(TM_FMT_SIM) &&
             !tm_format_is_keyatt(0x0105));
}

/* ---- keys and appraisal ------------------------------------------------------- */

static void test_key_and_verify(void)
{
    tm_provider *p = sim(NULL);
    if (!p) {
        TM_CHECK(0);
        return;
    }
    time_t now = time(NULL);
    char err[300], why[400];
    tm_prov_key *k = tm_provider_key_new(p, TM_FMT_SIM, (uint64_t)now + 600, err, sizeof err);
    TM_CHECK(k != NULL);
    if (!k) {
        fprintf(stderr, "  %s\n", err);
        tm_provider_close(p);
        return;
    }
    TM_CHECK_EQ(tm_prov_key_format(k), TM_FMT_SIM);
    TM_CHECK_EQ(tm_prov_key_not_after(k), (uint64_t)now + 600);
    uint8_t rd[64], other[64], ev[4096];
    memset(rd, 0x42, 64);
    memset(other, 0x43, 64);
    size_t n = 0;
    TM_CHECK_EQ(tm_prov_key_evidence_over(k, rd, ev, sizeof ev, &n, err, sizeof err), TM_PROV_OK);
    TM_CHECK_EQ(tm_prov_key_evidence_over(k, rd, ev, 10, &n, err, sizeof err), TM_PROV_ESPACE);
    TM_CHECK(n > 10);
    TM_CHECK_EQ(tm_prov_key_evidence_over(k, rd, ev, sizeof ev, &n, err, sizeof err), TM_PROV_OK);
    tm_policy *pol = policy(NULL);
    tm_claims c;
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, rd, pol, now, &c, why, sizeof why), TM_VERIFY_OK);
    TM_CHECK(c.key_attested && c.key_not_after == (uint64_t)now + 600 && c.has_sim);
    TM_CHECK(has(c.format_name, "sim+key"));
    /* the platform evidence's report data is the key binding */
    size_t sl;
    const uint8_t *spki = tm_prov_key_spki(k, &sl);
    uint8_t kb[64];
    tm_keyatt_key_binding(spki, sl, (uint64_t)now + 600, kb);
    TM_CHECK_MEM(c.report_data, kb, 64);
    TM_CHECK(tm_keyatt_signature_covers(ev, n, rd) && !tm_keyatt_signature_covers(ev, n, other));
    /* offline (no binding to check): the key and the platform are still appraised */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, NULL, pol, now, &c, why, sizeof why), TM_VERIFY_OK);
    /* another binding: the signature does not cover it */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, other, pol, now, &c, why, sizeof why),
                TM_VERIFY_EBINDING);
    TM_CHECK(has(why, "signature does not cover this handshake's binding value"));
    /* at its end, and after: expired */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, rd, pol, now + 600, &c, why, sizeof why),
                TM_VERIFY_EKEY);
    TM_CHECK(has(why, "attestation key expired at"));
    TM_CHECK(has(tm_verify_strerror(TM_VERIFY_EKEY), "key"));
    /* a policy that allows 300 s: refused now, accepted 301 s before the end */
    tm_policy *strict = policy("max_key_lifetime 300\n");
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, rd, strict, now, &c, why, sizeof why),
                TM_VERIFY_EKEY);
    TM_CHECK(has(why, "600 s after the appraisal time: longer than the policy's max_key_lifetime "
                      "(300 s)"));
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, rd, strict, now + 300, &c, why, sizeof why),
                TM_VERIFY_OK);
    /* the same bytes as a direct format: not a sim report */
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM, ev, n, rd, pol, now, &c, why, sizeof why), TM_VERIFY_EMALFORMED);
    /* a key for a format the provider cannot quote */
    TM_CHECK(tm_provider_key_new(p, TM_FMT_SGX_DCAP, (uint64_t)now + 600, err, sizeof err) == NULL);
    TM_CHECK(has(err, "the sgx-dcap quote binding it failed"));
    TM_CHECK(tm_provider_key_new(p, TM_FMT_SIM_KEY, (uint64_t)now + 600, err, sizeof err) == NULL);
    /* policy warnings and format lines */
    tm_policy *wide = policy("max_key_lifetime 172800\nformat sim+key\n");
    char w[1000];
    TM_CHECK_EQ(tm_policy_warnings(wide, w, sizeof w), 1);
    TM_CHECK(has(w, "max_key_lifetime above 86400"));
    TM_CHECK(tm_policy_format_allowed(wide, TM_FMT_SIM_KEY) &&
             !tm_policy_format_allowed(wide, TM_FMT_SIM));
    tm_policy *bad = tm_policy_new();
    TM_CHECK(tm_policy_set(bad, "max_key_lifetime", "0", why, sizeof why) < 0);
    TM_CHECK(has(why, "expected seconds 1..31536000"));
    TM_CHECK(tm_policy_set(bad, "format", "sim+keys", why, sizeof why) < 0);
    TM_CHECK(has(why, "unknown evidence format 'sim+keys'"));
    tm_policy_free(bad);
    tm_policy_free(wide);
    tm_policy_free(strict);
    tm_policy_free(pol);
    tm_prov_key_free(k);
    tm_provider_close(p);
}

/* The cache skips the platform appraisal for evidence it has seen appraise,
 * under the same policy object and for a short time; the signature, the
 * expiry and the lifetime are checked every time. */
static void test_cache(void)
{
    tm_provider *p = sim(NULL);
    time_t now = time(NULL);
    char err[300], why[400];
    tm_prov_key *k = p ? tm_provider_key_new(p, TM_FMT_SIM, (uint64_t)now + 600, err, sizeof err)
                       : NULL;
    if (!k) {
        TM_CHECK(0);
        tm_provider_close(p);
        return;
    }
    tm_verify_cache *cache = tm_verify_cache_new();
    tm_policy *pol = policy(NULL);
    uint8_t rd1[64], rd2[64], ev1[4096], ev2[4096];
    memset(rd1, 1, 64);
    memset(rd2, 2, 64);
    size_t n1, n2;
    tm_prov_key_evidence_over(k, rd1, ev1, sizeof ev1, &n1, err, sizeof err);
    tm_prov_key_evidence_over(k, rd2, ev2, sizeof ev2, &n2, err, sizeof err);
    tm_claims c;
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev1, n1, rd1, pol, now, &c, why, sizeof why),
                TM_VERIFY_OK);
    TM_CHECK_EQ(tm_verify_cache_hits(cache), 0);
    /* another handshake with the same key: answered from the cache */
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, pol, now + 1, &c, why,
                                 sizeof why), TM_VERIFY_OK);
    TM_CHECK_EQ(tm_verify_cache_hits(cache), 1);
    TM_CHECK(c.key_attested && c.has_sim && c.format == TM_FMT_SIM_KEY && c.appraised_at == now + 1);
    /* the signature is still checked */
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd1, pol, now + 1, &c, why,
                                 sizeof why), TM_VERIFY_EBINDING);
    /* and the expiry, and the lifetime under this policy */
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, pol, now + 700, &c, why,
                                 sizeof why), TM_VERIFY_EKEY);
    /* another policy object: appraised again, and refused when it refuses */
    tm_policy *other = policy(NULL);
    unsigned long h = tm_verify_cache_hits(cache);
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, other, now + 1, &c, why,
                                 sizeof why), TM_VERIFY_OK);
    TM_CHECK_EQ(tm_verify_cache_hits(cache), h);
    tm_policy *refusing = tm_policy_new();
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, refusing, now + 1, &c, why,
                                 sizeof why), TM_VERIFY_EUNTRUSTED);
    /* past the cache's time to live: appraised again (and cached anew) */
    h = tm_verify_cache_hits(cache);
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, pol,
                                 now + TM_VERIFY_CACHE_TTL + 1, &c, why, sizeof why), TM_VERIFY_OK);
    TM_CHECK_EQ(tm_verify_cache_hits(cache), h);
    /* before the time it was cached at: not served either */
    TM_CHECK_EQ(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev2, n2, rd2, other, now - 1, &c, why,
                                 sizeof why), TM_VERIFY_OK);
    TM_CHECK_EQ(tm_verify_cache_hits(cache), h);
    /* refusals are never cached: a tampered platform part is refused each time */
    ev1[10] ^= 1;
    for (int i = 0; i < 2; i++)
        TM_CHECK(tm_verify_cached(cache, TM_FMT_SIM_KEY, ev1, n1, rd1, pol, now, &c, why,
                                  sizeof why) != TM_VERIFY_OK);
    tm_policy_free(refusing);
    tm_policy_free(other);
    tm_policy_free(pol);   /* the cache keeps its own references */
    tm_verify_cache_free(cache);
    tm_prov_key_free(k);
    tm_provider_close(p);
}

static void test_guess_and_describe(void)
{
    tm_provider *p = sim(NULL);
    char err[300];
    tm_prov_key *k = p ? tm_provider_key_new(p, TM_FMT_SIM, 1900000000ull, err, sizeof err) : NULL;
    uint8_t rd[64] = {0}, ev[4096];
    size_t n = 0;
    TM_CHECK(k && tm_prov_key_evidence_over(k, rd, ev, sizeof ev, &n, err, sizeof err) == 0);
    TM_CHECK_EQ(tm_evidence_guess_format(ev, n), TM_FMT_SIM_KEY);
    size_t pl;
    const uint8_t *plat = tm_prov_key_evidence(k, &pl);
    TM_CHECK_EQ(tm_evidence_guess_format(plat, pl), TM_FMT_SIM);
    TM_CHECK_EQ(tm_evidence_guess_format(ev, n - 1), 0);
    char buf[8192];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SIM_KEY, ev, n, buf, sizeof buf), 0);
    TM_CHECK(has(buf, "format: sim+key\n") && has(buf, "key_not_after: 2030-03-17T17:46:40Z") &&
             has(buf, "format: sim\n") && has(buf, MEAS));
    TM_CHECK(tm_evidence_describe(TM_FMT_SIM_KEY, ev, n - 1, buf, sizeof buf) != 0);
    TM_CHECK(has(buf, "key-attested"));
    tm_prov_key_free(k);
    tm_provider_close(p);
}

/* ---- the keyring ----------------------------------------------------------------- */

static void test_keyring_rotation(void)
{
    tm_provider *p = sim(NULL);
    if (!p) {
        TM_CHECK(0);
        return;
    }
    char err[300], note[400];
    const time_t T = 1900000000;
    tm_keyring_opts o = {.provider = p, .format = TM_FMT_SIM, .lifetime_s = 100};
    tm_keyring *r = tm_keyring_new(&o, T, err, sizeof err);
    TM_CHECK(r != NULL);
    if (!r) {
        tm_provider_close(p);
        return;
    }
    TM_CHECK_EQ(tm_keyring_not_after(r), (uint64_t)T + 100);
    TM_CHECK_EQ(tm_keyring_tick(r, T + 50, note, sizeof note), 0);
    /* every second for 1000 s: a usable key at each, a new one every 75 s */
    int adopted = 0;
    for (time_t t = T; t < T + 1000; t++) {
        int x = tm_keyring_tick(r, t, note, sizeof note);
        if (x == 1) {
            adopted++;
            TM_CHECK(has(note, "new sim attestation key"));
            TM_CHECK_EQ(tm_keyring_not_after(r), (uint64_t)t + 100);
        }
        TM_CHECK(x == 0 || x == 1);
        TM_CHECK(tm_keyring_usable(r, t));
    }
    TM_CHECK(adopted >= 12 && adopted <= 14);
    /* its evidence appraises at the time it was made for */
    tm_policy *pol = policy(NULL);
    uint8_t rd[64], ev[4096];
    memset(rd, 7, 64);
    size_t n;
    char why[300];
    time_t t = T + 999;
    TM_CHECK_EQ(tm_keyring_evidence(r, t, rd, ev, sizeof ev, &n, err, sizeof err), TM_PROV_OK);
    tm_claims c;
    TM_CHECK_EQ(tm_verify(TM_FMT_SIM_KEY, ev, n, rd, pol, t, &c, why, sizeof why), TM_VERIFY_OK);
    /* without ticks the key runs out: no evidence instead of expired evidence */
    TM_CHECK(!tm_keyring_usable(r, t + 200));
    TM_CHECK_EQ(tm_keyring_evidence(r, t + 200, rd, ev, sizeof ev, &n, err, sizeof err),
                TM_PROV_EFORMAT);
    TM_CHECK(has(err, "no valid attestation key"));
    tm_policy_free(pol);
    tm_keyring_free(r);
    tm_provider_close(p);
}

/* With a worker the rotation's quote is made in a thread holding the
 * provider; the owner's tick only starts it and adopts the result. */
static void test_keyring_worker(void)
{
    tm_provider *p = sim("latency_ms=150");
    if (!p) {
        TM_CHECK(0);
        return;
    }
    char err[300], note[400];
    time_t now = time(NULL);
    tm_keyring_opts o = {.provider = p, .format = TM_FMT_SIM, .lifetime_s = 100, .worker = true};
    tm_keyring *r = tm_keyring_new(&o, now, err, sizeof err);
    TM_CHECK(r != NULL);
    if (!r) {
        tm_provider_close(p);
        return;
    }
    uint64_t first = tm_keyring_not_after(r);
    int64_t t0 = mono_ms();
    /* 2: started, not made here (a rotation made here returns 1) */
    TM_CHECK_EQ(tm_keyring_tick(r, now + 80, note, sizeof note), 2);
    TM_CHECK(tm_keyring_busy(r) && tm_provider_lent(p));
    TM_CHECK_EQ(tm_provider_lend(p), 0);      /* nobody else gets it meanwhile */
    TM_CHECK(tm_keyring_usable(r, now + 80)); /* the old key serves meanwhile */
    TM_CHECK_EQ(tm_keyring_not_after(r), first);
    int x = 0;
    while ((x = tm_keyring_tick(r, now + 80, note, sizeof note)) == 0 && mono_ms() - t0 < 10000) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);   /* pacing only */
    }
    TM_CHECK_EQ(x, 1);
    TM_CHECK(mono_ms() - t0 >= 150);
    TM_CHECK(!tm_keyring_busy(r) && !tm_provider_lent(p));
    TM_CHECK_EQ(tm_keyring_not_after(r), (uint64_t)now + 180);
    /* freeing while a rotation runs waits for it */
    TM_CHECK_EQ(tm_keyring_tick(r, now + 160, note, sizeof note), 2);
    tm_keyring_free(r);
    TM_CHECK(!tm_provider_lent(p));
    tm_provider_close(p);
}

/* A rotation that fails is retried later; the old key serves until its end. */
static void test_keyring_failure(void)
{
    char root[300];
    snprintf(root, sizeof root, "%s/tsm", g_dir);
    char entry[400];
    snprintf(entry, sizeof entry, "%s/fixed", root);
    TM_CHECK(mkdir(root, 0700) == 0 && mkdir(entry, 0700) == 0);
    size_t qlen;
    unsigned char *quote = ta_data("tdx/quote.bin", &qlen);
    if (!quote) {
        TM_CHECK(0);
        return;
    }
    put(entry, "inblob", "", 0);
    put(entry, "outblob", quote, qlen);
    put(entry, "provider", "tdx_guest\n", 10);
    put(entry, "generation", "1\n", 2);
    char opts[600], err[300], note[500];
    snprintf(opts, sizeof opts, "root=%s,entry=fixed", root);
    tm_provider *p = tm_provider_open("tsm", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    const time_t T = 1900000000;
    tm_keyring_opts o = {.provider = p, .format = TM_FMT_TDX_DCAP, .lifetime_s = 400};
    tm_keyring *r = p ? tm_keyring_new(&o, T, err, sizeof err) : NULL;
    TM_CHECK(r != NULL);
    if (r) {
        char path[500];
        snprintf(path, sizeof path, "%s/outblob", entry);
        unlink(path);   /* the TEE interface breaks */
        TM_CHECK_EQ(tm_keyring_tick(r, T + 300, note, sizeof note), -1);
        TM_CHECK(has(note, "attestation key rotation failed (retrying; the current key ends "
                           "2030-03-17T17:53:20Z)"));
        TM_CHECK(has(note, "outblob"));
        TM_CHECK_EQ(tm_keyring_tick(r, T + 301, note, sizeof note), 0);    /* backing off */
        TM_CHECK_EQ(tm_keyring_tick(r, T + 350, note, sizeof note), -1);   /* retried */
        TM_CHECK(tm_keyring_usable(r, T + 350));
        put(entry, "outblob", quote, qlen);                                 /* repaired */
        TM_CHECK_EQ(tm_keyring_tick(r, T + 400, note, sizeof note), 1);
        TM_CHECK_EQ(tm_keyring_not_after(r), (uint64_t)T + 800);
    }
    tm_keyring_free(r);
    tm_provider_close(p);
    const char *files[] = {"inblob", "outblob", "provider", "generation"};
    for (int i = 0; i < 4; i++) {
        char path[500];
        snprintf(path, sizeof path, "%s/%s", entry, files[i]);
        unlink(path);
    }
    rmdir(entry);
    rmdir(root);
    free(quote);
}

/* ---- latency_ms: a quoting path that takes time ---------------------------------- */

static int64_t collect_ms(tm_provider *p, uint16_t fmt)
{
    uint8_t rd[64] = {0}, out[16384];
    size_t n;
    char err[300];
    int64_t t0 = mono_ms();
    int rc = tm_provider_collect(p, fmt, rd, out, sizeof out, &n, err, sizeof err);
    if (rc) {
        fprintf(stderr, "  collect: %s\n", err);
        return -1;
    }
    return mono_ms() - t0;
}

static void test_latency(void)
{
    tm_provider *p = sim("latency_ms=60");
    TM_CHECK(p != NULL);
    if (p)
        TM_CHECK(collect_ms(p, TM_FMT_SIM) >= 60);
    tm_provider_close(p);
    /* fake Gramine tree */
    char root[300], err[300], opts[600];
    size_t qlen = 0;
    unsigned char *quote = ta_data("sgx/quote.bin", &qlen);
    snprintf(root, sizeof root, "%s/gramine", g_dir);
    TM_CHECK(quote && mkdir(root, 0700) == 0);
    put(root, "user_report_data", "", 0);
    put(root, "quote", quote, qlen);
    snprintf(opts, sizeof opts, "root=%s,latency_ms=40", root);
    p = tm_provider_open("gramine", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    if (p)
        TM_CHECK(collect_ms(p, TM_FMT_SGX_DCAP) >= 40);
    tm_provider_close(p);
    char path[800];
    snprintf(path, sizeof path, "%s/quote", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/user_report_data", root);
    unlink(path);
    rmdir(root);
    free(quote);
    /* fake configfs-tsm tree */
    quote = ta_data("tdx/quote.bin", &qlen);
    char entry[400];
    snprintf(root, sizeof root, "%s/tsm2", g_dir);
    snprintf(entry, sizeof entry, "%s/fixed", root);
    TM_CHECK(quote && mkdir(root, 0700) == 0 && mkdir(entry, 0700) == 0);
    put(entry, "inblob", "", 0);
    put(entry, "outblob", quote, qlen);
    put(entry, "provider", "tdx_guest\n", 10);
    put(entry, "generation", "1\n", 2);
    snprintf(opts, sizeof opts, "root=%s,entry=fixed,latency_ms=40", root);
    p = tm_provider_open("tsm", opts, err, sizeof err);
    TM_CHECK(p != NULL);
    if (p)
        TM_CHECK(collect_ms(p, TM_FMT_TDX_DCAP) >= 40);
    tm_provider_close(p);
    const char *files[] = {"inblob", "outblob", "provider", "generation"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", entry, files[i]);
        unlink(path);
    }
    rmdir(entry);
    rmdir(root);
    free(quote);
    /* bad values, and the none provider has no quoting path to slow down */
    const char *bad[] = {"latency_ms=abc", "latency_ms=-1", "latency_ms=60001", "latency_ms="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        TM_CHECK(sim(bad[i]) == NULL);
    }
    snprintf(opts, sizeof opts, "key=%s,measurement=%s,latency_ms=x", g_key, MEAS);
    TM_CHECK(tm_provider_open("sim", opts, err, sizeof err) == NULL);
    TM_CHECK(has(err, "sim: latency_ms must be 0..60000 (milliseconds)"));
    TM_CHECK(tm_provider_open("none", "latency_ms=5", err, sizeof err) == NULL);
    TM_CHECK(has(err, "unknown option 'latency_ms'"));
}

static void cleanup(void)
{
    unlink(g_key);
    rmdir(g_dir);
}

TM_TEST_MAIN(TM_CASE(init), TM_CASE(test_codec), TM_CASE(test_key_and_verify), TM_CASE(test_cache),
             TM_CASE(test_guess_and_describe), TM_CASE(test_keyring_rotation),
             TM_CASE(test_keyring_worker), TM_CASE(test_keyring_failure), TM_CASE(test_latency),
             TM_CASE(cleanup))
