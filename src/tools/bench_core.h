/*
 * bench_core.h — the measuring engine of tmqtt-bench.
 *
 * One process, one tm_loop, many tm_clients. A "run" is one point of an
 * experiment: P publishers and S subscribers on one topic, publishing either
 * at a fixed rate per publisher or as fast as a flow-control window allows,
 * for a warm-up and then a measured duration, followed by a drain.
 *
 * Every payload carries its own identity so that each delivery is checked:
 *   bytes 0..7   CLOCK_MONOTONIC nanoseconds when tm_client_publish was called
 *   bytes 8..11  sequence number (per publisher, from 0)
 *   bytes 12..15 publisher index
 *   bytes 16..   filler; the last byte is (seq & 0xff) (checks the length end)
 * Subscribers are grouped in "delivery groups": every subscriber is its own
 * group, except that all members of one shared subscription form one group.
 * Each message must reach every group exactly once; a bitmap per
 * (group, publisher) detects duplicates, and what is missing after the drain
 * is loss. Invariants: unique deliveries <= sent * groups; latency and
 * throughput only count deliveries received inside the measured window.
 */
#ifndef TM_BENCH_CORE_H
#define TM_BENCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"

#define BENCH_HDR 16u            /* smallest payload: timestamp, seq, publisher */

/* Latency histogram: log-linear buckets, 64 per power of two (<1.6% error). */
typedef struct bench_hist {
    uint64_t n, sum_ns, max_ns, min_ns;
    uint64_t *b;                 /* BENCH_HIST_BUCKETS counters */
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_free(bench_hist *h);
void bench_hist_add(bench_hist *h, uint64_t ns);
uint64_t bench_hist_pct(const bench_hist *h, double pct);   /* ns, 0 when empty */

/* How clients reach the broker (tmqtt-bench --transport). */
typedef enum bench_transport {
    BENCH_PLAIN,                 /* MQTT over TCP */
    BENCH_TLS,                   /* MQTT over TLS 1.3 (certificate or external PSK) */
    BENCH_TLS_ATTEST,            /* TLS 1.3, attestation requested and appraised */
    /* MQTT over WebSocket: the hook for when the client library gets a
     * WebSocket transport. Until then tmqtt-bench refuses it with that reason;
     * to add it, set it up in tmqtt-bench.c:setup_transport (bench_net.ssl_ctx
     * and .prepare already let every client be configured). */
    BENCH_WS,
} bench_transport;

const char *bench_transport_name(bench_transport t);
int bench_transport_parse(const char *s, bench_transport *out);   /* 0 or -1 */

typedef struct bench_net {
    const char *host;
    uint16_t port;
    /* subscribers elsewhere (e.g. the far end of a chain of bridged brokers);
     * 0 / NULL: the same broker */
    const char *sub_host;
    uint16_t sub_port;
    uint8_t version;             /* TM_V311 or TM_V5 */
    bench_transport transport;
    SSL_CTX *ssl_ctx;            /* NULL: plain TCP */
    /* Applied to every client's options (attestation hooks), may be NULL. */
    int (*prepare)(tm_client_opts *o, void *arg, char *err, size_t errcap);
    void *prepare_arg;
    uint16_t keep_alive;
    bool persistent;             /* sessions survive disconnection (clean start off) */
    int connect_parallel;        /* connections in progress at once */
    double connect_timeout_s;
} bench_net;

typedef struct bench_spec {
    const char *label;           /* unique per run: becomes part of the topic */
    uint32_t n_pubs, n_subs;
    bool shared;                 /* one MQTT 5 shared subscription $share/bench/... */
    uint8_t qos;
    uint32_t size;               /* payload bytes, >= BENCH_HDR */
    double rate;                 /* per publisher msg/s; 0: flood (window bound) */
    double warmup_s, duration_s, drain_s;
    size_t window_bytes;         /* end-to-end outstanding bytes per publisher */
    uint32_t window_msgs;        /* and messages (0: no limit), e.g. to stay within a
                                    broker's default queue length */
    uint32_t inflight;           /* QoS 1/2 unacknowledged per publisher */
    bool flush_each;             /* write every publish at once (latency runs) */
    double max_qos0_loss;        /* tolerated QoS 0 loss fraction */
    int broker_pid;              /* >0: sample its CPU time */
} bench_spec;

typedef struct bench_result {
    uint64_t sent;               /* PUBLISH calls */
    uint64_t expected;           /* sent * groups */
    uint64_t unique, dups, lost, bad;
    uint64_t acked;              /* PUBACK/PUBCOMP for QoS > 0 */
    uint64_t sent_window, recv_window;
    double window_s;
    double offered_rate;         /* msg/s published in the window (all publishers) */
    double delivered_rate;       /* msg/s received in the window (all subscribers) */
    double bench_cpu;            /* load generator CPU use in the window, 1.0 = a core */
    double broker_cpu;           /* broker CPU use, -1 unknown */
    bench_hist lat;
    bool ok;
    char why[320];
} bench_result;

/* One run. 0 when it completed and delivery verified; -1 with out->why
 * otherwise (out is filled in either case; bench_result_free afterwards). */
int bench_run(const bench_net *net, const bench_spec *spec, bench_result *out);
void bench_result_free(bench_result *r);

/* Sequential connection latency: n times connect -> CONNACK -> DISCONNECT.
 * Latency of every successful connection goes to h. Returns the number of
 * failures; the first reason is copied to why. */
int bench_connect_seq(const bench_net *net, int n, bench_hist *h, char *why, size_t whycap);

/* ---- idle connections (bench_idle.c) ----------------------------------
 * n connections held open by `workers` processes (fork); the broker's
 * resident memory is read from /proc/PID/status before (after one warm-up
 * connection) and after all n completed their handshake and CONNACK and
 * settle_s passed. The protocol between the processes is in bench_idle.c. */
typedef struct bench_idle_spec {
    int n;                       /* connections in total */
    int workers;                 /* processes holding them; 0: one per 5000 */
    double settle_s;             /* idle time before the broker's memory is read */
    int broker_pid;              /* required */
} bench_idle_spec;

typedef struct bench_idle_result {
    int workers;
    int connected;               /* CONNACKs received, over all workers */
    int alive;                   /* still open when the memory was read */
    long rss_before_kb, rss_connected_kb, rss_after_kb;      /* VmRSS */
    long anon_before_kb, anon_connected_kb;                  /* RssAnon */
    double connect_s;            /* fork -> every worker ready */
    double bytes_per_conn;       /* (rss_connected - rss_before) / n */
    double anon_bytes_per_conn;  /* the same from RssAnon */
    bool ok;
    char why[320];
} bench_idle_result;

/* 0 when all n connected, stayed connected until measured, and closed; -1
 * with out->why otherwise (the memory figures are filled as far as known). */
int bench_idle_procs(const bench_net *net, const bench_idle_spec *sp, bench_idle_result *out);

/* ---- shared helpers ----------------------------------------------------- */

/* A client of this net with the bench's callbacks; NULL with err. */
tm_client *bench_make_client(tm_loop *loop, const bench_net *net, const char *id, void *ud,
                             const tm_client_cbs *cbs, uint16_t max_inflight, char *err,
                             size_t errcap);

uint64_t bench_now_ns(void);
long bench_rss_kb(int pid);                   /* VmRSS, -1 if unreadable */
long bench_status_kb(int pid, const char *field);   /* "RssAnon:" etc., -1 if unreadable */
double bench_proc_cpu_s(int pid);             /* utime+stime of pid, -1 if unknown */
long bench_proc_nofile(int pid);              /* its soft RLIMIT_NOFILE, -1 if unknown */
long bench_raise_nofile(void);                /* soft limit := hard limit; the new soft limit */

#endif
