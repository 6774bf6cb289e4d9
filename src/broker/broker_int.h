/*
 * broker_int.h — the broker engine's internal model, shared by the files of
 * src/broker (the engine's public face is broker.h).
 *
 * Ownership, in one paragraph: the broker (tm_broker) owns listeners,
 * connections and sessions. A connection (tm_conn) is one network peer; once
 * its CONNECT is accepted it is attached to a session (tm_session), which
 * outlives it when the session expiry interval says so. Messages (tm_msg) are
 * immutable after creation and reference-counted: one published payload is
 * stored once and shared by every queue, in-flight slot and retained entry
 * that holds it. The topic tree (trie.c) holds both subscriptions and retained
 * messages, one node per topic level.
 *
 * Every piece of instance state lives in tm_broker (no file globals): two
 * brokers can run in one process, which is what the unit tests and the fuzz
 * target do. Time comes in with every call (b->now); nothing here reads a
 * clock or touches a socket.
 *
 * Threading: none.
 */
#ifndef TM_BROKER_INT_H
#define TM_BROKER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/map.h"
#include "mqtt/mqtt.h"

struct tm_atls_peer;

typedef struct tm_session tm_session;
typedef struct tm_node tm_node;

/* ---- messages ------------------------------------------------------------ */

typedef struct tm_msg {
    uint32_t refs;
    uint8_t qos;                /* QoS as published */
    bool retain;                /* retain flag as published */
    int64_t created_ms;         /* monotonic time of arrival */
    uint64_t origin;            /* id of the publishing session (no local); 0 = broker */
    uint64_t disk_id;           /* journal id (0: never journaled) */
    uint32_t disk_gen;          /* journal generation its record was written in */
    tm_str topic;               /* slices point into this same allocation */
    tm_str payload;
    /* Forwardable v5 properties (payload format, message expiry, content type,
     * response topic, correlation data, user properties); slices point into
     * this allocation. Topic alias and subscription ids are never stored. */
    tm_props props;
    /* Who published it, for check_retain_source (retained messages only;
     * NULL otherwise): client id and user name (one allocation, user after
     * the client id's NUL; user NULL when anonymous) and attested claims. */
    char *src_client;
    const char *src_user;
    struct tm_atls_peer *src_attest;
} tm_msg;

tm_msg *tm_msg_new(tm_str topic, tm_str payload, uint8_t qos, bool retain,
                   const tm_props *props, uint64_t origin, int64_t now_ms);
tm_msg *tm_msg_ref(tm_msg *m);
/* Record the publisher (check_retain_source); before the message is shared. */
void tm_msg_set_source(tm_msg *m, tm_str client_id, const char *username,
                       struct tm_atls_peer *attest);
void tm_msg_unref(tm_msg *m);
/* Remaining expiry in seconds; false when the message has expired. */
bool tm_msg_alive(const tm_msg *m, int64_t now_ms, uint32_t *remaining);
/* Fill props (for tm_encode_publish) from a message: forwardable properties,
 * the remaining expiry, and no subscription identifiers. */
void tm_msg_props(const tm_msg *m, int64_t now_ms, tm_props *out);

/* ---- outgoing delivery queue of a session -------------------------------- */

#define TM_OUT_SUBIDS 4

enum tm_out_state {
    TM_OUT_PENDING = 0,   /* not sent yet */
    TM_OUT_WAIT_ACK,      /* QoS 1 sent, waiting for PUBACK */
    TM_OUT_WAIT_REC,      /* QoS 2 sent, waiting for PUBREC */
    TM_OUT_WAIT_COMP,     /* PUBREL sent, waiting for PUBCOMP (msg released) */
    TM_OUT_DONE           /* acknowledged; removed when it reaches the head */
};

typedef struct tm_out {
    tm_msg *msg;          /* NULL in WAIT_COMP and DONE */
    uint32_t qseq;        /* per-session sequence: the journal's name for the entry */
    uint16_t pid;
    uint8_t qos;
    uint8_t state;
    bool retain;
    bool journaled;       /* its QADD record was written */
    uint8_t n_subids;
    uint32_t subids[TM_OUT_SUBIDS];
    uint32_t bytes;       /* payload bytes counted in tm_outq.inflight_bytes */
} tm_out;

/* Ring buffer: entries [head, head+sent) have been sent (or are done),
 * [head+sent, head+count) are pending. */
typedef struct tm_outq {
    tm_out *e;
    uint32_t head, count, cap;
    uint32_t sent;        /* entries at the front that were transmitted */
    uint32_t inflight;    /* sent entries not yet DONE */
    uint32_t next_qseq;   /* the next entry's qseq */
    uint64_t inflight_bytes; /* their payload bytes (max_inflight_bytes) */
} tm_outq;

/* Entry i from the head. cap is 0 or a power of two (q_push doubles it from 8),
 * so wrapping is a mask, not a division: this runs for every in-flight entry
 * on every acknowledgement and packet identifier. */
static inline tm_out *tm_outq_at(const tm_outq *q, uint32_t i)
{
    return &q->e[(q->head + i) & (q->cap - 1)];
}

/* ---- subscriptions ----------------------------------------------------- */

typedef struct tm_sub {
    tm_session *sess;
    tm_subopts opts;
    uint32_t subid;       /* 0 = none */
} tm_sub;

typedef struct tm_share {
    char *group;
    tm_sub *members;
    uint32_t n, cap;
    uint32_t next;        /* round-robin cursor */
} tm_share;

/* A subscription as the session remembers it, to remove it at session end. */
typedef struct tm_sess_sub {
    char *filter;         /* the full filter as subscribed ($share/... included) */
    tm_node *node;
    tm_subopts opts;      /* as granted (also in the tree; kept here for snapshots) */
    uint32_t subid;
} tm_sess_sub;

/* A session's subscriptions: one allocation, counts in front. */
typedef struct tm_sess_subs {
    uint32_t n, cap;
    tm_sess_sub e[];
} tm_sess_subs;

/* ---- sessions ------------------------------------------------------------ */

typedef struct tm_qos2_in {      /* incoming QoS 2 ids awaiting PUBREL */
    uint16_t n, cap;
    uint16_t ids[];
} tm_qos2_in;

/* A Will the session holds after its connection ended, until its delay
 * passes or the session ends or reconnects (will.c); on b->wills meanwhile. */
typedef struct tm_dwill {
    tm_msg *msg;
    tm_session *sess;
    int64_t at_ms;
    uint32_t delay;
    struct tm_dwill *next, *prev;
} tm_dwill;

/* What few sessions have, allocated when first needed (tm_sess_rare_get). */
typedef struct tm_sess_rare {
    /* the attested claims of the connection that opened the session: ACL
     * checks of queued deliveries and of a delayed Will use them after the
     * connection is gone (a reference; NULL when not attested) */
    struct tm_atls_peer *attest;
    tm_dwill *will;              /* pending delayed Will, or NULL */
} tm_sess_rare;

/* Kept small: a broker for devices holds one per idle connection (and per
 * offline persistent client). What only some sessions need (subscriptions,
 * the delivery queue, incoming QoS 2 ids, attested claims, a delayed Will) is
 * allocated when first needed,
 * and the client id is sized to fit (allocated to offsetof(client_id) + its
 * length + 1). */
struct tm_session {
    uint64_t id;                 /* unique, for no-local */
    tm_conn *conn;               /* NULL when offline */
    /* offline: when it ends; while restoring: since when it was offline
     * (wall clock ms, turned into the former by tm_broker_restore_done) */
    int64_t expire_at_ms;
    tm_sess_subs *subs;          /* NULL until the first subscription */
    tm_outq *q;                  /* NULL until the first queued delivery */
    tm_qos2_in *qos2;            /* NULL until the first incoming QoS 2 message */
    char *username;              /* for ACL checks of queued deliveries */
    struct tm_sess_rare *rare;   /* NULL until attested or holding a Will */
    /* fan-out scratch: which publish last touched this session, at which slot
     * (b->match_stamp; when that wraps, every session's is reset) */
    uint32_t match_stamp;
    uint32_t match_idx;
    uint32_t expiry;             /* session expiry interval; UINT32_MAX = never */
    uint16_t next_pid;
    uint8_t version;
    bool drop_noted : 1;         /* a message was dropped by a queue limit (logged once) */
    bool journaled : 1;          /* durable: its state is in the journal */
    bool bridge : 1;             /* a bridge's local session: no client may take it */
    bool no_journal : 1;         /* never durable (a bridge's local_cleansession) */
    char client_id[];            /* the key in b->sessions */
};

/* ---- connections --------------------------------------------------------- */

enum tm_conn_state {
    TM_CS_NEW = 0,        /* waiting for CONNECT */
    TM_CS_CONNECTED,
    TM_CS_CLOSING         /* the engine is done with it: output, then close */
};

/* An outgoing topic alias: the value of tm_conn_alias.out, its key inside. */
typedef struct tm_alias_out {
    uint16_t alias;
    char topic[];
} tm_alias_out;

/* Topic aliases of a connection that uses them (MQTT 5). */
typedef struct tm_conn_alias {
    tm_str *in;                  /* client->broker aliases [1..max], or NULL */
    tm_map out;                  /* topic -> tm_alias_out (broker->client) */
    uint16_t out_next;
} tm_conn_alias;

/* What only some connections need, in one block allocated on first use
 * (tm_conn_ext_get): a packet cut by a read boundary, persistence's early
 * output, the transport's identity (until CONNECT), attested claims, a Will,
 * topic aliases. An idle plain connection without a Will has none. */
typedef struct tm_conn_ext {
    tm_buf in;                   /* received, not yet parsed */
    tm_buf out_early;            /* persistence: deliveries that may leave before
                                  * the journal commit */
    char *identity;              /* the transport's, for use_identity_as_username
                                  * (freed once CONNECT is handled) */
    struct tm_atls_peer *attest; /* appraised client claims (a reference), or NULL */
    tm_msg *will;                /* will message, NULL if none */
    uint32_t will_delay;
    tm_conn_alias alias;
} tm_conn_ext;

/* Kept small (a broker for devices holds one per idle connection): what a
 * connected client has in its session is not copied here (client id, user
 * name: tm_conn_client_id / tm_conn_username), and what only some
 * connections use is in `ext`, allocated on first use. */
struct tm_conn {
    uint16_t state : 2;          /* enum tm_conn_state */
    uint16_t version : 3;        /* from CONNECT (TM_V31, TM_V311, TM_V5); 0 before */
    bool dirty : 1;              /* on the broker's output list */
    bool out_recent : 1;         /* had output since the last timer tick */
    bool ended : 1;              /* will processed, session detached */
    bool gone : 1;               /* transport closed: freed at the next bury */
    bool tls : 1;
    bool will_suppressed : 1;    /* normal DISCONNECT */
    bool request_problem_info : 1;
    bool is_bridge : 1;          /* our bridge's outgoing connection (bridge.c) */
    bool peer_bridge : 1;        /* a remote bridge that said so (try_private) */
    uint16_t keep_alive;
    uint16_t recv_max;           /* client's receive maximum (our in-flight window) */
    uint16_t alias_max_out;      /* client's topic alias maximum */
    uint32_t max_out_packet;     /* client's maximum packet size (0 = protocol max) */
    /* the last complete packet received; before CONNECT: when it opened (the
     * low 32 bits of b->now: compared as elapsed time, see tm_conn_idle_ms) */
    uint32_t last_rx_ms;
    const struct tm_conn_home *home;   /* its broker and listener (tm_conn_b, tm_conn_lcfg) */
    tm_session *sess;
    tm_buf out;                  /* to send this iteration, after the journal commit */
    tm_conn *dirty_next;
    tm_conn *next, *prev;        /* all connections; graveyard once gone */
    void *io;                    /* the driver's handle for the transport */
    tm_conn_ext *ext;            /* NULL until needed */
};

/* Milliseconds since c's last packet (or its opening), exact while under
 * 49 days: keep alive (at most 65535 s x 1.5) and the CONNECT deadline are
 * checked every tick, long before. */
static inline uint32_t tm_conn_idle_ms(const tm_conn *c, int64_t now)
{
    return (uint32_t)now - c->last_rx_ms;
}

/* What every connection of one listener shares (one per listener
 * configuration, made by tm_broker_open): a connection record keeps one
 * pointer instead of two. */
typedef struct tm_conn_home {
    tm_broker *b;
    const tm_listener_cfg *lcfg;
    struct tm_conn_home *next;
} tm_conn_home;
#define tm_conn_b(c) ((c)->home->b)
#define tm_conn_lcfg(c) ((c)->home->lcfg)

/* c's rare state, allocated now if it was not (NULL: out of memory). */
tm_conn_ext *tm_conn_ext_get(tm_conn *c);
const char *tm_conn_peer(const tm_conn *c);   /* for log lines (tm_conn_driver) */
static inline struct tm_atls_peer *tm_conn_attest(const tm_conn *c)
{
    return c->ext ? c->ext->attest : NULL;
}
static inline tm_msg *tm_conn_will(const tm_conn *c)
{
    return c->ext ? c->ext->will : NULL;
}

tm_conn_alias *tm_conn_alias_get(tm_conn *c);   /* NULL: out of memory */

static inline const char *tm_conn_client_id(const tm_conn *c)
{
    return c->sess ? c->sess->client_id : NULL;
}
static inline const char *tm_conn_username(const tm_conn *c)
{
    return c->sess ? c->sess->username : NULL;
}

/* ---- the broker ---------------------------------------------------------- */

typedef struct tm_sys_stats {
    uint64_t msgs_received, msgs_sent, pub_received, pub_sent, pub_dropped;
    uint64_t clients_total_ever, clients_max;
    uint32_t clients_connected;
} tm_sys_stats;

/* Encoded PUBLISH forms of the message being fanned out (deliver.c). */
#define TM_FORMS 12
typedef struct tm_form_cache {
    bool active;                 /* only inside tm_route, where every msg is alive */
    const tm_msg *msg;
    struct {
        bool used;
        uint8_t key;
        uint32_t pid_off;        /* 0 for QoS 0 */
        tm_buf buf;
    } f[TM_FORMS];
} tm_form_cache;

/* The journal of durable state changes (journal.c). */
typedef struct tm_journal {
    bool on;                     /* persistence: records are written */
    tm_buf buf;                  /* this iteration's records */
    uint32_t gen;                /* store generation (a snapshot starts a new one) */
    tm_snapshot_fn emit;         /* during a snapshot: where its pieces go */
    void *emit_ud;
    bool emit_failed;
    uint64_t next_msg_id;
    tm_map by_sid, by_mid;       /* restore only: ids -> sessions, messages */
} tm_journal;

struct tm_broker {
    const tm_config *cfg;
    int64_t now;                 /* monotonic ms, from the caller of every entry point */
    tm_conn *conns;              /* list of all connections */
    tm_conn *graveyard;          /* gone; freed by tm_broker_bury */
    uint32_t n_conns;
    tm_conn *dirty;              /* connections with output to flush */
    tm_map sessions;             /* client id -> tm_session* */
    uint64_t next_sess_id;
    uint64_t next_assigned_id;   /* for client ids the broker assigns */
    tm_node *root;               /* topic tree root */
    tm_map nodes;                /* (parent, level) -> tm_node* */
    uint32_t n_retained;
    uint32_t n_subscriptions;
    tm_dwill *wills;             /* pending delayed wills */
    int64_t start_ms;
    time_t start_wall;
    int64_t next_tick_ms;
    int64_t next_sys_ms;
    tm_sys_stats st;
    uint32_t match_stamp;        /* one per tm_trie_match (see tm_session) */
    /* fan-out scratch */
    struct tm_match *matches;
    uint32_t n_matches, cap_matches;
    tm_buf scratch;
    tm_form_cache forms;
    struct tm_auth *auth;        /* password file + ACL, NULL when none */
    tm_broker_io_stats io;
    tm_journal jr;
    struct tm_bridge *bridges;   /* one per configured bridge (bridge.c) */
    uint32_t n_bridges;
    tm_conn_driver driver;       /* tm_broker_set_driver */
    tm_conn_home *homes;         /* one per listener configuration seen */
};

/* One matched delivery collected while walking the topic tree. */
typedef struct tm_match {
    tm_session *sess;
    uint8_t qos;
    bool retain_as_published;
    uint8_t n_subids;
    uint32_t subids[TM_OUT_SUBIDS];
} tm_match;

/* ---- functions shared between files -------------------------------------- */

/* bridge.c */
/* A packet on a bridge's connection: true when handled here (*rc set), false
 * for what the engine handles as for a client (PUBLISH, QoS acks). */
bool tm_bridge_dispatch(tm_conn *c, const tm_frame *f, const uint8_t *body, tm_rc *rc);
/* The topic on the other side: out (local -> remote) or in (remote -> local).
 * false when no bridge topic of that direction matches; *buf is to be freed. */
bool tm_bridge_map(const tm_conn *c, bool out, tm_str topic, tm_str *mapped, char **buf);
bool tm_bridge_outgoing_retain(const tm_conn *c);
bool tm_bridge_trusted(const tm_conn *c);   /* no local_username: no ACL checks */
/* $SYS/broker/connection/+/state: bridges' notifications (Mosquitto's
 * convention), the one $-topic clients may publish to (subject to ACLs). */
bool tm_bridge_notice(tm_str topic);
void tm_bridge_ended(tm_conn *c);
void tm_bridge_tick(tm_broker *b, int64_t now);
void tm_bridges_free(tm_broker *b);

/* engine.c */
void tm_conn_send(tm_conn *c, const void *p, size_t n);   /* append to output */
void tm_conn_mark_dirty(tm_conn *c);
/* The engine is done with c: its will is processed, its session detached,
 * and the transport closes once the output queued so far has left. */
void tm_conn_end(tm_conn *c, const char *why);
/* Protocol error: v5 gets DISCONNECT with `rc`, then the connection ends. */
void tm_conn_fail(tm_conn *c, uint8_t rc, const char *why);
size_t tm_conn_backlog(const tm_conn *c);                 /* bytes not yet written */

/* mount_point: the listener's prefix before `topic`. Returns the malloc'd
 * buffer `out` points into (the caller frees it), or NULL, with `out`
 * untouched, when the listener has no mount point or memory ran out. */
char *tm_mount(const tm_conn *c, tm_str topic, tm_str *out);

/* dispatch (handle_*.c) */
tm_rc tm_handle_connect(tm_conn *c, const uint8_t *body, size_t len);
tm_rc tm_handle_publish(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len);
tm_rc tm_handle_ack(tm_conn *c, uint8_t type, uint8_t flags, const uint8_t *body, size_t len);
tm_rc tm_handle_subscribe(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len);
tm_rc tm_handle_unsubscribe(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len);
tm_rc tm_handle_pingreq(tm_conn *c, uint8_t flags, size_t len);
tm_rc tm_handle_disconnect(tm_conn *c, const uint8_t *body, size_t len);
tm_rc tm_handle_auth(tm_conn *c, const uint8_t *body, size_t len);

/* session.c */
tm_session *tm_sess_find(tm_broker *b, tm_str client_id);
tm_session *tm_sess_new(tm_broker *b, tm_str client_id);
void tm_sess_free(tm_broker *b, tm_session *s);        /* ends it: subs removed */
void tm_sess_detach(tm_broker *b, tm_session *s);      /* connection gone */
void tm_sess_expire(tm_broker *b, int64_t now_ms);
uint16_t tm_sess_next_pid(tm_session *s);
/* Subscribe s to `full` (a filter or $share/GROUP/filter, already validated):
 * TM_RC_SUCCESS with *existed telling whether it replaced a subscription. */
tm_rc tm_sess_subscribe(tm_broker *b, tm_session *s, tm_str full, const tm_subopts *opts,
                        uint32_t subid, bool *existed);
/* The session's name of a filter a client of c sent: the filter itself, or
 * with c's listener mount_point ("$share/G/" kept in front); returns the
 * buffer to free when it made one (NULL: key is `full`, or out of memory when
 * the listener has a mount point). */
char *tm_sess_sub_key(const tm_conn *c, tm_str full, tm_str *key);
/* TM_RC_SUCCESS, or TM_RC_NO_SUBSCRIPTION_EXISTED. */
tm_rc tm_sess_unsubscribe(tm_broker *b, tm_session *s, tm_str full);
bool tm_sess_qos2_has(tm_session *s, uint16_t pid);
tm_sess_rare *tm_sess_rare_get(tm_session *s);         /* made now if needed; NULL: no memory */
static inline uint32_t tm_sess_nsubs(const tm_session *s) { return s->subs ? s->subs->n : 0; }
static inline struct tm_atls_peer *tm_sess_attest(const tm_session *s)
{
    return s->rare ? s->rare->attest : NULL;
}
static inline tm_dwill *tm_sess_will(const tm_session *s)
{
    return s->rare ? s->rare->will : NULL;
}
static inline uint32_t tm_sess_qos2_count(const tm_session *s)
{
    return s->qos2 ? s->qos2->n : 0;
}
bool tm_sess_qos2_add(tm_session *s, uint16_t pid);
void tm_sess_qos2_del(tm_session *s, uint16_t pid);

/* deliver.c */
/* Route a message to every matching subscription (and store it when retained). */
void tm_route(tm_broker *b, tm_msg *m, bool set_retained);
/* Queue one delivery to a session; sends it now when the window allows. */
void tm_deliver(tm_broker *b, tm_session *s, tm_msg *m, uint8_t qos, bool retain,
                const uint32_t *subids, uint8_t n_subids);
/* Send pending entries while the in-flight window has room. */
void tm_outq_pump(tm_broker *b, tm_session *s);
/* Resend everything in flight (after reconnect), with DUP. */
void tm_outq_resend(tm_broker *b, tm_session *s);
/* Ack handling: returns false when pid is not in flight in that state. */
bool tm_outq_ack(tm_broker *b, tm_session *s, uint16_t pid, uint8_t type, uint8_t reason);
/* Frees the queue (its entries' messages released) and q itself; NULL is a no-op. */
void tm_outq_free(tm_outq *q);
/* Messages queued for the session and not sent yet. */
static inline uint32_t tm_sess_queued(const tm_session *s)
{
    return s->q ? s->q->count - s->q->sent : 0;
}
/* Drop queued, unsent messages the session's ACL no longer allows (reload);
 * returns how many. */
uint32_t tm_outq_acl_sweep(tm_broker *b, tm_session *s);
/* Encode and send a PUBLISH for a delivery on connection c. false when it was
 * discarded because it exceeds the client's Maximum Packet Size. */
bool tm_send_publish(tm_broker *b, tm_conn *c, tm_msg *m, uint8_t qos, bool retain, bool dup,
                     uint16_t pid, const uint32_t *subids, uint8_t n_subids);

/* trie.c */
tm_node *tm_trie_get(tm_broker *b, tm_str filter, bool create);
void tm_trie_prune(tm_broker *b, tm_node *n);
/* Add/replace a subscription; returns true if it already existed. */
bool tm_trie_sub_add(tm_broker *b, tm_node *n, tm_str group, const tm_sub *sub);
bool tm_trie_sub_del(tm_broker *b, tm_node *n, tm_str group, tm_session *s);
/* Collect matches for topic into b->matches (normal subs merged per session;
 * shared groups pick one member each). */
void tm_trie_match(tm_broker *b, tm_str topic, uint64_t origin);
/* Retained: set (m NULL = clear) and walk those matching a filter. */
void tm_trie_retain(tm_broker *b, tm_str topic, tm_msg *m);
typedef void (*tm_retained_cb)(tm_msg *m, void *ud);
void tm_trie_retained_each(tm_broker *b, tm_str filter, tm_retained_cb cb, void *ud);
void tm_trie_retained_all(tm_broker *b, tm_retained_cb cb, void *ud);   /* any order */
void tm_trie_free(tm_broker *b);

/* will.c */
void tm_will_trigger(tm_broker *b, tm_conn *c);         /* connection ended abnormally */
void tm_will_cancel(tm_broker *b, tm_session *s);       /* session reconnected */
void tm_will_fire_session(tm_broker *b, tm_session *s); /* session ends: send now */
void tm_will_tick(tm_broker *b, int64_t now_ms);
void tm_will_discard(tm_session *s);                   /* broker shutdown: never sent */

/* journal.c: records of durable state changes (no-ops without persistence) */
void tm_jr_msg(tm_broker *b, tm_msg *m);
void tm_jr_sess(tm_broker *b, tm_session *s);          /* also ends it when expiry is 0 */
void tm_jr_sess_end(tm_broker *b, tm_session *s);
void tm_jr_sub(tm_broker *b, tm_session *s, const tm_sess_sub *ss);
void tm_jr_unsub(tm_broker *b, tm_session *s, const char *filter);
void tm_jr_q_add(tm_broker *b, tm_session *s, tm_out *o);
void tm_jr_q_sent(tm_broker *b, tm_session *s, const tm_out *o);
void tm_jr_q_rec(tm_broker *b, tm_session *s, const tm_out *o);
void tm_jr_q_done(tm_broker *b, tm_session *s, const tm_out *o);
void tm_jr_q2(tm_broker *b, tm_session *s, uint16_t pid, bool add);
void tm_jr_retain(tm_broker *b, tm_str topic, tm_msg *m);
void tm_jr_will(tm_broker *b, tm_session *s);
/* deliver.c / will.c, for restoring */
int tm_outq_restore(tm_session *s, tm_msg *m, uint32_t qseq, uint8_t qos, bool retain,
                    const uint32_t *subids, uint8_t n_subids);
int tm_outq_restore_state(tm_session *s, tm_out *o, uint8_t state, uint16_t pid);
void tm_outq_restore_finish(tm_session *s);
bool tm_will_restore(tm_broker *b, tm_session *s, tm_msg *will, uint32_t delay, int64_t at_ms);

/* sys.c */
void tm_sys_publish(tm_broker *b);

/* auth.c */
struct tm_auth;
struct tm_auth *tm_auth_load(const tm_config *cfg, char *err, size_t errcap);
void tm_auth_free(struct tm_auth *a);
/* 1 = ok, 0 = bad user/password, -1 = no password file (anonymous rules apply) */
int tm_auth_check_password(struct tm_auth *a, tm_str user, tm_str pass);
enum { TM_ACC_READ = 1, TM_ACC_WRITE = 2, TM_ACC_SUBSCRIBE = 4 };
/* ACL decision for a topic (or filter, with TM_ACC_SUBSCRIBE). NULL auth:
 * allow. `attest` (may be NULL) selects the `attested SETNAME` blocks. */
bool tm_acl_allowed(struct tm_auth *a, const char *username, const char *client_id,
                    const struct tm_atls_peer *attest, tm_str topic, int access);

#endif
