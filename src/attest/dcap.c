/*
 * dcap.c — appraisal of Intel DCAP quotes: SGX (quote v3, `sgx-dcap`) and TDX
 * (quote v4, and v5 with a TD report 1.0 or 1.5 body, `tdx-dcap`).
 *
 * Owns: the quote parser (bounds-checked, used by the verifier, `show` and
 * the fuzzer), the pinned Intel SGX Root CA key, PCK chain validation, the
 * PCK certificate's SGX extension (TCB, PPID, FMSPC, PCE id, platform
 * instance id; read with OpenSSL's ASN.1 decoder), the QE report /
 * attestation key / quote signature checks, and the collateral appraisal
 * (TCB info, QE identity, CRLs, TCB level and TDX module -> status). Checks
 * run in the order of attested-tls.md, each failure with its own reason:
 *
 *   parse -> binding (constant time) -> PCK chain to the pinned root ->
 *   QE report signed by the PCK leaf -> QE report_data binds the attestation
 *   key -> quote signed by the attestation key -> PCK extension ->
 *   collateral for the quote's FMSPC (required unless the policy says
 *   allow_missing_collateral true) -> policy -> TCB status.
 *
 * Invariants: nothing read from the quote is trusted before the check that
 * covers it; every length from the quote is checked against the bytes that
 * remain before it is used; OpenSSL objects are freed on every path (the
 * dcap_ctx owns them). Quote integers are little-endian.
 */
#include "attest/attest_int.h"
#include "attest/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Intel SGX Root CA public key (P-256 x||y). Taken from the root certificate
 * in shared/testdata/sgx/quote.bin (subject "Intel SGX Root CA", valid
 * 2018-05-21..2049-12-31) and checked against Intel's published root
 * (https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem). */
static const uint8_t intel_root_xy[64] = {
    0x0b, 0xa9, 0xc4, 0xc0, 0xc0, 0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10,
    0xa8, 0xbb, 0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55, 0x25, 0xf5,
    0x67, 0x91, 0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac,
    0xc9, 0x88, 0xe5, 0x05, 0xa9, 0x53, 0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94,
};

#define HDR_LEN 48
#define SGX_BODY_LEN 384
#define TDX_BODY_LEN 584      /* TD report 1.0 (quote v4; v5 body type 2) */
#define TDX15_BODY_LEN 648    /* TD report 1.5 (v5 body type 3): + TEE_TCB_SVN2, MRSERVICETD */
#define QE_REPORT_LEN 384

typedef struct {
    uint16_t format;
    const char *tag;   /* "sgx" / "tdx", prefix of every reason */
    uint16_t version, att_key_type, qe_svn, pce_svn;
    uint32_t tee_type;
    const uint8_t *quote;
    const uint8_t *body;
    size_t body_len;
    uint16_t body_type;  /* v5: 2 = TD report 1.0, 3 = TD report 1.5; v3/v4: 0 */
    size_t signed_len;   /* bytes covered by the quote signature (header..body) */
    const uint8_t *isv_sig, *att_key, *qe_report, *qe_report_sig, *qe_auth;
    size_t qe_auth_len;
    uint16_t cert_type;
    const uint8_t *cert_data;
    size_t cert_len;
} dcap_quote;

/* ------------------------------------------------------------------ parse */

static int need(size_t have, size_t want, const char *tag, const char *what, char *reason, size_t cap)
{
    if (have < want) {
        tm_reasonf(reason, cap, "%s: quote truncated in %s (%zu of %zu bytes)", tag, what, have, want);
        return -1;
    }
    return 0;
}

static int dcap_parse(uint16_t format, const uint8_t *b, size_t n, dcap_quote *q, char *reason, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->format = format;
    q->quote = b;
    q->tag = format == TM_FMT_TDX_DCAP ? "tdx" : "sgx";
    const char *tag = q->tag;
    if (need(n, HDR_LEN, tag, "header", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->version = tm_rd16le(b);
    q->att_key_type = tm_rd16le(b + 2);
    q->tee_type = tm_rd32le(b + 4);
    q->qe_svn = tm_rd16le(b + 8);
    q->pce_svn = tm_rd16le(b + 10);
    int tdx = format == TM_FMT_TDX_DCAP;
    uint32_t want_tee = tdx ? 0x81 : 0;
    if (tdx ? q->version != 4 && q->version != 5 : q->version != 3) {
        tm_reasonf(reason, cap, "%s: quote header: version %u, expected %s", tag, q->version, tdx ? "4 or 5" : "3");
        return TM_VERIFY_EMALFORMED;
    }
    if (q->att_key_type != 2) {
        tm_reasonf(reason, cap, "%s: quote header: attestation key type %u, expected 2 (ECDSA P-256)",
                   tag, q->att_key_type);
        return TM_VERIFY_EMALFORMED;
    }
    if (q->tee_type != want_tee) {
        tm_reasonf(reason, cap, "%s: quote header: TEE type 0x%08x, expected 0x%08x (%s)", tag,
                   (unsigned)q->tee_type, (unsigned)want_tee, format == TM_FMT_TDX_DCAP ? "TDX" : "SGX");
        return TM_VERIFY_EMALFORMED;
    }
    size_t off = HDR_LEN;
    q->body_len = tdx ? TDX_BODY_LEN : SGX_BODY_LEN;
    if (q->version == 5) {
        /* v5: body descriptor (type u16, size u32) before the body. */
        if (need(n, HDR_LEN + 6, tag, "body descriptor", reason, cap)) return TM_VERIFY_EMALFORMED;
        q->body_type = tm_rd16le(b + HDR_LEN);
        uint32_t bl = tm_rd32le(b + HDR_LEN + 2);
        size_t want = q->body_type == 2 ? TDX_BODY_LEN : q->body_type == 3 ? TDX15_BODY_LEN : 0;
        if (!want) {
            tm_reasonf(reason, cap, "%s: quote v5 body type %u, expected 2 (TD report 1.0) or 3 (TD report 1.5)",
                       tag, q->body_type);
            return TM_VERIFY_EMALFORMED;
        }
        if (bl != want) {
            tm_reasonf(reason, cap, "%s: quote v5 body size %u, expected %zu for body type %u", tag, (unsigned)bl,
                       want, q->body_type);
            return TM_VERIFY_EMALFORMED;
        }
        q->body_len = want;
        off += 6;
    }
    if (need(n, off + q->body_len + 4, tag, "report body", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->body = b + off;
    off += q->body_len;
    q->signed_len = off;
    uint32_t sig_len = tm_rd32le(b + off);
    off += 4;
    if (sig_len > n - off) {
        tm_reasonf(reason, cap, "%s: quote truncated: signature data length %u exceeds the %zu bytes left",
                   tag, (unsigned)sig_len, n - off);
        return TM_VERIFY_EMALFORMED;
    }
    size_t end = off + sig_len;
    /* Some producers pad quotes; accept only zero padding so that no byte of
     * the evidence can change without the appraisal noticing. */
    for (size_t i = end; i < n; i++)
        if (b[i] != 0) {
            tm_reasonf(reason, cap, "%s: non-zero bytes after the quote's signature data (offset %zu)", tag, i);
            return TM_VERIFY_EMALFORMED;
        }
    if (need(end - off, 128, tag, "quote signature", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->isv_sig = b + off;
    q->att_key = b + off + 64;
    off += 128;
    size_t qe_end = end;
    if (tdx) {
        /* v4/v5: certification data type 6 wraps the QE report and the PCK chain. */
        if (need(end - off, 6, tag, "certification data header", reason, cap)) return TM_VERIFY_EMALFORMED;
        uint16_t outer = tm_rd16le(b + off);
        uint32_t olen = tm_rd32le(b + off + 2);
        off += 6;
        if (outer != 6) {
            tm_reasonf(reason, cap, "%s: certification data type %u, expected 6 (QE report)", tag, outer);
            return TM_VERIFY_EMALFORMED;
        }
        if (olen != end - off) {
            tm_reasonf(reason, cap, "%s: quote truncated: QE report certification data length %u, %zu bytes left",
                       tag, (unsigned)olen, end - off);
            return TM_VERIFY_EMALFORMED;
        }
        qe_end = off + olen;
    }
    if (need(qe_end - off, QE_REPORT_LEN + 64 + 2, tag, "QE report", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->qe_report = b + off;
    q->qe_report_sig = b + off + QE_REPORT_LEN;
    off += QE_REPORT_LEN + 64;
    q->qe_auth_len = tm_rd16le(b + off);
    off += 2;
    if (need(qe_end - off, q->qe_auth_len, tag, "QE authentication data", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->qe_auth = b + off;
    off += q->qe_auth_len;
    if (need(qe_end - off, 6, tag, "certification data header", reason, cap)) return TM_VERIFY_EMALFORMED;
    q->cert_type = tm_rd16le(b + off);
    uint32_t clen = tm_rd32le(b + off + 2);
    off += 6;
    if (clen != qe_end - off) {
        tm_reasonf(reason, cap, "%s: quote truncated: certification data length %u, %zu bytes left", tag,
                   (unsigned)clen, qe_end - off);
        return TM_VERIFY_EMALFORMED;
    }
    q->cert_data = b + off;
    q->cert_len = clen;
    if (q->cert_type != 5) {
        tm_reasonf(reason, cap, "%s: certification data type %u, expected 5 (PCK certificate chain)", tag,
                   q->cert_type);
        return TM_VERIFY_EMALFORMED;
    }
    return 0;
}

/* ---------------------------------------------------------- certificates */

typedef struct {
    X509 *c[4];
    int n;
    int extra; /* certificates beyond the 4 we keep */
} chain;

static void chain_free(chain *ch)
{
    for (int i = 0; i < ch->n; i++) X509_free(ch->c[i]);
    ch->n = 0;
}

static int chain_parse(const uint8_t *pem, size_t len, chain *ch)
{
    ch->n = ch->extra = 0;
    if (len > 0x7fffffff) return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return -1;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (ch->n == 4) { X509_free(x); ch->extra++; continue; }
        ch->c[ch->n++] = x;
    }
    ERR_clear_error();
    BIO_free(bio);
    return 0;
}

static void cn_of(X509 *x, char *out, size_t cap)
{
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap) < 0)
        snprintf(out, cap, "(no common name)");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
}

static void asn1_fmt(const ASN1_TIME *t, char *out, size_t cap)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm)) { snprintf(out, cap, "?"); return; }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static EVP_PKEY *pinned_root(void) { return tm_p256_from_raw(intel_root_xy); }

/* Validity of x at `at`; 0 ok. */
static int check_validity(X509 *x, time_t at, const char *tag, const char *what, char *reason, size_t cap)
{
    time_t t = at;
    const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
    if (X509_cmp_time(nb, &t) != -1 || X509_cmp_time(na, &t) != 1) {
        char name[128], a[80], b[80], c[32];
        cn_of(x, name, sizeof name);
        asn1_fmt(nb, a, sizeof a);
        asn1_fmt(na, b, sizeof b);
        tm_time_format(at, c, sizeof c);
        tm_reasonf(reason, cap, "%s: %s: '%s' is not valid at %s (valid %s to %s)", tag, what, name, c, a, b);
        return -1;
    }
    return 0;
}

/*
 * Validates a chain leaf..root of exactly `want` certificates: the last one
 * carries the pinned Intel key and is self-signed by it, each certificate is
 * valid at `at`, names chain, issuers are CAs, signatures verify. Checked
 * from the root downwards so that the first failure is the most fundamental.
 */
static int check_chain(chain *ch, int want, time_t at, const char *tag, const char *what, char *reason,
                       size_t cap)
{
    char name[128];
    if (ch->n != want || ch->extra) {
        tm_reasonf(reason, cap, "%s: %s: expected %d certificates, found %d", tag, what, want,
                   ch->n + ch->extra);
        return TM_VERIFY_ECHAIN;
    }
    EVP_PKEY *pin = pinned_root();
    if (!pin) {
        tm_reasonf(reason, cap, "%s: cannot load the pinned root key", tag);
        return TM_VERIFY_EINTERNAL;
    }
    int rc = TM_VERIFY_ECHAIN;
    X509 *root = ch->c[want - 1];
    EVP_PKEY *rk = X509_get0_pubkey(root);
    if (!rk || EVP_PKEY_eq(rk, pin) != 1) {
        cn_of(root, name, sizeof name);
        tm_reasonf(reason, cap, "%s: %s: root '%s' is not the pinned Intel SGX Root CA", tag, what, name);
        goto out;
    }
    if (!TM_SIG_OK(X509_verify(root, pin) == 1)) {
        tm_reasonf(reason, cap, "%s: %s: signature of 'Intel SGX Root CA' does not verify", tag, what);
        goto out;
    }
    for (int i = want - 1; i >= 0; i--) {
        X509 *x = ch->c[i];
        if (check_validity(x, at, tag, what, reason, cap)) goto out;
        if (i == want - 1) continue;
        X509 *parent = ch->c[i + 1];
        cn_of(x, name, sizeof name);
        if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(parent)) != 0) {
            tm_reasonf(reason, cap, "%s: %s: issuer of '%s' is not the next certificate", tag, what, name);
            goto out;
        }
        if (X509_check_ca(parent) < 1) {
            char pn[128];
            cn_of(parent, pn, sizeof pn);
            tm_reasonf(reason, cap, "%s: %s: '%s' is not a CA certificate", tag, what, pn);
            goto out;
        }
        EVP_PKEY *pk = X509_get0_pubkey(parent);
        if (!pk || !TM_SIG_OK(X509_verify(x, pk) == 1)) {
            tm_reasonf(reason, cap, "%s: %s: signature of '%s' does not verify", tag, what, name);
            goto out;
        }
    }
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_free(pin);
    return rc;
}

/*
 * The PEM text must be exactly what OpenSSL writes for these certificates
 * (64-column base64, '\n' line ends), optionally followed by NUL padding as
 * Intel's QE emits it. PEM decoders skip stray whitespace and trailing
 * garbage; requiring the canonical form means no byte of the quote can change
 * without the appraisal failing.
 */
static int pem_canonical(chain *ch, const uint8_t *pem, size_t len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *out = NULL;
    long ol;
    int ok = mem != NULL;
    for (int i = 0; ok && i < ch->n; i++) ok = PEM_write_bio_X509(mem, ch->c[i]) == 1;
    if (ok && (ol = BIO_get_mem_data(mem, &out)) > 0 && (size_t)ol <= len) {
        ok = memcmp(out, pem, (size_t)ol) == 0;
        for (size_t i = (size_t)ol; ok && i < len; i++) ok = pem[i] == 0;
    } else {
        ok = 0;
    }
    BIO_free(mem);
    return ok;
}

/* ----------------------------------------------- PCK certificate extension */

/*
 * Intel's SGX extension (OID 1.2.840.113741.1.13.1) of the PCK certificate:
 * SEQUENCE OF SEQUENCE { OID, value }, decoded with d2i_ASN1_SEQUENCE_ANY:
 *   .1 PPID (16 bytes)  .2 TCB: SEQUENCE OF { .2.N, INTEGER } with N = 1..16
 *   component SVNs, 17 PCESVN, 18 CPUSVN (16 bytes)  .3 PCE-ID (2)
 *   .4 FMSPC (6)  .6 platform instance id (16, Platform CA certificates only).
 * Every other entry (SGX type, configuration) is skipped.
 */
#define SGX_EXT_OID "1.2.840.113741.1.13.1"

typedef struct {
    unsigned comp[16];
    unsigned pcesvn;
    uint8_t cpusvn[16];
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t ppid[16];
    uint8_t pinst[16];
    int has_pinst;
    unsigned have; /* bit per component, 16: pcesvn, 17: fmspc, 18: pceid, 19: ppid */
} pck_ext;

#define PCK_EXT_ALL 0xFFFFFu

/* Last arc N when `t` is the OID prefix.N, else -1. */
static long oid_arc(const ASN1_TYPE *t, const char *prefix)
{
    char buf[96];
    if (t->type != V_ASN1_OBJECT) return -1;
    int l = OBJ_obj2txt(buf, sizeof buf, t->value.object, 1);
    size_t pl = strlen(prefix);
    if (l <= 0 || (size_t)l >= sizeof buf || strncmp(buf, prefix, pl) != 0 || buf[pl] != '.') return -1;
    char *end;
    long a = strtol(buf + pl + 1, &end, 10);
    return *end || a < 0 ? -1 : a;
}

/* The elements of a SEQUENCE value (exactly its bytes), or NULL. */
static STACK_OF(ASN1_TYPE) *seq_items(const unsigned char *der, long n)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *s = d2i_ASN1_SEQUENCE_ANY(NULL, &p, n);
    if (s && p != der + n) {
        sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
        s = NULL;
    }
    return s;
}

/* SEQUENCE { OID prefix.N, value }: N and the value, or -1. */
static long oid_pair(const ASN1_TYPE *t, const char *prefix, STACK_OF(ASN1_TYPE) **items, const ASN1_TYPE **val)
{
    if (t->type != V_ASN1_SEQUENCE) return -1;
    *items = seq_items(t->value.sequence->data, t->value.sequence->length);
    if (!*items) return -1;
    if (sk_ASN1_TYPE_num(*items) != 2) return -1;
    *val = sk_ASN1_TYPE_value(*items, 1);
    return oid_arc(sk_ASN1_TYPE_value(*items, 0), prefix);
}

static int asn1_uint(const ASN1_TYPE *t, unsigned max, unsigned *out)
{
    int64_t v;
    if (t->type != V_ASN1_INTEGER || ASN1_INTEGER_get_int64(&v, t->value.integer) != 1 || v < 0 || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int asn1_octets(const ASN1_TYPE *t, uint8_t *out, size_t n)
{
    if (t->type != V_ASN1_OCTET_STRING || ASN1_STRING_length(t->value.octet_string) != (int)n) return -1;
    memcpy(out, ASN1_STRING_get0_data(t->value.octet_string), n);
    return 0;
}

static int pck_tcb_parse(const ASN1_TYPE *tcb, pck_ext *e)
{
    if (tcb->type != V_ASN1_SEQUENCE) return -1;
    STACK_OF(ASN1_TYPE) *comps = seq_items(tcb->value.sequence->data, tcb->value.sequence->length);
    int rc = comps ? 0 : -1;
    for (int i = 0; rc == 0 && i < sk_ASN1_TYPE_num(comps); i++) {
        STACK_OF(ASN1_TYPE) *kv = NULL;
        const ASN1_TYPE *v = NULL;
        long k = oid_pair(sk_ASN1_TYPE_value(comps, i), SGX_EXT_OID ".2", &kv, &v);
        unsigned x;
        if (k < 0) rc = -1;
        else if (k >= 1 && k <= 16) {
            if (asn1_uint(v, 255, &x) || (e->have & 1u << (k - 1))) rc = -1;
            else { e->comp[k - 1] = x; e->have |= 1u << (k - 1); }
        } else if (k == 17) {
            if (asn1_uint(v, 65535, &x) || (e->have & 1u << 16)) rc = -1;
            else { e->pcesvn = x; e->have |= 1u << 16; }
        } else if (k == 18) {
            if (asn1_octets(v, e->cpusvn, 16)) rc = -1;
        }
        sk_ASN1_TYPE_pop_free(kv, ASN1_TYPE_free);
    }
    sk_ASN1_TYPE_pop_free(comps, ASN1_TYPE_free);
    return rc;
}

static int pck_ext_parse(X509 *leaf, pck_ext *e)
{
    memset(e, 0, sizeof *e);
    ASN1_OBJECT *obj = OBJ_txt2obj(SGX_EXT_OID, 1);
    if (!obj) return -1;
    int idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    ASN1_OBJECT_free(obj);
    if (idx < 0) return -1;
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    if (!os) return -1;
    STACK_OF(ASN1_TYPE) *top = seq_items(ASN1_STRING_get0_data(os), ASN1_STRING_length(os));
    int rc = top ? 0 : -1;
    for (int i = 0; rc == 0 && i < sk_ASN1_TYPE_num(top); i++) {
        STACK_OF(ASN1_TYPE) *kv = NULL;
        const ASN1_TYPE *v = NULL;
        long k = oid_pair(sk_ASN1_TYPE_value(top, i), SGX_EXT_OID, &kv, &v);
        unsigned bit = k == 1 ? 19 : k == 3 ? 18 : k == 4 ? 17 : 0;
        if (k < 0 || (bit && (e->have & 1u << bit))) rc = -1;
        else if (k == 1) rc = asn1_octets(v, e->ppid, 16);
        else if (k == 2) rc = pck_tcb_parse(v, e);
        else if (k == 3) rc = asn1_octets(v, e->pceid, 2);
        else if (k == 4) rc = asn1_octets(v, e->fmspc, 6);
        else if (k == 6) {
            rc = e->has_pinst ? -1 : asn1_octets(v, e->pinst, 16);
            e->has_pinst = 1;
        }
        if (rc == 0 && bit) e->have |= 1u << bit;
        sk_ASN1_TYPE_pop_free(kv, ASN1_TYPE_free);
    }
    sk_ASN1_TYPE_pop_free(top, ASN1_TYPE_free);
    ERR_clear_error();
    return rc == 0 && e->have == PCK_EXT_ALL ? 0 : -1;
}

/* ----------------------------------------------------------- collateral */

typedef struct {
    tm_json outer, tcb, qe;
    char *tcb_text, *qe_text;
    size_t tcb_len, qe_len;
    chain tcb_chain, qe_chain, crl_chain;
    X509_CRL *root_crl, *pck_crl;
} coll_ctx;

static void coll_free(coll_ctx *k)
{
    tm_json_free(&k->outer);
    tm_json_free(&k->tcb);
    tm_json_free(&k->qe);
    free(k->tcb_text);
    free(k->qe_text);
    chain_free(&k->tcb_chain);
    chain_free(&k->qe_chain);
    chain_free(&k->crl_chain);
    X509_CRL_free(k->root_crl);
    X509_CRL_free(k->pck_crl);
}

/* Decoded string field of the outer collateral object (malloc'd). */
static char *coll_str(coll_ctx *k, const char *key, size_t *len, const char *tag, char *reason, size_t cap)
{
    char *s = tm_json_strdup(&k->outer, tm_json_get(&k->outer, 0, key), len);
    if (!s) tm_reasonf(reason, cap, "%s: collateral: missing or invalid field '%s'", tag, key);
    return s;
}

static int json_strcpy(const tm_json *j, int obj, const char *key, char *out, size_t cap)
{
    return tm_json_str(j, tm_json_get(j, obj, key), out, cap) < 0 ? -1 : 0;
}

static int json_hexfield(const tm_json *j, int obj, const char *key, uint8_t *out, size_t n)
{
    char h[257];
    long l = tm_json_str(j, tm_json_get(j, obj, key), h, sizeof h);
    if (l < 0 || (size_t)l != 2 * n) return -1;
    return tm_hex_decode(h, (size_t)l, out, n) == (long)n ? 0 : -1;
}

static int json_intfield(const tm_json *j, int obj, const char *key, long long *v)
{
    return tm_json_int(j, tm_json_get(j, obj, key), v);
}

/* Status names come from signed collateral, but they end up in logs and
 * JSON: accept only short identifiers. */
static int status_copy(const tm_json *j, int t, char *out, size_t cap)
{
    if (tm_json_str(j, t, out, cap) <= 0) return -1;
    for (char *p = out; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) return -1;
    return 0;
}

static X509_CRL *crl_from_hex(const char *hex, size_t hexlen)
{
    size_t n = hexlen / 2;
    uint8_t *der = malloc(n ? n : 1);
    X509_CRL *crl = NULL;
    if (der && tm_hex_decode(hex, hexlen, der, n) == (long)n) {
        const unsigned char *p = der;
        crl = d2i_X509_CRL(NULL, &p, (long)n);
        if (crl && p != der + n) { X509_CRL_free(crl); crl = NULL; }
    }
    free(der);
    return crl;
}

/* Signed JSON document (TCB info / QE identity): chain to the pinned root,
 * signature (hex r||s) over the exact bytes, then issue/next-update window. */
static int signed_doc(coll_ctx *k, const char *tag, const char *docname, const char *field,
                      const char *sigfield, const char *chainfield, char **text, size_t *textlen,
                      tm_json *doc, chain *ch, time_t at, char *reason, size_t cap)
{
    size_t l;
    char *chainpem = NULL, *sighex = NULL;
    int rc = TM_VERIFY_ECOLLATERAL;
    char what[64];
    if (!(*text = coll_str(k, field, textlen, tag, reason, cap))) goto out;
    if (!(sighex = coll_str(k, sigfield, &l, tag, reason, cap))) goto out;
    if (!(chainpem = coll_str(k, chainfield, &l, tag, reason, cap))) goto out;
    snprintf(what, sizeof what, "collateral: %s issuer chain", docname);
    chain_parse((const uint8_t *)chainpem, l, ch);
    if ((rc = check_chain(ch, 2, at, tag, what, reason, cap)) != 0) {
        if (rc == TM_VERIFY_ECHAIN) rc = TM_VERIFY_ECOLLATERAL;
        goto out;
    }
    rc = TM_VERIFY_ECOLLATERAL;
    uint8_t sig[64];
    size_t sl = strlen(sighex);
    if (sl != 128 || tm_hex_decode(sighex, sl, sig, 64) != 64) {
        tm_reasonf(reason, cap, "%s: collateral: %s signature is not 64 hex-encoded bytes", tag, docname);
        goto out;
    }
    if (!TM_SIG_OK(tm_ecdsa_verify_raw(X509_get0_pubkey(ch->c[0]), (const uint8_t *)*text, *textlen, sig))) {
        tm_reasonf(reason, cap, "%s: collateral: %s signature does not verify", tag, docname);
        goto out;
    }
    char err[128];
    if (tm_json_parse(doc, *text, *textlen, err, sizeof err) != 0 || doc->tok[0].type != TM_JSON_OBJECT) {
        tm_reasonf(reason, cap, "%s: collateral: %s: %s", tag, docname,
                   doc->ntok ? "not an object" : err);
        goto out;
    }
    char d1[40], d2[40];
    time_t issue, next;
    if (json_strcpy(doc, 0, "issueDate", d1, sizeof d1) || tm_time_parse(d1, &issue) ||
        json_strcpy(doc, 0, "nextUpdate", d2, sizeof d2) || tm_time_parse(d2, &next)) {
        tm_reasonf(reason, cap, "%s: collateral: %s: missing or bad issueDate/nextUpdate", tag, docname);
        goto out;
    }
    if (at < issue) {
        tm_reasonf(reason, cap, "%s: collateral: %s not yet valid (issueDate %s)", tag, docname, d1);
        goto out;
    }
    if (at >= next) {
        tm_reasonf(reason, cap, "%s: collateral: %s expired (nextUpdate %s)", tag, docname, d2);
        goto out;
    }
    rc = 0;
out:
    free(chainpem);
    free(sighex);
    return rc;
}

static int crl_check_time(X509_CRL *crl, time_t at, const char *tag, const char *name, char *reason, size_t cap)
{
    time_t t = at;
    const ASN1_TIME *lu = X509_CRL_get0_lastUpdate(crl), *nu = X509_CRL_get0_nextUpdate(crl);
    if (!lu || X509_cmp_time(lu, &t) != -1) {
        char a[80];
        asn1_fmt(lu, a, sizeof a);
        tm_reasonf(reason, cap, "%s: collateral: %s not yet valid (thisUpdate %s)", tag, name, a);
        return -1;
    }
    if (!nu || X509_cmp_time(nu, &t) != 1) {
        char a[80];
        asn1_fmt(nu, a, sizeof a);
        tm_reasonf(reason, cap, "%s: collateral: %s expired (nextUpdate %s)", tag, name, a);
        return -1;
    }
    return 0;
}

static int revoked(X509_CRL *crl, X509 *x)
{
    X509_REVOKED *r = NULL;
    return X509_CRL_get0_by_serial(crl, &r, (ASN1_INTEGER *)X509_get0_serialNumber(x)) == 1;
}

/* Intel's convergence of the platform TCB status with the QE's (or the TDX
 * module's): an out-of-date enclave/module downgrades an otherwise good
 * platform, keeping the "configuration needed" information. */
static void converge(char *status, size_t cap, const char *other)
{
    if (strcmp(other, "OutOfDate") == 0) {
        if (!strcmp(status, "UpToDate") || !strcmp(status, "SWHardeningNeeded"))
            snprintf(status, cap, "OutOfDate");
        else if (!strcmp(status, "ConfigurationNeeded") || !strcmp(status, "ConfigurationAndSWHardeningNeeded"))
            snprintf(status, cap, "OutOfDateConfigurationNeeded");
    } else if (strcmp(other, "Revoked") == 0) {
        snprintf(status, cap, "Revoked");
    }
}

/* First TCB level whose SVNs are all <= the platform's. */
static int match_tcb_level(const tm_json *j, int levels, const dcap_quote *q, const pck_ext *e,
                           char *status, size_t scap)
{
    int tdx = q->format == TM_FMT_TDX_DCAP;
    const uint8_t *tee_svn = q->body; /* TDX: tee_tcb_svn[16] at offset 0 */
    for (int li = 0; li < j->tok[levels].size; li++) {
        int lvl = tm_json_at(j, levels, li);
        int tcb = tm_json_get(j, lvl, "tcb");
        if (tcb < 0) return -1;
        int comps = tm_json_get(j, tcb, "sgxtcbcomponents");
        int ok = 1;
        for (int i = 0; i < 16 && ok; i++) {
            long long v;
            if (comps >= 0) {
                if (json_intfield(j, tm_json_at(j, comps, i), "svn", &v)) return -1;
            } else {
                char key[24];
                snprintf(key, sizeof key, "sgxtcbcomp%02dsvn", i + 1); /* TCB info v2 */
                if (json_intfield(j, tcb, key, &v)) return -1;
            }
            if ((long long)e->comp[i] < v) ok = 0;
        }
        long long pce;
        if (json_intfield(j, tcb, "pcesvn", &pce)) return -1;
        if ((long long)e->pcesvn < pce) ok = 0;
        if (tdx && ok) {
            int tc = tm_json_get(j, tcb, "tdxtcbcomponents");
            if (tc < 0) return -1;
            /* From TDX 1.5 on (tee_tcb_svn[1] != 0) the first two bytes are the
             * module's version and SVN, appraised through tdxModuleIdentities. */
            for (int i = tee_svn[1] ? 2 : 0; i < 16 && ok; i++) {
                long long v;
                if (json_intfield(j, tm_json_at(j, tc, i), "svn", &v)) return -1;
                if ((long long)tee_svn[i] < v) ok = 0;
            }
        }
        if (ok) return status_copy(j, tm_json_get(j, lvl, "tcbStatus"), status, scap) ? -1 : 1;
    }
    return 0;
}

static int tdx_module_status(const tm_json *j, const dcap_quote *q, char *status, size_t scap, char *reason,
                             size_t cap)
{
    const uint8_t *b = q->body;
    const uint8_t *mrsignerseam = b + 64, *seam_attr = b + 112;
    uint8_t mrs[48], attr[8], mask[8];
    if (b[1] == 0) {
        /* TDX 1.0: a single tdxModule entry without TCB levels. */
        int m = tm_json_get(j, 0, "tdxModule");
        if (m < 0) { status[0] = 0; return 0; }
        if (json_hexfield(j, m, "mrsigner", mrs, 48) || json_hexfield(j, m, "attributes", attr, 8) ||
            json_hexfield(j, m, "attributesMask", mask, 8)) {
            tm_reasonf(reason, cap, "tdx: collateral: TCB info: malformed tdxModule");
            return TM_VERIFY_ECOLLATERAL;
        }
        goto match;
    }
    char want[16];
    snprintf(want, sizeof want, "TDX_%02X", b[1]);
    int ids = tm_json_get(j, 0, "tdxModuleIdentities");
    for (int i = 0; ids >= 0 && i < j->tok[ids].size; i++) {
        int m = tm_json_at(j, ids, i);
        char id[16];
        if (json_strcpy(j, m, "id", id, sizeof id) || strcmp(id, want) != 0) continue;
        if (json_hexfield(j, m, "mrsigner", mrs, 48) || json_hexfield(j, m, "attributes", attr, 8) ||
            json_hexfield(j, m, "attributesMask", mask, 8)) {
            tm_reasonf(reason, cap, "tdx: collateral: TCB info: malformed TDX module identity %s", want);
            return TM_VERIFY_ECOLLATERAL;
        }
        if (memcmp(mrs, mrsignerseam, 48) != 0) {
            tm_reasonf(reason, cap, "tdx: collateral: MRSIGNERSEAM does not match TDX module identity %s", want);
            return TM_VERIFY_ETCB;
        }
        for (int k = 0; k < 8; k++)
            if ((seam_attr[k] & mask[k]) != (attr[k] & mask[k])) {
                tm_reasonf(reason, cap, "tdx: collateral: SEAM attributes do not match TDX module identity %s", want);
                return TM_VERIFY_ETCB;
            }
        int lv = tm_json_get(j, m, "tcbLevels");
        for (int l = 0; lv >= 0 && l < j->tok[lv].size; l++) {
            int e = tm_json_at(j, lv, l);
            long long isvsvn;
            if (json_intfield(j, tm_json_get(j, e, "tcb"), "isvsvn", &isvsvn)) break;
            if (isvsvn <= b[0]) {
                if (status_copy(j, tm_json_get(j, e, "tcbStatus"), status, scap)) break;
                return 0;
            }
        }
        tm_reasonf(reason, cap, "tdx: collateral: no TCB level of TDX module identity %s for module SVN %u",
                   want, b[0]);
        return TM_VERIFY_ETCB;
    }
    tm_reasonf(reason, cap, "tdx: collateral: TDX module identity %s not found in TCB info", want);
    return TM_VERIFY_ETCB;
match:
    if (memcmp(mrs, mrsignerseam, 48) != 0) {
        tm_reasonf(reason, cap, "tdx: collateral: MRSIGNERSEAM does not match the TDX module in TCB info");
        return TM_VERIFY_ETCB;
    }
    for (int k = 0; k < 8; k++)
        if ((seam_attr[k] & mask[k]) != (attr[k] & mask[k])) {
            tm_reasonf(reason, cap, "tdx: collateral: SEAM attributes do not match the TDX module in TCB info");
            return TM_VERIFY_ETCB;
        }
    status[0] = 0;
    return 0;
}

static int appraise_collateral(const dcap_quote *q, chain *pck, const pck_ext *e, const uint8_t *coll,
                               size_t clen, time_t at, tm_claims *c, char *reason, size_t cap)
{
    const char *tag = q->tag;
    int tdx = q->format == TM_FMT_TDX_DCAP;
    coll_ctx k;
    memset(&k, 0, sizeof k);
    int rc = TM_VERIFY_ECOLLATERAL;
    char err[128];
    char *hex = NULL;
    size_t hl;
    if (tm_json_parse(&k.outer, (const char *)coll, clen, err, sizeof err) != 0) {
        tm_reasonf(reason, cap, "%s: collateral: %s", tag, err);
        goto out;
    }
    if (k.outer.tok[0].type != TM_JSON_OBJECT) {
        tm_reasonf(reason, cap, "%s: collateral: not a JSON object", tag);
        goto out;
    }

    /* 1. TCB info and QE identity: signed by the TCB signing key, in date. */
    if ((rc = signed_doc(&k, tag, "TCB info", "tcb_info", "tcb_info_signature", "tcb_info_issuer_chain",
                         &k.tcb_text, &k.tcb_len, &k.tcb, &k.tcb_chain, at, reason, cap)))
        goto out;
    if ((rc = signed_doc(&k, tag, "QE identity", "qe_identity", "qe_identity_signature",
                         "qe_identity_issuer_chain", &k.qe_text, &k.qe_len, &k.qe, &k.qe_chain, at, reason,
                         cap)))
        goto out;
    rc = TM_VERIFY_ECOLLATERAL;
    char id[16];
    if (json_strcpy(&k.tcb, 0, "id", id, sizeof id) == 0) {
        if (strcmp(id, tdx ? "TDX" : "SGX") != 0) {
            tm_reasonf(reason, cap, "%s: collateral: TCB info is for %s, not %s", tag, id, tdx ? "TDX" : "SGX");
            goto out;
        }
    } else if (tdx) {
        tm_reasonf(reason, cap, "%s: collateral: TCB info has no id (not TDX TCB info)", tag);
        goto out;
    }
    if (json_strcpy(&k.qe, 0, "id", id, sizeof id) == 0 && strcmp(id, tdx ? "TD_QE" : "QE") != 0) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity is for %s, not %s", tag, id, tdx ? "TD_QE" : "QE");
        goto out;
    }

    /* 2. CRLs: root CA CRL signed by the pinned root, PCK CRL by the PCK CA of
     *    this quote; neither the PCK certificate nor any intermediate revoked. */
    if (!(hex = coll_str(&k, "root_ca_crl", &hl, tag, reason, cap))) goto out;
    k.root_crl = crl_from_hex(hex, hl);
    free(hex);
    hex = NULL;
    if (!k.root_crl) {
        tm_reasonf(reason, cap, "%s: collateral: root CA CRL is not hex-encoded DER", tag);
        goto out;
    }
    EVP_PKEY *pin = pinned_root();
    int sig_ok = pin && TM_SIG_OK(X509_CRL_verify(k.root_crl, pin) == 1);
    EVP_PKEY_free(pin);
    if (!sig_ok) {
        tm_reasonf(reason, cap, "%s: collateral: root CA CRL signature does not verify with the pinned root", tag);
        goto out;
    }
    if (crl_check_time(k.root_crl, at, tag, "root CA CRL", reason, cap)) goto out;
    X509 *inter[3] = {pck->c[1], k.tcb_chain.c[0], k.qe_chain.c[0]};
    for (int i = 0; i < 3; i++)
        if (revoked(k.root_crl, inter[i])) {
            char name[128];
            cn_of(inter[i], name, sizeof name);
            tm_reasonf(reason, cap, "%s: collateral: '%s' is revoked (root CA CRL)", tag, name);
            goto out;
        }
    if (!(hex = coll_str(&k, "pck_crl", &hl, tag, reason, cap))) goto out;
    k.pck_crl = crl_from_hex(hex, hl);
    free(hex);
    hex = NULL;
    if (!k.pck_crl) {
        tm_reasonf(reason, cap, "%s: collateral: PCK CRL is not hex-encoded DER", tag);
        goto out;
    }
    if (X509_NAME_cmp(X509_CRL_get_issuer(k.pck_crl), X509_get_subject_name(pck->c[1])) != 0) {
        char name[128];
        cn_of(pck->c[1], name, sizeof name);
        tm_reasonf(reason, cap, "%s: collateral: PCK CRL is not issued by '%s'", tag, name);
        goto out;
    }
    if (!TM_SIG_OK(X509_CRL_verify(k.pck_crl, X509_get0_pubkey(pck->c[1])) == 1)) {
        tm_reasonf(reason, cap, "%s: collateral: PCK CRL signature does not verify", tag);
        goto out;
    }
    if (crl_check_time(k.pck_crl, at, tag, "PCK CRL", reason, cap)) goto out;
    if (revoked(k.pck_crl, pck->c[0])) {
        tm_reasonf(reason, cap, "%s: collateral: PCK certificate is revoked (PCK CRL)", tag);
        goto out;
    }

    /* 3. QE identity: the QE that signed is Intel's, at a known TCB level. */
    const uint8_t *qr = q->qe_report;
    uint8_t mrsigner[32], attr[16], amask[16], misc[4], mmask[4];
    long long prodid;
    if (json_hexfield(&k.qe, 0, "mrsigner", mrsigner, 32) || json_hexfield(&k.qe, 0, "attributes", attr, 16) ||
        json_hexfield(&k.qe, 0, "attributesMask", amask, 16) ||
        json_hexfield(&k.qe, 0, "miscselect", misc, 4) || json_hexfield(&k.qe, 0, "miscselectMask", mmask, 4) ||
        json_intfield(&k.qe, 0, "isvprodid", &prodid)) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity: missing or malformed fields", tag);
        goto out;
    }
    rc = TM_VERIFY_ETCB;
    if (memcmp(qr + 128, mrsigner, 32) != 0) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity: MRSIGNER of the quoting enclave does not match", tag);
        goto out;
    }
    if (tm_rd16le(qr + 256) != prodid) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity: ISVPRODID %u, expected %lld", tag,
                   tm_rd16le(qr + 256), prodid);
        goto out;
    }
    uint32_t ms = (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 | (uint32_t)misc[2] << 8 | misc[3];
    uint32_t mm = (uint32_t)mmask[0] << 24 | (uint32_t)mmask[1] << 16 | (uint32_t)mmask[2] << 8 | mmask[3];
    if ((tm_rd32le(qr + 16) & mm) != (ms & mm)) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity: MISCSELECT does not match", tag);
        goto out;
    }
    for (int i = 0; i < 16; i++)
        if ((qr[48 + i] & amask[i]) != (attr[i] & amask[i])) {
            tm_reasonf(reason, cap, "%s: collateral: QE identity: attributes do not match", tag);
            goto out;
        }
    char qe_status[48] = "";
    int qlv = tm_json_get(&k.qe, 0, "tcbLevels");
    unsigned qe_isvsvn = tm_rd16le(qr + 258);
    for (int l = 0; qlv >= 0 && l < k.qe.tok[qlv].size; l++) {
        int lvl = tm_json_at(&k.qe, qlv, l);
        long long isvsvn;
        if (json_intfield(&k.qe, tm_json_get(&k.qe, lvl, "tcb"), "isvsvn", &isvsvn)) break;
        if (isvsvn <= (long long)qe_isvsvn) {
            if (status_copy(&k.qe, tm_json_get(&k.qe, lvl, "tcbStatus"), qe_status, sizeof qe_status))
                qe_status[0] = 0;
            break;
        }
    }
    if (!qe_status[0]) {
        tm_reasonf(reason, cap, "%s: collateral: QE identity: no TCB level for QE ISVSVN %u", tag, qe_isvsvn);
        goto out;
    }

    /* 4. Platform TCB: the PCK certificate's SGX extension against TCB info. */
    uint8_t fmspc[6], pceid[2];
    if (json_hexfield(&k.tcb, 0, "fmspc", fmspc, 6) || json_hexfield(&k.tcb, 0, "pceId", pceid, 2)) {
        tm_reasonf(reason, cap, "%s: collateral: TCB info: missing or malformed fmspc/pceId", tag);
        rc = TM_VERIFY_ECOLLATERAL;
        goto out;
    }
    if (memcmp(fmspc, e->fmspc, 6) != 0) {
        char a[13];
        tm_hex_encode(fmspc, 6, a);
        tm_reasonf(reason, cap, "%s: collateral: FMSPC of the PCK certificate (%s) does not match TCB info (%s)",
                   tag, c->fmspc, a);
        goto out;
    }
    if (memcmp(pceid, e->pceid, 2) != 0) {
        tm_reasonf(reason, cap, "%s: collateral: PCE id of the PCK certificate does not match TCB info", tag);
        goto out;
    }
    int lv = tm_json_get(&k.tcb, 0, "tcbLevels");
    char status[48] = "";
    int m = lv >= 0 && k.tcb.tok[lv].type == TM_JSON_ARRAY
                ? match_tcb_level(&k.tcb, lv, q, e, status, sizeof status) : -1;
    if (m < 0) {
        tm_reasonf(reason, cap, "%s: collateral: TCB info: malformed tcbLevels", tag);
        rc = TM_VERIFY_ECOLLATERAL;
        goto out;
    }
    if (m == 0) {
        tm_reasonf(reason, cap, "%s: collateral: no TCB level of TCB info matches this platform", tag);
        goto out;
    }
    if (tdx) {
        char mod[48] = "";
        if ((rc = tdx_module_status(&k.tcb, q, mod, sizeof mod, reason, cap))) goto out;
        if (mod[0]) converge(status, sizeof status, mod);
    }
    converge(status, sizeof status, qe_status);
    snprintf(c->tcb_status, sizeof c->tcb_status, "%s", status);
    c->tcb_evaluated = 1;
    rc = 0;
out:
    free(hex);
    coll_free(&k);
    return rc;
}

/* ------------------------------------------------------------- verifier */

static void fill_claims(const dcap_quote *q, tm_claims *c)
{
    const uint8_t *b = q->body;
    c->quote_version = q->version;
    if (q->format == TM_FMT_SGX_DCAP) {
        c->has_sgx = 1;
        memcpy(c->mrenclave, b + 64, 32);
        memcpy(c->mrsigner, b + 128, 32);
        memcpy(c->measurement, b + 64, 32);
        c->measurement_len = 32;
        c->product_id = tm_rd16le(b + 256);
        c->security_version = tm_rd16le(b + 258);
        c->debug = (b[48] & 0x02) != 0; /* ATTRIBUTES.DEBUG */
        memcpy(c->report_data, b + 320, 64);
    } else {
        /* TD report: TEE_TCB_SVN 0, MRSEAM 16, MRSIGNERSEAM 64, SEAMATTRIBUTES 112,
         * TDATTRIBUTES 120, XFAM 128, MRTD 136, MRCONFIGID 184, MROWNER 232,
         * MROWNERCONFIG 280, RTMR0..3 328, REPORTDATA 520; 1.5: TEE_TCB_SVN2 584,
         * MRSERVICETD 600. */
        c->has_tdx = 1;
        memcpy(c->tee_tcb_svn, b, 16);
        memcpy(c->mrseam, b + 16, 48);
        memcpy(c->mrsignerseam, b + 64, 48);
        c->seam_attributes = tm_rd64le(b + 112);
        c->tdattributes = tm_rd64le(b + 120);
        c->xfam = tm_rd64le(b + 128);
        memcpy(c->mrtd, b + 136, 48);
        memcpy(c->mrconfigid, b + 184, 48);
        memcpy(c->mrowner, b + 232, 48);
        memcpy(c->mrownerconfig, b + 280, 48);
        for (int i = 0; i < 4; i++) memcpy(c->rtmr[i], b + 328 + 48 * i, 48);
        memcpy(c->measurement, b + 136, 48);
        c->measurement_len = 48;
        c->debug = (c->tdattributes & 1) != 0; /* TDATTRIBUTES.DEBUG */
        memcpy(c->report_data, b + 520, 64);
        if (q->body_type == 3) {
            c->tdx_report_v15 = 1;
            memcpy(c->tee_tcb_svn2, b + 584, 16);
            memcpy(c->mrservicetd, b + 600, 48);
        }
    }
}

static void fill_platform(const pck_ext *e, tm_claims *c)
{
    c->has_pck = 1;
    memcpy(c->ppid, e->ppid, 16);
    memcpy(c->pce_id, e->pceid, 2);
    tm_hex_encode(e->fmspc, 6, c->fmspc);
    c->has_platform_instance_id = e->has_pinst;
    if (e->has_pinst) memcpy(c->platform_instance_id, e->pinst, 16);
}

int tm_verify_dcap(uint16_t format, const uint8_t *ev, size_t len, const uint8_t *expected,
                   const tm_policy *p, time_t at, tm_claims *c, char *reason, size_t cap)
{
    dcap_quote q;
    int rc = dcap_parse(format, ev, len, &q, reason, cap);
    if (rc) return rc;
    const char *tag = q.tag;
    fill_claims(&q, c);
    if (expected && CRYPTO_memcmp(c->report_data, expected, 64) != 0) {
        tm_reasonf(reason, cap, "report_data does not match the session binding");
        return TM_VERIFY_EBINDING;
    }
    chain pck = {{0}, 0, 0};
    EVP_PKEY *ak = NULL;
    chain_parse(q.cert_data, q.cert_len, &pck);
    if ((rc = check_chain(&pck, 3, at, tag, "PCK certificate chain", reason, cap))) goto out;
    if (!pem_canonical(&pck, q.cert_data, q.cert_len)) {
        tm_reasonf(reason, cap, "%s: PCK certificate chain: PEM text is not in canonical form", tag);
        rc = TM_VERIFY_ECHAIN;
        goto out;
    }
    rc = TM_VERIFY_ESIGNATURE;
    if (!TM_SIG_OK(tm_ecdsa_verify_raw(X509_get0_pubkey(pck.c[0]), q.qe_report, QE_REPORT_LEN, q.qe_report_sig))) {
        tm_reasonf(reason, cap, "%s: QE report signature does not verify with the PCK certificate key", tag);
        goto out;
    }
    uint8_t h[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, q.att_key, 64) == 1 &&
             EVP_DigestUpdate(md, q.qe_auth, q.qe_auth_len) == 1 && EVP_DigestFinal_ex(md, h, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        tm_reasonf(reason, cap, "%s: hashing failed", tag);
        rc = TM_VERIFY_EINTERNAL;
        goto out;
    }
    static const uint8_t zero[32];
    if (!TM_SIG_OK(memcmp(q.qe_report + 320, h, 32) == 0 && memcmp(q.qe_report + 352, zero, 32) == 0)) {
        tm_reasonf(reason, cap,
                   "%s: QE report_data does not bind the attestation key (SHA-256(key || auth data) differs)", tag);
        goto out;
    }
    ak = tm_p256_from_raw(q.att_key);
    if (!ak) {
        tm_reasonf(reason, cap, "%s: attestation key is not a valid P-256 point", tag);
        goto out;
    }
    if (!TM_SIG_OK(tm_ecdsa_verify_raw(ak, ev, q.signed_len, q.isv_sig))) {
        tm_reasonf(reason, cap, "%s: quote signature does not verify with the attestation key", tag);
        goto out;
    }
    pck_ext e;
    if (pck_ext_parse(pck.c[0], &e) != 0) {
        tm_reasonf(reason, cap, "%s: PCK certificate: missing or malformed SGX extension (%s)", tag, SGX_EXT_OID);
        rc = TM_VERIFY_ECHAIN;
        goto out;
    }
    fill_platform(&e, c);
    size_t clen = 0;
    const uint8_t *coll = tm_policy_collateral(p, format, c->fmspc, &clen);
    if (coll) {
        if ((rc = appraise_collateral(&q, &pck, &e, coll, clen, at, c, reason, cap))) goto out;
    } else if (!tm_policy_allow_missing_collateral(p)) {
        /* Without the QE identity nobody has checked that the quoting enclave
         * is Intel's: a "QE" of the platform owner's own making would pass. */
        tm_reasonf(reason, cap,
                   "%s: no collateral for FMSPC %s (%s): the quoting enclave cannot be checked to be Intel's and "
                   "the TCB status cannot be evaluated; refused (fetch the collateral, or say "
                   "allow_missing_collateral true to accept such quotes, not recommended)",
                   tag, c->fmspc,
                   tm_policy_has_collateral_source(p, format) ? "the policy's collateral does not cover it"
                                                              : "the policy names no collateral");
        rc = TM_VERIFY_ECOLLATERAL;
        goto out;
    } else {
        c->collateral_missing_allowed = 1;
    }
    if (tm_policy_check_claims(p, c, reason, cap)) {
        rc = TM_VERIFY_EPOLICY;
        goto out;
    }
    if (c->tcb_evaluated && !tm_policy_tcb_status_ok(p, c->tcb_status)) {
        char acc[256];
        tm_policy_tcb_statuses(p, acc, sizeof acc);
        tm_reasonf(reason, cap, "%s: TCB status %s not accepted by policy (accepted: %s)", tag, c->tcb_status, acc);
        rc = TM_VERIFY_ETCB;
        goto out;
    }
    if (!c->tcb_evaluated)
        tm_reasonf(reason, cap, "ok, WARNING: no collateral, accepted because the policy says "
                   "allow_missing_collateral true (quoting enclave not checked, TCB status not evaluated)");
    rc = TM_VERIFY_OK;
out:
    EVP_PKEY_free(ak);
    chain_free(&pck);
    ERR_clear_error();
    return rc;
}

int tm_describe_dcap(uint16_t format, const uint8_t *ev, size_t len, char *buf, size_t cap)
{
    dcap_quote q;
    int rc = dcap_parse(format, ev, len, &q, buf, cap);
    if (rc) return rc;
    tm_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.format_name, sizeof c.format_name, "%s", tm_format_name(format));
    fill_claims(&q, &c);
    tm_sbuf s = {buf, cap, 0};
    if (cap) buf[0] = 0;
    tm_sb_printf(&s, "format: %s\nversion: %u\nattestation_key_type: %u\ntee_type: 0x%08x\nqe_svn: %u\npce_svn: %u\n",
                 c.format_name, q.version, q.att_key_type, (unsigned)q.tee_type, q.qe_svn, q.pce_svn);
    if (q.version == 5) tm_sb_printf(&s, "body_type: %u (TD report %s)\n", q.body_type, q.body_type == 3 ? "1.5" : "1.0");
    if (format == TM_FMT_SGX_DCAP) {
        tm_sb_printf(&s, "cpusvn: ");
        tm_sb_hex(&s, q.body, 16);
        tm_sb_printf(&s, "\nattributes: ");
        tm_sb_hex(&s, q.body + 48, 16);
        tm_sb_printf(&s, "\n");
    }
    tm_claims_fields(&s, &c);
    tm_sb_printf(&s, "debug: %s\nqe_auth_data: %zu bytes\ncertification_data: type %u, %zu bytes\n",
                 c.debug ? "true" : "false", q.qe_auth_len, q.cert_type, q.cert_len);
    chain ch = {{0}, 0, 0};
    chain_parse(q.cert_data, q.cert_len, &ch);
    for (int i = 0; i < ch.n; i++) {
        char name[128], a[80], b[80];
        cn_of(ch.c[i], name, sizeof name);
        asn1_fmt(X509_get0_notBefore(ch.c[i]), a, sizeof a);
        asn1_fmt(X509_get0_notAfter(ch.c[i]), b, sizeof b);
        tm_sb_printf(&s, "certificate[%d]: '%s' valid %s to %s\n", i, name, a, b);
    }
    pck_ext e;
    if (ch.n > 0 && pck_ext_parse(ch.c[0], &e) == 0) {
        char f[13];
        tm_hex_encode(e.fmspc, 6, f);
        tm_sb_printf(&s, "pck_fmspc: %s\npck_pce_id: %02x%02x\npck_ppid: ", f, e.pceid[0], e.pceid[1]);
        tm_sb_hex(&s, e.ppid, 16);
        if (e.has_pinst) {
            tm_sb_printf(&s, "\npck_platform_instance_id: ");
            tm_sb_hex(&s, e.pinst, 16);
        }
        tm_sb_printf(&s, "\npck_pcesvn: %u\npck_tcb_components:", e.pcesvn);
        for (int i = 0; i < 16; i++) tm_sb_printf(&s, " %u", e.comp[i]);
        tm_sb_printf(&s, "\n");
    }
    chain_free(&ch);
    return 0;
}

/* Parser entry for the fuzzer: parse only, no crypto. */
int tm_dcap_parse_only(uint16_t format, const uint8_t *ev, size_t len);
int tm_dcap_parse_only(uint16_t format, const uint8_t *ev, size_t len)
{
    dcap_quote q;
    char r[256];
    return dcap_parse(format, ev, len, &q, r, sizeof r);
}
