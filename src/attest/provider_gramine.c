/*
 * provider_gramine.c — SGX DCAP quotes through Gramine's /dev/attestation.
 *
 * Inside a Gramine enclave, writing 64 bytes to <root>/user_report_data and
 * then reading <root>/quote yields an SGX ECDSA (DCAP) quote whose
 * REPORTDATA is those bytes. <root>/attestation_type, when present, must say
 * "dcap" (EPID quotes are another format). The root is configurable so tests
 * can run against a fake directory tree of plain files. The provider does
 * not check that the quote carries the report_data it wrote: the verifier
 * on the other side does that, and a fake tree cannot sign new quotes.
 *
 * The two pseudo-files are one per process: a second writer between our
 * write and our read would give us a quote over its report data. Natively a
 * process-wide mutex serialises collects, so that two provider instances
 * (a listener's and the one rebuilt by SIGHUP, each with an attestation key
 * rotating in a worker thread) cannot interleave.
 */
#include "attest/attest_int.h"
#include "attest/provider_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if !defined(__wasi__)
#include <pthread.h>
static pthread_mutex_t gramine_lock = PTHREAD_MUTEX_INITIALIZER;
#define GRAMINE_LOCK() pthread_mutex_lock(&gramine_lock)
#define GRAMINE_UNLOCK() pthread_mutex_unlock(&gramine_lock)
#else
#define GRAMINE_LOCK() ((void)0)
#define GRAMINE_UNLOCK() ((void)0)
#endif

#define GRAMINE_MAX_QUOTE (64 * 1024)

typedef struct { char root[512]; } gramine_state;

static int gramine_open(tm_provider *p, const tm_prov_opt *o, int n, char *err, size_t cap)
{
    const char *root = tm_prov_opt_get(o, n, "root");
    gramine_state *s = calloc(1, sizeof *s);
    if (!s) { tm_reasonf(err, cap, "out of memory"); return -1; }
    snprintf(s->root, sizeof s->root, "%s", root ? root : "/dev/attestation");
    struct stat st;
    if (stat(s->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        tm_reasonf(err, cap, "gramine: %s is not available (not running inside Gramine with remote attestation?)",
                   s->root);
        free(s);
        return -1;
    }
    char path[600];
    uint8_t t[64];
    size_t tl;
    snprintf(path, sizeof path, "%s/attestation_type", s->root);
    if (tm_prov_read(path, t, sizeof t - 1, &tl) == 0) {
        while (tl && (t[tl - 1] == '\n' || t[tl - 1] == ' ' || t[tl - 1] == 0)) tl--;
        t[tl] = 0;
        if (strcmp((char *)t, "dcap") != 0) {
            tm_reasonf(err, cap, "gramine: attestation_type is '%s', need 'dcap' (sgx.remote_attestation = \"dcap\")",
                       (char *)t);
            free(s);
            return -1;
        }
    }
    p->state = s;
    return 0;
}

static void gramine_close(tm_provider *p) { free(p->state); }

static size_t gramine_formats(const tm_provider *p, uint16_t *out, size_t cap)
{
    if (cap) out[0] = TM_FMT_SGX_DCAP;
    return 1;
}

static int gramine_collect(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                           size_t *len, char *err, size_t errcap)
{
    gramine_state *s = p->state;
    if (format != TM_FMT_SGX_DCAP) {
        tm_reasonf(err, errcap, "gramine: only sgx-dcap evidence is available");
        return TM_PROV_EFORMAT;
    }
    char path[600];
    uint8_t *q = malloc(GRAMINE_MAX_QUOTE);
    if (!q) { tm_reasonf(err, errcap, "out of memory"); return TM_PROV_EINTERNAL; }
    snprintf(path, sizeof path, "%s/user_report_data", s->root);
    GRAMINE_LOCK();
    if (tm_prov_write(path, rd, 64) != 0) {
        GRAMINE_UNLOCK();
        tm_reasonf(err, errcap, "gramine: cannot write %s: %s", path, strerror(errno));
        free(q);
        return TM_PROV_EIO;
    }
    size_t ql = 0;
    snprintf(path, sizeof path, "%s/quote", s->root);
    int r = tm_prov_read(path, q, GRAMINE_MAX_QUOTE, &ql);
    int read_errno = errno;
    GRAMINE_UNLOCK();
    errno = read_errno;
    int rc = TM_PROV_OK;
    if (r != 0) {
        tm_reasonf(err, errcap, "gramine: cannot read %s: %s", path, r == -2 ? "too large" : strerror(errno));
        rc = TM_PROV_EIO;
    } else if (ql < 48 + 384 || tm_rd16le(q) != 3 || tm_rd32le(q + 4) != 0) {
        tm_reasonf(err, errcap, "gramine: %s is not an SGX DCAP v3 quote", path);
        rc = TM_PROV_EIO;
    } else if (ql > cap) {
        *len = ql;
        tm_reasonf(err, errcap, "gramine: output buffer too small (%zu bytes needed)", ql);
        rc = TM_PROV_ESPACE;
    } else {
        memcpy(out, q, ql);
        *len = ql;
    }
    free(q);
    return rc;
}

static const char *const gramine_keys[] = {"root", NULL};
const tm_provider_ops tm_provider_gramine_ops = {.name = "gramine", .keys = gramine_keys,
                                                .open = gramine_open, .close = gramine_close,
                                                .formats = gramine_formats,
                                                .collect = gramine_collect};
