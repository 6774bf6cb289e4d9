/*
 * db_main.c — tmqtt-db: look into a broker's durable store without changing
 * it (docs/persistence.md).
 *
 *   tmqtt-db check [-s SEAL] STORE   verify every frame; say what would be
 *                                    recovered and what discarded, and why
 *   tmqtt-db dump  [-s SEAL] STORE   the recovered state: retained messages,
 *                                    sessions with their subscriptions,
 *                                    queued and in-flight messages, incoming
 *                                    QoS 2 ids and wills
 * SEAL is the broker's persistence_seal (default: "keyfile STORE.key", the
 * broker's default). Exit status: 0 the store is whole, 1 it was damaged
 * (the part before the damage is still shown), 2 it cannot be read.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/seal.h"
#include "broker/store.h"
#include "mqtt/mqtt.h"
#include "net/netsrv.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tmqtt-db check|dump [-s SEAL] STORE\n"
               "  -s SEAL  the broker's persistence_seal (default: keyfile STORE.key)\n");
}

static int apply(void *ud, const uint8_t *batch, size_t len, char *why, size_t cap)
{
    return tm_broker_restore(ud, batch, len, tm_net_now_ms(), why, cap);
}

static void note(void *ud, int warn, const char *msg)
{
    (void)ud;
    printf("%s: %s\n", warn ? "damaged" : "note", msg);
}

int main(int argc, char **argv)
{
    const char *seal_spec = NULL;
    if (argc < 2 || (strcmp(argv[1], "check") && strcmp(argv[1], "dump"))) {
        usage(stderr);
        return 2;
    }
    bool dump = !strcmp(argv[1], "dump");
    optind = 2;
    int opt;
    while ((opt = getopt(argc, argv, "s:h")) != -1) {
        if (opt == 's') {
            seal_spec = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    char spec[1100], err[400] = "";
    if (!seal_spec) {
        snprintf(spec, sizeof spec, "keyfile %s.key", path);
        seal_spec = spec;
    }
    tm_log_set_level(TM_LOG_ERR + 1);
    tm_seal *seal = tm_seal_open(seal_spec, err, sizeof err);
    if (!seal) {
        fprintf(stderr, "tmqtt-db: %s\n", err);
        return 2;
    }
    tm_config cfg;
    tm_config_defaults(&cfg);
    tm_broker *b = tm_broker_new(&cfg, tm_net_now_ms(), err, sizeof err);
    tm_store_report rep;
    int rc = b ? tm_store_inspect(path, seal, apply, note, b, &rep, err, sizeof err) : -1;
    if (rc < 0) {
        fprintf(stderr, "tmqtt-db: %s\n", err);
        tm_broker_free(b);
        tm_config_free(&cfg);
        tm_seal_close(seal);
        return 2;
    }
    tm_broker_restore_done(b, tm_net_now_ms());
    printf("store %s: sealed with %s; %llu frame(s), %llu bytes verified; %llu byte(s) "
           "discarded\n", path, tm_seal_mode(seal), (unsigned long long)rep.frames,
           (unsigned long long)rep.bytes, (unsigned long long)rep.discarded_bytes);
    if (dump) {
        tm_buf out;
        tm_buf_init(&out);
        tm_broker_dump(b, &out);
        if (out.len)
            fwrite(out.data, 1, out.len, stdout);
        tm_buf_free(&out);
    }
    tm_broker_free(b);
    tm_config_free(&cfg);
    tm_seal_close(seal);
    return rep.damaged ? 1 : 0;
}
