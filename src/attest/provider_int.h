/*
 * provider_int.h — internal contract between provider.c (dispatch, options,
 * file helpers) and the provider implementations. Not installed.
 */
#ifndef TM_ATTEST_PROVIDER_INT_H
#define TM_ATTEST_PROVIDER_INT_H
#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/evp.h>

#include "attest/provider.h"

#define TM_PROV_MAX_OPTS 8

typedef struct {
    char key[32];
    char value[512];
} tm_prov_opt;

typedef struct {
    const char *name;
    const char *const *keys; /* accepted option keys, NULL-terminated */
    int (*open)(tm_provider *p, const tm_prov_opt *opts, int nopts, char *err, size_t cap);
    void (*close)(tm_provider *p);
    size_t (*formats)(const tm_provider *p, uint16_t *out, size_t cap);
    int (*collect)(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                   size_t *len, char *err, size_t errcap);
    /* Optional: attestation keys held outside this process (the wasi provider:
     * in the runtime host). NULL: keys are made here (provider_key.c). key_new
     * fills k's public parts (spki, evidence, not_after, format) and `handle`. */
    int (*key_new)(tm_provider *p, tm_prov_key *k, char *err, size_t errcap);
    int (*key_sign)(tm_prov_key *k, const uint8_t rd[64], uint8_t *sig, size_t cap, size_t *len,
                    char *err, size_t errcap);
    void (*key_free)(tm_prov_key *k);
} tm_provider_ops;

struct tm_provider {
    const tm_provider_ops *ops;
    void *state;
    uint32_t latency_ms;        /* test/benchmark knob: each collect takes this long (0) */
    atomic_bool lent;           /* tm_provider_lend: another thread has it */
};

/* An attestation key (provider.h). Public parts are copies owned here. */
struct tm_prov_key {
    tm_provider *prov;          /* its maker (key_sign / key_free of a host key) */
    uint16_t format;            /* platform format of the evidence */
    uint64_t not_after;
    uint8_t *spki, *evidence;
    size_t spki_len, evidence_len;
    EVP_PKEY *pkey;             /* in-process key; NULL for a host key */
    uint32_t handle;            /* host key */
};

const char *tm_prov_opt_get(const tm_prov_opt *opts, int n, const char *key);
/* Whole file into buf (at most cap bytes; -2 if larger). 0 ok, -1 with errno. */
int tm_prov_read(const char *path, uint8_t *buf, size_t cap, size_t *len);
/* Writes all bytes to an existing file (no create, no truncate: works on
 * configfs and Gramine's pseudo-files). 0 ok, -1 with errno. */
int tm_prov_write(const char *path, const uint8_t *data, size_t len);

extern const tm_provider_ops tm_provider_sim_ops, tm_provider_gramine_ops, tm_provider_tsm_ops;
#ifdef __wasi__
extern const tm_provider_ops tm_provider_wasi_ops; /* provider_wasi.c: the tmqtt_ra import */
#endif
#endif
