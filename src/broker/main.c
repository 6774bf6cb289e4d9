/*
 * main.c — tmqtt-broker's command line: -c FILE, -p PORT, -v, -h.
 *
 * Without a listener in the configuration (or without a configuration) the
 * broker listens on 127.0.0.1 port 1883 and, unless the file says otherwise,
 * allows anonymous clients: Mosquitto 2's "local only" mode.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/log.h"
#include "broker/service.h"
#include "broker/version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "tmqtt-broker %s — a trusted MQTT 3.1.1/5.0 broker\n"
            "usage: tmqtt-broker [-c FILE] [-p PORT] [-v] [-h]\n"
            "  -c FILE   read the configuration (mosquitto.conf syntax; docs/configuration.md)\n"
            "  -p PORT   listen on PORT (replaces the port of the first listener,\n"
            "            or adds a listener on 127.0.0.1)\n"
            "  -v        verbose logging (all messages)\n"
            "  -h        this help\n",
            TMQTT_VERSION);
}

int main(int argc, char **argv)
{
    tm_config cfg;
    tm_config_defaults(&cfg);
    const char *conf = NULL;
    long port = -1;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) && i + 1 < argc) {
            conf = argv[++i];
        } else if ((strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) && i + 1 < argc) {
            char *end;
            errno = 0;
            port = strtol(argv[++i], &end, 10);
            if (errno || *end || port < 0 || port > 65535) {
                fprintf(stderr, "tmqtt-broker: -p: invalid port '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("tmqtt-broker %s\n", TMQTT_VERSION);
            return 0;
        } else {
            fprintf(stderr, "tmqtt-broker: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    char err[1024] = "";
    if (conf && tm_config_load(&cfg, conf, err, sizeof err) < 0) {
        fprintf(stderr, "tmqtt-broker: configuration error: %s\n", err);
        tm_config_free(&cfg);
        return 3;
    }
    if (cfg.n_listeners == 0) {
        tm_config_add_listener(&cfg, "127.0.0.1", port >= 0 ? (uint16_t)port : 1883);
        if (!cfg.allow_anonymous_set)
            cfg.allow_anonymous = true;
    } else if (port >= 0) {
        cfg.listeners[0].port = (uint16_t)port;
    }
    if (cfg.log_file) {
        FILE *lf = fopen(cfg.log_file, "a");
        if (!lf) {
            fprintf(stderr, "tmqtt-broker: log_dest file %s: %s\n", cfg.log_file, strerror(errno));
            tm_config_free(&cfg);
            return 3;
        }
        tm_log_set_file(lf);
    } else if (cfg.log_stdout) {
        tm_log_set_file(stdout);
    }
    tm_log_set_level(verbose ? TM_LOG_DEBUG : cfg.log_level);
    if (cfg.persistence)
        tm_log(TM_LOG_WARN, "persistence true: this version keeps sessions and messages in "
                            "memory only; they do not survive a restart");

    int rc = tm_service_run(&cfg, err, sizeof err);
    if (rc == 2) {
        fprintf(stderr, "tmqtt-broker: %s\n", err);
        tm_log(TM_LOG_ERR, "%s", err);
        rc = 1;
    }
    tm_config_free(&cfg);
    return rc;
}
