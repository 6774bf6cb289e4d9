/*
 * main.c — tmqtt-broker's command line: -c FILE, -p PORT, -t, -v, -h.
 *
 * Without a listener in the configuration (or without a configuration) the
 * broker listens on 127.0.0.1 port 1883 and, unless the file says otherwise,
 * allows anonymous clients: Mosquitto 2's "local only" mode.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef __wasi__
#include <syslog.h>
#endif

#include "broker/log.h"
#include "broker/service.h"
#include "broker/version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "tmqtt-broker %s — a trusted MQTT 3.1.1/5.0 broker\n"
            "usage: tmqtt-broker [-c FILE] [-p PORT] [-t] [-v] [-h]\n"
            "  -c FILE   read the configuration (mosquitto.conf syntax; docs/configuration.md)\n"
            "  -p PORT   listen on PORT (replaces the port of the first listener,\n"
            "            or adds a listener on 127.0.0.1)\n"
            "  -t, --test-config  check the configuration and exit (0: valid, 3: not)\n"
            "  -v        verbose logging (every log_type)\n"
            "  -h        this help\n",
            TMQTT_VERSION);
}

/* The log as the configuration says (log.h): destinations, types, timestamps. */
static int setup_log(const tm_config *cfg, bool verbose)
{
    FILE *lf = NULL;
    if (cfg->log_dest & TM_LOGD_FILE) {
        lf = fopen(cfg->log_file, "a");
        if (!lf) {
            fprintf(stderr, "tmqtt-broker: log_dest file %s: %s\n", cfg->log_file,
                    strerror(errno));
            return -1;
        }
    }
    int facility = 0;
#ifndef __wasi__
    facility = cfg->log_facility < 0 ? LOG_DAEMON : LOG_LOCAL0 + (cfg->log_facility << 3);
#endif
    tm_log_set_dest(cfg->log_dest, lf, facility);
    tm_log_set_types(verbose ? TM_LOG_ALL_TYPES : cfg->log_types);
    tm_log_set_timestamp(cfg->log_timestamp, cfg->log_timestamp_format);
    return 0;
}

int main(int argc, char **argv)
{
    tm_config cfg;
    tm_config_defaults(&cfg);
    const char *conf = NULL;
    long port = -1;
    bool verbose = false, test_only = false;
    static const struct option longopts[] = {
        {"config-file", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {"test-config", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:p:tvh", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'p':
            errno = 0;
            port = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || port < 0 || port > 65535) {
                fprintf(stderr, "tmqtt-broker: -p: invalid port '%s'\n", optarg);
                return 2;
            }
            break;
        case 'v':
            verbose = true;
            break;
        case 't':
            test_only = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tmqtt-broker %s\n", TMQTT_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tmqtt-broker: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char err[1024] = "";
    if (conf && tm_config_load(&cfg, conf, err, sizeof err) < 0) {
        fprintf(stderr, "tmqtt-broker: configuration error: %s\n", err);
        tm_config_free(&cfg);
        return 3;
    }
    if (test_only) {
        printf("tmqtt-broker: %s: configuration valid\n", conf ? conf : "(no file)");
        tm_config_free(&cfg);
        return 0;
    }
    if (cfg.n_listeners == 0) {
        tm_config_add_listener(&cfg, "127.0.0.1", port >= 0 ? (uint16_t)port : 1883);
        if (!cfg.allow_anonymous_set)
            cfg.allow_anonymous = true;
    } else if (port >= 0) {
        cfg.listeners[0].port = (uint16_t)port;
    }
    if (setup_log(&cfg, verbose) < 0) {
        tm_config_free(&cfg);
        return 3;
    }

    int rc = tm_service_run(&cfg, err, sizeof err);
    if (rc == 2) {
        fprintf(stderr, "tmqtt-broker: %s\n", err);
        tm_log(TM_LOG_ERR, "%s", err);
        rc = 1;
    }
    tm_log_close();
    tm_config_free(&cfg);
    return rc;
}
