/*
 * bench_core.c — the measuring engine of tmqtt-bench (see bench_core.h for the
 * payload layout and the delivery-group model).
 *
 * Everything runs on one tm_loop. The loop has no timers, so the driver
 * computes the time to the next publication and passes it as the poll
 * timeout (rounded up to a millisecond: publications may leave up to 1 ms
 * late, but their timestamp is taken when they really leave, so latency is
 * not distorted; busy-waiting instead would steal a core from the broker on
 * a small machine).
 *
 * Flow control in flood mode (throughput): a publisher may only have
 * `window_bytes` of its messages published but not yet received by every
 * delivery group ("end to end outstanding"), and for QoS 1/2 at most
 * `inflight` unacknowledged. This keeps the broker busy all the time while
 * bounding its queues, so we measure its forwarding rate and not how it
 * copes with an ever growing backlog (which is a different experiment, and
 * where brokers legitimately drop QoS 0). A QoS 0 message that never arrives
 * would hold the window forever, so when nothing has arrived for 300 ms the
 * window is released and the rest is counted as loss at the end. The window
 * may also be bounded in messages (window_msgs): with a broker's default
 * queue length (1000 messages per client for Mosquitto and tmqtt) a window
 * in bytes alone would make it drop messages by design.
 *
 * Invariants: a bclient belongs to exactly one run; callbacks only touch
 * their run's counters; the run is freed after every client is.
 */
#include "tools/bench_core.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_HIST_SUB 64u
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB * 60u)

/* ---- time and /proc --------------------------------------------------- */

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The rest of the line of /proc/PID/FILE that starts with prefix. */
static int proc_line(int pid, const char *file, const char *prefix, char *out, size_t cap)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t pl = strlen(prefix);
    int rc = -1;
    while (rc < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, prefix, pl) == 0) {
            snprintf(out, cap, "%s", line + pl);
            rc = 0;
        }
    fclose(f);
    return rc;
}

long bench_status_kb(int pid, const char *field)
{
    char v[256];
    return proc_line(pid, "status", field, v, sizeof v) < 0 ? -1 : strtol(v, NULL, 10);
}

long bench_rss_kb(int pid)
{
    return bench_status_kb(pid, "VmRSS:");
}

long bench_proc_nofile(int pid)
{
    char v[256];
    if (proc_line(pid, "limits", "Max open files", v, sizeof v) < 0)
        return -1;
    const char *p = v + strspn(v, " ");
    return strncmp(p, "unlimited", 9) == 0 ? LONG_MAX : strtol(p, NULL, 10);
}

long bench_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -1;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}

static const char *const transport_names[] = {
    [BENCH_PLAIN] = "plain", [BENCH_TLS] = "tls", [BENCH_TLS_ATTEST] = "tls-attest",
    [BENCH_WS] = "ws"};

const char *bench_transport_name(bench_transport t)
{
    return (unsigned)t < sizeof transport_names / sizeof transport_names[0] ? transport_names[t]
                                                                           : "?";
}

int bench_transport_parse(const char *s, bench_transport *out)
{
    for (unsigned i = 0; i < sizeof transport_names / sizeof transport_names[0]; i++)
        if (!strcmp(s, transport_names[i])) {
            *out = (bench_transport)i;
            return 0;
        }
    return -1;
}

double bench_proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces: fields restart after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- histogram -------------------------------------------------------- */

static uint32_t hist_index(uint64_t v)
{
    if (v < BENCH_HIST_SUB)
        return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);          /* >= 6 */
    uint32_t m = (uint32_t)(v >> (e - 6)) & (BENCH_HIST_SUB - 1);
    uint32_t i = (e - 5) * BENCH_HIST_SUB + m;
    return i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1;
}

static uint64_t hist_value(uint32_t i)        /* middle of bucket i */
{
    if (i < BENCH_HIST_SUB)
        return i;
    uint32_t e = i / BENCH_HIST_SUB + 5, m = i % BENCH_HIST_SUB;
    uint64_t lo = (uint64_t)(BENCH_HIST_SUB + m) << (e - 6);
    return lo + ((1ull << (e - 6)) >> 1);
}

void bench_hist_init(bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->b = calloc(BENCH_HIST_BUCKETS, sizeof *h->b);
    h->min_ns = UINT64_MAX;
}

void bench_hist_free(bench_hist *h)
{
    free(h->b);
    h->b = NULL;
}

void bench_hist_add(bench_hist *h, uint64_t ns)
{
    if (!h->b)
        return;
    h->b[hist_index(ns)]++;
    h->n++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
}

uint64_t bench_hist_pct(const bench_hist *h, double pct)
{
    if (!h->b || h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(pct / 100.0 * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= rank) {
            uint64_t v = hist_value(i);
            /* Never report beyond what was observed. */
            if (v > h->max_ns)
                v = h->max_ns;
            if (v < h->min_ns)
                v = h->min_ns;
            return v;
        }
    }
    return h->max_ns;
}

/* ---- run state -------------------------------------------------------- */

typedef struct brun brun;

typedef struct bclient {
    tm_client *c;
    brun *run;
    bool is_pub;
    uint32_t idx;
    bool connected, subscribed, closed;
    /* publisher */
    uint64_t next_ns;            /* rate mode: next publication */
    uint32_t seq;                /* next sequence number */
    uint64_t released;           /* messages given up as lost (QoS 0 window) */
    uint64_t acked;
    /* subscriber */
    uint32_t group;
} bclient;

typedef struct bitmap {
    uint8_t *bits;
    size_t cap;                  /* bytes */
} bitmap;

struct brun {
    const bench_spec *sp;
    tm_loop *loop;
    bclient *pubs, *subs;
    uint32_t n_groups;
    bitmap *seen;                /* [group * n_pubs + pub] */
    uint64_t *delivered;         /* per publisher, unique deliveries over all groups */
    char topic[200];
    size_t topic_len;
    uint8_t *payload;
    uint64_t unique, dups, bad, acked;
    uint64_t t_win0, t_win1;     /* measured window (ns) */
    uint64_t recv_window, sent_window;
    uint64_t last_progress;      /* last delivery (ns) */
    bench_hist *lat;
    uint32_t n_connected, n_subscribed, n_closed;
    bool failed;
    char why[320];
};

static void run_fail(brun *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_fail(brun *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static bool bitmap_test_set(bitmap *m, uint32_t bit)
{
    size_t byte = bit / 8;
    if (byte >= m->cap) {
        size_t ncap = m->cap ? m->cap : 1024;
        while (ncap <= byte)
            ncap *= 2;
        uint8_t *nb = realloc(m->bits, ncap);
        if (!nb)
            return false;        /* counted as new: the run reports OOM elsewhere */
        memset(nb + m->cap, 0, ncap - m->cap);
        m->bits = nb;
        m->cap = ncap;
    }
    uint8_t mask = (uint8_t)(1u << (bit % 8));
    bool was = (m->bits[byte] & mask) != 0;
    m->bits[byte] |= mask;
    return was;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- callbacks -------------------------------------------------------- */

static void cb_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr)
{
    bclient *b = ud;
    if (code != 0) {
        run_fail(b->run, "%s %u: CONNACK refused (code 0x%02x)", b->is_pub ? "publisher" : "subscriber",
                 b->idx, code);
        return;
    }
    b->connected = true;
    b->run->n_connected++;
}

static void cb_subscribe(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                         const tm_props *pr)
{
    bclient *b = ud;
    if (n != 1 || codes[0] != b->run->sp->qos) {
        run_fail(b->run, "subscriber %u: SUBACK code 0x%02x (wanted QoS %u)", b->idx,
                 n ? codes[0] : 0xff, b->run->sp->qos);
        return;
    }
    b->subscribed = true;
    b->run->n_subscribed++;
}

static void cb_message(tm_client *c, void *ud, const tm_client_msg *m)
{
    bclient *b = ud;
    brun *r = b->run;
    uint64_t now = bench_now_ns();
    const bench_spec *sp = r->sp;
    if (m->payload.len != sp->size || m->topic.len != r->topic_len ||
        memcmp(m->topic.p, r->topic, r->topic_len) != 0 || m->qos != sp->qos) {
        r->bad++;
        run_fail(r, "subscriber %u: unexpected message (topic %.*s, %u bytes, QoS %u)", b->idx,
                 (int)(m->topic.len > 80 ? 80 : m->topic.len), (const char *)m->topic.p,
                 m->payload.len, m->qos);
        return;
    }
    const uint8_t *p = m->payload.p;
    uint64_t ts = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
    uint32_t seq = rd32(p + 8), pub = rd32(p + 12);
    if (pub >= sp->n_pubs || seq >= r->pubs[pub].seq || ts > now ||
        (sp->size > BENCH_HDR && p[sp->size - 1] != (uint8_t)seq)) {
        r->bad++;
        run_fail(r, "subscriber %u: corrupted payload (publisher %u, seq %u)", b->idx, pub, seq);
        return;
    }
    if (bitmap_test_set(&r->seen[(size_t)b->group * sp->n_pubs + pub], seq)) {
        r->dups++;
        return;
    }
    r->unique++;
    r->delivered[pub]++;
    r->last_progress = now;
    if (now >= r->t_win0 && now < r->t_win1) {
        r->recv_window++;
        bench_hist_add(r->lat, now - ts);
    }
}

static void cb_publish_done(tm_client *c, void *ud, uint16_t pid, uint8_t reason)
{
    bclient *b = ud;
    if (reason >= 0x80) {
        run_fail(b->run, "publisher %u: broker refused a message (reason 0x%02x)", b->idx, reason);
        return;
    }
    b->acked++;
    b->run->acked++;
}

static void cb_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    bclient *b = ud;
    if (!b->closed) {
        b->closed = true;
        b->run->n_closed++;
    }
    if (error)
        run_fail(b->run, "%s %u disconnected: %s (0x%02x)", b->is_pub ? "publisher" : "subscriber",
                 b->idx, error, reason);
}

/* ---- client set-up ---------------------------------------------------- */

tm_client *bench_make_client(tm_loop *loop, const bench_net *net, const char *id, void *ud,
                             const tm_client_cbs *cbs, uint16_t max_inflight, char *err,
                             size_t errcap)
{
    tm_client_opts o;
    tm_client_opts_init(&o);
    o.host = net->host;
    o.port = net->port;
    o.version = net->version;
    o.client_id = id;
    o.keep_alive = net->keep_alive;
    if (net->persistent) {   /* a durable broker then journals every delivery */
        o.clean_start = false;
        o.session_expiry = 300;
    }
    o.ssl_ctx = net->ssl_ctx;
    o.max_inflight = max_inflight;
    o.connect_timeout_ms = (uint32_t)(net->connect_timeout_s * 1000);
    o.cbs = *cbs;
    o.ud = ud;
    if (net->prepare && net->prepare(&o, net->prepare_arg, err, errcap) < 0)
        return NULL;
    return tm_client_new(loop, &o, err, errcap);
}

/* Calls tm_client_tick on every client once a second (keep-alive, timeouts). */
static void tick_all(bclient *const *sets, const uint32_t *counts, int nsets, uint64_t *last)
{
    uint64_t now_ms = tm_client_now_ms();
    if (now_ms - *last < 1000)
        return;
    *last = now_ms;
    for (int s = 0; s < nsets; s++)
        for (uint32_t i = 0; i < counts[s]; i++)
            if (sets[s][i].c && !sets[s][i].closed)
                tm_client_tick(sets[s][i].c, now_ms);
}

/* Connect every client of the run, at most net->connect_parallel at once. */
static int connect_all(brun *r, const bench_net *net, uint64_t deadline)
{
    uint32_t total = r->sp->n_pubs + r->sp->n_subs, started = 0;
    uint64_t last_tick = 0;
    int par = net->connect_parallel > 0 ? net->connect_parallel : 64;
    bclient *sets[2] = {r->subs, r->pubs};
    uint32_t counts[2] = {r->sp->n_subs, r->sp->n_pubs};
    while (!r->failed && r->n_connected < total) {
        while (started < total && started - r->n_connected < (uint32_t)par) {
            bclient *b = started < r->sp->n_subs ? &r->subs[started]
                                                 : &r->pubs[started - r->sp->n_subs];
            started++;
            if (tm_client_connect(b->c) < 0) {
                run_fail(r, "connect: %s", tm_client_error(b->c));
                return -1;
            }
        }
        if (bench_now_ns() > deadline) {
            run_fail(r, "timeout: %u of %u clients connected", r->n_connected, total);
            return -1;
        }
        tm_loop_run_once(r->loop, 50);
        tick_all(sets, counts, 2, &last_tick);
    }
    return r->failed ? -1 : 0;
}

static void publish_one(brun *r, bclient *b)
{
    const bench_spec *sp = r->sp;
    uint64_t now = bench_now_ns();
    uint8_t *p = r->payload;
    wr32(p, (uint32_t)now);
    wr32(p + 4, (uint32_t)(now >> 32));
    wr32(p + 8, b->seq);
    wr32(p + 12, b->idx);
    if (sp->size > BENCH_HDR)
        p[sp->size - 1] = (uint8_t)b->seq;
    b->seq++;   /* before publishing: a receiver checks seq < pubs[pub].seq */
    if (tm_client_publish_str(b->c, (tm_str){(const uint8_t *)r->topic, (uint32_t)r->topic_len},
                              p, sp->size, sp->qos, false, NULL) < 0) {
        b->seq--;
        run_fail(r, "publisher %u: publish failed: %s", b->idx, tm_client_error(b->c));
        return;
    }
    if (now >= r->t_win0 && now < r->t_win1)
        r->sent_window++;
}

/* May publisher b publish one more message now? (flow control, see top) */
static bool window_open(const brun *r, const bclient *b, size_t wire)
{
    const bench_spec *sp = r->sp;
    if (sp->qos > 0 && tm_client_inflight(b->c) + tm_client_queued(b->c) >= sp->inflight)
        return false;
    if (r->n_groups == 0 || sp->window_bytes == 0)
        return true;
    uint64_t done = r->delivered[b->idx] / r->n_groups + b->released;
    uint64_t outstanding = b->seq > done ? b->seq - done : 0;
    if (sp->window_msgs && outstanding >= sp->window_msgs)
        return false;
    return (outstanding + 1) * wire <= sp->window_bytes || outstanding == 0;
}

static bool all_delivered(const brun *r)
{
    uint64_t sent = 0;
    for (uint32_t i = 0; i < r->sp->n_pubs; i++) {
        sent += r->pubs[i].seq;
        if (r->sp->qos > 0 && r->pubs[i].acked < r->pubs[i].seq)
            return false;
    }
    return r->unique >= sent * r->n_groups;
}

/* ---- one run ---------------------------------------------------------- */

/* Allocates the run and creates (does not connect) its clients. */
static brun *run_new(const bench_net *net, const bench_spec *sp, bench_result *out)
{
    brun *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->sp = sp;
    r->lat = &out->lat;
    r->t_win0 = r->t_win1 = UINT64_MAX;
    r->n_groups = sp->n_subs == 0 ? 0 : (sp->shared ? 1 : sp->n_subs);
    r->loop = tm_loop_new();
    r->pubs = calloc(sp->n_pubs ? sp->n_pubs : 1, sizeof *r->pubs);
    r->subs = calloc(sp->n_subs ? sp->n_subs : 1, sizeof *r->subs);
    r->seen = calloc((size_t)(r->n_groups ? r->n_groups : 1) * (sp->n_pubs ? sp->n_pubs : 1),
                     sizeof *r->seen);
    r->delivered = calloc(sp->n_pubs ? sp->n_pubs : 1, sizeof *r->delivered);
    r->payload = calloc(1, sp->size < BENCH_HDR ? BENCH_HDR : sp->size);
    r->topic_len = (size_t)snprintf(r->topic, sizeof r->topic, "tmqtt-bench/%d/%s", (int)getpid(),
                                    sp->label);
    if (!r->loop || !r->pubs || !r->subs || !r->seen || !r->delivered || !r->payload) {
        run_fail(r, "out of memory");
        return r;
    }
    if (sp->size < BENCH_HDR) {
        run_fail(r, "payload size %u is below the %u-byte header", sp->size, BENCH_HDR);
        return r;
    }
    for (uint32_t i = 0; i < sp->size; i++)
        r->payload[i] = (uint8_t)(i * 7u + 1u);

    tm_client_cbs cbs = {.on_connect = cb_connect, .on_message = cb_message,
                         .on_publish_done = cb_publish_done, .on_subscribe = cb_subscribe,
                         .on_disconnect = cb_disconnect};
    char err[256], id[96];
    bench_net subnet = *net;   /* where the subscribers connect */
    if (net->sub_port)
        subnet.port = net->sub_port;
    if (net->sub_host)
        subnet.host = net->sub_host;
    for (uint32_t k = 0; k < sp->n_subs + sp->n_pubs && !r->failed; k++) {
        bool pub = k >= sp->n_subs;
        uint32_t i = pub ? k - sp->n_subs : k;
        bclient *b = pub ? &r->pubs[i] : &r->subs[i];
        b->run = r;
        b->idx = i;
        b->is_pub = pub;
        b->group = sp->shared ? 0 : i;
        snprintf(id, sizeof id, "bench-%d-%s-%c%u", (int)getpid(), sp->label, pub ? 'p' : 's', i);
        b->c = bench_make_client(r->loop, pub ? net : &subnet, id, b, &cbs,
                                 pub ? (uint16_t)(sp->inflight ? sp->inflight : 100) : 0, err,
                                 sizeof err);
        if (!b->c)
            run_fail(r, "%s %u: %s", pub ? "publisher" : "subscriber", i, err);
    }
    return r;
}

static void run_free(brun *r)
{
    const bench_spec *sp = r->sp;
    for (uint32_t i = 0; r->subs && i < sp->n_subs; i++)
        if (r->subs[i].c)
            tm_client_free(r->subs[i].c);
    for (uint32_t i = 0; r->pubs && i < sp->n_pubs; i++)
        if (r->pubs[i].c)
            tm_client_free(r->pubs[i].c);
    if (r->seen)
        for (size_t i = 0; i < (size_t)(r->n_groups ? r->n_groups : 1) * (sp->n_pubs ? sp->n_pubs : 1);
             i++)
            free(r->seen[i].bits);
    free(r->seen);
    free(r->delivered);
    free(r->payload);
    free(r->pubs);
    free(r->subs);
    if (r->loop)
        tm_loop_free(r->loop);
    free(r);
}

/* Runs the loop once and keeps every client ticking. */
static void run_step(brun *r, int timeout_ms, uint64_t *last_tick)
{
    bclient *sets[2] = {r->subs, r->pubs};
    uint32_t counts[2] = {r->sp->n_subs, r->sp->n_pubs};
    tm_loop_run_once(r->loop, timeout_ms);
    tick_all(sets, counts, 2, last_tick);
}

/* Every subscriber subscribes; returns once all SUBACKs arrived. */
static int subscribe_all(brun *r)
{
    const bench_spec *sp = r->sp;
    char filter[240];
    if (sp->shared)
        snprintf(filter, sizeof filter, "$share/bench/%s", r->topic);
    else
        snprintf(filter, sizeof filter, "%s", r->topic);
    const char *filters[1] = {filter};
    tm_subopts so = {.qos = sp->qos};
    for (uint32_t i = 0; i < sp->n_subs; i++)
        if (tm_client_subscribe(r->subs[i].c, filters, &so, 1, NULL) < 0) {
            run_fail(r, "subscriber %u: subscribe: %s", i, tm_client_error(r->subs[i].c));
            return -1;
        }
    uint64_t last_tick = 0, dl = bench_now_ns() + 10000000000ull;
    while (!r->failed && r->n_subscribed < sp->n_subs) {
        if (bench_now_ns() > dl) {
            run_fail(r, "timeout: %u of %u subscriptions acknowledged", r->n_subscribed, sp->n_subs);
            return -1;
        }
        run_step(r, 50, &last_tick);
    }
    return r->failed ? -1 : 0;
}

/* What publisher b does at time now; returns whether it published. In rate
 * mode *next is lowered to its next publication time. */
static bool publisher_turn(brun *r, bclient *b, uint64_t now, uint64_t interval, size_t wire,
                           uint64_t *next)
{
    const bench_spec *sp = r->sp;
    bool any = false;
    int burst = 0;
    if (interval) {
        /* Fixed rate. A publisher more than 100 ms behind skips ahead
         * instead of bursting: the offered rate then shows the miss. */
        if (now > b->next_ns + 100000000ull)
            b->next_ns = now;
        while (b->next_ns <= now && burst++ < 1000) {
            if (window_open(r, b, wire)) {
                publish_one(r, b);
                any = true;
            }
            b->next_ns += interval;
        }
        if (b->next_ns < *next)
            *next = b->next_ns;
    } else {
        while (burst++ < 256 && window_open(r, b, wire)) {
            publish_one(r, b);
            any = true;
        }
        /* QoS 0 messages never arriving would close the window for good. */
        if (!any && sp->qos == 0 && now - r->last_progress > 300000000ull) {
            uint64_t done = r->delivered[b->idx] / (r->n_groups ? r->n_groups : 1) + b->released;
            if (b->seq > done)
                b->released += b->seq - done;
        }
    }
    if (any && (sp->flush_each || !interval))
        tm_client_flush(b->c);
    return any;
}

/* Warm-up, then the measured window; fills the CPU figures of out. */
static void publish_phase(brun *r, bench_result *out)
{
    const bench_spec *sp = r->sp;
    uint64_t start = bench_now_ns(), last_tick = 0;
    r->t_win0 = start + (uint64_t)(sp->warmup_s * 1e9);
    r->t_win1 = r->t_win0 + (uint64_t)(sp->duration_s * 1e9);
    r->last_progress = start;
    uint64_t interval = sp->rate > 0 ? (uint64_t)(1e9 / sp->rate) : 0;
    for (uint32_t i = 0; i < sp->n_pubs; i++)   /* spread publishers over one interval */
        r->pubs[i].next_ns = start + (sp->n_pubs ? interval * i / sp->n_pubs : 0);
    size_t wire = (size_t)sp->size + r->topic_len + 16;
    double cpu0 = 0, bcpu0 = -1;
    bool in_window = false;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (!in_window && now >= r->t_win0) {
            in_window = true;
            cpu0 = self_cpu_s();
            bcpu0 = sp->broker_pid > 0 ? bench_proc_cpu_s(sp->broker_pid) : -1;
        }
        if (now >= r->t_win1 || r->failed)
            break;
        uint64_t next = r->t_win1;
        for (uint32_t i = 0; i < sp->n_pubs && !r->failed; i++)
            if (!r->pubs[i].closed)
                publisher_turn(r, &r->pubs[i], now, interval, wire, &next);
        int timeout;
        now = bench_now_ns();
        if (!interval)
            timeout = 10;
        else if (next <= now)
            timeout = 0;
        else
            timeout = (int)((next - now + 999999) / 1000000);
        if (!in_window && r->t_win0 > now && (r->t_win0 - now) / 1000000 < (uint64_t)timeout)
            timeout = (int)((r->t_win0 - now + 999999) / 1000000);
        run_step(r, timeout, &last_tick);
    }
    double win_s = (double)(bench_now_ns() - r->t_win0) / 1e9;
    if (win_s > sp->duration_s || win_s <= 0)
        win_s = sp->duration_s;
    out->bench_cpu = in_window ? (self_cpu_s() - cpu0) / win_s : 0;
    if (bcpu0 >= 0) {
        double b1 = bench_proc_cpu_s(sp->broker_pid);
        if (b1 >= 0)
            out->broker_cpu = (b1 - bcpu0) / win_s;
    }
    out->window_s = win_s;
}

/* QoS 1/2 until everything arrived and was acknowledged; QoS 0 until
 * nothing more arrived for 500 ms. */
static void drain_phase(brun *r)
{
    uint64_t drain_end = bench_now_ns() + (uint64_t)(r->sp->drain_s * 1e9), last_tick = 0;
    r->last_progress = bench_now_ns();
    while (!r->failed && !all_delivered(r)) {
        uint64_t now = bench_now_ns();
        if (now > drain_end || (r->sp->qos == 0 && now - r->last_progress > 500000000ull))
            break;
        run_step(r, 20, &last_tick);
    }
}

/* Counts and the delivery verdict (see bench_core.h). */
static void tally(brun *r, bench_result *out)
{
    const bench_spec *sp = r->sp;
    for (uint32_t i = 0; i < sp->n_pubs; i++)
        out->sent += r->pubs ? r->pubs[i].seq : 0;
    out->expected = out->sent * r->n_groups;
    out->unique = r->unique;
    out->dups = r->dups;
    out->bad = r->bad;
    out->acked = r->acked;
    out->lost = out->expected > r->unique ? out->expected - r->unique : 0;
    out->sent_window = r->sent_window;
    out->recv_window = r->recv_window;
    if (out->window_s > 0) {
        out->offered_rate = (double)r->sent_window / out->window_s;
        out->delivered_rate = (double)r->recv_window / out->window_s;
    }
    if (!r->failed) {
        if (r->bad)
            run_fail(r, "%llu corrupted or unexpected messages", (unsigned long long)r->bad);
        else if (out->sent == 0)
            run_fail(r, "nothing was published");
        else if (r->n_groups && r->unique == 0)
            run_fail(r, "nothing was delivered");
        else if (sp->qos != 1 && r->dups)
            run_fail(r, "%llu duplicate deliveries at QoS %u", (unsigned long long)r->dups, sp->qos);
        else if (sp->qos > 0 && out->lost)
            run_fail(r, "%llu of %llu deliveries lost at QoS %u", (unsigned long long)out->lost,
                     (unsigned long long)out->expected, sp->qos);
        else if (sp->qos > 0 && out->acked < out->sent)
            run_fail(r, "%llu of %llu publications not acknowledged",
                     (unsigned long long)(out->sent - out->acked), (unsigned long long)out->sent);
        else if (sp->qos == 0 && out->expected &&
                 (double)out->lost > sp->max_qos0_loss * (double)out->expected)
            run_fail(r, "QoS 0 loss %.2f%% above the tolerated %.2f%%",
                     100.0 * (double)out->lost / (double)out->expected, 100.0 * sp->max_qos0_loss);
    }
    out->ok = !r->failed;
    snprintf(out->why, sizeof out->why, "%s", r->failed ? r->why : "");
}

/* DISCONNECT everyone and give it up to 2 s to be written. */
static void disconnect_all(brun *r)
{
    if (!r->loop)
        return;
    uint32_t live = 0;
    for (int s = 0; s < 2; s++) {
        bclient *set = s ? r->pubs : r->subs;
        uint32_t n = s ? r->sp->n_pubs : r->sp->n_subs;
        for (uint32_t i = 0; set && i < n; i++)
            if (set[i].c && !set[i].closed && tm_client_get_state(set[i].c) == TM_CS_CONNECTED) {
                tm_client_disconnect(set[i].c, 0, NULL);
                live++;
            }
    }
    r->failed = true;   /* teardown errors do not change the verdict */
    uint64_t end = bench_now_ns() + 2000000000ull;
    uint32_t closed0 = r->n_closed;
    while (live && r->n_closed - closed0 < live && bench_now_ns() < end)
        tm_loop_run_once(r->loop, 20);
}

int bench_run(const bench_net *net, const bench_spec *sp, bench_result *out)
{
    memset(out, 0, sizeof *out);
    bench_hist_init(&out->lat);
    out->broker_cpu = -1;
    brun *r = out->lat.b ? run_new(net, sp, out) : NULL;
    if (!r) {
        snprintf(out->why, sizeof out->why, "out of memory");
        return -1;
    }
    uint64_t deadline = bench_now_ns() + (uint64_t)(net->connect_timeout_s * 1e9) +
                        (uint64_t)(sp->n_pubs + sp->n_subs) * 20000000ull;
    if (!r->failed && connect_all(r, net, deadline) == 0 && subscribe_all(r) == 0) {
        publish_phase(r, out);
        drain_phase(r);
    }
    tally(r, out);
    disconnect_all(r);
    run_free(r);
    return out->ok ? 0 : -1;
}

void bench_result_free(bench_result *r)
{
    bench_hist_free(&r->lat);
}

/* ---- connection latency ----------------------------------------------- */

typedef struct cstate {
    int done;                    /* 0 waiting, 1 connected, -1 failed */
    bool closed;
    char why[256];
} cstate;

static void cs_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr)
{
    cstate *s = ud;
    if (code == 0)
        s->done = 1;
    else {
        s->done = -1;
        snprintf(s->why, sizeof s->why, "CONNACK refused (code 0x%02x)", code);
    }
}

static void cs_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    cstate *s = ud;
    s->closed = true;
    if (s->done == 0) {
        s->done = -1;
        snprintf(s->why, sizeof s->why, "%s", error ? error : "closed before CONNACK");
    }
}

int bench_connect_seq(const bench_net *net, int n, bench_hist *h, char *why, size_t whycap)
{
    int failures = 0;
    why[0] = 0;
    tm_loop *loop = tm_loop_new();
    if (!loop) {
        snprintf(why, whycap, "out of memory");
        return n;
    }
    tm_client_cbs cbs = {.on_connect = cs_connect, .on_disconnect = cs_disconnect};
    for (int i = 0; i < n; i++) {
        cstate s = {0};
        char err[256], id[64];
        snprintf(id, sizeof id, "bench-%d-conn-%d", (int)getpid(), i);
        tm_client *c = bench_make_client(loop, net, id, &s, &cbs, 0, err, sizeof err);
        if (!c) {
            if (!why[0])
                snprintf(why, whycap, "%s", err);
            failures++;
            break;   /* the options themselves are wrong: every attempt would fail */
        }
        uint64_t t0 = bench_now_ns();
        uint64_t dl = t0 + (uint64_t)(net->connect_timeout_s * 1e9);
        if (tm_client_connect(c) < 0) {
            s.done = -1;
            snprintf(s.why, sizeof s.why, "%s", tm_client_error(c));
        }
        while (s.done == 0) {
            uint64_t now = bench_now_ns();
            if (now > dl) {
                s.done = -1;
                snprintf(s.why, sizeof s.why, "timeout");
                break;
            }
            tm_loop_run_once(loop, 5);
            tm_client_tick(c, tm_client_now_ms());
        }
        uint64_t t1 = bench_now_ns();
        if (s.done == 1) {
            bench_hist_add(h, t1 - t0);
            tm_client_disconnect(c, 0, NULL);
            uint64_t end = t1 + 1000000000ull;
            while (!s.closed && bench_now_ns() < end)
                tm_loop_run_once(loop, 5);
        } else {
            failures++;
            if (!why[0])
                snprintf(why, whycap, "%s", s.why);
        }
        tm_client_free(c);
    }
    tm_loop_free(loop);
    return failures;
}
