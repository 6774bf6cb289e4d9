/*
 * attest_collateral.c — `tmqtt-attest collateral fetch`: the command line over
 * tmqtt_collateral_fetch (src/attest/fetch/collateral_fetch.h).
 *
 *   tmqtt-attest collateral fetch --url https://PCCS[:PORT] [--cafile PEM] [--cache DIR]
 *       (--quote FILE | --fmspc HEX --format sgx-dcap|tdx-dcap --ca processor|platform)
 *       [--ca processor|platform] [--timeout S] [--root-crl-url URL] [--at TIME]
 *
 * Owns only argument handling and printing; every decision (what is fetched,
 * what is accepted, when the cache is replaced) is the library's.
 * Exit status: 0 cache file written or already current, 1 refused or failed,
 * 2 usage.
 */
#include "tools/attest_collateral.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/collateral_pcs.h"
#include "attest/evidence.h"
#include "attest/fetch/collateral_fetch.h"
#include "attest/verify.h"

#define MAX_QUOTE (1u << 20)

static int usage(const char *msg)
{
    if (msg) fprintf(stderr, "tmqtt-attest collateral: %s\n", msg);
    fprintf(stderr,
            "usage: tmqtt-attest collateral fetch --url https://HOST[:PORT] [--cafile PEM] [--cache DIR]\n"
            "           (--quote FILE | --fmspc HEX12 --format sgx-dcap|tdx-dcap --ca processor|platform)\n"
            "           [--ca processor|platform] [--timeout SECONDS] [--root-crl-url URL]\n"
            "           [--at YYYY-MM-DDTHH:MM:SSZ]\n"
            "Fetches TCB info, QE identity, PCK CRL and root CA CRL (Intel PCS API v4 paths),\n"
            "checks them and writes DIR/{sgx|tdx}-FMSPC.json (default DIR %s).\n",
            TM_CFETCH_DEFAULT_CACHE);
    return 2;
}

static unsigned char *read_quote(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(MAX_QUOTE + 1);
    size_t n = b ? fread(b, 1, MAX_QUOTE + 1, f) : 0;
    int bad = !b || ferror(f) || n > MAX_QUOTE;
    fclose(f);
    if (bad) {
        free(b);
        return NULL;
    }
    *len = n;
    return b;
}

static void when(time_t t, char *out, size_t cap)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(out, cap, "?");
}

typedef struct {
    const char *url, *cafile, *cache, *quote, *fmspc, *format, *ca, *timeout, *root_crl_url, *at;
} fetch_args;

static int parse(int argc, char **argv, fetch_args *a)
{
    static const struct { const char *flag; size_t off; } flags[] = {
        {"--url", offsetof(fetch_args, url)},         {"--cafile", offsetof(fetch_args, cafile)},
        {"--cache", offsetof(fetch_args, cache)},     {"--quote", offsetof(fetch_args, quote)},
        {"--fmspc", offsetof(fetch_args, fmspc)},     {"--format", offsetof(fetch_args, format)},
        {"--ca", offsetof(fetch_args, ca)},           {"--timeout", offsetof(fetch_args, timeout)},
        {"--root-crl-url", offsetof(fetch_args, root_crl_url)}, {"--at", offsetof(fetch_args, at)},
    };
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(argv[i], flags[k].flag)) k++;
        if (k == sizeof flags / sizeof flags[0]) {
            fprintf(stderr, "tmqtt-attest collateral: unknown argument '%s'\n", argv[i]);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tmqtt-attest collateral: %s needs a value\n", argv[i]);
            return -1;
        }
        *(const char **)((char *)a + flags[k].off) = argv[++i];
    }
    return 0;
}

/* Fills the platform part of the options from --quote or --fmspc/--format/--ca. */
static int platform(const fetch_args *a, tm_cfetch_opts *o)
{
    int ca = 0;
    if (a->ca && !(ca = tm_pcs_ca_from_name(a->ca))) return usage("--ca is processor or platform");
    if (a->quote) {
        if (a->fmspc) return usage("give --quote or --fmspc, not both");
        size_t len;
        unsigned char *q = read_quote(a->quote, &len);
        if (!q) {
            fprintf(stderr, "tmqtt-attest collateral: cannot read %s (or larger than %u bytes)\n", a->quote,
                    MAX_QUOTE);
            return 1;
        }
        char why[512];
        int bad = tm_pcs_quote_info(q, len, &o->format, o->fmspc, &o->ca, why, sizeof why);
        free(q);
        if (bad) {
            fprintf(stderr, "tmqtt-attest collateral: %s: %s\n", a->quote, why);
            return 1;
        }
        uint16_t f;
        if (a->format && (tm_format_from_name(a->format, &f) || f != o->format))
            return usage("--format does not match the quote");
        if (ca && ca != o->ca) return usage("--ca does not match the quote's PCK CA");
        return 0;
    }
    if (!a->fmspc || !a->format || !ca)
        return usage("give --quote FILE, or --fmspc, --format and --ca (the PCK CA that issued the "
                     "platform's PCK certificate)");
    if (tm_format_from_name(a->format, &o->format) ||
        (o->format != TM_FMT_SGX_DCAP && o->format != TM_FMT_TDX_DCAP))
        return usage("--format is sgx-dcap or tdx-dcap");
    unsigned v[6];
    char tail;
    if (strlen(a->fmspc) != 12 ||
        sscanf(a->fmspc, "%2x%2x%2x%2x%2x%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 ||
        strspn(a->fmspc, "0123456789abcdefABCDEF") != 12)
        return usage("--fmspc is 12 hex digits");
    for (int i = 0; i < 6; i++) o->fmspc[i] = (uint8_t)v[i];
    o->ca = ca;
    return 0;
}

static int cmd_fetch(int argc, char **argv)
{
    fetch_args a;
    if (parse(argc, argv, &a)) return usage(NULL);
    if (!a.url) return usage("fetch needs --url");
    tm_cfetch_opts o;
    memset(&o, 0, sizeof o);
    int rc = platform(&a, &o);
    if (rc) return rc;
    o.url = a.url;
    o.cafile = a.cafile;
    o.cache_dir = a.cache;
    o.root_crl_url = a.root_crl_url;
    o.at = time(NULL);
    if (a.at && strcmp(a.at, "now") && tm_verify_parse_time(a.at, &o.at)) return usage("--at wants YYYY-MM-DDTHH:MM:SSZ");
    if (a.timeout) {
        char *end;
        long t = strtol(a.timeout, &end, 10);
        if (*end || t < 1 || t > 3600) return usage("--timeout is 1..3600 seconds");
        o.timeout_s = t;
    }
    tm_cfetch_info info;
    char warn[1024], reason[2048];
    int r = tm_cfetch_run(&o, &info, warn, sizeof warn, reason, sizeof reason);
    if (warn[0]) fprintf(stderr, "tmqtt-attest collateral: warning: %s\n", warn);
    if (r == TM_CFETCH_ERROR) {
        fprintf(stderr, "tmqtt-attest collateral: fetch failed: %s\n", reason);
        return 1;
    }
    char f[13], t1[32], t2[32], t3[32], t4[32];
    snprintf(f, sizeof f, "%02x%02x%02x%02x%02x%02x", o.fmspc[0], o.fmspc[1], o.fmspc[2], o.fmspc[3], o.fmspc[4],
             o.fmspc[5]);
    when(info.tcb_issue, t1, sizeof t1);
    when(info.tcb_next, t2, sizeof t2);
    when(info.qe_issue, t3, sizeof t3);
    when(info.qe_next, t4, sizeof t4);
    printf("%s %s (%s, FMSPC %s, PCK CA %s)\n"
           "  TCB info:    issueDate %s, nextUpdate %s\n"
           "  QE identity: issueDate %s, nextUpdate %s\n",
           r == TM_CFETCH_UPDATED ? "updated" : "unchanged", info.path, tm_format_name(o.format), f,
           tm_pcs_ca_name(o.ca), t1, t2, t3, t4);
    return 0;
}

int tm_attest_collateral_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(NULL);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "fetch")) {
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                usage(NULL);
                return 0;
            }
        return cmd_fetch(argc, argv);
    }
    return usage("unknown collateral command (known: fetch)");
}
