/*
 * fuzz_collateral.c — fuzz target for the parsers of `tmqtt-attest collateral
 * fetch` (src/attest/collateral_pcs.c): what a PCS / PCCS sends (signed TCB
 * info and QE identity bodies, issuer-chain headers, CRL bodies in DER, PEM or
 * hex), the quote the FMSPC is read from, and the cache file read back for the
 * rollback rule. Every input goes through all of them, so each seed (see
 * make_collateral_seeds.py; the quotes of shared/testdata) serves each parser.
 *
 * Built with -DTM_FUZZ_REPLAY (non-clang builds) it is a plain program that
 * replays files and directories given on the command line (fuzz_replay.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/collateral_pcs.h"
#include "attest/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t fmspc[6] = {0x00, 0xa0, 0x67, 0x11, 0x00, 0x00};
    static const uint8_t zero_sig[64];
    const time_t at = 1750377600; /* 2025-06-20T00:00:00Z: the seeds are current then */
    const char *text = (const char *)data;
    char why[512];

    /* An issuer-chain header line, or a bare value: decoded, then used as a chain. */
    const char *v = text;
    size_t vl = size, cl;
    tm_pcs_header_match(text, size, "TCB-Info-Issuer-Chain", &v, &vl);
    char *chain = tm_pcs_url_decode(v, vl, &cl, why, sizeof why);
    if (chain) {
        tm_pcs_verify_doc("{}", 2, zero_sig, chain, cl, at, "fuzz", why, sizeof why);
        free(chain);
    }
    tm_pcs_verify_doc("{}", 2, zero_sig, text, size, at, "fuzz", why, sizeof why);

    /* Signed document bodies, and the documents on their own. */
    for (int doc = TM_PCS_TCB_INFO; doc <= TM_PCS_QE_IDENTITY; doc++) {
        tm_pcs_signed_body sb;
        tm_pcs_dates d;
        if (tm_pcs_parse_signed_body(doc, text, size, &sb, why, sizeof why) == 0) {
            tm_pcs_check_doc(doc, TM_FMT_SGX_DCAP, fmspc, sb.doc, sb.doc_len, at, &d, why, sizeof why);
            tm_pcs_check_doc(doc, TM_FMT_TDX_DCAP, NULL, sb.doc, sb.doc_len, at, &d, why, sizeof why);
        }
        tm_pcs_check_doc(doc, TM_FMT_SGX_DCAP, NULL, text, size, at, &d, why, sizeof why);
    }

    /* CRL bodies: parsed, then checked as a root CA CRL and as a PCK CRL. */
    uint8_t *der;
    size_t dl;
    if (tm_pcs_parse_crl(data, size, &der, &dl, why, sizeof why) == 0) {
        tm_pcs_verify_crl(der, dl, NULL, 0, 0, at, "fuzz", why, sizeof why);
        free(der);
    }

    /* A quote (FMSPC and PCK CA), and a cache file (rollback dates). */
    uint16_t fmt;
    uint8_t f[6];
    int ca;
    tm_pcs_quote_info(data, size, &fmt, f, &ca, why, sizeof why);
    tm_pcs_cache_dates cd;
    if (tm_pcs_read_cache_dates(text, size, &cd, why, sizeof why) == 0)
        tm_pcs_rollback_check(&cd, &cd, why, sizeof why);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include "fuzz_replay.h"
#endif
