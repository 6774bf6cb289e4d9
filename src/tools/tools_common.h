/*
 * tools_common.h — what tmqtt-pub and tmqtt-sub share: command-line parsing
 * (flags modelled on mosquitto_pub / mosquitto_sub), v5 properties given with
 * -D, host resolution, TLS and attestation options, and connecting.
 *
 * The parsed options live in one tm_tool; strings point into argv (which
 * lives as long as main), files read with -f are owned by the tm_tool.
 */
#ifndef TM_TOOLS_COMMON_H
#define TM_TOOLS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"

#define TM_TOOL_MAX_TOPICS 64
#define TM_TOOL_TIMEOUT_MS 10000

typedef enum { TM_TOOL_PUB, TM_TOOL_SUB } tm_tool_kind;

/* Properties for one -D command (connect, publish, subscribe, ...). */
typedef struct tm_tool_props {
    tm_props props;
    tm_buf user;               /* raw user-property region */
} tm_tool_props;

/* The attestation flags, handed to tm_tools_attest_setup. */
typedef struct tm_tool_attest {
    bool enable;               /* --attest: require attested TLS */
    const char *policy;        /* --attest-policy FILE */
    bool show;                 /* --attest-show: print the claims */
    const char *format;        /* --attest-format NAME (sim, sgx-dcap, ...) */
    bool json;                 /* claims as JSON (sub --json / -F json) */
    const char *provider;      /* --attest-provider NAME: our own evidence (mutual) */
    const char *provider_opts; /* --attest-provider-opt "key=v,key=v" */
} tm_tool_attest;

typedef enum { TM_MSG_NONE, TM_MSG_ARG, TM_MSG_FILE, TM_MSG_STDIN, TM_MSG_NULL,
               TM_MSG_LINES } tm_msg_mode;

typedef struct tm_tool {
    tm_tool_kind kind;
    const char *prog;
    tm_client_opts copt;
    char host[64];             /* numeric address after resolution */
    char id_buf[64];
    const char *host_arg;
    bool debug, quiet;
    bool session_expiry_set;
    bool tls_requested;

    /* publishing */
    const char *topic;
    tm_msg_mode msg_mode;
    const uint8_t *message;
    size_t message_len;
    uint8_t *owned;            /* file/stdin contents */
    int qos;
    bool retain;
    long repeat;
    double repeat_delay;

    /* subscribing */
    const char *filters[TM_TOOL_MAX_TOPICS];
    int nfilters;
    const char *unsub[TM_TOOL_MAX_TOPICS];
    int nunsub;
    long count;                /* -C, 0 = unlimited */
    long timeout_s;            /* -W, 0 = none */
    bool verbose, no_eol, retained_only, no_stale, exit_after_sub, json;
    bool no_local, retain_as_published;
    int retain_handling;
    const char *format;        /* -F */

    tm_tool_props p_connect, p_publish, p_subscribe, p_unsubscribe, p_disconnect, p_will;
    tm_tool_attest attest;
} tm_tool;

/* Parse argv. 0: run; 1: --help printed, exit 0; -1: error printed, exit 1. */
int tm_tools_parse(tm_tool *t, tm_tool_kind kind, int argc, char **argv);
/* Resolve, set up TLS/attestation, connect synchronously. Prints the reason
 * on failure (unless --quiet) and returns -1. */
int tm_tools_connect(tm_tool *t, tm_client **out);
void tm_tools_free(tm_tool *t);
/* Prints "prog: Error: msg" to stderr unless --quiet. */
void tm_tools_err(const tm_tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ======================================================================
 * ATTESTATION HOOK — implemented by the attested-TLS part (src/attest).
 * Called by tm_tools_connect when any --attest* flag was given; it installs
 * o->tls_setup / o->tls_verify / o->tls_arg (and forces TLS 1.3). Returns 0,
 * or -1 with a reason in err.
 * ====================================================================== */
int tm_tools_attest_setup(const tm_tool_attest *a, tm_client_opts *o, char *err,
                          size_t errcap);

#endif
