/*
 * config.h — the broker's configuration: every key of Mosquitto 2.0's
 * mosquitto.conf(5) (implemented with Mosquitto's meaning, or refused with a
 * reason of its own) plus the attestation keys. docs/configuration.md lists
 * every key with its default and its state; keep the two in step.
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
    bool require_client_attestation;
    char *client_attestation_policy;
    /* Mosquitto listener keys */
    char *mount_point;           /* topic prefix of this listener's clients, NULL: none */
    char *bind_interface;        /* bind to this interface's address */
    char *crlfile;               /* client certificate revocation list (PEM) */
    char *dhparamfile;           /* DH parameters for DHE suites (PEM) */
    int max_qos;                 /* -1: the global value */
    int max_topic_alias;         /* -1: the global value */
    bool use_username_as_clientid;
    bool use_subject_as_username;
    int allow_zero_length_clientid; /* -1: the global value (per_listener_settings) */
    char *auto_id_prefix;        /* NULL: the global value (per_listener_settings) */
    uint8_t protocol_versions;   /* accept_protocol_versions: bit (1 << level); 0: all */
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
    char *persistence_location;  /* directory of the store ("" / NULL: current) */
    char *persistence_file;      /* its name (default tmqtt.db) */
    char *persistence_seal;      /* key source spec (seal.h); NULL: keyfile beside it */
    uint32_t persistence_sync_ms;/* 0: fdatasync every commit; N: at most every N ms */
    uint32_t persistent_client_expiration; /* seconds, 0: never (v3 sessions) */
    uint32_t autosave_interval;  /* seconds; accepted, nothing to do (docs/persistence.md) */
    bool autosave_on_changes;
    uint32_t sys_interval;       /* 0: no $SYS */
    /* logging (log.h) */
    uint32_t log_dest;           /* TM_LOGD_* mask */
    uint32_t log_types;          /* TM_LOG_BIT mask */
    bool log_dest_set, log_type_set;   /* parsing state: the first one replaces the default */
    char *log_file;              /* log_dest file PATH */
    int log_facility;            /* -1: daemon, 0..7: local0..local7 */
    bool log_timestamp;
    char *log_timestamp_format;  /* NULL: seconds since the epoch */
    bool connection_messages;
    uint32_t handshake_timeout_ms;
    char *tls_record_layer;      /* "openssl" | "tmqtt" (NULL: tmqtt), docs/tls-record-layer.md */
    uint32_t attestation_refresh_s;  /* re-read client policies/collateral; 0: SIGHUP only */
    /* running as a service */
    char *pid_file;
    char *user;                  /* NULL: "tmqtt" when started as root */
    /* clients */
    bool allow_zero_length_clientid;
    char *auto_id_prefix;
    char *clientid_prefixes;     /* NULL: any client id */
    bool upgrade_outgoing_qos;
    bool check_retain_source;
    uint64_t max_inflight_bytes; /* 0: no limit */
    uint32_t retain_expiry_interval; /* seconds, 0: retained messages never expire */
    char *psk_file;              /* for listeners with psk_hint and no psk_file of their own */
    int psk_file_line;
    int include_depth;           /* parsing state */
    int last_azlc;               /* parsing state: last allow_zero_length_clientid, -1 none */
    char *last_prefix;           /* parsing state: last auto_id_prefix */
} tm_config;

/* Defaults: no listeners (the caller adds 127.0.0.1:1883 when none is given). */
void tm_config_defaults(tm_config *c);
/* Parse a file. Returns 0, or -1 with "FILE:LINE: reason" in err. */
int tm_config_load(tm_config *c, const char *path, char *err, size_t errcap);
/* Add a listener (used for -p and the default). */
tm_listener_cfg *tm_config_add_listener(tm_config *c, const char *host, uint16_t port);
void tm_config_free(tm_config *c);
/* Effective per-listener values (the listener's own, else the global one). */
uint32_t tm_config_max_qos(const tm_config *c, const tm_listener_cfg *l);
uint32_t tm_config_max_topic_alias(const tm_config *c, const tm_listener_cfg *l);

#endif
