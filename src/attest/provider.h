/*
 * provider.h — where evidence comes from: attestation providers.
 *
 * A provider turns 64 bytes of report_data (evidence.h: tm_atls_binding)
 * into evidence of one of the formats it can produce. The TLS layer and the
 * Wasm runtime's `tmqtt_ra` import only ever see this interface; which TEE
 * answers is a configuration choice:
 *
 *   name     options (comma-separated key=value)              formats
 *   sim      key=PATH (default tmqtt-sim-key.pem, created     sim
 *            0600 on first use), measurement=HEX64 or
 *            measurement_file=PATH (default /proc/self/exe),
 *            debug=true|false
 *   gramine  root=PATH (default /dev/attestation)             sgx-dcap
 *   tsm      root=PATH (default /sys/kernel/config/tsm/report), tdx-dcap or sev-snp
 *            entry=NAME (use/keep a fixed report entry)        (from `provider`)
 *   none     -                                                 (none)
 *
 * Providers do all the file-system work of the library (key files,
 * /proc/self/exe, /dev/attestation, configfs); the verifier does none.
 * A provider object is not thread-safe (the broker is single-threaded).
 */
#ifndef TM_ATTEST_PROVIDER_H
#define TM_ATTEST_PROVIDER_H
#include <stddef.h>
#include <stdint.h>

typedef struct tm_provider tm_provider;

enum tm_provider_err {
    TM_PROV_OK = 0,
    TM_PROV_EFORMAT,  /* the provider cannot produce this format */
    TM_PROV_ESPACE,   /* output buffer too small; *len holds the size needed */
    TM_PROV_EIO,      /* the TEE interface failed (file missing, bad answer, race) */
    TM_PROV_EINTERNAL,
};

/* Opens provider `name` with `options` (NULL or "" for defaults). NULL on
 * error, with the reason in err. */
tm_provider *tm_provider_open(const char *name, const char *options, char *err, size_t errcap);
void tm_provider_close(tm_provider *p);
const char *tm_provider_name(const tm_provider *p);
/* Formats it can produce, most preferred first; returns the count (may exceed cap). */
size_t tm_provider_formats(const tm_provider *p, uint16_t *out, size_t cap);
/* Produces evidence over report_data into out[0..cap). 0 ok with *len set. */
int tm_provider_collect(tm_provider *p, uint16_t format, const uint8_t report_data[64],
                        uint8_t *out, size_t cap, size_t *len, char *err, size_t errcap);

/* Creates a P-256 sim platform key at path (mode 0600) unless one exists.
 * Writes the SHA-256 of its SPKI (what policies trust) to spki_sha256 if non-NULL. */
int tm_sim_keygen(const char *path, uint8_t *spki_sha256, char *err, size_t errcap);
#endif
