/*
 * fuzz_quote.c — fuzz target for everything in src/attest that reads
 * untrusted bytes: the DCAP quote parser and verifier (SGX and TDX), the sim
 * report parser, the SEV-SNP parser, the collateral JSON parser and the
 * policy parser. Every input goes through all of them: the seeds (real
 * quotes and collateral from shared/testdata) are then useful to each.
 *
 * Built with -DTM_FUZZ_REPLAY (non-clang builds) it is a plain program that
 * replays files and directories given on the command line, so the same
 * checks run in every ctest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/json.h"
#include "attest/policy.h"
#include "attest/verify.h"

static void walk_json(const tm_json *j)
{
    /* Exercise the accessors on every token. */
    char buf[64];
    long long v;
    for (int i = 0; i < j->ntok; i++) {
        tm_json_str(j, i, buf, sizeof buf);
        tm_json_int(j, i, &v);
        tm_json_get(j, i, "tcbLevels");
        tm_json_at(j, i, 1);
        free(tm_json_strdup(j, i, NULL));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t fmts[] = {TM_FMT_SIM, TM_FMT_SGX_DCAP, TM_FMT_TDX_DCAP, TM_FMT_SEV_SNP};
    const time_t at = 1750377600; /* 2025-06-20T00:00:00Z */
    char reason[512], desc[2048];
    tm_claims c;
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        tm_verify(fmts[i], data, size, NULL, NULL, at, &c, reason, sizeof reason);
        tm_claims_text(&c, desc, sizeof desc);
        tm_claims_json(&c, desc, sizeof desc);
        tm_evidence_describe(fmts[i], data, size, desc, sizeof desc);
    }
    tm_evidence_guess_format(data, size);

    tm_json j;
    char err[128];
    if (tm_json_parse(&j, (const char *)data, size, err, sizeof err) == 0) {
        walk_json(&j);
        tm_json_free(&j);
    }

    tm_policy *p = tm_policy_new();
    if (p) {
        /* Policy text may name files; only relative names that do not exist
         * here are reachable, which is fine. */
        tm_policy_parse(p, (const char *)data, size, "fuzz", err, sizeof err);
        /* The same bytes as collateral for the SGX and TDX verifiers. */
        tm_policy_set_collateral(p, TM_FMT_SGX_DCAP, data, size);
        tm_policy_free(p);
    }
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb) { free(b); b = NULL; }
            else b = nb;
        }
    }
    fclose(f);
    if (!b) return -1;
    LLVMFuzzerTestOneInput(b, n);
    /* and every prefix at a coarse stride, since truncation is the classic bug */
    for (size_t k = 0; k < n; k += 1 + n / 64) LLVMFuzzerTestOneInput(b, k);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) { perror(argv[i]); bad++; continue; }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                    bad += replay_file(p) != 0;
                    files++;
                }
            }
            if (d) closedir(d);
        } else {
            bad += replay_file(argv[i]) != 0;
            files++;
        }
    }
    /* A few hand-made hostile inputs. */
    static const char *extra[] = {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "{\"a\":\"\\ud800\"}",
                                  "TMQSIM01", "format sim\nmrenclave zz\n", "\x03\x00\x02\x00"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)extra[i], strlen(extra[i]));
    printf("replayed %d files, %d errors\n", files, bad);
    return bad ? 1 : 0;
}
#endif
