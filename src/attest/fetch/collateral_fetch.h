/*
 * collateral_fetch.h — fetch DCAP collateral (TCB info, QE identity, PCK CRL,
 * root CA CRL) for one FMSPC from a PCCS-compatible HTTPS service (Intel PCS
 * API v4 paths) into a cache directory that policies read
 * (docs/collateral.md).
 *
 * Owns: the HTTPS requests (libcurl, certificate and host name verification
 * always on, https only, no redirects), the cache directory (a lock file,
 * the rollback rule, atomic replacement). Parsing and checking of what the
 * service sent are collateral_pcs.h's pure functions.
 *
 * Invariants: a cache file is replaced only by collateral that passed every
 * check of collateral_pcs.h and is not older than what it replaces; the
 * replacement is atomic (temporary file in the same directory, fsync, rename,
 * fsync of the directory), so a reader sees the old file or the new one,
 * never a mixture. Errors are returned with a reason; nothing here exits.
 *
 * Lives in its own static library (tmqtt_collateral_fetch), outside
 * tmqtt_attest: that library also builds for wasm32-wasi, which has no
 * libcurl, and the fuzz targets compile the .c files directly in src/attest
 * (not this directory) without libcurl.
 */
#ifndef TM_ATTEST_COLLATERAL_FETCH_H
#define TM_ATTEST_COLLATERAL_FETCH_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TM_CFETCH_DEFAULT_CACHE "/var/cache/tmqtt/collateral"
#define TM_CFETCH_DEFAULT_TIMEOUT 30

typedef struct {
    const char *url;          /* service base, "https://host[:port][/prefix]" */
    const char *cafile;       /* PEM bundle replacing the system CAs, or NULL */
    const char *cache_dir;    /* NULL: TM_CFETCH_DEFAULT_CACHE */
    const char *root_crl_url; /* NULL: URL/sgx/certification/v4/rootcacrl (PCCS) */
    uint16_t format;          /* TM_FMT_SGX_DCAP or TM_FMT_TDX_DCAP */
    uint8_t fmspc[6];
    int ca;                   /* enum tm_pcs_ca */
    long timeout_s;           /* per request; <= 0: TM_CFETCH_DEFAULT_TIMEOUT */
    time_t at;                /* evaluation time for validity checks */
} tm_cfetch_opts;

enum tm_cfetch_result { TM_CFETCH_ERROR = -1, TM_CFETCH_UPDATED = 0, TM_CFETCH_UNCHANGED = 1 };

/* Summary of a successful fetch, for the tool to print. */
typedef struct {
    char path[4096];          /* the cache file */
    time_t tcb_issue, tcb_next, qe_issue, qe_next;
} tm_cfetch_info;

/*
 * Fetches, checks and caches. Returns TM_CFETCH_UPDATED (file written),
 * TM_CFETCH_UNCHANGED (the cache already held exactly this collateral) or
 * TM_CFETCH_ERROR with a reason (the cache file is then untouched).
 * `warn` (may be NULL) receives notes that are not errors (an unreadable old
 * cache file that gets replaced), empty when there are none.
 */
int tm_cfetch_run(const tm_cfetch_opts *o, tm_cfetch_info *info, char *warn, size_t warncap, char *reason,
                  size_t cap);
#endif
