/*
 * tmqtt-attest — inspect and appraise attestation evidence from files.
 *
 *   tmqtt-attest verify --format FORMAT|auto --evidence FILE
 *                [--collateral FILE] [--collateral-dir DIR] [--vcek FILE]... [--policy FILE]
 *                [--at 2025-06-20T00:00:00Z] [--report-data HEX128] [--json]
 *   tmqtt-attest show [--format F|auto] --evidence FILE
 *   tmqtt-attest sim-keygen --key FILE
 *   tmqtt-attest sim-quote --key FILE --report-data HEX128 --measurement HEX64 [--debug]
 *                [--key-attested [--key-lifetime SECONDS]] -o FILE
 * FORMAT: sim, sgx-dcap, tdx-dcap, sev-snp, or one of them with "+key"
 * (key-attested evidence: --report-data is then what the attestation key
 * signed, and the key's expiry is checked against --at).
 *   tmqtt-attest collateral fetch ...   (attest_collateral.c)
 *
 * Exit status: 0 pass, 1 fail (evidence refused or I/O error), 2 usage.
 * A thin main over libtmqtt_attest: every decision is the library's. Without
 * --policy the policy is empty, and an empty policy accepts nothing: the
 * verdict then names the first pin or collateral that is missing, after every
 * check before it passed. Warnings of the policy go to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/verify.h"
#include "tools/attest_collateral.h"

#define MAX_FILE (16u << 20)

static int usage(const char *msg)
{
    if (msg) fprintf(stderr, "tmqtt-attest: %s\n", msg);
    fprintf(stderr,
            "usage: tmqtt-attest verify --format FORMAT|auto --evidence FILE\n"
            "                    [--collateral FILE] [--collateral-dir DIR] [--vcek FILE]... [--policy FILE]\n"
            "                    [--at YYYY-MM-DDTHH:MM:SSZ|now] [--report-data HEX] [--json]\n"
            "       tmqtt-attest show [--format F|auto] --evidence FILE\n"
            "       tmqtt-attest sim-keygen --key FILE\n"
            "       tmqtt-attest sim-quote --key FILE --report-data HEX --measurement HEX [--debug]\n"
            "                    [--key-attested [--key-lifetime SECONDS]] -o FILE\n"
            "       tmqtt-attest collateral fetch --url https://PCCS ... (see: tmqtt-attest collateral --help)\n"
            "FORMAT: sim, sgx-dcap, tdx-dcap, sev-snp, or one of them with +key (key-attested)\n");
    return 2;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap >= MAX_FILE) { free(b); b = NULL; break; }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    if (b && ferror(f)) { free(b); b = NULL; }
    fclose(f);
    *len = n;
    return b;
}

static int hexarg(const char *s, unsigned char *out, size_t n)
{
    if (!s || strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static void json_str(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(o, "\\%c", c);
        else if (c < 0x20) fprintf(o, "\\u%04x", c);
        else fputc(c, o);
    }
    fputc('"', o);
}

#define MAX_VCEK_ARGS 8

typedef struct {
    const char *format, *evidence, *collateral, *collateral_dir, *policy, *at, *report_data, *key, *measurement,
        *out, *key_lifetime;
    const char *vcek[MAX_VCEK_ARGS];
    int nvcek;
    int json, debug, key_attested;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        const char **dst = NULL;
        if (!strcmp(k, "--json")) { a->json = 1; continue; }
        if (!strcmp(k, "--debug")) { a->debug = 1; continue; }
        if (!strcmp(k, "--key-attested")) { a->key_attested = 1; continue; }
        if (!strcmp(k, "--vcek")) {
            if (a->nvcek == MAX_VCEK_ARGS) { fprintf(stderr, "tmqtt-attest: too many --vcek\n"); return -1; }
            dst = &a->vcek[a->nvcek++];
        } else if (!strcmp(k, "--format")) dst = &a->format;
        else if (!strcmp(k, "--evidence")) dst = &a->evidence;
        else if (!strcmp(k, "--collateral")) dst = &a->collateral;
        else if (!strcmp(k, "--collateral-dir")) dst = &a->collateral_dir;
        else if (!strcmp(k, "--policy")) dst = &a->policy;
        else if (!strcmp(k, "--at")) dst = &a->at;
        else if (!strcmp(k, "--report-data")) dst = &a->report_data;
        else if (!strcmp(k, "--key")) dst = &a->key;
        else if (!strcmp(k, "--measurement")) dst = &a->measurement;
        else if (!strcmp(k, "-o") || !strcmp(k, "--output")) dst = &a->out;
        else if (!strcmp(k, "--key-lifetime")) dst = &a->key_lifetime;
        else if (k[0] != '-' && !a->evidence) { a->evidence = k; continue; }
        else { fprintf(stderr, "tmqtt-attest: unknown argument '%s'\n", k); return -1; }
        if (i + 1 >= argc) { fprintf(stderr, "tmqtt-attest: %s needs a value\n", k); return -1; }
        *dst = argv[++i];
    }
    return 0;
}

static int pick_format(const char *name, const unsigned char *ev, size_t len, uint16_t *fmt)
{
    if (!name || !strcmp(name, "auto")) {
        *fmt = tm_evidence_guess_format(ev, len);
        if (!*fmt) { fprintf(stderr, "tmqtt-attest: cannot tell the evidence format; use --format\n"); return -1; }
        return 0;
    }
    if (tm_format_from_name(name, fmt)) {
        fprintf(stderr, "tmqtt-attest: unknown format '%s'\n", name);
        return -1;
    }
    return 0;
}

static int cmd_verify(const args *a)
{
    if (!a->evidence) return usage("verify needs --evidence");
    size_t len;
    unsigned char *ev = slurp(a->evidence, &len);
    if (!ev) { fprintf(stderr, "tmqtt-attest: cannot read %s\n", a->evidence); return 1; }
    uint16_t fmt;
    if (pick_format(a->format, ev, len, &fmt)) { free(ev); return 2; }
    time_t at = time(NULL);
    if (a->at && strcmp(a->at, "now") && tm_verify_parse_time(a->at, &at)) {
        free(ev);
        return usage("--at wants YYYY-MM-DDTHH:MM:SSZ");
    }
    unsigned char rd[64];
    if (a->report_data && hexarg(a->report_data, rd, 64)) { free(ev); return usage("--report-data wants 128 hex digits"); }
    tm_policy *pol = tm_policy_new();
    char err[1024];
    int rc = 1;
    if (!pol) goto out;
    if (a->policy && tm_policy_load(pol, a->policy, err, sizeof err)) {
        fprintf(stderr, "tmqtt-attest: %s\n", err);
        goto out;
    }
    if (a->collateral_dir && tm_policy_set(pol, "collateral_dir", a->collateral_dir, err, sizeof err)) {
        fprintf(stderr, "tmqtt-attest: %s\n", err);
        goto out;
    }
    for (int i = 0; i < a->nvcek; i++) {
        size_t vl;
        unsigned char *v = slurp(a->vcek[i], &vl);
        if (!v) { fprintf(stderr, "tmqtt-attest: cannot read %s\n", a->vcek[i]); goto out; }
        int bad = tm_policy_add_snp_vcek(pol, v, vl, err, sizeof err);
        free(v);
        if (bad) { fprintf(stderr, "tmqtt-attest: %s: %s\n", a->vcek[i], err); goto out; }
    }
    char warn[2048];
    if (tm_policy_warnings(pol, warn, sizeof warn)) fprintf(stderr, "%s", warn);
    if (a->collateral) {
        size_t cl;
        unsigned char *c = slurp(a->collateral, &cl);
        if (!c) { fprintf(stderr, "tmqtt-attest: cannot read %s\n", a->collateral); goto out; }
        int bad = tm_policy_set_collateral(pol, fmt, c, cl);
        free(c);
        if (bad) goto out;
    }
    tm_claims cl;
    char reason[1024];
    int v = tm_verify(fmt, ev, len, a->report_data ? rd : NULL, pol, at, &cl, reason, sizeof reason);
    size_t need = tm_claims_json(&cl, NULL, 0) + 1;
    char *buf = malloc(need > 8192 ? need : 8192);
    if (!buf) goto out;
    if (a->json) {
        tm_claims_json(&cl, buf, need > 8192 ? need : 8192);
        printf("{\"verdict\":\"%s\",\"error\":\"%s\",\"reason\":", v ? "fail" : "pass", tm_verify_strerror(v));
        json_str(stdout, reason);
        printf(",\"claims\":%s}\n", buf);
    } else {
        tm_claims_text(&cl, buf, 8192);
        fputs(buf, stdout);
        if (v) printf("verdict: FAIL (%s): %s\n", tm_verify_strerror(v), reason);
        else printf("verdict: PASS: %s\n", reason);
    }
    free(buf);
    rc = v ? 1 : 0;
out:
    tm_policy_free(pol);
    free(ev);
    return rc;
}

static int cmd_show(const args *a)
{
    if (!a->evidence) return usage("show needs --evidence");
    size_t len;
    unsigned char *ev = slurp(a->evidence, &len);
    if (!ev) { fprintf(stderr, "tmqtt-attest: cannot read %s\n", a->evidence); return 1; }
    uint16_t fmt;
    if (pick_format(a->format, ev, len, &fmt)) { free(ev); return 2; }
    char *buf = malloc(16384);
    int rc = 1;
    if (buf) {
        int r = tm_evidence_describe(fmt, ev, len, buf, 16384);
        if (r) fprintf(stderr, "tmqtt-attest: %s\n", buf);
        else fputs(buf, stdout);
        rc = r ? 1 : 0;
    }
    free(buf);
    free(ev);
    return rc;
}

static int cmd_keygen(const args *a)
{
    if (!a->key) return usage("sim-keygen needs --key");
    unsigned char h[32];
    char err[512];
    if (tm_sim_keygen(a->key, h, err, sizeof err)) {
        fprintf(stderr, "tmqtt-attest: %s\n", err);
        return 1;
    }
    printf("sim platform key %s\nspki_sha256: ", a->key);
    for (int i = 0; i < 32; i++) printf("%02x", h[i]);
    printf("\n");
    return 0;
}

static int cmd_simquote(const args *a)
{
    if (!a->key || !a->report_data || !a->measurement || !a->out)
        return usage("sim-quote needs --key, --report-data, --measurement and -o");
    unsigned char rd[64], m[32];
    if (hexarg(a->report_data, rd, 64)) return usage("--report-data wants 128 hex digits");
    if (hexarg(a->measurement, m, 32)) return usage("--measurement wants 64 hex digits");
    char opts[1200], err[1024];
    if ((size_t)snprintf(opts, sizeof opts, "key=%s,measurement=%s,debug=%s", a->key, a->measurement,
                         a->debug ? "true" : "false") >= sizeof opts)
        return usage("key path too long");
    unsigned long lifetime = 3600;
    if (a->key_lifetime) {
        char *end;
        lifetime = strtoul(a->key_lifetime, &end, 10);
        if (!*a->key_lifetime || *end || lifetime == 0 || lifetime > 31536000)
            return usage("--key-lifetime wants seconds 1..31536000");
    }
    tm_provider *p = tm_provider_open("sim", opts, err, sizeof err);
    if (!p) { fprintf(stderr, "tmqtt-attest: %s\n", err); return 1; }
    unsigned char out[4096];
    size_t len;
    int rc;
    if (a->key_attested) {
        /* a fresh attestation key, quoted once, signing the report data */
        tm_prov_key *k = tm_provider_key_new(p, TM_FMT_SIM, (uint64_t)time(NULL) + lifetime, err, sizeof err);
        rc = k ? tm_prov_key_evidence_over(k, rd, out, sizeof out, &len, err, sizeof err) : 1;
        tm_prov_key_free(k);
    } else {
        rc = tm_provider_collect(p, TM_FMT_SIM, rd, out, sizeof out, &len, err, sizeof err);
    }
    tm_provider_close(p);
    if (rc) { fprintf(stderr, "tmqtt-attest: %s\n", err); return 1; }
    FILE *f = fopen(a->out, "wb");
    if (!f || fwrite(out, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "tmqtt-attest: cannot write %s\n", a->out);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(NULL);
    args a;
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { usage(NULL); return 0; }
    if (!strcmp(argv[1], "collateral")) return tm_attest_collateral_main(argc - 1, argv + 1);
    if (parse_args(argc, argv, &a)) return usage(NULL);
    if (!strcmp(argv[1], "verify")) return cmd_verify(&a);
    if (!strcmp(argv[1], "show")) return cmd_show(&a);
    if (!strcmp(argv[1], "sim-keygen")) return cmd_keygen(&a);
    if (!strcmp(argv[1], "sim-quote")) return cmd_simquote(&a);
    return usage("unknown command");
}
