/*
 * bench_storm.h — tmqtt-bench's `storm` scenario: what a reconnect storm does
 * to a broker (issue 12; docs/benchmarks.md, "Attestation at scale").
 *
 * One run against one broker, three phases, while an established
 * publisher -> subscriber pair (its own thread and event loop, plain TLS or
 * TCP as the listener is, no attestation) exchanges QoS 1 messages at a fixed
 * rate and records their delivery latency per phase:
 *   1. baseline: the pair alone;
 *   2. handshakes: `hs_parallel` clients connect -> CONNACK -> DISCONNECT in a
 *      loop for `hs_duration` seconds: handshakes per second;
 *   3. storm: `clients` clients connect (at most `parallel` in progress at
 *      once, as a network lets them through) and stay connected; the time
 *      until every one has its CONNACK. A client that fails (timeout, refused)
 *      retries after a back-off, as devices do; retries are counted.
 * The storm and handshake clients use the scenario's TLS options and
 * attestation hooks (bench_net.prepare): plain TLS, or an attestation request
 * for a direct or a +key format. The pair runs in its own thread so that the
 * load generator's own work (thousands of handshakes and appraisals) does not
 * show up as broker latency.
 */
#ifndef TM_BENCH_STORM_H
#define TM_BENCH_STORM_H

#include "tools/bench_core.h"

typedef struct bench_storm_spec {
    const char *broker;          /* label (table) */
    const char *variant;         /* "tls", "attest", ... (table, CSV) */
    int clients;                 /* storm size */
    int parallel;                /* storm connections in progress at once */
    double pair_rate;            /* msg/s of the established pair */
    double baseline_s;           /* phase 1 */
    double hs_duration;          /* phase 2 */
    int hs_parallel;
    double storm_timeout_s;      /* give up on the storm after this long */
    int broker_pid;              /* >0: the broker's CPU time per phase */
} bench_storm_spec;

/* One CSV row: metric and value for (scenario "storm", variant). */
typedef void (*bench_storm_row_fn)(void *arg, const char *variant, const char *metric,
                                   double value);

/* Runs the three phases. `net` is how storm and handshake clients connect
 * (with the attestation hooks), `pair_net` how the established pair does
 * (same broker, no attestation). 0 when every phase completed and the pair
 * lost nothing; -1 with the reason in why. */
int bench_storm(const bench_net *net, const bench_net *pair_net, const bench_storm_spec *sp,
                bench_storm_row_fn row, void *row_arg, char *why, size_t whycap);

#endif
