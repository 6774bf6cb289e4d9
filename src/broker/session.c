/*
 * session.c — MQTT sessions: lookup by client id, creation, the end of a
 * session (its subscriptions leave the topic tree, its queue is released),
 * expiry of offline sessions, packet identifiers, and the set of incoming
 * QoS 2 packet ids awaiting PUBREL.
 *
 * A session is in b->sessions (keyed by its own client_id string) from
 * creation until tm_sess_free.
 */
#include <stdlib.h>
#include <string.h>

#include "attest/atls_peer.h"
#include "broker/broker_int.h"

tm_session *tm_sess_find(tm_broker *b, tm_str client_id)
{
    return tm_map_get(&b->sessions, client_id.p, client_id.len);
}

tm_session *tm_sess_new(tm_broker *b, tm_str client_id)
{
    tm_session *s = calloc(1, offsetof(tm_session, client_id) + client_id.len + 1);
    if (!s)
        return NULL;
    memcpy(s->client_id, client_id.p, client_id.len);
    if (tm_map_put(&b->sessions, s->client_id, client_id.len, s) < 0) {
        free(s);
        return NULL;
    }
    s->id = ++b->next_sess_id;
    s->next_pid = 1;
    return s;
}

/* Remove every subscription of s from the topic tree. */
static void sess_unsubscribe_all(tm_broker *b, tm_session *s)
{
    for (uint32_t i = 0; i < tm_sess_nsubs(s); i++) {
        tm_sess_sub *ss = &s->subs->e[i];
        tm_str full = {(const uint8_t *)ss->filter, (uint32_t)strlen(ss->filter)};
        tm_str group = {0}, filter = full;
        bool bad;
        if (!tm_topic_split_shared(full, &group, &filter, &bad))
            group = (tm_str){0};
        tm_trie_sub_del(b, ss->node, group, s);
        tm_trie_prune(b, ss->node);
        free(ss->filter);
    }
    free(s->subs);
    s->subs = NULL;
}

void tm_sess_free(tm_broker *b, tm_session *s)
{
    if (tm_sess_will(s))
        tm_will_fire_session(b, s);
    tm_jr_sess_end(b, s);
    sess_unsubscribe_all(b, s);
    tm_map_del(&b->sessions, s->client_id, (uint32_t)strlen(s->client_id));
    tm_outq_free(s->q);
    free(s->qos2);
    free(s->username);
    if (s->rare) {
        tm_atls_peer_unref(s->rare->attest);
        free(s->rare);
    }
    free(s);
}

void tm_sess_detach(tm_broker *b, tm_session *s)
{
    s->conn = NULL;
    if (s->expiry == 0) {
        tm_sess_free(b, s);
        return;
    }
    if (s->expiry == UINT32_MAX)
        s->expire_at_ms = INT64_MAX;
    else
        s->expire_at_ms = b->now + (int64_t)s->expiry * 1000;
    tm_jr_sess(b, s);   /* offline since now */
}

void tm_sess_expire(tm_broker *b, int64_t now_ms)
{
    /* Collect first: freeing while iterating the map would reorder it. */
    tm_session **dead = NULL;
    uint32_t n = 0, cap = 0, i = 0;
    tm_map_ent *e;
    while ((e = tm_map_next(&b->sessions, &i))) {
        tm_session *s = e->val;
        if (!s->conn && s->expire_at_ms <= now_ms) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                tm_session **nd = realloc(dead, cap * sizeof *nd);
                if (!nd)
                    break;
                dead = nd;
            }
            dead[n++] = s;
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        tm_log(TM_LOG_INFO, "session '%s' expired", dead[k]->client_id);
        tm_sess_free(b, dead[k]);
    }
    free(dead);
}

static bool sess_find_sub(tm_session *s, tm_str filter, uint32_t *idx)
{
    for (uint32_t i = 0; i < tm_sess_nsubs(s); i++) {
        if (strlen(s->subs->e[i].filter) == filter.len &&
            memcmp(s->subs->e[i].filter, filter.p, filter.len) == 0) {
            *idx = i;
            return true;
        }
    }
    return false;
}

static tm_sess_sub *sess_add_sub(tm_session *s, tm_str filter, tm_node *node)
{
    uint32_t n = tm_sess_nsubs(s), cap = s->subs ? s->subs->cap : 0;
    if (n == cap) {
        uint32_t nc = cap ? cap * 2 : 4;
        tm_sess_subs *ns = realloc(s->subs, sizeof *ns + nc * sizeof ns->e[0]);
        if (!ns)
            return NULL;
        ns->n = n;
        ns->cap = nc;
        s->subs = ns;
    }
    char *f = strndup((const char *)filter.p, filter.len);
    if (!f)
        return NULL;
    s->subs->e[n] = (tm_sess_sub){.filter = f, .node = node};
    return &s->subs->e[s->subs->n++];
}

tm_rc tm_sess_subscribe(tm_broker *b, tm_session *s, tm_str full, const tm_subopts *opts,
                        uint32_t subid, bool *existed)
{
    tm_str group = {0}, filter = full;
    bool bad = false;
    if (!tm_topic_split_shared(full, &group, &filter, &bad))
        group = (tm_str){0};
    if (bad || !tm_topic_filter_valid(filter.p, filter.len))
        return TM_RC_TOPIC_FILTER_INVALID;
    tm_node *node = tm_trie_get(b, filter, true);
    if (!node)
        return TM_RC_UNSPECIFIED;
    tm_sub entry = {.sess = s, .opts = *opts, .subid = subid};
    *existed = tm_trie_sub_add(b, node, group, &entry);
    uint32_t idx;
    tm_sess_sub *ss = sess_find_sub(s, full, &idx) ? &s->subs->e[idx] : sess_add_sub(s, full, node);
    if (!ss) {
        tm_trie_sub_del(b, node, group, s);
        tm_trie_prune(b, node);
        return TM_RC_UNSPECIFIED;
    }
    ss->opts = *opts;
    ss->subid = subid;
    tm_jr_sub(b, s, ss);
    return TM_RC_SUCCESS;
}

char *tm_sess_sub_key(const tm_conn *c, tm_str full, tm_str *key)
{
    *key = full;
    const char *mp = tm_conn_lcfg(c) ? tm_conn_lcfg(c)->mount_point : NULL;
    if (!mp)
        return NULL;
    tm_str group = {0}, filter = full;
    bool bad = false, shared = tm_topic_split_shared(full, &group, &filter, &bad);
    size_t ml = strlen(mp), n = (shared ? 8 + group.len : 0) + ml + filter.len;
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    if (shared) {
        memcpy(buf, "$share/", 7);
        memcpy(buf + 7, group.p, group.len);
        buf[7 + group.len] = '/';
        o = 8 + group.len;
    }
    memcpy(buf + o, mp, ml);
    memcpy(buf + o + ml, filter.p, filter.len);
    buf[n] = 0;
    *key = (tm_str){(const uint8_t *)buf, (uint32_t)n};
    return buf;
}

tm_rc tm_sess_unsubscribe(tm_broker *b, tm_session *s, tm_str full)
{
    uint32_t k;
    if (!sess_find_sub(s, full, &k))
        return TM_RC_NO_SUBSCRIPTION_EXISTED;
    tm_sess_sub *ss = &s->subs->e[k];
    tm_str group = {0}, filter;
    bool bad;
    if (!tm_topic_split_shared(full, &group, &filter, &bad))
        group = (tm_str){0};
    tm_trie_sub_del(b, ss->node, group, s);
    tm_trie_prune(b, ss->node);
    tm_jr_unsub(b, s, ss->filter);
    free(ss->filter);
    s->subs->e[k] = s->subs->e[--s->subs->n];
    return TM_RC_SUCCESS;
}

uint16_t tm_sess_next_pid(tm_session *s)
{
    for (;;) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0)
            s->next_pid = 1;
        if (pid == 0)
            continue;
        /* skip ids still in flight (only possible with very large windows) */
        bool used = false;
        const tm_outq *q = s->q;
        for (uint32_t i = 0; q && i < q->sent; i++) {
            tm_out *o = tm_outq_at(q, i);
            if (o->state != TM_OUT_DONE && o->pid == pid) {
                used = true;
                break;
            }
        }
        if (!used)
            return pid;
    }
}

tm_sess_rare *tm_sess_rare_get(tm_session *s)
{
    if (!s->rare)
        s->rare = calloc(1, sizeof *s->rare);
    return s->rare;
}

bool tm_sess_qos2_has(tm_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < tm_sess_qos2_count(s); i++)
        if (s->qos2->ids[i] == pid)
            return true;
    return false;
}

/* The set is one allocation (counts and ids), made on first use: an idle
 * session holds none. */
bool tm_sess_qos2_add(tm_session *s, uint16_t pid)
{
    uint32_t n = tm_sess_qos2_count(s), cap = s->qos2 ? s->qos2->cap : 0;
    if (n == cap) {
        /* at most 65535 distinct packet ids */
        uint32_t nc = cap ? cap * 2u : 8u;
        if (nc > UINT16_MAX)
            nc = UINT16_MAX;
        if (nc == n)
            return false;
        tm_qos2_in *g = realloc(s->qos2, sizeof *g + nc * sizeof g->ids[0]);
        if (!g)
            return false;
        g->n = (uint16_t)n;
        g->cap = (uint16_t)nc;
        s->qos2 = g;
    }
    s->qos2->ids[s->qos2->n++] = pid;
    return true;
}

void tm_sess_qos2_del(tm_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < tm_sess_qos2_count(s); i++) {
        if (s->qos2->ids[i] == pid) {
            s->qos2->ids[i] = s->qos2->ids[--s->qos2->n];
            return;
        }
    }
}
