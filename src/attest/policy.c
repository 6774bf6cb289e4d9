/*
 * policy.c — attestation policy: parsing and the questions verifiers ask.
 *
 * Owns the tm_policy object. Syntax (docs/attestation-policy.md): one
 * `key value` per line, '#' starts a comment, blank lines ignored; unknown
 * keys and bad values are errors reported as name:line, never ignored.
 * Invariants: every stored measurement has the exact length of its kind;
 * TCB status names are restricted to Intel's known set (a typo must not
 * silently accept nothing, or everything); collateral is held in memory so
 * appraisal itself performs no I/O. Reading files here uses only stdio,
 * which wasi-libc provides.
 */
#include "attest/attest_int.h"
#include "attest/policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

enum { E_MRENCLAVE, E_MRSIGNER, E_MRTD, E_SIM_MEAS, E_SIM_KEY, E_SET };

typedef struct {
    int kind;
    int signer;     /* E_SET: entry matches MRSIGNER */
    char name[64];  /* E_SET: set name */
    uint8_t v[48];
    size_t len;
} entry;

#define MAX_STATUS 8
#define MAX_COLLATERAL (8u << 20)

struct tm_policy {
    unsigned formats;  /* bit per format id; 0 = every format */
    entry *e;
    size_t ne, cape;
    char status[MAX_STATUS][40];
    int nstatus;       /* 0 = default (UpToDate) */
    long isv_prodid;   /* -1 = any */
    long min_isvsvn;
    int allow_debug;
    int require_collateral;
    uint8_t *coll[5];
    size_t coll_len[5];
    char basedir[512]; /* directory of the file being loaded, for relative paths */
};

static const char *known_status[] = {
    "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
};

tm_policy *tm_policy_new(void)
{
    tm_policy *p = calloc(1, sizeof *p);
    if (p) p->isv_prodid = -1;
    return p;
}

void tm_policy_free(tm_policy *p)
{
    if (!p) return;
    for (int i = 0; i < 5; i++) free(p->coll[i]);
    free(p->e);
    free(p);
}

static int add_entry(tm_policy *p, const entry *e)
{
    if (p->ne == p->cape) {
        size_t nc = p->cape ? p->cape * 2 : 8;
        entry *n = realloc(p->e, nc * sizeof *n);
        if (!n) return -1;
        p->e = n;
        p->cape = nc;
    }
    p->e[p->ne++] = *e;
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len, size_t max, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tm_reasonf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0, c = 4096;
    uint8_t *b = malloc(c);
    while (b) {
        if (n == c) {
            if (c >= max) { free(b); b = NULL; tm_reasonf(err, cap, "%s is too large", path); fclose(f); return -1; }
            uint8_t *nb = realloc(b, c * 2);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            c *= 2;
        }
        size_t r = fread(b + n, 1, c - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b || bad) {
        free(b);
        tm_reasonf(err, cap, "cannot read %s", path);
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

static void resolve(const tm_policy *p, const char *v, char *out, size_t cap)
{
    if (v[0] != '/' && p->basedir[0]) snprintf(out, cap, "%s/%s", p->basedir, v);
    else snprintf(out, cap, "%s", v);
}

static int parse_hex(const char *v, uint8_t *out, size_t want)
{
    size_t l = strlen(v);
    return l == 2 * want && tm_hex_decode(v, l, out, want) == (long)want ? 0 : -1;
}

static int parse_u16(const char *v, long *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0])) return -1;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < 0 || x > 65535) return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true")) { *out = 1; return 0; }
    if (!strcmp(v, "false")) { *out = 0; return 0; }
    return -1;
}

/* SHA-256 of the DER SPKI of a PEM public (or private) key file. */
static int key_file_hash(const char *path, uint8_t out[32], char *err, size_t cap)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_file(path, &data, &len, 1u << 20, err, cap)) return -1;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (!k && bio) {
        BIO_free(bio);
        bio = BIO_new_mem_buf(data, (int)len);
        k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    }
    BIO_free(bio);
    free(data);
    ERR_clear_error();
    int rc = -1;
    unsigned char *der = NULL;
    int dl;
    if (!k) tm_reasonf(err, cap, "%s: not a PEM public or private key", path);
    else if (!tm_is_p256(k)) tm_reasonf(err, cap, "%s: not a P-256 key", path);
    else if ((dl = i2d_PUBKEY(k, &der)) <= 0 ||
             EVP_Digest(der, (size_t)dl, out, NULL, EVP_sha256(), NULL) != 1)
        tm_reasonf(err, cap, "%s: cannot encode the key", path);
    else rc = 0;
    OPENSSL_free(der);
    EVP_PKEY_free(k);
    return rc;
}

/* Splits "a b" into a and b (b: rest after whitespace). */
static int split2(const char *v, char *a, size_t acap, const char **b)
{
    size_t i = 0;
    while (v[i] && !isspace((unsigned char)v[i])) i++;
    if (i == 0 || i >= acap || !v[i]) return -1;
    memcpy(a, v, i);
    a[i] = 0;
    while (isspace((unsigned char)v[i])) i++;
    *b = v + i;
    return **b ? 0 : -1;
}

int tm_policy_set(tm_policy *p, const char *key, const char *value, char *err, size_t cap)
{
    entry e;
    memset(&e, 0, sizeof e);
    const char *v = value ? value : "";
    if (!*v) {
        tm_reasonf(err, cap, "%s: missing value", key);
        return -1;
    }
    if (!strcmp(key, "format")) {
        uint16_t f;
        if (tm_format_from_name(v, &f)) {
            tm_reasonf(err, cap, "format: unknown evidence format '%s' (sim, sgx-dcap, tdx-dcap, sev-snp)", v);
            return -1;
        }
        p->formats |= 1u << f;
        return 0;
    }
    struct { const char *k; int kind; size_t len; } hk[] = {
        {"mrenclave", E_MRENCLAVE, 32}, {"mrsigner", E_MRSIGNER, 32},
        {"mrtd", E_MRTD, 48}, {"sim_measurement", E_SIM_MEAS, 32},
    };
    for (size_t i = 0; i < sizeof hk / sizeof hk[0]; i++)
        if (!strcmp(key, hk[i].k)) {
            e.kind = hk[i].kind;
            e.len = hk[i].len;
            if (parse_hex(v, e.v, e.len)) {
                tm_reasonf(err, cap, "%s: expected %zu hex digits", key, 2 * e.len);
                return -1;
            }
            return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
        }
    if (!strcmp(key, "isv_prodid") || !strcmp(key, "min_isvsvn")) {
        long x;
        if (parse_u16(v, &x)) {
            tm_reasonf(err, cap, "%s: expected a number 0..65535", key);
            return -1;
        }
        if (key[0] == 'i') p->isv_prodid = x;
        else p->min_isvsvn = x;
        return 0;
    }
    if (!strcmp(key, "allow_debug") || !strcmp(key, "require_collateral")) {
        int b;
        if (parse_bool(v, &b)) {
            tm_reasonf(err, cap, "%s: expected true or false", key);
            return -1;
        }
        if (key[0] == 'a') p->allow_debug = b;
        else p->require_collateral = b;
        return 0;
    }
    if (!strcmp(key, "tcb_status")) {
        for (size_t i = 0; i < sizeof known_status / sizeof known_status[0]; i++)
            if (!strcmp(v, known_status[i])) {
                for (int k = 0; k < p->nstatus; k++)
                    if (!strcmp(p->status[k], v)) return 0;
                if (p->nstatus == MAX_STATUS) break;
                snprintf(p->status[p->nstatus++], sizeof p->status[0], "%s", v);
                return 0;
            }
        tm_reasonf(err, cap, "tcb_status: unknown status '%s' (UpToDate, SWHardeningNeeded, ConfigurationNeeded, "
                   "ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked)", v);
        return -1;
    }
    if (!strcmp(key, "collateral")) {
        char fmt[32], path[1024];
        const char *file;
        uint16_t f;
        if (split2(v, fmt, sizeof fmt, &file) || tm_format_from_name(fmt, &f) ||
            (f != TM_FMT_SGX_DCAP && f != TM_FMT_TDX_DCAP)) {
            tm_reasonf(err, cap, "collateral: expected 'sgx-dcap PATH' or 'tdx-dcap PATH'");
            return -1;
        }
        resolve(p, file, path, sizeof path);
        uint8_t *data;
        size_t len;
        char e2[512];
        if (read_file(path, &data, &len, MAX_COLLATERAL, e2, sizeof e2)) {
            tm_reasonf(err, cap, "collateral: %s", e2);
            return -1;
        }
        free(p->coll[f]);
        p->coll[f] = data;
        p->coll_len[f] = len;
        return 0;
    }
    if (!strcmp(key, "sim_trusted_key")) {
        e.kind = E_SIM_KEY;
        e.len = 32;
        if (strlen(v) == 64 && parse_hex(v, e.v, 32) == 0)
            return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
        char path[1024], e2[512];
        resolve(p, v, path, sizeof path);
        if (key_file_hash(path, e.v, e2, sizeof e2)) {
            tm_reasonf(err, cap, "sim_trusted_key: %s", e2);
            return -1;
        }
        return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
    }
    if (!strcmp(key, "measurement_set")) {
        const char *hex;
        e.kind = E_SET;
        if (split2(v, e.name, sizeof e.name, &hex)) {
            tm_reasonf(err, cap, "measurement_set: expected 'NAME HEX'");
            return -1;
        }
        if (!strncmp(hex, "mrsigner:", 9)) {
            e.signer = 1;
            hex += 9;
        }
        size_t hl = strlen(hex);
        e.len = hl / 2;
        if ((hl != 64 && !(hl == 96 && !e.signer)) || parse_hex(hex, e.v, e.len)) {
            tm_reasonf(err, cap, "measurement_set: expected 64 or 96 hex digits (or mrsigner:64 hex digits)");
            return -1;
        }
        return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
    }
    tm_reasonf(err, cap, "unknown key '%s'", key);
    return -1;
}

int tm_policy_parse(tm_policy *p, const char *text, size_t len, const char *name, char *err, size_t errcap)
{
    size_t i = 0;
    int line = 0;
    while (i < len) {
        line++;
        size_t s = i;
        while (i < len && text[i] != '\n') i++;
        size_t e = i;
        if (i < len) i++;
        char buf[2048];
        if (e - s >= sizeof buf) {
            tm_reasonf(err, errcap, "%s:%d: line too long", name, line);
            return -1;
        }
        memcpy(buf, text + s, e - s);
        buf[e - s] = 0;
        if (memchr(buf, 0, e - s)) {
            tm_reasonf(err, errcap, "%s:%d: NUL byte in line", name, line);
            return -1;
        }
        char *h = strchr(buf, '#');
        if (h) *h = 0;
        char *k = buf;
        while (isspace((unsigned char)*k)) k++;
        char *end = k + strlen(k);
        while (end > k && isspace((unsigned char)end[-1])) *--end = 0;
        if (!*k) continue;
        char *v = k;
        while (*v && !isspace((unsigned char)*v)) v++;
        if (*v) {
            *v++ = 0;
            while (isspace((unsigned char)*v)) v++;
        }
        char e2[768];
        if (tm_policy_set(p, k, v, e2, sizeof e2)) {
            tm_reasonf(err, errcap, "%s:%d: %s", name, line, e2);
            return -1;
        }
    }
    return 0;
}

int tm_policy_load(tm_policy *p, const char *path, char *err, size_t errcap)
{
    uint8_t *data;
    size_t len;
    if (read_file(path, &data, &len, 1u << 20, err, errcap)) return -1;
    char saved[sizeof p->basedir];
    memcpy(saved, p->basedir, sizeof saved);
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(p->basedir, sizeof p->basedir, "%.*s", (int)(slash - path), path);
    else p->basedir[0] = 0;
    if (slash == path) snprintf(p->basedir, sizeof p->basedir, "/");
    int rc = tm_policy_parse(p, (const char *)data, len, path, err, errcap);
    memcpy(p->basedir, saved, sizeof saved);
    free(data);
    return rc;
}

int tm_policy_set_collateral(tm_policy *p, uint16_t format, const uint8_t *data, size_t len)
{
    if (format >= 5 || !data) return -1;
    uint8_t *c = malloc(len ? len : 1);
    if (!c) return -1;
    memcpy(c, data, len);
    free(p->coll[format]);
    p->coll[format] = c;
    p->coll_len[format] = len;
    return 0;
}

int tm_policy_format_allowed(const tm_policy *p, uint16_t format)
{
    if (format == 0 || format >= 32) return 0;
    return p->formats == 0 || (p->formats & (1u << format)) != 0;
}

const uint8_t *tm_policy_collateral(const tm_policy *p, uint16_t format, size_t *len)
{
    if (format >= 5 || !p->coll[format]) return NULL;
    *len = p->coll_len[format];
    return p->coll[format];
}

int tm_policy_require_collateral(const tm_policy *p) { return p->require_collateral; }

int tm_policy_sim_key_trusted(const tm_policy *p, const uint8_t h[32])
{
    for (size_t i = 0; i < p->ne; i++)
        if (p->e[i].kind == E_SIM_KEY && memcmp(p->e[i].v, h, 32) == 0) return 1;
    return 0;
}

int tm_policy_tcb_status_ok(const tm_policy *p, const char *status)
{
    if (p->nstatus == 0) return strcmp(status, "UpToDate") == 0;
    for (int i = 0; i < p->nstatus; i++)
        if (!strcmp(p->status[i], status)) return 1;
    return 0;
}

void tm_policy_tcb_statuses(const tm_policy *p, char *buf, size_t cap)
{
    if (!cap) return;
    buf[0] = 0;
    if (p->nstatus == 0) { snprintf(buf, cap, "UpToDate"); return; }
    size_t n = 0;
    for (int i = 0; i < p->nstatus && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "," : "", p->status[i]);
}

/* -1: no rule of this kind; 1: value allowed; 0: rules exist, none matches. */
static int listed(const tm_policy *p, int kind, const uint8_t *v, size_t len)
{
    int any = 0;
    for (size_t i = 0; i < p->ne; i++)
        if (p->e[i].kind == kind) {
            any = 1;
            if (p->e[i].len == len && memcmp(p->e[i].v, v, len) == 0) return 1;
        }
    return any ? 0 : -1;
}

static int refuse(const char *what, const uint8_t *v, size_t len, char *reason, size_t cap)
{
    char h[97];
    tm_hex_encode(v, len, h);
    tm_reasonf(reason, cap, "policy: %s %s is not allowed", what, h);
    return -1;
}

int tm_policy_check_claims(const tm_policy *p, const tm_claims *c, char *reason, size_t cap)
{
    int pins_sgx = listed(p, E_MRENCLAVE, NULL, 0) == 0 || listed(p, E_MRSIGNER, NULL, 0) == 0;
    int pins_tdx = listed(p, E_MRTD, NULL, 0) == 0;
    int pins_sim = listed(p, E_SIM_MEAS, NULL, 0) == 0;
    int pins_any = pins_sgx || pins_tdx || pins_sim;
    if (c->has_sgx) {
        if (listed(p, E_MRENCLAVE, c->mrenclave, 32) == 0) return refuse("MRENCLAVE", c->mrenclave, 32, reason, cap);
        if (listed(p, E_MRSIGNER, c->mrsigner, 32) == 0) return refuse("MRSIGNER", c->mrsigner, 32, reason, cap);
        if (p->isv_prodid >= 0 && c->product_id != p->isv_prodid) {
            tm_reasonf(reason, cap, "policy: ISVPRODID %u, expected %ld", c->product_id, p->isv_prodid);
            return -1;
        }
        if (c->security_version < p->min_isvsvn) {
            tm_reasonf(reason, cap, "policy: ISVSVN %u below the minimum %ld", c->security_version, p->min_isvsvn);
            return -1;
        }
    }
    if (c->has_tdx && listed(p, E_MRTD, c->mrtd, 48) == 0) return refuse("MRTD", c->mrtd, 48, reason, cap);
    if (c->has_sim && listed(p, E_SIM_MEAS, c->sim_measurement, 32) == 0)
        return refuse("sim measurement", c->sim_measurement, 32, reason, cap);
    /* A policy that pins measurements must not let evidence of another format
     * through just because that format has no rule of its own. */
    if (pins_any && !((c->has_sgx && pins_sgx) || (c->has_tdx && pins_tdx) || (c->has_sim && pins_sim))) {
        tm_reasonf(reason, cap, "policy: no measurement rule for %s evidence, while the policy pins measurements "
                   "of other formats", c->format_name);
        return -1;
    }
    if (c->debug && !p->allow_debug) {
        tm_reasonf(reason, cap, "policy: debug-mode TEE refused (allow_debug is false)");
        return -1;
    }
    return 0;
}

int tm_policy_in_set(const tm_policy *p, const char *name, const tm_claims *c)
{
    if (!p || !name || !c) return 0;
    for (size_t i = 0; i < p->ne; i++) {
        const entry *e = &p->e[i];
        if (e->kind != E_SET || strcmp(e->name, name) != 0) continue;
        if (e->signer) {
            if (c->has_sgx && memcmp(e->v, c->mrsigner, 32) == 0) return 1;
        } else if (c->measurement_len == e->len && memcmp(e->v, c->measurement, e->len) == 0) {
            return 1;
        }
    }
    return 0;
}
