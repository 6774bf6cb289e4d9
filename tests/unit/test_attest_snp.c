/*
 * test_attest_snp.c — SEV-SNP appraisal against the real Milan report, VCEK
 * and AMD certificates in shared/testdata/snp: the expected outcome of its
 * README, the certificate table (configfs-tsm auxblob) parser, the VCEK
 * cache, and every tampered variant refused with the reason of the check
 * that catches it (signed part, signature, VCEK, foreign roots, TCB and
 * CHIP_ID mismatches, time, truncation, policy pins).
 */
#include "tm_test.h"
#include "test_attest_util.h"

#include <sys/stat.h>
#include <unistd.h>
#include "attest/policy.h"
#include "attest/verify.h"

#define MEAS "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
#define PIN "snp_measurement " MEAS "\n"

static unsigned char *rep, *vcek, *ask_m, *ark_m, *ask_g, *ark_g, *ask_t, *ark_t;
static size_t rep_len, vcek_len, ask_m_len, ark_m_len, ask_g_len, ark_g_len, ask_t_len, ark_t_len;
static time_t june;

static void load(void)
{
    if (rep) return;
    rep = ta_data("snp/report_milan.bin", &rep_len);
    vcek = ta_data("snp/vcek_milan.der", &vcek_len);
    ask_m = ta_pem_der("snp/ask_ark_milan.pem", 0, &ask_m_len);
    ark_m = ta_pem_der("snp/ask_ark_milan.pem", 1, &ark_m_len);
    ask_g = ta_pem_der("snp/ask_ark_genoa.pem", 0, &ask_g_len);
    ark_g = ta_pem_der("snp/ask_ark_genoa.pem", 1, &ark_g_len);
    ask_t = ta_pem_der("snp/ask_ark_turin.pem", 0, &ask_t_len);
    ark_t = ta_pem_der("snp/ask_ark_turin.pem", 1, &ark_t_len);
    june = ta_time(2025, 6, 20);
}

static int ready(void)
{
    load();
    int ok = rep && rep_len == 0x4A0 && vcek && ask_m && ark_m && ask_g && ark_g && ask_t && ark_t;
    TM_CHECK(ok);
    return ok;
}

/* A policy from text, plus the real VCEK in its cache when `with_vcek`. */
static tm_policy *pol(const char *text, int with_vcek)
{
    tm_policy *p = tm_policy_new();
    char err[512];
    if (text && tm_policy_parse(p, text, strlen(text), "test", err, sizeof err)) {
        fprintf(stderr, "  policy: %s\n", err);
        TM_CHECK(0);
    }
    if (with_vcek) TM_CHECK(tm_policy_add_snp_vcek(p, vcek, vcek_len, err, sizeof err) == 0);
    return p;
}

static int verify(const unsigned char *ev, size_t n, const tm_policy *p, time_t at, tm_claims *c, char *r,
                  size_t cap)
{
    int rc = tm_verify(TM_FMT_SEV_SNP, ev, n, NULL, p, at, c, r, cap);
    return rc;
}

/* report || table of the given certificates. */
static unsigned char *with_table(const unsigned char *report, const ta_cert *certs, int n, size_t pad, size_t *len)
{
    size_t tl;
    unsigned char *t = ta_snp_table(certs, n, pad, &tl);
    unsigned char *e = t ? ta_concat(report, 0x4A0, t, tl, len) : NULL;
    free(t);
    return e;
}

static void readme_outcome(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 1);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(verify(rep, rep_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(ta_has(r, "ok"));
    TM_CHECK(c.has_snp && !strcmp(c.format_name, "sev-snp") && !strcmp(c.snp_product, "Milan"));
    TM_CHECK(c.snp_version == 2 && c.guest_svn == 0 && c.snp_policy == 0x30000 && c.vmpl == 0 && !c.debug);
    TM_CHECK(c.reported_tcb.bootloader == 3 && c.reported_tcb.tee == 0 && c.reported_tcb.snp == 8 &&
             c.reported_tcb.microcode == 0x73 && !c.reported_tcb.has_fmc);
    TM_CHECK(c.reported_tcb_raw == 0x7308000000000003ULL);
    static const unsigned char chip[8] = {0xd4, 0x95, 0x54, 0xec, 0x71, 0x7f, 0x4e, 0x5b};
    TM_CHECK_MEM(c.chip_id, chip, 8);
    TM_CHECK(c.measurement_len == 48 && c.snp_measurement[0] == 0x7a && c.snp_measurement[47] == 0x1f);
    TM_CHECK(c.snp_signing_key == 0 && !strcmp(c.tcb_status, "n/a") && !c.any_measurement_allowed);
    char buf[4096];
    tm_claims_text(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "reported_tcb: 0x7308000000000003 (bootloader=3,tee=0,snp=8,microcode=115)"));
    TM_CHECK(ta_has(buf, "chip_id: d49554ec717f4e5b"));
    TM_CHECK(ta_has(buf, "snp_product: Milan"));
    tm_claims_json(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "\"host_data\":\"0000"));
    TM_CHECK(ta_has(buf, "\"guest_policy\":\"0000000000030000\""));
    TM_CHECK(ta_has(buf, "\"reported_tcb\":{\"raw\":\"7308000000000003\",\"bootloader\":3"));
    /* the VCEK is valid until 2030: today too */
    TM_CHECK_EQ(verify(rep, rep_len, p, time(NULL), &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(p);
    /* the real REPORT_DATA as the binding, then another */
    p = pol(PIN, 1);
    unsigned char rd[64];
    memcpy(rd, rep + 0x50, 64);
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, rep, rep_len, rd, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    rd[5] ^= 1;
    TM_CHECK_EQ(tm_verify(TM_FMT_SEV_SNP, rep, rep_len, rd, p, june, &c, r, sizeof r), TM_VERIFY_EBINDING);
    TM_CHECK(ta_has(r, "report_data does not match the session binding"));
    tm_policy_free(p);
}

static void certificate_table(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 0);
    tm_claims c;
    char r[512];
    size_t n = 0;
    /* full chain in the table */
    ta_cert full[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_m, ask_m_len}, {TA_GUID_ARK, ark_m, ark_m_len}};
    unsigned char *ev = with_table(rep, full, 3, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK_EQ(tm_evidence_guess_format(ev, n), TM_FMT_SEV_SNP);
    char desc[8192];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SEV_SNP, ev, n, desc, sizeof desc), 0);
    TM_CHECK(ta_has(desc, "certificate_table: 3 entries"));
    TM_CHECK(ta_has(desc, "certificate[VCEK]: 'SEV-VCEK'"));
    TM_CHECK(ta_has(desc, "certificate[ARK]: 'ARK-Milan'"));
    free(ev);
    /* VCEK only: the built-in ASK and ARK of its product complete the chain */
    ev = with_table(rep, full, 1, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    free(ev);
    /* zero padding after the certificates (page-sized auxblobs) is fine */
    ev = with_table(rep, full, 3, 4096, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    /* ... non-zero bytes there are not */
    ev[n - 100] = 1;
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "non-zero bytes in the certificate table outside its certificates"));
    free(ev);
    /* an unknown GUID is skipped */
    static const unsigned char other[16] = {1, 2, 3};
    ta_cert unk[] = {{other, ask_g, ask_g_len}, {TA_GUID_VCEK, vcek, vcek_len}};
    ev = with_table(rep, unk, 2, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    free(ev);
    /* the same GUID twice */
    ta_cert dup[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_VCEK, vcek, vcek_len}};
    ev = with_table(rep, dup, 2, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "certificate table has two VCEK entries"));
    free(ev);
    /* an entry pointing into the entry array, or past the end; overlapping entries */
    ev = with_table(rep, full, 2, 0, &n);
    unsigned char *e0 = ev + 0x4A0;
    unsigned char save[4];
    memcpy(save, e0 + 16, 4);
    memset(e0 + 16, 0, 4);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "certificate table entry 0"));
    memcpy(e0 + 16, save, 4);
    e0[23] = 0x10; /* length of entry 0: 256 MiB */
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "lies outside"));
    e0[23] = 0;
    memcpy(e0 + 24 + 16, e0 + 16, 4); /* entry 1 at entry 0's offset */
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "entries overlap"));
    free(ev);
    /* no terminator within 64 entries */
    size_t big = 0x4A0 + 65 * 24 + 24;
    ev = calloc(1, big);
    memcpy(ev, rep, 0x4A0);
    for (int i = 0; i < 65; i++) ev[0x4A0 + i * 24] = 7;
    TM_CHECK_EQ(verify(ev, big, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "more than 64 entries"));
    TM_CHECK_EQ(verify(ev, 0x4A0 + 30, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(r, "certificate table truncated"));
    free(ev);
    /* a VCEK entry that is not a certificate */
    ta_cert junk[] = {{TA_GUID_VCEK, (const unsigned char *)"not a certificate", 17}};
    ev = with_table(rep, junk, 1, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "the certificate table's VCEK is not a DER certificate"));
    free(ev);
    tm_policy_free(p);
}

static void vcek_sources(void)
{
    if (!ready()) return;
    tm_claims c;
    char r[512];
    /* none anywhere */
    tm_policy *p = pol(PIN, 0);
    TM_CHECK_EQ(verify(rep, rep_len, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "no VCEK for CHIP_ID d49554ec717f4e5b"));
    tm_policy_free(p);
    /* snp_vcek_dir: found by its hwID, whatever the file name; snp_vcek FILE */
    char dir[] = "/tmp/tm-attest-snp-XXXXXX";
    TM_CHECK(mkdtemp(dir) != NULL);
    TM_CHECK(ta_write(dir, "any-name.der", vcek, vcek_len) == 0);
    TM_CHECK(ta_write(dir, "README", "ignored", 7) == 0);
    char text[1200];
    snprintf(text, sizeof text, PIN "snp_vcek_dir %s\n", dir);
    p = pol(text, 0);
    TM_CHECK_EQ(tm_policy_snp_vcek_count(p), 1);
    TM_CHECK_EQ(verify(rep, rep_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(p);
    snprintf(text, sizeof text, PIN "snp_vcek %s/any-name.der\n", dir);
    p = pol(text, 0);
    TM_CHECK_EQ(verify(rep, rep_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    tm_policy_free(p);
    /* a non-certificate in the directory is an error when loading */
    TM_CHECK(ta_write(dir, "bad.pem", "junk", 4) == 0);
    snprintf(text, sizeof text, "snp_vcek_dir %s\n", dir);
    p = tm_policy_new();
    char err[1024];
    TM_CHECK(tm_policy_parse(p, text, strlen(text), "p", err, sizeof err) != 0);
    TM_CHECK(ta_has(err, "bad.pem: not an X.509 certificate"));
    tm_policy_free(p);
    char path[1100];
    const char *names[] = {"any-name.der", "README", "bad.pem"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* One flipped bit anywhere in the report (signed part, signature, reserved
 * bytes) is refused, and the reasons name the check. */
static void tamper_report(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 1);
    tm_claims c;
    char r[512];
    unsigned char t[0x4A0];
    int accepted = 0;
    for (size_t off = 0; off < 0x4A0; off++) {
        memcpy(t, rep, 0x4A0);
        t[off] ^= (unsigned char)(1u << (off % 8));
        if (verify(t, 0x4A0, p, june, &c, r, sizeof r) == TM_VERIFY_OK) {
            fprintf(stderr, "  flip at 0x%zx accepted\n", off);
            accepted++;
        }
    }
    TM_CHECK_EQ(accepted, 0);
    struct { size_t off; unsigned char x; int rc; const char *why; } cases[] = {
        {0x00, 4, TM_VERIFY_EMALFORMED, "unsupported report version 6 (2..5)"},
        {0x00, 3, TM_VERIFY_EMALFORMED, "unsupported report version 1 (2..5)"},
        {0x00, 1, TM_VERIFY_ESIGNATURE, "report signature does not verify"}, /* version 3: signed */
        {0x34, 1, TM_VERIFY_EMALFORMED, "signature algorithm 0, expected 1 (ECDSA P-384 with SHA-384)"},
        {0x90, 1, TM_VERIFY_ESIGNATURE, "report signature does not verify with the VCEK key"}, /* MEASUREMENT */
        {0x0C, 1, TM_VERIFY_ESIGNATURE, "report signature does not verify"},                   /* guest policy */
        {0x2A0, 1, TM_VERIFY_ESIGNATURE, "report signature does not verify"},                  /* r */
        {0x2E8, 1, TM_VERIFY_ESIGNATURE, "report signature does not verify"},                  /* s */
        {0x2A0 + 60, 1, TM_VERIFY_EMALFORMED, "unused part of the signature field"},            /* r padding */
        {0x400, 1, TM_VERIFY_EMALFORMED, "unused part of the signature field"},
        {0x1A0, 1, TM_VERIFY_ECHAIN, "no VCEK for CHIP_ID d59554ec717f4e5b"}, /* cache has no such chip */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(t, rep, 0x4A0);
        t[cases[i].off] ^= cases[i].x;
        int rc = verify(t, 0x4A0, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case 0x%zx: %d %s\n", cases[i].off, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
    }
    tm_policy_free(p);
    /* With the VCEK in the table, a changed CHIP_ID is a hwID mismatch and a
     * changed REPORTED_TCB a TCB mismatch — caught before the signature. */
    p = pol(PIN, 0);
    ta_cert one[] = {{TA_GUID_VCEK, vcek, vcek_len}};
    size_t n = 0;
    unsigned char *ev = with_table(rep, one, 1, 0, &n);
    ev[0x1A0] ^= 1;
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "VCEK hwID d49554ec717f4e5b... differs from the report's CHIP_ID d59554ec717f4e5b..."));
    ev[0x1A0] ^= 1;
    ev[0x186] = 9; /* REPORTED_TCB.SNP 8 -> 9 */
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "VCEK TCB (bootloader=3,tee=0,snp=8,microcode=115) differs from the report's "
                       "REPORTED_TCB (bootloader=3,tee=0,snp=9,microcode=115)"));
    ev[0x186] = 8;
    ev[0x187] = 0x74; /* microcode */
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "microcode=116)"));
    ev[0x187] = 0x73;
    /* SIGNING_KEY: VLEK (none in the evidence), then "none" */
    ev[0x48] = 1 << 2;
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "the report is signed by a VLEK, and the evidence carries none"));
    ta_cert vl[] = {{TA_GUID_VLEK, vcek, vcek_len}};
    unsigned char *ev2 = with_table(ev, vl, 1, 0, &n);
    TM_CHECK_EQ(verify(ev2, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "VLEK without its signing key (ASVK)"));
    free(ev2);
    ev[0x48] = 7 << 2;
    TM_CHECK_EQ(verify(ev, 0x4A0, p, june, &c, r, sizeof r), TM_VERIFY_ESIGNATURE);
    TM_CHECK(ta_has(r, "the report names no signing key (SIGNING_KEY 7"));
    free(ev);
    tm_policy_free(p);
}

/* Flipped bits in the VCEK (in the table) never pass. */
static void tamper_vcek(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 0);
    tm_claims c;
    char r[512];
    unsigned char *v = malloc(vcek_len);
    int accepted = 0, sig = 0;
    for (size_t off = 0; off < vcek_len; off += 7) {
        memcpy(v, vcek, vcek_len);
        v[off] ^= 0x04;
        ta_cert one[] = {{TA_GUID_VCEK, v, vcek_len}};
        size_t n = 0;
        unsigned char *ev = with_table(rep, one, 1, 0, &n);
        int rc = verify(ev, n, p, june, &c, r, sizeof r);
        if (rc == TM_VERIFY_OK) {
            fprintf(stderr, "  VCEK flip at %zu accepted\n", off);
            accepted++;
        }
        if (strstr(r, "signature of VCEK 'SEV-VCEK' does not verify with 'SEV-Milan'")) sig++;
        free(ev);
    }
    TM_CHECK_EQ(accepted, 0);
    TM_CHECK(sig > 0);
    free(v);
    tm_policy_free(p);
}

static void foreign_roots(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 0);
    tm_claims c;
    char r[512];
    struct { ta_cert certs[3]; int n; const char *why; } cases[] = {
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_g, ask_g_len}, {TA_GUID_ARK, ark_g, ark_g_len}}, 3,
         "root 'ARK-Genoa' is not the pinned ARK-Milan key"},
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_t, ask_t_len}, {TA_GUID_ARK, ark_t, ark_t_len}}, 3,
         "root 'ARK-Turin' is not the pinned ARK-Milan key"},
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_m, ask_m_len}, {TA_GUID_ARK, ark_g, ark_g_len}}, 3,
         "root 'ARK-Genoa' is not the pinned ARK-Milan key"},
        /* Genoa's ASK with Milan's (built-in) root */
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_g, ask_g_len}}, 2,
         "ASK 'SEV-Genoa' is not issued by 'ARK-Milan'"},
        /* the ARK in the ASK's place */
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ark_m, ark_m_len}}, 2,
         "VCEK 'SEV-VCEK' is not issued by 'ARK-Milan'"},
        /* the ASK in the ARK's place */
        {{{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ARK, ask_m, ask_m_len}}, 2,
         "root 'SEV-Milan' is not the pinned ARK-Milan key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        unsigned char *ev = with_table(rep, cases[i].certs, cases[i].n, 0, &n);
        int rc = verify(ev, n, p, june, &c, r, sizeof r);
        if (rc != TM_VERIFY_ECHAIN) fprintf(stderr, "  case %zu: %d %s\n", i, rc, r);
        TM_CHECK_EQ(rc, TM_VERIFY_ECHAIN);
        TM_CHECK(ta_has(r, cases[i].why));
        free(ev);
    }
    /* ASK / ARK entries that are not certificates */
    ta_cert junk_ask[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, (const unsigned char *)"junk", 4}};
    ta_cert junk_ark[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ARK, (const unsigned char *)"junk", 4}};
    size_t n = 0;
    unsigned char *ev = with_table(rep, junk_ask, 2, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "the certificate table's ASK is not a DER certificate"));
    free(ev);
    ev = with_table(rep, junk_ark, 2, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "the certificate table's ARK is not a DER certificate"));
    free(ev);
    /* Milan's ARK with its key (the pin matches) but a broken self-signature */
    unsigned char *ark = malloc(ark_m_len);
    memcpy(ark, ark_m, ark_m_len);
    ark[ark_m_len - 10] ^= 1; /* inside the signature value */
    ta_cert badark[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ARK, ark, ark_m_len}};
    ev = with_table(rep, badark, 2, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "ARK-Milan is not self-signed with RSA-PSS by the pinned key"));
    free(ev);
    free(ark);
    /* a VCEK naming a product without a pinned root (read before the chain) */
    unsigned char *v = malloc(vcek_len);
    memcpy(v, vcek, vcek_len);
    unsigned char *m = memmem(v, vcek_len, "Milan-B0", 8);
    TM_CHECK(m != NULL);
    if (m) m[0] = 'N';
    ta_cert other[] = {{TA_GUID_VCEK, v, vcek_len}};
    ev = with_table(rep, other, 1, 0, &n);
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "VCEK product 'Nilan-B0' has no pinned AMD root (Milan, Genoa, Turin)"));
    free(ev);
    free(v);
    tm_policy_free(p);
}

static void wrong_time(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 1);
    tm_claims c;
    char r[512];
    TM_CHECK_EQ(verify(rep, rep_len, p, ta_time(2023, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "sev-snp: VCEK 'SEV-VCEK' is not valid at 2023-01-01T00:00:00Z (valid 2023-04-03T19:23:43Z to "
                       "2030-04-03T19:23:43Z)"));
    TM_CHECK_EQ(verify(rep, rep_len, p, ta_time(2031, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "VCEK 'SEV-VCEK' is not valid at 2031-01-01"));
    TM_CHECK_EQ(verify(rep, rep_len, p, ta_time(2046, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "ARK 'ARK-Milan' is not valid at 2046-01-01"));
    TM_CHECK_EQ(verify(rep, rep_len, p, ta_time(2019, 1, 1), &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "ARK 'ARK-Milan' is not valid at 2019-01-01"));
    /* between the ARK's and the ASK's notBefore (2020-10-22 17:23:05 / 18:24:20) */
    TM_CHECK_EQ(verify(rep, rep_len, p, ta_time(2020, 10, 22) + 18 * 3600, &c, r, sizeof r), TM_VERIFY_ECHAIN);
    TM_CHECK(ta_has(r, "ASK 'SEV-Milan' is not valid at 2020-10-22T18:00:00Z"));
    tm_policy_free(p);
}

static void truncations(void)
{
    if (!ready()) return;
    tm_policy *p = pol(PIN, 0);
    tm_claims c;
    char r[512];
    for (size_t n = 0; n < 0x4A0; n += 13) {
        TM_CHECK_EQ(verify(rep, n, p, june, &c, r, sizeof r), TM_VERIFY_EMALFORMED);
        TM_CHECK(n == 0 || strstr(r, "report truncated"));
    }
    ta_cert full[] = {{TA_GUID_VCEK, vcek, vcek_len}, {TA_GUID_ASK, ask_m, ask_m_len}, {TA_GUID_ARK, ark_m, ark_m_len}};
    size_t n = 0;
    unsigned char *ev = with_table(rep, full, 3, 0, &n);
    for (size_t k = 0x4A0 + 1; k < n; k += (k < 0x4A0 + 200 ? 1 : 61)) {
        int rc = verify(ev, k, p, june, &c, r, sizeof r);
        if (rc != TM_VERIFY_EMALFORMED) fprintf(stderr, "  truncated to %zu: %d %s\n", k, rc, r);
        TM_CHECK_EQ(rc, TM_VERIFY_EMALFORMED);
    }
    TM_CHECK_EQ(verify(ev, n, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    free(ev);
    tm_policy_free(p);
}

static void policy_rules(void)
{
    if (!ready()) return;
    tm_claims c;
    char r[512];
    static const char zero96[] = "000000000000000000000000000000000000000000000000"
                                 "000000000000000000000000000000000000000000000000";
    char idpin[200], authpin[200], hostpin[200], chip[300];
    snprintf(idpin, sizeof idpin, "snp_id_key_digest %s\n", zero96);
    snprintf(authpin, sizeof authpin, "snp_author_key_digest %s\n", zero96);
    snprintf(hostpin, sizeof hostpin, PIN "snp_host_data %.64s\n", zero96);
    snprintf(chip, sizeof chip, PIN "snp_chip_id d49554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc"
                                    "15d7af38db757039029f0efacfd08e244324884738c72b082e2f87a44d541eb6\n");
    struct { const char *text; int rc; const char *why; } cases[] = {
        {PIN, TM_VERIFY_OK, "ok"},
        {"", TM_VERIFY_EPOLICY, "policy: no measurement pinned for sev-snp evidence (pin one of: snp_measurement, "
                                "snp_id_key_digest, snp_author_key_digest; or say allow_any_measurement true)"},
        {"snp_measurement " MEAS "0\n", -1, "snp_measurement: expected 96 hex digits"},
        {"snp_measurement 0a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480"
         "cd81841f\n", TM_VERIFY_EPOLICY, "policy: MEASUREMENT 7a1e5c26"},
        {"allow_any_measurement true\n", TM_VERIFY_OK, "ok"},
        /* HOST_DATA is chosen by the host: not a measurement */
        {"snp_host_data 0000000000000000000000000000000000000000000000000000000000000000\n", TM_VERIFY_EPOLICY,
         "no measurement pinned for sev-snp"},
        {hostpin, TM_VERIFY_OK, "ok"},
        {PIN "snp_host_data 0100000000000000000000000000000000000000000000000000000000000000\n", TM_VERIFY_EPOLICY,
         "policy: HOST_DATA 0000"},
        {idpin, TM_VERIFY_OK, "ok"},
        {authpin, TM_VERIFY_OK, "ok"},
        {PIN "snp_min_guest_svn 1\n", TM_VERIFY_EPOLICY, "policy: SEV-SNP GUEST_SVN 0 below the minimum 1"},
        {PIN "snp_min_tcb bootloader=3,tee=0,snp=8,microcode=115\n", TM_VERIFY_OK, "ok"},
        {PIN "snp_min_tcb snp=9\n", TM_VERIFY_EPOLICY, "REPORTED_TCB snp SPL 8 below the minimum 9 (snp_min_tcb)"},
        {PIN "snp_min_tcb microcode=116\n", TM_VERIFY_EPOLICY, "REPORTED_TCB microcode SPL 115 below the minimum 116"},
        {PIN "snp_min_tcb bootloader=4\n", TM_VERIFY_EPOLICY, "REPORTED_TCB bootloader SPL 3 below the minimum 4"},
        {PIN "snp_allow_smt false\n", TM_VERIFY_EPOLICY, "guest policy allows SMT, refused (snp_allow_smt false)"},
        {chip, TM_VERIFY_OK, "ok"},
        {PIN "snp_chip_id 049554ec717f4e5b0fe6b143bcf0405bd7ae304727edf46603f2a76aef6a3abc15d7af38db757039029f0efa"
             "cfd08e244324884738c72b082e2f87a44d541eb6\n",
         TM_VERIFY_EPOLICY, "policy: platform CHIP_ID d49554ec717f4e5b"},
        {PIN "format sgx-dcap\n", TM_VERIFY_EFORMAT, "evidence format sev-snp is not accepted by policy"},
        {"mrenclave 33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\n", TM_VERIFY_EPOLICY,
         "no measurement pinned for sev-snp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_policy *p = tm_policy_new();
        char err[512];
        int prc = tm_policy_parse(p, cases[i].text, strlen(cases[i].text), "t", err, sizeof err);
        if (cases[i].rc < 0) {
            TM_CHECK(prc != 0 && ta_has(err, cases[i].why));
            tm_policy_free(p);
            continue;
        }
        TM_CHECK(prc == 0);
        TM_CHECK(tm_policy_add_snp_vcek(p, vcek, vcek_len, err, sizeof err) == 0);
        int rc = verify(rep, rep_len, p, june, &c, r, sizeof r);
        if (rc != cases[i].rc) fprintf(stderr, "  case %zu: %d %s\n", i, rc, r);
        TM_CHECK_EQ(rc, cases[i].rc);
        TM_CHECK(ta_has(r, cases[i].why));
        tm_policy_free(p);
    }
    /* allow_any_measurement: accepted, and the claims say so */
    tm_policy *p = pol("allow_any_measurement true\n", 1);
    TM_CHECK_EQ(verify(rep, rep_len, p, june, &c, r, sizeof r), TM_VERIFY_OK);
    TM_CHECK(c.any_measurement_allowed == 1);
    char buf[4096];
    tm_claims_text(&c, buf, sizeof buf);
    TM_CHECK(ta_has(buf, "warning: no measurement pinned (allow_any_measurement)"));
    TM_CHECK(tm_policy_warnings(p, buf, sizeof buf) == 1 && ta_has(buf, "allow_any_measurement true"));
    tm_policy_free(p);
}

/* Claims carrying the pinned measurement (for rules the real report does not
 * exercise: VMPL, guest policy bits, FMC). */
static int hex_ok(tm_claims *k)
{
    static const char m[] = MEAS;
    for (int i = 0; i < 48; i++) {
        unsigned v;
        if (sscanf(m + 2 * i, "%2x", &v) != 1) return 0;
        k->snp_measurement[i] = (unsigned char)v;
    }
    return 1;
}

static void policy_bits_on_claims(void)
{
    load();
    tm_policy *p = pol(PIN, 0);
    tm_claims k;
    char r[512];
    memset(&k, 0, sizeof k);
    k.has_snp = 1;
    snprintf(k.format_name, sizeof k.format_name, "sev-snp");
    TM_CHECK(hex_ok(&k));
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) == 0);
    k.vmpl = 2;
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "report requested at VMPL 2, the policy accepts VMPL 0..0 (snp_max_vmpl)"));
    tm_policy_set(p, "snp_max_vmpl", "2", r, sizeof r);
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) == 0);
    k.snp_policy = 1ULL << 18; /* MIGRATE_MA */
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "allows a migration agent (MIGRATE_MA)"));
    tm_policy_set(p, "snp_allow_migrate_ma", "true", r, sizeof r);
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) == 0);
    k.snp_policy |= 1ULL << 19; /* DEBUG */
    k.debug = 1;
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "debug-mode TEE refused"));
    tm_policy_set(p, "allow_debug", "true", r, sizeof r);
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) == 0);
    char w[2048];
    TM_CHECK_EQ(tm_policy_warnings(p, w, sizeof w), 3);
    TM_CHECK(ta_has(w, "snp_max_vmpl") && ta_has(w, "migration agent") && ta_has(w, "debug mode"));
    /* Turin's TCB layout carries the FMC SPL: a minimum on it */
    k.reported_tcb.has_fmc = 1;
    k.reported_tcb.fmc = 1;
    tm_policy_set(p, "snp_min_tcb", "fmc=2", r, sizeof r);
    TM_CHECK(tm_policy_check_claims(p, &k, r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "REPORTED_TCB fmc SPL 1 below the minimum 2"));
    TM_CHECK(tm_policy_set(p, "snp_min_tcb", "fmc=2,bogus=1", r, sizeof r) != 0);
    TM_CHECK(ta_has(r, "snp_min_tcb: expected"));
    TM_CHECK(tm_policy_set(p, "snp_max_vmpl", "4", r, sizeof r) != 0);
    tm_policy_free(p);
}

static void guess_and_describe(void)
{
    if (!ready()) return;
    TM_CHECK_EQ(tm_evidence_guess_format(rep, rep_len), TM_FMT_SEV_SNP);
    char buf[8192];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SEV_SNP, rep, rep_len, buf, sizeof buf), 0);
    TM_CHECK(ta_has(buf, "measurement: " MEAS));
    TM_CHECK(ta_has(buf, "certificate_table: 0 entries"));
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SEV_SNP, rep, 100, buf, sizeof buf), TM_VERIFY_EMALFORMED);
    TM_CHECK(ta_has(buf, "sev-snp: report truncated (100 of 1184 bytes)"));
    char small[40];
    TM_CHECK_EQ(tm_evidence_describe(TM_FMT_SEV_SNP, rep, rep_len, small, sizeof small), 0);
    TM_CHECK(strlen(small) < sizeof small);
}

TM_TEST_MAIN(TM_CASE(readme_outcome), TM_CASE(certificate_table), TM_CASE(vcek_sources), TM_CASE(tamper_report),
             TM_CASE(tamper_vcek), TM_CASE(foreign_roots), TM_CASE(wrong_time), TM_CASE(truncations),
             TM_CASE(policy_rules), TM_CASE(policy_bits_on_claims), TM_CASE(guess_and_describe))
