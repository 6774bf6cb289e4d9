/*
 * provider.c — provider registry, option parsing, the `none` provider and the
 * small file helpers the TEE interfaces need (see provider.h).
 *
 * Options are "key=value,key=value"; unknown keys are errors so that a typo
 * in a broker config cannot silently select a default key file or root.
 * `latency_ms` is common to every provider but `none`: a test and benchmark
 * knob (provider.h) applied here, around the provider's own collect, so that
 * the fake trees of the tests pay it exactly like the sim provider.
 *
 * Compiled for wasm32-wasi (tmqtt-broker.wasm), every provider name but `none`
 * opens the `wasi` provider (provider_wasi.c: evidence from the runtime's
 * tmqtt_ra import), after checking the options against the named provider: the
 * host, not the module, owns the TEE interface and the keys.
 */
#include "attest/provider_int.h"
#include "attest/attest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TM_PROV_MAX_LATENCY_MS 60000

static size_t none_formats(const tm_provider *p, uint16_t *out, size_t cap) { return 0; }
static int none_collect(tm_provider *p, uint16_t format, const uint8_t rd[64], uint8_t *out, size_t cap,
                        size_t *len, char *err, size_t errcap)
{
    tm_reasonf(err, errcap, "none: this provider produces no evidence");
    return TM_PROV_EFORMAT;
}
static const char *const none_keys[] = {NULL};
static const tm_provider_ops none_ops = {.name = "none", .keys = none_keys, .formats = none_formats,
                                         .collect = none_collect};

static const tm_provider_ops *const registry[] = {
    &tm_provider_sim_ops, &tm_provider_gramine_ops, &tm_provider_tsm_ops, &none_ops,
#ifdef __wasi__
    &tm_provider_wasi_ops,
#endif
};

const char *tm_prov_opt_get(const tm_prov_opt *opts, int n, const char *key)
{
    for (int i = n - 1; i >= 0; i--)
        if (!strcmp(opts[i].key, key)) return opts[i].value;
    return NULL;
}

static int parse_opts(const tm_provider_ops *ops, const char *s, tm_prov_opt *o, int *n, char *err, size_t cap)
{
    *n = 0;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t l = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', l);
        if (l == 0) { s = end ? end + 1 : s + l; continue; }
        if (!eq || eq == s) {
            tm_reasonf(err, cap, "%s: option '%.*s' is not key=value", ops->name, (int)l, s);
            return -1;
        }
        size_t kl = (size_t)(eq - s), vl = l - kl - 1;
        if (*n == TM_PROV_MAX_OPTS || kl >= sizeof o->key || vl >= sizeof o->value) {
            tm_reasonf(err, cap, "%s: too many or too long options", ops->name);
            return -1;
        }
        memcpy(o[*n].key, s, kl);
        o[*n].key[kl] = 0;
        memcpy(o[*n].value, eq + 1, vl);
        o[*n].value[vl] = 0;
        int known = ops != &none_ops && !strcmp(o[*n].key, "latency_ms");
        for (const char *const *k = ops->keys; *k; k++)
            if (!strcmp(*k, o[*n].key)) known = 1;
        if (!known) {
            tm_reasonf(err, cap, "%s: unknown option '%s'", ops->name, o[*n].key);
            return -1;
        }
        (*n)++;
        s = end ? end + 1 : s + l;
    }
    return 0;
}

tm_provider *tm_provider_open(const char *name, const char *options, char *err, size_t errcap)
{
    const tm_provider_ops *ops = NULL;
    for (size_t i = 0; name && i < sizeof registry / sizeof registry[0]; i++)
        if (!strcmp(registry[i]->name, name)) ops = registry[i];
    if (!ops) {
        tm_reasonf(err, errcap, "unknown attestation provider '%s' (sim, gramine, tsm, none)", name ? name : "");
        return NULL;
    }
    tm_prov_opt opts[TM_PROV_MAX_OPTS];
    int n;
    if (parse_opts(ops, options, opts, &n, err, errcap)) return NULL;
    unsigned long latency = 0;
    const char *lat = tm_prov_opt_get(opts, n, "latency_ms");
    if (lat) {
        char *end;
        errno = 0;
        latency = strtoul(lat, &end, 10);
        if (!*lat || *end || errno || latency > TM_PROV_MAX_LATENCY_MS || lat[0] == '-') {
            tm_reasonf(err, errcap, "%s: latency_ms must be 0..%d (milliseconds)", ops->name,
                       TM_PROV_MAX_LATENCY_MS);
            return NULL;
        }
    }
#ifdef __wasi__
    if (ops != &none_ops) {
        ops = &tm_provider_wasi_ops;
        n = 0; /* host-side options: tmqtt-wasm --attest-opt */
        latency = 0; /* the host's provider applies its own latency_ms */
    }
#endif
    tm_provider *p = calloc(1, sizeof *p);
    if (!p) {
        tm_reasonf(err, errcap, "out of memory");
        return NULL;
    }
    p->ops = ops;
    p->latency_ms = (uint32_t)latency;
    atomic_init(&p->lent, false);
    if (ops->open && ops->open(p, opts, n, err, errcap) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void tm_provider_close(tm_provider *p)
{
    if (!p) return;
    if (p->ops->close) p->ops->close(p);
    free(p);
}

const char *tm_provider_name(const tm_provider *p) { return p ? p->ops->name : "none"; }

size_t tm_provider_formats(const tm_provider *p, uint16_t *out, size_t cap)
{
    return p ? p->ops->formats(p, out, cap) : 0;
}

int tm_provider_collect(tm_provider *p, uint16_t format, const uint8_t report_data[64], uint8_t *out,
                        size_t cap, size_t *len, char *err, size_t errcap)
{
    if (!p || !report_data || !len) {
        tm_reasonf(err, errcap, "bad arguments");
        return TM_PROV_EINTERNAL;
    }
    *len = 0;
    if (p->latency_ms) {
        /* test/benchmark knob: a quoting path that takes time (provider.h) */
        struct timespec ts = {.tv_sec = p->latency_ms / 1000,
                              .tv_nsec = (long)(p->latency_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    return p->ops->collect(p, format, report_data, out, cap, len, err, errcap);
}

int tm_provider_lend(tm_provider *p)
{
    bool no = false;
    return p && atomic_compare_exchange_strong(&p->lent, &no, true);
}

void tm_provider_return(tm_provider *p)
{
    if (p) atomic_store(&p->lent, false);
}

int tm_provider_lent(const tm_provider *p)
{
    return p && atomic_load(&((tm_provider *)p)->lent);
}

int tm_prov_read(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t n = 0;
    for (;;) {
        uint8_t extra;
        uint8_t *dst = n < cap ? buf + n : &extra;
        size_t room = n < cap ? cap - n : 1;
        ssize_t r = read(fd, dst, room);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        if (n >= cap) {
            close(fd);
            return -2;
        }
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return 0;
}

int tm_prov_write(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0) return -1;
    return 0;
}
