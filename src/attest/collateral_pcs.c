/*
 * collateral_pcs.c — Intel PCS API v4 responses and the collateral cache file,
 * as pure functions (see collateral_pcs.h; the HTTP side is in
 * fetch/collateral_fetch.c).
 *
 * What is checked before anything reaches a cache file:
 *   - signed documents: the body has exactly one document key and one
 *     "signature" (64 hex-encoded bytes); the document is an object with the
 *     fields the verifier needs (id, version, dates, FMSPC, TCB levels);
 *   - issuer chains: exactly signing certificate + Intel SGX Root CA, the
 *     root's key equal to the pinned key, the chain valid at the evaluation
 *     time (X509_verify_cert), the signature over the document's exact bytes;
 *   - CRLs: one DER CRL, signed by the pinned root (root CA CRL) or by the PCK
 *     CA of a verified chain that is the requested CA type, current.
 *
 * The pinned key is the same as dcap.c's (Intel SGX Root CA, valid to 2049).
 * dcap.c keeps its copy static; this file holds the second copy until the
 * verifier exposes one.
 *
 * Invariants: as the header says — no I/O, no global state, every OpenSSL
 * object freed on every path, ERR queue cleared before returning.
 */
#include "attest/collateral_pcs.h"
#include "attest/attest_int.h"
#include "attest/evidence.h"
#include "attest/json.h"
#include "attest/verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Intel SGX Root CA public key (P-256 x||y): see dcap.c. */
static const char intel_root_hex[] =
    "0ba9c4c0c0c86193a3fe23d6b02cda10a8bbd4e88e48b4458561a36e705525f5"
    "67918e2edc88e40d860bd0cc4ee26aacc988e505a953558c453f6b0904ae7394";

static EVP_PKEY *pinned_root(void)
{
    uint8_t xy[64];
    if (tm_hex_decode(intel_root_hex, 128, xy, sizeof xy) != 64) return NULL;
    return tm_p256_from_raw(xy);
}

static const char *const ca_names[] = {NULL, "processor", "platform"};
/* Common name of each PCK CA; the PCK CRL of that CA is issued under it. */
static const char *const ca_cns[] = {NULL, "Intel SGX PCK Processor CA", "Intel SGX PCK Platform CA"};

const char *tm_pcs_ca_name(int ca)
{
    return ca == TM_PCS_CA_PROCESSOR || ca == TM_PCS_CA_PLATFORM ? ca_names[ca] : NULL;
}

int tm_pcs_ca_from_name(const char *name)
{
    for (int i = TM_PCS_CA_PROCESSOR; name && i <= TM_PCS_CA_PLATFORM; i++)
        if (!strcmp(name, ca_names[i])) return i;
    return 0;
}

/* ------------------------------------------------------------ HTTP text */

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int tm_pcs_header_match(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) return 0;
    size_t s = nl + 1, e = len;
    while (s < e && blank(line[s])) s++;
    while (e > s && blank(line[e - 1])) e--;
    *value = line + s;
    *vlen = e - s;
    return 1;
}

static int hexdig(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *tm_pcs_url_decode(const char *in, size_t n, size_t *outlen, char *reason, size_t cap)
{
    if (n == 0 || n > TM_PCS_MAX_HEADER) {
        tm_reasonf(reason, cap, "issuer chain header is %s", n ? "too long" : "empty");
        return NULL;
    }
    char *out = malloc(n + 1);
    if (!out) {
        tm_reasonf(reason, cap, "out of memory");
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int a = i + 2 < n ? hexdig((unsigned char)in[i + 1]) : -1;
            int b = i + 2 < n ? hexdig((unsigned char)in[i + 2]) : -1;
            if (a < 0 || b < 0 || (a | b) == 0) {
                tm_reasonf(reason, cap, "issuer chain header: bad percent escape at byte %zu", i);
                free(out);
                return NULL;
            }
            out[o++] = (char)(a << 4 | b);
            i += 2;
        } else if (c < 0x20 || c == 0x7f) {
            tm_reasonf(reason, cap, "issuer chain header: control character at byte %zu", i);
            free(out);
            return NULL;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    if (outlen) *outlen = o;
    return out;
}

/* ------------------------------------------------------ signed documents */

static const char *doc_key(int doc)
{
    return doc == TM_PCS_TCB_INFO ? "tcbInfo" : doc == TM_PCS_QE_IDENTITY ? "enclaveIdentity" : NULL;
}

static const char *doc_name(int doc) { return doc == TM_PCS_TCB_INFO ? "TCB info" : "QE identity"; }

static int key_is(const tm_json *j, int t, const char *key)
{
    size_t kl = strlen(key);
    return j->tok[t].type == TM_JSON_STRING && j->tok[t].end - j->tok[t].start == kl &&
           memcmp(j->text + j->tok[t].start, key, kl) == 0;
}

/* Occurrences of `key` among the members of object token 0. */
static int key_count(const tm_json *j, const char *key)
{
    int n = 0;
    for (int k = 1, i = 0; i < j->tok[0].size && k < j->ntok; i++) {
        if (key_is(j, k, key)) n++;
        int v = k + 1;
        if (v >= j->ntok) break;
        k = j->tok[v].next;
    }
    return n;
}

int tm_pcs_parse_signed_body(int doc, const char *body, size_t len, tm_pcs_signed_body *out, char *reason,
                             size_t cap)
{
    const char *key = doc_key(doc);
    memset(out, 0, sizeof *out);
    if (!key) {
        tm_reasonf(reason, cap, "unknown document kind");
        return -1;
    }
    const char *what = doc_name(doc);
    if (len > TM_PCS_MAX_BODY) {
        tm_reasonf(reason, cap, "%s response: body too large (%zu bytes)", what, len);
        return -1;
    }
    tm_json j;
    char err[128];
    if (tm_json_parse(&j, body, len, err, sizeof err) != 0) {
        tm_reasonf(reason, cap, "%s response: not JSON (%s)", what, err);
        return -1;
    }
    int rc = -1;
    if (j.tok[0].type != TM_JSON_OBJECT) {
        tm_reasonf(reason, cap, "%s response: not a JSON object", what);
        goto out;
    }
    if (key_count(&j, key) != 1 || key_count(&j, "signature") != 1) {
        tm_reasonf(reason, cap, "%s response: expected exactly one \"%s\" and one \"signature\"", what, key);
        goto out;
    }
    int d = tm_json_get(&j, 0, key), s = tm_json_get(&j, 0, "signature");
    if (j.tok[d].type != TM_JSON_OBJECT) {
        tm_reasonf(reason, cap, "%s response: \"%s\" is not an object", what, key);
        goto out;
    }
    char hex[130];
    long hl = tm_json_str(&j, s, hex, sizeof hex);
    if (hl != 128 || tm_hex_decode(hex, 128, out->sig, 64) != 64) {
        tm_reasonf(reason, cap, "%s response: \"signature\" is not 64 hex-encoded bytes", what);
        goto out;
    }
    out->doc = body + j.tok[d].start;
    out->doc_len = j.tok[d].end - j.tok[d].start;
    rc = 0;
out:
    tm_json_free(&j);
    return rc;
}

static int str_field(const tm_json *j, const char *key, char *out, size_t cap)
{
    return tm_json_str(j, tm_json_get(j, 0, key), out, cap) < 0 ? -1 : 0;
}

static int hex_field(const tm_json *j, const char *key, uint8_t *out, size_t n)
{
    char h[130];
    long l = tm_json_str(j, tm_json_get(j, 0, key), h, sizeof h);
    return l >= 0 && (size_t)l == 2 * n && tm_hex_decode(h, (size_t)l, out, n) == (long)n ? 0 : -1;
}

static int nonempty_array(const tm_json *j, const char *key)
{
    int t = tm_json_get(j, 0, key);
    return t >= 0 && j->tok[t].type == TM_JSON_ARRAY && j->tok[t].size > 0;
}

int tm_pcs_check_doc(int doc, uint16_t format, const uint8_t fmspc[6], const char *text, size_t len, time_t at,
                     tm_pcs_dates *dates, char *reason, size_t cap)
{
    int tdx = format == TM_FMT_TDX_DCAP;
    if (!doc_key(doc) || (format != TM_FMT_SGX_DCAP && !tdx)) {
        tm_reasonf(reason, cap, "unknown document kind or format");
        return -1;
    }
    const char *what = doc_name(doc);
    tm_json j;
    char err[128], id[16] = "", d1[40], d2[40];
    if (tm_json_parse(&j, text, len, err, sizeof err) != 0) {
        tm_reasonf(reason, cap, "%s: not JSON (%s)", what, err);
        return -1;
    }
    int rc = -1;
    long long version;
    if (j.tok[0].type != TM_JSON_OBJECT || tm_json_int(&j, tm_json_get(&j, 0, "version"), &version)) {
        tm_reasonf(reason, cap, "%s: not an object with a \"version\"", what);
        goto out;
    }
    int has_id = str_field(&j, "id", id, sizeof id) == 0;
    if (doc == TM_PCS_TCB_INFO) {
        const char *want = tdx ? "TDX" : "SGX";
        /* v3 names its TEE; v2 (SGX only) has no id. */
        if (!(version == 3 || (version == 2 && !tdx))) {
            tm_reasonf(reason, cap, "%s: unsupported version %lld", what, version);
            goto out;
        }
        if ((version == 3 || has_id) && (!has_id || strcmp(id, want) != 0)) {
            tm_reasonf(reason, cap, "%s: id is \"%s\", expected \"%s\"", what, has_id ? id : "", want);
            goto out;
        }
        uint8_t f[6], pce[2];
        if (hex_field(&j, "fmspc", f, 6) || hex_field(&j, "pceId", pce, 2)) {
            tm_reasonf(reason, cap, "%s: missing or malformed fmspc/pceId", what);
            goto out;
        }
        if (fmspc && memcmp(f, fmspc, 6) != 0) {
            char a[13], b[13];
            tm_hex_encode(f, 6, a);
            tm_hex_encode(fmspc, 6, b);
            tm_reasonf(reason, cap, "%s: is for FMSPC %s, not the requested %s", what, a, b);
            goto out;
        }
    } else {
        const char *want = tdx ? "TD_QE" : "QE";
        uint8_t mrsigner[32];
        long long prodid;
        if (version != 2) {
            tm_reasonf(reason, cap, "%s: unsupported version %lld", what, version);
            goto out;
        }
        if (!has_id || strcmp(id, want) != 0) {
            tm_reasonf(reason, cap, "%s: id is \"%s\", expected \"%s\"", what, id, want);
            goto out;
        }
        if (hex_field(&j, "mrsigner", mrsigner, 32) || tm_json_int(&j, tm_json_get(&j, 0, "isvprodid"), &prodid)) {
            tm_reasonf(reason, cap, "%s: missing or malformed mrsigner/isvprodid", what);
            goto out;
        }
    }
    if (!nonempty_array(&j, "tcbLevels")) {
        tm_reasonf(reason, cap, "%s: no tcbLevels", what);
        goto out;
    }
    tm_pcs_dates d;
    if (str_field(&j, "issueDate", d1, sizeof d1) || tm_time_parse(d1, &d.issue_date) ||
        str_field(&j, "nextUpdate", d2, sizeof d2) || tm_time_parse(d2, &d.next_update) ||
        d.next_update <= d.issue_date) {
        tm_reasonf(reason, cap, "%s: missing or bad issueDate/nextUpdate", what);
        goto out;
    }
    if (at < d.issue_date) {
        tm_reasonf(reason, cap, "%s: not yet valid (issueDate %s; is the clock right?)", what, d1);
        goto out;
    }
    if (at >= d.next_update) {
        tm_reasonf(reason, cap, "%s: expired (nextUpdate %s): the service sent stale collateral", what, d2);
        goto out;
    }
    if (dates) *dates = d;
    rc = 0;
out:
    tm_json_free(&j);
    return rc;
}

/* -------------------------------------------------------------------- CRLs */

/* 1 when der[0..n) is exactly one CRL. */
static int crl_der_ok(const uint8_t *der, size_t n)
{
    if (n == 0 || n > TM_PCS_MAX_BODY) return 0;
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)n);
    int ok = crl && p == der + n;
    X509_CRL_free(crl);
    ERR_clear_error();
    return ok;
}

static uint8_t *dup_bytes(const uint8_t *b, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (c && n) memcpy(c, b, n);
    return c;
}

/* PEM text: one "X509 CRL" block, white space only around it. */
static uint8_t *crl_from_pem(const uint8_t *t, size_t n, size_t *outlen)
{
    BIO *bio = BIO_new_mem_buf(t, (int)n);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL, *out = NULL;
    long dl = 0;
    if (bio && PEM_read_bio(bio, &name, &header, &data, &dl) == 1 && !strcmp(name, "X509 CRL") && dl > 0) {
        char rest[64];
        int r, only_blank = 1;
        while (only_blank && (r = BIO_read(bio, rest, sizeof rest)) > 0)
            for (int i = 0; i < r; i++)
                if (!blank(rest[i])) only_blank = 0;
        if (only_blank) {
            out = dup_bytes(data, (size_t)dl);
            *outlen = (size_t)dl;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    ERR_clear_error();
    return out;
}

int tm_pcs_parse_crl(const uint8_t *body, size_t len, uint8_t **der, size_t *derlen, char *reason, size_t cap)
{
    *der = NULL;
    *derlen = 0;
    if (len == 0 || len > TM_PCS_MAX_BODY) {
        tm_reasonf(reason, cap, "CRL: body is %s", len ? "too large" : "empty");
        return -1;
    }
    uint8_t *out = NULL;
    size_t n = 0;
    const char *form = "DER";
    if (body[0] == 0x30) {
        out = dup_bytes(body, len);
        n = len;
    } else {
        size_t s = 0, e = len;
        while (s < e && blank((char)body[s])) s++;
        while (e > s && blank((char)body[e - 1])) e--;
        if (e - s > 10 && memcmp(body + s, "-----BEGIN", 10) == 0) {
            form = "PEM";
            out = crl_from_pem(body + s, e - s, &n);
        } else if (e > s && (e - s) % 2 == 0) {
            form = "hex";
            n = (e - s) / 2;
            out = malloc(n);
            if (out && tm_hex_decode((const char *)body + s, e - s, out, n) != (long)n) {
                free(out);
                out = NULL;
            }
        }
        if (!out) {
            tm_reasonf(reason, cap, "CRL: body is neither DER, PEM nor hex-encoded DER");
            return -1;
        }
    }
    if (!out) {
        tm_reasonf(reason, cap, "out of memory");
        return -1;
    }
    if (!crl_der_ok(out, n)) {
        tm_reasonf(reason, cap, "CRL: %s body is not exactly one DER X.509 CRL", form);
        free(out);
        return -1;
    }
    *der = out;
    *derlen = n;
    return 0;
}

/* ----------------------------------------------------------- certificates */

static void cn_of(X509_NAME *nm, char *out, size_t cap)
{
    if (X509_NAME_get_text_by_NID(nm, NID_commonName, out, (int)cap) < 0) snprintf(out, cap, "(no common name)");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
}

/* Reads up to `max` certificates from PEM text; returns how many there were
 * (certificates past `max` are counted and freed). */
static int read_certs(const char *pem, size_t len, X509 **out, int max)
{
    if (len > TM_PCS_MAX_HEADER) return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return -1;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (n < max) out[n] = x;
        else X509_free(x);
        n++;
    }
    BIO_free(bio);
    ERR_clear_error();
    return n;
}

static void free_certs(X509 **c, int n)
{
    for (int i = 0; i < n; i++) X509_free(c[i]);
}

/*
 * Issuer chain "signing certificate, Intel SGX Root CA": exactly two, root
 * key pinned, valid at `at`. Returns the signing certificate (the caller
 * frees it) or NULL with a reason.
 */
static X509 *verify_chain(const char *pem, size_t len, time_t at, const char *what, char *reason, size_t cap)
{
    X509 *c[2] = {NULL, NULL}, *leaf = NULL;
    int n = read_certs(pem, len, c, 2);
    EVP_PKEY *pin = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    if (n != 2) {
        tm_reasonf(reason, cap, "%s issuer chain: expected 2 PEM certificates, found %d", what, n < 0 ? 0 : n);
        goto out;
    }
    pin = pinned_root();
    if (!pin) {
        tm_reasonf(reason, cap, "cannot load the pinned Intel SGX Root CA key");
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(c[1]), pin) != 1) {
        char name[128];
        cn_of(X509_get_subject_name(c[1]), name, sizeof name);
        tm_reasonf(reason, cap, "%s issuer chain: root '%s' is not the pinned Intel SGX Root CA", what, name);
        goto out;
    }
    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (!store || !ctx || X509_STORE_add_cert(store, c[1]) != 1 || X509_STORE_CTX_init(ctx, store, c[0], NULL) != 1) {
        tm_reasonf(reason, cap, "out of memory");
        goto out;
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
    if (X509_verify_cert(ctx) != 1) {
        char name[128];
        cn_of(X509_get_subject_name(c[0]), name, sizeof name);
        tm_reasonf(reason, cap, "%s issuer chain: '%s' does not verify to the pinned root: %s", what, name,
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    leaf = c[0];
    c[0] = NULL;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    EVP_PKEY_free(pin);
    free_certs(c, 2);
    ERR_clear_error();
    return leaf;
}

int tm_pcs_verify_doc(const char *doc, size_t len, const uint8_t sig[64], const char *chain_pem, size_t chain_len,
                      time_t at, const char *what, char *reason, size_t cap)
{
    X509 *leaf = verify_chain(chain_pem, chain_len, at, what, reason, cap);
    if (!leaf) return -1;
    EVP_PKEY *k = X509_get0_pubkey(leaf);
    int ok = tm_is_p256(k) && tm_ecdsa_verify_raw(k, (const uint8_t *)doc, len, sig);
    X509_free(leaf);
    ERR_clear_error();
    if (!ok) {
        tm_reasonf(reason, cap, "%s: signature does not verify with the key of its issuer chain", what);
        return -1;
    }
    return 0;
}

/* ASN1_TIME -> time_t through the project's own UTC conversion. */
static int asn1_to_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    char s[40];
    if (!t || !ASN1_TIME_to_tm(t, &tm)) return -1;
    snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    return tm_time_parse(s, out);
}

int tm_pcs_verify_crl(const uint8_t *der, size_t len, const char *chain_pem, size_t chain_len, int ca, time_t at,
                      const char *what, char *reason, size_t cap)
{
    const unsigned char *p = der;
    X509_CRL *crl = len && len <= TM_PCS_MAX_BODY ? d2i_X509_CRL(NULL, &p, (long)len) : NULL;
    X509 *issuer = NULL;
    EVP_PKEY *pin = NULL;
    int rc = -1;
    char name[128];
    if (!crl || p != der + len) {
        tm_reasonf(reason, cap, "%s: not a DER CRL", what);
        goto out;
    }
    EVP_PKEY *key;
    if (!chain_pem) {
        if (!(pin = pinned_root())) {
            tm_reasonf(reason, cap, "cannot load the pinned Intel SGX Root CA key");
            goto out;
        }
        key = pin;
    } else {
        if (!(issuer = verify_chain(chain_pem, chain_len, at, what, reason, cap))) goto out;
        cn_of(X509_get_subject_name(issuer), name, sizeof name);
        if (ca && strcmp(name, ca_cns[ca == TM_PCS_CA_PLATFORM ? 2 : 1]) != 0) {
            tm_reasonf(reason, cap, "%s: issuer chain is for '%s', not the %s CA", what, name, tm_pcs_ca_name(ca));
            goto out;
        }
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0) {
            tm_reasonf(reason, cap, "%s: not issued by '%s' (its issuer chain)", what, name);
            goto out;
        }
        key = X509_get0_pubkey(issuer);
    }
    if (X509_CRL_verify(crl, key) != 1) {
        tm_reasonf(reason, cap, "%s: signature does not verify%s", what,
                   chain_pem ? " with its issuer" : " with the pinned Intel SGX Root CA");
        goto out;
    }
    time_t lu, nu;
    char a[32];
    if (asn1_to_time(X509_CRL_get0_lastUpdate(crl), &lu) || asn1_to_time(X509_CRL_get0_nextUpdate(crl), &nu)) {
        tm_reasonf(reason, cap, "%s: missing or bad thisUpdate/nextUpdate", what);
        goto out;
    }
    if (at < lu) {
        tm_time_format(lu, a, sizeof a);
        tm_reasonf(reason, cap, "%s: not yet valid (thisUpdate %s; is the clock right?)", what, a);
        goto out;
    }
    if (at >= nu) {
        tm_time_format(nu, a, sizeof a);
        tm_reasonf(reason, cap, "%s: expired (nextUpdate %s): the service sent a stale CRL", what, a);
        goto out;
    }
    rc = 0;
out:
    X509_CRL_free(crl);
    X509_free(issuer);
    EVP_PKEY_free(pin);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------------ quote */

/* FMSPC from the SGX extension: SEQUENCE OF SEQUENCE { OID, value }, item
 * 1.2.840.113741.1.13.1.4 an OCTET STRING of 6 bytes. */
static int pck_fmspc(X509 *leaf, uint8_t fmspc[6])
{
    ASN1_OBJECT *ext_oid = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    ASN1_OBJECT *fmspc_oid = OBJ_txt2obj("1.2.840.113741.1.13.1.4", 1);
    STACK_OF(ASN1_TYPE) *items = NULL;
    int rc = -1, idx = ext_oid && fmspc_oid ? X509_get_ext_by_OBJ(leaf, ext_oid, -1) : -1;
    ASN1_OCTET_STRING *os = idx >= 0 ? X509_EXTENSION_get_data(X509_get_ext(leaf, idx)) : NULL;
    if (!os) goto out;
    const unsigned char *p = ASN1_STRING_get0_data(os);
    items = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(os));
    for (int i = 0; items && i < sk_ASN1_TYPE_num(items) && rc != 0; i++) {
        ASN1_TYPE *it = sk_ASN1_TYPE_value(items, i);
        if (ASN1_TYPE_get(it) != V_ASN1_SEQUENCE) continue;
        const unsigned char *q = ASN1_STRING_get0_data(it->value.sequence);
        STACK_OF(ASN1_TYPE) *pair = d2i_ASN1_SEQUENCE_ANY(NULL, &q, ASN1_STRING_length(it->value.sequence));
        if (pair && sk_ASN1_TYPE_num(pair) == 2) {
            ASN1_TYPE *o = sk_ASN1_TYPE_value(pair, 0), *v = sk_ASN1_TYPE_value(pair, 1);
            if (ASN1_TYPE_get(o) == V_ASN1_OBJECT && OBJ_cmp(o->value.object, fmspc_oid) == 0 &&
                ASN1_TYPE_get(v) == V_ASN1_OCTET_STRING && ASN1_STRING_length(v->value.octet_string) == 6) {
                memcpy(fmspc, ASN1_STRING_get0_data(v->value.octet_string), 6);
                rc = 0;
            }
        }
        sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
    }
out:
    sk_ASN1_TYPE_pop_free(items, ASN1_TYPE_free);
    ASN1_OBJECT_free(ext_oid);
    ASN1_OBJECT_free(fmspc_oid);
    ERR_clear_error();
    return rc;
}

int tm_pcs_quote_info(const uint8_t *quote, size_t len, uint16_t *format, uint8_t fmspc[6], int *ca, char *reason,
                      size_t cap)
{
    uint16_t fmt = tm_evidence_guess_format(quote, len);
    if (fmt != TM_FMT_SGX_DCAP && fmt != TM_FMT_TDX_DCAP) {
        tm_reasonf(reason, cap, "quote: not an SGX (v3) or TDX (v4) DCAP quote");
        return -1;
    }
    char *buf = malloc(8192);
    if (!buf) {
        tm_reasonf(reason, cap, "out of memory");
        return -1;
    }
    int bad = tm_evidence_describe(fmt, quote, len, buf, 8192);
    if (bad) tm_reasonf(reason, cap, "quote: %s", buf);
    free(buf);
    if (bad) return -1;
    /* The PEM chain (certification data type 5) follows the header and the
     * report body; the parse above checked that it is there. */
    static const char marker[] = "-----BEGIN CERTIFICATE-----";
    size_t skip = 48 + (fmt == TM_FMT_TDX_DCAP ? 584 : 384);
    const uint8_t *pem = len <= skip ? NULL : memmem(quote + skip, len - skip, marker, sizeof marker - 1);
    X509 *c[3] = {NULL, NULL, NULL};
    int n = pem ? read_certs((const char *)pem, len - (size_t)(pem - quote), c, 3) : 0;
    int rc = -1;
    char name[128];
    if (n != 3) {
        tm_reasonf(reason, cap, "quote: PCK certificate chain has %d certificates, expected 3", n < 0 ? 0 : n);
        goto out;
    }
    if (pck_fmspc(c[0], fmspc)) {
        tm_reasonf(reason, cap, "quote: PCK certificate has no FMSPC (SGX extension 1.2.840.113741.1.13.1.4)");
        goto out;
    }
    cn_of(X509_get_subject_name(c[1]), name, sizeof name);
    *ca = 0;
    for (int i = TM_PCS_CA_PROCESSOR; i <= TM_PCS_CA_PLATFORM; i++)
        if (!strcmp(name, ca_cns[i])) *ca = i;
    if (!*ca) {
        tm_reasonf(reason, cap, "quote: PCK CA '%s' is neither the Processor nor the Platform CA", name);
        goto out;
    }
    *format = fmt;
    rc = 0;
out:
    free_certs(c, n < 3 ? (n < 0 ? 0 : n) : 3);
    return rc;
}

/* ------------------------------------------------------------- cache file */

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *s, const char *p, size_t n)
{
    if (s->oom) return;
    if (s->n + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 4096;
        while (nc < s->n + n + 1) nc *= 2;
        char *nb = realloc(s->b, nc);
        if (!nb) { s->oom = 1; return; }
        s->b = nb;
        s->cap = nc;
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = 0;
}

static void sb_str(sbuf *s, const char *p) { sb_put(s, p, strlen(p)); }

/* A JSON string member `"key": "escaped text"`. */
static void sb_member(sbuf *s, const char *key, const char *text, size_t n, int last)
{
    sb_str(s, "  \"");
    sb_str(s, key);
    sb_str(s, "\": \"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_put(s, e, 2); }
        else if (c == '\n') sb_str(s, "\\n");
        else if (c < 0x20 || c == 0x7f) { snprintf(e, sizeof e, "\\u%04x", c); sb_str(s, e); }
        else sb_put(s, (const char *)&c, 1);
    }
    sb_str(s, last ? "\"\n" : "\",\n");
}

static void sb_hex_member(sbuf *s, const char *key, const uint8_t *b, size_t n)
{
    char *h = malloc(2 * n + 1);
    if (!h) { s->oom = 1; return; }
    tm_hex_encode(b, n, h);
    sb_member(s, key, h, 2 * n, 0);
    free(h);
}

char *tm_pcs_cache_json(const tm_pcs_collateral *c, size_t *len)
{
    sbuf s = {NULL, 0, 0, 0};
    sb_str(&s, "{\n");
    sb_member(&s, "pck_crl_issuer_chain", c->pck_crl_chain, strlen(c->pck_crl_chain), 0);
    sb_hex_member(&s, "root_ca_crl", c->root_ca_crl, c->root_ca_crl_len);
    sb_hex_member(&s, "pck_crl", c->pck_crl, c->pck_crl_len);
    sb_member(&s, "tcb_info_issuer_chain", c->tcb_info_chain, strlen(c->tcb_info_chain), 0);
    sb_member(&s, "tcb_info", c->tcb_info, c->tcb_info_len, 0);
    sb_hex_member(&s, "tcb_info_signature", c->tcb_info_sig, 64);
    sb_member(&s, "qe_identity_issuer_chain", c->qe_identity_chain, strlen(c->qe_identity_chain), 0);
    sb_member(&s, "qe_identity", c->qe_identity, c->qe_identity_len, 0);
    char sig[129];
    tm_hex_encode(c->qe_identity_sig, 64, sig);
    sb_member(&s, "qe_identity_signature", sig, 128, 1);
    sb_str(&s, "}\n");
    if (s.oom) {
        free(s.b);
        return NULL;
    }
    if (len) *len = s.n;
    return s.b;
}

int tm_pcs_cache_name(uint16_t format, const uint8_t fmspc[6], char *out, size_t cap)
{
    if (format != TM_FMT_SGX_DCAP && format != TM_FMT_TDX_DCAP) return -1;
    char h[13];
    tm_hex_encode(fmspc, 6, h);
    int n = snprintf(out, cap, "%s-%s.json", format == TM_FMT_TDX_DCAP ? "tdx" : "sgx", h);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* issueDate of the signed document held as string member `key`. */
static int cached_issue(const tm_json *outer, const char *key, time_t *t)
{
    size_t n;
    char *text = tm_json_strdup(outer, tm_json_get(outer, 0, key), &n);
    tm_json d;
    char err[8], date[40];
    int rc = -1;
    if (text && tm_json_parse(&d, text, n, err, sizeof err) == 0) {
        if (d.tok[0].type == TM_JSON_OBJECT && str_field(&d, "issueDate", date, sizeof date) == 0 &&
            tm_time_parse(date, t) == 0)
            rc = 0;
        tm_json_free(&d);
    }
    free(text);
    return rc;
}

/* thisUpdate of the hex-encoded DER CRL held as string member `key`. */
static int cached_crl_this(const tm_json *outer, const char *key, time_t *t)
{
    size_t n;
    char *hex = tm_json_strdup(outer, tm_json_get(outer, 0, key), &n);
    uint8_t *der = hex ? malloc(n / 2 + 1) : NULL;
    X509_CRL *crl = NULL;
    int rc = -1;
    if (der && tm_hex_decode(hex, n, der, n / 2) == (long)(n / 2)) {
        const unsigned char *p = der;
        crl = d2i_X509_CRL(NULL, &p, (long)(n / 2));
        if (crl && p == der + n / 2 && asn1_to_time(X509_CRL_get0_lastUpdate(crl), t) == 0) rc = 0;
    }
    X509_CRL_free(crl);
    free(der);
    free(hex);
    ERR_clear_error();
    return rc;
}

int tm_pcs_read_cache_dates(const char *json, size_t len, tm_pcs_cache_dates *d, char *reason, size_t cap)
{
    tm_json j;
    char err[128];
    if (tm_json_parse(&j, json, len, err, sizeof err) != 0) {
        tm_reasonf(reason, cap, "not JSON (%s)", err);
        return -1;
    }
    int rc = -1;
    if (j.tok[0].type != TM_JSON_OBJECT) tm_reasonf(reason, cap, "not a JSON object");
    else if (cached_issue(&j, "tcb_info", &d->tcb_issue))
        tm_reasonf(reason, cap, "no tcb_info with an issueDate");
    else if (cached_issue(&j, "qe_identity", &d->qe_issue))
        tm_reasonf(reason, cap, "no qe_identity with an issueDate");
    else if (cached_crl_this(&j, "pck_crl", &d->pck_crl_this))
        tm_reasonf(reason, cap, "no pck_crl with a thisUpdate");
    else if (cached_crl_this(&j, "root_ca_crl", &d->root_crl_this))
        tm_reasonf(reason, cap, "no root_ca_crl with a thisUpdate");
    else
        rc = 0;
    tm_json_free(&j);
    return rc;
}

int tm_pcs_rollback_check(const tm_pcs_cache_dates *cached, const tm_pcs_cache_dates *fresh, char *reason,
                          size_t cap)
{
    const struct { const char *what, *date; time_t old, now; } items[] = {
        {"TCB info", "issueDate", cached->tcb_issue, fresh->tcb_issue},
        {"QE identity", "issueDate", cached->qe_issue, fresh->qe_issue},
        {"PCK CRL", "thisUpdate", cached->pck_crl_this, fresh->pck_crl_this},
        {"root CA CRL", "thisUpdate", cached->root_crl_this, fresh->root_crl_this},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (items[i].now < items[i].old) {
            char a[32], b[32];
            tm_time_format(items[i].now, a, sizeof a);
            tm_time_format(items[i].old, b, sizeof b);
            tm_reasonf(reason, cap, "rollback refused: fetched %s has %s %s, older than the cached one (%s)",
                       items[i].what, items[i].date, a, b);
            return -1;
        }
    return 0;
}
