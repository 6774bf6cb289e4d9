/*
 * fuzz_broker.c — libFuzzer target for the whole broker engine (broker.h):
 * packet sequences over several connections, with the clock as an input.
 *
 * The input is a script of operations, each one byte followed by its
 * arguments:
 *   0 open   [version]              a connection appears (up to 8 at once)
 *   1 input  [conn][len16][bytes]   bytes from a connection's client
 *   2 close  [conn]                 the client vanishes (no DISCONNECT)
 *   3 time   [ms16]                 the clock moves on ms*10; timers run
 *   4 split  [conn][n8]             the first n8 bytes of the next input
 *                                   arrive alone (packets cut by reads)
 * After every operation the engine's output is collected as the network
 * driver would, and checked: whatever the engine sends must be a sequence of
 * well-formed MQTT packets. At the end everything is freed (ASan's leak
 * check runs). Seeds: corpus/broker (make_broker_seeds.py).
 *
 * Built with -DTM_FUZZ_REPLAY it is a plain program replaying the corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/log.h"
#include "mqtt/mqtt.h"

#define NCONN 8

#define REQUIRE(c)                                                              \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "fuzz_broker: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                            \
        }                                                                       \
    } while (0)

typedef struct slot {
    tm_conn *c;
} slot;

static slot slots[NCONN];
static tm_broker *B;
static int64_t now;

static int slot_of(tm_conn *c)
{
    for (int i = 0; i < NCONN; i++)
        if (slots[i].c == c)
            return i;
    return -1;
}

/* The engine's output must frame exactly into whole packets. */
static void check_output(const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        tm_frame f;
        REQUIRE(tm_frame_parse(p + off, n - off, 0, &f) == TM_RC_SUCCESS);
        REQUIRE((size_t)f.header_len + f.remaining <= n - off);
        REQUIRE(f.type != TM_CONNECT && f.type != TM_SUBSCRIBE && f.type != TM_UNSUBSCRIBE &&
                f.type != TM_PINGREQ);
        off += (size_t)f.header_len + f.remaining;
    }
}

static void pump(void)
{
    tm_conn *c;
    while ((c = tm_broker_next_output(B))) {
        int i = slot_of(c);
        REQUIRE(i >= 0);
        size_t n;
        const uint8_t *p = tm_conn_output_early(c, &n);
        check_output(p, n);
        p = tm_conn_output(c, &n);
        check_output(p, n);
        tm_conn_output_done(c);
        if (tm_conn_closing(c)) {
            tm_broker_release(B, c);
            slots[i].c = NULL;
        }
    }
    tm_broker_bury(B);
}

static const tm_config *config(void)
{
    static tm_config cfg;
    static int ready;
    if (!ready) {
        tm_config_defaults(&cfg);
        cfg.allow_anonymous = true;
        cfg.max_inflight = 3;
        cfg.max_queued = 8;
        cfg.max_topic_alias = 4;
        cfg.sys_interval = 5;
        cfg.connection_messages = false;
        cfg.handshake_timeout_ms = 3000;
        tm_config_add_listener(&cfg, "127.0.0.1", 1883);
        tm_log_set_level(TM_LOG_ERR + 1);   /* quiet */
        ready = 1;
    }
    return &cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const tm_config *cfg = config();
    char err[128];
    now = 1000;
    B = tm_broker_new(cfg, now, err, sizeof err);
    REQUIRE(B != NULL);
    memset(slots, 0, sizeof slots);
    size_t i = 0;
    size_t split = 0;
    while (i < size) {
        uint8_t op = data[i++] % 5;
        if (op == 0) {
            int k = 0;
            while (k < NCONN && slots[k].c)
                k++;
            if (k < NCONN) {
                tm_conn_info info = {.listener = &cfg->listeners[0]};
                slots[k].c = tm_broker_open(B, &info, now);
            }
        } else if (op == 1 && i + 3 <= size) {
            int k = data[i] % NCONN;
            size_t len = (size_t)data[i + 1] << 8 | data[i + 2];
            i += 3;
            if (len > size - i)
                len = size - i;
            if (slots[k].c) {
                size_t first = split && split < len ? split : len;
                tm_broker_input(B, slots[k].c, data + i, first, now);
                pump();
                if (first < len && slots[k].c)
                    tm_broker_input(B, slots[k].c, data + i + first, len - first, now);
            }
            split = 0;
            i += len;
        } else if (op == 2 && i < size) {
            int k = data[i++] % NCONN;
            if (slots[k].c) {
                tm_broker_closed(B, slots[k].c, "fuzz", now);
                slots[k].c = NULL;
            }
        } else if (op == 3 && i + 2 <= size) {
            now += ((int64_t)data[i] << 8 | data[i + 1]) * 10;
            i += 2;
            tm_broker_tick(B, now);
        } else if (op == 4 && i + 2 <= size) {
            split = data[i + 1];
            i += 2;
        } else {
            break;
        }
        pump();
    }
    tm_broker_free(B);
    B = NULL;
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#include "fuzz_replay.h"
#endif
