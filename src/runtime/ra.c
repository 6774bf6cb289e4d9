/*
 * ra.c — the `tmqtt_ra` import module:
 *
 *   formats(out_ptr, out_cap, out_len_ptr) -> errno
 *       writes the provider's format ids as big-endian uint16 (most preferred first)
 *       and their byte length to *out_len_ptr; ENOBUFS (with the needed length) when
 *       out_cap is too small.
 *   collect_evidence(format, report_data_ptr, out_ptr, out_cap, out_len_ptr) -> errno
 *       reads 64 bytes of report data, writes the evidence and its length;
 *       ENOBUFS with the needed length in *out_len_ptr when it does not fit,
 *       ENOTSUP for a format the provider cannot produce, EIO when the TEE
 *       interface fails (the reason is logged on stderr: the module gets no text).
 *
 * With --omit-import tmqtt_ra both trap as WAMR does for an import it could not link.
 *
 * Why the sim measurement is the SHA-256 of the .wasm computed at build time and
 * embedded (runtime.cmake): the code this executable runs *is* the translation of
 * that module, so the hash of the file that was translated is the honest identity;
 * hashing a file at start would measure whatever file happens to be on disk, which
 * need not be what runs. (With a real TEE the measurement is the enclave/VM image,
 * which contains this executable and therefore the module.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"
#include "runtime/ra.h"

#ifdef TM_HAVE_ATTEST_PROVIDER
#include "attest/provider.h"
#endif

#define TM_RA_MAX_EVIDENCE (1u << 20) /* quotes with certificate chains are ~10 KiB */

struct tm_ra {
    char name[16];
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_provider *prov;
#endif
};

tm_ra *tm_ra_open(const char *name, const char *options, const uint8_t measurement[32], char *err,
                  size_t errlen)
{
    tm_ra *ra = calloc(1, sizeof *ra);
    if (!ra) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(ra->name, sizeof ra->name, "%s", name);
    if (strcmp(name, "none") == 0) return ra;
#ifdef TM_HAVE_ATTEST_PROVIDER
    const char *opts = options ? options : "";
    char *joined = NULL;
    if (strcmp(name, "sim") == 0 && !strstr(opts, "measurement=") && !strstr(opts, "measurement_file=")) {
        size_t l = strlen(opts) + 64 + 32;
        joined = malloc(l);
        if (!joined) {
            free(ra);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        int n = snprintf(joined, l, "%s%smeasurement=", opts, *opts ? "," : "");
        for (int i = 0; i < 32; i++) n += snprintf(joined + n, l - (size_t)n, "%02x", measurement[i]);
        opts = joined;
    }
    ra->prov = tm_provider_open(name, opts, err, errlen);
    free(joined);
    if (!ra->prov) {
        free(ra);
        return NULL;
    }
    return ra;
#else
    snprintf(err, errlen, "--attest %s: this tmqtt-wasm was built without the attestation library "
                          "(only 'none' is available)", name);
    free(ra);
    return NULL;
#endif
}

void tm_ra_close(tm_ra *ra)
{
    if (!ra) return;
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_provider_close(ra->prov);
#endif
    free(ra);
}

const char *tm_ra_name(const tm_ra *ra) { return ra ? ra->name : "none"; }

static size_t ra_formats(const tm_ra *ra, uint16_t *out, size_t cap)
{
#ifdef TM_HAVE_ATTEST_PROVIDER
    if (ra && ra->prov) return tm_provider_formats(ra->prov, out, cap);
#endif
    return 0;
}

u32 TM_RA(formats)(TM_RA_CTX, u32 out, u32 out_cap, u32 out_len_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (h->omit & TM_IMPORT_RA) tm_trap_unlinked(h, "tmqtt_ra", "formats");
    if (!tm_mem_ok(h, out_len_out, 4)) return TM_EFAULT;
    uint16_t f[32];
    size_t n = ra_formats(h->ra, f, 32);
    if (n > 32) n = 32;
    uint32_t bytes = (uint32_t)n * 2;
    tm_st32(h, out_len_out, bytes);
    if (out_cap < bytes) return TM_ENOBUFS;
    if (!tm_mem_ok(h, out, bytes)) return TM_EFAULT;
    for (size_t i = 0; i < n; i++) {
        tm_st8(h, out + (uint32_t)i * 2, (uint8_t)(f[i] >> 8));
        tm_st8(h, out + (uint32_t)i * 2 + 1, (uint8_t)f[i]);
    }
    return TM_ESUCCESS;
}

u32 TM_RA(collect_evidence)(TM_RA_CTX, u32 format, u32 report_data, u32 out, u32 out_cap,
                            u32 out_len_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (h->omit & TM_IMPORT_RA) tm_trap_unlinked(h, "tmqtt_ra", "collect_evidence");
    if (!tm_mem_ok(h, report_data, 64) || !tm_mem_ok(h, out_len_out, 4) || !tm_mem_ok(h, out, out_cap))
        return TM_EFAULT;
    if (format > 0xffff) return TM_EINVAL;
    uint16_t f[32];
    size_t n = ra_formats(h->ra, f, 32), i;
    for (i = 0; i < n && i < 32; i++)
        if (f[i] == format) break;
    if (i == n || i == 32) return TM_ENOTSUP;
#ifdef TM_HAVE_ATTEST_PROVIDER
    uint8_t rd[64];
    memcpy(rd, tm_mem(h, report_data), 64); /* copy: the provider may take a while */
    size_t cap = out_cap > TM_RA_MAX_EVIDENCE ? TM_RA_MAX_EVIDENCE : out_cap;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return TM_ENOMEM;
    size_t len = 0;
    char err[256] = "";
    int r = tm_provider_collect(h->ra->prov, (uint16_t)format, rd, buf, cap, &len, err, sizeof err);
    if (r == TM_PROV_ESPACE) {
        free(buf);
        tm_st32(h, out_len_out, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len));
        return TM_ENOBUFS;
    }
    if (r != TM_PROV_OK) {
        free(buf);
        fprintf(stderr, "tmqtt-wasm: attestation (%s): %s\n", h->ra->name, err);
        return r == TM_PROV_EFORMAT ? TM_ENOTSUP : TM_EIO;
    }
    memcpy(tm_mem(h, out), buf, len);
    free(buf);
    tm_st32(h, out_len_out, (uint32_t)len);
    TM_TRACE(h, "collect_evidence(format 0x%04x) -> %zu bytes", format, len);
    return TM_ESUCCESS;
#else
    return TM_ENOTSUP;
#endif
}
