/*
 * fuzz_config.c — libFuzzer target for the configuration parser
 * (src/broker/config.c): any bytes as a mosquitto.conf file must give a
 * configuration or an error with a reason, never a crash, a leak or an
 * error without "FILE:LINE:" (or the file name for I/O errors).
 *
 * tm_config_load reads a path, so each input is written to one scratch file
 * of this process first. `include_dir` lines may name real directories; the
 * parser only reads `*.conf` files there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/tmqtt-fuzz-config-%ld.conf", (long)getpid());
        tm_log_set_level(-1);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    tm_config c;
    tm_config_defaults(&c);
    char err[1024] = "";
    if (tm_config_load(&c, path, err, sizeof err) < 0 && strncmp(err, path, strlen(path)) != 0)
        abort();   /* every error names the file */
    tm_config_free(&c);
    return 0;
}

#ifdef TM_FUZZ_REPLAY
#define TM_FUZZ_EXTRA_INPUTS                                                                  \
    {"listener 1883\npsk_hint h\n", "log_dest file\n", "include_dir /nonexistent\n",          \
     "auth_opt_\n", "per_listener_settings true\npassword_file x\n", "log_timestamp_format \n", \
     "accept_protocol_versions ,,,\n", "listener 0 /tmp/s\n", "mount_point #\n"}
#include "fuzz_replay.h"
#endif
