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
    uint32_t attestation_key_lifetime;   /* +key formats: seconds per key, 0: 3600 */
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
    /* WebSockets (protocol websockets), docs/websockets.md */
    bool websockets;
    char *http_dir;              /* static files for plain GETs; NULL: none */
    char **ws_origins;           /* websockets_origin values; none: any Origin */
    uint32_t n_ws_origins;
    char *file;                  /* where it was declared, for messages */
    int line;
} tm_listener_cfg;

/* A bridge (`connection NAME` and the keys after it), docs/bridges.md. */
enum { TM_BRIDGE_OUT = 1, TM_BRIDGE_IN = 2, TM_BRIDGE_BOTH = 3 };

typedef struct tm_bridge_topic {
    char *pattern;               /* a filter; "" when the prefixes make the topic */
    uint8_t dir;                 /* TM_BRIDGE_OUT / _IN / _BOTH */
    uint8_t qos;
    char *local_prefix;          /* "" when none */
    char *remote_prefix;         /* "" when none */
} tm_bridge_topic;

typedef struct tm_bridge_addr {
    char *host;
    uint16_t port;
} tm_bridge_addr;

typedef struct tm_bridge_cfg {
    char *name;
    tm_bridge_addr *addrs;
    uint32_t n_addrs;
    bool round_robin;
    tm_bridge_topic *topics;
    uint32_t n_topics;
    uint8_t version;             /* 3, 4 or 5 (bridge_protocol_version) */
    bool cleansession;           /* the remote session */
    char *local_clientid;        /* NULL: local.HOSTNAME.NAME */
    char *remote_clientid;       /* NULL: HOSTNAME.NAME */
    char *remote_username, *remote_password;
    char *local_username;        /* the local session's user name (ACL checks) */
    int local_clean;             /* local_cleansession; -1: as cleansession */
    bool attempt_unsubscribe;    /* bridge_attempt_unsubscribe */
    uint16_t receive_max;        /* bridge_receive_maximum (MQTT 5), 0: none */
    uint32_t session_expiry;     /* bridge_session_expiry_interval (MQTT 5) */
    uint16_t max_topic_alias;    /* bridge_max_topic_alias (MQTT 5) */
    uint16_t keepalive;          /* seconds */
    uint32_t restart_base, restart_cap;  /* restart_timeout, seconds */
    bool try_private;
    bool notifications;
    bool notifications_local_only;
    char *notification_topic;    /* NULL: $SYS/broker/connection/REMOTE_CLIENTID/state */
    bool outgoing_retain;        /* bridge_outgoing_retain */
    uint32_t max_packet_size;    /* bridge_max_packet_size, 0: none */
    /* TLS to the remote broker */
    char *cafile, *capath, *certfile, *keyfile;
    bool insecure;
    bool use_os_certs;           /* bridge_tls_use_os_certs */
    char *tls_version;
    char *psk, *psk_identity;
    char *alpn;
    /* attested TLS to the remote broker (attested-tls.md) */
    char *attestation_policy;    /* appraise the remote broker's evidence */
    char *attestation_provider;  /* answer a remote that requires ours */
    char *attestation_provider_opts;   /* "key=value,key=value" */
    char *file;                  /* where it was declared, for messages */
    int line;
} tm_bridge_cfg;

typedef struct tm_config {
    char *path;                  /* file it was read from, NULL for defaults */
    tm_bridge_cfg *bridges;
    uint32_t n_bridges;
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
    uint32_t websockets_headers_size;  /* request head limit; 0: 4096 */
    uint32_t websockets_log_level;     /* accepted for Mosquitto configs, unused */
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
