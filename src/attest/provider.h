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
 * Every provider but `none` also takes latency_ms=N (default 0): a TEST AND
 * BENCHMARK KNOB that makes each collect take N ms more, so that the sim
 * provider and fake Gramine / configfs-tsm trees behave like a real quoting
 * path (SGX's quoting enclave, TDX's quote service: milliseconds to tens of
 * milliseconds). It sleeps; it never changes the evidence.
 *
 * Attestation keys (+key formats, keyatt.h): tm_provider_key_new makes a
 * P-256 key where the provider's TEE is (this process natively; the runtime
 * host for the wasi provider, so that the module never sees it) and one
 * platform quote binding it; the key then signs session bindings.
 *
 * Providers do all the file-system work of the library (key files,
 * /proc/self/exe, /dev/attestation, configfs); the verifier does none.
 * A provider object is used by one thread at a time: the owner may lend it
 * to a worker (tm_provider_lend) and must not use it until it is returned;
 * Gramine's pseudo-files, for one, give wrong quotes to concurrent users.
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

/* Lending to another thread: 1 when lent now (the caller's worker may use p
 * until tm_provider_return; nobody else may), 0 when it already was. */
int tm_provider_lend(tm_provider *p);
void tm_provider_return(tm_provider *p);
/* 1 while lent: the owner must not call collect (direct quotes wait). */
int tm_provider_lent(const tm_provider *p);

/* ---- attestation keys (+key formats) ---- */
typedef struct tm_prov_key tm_prov_key;
/* Makes an attestation key for platform format `format` valid until
 * not_after (seconds since the epoch) and the platform evidence over its key
 * binding (keyatt.h). Costs one quote (and latency_ms); call it where that may
 * block (a worker thread, or between event-loop iterations). NULL with a
 * reason (the provider's error when the quote failed). */
tm_prov_key *tm_provider_key_new(tm_provider *p, uint16_t format, uint64_t not_after, char *err,
                                 size_t errcap);
uint16_t tm_prov_key_format(const tm_prov_key *k);
uint64_t tm_prov_key_not_after(const tm_prov_key *k);
const uint8_t *tm_prov_key_spki(const tm_prov_key *k, size_t *len);
const uint8_t *tm_prov_key_evidence(const tm_prov_key *k, size_t *len);
/* ECDSA P-256/SHA-256 signature (DER) over 64 bytes. 0, or -1 with a reason
 * (sig too small: TM_PROV_ESPACE-style reason; 72 bytes always suffice). */
#define TM_PROV_KEY_SIG_MAX 72
int tm_prov_key_sign(tm_prov_key *k, const uint8_t rd[64], uint8_t *sig, size_t cap, size_t *len,
                     char *err, size_t errcap);
/* KeyAttestedEvidence (keyatt.h) over rd: platform evidence, key, not_after
 * and a fresh signature, into out. TM_PROV_OK, TM_PROV_ESPACE (*len = size
 * needed) or TM_PROV_EINTERNAL. */
int tm_prov_key_evidence_over(tm_prov_key *k, const uint8_t rd[64], uint8_t *out, size_t cap,
                              size_t *len, char *err, size_t errcap);
/* Wipes and frees the key (and releases a host key). NULL is a no-op. */
void tm_prov_key_free(tm_prov_key *k);

/* Creates a P-256 sim platform key at path (mode 0600) unless one exists.
 * Writes the SHA-256 of its SPKI (what policies trust) to spki_sha256 if non-NULL. */
int tm_sim_keygen(const char *path, uint8_t *spki_sha256, char *err, size_t errcap);
#endif
