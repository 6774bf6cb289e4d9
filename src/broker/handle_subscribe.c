/*
 * handle_subscribe.c — what happens on SUBSCRIBE: per filter validation
 * (syntax, shared subscription form, ACL), the subscription options, the
 * subscription identifier, SUBACK, then the retained messages the retain
 * handling option asks for.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

typedef struct retained_ctx {
    tm_broker *b;
    tm_session *s;
    tm_conn *c;
    uint8_t qos;
    uint32_t subid;
} retained_ctx;

static void send_retained(tm_msg *m, void *ud)
{
    retained_ctx *r = ud;
    if (!tm_msg_alive(m, r->b->now, NULL))
        return;
    const tm_config *cfg = r->b->cfg;
    if (cfg->retain_expiry_interval &&
        r->b->now - m->created_ms >= (int64_t)cfg->retain_expiry_interval * 1000)
        return;
    if (r->b->auth && !tm_acl_allowed(r->b->auth, tm_conn_username(r->c), tm_conn_client_id(r->c), tm_conn_attest(r->c),
                                      m->topic, TM_ACC_READ))
        return;
    /* check_retain_source: the publisher must still be allowed to write it */
    if (r->b->auth && cfg->check_retain_source && m->src_client &&
        !tm_acl_allowed(r->b->auth, m->src_user, m->src_client, m->src_attest, m->topic,
                        TM_ACC_WRITE))
        return;
    tm_deliver(r->b, r->s, m, r->qos, true, r->subid ? &r->subid : NULL, r->subid ? 1 : 0);
}

#define TM_MAX_FILTERS_PER_SUBSCRIBE 1024

tm_rc tm_handle_subscribe(tm_conn *c, uint8_t flags, const uint8_t *body, size_t len)
{
    tm_broker *b = tm_conn_b(c);
    tm_session *s = c->sess;
    tm_subscribe sub;
    tm_rc rc = tm_decode_subscribe(body, len, flags, c->version, &sub);
    if (rc != TM_RC_SUCCESS)
        return rc;
    if (sub.count > TM_MAX_FILTERS_PER_SUBSCRIBE)
        return TM_RC_QUOTA_EXCEEDED;
    uint32_t subid = 0;
    if (c->version == TM_V5 && (sub.props.present & TM_PBIT(TM_P_SUB_ID)) && sub.props.n_sub_ids)
        subid = sub.props.sub_ids[0];

    uint8_t codes[TM_MAX_FILTERS_PER_SUBSCRIBE];
    /* remember what to send after SUBACK (mounted: the buffer the filter is in) */
    struct { tm_str filter; uint8_t qos; bool send; char *mounted; } todo[TM_MAX_FILTERS_PER_SUBSCRIBE];
    uint32_t max_qos = tm_config_max_qos(b->cfg, tm_conn_lcfg(c));
    uint32_t pos = 0, i = 0;
    tm_str full;
    tm_subopts opts;
    bool v5 = c->version == TM_V5;
    while (tm_sub_next(&sub, &pos, &full, &opts)) {
        todo[i].send = false;
        todo[i].mounted = NULL;
        tm_str group = {0}, filter = full;
        bool bad = false, shared = tm_topic_split_shared(full, &group, &filter, &bad);
        if (bad || !tm_topic_filter_valid(filter.p, filter.len)) {
            codes[i++] = v5 ? TM_RC_TOPIC_FILTER_INVALID : 0x80;
            continue;
        }
        if (shared && opts.no_local && v5)
            return TM_RC_PROTOCOL_ERROR;   /* MQTT 5 3.8.3.1 */
        if (!shared)
            group = (tm_str){0};
        if (tm_conn_lcfg(c)->mount_point && !(todo[i].mounted = tm_mount(c, filter, &filter))) {
            codes[i++] = v5 ? TM_RC_UNSPECIFIED : 0x80;
            continue;
        }
        if (b->auth && !tm_acl_allowed(b->auth, tm_conn_username(c), tm_conn_client_id(c), tm_conn_attest(c), filter,
                                       TM_ACC_SUBSCRIBE)) {
            tm_log(TM_LOG_INFO, "client '%s': subscription to '%.*s' denied by ACL",
                   tm_conn_client_id(c), (int)full.len, (const char *)full.p);
            codes[i++] = v5 ? TM_RC_NOT_AUTHORIZED : 0x80;
            continue;
        }
        if (opts.qos > max_qos)
            opts.qos = (uint8_t)max_qos;
        if (!v5) {
            /* a bridge that said so (try_private) gets what MQTT 5 bridges ask
             * for: nothing it published comes back, retain flags as published */
            opts.no_local = c->peer_bridge && !shared;
            opts.retain_as_published = c->peer_bridge;
            opts.retain_handling = 0;
        }
        bool existed;
        tm_str key;
        char *mkey = tm_sess_sub_key(c, full, &key);
        rc = tm_conn_lcfg(c)->mount_point && !mkey ? TM_RC_UNSPECIFIED
                                           : tm_sess_subscribe(b, s, key, &opts, subid, &existed);
        free(mkey);
        if (rc != TM_RC_SUCCESS) {
            codes[i++] = v5 ? TM_RC_UNSPECIFIED : 0x80;
            continue;
        }
        tm_subopts entry_opts = opts;
        codes[i] = opts.qos;
        tm_log(TM_LOG_SUBSCRIBE, "client '%s' subscribed to '%.*s' (QoS %u)", tm_conn_client_id(c),
               (int)full.len, (const char *)full.p, (unsigned)opts.qos);
        if (!shared && (entry_opts.retain_handling == 0 ||
                        (entry_opts.retain_handling == 1 && !existed))) {
            todo[i].filter = filter;
            todo[i].qos = opts.qos;
            todo[i].send = true;
        }
        i++;
    }
    tm_encode_suback(&c->out, c->version, TM_SUBACK, sub.packet_id, NULL, codes, i);
    tm_conn_mark_dirty(c);
    for (uint32_t k = 0; k < i; k++) {
        if (todo[k].send) {
            retained_ctx r = {b, s, c, todo[k].qos, subid};
            tm_trie_retained_each(b, todo[k].filter, send_retained, &r);
        }
        free(todo[k].mounted);
    }
    return TM_RC_SUCCESS;
}
