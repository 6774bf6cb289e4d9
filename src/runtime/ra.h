/*
 * ra.h — the host side of the `tmqtt_ra` import (internal to src/runtime/).
 *
 * The module asks for evidence over 64 bytes of report data; the host answers through
 * the attestation provider chosen on the command line (--attest sim|gramine|tsm|none,
 * src/attest/provider.h). The module never sees provider keys or files, only the
 * evidence bytes. When the runtime is built without the attestation library, only
 * `none` exists.
 */
#ifndef TM_RUNTIME_RA_H
#define TM_RUNTIME_RA_H

#include <stddef.h>
#include <stdint.h>

typedef struct tm_ra tm_ra;

/* Opens provider `name` with comma-separated `options` ("" for defaults). For `sim`,
 * measurement (SHA-256 of the translated .wasm) is passed as the measured image
 * unless options already name one. NULL on error with the reason in err. */
tm_ra *tm_ra_open(const char *name, const char *options, const uint8_t measurement[32], char *err,
                  size_t errlen);
void tm_ra_close(tm_ra *ra);
const char *tm_ra_name(const tm_ra *ra);

#endif
