/*
 * fuzz_snp.c — fuzz target for the SEV-SNP evidence parser and verifier
 * (src/attest/snp.c): the attestation report, the configfs-tsm certificate
 * table after it, and the VCEK certificate extensions (product name, TCB
 * SPLs, hwID) read with OpenSSL's ASN.1 decoders. Every input is used
 *
 *   - as sev-snp evidence, under an empty policy and under one that accepts
 *     any measurement and has the real Milan VCEK in its cache;
 *   - as a certificate table appended to the real Milan report;
 *   - as a VCEK in the policy's cache, for the real report.
 *
 * Seeds: tests/fuzz/corpus/snp (report + tables built from the real
 * certificates) and shared/testdata/snp. Built with -DTM_FUZZ_REPLAY it is a
 * plain program replaying them (ctest fuzz_snp_replay).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/policy.h"
#include "attest/verify.h"
#include "fuzz_util.h"

#define REPORT_LEN 0x4A0

static const time_t at = 1750377600; /* 2025-06-20T00:00:00Z */
static uint8_t *report, *vcek;
static size_t report_len, vcek_len;
static tm_policy *with_vcek;

static void init(void)
{
    static int done;
    if (done) return;
    done = 1;
    report = tm_fuzz_testdata("snp/report_milan.bin", &report_len);
    vcek = tm_fuzz_testdata("snp/vcek_milan.der", &vcek_len);
    char err[256];
    with_vcek = tm_policy_new();
    const char *t = "allow_any_measurement true\nallow_debug true\nsnp_allow_migrate_ma true\nsnp_max_vmpl 3\n";
    if (with_vcek) tm_policy_parse(with_vcek, t, strlen(t), "fuzz", err, sizeof err);
    if (with_vcek && vcek) tm_policy_add_snp_vcek(with_vcek, vcek, vcek_len, err, sizeof err);
    if (!report || report_len != REPORT_LEN || !vcek)
        fprintf(stderr, "fuzz_snp: sample report/VCEK not found under %s; those modes are off\n", TM_FUZZ_TESTDATA);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[512], desc[8192], err[256];
    tm_claims c;
    init();
    tm_verify(TM_FMT_SEV_SNP, data, size, NULL, NULL, at, &c, reason, sizeof reason);
    tm_verify(TM_FMT_SEV_SNP, data, size, NULL, with_vcek, at, &c, reason, sizeof reason);
    tm_claims_text(&c, desc, sizeof desc);
    tm_claims_json(&c, desc, sizeof desc);
    tm_evidence_describe(TM_FMT_SEV_SNP, data, size, desc, sizeof desc);
    tm_evidence_guess_format(data, size);
    if (report && report_len == REPORT_LEN && size < (1u << 20)) {
        uint8_t *ev = malloc(REPORT_LEN + size + 1);
        if (ev) {
            memcpy(ev, report, REPORT_LEN);
            if (size) memcpy(ev + REPORT_LEN, data, size);
            tm_verify(TM_FMT_SEV_SNP, ev, REPORT_LEN + size, NULL, with_vcek, at, &c, reason, sizeof reason);
            tm_evidence_describe(TM_FMT_SEV_SNP, ev, REPORT_LEN + size, desc, sizeof desc);
            free(ev);
        }
        tm_policy *p = tm_policy_new();
        if (p) {
            const char *t = "allow_any_measurement true\n";
            tm_policy_parse(p, t, strlen(t), "fuzz", err, sizeof err);
            if (tm_policy_add_snp_vcek(p, data, size, err, sizeof err) == 0)
                tm_verify(TM_FMT_SEV_SNP, report, REPORT_LEN, NULL, p, at, &c, reason, sizeof reason);
            tm_policy_free(p);
        }
    }
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#define TM_FUZZ_EXTRA_INPUTS {"", "\x02\x00\x00\x00", "not a certificate"}
#include "fuzz_replay.h"
#endif
