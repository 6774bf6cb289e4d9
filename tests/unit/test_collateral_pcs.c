/*
 * test_collateral_pcs.c — the pure half of `tmqtt-attest collateral fetch`
 * (src/attest/collateral_pcs.c): PCS response parsing, the checks against the
 * pinned Intel root, the FMSPC of the real quotes, the cache file text and the
 * rollback rule. Test data: shared/testdata/{sgx,tdx} (quotes and collateral,
 * current on 2025-06-20); CRLs with chosen dates are made here with OpenSSL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/collateral_pcs.h"
#include "attest/evidence.h"
#include "attest/json.h"
#include "test_attest_util.h"
#include "tm_test.h"

static const uint8_t SGX_FMSPC[6] = {0x00, 0xa0, 0x67, 0x11, 0x00, 0x00};
static const uint8_t TDX_FMSPC[6] = {0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00};

/* One collateral.json of the test data, its fields decoded. */
typedef struct {
    char *f[9];
    uint8_t tcb_sig[64], qe_sig[64];
    uint8_t *pck_der, *root_der;
    size_t pck_len, root_len;
} coll;

enum { TCB, TCB_SIG, TCB_CHAIN, QE, QE_SIG, QE_CHAIN, PCK_CRL, ROOT_CRL, CRL_CHAIN };
static const char *const names[9] = {"tcb_info",    "tcb_info_signature",    "tcb_info_issuer_chain",
                                     "qe_identity", "qe_identity_signature", "qe_identity_issuer_chain",
                                     "pck_crl",     "root_ca_crl",           "pck_crl_issuer_chain"};

static uint8_t *unhex(const char *h, size_t *n)
{
    size_t l = strlen(h) / 2;
    uint8_t *b = malloc(l + 1);
    for (size_t i = 0; b && i < l; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *n = l;
    return b;
}

static int load(const char *tee, coll *c)
{
    char rel[64];
    size_t len;
    snprintf(rel, sizeof rel, "%s/collateral.json", tee);
    char *text = (char *)ta_data(rel, &len);
    tm_json j;
    char err[128];
    memset(c, 0, sizeof *c);
    if (!text || tm_json_parse(&j, text, len, err, sizeof err)) return -1;
    for (int i = 0; i < 9; i++) c->f[i] = tm_json_strdup(&j, tm_json_get(&j, 0, names[i]), NULL);
    tm_json_free(&j);
    free(text);
    size_t n;
    uint8_t *s = unhex(c->f[TCB_SIG], &n);
    memcpy(c->tcb_sig, s, 64);
    free(s);
    s = unhex(c->f[QE_SIG], &n);
    memcpy(c->qe_sig, s, 64);
    free(s);
    c->pck_der = unhex(c->f[PCK_CRL], &c->pck_len);
    c->root_der = unhex(c->f[ROOT_CRL], &c->root_len);
    return 0;
}

static void unload(coll *c)
{
    for (int i = 0; i < 9; i++) free(c->f[i]);
    free(c->pck_der);
    free(c->root_der);
}

static time_t at(void) { return ta_time(2025, 6, 20); }

static void test_header_match(void)
{
    const char *v;
    size_t n;
    const char line[] = "tcb-info-issuer-chain:  %2D%2D \r\n";
    TM_CHECK(tm_pcs_header_match(line, strlen(line), "TCB-Info-Issuer-Chain", &v, &n));
    TM_CHECK(n == 6 && !memcmp(v, "%2D%2D", 6));
    const char longer[] = "TCB-Info-Issuer-Chain-X: a\r\n";
    TM_CHECK(!tm_pcs_header_match(longer, strlen(longer), "TCB-Info-Issuer-Chain", &v, &n));
    TM_CHECK(!tm_pcs_header_match("TCB", 3, "TCB-Info-Issuer-Chain", &v, &n));
    const char empty[] = "TCB-Info-Issuer-Chain:\r\n";
    TM_CHECK(tm_pcs_header_match(empty, strlen(empty), "TCB-Info-Issuer-Chain", &v, &n) && n == 0);
}

static void test_url_decode(void)
{
    char why[256];
    size_t n;
    char *s = tm_pcs_url_decode("%2D%2DBEGIN%20X%0Aa+b%2Fc", 25, &n, why, sizeof why);
    TM_CHECK(s && !strcmp(s, "--BEGIN X\na+b/c") && n == 15);
    free(s);
    const char *bad[] = {"%", "%4", "abc%zz", "%00", "a\nb", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = tm_pcs_url_decode(bad[i], strlen(bad[i]), &n, why, sizeof why);
        TM_CHECK(s == NULL);
        free(s);
    }
}

static char *body_of(const char *key, const char *doc, const char *sig, const char *fmt)
{
    size_t cap = strlen(doc) + strlen(sig) + 256;
    char *b = malloc(cap);
    snprintf(b, cap, fmt, key, doc, sig);
    return b;
}

static void test_signed_body(void)
{
    coll c;
    TM_CHECK(load("sgx", &c) == 0);
    char why[512];
    tm_pcs_signed_body sb;
    /* PCS shape, and the same with white space and the other order. */
    const char *shapes[] = {"{\"%s\":%s,\"signature\":\"%s\"}", "{ \"signature\" : \"%3$s\" ,\n \"%1$s\" : %2$s }"};
    for (int i = 0; i < 2; i++) {
        char *b = body_of("tcbInfo", c.f[TCB], c.f[TCB_SIG], shapes[i]);
        TM_CHECK(tm_pcs_parse_signed_body(TM_PCS_TCB_INFO, b, strlen(b), &sb, why, sizeof why) == 0);
        TM_CHECK(sb.doc_len == strlen(c.f[TCB]) && !memcmp(sb.doc, c.f[TCB], sb.doc_len));
        TM_CHECK(!memcmp(sb.sig, c.tcb_sig, 64));
        free(b);
    }
    /* The QE identity body uses another key: a TCB-shaped body is refused. */
    char *b = body_of("tcbInfo", c.f[QE], c.f[QE_SIG], shapes[0]);
    TM_CHECK(tm_pcs_parse_signed_body(TM_PCS_QE_IDENTITY, b, strlen(b), &sb, why, sizeof why) != 0);
    free(b);
    b = body_of("enclaveIdentity", c.f[QE], c.f[QE_SIG], shapes[0]);
    TM_CHECK(tm_pcs_parse_signed_body(TM_PCS_QE_IDENTITY, b, strlen(b), &sb, why, sizeof why) == 0);
    free(b);
    /* Refused: a second tcbInfo, a short signature, a string instead of an object, not JSON. */
    const char *bad[] = {
        "{\"tcbInfo\":{},\"tcbInfo\":{},\"signature\":\"%s\"}",
        "{\"tcbInfo\":{},\"signature\":\"00\"}",
        "{\"tcbInfo\":\"{}\",\"signature\":\"%s\"}",
        "{\"tcbInfo\":{},\"signature\":\"%s\"",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[400];
        snprintf(t, sizeof t, bad[i], c.f[TCB_SIG]);
        TM_CHECK(tm_pcs_parse_signed_body(TM_PCS_TCB_INFO, t, strlen(t), &sb, why, sizeof why) != 0);
    }
    unload(&c);
}

static void test_check_doc(void)
{
    coll s, t;
    TM_CHECK(load("sgx", &s) == 0 && load("tdx", &t) == 0);
    char why[512];
    tm_pcs_dates d;
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_SGX_DCAP, SGX_FMSPC, s.f[TCB], strlen(s.f[TCB]), at(), &d,
                              why, sizeof why) == 0);
    TM_CHECK(d.issue_date == ta_time(2025, 6, 19) + 10 * 3600 + 56 * 60 + 11);
    TM_CHECK(tm_pcs_check_doc(TM_PCS_QE_IDENTITY, TM_FMT_SGX_DCAP, NULL, s.f[QE], strlen(s.f[QE]), at(), &d, why,
                              sizeof why) == 0);
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_TDX_DCAP, TDX_FMSPC, t.f[TCB], strlen(t.f[TCB]), at(), &d,
                              why, sizeof why) == 0);
    TM_CHECK(tm_pcs_check_doc(TM_PCS_QE_IDENTITY, TM_FMT_TDX_DCAP, NULL, t.f[QE], strlen(t.f[QE]), at(), &d, why,
                              sizeof why) == 0);
    /* Another FMSPC, the other TEE's documents, outside the validity window. */
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_SGX_DCAP, TDX_FMSPC, s.f[TCB], strlen(s.f[TCB]), at(), &d,
                              why, sizeof why) != 0 && ta_has(why, "not the requested b0c06f000000"));
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_TDX_DCAP, SGX_FMSPC, s.f[TCB], strlen(s.f[TCB]), at(), &d,
                              why, sizeof why) != 0 && ta_has(why, "expected \"TDX\""));
    TM_CHECK(tm_pcs_check_doc(TM_PCS_QE_IDENTITY, TM_FMT_SGX_DCAP, NULL, t.f[QE], strlen(t.f[QE]), at(), &d, why,
                              sizeof why) != 0 && ta_has(why, "expected \"QE\""));
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_SGX_DCAP, SGX_FMSPC, s.f[TCB], strlen(s.f[TCB]),
                              ta_time(2025, 8, 1), &d, why, sizeof why) != 0 && ta_has(why, "expired"));
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_SGX_DCAP, SGX_FMSPC, s.f[TCB], strlen(s.f[TCB]),
                              ta_time(2025, 6, 1), &d, why, sizeof why) != 0 && ta_has(why, "not yet valid"));
    const char *bad = "{\"id\":\"SGX\",\"version\":4}";
    TM_CHECK(tm_pcs_check_doc(TM_PCS_TCB_INFO, TM_FMT_SGX_DCAP, NULL, bad, strlen(bad), at(), &d, why, sizeof why)
             != 0 && ta_has(why, "unsupported version 4"));
    unload(&s);
    unload(&t);
}

static void test_verify(void)
{
    coll s, t;
    TM_CHECK(load("sgx", &s) == 0 && load("tdx", &t) == 0);
    char why[512];
    TM_CHECK(tm_pcs_verify_doc(s.f[TCB], strlen(s.f[TCB]), s.tcb_sig, s.f[TCB_CHAIN], strlen(s.f[TCB_CHAIN]), at(),
                               "TCB info", why, sizeof why) == 0);
    TM_CHECK(tm_pcs_verify_doc(t.f[QE], strlen(t.f[QE]), t.qe_sig, t.f[QE_CHAIN], strlen(t.f[QE_CHAIN]), at(),
                               "QE identity", why, sizeof why) == 0);
    /* Another document's signature; a one-certificate chain; certificates not yet valid. */
    TM_CHECK(tm_pcs_verify_doc(s.f[TCB], strlen(s.f[TCB]), s.qe_sig, s.f[TCB_CHAIN], strlen(s.f[TCB_CHAIN]), at(),
                               "TCB info", why, sizeof why) != 0 && ta_has(why, "signature does not verify"));
    char *end = strstr(s.f[TCB_CHAIN], "-----END CERTIFICATE-----\n");
    TM_CHECK(end != NULL);
    size_t one = (size_t)(end - s.f[TCB_CHAIN]) + 26;
    TM_CHECK(tm_pcs_verify_doc(s.f[TCB], strlen(s.f[TCB]), s.tcb_sig, s.f[TCB_CHAIN], one, at(), "TCB info", why,
                               sizeof why) != 0 && ta_has(why, "expected 2 PEM certificates, found 1"));
    TM_CHECK(tm_pcs_verify_doc(s.f[TCB], strlen(s.f[TCB]), s.tcb_sig, s.f[TCB_CHAIN], strlen(s.f[TCB_CHAIN]),
                               ta_time(2017, 1, 1), "TCB info", why, sizeof why) != 0 &&
             ta_has(why, "not yet valid"));
    /* CRLs: PCK CRL with its chain and CA type, root CA CRL with the pinned key. */
    TM_CHECK(tm_pcs_verify_crl(s.pck_der, s.pck_len, s.f[CRL_CHAIN], strlen(s.f[CRL_CHAIN]), TM_PCS_CA_PROCESSOR,
                               at(), "PCK CRL", why, sizeof why) == 0);
    TM_CHECK(tm_pcs_verify_crl(t.pck_der, t.pck_len, t.f[CRL_CHAIN], strlen(t.f[CRL_CHAIN]), TM_PCS_CA_PLATFORM,
                               at(), "PCK CRL", why, sizeof why) == 0);
    TM_CHECK(tm_pcs_verify_crl(s.pck_der, s.pck_len, s.f[CRL_CHAIN], strlen(s.f[CRL_CHAIN]), TM_PCS_CA_PLATFORM,
                               at(), "PCK CRL", why, sizeof why) != 0 && ta_has(why, "not the platform CA"));
    TM_CHECK(tm_pcs_verify_crl(s.pck_der, s.pck_len, t.f[CRL_CHAIN], strlen(t.f[CRL_CHAIN]), 0, at(), "PCK CRL",
                               why, sizeof why) != 0 && ta_has(why, "not issued by"));
    TM_CHECK(tm_pcs_verify_crl(s.root_der, s.root_len, NULL, 0, 0, at(), "root CA CRL", why, sizeof why) == 0);
    TM_CHECK(tm_pcs_verify_crl(s.pck_der, s.pck_len, NULL, 0, 0, at(), "root CA CRL", why, sizeof why) != 0 &&
             ta_has(why, "pinned Intel SGX Root CA"));
    TM_CHECK(tm_pcs_verify_crl(s.pck_der, s.pck_len, s.f[CRL_CHAIN], strlen(s.f[CRL_CHAIN]), 0,
                               ta_time(2025, 8, 1), "PCK CRL", why, sizeof why) != 0 && ta_has(why, "expired"));
    unload(&s);
    unload(&t);
}

static void test_parse_crl(void)
{
    coll s;
    TM_CHECK(load("sgx", &s) == 0);
    char why[256];
    uint8_t *der;
    size_t n;
    /* DER, lower and upper hex with white space, PEM. */
    TM_CHECK(tm_pcs_parse_crl(s.pck_der, s.pck_len, &der, &n, why, sizeof why) == 0);
    TM_CHECK(n == s.pck_len && !memcmp(der, s.pck_der, n));
    free(der);
    size_t hl = strlen(s.f[PCK_CRL]);
    char *hex = malloc(hl + 3);
    snprintf(hex, hl + 3, "%s\r\n", s.f[PCK_CRL]);
    for (size_t i = 0; i < hl; i += 3) hex[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    TM_CHECK(tm_pcs_parse_crl((uint8_t *)hex, strlen(hex), &der, &n, why, sizeof why) == 0);
    TM_CHECK(n == s.pck_len && !memcmp(der, s.pck_der, n));
    free(der);
    const unsigned char *p = s.pck_der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)s.pck_len);
    BIO *mem = BIO_new(BIO_s_mem());
    char *pem;
    TM_CHECK(crl && mem && PEM_write_bio_X509_CRL(mem, crl) == 1);
    long pl = BIO_get_mem_data(mem, &pem);
    TM_CHECK(tm_pcs_parse_crl((uint8_t *)pem, (size_t)pl, &der, &n, why, sizeof why) == 0);
    TM_CHECK(n == s.pck_len && !memcmp(der, s.pck_der, n));
    free(der);
    /* Refused: trailing bytes after the DER, odd hex, HTML, a PEM certificate. */
    uint8_t *longer = malloc(s.pck_len + 1);
    memcpy(longer, s.pck_der, s.pck_len);
    longer[s.pck_len] = 0;
    TM_CHECK(tm_pcs_parse_crl(longer, s.pck_len + 1, &der, &n, why, sizeof why) != 0);
    TM_CHECK(tm_pcs_parse_crl((uint8_t *)hex, hl - 1, &der, &n, why, sizeof why) != 0);
    TM_CHECK(tm_pcs_parse_crl((const uint8_t *)"<html>", 6, &der, &n, why, sizeof why) != 0);
    TM_CHECK(tm_pcs_parse_crl((const uint8_t *)s.f[CRL_CHAIN], strlen(s.f[CRL_CHAIN]), &der, &n, why, sizeof why)
             != 0);
    free(longer);
    free(hex);
    BIO_free(mem);
    X509_CRL_free(crl);
    unload(&s);
}

static void test_quote_info(void)
{
    const char *tees[] = {"sgx/quote.bin", "tdx/quote.bin"};
    const uint8_t *want[] = {SGX_FMSPC, TDX_FMSPC};
    const uint16_t fmts[] = {TM_FMT_SGX_DCAP, TM_FMT_TDX_DCAP};
    const int cas[] = {TM_PCS_CA_PROCESSOR, TM_PCS_CA_PLATFORM};
    for (int i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *q = ta_data(tees[i], &len), f[6];
        uint16_t fmt = 0;
        int ca = 0;
        char why[512];
        TM_CHECK(q && len > 700);
        if (!q || len <= 700) continue;
        TM_CHECK(tm_pcs_quote_info(q, len, &fmt, f, &ca, why, sizeof why) == 0);
        TM_CHECK(fmt == fmts[i] && ca == cas[i] && !memcmp(f, want[i], 6));
        TM_CHECK(tm_pcs_quote_info(q, len - 700, &fmt, f, &ca, why, sizeof why) != 0);
        TM_CHECK(tm_pcs_quote_info(q, 40, &fmt, f, &ca, why, sizeof why) != 0);
        free(q);
    }
}

/* A CRL with the given thisUpdate, signed by a throwaway key, as DER. */
static uint8_t *make_crl(time_t this_update, size_t *len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509_CRL *crl = X509_CRL_new();
    X509_NAME *nm = X509_NAME_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, this_update), *t2 = ASN1_TIME_set(NULL, this_update + 86400);
    unsigned char *der = NULL;
    int n = -1;
    if (k && crl && nm && t1 && t2 &&
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test CA", -1, -1, 0) &&
        X509_CRL_set_version(crl, 1) && X509_CRL_set_issuer_name(crl, nm) && X509_CRL_set1_lastUpdate(crl, t1) &&
        X509_CRL_set1_nextUpdate(crl, t2) && X509_CRL_sign(crl, k, EVP_sha256()))
        n = i2d_X509_CRL(crl, &der);
    EVP_PKEY_free(k);
    X509_CRL_free(crl);
    X509_NAME_free(nm);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    *len = n > 0 ? (size_t)n : 0;
    return der;
}

static void test_cache_file_and_rollback(void)
{
    coll s;
    TM_CHECK(load("sgx", &s) == 0);
    char why[512], name[64];
    TM_CHECK(tm_pcs_cache_name(TM_FMT_SGX_DCAP, SGX_FMSPC, name, sizeof name) == 0 &&
             !strcmp(name, "sgx-00a067110000.json"));
    TM_CHECK(tm_pcs_cache_name(TM_FMT_TDX_DCAP, TDX_FMSPC, name, sizeof name) == 0 &&
             !strcmp(name, "tdx-b0c06f000000.json"));
    tm_pcs_collateral c = {s.f[TCB], strlen(s.f[TCB]), s.tcb_sig, s.f[TCB_CHAIN],
                           s.f[QE],  strlen(s.f[QE]),  s.qe_sig,  s.f[QE_CHAIN],
                           s.pck_der, s.pck_len, s.f[CRL_CHAIN], s.root_der, s.root_len};
    size_t jl;
    char *json = tm_pcs_cache_json(&c, &jl);
    TM_CHECK(json != NULL && strlen(json) == jl);
    /* Every field reads back as the test data's. */
    tm_json j;
    TM_CHECK(tm_json_parse(&j, json, jl, why, sizeof why) == 0);
    for (int i = 0; i < 9; i++) {
        char *v = tm_json_strdup(&j, tm_json_get(&j, 0, names[i]), NULL);
        TM_CHECK(v && !strcmp(v, s.f[i]));
        if (!v || strcmp(v, s.f[i])) fprintf(stderr, "  field %s differs\n", names[i]);
        free(v);
    }
    tm_json_free(&j);
    tm_pcs_cache_dates cur, fresh;
    TM_CHECK(tm_pcs_read_cache_dates(json, jl, &cur, why, sizeof why) == 0);
    TM_CHECK(cur.tcb_issue == ta_time(2025, 6, 19) + 10 * 3600 + 56 * 60 + 11);
    TM_CHECK(cur.qe_issue == ta_time(2025, 6, 19) + 10 * 3600 + 1 * 60 + 18);
    TM_CHECK(cur.pck_crl_this == ta_time(2025, 6, 19) + 10 * 3600 + 23 * 60 + 18);
    TM_CHECK(cur.root_crl_this == ta_time(2025, 3, 20) + 11 * 3600 + 21 * 60 + 57);
    /* Same dates pass; each item older than the cached one is refused by name. */
    TM_CHECK(tm_pcs_rollback_check(&cur, &cur, why, sizeof why) == 0);
    const char *items[] = {"TCB info has issueDate", "QE identity has issueDate", "PCK CRL has thisUpdate",
                           "root CA CRL has thisUpdate"};
    for (int i = 0; i < 4; i++) {
        fresh = cur;
        time_t *f = i == 0 ? &fresh.tcb_issue : i == 1 ? &fresh.qe_issue : i == 2 ? &fresh.pck_crl_this
                                                                                 : &fresh.root_crl_this;
        *f += 1;
        TM_CHECK(tm_pcs_rollback_check(&cur, &fresh, why, sizeof why) == 0);
        *f -= 2;
        TM_CHECK(tm_pcs_rollback_check(&cur, &fresh, why, sizeof why) != 0 && ta_has(why, items[i]));
    }
    /* A cached PCK CRL newer than the fetched one: its date is read from the file. */
    size_t nl;
    uint8_t *newer = make_crl(ta_time(2025, 6, 25), &nl);
    TM_CHECK(newer != NULL);
    c.pck_crl = newer;
    c.pck_crl_len = nl;
    char *cached = tm_pcs_cache_json(&c, &jl);
    tm_pcs_cache_dates old;
    TM_CHECK(cached && tm_pcs_read_cache_dates(cached, jl, &old, why, sizeof why) == 0);
    TM_CHECK(old.pck_crl_this == ta_time(2025, 6, 25));
    TM_CHECK(tm_pcs_rollback_check(&old, &cur, why, sizeof why) != 0 &&
             ta_has(why, "PCK CRL has thisUpdate 2025-06-19T10:23:18Z, older than the cached one (2025-06-25"));
    /* Files that are not cache files. */
    TM_CHECK(tm_pcs_read_cache_dates("{}", 2, &old, why, sizeof why) != 0);
    TM_CHECK(tm_pcs_read_cache_dates("{\"tcb_info\":\"{}\"}", 17, &old, why, sizeof why) != 0);
    free(cached);
    OPENSSL_free(newer);
    free(json);
    unload(&s);
}

TM_TEST_MAIN(TM_CASE(test_header_match), TM_CASE(test_url_decode), TM_CASE(test_signed_body),
             TM_CASE(test_check_doc), TM_CASE(test_verify), TM_CASE(test_parse_crl), TM_CASE(test_quote_info),
             TM_CASE(test_cache_file_and_rollback))
