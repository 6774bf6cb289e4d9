/*
 * policy.c — attestation policy: parsing, the files it names, refresh, and
 * the questions verifiers ask.
 *
 * Owns the tm_policy object. Syntax (docs/attestation-policy.md): one
 * `key value` per line, '#' starts a comment, blank lines ignored; unknown
 * keys and bad values are errors reported as name:line, never ignored.
 * Invariants: every stored value has the exact length of its kind (table
 * `kinds` below); TCB status names are restricted to Intel's known set (a
 * typo must not silently accept nothing, or everything); collateral and
 * VCEKs are held in memory so appraisal performs no I/O; the policy fails
 * closed (see policy.h) and every setting that widens it is reported by
 * tm_policy_warnings(). Reading files here uses only stdio, dirent and stat,
 * which wasi-libc provides.
 */
#include "attest/attest_int.h"
#include "attest/policy.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* Kinds of values a policy pins. Order matters only for the table below. */
enum {
    K_MRENCLAVE, K_MRSIGNER,
    K_MRTD, K_RTMR0, K_RTMR1, K_RTMR2, K_RTMR3, K_MRCONFIGID, K_MROWNER, K_MROWNERCONFIG,
    K_XFAM, K_TDATTR,
    K_SNP_MEAS, K_SNP_HOST_DATA, K_SNP_ID_KEY, K_SNP_AUTHOR_KEY,
    K_SIM_MEAS,
    K_PPID, K_PINST, K_FMSPC, K_PCEID, K_CHIP_ID,
    K_NPIN,           /* end of the pin kinds in `kinds` */
    K_PRIMARY = K_NPIN, /* measurement_set NAME HEX: the primary measurement */
    K_SIM_KEY, K_SET,
};

#define F_SGX (1u << TM_FMT_SGX_DCAP)
#define F_TDX (1u << TM_FMT_TDX_DCAP)
#define F_SNP (1u << TM_FMT_SEV_SNP)
#define F_SIM (1u << TM_FMT_SIM)

/* The bit of `formats` for a format id: platform formats 1..4 at their id,
 * +key formats 0x0101..0x0104 at 16 + their platform id; 0 for unknown ids. */
static unsigned format_mask(uint16_t f)
{
    if (f >= TM_FMT_SIM && f <= TM_FMT_SEV_SNP) return 1u << f;
    if (tm_format_is_keyatt(f)) return 1u << (16 + tm_format_platform(f));
    return 0;
}

/* key: policy key; field: name inside typed measurement_set entries (NULL:
 * not allowed there); label: in messages; measurement: counts as a
 * measurement pin (software identity, not a value the host chooses). */
static const struct kind {
    const char *key, *field, *label;
    unsigned formats;
    size_t len;
    int measurement;
} kinds[K_NPIN] = {
    [K_MRENCLAVE] = {"mrenclave", "mrenclave", "MRENCLAVE", F_SGX, 32, 1},
    [K_MRSIGNER] = {"mrsigner", "mrsigner", "MRSIGNER", F_SGX, 32, 1},
    [K_MRTD] = {"mrtd", "mrtd", "MRTD", F_TDX, 48, 1},
    [K_RTMR0] = {"rtmr0", "rtmr0", "RTMR0", F_TDX, 48, 1},
    [K_RTMR1] = {"rtmr1", "rtmr1", "RTMR1", F_TDX, 48, 1},
    [K_RTMR2] = {"rtmr2", "rtmr2", "RTMR2", F_TDX, 48, 1},
    [K_RTMR3] = {"rtmr3", "rtmr3", "RTMR3", F_TDX, 48, 1},
    [K_MRCONFIGID] = {"mrconfigid", "mrconfigid", "MRCONFIGID", F_TDX, 48, 0},
    [K_MROWNER] = {"mrowner", "mrowner", "MROWNER", F_TDX, 48, 0},
    [K_MROWNERCONFIG] = {"mrownerconfig", "mrownerconfig", "MROWNERCONFIG", F_TDX, 48, 0},
    [K_XFAM] = {"xfam", "xfam", "XFAM", F_TDX, 8, 0},
    [K_TDATTR] = {"td_attributes", "td_attributes", "TDATTRIBUTES", F_TDX, 8, 0},
    [K_SNP_MEAS] = {"snp_measurement", "measurement", "MEASUREMENT", F_SNP, 48, 1},
    [K_SNP_HOST_DATA] = {"snp_host_data", "host_data", "HOST_DATA", F_SNP, 32, 0},
    [K_SNP_ID_KEY] = {"snp_id_key_digest", "id_key_digest", "ID_KEY_DIGEST", F_SNP, 48, 1},
    [K_SNP_AUTHOR_KEY] = {"snp_author_key_digest", "author_key_digest", "AUTHOR_KEY_DIGEST", F_SNP, 48, 1},
    [K_SIM_MEAS] = {"sim_measurement", "measurement", "sim measurement", F_SIM, 32, 1},
    [K_PPID] = {"ppid", NULL, "platform PPID", F_SGX | F_TDX, 16, 0},
    [K_PINST] = {"platform_instance_id", NULL, "platform instance id", F_SGX | F_TDX, 16, 0},
    [K_FMSPC] = {"fmspc", NULL, "platform FMSPC", F_SGX | F_TDX, 6, 0},
    [K_PCEID] = {"pce_id", NULL, "platform PCE id", F_SGX | F_TDX, 2, 0},
    [K_CHIP_ID] = {"snp_chip_id", NULL, "platform CHIP_ID", F_SNP, 64, 0},
};

#define MAX_COND 12

typedef struct {
    int kind;
    uint8_t v[64];
    size_t len;
} cond;

typedef struct {
    int kind;          /* K_* */
    uint8_t v[64];
    size_t len;
    /* K_SET only */
    char name[64];
    int signer;        /* old form mrsigner:HEX */
    uint16_t format;   /* typed entry: its format; 0 = old untyped form */
    cond c[MAX_COND];
    int nc;
} entry;

typedef struct { uint8_t *p; size_t n; } blob;

typedef struct {
    uint16_t format;
    char fmspc[13];
    blob b;
} dir_coll;

/* A file or directory the policy read, as it was then. */
typedef struct {
    char *path;
    int exists;
    long long size, mtime_s, mtime_ns, ino;
} source;

#define MAX_STATUS 8
#define MAX_COLLATERAL (8u << 20)
#define MAX_DIR_FILES 1024
#define MAX_VCEK (64u << 10)

struct tm_policy {
    int refs;
    unsigned formats;  /* bit per format id; 0 = every format */
    entry *e;
    size_t ne, cape;
    char status[MAX_STATUS][40];
    int nstatus;       /* 0 = default (UpToDate) */
    long isv_prodid;   /* -1 = any */
    long min_isvsvn;
    int allow_debug, allow_missing_collateral, allow_any_measurement, require_sept_ve_disable;
    int snp_allow_migrate_ma, snp_allow_smt;
    long snp_max_vmpl;
    long long snp_min_guest_svn;
    long long max_key_lifetime; /* +key: seconds an attestation key may still be valid */
    int has_snp_min_tcb;
    tm_snp_tcb snp_min_tcb;
    blob coll[5];      /* explicit `collateral FORMAT PATH`, by format id */
    dir_coll *dc;
    size_t ndc;
    int has_collateral_dir;
    blob *vcek;
    size_t nvcek;
    char *path;        /* tm_policy_load's file, for refresh */
    source *src;
    size_t nsrc;
    char basedir[512]; /* directory of the file being loaded, for relative paths */
};

static const char *known_status[] = {
    "UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded",
    "OutOfDate", "OutOfDateConfigurationNeeded", "Revoked",
};

tm_policy *tm_policy_new(void)
{
    tm_policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->refs = 1;
    p->isv_prodid = -1;
    p->require_sept_ve_disable = 1;
    p->snp_allow_smt = 1;
    p->snp_max_vmpl = 0;
    p->max_key_lifetime = TM_POLICY_MAX_KEY_LIFETIME;
    return p;
}

tm_policy *tm_policy_ref(tm_policy *p)
{
    if (p) p->refs++;
    return p;
}

void tm_policy_free(tm_policy *p)
{
    if (!p || --p->refs > 0) return;
    for (int i = 0; i < 5; i++) free(p->coll[i].p);
    for (size_t i = 0; i < p->ndc; i++) free(p->dc[i].b.p);
    free(p->dc);
    for (size_t i = 0; i < p->nvcek; i++) free(p->vcek[i].p);
    free(p->vcek);
    for (size_t i = 0; i < p->nsrc; i++) free(p->src[i].path);
    free(p->src);
    free(p->path);
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

/* ------------------------------------------------------------ files */

static void stat_source(const char *path, source *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    if (stat(path, &st) != 0) return;
    s->exists = 1;
    s->size = (long long)st.st_size;
    s->mtime_s = (long long)st.st_mtim.tv_sec;
    s->mtime_ns = (long long)st.st_mtim.tv_nsec;
    s->ino = (long long)st.st_ino;
}

/* Remembers a file or directory the policy depends on (best effort: a failed
 * allocation only means that refresh may miss a change of that file). */
static void track(tm_policy *p, const char *path)
{
    source *n = realloc(p->src, (p->nsrc + 1) * sizeof *n);
    if (!n) return;
    p->src = n;
    source s;
    stat_source(path, &s);
    s.path = strdup(path);
    if (s.path) p->src[p->nsrc++] = s;
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
            if (c >= max) {
                free(b);
                fclose(f);
                tm_reasonf(err, cap, "%s is too large", path);
                return -1;
            }
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

/* read_file + track. */
static int read_tracked(tm_policy *p, const char *path, uint8_t **out, size_t *len, size_t max, char *err,
                        size_t cap)
{
    track(p, path);
    return read_file(path, out, len, max, err, cap);
}

static void resolve(const tm_policy *p, const char *v, char *out, size_t cap)
{
    if (v[0] != '/' && p->basedir[0]) snprintf(out, cap, "%s/%s", p->basedir, v);
    else snprintf(out, cap, "%s", v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the regular entries of a directory, sorted; NULL-terminated
 * array (free with free_names). -1 with a reason. */
static int list_dir(const char *dir, char ***out, size_t *n, char *err, size_t cap)
{
    DIR *d = opendir(dir);
    if (!d) {
        tm_reasonf(err, cap, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char **v = NULL;
    size_t k = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; /* also the writers' hidden temp files */
        if (k == MAX_DIR_FILES) {
            tm_reasonf(err, cap, "directory %s has more than %d entries", dir, MAX_DIR_FILES);
            rc = -1;
            break;
        }
        char **nv = realloc(v, (k + 2) * sizeof *nv);
        if (!nv || !(nv[k] = strdup(de->d_name))) {
            if (nv) v = nv;
            tm_reasonf(err, cap, "out of memory");
            rc = -1;
            break;
        }
        v = nv;
        v[++k] = NULL;
    }
    closedir(d);
    if (rc == 0 && k) qsort(v, k, sizeof *v, cmp_str);
    *out = v;
    *n = k;
    return rc;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ------------------------------------------------------------ values */

static int parse_hex(const char *v, uint8_t *out, size_t want)
{
    size_t l = strlen(v);
    return l == 2 * want && tm_hex_decode(v, l, out, want) == (long)want ? 0 : -1;
}

static int parse_num(const char *v, long long max, long long *out)
{
    char *end;
    if (!isdigit((unsigned char)v[0])) return -1;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < 0 || x > max) return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "true")) { *out = 1; return 0; }
    if (!strcmp(v, "false")) { *out = 0; return 0; }
    return -1;
}

/* Value of a pin of `kind`. XFAM and TDATTRIBUTES are 64-bit numbers written
 * as 16 hex digits (optional 0x), stored big-endian. */
static int parse_pin(int kind, const char *v, uint8_t *out)
{
    if ((kind == K_XFAM || kind == K_TDATTR) && (v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))) v += 2;
    return parse_hex(v, out, kinds[kind].len);
}

/* SHA-256 of the DER SPKI of a PEM public (or private) key file. */
static int key_file_hash(tm_policy *p, const char *path, uint8_t out[32], char *err, size_t cap)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (read_tracked(p, path, &data, &len, 1u << 20, err, cap)) return -1;
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

/* snp_min_tcb bootloader=N,tee=N,snp=N,microcode=N[,fmc=N] (missing = 0). */
static int parse_snp_tcb(const char *v, tm_snp_tcb *t, char *err, size_t cap)
{
    memset(t, 0, sizeof *t);
    char buf[256];
    if (strlen(v) >= sizeof buf) goto bad;
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long x;
        if (!eq) goto bad;
        *eq = 0;
        if (parse_num(eq + 1, 255, &x)) goto bad;
        if (!strcmp(tok, "bootloader")) t->bootloader = (uint8_t)x;
        else if (!strcmp(tok, "tee")) t->tee = (uint8_t)x;
        else if (!strcmp(tok, "snp")) t->snp = (uint8_t)x;
        else if (!strcmp(tok, "microcode")) t->microcode = (uint8_t)x;
        else if (!strcmp(tok, "fmc")) { t->fmc = (uint8_t)x; t->has_fmc = 1; }
        else goto bad;
    }
    return 0;
bad:
    tm_reasonf(err, cap, "snp_min_tcb: expected bootloader=N,tee=N,snp=N,microcode=N[,fmc=N] (0..255 each)");
    return -1;
}

static int format_bit(const char *name, unsigned *bit, uint16_t *fmt)
{
    static const struct { const char *n; uint16_t f; } m[] = {
        {"sgx", TM_FMT_SGX_DCAP}, {"tdx", TM_FMT_TDX_DCAP}, {"snp", TM_FMT_SEV_SNP}, {"sim", TM_FMT_SIM},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(name, m[i].n)) {
            *fmt = m[i].f;
            *bit = 1u << m[i].f;
            return 0;
        }
    return -1;
}

/* measurement_set NAME HEX | NAME mrsigner:HEX | NAME FMT:field=HEX[,field=HEX...] */
static int parse_set(tm_policy *p, const char *v, char *err, size_t cap)
{
    entry e;
    memset(&e, 0, sizeof e);
    e.kind = K_SET;
    const char *rest;
    static const char usage[] = "measurement_set: expected 'NAME HEX', 'NAME mrsigner:HEX' or "
                                "'NAME FORMAT:field=HEX[,field=HEX...]' (FORMAT sgx, tdx, snp, sim)";
    if (split2(v, e.name, sizeof e.name, &rest)) {
        tm_reasonf(err, cap, "%s", usage);
        return -1;
    }
    const char *colon = strchr(rest, ':');
    if (colon && strncmp(rest, "mrsigner:", 9) != 0) {
        char fname[8];
        unsigned bit;
        size_t fl = (size_t)(colon - rest);
        if (fl >= sizeof fname) goto bad_format;
        memcpy(fname, rest, fl);
        fname[fl] = 0;
        if (format_bit(fname, &bit, &e.format)) goto bad_format;
        char buf[1024];
        if (strlen(colon + 1) >= sizeof buf) goto bad_fields;
        snprintf(buf, sizeof buf, "%s", colon + 1);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq || e.nc == MAX_COND) goto bad_fields;
            *eq = 0;
            int k = -1;
            for (int i = 0; i < K_NPIN; i++)
                if (kinds[i].field && (kinds[i].formats & bit) && !strcmp(kinds[i].field, tok)) k = i;
            if (k < 0) {
                tm_reasonf(err, cap, "measurement_set: '%s' is not a %s field", tok, fname);
                return -1;
            }
            for (int i = 0; i < e.nc; i++)
                if (e.c[i].kind == k) {
                    tm_reasonf(err, cap, "measurement_set: field '%s' given twice", tok);
                    return -1;
                }
            if (parse_pin(k, eq + 1, e.c[e.nc].v)) {
                tm_reasonf(err, cap, "measurement_set: %s: expected %zu hex digits", tok, 2 * kinds[k].len);
                return -1;
            }
            e.c[e.nc].kind = k;
            e.c[e.nc].len = kinds[k].len;
            e.nc++;
        }
        if (e.nc == 0) goto bad_fields;
        return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
    bad_format:
        tm_reasonf(err, cap, "measurement_set: unknown format '%.*s' (sgx, tdx, snp, sim)", (int)(colon - rest), rest);
        return -1;
    bad_fields:
        tm_reasonf(err, cap, "%s", usage);
        return -1;
    }
    const char *hex = rest;
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

static int add_vcek(tm_policy *p, const uint8_t *data, size_t len, const char *what, char *err, size_t cap)
{
    /* Stored as DER; PEM accepted. Must be one X.509 certificate. */
    const unsigned char *q = data;
    X509 *x = len <= 0x7fffffff ? d2i_X509(NULL, &q, (long)len) : NULL;
    if (x && q != data + len) { X509_free(x); x = NULL; }
    if (!x && len <= 0x7fffffff) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
    }
    ERR_clear_error();
    unsigned char *der = NULL;
    int dl = x ? i2d_X509(x, &der) : -1;
    X509_free(x);
    if (dl <= 0) {
        OPENSSL_free(der);
        tm_reasonf(err, cap, "%s: not an X.509 certificate (DER or PEM)", what);
        return -1;
    }
    blob *n = realloc(p->vcek, (p->nvcek + 1) * sizeof *n);
    uint8_t *c = malloc((size_t)dl);
    if (!n || !c) {
        if (n) p->vcek = n;
        free(c);
        OPENSSL_free(der);
        tm_reasonf(err, cap, "out of memory");
        return -1;
    }
    memcpy(c, der, (size_t)dl);
    OPENSSL_free(der);
    p->vcek = n;
    p->vcek[p->nvcek].p = c;
    p->vcek[p->nvcek].n = (size_t)dl;
    p->nvcek++;
    return 0;
}

int tm_policy_add_snp_vcek(tm_policy *p, const uint8_t *data, size_t len, char *err, size_t cap)
{
    if (!p || !data) return -1;
    return add_vcek(p, data, len, "VCEK", err, cap);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_vcek_file(tm_policy *p, const char *path, char *err, size_t cap)
{
    uint8_t *data;
    size_t len;
    if (read_tracked(p, path, &data, &len, MAX_VCEK, err, cap)) return -1;
    int rc = add_vcek(p, data, len, path, err, cap);
    free(data);
    return rc;
}

/* Calls fn for every entry of a directory the policy depends on (sorted). */
typedef int (*dir_entry_fn)(tm_policy *p, const char *dir, const char *name, char *err, size_t cap);

static int load_dir(tm_policy *p, const char *dir, dir_entry_fn fn, char *err, size_t cap)
{
    char **names;
    size_t n;
    track(p, dir);
    if (list_dir(dir, &names, &n, err, cap)) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = fn(p, dir, names[i], err, cap);
    free_names(names, n);
    return rc;
}

/* snp_vcek_dir: every *.der, *.pem, *.crt file is a VCEK (found later by its
 * hwID and TCB, whatever its name). */
static int vcek_dir_entry(tm_policy *p, const char *dir, const char *name, char *err, size_t cap)
{
    if (!has_suffix(name, ".der") && !has_suffix(name, ".pem") && !has_suffix(name, ".crt")) return 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return load_vcek_file(p, path, err, cap);
}

/* collateral_dir: DIR/sgx-<fmspc>.json and DIR/tdx-<fmspc>.json, fmspc 12
 * lowercase hex digits. Other names are not ours (the fetch tool's temp files
 * start with '.'), except near misses of the pattern, which are errors: a
 * silently ignored "sgx-00A067110000.json" would look like missing collateral. */
static int collateral_dir_entry(tm_policy *p, const char *dir, const char *nm, char *err, size_t cap)
{
    uint16_t fmt;
    if (!strncmp(nm, "sgx-", 4)) fmt = TM_FMT_SGX_DCAP;
    else if (!strncmp(nm, "tdx-", 4)) fmt = TM_FMT_TDX_DCAP;
    else return 0;
    if (!has_suffix(nm, ".json")) return 0;
    int ok = strlen(nm) == 4 + 12 + 5;
    for (int k = 4; ok && k < 16; k++) ok = isdigit((unsigned char)nm[k]) || (nm[k] >= 'a' && nm[k] <= 'f');
    if (!ok) {
        tm_reasonf(err, cap, "%s/%s: collateral file names are sgx-<fmspc>.json or tdx-<fmspc>.json "
                   "with 12 lowercase hex digits", dir, nm);
        return -1;
    }
    char path[1200], e2[600];
    snprintf(path, sizeof path, "%s/%s", dir, nm);
    uint8_t *data;
    size_t len;
    if (read_tracked(p, path, &data, &len, MAX_COLLATERAL, e2, sizeof e2)) {
        tm_reasonf(err, cap, "%s", e2);
        return -1;
    }
    /* a later collateral_dir line replaces an earlier file for the same FMSPC */
    for (size_t k = 0; k < p->ndc; k++)
        if (p->dc[k].format == fmt && !strncmp(p->dc[k].fmspc, nm + 4, 12)) {
            free(p->dc[k].b.p);
            p->dc[k].b.p = data;
            p->dc[k].b.n = len;
            return 0;
        }
    dir_coll *nd = realloc(p->dc, (p->ndc + 1) * sizeof *nd);
    if (!nd) {
        free(data);
        tm_reasonf(err, cap, "out of memory");
        return -1;
    }
    p->dc = nd;
    dir_coll *d = &p->dc[p->ndc++];
    memset(d, 0, sizeof *d);
    d->format = fmt;
    memcpy(d->fmspc, nm + 4, 12);
    d->b.p = data;
    d->b.n = len;
    return 0;
}

/* ------------------------------------------------------------ keys */

static int set_bool(tm_policy *p, const char *key, const char *v, char *err, size_t cap)
{
    static const struct { const char *k; size_t off; } b[] = {
        {"allow_debug", offsetof(tm_policy, allow_debug)},
        {"allow_missing_collateral", offsetof(tm_policy, allow_missing_collateral)},
        {"allow_any_measurement", offsetof(tm_policy, allow_any_measurement)},
        {"require_sept_ve_disable", offsetof(tm_policy, require_sept_ve_disable)},
        {"snp_allow_migrate_ma", offsetof(tm_policy, snp_allow_migrate_ma)},
        {"snp_allow_smt", offsetof(tm_policy, snp_allow_smt)},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        if (!strcmp(key, b[i].k)) {
            int x;
            if (parse_bool(v, &x)) {
                tm_reasonf(err, cap, "%s: expected true or false", key);
                return -1;
            }
            *(int *)((char *)p + b[i].off) = x;
            return 0;
        }
    return 1; /* not a boolean key */
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
            tm_reasonf(err, cap, "format: unknown evidence format '%s' (" TM_FORMAT_NAMES ")", v);
            return -1;
        }
        p->formats |= format_mask(f);
        return 0;
    }
    if (!strcmp(key, "max_key_lifetime")) {
        long long x;
        if (parse_num(v, 31536000, &x) || x < 1) {
            tm_reasonf(err, cap, "%s: expected seconds 1..31536000", key);
            return -1;
        }
        p->max_key_lifetime = x;
        return 0;
    }
    for (int k = 0; k < K_NPIN; k++)
        if (!strcmp(key, kinds[k].key)) {
            e.kind = k;
            e.len = kinds[k].len;
            if (parse_pin(k, v, e.v)) {
                tm_reasonf(err, cap, "%s: expected %zu hex digits", key, 2 * e.len);
                return -1;
            }
            return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
        }
    int b = set_bool(p, key, v, err, cap);
    if (b <= 0) return b;
    if (!strcmp(key, "require_collateral")) {
        /* Collateral is required by default now; the old opt-out would be a
         * silent widening under a name that says the opposite. */
        if (!strcmp(v, "true")) return 0;
        tm_reasonf(err, cap, "require_collateral: only 'true' (the default) is accepted; to accept DCAP "
                   "evidence without collateral say allow_missing_collateral true");
        return -1;
    }
    if (!strcmp(key, "isv_prodid") || !strcmp(key, "min_isvsvn")) {
        long long x;
        if (parse_num(v, 65535, &x)) {
            tm_reasonf(err, cap, "%s: expected a number 0..65535", key);
            return -1;
        }
        if (key[0] == 'i') p->isv_prodid = (long)x;
        else p->min_isvsvn = (long)x;
        return 0;
    }
    if (!strcmp(key, "snp_min_guest_svn")) {
        long long x;
        if (parse_num(v, 0xFFFFFFFFLL, &x)) {
            tm_reasonf(err, cap, "%s: expected a number 0..4294967295", key);
            return -1;
        }
        p->snp_min_guest_svn = x;
        return 0;
    }
    if (!strcmp(key, "snp_max_vmpl")) {
        long long x;
        if (parse_num(v, 3, &x)) {
            tm_reasonf(err, cap, "%s: expected a number 0..3", key);
            return -1;
        }
        p->snp_max_vmpl = (long)x;
        return 0;
    }
    if (!strcmp(key, "snp_min_tcb")) {
        if (parse_snp_tcb(v, &p->snp_min_tcb, err, cap)) return -1;
        p->has_snp_min_tcb = 1;
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
        if (read_tracked(p, path, &data, &len, MAX_COLLATERAL, e2, sizeof e2)) {
            tm_reasonf(err, cap, "collateral: %s", e2);
            return -1;
        }
        free(p->coll[f].p);
        p->coll[f].p = data;
        p->coll[f].n = len;
        return 0;
    }
    if (!strcmp(key, "collateral_dir") || !strcmp(key, "snp_vcek_dir") || !strcmp(key, "snp_vcek")) {
        char path[1024], e2[768];
        resolve(p, v, path, sizeof path);
        int rc;
        if (!strcmp(key, "collateral_dir")) {
            rc = load_dir(p, path, collateral_dir_entry, e2, sizeof e2);
            p->has_collateral_dir = 1;
        } else if (!strcmp(key, "snp_vcek_dir")) rc = load_dir(p, path, vcek_dir_entry, e2, sizeof e2);
        else rc = load_vcek_file(p, path, e2, sizeof e2);
        if (rc) tm_reasonf(err, cap, "%s: %s", key, e2);
        return rc;
    }
    if (!strcmp(key, "sim_trusted_key")) {
        e.kind = K_SIM_KEY;
        e.len = 32;
        if (strlen(v) == 64 && parse_hex(v, e.v, 32) == 0)
            return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
        char path[1024], e2[512];
        resolve(p, v, path, sizeof path);
        if (key_file_hash(p, path, e.v, e2, sizeof e2)) {
            tm_reasonf(err, cap, "sim_trusted_key: %s", e2);
            return -1;
        }
        return add_entry(p, &e) ? (tm_reasonf(err, cap, "out of memory"), -1) : 0;
    }
    if (!strcmp(key, "measurement_set")) return parse_set(p, v, err, cap);
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
        char e2[1024];
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
    if (read_tracked(p, path, &data, &len, 1u << 20, err, errcap)) return -1;
    char *copy = strdup(path);
    if (!copy) {
        free(data);
        tm_reasonf(err, errcap, "out of memory");
        return -1;
    }
    free(p->path);
    p->path = copy;
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

int tm_policy_refresh(tm_policy **pp, char *err, size_t errcap)
{
    if (!pp || !*pp) return -1;
    tm_policy *old = *pp;
    if (!old->path) return 0;
    int changed = 0;
    for (size_t i = 0; i < old->nsrc && !changed; i++) {
        source now;
        stat_source(old->src[i].path, &now);
        const source *was = &old->src[i];
        changed = now.exists != was->exists || now.size != was->size || now.mtime_s != was->mtime_s ||
                  now.mtime_ns != was->mtime_ns || now.ino != was->ino;
    }
    if (!changed) return 0;
    tm_policy *np = tm_policy_new();
    if (!np) {
        tm_reasonf(err, errcap, "out of memory");
        return -1;
    }
    if (tm_policy_load(np, old->path, err, errcap) != 0) {
        tm_policy_free(np);
        return -1;
    }
    *pp = np;
    tm_policy_free(old);
    return 1;
}

int tm_policy_warnings(const tm_policy *p, char *buf, size_t cap)
{
    int n = 0;
    size_t off = 0;
    if (cap) buf[0] = 0;
    struct { int on; const char *text; } w[] = {
        {p->allow_missing_collateral,
         "allow_missing_collateral true: DCAP quotes without collateral are accepted; nobody checks that "
         "the quoting enclave is Intel's, and the TCB status is not evaluated"},
        {p->allow_any_measurement,
         "allow_any_measurement true: evidence is accepted without any measurement pin: any genuine TEE "
         "running any software passes (experiments only)"},
        {p->allow_debug, "allow_debug true: TEEs in debug mode (their memory readable by the host) are accepted"},
        {!p->require_sept_ve_disable,
         "require_sept_ve_disable false: TDX guests that take #VE on EPT violations are accepted"},
        {p->snp_allow_migrate_ma, "snp_allow_migrate_ma true: SEV-SNP guests with a migration agent are accepted"},
        {p->snp_max_vmpl > 0, "snp_max_vmpl > 0: SEV-SNP reports requested from a less privileged VMPL are accepted"},
        {p->max_key_lifetime > TM_POLICY_MAX_KEY_LIFETIME,
         "max_key_lifetime above 86400: key-attested (+key) evidence may come from an attestation key "
         "quoted more than a day ago"},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (!w[i].on) continue;
        n++;
        if (off < cap) {
            int k = snprintf(buf + off, cap - off, "warning: %s\n", w[i].text);
            if (k > 0) off += (size_t)k;
        }
    }
    return n;
}

int tm_policy_set_collateral(tm_policy *p, uint16_t format, const uint8_t *data, size_t len)
{
    if (format >= 5 || !data) return -1;
    uint8_t *c = malloc(len ? len : 1);
    if (!c) return -1;
    memcpy(c, data, len);
    free(p->coll[format].p);
    p->coll[format].p = c;
    p->coll[format].n = len;
    return 0;
}

/* ------------------------------------------------------------ queries */

int tm_policy_format_allowed(const tm_policy *p, uint16_t format)
{
    unsigned m = format_mask(format);
    if (!m) return 0;
    return p->formats == 0 || (p->formats & m) != 0;
}

uint32_t tm_policy_max_key_lifetime(const tm_policy *p)
{
    return p ? (uint32_t)p->max_key_lifetime : TM_POLICY_MAX_KEY_LIFETIME;
}

const uint8_t *tm_policy_collateral(const tm_policy *p, uint16_t format, const char *fmspc, size_t *len)
{
    if (format >= 5) return NULL;
    for (size_t i = 0; fmspc && i < p->ndc; i++)
        if (p->dc[i].format == format && !strcmp(p->dc[i].fmspc, fmspc)) {
            *len = p->dc[i].b.n;
            return p->dc[i].b.p;
        }
    if (!p->coll[format].p) return NULL;
    *len = p->coll[format].n;
    return p->coll[format].p;
}

int tm_policy_has_collateral_source(const tm_policy *p, uint16_t format)
{
    if (format >= 5) return 0;
    return p->has_collateral_dir || p->coll[format].p != NULL;
}

int tm_policy_allow_missing_collateral(const tm_policy *p) { return p->allow_missing_collateral; }

size_t tm_policy_snp_vcek_count(const tm_policy *p) { return p->nvcek; }

const uint8_t *tm_policy_snp_vcek(const tm_policy *p, size_t i, size_t *len)
{
    if (i >= p->nvcek) return NULL;
    *len = p->vcek[i].n;
    return p->vcek[i].p;
}

int tm_policy_sim_key_trusted(const tm_policy *p, const uint8_t h[32])
{
    for (size_t i = 0; i < p->ne; i++)
        if (p->e[i].kind == K_SIM_KEY && memcmp(p->e[i].v, h, 32) == 0) return 1;
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

static unsigned claims_format_bit(const tm_claims *c)
{
    if (c->has_sgx) return F_SGX;
    if (c->has_tdx) return F_TDX;
    if (c->has_snp) return F_SNP;
    if (c->has_sim) return F_SIM;
    return 0;
}

static void be64(uint64_t v, uint8_t out[8])
{
    for (int i = 7; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
}

/* The claims' value for a pin kind (scratch holds converted numbers), or
 * NULL when the claims do not carry it. */
static const uint8_t *claim_value(const tm_claims *c, int kind, uint8_t scratch[8])
{
    switch (kind) {
    case K_MRENCLAVE: return c->has_sgx ? c->mrenclave : NULL;
    case K_MRSIGNER: return c->has_sgx ? c->mrsigner : NULL;
    case K_MRTD: return c->has_tdx ? c->mrtd : NULL;
    case K_RTMR0: case K_RTMR1: case K_RTMR2: case K_RTMR3:
        return c->has_tdx ? c->rtmr[kind - K_RTMR0] : NULL;
    case K_MRCONFIGID: return c->has_tdx ? c->mrconfigid : NULL;
    case K_MROWNER: return c->has_tdx ? c->mrowner : NULL;
    case K_MROWNERCONFIG: return c->has_tdx ? c->mrownerconfig : NULL;
    case K_XFAM: if (!c->has_tdx) return NULL; be64(c->xfam, scratch); return scratch;
    case K_TDATTR: if (!c->has_tdx) return NULL; be64(c->tdattributes, scratch); return scratch;
    case K_SNP_MEAS: return c->has_snp ? c->snp_measurement : NULL;
    case K_SNP_HOST_DATA: return c->has_snp ? c->host_data : NULL;
    case K_SNP_ID_KEY: return c->has_snp ? c->id_key_digest : NULL;
    case K_SNP_AUTHOR_KEY: return c->has_snp ? c->author_key_digest : NULL;
    case K_SIM_MEAS: return c->has_sim ? c->sim_measurement : NULL;
    case K_PPID: return c->has_pck ? c->ppid : NULL;
    case K_PINST: return c->has_platform_instance_id ? c->platform_instance_id : NULL;
    case K_FMSPC:
        if (!c->has_pck || tm_hex_decode(c->fmspc, 12, scratch, 6) != 6) return NULL;
        return scratch;
    case K_PCEID: return c->has_pck ? c->pce_id : NULL;
    case K_CHIP_ID: return c->has_snp ? c->chip_id : NULL;
    default: return NULL;
    }
}

/* -1: no rule of this kind; 1: value allowed; 0: rules exist, none matches. */
static int listed(const tm_policy *p, int kind, const uint8_t *v, size_t len)
{
    int any = 0;
    for (size_t i = 0; i < p->ne; i++)
        if (p->e[i].kind == kind) {
            any = 1;
            if (v && p->e[i].len == len && memcmp(p->e[i].v, v, len) == 0) return 1;
        }
    return any ? 0 : -1;
}

static int refuse(const char *what, const uint8_t *v, size_t len, const char *key, char *reason, size_t cap)
{
    char h[129];
    tm_hex_encode(v, len, h);
    tm_reasonf(reason, cap, "policy: %s %s is not allowed (not among the policy's %s lines)", what, h, key);
    return -1;
}

/* Measurement pins that would accept a format, for the "missing pin" message. */
static void pin_names(unsigned bit, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < K_NPIN && n < cap; k++)
        if (kinds[k].measurement && (kinds[k].formats & bit)) {
            int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", kinds[k].key);
            if (w > 0) n += (size_t)w;
        }
}

static int check_snp(const tm_policy *p, const tm_claims *c, char *reason, size_t cap)
{
    if ((long long)c->guest_svn < p->snp_min_guest_svn) {
        tm_reasonf(reason, cap, "policy: SEV-SNP GUEST_SVN %u below the minimum %lld (snp_min_guest_svn)",
                   (unsigned)c->guest_svn, p->snp_min_guest_svn);
        return -1;
    }
    if (p->has_snp_min_tcb) {
        const tm_snp_tcb *t = &c->reported_tcb, *m = &p->snp_min_tcb;
        struct { const char *n; unsigned have, min; } parts[] = {
            {"bootloader", t->bootloader, m->bootloader}, {"tee", t->tee, m->tee}, {"snp", t->snp, m->snp},
            {"microcode", t->microcode, m->microcode}, {"fmc", t->fmc, m->has_fmc ? m->fmc : 0},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
            if (parts[i].have < parts[i].min) {
                tm_reasonf(reason, cap, "policy: SEV-SNP REPORTED_TCB %s SPL %u below the minimum %u (snp_min_tcb)",
                           parts[i].n, parts[i].have, parts[i].min);
                return -1;
            }
    }
    if ((long)c->vmpl > p->snp_max_vmpl) {
        tm_reasonf(reason, cap, "policy: SEV-SNP report requested at VMPL %u, the policy accepts VMPL 0..%ld "
                   "(snp_max_vmpl)", (unsigned)c->vmpl, p->snp_max_vmpl);
        return -1;
    }
    if ((c->snp_policy >> 18 & 1) && !p->snp_allow_migrate_ma) {
        tm_reasonf(reason, cap, "policy: SEV-SNP guest policy allows a migration agent (MIGRATE_MA), refused "
                   "(snp_allow_migrate_ma false)");
        return -1;
    }
    if ((c->snp_policy >> 16 & 1) && !p->snp_allow_smt) {
        tm_reasonf(reason, cap, "policy: SEV-SNP guest policy allows SMT, refused (snp_allow_smt false)");
        return -1;
    }
    return 0;
}

int tm_policy_check_claims(const tm_policy *p, tm_claims *c, char *reason, size_t cap)
{
    unsigned bit = claims_format_bit(c);
    uint8_t scratch[8];
    if (c->debug && !p->allow_debug) {
        tm_reasonf(reason, cap, "policy: debug-mode TEE refused (allow_debug is false)");
        return -1;
    }
    /* 1. Fail closed: at least one measurement of this format pinned. */
    int pinned = 0;
    for (int k = 0; k < K_NPIN; k++)
        if (kinds[k].measurement && (kinds[k].formats & bit) && listed(p, k, NULL, 0) == 0) pinned = 1;
    if (!pinned && !p->allow_any_measurement) {
        char names[160];
        pin_names(bit, names, sizeof names);
        tm_reasonf(reason, cap, "policy: no measurement pinned for %s evidence (pin one of: %s; or say "
                   "allow_any_measurement true)", c->format_name[0] ? c->format_name : "this", names);
        return -1;
    }
    c->any_measurement_allowed = !pinned;
    /* 2. Every pinned value of this format (measurements, TD/SNP identity,
     *    platform) must be listed. */
    for (int k = 0; k < K_NPIN; k++) {
        if (!(kinds[k].formats & bit)) continue;
        const uint8_t *v = claim_value(c, k, scratch);
        int l = listed(p, k, v, kinds[k].len);
        if (l != 0) continue;
        if (!v) {
            tm_reasonf(reason, cap, "policy: the evidence carries no %s, and the policy pins it (%s)",
                       kinds[k].label, kinds[k].key);
            return -1;
        }
        return refuse(kinds[k].label, v, kinds[k].len, kinds[k].key, reason, cap);
    }
    /* 3. Per-format rules. */
    if (c->has_sgx) {
        if (p->isv_prodid >= 0 && c->product_id != p->isv_prodid) {
            tm_reasonf(reason, cap, "policy: ISVPRODID %u, expected %ld", c->product_id, p->isv_prodid);
            return -1;
        }
        if (c->security_version < p->min_isvsvn) {
            tm_reasonf(reason, cap, "policy: ISVSVN %u below the minimum %ld", c->security_version, p->min_isvsvn);
            return -1;
        }
    }
    if (c->has_tdx && p->require_sept_ve_disable && !(c->tdattributes >> 28 & 1)) {
        tm_reasonf(reason, cap, "policy: TDATTRIBUTES.SEPT_VE_DISABLE is not set (the TD takes #VE on EPT "
                   "violations; require_sept_ve_disable false to accept)");
        return -1;
    }
    if (c->has_snp && check_snp(p, c, reason, cap)) return -1;
    return 0;
}

int tm_policy_in_set(const tm_policy *p, const char *name, const tm_claims *c)
{
    if (!p || !name || !c) return 0;
    uint8_t scratch[8];
    for (size_t i = 0; i < p->ne; i++) {
        const entry *e = &p->e[i];
        if (e->kind != K_SET || strcmp(e->name, name) != 0) continue;
        if (e->format) {
            if (claims_format_bit(c) != 1u << e->format) continue;
            int all = 1;
            for (int k = 0; k < e->nc && all; k++) {
                const uint8_t *v = claim_value(c, e->c[k].kind, scratch);
                all = v && memcmp(v, e->c[k].v, e->c[k].len) == 0;
            }
            if (all) return 1;
        } else if (e->signer) {
            if (c->has_sgx && memcmp(e->v, c->mrsigner, 32) == 0) return 1;
        } else if (c->measurement_len == e->len && memcmp(e->v, c->measurement, e->len) == 0) {
            return 1;
        }
    }
    return 0;
}
