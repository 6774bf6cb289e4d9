/*
 * wasi_host.h — which extension imports the WebAssembly host provides, as seen by a
 * module (guest side; implemented in wasi_glue.c).
 *
 * A wasm module cannot test for an import: a host that lacks one either refuses the
 * module (wasmtime) or links it and traps on the first call (WAMR's iwasm:
 * "failed to call unlinked import function"). So the host announces the import
 * modules it serves beyond WASI in the environment variable TMQTT_HOST_IMPORTS
 * (comma-separated, e.g. "tmqtt_ra,tmqtt_crypto"; tmqtt-wasm sets it, another host
 * sets it with its --env option). Rules for the module:
 *   - announced: call it;
 *   - variable set but the module not in it: the host has none; never call it
 *     (fall back, or fail with a reason that names the import);
 *   - variable unset (a host that does not know the convention): an optional import
 *     (tmqtt_crypto) is not used; a required one (tmqtt_ra) is called after a line on
 *     stderr naming it, so that if the host traps, it has been said why.
 */
#ifndef TM_PLATFORM_WASI_HOST_H
#define TM_PLATFORM_WASI_HOST_H
#ifdef __wasi__
#include <stddef.h>

#define TM_HOST_IMPORTS_ENV "TMQTT_HOST_IMPORTS"

enum tm_host_import {
    TM_HOST_IMPORT_UNKNOWN = -1, /* TMQTT_HOST_IMPORTS unset */
    TM_HOST_IMPORT_ABSENT = 0,
    TM_HOST_IMPORT_PRESENT = 1,
};

/* What the host announced about import module `module` ("tmqtt_ra", ...). */
enum tm_host_import tm_host_import(const char *module);

/* Call before the first use of a required import module.field, for `purpose` (a
 * phrase, e.g. "attestation evidence"). Returns 0 when the call may go ahead (after
 * printing a line on stderr naming the import if the host announced nothing), -1
 * with a reason in err when the host announced that it lacks the import. */
int tm_host_import_require(const char *module, const char *field, const char *purpose, char *err,
                           size_t errlen);

#endif
#endif
