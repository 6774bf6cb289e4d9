/*
 * provider_tsm.c — TDX / SEV-SNP evidence through Linux configfs-tsm
 * (Documentation/ABI/testing/configfs-tsm).
 *
 * Protocol per request: mkdir a fresh entry under the report root, write the
 * 64-byte report_data to `inblob`, read `generation`, read `outblob` (the
 * kernel produces the quote/report then), read `provider` ("tdx_guest" ->
 * tdx-dcap, "sev_guest" -> sev-snp), read `generation` again: if it moved,
 * someone else wrote to the entry between our write and read, and the outblob
 * may not be ours — refuse. The entry is removed afterwards (unless it was a
 * pre-existing fixed `entry=` given by the operator or a test).
 * The format is learned once at open by probing an entry the same way.
 *
 * SEV-SNP: the evidence is `outblob` (the 0x4A0-byte report) followed by
 * `auxblob` when the kernel has one (the certificate table with the VCEK,
 * ASK and ARK that the host provisioned; layout in snp.c). Both are read
 * between the two generation reads, so they belong to the same request.
 */
#include "attest/attest_int.h"
#include "attest/provider_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#define TSM_MAX_BLOB (64 * 1024)

typedef struct {
    char root[512];
    char entry[128];  /* fixed entry name, or "" for a fresh one per request */
    uint16_t format;
} tsm_state;

typedef struct {
    char dir[700];
    int owned;        /* we created it, so we remove it */
} tsm_entry;

static int entry_make(const tsm_state *s, tsm_entry *e, char *err, size_t cap)
{
    e->owned = 0;
    if (s->entry[0]) {
        snprintf(e->dir, sizeof e->dir, "%s/%s", s->root, s->entry);
        if (mkdir(e->dir, 0700) == 0) e->owned = 1;
        else if (errno != EEXIST) {
            tm_reasonf(err, cap, "tsm: cannot create %s: %s", e->dir, strerror(errno));
            return -1;
        }
        return 0;
    }
    uint8_t rnd[8];
    char hex[17];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        tm_reasonf(err, cap, "tsm: no randomness for an entry name");
        return -1;
    }
    tm_hex_encode(rnd, sizeof rnd, hex);
    snprintf(e->dir, sizeof e->dir, "%s/tmqtt-%s", s->root, hex);
    if (mkdir(e->dir, 0700) != 0) {
        tm_reasonf(err, cap, "tsm: cannot create %s: %s (is configfs-tsm available?)", e->dir, strerror(errno));
        return -1;
    }
    e->owned = 1;
    return 0;
}

static void entry_drop(tsm_entry *e)
{
    if (e->owned) rmdir(e->dir);
}

static int read_attr(const tsm_entry *e, const char *name, uint8_t *buf, size_t cap, size_t *len, char *err,
                     size_t errcap)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", e->dir, name);
    int r = tm_prov_read(path, buf, cap, len);
    if (r != 0) {
        tm_reasonf(err, errcap, "tsm: cannot read %s: %s", path, r == -2 ? "too large" : strerror(errno));
        return -1;
    }
    return 0;
}

static int read_text(const tsm_entry *e, const char *name, char *out, size_t cap, char *err, size_t errcap)
{
    size_t l;
    if (read_attr(e, name, (uint8_t *)out, cap - 1, &l, err, errcap)) return -1;
    while (l && (out[l - 1] == '\n' || out[l - 1] == ' ' || out[l - 1] == 0)) l--;
    out[l] = 0;
    return 0;
}

static int provider_format(const char *prov, uint16_t *fmt)
{
    if (!strcmp(prov, "tdx_guest")) { *fmt = TM_FMT_TDX_DCAP; return 0; }
    if (!strcmp(prov, "sev_guest")) { *fmt = TM_FMT_SEV_SNP; return 0; }
    return -1;
}

static int tsm_open(tm_provider *p, const tm_prov_opt *o, int n, char *err, size_t cap)
{
    const char *root = tm_prov_opt_get(o, n, "root");
    const char *entry = tm_prov_opt_get(o, n, "entry");
    tsm_state *s = calloc(1, sizeof *s);
    if (!s) { tm_reasonf(err, cap, "out of memory"); return -1; }
    snprintf(s->root, sizeof s->root, "%s", root ? root : "/sys/kernel/config/tsm/report");
    if (entry) {
        if (!entry[0] || strchr(entry, '/') || !strcmp(entry, ".") || !strcmp(entry, "..")) {
            tm_reasonf(err, cap, "tsm: entry must be a plain directory name");
            free(s);
            return -1;
        }
        snprintf(s->entry, sizeof s->entry, "%s", entry);
    }
    tsm_entry e;
    char prov[64];
    if (entry_make(s, &e, err, cap)) { free(s); return -1; }
    int rc = read_text(&e, "provider", prov, sizeof prov, err, cap);
    entry_drop(&e);
    if (rc) { free(s); return -1; }
    if (provider_format(prov, &s->format)) {
        tm_reasonf(err, cap, "tsm: unsupported provider '%s' (tdx_guest, sev_guest)", prov);
        free(s);
        return -1;
    }
    p->state = s;
    return 0;
}

static void tsm_close(tm_provider *p) { free(p->state); }

static size_t tsm_formats(const tm_provider *p, uint16_t *out, size_t cap)
{
    const tsm_state *s = p->state;
    if (cap) out[0] = s->format;
    return 1;
}

static int tsm_collect(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                       size_t *len, char *err, size_t errcap)
{
    tsm_state *s = p->state;
    if (format != s->format) {
        tm_reasonf(err, errcap, "tsm: this machine produces %s evidence, not %s", tm_format_name(s->format),
                   tm_format_name(format) ? tm_format_name(format) : "unknown");
        return TM_PROV_EFORMAT;
    }
    tsm_entry e;
    if (entry_make(s, &e, err, errcap)) return TM_PROV_EIO;
    int rc = TM_PROV_EIO;
    char path[800], g1[32], g2[32], prov[64];
    uint8_t *blob = NULL;
    size_t bl = 0, al = 0;
    uint16_t f;
    snprintf(path, sizeof path, "%s/inblob", e.dir);
    if (tm_prov_write(path, rd, 64) != 0) {
        tm_reasonf(err, errcap, "tsm: cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (read_text(&e, "generation", g1, sizeof g1, err, errcap)) goto out;
    blob = malloc(TSM_MAX_BLOB);
    if (!blob) { rc = TM_PROV_EINTERNAL; tm_reasonf(err, errcap, "out of memory"); goto out; }
    if (read_attr(&e, "outblob", blob, TSM_MAX_BLOB, &bl, err, errcap)) goto out;
    if (format == TM_FMT_SEV_SNP && bl > 0) {
        /* auxblob: absent (no file) or empty when the host gave no certificates */
        char ap[800];
        snprintf(ap, sizeof ap, "%s/auxblob", e.dir);
        int r = tm_prov_read(ap, blob + bl, TSM_MAX_BLOB - bl, &al);
        if (r == -2 || (r != 0 && errno != ENOENT)) {
            tm_reasonf(err, errcap, "tsm: cannot read %s: %s", ap, r == -2 ? "too large" : strerror(errno));
            goto out;
        }
        if (r != 0) al = 0;
    }
    if (read_text(&e, "provider", prov, sizeof prov, err, errcap)) goto out;
    if (read_text(&e, "generation", g2, sizeof g2, err, errcap)) goto out;
    if (strcmp(g1, g2) != 0) {
        tm_reasonf(err, errcap, "tsm: generation changed from %s to %s while reading (concurrent writer); "
                   "the outblob may not be ours", g1, g2);
        goto out;
    }
    if (provider_format(prov, &f) || f != format) {
        tm_reasonf(err, errcap, "tsm: provider is now '%s'", prov);
        goto out;
    }
    if (bl == 0) {
        tm_reasonf(err, errcap, "tsm: empty outblob");
        goto out;
    }
    bl += al;
    if (bl > cap) {
        *len = bl;
        tm_reasonf(err, errcap, "tsm: output buffer too small (%zu bytes needed)", bl);
        rc = TM_PROV_ESPACE;
        goto out;
    }
    memcpy(out, blob, bl);
    *len = bl;
    rc = TM_PROV_OK;
out:
    free(blob);
    entry_drop(&e);
    return rc;
}

static const char *const tsm_keys[] = {"root", "entry", NULL};
const tm_provider_ops tm_provider_tsm_ops = {.name = "tsm", .keys = tsm_keys, .open = tsm_open,
                                            .close = tsm_close, .formats = tsm_formats,
                                            .collect = tsm_collect};
