/*
 * config.h — the broker's configuration: a mosquitto.conf-compatible subset
 * plus the attestation keys. docs/configuration.md lists every key with its
 * default; keep the two in step.
 *
 * Parsing is strict: an unknown key or a bad value is an error that names the
 * file, the line and the reason, and the broker does not start.
 */
#ifndef TM_CONFIG_H
#define TM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tm_listener_cfg {
    char *host;                  /* NULL: all addresses */
    uint16_t port;
    int allow_anonymous;         /* -1: inherit the global setting */
    int max_connections;         /* -1: unlimited */
    char *certfile, *keyfile, *cafile, *capath;
    bool require_certificate;
    bool use_identity_as_username;
    char *psk_file, *psk_hint;
    char *tls_version;           /* "tlsv1.2", "tlsv1.3" (minimum) */
    char *ciphers, *ciphers_tls13;
    char *attestation_provider;  /* "none", "sim", "gramine", "tsm" */
    char *attestation_formats;   /* comma-separated format names */
    char **attestation_opts;     /* "key=value" options for the provider */
    uint32_t n_attestation_opts;
    uint32_t attestation_key_lifetime;   /* +key formats: seconds per key, 0: 3600 */
    bool require_client_attestation;
    char *client_attestation_policy;
    char *file;                  /* where it was declared, for messages */
    int line;
} tm_listener_cfg;

typedef struct tm_config {
    char *path;                  /* file it was read from, NULL for defaults */
    tm_listener_cfg *listeners;
    uint32_t n_listeners;
    bool allow_anonymous;
    bool allow_anonymous_set;
    bool last_anon;              /* parsing state */
    bool per_listener_settings;
    char *password_file;
    char *acl_file;
    int password_file_line, acl_file_line;   /* where they were set, for messages */
    uint32_t max_packet_size;    /* 0: protocol maximum */
    uint32_t message_size_limit; /* largest PUBLISH/will payload, 0: no limit */
    uint16_t max_inflight;       /* outgoing QoS 1/2 window per client */
    uint32_t max_queued;         /* queued QoS 1/2 messages per client, 0: unlimited */
    uint64_t max_queued_bytes;   /* per-client output backlog limit, 0: unlimited */
    uint16_t max_keepalive;      /* 0: no limit */
    uint16_t max_topic_alias;    /* aliases a client may use towards us */
    uint32_t max_qos;
    bool retain_available;
    bool queue_qos0;             /* queue QoS 0 for offline persistent sessions */
    bool persistence;
    char *persistence_location;
    uint32_t persistent_client_expiration; /* seconds, 0: never (v3 sessions) */
    uint32_t sys_interval;       /* 0: no $SYS */
    int log_level;
    char *log_file;              /* NULL: stderr */
    bool log_stdout;
    bool connection_messages;
    uint32_t handshake_timeout_ms;
} tm_config;

/* Defaults: no listeners (the caller adds 127.0.0.1:1883 when none is given). */
void tm_config_defaults(tm_config *c);
/* Parse a file. Returns 0, or -1 with "FILE:LINE: reason" in err. */
int tm_config_load(tm_config *c, const char *path, char *err, size_t errcap);
/* Add a listener (used for -p and the default). */
tm_listener_cfg *tm_config_add_listener(tm_config *c, const char *host, uint16_t port);
void tm_config_free(tm_config *c);

#endif
