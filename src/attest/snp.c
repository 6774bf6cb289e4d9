/*
 * snp.c — appraisal of AMD SEV-SNP evidence (`sev-snp`, 0x0004).
 *
 * Evidence = the 0x4A0-byte ATTESTATION_REPORT (SEV-SNP ABI, little-endian),
 * optionally followed by the certificate table that configfs-tsm returns as
 * `auxblob` (GHCB extended guest request): entries { GUID[16] (RFC 4122 byte
 * order), u32 offset, u32 length } relative to the table's start, ended by an
 * all-zero entry, then the DER certificates. VCEK 63da758d-e664-4564-adc5-
 * f4b93be8accd, VLEK a8074bc2-a25a-483e-aae6-39c045a0b8a1, ASK c0b406a4-a803-
 * 4952-9743-3fb6014cd0ae, ARK 4ab7b379-bbac-4fe4-a02f-05aef327c782; other
 * GUIDs are skipped. provider_tsm.c produces exactly this concatenation.
 *
 * Checks, in order, each with its own reason (attested-tls.md, sev-snp):
 *   parse (version >= 2, signature algorithm 1, reserved signature bytes
 *   zero, table well formed, every byte outside entries zero) -> binding
 *   (constant time) -> VCEK/VLEK (table, else the policy's VCEK cache by
 *   CHIP_ID) -> chain: ARK key equal to the pin of the VCEK's product
 *   (snp_roots.h), ARK self-signed, ASK by ARK, VCEK by ASK, RSA-PSS, every
 *   certificate valid at the evaluation time -> VCEK TCB extensions equal
 *   REPORTED_TCB and hwID equals CHIP_ID -> report signature (ECDSA P-384,
 *   SHA-384 over bytes 0..0x29F, r and s little-endian) -> policy.
 *
 * Invariants: nothing from the report or table is trusted before the check
 * that covers it; every offset and length is checked before use;
 * certificate extensions are read with OpenSSL's ASN.1 decoders (no DER
 * walking by hand); OpenSSL objects are freed on every path (snp_ctx).
 */
#include "attest/attest_int.h"
#include "attest/snp_roots.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define SNP_REPORT_LEN 0x4A0
#define SNP_SIGNED_LEN 0x2A0
#define SNP_SIG_COMP 72        /* r and s fields, little-endian, zero-padded */
#define SNP_P384_LEN 48
#define TABLE_ENTRY 24
#define TABLE_MAX_ENTRIES 64

enum { CERT_VCEK, CERT_VLEK, CERT_ASK, CERT_ARK, CERT_N };

/* RFC 4122 byte order of the GUIDs above. */
static const uint8_t guids[CERT_N][16] = {
    [CERT_VCEK] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd},
    [CERT_VLEK] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1},
    [CERT_ASK] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae},
    [CERT_ARK] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82},
};
static const char *const cert_names[CERT_N] = {"VCEK", "VLEK", "ASK", "ARK"};

typedef struct {
    const uint8_t *rep;               /* SNP_REPORT_LEN bytes */
    const uint8_t *cert[CERT_N];      /* DER in the table, or NULL */
    size_t cert_len[CERT_N];
    int table_entries;                /* entries before the terminator (0: no table) */
} snp_evidence;

static const struct product {
    const char *name;
    const unsigned char *spki;
    size_t spki_len;
    const char *pem;
    int turin_tcb;                    /* TCB_VERSION layout with the FMC SPL */
} products[] = {
    {"Milan", ark_spki_milan, sizeof ark_spki_milan, ask_ark_pem_milan, 0},
    {"Genoa", ark_spki_genoa, sizeof ark_spki_genoa, ask_ark_pem_genoa, 0},
    {"Turin", ark_spki_turin, sizeof ark_spki_turin, ask_ark_pem_turin, 1},
};

/* ------------------------------------------------------------ parsing */

/* TCB_VERSION: Milan/Genoa: bootloader 0, TEE 1, SNP 6, microcode 7;
 * Turin: FMC 0, bootloader 1, TEE 2, SNP 3, microcode 7. */
static void tcb_decode(uint64_t raw, int turin, tm_snp_tcb *t)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(raw >> (8 * i));
    memset(t, 0, sizeof *t);
    if (turin) {
        t->fmc = b[0];
        t->has_fmc = 1;
        t->bootloader = b[1];
        t->tee = b[2];
        t->snp = b[3];
    } else {
        t->bootloader = b[0];
        t->tee = b[1];
        t->snp = b[6];
    }
    t->microcode = b[7];
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

typedef struct { size_t off, len; } range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int table_parse(const uint8_t *t, size_t tl, snp_evidence *e, char *reason, size_t cap)
{
    range r[TABLE_MAX_ENTRIES];
    int n = 0;
    size_t end = 0;
    for (;;) {
        size_t at = (size_t)n * TABLE_ENTRY;
        if (at > tl || tl - at < TABLE_ENTRY) {
            tm_reasonf(reason, cap, "sev-snp: certificate table truncated (no terminating entry in %zu bytes)", tl);
            return TM_VERIFY_EMALFORMED;
        }
        const uint8_t *ent = t + at;
        if (all_zero(ent, TABLE_ENTRY)) {
            end = at + TABLE_ENTRY;
            break;
        }
        if (n == TABLE_MAX_ENTRIES) {
            tm_reasonf(reason, cap, "sev-snp: certificate table has more than %d entries", TABLE_MAX_ENTRIES);
            return TM_VERIFY_EMALFORMED;
        }
        r[n].off = tm_rd32le(ent + 16);
        r[n].len = tm_rd32le(ent + 20);
        n++;
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *ent = t + (size_t)i * TABLE_ENTRY;
        if (r[i].len == 0 || r[i].off < end || r[i].off > tl || r[i].len > tl - r[i].off) {
            tm_reasonf(reason, cap, "sev-snp: certificate table entry %d (offset %zu, length %zu) lies outside the "
                       "%zu bytes after the entries", i, r[i].off, r[i].len, tl);
            return TM_VERIFY_EMALFORMED;
        }
        for (int k = 0; k < CERT_N; k++) {
            if (memcmp(ent, guids[k], 16) != 0) continue;
            if (e->cert[k]) {
                tm_reasonf(reason, cap, "sev-snp: certificate table has two %s entries", cert_names[k]);
                return TM_VERIFY_EMALFORMED;
            }
            e->cert[k] = t + r[i].off;
            e->cert_len[k] = r[i].len;
        }
    }
    /* No byte may change unnoticed: certificates are checked by the chain,
     * everything else must be zero padding. */
    qsort(r, (size_t)n, sizeof r[0], cmp_range);
    size_t pos = end;
    for (int i = 0; i < n; i++) {
        if (r[i].off < pos) {
            tm_reasonf(reason, cap, "sev-snp: certificate table entries overlap");
            return TM_VERIFY_EMALFORMED;
        }
        if (!all_zero(t + pos, r[i].off - pos)) goto garbage;
        pos = r[i].off + r[i].len;
    }
    if (!all_zero(t + pos, tl - pos)) goto garbage;
    e->table_entries = n;
    return 0;
garbage:
    tm_reasonf(reason, cap, "sev-snp: non-zero bytes in the certificate table outside its certificates");
    return TM_VERIFY_EMALFORMED;
}

static int snp_parse(const uint8_t *b, size_t n, snp_evidence *e, tm_claims *c, char *reason, size_t cap)
{
    memset(e, 0, sizeof *e);
    if (n < SNP_REPORT_LEN) {
        tm_reasonf(reason, cap, "sev-snp: report truncated (%zu of %d bytes)", n, SNP_REPORT_LEN);
        return TM_VERIFY_EMALFORMED;
    }
    uint32_t ver = tm_rd32le(b);
    if (ver < 2 || ver > 5) {
        tm_reasonf(reason, cap, "sev-snp: unsupported report version %u (2..5)", (unsigned)ver);
        return TM_VERIFY_EMALFORMED;
    }
    uint32_t algo = tm_rd32le(b + 0x34);
    if (algo != 1) {
        tm_reasonf(reason, cap, "sev-snp: signature algorithm %u, expected 1 (ECDSA P-384 with SHA-384)",
                   (unsigned)algo);
        return TM_VERIFY_EMALFORMED;
    }
    const uint8_t *sig = b + SNP_SIGNED_LEN;
    if (!all_zero(sig + SNP_P384_LEN, SNP_SIG_COMP - SNP_P384_LEN) ||
        !all_zero(sig + SNP_SIG_COMP + SNP_P384_LEN, SNP_SIG_COMP - SNP_P384_LEN) ||
        !all_zero(sig + 2 * SNP_SIG_COMP, SNP_REPORT_LEN - SNP_SIGNED_LEN - 2 * SNP_SIG_COMP)) {
        tm_reasonf(reason, cap, "sev-snp: non-zero bytes in the unused part of the signature field");
        return TM_VERIFY_EMALFORMED;
    }
    e->rep = b;
    c->has_snp = 1;
    c->snp_version = ver;
    c->guest_svn = tm_rd32le(b + 0x04);
    c->security_version = (uint16_t)(c->guest_svn > 0xFFFF ? 0xFFFF : c->guest_svn);
    c->snp_policy = tm_rd64le(b + 0x08);
    c->vmpl = tm_rd32le(b + 0x30);
    c->snp_signing_key = (int)(tm_rd32le(b + 0x48) >> 2 & 7);
    memcpy(c->report_data, b + 0x50, 64);
    memcpy(c->snp_measurement, b + 0x90, 48);
    memcpy(c->measurement, b + 0x90, 48);
    c->measurement_len = 48;
    memcpy(c->host_data, b + 0xC0, 32);
    memcpy(c->id_key_digest, b + 0xE0, 48);
    memcpy(c->author_key_digest, b + 0x110, 48);
    c->reported_tcb_raw = tm_rd64le(b + 0x180);
    /* Until the VCEK names the product: v3+ reports carry the CPUID family
     * (0x1A = Turin); older ones are Milan/Genoa. */
    tcb_decode(c->reported_tcb_raw, ver >= 3 && b[0x188] == 0x1A, &c->reported_tcb);
    memcpy(c->chip_id, b + 0x1A0, 64);
    c->debug = (int)(c->snp_policy >> 19 & 1); /* POLICY.DEBUG */
    snprintf(c->tcb_status, sizeof c->tcb_status, "n/a");
    if (n > SNP_REPORT_LEN) return table_parse(b + SNP_REPORT_LEN, n - SNP_REPORT_LEN, e, reason, cap);
    return 0;
}

/* ------------------------------------------------------ certificates */

typedef struct {
    X509 *leaf, *ask, *ark;
    EVP_PKEY *pin;
} snp_ctx;

static void ctx_free(snp_ctx *k)
{
    X509_free(k->leaf);
    X509_free(k->ask);
    X509_free(k->ark);
    EVP_PKEY_free(k->pin);
}

static X509 *der_cert(const uint8_t *p, size_t n)
{
    if (!p || n == 0 || n > 0x7fffffff) return NULL;
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)n);
    if (x && q != p + n) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static void cn_of(X509 *x, char *out, size_t cap)
{
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap) < 0)
        snprintf(out, cap, "(no common name)");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
}

/* Raw value of the extension `oid` (NULL when absent). */
static const ASN1_OCTET_STRING *ext_data(X509 *x, const char *oid)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int idx = o ? X509_get_ext_by_OBJ(x, o, -1) : -1;
    ASN1_OBJECT_free(o);
    return idx < 0 ? NULL : X509_EXTENSION_get_data(X509_get_ext(x, idx));
}

/* AMD's VCEK extensions: 1.3.6.1.4.1.3704.1.{1 structVersion, 2 productName,
 * 3.1 bootloader, 3.2 TEE, 3.3 SNP, 3.8 microcode, 3.9 FMC (Turin) SPL,
 * 4 hwID (raw 64 bytes; an OCTET STRING wrapper is accepted too)}. */
#define AMD_OID "1.3.6.1.4.1.3704.1."

static int ext_int(X509 *x, const char *oid, unsigned *out)
{
    const ASN1_OCTET_STRING *d = ext_data(x, oid);
    if (!d) return -1;
    const unsigned char *p = ASN1_STRING_get0_data(d);
    long n = ASN1_STRING_length(d);
    ASN1_INTEGER *i = d2i_ASN1_INTEGER(NULL, &p, n);
    int64_t v = -1;
    int ok = i && p == ASN1_STRING_get0_data(d) + n && ASN1_INTEGER_get_int64(&v, i) == 1 && v >= 0 && v <= 255;
    ASN1_INTEGER_free(i);
    if (!ok) return -1;
    *out = (unsigned)v;
    return 0;
}

static int ext_hwid(X509 *x, uint8_t out[64])
{
    const ASN1_OCTET_STRING *d = ext_data(x, AMD_OID "4");
    if (!d) return -1;
    const unsigned char *p = ASN1_STRING_get0_data(d);
    long n = ASN1_STRING_length(d);
    if (n == 64) {
        memcpy(out, p, 64);
        return 0;
    }
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &p, n);
    int ok = os && p == ASN1_STRING_get0_data(d) + n && ASN1_STRING_length(os) == 64;
    if (ok) memcpy(out, ASN1_STRING_get0_data(os), 64);
    ASN1_OCTET_STRING_free(os);
    return ok ? 0 : -1;
}

/* Product of a VCEK/VLEK from its productName ("Milan-B0" -> Milan). */
static const struct product *leaf_product(X509 *x, char *name, size_t cap)
{
    snprintf(name, cap, "(none)");
    const ASN1_OCTET_STRING *d = ext_data(x, AMD_OID "2");
    if (!d) return NULL;
    const unsigned char *p = ASN1_STRING_get0_data(d);
    long n = ASN1_STRING_length(d);
    ASN1_IA5STRING *s = d2i_ASN1_IA5STRING(NULL, &p, n);
    const struct product *pr = NULL;
    if (s && p == ASN1_STRING_get0_data(d) + n) {
        int l = ASN1_STRING_length(s);
        const unsigned char *t = ASN1_STRING_get0_data(s);
        size_t k = 0;
        for (; k + 1 < cap && (int)k < l; k++) name[k] = t[k] >= 0x20 && t[k] < 0x7f ? (char)t[k] : '?';
        name[k] = 0;
        for (size_t i = 0; i < sizeof products / sizeof products[0]; i++) {
            size_t pl = strlen(products[i].name);
            if (!strncmp(name, products[i].name, pl) && (name[pl] == 0 || name[pl] == '-')) pr = &products[i];
        }
    }
    ASN1_IA5STRING_free(s);
    return pr;
}

static int leaf_tcb(X509 *x, int turin, tm_snp_tcb *t)
{
    unsigned bl, tee, snp, uc, fmc = 0;
    memset(t, 0, sizeof *t);
    if (ext_int(x, AMD_OID "3.1", &bl) || ext_int(x, AMD_OID "3.2", &tee) || ext_int(x, AMD_OID "3.3", &snp) ||
        ext_int(x, AMD_OID "3.8", &uc) || (turin && ext_int(x, AMD_OID "3.9", &fmc)))
        return -1;
    t->bootloader = (uint8_t)bl;
    t->tee = (uint8_t)tee;
    t->snp = (uint8_t)snp;
    t->microcode = (uint8_t)uc;
    t->fmc = (uint8_t)fmc;
    t->has_fmc = turin;
    return 0;
}

static int tcb_equal(const tm_snp_tcb *a, const tm_snp_tcb *b)
{
    return a->bootloader == b->bootloader && a->tee == b->tee && a->snp == b->snp && a->microcode == b->microcode &&
           a->fmc == b->fmc;
}

static void tcb_str(const tm_snp_tcb *t, char *out, size_t cap)
{
    int n = snprintf(out, cap, "bootloader=%u,tee=%u,snp=%u,microcode=%u", t->bootloader, t->tee, t->snp,
                     t->microcode);
    if (t->has_fmc && n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, ",fmc=%u", t->fmc);
}

/*
 * The VCEK from the policy's cache: the certificate whose hwID is CHIP_ID and
 * whose TCB is REPORTED_TCB; failing that one for this chip at another TCB
 * (so that the TCB check names the mismatch). NULL when the cache has none.
 */
static X509 *cached_vcek(const tm_policy *p, const tm_claims *c)
{
    X509 *other = NULL;
    for (size_t i = 0; i < tm_policy_snp_vcek_count(p); i++) {
        size_t n = 0;
        const uint8_t *d = tm_policy_snp_vcek(p, i, &n);
        X509 *x = der_cert(d, n);
        uint8_t hw[64];
        char pn[32];
        tm_snp_tcb t;
        const struct product *pr = x ? leaf_product(x, pn, sizeof pn) : NULL;
        if (!x || ext_hwid(x, hw) || memcmp(hw, c->chip_id, 64) != 0) {
            X509_free(x);
            continue;
        }
        if (pr && leaf_tcb(x, pr->turin_tcb, &t) == 0) {
            tm_snp_tcb r;
            tcb_decode(c->reported_tcb_raw, pr->turin_tcb, &r);
            if (tcb_equal(&t, &r)) {
                X509_free(other);
                return x;
            }
        }
        if (!other) other = x;
        else X509_free(x);
    }
    return other;
}

static int is_pss(X509 *x) { return X509_get_signature_nid(x) == NID_rsassaPss; }

static int check_validity(X509 *x, time_t at, const char *what, char *reason, size_t cap)
{
    time_t t = at;
    if (X509_cmp_time(X509_get0_notBefore(x), &t) == -1 && X509_cmp_time(X509_get0_notAfter(x), &t) == 1) return 0;
    char name[128], a[48], b[48], w[32];
    struct tm tm;
    cn_of(x, name, sizeof name);
    snprintf(a, sizeof a, "?");
    snprintf(b, sizeof b, "?");
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm))
        snprintf(a, sizeof a, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    tm_time_format(at, w, sizeof w);
    tm_reasonf(reason, cap, "sev-snp: %s '%s' is not valid at %s (valid %s to %s)", what, name, w, a, b);
    return -1;
}

/* child signed by parent: names chain, parent is a CA, RSA-PSS signature verifies. */
static int check_link(X509 *child, X509 *parent, const char *cwhat, char *reason, size_t cap)
{
    char cn[128], pn[128];
    cn_of(child, cn, sizeof cn);
    cn_of(parent, pn, sizeof pn);
    if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0) {
        tm_reasonf(reason, cap, "sev-snp: %s '%s' is not issued by '%s'", cwhat, cn, pn);
        return -1;
    }
    if (X509_check_ca(parent) < 1) {
        tm_reasonf(reason, cap, "sev-snp: '%s' is not a CA certificate", pn);
        return -1;
    }
    if (!is_pss(child)) {
        tm_reasonf(reason, cap, "sev-snp: %s '%s' is not signed with RSA-PSS", cwhat, cn);
        return -1;
    }
    EVP_PKEY *k = X509_get0_pubkey(parent);
    if (!k || X509_verify(child, k) != 1) {
        tm_reasonf(reason, cap, "sev-snp: signature of %s '%s' does not verify with '%s'", cwhat, cn, pn);
        return -1;
    }
    return 0;
}

/* Built-in ASK (idx 0) or ARK (idx 1) of a product. */
static X509 *builtin_cert(const struct product *pr, int idx)
{
    BIO *bio = BIO_new_mem_buf(pr->pem, -1);
    X509 *x = NULL;
    for (int i = 0; bio && i <= idx; i++) {
        X509_free(x);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    }
    BIO_free(bio);
    return x;
}

static int check_chain(snp_ctx *k, const snp_evidence *e, const struct product *pr, int vlek, time_t at,
                       char *reason, size_t cap)
{
    const char *lname = vlek ? "VLEK" : "VCEK";
    char name[128], pinned[32];
    snprintf(pinned, sizeof pinned, "ARK-%s", pr->name);
    const unsigned char *sp = pr->spki;
    k->pin = d2i_PUBKEY(NULL, &sp, (long)pr->spki_len);
    if (!k->pin) {
        tm_reasonf(reason, cap, "sev-snp: cannot load the pinned %s key", pinned);
        return TM_VERIFY_EINTERNAL;
    }
    if (e->cert[CERT_ASK]) {
        if (!(k->ask = der_cert(e->cert[CERT_ASK], e->cert_len[CERT_ASK]))) {
            tm_reasonf(reason, cap, "sev-snp: the certificate table's ASK is not a DER certificate");
            return TM_VERIFY_ECHAIN;
        }
    } else if (vlek) {
        tm_reasonf(reason, cap, "sev-snp: VLEK without its signing key (ASVK) in the certificate table");
        return TM_VERIFY_ECHAIN;
    } else {
        k->ask = builtin_cert(pr, 0);
    }
    if (e->cert[CERT_ARK]) {
        if (!(k->ark = der_cert(e->cert[CERT_ARK], e->cert_len[CERT_ARK]))) {
            tm_reasonf(reason, cap, "sev-snp: the certificate table's ARK is not a DER certificate");
            return TM_VERIFY_ECHAIN;
        }
    } else {
        k->ark = builtin_cert(pr, 1);
    }
    if (!k->ask || !k->ark) {
        tm_reasonf(reason, cap, "sev-snp: cannot load the built-in %s certificates", pr->name);
        return TM_VERIFY_EINTERNAL;
    }
    /* From the root down, so that the first failure is the most fundamental. */
    EVP_PKEY *rk = X509_get0_pubkey(k->ark);
    cn_of(k->ark, name, sizeof name);
    if (!rk || EVP_PKEY_eq(rk, k->pin) != 1) {
        tm_reasonf(reason, cap, "sev-snp: root '%s' is not the pinned %s key (the %s's product is %s)", name,
                   pinned, lname, pr->name);
        return TM_VERIFY_ECHAIN;
    }
    if (!is_pss(k->ark) || X509_verify(k->ark, k->pin) != 1) {
        tm_reasonf(reason, cap, "sev-snp: %s is not self-signed with RSA-PSS by the pinned key", pinned);
        return TM_VERIFY_ECHAIN;
    }
    if (check_validity(k->ark, at, "ARK", reason, cap) || check_validity(k->ask, at, "ASK", reason, cap) ||
        check_validity(k->leaf, at, lname, reason, cap) || check_link(k->ask, k->ark, "ASK", reason, cap) ||
        check_link(k->leaf, k->ask, lname, reason, cap))
        return TM_VERIFY_ECHAIN;
    if (!tm_is_ec_curve(X509_get0_pubkey(k->leaf), "secp384r1")) {
        tm_reasonf(reason, cap, "sev-snp: the %s key is not an ECDSA P-384 key", lname);
        return TM_VERIFY_ECHAIN;
    }
    return 0;
}

/* ------------------------------------------------------------ verifier */

int tm_verify_snp(const uint8_t *ev, size_t len, const uint8_t *expected, const tm_policy *p, time_t at,
                  tm_claims *c, char *reason, size_t cap)
{
    snp_evidence e;
    int rc = snp_parse(ev, len, &e, c, reason, cap);
    if (rc) return rc;
    if (expected && CRYPTO_memcmp(c->report_data, expected, 64) != 0) {
        tm_reasonf(reason, cap, "report_data does not match the session binding");
        return TM_VERIFY_EBINDING;
    }
    snp_ctx k;
    memset(&k, 0, sizeof k);
    char chip[17];
    tm_hex_encode(c->chip_id, 8, chip);
    int vlek = c->snp_signing_key == 1;
    if (c->snp_signing_key != 0 && !vlek) {
        tm_reasonf(reason, cap, "sev-snp: the report names no signing key (SIGNING_KEY %d, expected 0 VCEK or 1 VLEK)",
                   c->snp_signing_key);
        rc = TM_VERIFY_ESIGNATURE;
        goto out;
    }
    rc = TM_VERIFY_ECHAIN;
    int leaf_idx = vlek ? CERT_VLEK : CERT_VCEK;
    if (e.cert[leaf_idx]) {
        if (!(k.leaf = der_cert(e.cert[leaf_idx], e.cert_len[leaf_idx]))) {
            tm_reasonf(reason, cap, "sev-snp: the certificate table's %s is not a DER certificate",
                       cert_names[leaf_idx]);
            goto out;
        }
    } else if (!vlek) {
        k.leaf = cached_vcek(p, c);
    }
    if (!k.leaf) {
        if (vlek)
            tm_reasonf(reason, cap, "sev-snp: the report is signed by a VLEK, and the evidence carries none");
        else
            tm_reasonf(reason, cap, "sev-snp: no VCEK for CHIP_ID %s... (none in the evidence's certificate table, "
                       "none for this chip in the policy's snp_vcek / snp_vcek_dir)", chip);
        goto out;
    }
    char pname[32];
    const struct product *pr = leaf_product(k.leaf, pname, sizeof pname);
    if (!pr) {
        tm_reasonf(reason, cap, "sev-snp: %s product '%s' has no pinned AMD root (Milan, Genoa, Turin)",
                   cert_names[leaf_idx], pname);
        goto out;
    }
    snprintf(c->snp_product, sizeof c->snp_product, "%s", pr->name);
    tcb_decode(c->reported_tcb_raw, pr->turin_tcb, &c->reported_tcb);
    if ((rc = check_chain(&k, &e, pr, vlek, at, reason, cap))) goto out;
    rc = TM_VERIFY_ECHAIN;
    tm_snp_tcb lt;
    if (leaf_tcb(k.leaf, pr->turin_tcb, &lt)) {
        tm_reasonf(reason, cap, "sev-snp: %s lacks its TCB extensions (%s3.x)", cert_names[leaf_idx], AMD_OID);
        goto out;
    }
    if (!tcb_equal(&lt, &c->reported_tcb)) {
        char a[96], b[96];
        tcb_str(&lt, a, sizeof a);
        tcb_str(&c->reported_tcb, b, sizeof b);
        tm_reasonf(reason, cap, "sev-snp: %s TCB (%s) differs from the report's REPORTED_TCB (%s)",
                   cert_names[leaf_idx], a, b);
        goto out;
    }
    if (!vlek) {
        uint8_t hw[64];
        if (ext_hwid(k.leaf, hw)) {
            tm_reasonf(reason, cap, "sev-snp: VCEK lacks its hwID extension (%s4)", AMD_OID);
            goto out;
        }
        if (memcmp(hw, c->chip_id, 64) != 0) {
            char h[17];
            tm_hex_encode(hw, 8, h);
            tm_reasonf(reason, cap, "sev-snp: VCEK hwID %s... differs from the report's CHIP_ID %s...", h, chip);
            goto out;
        }
    }
    rc = TM_VERIFY_ESIGNATURE;
    const uint8_t *sig = ev + SNP_SIGNED_LEN;
    if (!tm_ecdsa_verify_rs(X509_get0_pubkey(k.leaf), EVP_sha384(), ev, SNP_SIGNED_LEN, sig, sig + SNP_SIG_COMP,
                            SNP_P384_LEN, 1)) {
        tm_reasonf(reason, cap, "sev-snp: report signature does not verify with the %s key", cert_names[leaf_idx]);
        goto out;
    }
    if (tm_policy_check_claims(p, c, reason, cap)) {
        rc = TM_VERIFY_EPOLICY;
        goto out;
    }
    rc = TM_VERIFY_OK;
out:
    ctx_free(&k);
    ERR_clear_error();
    return rc;
}

int tm_describe_snp(const uint8_t *ev, size_t len, char *buf, size_t cap)
{
    tm_claims c;
    snp_evidence e;
    memset(&c, 0, sizeof c);
    snprintf(c.format_name, sizeof c.format_name, "sev-snp");
    int rc = snp_parse(ev, len, &e, &c, buf, cap);
    if (rc) return rc;
    tm_sbuf s = {buf, cap, 0};
    if (cap) buf[0] = 0;
    tm_sb_printf(&s, "format: sev-snp\n");
    tm_claims_fields(&s, &c);
    tm_sb_printf(&s, "debug: %s\ncertificate_table: %d entries\n", c.debug ? "true" : "false", e.table_entries);
    for (int i = 0; i < CERT_N; i++) {
        if (!e.cert[i]) continue;
        X509 *x = der_cert(e.cert[i], e.cert_len[i]);
        char name[128] = "(not a DER certificate)";
        if (x) cn_of(x, name, sizeof name);
        tm_sb_printf(&s, "certificate[%s]: '%s', %zu bytes\n", cert_names[i], name, e.cert_len[i]);
        X509_free(x);
    }
    ERR_clear_error();
    return 0;
}
