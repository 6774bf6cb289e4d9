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
 * Attestation keys of the +key formats (docs/attested-tls.md) live here, in the host,
 * like the provider's own keys; the module gets a handle, the public parts and
 * signatures:
 *   key_new(format, not_after, handle_out) -> errno
 *       makes a P-256 key and ONE platform quote of `format` over its key binding
 *       (SHA-512("tmqtt-atls-v2 key" || 0 || spki || be64 not_after)); blocks for that
 *       quote. ENOTSUP for a format not offered, ENOSPC when TM_RA_MAX_KEYS are alive,
 *       EIO when the quote failed (reason on stderr).
 *   key_public(handle, what, out_ptr, out_cap, out_len_ptr) -> errno
 *       what 0: the key's DER SubjectPublicKeyInfo, 1: the platform evidence;
 *       ENOBUFS with the needed length; EBADF for an unknown handle.
 *   key_sign(handle, report_data_ptr, sig_ptr, sig_cap, sig_len_ptr) -> errno
 *       ECDSA P-256/SHA-256 (DER) over the 64 bytes; ENOBUFS (72 bytes always do).
 *   key_free(handle) -> errno
 *       wipes the key. The module frees a key when it adopts the next one.
 * With --omit-import tmqtt_ra every one of them traps, as WAMR does for an import it
 * could not link.
 *
 * Why the sim measurement is the SHA-256 of the .wasm computed at build time and
 * embedded (runtime.cmake): the code this executable runs *is* the translation of
 * that module, so the hash of the file that was translated is the honest identity;
 * hashing a file at start would measure whatever file happens to be on disk, which
 * need not be what runs. (With a real TEE the measurement is the enclave/VM image,
 * which contains this executable and therefore the module.)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/host.h"
#include "runtime/host_imports.h"
#include "runtime/ra.h"

#ifdef TM_HAVE_ATTEST_PROVIDER
#include "attest/provider.h"
#endif

#define TM_RA_MAX_EVIDENCE (1u << 20) /* quotes with certificate chains are ~10 KiB */
#define TM_RA_MAX_KEYS 8              /* a keyring holds 1, 2 during a rotation */

struct tm_ra {
    char name[16];
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_provider *prov;
    tm_prov_key *keys[TM_RA_MAX_KEYS];   /* handle = index + 1 */
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
    for (int i = 0; i < TM_RA_MAX_KEYS; i++) tm_prov_key_free(ra->keys[i]);
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

/* ---- attestation keys (+key formats) --------------------------------------------------- */

static bool ra_offers(const tm_ra *ra, u32 format)
{
    uint16_t f[32];
    size_t n = ra_formats(ra, f, 32);
    for (size_t i = 0; i < n && i < 32; i++)
        if (f[i] == format) return true;
    return false;
}

#ifdef TM_HAVE_ATTEST_PROVIDER
static tm_prov_key *ra_key(const tm_ra *ra, u32 handle)
{
    return ra && handle >= 1 && handle <= TM_RA_MAX_KEYS ? ra->keys[handle - 1] : NULL;
}
#endif

u32 TM_RA(key_new)(TM_RA_CTX, u32 format, u64 not_after, u32 handle_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, handle_out, 4)) return TM_EFAULT;
    if (format > 0xffff || !ra_offers(h->ra, format)) return TM_ENOTSUP;
#ifdef TM_HAVE_ATTEST_PROVIDER
    int slot = -1;
    for (int i = 0; i < TM_RA_MAX_KEYS && slot < 0; i++)
        if (!h->ra->keys[i]) slot = i;
    if (slot < 0) return TM_ENOSPC;
    char err[300] = "";
    tm_prov_key *k = tm_provider_key_new(h->ra->prov, (uint16_t)format, not_after, err, sizeof err);
    if (!k) {
        fprintf(stderr, "tmqtt-wasm: attestation (%s): %s\n", h->ra->name, err);
        return TM_EIO;
    }
    h->ra->keys[slot] = k;
    tm_st32(h, handle_out, (uint32_t)slot + 1);
    TM_TRACE(h, "key_new(format 0x%04x) -> handle %d", format, slot + 1);
    return TM_ESUCCESS;
#else
    return TM_ENOTSUP;
#endif
}

u32 TM_RA(key_public)(TM_RA_CTX, u32 handle, u32 what, u32 out, u32 out_cap, u32 out_len_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, out_len_out, 4) || !tm_mem_ok(h, out, out_cap)) return TM_EFAULT;
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_prov_key *k = ra_key(h->ra, handle);
    if (!k) return TM_EBADF;
    size_t n = 0;
    const uint8_t *p = what == 0 ? tm_prov_key_spki(k, &n) : what == 1 ? tm_prov_key_evidence(k, &n)
                                                                       : NULL;
    if (!p) return TM_EINVAL;
    tm_st32(h, out_len_out, (uint32_t)n);
    if (n > out_cap) return TM_ENOBUFS;
    memcpy(tm_mem(h, out), p, n);
    return TM_ESUCCESS;
#else
    (void)handle, (void)what;
    return TM_EBADF;
#endif
}

u32 TM_RA(key_sign)(TM_RA_CTX, u32 handle, u32 report_data, u32 sig, u32 sig_cap, u32 sig_len_out)
{
    tm_host *h = TM_HOST_OF(ctx);
    if (!tm_mem_ok(h, report_data, 64) || !tm_mem_ok(h, sig_len_out, 4) || !tm_mem_ok(h, sig, sig_cap))
        return TM_EFAULT;
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_prov_key *k = ra_key(h->ra, handle);
    if (!k) return TM_EBADF;
    uint8_t rd[64], buf[TM_PROV_KEY_SIG_MAX + 8];
    memcpy(rd, tm_mem(h, report_data), 64);
    size_t n = 0;
    char err[200];
    if (tm_prov_key_sign(k, rd, buf, sizeof buf, &n, err, sizeof err) < 0) {
        fprintf(stderr, "tmqtt-wasm: attestation key: %s\n", err);
        return TM_EIO;
    }
    tm_st32(h, sig_len_out, (uint32_t)n);
    if (n > sig_cap) return TM_ENOBUFS;
    memcpy(tm_mem(h, sig), buf, n);
    return TM_ESUCCESS;
#else
    (void)handle;
    return TM_EBADF;
#endif
}

u32 TM_RA(key_free)(TM_RA_CTX, u32 handle)
{
    tm_host *h = TM_HOST_OF(ctx);
#ifdef TM_HAVE_ATTEST_PROVIDER
    tm_prov_key *k = ra_key(h->ra, handle);
    if (!k) return TM_EBADF;
    tm_prov_key_free(k);
    h->ra->keys[handle - 1] = NULL;
    return TM_ESUCCESS;
#else
    (void)h, (void)handle;
    return TM_EBADF;
#endif
}
