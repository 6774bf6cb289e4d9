/*
 * wasi_glue.c — the few POSIX functions a WASI program links against but that
 * WASI preview 1 has no notion of, and the reading of the host's import
 * announcement (wasi_host.h) (guest side; compiled only for wasm32-wasi).
 *
 * WASI has no processes and no users: OpenSSL (RNG fork detection, file
 * permission checks) and the broker only need a stable answer. Identity is not a
 * security boundary inside the sandbox; the runtime's preopens and address pool are.
 * Do not also link -lwasi-emulated-getpid (duplicate getpid).
 */
#ifdef __wasi__
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "platform/wasi_host.h"

pid_t getpid(void) { return 1; }
uid_t getuid(void) { return 0; }
uid_t geteuid(void) { return 0; }
gid_t getgid(void) { return 0; }
gid_t getegid(void) { return 0; }

enum tm_host_import tm_host_import(const char *module)
{
    const char *v = getenv(TM_HOST_IMPORTS_ENV);
    if (!v) return TM_HOST_IMPORT_UNKNOWN;
    size_t n = strlen(module);
    for (const char *p = v; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && strncmp(p, module, n) == 0) return TM_HOST_IMPORT_PRESENT;
        p += l;
        if (*p == ',') p++;
    }
    return TM_HOST_IMPORT_ABSENT;
}

int tm_host_import_require(const char *module, const char *field, const char *purpose, char *err,
                           size_t errlen)
{
    switch (tm_host_import(module)) {
    case TM_HOST_IMPORT_PRESENT:
        return 0;
    case TM_HOST_IMPORT_ABSENT:
        snprintf(err, errlen,
                 "%s needs the host import %s, and this WebAssembly host does not provide it "
                 "(%s=%s); run the module under tmqtt-wasm, which provides it "
                 "(docs/wasm-runtime.md, \"What a host provides\")",
                 purpose, module, TM_HOST_IMPORTS_ENV, getenv(TM_HOST_IMPORTS_ENV));
        return -1;
    case TM_HOST_IMPORT_UNKNOWN:
        break;
    }
    /* Said before the call: on a host without the import, the call is the end. */
    fprintf(stderr,
            "tmqtt: %s: calling host import %s.%s; the host did not announce its imports (%s "
            "unset), so if it lacks %s it stops here (WAMR: \"failed to call unlinked import "
            "function\"); tmqtt-wasm provides it (docs/wasm-runtime.md)\n",
            purpose, module, field, TM_HOST_IMPORTS_ENV, module);
    fflush(stderr);
    return 0;
}
#endif
