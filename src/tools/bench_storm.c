/*
 * bench_storm.c — the `storm` scenario of tmqtt-bench (bench_storm.h).
 *
 * Threads: the established pair runs in its own thread on its own tm_loop
 * and tm_clients; it shares only the SSL_CTX (OpenSSL makes that safe) and
 * an atomic phase number with the main thread, which runs the handshake and
 * storm phases on another tm_loop. The pair thread owns its histograms until
 * it is joined. Latency is attributed to the phase in which the message was
 * received. Once the pair runs, the main thread lowers its own priority
 * (nice +10, this thread only): on a small machine the storm generator would
 * otherwise take the CPU the measuring thread needs, and the pair would
 * report the load generator's scheduling instead of the broker's latency.
 *
 * Payload of the pair (16 bytes): CLOCK_MONOTONIC ns at publish (8), sequence
 * number (4), a constant tag (4). QoS 1, so that a loss is a failure of the
 * run, not a statistic.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* gettid(): nice is per thread on Linux */
#endif
#include "tools/bench_storm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PH_SETUP, PH_BASELINE, PH_HANDSHAKES, PH_STORM, PH_AFTER, PH_STOP, PH_N };
static const char *const phase_name[PH_N] = {"setup", "baseline", "handshakes", "storm",
                                             "after", "stop"};

#define PAIR_TAG 0x53544f52u     /* "STOR" */

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the established pair (its own thread) ----------------------------------- */

typedef struct pair {
    const bench_net *net;
    double rate;
    atomic_int phase;
    atomic_int ready;            /* 1 connected and subscribed, -1 failed */
    bench_hist h[PH_N];
    uint64_t sent, received, acked, dups, bad;
    uint32_t seq;
    uint8_t *seen;               /* bit per sequence number */
    size_t seen_cap;
    int sub_ok, pub_ok, subscribed;
    char topic[96];
    char why[256];
    pthread_t th;
} pair;

static void pair_fail(pair *p, const char *what, const char *detail)
{
    if (!p->why[0])
        snprintf(p->why, sizeof p->why, "established pair: %s%s%.160s", what, detail ? ": " : "",
                 detail ? detail : "");
}

static void pr_connect(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr)
{
    int *ok = ud;
    *ok = code == 0 ? 1 : -1;
}

static void pr_subscribe(tm_client *c, void *ud, uint16_t pid, const uint8_t *codes, uint32_t n,
                         const tm_props *pr)
{
    int *ok = ud;
    *ok = n == 1 && codes[0] == 1 ? 2 : -1;
}

static void pr_disconnect(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    int *ok = ud;
    if (error)
        *ok = -2;
}

static pair *g_pair;             /* the one pair of this process, for the callbacks */

static void pr_message(tm_client *c, void *ud, const tm_client_msg *m)
{
    pair *p = g_pair;
    uint64_t now = bench_now_ns();
    if (m->payload.len != BENCH_HDR || rd32(m->payload.p + 12) != PAIR_TAG) {
        p->bad++;
        return;
    }
    uint64_t ts = (uint64_t)rd32(m->payload.p) | (uint64_t)rd32(m->payload.p + 4) << 32;
    uint32_t seq = rd32(m->payload.p + 8);
    if (seq >= p->seq || ts > now) {
        p->bad++;
        return;
    }
    size_t byte = seq / 8;
    if (byte >= p->seen_cap) {
        size_t nc = p->seen_cap ? p->seen_cap * 2 : 4096;
        while (nc <= byte)
            nc *= 2;
        uint8_t *ns = realloc(p->seen, nc);
        if (!ns) {
            p->bad++;
            return;
        }
        memset(ns + p->seen_cap, 0, nc - p->seen_cap);
        p->seen = ns;
        p->seen_cap = nc;
    }
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    if (p->seen[byte] & bit) {
        p->dups++;
        return;
    }
    p->seen[byte] |= bit;
    p->received++;
    bench_hist_add(&p->h[atomic_load(&p->phase)], now - ts);
}

static void pr_done(tm_client *c, void *ud, uint16_t pid, uint8_t reason)
{
    if (reason < 0x80)
        g_pair->acked++;
}

static void *pair_main(void *arg)
{
    pair *p = arg;
    tm_loop *loop = tm_loop_new();
    char err[256];
    tm_client_cbs scb = {.on_connect = pr_connect, .on_subscribe = pr_subscribe,
                         .on_message = pr_message, .on_disconnect = pr_disconnect};
    tm_client_cbs pcb = {.on_connect = pr_connect, .on_publish_done = pr_done,
                         .on_disconnect = pr_disconnect};
    char id[64];
    snprintf(id, sizeof id, "storm-%d-pair-sub", (int)getpid());
    tm_client *sub =
        loop ? bench_make_client(loop, p->net, id, &p->sub_ok, &scb, 0, err, sizeof err) : NULL;
    snprintf(id, sizeof id, "storm-%d-pair-pub", (int)getpid());
    tm_client *pub =
        sub ? bench_make_client(loop, p->net, id, &p->pub_ok, &pcb, 0, err, sizeof err) : NULL;
    if (!pub || tm_client_connect(sub) < 0 || tm_client_connect(pub) < 0) {
        pair_fail(p, "cannot connect", pub ? tm_client_error(pub) : err);
        atomic_store(&p->ready, -1);
        goto out;
    }
    uint64_t dl = bench_now_ns() + 30000000000ull, last_tick = 0;
    bool sent_sub = false;
    while (!(p->sub_ok == 2 && p->pub_ok == 1)) {
        if (p->sub_ok < 0 || p->pub_ok < 0 || bench_now_ns() > dl) {
            pair_fail(p, "connect/subscribe failed", tm_client_error(p->sub_ok < 0 ? sub : pub));
            atomic_store(&p->ready, -1);
            goto out;
        }
        if (p->sub_ok == 1 && !sent_sub) {
            const char *f[1] = {p->topic};
            tm_subopts so = {.qos = 1};
            tm_client_subscribe(sub, f, &so, 1, NULL);
            sent_sub = true;
        }
        tm_loop_run_once(loop, 20);
    }
    atomic_store(&p->ready, 1);
    uint64_t interval = (uint64_t)(1e9 / p->rate), next = bench_now_ns();
    uint8_t pl[BENCH_HDR];
    while (atomic_load(&p->phase) != PH_STOP) {
        uint64_t now = bench_now_ns();
        if (now >= next) {
            if (now > next + 100000000ull)
                next = now;   /* more than 100 ms behind: skip ahead, do not burst */
            wr32(pl, (uint32_t)now);
            wr32(pl + 4, (uint32_t)(now >> 32));
            wr32(pl + 8, p->seq);
            wr32(pl + 12, PAIR_TAG);
            p->seq++;
            if (tm_client_publish(pub, p->topic, pl, sizeof pl, 1, false, NULL) < 0) {
                pair_fail(p, "publish failed", tm_client_error(pub));
                p->seq--;
            } else {
                p->sent++;
                tm_client_flush(pub);
            }
            next += interval;
        }
        if (p->sub_ok < 0 || p->pub_ok < 0)
            pair_fail(p, "disconnected during the run", tm_client_error(p->sub_ok < 0 ? sub : pub));
        now = bench_now_ns();
        int timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
        tm_loop_run_once(loop, timeout);
        uint64_t ms = tm_client_now_ms();
        if (ms - last_tick >= 1000) {
            last_tick = ms;
            tm_client_tick(sub, ms);
            tm_client_tick(pub, ms);
        }
    }
    /* drain: everything sent arrives and is acknowledged (QoS 1) */
    dl = bench_now_ns() + 10000000000ull;
    while ((p->received < p->sent || p->acked < p->sent) && bench_now_ns() < dl)
        tm_loop_run_once(loop, 20);
    tm_client_disconnect(sub, 0, NULL);
    tm_client_disconnect(pub, 0, NULL);
    for (int i = 0; i < 20; i++)
        tm_loop_run_once(loop, 10);
out:
    tm_client_free(sub);
    tm_client_free(pub);
    if (loop)
        tm_loop_free(loop);
    return NULL;
}

/* ---- connecting clients (handshake and storm phases) ------------------------------ */

enum { SC_IDLE, SC_CONNECTING, SC_CONNECTED, SC_WAITING, SC_CLOSING };

typedef struct sclient {
    tm_client *c;
    int state;
    int attempts;
    uint64_t retry_at;           /* ns, SC_WAITING */
    uint64_t started;            /* ns of this attempt */
} sclient;

typedef struct crowd {
    const bench_net *net;
    tm_loop *loop;
    sclient *cl;
    int n;
    bool churn;                  /* handshake phase: disconnect at CONNACK, then again */
    int in_flight, connected, retries, closing;
    uint64_t handshakes;         /* CONNACKs received */
    uint64_t last_connack;       /* ns */
    char first_error[256];
} crowd;

static void sc_connect_cb(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr);
static void sc_disconnect_cb(tm_client *c, void *ud, uint8_t reason, const char *error);

static crowd *g_crowd;           /* the main thread's crowd, for the callbacks */

static int sc_start(crowd *w, int i)
{
    sclient *s = &w->cl[i];
    char id[80], err[256];
    snprintf(id, sizeof id, "storm-%d-%d-%d", (int)getpid(), i, s->attempts);
    tm_client_cbs cbs = {.on_connect = sc_connect_cb, .on_disconnect = sc_disconnect_cb};
    if (s->c)
        tm_client_free(s->c);
    s->c = bench_make_client(w->loop, w->net, id, s, &cbs, 0, err, sizeof err);
    if (!s->c || tm_client_connect(s->c) < 0) {
        if (!w->first_error[0])
            snprintf(w->first_error, sizeof w->first_error, "%s", s->c ? tm_client_error(s->c) : err);
        return -1;
    }
    s->state = SC_CONNECTING;
    s->started = bench_now_ns();
    w->in_flight++;
    return 0;
}

static void sc_connect_cb(tm_client *c, void *ud, uint8_t code, bool sp, const tm_props *pr)
{
    sclient *s = ud;
    crowd *w = g_crowd;
    if (code != 0) {
        if (!w->first_error[0])
            snprintf(w->first_error, sizeof w->first_error, "CONNACK refused (code 0x%02x)", code);
        return;   /* the disconnect callback follows */
    }
    w->in_flight--;
    w->handshakes++;
    w->last_connack = bench_now_ns();
    if (w->churn) {
        s->state = SC_CLOSING;
        w->closing++;
        tm_client_disconnect(c, 0, NULL);
    } else {
        s->state = SC_CONNECTED;
        w->connected++;
    }
}

static void sc_disconnect_cb(tm_client *c, void *ud, uint8_t reason, const char *error)
{
    sclient *s = ud;
    crowd *w = g_crowd;
    if (s->state == SC_CLOSING) {
        w->closing--;
        s->state = SC_IDLE;      /* the handshake phase starts it again */
        return;
    }
    if (s->state == SC_CONNECTED) {
        w->connected--;
        if (!w->first_error[0])
            snprintf(w->first_error, sizeof w->first_error, "dropped after CONNACK: %s",
                     error ? error : "closed");
    } else if (s->state == SC_CONNECTING) {
        w->in_flight--;
        if (!w->first_error[0])
            snprintf(w->first_error, sizeof w->first_error, "%s", error ? error : "closed");
    }
    /* retry after a back-off, as a device would: 0.5 s, 1 s, 2 s ... at most 8 s */
    s->attempts++;
    w->retries++;
    uint64_t back = 500000000ull << (s->attempts < 5 ? s->attempts - 1 : 4);
    s->retry_at = bench_now_ns() + back + (uint64_t)(rand() % 250) * 1000000ull;
    s->state = SC_WAITING;
}

static void crowd_tick(crowd *w, uint64_t *last)
{
    uint64_t ms = tm_client_now_ms();
    if (ms - *last < 1000)
        return;
    *last = ms;
    for (int i = 0; i < w->n; i++)
        if (w->cl[i].c && (w->cl[i].state == SC_CONNECTING || w->cl[i].state == SC_CONNECTED))
            tm_client_tick(w->cl[i].c, ms);
}

static void crowd_close(crowd *w)
{
    int live = 0;
    for (int i = 0; i < w->n; i++)
        if (w->cl[i].c && tm_client_get_state(w->cl[i].c) == TM_CS_CONNECTED) {
            w->cl[i].state = SC_CLOSING;
            w->closing++;
            tm_client_disconnect(w->cl[i].c, 0, NULL);
            live++;
        }
    uint64_t end = bench_now_ns() + 10000000000ull;
    while (w->closing > 0 && bench_now_ns() < end)
        tm_loop_run_once(w->loop, 20);
    for (int i = 0; i < w->n; i++)
        if (w->cl[i].c)
            tm_client_free(w->cl[i].c);
    free(w->cl);
    w->cl = NULL;
}

/* Phase 2: connect -> CONNACK -> DISCONNECT by `par` clients for `secs`;
 * *rate handshakes per second, *count of them. */
static void run_handshakes(crowd *w, int par, double secs, double *rate, uint64_t *count)
{
    w->n = par;
    w->churn = true;
    w->cl = calloc((size_t)par, sizeof *w->cl);
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(secs * 1e9), last = 0;
    uint64_t n0 = w->handshakes;
    while (w->cl && bench_now_ns() < end) {
        uint64_t now = bench_now_ns();
        for (int i = 0; i < par; i++)
            if (w->cl[i].state == SC_IDLE || (w->cl[i].state == SC_WAITING && now >= w->cl[i].retry_at))
                sc_start(w, i);
        tm_loop_run_once(w->loop, 5);
        crowd_tick(w, &last);
    }
    double el = (double)(bench_now_ns() - t0) / 1e9;
    *count = w->handshakes - n0;
    *rate = el > 0 ? (double)*count / el : 0;
    w->churn = false;
    if (w->cl)
        crowd_close(w);
}

/* Phase 3: n clients connect and stay; seconds until the last CONNACK. */
static double run_storm(crowd *w, int n, int par, double timeout_s)
{
    w->n = n;
    w->churn = false;
    w->cl = calloc((size_t)n, sizeof *w->cl);
    if (!w->cl)
        return -1;
    uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(timeout_s * 1e9), last = 0;
    int next = 0;
    while (w->connected < n && bench_now_ns() < end) {
        uint64_t now = bench_now_ns();
        while (next < n && w->in_flight < par)
            if (sc_start(w, next++) < 0)
                w->cl[next - 1].state = SC_WAITING, w->cl[next - 1].retry_at = now + 500000000ull;
        for (int i = 0; i < next && w->in_flight < par; i++)
            if (w->cl[i].state == SC_WAITING && now >= w->cl[i].retry_at)
                sc_start(w, i);
        tm_loop_run_once(w->loop, 5);
        crowd_tick(w, &last);
    }
    return w->connected == n ? (double)(w->last_connack - t0) / 1e9 : -1;
}

/* ---- the scenario -------------------------------------------------------------------- */

static double us(uint64_t ns) { return (double)ns / 1000.0; }

/* CPU time of the calling thread (the load generator's), seconds. */
static double thread_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int bench_storm(const bench_net *net, const bench_net *pair_net, const bench_storm_spec *sp,
                bench_storm_row_fn row, void *row_arg, char *why, size_t whycap)
{
    why[0] = 0;
    pair *p = calloc(1, sizeof *p);
    crowd w = {.net = net};
    int rc = -1;
    if (!p) {
        snprintf(why, whycap, "out of memory");
        return -1;
    }
    for (int i = 0; i < PH_N; i++)
        bench_hist_init(&p->h[i]);
    p->net = pair_net;
    p->rate = sp->pair_rate > 0 ? sp->pair_rate : 100;
    snprintf(p->topic, sizeof p->topic, "tmqtt-bench/%d/storm-pair", (int)getpid());
    atomic_init(&p->phase, PH_SETUP);
    atomic_init(&p->ready, 0);
    g_pair = p;
    g_crowd = &w;
    w.loop = tm_loop_new();
    if (!w.loop || pthread_create(&p->th, NULL, pair_main, p) != 0) {
        snprintf(why, whycap, "cannot start the established pair");
        if (w.loop)
            tm_loop_free(w.loop);
        free(p);
        return -1;
    }
    uint64_t dl = bench_now_ns() + 40000000000ull;
    while (atomic_load(&p->ready) == 0 && bench_now_ns() < dl)
        usleep(10000);
    /* this thread only (Linux: nice is per thread); the pair keeps its priority */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    double rate = 0, storm_s = -1;
    uint64_t hs_count = 0;
    double cpu[PH_N] = {0};
    double c0 = sp->broker_pid > 0 ? bench_proc_cpu_s(sp->broker_pid) : -1;
    if (atomic_load(&p->ready) == 1) {
        atomic_store(&p->phase, PH_BASELINE);
        usleep((useconds_t)(sp->baseline_s * 1e6));
        double c1 = sp->broker_pid > 0 ? bench_proc_cpu_s(sp->broker_pid) : -1;
        cpu[PH_BASELINE] = c1 - c0;
        atomic_store(&p->phase, PH_HANDSHAKES);
        double g0 = thread_cpu_s();
        run_handshakes(&w, sp->hs_parallel > 0 ? sp->hs_parallel : 16, sp->hs_duration, &rate,
                       &hs_count);
        double gen_cpu = thread_cpu_s() - g0;
        double c2 = sp->broker_pid > 0 ? bench_proc_cpu_s(sp->broker_pid) : -1;
        cpu[PH_HANDSHAKES] = c2 - c1;
        uint64_t hs_fail = (uint64_t)w.retries;
        w.retries = 0;
        w.first_error[0] = 0;
        atomic_store(&p->phase, PH_STORM);
        storm_s = run_storm(&w, sp->clients, sp->parallel > 0 ? sp->parallel : 256,
                            sp->storm_timeout_s > 0 ? sp->storm_timeout_s : 900);
        atomic_store(&p->phase, PH_AFTER);
        double c3 = sp->broker_pid > 0 ? bench_proc_cpu_s(sp->broker_pid) : -1;
        cpu[PH_STORM] = c3 - c2;
        int connected = w.connected;
        crowd_close(&w);
        atomic_store(&p->phase, PH_STOP);
        pthread_join(p->th, NULL);
        const char *v = sp->variant;
        row(row_arg, v, "handshakes_per_s", rate);
        row(row_arg, v, "handshakes", (double)hs_count);
        row(row_arg, v, "handshake_failures", (double)hs_fail);
        /* the broker's CPU per handshake (connect, CONNACK, DISCONNECT, the pair's
         * 100 msg/s): what the broker pays, whoever limits the rate */
        if (c0 >= 0 && hs_count)
            row(row_arg, v, "broker_cpu_ms_per_handshake", 1000.0 * cpu[PH_HANDSHAKES] / hs_count);
        /* ... and the load generator's (its TLS client and appraisal side) */
        if (hs_count)
            row(row_arg, v, "bench_cpu_ms_per_handshake", 1000.0 * gen_cpu / hs_count);
        if (c0 >= 0 && storm_s > 0)
            row(row_arg, v, "broker_cpu_ms_per_storm_client", 1000.0 * cpu[PH_STORM] / sp->clients);
        row(row_arg, v, "storm_clients", sp->clients);
        row(row_arg, v, "storm_parallel", sp->parallel);
        row(row_arg, v, "storm_connected", connected);
        row(row_arg, v, "storm_retries", w.retries);
        if (storm_s >= 0) {
            row(row_arg, v, "storm_s", storm_s);
            row(row_arg, v, "storm_connacks_per_s", sp->clients / storm_s);
        }
        for (int ph = PH_BASELINE; ph <= PH_STORM; ph++) {
            char m[64];
            const bench_hist *h = &p->h[ph];
            snprintf(m, sizeof m, "pair_%s_samples", phase_name[ph]);
            row(row_arg, v, m, (double)h->n);
            snprintf(m, sizeof m, "pair_%s_p50_us", phase_name[ph]);
            row(row_arg, v, m, us(bench_hist_pct(h, 50)));
            snprintf(m, sizeof m, "pair_%s_p99_us", phase_name[ph]);
            row(row_arg, v, m, us(bench_hist_pct(h, 99)));
            snprintf(m, sizeof m, "pair_%s_max_us", phase_name[ph]);
            row(row_arg, v, m, us(h->max_ns));
            if (c0 >= 0) {
                snprintf(m, sizeof m, "broker_cpu_s_%s", phase_name[ph]);
                row(row_arg, v, m, cpu[ph]);
            }
        }
        uint64_t lost = p->sent > p->received ? p->sent - p->received : 0;
        row(row_arg, v, "pair_sent", (double)p->sent);
        row(row_arg, v, "pair_lost", (double)lost);
        char took[64];
        if (storm_s >= 0)
            snprintf(took, sizeof took, "all CONNACK in %.2f s", storm_s);
        else
            snprintf(took, sizeof took, "%d connected, gave up", connected);
        printf("%-10s storm %-14s handshakes %.0f/s | storm %d clients (%d in flight): %s "
               "(%d retries) | pair p50/p99/max ms: baseline %.2f/%.2f/%.2f, handshakes "
               "%.2f/%.2f/%.2f, storm %.2f/%.2f/%.2f (%llu samples)%s%s\n",
               sp->broker, v, rate, sp->clients, sp->parallel, took, w.retries,
               us(bench_hist_pct(&p->h[PH_BASELINE], 50)) / 1000,
               us(bench_hist_pct(&p->h[PH_BASELINE], 99)) / 1000,
               us(p->h[PH_BASELINE].max_ns) / 1000,
               us(bench_hist_pct(&p->h[PH_HANDSHAKES], 50)) / 1000,
               us(bench_hist_pct(&p->h[PH_HANDSHAKES], 99)) / 1000,
               us(p->h[PH_HANDSHAKES].max_ns) / 1000,
               us(bench_hist_pct(&p->h[PH_STORM], 50)) / 1000,
               us(bench_hist_pct(&p->h[PH_STORM], 99)) / 1000, us(p->h[PH_STORM].max_ns) / 1000,
               (unsigned long long)p->h[PH_STORM].n, p->why[0] ? "  FAIL: " : "", p->why);
        if (storm_s < 0)
            snprintf(why, whycap, "storm: %d of %d clients connected within %.0f s (first error: %s)",
                     connected, sp->clients, sp->storm_timeout_s, w.first_error);
        else if (p->why[0])
            snprintf(why, whycap, "%s", p->why);
        else if (lost || p->bad || p->dups)
            snprintf(why, whycap, "established pair: %llu lost, %llu corrupted, %llu duplicates",
                     (unsigned long long)lost, (unsigned long long)p->bad,
                     (unsigned long long)p->dups);
        else
            rc = 0;
        row(row_arg, v, "storm_s_or_failed", storm_s);
        row(row_arg, v, "verified", rc == 0);
    } else {
        atomic_store(&p->phase, PH_STOP);
        pthread_join(p->th, NULL);
        snprintf(why, whycap, "%s", p->why[0] ? p->why : "the established pair did not connect");
    }
    for (int i = 0; i < PH_N; i++)
        bench_hist_free(&p->h[i]);
    free(p->seen);
    free(p);
    tm_loop_free(w.loop);
    g_pair = NULL;
    g_crowd = NULL;
    return rc;
}
