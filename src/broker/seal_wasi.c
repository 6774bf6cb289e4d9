/*
 * seal_wasi.c — seal.h in the WebAssembly module: the runtime host holds the
 * key and does the sealing (import module `tmqtt_seal`, src/runtime/seal_host.c).
 * The module hands frames to the host by address in its own memory and gets
 * opaque handles for per-file keys; it never sees key material.
 *
 * `persistence_seal` in the module's configuration names the kind of key the
 * operator expects ("keyfile ...", "gramine-mrenclave", "host"...): the host's
 * key source (tmqtt-wasm --seal SPEC) must be of that kind, so a deployment
 * mistake is an error at start, not a store nobody can read later. The path
 * in a `keyfile` spec is the host's business and is not used here.
 */
#include "broker/seal.h"
#include "platform/wasi_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t tm_seal_host_mode(char *out, uint32_t cap, uint32_t *len)
    __attribute__((import_module("tmqtt_seal"), import_name("mode")));
uint32_t tm_seal_host_file_key(const uint8_t *store_id, const uint8_t *file_id, uint32_t *handle)
    __attribute__((import_module("tmqtt_seal"), import_name("file_key")));
uint32_t tm_seal_host_release(uint32_t handle)
    __attribute__((import_module("tmqtt_seal"), import_name("release")));
uint32_t tm_seal_host_crypt(uint32_t handle, uint32_t encrypt, uint64_t seq, const uint8_t *aad,
                            uint32_t aad_len, uint8_t *buf, uint32_t len, uint8_t *tag)
    __attribute__((import_module("tmqtt_seal"), import_name("crypt")));

struct tm_seal {
    char mode[24];
};

struct tm_seal_file {
    uint32_t handle;
};

tm_seal *tm_seal_open(const char *spec, char *err, size_t errcap)
{
    char want[32] = "host", have[24] = "";
    if (spec)
        sscanf(spec, "%31s", want);
    if (tm_host_import_require("tmqtt_seal", "mode", "the sealed store (persistence)", err,
                               errcap) < 0)
        return NULL;
    uint32_t n = 0;
    uint32_t rc = tm_seal_host_mode(have, sizeof have - 1, &n);
    if (rc != 0 || n == 0) {
        snprintf(err, errcap, "the runtime holds no sealing key (start tmqtt-wasm with "
                 "--seal SPEC, e.g. --seal 'keyfile /path/store.key')");
        return NULL;
    }
    have[n < sizeof have ? n : sizeof have - 1] = 0;
    if (strcmp(want, "host") != 0 && strcmp(want, have) != 0) {
        snprintf(err, errcap, "persistence_seal asks for a '%s' key, the runtime seals with '%s'",
                 want, have);
        return NULL;
    }
    tm_seal *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    snprintf(s->mode, sizeof s->mode, "%s", have);
    return s;
}

void tm_seal_close(tm_seal *s) { free(s); }

const char *tm_seal_mode(const tm_seal *s) { return s->mode; }

tm_seal_file *tm_seal_file_new(tm_seal *s, const uint8_t store_id[16],
                               const uint8_t file_id[16], char *err, size_t errcap)
{
    (void)s;
    tm_seal_file *f = calloc(1, sizeof *f);
    if (!f || tm_seal_host_file_key(store_id, file_id, &f->handle) != 0) {
        free(f);
        snprintf(err, errcap, "the runtime could not derive the store file key");
        return NULL;
    }
    return f;
}

void tm_seal_file_free(tm_seal_file *f)
{
    if (!f)
        return;
    tm_seal_host_release(f->handle);
    free(f);
}

static int crypt(tm_seal_file *f, int enc, uint64_t seq, const uint8_t *aad, size_t aadlen,
                 uint8_t *buf, size_t len, uint8_t *tag)
{
    if (len > UINT32_MAX || aadlen > UINT32_MAX)
        return -1;
    return tm_seal_host_crypt(f->handle, (uint32_t)enc, seq, aad, (uint32_t)aadlen, buf,
                              (uint32_t)len, tag) == 0 ? 0 : -1;
}

int tm_seal_encrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, uint8_t tag[TM_SEAL_TAG])
{
    return crypt(f, 1, seq, aad, aadlen, buf, len, tag);
}

int tm_seal_decrypt(tm_seal_file *f, uint64_t seq, const uint8_t *aad, size_t aadlen,
                    uint8_t *buf, size_t len, const uint8_t tag[TM_SEAL_TAG])
{
    uint8_t t[TM_SEAL_TAG];
    memcpy(t, tag, sizeof t);
    return crypt(f, 0, seq, aad, aadlen, buf, len, t);
}
