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
#include <stddef.h>
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

/* ---- option tables for getopt_long (tmqtt-pub, tmqtt-sub, tmqtt-bench) ------
 * A program describes its options as an array of tm_optdef. tm_opts_parse
 * turns the entries of one `kind` into getopt_long's arguments, stores the
 * simple values itself (flags, strings, numbers within a range) into the
 * `target` struct and calls `fn` for the others. There are no positional
 * arguments: a word that is not an option is an error. */
typedef struct tm_optdef tm_optdef;
/* 0: go on; 1: stop without error (--help); -1: error, already reported. */
typedef int (*tm_opt_fn)(void *ctx, const tm_optdef *o, const char *arg);

enum { TM_OPT_FLAG, TM_OPT_STR, TM_OPT_UINT, TM_OPT_DBL, TM_OPT_FN, TM_OPT_FNARG };

struct tm_optdef {
    const char *lng;           /* long name without "--", or NULL */
    int shrt;                  /* short letter, or 0 */
    unsigned char type;        /* TM_OPT_* */
    unsigned char kinds;       /* bit set of the programs that have it */
    size_t off;                /* FLAG (bool), STR (const char *), UINT, DBL: field */
    unsigned char size;        /* UINT: width of the field (1, 2, 4 or 8 bytes) */
    double min, max;           /* UINT, DBL: accepted range */
    bool above_min;            /* DBL: min itself is refused */
    tm_opt_fn fn;              /* FN (no value), FNARG (a value) */
};

#define TM_OPT_FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)
#define TM_OPTDEF_FLAG(T, l, s, k, f) {l, s, TM_OPT_FLAG, k, TM_OPT_FIELD(T, f), 0, 0, false, NULL}
#define TM_OPTDEF_STR(T, l, s, k, f) {l, s, TM_OPT_STR, k, TM_OPT_FIELD(T, f), 0, 0, false, NULL}
#define TM_OPTDEF_UINT(T, l, s, k, f, lo, hi)                                             \
    {l, s, TM_OPT_UINT, k, TM_OPT_FIELD(T, f), lo, hi, false, NULL}
#define TM_OPTDEF_DBL(T, l, s, k, f, lo, hi, above)                                       \
    {l, s, TM_OPT_DBL, k, TM_OPT_FIELD(T, f), lo, hi, above, NULL}
#define TM_OPTDEF_FN(l, s, k, fn) {l, s, TM_OPT_FN, k, 0, 0, 0, 0, false, fn}
#define TM_OPTDEF_FNARG(l, s, k, fn) {l, s, TM_OPT_FNARG, k, 0, 0, 0, 0, false, fn}

typedef struct tm_optparse {
    const tm_optdef *defs;
    size_t ndefs;              /* at most TM_OPT_MAX */
    unsigned kind;             /* use the entries with (kinds & kind) */
    void *target;              /* the struct the offsets point into */
    void *ctx;                 /* for fn and err */
    void (*err)(void *ctx, const char *msg);
    int argc;
    char **argv;               /* argv[0] is not an option (program or scenario) */
} tm_optparse;

#define TM_OPT_MAX 96

/* 0: all parsed; 1: a handler stopped the parse (--help); -1: error reported.
 * Handlers may consume more words by advancing optind (see -D). */
int tm_opts_parse(const tm_optparse *p);
/* "--name" or "-x", for messages. */
const char *tm_opt_name(const tm_optdef *o, char *buf, size_t cap);

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
