/*
 * tmqtt-bench — load generator reproducing the evaluation of the OPODIS 2023
 * paper (connection latency, message latency vs rate / subscribers /
 * publishers, throughput) plus idle-connection memory, against any MQTT
 * broker on loopback. This file owns the command line, the scenarios (which
 * points to run with which parameters) and the output (table + CSV); the
 * measuring itself is bench_core.c.
 *
 * Contract with bench/run-all: every run verifies delivery; a run that
 * loses messages at QoS >= 1, duplicates at QoS 0/2, delivers corrupted
 * payloads or loses its connections makes the exit status 1, whatever its
 * timings. CSV rows are appended as
 *   broker,scenario,variant,qos,payload,publishers,subscribers,rate,metric,value
 * with a header line when the file is new. Latencies are in microseconds.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client.h"
#include "tools/bench_core.h"
#include "tools/bench_storm.h"
#include "tools/tools_common.h"

#define MAX_LIST 64

typedef struct opts {
    const char *scenario;
    const char *broker;          /* label for the CSV / table */
    const char *csv;
    bench_net net;
    bool quiet;
    int broker_pid;
    /* TLS */
    const char *cafile, *psk_hex, *psk_identity, *certfile, *keyfile;
    bool insecure;
    bool attest;
    tm_tool_attest attest_opts;
    /* run shape */
    double duration, warmup, drain;
    uint8_t qos;
    uint32_t size;
    double rate;
    int n;                       /* connect: connections; idle: connections */
    double settle;
    double list[MAX_LIST];
    int nlist;
    bool list_set;
    int fixed_subs;              /* publishers scenario */
    uint32_t fan;                /* throughput: clients on the "many" side */
    size_t window;
    uint32_t window_msgs;
    uint32_t inflight;
    uint8_t qos_list[3];
    int n_qos;
    uint32_t sizes[8];
    int n_sizes;
    bool fan_in, fan_out;
    int min_msgs;
    bool all_rates;
    double max_qos0_loss;
    int workers;                 /* idle: processes holding the connections (0: auto) */
    bool transport_set;
} opts;

static int n_failed;
static FILE *csv_f;

/* ---- output ----------------------------------------------------------- */

/* A number without exponent notation: "%g" prints 1e+06, and '+' is a topic
 * wildcard (labels become topic levels) and awkward in CSV consumers. */
static const char *num(char *buf, size_t cap, double v)
{
    if (v == (double)(long long)v)
        snprintf(buf, cap, "%lld", (long long)v);
    else
        snprintf(buf, cap, "%.6f", v);
    return buf;
}

static void csv_row(const opts *o, const char *scenario, const char *variant, int qos,
                    long payload, long pubs, long subs, double rate, const char *metric,
                    double value)
{
    if (!csv_f)
        return;
    fprintf(csv_f, "%s,%s,%s,", o->broker, scenario, variant);
    if (qos >= 0)
        fprintf(csv_f, "%d", qos);
    fprintf(csv_f, ",");
    if (payload >= 0)
        fprintf(csv_f, "%ld", payload);
    fprintf(csv_f, ",");
    if (pubs >= 0)
        fprintf(csv_f, "%ld", pubs);
    fprintf(csv_f, ",");
    if (subs >= 0)
        fprintf(csv_f, "%ld", subs);
    fprintf(csv_f, ",");
    char nb[48];
    if (rate >= 0)
        fprintf(csv_f, "%s", num(nb, sizeof nb, rate));
    fprintf(csv_f, ",%s,%.10g\n", metric, value);
    fflush(csv_f);
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }


static void print_run_header(void)
{
    printf("%-10s %-24s %9s %9s %6s %5s %10s %10s %9s %9s %9s %9s  %s\n", "broker", "point",
           "sent", "delivered", "lost", "dups", "offered/s", "deliv/s", "p50 ms", "p90 ms",
           "p99 ms", "max ms", "verdict");
}

/* One bench_run result: table line + CSV rows. */
static void report_run(const opts *o, const char *scenario, const char *variant,
                       const bench_spec *sp, const bench_result *r, const char *extra)
{
    char point[64];
    snprintf(point, sizeof point, "%s%sq%u %uB %up/%us%s", variant, variant[0] ? " " : "", sp->qos,
             sp->size, sp->n_pubs, sp->n_subs, "");
    if (sp->rate > 0) {
        size_t l = strlen(point);
        char nb[48];
        snprintf(point + l, sizeof point - l, " @%s/s", num(nb, sizeof nb, sp->rate));
    }
    printf("%-10s %-24s %9llu %9llu %6llu %5llu %10.0f %10.0f %9.3f %9.3f %9.3f %9.3f  %s%s%s\n",
           o->broker, point, (unsigned long long)r->sent, (unsigned long long)r->unique,
           (unsigned long long)r->lost, (unsigned long long)r->dups, r->offered_rate,
           r->delivered_rate, us(bench_hist_pct(&r->lat, 50)) / 1000,
           us(bench_hist_pct(&r->lat, 90)) / 1000, us(bench_hist_pct(&r->lat, 99)) / 1000,
           us(r->lat.max_ns) / 1000, r->ok ? "OK" : "FAIL: ", r->ok ? "" : r->why,
           extra ? extra : "");
    fflush(stdout);
    double rate = sp->rate > 0 ? sp->rate : -1;
    const char *sc = scenario;
#define ROW(m, v) csv_row(o, sc, variant, sp->qos, sp->size, sp->n_pubs, sp->n_subs, rate, m, v)
    ROW("sent", (double)r->sent);
    ROW("expected", (double)r->expected);
    ROW("delivered", (double)r->unique);
    ROW("lost", (double)r->lost);
    ROW("duplicates", (double)r->dups);
    ROW("offered_msgs_per_s", r->offered_rate);
    ROW("delivered_msgs_per_s", r->delivered_rate);
    ROW("samples", (double)r->lat.n);
    ROW("p50_us", us(bench_hist_pct(&r->lat, 50)));
    ROW("p90_us", us(bench_hist_pct(&r->lat, 90)));
    ROW("p99_us", us(bench_hist_pct(&r->lat, 99)));
    ROW("max_us", us(r->lat.max_ns));
    ROW("mean_us", r->lat.n ? us(r->lat.sum_ns / r->lat.n) : 0);
    ROW("bench_cpu", r->bench_cpu);
    if (r->broker_cpu >= 0)
        ROW("broker_cpu", r->broker_cpu);
    ROW("verified", r->ok ? 1 : 0);
#undef ROW
    if (!r->ok) {
        n_failed++;
        fprintf(stderr, "tmqtt-bench: %s %s: delivery check failed: %s\n", o->broker, point, r->why);
    }
}

static void base_spec(const opts *o, bench_spec *sp, const char *label)
{
    memset(sp, 0, sizeof *sp);
    sp->label = label;
    sp->qos = o->qos;
    sp->size = o->size;
    sp->warmup_s = o->warmup;
    sp->duration_s = o->duration;
    sp->drain_s = o->drain;
    sp->window_bytes = o->window;
    sp->window_msgs = o->window_msgs;
    sp->inflight = o->inflight;
    sp->max_qos0_loss = o->max_qos0_loss;
    sp->broker_pid = o->broker_pid;
}

/* ---- scenarios -------------------------------------------------------- */

static int attest_prepare(tm_client_opts *co, void *arg, char *err, size_t errcap)
{
    const opts *o = arg;
    return tm_tools_attest_setup(&o->attest_opts, co, err, errcap);
}

/* Attestation requested: install the hook on every client, or say
 * "unsupported" (a property of this build, not a failure). 0: go on;
 * 1: unsupported, reported. */
static int setup_attest(opts *o, const char *scenario, const char *variant)
{
    if (!o->attest)
        return 0;
    tm_client_opts probe;
    tm_client_opts_init(&probe);
    char err[256];
    if (!o->net.ssl_ctx)
        snprintf(err, sizeof err, "attestation needs TLS (--cafile or --psk)");
    if (!o->net.ssl_ctx || attest_prepare(&probe, o, err, sizeof err) < 0) {
        printf("%-10s %s %-12s unsupported: %s\n", o->broker, scenario, variant, err);
        csv_row(o, scenario, variant, -1, -1, -1, -1, -1, "unsupported", 1);
        return 1;
    }
    o->net.prepare = attest_prepare;
    o->net.prepare_arg = o;
    return 0;
}

static int sc_connect(opts *o)
{
    char variant[32];
    const char *mode = o->psk_hex ? "psk" : o->net.ssl_ctx ? "tls" : "tcp";
    snprintf(variant, sizeof variant, "%s%s", mode, o->attest ? "+attest" : "");
    if (setup_attest(o, "connect", variant))
        return 0;
    bench_hist h;
    bench_hist_init(&h);
    char why[256];
    double bc0 = o->broker_pid > 0 ? bench_proc_cpu_s(o->broker_pid) : -1;
    uint64_t t0 = bench_now_ns();
    int fails = bench_connect_seq(&o->net, o->n, &h, why, sizeof why);
    double wall = (double)(bench_now_ns() - t0) / 1e9;
    printf("%-10s connect %-12s n=%d ok=%llu failed=%d  p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  "
           "max %.3f ms  mean %.3f ms  (%.2f s)%s%s\n",
           o->broker, variant, o->n, (unsigned long long)h.n, fails,
           us(bench_hist_pct(&h, 50)) / 1000, us(bench_hist_pct(&h, 90)) / 1000,
           us(bench_hist_pct(&h, 99)) / 1000, us(h.max_ns) / 1000,
           h.n ? us(h.sum_ns / h.n) / 1000 : 0, wall, fails ? "  FAIL: " : "", fails ? why : "");
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "connections", (double)h.n);
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "failures", fails);
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "p50_us", us(bench_hist_pct(&h, 50)));
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "p90_us", us(bench_hist_pct(&h, 90)));
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "p99_us", us(bench_hist_pct(&h, 99)));
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "max_us", us(h.max_ns));
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "mean_us", h.n ? us(h.sum_ns / h.n) : 0);
    if (bc0 >= 0)
        csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "broker_cpu_s",
                bench_proc_cpu_s(o->broker_pid) - bc0);
    csv_row(o, "connect", variant, -1, -1, -1, -1, -1, "verified", fails ? 0 : 1);
    bench_hist_free(&h);
    if (fails) {
        n_failed++;
        fprintf(stderr, "tmqtt-bench: %s connect %s: %d of %d failed: %s\n", o->broker, variant,
                fails, o->n, why);
    }
    return 0;
}

static int sc_rate(opts *o)
{
    static const double def[] = {1,    10,    50,    100,    200,    500,    1000,   2000,
                                 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000};
    const double *rates = o->list_set ? o->list : def;
    int nr = o->list_set ? o->nlist : (int)(sizeof def / sizeof def[0]);
    print_run_header();
    for (int i = 0; i < nr; i++) {
        bench_spec sp;
        char label[64];
        char nb[48];
        snprintf(label, sizeof label, "rate-%s-q%u", num(nb, sizeof nb, rates[i]), o->qos);
        base_spec(o, &sp, label);
        sp.n_pubs = 1;
        sp.n_subs = 1;
        sp.rate = rates[i];
        sp.flush_each = true;
        sp.window_bytes = o->window > (4u << 20) ? o->window : (4u << 20);   /* safety only */
        sp.inflight = 65535;
        /* At low rates a short window holds too few messages for a p99. */
        if (o->min_msgs > 0 && sp.duration_s * sp.rate < o->min_msgs)
            sp.duration_s = o->min_msgs / sp.rate;
        bench_result r;
        bench_run(&o->net, &sp, &r);
        bool sat = r.ok && (r.delivered_rate < 0.9 * sp.rate || r.offered_rate < 0.9 * sp.rate ||
                            bench_hist_pct(&r.lat, 99) > 1000000000ull);
        report_run(o, "rate", "", &sp, &r, sat ? "  (saturated)" : "");
        csv_row(o, "rate", "", sp.qos, sp.size, 1, 1, sp.rate, "saturated", sat);
        bench_result_free(&r);
        if (sat && !o->all_rates)
            break;
    }
    return 0;
}

static int sc_scale(opts *o, bool subs_scale)
{
    static const double def_s[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    static const double def_p[] = {1, 2, 4, 8, 16, 32, 64};
    const double *counts = o->list_set ? o->list : subs_scale ? def_s : def_p;
    int nc = o->list_set ? o->nlist
                         : subs_scale ? (int)(sizeof def_s / sizeof def_s[0])
                                      : (int)(sizeof def_p / sizeof def_p[0]);
    print_run_header();
    for (int i = 0; i < nc; i++) {
        bench_spec sp;
        char label[64];
        char nb[48];
        snprintf(label, sizeof label, "%s-%s-q%u", subs_scale ? "subs" : "pubs",
                 num(nb, sizeof nb, counts[i]), o->qos);
        base_spec(o, &sp, label);
        if (subs_scale) {
            sp.n_pubs = 1;
            sp.n_subs = (uint32_t)counts[i];
            sp.shared = true;
            sp.rate = o->rate > 0 ? o->rate : 25;
        } else {
            sp.n_pubs = (uint32_t)counts[i];
            sp.n_subs = (uint32_t)(o->fixed_subs > 0 ? o->fixed_subs : 25);
            sp.rate = o->rate > 0 ? o->rate : 5;
        }
        sp.flush_each = true;
        sp.window_bytes = 4u << 20;
        sp.inflight = 65535;
        double total = sp.rate * sp.n_pubs;
        if (o->min_msgs > 0 && sp.duration_s * total < o->min_msgs)
            sp.duration_s = o->min_msgs / total;
        bench_result r;
        bench_run(&o->net, &sp, &r);
        report_run(o, subs_scale ? "subscribers" : "publishers", subs_scale ? "shared" : "", &sp,
                   &r, NULL);
        bench_result_free(&r);
    }
    return 0;
}

static int sc_subscribers(opts *o)
{
    return sc_scale(o, true);
}

static int sc_publishers(opts *o)
{
    return sc_scale(o, false);
}

static int sc_throughput(opts *o)
{
    print_run_header();
    uint32_t fan = o->fan ? o->fan : 8;
    for (int s = 0; s < 2; s++) {
        if ((s == 0 && !o->fan_in) || (s == 1 && !o->fan_out))
            continue;
        for (int z = 0; z < o->n_sizes; z++)
            for (int q = 0; q < o->n_qos; q++) {
                bench_spec sp;
                char label[64];
                const char *shape = s == 0 ? "fan-in" : "fan-out";
                snprintf(label, sizeof label, "tput-%s-q%u-%u", shape, o->qos_list[q], o->sizes[z]);
                base_spec(o, &sp, label);
                sp.qos = o->qos_list[q];
                sp.size = o->sizes[z];
                sp.n_pubs = s == 0 ? fan : 1;
                sp.n_subs = s == 0 ? 1 : fan;
                sp.rate = 0;
                bench_result r;
                bench_run(&o->net, &sp, &r);
                char extra[120];
                double per = r.broker_cpu >= 0 && r.delivered_rate > 0
                                 ? r.broker_cpu / r.delivered_rate * 1e6 : -1;
                snprintf(extra, sizeof extra, "  cpu bench %.2f broker %.2f (%.3f us/msg)",
                         r.bench_cpu, r.broker_cpu, per);
                report_run(o, "throughput", shape, &sp, &r, extra);
                if (per >= 0)
                    csv_row(o, "throughput", shape, sp.qos, sp.size, sp.n_pubs, sp.n_subs, -1,
                            "broker_cpu_us_per_msg", per);
                bench_result_free(&r);
            }
    }
    return 0;
}

static int sc_idle(opts *o)
{
    if (o->broker_pid <= 0) {
        fprintf(stderr, "tmqtt-bench: idle needs --broker-pid\n");
        return -1;
    }
    const char *variant = bench_transport_name(o->net.transport);
    if (setup_attest(o, "idle", variant))
        return 0;
    bench_idle_spec sp = {.n = o->n, .workers = o->workers, .settle_s = o->settle,
                          .broker_pid = o->broker_pid};
    bench_idle_result r;
    uint64_t t0 = bench_now_ns();
    bench_idle_procs(&o->net, &sp, &r);
    double wall = (double)(bench_now_ns() - t0) / 1e9;
    printf("%-10s idle %-10s n=%d workers=%d  VmRSS before %ld KiB  with connections %ld KiB  "
           "after close %ld KiB  => %.0f bytes/connection (RssAnon %.0f)  connect %.1f s  "
           "(%.1f s)  %s%s\n",
           o->broker, variant, o->n, r.workers, r.rss_before_kb, r.rss_connected_kb,
           r.rss_after_kb, r.bytes_per_conn, r.anon_bytes_per_conn, r.connect_s, wall,
           r.ok ? "OK" : "FAIL: ", r.ok ? "" : r.why);
#define ROW(m, v) csv_row(o, "idle", variant, -1, -1, -1, o->n, -1, m, v)
    ROW("connections", r.ok ? r.alive : 0);
    ROW("workers", r.workers);
    ROW("rss_before_kb", (double)r.rss_before_kb);
    ROW("rss_connected_kb", (double)r.rss_connected_kb);
    ROW("rss_after_close_kb", (double)r.rss_after_kb);
    ROW("anon_before_kb", (double)r.anon_before_kb);
    ROW("anon_connected_kb", (double)r.anon_connected_kb);
    ROW("bytes_per_connection", r.bytes_per_conn);
    ROW("anon_bytes_per_connection", r.anon_bytes_per_conn);
    ROW("connect_s", r.connect_s);
    ROW("verified", r.ok ? 1 : 0);
#undef ROW
    if (!r.ok) {
        n_failed++;
        fprintf(stderr, "tmqtt-bench: %s idle %s: %s\n", o->broker, variant, r.why);
    }
    return 0;
}

/* storm: bench_storm.c (issue 12); the pair asks for no evidence */
static void storm_row(void *arg, const char *variant, const char *metric, double v)
{
    csv_row(arg, "storm", variant, -1, -1, -1, -1, -1, metric, v);
}

static int sc_storm(opts *o)
{
    bench_net pair = o->net;
    char variant[64];
    snprintf(variant, sizeof variant, "%s%s%s", o->net.ssl_ctx ? "tls" : "tcp",
             o->attest ? "+attest:" : "", o->attest ? (o->attest_opts.format ? o->attest_opts.format
                                                                             : "default") : "");
    if (o->attest) {
        o->net.prepare = attest_prepare;
        o->net.prepare_arg = o;
    }
    bench_storm_spec sp = {.broker = o->broker, .variant = variant, .clients = o->n,
                           .parallel = o->net.connect_parallel,
                           .pair_rate = o->rate > 0 ? o->rate : 100, .baseline_s = o->warmup,
                           .hs_duration = o->duration, .hs_parallel = o->fan ? (int)o->fan : 16,
                           .storm_timeout_s = o->drain > 60 ? o->drain : 900,
                           .broker_pid = o->broker_pid};
    char why[400];
    if (bench_storm(&o->net, &pair, &sp, storm_row, o, why, sizeof why) < 0) {
        n_failed++;
        fprintf(stderr, "tmqtt-bench: %s storm %s: %s\n", o->broker, variant, why);
    }
    return 0;
}

/* ---- command line ----------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
"tmqtt-bench — MQTT broker benchmark (latency, throughput, memory) with delivery checks\n"
"\n"
"Usage: tmqtt-bench SCENARIO [options]\n"
"Scenarios:\n"
"  connect      N sequential connections, TCP connect -> CONNACK latency (-n)\n"
"  rate         1 publisher, 1 subscriber, rising rates until saturation (--list)\n"
"  subscribers  1 publisher at 25 msg/s, N subscribers in $share/bench/... (--list)\n"
"  publishers   25 subscribers, N publishers at 5 msg/s each (--list)\n"
"  throughput   max delivered msg/s, fan-in and fan-out, QoS and payload lists\n"
"  idle         hold -n idle connections in --workers processes; the broker's\n"
"               VmRSS per connection (--broker-pid)\n"
"  storm        -n clients (10000) connect, --parallel at once, while a pair exchanges\n"
"               --rate msg/s (100); before: --duration s of handshakes/s with --fan\n"
"               clients (16) after --warmup s of baseline (docs/benchmarks.md)\n"
"Common options:\n"
"  -h HOST -p PORT        broker (127.0.0.1:1883)\n"
"  --sub-host H --sub-port P   subscribers on another broker (a chain of bridges)\n"
"  -V 5|311               MQTT version (5; shared subscriptions need 5)\n"
"  --broker NAME          label in the table and CSV (tmqtt)\n"
"  --csv FILE             append rows broker,scenario,variant,qos,payload,publishers,\n"
"                         subscribers,rate,metric,value (header when new)\n"
"  --broker-pid PID       sample the broker's CPU time / RSS from /proc\n"
"  -q QOS  -s BYTES       QoS (0) and payload size (64, >= 16)\n"
"  --duration S --warmup S --drain S   measured window (5), warm-up (1), drain limit (10)\n"
"  --list A,B,...         rates (rate) or client counts (subscribers, publishers)\n"
"  --rate R               per-publisher rate (subscribers: 25, publishers: 5)\n"
"  --subs N               subscribers in the publishers scenario (25)\n"
"  --min-msgs N           lengthen a point so it holds N messages (30)\n"
"  --all-rates            do not stop the rate scenario at saturation\n"
"  --persistent           clients keep their sessions (clean start off, expiry 300 s)\n"
"  --qos-list 0,1,2 --sizes 64,4096 --shapes fan-in,fan-out --fan N (8)\n"
"  --window BYTES         throughput: end-to-end outstanding bytes per publisher (65536)\n"
"  --window-msgs N        ... and at most N messages (0: no limit)\n"
"  --inflight N           QoS 1/2 unacknowledged per publisher (100)\n"
"  --max-qos0-loss F      tolerated QoS 0 loss fraction (0.01)\n"
"  -n N                   connections (connect: 200, idle: 10000)\n"
"  --settle S             idle: wait before reading the broker's memory (2)\n"
"  --workers N            idle: processes holding the connections (one per 5000)\n"
"  --parallel N           connections in progress at once, per process (64)\n"
"Transport (any scenario):\n"
"  --transport plain|tls|tls-attest   (default: from the options below; ws is\n"
"                         reserved for MQTT over WebSocket, not supported yet)\n"
"  --cafile F [--cert F --key F] [--insecure]   certificate TLS 1.3 (ECDHE)\n"
"  --psk HEX --psk-identity ID                  TLS 1.3 external PSK\n"
"  --attest [--attest-policy F] [--attest-format NAME]  request attestation\n"
"  --quiet\n"
"Exit status: 0 all runs verified, 1 a delivery check failed, 2 usage or setup error.\n");
}

static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v <= 0)
            return -1;
        out[n++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *s ? -1 : n;
}

static int bad_value(const tm_optdef *d, const char *v)
{
    char name[48];
    fprintf(stderr, "tmqtt-bench: bad value for %s: '%s'\n", tm_opt_name(d, name, sizeof name), v);
    return -1;
}

static int o_help(void *ctx, const tm_optdef *d, const char *v)
{
    (void)ctx, (void)d, (void)v;
    usage(stdout);
    return 1;
}

static int o_version(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    if (!strcmp(v, "5") || !strcmp(v, "mqttv5"))
        o->net.version = TM_V5;
    else if (!strcmp(v, "311") || !strcmp(v, "mqttv311"))
        o->net.version = TM_V311;
    else
        return bad_value(d, v);
    return 0;
}

static int o_list(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    o->nlist = parse_list(v, o->list, MAX_LIST);
    if (o->nlist <= 0)
        return bad_value(d, v);
    o->list_set = true;
    return 0;
}

static int o_qos_list(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    o->n_qos = 0;   /* parse_list refuses 0: read the digits directly */
    for (const char *p = v; *p; p++) {
        if (*p >= '0' && *p <= '2' && o->n_qos < 3)
            o->qos_list[o->n_qos++] = (uint8_t)(*p - '0');
        else if (*p != ',')
            return bad_value(d, v);
    }
    return o->n_qos ? 0 : bad_value(d, v);
}

static int o_sizes(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    double l[8];
    int n = parse_list(v, l, 8);
    if (n <= 0)
        return bad_value(d, v);
    for (int k = 0; k < n; k++) {
        if (l[k] < BENCH_HDR || l[k] > (256u << 20))
            return bad_value(d, v);
        o->sizes[k] = (uint32_t)l[k];
    }
    o->n_sizes = n;
    return 0;
}

static int o_shapes(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    o->fan_in = strstr(v, "fan-in") != NULL;
    o->fan_out = strstr(v, "fan-out") != NULL;
    return o->fan_in || o->fan_out ? 0 : bad_value(d, v);
}

static int o_transport(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    if (bench_transport_parse(v, &o->net.transport) < 0)
        return bad_value(d, v);
    o->transport_set = true;
    return 0;
}

/* --attest, --attest-policy F, --attest-format NAME: each one asks for attestation. */
static int o_attest(void *ctx, const tm_optdef *d, const char *v)
{
    opts *o = ctx;
    o->attest = o->attest_opts.enable = true;
    if (d->lng && !strcmp(d->lng, "attest-policy"))
        o->attest_opts.policy = v;
    else if (d->lng && !strcmp(d->lng, "attest-format"))
        o->attest_opts.format = v;
    return 0;
}

#define B_STR(l, s, f) TM_OPTDEF_STR(opts, l, s, 1, f)
#define B_FLAG(l, s, f) TM_OPTDEF_FLAG(opts, l, s, 1, f)
#define B_UINT(l, s, f, lo, hi) TM_OPTDEF_UINT(opts, l, s, 1, f, lo, hi)
#define B_DBL(l, f, lo, hi, above) TM_OPTDEF_DBL(opts, l, 0, 1, f, lo, hi, above)

static const tm_optdef bench_opts[] = {
    TM_OPTDEF_FN("help", 0, 1, o_help),
    B_FLAG("quiet", 0, quiet),
    B_FLAG("all-rates", 0, all_rates),
    B_FLAG("persistent", 0, net.persistent),
    B_FLAG("insecure", 0, insecure),
    TM_OPTDEF_FN("attest", 0, 1, o_attest),
    TM_OPTDEF_FNARG("attest-policy", 0, 1, o_attest),
    TM_OPTDEF_FNARG("attest-format", 0, 1, o_attest),
    B_STR("host", 'h', net.host),
    B_UINT("port", 'p', net.port, 1, 65535),
    B_STR("sub-host", 0, net.sub_host),
    B_UINT("sub-port", 0, net.sub_port, 1, 65535),
    TM_OPTDEF_FNARG("protocol-version", 'V', 1, o_version),
    B_STR("broker", 0, broker),
    B_STR("csv", 0, csv),
    B_UINT("broker-pid", 0, broker_pid, 1, INT_MAX),
    B_UINT("qos", 'q', qos, 0, 2),
    B_UINT("size", 's', size, BENCH_HDR, 256u << 20),
    B_DBL("duration", duration, 0, 1e6, true),
    B_DBL("warmup", warmup, 0, 1e6, false),
    B_DBL("drain", drain, 0, 1e6, false),
    TM_OPTDEF_FNARG("list", 0, 1, o_list),
    B_DBL("rate", rate, 0, 1e9, true),
    B_UINT("subs", 0, fixed_subs, 1, 100000),
    B_UINT("min-msgs", 0, min_msgs, 0, 1000000),
    TM_OPTDEF_FNARG("qos-list", 0, 1, o_qos_list),
    TM_OPTDEF_FNARG("sizes", 0, 1, o_sizes),
    TM_OPTDEF_FNARG("shapes", 0, 1, o_shapes),
    B_UINT("fan", 0, fan, 1, 100000),
    B_UINT("window", 0, window, 0, 1u << 30),
    B_UINT("window-msgs", 0, window_msgs, 0, 1000000),
    B_UINT("inflight", 0, inflight, 1, 65535),
    B_DBL("max-qos0-loss", max_qos0_loss, 0, 1, false),
    B_UINT(NULL, 'n', n, 1, 1000000),
    B_DBL("settle", settle, 0, 1e6, false),
    B_UINT("parallel", 0, net.connect_parallel, 1, 100000),
    B_UINT("workers", 0, workers, 1, 256),
    TM_OPTDEF_FNARG("transport", 0, 1, o_transport),
    B_STR("cafile", 0, cafile),
    B_STR("cert", 0, certfile),
    B_STR("key", 0, keyfile),
    B_STR("psk", 0, psk_hex),
    B_STR("psk-identity", 0, psk_identity),
};

static void bench_err(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "tmqtt-bench: %s\n", msg);
}

static void defaults(opts *o)
{
    memset(o, 0, sizeof *o);
    o->broker = "tmqtt";
    o->net.host = "127.0.0.1";
    o->net.port = 1883;
    o->net.version = TM_V5;
    o->net.keep_alive = 60;
    o->net.connect_parallel = 64;
    o->net.connect_timeout_s = 10;
    o->size = 64;
    o->duration = 5;
    o->warmup = 1;
    o->drain = 10;
    o->window = 65536;
    o->inflight = 100;
    o->min_msgs = 30;
    o->settle = 2;
    o->max_qos0_loss = 0.01;
    o->qos_list[0] = 0;
    o->qos_list[1] = 1;
    o->qos_list[2] = 2;
    o->n_qos = 3;
    o->sizes[0] = 64;
    o->sizes[1] = 4096;
    o->n_sizes = 2;
    o->fan_in = o->fan_out = true;
}

/* SCENARIO then options (argv[1] is the scenario, getopt starts after it).
 * 0: run; 1: --help printed; -1: error printed. */
static int parse_args(opts *o, int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return -1;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 1;
    }
    o->scenario = argv[1];
    tm_optparse p = {.defs = bench_opts, .ndefs = sizeof bench_opts / sizeof bench_opts[0],
                     .kind = 1, .target = o, .ctx = o, .err = bench_err,
                     .argc = argc - 1, .argv = argv + 1};
    return tm_opts_parse(&p);
}

/* The transport: from --transport, or from the TLS and attestation options.
 * Builds the shared SSL_CTX. 0, or -1 with a message. */
static int setup_transport(opts *o)
{
    bool tls_opts = o->cafile || o->psk_hex || o->certfile || o->insecure;
    bench_transport t = o->net.transport;
    if (!o->transport_set)
        t = o->attest ? BENCH_TLS_ATTEST : tls_opts ? BENCH_TLS : BENCH_PLAIN;
    if (t == BENCH_WS) {
        fprintf(stderr, "tmqtt-bench: --transport ws: MQTT over WebSocket is not supported yet "
                        "(the client library has no WebSocket transport; see BENCH_WS in "
                        "bench_core.h)\n");
        return -1;
    }
    if (t == BENCH_PLAIN && (tls_opts || o->attest)) {
        fprintf(stderr, "tmqtt-bench: --transport plain contradicts the TLS/attestation options\n");
        return -1;
    }
    if (t != BENCH_PLAIN && !tls_opts) {
        fprintf(stderr, "tmqtt-bench: --transport %s needs --cafile, --insecure or --psk\n",
                bench_transport_name(t));
        return -1;
    }
    if (t == BENCH_TLS && o->attest) {
        fprintf(stderr, "tmqtt-bench: --attest with --transport tls: use tls-attest\n");
        return -1;
    }
    if (t == BENCH_TLS_ATTEST)
        o->attest = o->attest_opts.enable = true;
    o->net.transport = t;
    if (t == BENCH_PLAIN)
        return 0;
    if (o->psk_hex && !o->psk_identity) {
        fprintf(stderr, "tmqtt-bench: --psk needs --psk-identity\n");
        return -1;
    }
    tm_tls_opts tls = {.enable = true,
                       .cafile = o->cafile,
                       .certfile = o->certfile,
                       .keyfile = o->keyfile,
                       .insecure = o->insecure,
                       .psk_identity = o->psk_identity,
                       .psk_hex = o->psk_hex,
                       .min_version = "tlsv1.3"};
    char err[256];
    o->net.ssl_ctx = tm_tls_ctx_new(&tls, err, sizeof err);
    if (!o->net.ssl_ctx) {
        fprintf(stderr, "tmqtt-bench: TLS set-up: %s\n", err);
        return -1;
    }
    return 0;
}

static int open_csv(const opts *o)
{
    if (!o->csv)
        return 0;
    struct stat st;
    bool fresh = stat(o->csv, &st) != 0 || st.st_size == 0;
    csv_f = fopen(o->csv, "a");
    if (!csv_f) {
        fprintf(stderr, "tmqtt-bench: %s: %s\n", o->csv, strerror(errno));
        return -1;
    }
    if (fresh)
        fprintf(csv_f, "broker,scenario,variant,qos,payload,publishers,subscribers,rate,"
                       "metric,value\n");
    return 0;
}

static const struct {
    const char *name;
    int (*run)(opts *o);
} scenarios[] = {
    {"connect", sc_connect}, {"rate", sc_rate}, {"subscribers", sc_subscribers},
    {"publishers", sc_publishers}, {"throughput", sc_throughput}, {"idle", sc_idle},
    {"storm", sc_storm},
};

int main(int argc, char **argv)
{
    opts o;
    defaults(&o);
    int pr = parse_args(&o, argc, argv);
    if (pr != 0)
        return pr > 0 ? 0 : 2;
    int (*run)(opts *) = NULL;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (!strcmp(o.scenario, scenarios[i].name))
            run = scenarios[i].run;
    if (!run) {
        fprintf(stderr, "tmqtt-bench: unknown scenario '%s' (see --help)\n", o.scenario);
        return 2;
    }
    if (o.n == 0)
        o.n = run == sc_idle || run == sc_storm ? 10000 : 200;
    if (setup_transport(&o) < 0 || open_csv(&o) < 0) {
        SSL_CTX_free(o.net.ssl_ctx);
        return 2;
    }
    if (o.quiet && !freopen("/dev/null", "w", stdout))
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    int rc = run(&o);
    SSL_CTX_free(o.net.ssl_ctx);
    if (csv_f)
        fclose(csv_f);
    if (rc < 0)
        return 2;
    return n_failed ? 1 : 0;
}
