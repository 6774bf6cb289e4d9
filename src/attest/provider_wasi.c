/*
 * provider_wasi.c — the `wasi` attestation provider: evidence from the WebAssembly
 * runtime through the `tmqtt_ra` import (src/platform/wasi_ra.h), for code compiled
 * to wasm32-wasi (tmqtt-broker.wasm).
 *
 * Inside the sandbox the module has neither the TEE interfaces (/dev/attestation,
 * configfs) nor, by design, the platform key: the host (tmqtt-wasm --attest ...)
 * decides which TEE answers. So on __wasi__, provider.c routes every provider name
 * except `none` to this one; the broker configuration stays identical between the
 * native and the Wasm build, and the options it gives (key=, root=, ...) are checked
 * for typos against the named provider and then left to the host (they name host
 * files the module cannot and must not read).
 *
 * Invariants: formats are queried from the host once, at open (the host's provider
 * does not change while the module runs), and opening fails when there are none or
 * when the host announced that it has no tmqtt_ra (platform/wasi_host.h: then the
 * import is never called); report data is always exactly 64 bytes;
 * ENOBUFS from the host is turned into TM_PROV_ESPACE with the size it needs.
 * Attestation keys (+key formats) are made and kept by the host too (key_new etc.):
 * the module's tm_prov_key holds the handle and copies of the public parts, and asks
 * the host for each signature, so that the private key never enters the sandbox.
 * On other platforms this file compiles to nothing.
 */
#ifdef __wasi__
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest_int.h"
#include "attest/provider_int.h"
#include "platform/wasi_host.h"
#include "platform/wasi_ra.h"

#define TM_WASI_MAX_FORMATS 16

typedef struct {
    uint16_t formats[TM_WASI_MAX_FORMATS];
    size_t n;
} wasi_state;

static int wasi_open(tm_provider *p, const tm_prov_opt *opts, int nopts, char *err, size_t cap)
{
    wasi_state *s = calloc(1, sizeof *s);
    if (!s) {
        tm_reasonf(err, cap, "out of memory");
        return -1;
    }
    /* The first call of tmqtt_ra: on a host without it (WAMR's iwasm) this is where
     * the module would trap, so say which import before calling, or refuse cleanly
     * when the host announced that it lacks it (platform/wasi_host.h). */
    if (tm_host_import_require("tmqtt_ra", "formats", "attestation (attestation_provider)", err, cap) != 0) {
        free(s);
        return -1;
    }
    uint8_t raw[TM_WASI_MAX_FORMATS * 2];
    uint32_t len = 0;
    uint32_t rc = tm_ra_formats(raw, sizeof raw, &len);
    if (rc != 0 || len > sizeof raw || len % 2) {
        free(s);
        tm_reasonf(err, cap, "wasi: the runtime's tmqtt_ra.formats failed (errno %u)", (unsigned)rc);
        return -1;
    }
    if (len == 0) {
        /* Say so here: "produces none of the formats" would send the operator to
         * the broker configuration, but the fix is on the runtime's command line. */
        free(s);
        tm_reasonf(err, cap, "the WebAssembly runtime offers no attestation evidence "
                             "(start tmqtt-wasm with --attest sim|gramine|tsm)");
        return -1;
    }
    for (uint32_t i = 0; i < len / 2; i++)
        s->formats[s->n++] = (uint16_t)(raw[2 * i] << 8 | raw[2 * i + 1]);
    p->state = s;
    return 0;
}

static void wasi_close(tm_provider *p) { free(p->state); }

static size_t wasi_formats(const tm_provider *p, uint16_t *out, size_t cap)
{
    const wasi_state *s = p->state;
    for (size_t i = 0; i < s->n && i < cap; i++)
        out[i] = s->formats[i];
    return s->n;
}

static int wasi_collect(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                        size_t *len, char *err, size_t errcap)
{
    uint32_t got = 0;
    uint32_t c32 = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    uint32_t rc = tm_ra_collect_evidence(format, rd, out, c32, &got);
    if (rc == 0) {
        if (got > cap) {
            tm_reasonf(err, errcap, "wasi: the runtime reported %u bytes for a %zu-byte buffer",
                       (unsigned)got, cap);
            return TM_PROV_EINTERNAL;
        }
        *len = got;
        return TM_PROV_OK;
    }
    if (rc == ENOBUFS) {
        *len = got;
        tm_reasonf(err, errcap, "wasi: evidence needs %u bytes", (unsigned)got);
        return TM_PROV_ESPACE;
    }
    if (rc == ENOTSUP) {
        tm_reasonf(err, errcap, "wasi: the runtime's provider cannot produce format 0x%04x", format);
        return TM_PROV_EFORMAT;
    }
    tm_reasonf(err, errcap, "wasi: the runtime's provider failed (errno %u; reason on its stderr)",
               (unsigned)rc);
    return TM_PROV_EIO;
}

/* One public part of a host key into a malloc'd copy. */
static int key_part(uint32_t h, uint32_t what, uint8_t **out, size_t *len, char *err, size_t cap)
{
    uint32_t n = 0;
    uint32_t rc = tm_ra_key_public(h, what, NULL, 0, &n);
    if (rc != ENOBUFS && rc != 0) {
        tm_reasonf(err, cap, "wasi: the runtime's tmqtt_ra.key_public failed (errno %u)", (unsigned)rc);
        return -1;
    }
    *out = malloc(n ? n : 1);
    if (!*out || tm_ra_key_public(h, what, *out, n, &n) != 0) {
        tm_reasonf(err, cap, "wasi: cannot read the attestation key's %s", what ? "evidence" : "SPKI");
        return -1;
    }
    *len = n;
    return 0;
}

static int wasi_key_new(tm_provider *p, tm_prov_key *k, char *err, size_t cap)
{
    uint32_t h = 0;
    uint32_t rc = tm_ra_key_new(k->format, k->not_after, &h);
    if (rc != 0) {
        tm_reasonf(err, cap, rc == ENOTSUP ? "wasi: the runtime's provider cannot quote format 0x%04x"
                                           : "wasi: the runtime could not make an attestation key "
                                             "(errno %u; reason on its stderr)",
                   rc == ENOTSUP ? (unsigned)k->format : (unsigned)rc);
        return -1;
    }
    k->handle = h;
    if (key_part(h, 0, &k->spki, &k->spki_len, err, cap) < 0 ||
        key_part(h, 1, &k->evidence, &k->evidence_len, err, cap) < 0)
        return -1;   /* tm_prov_key_free releases the handle */
    return 0;
}

static int wasi_key_sign(tm_prov_key *k, const uint8_t rd[64], uint8_t *sig, size_t cap, size_t *len,
                         char *err, size_t errcap)
{
    uint32_t n = 0;
    uint32_t c32 = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
    uint32_t rc = tm_ra_key_sign(k->handle, rd, sig, c32, &n);
    if (rc != 0 || n > cap) {
        tm_reasonf(err, errcap, "wasi: the runtime could not sign with the attestation key (errno %u)",
                   (unsigned)rc);
        return -1;
    }
    *len = n;
    return 0;
}

static void wasi_key_free(tm_prov_key *k) { tm_ra_key_free(k->handle); }

static const char *const wasi_keys[] = {NULL};
const tm_provider_ops tm_provider_wasi_ops = {.name = "wasi", .keys = wasi_keys, .open = wasi_open,
                                              .close = wasi_close, .formats = wasi_formats,
                                              .collect = wasi_collect, .key_new = wasi_key_new,
                                              .key_sign = wasi_key_sign, .key_free = wasi_key_free};
#endif
